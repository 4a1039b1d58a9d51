//! Ring buffers in shared memory: the original library's `ShmRingBuffer` in its SPSC, SPMC and
//! broadcast forms, plus MPMC (which the original's SPMC `push` already was).
//!
//! | ring | producers | consumers | each element goes to | a full ring |
//! |---|---|---|---|---|
//! | [`SpscRing`] | one ([`SpscProducer`]) | one ([`SpscConsumer`]) | the consumer | refuses a push |
//! | [`SpmcRing`] | one ([`SpmcProducer`]) | any number | one consumer | refuses a push |
//! | [`MpmcRing`] | any number | any number | one consumer | refuses a push |
//! | [`BroadcastRing`] | one ([`BroadcastProducer`]) | any number ([`Subscriber`]) | every subscriber | overwrites the oldest |
//!
//! Every ring has a power-of-two capacity and holds elements of a `T:`[`ShmValue`], copied in
//! and out through atomics. Every operation comes in three forms: `try_` (never waits: `Full`
//! or `Empty`), the plain form (waits up to the handle's timeout, default 5 s), and `_with`
//! (waits under a [`Wait`] of its own). Waiting spins, then yields, then sleeps in `futex(2)` on
//! a word of the ring until the other side makes progress ([`event`] has the protocol and why no
//! wake-up is lost); it never polls in a tight loop for longer than the [`Backoff`]'s spin and
//! yield steps. The cost of that guarantee falls on the sleeper, not on every push and pop: a
//! publisher pays a compiler barrier and one load, and a sleeper pays one `membarrier(2)` call
//! (the asymmetric barrier in `barrier`, with a fallback where the kernel lacks it).
//!
//! # Roles
//! A ring with one producer (or one consumer) hands out that role as a handle, claimed in a
//! word of the ring: a second claimant, in this process or another, gets
//! [`RingError::RoleTaken`] naming the holder, rather than two producers racing on one position.
//! The handle gives the role back when dropped. A holder process that dies cannot give it back:
//! the next claimant finds it dead and takes over where the ring's shared positions say it
//! stopped. A handle inherited across `fork` is refused ([`RingError::RoleLost`]); the child
//! claims the role again if it should have it.
//!
//! # Processes that die mid-operation
//! - SPSC, SPMC and broadcast: a producer publishes an element with one store after writing it,
//!   so one killed mid-push publishes nothing; its successor writes the same position again. An
//!   SPSC consumer advances its position only after copying; one killed mid-pop leaves the
//!   element to its successor.
//! - SPMC and MPMC consumers claim an element in its cell, with their owner id, before copying
//!   it. A consumer killed in that window leaves the cell claimed by a dead process: the next
//!   producer or consumer that reaches the cell finds the holder dead and publishes the element
//!   again, one lap later, for another consumer (it is delivered exactly once, out of order by
//!   one lap). An MPMC producer killed between claiming a cell and publishing it leaves a cell
//!   that a waiting consumer finds dead and skips (the push never returned, so nothing is lost).
//!   [`RingStats`] counts both.
//! - Broadcast subscribers keep their position in their own process: one that dies affects no
//!   one, and the producer never waits for subscribers.
//!
//! # Examples
//!
//! A producer process feeding a consumer process through an SPSC ring (threads stand in for the
//! processes here; `examples/src/bin/ring.rs` uses real ones):
//!
//! ```
//! use shmap::ring::SpscRing;
//!
//! # let name = format!("/shmap-doc-ring-{}", std::process::id());
//! let ring = SpscRing::<u64>::open_or_create(&name, 1024)?;
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         let mut producer = ring.producer().unwrap();
//!         for i in 0..10_000 {
//!             producer.push(&i).unwrap(); // waits while the ring is full
//!         }
//!     });
//!     let mut consumer = ring.consumer().unwrap();
//!     for i in 0..10_000 {
//!         assert_eq!(consumer.pop().unwrap(), i); // waits while the ring is empty
//!     }
//! });
//! # ring.destroy()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod barrier;
mod broadcast;
pub(crate) mod cell;
pub(crate) mod event;
mod queue;
mod role;
mod spsc;

use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

pub use broadcast::{BroadcastProducer, BroadcastRing, Subscriber};
pub use queue::{MpmcRing, SpmcProducer, SpmcRing};
pub use spsc::{SpscConsumer, SpscProducer, SpscRing};

