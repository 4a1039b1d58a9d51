//! Waiting for a busy slot: spin, then yield, then sleep, under a timeout.
//!
//! Modelled on `crossbeam-utils/src/backoff.rs` and parking_lot's `SpinWait`, with what a
//! cross-process table adds: every wait is bounded by a timeout, because the holder of a slot
//! may be another process that hangs or dies.
//!
//! [`Backoff`] is the default policy: `spin_loop` hints doubling up to 2^6 per step (a slot is
//! usually released within a few hundred nanoseconds), then `yield_now` (the holder may be
//! descheduled on this core), then sleeps doubling from 20 µs to a 1 ms cap (a holder that is
//! slow for real should not be polled in a tight loop by every waiter). Each of those limits is
//! configurable. The original C++ `Backoff` yielded first and then slept in 1 ns steps, which
//! the kernel rounds up to tens of microseconds, and it read the clock in its constructor on
//! every `Visit`; shmap reads the clock only once a wait begins ([`Waiter`]), never on the
//! uncontended path.

use std::time::{Duration, Instant};

/// A policy for what to do between two attempts to take a busy slot.
///
/// # Examples
///
/// A policy that only yields:
///
/// ```
/// use shmap::BackoffPolicy;
///
/// #[derive(Clone, Default)]
/// struct YieldOnly;
/// impl BackoffPolicy for YieldOnly {
///     fn snooze(&mut self) {
///         std::thread::yield_now();
///     }
///     fn reset(&mut self) {}
/// }
/// ```
pub trait BackoffPolicy: Clone {
    /// Waits a little; called once per failed attempt, escalating as the policy sees fit.
    fn snooze(&mut self);
    /// Starts over, as if no attempt had failed (called when a wait ends successfully).
    fn reset(&mut self);
}

/// The default [`BackoffPolicy`]: spin, then yield, then sleep with exponential growth to a cap.
///
/// # Examples
///
/// ```
/// use shmap::{Backoff, BackoffPolicy};
/// use std::time::Duration;
///
/// let mut b = Backoff::new().max_sleep(Duration::from_micros(200));
/// for _ in 0..20 {
///     b.snooze(); // a few spins, then yields, then short sleeps
/// }
/// assert!(b.is_sleeping());
/// b.reset();
/// assert!(!b.is_sleeping());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    step: u32,
    spin_steps: u32,
    yield_steps: u32,
    min_sleep: Duration,
    max_sleep: Duration,
}

impl Backoff {
    /// Spin steps (each spins 2^step times, so 2^6 − 1 = 63 hints in all).
    pub const DEFAULT_SPIN_STEPS: u32 = 6;
    /// Yield steps after spinning.
    pub const DEFAULT_YIELD_STEPS: u32 = 10;
    /// The first sleep.
    pub const DEFAULT_MIN_SLEEP: Duration = Duration::from_micros(20);
    /// The longest sleep.
    pub const DEFAULT_MAX_SLEEP: Duration = Duration::from_millis(1);

    /// The default policy.
    pub const fn new() -> Self {
        Backoff {
            step: 0,
            spin_steps: Self::DEFAULT_SPIN_STEPS,
            yield_steps: Self::DEFAULT_YIELD_STEPS,
            min_sleep: Self::DEFAULT_MIN_SLEEP,
            max_sleep: Self::DEFAULT_MAX_SLEEP,
        }
    }

    /// Sets how many doubling spin steps come first (0: no spinning).
    pub const fn spin_steps(mut self, steps: u32) -> Self {
        self.spin_steps = if steps > 16 { 16 } else { steps };
        self
    }

    /// Sets how many `yield_now` steps follow the spins.
    pub const fn yield_steps(mut self, steps: u32) -> Self {
        self.yield_steps = steps;
        self
    }

    /// Sets the first sleep (later sleeps double it).
    pub const fn min_sleep(mut self, d: Duration) -> Self {
        self.min_sleep = d;
        self
    }

    /// Sets the cap of the sleeps.
    pub const fn max_sleep(mut self, d: Duration) -> Self {
        self.max_sleep = d;
        self
    }

