//! Sleeping until another process makes progress: an event count over two shared words, woken
//! with `futex(2)`.
//!
//! The design is the classic event count (Dmitry Vyukov's `eventcount`, folly's `EventCount`):
//! a sleeper announces itself in `sleepers`, re-checks its condition, and sleeps on `seq` only if
//! the condition still fails; the other side publishes its progress and then, only if
//! `sleepers` is non-zero, bumps `seq` and wakes. Without a sleeper, notifying costs one load.
//!
//! # Why no wake-up is lost
//! The publishing store of the side that makes progress is `SeqCst` and is followed by the
//! `SeqCst` load of `sleepers` in [`Event::notify`]; a sleeper increments `sleepers` with a
//! `SeqCst` read-modify-write and then issues a `SeqCst` fence before it re-checks. In the single
//! total order of `SeqCst` operations either the publication comes before the sleeper's fence
//! (so the re-check sees it and the sleeper does not sleep) or the increment comes before the
//! notifier's load (so the notifier sees a sleeper and wakes it). A wake that lands between the
//! sleeper's re-check and its `futex` call is not lost either: the sleeper passes the `seq` it
//! read before announcing itself, and the kernel refuses to sleep once `seq` has moved.
//!
//! The futex word is the low 32 bits of `seq` (an `AtomicU64` that only ever grows by one), so
//! the kernel compares exactly the part that changes on each wake. Shared, not
//! `FUTEX_PRIVATE_FLAG`: sleepers and wakers are different processes.

use std::time::Duration;

use crate::primitive::{AtomicU64, Ordering, fence};

/// One direction of a ring: "items were published" or "space was freed".
#[derive(Clone, Copy)]
pub(crate) struct Event<'a> {
    /// Bumped by each wake; its low half is the futex word.
    pub(crate) seq: &'a AtomicU64,
    /// How many sleepers are between announcing themselves and leaving.
    pub(crate) sleepers: &'a AtomicU64,
}

impl Event<'_> {
    /// Wakes the sleepers, if there are any. Call it right after the `SeqCst` store that
    /// published the progress.
    #[inline]
    pub(crate) fn notify(&self) {
        // SeqCst: after the caller's SeqCst publishing store in the total order; pairs with the
        // sleeper's SeqCst increment and fence in `sleep` (see the module documentation).
        if self.sleepers.load(Ordering::SeqCst) != 0 {
            self.wake();
        }
    }

    #[cold]
    fn wake(&self) {
        // Release: a sleeper that sees the new `seq` also sees what was published before it.
        self.seq.fetch_add(1, Ordering::Release);
        #[cfg(not(shmap_loom))]
        // SAFETY: `futex_word` points into the live mapping that `self.seq` lives in.
        let _ = unsafe { crate::sys::futex_wake(futex_word(self.seq), i32::MAX) };
    }

    /// Sleeps for at most `timeout` unless `ready()`, checked after announcing the sleep, holds;
    /// returns what `ready()` returned. A wake, the timeout, a signal or a spurious return all
    /// end the sleep: the caller checks its condition again either way.
    pub(crate) fn sleep(&self, timeout: Duration, ready: impl FnOnce() -> bool) -> bool {
        // Acquire: pairs with the Release bump in `wake`.
        let seen = self.seq.load(Ordering::Acquire);
        // SeqCst: pairs with the SeqCst load in `notify` (see the module documentation).
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        // SeqCst fence: orders the announcement before the re-check; pairs with the notifier's
        // SeqCst publication.
        fence(Ordering::SeqCst);
        let ready = ready();
        if !ready {
            self.wait(seen, timeout);
        }
        // Release: the announcement ends after the sleep; no one reads what follows it.
        self.sleepers.fetch_sub(1, Ordering::Release);
        ready
    }

    #[cfg(not(shmap_loom))]
    fn wait(&self, seen: u64, timeout: Duration) {
        // The futex word is `seq`'s low half: the kernel sleeps only while it still reads the
        // value we saw before announcing ourselves.
        // SAFETY: `futex_word` points into the live mapping that `self.seq` lives in.
        let _ = unsafe { crate::sys::futex_wait(futex_word(self.seq), seen as u32, Some(timeout)) };
    }

    #[cfg(shmap_loom)]
    fn wait(&self, _: u64, _: Duration) {
        // Loom has no futex: let the model run another thread instead.
        crate::primitive::yield_now();
    }
}

/// The address of the low 32 bits of `word`.
#[cfg(not(shmap_loom))]
fn futex_word(word: &AtomicU64) -> *const u32 {
    let base = std::ptr::from_ref(word).cast::<u32>();
    if cfg!(target_endian = "little") {
        base
    } else {
        // SAFETY: the second half of the same 8-byte word.
        unsafe { base.add(1) }
    }
}

#[cfg(all(test, not(shmap_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;

    struct Words {
        seq: AtomicU64,
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
            seq: AtomicU64::new(0),
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
                while !w.flag.load(Ordering::SeqCst) {
                    w.event().sleep(Duration::from_secs(20), || w.flag.load(Ordering::SeqCst));
                }
                start.elapsed()
            })
        };
        while w.sleepers.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        w.flag.store(true, Ordering::SeqCst);
        w.event().notify();
        let slept = sleeper.join().unwrap();
        assert!(slept < Duration::from_secs(10), "woken after {slept:?}, not by the timeout");
    }
}