#[cfg(shmap_loom)]
#[doc(hidden)]
pub use event::LoomEvent as __LoomEvent;

use crate::error::OpenError;
use crate::layout::{ShmValue, TypeLayout};
use crate::process::{OwnerId, ProcessIdentity};
use crate::segment::{Backing, Segment, SegmentOptions, SegmentSpec, StructureKind};
use crate::structure::round_capacity;
use crate::sync::backoff::{Expired, Wait, Waiter};
use crate::sync::primitive::{AtomicU32, AtomicU64, Ordering};
use event::{Event, Notified};
use role::RoleWord;

/// Which exclusive role of a ring a handle holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RingRole {
    /// The one producer of an SPSC, SPMC or broadcast ring.
    Producer,
    /// The one consumer of an SPSC ring.
    Consumer,
}

impl fmt::Display for RingRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RingRole::Producer => "producer",
            RingRole::Consumer => "consumer",
        })
    }
}

/// What a ring operation can fail with. Each method says which of these it returns.
///
/// # Examples
///
/// ```
/// use shmap::ring::{RingError, SpscRing};
///
/// let ring = SpscRing::<u32>::heap(2)?;
/// let mut producer = ring.producer()?;
/// producer.try_push(&1)?;
/// producer.try_push(&2)?;
/// assert!(matches!(producer.try_push(&3), Err(RingError::Full)));
/// assert!(matches!(ring.producer(), Err(RingError::RoleTaken { this_process: true, .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// The ring is full (a `try_` push).
    #[error("the ring is full")]
    Full,
    /// The ring is empty (a `try_` pop or receive).
    #[error("the ring is empty")]
    Empty,
    /// A broadcast subscriber fell more than a lap behind the producer: `missed` elements were
    /// overwritten before it read them. Its next receive starts at the oldest element left.
    #[error("fell behind the producer: {missed} elements were overwritten before they were read")]
    Lagged {
        /// How many elements this subscriber will never see.
        missed: u64,
    },
    /// A blocking operation waited for its whole timeout.
    #[error("timed out after {waited:?} waiting for {}", awaited(.for_space))]
    Timeout {
        /// How long it waited.
        waited: Duration,
        /// Whether it waited for space (a push) rather than for an element.
        for_space: bool,
    },
    /// Another handle holds the exclusive role.
    #[error("the {role} role is taken by {}", HolderText(.holder, .this_process))]
    RoleTaken {
        /// The role asked for.
        role: RingRole,
        /// The process that holds it, as its process-table entry says.
        holder: Option<ProcessIdentity>,
        /// Whether the holder is another handle of this very process.
        this_process: bool,
    },
    /// This role handle was inherited across `fork`: the parent still holds the role. Claim it
    /// again in the child if the child should have it.
    #[error("this {role} handle was inherited across fork; claim the role again in the child")]
    RoleLost {
        /// The role the handle held.
        role: RingRole,
    },
    /// This process could not register in the ring's process table, so it cannot be named
    /// as a role holder or an element's claimant.
    #[error("cannot register this process in the segment: {0}")]
    Register(#[from] crate::RegisterError),
}

fn awaited(for_space: &bool) -> &'static str {
    if *for_space { "space in a full ring" } else { "an element in an empty ring" }
}

struct HolderText<'a>(&'a Option<ProcessIdentity>, &'a bool);

impl fmt::Display for HolderText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (*self.1, self.0) {
            (true, _) => f.write_str("another handle in this process"),
            (false, Some(p)) => write!(f, "pid {}, which is alive or cannot be checked", p.pid),
            (false, None) => f.write_str("a process that is no longer registered"),
        }
    }
}

/// Recovery counters of a ring, kept in its shared control block.
///
/// # Examples
///
/// ```
/// use shmap::ring::MpmcRing;
///
/// let ring = MpmcRing::<u64>::heap(8)?;
/// assert_eq!(ring.stats().redelivered, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Pushes abandoned by producers that died after claiming a cell and before publishing it
    /// (MPMC): skipped, since those pushes never returned.
    pub dropped_pushes: u64,
    /// Elements claimed by consumers that died before finishing their pop (SPMC, MPMC):
    /// published again for another consumer.
    pub redelivered: u64,
    /// Exclusive roles taken over from dead holders.
    pub takeovers: u64,
    /// Seats of sleepers that were killed while asleep, freed (so that pushes and pops stop
    /// paying a wake-up for them).
    pub sleepers_recovered: u64,
    /// Threads announced as asleep in a blocking operation now (both directions).
    pub sleeping: u32,
}

