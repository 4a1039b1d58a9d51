//! Who a process is ([`ProcessIdentity`]: pid, start time, boot id, pid namespace) and
//! whether it is still alive ([`Liveness`]), told from `/proc` and `kill(2)`; dead only on proof.

/// What a process-table entry says about a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcessIdentity {
    /// The pid, in the registering process's pid namespace.
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22), in the time base of
    /// the initial time namespace (the kernel shifts field 22 by the reader's boottime
    /// offset; shmap subtracts its own), 0 if unknown.
    pub start_time: u64,
    /// A hash of the boot id, 0 if unknown.
    pub boot_id: u64,
    /// The inode of the pid namespace, 0 if unknown.
    pub pid_namespace: u64,
}

/// Whether the process behind an owner is still running.
///
/// Only [`Dead`](Liveness::Dead) allows anyone to take a lock, a ring role or a claimed cell
/// away from its holder, and it is said only on proof (see [`ProcessIdentity::liveness`]):
/// robbing a live holder loses a committed update, which is worse than waiting for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// The process exists and is the one that registered (same start time).
    Alive,
    /// Proven gone: the pid does not exist (`ESRCH`), it names another process (another start
    /// time), it belonged to an earlier boot, or the process is a zombie with no live thread.
    Dead,
    /// Cannot be told from here, so never robbed: another pid namespace, `/proc` unreadable
    /// (`hidepid`, `EACCES`, `EMFILE`, a read error), or this process's own identity unknown.
    Unknown,
}

impl std::fmt::Display for Liveness {
    /// `alive`, `dead` or `unknown`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Liveness::Alive => "alive",
            Liveness::Dead => "dead",
            Liveness::Unknown => "unknown",
        })
    }
}

/// This process could not read its own identity, so it cannot register in a segment: its
/// locks could not be told apart from those of a dead process that had its pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot read this process's identity: {what} failed with {source}")]
pub struct IdentityError {
    /// What could not be read (`/proc/self/stat`, the boot id, the pid namespace).
    pub what: &'static str,
    /// The error of that read.
    pub source: crate::sys::Errno,
}

/// A process could not register in a segment's process table, so it cannot lock anything
/// there (every lock names its holder's entry). The same for every structure.
///
/// # Examples
///
/// ```
/// use shmap::{Backing, RegisterError, Segment, ShmHashTable};
///
/// # let name = format!("/shmap-doc-register-{}", std::process::id());
/// let table = ShmHashTable::<u64, u64>::open_or_create(&name, 16)?;
/// let inspector = Segment::inspect(&Backing::shm(&name))?;
/// assert_eq!(inspector.owner(), Err(RegisterError::ReadOnly));
/// # table.destroy()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// Every entry is held by a live process, or by one not provably dead.
    #[error("all {max} process-table entries are taken by live (or not provably dead) processes")]
    TooManyProcesses {
        /// The table's size.
        max: usize,
    },
    /// This process cannot read its own identity from `/proc`: its locks could not be told
    /// from a dead process's. Mount `/proc` (of this pid namespace), or free a file descriptor.
    #[error(transparent)]
    IdentityUnavailable(IdentityError),
    /// The handle was opened by [`Segment::inspect`](crate::Segment::inspect): it holds no
    /// process-table entry and cannot lock or release anything.
    #[error("this handle only inspects the segment (read-only, not registered)")]
    ReadOnly,
}

impl ProcessIdentity {
    /// The identity of the calling process: read from `/proc` once per process (again in a
    /// `fork` child, whose pid differs), then served from memory, so that it stays known when
    /// the process later runs out of file descriptors.
    ///
    /// # Errors
    /// [`IdentityError`] if `/proc/self/stat`, the boot id or the pid namespace cannot be read
    /// (or reads as zero): a process that cannot name itself must not lock anything.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Liveness, ProcessIdentity};
    ///
    /// let me = ProcessIdentity::current()?;
    /// assert_eq!(me.pid, std::process::id());
    /// assert_eq!(me.liveness(), Liveness::Alive);
    /// # Ok::<(), shmap::IdentityError>(())
    /// ```
    pub fn current() -> Result<ProcessIdentity, IdentityError> {
        own::identity()
    }

