//! Process identity: who holds a slot, and whether that process is still alive.
//!
//! A locked slot names its holder in its control word, written by the same compare-and-swap
//! that takes the lock, so a crash can never leave a lock without an owner. The name is a
//! 12-bit [`OwnerId`]: an index into the segment's **process table**, where each attached
//! handle registers on open (and again in a `fork` child, on first use) and releases its entry
//! on drop. An entry records the pid together with what makes a pid unambiguous:
//!
//! - the process's start time (field 22 of `/proc/<pid>/stat`, clock ticks since boot), so a
//!   pid reused by a new process is recognised as a different process;
//! - the boot id (`/proc/sys/kernel/random/boot_id`), so entries left in a file-backed segment
//!   by a previous boot are known to be dead;
//! - the pid namespace (`/proc/self/ns/pid`'s inode), so a pid from another namespace is
//!   reported [`Liveness::Unknown`], never [`Liveness::Dead`].
//!
//! This is the "registered process table" option of DESIGN.md, chosen over a per-process
//! `flock` file (one more file per process and path to manage) and over a bare pid in the
//! control word (which cannot tell a dead holder from a new process with its pid).
//!
//! An entry whose process died without releasing it is only reused once a scan of the structure
//! proves that no slot is still locked by it: otherwise the new process would inherit the dead
//! one's locks and look like a live holder.

use std::num::NonZeroU16;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// How many processes (more exactly, table handles) can be attached to one segment at once.
pub const MAX_PROCESSES: usize = 4095;

/// A registered process's index in a segment's process table (1..=4095), as stored in the
/// control word of each slot it has locked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OwnerId(NonZeroU16);

impl OwnerId {
    /// The id stored in a control word, if it is in range.
    pub(crate) fn from_bits(bits: u64) -> Option<OwnerId> {
        let bits = u16::try_from(bits).ok()?;
        let id = NonZeroU16::new(bits)?;
        (usize::from(bits) <= MAX_PROCESSES).then_some(OwnerId(id))
    }

    /// The id from a process-table index.
    fn from_index(index: usize) -> OwnerId {
        OwnerId::from_bits(index as u64 + 1).expect("process-table indexes are below MAX_PROCESSES")
    }

    /// The value stored in control words.
    pub fn get(self) -> u16 {
        self.0.get()
    }

    fn index(self) -> usize {
        usize::from(self.0.get()) - 1
    }
}

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
mod own {
    use super::{IdentityError, ProcessIdentity};
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    /// The pid the fields below were read for; 0 while nothing is cached.
    pub(super) static PID: AtomicU32 = AtomicU32::new(0);
    static START_TIME: AtomicU64 = AtomicU64::new(0);
    static BOOT_ID: AtomicU64 = AtomicU64::new(0);
    static PID_NAMESPACE: AtomicU64 = AtomicU64::new(0);
    /// This process's time namespace boottime offset, in clock ticks (an `i64`).
    static BOOT_OFFSET_TICKS: AtomicU64 = AtomicU64::new(0);

    pub(super) fn identity() -> Result<ProcessIdentity, IdentityError> {
        // Installs the `fork` child handler that forgets the cache, before anything is cached.
        super::fork_generation();
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

// ---------------------------------------------------------------------------------------------
// The table in the segment header

/// Entry states.
const FREE: u32 = 0;
/// Being filled in (by a registration) or checked (by a reclaim); others skip it.
const CLAIMED: u32 = 1;
/// Filled in: the fields describe a registered process.
const ACTIVE: u32 = 2;

/// One registered process. Fields are written while the entry is CLAIMED and published by the
/// Release store of ACTIVE; readers load `state` with Acquire before reading them.
#[repr(C)]
pub(crate) struct ProcEntry {
    state: AtomicU32,
    pid: AtomicU32,
    start_time: AtomicU64,
    boot_id: AtomicU64,
    pid_namespace: AtomicU64,
}

/// The process table of a segment, over memory in its header.
pub(crate) struct ProcessTable<'a> {
    entries: &'a [ProcEntry],
}

/// Registration failed: every entry is held by a live (or not provably dead) process.
#[derive(Debug)]
pub(crate) struct ProcessTableFull;

impl<'a> ProcessTable<'a> {
    pub(crate) fn new(entries: &'a [ProcEntry]) -> Self {
        ProcessTable { entries }
    }