/// How to create or open a ring of type `R`: capacity, timeouts, permissions.
///
/// # Examples
///
/// ```
/// use shmap::ring::MpmcRing;
/// use shmap::Backing;
/// use std::time::Duration;
///
/// # let name = format!("/shmap-doc-ring-options-{}", std::process::id());
/// let ring = MpmcRing::<[u64; 4]>::options()
///     .capacity(1000) // rounded up to 1024 elements
///     .timeout(Duration::from_millis(50))
///     .mode(0o660)
///     .open(&Backing::shm(&name))?;
/// assert_eq!(ring.capacity(), 1024);
/// assert!(ring.pop().is_err(), "times out after 50 ms on an empty ring");
/// # ring.destroy()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RingOptions<R> {
    capacity: Option<usize>,
    wait: Wait,
    segment: SegmentOptions,
    _ring: PhantomData<fn() -> R>,
}

impl<R> Clone for RingOptions<R> {
    fn clone(&self) -> Self {
        RingOptions {
            capacity: self.capacity,
            wait: self.wait,
            segment: self.segment.clone(),
            _ring: PhantomData,
        }
    }
}

impl<R> fmt::Debug for RingOptions<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingOptions")
            .field("capacity", &self.capacity)
            .field("wait", &self.wait)
            .field("segment", &self.segment)
            .finish()
    }
}

impl<R> Default for RingOptions<R> {
    fn default() -> Self {
        RingOptions {
            capacity: None,
            wait: Wait::default(),
            segment: SegmentOptions::default(),
            _ring: PhantomData,
        }
    }
}

impl<R> RingOptions<R> {
    /// The number of elements, rounded up to a power of two. Required to create a ring; when
    /// opening an existing one it must match (after rounding), and without it an open adopts
    /// the ring's capacity.
    pub fn capacity(mut self, elements: usize) -> Self {
        self.capacity = Some(elements);
        self
    }

    crate::structure::wait_setters!("a cell claimed by another process");
    crate::structure::segment_setters!("ring");

    /// The capacity as an option (for the vector's options, which build on these).
    pub(crate) fn capacity_option(mut self, elements: Option<usize>) -> Self {
        self.capacity = elements;
        self
    }

    /// All the segment options at once (as above).
    pub(crate) fn segment_options(mut self, segment: SegmentOptions) -> Self {
        self.segment = segment;
        self
    }

    pub(crate) fn open_core<T: ShmValue>(
        &self,
        backing: &Backing,
        kind: StructureKind,
        seq: bool,
    ) -> Result<RingCore<T>, OpenError> {
        let capacity = match self.capacity {
            None => None,
            Some(n) => Some(
                round_capacity(n, &kind.to_string(), "element")
                    .map_err(|kind| OpenError::new(backing, kind))?,
            ),
        };
        let spec = RingCore::<T>::spec(kind, seq, capacity);
        let segment = Segment::open(backing, &spec, &self.segment)?;
        Ok(RingCore::new(segment, seq, self.wait))
    }
}

/// Word offsets in a ring's control block, which follows the cells (cache-line aligned). The
/// producers' and the consumers' positions each have a cache line of their own, so that the two
/// sides do not write to one line.
pub(crate) mod ctl {
    /// The next position to publish (SPSC, SPMC, broadcast) or to claim (MPMC): a hint that
    /// only grows, helped along by every producer.
    pub(crate) const TAIL: usize = 0;
    /// The next position to consume (SPSC) or to claim (SPMC, MPMC).
    pub(crate) const HEAD: usize = 8;
    /// The producer role's holder.
    pub(crate) const PRODUCER: usize = 16;
    /// The consumer role's holder (SPSC).
    pub(crate) const CONSUMER: usize = 17;
    /// [`RingStats`](super::RingStats) counters.
    pub(crate) const DROPPED_PUSHES: usize = 18;
    pub(crate) const REDELIVERED: usize = 19;
    pub(crate) const TAKEOVERS: usize = 20;
    pub(crate) const SLEEPERS_RECOVERED: usize = 21;
    /// "Elements were published": consumers sleep on it. The two `_SEQ` words are futex words:
    /// only ever accessed as the `AtomicU32` at their address (see `RingCore::futex_word`).
    pub(crate) const ITEMS_SEQ: usize = 24;
    /// The bit mask of announced sleepers (see `event`).
    pub(crate) const ITEMS_SLEEPERS: usize = 25;
    /// "Space was freed": producers sleep on it.
    pub(crate) const SPACE_SEQ: usize = 32;
    pub(crate) const SPACE_SLEEPERS: usize = 33;
    /// The seats of the sleepers on each event, `event::SEATS` words each.
    pub(crate) const ITEMS_SEATS: usize = 40;
    pub(crate) const SPACE_SEATS: usize = ITEMS_SEATS + super::event::SEATS;
    /// Words in the control block.
    pub(crate) const WORDS: usize = SPACE_SEATS + super::event::SEATS;
}