    /// Whether this process is still alive, as far as the calling process can prove.
    ///
    /// [`Liveness::Dead`] only on proof: `kill(pid, 0)` fails with `ESRCH`; or the pid's start
    /// time (`/proc/<pid>/stat`) differs from the recorded one by more than a clock tick, read
    /// by a process without a time-namespace offset; or the process is a zombie whose leader is
    /// its last thread (`Threads: 1` in `/proc/<pid>/status`: a process whose main thread
    /// called `pthread_exit` shows `Z` while its other threads run, and is alive). [`Liveness::Unknown`] when it cannot be told: another pid namespace,
    /// `/proc` hidden (`hidepid`) or unreadable (`EACCES`, `EMFILE`, ...), the calling
    /// process's own identity unknown, or a process that runs with the recorded pid and start
    /// time while the recorded boot id differs from this process's view of it.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Liveness, ProcessIdentity};
    ///
    /// let me = ProcessIdentity::current()?;
    /// // The same pid with another start time is another process: this one's pid was reused.
    /// let earlier = ProcessIdentity { start_time: me.start_time - 1, ..me };
    /// assert_eq!(earlier.liveness(), Liveness::Dead);
    /// # Ok::<(), shmap::IdentityError>(())
    /// ```
    pub fn liveness(&self) -> Liveness {
        let Ok(me) = ProcessIdentity::current() else {
            return Liveness::Unknown;
        };
        if self.pid_namespace != me.pid_namespace {
            // Its pid means nothing here, whatever its boot id says (a boot id can be faked by
            // a bind mount; a pid namespace's processes are checked from inside it).
            return Liveness::Unknown;
        }
        let other_boot = self.boot_id != 0 && self.boot_id != me.boot_id;
        if self.pid == me.pid {
            // We hold this pid in this namespace now, and our own identity is certain (read at
            // our registration): an entry that differs from it is another process that had
            // our pid, so it is gone.
            return match self.start_time {
                t if t == me.start_time && !other_boot => Liveness::Alive,
                0 => Liveness::Unknown,
                _ => Liveness::Dead,
            };
        }
        match self.liveness_of_other() {
            // A process with its pid and start time runs, but the entry says another boot:
            // either an unrelated process that happens to match, or a faked boot-id view.
            // Neither is proof of anything.
            Liveness::Alive if other_boot => Liveness::Unknown,
            liveness => liveness,
        }
    }

    #[cfg(miri)]
    fn liveness_of_other(&self) -> Liveness {
        Liveness::Unknown
    }

    #[cfg(not(miri))]
    fn liveness_of_other(&self) -> Liveness {
        use crate::sys::{Errno, probe_pid};
        match probe_pid(self.pid) {
            Err(Errno(libc::ESRCH)) => return Liveness::Dead,
            // EPERM: it exists, under another uid.
            Ok(()) | Err(Errno(libc::EPERM)) => {}
            Err(_) => return Liveness::Unknown,
        }
        let stat = match read_stat(&self.pid.to_string()) {
            Ok(stat) => stat,
            // Gone between the probe and the read, or hidden from us (`hidepid` answers ENOENT
            // too): only a second probe can tell the two apart.
            Err(Errno(libc::ENOENT | libc::ESRCH)) => {
                return match probe_pid(self.pid) {
                    Err(Errno(libc::ESRCH)) => Liveness::Dead,
                    _ => Liveness::Unknown,
                };
            }
            Err(_) => return Liveness::Unknown, // EMFILE, EACCES, EIO, ...
        };
        // Start times are in clock ticks, normalised to the initial time namespace (two
        // readers whose boottime offsets are not whole ticks can round one tick apart). A
        // reader in a time namespace of its own cannot normalise exactly (the kernel adds its
        // offset to field 22 in wrapping arithmetic, and a process may have entered the
        // namespace after it started), so there a difference proves nothing.
        let same_start = match (self.start_time, own::normalised_start_time(stat.start_time)) {
            (0, _) | (_, None) => None,
            (recorded, Some(seen)) => Some(recorded.abs_diff(seen) <= 1),
        };
        match same_start {
            Some(false) if own::in_initial_time_base() => return Liveness::Dead, // pid reused
            Some(false) | None => return Liveness::Unknown,
            Some(true) => {}
        }
        if is_exited(stat.state) {
            // A zombie leader may still have live threads (after `pthread_exit` in main).
            return live_threads(self.pid);
        }
        Liveness::Alive
    }
}