    /// Whether the policy has moved past spinning and yielding to sleeping.
    pub const fn is_sleeping(&self) -> bool {
        self.step >= self.spin_steps + self.yield_steps
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

impl BackoffPolicy for Backoff {
    fn snooze(&mut self) {
        if self.step < self.spin_steps {
            for _ in 0..(1u32 << self.step) {
                crate::sync::primitive::spin_loop();
            }
        } else if self.step < self.spin_steps + self.yield_steps {
            crate::sync::primitive::yield_now();
        } else {
            let doublings = (self.step - self.spin_steps - self.yield_steps).min(20);
            let sleep = self.min_sleep.saturating_mul(1 << doublings).min(self.max_sleep);
            sleep_for(sleep);
        }
        self.step = self.step.saturating_add(1);
    }

    fn reset(&mut self) {
        self.step = 0;
    }
}

#[cfg(not(shmap_loom))]
fn sleep_for(d: Duration) {
    std::thread::sleep(d);
}

#[cfg(shmap_loom)]
fn sleep_for(_: Duration) {
    // Under loom, time does not pass: let the model schedule another thread instead.
    crate::sync::primitive::yield_now();
}

/// How long an operation may wait for a busy slot, and how it waits.
///
/// The default is the original library's: 5 seconds with [`Backoff`].
///
/// # Examples
///
/// ```
/// use shmap::{Backoff, Wait};
/// use std::time::Duration;
///
/// let quick = Wait::timeout(Duration::from_millis(50));
/// let patient = Wait::timeout(Duration::from_secs(30)).with_backoff(Backoff::new().spin_steps(0));
/// assert_eq!(Wait::default().timeout, Duration::from_secs(5));
/// # let _ = (quick, patient);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Wait<B = Backoff> {
    /// The longest an operation waits for one busy slot before it gives up with a timeout.
    pub timeout: Duration,
    /// What it does between attempts.
    pub backoff: B,
    /// How long a wait lasts before it checks whether the slot's holder is still alive, and
    /// then how often it checks again. A dead holder's slot is recovered by the waiter.
    pub stale_check: Duration,
}

impl Wait<Backoff> {
    /// The original library's default timeout.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// The default stale-check interval: a dead holder costs its waiters at most about this
    /// long, and a liveness check (a `kill(pid, 0)` and a read of `/proc/<pid>/stat`) is made at
    /// most this often per wait.
    pub const DEFAULT_STALE_CHECK: Duration = Duration::from_millis(100);

    /// A wait of at most `timeout`, with the default [`Backoff`].
    pub const fn timeout(timeout: Duration) -> Self {
        Wait { timeout, backoff: Backoff::new(), stale_check: Self::DEFAULT_STALE_CHECK }
    }
}

impl<B> Wait<B> {
    /// The same timeout with another policy.
    pub fn with_backoff<C: BackoffPolicy>(self, backoff: C) -> Wait<C> {
        Wait { timeout: self.timeout, backoff, stale_check: self.stale_check }
    }

    /// The same wait with another stale-check interval.
    pub fn with_stale_check(mut self, interval: Duration) -> Self {
        self.stale_check = interval;
        self
    }
}

impl Default for Wait<Backoff> {
    fn default() -> Self {
        Wait::timeout(Wait::DEFAULT_TIMEOUT)
    }
}

/// The state of one wait: the policy plus a deadline that is set by the first failed attempt.
///
/// Creating a `Waiter` costs nothing (no clock read); only [`pause`](Self::pause) reads the clock.
#[derive(Debug)]
pub(crate) struct Waiter<B> {
    #[cfg_attr(shmap_loom, allow(dead_code))] // under loom, waits never expire
    timeout: Duration,
    backoff: B,
    started: Option<Instant>,
    #[cfg_attr(shmap_loom, allow(dead_code))] // under loom, every pause checks
    stale_check: Duration,
    #[cfg_attr(shmap_loom, allow(dead_code))] // under loom, every pause checks
    last_check: Option<Instant>,
}

/// A wait ran past its timeout; carries how long it waited.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expired(pub(crate) Duration);

impl<B: BackoffPolicy> Waiter<B> {
    pub(crate) fn new(wait: Wait<B>) -> Self {
        Waiter {
            timeout: wait.timeout,
            backoff: wait.backoff,
            started: None,
            stale_check: wait.stale_check,
            last_check: None,
        }
    }