/// Bytes after the cells: up to 7 words of padding to the next cache line, then the control
/// block.
const FIXED_BODY_BYTES: u64 = ((ctl::WORDS + 8) * 8) as u64;

/// What every ring holds: its segment, where its cells and control block are, its geometry.
pub(crate) struct RingCore<T> {
    pub(crate) segment: Segment,
    /// The body's words (the segment's, or under loom a heap copy of loom atomics).
    words: NonNull<[AtomicU64]>,
    #[cfg(shmap_loom)]
    _loom_body: Box<[AtomicU64]>,
    /// Under loom, the two futex words (`ITEMS_SEQ`, `SPACE_SEQ`), which cannot be views of
    /// loom's `AtomicU64`s.
    #[cfg(shmap_loom)]
    loom_futex_words: Box<[AtomicU32; 2]>,
    mask: usize,
    /// log2 of the capacity: a position's lap is `position >> shift`.
    shift: u32,
    /// Words per cell: the sequence word (if the ring has one) and the element.
    cell_words: usize,
    /// Whether each cell starts with a sequence word.
    seq: bool,
    /// Word offset of the control block.
    control: usize,
    pub(crate) wait: Wait,
    /// This handle's clock for [`sweep_sleepers_soon`](Self::sweep_sleepers_soon), and when
    /// (in nanoseconds on it) the next sweep may run. Process-local, not in the segment.
    clock: Instant,
    next_sweep_ns: std::sync::atomic::AtomicU64,
    _types: PhantomData<fn() -> T>,
}

// SAFETY: the core owns its segment (or loom body); `words` points into it and every access
// through it is atomic, so the core may be sent to and shared with other threads.
unsafe impl<T> Send for RingCore<T> {}
// SAFETY: see `Send`.
unsafe impl<T> Sync for RingCore<T> {}

impl<T: ShmValue> RingCore<T> {
    /// Words of an element.
    const ELEMENT_WORDS: usize = crate::sync::words::words_for(size_of::<T>());

    /// Words per cell: the sequence word (if any) and the element's words, and at least one,
    /// so that a ring of a zero-sized element (which has no sequence word: SPSC) still has
    /// cells of a nonzero size. Its one word is never read or written.
    fn cell_words(seq: bool) -> usize {
        (usize::from(seq) + Self::ELEMENT_WORDS).max(1)
    }

    fn spec(kind: StructureKind, seq: bool, capacity: Option<u64>) -> SegmentSpec {
        SegmentSpec {
            capacity,
            flags: Some(0),
            fixed_body_size: FIXED_BODY_BYTES,
            // Broadcast cells hold seqlock words (`2p + 2`), not claimants: only the SPMC and
            // MPMC cells (and the vector's) name owners.
            references_owner: match (seq, kind) {
                (true, StructureKind::BroadcastRing) => Self::segment_references_owner_broadcast,
                (true, _) => Self::segment_references_owner_claimed_cells,
                (false, _) => Self::segment_references_owner_plain,
            },
            ..SegmentSpec::new(
                kind,
                TypeLayout::NONE,
                TypeLayout::of::<T>(),
                if seq {
                    |_| (Self::cell_words(true) * 8) as u64
                } else {
                    |_| (Self::cell_words(false) * 8) as u64
                },
            )
        }
    }

