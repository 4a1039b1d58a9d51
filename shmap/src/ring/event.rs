//! Sleeping until another process makes progress: an event count over two shared words, woken
//! with `futex(2)`.
//!
//! The design is the classic event count (Dmitry Vyukov's `eventcount`, folly's `EventCount`):
//! a sleeper announces itself in `sleepers`, re-checks its condition, and sleeps on `seq` only if
//! the condition still fails; the other side publishes its progress and then, only if
//! `sleepers` is non-zero, bumps `seq` and wakes. Without a sleeper, notifying costs one load.
//!
//! # Why no wake-up is lost
//! The side that makes progress publishes it (a `Release` store) and then, in [`Event::notify`],
//! runs the light half of an asymmetric barrier before it loads `sleepers`; a sleeper
//! increments `sleepers` and runs the heavy half before it re-checks its condition (see
//! [`barrier`](super::barrier) for the pairing, `membarrier(2)`, and its fallbacks). Either the
//! publication is visible to the re-check, and the sleeper does not sleep, or the increment is
//! visible to the notifier's load, and it wakes the sleeper. A wake that lands between the
//! sleeper's re-check and its `futex` call is not lost either: the sleeper passes the `seq` it
//! read before announcing itself, and the kernel refuses to sleep once `seq` has moved.
//!
//! The futex word is `seq`, an `AtomicU32` that each wake bumps by one (wrapping): the kernel
//! compares exactly it. In a ring it is the first half of a control word that is never
//! accessed as 64 bits, because atomics of different sizes must not overlap. Shared, not
//! `FUTEX_PRIVATE_FLAG`: sleepers and wakers are different processes.

use std::time::Duration;

use super::barrier;
use crate::process::OwnerId;
use crate::sync::primitive::{AtomicU32, AtomicU64, Ordering};

/// Seats per event: how many sleepers can be announced at once. A sleeper that finds every
/// seat taken does not announce itself and naps for at most [`barrier::FALLBACK_NAP`] instead.
pub(crate) const SEATS: usize = 64;

/// The owner-id bits of a seat word; the count of takings is above them.
const SEAT_OWNER: u64 = 0xffff;
/// One taking, in the count above the owner id.
const ONE_TAKING: u64 = SEAT_OWNER + 1;
/// In a seat's owner bits: the seat is being recovered by the owner in the low 12 bits.
const RECOVERING: u64 = 0x8000;

/// One direction of a ring: "items were published" or "space was freed".
#[derive(Clone, Copy)]
pub(crate) struct Event<'a> {
    /// Bumped by each wake (wrapping); the futex word.
    pub(crate) seq: &'a AtomicU32,
    /// Which seats hold an announced sleeper: bit `i` for seat `i`. Zero means nobody sleeps.
    pub(crate) sleepers: &'a AtomicU64,
    /// [`SEATS`] words, each `(takings << 16) | owner`: who sits in seat `i` (0 when free).
    pub(crate) seats: &'a [AtomicU64],
}

/// What a [`notify`](Event::notify) found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Notified {
    /// No sleeper was announced: one load, nothing else.
    Nobody,
    /// Sleepers were announced and the wake reached at least one of them (or the kernel could
    /// not say).
    Woken,
    /// Sleepers were announced but the kernel found nobody asleep: they were between their
    /// announcement and their sleep, or one died asleep and left its seat behind (see
    /// [`Event::recover_seats`]).
    NobodyAsleep,
}

