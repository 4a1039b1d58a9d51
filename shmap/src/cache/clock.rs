//! The time a cache measures expiry in: milliseconds since the Unix epoch, from the kernel's
//! coarse real-time clock (`CLOCK_REALTIME_COARSE`).
//!
//! Why this clock:
//! - **Every process agrees.** All processes of a host read the same real-time clock, also
//!   across PID and time namespaces (a time namespace shifts only the monotonic and boot
//!   clocks, which two containers sharing a segment could therefore disagree on).
//! - **It outlives a reboot.** A file-backed cache keeps its expiries across a reboot, and
//!   they stay wall-clock instants: an entry due at 12:00 is expired at 12:00 whether or not
//!   the host rebooted in between (a monotonic clock restarts at boot, and would keep old
//!   entries alive for as long as the host had been up).
//! - **It is cheap.** The coarse clock is a read of the vDSO's data page, with no timer read:
//!   4.7 ns a call on the benchmark machine, against 24 ns for `CLOCK_REALTIME`.
//!
//! What it costs: the coarse clock advances once per kernel tick (its resolution,
//! `clock_getres`, was 4 ms here), so an entry expires up to one tick late; and a step of the
//! system clock (`date -s`, not NTP's slewing) moves every expiry with it, shortening or
//! lengthening what remains of the TTLs by the step.

/// Milliseconds since the Unix epoch, now (coarse).
#[inline]
pub(crate) fn now_ms() -> u64 {
    if cfg!(miri) {
        // Miri (with isolation) has no wall clock: a monotonic one from a fixed start.
        return 1_700_000_000_000 + std::time::Instant::now().elapsed().as_millis() as u64;
    }
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid out-pointer; CLOCK_REALTIME_COARSE exists since Linux 2.6.32.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut now) };
    (now.tv_sec as u64) * 1000 + (now.tv_nsec as u64) / 1_000_000
}

/// Where a cache reads the time: the coarse real-time clock, or in tests a clock they set.
#[derive(Clone, Debug, Default)]
pub(crate) enum Clock {
    #[default]
    System,
    #[cfg(test)]
    Manual(std::sync::Arc<std::sync::atomic::AtomicU64>),
}

impl Clock {
    #[inline(always)]
    pub(crate) fn now_ms(&self) -> u64 {
        match self {
            Clock::System => now_ms(),
            #[cfg(test)]
            // Relaxed: the test's own value; nothing is published through it.
            Clock::Manual(ms) => ms.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}

#[cfg(all(test, not(shmap_loom), not(miri)))]
mod tests {
    #[test]
    fn the_clock_is_the_wall_clock_to_a_tick() {
        let system =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis()
                as u64;
        let coarse = super::now_ms();
        assert!(coarse.abs_diff(system) < 1000, "coarse {coarse} vs SystemTime {system}");
    }
}
