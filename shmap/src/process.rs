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
    /// Start time in clock ticks since boot (`/proc/<pid>/stat` field 22), 0 if unknown.
    pub start_time: u64,
    /// A hash of the boot id, 0 if unknown.
    pub boot_id: u64,
    /// The inode of the pid namespace, 0 if unknown.
    pub pid_namespace: u64,
}

/// Whether the process behind an owner is still running.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// The process exists and is the one that registered (same start time).
    Alive,
    /// The process has exited (or is a zombie), its pid now names another process, or it
    /// belonged to an earlier boot.
    Dead,
    /// Cannot be told from here: another pid namespace, or `/proc` is unreadable.
    Unknown,
}

impl ProcessIdentity {
    /// The identity of the calling process.
    pub fn current() -> ProcessIdentity {
        let pid = std::process::id();
        #[cfg(miri)]
        {
            ProcessIdentity { pid, start_time: 0, boot_id: 0, pid_namespace: 0 }
        }
        #[cfg(not(miri))]
        {
            let stat = read_stat("self");
            ProcessIdentity {
                pid,
                start_time: stat.map_or(0, |s| s.start_time),
                boot_id: boot_id(),
                pid_namespace: pid_namespace(),
            }
        }
    }

    /// Whether this process is still alive, as far as the calling process can tell.
    pub fn liveness(&self) -> Liveness {
        let me = ProcessIdentity::current();
        if self.boot_id != 0 && me.boot_id != 0 && self.boot_id != me.boot_id {
            return Liveness::Dead;
        }
        if self.pid_namespace != me.pid_namespace {
            return Liveness::Unknown;
        }
        if self.pid == me.pid {
            return if self.start_time == me.start_time { Liveness::Alive } else { Liveness::Dead };
        }
        match crate::sys::probe_pid(self.pid) {
            Err(crate::sys::Errno(libc::ESRCH)) => Liveness::Dead,
            Ok(()) | Err(crate::sys::Errno(libc::EPERM)) => self.check_stat(),
            Err(_) => Liveness::Unknown,
        }
    }

    #[cfg(miri)]
    fn check_stat(&self) -> Liveness {
        Liveness::Unknown
    }

    #[cfg(not(miri))]
    fn check_stat(&self) -> Liveness {
        match read_stat(&self.pid.to_string()) {
            None if std::path::Path::new("/proc/self/stat").exists() => Liveness::Dead,
            None => Liveness::Unknown,
            Some(stat) if matches!(stat.state, 'Z' | 'X' | 'x') => Liveness::Dead,
            Some(stat) if self.start_time != 0 && stat.start_time != self.start_time => {
                Liveness::Dead
            }
            Some(_) => Liveness::Alive,
        }
    }
}

#[cfg(not(miri))]
struct Stat {
    state: char,
    start_time: u64,
}

/// Parses `/proc/<who>/stat`: the state (field 3) and the start time (field 22). The command
/// name (field 2) may contain spaces and parentheses, so fields are counted from the last `)`.
#[cfg(not(miri))]
fn read_stat(who: &str) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{who}/stat")).ok()?;
    let after_comm = &text[text.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // `fields` now starts at field 4; field 22 is 18 further on.
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, start_time })
}

#[cfg(not(miri))]
fn boot_id() -> u64 {
    use std::sync::OnceLock;
    static BOOT_ID: OnceLock<u64> = OnceLock::new();
    *BOOT_ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map_or(0, |id| crate::layout::LayoutHasher::new().write_str(id.trim()).finish().max(1))
    })
}

#[cfg(not(miri))]
fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
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
pub(crate) struct TableFull;

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
    ) -> Result<OwnerId, TableFull> {
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
        Err(TableFull)
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
    // Only an atomic increment: async-signal-safe, as an atfork child handler must be.
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
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
        let me = ProcessIdentity::current();
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
        assert_eq!(ProcessIdentity::current().liveness(), Liveness::Alive);
    }

    #[cfg(not(miri))]
    #[test]
    fn current_identity_reads_proc() {
        let me = ProcessIdentity::current();
        assert!(me.start_time > 0 && me.boot_id != 0 && me.pid_namespace != 0, "{me:?}");
    }

    #[cfg(not(miri))]
    #[test]
    fn dead_reused_and_foreign_processes() {
        let me = ProcessIdentity::current();
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
        let me = ProcessIdentity::current();
        let dead = ProcessIdentity { start_time: me.start_time + 1, ..me };
        let id = t.register(&dead, &|_| false).unwrap();
        assert!(t.register(&me, &|_| true).is_err(), "a referenced dead entry is kept");
        assert_eq!(t.lookup(id), Some(dead));
        assert_eq!(t.register(&me, &|_| false).unwrap(), id);
        assert_eq!(t.lookup(id), Some(me));
        assert!(t.register(&me, &|_| false).is_err(), "a live entry is never reclaimed");
    }
}
