//! The one walk along a key's probe chain, which every operation of the slot protocol uses:
//! linear probing (Knuth, TAOCP vol. 3, 6.4, algorithm L) from the key's home slot, reading one
//! control word at a time, skipping slots of other keys without reading them (their hash tag
//! differs) and keyless slots (FREED, EMPTYING), and stopping where an operation acts: the end
//! of the chain (EMPTY), a slot holding the key (NEW, READY or locked), or a slot whose key is
//! not yet comparable (INSERTING, with the key's tag), on which [`ProbeWalk::next`] waits.
//! After [`UNCHECKED_REACH`] slots it reads the key's probe bound ([`bounds`](super::bounds))
//! and ends where no key of its home slot can lie, EMPTY slot or not.

use crate::layout::{ShmKey, ShmValue};
use crate::sync::backoff::BackoffPolicy;
use crate::sync::primitive::Ordering;
use crate::sync::words;
use crate::table::bounds::UNCHECKED_REACH;
use crate::table::ctrl::{Ctrl, SlotState};
use crate::table::raw::{Addressing, Host, RawError, RawTable, Waiting};
use crate::table::slot::Slot;

/// Where a walk along a probe chain stops.
pub(super) enum Stop<'t> {
    /// EMPTY: the chain ends here, so the key is absent (an insert claims this slot).
    Empty { index: usize, slot: Slot<'t>, ctrl: Ctrl },
    /// A slot holding the key: NEW (an insert not yet committed, which may still turn out to
    /// be a duplicate), READY or locked by a visit.
    Mine { index: usize, slot: Slot<'t>, ctrl: Ctrl },
    /// Every slot where the key may lie was looked at, and none was EMPTY: the key is absent
    /// (from a full table, or from a chain that runs on past its probe bound).
    Exhausted,
}

/// A slot being inserted with the key's tag, whose key is not yet comparable: the walk must
/// wait on it (it may become the key's slot).
pub(super) struct Busy {
    index: usize,
    ctrl: Ctrl,
}

/// The one walk along a key's probe chain, shared by every operation (lookups, visits, and
/// the removal and slot reuse that build on them): linear probing from the home slot, one
/// control word at a time, skipping keyless slots and slots of other tags or keys.
///
/// A walk stops *on* a slot (it does not move past a stop), so a caller whose
/// compare-and-swap on the stop failed calls it again to read the same slot anew. It holds the
/// table's geometry in locals, so a lookup inlined into a loop keeps it in registers.
pub(super) struct ProbeWalk<'t, 'k, K, V> {
    table: &'t RawTable<K, V>,
    g: Addressing,
    key: &'k K,
    tag: u16,
    index: usize,
    /// Slots the walk may still pass: before it ends (a lap at most), or, plus
    /// [`UNREAD_BOUND`], before it reads the probe bound (the walk's fields stay those a
    /// lookup loop keeps in registers).
    left: usize,
}

/// Added to `left` while the walk has not read the probe bound.
const UNREAD_BOUND: usize = 1 << 48;

/// The slots [`ProbeWalk::step_near`] looks at: the [`UNCHECKED_REACH`] slots before a walk
/// reads the probe bound. Under loom one more, so that the models run the fast paths' claims
/// of an EMPTY slot past the home slot (`visit`'s `claim_end` arm) as well as the walk's, with
/// `UNCHECKED_REACH` kept at one so that they also run the bound's; looking at a slot past the
/// unchecked ones without the bound only does a walk's work early (a key there is covered by
/// the reach, and an EMPTY slot still ends its chain).
pub(super) const NEAR_SLOTS: usize = if cfg!(shmap_loom) { 2 } else { UNCHECKED_REACH };

/// The `left` of a walk at its home slot in a table of `mask + 1` slots: a small table is
/// walked whole, a larger one up to [`UNCHECKED_REACH`] slots before the bound is read.
#[inline(always)]
const fn initial_left(mask: usize) -> usize {
    if mask < UNCHECKED_REACH { mask + 1 } else { UNREAD_BOUND + UNCHECKED_REACH }
}

impl<'t, 'k, K: ShmKey, V: ShmValue> ProbeWalk<'t, 'k, K, V> {
    /// A walk along the chain of `key` (whose hash is `hash`) in `table`, of geometry `g`.
    #[inline(always)]
    pub(super) fn new(table: &'t RawTable<K, V>, g: Addressing, key: &'k K, hash: u64) -> Self {
        let tag = RawTable::<K, V>::tag(hash);
        let index = hash as usize & g.mask;
        ProbeWalk { table, g, key, tag, index, left: initial_left(g.mask) }
    }

    /// Moves past the slot the walk stopped on (a NEW slot that a reader does not stop at).
    #[inline(always)]
    pub(super) fn pass(&mut self) {
        self.advance();
    }

    /// Moves past the current slot; past the first [`UNCHECKED_REACH`] slots, on as far as the
    /// probe bound says.
    #[inline(always)]
    fn advance(&mut self) {
        self.index = (self.index + 1) & self.g.mask;
        self.left -= 1;
        if self.left == UNREAD_BOUND {
            let home = self.index.wrapping_sub(UNCHECKED_REACH) & self.g.mask;
            self.left = slots_within_reach(self.table, home, self.index, self.g.mask);
        }
    }

    /// The first [`NEAR_SLOTS`] slots of the walk (the whole table if it is smaller), without
    /// reading the probe bound: the stop among them, or `None` past them. Where most
    /// lookups end; a loop with nothing else in it, which a lookup loop keeps in registers and
    /// whose cache misses consecutive lookups overlap.
    #[inline(always)]
    pub(super) fn step_near(&mut self) -> Result<Option<Stop<'t>>, Busy> {
        for _ in 0..NEAR_SLOTS.min(self.g.mask + 1) {
            // SAFETY: `index` is masked with `g.mask`, the table's own.
            let slot = unsafe { self.table.slot_at(self.g, self.index) };
            // Acquire: as in `step`.
            let ctrl = Ctrl(slot.ctrl.load(Ordering::Acquire));
            let index = self.index;
            match classify(ctrl, self.tag, slot, self.key) {
                Seen::End => return Ok(Some(Stop::Empty { index, slot, ctrl })),
                Seen::Mine => return Ok(Some(Stop::Mine { index, slot, ctrl })),
                Seen::Busy => return Err(Busy { index, ctrl }),
                Seen::Skip => self.index = (self.index + 1) & self.g.mask,
            }
        }
        Ok(None)
    }

    /// Moves to the next stop without waiting: a slot being inserted with the key's tag is
    /// returned as `Busy`.
    #[inline(always)]
    pub(super) fn step(&mut self) -> Result<Stop<'t>, Busy> {
        while self.left > 0 {
            // SAFETY: `index` is masked with `g.mask`, the table's own.
            let slot = unsafe { self.table.slot_at(self.g, self.index) };
            // Acquire: pairs with the Release stores that publish a key (NEW) and commit a
            // value (READY), so the key and value words read after it are those stores'.
            let ctrl = Ctrl(slot.ctrl.load(Ordering::Acquire));
            let index = self.index;
            match classify(ctrl, self.tag, slot, self.key) {
                Seen::End => return Ok(Stop::Empty { index, slot, ctrl }),
                Seen::Mine => return Ok(Stop::Mine { index, slot, ctrl }),
                Seen::Busy => return Err(Busy { index, ctrl }),
                Seen::Skip => self.advance(),
            }
        }
        Ok(Stop::Exhausted)
    }

    /// Moves to the next stop, passing slots being inserted with the key's tag: for a reader
    /// (a lookup, a removal) such a slot holds no committed entry, whatever key it turns out
    /// to hold, so the key is absent there and any committed copy lies farther on, as with a
    /// NEW slot. So a reader never waits on a process stopped inside its claim.
    #[inline(always)]
    pub(super) fn next_committed(&mut self) -> Stop<'t> {
        loop {
            match self.step() {
                Ok(stop) => return stop,
                Err(Busy { .. }) => self.advance(),
            }
        }
    }

    /// Moves to the next stop, waiting (under `waiting`, recovering dead holders) on slots
    /// being inserted with the key's tag.
    #[inline(always)]
    pub(super) fn next<B: BackoffPolicy, H: Host + ?Sized>(
        &mut self,
        waiting: &mut Waiting<'_, B, H>,
    ) -> Result<Stop<'t>, RawError> {
        loop {
            match self.step() {
                Ok(stop) => return Ok(stop),
                Err(Busy { index, ctrl }) => self.table.wait_on(waiting, index, ctrl)?,
            }
        }
    }
}