    fn new(segment: Segment, seq: bool, wait: Wait) -> Self {
        // Before this process can publish to the ring: its wakes may then use the light barrier.
        barrier::register();
        let capacity = usize::try_from(segment.capacity()).expect("validated capacity fits usize");
        assert!(capacity.is_power_of_two(), "ring capacities are powers of two");
        let cell_words = Self::cell_words(seq);
        let control = (capacity * cell_words).next_multiple_of(8);
        #[cfg(not(shmap_loom))]
        let words = NonNull::from(segment.body());
        #[cfg(shmap_loom)]
        let loom_body: Box<[AtomicU64]> =
            (0..segment.body().len()).map(|_| AtomicU64::new(0)).collect();
        #[cfg(shmap_loom)]
        let words = NonNull::from(&*loom_body);
        // SAFETY: `words` is the body (or the loom copy of its size), which holds the cells and
        // then `FIXED_BODY_BYTES`, enough for up to 7 words of padding and the control block.
        assert!(control + ctl::WORDS <= unsafe { words.as_ref() }.len(), "ring body size");
        RingCore {
            segment,
            words,
            #[cfg(shmap_loom)]
            _loom_body: loom_body,
            #[cfg(shmap_loom)]
            loom_futex_words: Box::new([AtomicU32::new(0), AtomicU32::new(0)]),
            mask: capacity - 1,
            shift: capacity.trailing_zeros(),
            cell_words,
            seq,
            control,
            wait,
            clock: Instant::now(),
            next_sweep_ns: std::sync::atomic::AtomicU64::new(0),
            _types: PhantomData,
        }
    }

    #[inline(always)]
    fn words(&self) -> &[AtomicU64] {
        // SAFETY: `words` points to atomics owned by `self.segment` (or `_loom_body`), which
        // live as long as `self`.
        unsafe { self.words.as_ref() }
    }

    /// The cell of `position`: its sequence word (if any) and its element's words.
    #[inline(always)]
    pub(crate) fn cell(&self, position: u64) -> (&AtomicU64, &[AtomicU64]) {
        let index = (position as usize) & self.mask;
        let start = index * self.cell_words;
        let words = self.words();
        let skip = usize::from(self.seq);
        // The sequence word of a ring without one is unused: hand out the first element word.
        (&words[start], &words[start + skip..start + self.cell_words])
    }

    #[inline(always)]
    pub(crate) fn control(&self, offset: usize) -> &AtomicU64 {
        &self.words()[self.control + offset]
    }

    fn lap(&self, position: u64) -> u64 {
        position >> self.shift
    }

    /// The futex word at control word `offset` (`ITEMS_SEQ` or `SPACE_SEQ`): the first four
    /// bytes of that word, which every process accesses only as this `AtomicU32` (the kernel's
    /// `futex` reads 32 bits, and atomics of different sizes must not overlap).
    #[cfg(not(shmap_loom))]
    fn futex_word(&self, offset: usize) -> &AtomicU32 {
        let word = std::ptr::from_ref(self.control(offset)).cast::<AtomicU32>();
        // SAFETY: `word` is 8-aligned and points to 8 bytes of the live mapping, so its first 4
        // bytes are a valid, aligned `AtomicU32` for as long as `self`; they are zero or were
        // written only through this same view (the segment body starts zeroed).
        unsafe { &*word }
    }

    #[cfg(shmap_loom)]
    fn futex_word(&self, offset: usize) -> &AtomicU32 {
        &self.loom_futex_words[usize::from(offset == ctl::SPACE_SEQ)]
    }

    fn control_words(&self, offset: usize, len: usize) -> &[AtomicU64] {
        &self.words()[self.control + offset..self.control + offset + len]
    }