impl Event<'_> {
    /// Wakes the sleepers, if there are any. Call it right after the `Release` store (or
    /// read-modify-write) that published the progress.
    #[inline]
    #[cfg(test)] // the rings call `notify_words` directly
    pub(crate) fn notify(&self) -> Notified {
        Self::notify_words(self.seq, self.sleepers)
    }

    /// Wakes the sleepers of the event whose words are `seq` and `sleepers`, if there are any
    /// (call it right after the publication): given only the two words it reads, so that a
    /// push or a pop does not build the seats' slice it never uses.
    #[inline]
    pub(crate) fn notify_words(seq: &AtomicU32, sleepers: &AtomicU64) -> Notified {
        barrier::light();
        // Relaxed: ordered after the caller's publication by the light barrier, which pairs
        // with the heavy barrier in `sleep` (see the module documentation).
        if sleepers.load(Ordering::Relaxed) != 0 { Self::wake(seq) } else { Notified::Nobody }
    }

    #[cold]
    fn wake(seq: &AtomicU32) -> Notified {
        // Release: a sleeper that sees the new `seq` also sees what was published before it.
        seq.fetch_add(1, Ordering::Release);
        #[cfg(not(shmap_loom))]
        // SAFETY: `seq` is a live, aligned 32-bit atomic in the ring's mapping.
        let woken = unsafe { crate::sys::futex_wake(seq.as_ptr(), i32::MAX) };
        #[cfg(shmap_loom)]
        let woken: Result<usize, ()> = Ok(1);
        if woken == Ok(0) { Notified::NobodyAsleep } else { Notified::Woken }
    }

    /// Sleeps for at most `timeout` unless `ready()`, checked after announcing the sleep, holds;
    /// returns what `ready()` returned. A wake, the timeout, a signal or a spurious return all
    /// end the sleep: the caller checks its condition again either way. `me` names the sleeper
    /// in its seat; without an id (or a free seat) the sleeper is not announced, and naps for
    /// at most [`barrier::FALLBACK_NAP`].
    pub(crate) fn sleep(
        &self,
        me: Option<OwnerId>,
        timeout: Duration,
        ready: impl FnOnce() -> bool,
    ) -> bool {
        let (seen, seat, paired) = self.announce(me);
        // Without `membarrier`, or without a seat, a publisher's wake may be missed, so the
        // sleep is bounded.
        let timeout =
            if paired && seat.is_some() { timeout } else { timeout.min(barrier::FALLBACK_NAP) };
        let ready = ready();
        if !ready {
            self.wait(seen, timeout);
        }
        if let Some(seat) = seat {
            self.leave(seat);
        }
        ready
    }

    /// Announces a sleeper in a free seat: returns the `seq` to sleep on, the seat (with the
    /// word it was taken with), and whether the barrier paired with every publisher's (see
    /// [`barrier::heavy`]).
    pub(crate) fn announce(&self, me: Option<OwnerId>) -> (u32, Option<(usize, u64)>, bool) {
        // Acquire: pairs with the Release bump in `wake`.
        let seen = self.seq.load(Ordering::Acquire);
        let seat = me.and_then(|me| self.take_seat(me));
        if let Some((index, _)) = seat {
            // Relaxed: ordered before the caller's re-check by the heavy barrier below.
            self.sleepers.fetch_or(1 << index, Ordering::Relaxed);
        }
        // Pairs with the light barrier in `notify` (see the module documentation).
        (seen, seat, barrier::heavy())
    }

    /// Takes the first free seat for `me`; returns its index and new word.
    fn take_seat(&self, me: OwnerId) -> Option<(usize, u64)> {
        for (index, seat) in self.seats.iter().enumerate() {
            // Relaxed: a first look; the compare-and-swap below decides.
            let word = seat.load(Ordering::Relaxed);
            if word & SEAT_OWNER != 0 {
                continue;
            }
            let taken = (word & !SEAT_OWNER).wrapping_add(ONE_TAKING) | u64::from(me.get());
            // AcqRel. Acquire: pairs with the Release store that freed the seat (`leave`, or a
            // recovery), so that its bit was cleared before we set it again. Release: pairs
            // with a recoverer's Acquire load of the seat, so that it sees our registration
            // in the process table (we may have reused a dead sleeper's id) and finds us alive.
            if seat.compare_exchange(word, taken, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                return Some((index, taken));
            }
        }
        None
    }

    /// Ends a sleeper's announcement: clears its bit, then frees its seat.
    fn leave(&self, (index, taken): (usize, u64)) {
        // Relaxed: ordered before the seat's release by the Release store below.
        self.sleepers.fetch_and(!(1 << index), Ordering::Relaxed);
        // Release: the bit is clear before the seat can be taken again; pairs with the Acquire
        // compare-and-swap of `take_seat`.
        self.seats[index].store(taken & !SEAT_OWNER, Ordering::Release);
    }

    /// Frees the seats of sleepers that died asleep (or mid-announcement), and those of
    /// recoverers that died mid-recovery, as `is_dead` (a proof of death) says; `me` names the
    /// recoverer while it works. Returns how many seats it freed. Safe against concurrent
    /// recoverers and sleepers: each seat is taken from the exact word judged (the count of
    /// takings changes with every new sleeper, so a seat re-taken by a process that reused a
    /// dead sleeper's id is never touched).
    pub(crate) fn recover_seats(&self, me: OwnerId, is_dead: impl Fn(OwnerId) -> bool) -> usize {
        let mut freed = 0;
        for (index, seat) in self.seats.iter().enumerate() {
            // Acquire: pairs with the AcqRel compare-and-swap that took the seat, so that the
            // liveness check below sees the taker's registration.
            let word = seat.load(Ordering::Acquire);
            let owner = word & SEAT_OWNER;
            let holder = OwnerId::from_bits(owner & !RECOVERING);
            let Some(holder) = holder.filter(|&h| h != me) else { continue };
            if !is_dead(holder) {
                continue;
            }
            let ours = (word & !SEAT_OWNER) | RECOVERING | u64::from(me.get());
            // AcqRel: makes us the seat's only recoverer (from the exact word judged above).
            if seat.compare_exchange(word, ours, Ordering::AcqRel, Ordering::Relaxed).is_err() {
                continue;
            }
            // The dead process made its last store before it exited, which our proof of its
            // death came after: this clear is ordered after its `fetch_or`, if it made one.
            // Relaxed: ordered before the seat's release by the Release store below.
            self.sleepers.fetch_and(!(1 << index), Ordering::Relaxed);
            // Release: the bit is clear before the seat is free; pairs with `take_seat`.
            seat.store(word & !SEAT_OWNER, Ordering::Release);
            freed += 1;
        }
        freed
    }

    /// Whether a seat names `owner`, as a sleeper or as a recoverer (before its process-table
    /// entry is reused).
    #[cfg_attr(shmap_loom, allow(dead_code))] // the owner-reference scan is not built under loom
    pub(crate) fn seats_name(seats: &[AtomicU64], owner: OwnerId) -> bool {
        seats.iter().any(|seat| {
            let bits = seat.load(Ordering::Relaxed) & SEAT_OWNER & !RECOVERING;
            bits == u64::from(owner.get())
        })
    }

    /// The sleepers sitting in `seats` (recoverers at work on a seat are not listed).
    #[cfg(not(shmap_loom))]
    pub(crate) fn seat_owners(seats: &[AtomicU64]) -> impl Iterator<Item = OwnerId> + '_ {
        seats.iter().filter_map(|seat| {
            let bits = seat.load(Ordering::Relaxed) & SEAT_OWNER;
            if bits & RECOVERING != 0 { None } else { OwnerId::from_bits(bits) }
        })
    }

    /// How many sleepers are announced now.
    pub(crate) fn announced(&self) -> u32 {
        self.sleepers.load(Ordering::Relaxed).count_ones()
    }

    #[cfg(not(shmap_loom))]
    fn wait(&self, seen: u32, timeout: Duration) {
        // The kernel sleeps only while `seq` still holds the value we saw before announcing
        // ourselves.
        // SAFETY: `self.seq` is a live, aligned 32-bit atomic in the ring's mapping.
        let _ = unsafe { crate::sys::futex_wait(self.seq.as_ptr(), seen, Some(timeout)) };
    }

    #[cfg(shmap_loom)]
    fn wait(&self, _: u32, _: Duration) {
        // Loom has no futex: let the model run another thread instead.
        crate::sync::primitive::yield_now();
    }
}

