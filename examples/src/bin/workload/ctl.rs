//! The control block shared by the workers of one rep (threads or `fork`ed processes): a
//! barrier and the results, in an anonymous shared mapping, all atomics.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Phases, in the order they run.
pub(crate) const PHASES: [&str; 7] = [
    "insert",
    "lookup-hit",
    "lookup-miss",
    "update",
    "mixed-90-10",
    "lookup-hit-batched",
    "remove",
];
pub(crate) const INSERT: usize = 0;
pub(crate) const HIT: usize = 1;
pub(crate) const MISS: usize = 2;
pub(crate) const UPDATE: usize = 3;
pub(crate) const MIXED: usize = 4;
pub(crate) const HIT_BATCHED: usize = 5;
pub(crate) const REMOVE: usize = 6;

/// Churn phases (`--churn-rounds`), by live load in percent.
pub(crate) const CHURN_LOADS: [u64; 2] = [50, 90];

/// What worker 0 measured in one churn phase. Probe lengths are `f64` bits.
#[repr(C, align(64))]
#[derive(Default)]
pub(crate) struct ChurnResult {
    /// Nanoseconds for all of worker 0's operations, its first window and its last window.
    pub(crate) total_ns: AtomicU64,
    pub(crate) start_ns: AtomicU64,
    pub(crate) end_ns: AtomicU64,
    /// Worker 0's operations in all, and in each window.
    pub(crate) ops: AtomicU64,
    pub(crate) window: AtomicU64,
    /// Probe lengths before and after: hit mean, hit max, miss mean, miss max.
    pub(crate) probes_start: [AtomicU64; 4],
    pub(crate) probes_end: [AtomicU64; 4],
    /// Failed operations (an insert that found its new key, a removal that missed), all workers.
    pub(crate) failures: AtomicU64,
    /// Entries at the end (`len`), and the live keys the workers hold.
    pub(crate) len: AtomicU64,
    pub(crate) live: AtomicU64,
}

/// One worker's results.
#[repr(C, align(64))]
#[derive(Default)]
pub(crate) struct WorkerResult {
    /// Operations that found (or created) their key, per phase.
    pub(crate) ok: [AtomicU64; PHASES.len()],
    /// Sums of the values read, per phase.
    pub(crate) sum: [AtomicU64; PHASES.len()],
    /// Entries the insert phase created.
    pub(crate) created: AtomicU64,
    /// Minor page faults of the worker thread during each phase (diagnostic).
    pub(crate) minflt: [AtomicU64; PHASES.len()],
}

/// A cache line of its own.
#[repr(C, align(64))]
#[derive(Default)]
struct Line(AtomicU32);

/// Shared by the workers of one rep and the driver.
#[repr(C)]
#[derive(Default)]
pub(crate) struct Ctl {
    count: Line,
    generation: Line,
    pub(crate) results: [WorkerResult; 2],
    /// Phase times in nanoseconds (as measured by worker 0).
    pub(crate) phase_ns: [AtomicU64; PHASES.len()],
    pub(crate) travel_count: AtomicU64,
    pub(crate) travel_sum: AtomicU64,
    /// `len()` after the remove phase.
    pub(crate) len_after_remove: AtomicU64,
    pub(crate) churn: [ChurnResult; CHURN_LOADS.len()],
    /// ru_maxrss of the process that created the table, KiB.
    pub(crate) rss_kib: AtomicU64,
    /// Huge pages in the table's mapping, from /proc/self/smaps (KiB).
    pub(crate) huge_kib: AtomicU64,
    pub(crate) done: AtomicU32,
}

impl Ctl {
    /// A sense-reversing barrier for `n` workers (threads or processes); spins, then yields.
    pub(crate) fn barrier(&self, n: u32) {
        if n == 1 {
            return;
        }
        // Acquire: pairs with the last arriver's Release increment of the generation.
        let generation = self.generation.0.load(Ordering::Acquire);
        // AcqRel: the last arriver sees every worker's writes before it releases them.
        if self.count.0.fetch_add(1, Ordering::AcqRel) + 1 == n {
            self.count.0.store(0, Ordering::Relaxed);
            // Release: publishes the reset count and the phase's writes to the waiters.
            self.generation.0.fetch_add(1, Ordering::Release);
        } else {
            let mut spins = 0u32;
            // Acquire: pairs with the Release increment above.
            while self.generation.0.load(Ordering::Acquire) == generation {
                spins += 1;
                if spins < 64 { std::hint::spin_loop() } else { std::thread::yield_now() }
            }
        }
    }
}

/// A `Ctl` in an anonymous shared mapping, unmapped on drop (in the process that drops it).
pub(crate) struct SharedCtl(NonNull<Ctl>);

impl SharedCtl {
    pub(crate) fn new() -> SharedCtl {
        let len = size_of::<Ctl>();
        let (prot, flags) =
            (libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_ANONYMOUS);
        // SAFETY: a new anonymous mapping at an address the kernel chooses; nothing aliases it.
        let addr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
        assert_ne!(addr, libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
        let ptr = NonNull::new(addr.cast::<Ctl>()).expect("mmap returned a non-null address");
        // SAFETY: the mapping is page aligned, large enough, and not yet shared.
        unsafe { ptr.write(Ctl::default()) };
        SharedCtl(ptr)
    }
}

impl std::ops::Deref for SharedCtl {
    type Target = Ctl;
    fn deref(&self) -> &Ctl {
        // SAFETY: the mapping lives until `drop`; `Ctl` is all atomics, so shared access from
        // other threads and processes is sound.
        unsafe { self.0.as_ref() }
    }
}

impl Drop for SharedCtl {
    fn drop(&mut self) {
        // SAFETY: the mapping created in `new`; no reference into it outlives `self`.
        unsafe { libc::munmap(self.0.as_ptr().cast(), size_of::<Ctl>()) };
    }
}

/// Minor page faults of the calling thread.
pub(crate) fn thread_minor_faults() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: `usage` is valid for one `struct rusage`, which getrusage fills on success.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) } == 0;
    // SAFETY: initialised by the successful call.
    if ok { unsafe { usage.assume_init() }.ru_minflt as u64 } else { 0 }
}

/// ru_maxrss of this process, KiB.
pub(crate) fn max_rss_kib() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: as in `thread_minor_faults`.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } == 0;
    // SAFETY: initialised by the successful call.
    if ok { unsafe { usage.assume_init() }.ru_maxrss as u64 } else { 0 }
}