    fn items(&self) -> Event<'_> {
        Event {
            seq: self.futex_word(ctl::ITEMS_SEQ),
            sleepers: self.control(ctl::ITEMS_SLEEPERS),
            seats: self.control_words(ctl::ITEMS_SEATS, event::SEATS),
        }
    }

    fn space(&self) -> Event<'_> {
        Event {
            seq: self.futex_word(ctl::SPACE_SEQ),
            sleepers: self.control(ctl::SPACE_SLEEPERS),
            seats: self.control_words(ctl::SPACE_SEATS, event::SEATS),
        }
    }

    /// Wakes the consumers asleep for elements (call it after publishing one).
    #[inline]
    pub(crate) fn notify_items(&self) {
        if self.items().notify() == Notified::NobodyAsleep {
            self.sweep_sleepers_soon();
        }
    }

    /// Wakes the producers asleep for space (call it after freeing a cell).
    #[inline]
    pub(crate) fn notify_space(&self) {
        if self.space().notify() == Notified::NobodyAsleep {
            self.sweep_sleepers_soon();
        }
    }

    /// A wake found sleepers announced but nobody asleep: perhaps a sleeper was killed asleep
    /// and left its seat, which would make every later notify pay a wake. Frees such seats, at
    /// most once per stale-check interval per handle (a liveness check costs system calls).
    #[cold]
    fn sweep_sleepers_soon(&self) {
        let now = self.clock.elapsed().as_nanos() as u64;
        let interval = self.wait.stale_check.as_nanos() as u64;
        // Relaxed: a rate limit local to this handle; racing threads at worst both sweep.
        let due = self.next_sweep_ns.load(std::sync::atomic::Ordering::Relaxed);
        if now < due {
            return;
        }
        self.next_sweep_ns
            .store(now.saturating_add(interval), std::sync::atomic::Ordering::Relaxed);
        self.recover_sleepers();
    }

    /// Frees the seats of sleepers whose processes are dead (killed while asleep); returns how
    /// many. Every ring's `recover` calls it.
    pub(crate) fn recover_sleepers(&self) -> usize {
        let Ok(me) = self.owner() else { return 0 };
        let is_dead = |o| self.segment.owner_liveness(o) == crate::Liveness::Dead;
        let freed =
            self.items().recover_seats(me, is_dead) + self.space().recover_seats(me, is_dead);
        if freed > 0 {
            self.control(ctl::SLEEPERS_RECOVERED).fetch_add(freed as u64, Ordering::Relaxed);
        }
        freed
    }

    fn role(&self, role: RingRole) -> RoleWord<'_> {
        let offset = match role {
            RingRole::Producer => ctl::PRODUCER,
            RingRole::Consumer => ctl::CONSUMER,
        };
        RoleWord { word: self.control(offset), role }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.mask + 1
    }

    pub(crate) fn owner(&self) -> Result<OwnerId, RingError> {
        Ok(self.segment.owner()?)
    }

    /// Claims `role` for this process.
    fn claim(&self, role: RingRole) -> Result<Claim, RingError> {
        let me = self.owner()?;
        if self.role(role).claim(&self.segment, me)? == role::Claimed::TookOver {
            self.count(ctl::TAKEOVERS);
        }
        Ok(Claim { role, me, generation: crate::process::current_fork_generation() })
    }

    pub(crate) fn count(&self, counter: usize) {
        self.control(counter).fetch_add(1, Ordering::Relaxed);
    }

    fn stats(&self) -> RingStats {
        let read = |c| self.control(c).load(Ordering::Relaxed);
        RingStats {
            dropped_pushes: read(ctl::DROPPED_PUSHES),
            redelivered: read(ctl::REDELIVERED),
            takeovers: read(ctl::TAKEOVERS),
            sleepers_recovered: read(ctl::SLEEPERS_RECOVERED),
            sleeping: self.items().announced() + self.space().announced(),
        }
    }

    #[cfg(not(shmap_loom))]
    fn segment_references_owner_claimed_cells(segment: &Segment, owner: OwnerId) -> bool {
        Self::view(segment, true, true).references(owner)
    }

    #[cfg(not(shmap_loom))]
    fn segment_references_owner_broadcast(segment: &Segment, owner: OwnerId) -> bool {
        Self::view(segment, true, false).references(owner)
    }

    #[cfg(not(shmap_loom))]
    fn segment_references_owner_plain(segment: &Segment, owner: OwnerId) -> bool {
        Self::view(segment, false, false).references(owner)
    }

    #[cfg(shmap_loom)]
    fn segment_references_owner_claimed_cells(_: &Segment, _: OwnerId) -> bool {
        false // the modelled cells are not in the segment
    }

    #[cfg(shmap_loom)]
    fn segment_references_owner_broadcast(_: &Segment, _: OwnerId) -> bool {
        false
    }

    #[cfg(shmap_loom)]
    fn segment_references_owner_plain(_: &Segment, _: OwnerId) -> bool {
        false
    }

    /// A borrowed view of `segment`'s ring, for `references_owner` (which runs inside an open,
    /// before the core exists): `seq` as the ring's cells have a sequence word, and
    /// `cells_name_owners` where those words are claims (not a broadcast ring's seqlocks).
    #[cfg(not(shmap_loom))]
    fn view(segment: &Segment, seq: bool, cells_name_owners: bool) -> RingView<'_> {
        let capacity = segment.capacity() as usize;
        let cell_words = Self::cell_words(seq);
        RingView { words: segment.body(), capacity, cell_words, cells_name_owners }
    }

    /// Waits for `attempt` to succeed: spins and yields as `wait.backoff` says, then sleeps on
    /// `event` (bounded by the timeout, and by the stale-check interval while `attempt` reports
    /// a cell claimed by another process, so that a dead claimant is found and recovered).
    fn block_on<R>(
        &self,
        event: Event<'_>,
        wait: &Wait,
        for_space: bool,
        mut attempt: impl FnMut(StaleCheck) -> Attempt<R>,
    ) -> Result<R, RingError> {
        let mut waiter = Waiter::new(*wait);
        loop {
            // Under loom time does not pass: `stale_check_due` says yes at every attempt after
            // the first, and the wait never expires (the model bounds it).
            let check = if waiter.has_started() && waiter.stale_check_due() {
                StaleCheck::Now
            } else {
                StaleCheck::NotYet
            };
            let busy = match attempt(check) {
                Attempt::Done(r) => return r,
                Attempt::NotYet => false,
                Attempt::Busy => true,
            };
            let waited = waiter
                .elapsed()
                .map_err(|Expired(waited)| RingError::Timeout { waited, for_space })?;
            if waiter.spin_or_yield() {
                continue;
            }
            let mut nap = waiter.remaining(waited);
            if busy {
                nap = nap.min(waiter.stale_check_interval());
            }
            let mut ready = None;
            event.sleep(self.owner().ok(), nap, || match attempt(StaleCheck::NotYet) {
                Attempt::Done(r) => {
                    ready = Some(r);
                    true
                }
                _ => false,
            });
            if let Some(r) = ready {
                return r;
            }
        }
    }
}