    /// Waits once, or reports that the timeout has passed since the first pause.
    pub(crate) fn pause(&mut self) -> Result<(), Expired> {
        #[cfg(not(shmap_loom))]
        {
            let now = Instant::now();
            let started = *self.started.get_or_insert(now);
            let waited = now.saturating_duration_since(started);
            if waited >= self.timeout {
                return Err(Expired(waited));
            }
        }
        self.backoff.snooze();
        Ok(())
    }

    /// Whether it is time to check that the holder of the awaited slot is alive: once the wait
    /// has lasted the stale-check interval, and then once per interval.
    pub(crate) fn stale_check_due(&mut self) -> bool {
        #[cfg(shmap_loom)]
        {
            true // time does not pass under loom: explore the check at every pause
        }
        #[cfg(not(shmap_loom))]
        {
            let Some(started) = self.started else { return false };
            let now = Instant::now();
            if now.saturating_duration_since(self.last_check.unwrap_or(started)) < self.stale_check
            {
                return false;
            }
            self.last_check = Some(now);
            true
        }
    }

    /// Starts the timeout at the first call, and reports how long the wait has lasted, or
    /// that it has run past its timeout (never under loom, where time does not pass). For
    /// waits that sleep on their own (the rings' futex): see [`spin_or_yield`](Self::spin_or_yield).
    pub(crate) fn elapsed(&mut self) -> Result<Duration, Expired> {
        let now = Instant::now();
        let started = *self.started.get_or_insert(now);
        let waited = now.saturating_duration_since(started);
        if waited >= self.timeout && cfg!(not(shmap_loom)) {
            return Err(Expired(waited));
        }
        Ok(waited)
    }

    /// Whether the wait has begun (a pause or [`elapsed`](Self::elapsed) has been called).
    pub(crate) fn has_started(&self) -> bool {
        self.started.is_some()
    }

    /// What is left of the timeout after `waited`.
    pub(crate) fn remaining(&self, waited: Duration) -> Duration {
        self.timeout.saturating_sub(waited)
    }

    /// The stale-check interval.
    pub(crate) fn stale_check_interval(&self) -> Duration {
        self.stale_check
    }
}

impl Waiter<Backoff> {
    /// Takes one spin or yield step of the backoff and returns true, or returns false once the
    /// backoff has reached its sleeping steps (the caller then sleeps its own way: the rings
    /// sleep in `futex(2)`).
    pub(crate) fn spin_or_yield(&mut self) -> bool {
        if self.backoff.is_sleeping() {
            return false;
        }
        self.backoff.snooze();
        true
    }
}

#[cfg(all(test, not(shmap_loom)))]
mod tests {
    use super::*;

    #[test]
    fn backoff_escalates_from_spinning_to_sleeping() {
        let mut b = Backoff::new().spin_steps(2).yield_steps(2);
        for _ in 0..4 {
            assert!(!b.is_sleeping());
            b.snooze();
        }
        assert!(b.is_sleeping());
    }

    #[test]
    fn sleeps_are_capped() {
        let mut b = Backoff::new()
            .spin_steps(0)
            .yield_steps(0)
            .min_sleep(Duration::from_micros(1))
            .max_sleep(Duration::from_micros(50));
        for _ in 0..30 {
            b.snooze(); // would sleep 2^29 µs without the cap
        }
    }

    #[test]
    fn waiter_expires_after_its_timeout() {
        let timeout = Duration::from_millis(if cfg!(miri) { 1 } else { 20 });
        let mut w = Waiter::new(Wait::timeout(timeout));
        let start = Instant::now();
        let mut pauses = 0;
        let expired = loop {
            match w.pause() {
                Ok(()) => pauses += 1,
                Err(e) => break e,
            }
        };
        assert!(pauses > 0);
        assert!(expired.0 >= timeout, "expired after {:?} < {timeout:?}", expired.0);
        assert!(start.elapsed() >= timeout);
    }

    /// The uncontended path never reads the clock: a waiter starts its timeout at its first
    /// pause, not when it is created (the original's `Backoff` read it in its constructor).
    #[test]
    fn the_clock_is_read_only_once_a_wait_begins() {
        let mut w = Waiter::new(Wait::default());
        assert!(w.started.is_none());
        w.pause().unwrap();
        assert!(w.started.is_some());
    }
}
