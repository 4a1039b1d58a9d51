//! [`SpmcRing`] and [`MpmcRing`]: Dmitry Vyukov's bounded MPMC queue, with cells claimed by
//! owner id so that a process that dies mid-operation can be recovered from.
//!
//! Vyukov's queue ("Bounded MPMC queue", 1024cores.net) gives each cell a sequence number:
//! a producer takes position `p` when the cell is ready for `p`, writes the element and marks
//! the cell full; a consumer takes a full cell, copies the element out and marks the cell ready
//! for `p + capacity`. Producers race for positions with a compare-and-swap on `tail`,
//! consumers on `head`.
//!
//! shmap moves the race into the cell ([`cell`](super::cell) has the word's layout): a
//! producer claims position `p` by swapping its cell from FREE to WRITING with its owner id, a
//! consumer by swapping it from FULL to READING. `tail` and `head` become hints that every
//! thread helps along after it sees a position taken. The extra state buys recovery: the owner
//! of a WRITING or READING cell is known, and whoever waits on such a cell long enough checks
//! whether that owner is alive:
//!
//! - WRITING by a dead producer: the push never returned, so the position is skipped (the cell
//!   becomes FREE for the next lap) and counted in [`RingStats::dropped_pushes`].
//! - READING by a dead consumer: the pop never returned, so the element was delivered to no one.
//!   The cell becomes FULL for the next lap: the element is delivered again, once, to whichever
//!   consumer reaches that position, and counted in [`RingStats::redelivered`].
//!
//! The SPMC ring has one producer (a role): it owns `tail`, writes a FREE cell and publishes it
//! with one store, so it never leaves a WRITING cell behind; its consumers are MPMC consumers.

use std::fmt;

use crate::error::OpenError;
use crate::layout::ShmValue;
use crate::process::{Liveness, OwnerId};
use crate::ring::cell::{Cell, CellState, Lap};
use crate::ring::{
    Attempt, Claim, RingCore, RingError, RingOptions, RingRole, RingStats, StaleCheck, ctl,
    ring_common,
};
use crate::segment::{Backing, CreateMode, Segment, StructureKind};
use crate::sync::backoff::Wait;
use crate::sync::primitive::{AtomicU64, Ordering};
use crate::sync::words;

/// A multi-producer multi-consumer ring buffer in shared memory.
///
/// Any number of threads in any number of processes push and pop; each element is popped
/// exactly once, and elements pushed by one producer are popped in the order it pushed them
/// (except one redelivered after its consumer died, which comes one lap late).
///
/// # Examples
///
/// ```
/// use shmap::ring::MpmcRing;
///
/// let ring = MpmcRing::<u32>::heap(256)?;
/// std::thread::scope(|s| {
///     for t in 0..2 {
///         let ring = &ring;
///         s.spawn(move || (0..100).for_each(|i| ring.push(&(t * 1000 + i)).unwrap()));
///     }
/// });
/// let mut popped: Vec<u32> = std::iter::from_fn(|| ring.try_pop().ok()).collect();
/// popped.sort();
/// assert_eq!(popped.len(), 200);
/// assert_eq!((popped[0], popped[199]), (0, 1099));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MpmcRing<T: ShmValue> {
    pub(super) core: RingCore<T>,
}

