//! The slot protocol: linear probing over packed slots, locking visits, and seqlock reads.
//!
//! This is the part of the table that loom model-checks (`table/loom_tests.rs`) and Miri runs: it
//! works on any slice of atomics, whether it lies in a segment or on the heap.
//!
//! # Probing
//!
//! Open addressing with linear probing over a power-of-two array (the home slot is
//! `hash & mask`; the original used `% CAPACITY`). A probe for key `k` with tag `t` looks at
//! each slot's control word ([`ctrl`](super::ctrl)) and ([`probe`](super::probe)):
//!
//! - stops at EMPTY: `k` is absent;
//! - stops past the *reach* of its home slot's probe bound ([`bounds`](super::bounds)), the
//!   farthest any key of that home slot's group lies from its home, read after the first few
//!   slots: `k` is absent, EMPTY slot or not;
//! - skips FREED and EMPTYING slots (they hold no key) and every slot whose tag is not `t`,
//!   whatever its state, so it never waits on another key's slot (the original waited on any
//!   slot being inserted or accessed);
//! - on an INSERTING slot with tag `t` (its key is not yet comparable; it may be `k`), waits if
//!   it may insert `k` (a visit), and passes it if it only reads or removes (`get`, `remove`):
//!   the slot holds no committed entry, so `k` is absent there, as in a NEW slot;
//! - compares the key of any other slot with tag `t`: a key is written between the claim and
//!   the Release store of NEW, and stays until the slot is FREED.
//!
//! # Removal and reuse
//!
//! Removal is one compare-and-swap from the word under which the remover copied the value:
//! READY(v) → FREED(v+1), or, by a remover with an owner id (any process attached to the
//! segment), READY(v) → EMPTYING, removed and locked for the shortening below in one step. It
//! returns exactly the value it removed, a visit in progress makes it wait, and a process
//! killed while removing leaves at most an EMPTYING slot, which holds no key: walks skip it, a
//! verifying insert vetoes it back to FREED, and a monitor recovers it like any lock. A FREED
//! slot holds no key, and any insert may reuse it ([`removal`](super::removal) has the code).
//! The transitions are in [`ctrl`](super::ctrl). Three invariants make reuse safe:
//!
//! 1. **One slot per key.** An insert that finds its key absent claims a slot (a
//!    compare-and-swap to INSERTING), writes the key and publishes NEW. Its slot is the EMPTY
//!    home slot (the common case), or the first FREED slot of its chain, or else the EMPTY slot
//!    that ends the chain. Except at the home slot, it then raises the probe bound to cover its
//!    slot and *verifies* the claim: it walks the chain again from the home slot (to its own
//!    slot if that was EMPTY, else to the first EMPTY past it or the reach its raise read,
//!    whichever comes first), and if it meets its key committed, or NEW nearer the home slot
//!    than its own, it aborts (NEW → FREED) and starts over; a NEW copy farther on is waited
//!    for (it aborts when it sees ours, or commits first and makes us abort). The claim is a `SeqCst`
//!    read-modify-write and the verification's loads are `SeqCst`, so of two inserts of one key
//!    at least one sees the other's claim (Dekker's store-load order; see `dekker_fence` in
//!    `sync::primitive`), and of two that see each other the farther aborts. A claimed home
//!    slot needs no verification: no slot lies before it, and a copy of the key past it would
//!    have had to pass it while it was EMPTY (its own verification would then abort) or after
//!    our claim (it would see our key). So one copy of a key commits, and a committed copy is
//!    never joined by another.
//! 2. **Chains are never cut.** A key at slot `j` needs every slot from its home slot to `j`
//!    to be non-EMPTY. A FREED slot `i` becomes EMPTY only through EMPTYING: the remover locks
//!    it (FREED → EMPTYING, `SeqCst`) and scans forward (`SeqCst` loads) to the next EMPTY
//!    slot, rehashing each key it passes; if no key's chain runs through `i`, it stores EMPTY,
//!    else FREED again (a compare-and-swap). A verification that meets an EMPTYING slot before
//!    its own vetoes the shortening (EMPTYING → FREED, so a stopped remover stops nobody), and
//!    aborts if it meets an EMPTY one there. Either the scan sees the new claim (and keeps the
//!    slot) or the verification sees the EMPTYING or a later word (Dekker again). A later word
//!    may be another key's, claimed after the EMPTY: so a shortening adds one to the slot's
//!    *emptied epoch* (the version's top bits, see [`ctrl`](super::ctrl)), an inserter reads
//!    the epochs of the slots before its own before it claims (in its walk, or just before the
//!    claim) and its verification reads them again, and a different sum means the chain was
//!    cut at the claim: the claim is given up and the insert walks again. Without this, a
//!    claim made past a cut that was refilled before the verification read it would commit,
//!    and a later shortening whose scan stopped at the cut could empty the key's home slot
//!    (then an insert of the key claims it: two copies; found by a three-thread churn test,
//!    modelled in `end_claim_vs_shortenings_and_a_refill_before_it`).
//! 3. **Readers never see another key's value.** Every removal and every reuse changes the
//!    version (EMPTY slots keep theirs), which a seqlock reader validates after copying
//!    (below), and a claimer's Release fence orders its claim before its key and value stores:
//!    a reader that copied a byte of the new key or value sees the new version.
//!
//! Lookups and removals pass NEW and INSERTING copies by (they are not committed, and while a
//! duplicate aborts the committed copy may lie farther on). So `get`, `insert`, `remove` and
//! visits are linearisable per key: a `get` that starts after `remove` returned never sees the
//! removed value, in any process. After each removal the remover tries to shorten the chain at the freed
//! slot and then at the FREED slots before it, looking at most
//! [`SHORTEN_REACH`](super::removal::SHORTEN_REACH) slots ahead, and lowers the probe bound if
//! the removed key was the farthest of its group; an insert reuses the first FREED slot of its
//! chain. Under churn FREED slots stay wherever newer keys' chains run through them, so EMPTY
//! slots grow rare; the probe bound keeps every walk within the distance at which keys actually
//! lie (see [`bounds`](super::bounds)), and nothing ever stops the world.
//!
//! # Visits
//!
//! A visit locks the slot (READY → ACCESSING, or claims a new one as above), copies the value into
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
//! alive, and releases the slot if it is dead ([`recovery`](super::recovery) has the
//! transitions).
//!
//! # Orderings
//!
//! Every unlock bumps the version (commit, release, plain unlock, an aborted insert, a removal
//! and every recovery), even when the value did not change, so that a lock episode's word is
//! never seen again: a monitor that sees the same control word twice knows it saw one lock held
//! all along, and a recoverer's compare-and-swap from an observed word can only hit the
//! episode it observed, never a later lock of the same slot by a process that reused the dead
//! holder's owner id (no ABA).
//!
//! Every store to a control word is Release and every lock is an Acquire compare-and-swap, so
//! any Acquire load of a control word is ordered after the key (and the committed value) that
//! the word describes. A claim that is verified, and the EMPTYING lock, are `SeqCst`, and so
//! are the loads that check for a racing claim or shortening after them: the store-load order
//! that Dekker's argument needs, and that Acquire/Release cannot give.

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::time::Duration;

