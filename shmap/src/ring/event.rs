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
use crate::primitive::{AtomicU32, AtomicU64, Ordering};

/// One direction of a ring: "items were published" or "space was freed".
#[derive(Clone, Copy)]
pub(crate) struct Event<'a> {
    /// Bumped by each wake (wrapping); the futex word.
    pub(crate) seq: &'a AtomicU32,
    /// How many sleepers are between announcing themselves and leaving.
    pub(crate) sleepers: &'a AtomicU64,
}

impl Event<'_> {
    /// Wakes the sleepers, if there are any. Call it right after the `Release` store (or
    /// read-modify-write) that published the progress.
    #[inline]
    pub(crate) fn notify(&self) {
        barrier::light();
        // Relaxed: ordered after the caller's publication by the light barrier, which pairs
        // with the heavy barrier in `sleep` (see the module documentation).
        if self.sleepers.load(Ordering::Relaxed) != 0 {
            self.wake();
        }
    }

    #[cold]
    fn wake(&self) {
        // Release: a sleeper that sees the new `seq` also sees what was published before it.
        self.seq.fetch_add(1, Ordering::Release);
        #[cfg(not(shmap_loom))]
        // SAFETY: `self.seq` is a live, aligned 32-bit atomic in the ring's mapping.
        let _ = unsafe { crate::sys::futex_wake(self.seq.as_ptr(), i32::MAX) };
    }

    /// Sleeps for at most `timeout` unless `ready()`, checked after announcing the sleep, holds;
    /// returns what `ready()` returned. A wake, the timeout, a signal or a spurious return all
    /// end the sleep: the caller checks its condition again either way.
    pub(crate) fn sleep(&self, timeout: Duration, ready: impl FnOnce() -> bool) -> bool {
        let (seen, paired) = self.announce();
        // Without `membarrier` a publisher's wake may be missed, so the sleep is bounded.
        let timeout = if paired { timeout } else { timeout.min(barrier::FALLBACK_NAP) };
        let ready = ready();
        if !ready {
            self.wait(seen, timeout);
        }
        self.leave();
        ready
    }

    /// Announces a sleeper: returns the `seq` to sleep on and whether the barrier paired with
    /// every publisher's (see [`barrier::heavy`]).
    fn announce(&self) -> (u32, bool) {
        // Acquire: pairs with the Release bump in `wake`.
        let seen = self.seq.load(Ordering::Acquire);
        // Relaxed: ordered before the caller's re-check by the heavy barrier below.
        self.sleepers.fetch_add(1, Ordering::Relaxed);
        // Pairs with the light barrier in `notify` (see the module documentation).
        (seen, barrier::heavy())
    }

    /// Ends a sleeper's announcement.
    fn leave(&self) {
        // Release: the announcement ends after the sleep; no one reads what follows it.
        self.sleepers.fetch_sub(1, Ordering::Release);
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
        crate::primitive::yield_now();
    }
}

/// An event count over two words of its own, for the loom model of the wake-up protocol in
/// `tests/loom_rings.rs`.
#[cfg(shmap_loom)]
#[doc(hidden)]
#[derive(Default)]
pub struct LoomEvent {
    /// As [`Event::seq`].
    pub seq: AtomicU32,
    /// As [`Event::sleepers`].
    pub sleepers: AtomicU64,
}

#[cfg(shmap_loom)]
impl LoomEvent {
    fn event(&self) -> Event<'_> {
        Event { seq: &self.seq, sleepers: &self.sleepers }
    }

    /// [`Event::notify`].
    pub fn notify(&self) {
        self.event().notify();
    }

    /// The first half of [`Event::sleep`]: announces a sleeper and checks `ready()`; returns
    /// what it returned and the `seq` the sleeper would wait on, still announced (as a sleeper
    /// in `futex_wait` would be) until [`leave`](Self::leave).
    pub fn announce_and_check(&self, ready: impl FnOnce() -> bool) -> (bool, u32) {
        let (seen, _) = self.event().announce();
        (ready(), seen)
    }

    /// The end of [`Event::sleep`].
    pub fn leave(&self) {
        self.event().leave();
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
        flag: AtomicBool,
    }

    impl Words {
        fn event(&self) -> Event<'_> {
            Event { seq: &self.seq, sleepers: &self.sleepers }
        }
    }

    fn words() -> Arc<Words> {
        Arc::new(Words {
            seq: AtomicU32::new(0),
            sleepers: AtomicU64::new(0),
            flag: AtomicBool::new(false),
        })
    }

    #[test]
    fn a_ready_condition_does_not_sleep() {
        let w = words();
        let start = Instant::now();
        assert!(w.event().sleep(Duration::from_secs(5), || true));
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(w.sleepers.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_sleep_ends_at_its_timeout() {
        let w = words();
        let start = Instant::now();
        assert!(!w.event().sleep(Duration::from_millis(30), || false));
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
                    w.event().sleep(Duration::from_secs(20), || w.flag.load(Ordering::Acquire));
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
}
