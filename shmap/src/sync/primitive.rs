//! The loom seam: the atomics, fences and scheduler hints used by the slot protocol.
//!
//! Following `crossbeam-utils/src/lib.rs`, the protocol code imports its atomics from here
//! instead of `core`, so that `RUSTFLAGS="--cfg shmap_loom"` swaps them for
//! [loom](https://docs.rs/loom)'s model-checked versions and the loom models (`table/loom_tests.rs`, `ring/loom_tests.rs`) can explore every
//! interleaving of the protocol over a heap-backed table. Code that is not part of the modelled
//! protocol (the segment header, the process table) uses `core::sync::atomic` directly.

#[cfg(shmap_loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

#[cfg(not(shmap_loom))]
pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// The store-load order of Dekker's algorithm between a `SeqCst` read-modify-write (a claim, an
/// EMPTYING lock) and the `SeqCst` loads that follow it.
///
/// In the C++20 model (Rust's) a `SeqCst` RMW followed by a `SeqCst` load of another atomic is
/// already ordered: both are in the single total order S, in program order, and an SC load that
/// read a value older than an SC RMW precedes that RMW in S. So two threads that each claim and
/// then load the other's atomic cannot both miss the other's claim, and on x86 this costs
/// nothing beyond the `lock cmpxchg` (SC loads are plain `mov`s). Loom models SC accesses only
/// as acquire/release, so under loom this is a `fence(SeqCst)`, which loom does model and which
/// gives the same guarantee.
#[inline(always)]
pub(crate) fn dekker_fence() {
    #[cfg(shmap_loom)]
    loom::sync::atomic::fence(Ordering::SeqCst);
}

/// A hint that the caller is busy-waiting (`pause` on x86).
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(shmap_loom)]
    loom::hint::spin_loop();
    #[cfg(not(shmap_loom))]
    core::hint::spin_loop();
}

/// Gives the rest of this time slice to another thread.
#[inline]
pub(crate) fn yield_now() {
    #[cfg(shmap_loom)]
    loom::thread::yield_now();
    #[cfg(not(shmap_loom))]
    std::thread::yield_now();
}

/// Asks the CPU to bring the cache line of `ptr` in (a hint: it never faults, whatever the
/// address). A no-op where there is no prefetch instruction, and under loom and Miri.
#[inline(always)]
pub(crate) fn prefetch<T>(ptr: *const T) {
    #[cfg(all(target_arch = "x86_64", not(shmap_loom), not(miri)))]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: PREFETCHT0 is part of SSE, which every x86-64 CPU has; it is a hint that
        // never faults or reads into a register, so any address is allowed.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(ptr.cast()) }
    }
    #[cfg(not(all(target_arch = "x86_64", not(shmap_loom), not(miri))))]
    let _ = ptr;
}