/// Whether an attempt inside [`RingCore::block_on`] should check the liveness of a claimant
/// it waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StaleCheck {
    NotYet,
    Now,
}

/// The outcome of one attempt of a blocking operation.
enum Attempt<R> {
    /// Finished, with this result (an error ends the wait too).
    Done(Result<R, RingError>),
    /// Full or empty: wait for the other side.
    NotYet,
    /// Waiting on a cell another process has claimed: wait, and check that it is alive.
    Busy,
}

/// An exclusive role held by a handle of this process.
#[derive(Clone, Copy, Debug)]
struct Claim {
    role: RingRole,
    me: OwnerId,
    /// The fork generation at the claim: a handle inherited across `fork` must not act.
    generation: u32,
}

impl Claim {
    #[inline]
    fn check(&self) -> Result<(), RingError> {
        if crate::process::current_fork_generation() == self.generation {
            Ok(())
        } else {
            Err(RingError::RoleLost { role: self.role })
        }
    }
}

/// A borrowed view of a ring's words, for checks that run before a core exists.
#[cfg(not(shmap_loom))]
struct RingView<'a> {
    words: &'a [AtomicU64],
    capacity: usize,
    cell_words: usize,
    /// Whether each cell's first word is a claim that may name an owner (SPMC, MPMC, vector).
    cells_name_owners: bool,
}

#[cfg(not(shmap_loom))]
impl RingView<'_> {
    fn references(&self, owner: OwnerId) -> bool {
        let control = (self.capacity * self.cell_words).next_multiple_of(8);
        let holds = |offset: usize| {
            self.words
                .get(control + offset)
                .is_some_and(|w| role::holder_of(w.load(Ordering::Relaxed)) == Some(owner))
        };
        let seats = |offset: usize| {
            self.words
                .get(control + offset..control + offset + event::SEATS)
                .is_some_and(|seats| Event::seats_name(seats, owner))
        };
        holds(ctl::PRODUCER)
            || holds(ctl::CONSUMER)
            || seats(ctl::ITEMS_SEATS)
            || seats(ctl::SPACE_SEATS)
            || (self.cells_name_owners
                && (0..self.capacity).any(|i| {
                    self.words.get(i * self.cell_words).is_some_and(|w| {
                        cell::Cell(w.load(Ordering::Relaxed)).owner() == Some(owner)
                    })
                }))
    }
}

