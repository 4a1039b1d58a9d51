//! Exclusive roles (the one producer of an SPSC, SPMC or broadcast ring, the one consumer of an
//! SPSC ring), claimed in a shared word so that a second claimant is refused instead of
//! silently corrupting the ring.
//!
//! The word holds the holder's [`OwnerId`] in its low 16 bits (0 when free) and, above them, a
//! count of claims. A claim is a compare-and-swap from a free word, or from the word of a holder
//! whose process is dead ([`Liveness::Dead`]): a process killed while it held the role cannot
//! hand it back, and its successor takes over where the ring's shared positions say it
//! stopped. Every claim increments the count, so the word of one holding is never seen again:
//! a claimant that found holder `o` dead and is then delayed cannot take the role from a later
//! holding by a new process that reused `o`'s id (after another claimant took over from `o`
//! and released, and `o`'s entry was reclaimed). Its compare-and-swap names the holding it
//! judged, not just the id. A live holder, or one whose liveness cannot be told, is never
//! displaced. Within one process the role is held by one handle at a time; the handle gives it
//! back when dropped.
//!
//! ```text
//! claim      (n, 0)     -> (n+1, me)   CAS
//! take over  (n, dead)  -> (n+1, me)   CAS, after the holder was proven dead
//! release    (n, me)    -> (n, 0)      CAS (a no-op if another claimant took over from us)
//! ```

use crate::process::{Liveness, OwnerId};
use crate::ring::{RingError, RingRole};
use crate::segment::Segment;
use crate::sync::primitive::{AtomicU64, Ordering};

/// A role word in a ring's control block.
#[derive(Clone, Copy)]
pub(crate) struct RoleWord<'a> {
    pub(crate) word: &'a AtomicU64,
    pub(crate) role: RingRole,
}

/// How a claim succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Claimed {
    /// The role was free.
    Free,
    /// The role's holder was dead: this claim took over from it.
    TookOver,
}

/// The bits of a role word that hold the owner id; the claim count is above them.
const OWNER_BITS: u64 = 0xffff;
/// One claim, in the count above the owner id.
const ONE_CLAIM: u64 = OWNER_BITS + 1;

/// The owner id in a role word, if the role is held.
#[cfg_attr(all(shmap_loom, not(test)), allow(dead_code))] // the owner scan is not built under loom
pub(crate) fn holder_of(word: u64) -> Option<OwnerId> {
    OwnerId::from_bits(word & OWNER_BITS)
}

impl RoleWord<'_> {
    /// Claims the role for `me`, a process registered in `segment`.
    pub(crate) fn claim(&self, segment: &Segment, me: OwnerId) -> Result<Claimed, RingError> {
        let mine = u64::from(me.get());
        loop {
            // Acquire: pairs with the Release compare-and-swap of `release`, so that the previous
            // holder's last writes to the ring's positions are visible to its successor.
            let current = self.word.load(Ordering::Acquire);
            let holder = current & OWNER_BITS;
            let claimed = if holder == 0 {
                Claimed::Free
            } else if holder == mine {
                return Err(RingError::RoleTaken {
                    role: self.role,
                    holder: segment.process(me),
                    this_process: true,
                });
            } else {
                let holder = OwnerId::from_bits(holder);
                // An id out of range names no process that could ever release the word.
                let liveness = holder.map_or(Liveness::Dead, |h| segment.owner_liveness(h));
                if liveness != Liveness::Dead {
                    return Err(RingError::RoleTaken {
                        role: self.role,
                        holder: holder.and_then(|h| segment.process(h)),
                        this_process: false,
                    });
                }
                Claimed::TookOver
            };
            let next = ((current & !OWNER_BITS).wrapping_add(ONE_CLAIM)) | mine;
            // Acquire: as the load above. From the exact word judged above: a new holding
            // (even by a process that reused a dead holder's id) has another claim count.
            if self
                .word
                .compare_exchange(current, next, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(claimed);
            }
        }
    }

    /// Gives the role back, if `me` still holds it.
    pub(crate) fn release(&self, me: OwnerId) {
        let mine = u64::from(me.get());
        // Relaxed: only finds the current holding; the compare-and-swap below decides.
        let current = self.word.load(Ordering::Relaxed);
        if current & OWNER_BITS != mine {
            return; // taken over (we were judged dead: a handle that outlived a fork, say)
        }
        // Release: publishes this holder's last writes to its successor; pairs with the Acquire
        // of `claim`. Fails only if a claimant took over from us in between.
        let _ = self.word.compare_exchange(
            current,
            current & !OWNER_BITS,
            Ordering::Release,
            Ordering::Relaxed,
        );
    }
}
