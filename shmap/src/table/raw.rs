//! The slot protocol: linear probing over packed slots, locking visits, and seqlock reads.
//!
//! This is the part of the table that loom model-checks (`tests/loom.rs`) and Miri runs: it
//! works on any slice of atomics, whether it lies in a segment or on the heap.
//!
//! # Probing
//!
//! Open addressing with linear probing over a power-of-two array (the home slot is
//! `hash & mask`; the original used `% CAPACITY`). A probe for key `k` with tag `t` looks at
//! each slot's control word ([`ctrl`](super::ctrl)) and:
//!
//! - stops at EMPTY: `k` is absent (or, for an insert, claims the slot);
//! - skips DEAD slots and every slot whose tag is not `t`, whatever its state, so it never waits
//!   on another key's slot (the original waited on any slot being inserted or accessed);
//! - waits on an INSERTING slot with tag `t` (its key is not yet comparable; it may be `k`);
//! - compares the key of any other slot with tag `t`: keys are written once, before the
//!   Release store that moves a slot out of INSERTING, and never change.
//!
//! Because slots never become EMPTY again and an insert claims the first EMPTY slot of its
//! chain only after passing every slot before it, two inserts of the same key meet at one slot:
//! a key lives in at most one slot. A TOMBSTONE keeps its key, so only that key may revive it.
//!
//! # Visits
//!
//! A visit locks the slot (READY → ACCESSING, or TOMBSTONE/EMPTY → NEW), copies the value into
//! a local, runs the visitor on the local, and writes the local back only if the visitor
//! succeeded (or, without rollback, whatever it did) and the bytes changed. So rollback is free,
//! a panicking visitor leaves the shared value untouched, and the shared value is only ever
//! written in the short WRITING window.
//!
//! # Reads
//!
//! A reader never writes to the slot, so readers in many processes do not contend. It follows
//! Boehm's seqlock ("Can Seqlocks Get Along With Programming Language Memory Models?", 2012):
//!
//! ```text
//! writer                                   reader
//! ctrl.store(WRITING, Release)             c1 = ctrl.load(Acquire)      (READY or ACCESSING)
//! fence(Release)                           copy value words (Relaxed)
//! value words .store(Relaxed)              fence(Acquire)
//! ctrl.store(READY(v+1), Release)          c2 = ctrl.load(Relaxed)      (same version?)
//! ```
//!
//! If the reader's copy saw any store of the write-back, its Acquire fence synchronises with the
//! writer's Release fence, so `c2` sees WRITING or a later version and the copy is retried.
//!
//! # Recovery
//!
//! A process can die while it holds a slot. Every locked state names its holder, so a waiter
//! that has waited longer than its stale-check interval asks the [`Host`] whether the holder is
//! alive; if it is dead, the waiter releases the slot with a compare-and-swap from the exact
//! word it observed, so that of several processes recovering at once exactly one succeeds:
//!
//! ```text
//! INSERTING(t,v,dead)  -> DEAD(t,v+1,0)        the key was half-written: skip the slot for ever
//! NEW(t,v,dead)        -> TOMBSTONE(t,v+1,0)   an insert that never committed: the key stays absent
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
//! left alone.
//!
//! # Orderings
//!
//! Every unlock bumps the version (commit, release, plain unlock, an aborted insert's tombstone
//! and every recovery), even when the value did not change, so that a lock episode's word is
//! never seen again: a monitor that sees the same control word twice knows it saw one lock held
//! all along, and a recoverer's compare-and-swap from an observed word can only hit the
//! episode it observed, never a later lock of the same slot by a process that reused the dead
//! holder's owner id (no ABA).
//!
//! Every store to a control word is Release and every lock is an Acquire compare-and-swap, so
//! any Acquire load of a control word is ordered after the key (and the committed value) that
//! the word describes. The claim of an EMPTY slot is Relaxed: nothing was written to an EMPTY
//! slot before, and nobody reads its key until the Release store of NEW.

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::time::Duration;