    /// Registers `me` and returns its id.
    ///
    /// Takes a free entry if there is one; otherwise reclaims the entry of a dead process that
    /// `is_referenced` says no slot still names.
    pub(crate) fn register(
        &self,
        me: &ProcessIdentity,
        is_referenced: &dyn Fn(OwnerId) -> bool,
    ) -> Result<OwnerId, ProcessTableFull> {
        let n = self.entries.len();
        let start = me.pid as usize % n;
        for i in (start..n).chain(0..start) {
            let entry = &self.entries[i];
            // Acquire on success: pairs with the Release store of FREE in `release`, so the
            // previous holder's writes to the entry are ordered before ours.
            if entry
                .state
                .compare_exchange(FREE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                fill(entry, me);
                return Ok(OwnerId::from_index(i));
            }
        }
        for i in 0..n {
            if let Some(id) = self.try_reclaim(i, me, is_referenced) {
                return Ok(id);
            }
        }
        Err(ProcessTableFull)
    }

    fn try_reclaim(
        &self,
        i: usize,
        me: &ProcessIdentity,
        is_referenced: &dyn Fn(OwnerId) -> bool,
    ) -> Option<OwnerId> {
        let entry = &self.entries[i];
        // Acquire: pairs with the Release store of ACTIVE in `fill`, making the fields readable.
        if entry.state.load(Ordering::Acquire) != ACTIVE {
            return None;
        }
        let old = read_fields(entry);
        if old.liveness() != Liveness::Dead {
            return None;
        }
        // Acquire: as above; the CAS makes us the only reclaimer of this entry.
        if entry
            .state
            .compare_exchange(ACTIVE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        let id = OwnerId::from_index(i);
        if read_fields(entry) != old || is_referenced(id) {
            // Someone re-registered in between, or a slot still names the dead process: leave
            // the entry to recovery. Release: pairs with the Acquire loads of readers.
            entry.state.store(ACTIVE, Ordering::Release);
            return None;
        }
        fill(entry, me);
        Some(id)
    }

    /// Fills `id`'s entry with `who`, as a registration that reclaimed it would: for the loom
    /// model of owner-id reuse.
    #[cfg(shmap_loom)]
    pub(crate) fn __loom_refill(&self, id: OwnerId, who: &ProcessIdentity) {
        fill(&self.entries[id.index()], who);
    }

    /// Releases `id`'s entry (its process holds no lock any more).
    pub(crate) fn release(&self, id: OwnerId) {
        let entry = &self.entries[id.index()];
        fill_fields(
            entry,
            &ProcessIdentity { pid: 0, start_time: 0, boot_id: 0, pid_namespace: 0 },
        );
        // Release: pairs with the Acquire CAS in `register`, which reuses the entry.
        entry.state.store(FREE, Ordering::Release);
    }

    /// The identity registered under `id`, if the entry is active.
    pub(crate) fn lookup(&self, id: OwnerId) -> Option<ProcessIdentity> {
        let entry = self.entries.get(id.index())?;
        // Acquire: pairs with the Release store of ACTIVE in `fill`.
        (entry.state.load(Ordering::Acquire) == ACTIVE).then(|| read_fields(entry))
    }

    /// Every active entry, for the monitor and `inspect`.
    pub(crate) fn active(&self) -> impl Iterator<Item = (OwnerId, ProcessIdentity)> + '_ {
        (0..self.entries.len()).filter_map(|i| {
            let id = OwnerId::from_index(i);
            self.lookup(id).map(|who| (id, who))
        })
    }
}

fn fill(entry: &ProcEntry, me: &ProcessIdentity) {
    fill_fields(entry, me);
    // Release: publishes the fields above; pairs with the Acquire loads in `lookup`.
    entry.state.store(ACTIVE, Ordering::Release);
}

fn fill_fields(entry: &ProcEntry, me: &ProcessIdentity) {
    entry.pid.store(me.pid, Ordering::Relaxed);
    entry.start_time.store(me.start_time, Ordering::Relaxed);
    entry.boot_id.store(me.boot_id, Ordering::Relaxed);
    entry.pid_namespace.store(me.pid_namespace, Ordering::Relaxed);
}

fn read_fields(entry: &ProcEntry) -> ProcessIdentity {
    ProcessIdentity {
        pid: entry.pid.load(Ordering::Relaxed),
        start_time: entry.start_time.load(Ordering::Relaxed),
        boot_id: entry.boot_id.load(Ordering::Relaxed),
        pid_namespace: entry.pid_namespace.load(Ordering::Relaxed),
    }
}

// ---------------------------------------------------------------------------------------------
// Fork detection

/// Incremented in every `fork` child (by a `pthread_atfork` handler), so that a handle
/// inherited across `fork` notices that its registration belongs to the parent.
static FORK_GENERATION: AtomicU32 = AtomicU32::new(0);

extern "C" fn after_fork_in_child() {
    // Only atomic operations: async-signal-safe, as an atfork child handler must be.
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
    // The child is another process: it reads its own identity (its pid may even equal the
    // parent's, as pid 1 of a new pid namespace).
    own::PID.store(0, Ordering::Relaxed);
}

/// The current fork generation (installs the atfork handler on first call).
pub(crate) fn fork_generation() -> u32 {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        #[cfg(not(miri))]
        {
            // SAFETY: the handler is a plain `extern "C" fn` that only touches a static atomic.
            let ret = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
            assert_eq!(ret, 0, "pthread_atfork failed: {ret}");
        }
    });
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// The current fork generation, without installing the handler (done by the first
/// registration, before any handle can ask).
#[inline]
pub(crate) fn current_fork_generation() -> u32 {
    FORK_GENERATION.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(n: usize) -> Vec<ProcEntry> {
        (0..n)
            .map(|_| ProcEntry {
                state: AtomicU32::new(FREE),
                pid: AtomicU32::new(0),
                start_time: AtomicU64::new(0),
                boot_id: AtomicU64::new(0),
                pid_namespace: AtomicU64::new(0),
            })
            .collect()
    }

    #[test]
    fn owner_ids_round_trip() {
        assert_eq!(OwnerId::from_bits(0), None);
        assert_eq!(OwnerId::from_bits(MAX_PROCESSES as u64 + 1), None);
        let id = OwnerId::from_bits(7).unwrap();
        assert_eq!((id.get(), id.index()), (7, 6));
    }

    #[test]
    fn register_release_lookup() {
        let entries = table(3);
        let t = ProcessTable::new(&entries);
        let me = ProcessIdentity::current().unwrap();
        let a = t.register(&me, &|_| false).unwrap();
        let b = t.register(&me, &|_| false).unwrap();
        assert_ne!(a, b);
        assert_eq!(t.lookup(a), Some(me));
        assert_eq!(t.active().count(), 2);
        t.release(a);
        assert_eq!(t.lookup(a), None);
        assert_eq!(t.register(&me, &|_| false).unwrap(), a, "a released entry is reused");
    }

    #[test]
    fn the_calling_process_is_alive() {
        assert_eq!(ProcessIdentity::current().unwrap().liveness(), Liveness::Alive);
    }

    #[cfg(not(miri))]
    #[test]
    fn current_identity_reads_proc() {
        let me = ProcessIdentity::current().unwrap();
        assert!(me.start_time > 0 && me.boot_id != 0 && me.pid_namespace != 0, "{me:?}");
    }

    #[cfg(not(miri))]
    #[test]
    fn dead_reused_and_foreign_processes() {
        let me = ProcessIdentity::current().unwrap();
        // A child that has exited and been reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = ProcessIdentity { pid, ..me };
        assert_eq!(gone.liveness(), Liveness::Dead);
        // Our pid with another start time: the pid was reused.
        assert_eq!(
            ProcessIdentity { start_time: me.start_time + 1, ..me }.liveness(),
            Liveness::Dead
        );
        // Another boot.
        assert_eq!(ProcessIdentity { boot_id: me.boot_id ^ 1, ..me }.liveness(), Liveness::Dead);
        // Another pid namespace: unknown, never dead.
        let foreign = ProcessIdentity { pid: 1, pid_namespace: me.pid_namespace ^ 1, ..me };
        assert_eq!(foreign.liveness(), Liveness::Unknown);
    }

    #[cfg(not(miri))]
    #[test]
    fn dead_entries_are_reclaimed_only_when_unreferenced() {
        let entries = table(1);
        let t = ProcessTable::new(&entries);
        let me = ProcessIdentity::current().unwrap();
        let dead = ProcessIdentity { start_time: me.start_time + 1, ..me };
        let id = t.register(&dead, &|_| false).unwrap();
        assert!(t.register(&me, &|_| true).is_err(), "a referenced dead entry is kept");
        assert_eq!(t.lookup(id), Some(dead));
        assert_eq!(t.register(&me, &|_| false).unwrap(), id);
        assert_eq!(t.lookup(id), Some(me));
        assert!(t.register(&me, &|_| false).is_err(), "a live entry is never reclaimed");
    }
}
