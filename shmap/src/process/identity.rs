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
    /// time (`/proc/<pid>/stat`) differs from the recorded one by more than a clock tick; or
    /// `/proc/<pid>/task` shows only zombie threads (a process whose main
    /// thread called `pthread_exit` shows `Z` in `/proc/<pid>/stat` while its other threads
    /// run: it is alive). [`Liveness::Unknown`] when it cannot be told: another pid namespace,
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
        // Start times are in clock ticks, normalised to the initial time namespace; two
        // readers in time namespaces whose boottime offsets are not whole ticks can round one
        // tick apart, so only a larger difference proves that the pid names another process.
        let start_time = own::normalised_start_time(stat.start_time);
        if self.start_time != 0 && start_time.abs_diff(self.start_time) > 1 {
            return Liveness::Dead; // the pid now names another process
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

/// Whether any thread of `pid` has not exited, from `/proc/<pid>/task/*/stat`: `Dead` only if
/// every listed thread is a zombie, `Unknown` if the directory cannot be read.
#[cfg(not(miri))]
fn live_threads(pid: u32) -> Liveness {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Liveness::Unknown;
    };
    for task in tasks {
        let Ok(task) = task else { return Liveness::Unknown };
        let tid = task.file_name();
        let Some(tid) = tid.to_str() else { continue };
        match read_stat(&format!("{pid}/task/{tid}")) {
            Ok(stat) if !is_exited(stat.state) => return Liveness::Alive,
            Ok(_) => {}
            // This thread exited since the listing: it is not a live one.
            Err(crate::sys::Errno(libc::ENOENT | libc::ESRCH)) => {}
            Err(_) => return Liveness::Unknown,
        }
    }
    Liveness::Dead
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
pub(super) mod own {
    use super::{IdentityError, ProcessIdentity};
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    /// The pid the fields below were read for; 0 while nothing is cached.
    pub(crate) static PID: AtomicU32 = AtomicU32::new(0);
    static START_TIME: AtomicU64 = AtomicU64::new(0);
    static BOOT_ID: AtomicU64 = AtomicU64::new(0);
    static PID_NAMESPACE: AtomicU64 = AtomicU64::new(0);
    /// This process's time namespace boottime offset, in clock ticks (an `i64`).
    static BOOT_OFFSET_TICKS: AtomicU64 = AtomicU64::new(0);

    pub(super) fn identity() -> Result<ProcessIdentity, IdentityError> {
        // Installs the `fork` child handler that forgets the cache, before anything is cached.
        crate::process::fork_generation();
        let pid = std::process::id();
        // Acquire: pairs with the Release store of `PID` below, after the fields it vouches for.
        if PID.load(Ordering::Acquire) == pid {
            return Ok(ProcessIdentity {
                pid,
                start_time: START_TIME.load(Ordering::Relaxed),
                boot_id: BOOT_ID.load(Ordering::Relaxed),
                pid_namespace: PID_NAMESPACE.load(Ordering::Relaxed),
            });
        }
        let (me, offset) = read(pid)?;
        // Threads racing here store the same values (one process, one identity).
        START_TIME.store(me.start_time, Ordering::Relaxed);
        BOOT_ID.store(me.boot_id, Ordering::Relaxed);
        PID_NAMESPACE.store(me.pid_namespace, Ordering::Relaxed);
        BOOT_OFFSET_TICKS.store(offset as u64, Ordering::Relaxed);
        // Release: publishes the fields above; pairs with the Acquire load of `PID` above.
        PID.store(pid, Ordering::Release);
        Ok(me)
    }

    /// A start time (field 22 of a `/proc/<pid>/stat` this process read) in the time base of
    /// the initial time namespace: the kernel shifts it by the reader's boottime offset, so
    /// processes in different time namespaces (CRIU restores, `unshare -T`) compare the same
    /// values. Valid once [`identity`] has succeeded.
    pub(super) fn normalised_start_time(raw: u64) -> u64 {
        let offset = BOOT_OFFSET_TICKS.load(Ordering::Relaxed) as i64;
        raw.wrapping_sub(offset as u64)
    }

    /// Under Miri there is no `/proc`: a fixed identity (liveness of others is `Unknown`).
    #[cfg(miri)]
    fn read(pid: u32) -> Result<(ProcessIdentity, i64), IdentityError> {
        Ok((ProcessIdentity { pid, start_time: 1, boot_id: 1, pid_namespace: 1 }, 0))
    }

    #[cfg(not(miri))]
    fn read(pid: u32) -> Result<(ProcessIdentity, i64), IdentityError> {
        use crate::sys::Errno;
        let fail = |what, e: std::io::Error| IdentityError {
            what,
            source: Errno(e.raw_os_error().unwrap_or(libc::EIO)),
        };
        let refuse = |what, errno| IdentityError { what, source: Errno(errno) };
        let stat = super::read_stat("self")
            .map_err(|source| IdentityError { what: "reading /proc/self/stat", source })?;
        if stat.pid != pid {
            // A pid namespace without a `/proc` of its own: every pid we would read there is
            // another namespace's.
            return Err(refuse(
                "matching /proc/self to this process (/proc belongs to another pid namespace)",
                libc::ESRCH,
            ));
        }
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map_err(|e| fail("reading /proc/sys/kernel/random/boot_id", e))?;
        let boot_id = crate::layout::LayoutHasher::new().write_str(boot_id.trim()).finish().max(1);
        let pid_namespace = {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self/ns/pid")
                .map_err(|e| fail("reading /proc/self/ns/pid", e))?
                .ino()
        };
        let offset =
            boottime_offset_ticks().map_err(|e| fail("reading /proc/self/timens_offsets", e))?;
        let start_time = stat.start_time.wrapping_sub(offset as u64);
        if stat.start_time == 0 || start_time == 0 {
            return Err(refuse("the start time in /proc/self/stat (zero)", libc::EIO));
        }
        if pid_namespace == 0 {
            return Err(refuse("the pid namespace inode of /proc/self/ns/pid (zero)", libc::EIO));
        }
        Ok((ProcessIdentity { pid, start_time, boot_id, pid_namespace }, offset))
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