/// An event count over words of its own, for the loom models of the wake-up protocol and of
/// seat recovery in `ring/loom_tests.rs`. Owners are given as plain ids (1..=4095).
#[cfg(all(test, shmap_loom))]
pub(crate) struct LoomEvent {
    /// As [`Event::seq`].
    pub(crate) seq: AtomicU32,
    /// As [`Event::sleepers`].
    pub(crate) sleepers: AtomicU64,
    /// As [`Event::seats`] (a few: the models use the first ones).
    pub(crate) seats: [AtomicU64; 4],
}

#[cfg(all(test, shmap_loom))]
impl Default for LoomEvent {
    fn default() -> Self {
        LoomEvent {
            seq: AtomicU32::new(0),
            sleepers: AtomicU64::new(0),
            seats: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// A seat taken by [`LoomEvent::announce_and_check`].
#[cfg(all(test, shmap_loom))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoomSeat(Option<(usize, u64)>);

#[cfg(all(test, shmap_loom))]
impl LoomEvent {
    fn event(&self) -> Event<'_> {
        Event { seq: &self.seq, sleepers: &self.sleepers, seats: &self.seats }
    }

    fn owner(id: u16) -> OwnerId {
        OwnerId::from_bits(u64::from(id)).expect("an owner id in 1..=4095")
    }

    /// [`Event::notify`].
    pub(crate) fn notify(&self) {
        self.event().notify();
    }

    /// The first half of [`Event::sleep`] for owner `me`: announces a sleeper and checks
    /// `ready()`; returns what it returned, the `seq` the sleeper would wait on, and its seat,
    /// still announced (as a sleeper in `futex_wait` would be) until [`leave`](Self::leave).
    pub(crate) fn announce_and_check(
        &self,
        me: u16,
        ready: impl FnOnce() -> bool,
    ) -> (bool, u32, LoomSeat) {
        let (seen, seat, _) = self.event().announce(Some(Self::owner(me)));
        (ready(), seen, LoomSeat(seat))
    }

    /// The end of [`Event::sleep`].
    pub(crate) fn leave(&self, seat: LoomSeat) {
        if let Some(seat) = seat.0 {
            self.event().leave(seat);
        }
    }

    /// [`Event::recover_seats`] by owner `me`, with the owners for which `is_dead` holds
    /// proven dead.
    pub(crate) fn recover_seats(&self, me: u16, is_dead: impl Fn(u16) -> bool) -> usize {
        self.event().recover_seats(Self::owner(me), |o| is_dead(o.get()))
    }

    /// Whether `seat` is taken and its bit set.
    pub(crate) fn is_announced(&self, seat: LoomSeat) -> bool {
        seat.0.is_some_and(|(index, taken)| {
            // Acquire: as the loads of `recover_seats`.
            self.seats[index].load(Ordering::Acquire) == taken
                && self.sleepers.load(Ordering::Acquire) & (1 << index) != 0
        })
    }
}

#[cfg(all(test, not(shmap_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;

    struct Words {
        seq: AtomicU32,
        sleepers: AtomicU64,
        seats: Vec<AtomicU64>,
        flag: AtomicBool,
    }

    impl Words {
        fn event(&self) -> Event<'_> {
            Event { seq: &self.seq, sleepers: &self.sleepers, seats: &self.seats }
        }
    }

