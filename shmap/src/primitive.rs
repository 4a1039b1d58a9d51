//! The loom seam: the atomics, fences and scheduler hints used by the slot protocol.
//!
//! Following `crossbeam-utils/src/lib.rs`, the protocol code imports its atomics from here
//! instead of `core`, so that `RUSTFLAGS="--cfg shmap_loom"` swaps them for
//! [loom](https://docs.rs/loom)'s model-checked versions and `tests/loom.rs` can explore every
//! interleaving of the protocol over a heap-backed table. Code that is not part of the modelled
//! protocol (the segment header, the process table) uses `core::sync::atomic` directly.

#[cfg(shmap_loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering, fence};

#[cfg(not(shmap_loom))]
pub(crate) use core::sync::atomic::{AtomicU64, Ordering, fence};

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