use crate::layout::{ShmKey, ShmValue};
use crate::process::{Liveness, OwnerId};
use crate::sync::backoff::{BackoffPolicy, Expired, Wait, Waiter};
use crate::sync::primitive::{AtomicU64, Ordering, fence};
use crate::sync::words;
use crate::table::ctrl::{Ctrl, SlotState};
use crate::table::slot::{Slot, SlotLayout};
use crate::table::visit::{AccessMode, RecoveryAction, TravelControl, VisitResult, Visited};

/// Why an operation could not finish.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RawError {
    /// A slot stayed busy past the timeout.
    Busy { slot: usize, ctrl: Ctrl, waited: Duration },
    /// No slot is free for the key.
    Full,
}

/// How a traversal ended.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RawTravel {
    Completed { visited: usize },
    Stopped { slot: usize, visited: usize },
    TimedOut { slot: usize, visited: usize, ctrl: Ctrl, waited: Duration },
}

/// What the protocol needs from the table around it when a wait drags on.
pub(crate) trait Host {
    /// Whether `owner`'s process is alive.
    fn liveness(&self, owner: OwnerId) -> Liveness;
    /// This handle's owner id, to take over a slot whose write-back must be rolled back.
    fn me(&self) -> Option<OwnerId>;
    /// Counts a recovery.
    fn recovered(&self, action: RecoveryAction);
}

/// Why [`RawTable::recover`] did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NotRecovered {
    /// The slot no longer holds the observed word: its holder or another recoverer moved on.
    Changed,
    /// The observed word is not a locked state.
    NotLocked,
    /// Rolling back a write-back needs an owner id, and this process has none.
    NoOwnerId,
}

/// What a probe makes of one slot.
enum Seen {
    /// EMPTY: the key is absent.
    End,
    /// Another key's slot (or a DEAD one).
    Skip,
    /// Being inserted with the same tag: wait.
    Busy,
    /// The key's own slot.
    Mine,
}

/// A table's slot addressing, as locals.
#[derive(Clone, Copy)]
struct Geometry {
    base: *const AtomicU64,
    mask: usize,
    stride: usize,
}

/// What the fast path of a lookup found.
pub(crate) enum FastGet<V> {
    /// The committed value, and its slot.
    Found(usize, V),
    /// The key is absent.
    Absent,
    /// A slot on the way is busy: take the slow path, which waits.
    Slow,
}

/// A view of a table's slots.
///
/// It holds a raw pointer rather than a slice so that a table handle can keep it as a field:
/// `&table.raw` is then a plain pointer, and a lookup inlined into a loop has nothing to build
/// in memory (see [`get`](Self::get)).
pub(crate) struct RawTable<K, V> {
    words: NonNull<AtomicU64>,
    mask: usize,
    layout: SlotLayout,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: ShmKey, V: ShmValue> RawTable<K, V> {
    /// The slot layout of a `K → V` table, with or without undo records.
    pub(crate) const fn layout(undo: bool) -> SlotLayout {
        SlotLayout::new(size_of::<K>(), size_of::<V>(), undo)
    }

    /// A view of `capacity` slots (a power of two) in `words`.
    ///
    /// # Safety
    /// The atomics of `words` must stay valid (not be freed or unmapped) for as long as the view
    /// is used.
    #[inline]
    pub(crate) unsafe fn new(words: &[AtomicU64], capacity: usize, undo: bool) -> Self {
        let layout = Self::layout(undo);
        assert!(capacity.is_power_of_two());
        assert_eq!(words.len(), capacity * layout.stride, "body size");
        RawTable {
            words: NonNull::from(words).cast(),
            mask: capacity - 1,
            layout,
            _types: PhantomData,
        }
    }

    #[inline]
    pub(crate) fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Words of a key and of a value: constants of `K` and `V`, so slot addressing compiles to
    /// fixed offsets (only the stride depends on whether the table keeps undo records).
    const KEY_WORDS: usize = words::words_for(size_of::<K>());
    const VALUE_WORDS: usize = words::words_for(size_of::<V>());

    #[inline(always)]
    pub(crate) fn slot(&self, index: usize) -> Slot<'_> {
        assert!(index <= self.mask, "slot {index} out of range");
        // SAFETY: checked just above.
        unsafe { self.slot_at(self.geometry(), index) }
    }