use crate::layout::{ShmKey, ShmValue};
use crate::process::{Liveness, OwnerId};
use crate::sync::backoff::{BackoffPolicy, Expired, Wait, Waiter};
use crate::sync::primitive::{AtomicU32, AtomicU64, Ordering, fence};
use crate::sync::words;
use crate::table::ctrl::{Ctrl, SlotState};
use crate::table::held::{Held, NewEntry};
use crate::table::probe::{Busy, NEAR_SLOTS, ProbeWalk, Stop};
use crate::table::recovery::{NotRecovered, recover_slot};
use crate::table::removal::{Claim, ClaimEnd};
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

/// An entry counted at its claim (see `removal::publish`), uncounted when dropped unless kept:
/// so an insert whose visitor fails or panics leaves the count as it was.
struct Counted<'h, H: Host + ?Sized> {
    host: &'h H,
    owner: OwnerId,
    kept: bool,
}

impl<H: Host + ?Sized> Drop for Counted<'_, H> {
    #[inline]
    fn drop(&mut self) {
        if !self.kept {
            self.host.count_entries(Some(self.owner), -1);
        }
    }
}

/// What the protocol needs from the table around it when a wait drags on.
pub(crate) trait Host {
    /// Whether `owner`'s process is alive.
    fn liveness(&self, owner: OwnerId) -> Liveness;
    /// This handle's owner id, to take over a slot whose write-back must be rolled back.
    fn me(&self) -> Option<OwnerId>;
    /// Counts a recovery.
    fn recovered(&self, action: RecoveryAction);
    /// Adds `delta` to the table's entry count (see `segment::count`), on `owner`'s shard (or
    /// shard 0's owner for a handle without an owner id).
    fn count_entries(&self, owner: Option<OwnerId>, delta: i64);
}