/// The consumer side that [`MpmcRing`] and [`SpmcRing`] share: any number of consumers, in any
/// number of processes, claim cells by compare-and-swap.
macro_rules! shared_consumers {
    ($ring:ident) => {
        impl<T: ShmValue> $ring<T> {
            /// Pops the oldest element if there is one; [`RingError::Empty`] otherwise.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use shmap::ring::{RingError, ", stringify!($ring), "};")]
            ///
            #[doc = concat!("let ring = ", stringify!($ring), "::<u64>::heap(8)?;")]
            /// assert!(matches!(ring.try_pop(), Err(RingError::Empty)));
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            #[inline]
            pub fn try_pop(&self) -> Result<T, RingError> {
                try_pop(&self.core)
            }

            /// Pops the oldest element, waiting while the ring is empty, up to the ring's
            /// timeout.
            ///
            /// # Examples
            ///
            /// ```
            /// use shmap::Backing;
            #[doc = concat!("use shmap::ring::{RingError, ", stringify!($ring), "};")]
            /// use std::time::Duration;
            ///
            #[doc = concat!("let ring = ", stringify!($ring), "::<u64>::options()")]
            ///     .capacity(8)
            ///     .timeout(Duration::from_millis(5)) // the ring's timeout, for `pop`
            ///     .open(&Backing::Heap)?;
            /// assert!(matches!(ring.pop(), Err(RingError::Timeout { .. })), "empty: waits, then fails");
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn pop(&self) -> Result<T, RingError> {
                self.pop_with(self.core.wait)
            }

            /// Pops the oldest element, waiting while the ring is empty as `wait` says.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use shmap::{Wait, ring::{RingError, ", stringify!($ring), "}};")]
            /// use std::time::Duration;
            ///
            #[doc = concat!("let ring = ", stringify!($ring), "::<u64>::heap(8)?;")]
            /// let r = ring.pop_with(Wait::timeout(Duration::from_millis(5)));
            /// assert!(matches!(r, Err(RingError::Timeout { .. })));
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn pop_with(&self, wait: Wait) -> Result<T, RingError> {
                pop_with(&self.core, wait)
            }

            /// Recovers every cell claimed by a process that has died (see the [module
            /// documentation](crate::ring)) and returns how many it recovered. Waiting
            /// operations do this on their own; a monitor process can call it to clear cells
            /// nobody is waiting on.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use shmap::ring::", stringify!($ring), ";")]
            ///
            #[doc = concat!("let ring = ", stringify!($ring), "::<u64>::heap(8)?;")]
            /// assert_eq!(ring.recover(), 0, "no process died holding a cell");
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn recover(&self) -> usize {
                recover_all(&self.core)
            }
        }
    };
}

shared_consumers!(MpmcRing);
shared_consumers!(SpmcRing);

ring_common!(MpmcRing, StructureKind::MpmcRing, true);

impl<T: ShmValue> MpmcRing<T> {
    /// Pushes `value` if there is room; [`RingError::Full`] otherwise.
    #[inline]
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::{MpmcRing, RingError};
    ///
    /// let ring = MpmcRing::<u64>::heap(1)?;
    /// ring.try_push(&1)?;
    /// assert!(matches!(ring.try_push(&2), Err(RingError::Full)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_push(&self, value: &T) -> Result<(), RingError> {
        let me = self.core.owner()?;
        match push_shared(&self.core, value, me, StaleCheck::NotYet) {
            Attempt::Done(result) => result,
            Attempt::NotYet | Attempt::Busy => Err(RingError::Full),
        }
    }

    /// Pushes `value`, waiting while the ring is full, up to the ring's timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::MpmcRing;
    ///
    /// let ring = MpmcRing::<u64>::heap(4)?;
    /// ring.push(&5)?;
    /// assert_eq!(ring.pop()?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push(&self, value: &T) -> Result<(), RingError> {
        self.push_with(value, self.core.wait)
    }

    /// Pushes `value`, waiting while the ring is full as `wait` says.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Wait, ring::{MpmcRing, RingError}};
    /// use std::time::Duration;
    ///
    /// let ring = MpmcRing::<u64>::heap(1)?;
    /// ring.push(&1)?;
    /// let r = ring.push_with(&2, Wait::timeout(Duration::from_millis(5)));
    /// assert!(matches!(r, Err(RingError::Timeout { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_with(&self, value: &T, wait: Wait) -> Result<(), RingError> {
        let me = self.core.owner()?;
        self.core.block_on(self.core.space(), &wait, true, |check| {
            push_shared(&self.core, value, me, check)
        })
    }

    /// Makes the cell of `position` look claimed by a dead process (pid 0), as a producer
    /// (`writing`) or a consumer killed mid-operation, and moves the matching hint past it.
    /// Only for `ring/loom_tests.rs`.
    #[cfg(all(test, shmap_loom))]
    pub(crate) fn loom_plant_dead_claim(&self, position: u64, writing: bool) {
        let dead = crate::process::ProcessIdentity {
            pid: 0,
            ..crate::process::ProcessIdentity::current().unwrap()
        };
        let owner = self.core.segment.processes().register(&dead, &|_| false).expect("an entry");
        let state = if writing { CellState::Writing } else { CellState::Reading };
        let (seq, _) = self.core.cell(position);
        // Relaxed: planted before the model spawns its threads, which the spawn orders after.
        seq.store(Cell::new(self.core.lap(position), state, Some(owner)).0, Ordering::Relaxed);
        let hint = if writing { ctl::TAIL } else { ctl::HEAD };
        self.core.control(hint).store(position + 1, Ordering::Relaxed);
    }
}

