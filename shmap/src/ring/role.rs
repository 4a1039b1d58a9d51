//! Exclusive roles (the one producer of an SPSC, SPMC or broadcast ring, the one consumer of an
//! SPSC ring), claimed in a shared word so that a second claimant is refused instead of
//! silently corrupting the ring.
//!
//! The word holds the holder's [`OwnerId`] (0 when free). A claim is a compare-and-swap from 0,
//! or from the id of a holder whose process is dead ([`Liveness::Dead`]): a process killed while
//! it held the role cannot hand it back, and its successor takes over where the ring's shared
//! positions say it stopped. A live holder, or one whose liveness cannot be told (another pid
//! namespace), is never displaced. Within one process the role is held by one handle at a
//! time; the handle gives it back when dropped.

use crate::primitive::{AtomicU64, Ordering};
use crate::process::{Liveness, OwnerId};
use crate::ring::{RingError, RingRole};
use crate::segment::Segment;

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

impl RoleWord<'_> {
    /// Claims the role for `me`, a process registered in `segment`.
    pub(crate) fn claim(&self, segment: &Segment, me: OwnerId) -> Result<Claimed, RingError> {
        let mine = u64::from(me.get());
        loop {
            // Acquire: pairs with the Release store of `release`, so that the previous holder's
            // last writes to the ring's positions are visible to its successor.
            let current = self.word.load(Ordering::Acquire);
            let (expected, claimed) = if current == 0 {
                (0, Claimed::Free)
            } else if current == mine {
                return Err(RingError::RoleTaken {
                    role: self.role,
                    holder: segment.process(me),
                    this_process: true,
                });
            } else {
                let holder = OwnerId::from_bits(current);
                let liveness = holder.map_or(Liveness::Dead, |h| segment.owner_liveness(h));
                if liveness != Liveness::Dead {
                    return Err(RingError::RoleTaken {
                        role: self.role,
                        holder: holder.and_then(|h| segment.process(h)),
                        this_process: false,
                    });
                }
                (current, Claimed::TookOver)
            };
            // Acquire: as the load above.
            if self
                .word
                .compare_exchange(expected, mine, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(claimed);
            }
        }
    }

    /// Gives the role back, if `me` still holds it.
    pub(crate) fn release(&self, me: OwnerId) {
        // Release: publishes this holder's last writes to its successor; pairs with the Acquire
        // of `claim`.
        let _ = self.word.compare_exchange(
            u64::from(me.get()),
            0,
            Ordering::Release,
            Ordering::Relaxed,
        );
    }
}