/// The constructors and accessors of every structure built on a [`RingCore`] (the rings and
/// `ShmVector`); `$what` names the structure in their documentation. Each structure defines
/// its own `options()` (rings: [`RingOptions`], the vector: `VectorOptions`).
macro_rules! core_handle {
    ($ty:ident, $kind:expr, $seq:expr, $what:literal) => {
        impl<T: ShmValue> $ty<T> {
            #[doc = concat!("Opens the POSIX shared-memory ", $what, " `name` (`/name`), creating it with room for")]
            /// `capacity` elements (rounded up to a power of two) if it does not exist.
            ///
            /// Any number of processes may call this at once: they all get the same one.
            pub fn open_or_create(name: &str, capacity: usize) -> Result<Self, OpenError> {
                Self::options().capacity(capacity).open(&Backing::shm(name))
            }

            #[doc = concat!("Opens the existing POSIX shared-memory ", $what, " `name`, whatever its capacity.")]
            pub fn open(name: &str) -> Result<Self, OpenError> {
                Self::options().create(CreateMode::OpenExisting).open(&Backing::shm(name))
            }

            #[doc = concat!("A ", $what, " in an anonymous shared mapping: shared with the `fork` children of this")]
            /// process, invisible to every other process.
            pub fn anonymous(capacity: usize) -> Result<Self, OpenError> {
                Self::options().capacity(capacity).open(&Backing::Anonymous)
            }

            #[doc = concat!("A ", $what, " on the heap, for the threads of this process only.")]
            pub fn heap(capacity: usize) -> Result<Self, OpenError> {
                Self::options().capacity(capacity).open(&Backing::Heap)
            }

            #[doc = concat!("The number of elements the ", $what, " holds when full.")]
            pub fn capacity(&self) -> usize {
                self.core.capacity()
            }

            #[doc = concat!("The segment the ", $what, " lives in (its header, its attached processes).")]
            pub fn segment(&self) -> &Segment {
                &self.core.segment
            }

            #[doc = concat!("Removes the ", $what, "'s name; processes that have it open keep using it, and the")]
            /// memory is freed when the last of them closes it.
            pub fn destroy(&self) -> Result<(), OpenError> {
                Segment::unlink(&self.core.segment.info().backing)
            }

            #[doc = concat!("Removes the name of the POSIX shared-memory ", $what, " `name`.")]
            pub fn unlink(name: &str) -> Result<(), OpenError> {
                Segment::unlink(&Backing::shm(name))
            }
        }

    };
}
pub(crate) use core_handle;

/// What every ring type shares: [`core_handle`], its recovery counters and `Debug`.
macro_rules! ring_common {
    ($ring:ident, $kind:expr, $seq:expr) => {
        $crate::ring::core_handle!($ring, $kind, $seq, "ring");

        impl<T: ShmValue> RingOptions<$ring<T>> {
            /// Creates or opens the ring at `backing`.
            pub fn open(self, backing: &Backing) -> Result<$ring<T>, OpenError> {
                Ok($ring { core: self.open_core(backing, $kind, $seq)? })
            }
        }

        impl<T: ShmValue> $ring<T> {
            /// Options to create or open a ring with another backing, timeout or mode.
            pub fn options() -> RingOptions<Self> {
                RingOptions::default()
            }

            /// The recovery counters, and how many threads sleep in a blocking operation now.
            pub fn stats(&self) -> RingStats {
                self.core.stats()
            }

            /// Frees the seats of threads that were killed while asleep in a blocking
            /// operation, and returns how many. Without this, each later push (or pop) would
            /// pay a futex wake for a sleeper that is gone. Pushes and pops do it on their own
            /// (when a wake finds nobody asleep, at most once per stale-check interval); a
            /// monitor process can call it. A seat is freed only when its process is proven
            /// dead ([`Liveness::Dead`](crate::Liveness::Dead)).
            pub fn recover_sleepers(&self) -> usize {
                self.core.recover_sleepers()
            }
        }

        impl<T: ShmValue> fmt::Debug for $ring<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ring))
                    .field("segment", &self.core.segment.info().backing)
                    .field("capacity", &self.core.capacity())
                    .finish_non_exhaustive()
            }
        }
    };
}
use ring_common;

#[cfg(all(test, not(shmap_loom)))]
mod tests;