/// A single-producer multi-consumer ring buffer in shared memory.
///
/// The producer is a role ([`producer`](Self::producer)): its pushes are wait-free (no
/// compare-and-swap). Any number of threads in any number of processes pop; each element is
/// popped exactly once, in push order (except one redelivered after its consumer died).
///
/// # Examples
///
/// ```
/// use shmap::ring::SpmcRing;
///
/// let ring = SpmcRing::<u64>::heap(16)?;
/// let mut tx = ring.producer()?;
/// for i in 0..10 {
///     tx.try_push(&i)?;
/// }
/// let sum: u64 = std::thread::scope(|s| {
///     let workers: Vec<_> =
///         (0..2).map(|_| s.spawn(|| std::iter::from_fn(|| ring.try_pop().ok()).sum::<u64>())).collect();
///     workers.into_iter().map(|w| w.join().unwrap()).sum()
/// });
/// assert_eq!(sum, 45);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SpmcRing<T: ShmValue> {
    pub(super) core: RingCore<T>,
}

ring_common!(SpmcRing, StructureKind::SpmcRing, true);

impl<T: ShmValue> SpmcRing<T> {
    /// Claims the producer role. Fails with [`RingError::RoleTaken`] while another handle (in
    /// any process) holds it; a holder whose process died is taken over.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::{RingError, SpmcRing};
    ///
    /// let ring = SpmcRing::<u64>::heap(8)?;
    /// let _tx = ring.producer()?;
    /// assert!(matches!(ring.producer(), Err(RingError::RoleTaken { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn producer(&self) -> Result<SpmcProducer<'_, T>, RingError> {
        let claim = self.core.claim(RingRole::Producer)?;
        // Acquire: pairs with the previous holder's Release store of `tail`.
        let tail = self.core.control(ctl::TAIL).load(Ordering::Acquire);
        Ok(SpmcProducer { ring: self, claim, tail })
    }
}

/// The producer of an [`SpmcRing`]. Holds the role until dropped.
///
/// # Examples
///
/// ```
/// use shmap::ring::{RingError, SpmcRing};
///
/// let ring = SpmcRing::<u8>::heap(2)?;
/// let mut tx = ring.producer()?;
/// tx.push(&1)?;
/// tx.push(&2)?;
/// assert!(matches!(tx.try_push(&3), Err(RingError::Full)));
/// assert_eq!(ring.pop()?, 1);
/// tx.try_push(&3)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SpmcProducer<'r, T: ShmValue> {
    ring: &'r SpmcRing<T>,
    claim: Claim,
    /// The next position to publish.
    tail: u64,
}

