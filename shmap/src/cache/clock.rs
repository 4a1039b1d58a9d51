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
//! A handle's reads may take the time from a ticker's word instead ([`ReadClock::Ticked`],
//! see [`ticker`](super::ticker)): a call of the clock costs a lookup about as much as the
//! lookup itself, a load of the word almost nothing.
//!
//! What it costs: the coarse clock advances once per kernel tick (its resolution,
//! `clock_getres`, was 4 ms here), so an entry expires up to one tick late; and a step of the
//! system clock (`date -s`, not NTP's slewing) moves every expiry with it, shortening or
//! lengthening what remains of the TTLs by the step.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
    // A clock set before 1970 reads as the epoch (and never as `NO_TIME`).
    u64::try_from(now.tv_sec).unwrap_or(0) * 1000 + (now.tv_nsec as u64) / 1_000_000
}

/// How a cache handle's reads (`get`, `get_many`, `contains_key`, `ttl_remaining`, `iter`)
/// tell the time, to decide whether an entry has expired. Writes always read the clock.
///
/// A choice of each handle, not recorded in the segment: processes sharing a cache may choose
/// differently.
///
/// # Examples
///
/// ```
/// use shmap::{Backing, ReadClock, ShmCache};
/// use std::time::Duration;
///
/// let sessions = ShmCache::<u64, u64>::options()
///     .capacity(1024)
///     .default_ttl(Duration::from_secs(30))
///     .read_clock(ReadClock::Ticked(Duration::from_millis(1)))
///     .open(&Backing::Heap)?;
/// sessions.insert(&7, &1)?;
/// assert_eq!(sessions.get(&7)?, Some(1)); // no clock call: a load of the ticker's word
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadClock {
    /// A read that finds an entry with an expiry reads the coarse clock (the default): an
    /// entry is absent to every read from its expiry on, to the clock's tick. The call costs
    /// about as much as a lookup (see BENCHMARKS.md, "Cache mode").
    #[default]
    PerRead,
    /// Reads load a word of this process that a background thread (`shmap-clock`, one per
    /// process, started when a ticked cache is opened) refreshes from the clock every period, from
    /// 1 ms to 1 s: a read costs a load rather than a clock call, and may return an entry up
    /// to a period, plus the thread's scheduling delay, after its expiry. That delay is
    /// unbounded while the thread cannot run and readers can: after a `SIGSTOP`, a cgroup's
    /// CPU throttling or a paused VM, reads may see the time from before the pause until
    /// the thread next runs. A process where the thread cannot be started (a thread limit, a
    /// sandbox) reads the clock instead, and so does a `fork` child until its own thread
    /// runs (libc's `fork` only: a child of the raw system call keeps a word that stands
    /// still). `ttl_remaining` may overstate what remains by up to a period. The scheduling
    /// delay is tens of milliseconds where the reading threads keep the ticker's CPU busy (a
    /// review saw reads 81 ms after expiry with `Ticked(1 ms)` and a busy reader pinned to the
    /// ticker's only CPU). Suits caches whose TTLs are long against the period (sessions, rate-limit
    /// windows); the technique of `quanta`'s `Upkeep` and memcached's `current_time`.
    Ticked(Duration),
}

/// Where a cache reads the time: the coarse real-time clock, a ticker's word (reads only), or
/// in tests a clock they set.
#[derive(Clone, Debug, Default)]
pub(crate) enum Clock {
    #[default]
    System,
    /// [`ReadClock::Ticked`]'s word (see [`ticker`](super::ticker)).
    Ticked,
    #[cfg(test)]
    Manual(std::sync::Arc<AtomicU64>),
}

/// The value of a [`TimeWord`] that holds no time (a ticker that has not stored one). Every
/// entry with an expiry compares as expired against it (`expiry - 1 < u64::MAX`), which sends
/// a lookup to its out-of-line check, where it reads the clock; an entry without one compares
/// as live (`0 - 1` wraps to `u64::MAX`).
pub(crate) const NO_TIME: u64 = u64::MAX;

/// A word that lookups load the time from and compare an entry's expiry with in line: the
/// ticker's, or in tests the test's clock. (Outside tests this is one variant: a pointer.)
#[derive(Clone, Debug)]
pub(crate) enum TimeWord {
    Static(&'static AtomicU64),
    #[cfg(test)]
    Shared(std::sync::Arc<AtomicU64>),
}

impl TimeWord {
    /// The word's time, or [`NO_TIME`].
    #[inline(always)]
    pub(crate) fn load(&self) -> u64 {
        // Relaxed: a time value; nothing is published through the word.
        match self {
            TimeWord::Static(word) => word.load(Ordering::Relaxed),
            #[cfg(test)]
            TimeWord::Shared(word) => word.load(Ordering::Relaxed),
        }
    }
}

impl Clock {
    /// The word this clock's time can be loaded from, if reading it is a load rather than a
    /// clock call (a ticker's; the test's).
    pub(crate) fn word(&self) -> Option<TimeWord> {
        match self {
            Clock::System => None,
            Clock::Ticked => Some(TimeWord::Static(super::ticker::word())),
            #[cfg(test)]
            Clock::Manual(ms) => Some(TimeWord::Shared(ms.clone())),
        }
    }

    #[inline(always)]
    pub(crate) fn now_ms(&self) -> u64 {
        match self {
            Clock::System => now_ms(),
            Clock::Ticked => super::ticker::recent_ms(),
            #[cfg(test)]
            // Relaxed: the test's own value; nothing is published through it.
            Clock::Manual(ms) => ms.load(Ordering::Relaxed),
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