    /// The fields a probe loop needs, copied into locals: LLVM cannot keep `self`'s fields in
    /// registers across the Acquire loads of a probe, and reloading them costs a load and a
    /// bounds check per slot.
    #[inline(always)]
    fn geometry(&self) -> Geometry {
        Geometry { base: self.words.as_ptr(), mask: self.mask, stride: self.layout.stride }
    }

    /// Slot `index` of a table with geometry `g`.
    ///
    /// # Safety
    /// `g` must be this table's geometry and `index <= g.mask`.
    #[inline(always)]
    unsafe fn slot_at(&self, g: Geometry, index: usize) -> Slot<'_> {
        let (kw, vw) = (Self::KEY_WORDS, Self::VALUE_WORDS);
        debug_assert!(index <= g.mask && g.stride >= 1 + kw + vw);
        let part = |offset: usize, len: usize| {
            // SAFETY: `index <= mask`, so the slot's `stride == 1 + kw + vw + undo_words` words
            // (`layout` makes the stride that sum) lie inside the `capacity × stride` atomics
            // `new` was given, which its caller keeps valid; `offset + len <= stride`.
            let start = unsafe { g.base.add(index * g.stride + offset) };
            // SAFETY: `len` initialised atomics from `start`, inside the slot (see above).
            unsafe { std::slice::from_raw_parts(start, len) }
        };
        let ctrl = part(0, 1);
        Slot {
            ctrl: &ctrl[0],
            key: part(1, kw),
            value: part(1 + kw, vw),
            undo: part(1 + kw + vw, g.stride - 1 - kw - vw),
        }
    }

    /// The control word of slot `index`, for monitors and tests.
    #[inline]
    pub(crate) fn ctrl(&self, index: usize) -> Ctrl {
        // Acquire: pairs with the Release stores of the protocol, like a probe's load.
        Ctrl(self.slot(index).ctrl.load(Ordering::Acquire))
    }

    #[inline]
    pub(crate) fn home(&self, hash: u64) -> usize {
        hash as usize & self.mask
    }

    /// The tag of a hash: its top 16 bits (the home slot uses the low bits).
    #[inline]
    pub(crate) fn tag(hash: u64) -> u16 {
        (hash >> 48) as u16
    }

    /// What a probe for `key` (with `tag`) makes of a slot whose control word is `c`. Tests of
    /// the state bits, in the order a probe most often needs them.
    #[inline(always)]
    fn classify(c: Ctrl, tag: u16, slot: Slot<'_>, key: &K) -> Seen {
        if c.is(SlotState::Empty) {
            Seen::End
        } else if c.tag() != tag || c.is(SlotState::Dead) {
            Seen::Skip
        } else if c.is(SlotState::Inserting) {
            Seen::Busy
        } else if words::equals(slot.key, key) {
            Seen::Mine
        } else {
            Seen::Skip
        }
    }

    /// Waits once for slot `index`, last seen as `observed`; first, if the wait has lasted a
    /// stale-check interval, checks whether the holder is alive and recovers the slot if it is
    /// not (then the caller re-reads the slot at once).
    #[cold]
    fn wait_on<B: BackoffPolicy, H: Host + ?Sized>(
        &self,
        waiter: &mut Waiter<B>,
        host: &H,
        index: usize,
        observed: Ctrl,
    ) -> Result<(), RawError> {
        if let Some(owner) = observed.owner() {
            if waiter.stale_check_due() && host.liveness(owner) == Liveness::Dead {
                if let Ok(action) = self.recover(index, observed, host.me()) {
                    host.recovered(action);
                }
                return Ok(()); // whether we or another process recovered it, look again
            }
        }
        waiter.pause().map_err(|Expired(waited)| RawError::Busy {
            slot: index,
            ctrl: observed,
            waited,
        })
    }

    /// Releases slot `index`, observed as `observed` (locked by a process the caller found dead);
    /// see [`recover_slot`].
    pub(crate) fn recover(
        &self,
        index: usize,
        observed: Ctrl,
        me: Option<OwnerId>,
    ) -> Result<RecoveryAction, NotRecovered> {
        recover_slot(self.slot(index), observed, me)
    }

    /// A lock-free read of `key`'s committed value and its slot.
    #[inline(always)]
    pub(crate) fn get<B: BackoffPolicy, H: Host + ?Sized>(
        &self,
        key: &K,
        hash: u64,
        wait: &Wait<B>,
        host: &H,
    ) -> Result<Option<(usize, V)>, RawError> {
        match self.get_fast(key, hash) {
            FastGet::Found(index, value) => Ok(Some((index, value))),
            FastGet::Absent => Ok(None),
            FastGet::Slow => self.get_slow(key, hash, wait, host),
        }
    }

    /// The fast path of [`get`](Self::get): what a probe usually meets (slots of other keys,
    /// the key's committed entry, EMPTY, a tombstone), with no waiting and a small result, so
    /// that inlined into a loop of lookups it keeps everything in registers. A lookup that
    /// stored to memory would hold store-buffer entries until its cache miss retired, and the
    /// loop could not overlap the misses of consecutive lookups. Anything that needs waiting is
    /// `Slow`.
    #[inline(always)]
    pub(crate) fn get_fast(&self, key: &K, hash: u64) -> FastGet<V> {
        let g = self.geometry();
        let tag = Self::tag(hash);
        let mut index = hash as usize & g.mask;
        for _ in 0..=g.mask {
            // SAFETY: `index` is masked with `g.mask`, this table's.
            let slot = unsafe { self.slot_at(g, index) };
            // Acquire: pairs with the Release stores that publish a key (NEW) and commit a
            // value (READY), so the key and value words read below are those stores'.
            let c = Ctrl(slot.ctrl.load(Ordering::Acquire));
            match Self::classify(c, tag, slot, key) {
                Seen::End => return FastGet::Absent,
                Seen::Skip => {}
                Seen::Mine if c.is_readable() => {
                    let value = words::load::<V>(slot.value);
                    // Acquire: pairs with the writer's fence(Release) before its value stores
                    // (Boehm's seqlock): if the copy saw any of them, the load below sees
                    // WRITING or a newer version.
                    fence(Ordering::Acquire);
                    let again = Ctrl(slot.ctrl.load(Ordering::Relaxed));
                    if again.is_readable() && again.version() == c.version() {
                        return FastGet::Found(index, value);
                    }
                    return FastGet::Slow;
                }
                Seen::Mine if c.is(SlotState::Tombstone) || c.is(SlotState::New) => {
                    return FastGet::Absent;
                }
                // Being inserted with our tag, or being written back: wait.
                Seen::Busy | Seen::Mine => return FastGet::Slow,
            }
            index = (index + 1) & g.mask;
        }
        FastGet::Absent
    }

    /// [`get`](Self::get) when it has to wait: probes again from the home slot, waiting on busy
    /// slots under `wait` (and recovering dead holders' slots).
    #[cold]
    #[inline(never)]
    pub(crate) fn get_slow<B: BackoffPolicy, H: Host + ?Sized>(
        &self,
        key: &K,
        hash: u64,
        wait: &Wait<B>,
        host: &H,
    ) -> Result<Option<(usize, V)>, RawError> {
        let mut waiter = Waiter::new(wait.clone());
        let tag = Self::tag(hash);
        let mut index = self.home(hash);
        for _ in 0..self.capacity() {
            let slot = self.slot(index);
            loop {
                // Acquire: as in `get`.
                let c = Ctrl(slot.ctrl.load(Ordering::Acquire));
                match Self::classify(c, tag, slot, key) {
                    Seen::End => return Ok(None),
                    Seen::Skip => break,
                    Seen::Busy => self.wait_on(&mut waiter, host, index, c)?,
                    Seen::Mine => match c.state() {
                        SlotState::Tombstone | SlotState::New => return Ok(None),
                        SlotState::Ready | SlotState::Accessing => {
                            let value = words::load::<V>(slot.value);
                            // Acquire: as in `get`.
                            fence(Ordering::Acquire);
                            let again = Ctrl(slot.ctrl.load(Ordering::Relaxed));
                            if again.is_readable() && again.version() == c.version() {
                                return Ok(Some((index, value)));
                            }
                            // A write-back overlapped the copy: retry.
                            self.wait_on(&mut waiter, host, index, again)?;
                        }
                        _ => self.wait_on(&mut waiter, host, index, c)?, // WRITING
                    },
                }
            }
            index = (index + 1) & self.mask;
        }
        Ok(None)
    }

    /// Starts loading the slot that `hash` lands on into the cache.
    #[inline(always)]
    pub(crate) fn prefetch(&self, hash: u64) {
        let slot = self.slot(self.home(hash));
        crate::sync::primitive::prefetch(slot.ctrl);
        // A packed slot may straddle two cache lines.
        crate::sync::primitive::prefetch(slot.value.last().unwrap_or(slot.ctrl));
    }

    /// Locks `key`'s slot (inserting the key if `mode` allows), runs `visitor` on a copy of the
    /// value, and commits or rolls back. The outer error is the table's, the inner the visitor's.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn visit<B, H, F, R>(
        &self,
        key: &K,
        hash: u64,
        mode: AccessMode,
        owner: OwnerId,
        rollback: bool,
        waiter: &mut Waiter<B>,
        host: &H,
        visitor: F,
    ) -> Result<Result<Visited, R::Error>, RawError>
    where
        B: BackoffPolicy,
        H: Host + ?Sized,
        F: FnOnce(usize, &mut V, bool) -> R,
        R: VisitResult,
    {
        let tag = Self::tag(hash);
        let mut index = self.home(hash);
        for _ in 0..self.capacity() {
            let slot = self.slot(index);
            loop {
                // Acquire: as in `get`.
                let c = Ctrl(slot.ctrl.load(Ordering::Acquire));
                match Self::classify(c, tag, slot, key) {
                    Seen::Skip => break,
                    Seen::Busy => self.wait_on(waiter, host, index, c)?,
                    Seen::End if mode == AccessMode::AccessExist => {
                        return Ok(Ok(Visited::NotFound));
                    }
                    Seen::End => {
                        let claimed = Ctrl::new(SlotState::Inserting, tag, 0, Some(owner));
                        // Relaxed: nothing was ever written to an EMPTY slot, and nobody reads
                        // our key before the Release store of NEW below.
                        if slot
                            .ctrl
                            .compare_exchange(c.0, claimed.0, Ordering::Relaxed, Ordering::Relaxed)
                            .is_ok()
                        {
                            words::store(slot.key, key);
                            let new = claimed.locked(SlotState::New, owner);
                            // Release: publishes the key; pairs with the Acquire loads of
                            // probers, which compare keys only in NEW or later states.
                            slot.ctrl.store(new.0, Ordering::Release);
                            return Ok(Self::run_new(index, slot, new, visitor));
                        }
                    }
                    Seen::Mine => match c.state() {
                        SlotState::Tombstone if mode == AccessMode::AccessExist => {
                            return Ok(Ok(Visited::NotFound));
                        }
                        SlotState::Tombstone => {
                            let new = c.locked(SlotState::New, owner);
                            // Acquire: pairs with the Release store that made the tombstone.
                            if slot
                                .ctrl
                                .compare_exchange(c.0, new.0, Ordering::Acquire, Ordering::Relaxed)
                                .is_ok()
                            {
                                return Ok(Self::run_new(index, slot, new, visitor));
                            }
                        }
                        SlotState::Ready => {
                            let locked = c.locked(SlotState::Accessing, owner);
                            // Acquire: pairs with the Release store of READY, so the value we
                            // copy is the committed one.
                            if slot
                                .ctrl
                                .compare_exchange(
                                    c.0,
                                    locked.0,
                                    Ordering::Acquire,
                                    Ordering::Relaxed,
                                )
                                .is_ok()
                            {
                                return Ok(Self::run_existing(
                                    index, slot, locked, rollback, visitor,
                                ));
                            }
                        }
                        // NEW, ACCESSING or WRITING: another visit holds the slot.
                        _ => self.wait_on(waiter, host, index, c)?,
                    },
                }
            }
            index = (index + 1) & self.mask;
        }
        match mode {
            AccessMode::AccessExist => Ok(Ok(Visited::NotFound)),
            AccessMode::CreateIfMiss => Err(RawError::Full),
        }
    }

    #[inline]
    fn run_new<F, R>(
        index: usize,
        slot: Slot<'_>,
        ctrl: Ctrl,
        visitor: F,
    ) -> Result<Visited, R::Error>
    where
        F: FnOnce(usize, &mut V, bool) -> R,
        R: VisitResult,
    {
        let mut entry = NewEntry { slot, ctrl, value: crate::bytes::zeroed(), committed: false };
        visitor(index, &mut entry.value, true).into_result()?;
        entry.commit();
        Ok(Visited::Created)
    }

    #[inline]
    fn run_existing<F, R>(
        index: usize,
        slot: Slot<'_>,
        ctrl: Ctrl,
        rollback: bool,
        visitor: F,
    ) -> Result<Visited, R::Error>
    where
        F: FnOnce(usize, &mut V, bool) -> R,
        R: VisitResult,
    {
        let value = words::load::<V>(slot.value);
        let mut held = Held { slot, ctrl, value, commit_on_drop: !rollback, released: false };
        match visitor(index, &mut held.value, false).into_result() {
            Ok(()) => {
                held.release(true);
                Ok(Visited::Found)
            }
            Err(e) => {
                held.release(!rollback);
                Err(e)
            }
        }
    }

    /// Visits every committed entry in slot order, locking each in turn. `waiter` bounds the
    /// wait on each locked slot (it is reset after each slot).
    pub(crate) fn travel<B, H, F, R>(
        &self,
        owner: OwnerId,
        rollback: bool,
        waiter: &mut Waiter<B>,
        host: &H,
        mut visitor: F,
    ) -> RawTravel
    where
        B: BackoffPolicy,
        H: Host + ?Sized,
        F: FnMut(usize, &K, &mut V) -> R,
        R: TravelControl,
    {
        let mut visited = 0;
        for index in 0..self.capacity() {
            let slot = self.slot(index);
            waiter.reset();
            loop {
                // Acquire: pairs with the Release store of READY (the committed value).
                let c = Ctrl(slot.ctrl.load(Ordering::Acquire));
                match c.state() {
                    SlotState::Empty | SlotState::Tombstone | SlotState::Dead => break,
                    SlotState::Ready => {
                        let locked = c.locked(SlotState::Accessing, owner);
                        // Acquire: pairs with the Release store of READY.
                        if slot
                            .ctrl
                            .compare_exchange(c.0, locked.0, Ordering::Acquire, Ordering::Relaxed)
                            .is_err()
                        {
                            continue;
                        }
                        let key = words::load::<K>(slot.key);
                        let value = words::load::<V>(slot.value);
                        let mut held = Held {
                            slot,
                            ctrl: locked,
                            value,
                            commit_on_drop: !rollback,
                            released: false,
                        };
                        let keep_going = visitor(index, &key, &mut held.value).keep_going();
                        held.release(true);
                        visited += 1;
                        if !keep_going {
                            return RawTravel::Stopped { slot: index, visited };
                        }
                        break;
                    }
                    // Locked by an insert or a visit: wait for it.
                    _ => {
                        if let Err(RawError::Busy { waited, .. }) =
                            self.wait_on(waiter, host, index, c)
                        {
                            return RawTravel::TimedOut { slot: index, visited, ctrl: c, waited };
                        }
                    }
                }
            }
        }
        RawTravel::Completed { visited }
    }

    /// Whether any slot is locked by `owner` (before its process-table entry is reused).
    #[cfg_attr(shmap_loom, allow(dead_code))] // under loom the slots are not in the segment
    pub(crate) fn references_owner(&self, owner: OwnerId) -> bool {
        (0..self.capacity()).any(|i| self.ctrl(i).owner() == Some(owner))
    }
}

