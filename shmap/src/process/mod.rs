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

mod identity;
mod table;

use std::num::NonZeroU16;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

pub use identity::{IdentityError, Liveness, ProcessIdentity, RegisterError};
pub(crate) use table::{ProcEntry, ProcessTable};

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
    identity::own::PID.store(0, Ordering::Relaxed);
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
mod tests;
