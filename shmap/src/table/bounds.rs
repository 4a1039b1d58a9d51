//! Probe bounds: for each group of [`GROUP`] home slots, how far from its home slot the
//! farthest of their keys lies, so that a lookup of an absent key stops there instead of
//! walking on to the next EMPTY slot.
//!
//! Under churn, removed slots stay FREED wherever a probe chain runs through them, and the
//! EMPTY slots that end chains grow rare (at 90 % load none are left after one round of
//! churn), so a walk that had to reach an EMPTY slot would cross most of the table. The bound
//! caps every walk at the keys' actual displacement, which under churn stays near that of a
//! fresh table (an insert reuses the first FREED slot of its chain).
//!
//! This is the probe bound of Purcell and Harris ("Non-blocking hashtables with open
//! addressing", DISC 2005, section 4): raised by an insert before its key can be seen, and
//! lowered, when the farthest key leaves, by a scan that a *scanning* bit and a sequence number
//! guard against inserts that race with it.
//!
//! # The bound word
//!
//! ```text
//!  31                     13   12      11            0
//! +-------------------------+--------+---------------+
//! |      sequence (19)      |scanning|  reach (12)   |
//! +-------------------------+--------+---------------+
//! ```
//!
//! - **reach**: every key whose home slot is in the group, claimed (INSERTING or later) and not
//!   yet freed, lies at most `max(reach, UNCHECKED_REACH - 1)` slots past its home slot (every
//!   walk looks at the first [`UNCHECKED_REACH`] slots anyway, so keys there need no raise);
//!   [`UNBOUNDED`] if a key lies farther than a word can say (walks then end at an EMPTY slot,
//!   as without a bound).
//! - **scanning**: set by a lowerer before its scan; cleared by any insert into the group (which
//!   writes the word even if its key lies within reach), so a lowerer whose scan may have
//!   missed an insert fails its final compare-and-swap.
//! - **sequence**: bumped by each lowerer as it sets the scanning bit, so that a lowerer whose
//!   scan was overtaken by an insert and then by another lowerer cannot mistake the word for
//!   its own (2^19 lowerings of one group during one paused scan would fool it; the cost would
//!   be one lookup that misses a key lying past the lowered reach).
//!
//! # The rules
//!
//! 1. **Raise before claiming visibility.** An insert that claims a slot
//!    `d >= UNCHECKED_REACH` slots past its key's home slot raises the reach to at least `d` (a `SeqCst` read-modify-write that also
//!    clears the scanning bit) after its claim and before its verification and its commit.
//!    A lookup for which the commit happened before it began reads the raise or a later word.
//! 2. **Lower only to what a scan saw.** A lowerer sets the scanning bit (bumping the
//!    sequence), scans the group's chains (`SeqCst` loads), and swaps in the largest
//!    displacement it saw if the word is still its own. A slot being claimed (INSERTING, key not
//!    yet written) or changing under the scan counts as a key of the group's first home slot.
//!    An insert claimed before the scanning bit was set is seen by the scan (its claim precedes
//!    its raise, which precedes the lowerer's bit in the word's order, or, if its raise only
//!    read the word, in the `SeqCst` order); one claimed after it clears the bit.
//! 3. **Verifications stop at the reach.** An insert's verification reads the reach after its
//!    own raise (both `SeqCst`) and stops there: of two inserts of one key, the one that read
//!    the reach first read it before the other's raise, which precedes the other's
//!    verification, so the other's verification (whose reach covers the first's slot) sees
//!    the first's claim: Dekker's argument of [`raw`](super::raw) with the reach added.
//!
//! A walk consults the bound only after [`UNCHECKED_REACH`] slots: most lookups end sooner,
//! and the bound lies on another cache line.

use crate::layout::{ShmKey, ShmValue};
#[cfg(not(shmap_loom))]
use crate::sync::primitive::AtomicU64;
use crate::sync::primitive::{AtomicU32, Ordering, dekker_fence, fence};
use crate::sync::words;
use crate::table::ctrl::{Ctrl, SlotState};
use crate::table::raw::RawTable;

/// Home slots per bound word.
pub(crate) const GROUP: usize = 4;
/// Bytes of bound words per slot: one 4-byte word per [`GROUP`] slots.
pub(crate) const BYTES_PER_SLOT: u64 = (size_of::<u32>() / GROUP) as u64;
/// The reach that means "no bound": walks end at an EMPTY slot.
pub(crate) const UNBOUNDED: usize = REACH_MASK as usize;
/// Slots a walk looks at before it reads the bound (one under loom, whose tables are small, so
/// that the models exercise the bound).
pub(crate) const UNCHECKED_REACH: usize = if cfg!(shmap_loom) { 1 } else { 4 };