    fn words() -> Arc<Words> {
        Arc::new(Words {
            seq: AtomicU32::new(0),
            sleepers: AtomicU64::new(0),
            seats: (0..SEATS).map(|_| AtomicU64::new(0)).collect(),
            flag: AtomicBool::new(false),
        })
    }

    fn owner(id: u16) -> OwnerId {
        OwnerId::from_bits(u64::from(id)).unwrap()
    }

    #[test]
    fn a_ready_condition_does_not_sleep() {
        let w = words();
        let start = Instant::now();
        assert!(w.event().sleep(Some(owner(1)), Duration::from_secs(5), || true));
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(w.sleepers.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_sleep_ends_at_its_timeout() {
        let w = words();
        let start = Instant::now();
        assert!(!w.event().sleep(Some(owner(1)), Duration::from_millis(30), || false));
        assert!(start.elapsed() >= Duration::from_millis(25), "{:?}", start.elapsed());
    }

    /// A sleeper is woken by a notify long before its timeout.
    #[test]
    fn notify_wakes_a_sleeper() {
        let w = words();
        let sleeper = {
            let w = Arc::clone(&w);
            std::thread::spawn(move || {
                let start = Instant::now();
                // Acquire: pairs with the Release store of `flag` below.
                while !w.flag.load(Ordering::Acquire) {
                    w.event().sleep(Some(owner(1)), Duration::from_secs(20), || {
                        w.flag.load(Ordering::Acquire)
                    });
                }
                start.elapsed()
            })
        };
        // Relaxed: only waits until the sleeper has announced itself.
        while w.sleepers.load(Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        // Release: pairs with the sleeper's Acquire loads; `notify` then orders it before its
        // look at `sleepers`.
        w.flag.store(true, Ordering::Release);
        w.event().notify();
        let slept = sleeper.join().unwrap();
        assert!(slept < Duration::from_secs(10), "woken after {slept:?}, not by the timeout");
    }

    /// A sleeper that died announced (its seat and bit left behind) is recovered: its bit is
    /// cleared, its seat freed, and a live sleeper's seat is left alone.
    #[test]
    fn seats_of_dead_sleepers_are_recovered_and_live_ones_kept() {
        let w = words();
        let e = w.event();
        let (_, dead, _) = e.announce(Some(owner(7)));
        let (_, live, _) = e.announce(Some(owner(8)));
        assert_eq!(e.announced(), 2);
        assert!(Event::seats_name(&w.seats, owner(7)));
        assert_eq!(e.notify(), Notified::NobodyAsleep, "nobody is in futex_wait");
        assert_eq!(e.recover_seats(owner(9), |o| o == owner(7)), 1);
        assert_eq!(e.recover_seats(owner(9), |o| o == owner(7)), 0, "only once");
        assert_eq!(e.announced(), 1);
        assert!(!Event::seats_name(&w.seats, owner(7)));
        e.leave(live.unwrap());
        assert_eq!((e.announced(), e.notify()), (0, Notified::Nobody));
        // The dead sleeper's seat is free again, with another count of takings.
        let (_, again, _) = e.announce(Some(owner(7)));
        assert_eq!(again.unwrap().0, dead.unwrap().0);
        assert_ne!(again.unwrap().1, dead.unwrap().1);
    }

    /// With every seat taken, a sleeper is not announced and naps briefly instead.
    #[test]
    fn a_sleeper_without_a_seat_naps() {
        let w = words();
        let e = w.event();
        for _ in 0..SEATS {
            assert!(e.announce(Some(owner(3))).1.is_some());
        }
        assert_eq!(e.announce(Some(owner(4))).1, None);
        let start = Instant::now();
        assert!(!e.sleep(Some(owner(4)), Duration::from_secs(5), || false));
        assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
    }
}
