//! The asymmetric memory barrier between a ring's publishers and its sleepers.
//!
//! Waking needs Dekker's pattern: a publisher stores its progress and then loads `sleepers`; a
//! sleeper increments `sleepers` and then loads the progress. Each side needs a store-load
//! barrier between the two, or both may miss the other and the sleeper sleeps through the
//! wake. The publisher runs on every push and pop, where a full fence (`mfence`, or a locked
//! instruction) drains the store buffer and costs a streaming producer most of its speed; the
//! sleeper runs only when a ring is empty or full and is about to make a system call anyway.
//!
//! So the barrier is split unevenly, as in liburcu's `urcu-memb` flavour and folly's
//! `asymmetricLightBarrier`/`asymmetricHeavyBarrier`: [`light`] is only a compiler barrier,
//! and [`heavy`] is `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`, which makes every CPU that
//! is running a thread of a registered process execute a full memory barrier before it
//! returns (a thread that is not running has passed through the scheduler's own full barrier).
//! Either the publisher's store reached memory before that barrier, and the sleeper's re-check
//! after the call sees it, or the publisher's load of `sleepers` comes after the barrier, and
//! sees the increment that the sleeper made before the call. Every process registers when it
//! opens its first ring ([`register`]); the registration is kept across `fork`.
//!
//! # Fallbacks
//! - A process whose registration fails (a kernel before 4.16, a seccomp filter) uses a
//!   `SeqCst` fence as its light barrier, which pairs with any sleeper's barrier.
//! - A sleeper whose `membarrier` call fails issues a `SeqCst` fence instead, which does not
//!   pair with a registered publisher's compiler barrier; it therefore caps each sleep at
//!   [`FALLBACK_NAP`], so that a missed wake costs at most that long.
//! - Under loom and Miri both sides are `SeqCst` fences: the models check the protocol with
//!   the symmetric barrier, of which the asymmetric one is a refinement that the C11 model
//!   cannot express (the kernel's `membarrier(2)` page states its guarantee).

use std::time::Duration;

use crate::sync::primitive::{Ordering, fence};

/// How long a sleeper without a working `membarrier` sleeps before it looks again.
pub(crate) const FALLBACK_NAP: Duration = Duration::from_millis(1);

/// Whether this process registered for expedited barriers, so that its light barrier may be
/// a compiler barrier.
#[cfg(not(any(shmap_loom, miri)))]
static REGISTERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Registers this process for the sleepers' expedited barriers, once; a failure leaves it on
/// the symmetric barrier.
pub(crate) fn register() {
    #[cfg(not(any(shmap_loom, miri)))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            use crate::sys::{membarrier, membarrier_cmd};
            if membarrier(membarrier_cmd::REGISTER_GLOBAL_EXPEDITED).is_ok() {
                // Relaxed: the registration is kernel state, complete before the call returned;
                // the flag only selects which barrier this process's publishers run.
                REGISTERED.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
}

/// The publisher's side: orders its publishing store before its load of `sleepers`.
#[inline(always)]
pub(crate) fn light() {
    #[cfg(not(any(shmap_loom, miri)))]
    // Relaxed: see `register`.
    if REGISTERED.load(std::sync::atomic::Ordering::Relaxed) {
        // Pairs with the sleeper's `heavy` barrier, which makes this a full barrier in effect.
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
        return;
    }
    // SeqCst fence: pairs with the sleeper's fence or `membarrier` in `heavy`.
    fence(Ordering::SeqCst);
}

/// The sleeper's side: orders its announcement before its re-check of the condition. Returns
/// whether the barrier pairs with every publisher's; `false` means a wake may be missed, and
/// the caller must bound its sleep by [`FALLBACK_NAP`].
pub(crate) fn heavy() -> bool {
    #[cfg(not(any(shmap_loom, miri)))]
    {
        use crate::sys::{membarrier, membarrier_cmd};
        if membarrier(membarrier_cmd::GLOBAL_EXPEDITED).is_ok() {
            return true;
        }
    }
    // SeqCst fence: pairs with the publisher's fence in `light` when it is not registered.
    fence(Ordering::SeqCst);
    cfg!(any(shmap_loom, miri))
}

#[cfg(all(test, not(any(shmap_loom, miri))))]
mod tests {
    use super::*;

    /// On a kernel with `membarrier` (4.16+, no seccomp filter in the way) the asymmetric
    /// barrier is in use; elsewhere this documents what the fallback is.
    #[test]
    fn registration_selects_the_barrier() {
        register();
        let registered = REGISTERED.load(std::sync::atomic::Ordering::Relaxed);
        let expedited = heavy();
        // A process that registered can issue the expedited barrier too.
        assert!(!registered || expedited, "registered but GLOBAL_EXPEDITED failed");
        light();
    }
}