const REACH_MASK: u32 = (1 << 12) - 1;
const SCANNING: u32 = 1 << 12;
const SEQ_ONE: u32 = 1 << 13;

/// The number of bound words a table of `capacity` slots has.
pub(crate) const fn words_for(capacity: usize) -> usize {
    capacity.div_ceil(GROUP)
}

/// How far past its home slot a walk must look for a key, given its group's stored reach:
/// never less than the slots every walk looks at before it reads the bound, and `usize::MAX`
/// without a bound.
#[inline]
fn effective(reach: usize) -> usize {
    match reach {
        UNBOUNDED => usize::MAX,
        reach => reach.max(UNCHECKED_REACH - 1),
    }
}

/// A table's body, `capacity` slots of `stride` words then its side table, split into the
/// slots and the bound words.
///
/// # Panics
/// If the body is too short for them.
#[cfg(not(shmap_loom))] // under loom the bounds are separate modelled atomics
pub(crate) fn split_body(
    body: &[AtomicU64],
    capacity: usize,
    stride: usize,
) -> (&[AtomicU64], &[AtomicU32]) {
    let (slots, side) = body.split_at(capacity * stride);
    let words = words_for(capacity);
    assert!(side.len() * 2 >= words, "the side table holds {words} bound words");
    // SAFETY: `side` is `side.len()` initialised, 8-aligned `AtomicU64`s, so its bytes hold
    // `2 × side.len()` `AtomicU32`s (same size as `u32`, 4-aligned), of which we take `words`;
    // the borrow keeps `body` alive, and every access to them goes through the atomics.
    let bounds = unsafe { std::slice::from_raw_parts(side.as_ptr().cast::<AtomicU32>(), words) };
    (slots, bounds)
}

/// A bound word (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bound(pub(crate) u32);

impl Bound {
    /// How far past its home slot a key of the group may lie ([`UNBOUNDED`] for no bound).
    #[inline(always)]
    pub(crate) fn reach(self) -> usize {
        (self.0 & REACH_MASK) as usize
    }

    fn scanning(self) -> bool {
        self.0 & SCANNING != 0
    }

    /// This word with `reach` (saturated at [`UNBOUNDED`]) and the scanning bit as given.
    fn with(self, reach: usize, scanning: bool) -> Bound {
        let reach = reach.min(UNBOUNDED) as u32;
        Bound(self.0 & !(REACH_MASK | SCANNING) | reach | if scanning { SCANNING } else { 0 })
    }

    /// This word with the next sequence number (wrapping within its bits).
    fn next_sequence(self) -> Bound {
        Bound(self.0.wrapping_add(SEQ_ONE))
    }
}

impl<K: ShmKey, V: ShmValue> RawTable<K, V> {
    /// The bound word of the group of home slot `home`.
    #[inline(always)]
    fn bound_word(&self, home: usize) -> &AtomicU32 {
        &self.bounds()[(home & self.mask) / GROUP]
    }

    /// How far past `home` a walk must look for a key homed there: the group's reach, or
    /// `usize::MAX` without a bound. A hint for a walk, so Relaxed: a lookup that must see a
    /// key (its commit happened before the lookup) reads the raise that preceded the commit, or
    /// a later word, by coherence.
    #[inline]
    pub(crate) fn probe_reach(&self, home: usize) -> usize {
        // Relaxed: see above (coherence with the raise that happened before).
        effective(Bound(self.bound_word(home).load(Ordering::Relaxed)).reach())
    }

    /// Rule 1: makes the reach of `home`'s group at least `distance` (the claimed slot's
    /// distance from `home`), clearing the scanning bit, after a claim and before its
    /// verification. Returns the reach after it (`usize::MAX` without a bound): how far the
    /// verification must look.
    pub(crate) fn raise_reach(&self, home: usize, distance: usize) -> usize {
        let word = self.bound_word(home);
        // SeqCst: rule 3's load of the reach after our claim; pairs with other inserts' raises
        // and lowerers' swaps, all SeqCst.
        let mut seen = Bound(word.load(Ordering::SeqCst));
        loop {
            // A key within the slots every walk looks at needs no raise.
            if distance < UNCHECKED_REACH {
                return effective(seen.reach());
            }
            let reach = seen.reach().max(distance.min(UNBOUNDED));
            if reach == seen.reach() && !seen.scanning() {
                return effective(reach);
            }
            let raised = seen.with(reach, false);
            // SeqCst: in the order of rule 2, before a lowerer's final swap, which then fails;
            // as a release, orders our claim before the scan of a lowerer that sets its bit
            // after this (pairs with its SeqCst swap).
            match word.compare_exchange(seen.0, raised.0, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => {
                    // Our raise, then our verification's SeqCst loads (Dekker, rule 3).
                    dekker_fence();
                    return effective(reach);
                }
                Err(now) => seen = Bound(now),
            }
        }
    }

