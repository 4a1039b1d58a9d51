//! Process identity: who holds a slot, and whether that process is still alive.
//!
//! A locked slot names its holder in its control word, written by the same compare-and-swap
//! that takes the lock, so a crash can never leave a lock without an owner. The name is a
//! 12-bit [`OwnerId`]: an index into the segment's **process table**, where each attached
//! handle registers on open (and again in a child process, on first use: see [`incarnation`])
//! and releases its entry on drop (or, for a handle never dropped, retires it when the process
//! exits normally: see `segment/at_exit.rs`). An entry records the pid together with what makes a pid
//! unambiguous:
//!
//! - the process's start time (field 22 of `/proc/<pid>/stat`, clock ticks since boot, in the
//!   initial time namespace's time base), so a pid reused by a new process is recognised as a
//!   different process;
//! - the boot id (`/proc/sys/kernel/random/boot_id`; 0 where `/proc` hides it), so an entry left
//!   in a file-backed segment by a previous boot is never taken for a live process;
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
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

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
// Incarnations: telling a child process from its parent

/// A page whose contents the kernel zeroes in every child process (`MADV_WIPEONFORK`, Linux
/// 4.14), however the child was made: `fork`, glibc's `_Fork`, `clone` without `CLONE_VM`, a
/// raw system call, none of which need run `pthread_atfork` handlers. It holds this process's
/// incarnation; null where it could not be made (Miri, older kernels).
static WIPED_ON_FORK: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());

/// The fallback where there is no such page: bumped in every `fork` child by a
/// `pthread_atfork` handler (which `_Fork` and raw `clone` skip: without the page, children
/// made that way are not told apart from their parent).
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Incarnations fit 48 bits: a segment handle keeps one beside a 16-bit owner id.
const INCARNATION_MASK: u64 = (1 << 48) - 1;

extern "C" fn after_fork_in_child() {
    // Only atomic operations: async-signal-safe, as an atfork child handler must be.
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
    let page = WIPED_ON_FORK.load(Ordering::Relaxed);
    if !page.is_null() {
        // SAFETY: the page, once published, stays mapped for the life of the process.
        unsafe { &*page }.store(0, Ordering::Relaxed);
    }
}

/// This process's incarnation: a nonzero 48-bit number that differs between a process and
/// every child it makes, so that a handle inherited across `fork` (or `clone`) notices that
/// its registration, its role claims and its cached identity are its parent's. Two loads once
/// known.
///
/// A child made with `CLONE_VM` but without `CLONE_THREAD` shares its parent's memory, page
/// included, so it shares its incarnation: such children must not use shmap handles (threads
/// and ordinary child processes may).
#[inline]
pub(crate) fn incarnation() -> u64 {
    // Acquire: pairs with the Release store that published the page in `make_page`.
    let page = WIPED_ON_FORK.load(Ordering::Acquire);
    if !page.is_null() {
        // SAFETY: the page, once published, stays mapped for the life of the process.
        let current = unsafe { &*page }.load(Ordering::Relaxed);
        if current != 0 {
            return current;
        }
    }
    incarnation_slow()
}

#[cold]
fn incarnation_slow() -> u64 {
    /// The installation of the atfork handler and the page: `pid << 2 | state`.
    static INSTALL: AtomicU64 = AtomicU64::new(0);
    install_once(&INSTALL, std::process::id(), || {
        #[cfg(not(miri))]
        {
            // SAFETY: the handler is a plain `extern "C" fn` that only touches static atomics
            // and the page, which stays mapped. (Installed twice if a fork interrupted the
            // parent's installation: the handler is idempotent enough, bumping twice.)
            let ret = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
            assert_eq!(ret, 0, "pthread_atfork failed: {ret}");
            // Relaxed: whether an earlier installation (the parent's) published a page.
            if WIPED_ON_FORK.load(Ordering::Relaxed).is_null() {
                make_page();
            }
        }
    });
    // Acquire: as in `incarnation`.
    let page = WIPED_ON_FORK.load(Ordering::Acquire);
    if page.is_null() {
        return fallback_incarnation(FORK_GENERATION.load(Ordering::Relaxed));
    }
    // SAFETY: as above.
    let word = unsafe { &*page };
    let fresh = (crate::sys::random_u64() & INCARNATION_MASK).max(1);
    // Relaxed: the number itself is all that is shared; a racing thread's number wins alike.
    match word.compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => fresh,
        Err(other) => other,
    }
}

/// The incarnation where there is no wipe-on-fork page: the fork generation plus one, so that
/// a process (generation `g`) and each of its children (`g + 1`) differ, and none is 0.
fn fallback_incarnation(generation: u64) -> u64 {
    generation % INCARNATION_MASK + 1 // in 1..=2^48-1; consecutive generations always differ
}

// Installation states (the low two bits; 0 is "not installed").
const INSTALLING: u64 = 1;
const INSTALLED: u64 = 2;

/// Runs `install` once per process, with `state` (`pid << 2 | state`) recording who installs.
/// Not a `std::sync::Once`: a child forked while a thread of its parent was installing would
/// inherit a `Once` that nobody in the child can finish, and wait on it for ever. Here a child
/// that finds an installation in progress by another pid (its parent's thread) installs again.
pub(crate) fn install_once(state: &AtomicU64, me: u32, install: impl FnOnce()) {
    let mine = u64::from(me) << 2;
    loop {
        // Acquire: pairs with the Release store of INSTALLED below (the installation's effects).
        let seen = state.load(Ordering::Acquire);
        match seen & 3 {
            INSTALLED => return,
            INSTALLING if seen & !3 == mine => std::thread::yield_now(), // a thread of ours
            _ => {
                // Acquire: as above (a parent's half-done installation is redone).
                if state
                    .compare_exchange(seen, mine | INSTALLING, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    install();
                    // Release: publishes the installation; pairs with the Acquire loads above.
                    state.store(mine | INSTALLED, Ordering::Release);
                    return;
                }
            }
        }
    }
}

/// Maps the wipe-on-fork page and publishes it (leaves it null if the kernel refuses).
#[cfg(not(miri))]
fn make_page() {
    let len = crate::segment::header::PAGE as usize;
    // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if addr == libc::MAP_FAILED {
        return;
    }
    // SAFETY: the range is the mapping just made.
    if unsafe { libc::madvise(addr, len, libc::MADV_WIPEONFORK) } != 0 {
        // SAFETY: as above; never published.
        unsafe { libc::munmap(addr, len) };
        return;
    }
    // Release: publishes the (zeroed, page-aligned) word; pairs with the Acquire loads of
    // `incarnation`. Never unmapped: it lives as long as the process.
    WIPED_ON_FORK.store(addr.cast(), Ordering::Release);
}

#[cfg(test)]
mod tests;
