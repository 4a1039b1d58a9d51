//! Releasing this process's registrations when it exits normally.
//!
//! A handle releases its process-table entry when it is dropped, but some handles never are: a
//! `#[shm_table]` singleton lives in a `static`, and Rust runs no destructor for statics. So
//! every registration is also recorded here, and a handler installed with `atexit(3)` (which
//! `exit`, and so a return from `main` or `std::process::exit`, runs; `_exit`, `abort` and a
//! fatal signal do not) retires the entries still recorded. A handle that registers after the
//! handler ran (a thread still running, a later `atexit` handler) retires its entry at once.
//!
//! Retiring does not free an entry: the exit handler runs while the process's other threads
//! still run, and one of them may hold a lock, or be about to take one, under the entry's
//! owner id (a table can't tell; a gate on every lock would cost every write). A freed entry
//! would make that holder look dead (a robbery) or, once reused, look like another process.
//! So a retired entry keeps the process's identity, and liveness judges its locks as before;
//! it only stops being listed as attached, and it is reclaimed like a dead process's entry
//! once its process is proven dead and no slot names it (see `process::table`).
//!
//! # Fork
//!
//! The records sit behind a spin lock that names its holder's incarnation (see
//! [`process::incarnation`]), not behind a `std::sync::Mutex`: a child forked while a thread of
//! its parent held the lock would wait for ever on a `Mutex` that nobody in it can unlock.
//! Here a child that finds the lock held by another incarnation takes it over, and, finding
//! records of another incarnation (its parent's, perhaps half-updated by that thread),
//! abandons them without reading them: a child has no registration of its own before it
//! registers.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::process::{self, OwnerId, ProcEntry, ProcessTable};

/// A registration to retire at exit.
struct Registration {
    /// The address of the segment's process table in this handle's mapping (the key: every
    /// handle has its own mapping).
    entries: usize,
    len: usize,
    owner: OwnerId,
}

/// The registrations of one incarnation's live handles.
struct Records {
    /// Whose records these are (0: nobody's yet).
    incarnation: u64,
    /// Whether the exit handler has run in this incarnation.
    exited: bool,
    registrations: Vec<Registration>,
}

/// The records, behind [`LOCK`].
struct Guarded(UnsafeCell<Records>);

// SAFETY: the records are only accessed through `Locked`, which holds `LOCK`.
unsafe impl Sync for Guarded {}

static RECORDS: Guarded =
    Guarded(UnsafeCell::new(Records { incarnation: 0, exited: false, registrations: Vec::new() }));

/// 0 when free, else the incarnation of the holder.
static LOCK: AtomicU64 = AtomicU64::new(0);

/// The records of this incarnation, locked.
struct Locked {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Locked {
    /// Takes the lock (waiting for a thread of this process that holds it; taking it over
    /// from a parent's thread), or gives up at `deadline`.
    fn acquire(deadline: Option<Instant>) -> Option<Locked> {
        let me = process::incarnation();
        loop {
            // Relaxed: the compare-and-swap below decides.
            let holder = LOCK.load(Ordering::Relaxed);
            if holder == me {
                // Another thread of this process: it holds the lock for a push or a scan.
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return None;
                }
                std::thread::yield_now();
                continue;
            }
            // Free, or held by a thread of the parent we were forked from, which does not
            // exist here. Acquire: pairs with the Release store in `drop`, so that the
            // records are as the last holder left them.
            if LOCK.compare_exchange(holder, me, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                let locked = Locked { _not_send: std::marker::PhantomData };
                // SAFETY: we hold the lock.
                let records = unsafe { &mut *RECORDS.0.get() };
                if records.incarnation != me {
                    // Another incarnation's records (perhaps torn by a fork in the middle of
                    // an update): leak them unread, and start this incarnation's.
                    std::mem::forget(std::mem::take(&mut records.registrations));
                    records.incarnation = me;
                    records.exited = false;
                }
                return Some(locked);
            }
        }
    }

    fn records(&mut self) -> &mut Records {
        // SAFETY: `self` holds the lock, and borrows of the records do not outlive it.
        unsafe { &mut *RECORDS.0.get() }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // Release: publishes our changes to the records; pairs with the Acquire in `acquire`.
        LOCK.store(0, Ordering::Release);
    }
}

/// Records that this process registered as `owner` in the process table `entries`; retires
/// the entry at once if the process is already exiting.
pub(super) fn record(entries: &[ProcEntry], owner: OwnerId) {
    if cfg!(miri) {
        return; // Miri runs no `atexit` handlers worth testing, and cannot install one.
    }
    install_handler();
    let mut locked = Locked::acquire(None).expect("no deadline");
    let records = locked.records();
    if records.exited {
        ProcessTable::new(entries).retire(owner);
        return;
    }
    records.registrations.push(Registration {
        entries: entries.as_ptr() as usize,
        len: entries.len(),
        owner,
    });
}

/// Forgets the registrations in the process table `entries`, before its handle unmaps it.
pub(super) fn forget(entries: &[ProcEntry]) {
    if cfg!(miri) {
        return;
    }
    let address = entries.as_ptr() as usize;
    let mut locked = Locked::acquire(None).expect("no deadline");
    locked.records().registrations.retain(|r| r.entries != address);
}

fn install_handler() {
    /// The installation: `pid << 2 | state`, as `process::install_once` keeps it (a child
    /// forked mid-installation installs again: the handler then runs twice, harmlessly).
    static INSTALL: AtomicU64 = AtomicU64::new(0);
    process::install_once(&INSTALL, std::process::id(), || {
        // SAFETY: `retire_at_exit` is an `extern "C" fn()` that cannot unwind: it panics
        // nowhere (see its body).
        let ret = unsafe { libc::atexit(retire_at_exit) };
        // Without the handler entries stay until reclaimed, as after a crash: no harm.
        debug_assert_eq!(ret, 0, "atexit failed");
    });
}

/// The `atexit` handler: retires this incarnation's registrations.
extern "C" fn retire_at_exit() {
    // A thread of ours holds the lock only for a push or a scan; give up after a while
    // rather than hang the exit if it was stopped there.
    let Some(mut locked) = Locked::acquire(Some(Instant::now() + Duration::from_millis(20))) else {
        return;
    };
    let records = locked.records();
    records.exited = true;
    for r in &records.registrations {
        // SAFETY: a recorded process table lies in a live mapping: a handle forgets its
        // records (under the lock, which we hold) before it unmaps.
        let entries = unsafe { std::slice::from_raw_parts(r.entries as *const ProcEntry, r.len) };
        ProcessTable::new(entries).retire(r.owner);
    }
}