/// Releases `slot`, observed as `observed` (locked by a process the caller found dead), as its
/// state requires (see the module documentation). A compare-and-swap from `observed` makes
/// exactly one of several concurrent recoverers succeed; `me` is needed only to roll a
/// write-back back. Works on any table: it needs only the slot's words.
pub(crate) fn recover_slot(
    slot: Slot<'_>,
    observed: Ctrl,
    me: Option<OwnerId>,
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
        SlotState::Inserting => {
            swap(observed.unlocked(SlotState::Dead).bumped()).map(|()| RecoveryAction::Abandoned)
        }
        SlotState::New => swap(observed.unlocked(SlotState::Tombstone).bumped())
            .map(|()| RecoveryAction::Tombstoned),
        SlotState::Accessing => {
            swap(observed.unlocked(SlotState::Ready).bumped()).map(|()| RecoveryAction::Unlocked)
        }
        SlotState::Writing if slot.undo.is_empty() => {
            swap(observed.unlocked(SlotState::Ready).bumped())
                .map(|()| RecoveryAction::ReleasedTorn)
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
            slot.ctrl.store(ours.unlocked(SlotState::Ready).bumped().0, Ordering::Release);
            Ok(RecoveryAction::RolledBack)
        }
        _ => Err(NotRecovered::NotLocked),
    }
}