impl<T: ShmValue> SpmcProducer<'_, T> {
    /// Pushes `value` if there is room; [`RingError::Full`] otherwise.
    #[inline]
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::{RingError, SpmcRing};
    ///
    /// let ring = SpmcRing::<u64>::heap(1)?;
    /// let mut tx = ring.producer()?;
    /// tx.try_push(&1)?;
    /// assert!(matches!(tx.try_push(&2), Err(RingError::Full)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_push(&mut self, value: &T) -> Result<(), RingError> {
        match self.attempt(value, StaleCheck::NotYet) {
            Attempt::Done(result) => result,
            Attempt::NotYet | Attempt::Busy => Err(RingError::Full),
        }
    }

    /// Pushes `value`, waiting while the ring is full, up to the ring's timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::SpmcRing;
    ///
    /// let ring = SpmcRing::<u64>::heap(4)?;
    /// ring.producer()?.push(&6)?;
    /// assert_eq!(ring.pop()?, 6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push(&mut self, value: &T) -> Result<(), RingError> {
        let wait = self.ring.core.wait;
        self.push_with(value, wait)
    }

    /// Pushes `value`, waiting while the ring is full as `wait` says.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Wait, ring::{RingError, SpmcRing}};
    /// use std::time::Duration;
    ///
    /// let ring = SpmcRing::<u64>::heap(1)?;
    /// let mut tx = ring.producer()?;
    /// tx.push(&1)?;
    /// let r = tx.push_with(&2, Wait::timeout(Duration::from_millis(5)));
    /// assert!(matches!(r, Err(RingError::Timeout { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_with(&mut self, value: &T, wait: Wait) -> Result<(), RingError> {
        let core = &self.ring.core;
        core.block_on(core.space(), &wait, true, |check| self.attempt(value, check))
    }

    fn attempt(&mut self, value: &T, check: StaleCheck) -> Attempt<()> {
        if let Err(e) = self.claim.check() {
            return Attempt::Done(Err(e));
        }
        let core = &self.ring.core;
        loop {
            let position = self.tail;
            let lap = core.lap(position);
            let (seq, data) = core.cell(position);
            // Acquire: pairs with the consumer's Release store of FREE, so
            // its copy of the previous element happens before our writes.
            let c = Cell(seq.load(Ordering::Acquire));
            match (c.against(lap), c.state()) {
                (Lap::Same, CellState::Free) => {
                    words::store(data, value);
                    // Release: publishes the element; pairs with consumers' Acquire loads.
                    seq.store(Cell::new(lap, CellState::Full, None).0, Ordering::Release);
                    self.advance();
                    core.notify_items();
                    return Attempt::Done(Ok(()));
                }
                // A consumer republished a dead consumer's element at this position (see
                // `recover`): the position is used; take the next one.
                (Lap::Same, _) => self.advance(),
                (Lap::Previous, CellState::Reading) => {
                    if !recover_if_dead(core, seq, c, check) {
                        return Attempt::Busy;
                    }
                }
                (Lap::Previous, _) => return Attempt::NotYet,
                // Republished and consumed already: take the next position.
                (Lap::Ahead, _) => self.advance(),
                (Lap::Other, _) => return Attempt::NotYet,
            }
        }
    }

    fn advance(&mut self) {
        self.tail += 1;
        // Release: a successor holder of the role continues from here; pairs with the Acquire
        // load in `SpmcRing::producer`.
        self.ring.core.control(ctl::TAIL).store(self.tail, Ordering::Release);
    }

    /// The ring this handle pushes to.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::SpmcRing;
    ///
    /// let ring = SpmcRing::<u64>::heap(8)?;
    /// let tx = ring.producer()?;
    /// assert_eq!(tx.ring().capacity(), 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ring(&self) -> &SpmcRing<T> {
        self.ring
    }
}

impl<T: ShmValue> Drop for SpmcProducer<'_, T> {
    fn drop(&mut self) {
        if self.claim.check().is_ok() {
            self.ring.core.role(RingRole::Producer).release(self.claim.me);
        }
    }
}

impl<T: ShmValue> fmt::Debug for SpmcProducer<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpmcProducer").field("tail", &self.tail).finish_non_exhaustive()
    }
}