/// Past [`UNCHECKED_REACH`] slots, at slot `index`: reads the probe bound of `home`, and
/// returns how many slots the walk may still look at, as far as a key of that home slot can lie
/// (a lap at most). A function of values, out of line: a method taking the walk by reference
/// would make the walk live in memory, and a lookup loop that stores cannot overlap its misses
/// (see `RawTable::get_fast`).
#[cold]
#[inline(never)]
fn slots_within_reach<K: ShmKey, V: ShmValue>(
    table: &RawTable<K, V>,
    home: usize,
    index: usize,
    mask: usize,
) -> usize {
    let passed = index.wrapping_sub(home) & mask;
    let reach = table.probe_reach(home);
    // Slots at distance `passed..=reach` from the home slot, within the lap.
    reach.saturating_add(1).min(mask + 1).saturating_sub(passed)
}

/// What a probe makes of one slot.
enum Seen {
    /// EMPTY: the key is absent.
    End,
    /// Another key's slot, or a keyless one (FREED, EMPTYING).
    Skip,
    /// Being inserted with the same tag: wait.
    Busy,
    /// The key's own slot.
    Mine,
}

/// What a probe for `key` (with `tag`) makes of a slot whose control word is `c`. Tests of
/// the state bits, in the order a probe most often needs them.
#[inline(always)]
fn classify<K: ShmKey>(c: Ctrl, tag: u16, slot: Slot<'_>, key: &K) -> Seen {
    if c.is(SlotState::Empty) {
        Seen::End
    } else if c.tag() != tag || c.is_vacant() {
        Seen::Skip
    } else if c.is(SlotState::Inserting) {
        Seen::Busy
    } else if words::equals(slot.key, key) {
        Seen::Mine
    } else {
        Seen::Skip
    }
}