/// A task state of `/proc/<pid>/stat` that no longer runs code: zombie or dead.
#[cfg(not(miri))]
fn is_exited(state: char) -> bool {
    matches!(state, 'Z' | 'X' | 'x')
}

/// Whether a process whose leader is a zombie still has live threads, from the `Threads:` line
/// of `/proc/<pid>/status`: the count of the thread group's threads not yet released, which
/// never undercounts live ones (a listing of `/proc/<pid>/task` can skip threads created while
/// others exit). `Dead` only when the leader is the one thread left, `Unknown` if the file
/// cannot be read.
#[cfg(not(miri))]
fn live_threads(pid: u32) -> Liveness {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Liveness::Unknown;
    };
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
    let threads: Option<u64> = field("Threads:").and_then(|t| t.parse().ok());
    let leader_exited = field("State:").and_then(|s| s.chars().next()).is_some_and(is_exited);
    match threads {
        Some(1) if leader_exited => Liveness::Dead,
        Some(n) if n > 1 => Liveness::Alive,
        // The leader runs again? (It cannot; a changed state means a changed process.)
        _ => Liveness::Unknown,
    }
}

#[cfg(not(miri))]
struct Stat {
    /// Field 1: the pid, as the `/proc` that was read numbers it.
    pid: u32,
    state: char,
    /// Field 22, as the reader's time namespace shifts it (see `own::normalised_start_time`).
    start_time: u64,
}

/// Parses `/proc/<who>/stat`: the state (field 3) and the start time (field 22). The command
/// name (field 2) may contain spaces and parentheses, so fields are counted from the last `)`.
/// A text that does not parse is `EIO`: something we cannot tell anything from.
#[cfg(not(miri))]
fn read_stat(who: &str) -> Result<Stat, crate::sys::Errno> {
    let errno = |e: std::io::Error| crate::sys::Errno(e.raw_os_error().unwrap_or(libc::EIO));
    let text = std::fs::read_to_string(format!("/proc/{who}/stat")).map_err(errno)?;
    let parse = || {
        let pid = text.split(' ').next()?.parse().ok()?;
        let after_comm = &text[text.rfind(')')? + 1..];
        let mut fields = after_comm.split_whitespace();
        let state = fields.next()?.chars().next()?;
        // `fields` now starts at field 4; field 22 is 18 further on.
        let start_time = fields.nth(18)?.parse().ok()?;
        Some(Stat { pid, state, start_time })
    };
    parse().ok_or(crate::sys::Errno(libc::EIO))
}

/// The calling process's identity, read once per process and kept in atomics (not a lock,
/// which a `fork` child could inherit held). The `fork` child handler forgets it, so a child
/// reads its own, even one that got its parent's pid number in a new pid namespace.
mod own {
    use super::{IdentityError, ProcessIdentity};
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    /// The pid the fields below were read for; 0 while nothing is cached.
    static PID: AtomicU32 = AtomicU32::new(0);
    /// The incarnation (see `process::incarnation`) they were read in.
    static INCARNATION: AtomicU64 = AtomicU64::new(0);
    static START_TIME: AtomicU64 = AtomicU64::new(0);
    static BOOT_ID: AtomicU64 = AtomicU64::new(0);
    static PID_NAMESPACE: AtomicU64 = AtomicU64::new(0);
    /// The inode of this process's time namespace, and its boottime offset in clock ticks
    /// (an `i64`).
    static TIME_NAMESPACE: AtomicU64 = AtomicU64::new(0);
    static BOOT_OFFSET_TICKS: AtomicU64 = AtomicU64::new(0);

