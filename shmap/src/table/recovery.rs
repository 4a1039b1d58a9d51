//! Releasing a slot whose holder died: the recovery transitions of the slot protocol.
//!
//! A process can die while it holds a slot. Every locked state names its holder, so a waiter
//! that has waited longer than its stale-check interval asks whether the holder is alive (the
//! raw table's `Host`); if it is dead, the waiter releases the slot with a compare-and-swap from the exact
//! word it observed, so that of several processes recovering at once exactly one succeeds:
//!
//! ```text
//! INSERTING(t,v,dead)  -> FREED(t,v+1,0)      a half-written key: the slot is free for any key
//! NEW(t,v,dead)        -> FREED(t,v+1,0)      an insert that never committed: the key stays absent
//! EMPTYING(t,v,dead)   -> FREED(t,v+1,0)      a shortening cut short: the slot stays reusable
//! ACCESSING(t,v,dead)  -> READY(t,v+1,0)       the visitor worked on a copy: the value is untouched
//! WRITING(t,v,dead)    -> WRITING(t,v,me)      with undo records: take the slot over, copy the undo
//!                         -> READY(t,v+1,0)    record (the value before the visit) back, release
//! WRITING(t,v,dead)    -> READY(t,v+1,0)       without: release as is (a multi-word value may mix
//!                                              old and new words; counted as torn)
//! ```
//!
//! A live holder is never robbed: liveness says `Dead` only on proof (the pid is gone, names
//! another process, belongs to an earlier boot, or every thread of it is a zombie); a holder
//! whose liveness cannot be told (another pid namespace, `/proc` unreadable) is `Unknown` and
//! left alone. Every recovery bumps the version, like every unlock (see [`ctrl`](super::ctrl)),
//! so a recoverer's compare-and-swap can only hit the lock episode it judged.

use crate::process::OwnerId;
use crate::sync::primitive::{AtomicU64, Ordering, fence};
use crate::table::ctrl::{Ctrl, SlotState};
use crate::table::removal::note_freed;
use crate::table::slot::Slot;
use crate::table::visit::RecoveryAction;

/// Why [`recover_slot`] did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotRecovered {
    /// The slot no longer holds the observed word: its holder or another recoverer moved on.
    Changed,
    /// The observed word is not a locked state.
    NotLocked,
    /// Rolling back a write-back needs an owner id, and this process has none.
    NoOwnerId,
}

/// Releases `slot`, observed as `observed` (locked by a process the caller found dead), as its
/// state requires (see the module documentation). A compare-and-swap from `observed` makes
/// exactly one of several concurrent recoverers succeed; `me` is needed only to roll a
/// write-back back. Works on any table: it needs only the slot's words and the table's flag
/// that a slot was ever freed (`freed`).
pub(crate) fn recover_slot(
    slot: Slot<'_>,
    observed: Ctrl,
    me: Option<OwnerId>,
    freed: &AtomicU64,
) -> Result<RecoveryAction, NotRecovered> {
    // AcqRel: acquires the dead holder's Release stores (its undo record, before WRITING), and
    // releases the slot to the next locker, whose Acquire compare-and-swap pairs with it.
    let swap = |new: Ctrl| {
        slot.ctrl
            .compare_exchange(observed.0, new.0, Ordering::AcqRel, Ordering::Relaxed)
            .map(|_| ())
            .map_err(|_| NotRecovered::Changed)
    };
    match observed.state() {
        SlotState::Inserting | SlotState::New => {
            note_freed(freed); // before the slot is FREED (see `note_freed`)
            swap(observed.released(SlotState::Freed)).map(|()| RecoveryAction::InsertAbandoned)
        }
        SlotState::Emptying => {
            swap(observed.released(SlotState::Freed)).map(|()| RecoveryAction::ShorteningAbandoned)
        }
        SlotState::Accessing => {
            swap(observed.released(SlotState::Ready)).map(|()| RecoveryAction::Unlocked)
        }
        SlotState::Writing if slot.undo.is_empty() => {
            swap(observed.released(SlotState::Ready)).map(|()| RecoveryAction::ReleasedTorn)
        }
        SlotState::Writing => {
            let me = me.ok_or(NotRecovered::NoOwnerId)?;
            let ours = observed.locked(SlotState::Writing, me);
            swap(ours)?;
            // Release fence: orders our takeover before the value stores below, for readers still
            // validating a copy (Boehm's seqlock writer); pairs with their fence(Acquire).
            fence(Ordering::Release);
            for (value, undo) in slot.value.iter().zip(slot.undo) {
                value.store(undo.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            // Release: publishes the restored value; pairs with readers' and lockers' Acquire.
            slot.ctrl.store(ours.released(SlotState::Ready).0, Ordering::Release);
            Ok(RecoveryAction::RolledBack)
        }
        _ => Err(NotRecovered::NotLocked),
    }
}