/// Moves the hint `word` from `position` to the next one, unless someone already did.
#[inline]
fn help(word: &AtomicU64, position: u64) {
    // Relaxed: the hints only say where to look; the cells' words carry the synchronisation.
    let _ = word.compare_exchange(position, position + 1, Ordering::Relaxed, Ordering::Relaxed);
}

/// One attempt of an MPMC push: claim the cell at `tail`, write, publish.
fn push_shared<T: ShmValue>(
    core: &RingCore<T>,
    value: &T,
    me: OwnerId,
    check: StaleCheck,
) -> Attempt<()> {
    let tail = core.control(ctl::TAIL);
    loop {
        let position = tail.load(Ordering::Relaxed);
        let lap = core.lap(position);
        let (seq, data) = core.cell(position);
        // Acquire: pairs with the consumer's Release store of FREE.
        let c = Cell(seq.load(Ordering::Acquire));
        match (c.against(lap), c.state()) {
            (Lap::Same, CellState::Free) => {
                let writing = Cell::new(lap, CellState::Writing, Some(me));
                // Acquire: as the load above (the consumer's copy of the previous element
                // happens before our writes).
                if seq
                    .compare_exchange(c.0, writing.0, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    help(tail, position);
                    words::store(data, value);
                    // Release: publishes the element; pairs with consumers' Acquire loads.
                    seq.store(Cell::new(lap, CellState::Full, None).0, Ordering::Release);
                    core.notify_items();
                    return Attempt::Done(Ok(()));
                }
            }
            // Taken by another producer (or republished by a recovery): help the hint along.
            (Lap::Same, _) => help(tail, position),
            // The cell still serves the previous lap: the ring is full at this position, unless
            // the process working on it died.
            (Lap::Previous, CellState::Reading | CellState::Writing) => {
                if !recover_if_dead(core, seq, c, check) {
                    return Attempt::Busy;
                }
            }
            (Lap::Previous, _) => {
                // FULL: not consumed yet. Look again only if the hint moved meanwhile.
                if tail.load(Ordering::Relaxed) == position {
                    return Attempt::NotYet;
                }
            }
            // The position is done with (it held an element republished by a recovery, which
            // has been consumed already): help the hint along.
            (Lap::Ahead, _) => help(tail, position),
            // A stale read: look again.
            (Lap::Other, _) => {}
        }
    }
}

/// One non-blocking pop, shared by SPMC and MPMC consumers.
#[inline]
fn try_pop<T: ShmValue>(core: &RingCore<T>) -> Result<T, RingError> {
    let me = core.owner()?;
    match pop_attempt(core, me, StaleCheck::NotYet) {
        Attempt::Done(result) => result,
        Attempt::NotYet | Attempt::Busy => Err(RingError::Empty),
    }
}

fn pop_with<T: ShmValue>(core: &RingCore<T>, wait: Wait) -> Result<T, RingError> {
    let me = core.owner()?;
    core.block_on(core.items(), &wait, false, |check| pop_attempt(core, me, check))
}

