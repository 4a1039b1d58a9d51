//! A process-wide clock word that a background thread refreshes: the time a cache's reads use
//! with [`ReadClock::Ticked`](super::ReadClock::Ticked).
//!
//! The cached-clock technique of `quanta`'s `Upkeep` thread with `Clock::recent`, and of
//! memcached's `current_time`: one thread reads the clock every period and stores it in a
//! word; readers load the word. A load of a word that changes once a period costs a read
//! almost nothing, where a call of the vDSO's `clock_gettime` costs about as much as a lookup
//! (see BENCHMARKS.md, "Cache mode").
//!
//! The word is this process's own (a static, not in any segment): it is written once a period
//! and read by this process's threads only, so no cache line bounces between processes.
//!
//! - **Started on demand.** Opening a ticked cache starts the thread (and in a `fork` child, the
//!   first ticked read); until it has stored a time, and for good if it cannot be started (a
//!   thread limit, a sandbox that forbids `clone`), reads fall back to reading the clock:
//!   never to a stale time.
//! - **After `fork`.** A child has no ticker thread (threads do not survive `fork`), and its
//!   copy of the word would stand still. A `pthread_atfork` child handler clears the word, so
//!   the child's first ticked read starts a ticker of its own. (`posix_spawn` and `vfork` run
//!   no fork handlers; their children exec at once and never read the word.) A child made by
//!   the raw `fork` or `clone` system call, bypassing libc, runs no handler either: its word
//!   stands still and its entries never expire to ticked reads. Only libc's `fork` is
//!   supported (checking the process id on every read would cost what the word saves).
//! - **The same clock as writes.** The thread reads `CLOCK_REALTIME_COARSE` like every other
//!   reading of a cache, so the word never runs ahead of the clock that writes stamp expiries
//!   with: a ticked read sees an entry expire at most a period (plus the thread's scheduling
//!   delay) later than a read of the clock would. (Except for up to a period after the system
//!   clock is stepped back, when the word still holds a reading from before the step.)
//! - **Its period** is the shortest any cache of the process asked for; a shorter one asked
//!   for later takes effect within 10 ms.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use super::clock::NO_TIME;

/// The time the ticker thread stored last (Unix ms), or [`NO_TIME`] when no ticker thread runs
/// in this process (none started yet, one could not be started, or this is a `fork` child).
static RECENT_MS: AtomicU64 = AtomicU64::new(NO_TIME);

/// The ticker's period in microseconds: the shortest asked for.
static PERIOD_US: AtomicU64 = AtomicU64::new(u64::MAX);

/// Whether a ticker thread runs: one of the states below.
static STATE: AtomicU8 = AtomicU8::new(IDLE);
/// No ticker thread in this process (also in a `fork` child of a process with one).
const IDLE: u8 = 0;
/// A thread is being started, or runs.
const RUNNING: u8 = 1;
/// The thread could not be started: reads read the clock.
const FAILED: u8 = 2;

/// The shortest period a ticker accepts.
pub(crate) const MIN_PERIOD: Duration = Duration::from_millis(1);
/// The longest period a ticker accepts.
pub(crate) const MAX_PERIOD: Duration = Duration::from_secs(1);

/// Asks for a ticker that refreshes at least every `period` (between [`MIN_PERIOD`] and
/// [`MAX_PERIOD`]), and starts it if none runs.
pub(crate) fn request(period: Duration) {
    debug_assert!((MIN_PERIOD..=MAX_PERIOD).contains(&period));
    // Relaxed: the thread reads the period at its next tick; nothing else depends on it.
    PERIOD_US.fetch_min(period.as_micros() as u64, Ordering::Relaxed);
    start();
}

/// The time, from the ticker's word if a ticker runs, else from the clock.
#[inline(always)]
pub(crate) fn recent_ms() -> u64 {
    // Relaxed: a time value; nothing is published through the word.
    match RECENT_MS.load(Ordering::Relaxed) {
        NO_TIME => fallback_ms(),
        now => now,
    }
}

/// The ticker's word, for lookups that load it themselves (see `clock::TimeWord`); one that
/// finds [`NO_TIME`] there must read the time with [`recent_ms`], which starts a ticker.
pub(crate) fn word() -> &'static AtomicU64 {
    &RECENT_MS
}

/// A read while no ticker has stored a time: starts one if none runs (in a `fork` child, the
/// first ticked read lands here) and reads the clock.
#[cold]
#[inline(never)]
fn fallback_ms() -> u64 {
    start();
    super::clock::now_ms()
}

