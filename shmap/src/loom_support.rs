//! The harness of the loom models (`table/loom_tests.rs`, `ring/loom_tests.rs`), which run as
//! unit tests of a `--cfg shmap_loom` build, so that the hooks they use stay crate-private.

use loom::sync::Arc;
use loom::thread;

/// Runs `a` and `b` on two threads over the structure `setup` makes, in both spawn orders, checks
/// each outcome, and returns how many executions loom explored (so a model that explores
/// nothing is noticed).
pub(crate) fn race<S, RA, RB>(
    setup: fn() -> S,
    a: fn(&S) -> RA,
    b: fn(&S) -> RB,
    check: fn(&S, RA, RB),
) -> usize
where
    S: Send + Sync + 'static,
    RA: Send + 'static,
    RB: Send + 'static,
{
    race_within(None, setup, a, b, check)
}

/// [`race`] with at most `preemptions` preemptions per execution (else `LOOM_MAX_PREEMPTIONS`,
/// as for every model): for a model whose two threads each make several operations, which
/// would take minutes of CI at the bound the others run with.
pub(crate) fn race_within<S, RA, RB>(
    preemptions: Option<usize>,
    setup: fn() -> S,
    a: fn(&S) -> RA,
    b: fn(&S) -> RB,
    check: fn(&S, RA, RB),
) -> usize
where
    S: Send + Sync + 'static,
    RA: Send + 'static,
    RB: Send + 'static,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    let executions = std::sync::Arc::new(AtomicUsize::new(0));
    for a_first in [true, false] {
        let executions = std::sync::Arc::clone(&executions);
        let mut builder = loom::model::Builder::new();
        if preemptions.is_some() {
            builder.preemption_bound = preemptions;
        }
        builder.check(move || {
            executions.fetch_add(1, Ordering::Relaxed);
            let t = Arc::new(setup());
            let (ta, tb) = (Arc::clone(&t), Arc::clone(&t));
            let spawn_a = move || thread::spawn(move || a(&ta));
            let spawn_b = move || thread::spawn(move || b(&tb));
            let (ha, hb) = if a_first {
                let ha = spawn_a();
                (ha, spawn_b())
            } else {
                let hb = spawn_b();
                (spawn_a(), hb)
            };
            let (ra, rb) = (ha.join().unwrap(), hb.join().unwrap());
            check(&t, ra, rb);
        });
    }
    let n = executions.load(Ordering::Relaxed);
    eprintln!("explored {n} executions");
    assert!(n > 2, "loom explored no interleaving");
    n
}
