//! What every ring (and the vector) is built on: [`RingCore`], the segment with its cells and
//! control block ([`ctl`]), and the parts of the protocol every ring shares: claiming an
//! exclusive role, waiting for the other side ([`RingCore::block_on`]: the backoff, then the
//! futex event count of [`event`](super::event)), and recovering what dead processes left
//! (claimed roles, sleeper seats).

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::time::Instant;

use crate::layout::{ShmValue, TypeLayout};
use crate::process::OwnerId;
#[cfg(not(shmap_loom))]
use crate::ring::cell;
use crate::ring::event::{self, Event, Notified};
use crate::ring::role::{self, RoleWord};
use crate::ring::{RingError, RingRole, RingStats, barrier};
use crate::segment::{Segment, SegmentSpec, StructureKind};
use crate::sync::backoff::{Expired, Wait, Waiter};
use crate::sync::primitive::{AtomicU32, AtomicU64, Ordering};

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
    pub(crate) fn cell_words(seq: bool) -> usize {
        (usize::from(seq) + Self::ELEMENT_WORDS).max(1)
    }

    pub(crate) fn spec(kind: StructureKind, seq: bool, capacity: Option<u64>) -> SegmentSpec {
        SegmentSpec {
            capacity,
            flags: Some(0),
            fixed_body_size: FIXED_BODY_BYTES,
            // Broadcast cells hold seqlock words (`2p + 2`), not claimants: only the SPMC and
            // MPMC cells (and the vector's) name owners.
            references_owner: match (seq, kind) {
                (true, StructureKind::BroadcastRing) => {
                    Self::segment_references_owner::<true, false>
                }
                (true, _) => Self::segment_references_owner::<true, true>,
                (false, _) => Self::segment_references_owner::<false, false>,
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

    pub(crate) fn new(segment: Segment, seq: bool, wait: Wait) -> Self {
        // Before this process can publish to the ring: its wakes may then use the light barrier.
        barrier::register();
        let capacity = usize::try_from(segment.capacity()).expect("validated capacity fits usize");
        assert!(capacity.is_power_of_two(), "ring capacities are powers of two");
        let cell_words = Self::cell_words(seq);
        let control = (capacity * cell_words).next_multiple_of(8);
        #[cfg(not(shmap_loom))]
        let words = NonNull::from(segment.words());
        #[cfg(shmap_loom)]
        let loom_body: Box<[AtomicU64]> =
            (0..segment.words().len()).map(|_| AtomicU64::new(0)).collect();
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
    pub(crate) fn words(&self) -> &[AtomicU64] {
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

    pub(crate) fn lap(&self, position: u64) -> u64 {
        position >> self.shift
    }

    /// The futex word at control word `offset` (`ITEMS_SEQ` or `SPACE_SEQ`): the first four
    /// bytes of that word, which every process accesses only as this `AtomicU32` (the kernel's
    /// `futex` reads 32 bits, and atomics of different sizes must not overlap).
    #[cfg(not(shmap_loom))]
    pub(crate) fn futex_word(&self, offset: usize) -> &AtomicU32 {
        let word = std::ptr::from_ref(self.control(offset)).cast::<AtomicU32>();
        // SAFETY: `word` is 8-aligned and points to 8 bytes of the live mapping, so its first 4
        // bytes are a valid, aligned `AtomicU32` for as long as `self`; they are zero or were
        // written only through this same view (the segment body starts zeroed).
        unsafe { &*word }
    }

    #[cfg(shmap_loom)]
    pub(crate) fn futex_word(&self, offset: usize) -> &AtomicU32 {
        &self.loom_futex_words[usize::from(offset == ctl::SPACE_SEQ)]
    }

    pub(crate) fn control_words(&self, offset: usize, len: usize) -> &[AtomicU64] {
        &self.words()[self.control + offset..self.control + offset + len]
    }

    pub(crate) fn items(&self) -> Event<'_> {
        Event {
            seq: self.futex_word(ctl::ITEMS_SEQ),
            sleepers: self.control(ctl::ITEMS_SLEEPERS),
            seats: self.control_words(ctl::ITEMS_SEATS, event::SEATS),
        }
    }

    pub(crate) fn space(&self) -> Event<'_> {
        Event {
            seq: self.futex_word(ctl::SPACE_SEQ),
            sleepers: self.control(ctl::SPACE_SLEEPERS),
            seats: self.control_words(ctl::SPACE_SEATS, event::SEATS),
        }
    }

    /// Wakes the consumers asleep for elements (call it after publishing one).
    #[inline]
    pub(crate) fn notify_items(&self) {
        let (seq, sleepers) = (self.futex_word(ctl::ITEMS_SEQ), self.control(ctl::ITEMS_SLEEPERS));
        if Event::notify_words(seq, sleepers) == Notified::NobodyAsleep {
            self.sweep_sleepers_soon();
        }
    }

    /// Wakes the producers asleep for space (call it after freeing a cell).
    #[inline]
    pub(crate) fn notify_space(&self) {
        let (seq, sleepers) = (self.futex_word(ctl::SPACE_SEQ), self.control(ctl::SPACE_SLEEPERS));
        if Event::notify_words(seq, sleepers) == Notified::NobodyAsleep {
            self.sweep_sleepers_soon();
        }
    }

    /// A wake found sleepers announced but nobody asleep: perhaps a sleeper was killed asleep
    /// and left its seat, which would make every later notify pay a wake. Frees such seats, at
    /// most once per stale-check interval per handle (a liveness check costs system calls).
    #[cold]
    pub(crate) fn sweep_sleepers_soon(&self) {
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

    pub(crate) fn role(&self, role: RingRole) -> RoleWord<'_> {
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
    pub(crate) fn claim(&self, role: RingRole) -> Result<Claim, RingError> {
        let me = self.owner()?;
        if self.role(role).claim(&self.segment, me)? == role::Claimed::TookOver {
            self.count(ctl::TAKEOVERS);
        }
        Ok(Claim { role, me, incarnation: crate::process::incarnation() })
    }

    pub(crate) fn count(&self, counter: usize) {
        self.control(counter).fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> RingStats {
        let read = |c| self.control(c).load(Ordering::Relaxed);
        RingStats {
            dropped_pushes: read(ctl::DROPPED_PUSHES),
            redelivered: read(ctl::REDELIVERED),
            takeovers: read(ctl::TAKEOVERS),
            sleepers_recovered: read(ctl::SLEEPERS_RECOVERED),
            sleeping: self.items().announced() + self.space().announced(),
        }
    }

    /// Whether the ring in `segment` names `owner` anywhere (role words, sleeper seats and,
    /// with `CLAIMS`, the cells' claims): the `references_owner` of its spec. `SEQ` as the
    /// cells have a sequence word.
    #[cfg(not(shmap_loom))]
    pub(crate) fn segment_references_owner<const SEQ: bool, const CLAIMS: bool>(
        segment: &Segment,
        owner: OwnerId,
    ) -> bool {
        Self::view(segment, SEQ, CLAIMS).references(owner)
    }

    #[cfg(shmap_loom)]
    pub(crate) fn segment_references_owner<const SEQ: bool, const CLAIMS: bool>(
        _: &Segment,
        _: OwnerId,
    ) -> bool {
        false // the modelled cells are not in the segment
    }

    /// A borrowed view of `segment`'s ring, for `references_owner` (which runs inside an open,
    /// before the core exists): `seq` as the ring's cells have a sequence word, and
    /// `cells_name_owners` where those words are claims (not a broadcast ring's seqlocks).
    #[cfg(not(shmap_loom))]
    pub(crate) fn view(segment: &Segment, seq: bool, cells_name_owners: bool) -> RingView<'_> {
        let capacity = segment.capacity() as usize;
        let cell_words = Self::cell_words(seq);
        RingView { words: segment.words(), capacity, cell_words, cells_name_owners }
    }

    /// Waits for `attempt` to succeed: spins and yields as `wait.backoff` says, then sleeps on
    /// `event` (bounded by the timeout, and by the stale-check interval while `attempt` reports
    /// a cell claimed by another process, so that a dead claimant is found and recovered).
    pub(crate) fn block_on<R>(
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
pub(crate) enum StaleCheck {
    NotYet,
    Now,
}

/// The outcome of one attempt of a blocking operation.
pub(crate) enum Attempt<R> {
    /// Finished, with this result (an error ends the wait too).
    Done(Result<R, RingError>),
    /// Full or empty: wait for the other side.
    NotYet,
    /// Waiting on a cell another process has claimed: wait, and check that it is alive.
    Busy,
}

/// An exclusive role held by a handle of this process.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Claim {
    pub(crate) role: RingRole,
    pub(crate) me: OwnerId,
    /// The process's incarnation at the claim: a handle inherited by a child must not act.
    pub(crate) incarnation: u64,
}

impl Claim {
    #[inline]
    pub(crate) fn check(&self) -> Result<(), RingError> {
        if crate::process::incarnation() == self.incarnation {
            Ok(())
        } else {
            Err(RingError::RoleLost { role: self.role })
        }
    }
}

/// A borrowed view of a ring's words, for checks that run before a core exists.
#[cfg(not(shmap_loom))]
pub(crate) struct RingView<'a> {
    words: &'a [AtomicU64],
    capacity: usize,
    cell_words: usize,
    /// Whether each cell's first word is a claim that may name an owner (SPMC, MPMC, vector).
    cells_name_owners: bool,
}

#[cfg(not(shmap_loom))]
impl RingView<'_> {
    pub(crate) fn references(&self, owner: OwnerId) -> bool {
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