/// Starts the ticker thread unless one runs or one failed to start.
fn start() {
    // Relaxed: a plain look first, so that reads in a process whose ticker failed do not
    // each make a locked compare-and-swap; the compare-and-swap below decides.
    if cfg!(miri) || STATE.load(Ordering::Relaxed) != IDLE {
        return; // (Miri runs no foreign fork handlers: reads read the clock there)
    }
    // The fork handler first, before the state says RUNNING: a child forked after the
    // compare-and-swap below then also inherits the handler, which sets its state back to
    // IDLE (glibc's `fork` and `pthread_atfork` take one lock, so a registration either
    // happened before a fork or after it). Registered the other way round, a fork in between
    // would leave the child RUNNING with no thread, reading the clock for good (found by a
    // review with a widened window). Without the handler, no ticker: a child would read a
    // word that stands still.
    if !fork_handler_registered() {
        // Relaxed: see below; reads keep reading the clock.
        STATE.store(FAILED, Ordering::Relaxed);
        return;
    }
    // Relaxed: the state orders nothing but the start against itself (one thread wins the
    // compare-and-swap), and the word's value needs no ordering.
    if STATE.compare_exchange(IDLE, RUNNING, Ordering::Relaxed, Ordering::Relaxed).is_err() {
        return;
    }
    if std::thread::Builder::new().name("shmap-clock".into()).spawn(tick).is_err() {
        // Relaxed: see above.
        STATE.store(FAILED, Ordering::Relaxed);
    }
}

/// The longest the ticker sleeps at once: a period shortened by a later request takes effect
/// within this, not after the longer period it was sleeping.
const MAX_NAP: Duration = Duration::from_millis(10);

/// The ticker thread: stores the time every period, for the life of the process. It naps at
/// most [`MAX_NAP`] at a time and reads the period again after each nap, so that a cache that
/// asks for 1 ms after another asked for 1 s is not served a word up to 1 s old (it was, 943
/// ms late in a review's test, when the thread slept whole periods).
fn tick() {
    let mut stored = std::time::Instant::now();
    // Relaxed: a time value (never NO_TIME: `now_ms` reads a clock before 1970 as 0).
    RECENT_MS.store(super::clock::now_ms(), Ordering::Relaxed);
    loop {
        // Relaxed: see `request`.
        let period = Duration::from_micros(PERIOD_US.load(Ordering::Relaxed));
        let due = stored + period;
        let now = std::time::Instant::now();
        if now >= due {
            stored = now;
            // Relaxed: as above.
            RECENT_MS.store(super::clock::now_ms(), Ordering::Relaxed);
            continue;
        }
        std::thread::sleep((due - now).min(MAX_NAP));
    }
}

/// Registers, once per process (a child inherits its parent's handlers), the `fork` child
/// handler that clears the word; whether it is registered.
///
/// No lock (a `Once` caught mid-run by a `fork` would hang the child's first start): threads
/// that race here may each register the handler, which only clears the word once more per
/// extra registration, and so may a child forked between a registration and its record.
fn fork_handler_registered() -> bool {
    static REGISTERED: AtomicU8 = AtomicU8::new(0);
    // Relaxed (both): a record of this process's own call; racing callers each call.
    match REGISTERED.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: `after_fork_in_child` is an `extern "C" fn()` that only stores to
            // atomics (async-signal-safe), as a fork handler must be.
            let ok = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) } == 0;
            REGISTERED.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
            ok
        }
        state => state == 1,
    }
}

/// In a `fork` child: no ticker thread runs here, so forget the parent's word.
extern "C" fn after_fork_in_child() {
    // Relaxed (both): the child has one thread at this point.
    RECENT_MS.store(NO_TIME, Ordering::Relaxed);
    STATE.store(IDLE, Ordering::Relaxed);
}

/// Whether a ticker thread runs in this process and has stored a time (tests).
#[cfg(all(test, not(shmap_loom), not(miri)))]
fn ticking() -> bool {
    RECENT_MS.load(Ordering::Relaxed) != NO_TIME
}

#[cfg(all(test, not(shmap_loom), not(miri)))]
mod tests {
    use super::*;
    use crate::cache::clock::now_ms;
    use std::time::Instant;

    /// Waits (up to 10 s: the machine may be loaded) for the ticker to store a time.
    fn wait_for_ticker() {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ticking() {
            assert!(Instant::now() < deadline, "no ticker thread stored a time in 10 s");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn the_word_follows_the_clock_and_never_runs_ahead_of_it() {
        request(MIN_PERIOD);
        wait_for_ticker();
        let (mut worst, mut rounds) = (0, 0);
        let until = Instant::now() + Duration::from_millis(300);
        while Instant::now() < until {
            let recent = recent_ms();
            let now = now_ms();
            // Read in this order, the word can only be behind: it holds an earlier reading of
            // the same clock.
            assert!(recent <= now, "the ticker's word {recent} ran ahead of the clock {now}");
            worst = worst.max(now - recent);
            rounds += 1;
            std::thread::sleep(Duration::from_millis(2));
        }
        // A generous bound (the period is 1 ms): a word that stood still would fall 300 ms
        // behind in this loop.
        assert!(worst < 250, "the word fell {worst} ms behind the clock in {rounds} rounds");
    }

    #[test]
    fn the_period_is_the_shortest_asked_for() {
        request(MAX_PERIOD);
        request(MIN_PERIOD);
        request(Duration::from_millis(500));
        assert_eq!(PERIOD_US.load(Ordering::Relaxed), MIN_PERIOD.as_micros() as u64);
    }
}
