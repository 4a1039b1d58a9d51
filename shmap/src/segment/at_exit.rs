//! Releasing this process's registrations when it exits normally.
//!
//! A handle releases its process-table entry when it is dropped, but some handles never are: a
//! `#[shm_table]` singleton lives in a `static`, and Rust runs no destructor for statics. So
//! every registration is also recorded here, and a handler installed with `atexit(3)` (which
//! `exit`, and so a return from `main` or `std::process::exit`, runs; `_exit`, `abort` and a
//! fatal signal do not) retires the entries still recorded.
//!
//! Retiring does not free an entry: the exit handler runs while the process's other threads
//! still run, and one of them may hold a lock, or be about to take one, under the entry's
//! owner id (a table can't tell; a gate on every lock would cost every write). A freed entry
//! would make that holder look dead (a robbery) or, once reused, look like another process.
//! So a retired entry keeps the process's identity, and liveness judges its locks as before;
//! it only stops being listed as attached, and it is reclaimed like a dead process's entry
//! once its process is proven dead and no slot names it (see `process::table`).

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::process::{self, OwnerId, ProcEntry, ProcessTable};

/// A registration to retire at exit.
struct Registration {
    /// The address of the segment's process table in this handle's mapping (the key: every
    /// handle has its own mapping).
    entries: usize,
    len: usize,
    owner: OwnerId,
    /// The incarnation that registered: a `fork` child inherits its parent's records, and must
    /// not retire the parent's entries.
    incarnation: u64,
}

/// Every registration of a live handle. Its lock is held only to push, remove or retire, so
/// that a handle's drop cannot unmap a table that the exit handler is writing to.
static REGISTRATIONS: Mutex<Vec<Registration>> = Mutex::new(Vec::new());

fn registrations() -> MutexGuard<'static, Vec<Registration>> {
    // A panic while the lock was held left a whole vector behind: still usable.
    REGISTRATIONS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records that this process registered as `owner` in the process table `entries`.
pub(super) fn record(entries: &[ProcEntry], owner: OwnerId) {
    if cfg!(miri) {
        return; // Miri runs no `atexit` handlers worth testing, and cannot install one.
    }
    install_handler();
    registrations().push(Registration {
        entries: entries.as_ptr() as usize,
        len: entries.len(),
        owner,
        incarnation: process::incarnation(),
    });
}

/// Forgets the registrations in the process table `entries`, before its handle unmaps it.
pub(super) fn forget(entries: &[ProcEntry]) {
    if cfg!(miri) {
        return;
    }
    let address = entries.as_ptr() as usize;
    registrations().retain(|r| r.entries != address);
}

fn install_handler() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        // SAFETY: `retire_at_exit` is an `extern "C" fn()` that does not unwind (it catches
        // nothing that can panic: see its body).
        let ret = unsafe { libc::atexit(retire_at_exit) };
        // Without the handler entries stay until reclaimed, as after a crash: no harm.
        debug_assert_eq!(ret, 0, "atexit failed");
    });
}

/// The `atexit` handler: retires this incarnation's registrations.
extern "C" fn retire_at_exit() {
    // A `fork` child of a threaded parent may have inherited the lock held by a thread that
    // does not exist in it: give up after a while rather than hang the exit.
    let deadline = Instant::now() + Duration::from_millis(20);
    let guard = loop {
        match REGISTRATIONS.try_lock() {
            Ok(guard) => break guard,
            Err(std::sync::TryLockError::Poisoned(e)) => break e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::yield_now()
            }
            Err(std::sync::TryLockError::WouldBlock) => return,
        }
    };
    let me = process::incarnation();
    for r in guard.iter().filter(|r| r.incarnation == me) {
        // SAFETY: a recorded process table lies in a live mapping: a handle forgets its
        // records (under this lock, which we hold) before it unmaps.
        let entries = unsafe { std::slice::from_raw_parts(r.entries as *const ProcEntry, r.len) };
        ProcessTable::new(entries).retire(r.owner);
    }
}
