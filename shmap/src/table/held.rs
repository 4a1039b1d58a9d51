//! The locks a visit holds, as guards: [`NewEntry`] (a slot being inserted, NEW) and [`Held`]
//! (a committed slot being visited, ACCESSING). Each ends its lock when dropped, also during a
//! panic: an insert that did not commit frees its slot, a visit commits its copy only if
//! the table has no rollback. Every way out bumps the version (see [`ctrl`](super::ctrl)).

use crate::layout::ShmValue;
use crate::sync::primitive::{AtomicU64, Ordering, fence};
use crate::sync::words;
use crate::table::ctrl::{Ctrl, SlotState};
use crate::table::removal::note_freed;
use crate::table::slot::Slot;

/// A slot this thread holds in NEW. Dropped without [`commit`](Self::commit) (a failed or
/// panicking visitor), it becomes FREED: keyless and reusable, but not EMPTY, which could cut
/// the probe chains of keys inserted after it (only a shortening makes it EMPTY).
pub(super) struct NewEntry<'a, V: ShmValue> {
    pub(super) slot: Slot<'a>,
    pub(super) ctrl: Ctrl,
    pub(super) value: V,
    pub(super) committed: bool,
    /// The table's flag that a slot was ever freed, set before this one is.
    pub(super) freed: &'a AtomicU64,
}

impl<V: ShmValue> NewEntry<'_, V> {
    #[inline]
    pub(super) fn commit(&mut self) {
        // Release fence: orders the NEW state (taken above) before the value stores, for readers
        // still validating a copy from this slot's previous life; pairs with their fence(Acquire).
        fence(Ordering::Release);
        words::store(self.slot.value, &self.value);
        // Release: commits the entry; pairs with the Acquire loads of readers and lockers.
        self.slot.ctrl.store(self.ctrl.released(SlotState::Ready).0, Ordering::Release);
        self.committed = true;
    }
}

impl<V: ShmValue> Drop for NewEntry<'_, V> {
    #[inline]
    fn drop(&mut self) {
        if !self.committed {
            note_freed(self.freed);
            // Release: hands the slot to its next claimer, whose Acquire compare-and-swap pairs
            // with it. Bumped like every unlock, so that this episode's NEW word is never seen
            // again (by a monitor, or by a recoverer's CAS).
            self.slot.ctrl.store(self.ctrl.released(SlotState::Freed).0, Ordering::Release);
        }
    }
}

/// A committed slot this thread holds in ACCESSING, with the visitor's copy of its value.
/// Dropped during a panic, it commits the copy only if the table has no rollback.
pub(super) struct Held<'a, V: ShmValue> {
    pub(super) slot: Slot<'a>,
    pub(super) ctrl: Ctrl,
    pub(super) value: V,
    pub(super) commit_on_drop: bool,
    pub(super) released: bool,
}

impl<V: ShmValue> Held<'_, V> {
    /// Unlocks the slot, first writing the copy back if `commit` and it differs.
    #[inline(always)]
    pub(super) fn release(&mut self, commit: bool) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        let slot = self.slot;
        if commit && !words::equals(slot.value, &self.value) {
            // The undo record: the committed value, for a recoverer if we die mid-write-back.
            for (undo, value) in slot.undo.iter().zip(slot.value) {
                undo.store(value.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            // Release: publishes the undo record to a recoverer (whose AcqRel compare-and-swap in
            // `recover` pairs with it), and keeps the key published for probers.
            slot.ctrl.store(self.ctrl.with_state(SlotState::Writing).0, Ordering::Release);
            // Release fence: orders the WRITING store before the value stores (Boehm's seqlock
            // writer); pairs with the reader's fence(Acquire) in `get`.
            fence(Ordering::Release);
            words::store(slot.value, &self.value);
        }
        // Release: publishes the new value (if any) and unlocks; pairs with the Acquire loads of
        // readers and the next locker's Acquire compare-and-swap. The version is bumped even
        // without a write, so that a monitor can tell two lock episodes apart.
        slot.ctrl.store(self.ctrl.released(SlotState::Ready).0, Ordering::Release);
    }
}

impl<V: ShmValue> Drop for Held<'_, V> {
    #[inline]
    fn drop(&mut self) {
        self.release(self.commit_on_drop);
    }
}