/// A slot this thread holds in NEW. Dropped without [`commit`](Self::commit) (a failed or
/// panicking visitor), it becomes a TOMBSTONE that keeps the key: never EMPTY again, which
/// would cut the probe chains of keys inserted after it.
struct NewEntry<'a, V: ShmValue> {
    slot: Slot<'a>,
    ctrl: Ctrl,
    value: V,
    committed: bool,
}

impl<V: ShmValue> NewEntry<'_, V> {
    #[inline]
    fn commit(&mut self) {
        // Release fence: orders the NEW state (taken above) before the value stores, for readers
        // still validating a copy from this slot's previous life; pairs with their fence(Acquire).
        fence(Ordering::Release);
        words::store(self.slot.value, &self.value);
        // Release: commits the entry; pairs with the Acquire loads of readers and lockers.
        self.slot.ctrl.store(self.ctrl.unlocked(SlotState::Ready).bumped().0, Ordering::Release);
        self.committed = true;
    }
}

impl<V: ShmValue> Drop for NewEntry<'_, V> {
    #[inline]
    fn drop(&mut self) {
        if !self.committed {
            // Release: hands the tombstone (and its key) to the next inserter of this key, whose
            // Acquire compare-and-swap pairs with it. Bumped like every unlock, so that this
            // episode's NEW word is never seen again (by a monitor, or by a recoverer's CAS).
            self.slot
                .ctrl
                .store(self.ctrl.unlocked(SlotState::Tombstone).bumped().0, Ordering::Release);
        }
    }
}

/// A committed slot this thread holds in ACCESSING, with the visitor's copy of its value.
/// Dropped during a panic, it commits the copy only if the table has no rollback.
struct Held<'a, V: ShmValue> {
    slot: Slot<'a>,
    ctrl: Ctrl,
    value: V,
    commit_on_drop: bool,
    released: bool,
}

impl<V: ShmValue> Held<'_, V> {
    /// Unlocks the slot, first writing the copy back if `commit` and it differs.
    #[inline(always)]
    fn release(&mut self, commit: bool) {
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
        slot.ctrl.store(self.ctrl.unlocked(SlotState::Ready).bumped().0, Ordering::Release);
    }
}

impl<V: ShmValue> Drop for Held<'_, V> {
    #[inline]
    fn drop(&mut self) {
        self.release(self.commit_on_drop);
    }
}