/// What a waiting operation carries: how it waits, the state of its wait (made only when a
/// wait begins, so an operation that never waits builds nothing), and the host it asks about
/// the holders of the slots it waits on.
pub(crate) struct Waiting<'w, B, H: ?Sized> {
    wait: &'w Wait<B>,
    waiter: Option<Waiter<B>>,
    pub(super) host: &'w H,
}

impl<'w, B: BackoffPolicy, H: ?Sized> Waiting<'w, B, H> {
    #[inline(always)]
    pub(crate) fn new(wait: &'w Wait<B>, host: &'w H) -> Self {
        Waiting { wait, waiter: None, host }
    }

    /// Ends the current wait: the next one starts a new timeout.
    #[inline]
    pub(crate) fn reset(&mut self) {
        self.waiter = None;
    }
}

/// Who locks slots, and how their visits end.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Locker {
    /// The owner id written into each lock.
    pub(crate) owner: OwnerId,
    /// Whether a failed visitor's changes are discarded.
    pub(crate) rollback: bool,
}

/// How the table hashes a key (for a shortener that must find the home slots of the keys it
/// passes).
pub(crate) type HashFn<K> = fn(&K) -> u64;

/// A table's slot addressing, as locals.
#[derive(Clone, Copy)]
pub(super) struct Addressing {
    base: *const AtomicU64,
    pub(super) mask: usize,
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
    pub(super) mask: usize,
    layout: SlotLayout,
    pub(super) hash: HashFn<K>,
    /// Nonzero once a slot of this table has been freed (see [`removal`](super::removal)).
    freed: NonNull<AtomicU64>,
    /// The probe bounds, one word per group of home slots (see [`bounds`](super::bounds)).
    bounds: NonNull<AtomicU32>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K: ShmKey, V: ShmValue> RawTable<K, V> {
    /// The slot layout of a `K → V` table, with or without undo records.
    pub(crate) const fn layout(undo: bool) -> SlotLayout {
        SlotLayout::new(size_of::<K>(), size_of::<V>(), undo)
    }

    /// A view of `capacity` slots (a power of two) in `words`, with `freed`, the table's flag
    /// that a slot was ever freed, and `bounds`, its probe bounds.
    ///
    /// # Safety
    /// The atomics of `words`, `freed` and `bounds` must stay valid (not be freed or unmapped)
    /// for as long as the view is used.
    #[inline]
    pub(crate) unsafe fn new(
        words: &[AtomicU64],
        capacity: usize,
        undo: bool,
        hash: HashFn<K>,
        freed: &AtomicU64,
        bounds: &[AtomicU32],
    ) -> Self {
        let layout = Self::layout(undo);
        assert!(capacity.is_power_of_two());
        assert_eq!(words.len(), capacity * layout.stride, "body size");
        assert!(bounds.len() >= super::bounds::words_for(capacity), "bound words");
        RawTable {
            words: NonNull::from(words).cast(),
            mask: capacity - 1,
            layout,
            hash,
            freed: NonNull::from(freed),
            bounds: NonNull::from(bounds).cast(),
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
        unsafe { self.slot_at(self.addressing(), index) }
    }

    /// The fields a probe loop needs, copied into locals: LLVM cannot keep `self`'s fields in
    /// registers across the Acquire loads of a probe, and reloading them costs a load and a
    /// bounds check per slot.
    #[inline(always)]
    pub(super) fn addressing(&self) -> Addressing {
        Addressing { base: self.words.as_ptr(), mask: self.mask, stride: self.layout.stride }
    }

    /// The flag that a slot of this table was ever freed.
    #[inline(always)]
    pub(crate) fn freed(&self) -> &AtomicU64 {
        // SAFETY: `new`'s caller keeps the flag valid for as long as this view is used.
        unsafe { self.freed.as_ref() }
    }

    /// The probe bounds, one word per group of home slots.
    #[inline(always)]
    pub(crate) fn bounds(&self) -> &[AtomicU32] {
        // SAFETY: `new`'s caller keeps the words valid for as long as this view is used, and
        // `new` checked that there is one per group of `capacity` slots.
        unsafe {
            std::slice::from_raw_parts(
                self.bounds.as_ptr(),
                super::bounds::words_for(self.capacity()),
            )
        }
    }

    /// The control word of slot `index` (masked into range): all that a scan along a chain
    /// needs from most slots, without building the slot's other parts.
    #[inline(always)]
    pub(super) fn ctrl_word(&self, index: usize) -> &AtomicU64 {
        let index = index & self.mask;
        // SAFETY: `index <= mask`, so the slot's first word lies inside the `capacity × stride`
        // atomics that `new` was given.
        let word = unsafe { self.words.as_ptr().add(index * self.layout.stride) };
        // SAFETY: an initialised atomic (see above), which the caller of `new` keeps valid for
        // as long as this view is used.
        unsafe { &*word }
    }

    /// Slot `index` of a table with geometry `g`.
    ///
    /// # Safety
    /// `g` must be this table's geometry and `index <= g.mask`.
    #[inline(always)]
    pub(super) unsafe fn slot_at(&self, g: Addressing, index: usize) -> Slot<'_> {
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

    /// Waits once for slot `index`, last seen as `observed`; first, if the wait has lasted a
    /// stale-check interval, checks whether the holder is alive and recovers the slot if it is
    /// not (then the caller re-reads the slot at once).
    #[cold]
    pub(super) fn wait_on<B: BackoffPolicy, H: Host + ?Sized>(
        &self,
        waiting: &mut Waiting<'_, B, H>,
        index: usize,
        observed: Ctrl,
    ) -> Result<(), RawError> {
        let (wait, host) = (waiting.wait, waiting.host);
        let waiter = waiting.waiter.get_or_insert_with(|| Waiter::new(wait.clone()));
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
        recover_slot(self.slot(index), observed, me, self.freed())
    }

    /// The walk along `key`'s probe chain (see [`ProbeWalk`]).
    #[inline(always)]
    pub(super) fn probe<'k>(&self, key: &'k K, hash: u64) -> ProbeWalk<'_, 'k, K, V> {
        ProbeWalk::new(self, self.addressing(), key, hash)
    }

    /// Copies the committed value of `slot`, seen as `c` (READY or ACCESSING), and checks that
    /// no write-back overlapped the copy (Boehm's seqlock reader): the value, or the word that
    /// shows the overlap.
    #[inline(always)]
    pub(super) fn read_validated(slot: Slot<'_>, c: Ctrl) -> Result<V, Ctrl> {
        let value = words::load::<V>(slot.value);
        // Acquire: pairs with the writer's fence(Release) before its value stores (Boehm's
        // seqlock): if the copy saw any of them, the load below sees WRITING or a newer version.
        fence(Ordering::Acquire);
        let again = Ctrl(slot.ctrl.load(Ordering::Relaxed));
        if again.is_readable() && again.version() == c.version() { Ok(value) } else { Err(again) }
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
    /// the key's committed entry, EMPTY, FREED slots), with no waiting and a small result, so
    /// that inlined into a loop of lookups it keeps everything in registers. A lookup that
    /// stored to memory would hold store-buffer entries until its cache miss retired, and the
    /// loop could not overlap the misses of consecutive lookups. Anything that needs waiting is
    /// `Slow`.
    ///
    /// It looks at the first few slots only ([`ProbeWalk::step_near`]): a longer walk, which
    /// reads the probe bound, is the slow path's.
    ///
    /// [`ProbeWalk::step_near`]: super::probe::ProbeWalk::step_near
    #[inline(always)]
    pub(crate) fn get_fast(&self, key: &K, hash: u64) -> FastGet<V> {
        match self.probe(key, hash).step_near() {
            Ok(Some(Stop::Empty { .. } | Stop::Exhausted)) => FastGet::Absent,
            Ok(Some(Stop::Mine { index, slot, ctrl })) if ctrl.is_readable() => {
                match Self::read_validated(slot, ctrl) {
                    Ok(value) => FastGet::Found(index, value),
                    Err(_) => FastGet::Slow,
                }
            }
            // A table no larger than the near slots was looked at whole.
            Ok(None) if self.mask < NEAR_SLOTS => FastGet::Absent,
            // Being inserted with our tag, being written back, an uncommitted copy (NEW) that
            // the slow path passes, or a chain longer than the near slots.
            Err(Busy { .. }) | Ok(Some(Stop::Mine { .. }) | None) => FastGet::Slow,
        }
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
        let mut waiting = Waiting::new(wait, host);
        let mut walk = self.probe(key, hash);
        loop {
            let (index, slot, c) = match walk.next_committed() {
                Stop::Mine { index, slot, ctrl } => (index, slot, ctrl),
                _ => return Ok(None),
            };
            match c.state() {
                // Not committed: the key is absent here, and may be committed farther on (while
                // this copy, a duplicate, aborts).
                SlotState::New => walk.pass(),
                SlotState::Ready | SlotState::Accessing => match Self::read_validated(slot, c) {
                    Ok(value) => return Ok(Some((index, value))),
                    // A write-back overlapped the copy: wait, then read the slot again.
                    Err(again) => self.wait_on(&mut waiting, index, again)?,
                },
                _ => self.wait_on(&mut waiting, index, c)?, // WRITING
            }
        }
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
    ///
    /// The common cases first, inline and without a loop of their own: the key READY among the
    /// near slots, or an EMPTY slot there that an insert claims (as [`get_fast`] does for a
    /// lookup). Anything else (a longer chain, a held slot, a lost race) walks again from the
    /// home slot out of line ([`visit_walk`]). With the general walk inline, its state lived on
    /// the stack across its loop, and an insert into a fresh table ran 193 instructions where
    /// the walk before removal existed ran 112 (25 % fewer inserts per second).
    ///
    /// [`get_fast`]: Self::get_fast
    /// [`visit_walk`]: Self::visit_walk
    #[inline]
    pub(crate) fn visit<B, H, F, R>(
        &self,
        key: &K,
        hash: u64,
        mode: AccessMode,
        locker: Locker,
        waiting: &mut Waiting<'_, B, H>,
        visitor: F,
    ) -> Result<Result<Visited, R::Error>, RawError>
    where
        B: BackoffPolicy,
        H: Host + ?Sized,
        F: FnOnce(usize, &mut V, bool) -> R,
        R: VisitResult,
    {
        match self.probe(key, hash).step_near() {
            Ok(Some(Stop::Mine { index, slot, ctrl })) if ctrl.is(SlotState::Ready) => {
                if let Some(locked) = self.lock_found(index, slot, ctrl, locker, waiting)? {
                    return Ok(self.run_existing(index, slot, locked, visitor));
                }
            }
            Ok(Some(Stop::Empty { .. })) if mode == AccessMode::AccessExist => {
                return Ok(Ok(Visited::NotFound));
            }
            // The same four outcomes as in `visit_walk`, written out in both: a helper that
            // dispatched them and handed the visitor back on a lost race cost an insert 13 more
            // instructions (callgrind, 1M inserts into 2^21 slots: 168 against 155 per insert).
            Ok(Some(Stop::Empty { index, slot, ctrl })) => {
                match self.claim_empty(key, hash, index, slot, ctrl, locker.owner, waiting.host) {
                    ClaimEnd::Won(new) => {
                        return Ok(self.run_new(index, slot, new, waiting.host, visitor));
                    }
                    ClaimEnd::Lost => {} // walk again
                    ClaimEnd::Cut => {
                        return self.insert_in_chain(key, hash, locker, waiting, visitor);
                    }
                    ClaimEnd::Check(new, epochs) => {
                        return self
                            .check_end(key, hash, index, new, epochs, locker, waiting, visitor);
                    }
                }
            }
            // A held slot, a lost race or a longer chain.
            _ => {}
        }
        self.visit_walk(key, hash, mode, locker, waiting, visitor)
    }

    /// Claims the EMPTY slot `index` (`slot`, seen as `seen`) where a walk for absent `key`
    /// ended: its home slot with a plain claim ([`claim_home`](Self::claim_home)), a slot
    /// farther on with the checks of [`claim_end`](Self::claim_end).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn claim_empty<H: Host + ?Sized>(
        &self,
        key: &K,
        hash: u64,
        index: usize,
        slot: Slot<'_>,
        seen: Ctrl,
        owner: OwnerId,
        host: &H,
    ) -> ClaimEnd {
        if index == self.home(hash) {
            match self.claim_home(key, hash, slot, seen, owner, host) {
                Some(new) => ClaimEnd::Won(new),
                None => ClaimEnd::Lost,
            }
        } else {
            self.claim_end(key, hash, index, slot, seen, owner, host)
        }
    }

    /// [`visit`](Self::visit)'s general walk from the home slot: waits on held slots
    /// (recovering dead holders), walks again after a lost race, and reads the probe bound past
    /// the near slots.
    #[inline(never)]
    fn visit_walk<B, H, F, R>(
        &self,
        key: &K,
        hash: u64,
        mode: AccessMode,
        locker: Locker,
        waiting: &mut Waiting<'_, B, H>,
        visitor: F,
    ) -> Result<Result<Visited, R::Error>, RawError>
    where
        B: BackoffPolicy,
        H: Host + ?Sized,
        F: FnOnce(usize, &mut V, bool) -> R,
        R: VisitResult,
    {
        let mut walk = self.probe(key, hash);
        loop {
            match walk.next(waiting)? {
                Stop::Mine { index, slot, ctrl } => {
                    match self.lock_found(index, slot, ctrl, locker, waiting)? {
                        Some(locked) => return Ok(self.run_existing(index, slot, locked, visitor)),
                        None => continue, // the walk reads the slot again
                    }
                }
                Stop::Empty { .. } | Stop::Exhausted if mode == AccessMode::AccessExist => {
                    return Ok(Ok(Visited::NotFound));
                }
                // Absent: claim the EMPTY slot that ends the chain, and verify the claim inline
                // in the common case (see `claim_end`), else out of line.
                Stop::Empty { index, slot, ctrl } => {
                    match self.claim_empty(key, hash, index, slot, ctrl, locker.owner, waiting.host)
                    {
                        ClaimEnd::Won(new) => {
                            return Ok(self.run_new(index, slot, new, waiting.host, visitor));
                        }
                        ClaimEnd::Lost => continue, // the walk reads the slot again
                        ClaimEnd::Cut => {
                            return self.insert_in_chain(key, hash, locker, waiting, visitor);
                        }
                        ClaimEnd::Check(new, epochs) => {
                            return self.check_end(
                                key, hash, index, new, epochs, locker, waiting, visitor,
                            );
                        }
                    }
                }
                Stop::Exhausted => {
                    return self.insert_in_chain(key, hash, locker, waiting, visitor);
                }
            }
        }
    }

    /// Finishes the claim of the EMPTY slot `index` (NEW as `new`) that `claim_end` could not
    /// verify inline: keeps it if the full verification passes and no FREED slot lies before
    /// it; else frees it again and inserts the key through
    /// [`insert_in_chain`](Self::insert_in_chain) (which reuses the FREED slot).
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn check_end<B, H, F, R>(
        &self,
        key: &K,
        hash: u64,
        index: usize,
        new: Ctrl,
        epochs_before: u64,
        locker: Locker,
        waiting: &mut Waiting<'_, B, H>,
        visitor: F,
    ) -> Result<Result<Visited, R::Error>, RawError>
    where
        B: BackoffPolicy,
        H: Host + ?Sized,
        F: FnOnce(usize, &mut V, bool) -> R,
        R: VisitResult,
    {
        let slot = self.slot(index);
        let reuse = self.first_free(self.home(hash), index).is_some();
        let verified = if reuse {
            Ok(None)
        } else {
            // `mine` was EMPTY, so the verification stops there and needs no reach.
            let reach = usize::MAX;
            let owner = locker.owner;
            self.finish_claim(
                key,
                hash,
                index,
                slot,
                true,
                reach,
                epochs_before,
                new,
                owner,
                waiting,
            )
        };
        match verified? {
            Some(new) => Ok(self.run_new(index, slot, new, waiting.host, visitor)),
            None => {
                if reuse {
                    let home = self.home(hash);
                    self.abandon_claim(index, slot, new, home, locker.owner, waiting.host);
                }
                self.insert_in_chain(key, hash, locker, waiting, visitor)
            }
        }
    }

    /// The insert of an absent key whose home slot is taken: reuses the first FREED slot of its
    /// chain or claims the EMPTY one that ends it, and verifies the claim (see
    /// [`claim_in_chain`](Self::claim_in_chain)); walks again from the home slot whenever
    /// another process got there first, and visits the key if it finds it after all. Out of
    /// line, and a loop of its own: the inline path of [`visit`](Self::visit) then has nothing
    /// to carry from one round to the next, and stays short enough for consecutive inserts to
    /// overlap their cache misses (a walk that can restart costs the inline path a fifth of its
    /// speed).
    #[inline(never)]
    fn insert_in_chain<B, H, F, R>(
        &self,
        key: &K,
        hash: u64,
        locker: Locker,
        waiting: &mut Waiting<'_, B, H>,
        visitor: F,
    ) -> Result<Result<Visited, R::Error>, RawError>
    where
        B: BackoffPolicy,
        H: Host + ?Sized,
        F: FnOnce(usize, &mut V, bool) -> R,
        R: VisitResult,
    {
        'round: loop {
            match self.claim_in_chain(key, hash, locker.owner, waiting)? {
                Claim::Won(index, new) => {
                    return Ok(self.run_new(index, self.slot(index), new, waiting.host, visitor));
                }
                Claim::NoRoom => return Err(RawError::Full),
                Claim::Lost => {}
            }
            // The key may be there after all: walk to it (or to where it would go).
            let mut walk = self.probe(key, hash);
            loop {
                match walk.next(waiting)? {
                    Stop::Mine { index, slot, ctrl } => {
                        if let Some(locked) = self.lock_found(index, slot, ctrl, locker, waiting)? {
                            return Ok(self.run_existing(index, slot, locked, visitor));
                        }
                    }
                    Stop::Empty { .. } | Stop::Exhausted => continue 'round,
                }
            }
        }
    }

    /// Locks the key's slot that a walk stopped on (`ctrl`, any keyed state) for a visit:
    /// `Some(ACCESSING word)` if it was READY and our compare-and-swap took it; `None` after
    /// waiting on a held slot (NEW, ACCESSING, WRITING) or losing the race, for the walk to
    /// read the slot again (a NEW copy that aborted is FREED by then).
    #[inline(always)]
    fn lock_found<B: BackoffPolicy, H: Host + ?Sized>(
        &self,
        index: usize,
        slot: Slot<'_>,
        c: Ctrl,
        locker: Locker,
        waiting: &mut Waiting<'_, B, H>,
    ) -> Result<Option<(Ctrl, bool)>, RawError> {
        if c.is(SlotState::Ready) {
            let locked = c.locked(SlotState::Accessing, locker.owner);
            // Acquire: pairs with the Release store of READY, so the value we copy is the
            // committed one.
            let won = slot
                .ctrl
                .compare_exchange(c.0, locked.0, Ordering::Acquire, Ordering::Relaxed)
                .is_ok();
            return Ok(won.then_some((locked, locker.rollback)));
        }
        self.wait_on(waiting, index, c)?;
        Ok(None)
    }

    /// Runs the visitor of an insert on a zeroed value in the slot it claimed (NEW), and
    /// commits; a visitor that fails frees the slot (and the chain is shortened there).
    #[inline]
    fn run_new<H, F, R>(
        &self,
        index: usize,
        slot: Slot<'_>,
        ctrl: Ctrl,
        host: &H,
        visitor: F,
    ) -> Result<Visited, R::Error>
    where
        H: Host + ?Sized,
        F: FnOnce(usize, &mut V, bool) -> R,
        R: VisitResult,
    {
        let owner = ctrl.owner().expect("a NEW slot names its holder");
        // Declared first, so dropped last: after a panicking visitor, the slot is FREED (by the
        // entry's drop) before it is uncounted.
        let mut counted = Counted { host, owner, kept: false };
        let mut entry = NewEntry {
            slot,
            ctrl,
            value: crate::bytes::zeroed(),
            committed: false,
            freed: self.freed(),
        };
        if let Err(e) = visitor(index, &mut entry.value, true).into_result() {
            // Our key, still ours to read: where it came from, to lower the probe bound that
            // our claim may have raised.
            let home = (self.hash)(&words::load::<K>(slot.key)) as usize & self.mask;
            drop(entry); // FREED
            drop(counted); // uncounted
            self.shorten(index, owner);
            self.lower_reach_after_removal(home, index.wrapping_sub(home) & self.mask);
            return Err(e);
        }
        entry.commit();
        counted.kept = true;
        Ok(Visited::Created)
    }

    #[inline]
    fn run_existing<F, R>(
        &self,
        index: usize,
        slot: Slot<'_>,
        (ctrl, rollback): (Ctrl, bool),
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

    /// Visits every committed entry in slot order from slot `start` on, locking each in turn. `waiter` bounds the
    /// wait on each locked slot (it is reset after each slot).
    pub(crate) fn travel<B, H, F, R>(
        &self,
        start: usize,
        locker: Locker,
        waiting: &mut Waiting<'_, B, H>,
        mut visitor: F,
    ) -> RawTravel
    where
        B: BackoffPolicy,
        H: Host + ?Sized,
        F: FnMut(usize, &K, &mut V) -> R,
        R: TravelControl,
    {
        let Locker { owner, rollback } = locker;
        let mut visited = 0;
        for index in start.min(self.capacity())..self.capacity() {
            let slot = self.slot(index);
            waiting.reset();
            loop {
                // Acquire: pairs with the Release store of READY (the committed value).
                let c = Ctrl(slot.ctrl.load(Ordering::Acquire));
                match c.state() {
                    SlotState::Empty | SlotState::Freed | SlotState::Emptying => break,
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
                        if let Err(RawError::Busy { waited, .. }) = self.wait_on(waiting, index, c)
                        {
                            return RawTravel::TimedOut { slot: index, visited, ctrl: c, waited };
                        }
                    }
                }
            }
        }
        RawTravel::Completed { visited }
    }

    /// A lock-free read of slot `index`: its key and committed value, `None` if it holds no
    /// committed entry (EMPTY, FREED, being inserted or emptied). Waits, under `waiting`,
    /// only while a write-back is copying a new value in (recovering a dead writer's slot).
    pub(crate) fn read_slot<B: BackoffPolicy, H: Host + ?Sized>(
        &self,
        index: usize,
        waiting: &mut Waiting<'_, B, H>,
    ) -> Result<Option<(K, V)>, RawError> {
        let slot = self.slot(index);
        loop {
            // Acquire: pairs with the Release stores that publish a key (NEW) and commit a value
            // (READY), so the words copied below are at least those.
            let c = Ctrl(slot.ctrl.load(Ordering::Acquire));
            if c.is_readable() {
                let key = words::load::<K>(slot.key);
                match Self::read_validated(slot, c) {
                    Ok(value) => return Ok(Some((key, value))),
                    // A write-back overlapped the copy: wait, then read the slot again.
                    Err(again) => self.wait_on(waiting, index, again)?,
                }
            } else if c.is(SlotState::Writing) {
                self.wait_on(waiting, index, c)?;
            } else {
                return Ok(None); // nothing committed here
            }
        }
    }

    /// Whether any slot is locked by `owner` (before its process-table entry is reused).
    #[cfg_attr(shmap_loom, allow(dead_code))] // under loom the slots are not in the segment
    pub(crate) fn references_owner(&self, owner: OwnerId) -> bool {
        (0..self.capacity()).any(|i| self.ctrl(i).owner() == Some(owner))
    }
}