/// One attempt of a pop: claim the cell at `head`, copy, free.
fn pop_attempt<T: ShmValue>(core: &RingCore<T>, me: OwnerId, check: StaleCheck) -> Attempt<T> {
    let head = core.control(ctl::HEAD);
    loop {
        let position = head.load(Ordering::Relaxed);
        let lap = core.lap(position);
        let (seq, data) = core.cell(position);
        // Acquire: pairs with the producer's Release store of FULL, so the
        // element's words are visible.
        let c = Cell(seq.load(Ordering::Acquire));
        match (c.against(lap), c.state()) {
            (Lap::Same, CellState::Full) => {
                let reading = Cell::new(lap, CellState::Reading, Some(me));
                // Acquire: as the load above.
                if seq
                    .compare_exchange(c.0, reading.0, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    help(head, position);
                    let value = words::load::<T>(data);
                    // Release: frees the cell for the next lap; our copy happens before the next
                    // producer's writes, which Acquire this.
                    seq.store(Cell::new(lap + 1, CellState::Free, None).0, Ordering::Release);
                    core.notify_space();
                    return Attempt::Done(Ok(value));
                }
            }
            // Another consumer has it: help the hint along.
            (Lap::Same, CellState::Reading) => help(head, position),
            // Nothing pushed at this position yet.
            (Lap::Same, CellState::Free) => {
                if head.load(Ordering::Relaxed) == position {
                    return Attempt::NotYet;
                }
            }
            // A producer is writing the element: wait for it, unless it died.
            (Lap::Same, CellState::Writing) => {
                if !recover_if_dead(core, seq, c, check) {
                    return Attempt::Busy;
                }
            }
            // The position is done with: the hint is stale.
            (Lap::Ahead, _) => help(head, position),
            // The cell still holds the previous lap: a consumer is copying it out, so nothing
            // is pushed here yet; if that consumer died, its element is republished here.
            (Lap::Previous, CellState::Reading) => {
                if !recover_if_dead(core, seq, c, check) {
                    return Attempt::Busy;
                }
            }
            (Lap::Previous | Lap::Other, _) => {
                if head.load(Ordering::Relaxed) == position {
                    return Attempt::NotYet;
                }
            }
        }
    }
}

/// If `observed` (a cell's word) is claimed by a process that is dead,
/// and it is time to `check`, recovers the cell and returns true (the caller looks again).
fn recover_if_dead<T: ShmValue>(
    core: &RingCore<T>,
    seq: &AtomicU64,
    observed: Cell,
    check: StaleCheck,
) -> bool {
    if check != StaleCheck::Now {
        return false;
    }
    let Some(owner) = observed.owner() else { return false };
    if core.segment.owner_liveness(owner) != Liveness::Dead {
        return false;
    }
    recover_cell(core, seq, observed);
    true
}

/// Recovers a cell whose claimant is known to be dead, from the word `observed`: a WRITING
/// cell is skipped (FREE for the next lap), a READING cell republished (FULL for the next lap).
/// A compare-and-swap from `observed`, so that of several recoverers exactly one succeeds.
///
/// No ABA: a word names its lap, and a cell's lap only grows (every transition out of a claim,
/// this recovery included, moves to a later lap or publishes the same lap's next state). A
/// recoverer that judged `observed`'s claimant dead and was delayed cannot hit a later claim of
/// the cell, even by a process that reused the dead claimant's owner id: that claim names a
/// later lap (the 46-bit lap would have to wrap while the recoverer sleeps).
fn recover_cell<T: ShmValue>(core: &RingCore<T>, seq: &AtomicU64, observed: Cell) -> bool {
    let (next, counter) = match observed.state() {
        CellState::Writing => (CellState::Free, ctl::DROPPED_PUSHES),
        CellState::Reading => (CellState::Full, ctl::REDELIVERED),
        CellState::Free | CellState::Full => return false,
    };
    let recovered = Cell::new(observed.lap() + 1, next, None);
    // AcqRel: the recovered state is published like a producer's or consumer's store (Release,
    // paired with the Acquire loads of the cell), and a READING cell's element was written
    // before the dead consumer's claim, which we Acquire.
    if seq.compare_exchange(observed.0, recovered.0, Ordering::AcqRel, Ordering::Relaxed).is_err() {
        return false;
    }
    core.count(counter);
    match next {
        CellState::Full => core.notify_items(),
        _ => core.notify_space(),
    }
    true
}

/// Recovers every claimed cell whose claimant is dead.
fn recover_all<T: ShmValue>(core: &RingCore<T>) -> usize {
    let mut recovered = 0;
    for position in 0..core.capacity() as u64 {
        let (seq, _) = core.cell(position);
        // Acquire: pairs with the claimant's compare-and-swap (its claim), as in `recover_cell`.
        let c = Cell(seq.load(Ordering::Acquire));
        let Some(owner) = c.owner() else { continue };
        if core.segment.owner_liveness(owner) == Liveness::Dead && recover_cell(core, seq, c) {
            recovered += 1;
        }
    }
    recovered
}