    pub(super) fn identity() -> Result<ProcessIdentity, IdentityError> {
        let pid = std::process::id();
        let incarnation = crate::process::incarnation();
        // Acquire: pairs with the Release store of `PID` below, after the fields it vouches for.
        if PID.load(Ordering::Acquire) == pid && INCARNATION.load(Ordering::Relaxed) == incarnation
        {
            return Ok(ProcessIdentity {
                pid,
                start_time: START_TIME.load(Ordering::Relaxed),
                boot_id: BOOT_ID.load(Ordering::Relaxed),
                pid_namespace: PID_NAMESPACE.load(Ordering::Relaxed),
            });
        }
        let (me, time) = read(pid)?;
        // Threads racing here store the same values (one process, one identity).
        START_TIME.store(me.start_time, Ordering::Relaxed);
        BOOT_ID.store(me.boot_id, Ordering::Relaxed);
        PID_NAMESPACE.store(me.pid_namespace, Ordering::Relaxed);
        TIME_NAMESPACE.store(time.namespace, Ordering::Relaxed);
        BOOT_OFFSET_TICKS.store(time.offset_ticks as u64, Ordering::Relaxed);
        INCARNATION.store(incarnation, Ordering::Relaxed);
        // Release: publishes the fields above; pairs with the Acquire load of `PID` above.
        PID.store(pid, Ordering::Release);
        Ok(me)
    }

    /// A start time (field 22 of a `/proc/<pid>/stat` this process read) in the time base of
    /// the initial time namespace: the kernel shifts it by the reader's boottime offset, so
    /// processes in different time namespaces (CRIU restores, `unshare -T`) compare the same
    /// values. `None` if this process has left the time namespace it registered in (`setns`),
    /// whose offset it knows. Valid once [`identity`] has succeeded.
    pub(super) fn normalised_start_time(raw: u64) -> Option<u64> {
        if time_namespace_inode() != Some(TIME_NAMESPACE.load(Ordering::Relaxed)) {
            return None;
        }
        let offset = BOOT_OFFSET_TICKS.load(Ordering::Relaxed) as i64;
        Some(raw.wrapping_sub(offset as u64))
    }

    /// Whether this process reads start times unshifted (no boottime offset), so that a
    /// difference from a recorded one is exact to the tick.
    pub(super) fn in_initial_time_base() -> bool {
        BOOT_OFFSET_TICKS.load(Ordering::Relaxed) == 0
    }