    /// After a key `distance` slots past `home` was removed: lowers the reach of `home`'s group
    /// (rule 2) if that key may have been the farthest, and the reach is long enough for a
    /// walk to read it (a shorter one is not worth a scan).
    #[inline(always)]
    pub(crate) fn lower_reach_after_removal(&self, home: usize, distance: usize) {
        if distance >= UNCHECKED_REACH {
            self.lower_reach_of_far_removal(home, distance);
        }
    }

    /// [`lower_reach_after_removal`](Self::lower_reach_after_removal) for a key that lay past
    /// the slots a walk looks at before it reads the bound: out of line.
    #[inline(never)]
    fn lower_reach_of_far_removal(&self, home: usize, distance: usize) {
        let word = self.bound_word(home);
        // Relaxed: a hint; the compare-and-swap below decides.
        let seen = Bound(word.load(Ordering::Relaxed));
        if distance >= seen.reach() {
            self.lower_reach(home, seen);
        }
    }

    /// Rule 2 for the group of `home`, whose word was seen as `seen`: sets the scanning bit, scans
    /// the group's chains, and swaps in the largest displacement found if no insert intervened.
    /// Whether it lowered the reach.
    pub(crate) fn lower_reach(&self, home: usize, seen: Bound) -> bool {
        let word = self.bound_word(home);
        let mine = seen.with(seen.reach(), true).next_sequence();
        // SeqCst: rule 2's bit, before the scan's SeqCst loads; as an acquire, pairs with the
        // raises before it (their claims are then visible to the scan).
        if word.compare_exchange(seen.0, mine.0, Ordering::SeqCst, Ordering::Relaxed).is_err() {
            return false;
        }
        // Our bit, then the scan's SeqCst loads, against an insert's claim and then its load of
        // the word (Dekker's store-load pair).
        dekker_fence();
        let found = self.farthest_in_group(home, seen.reach());
        if found >= seen.reach() {
            // Nothing to lower: clear the bit (or leave it to the next insert if this fails).
            let _ = word.compare_exchange(
                mine.0,
                mine.with(seen.reach(), false).0,
                // Relaxed: the word keeps its reach; nothing is published.
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            return false;
        }
        let lowered = mine.with(found, false);
        // SeqCst: rule 2's final swap, after the scan; fails if an insert cleared our bit.
        word.compare_exchange(mine.0, lowered.0, Ordering::SeqCst, Ordering::Relaxed).is_ok()
    }

    /// The largest displacement of a key homed in `home`'s group, scanning from the group's
    /// first slot along its chains: to the first EMPTY slot past the group's last home slot, or
    /// to `reach` past it (a lap at most). Slots it cannot judge (a key not yet written, or a
    /// word that changed under the scan) count as the worst a key of the group could be there.
    fn farthest_in_group(&self, home: usize, reach: usize) -> usize {
        let mask = self.mask;
        let first = (home & mask) / GROUP * GROUP;
        let group = first / GROUP;
        // Without a bound, a key may lie anywhere along the chains: scan to their end.
        let span = if reach == UNBOUNDED { mask } else { (GROUP - 1 + reach).min(mask) };
        let mut farthest = 0;
        // The farthest a key of the group may lie at a slot that cannot be judged: counted from
        // the group's first home slot, except, when the scan covers the whole lap, at the
        // group's own home slots, where a key of a later home slot may have wrapped a lap.
        let worst = |offset: usize| if offset + 1 < GROUP && span == mask { mask } else { offset };
        for offset in 0..=span {
            let index = (first + offset) & mask;
            // SeqCst: rule 2's loads after the scanning bit; as an acquire, pairs with the
            // Release store of NEW, so a key read below is published.
            let c = Ctrl(self.ctrl_word(index).load(Ordering::SeqCst));
            if c.is(SlotState::Empty) {
                if offset + 1 >= GROUP {
                    break; // every chain of the group ends before here
                }
            } else if c.is(SlotState::Inserting) {
                farthest = farthest.max(worst(offset)); // a key not yet written
            } else if !c.is_vacant() {
                let key = words::load::<K>(self.slot(index).key);
                // Acquire fence: if the copy saw a later claimer's store, the re-read below sees
                // its claim (pairs with the claimer's Release fence before its key stores).
                fence(Ordering::Acquire);
                if self.ctrl_word(index).load(Ordering::Relaxed) != c.0 {
                    farthest = farthest.max(worst(offset)); // changed under us
                } else {
                    let key_home = (self.hash)(&key) as usize & mask;
                    if key_home / GROUP == group {
                        farthest = farthest.max(index.wrapping_sub(key_home) & mask);
                    }
                }
            }
        }
        farthest
    }
}