    /// The inode of `/proc/self/ns/time` (no file descriptor needed), `Some(0)` where time
    /// namespaces do not exist.
    #[cfg(not(miri))]
    fn time_namespace_inode() -> Option<u64> {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata("/proc/self/ns/time") {
            Ok(m) => Some(m.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(0),
            Err(_) => None,
        }
    }

    #[cfg(miri)]
    fn time_namespace_inode() -> Option<u64> {
        Some(0)
    }

    /// This process's time namespace: its inode and its boottime offset in ticks.
    struct TimeNamespace {
        namespace: u64,
        offset_ticks: i64,
    }

    /// Under Miri there is no `/proc`: a fixed identity (liveness of others is `Unknown`).
    #[cfg(miri)]
    fn read(pid: u32) -> Result<(ProcessIdentity, TimeNamespace), IdentityError> {
        let me = ProcessIdentity { pid, start_time: 1, boot_id: 1, pid_namespace: 1 };
        Ok((me, TimeNamespace { namespace: 0, offset_ticks: 0 }))
    }

    #[cfg(not(miri))]
    fn read(pid: u32) -> Result<(ProcessIdentity, TimeNamespace), IdentityError> {
        use crate::sys::Errno;
        use std::os::unix::fs::MetadataExt;
        let fail = |what, e: std::io::Error| IdentityError {
            what,
            source: Errno(e.raw_os_error().unwrap_or(libc::EIO)),
        };
        let refuse = |what, errno| IdentityError { what, source: Errno(errno) };
        let stat = super::read_stat("self")
            .map_err(|source| IdentityError { what: "reading /proc/self/stat", source })?;
        if ns_pids().map_err(|e| fail("reading /proc/self/status", e))? != [pid] {
            // A pid namespace without a `/proc` of its own (`NSpid:` lists our pid in the
            // namespace of the `/proc` mount and every one below it): every pid we would read
            // there is another namespace's.
            return Err(refuse(
                "matching /proc/self to this process (/proc belongs to another pid namespace)",
                libc::ESRCH,
            ));
        }
        // Unreadable under `/proc` mounted `subset=pid`: unknown (0), which only ever weakens
        // a verdict (see `liveness`).
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").map_or(0, |id| {
            crate::layout::LayoutHasher::new().write_str(id.trim()).finish().max(1)
        });
        let pid_namespace = std::fs::metadata("/proc/self/ns/pid")
            .map_err(|e| fail("reading /proc/self/ns/pid", e))?
            .ino();
        let time = time_namespace().map_err(|e| fail("reading /proc/self/ns/time", e))?;
        let start_time = stat.start_time.wrapping_sub(time.offset_ticks as u64);
        if stat.start_time == 0 || start_time == 0 {
            return Err(refuse("the start time in /proc/self/stat (zero)", libc::EIO));
        }
        if stat.start_time > boottime_ticks() {
            // Our own start time, shifted by the kernel in wrapping arithmetic, came out later
            // than now: we entered a time namespace after we started.
            return Err(refuse("normalising the start time in /proc/self/stat", libc::ERANGE));
        }
        if pid_namespace == 0 {
            return Err(refuse("the pid namespace inode of /proc/self/ns/pid (zero)", libc::EIO));
        }
        Ok((ProcessIdentity { pid, start_time, boot_id, pid_namespace }, time))
    }

    /// The `NSpid:` line of `/proc/self/status`: this process's pid in the pid namespace of
    /// the `/proc` mount and in each one below it, down to its own. Where the line is missing
    /// (before Linux 4.1), the pid of `/proc/self/stat`.
    #[cfg(not(miri))]
    fn ns_pids() -> std::io::Result<Vec<u32>> {
        let status = std::fs::read_to_string("/proc/self/status")?;
        let pids = match status.lines().find_map(|l| l.strip_prefix("NSpid:")) {
            Some(line) => line.split_whitespace().filter_map(|p| p.parse().ok()).collect(),
            None => super::read_stat("self").map(|s| vec![s.pid]).unwrap_or_default(),
        };
        Ok(pids)
    }

    /// This process's time namespace. `/proc/self/timens_offsets` shows the offsets of the
    /// namespace of our future children, which is ours unless we called
    /// `unshare(CLONE_NEWTIME)`: then our own offset is unknown, and we refuse.
    #[cfg(not(miri))]
    fn time_namespace() -> std::io::Result<TimeNamespace> {
        use std::os::unix::fs::MetadataExt;
        let inode = |path| match std::fs::metadata(path) {
            Ok(m) => Ok(m.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0), // before Linux 5.6
            Err(e) => Err(e),
        };
        let (ours, children) =
            (inode("/proc/self/ns/time")?, inode("/proc/self/ns/time_for_children")?);
        if ours != children {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        Ok(TimeNamespace { namespace: ours, offset_ticks: boottime_offset_ticks()? })
    }

    /// `CLOCK_BOOTTIME` now, in clock ticks, as this process's time namespace shifts it (as
    /// it shifts field 22), plus a tick of slack.
    #[cfg(not(miri))]
    fn boottime_ticks() -> u64 {
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `now` is a valid out-pointer; CLOCK_BOOTTIME exists since Linux 2.6.39.
        unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
        // SAFETY: `sysconf` has no preconditions.
        let ticks_per_second = i128::from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).max(1);
        let ns = i128::from(now.tv_sec) * 1_000_000_000 + i128::from(now.tv_nsec);
        // One tick of slack: the start time is rounded up from the same clock.
        (ns * ticks_per_second / 1_000_000_000 + 1).max(0) as u64
    }

    /// The boottime offset of this process's time namespace, in clock ticks (rounded down):
    /// `/proc/self/timens_offsets`, absent before Linux 5.6 (no time namespaces: 0).
    #[cfg(not(miri))]
    fn boottime_offset_ticks() -> std::io::Result<i64> {
        let text = match std::fs::read_to_string("/proc/self/timens_offsets") {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let invalid = || std::io::Error::from_raw_os_error(libc::EIO);
        let line = text.lines().find(|l| l.starts_with("boottime")).ok_or_else(invalid)?;
        let mut fields = line.split_whitespace().skip(1);
        let mut next = || -> std::io::Result<i128> {
            fields.next().and_then(|f| f.parse().ok()).ok_or_else(invalid)
        };
        let (secs, nanos) = (next()?, next()?);
        // SAFETY: `sysconf` has no preconditions.
        let ticks_per_second = i128::from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) });
        if ticks_per_second <= 0 {
            return Err(invalid());
        }
        let offset_ns = secs * 1_000_000_000 + nanos;
        Ok((offset_ns * ticks_per_second).div_euclid(1_000_000_000) as i64)
    }
}
