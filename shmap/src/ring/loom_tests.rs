//! Loom models of the ring and vector protocols, over heap-backed segments whose cells and
//! control words are loom atomics.
//!
//! ```text
//! RUSTFLAGS="--cfg shmap_loom" LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test -p shmap-ipc --lib --release --target-dir target/loom -- loom_tests
//! ```
//!
//! Elements are pairs of equal words, so that a copy torn between two writes shows. Each model
//! races two operations (both spawn orders, see `loom_support`) and checks exactly-once
//! delivery, order, and that nothing torn is ever returned. Inside the rings a futex sleep is a
//! yield under loom (and the timeouts never expire), so those models cover what the rings
//! promise about data; `publish_vs_sleep` models the wake-up protocol itself, with the
//! symmetric barrier that the asymmetric one (`src/ring/barrier.rs`) refines.
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};

use crate::loom_support::race;
use crate::ring::event::LoomEvent;
use crate::ring::{BroadcastRing, MpmcRing, RingError, SpmcRing, SpscRing};
use crate::{Backing, ShmVector, Wait};

type Pair = [u64; 2];

fn pair(v: u64) -> Pair {
    [v, v]
}

fn untorn(p: Pair) -> u64 {
    assert_eq!(p[0], p[1], "torn element {p:?}");
    p[0]
}

fn spsc(capacity: usize) -> SpscRing<Pair> {
    SpscRing::options().capacity(capacity).open(&Backing::Heap).unwrap()
}

fn mpmc(capacity: usize) -> MpmcRing<Pair> {
    MpmcRing::options().capacity(capacity).open(&Backing::Heap).unwrap()
}

/// The producer pushes 1, 2, 3 into a ring of 2 while the consumer pops: the consumer sees a
/// prefix of what was pushed, in order, untorn; nothing is lost or duplicated.
#[test]
fn spsc_push_vs_pop() {
    race(
        || spsc(2),
        |r| {
            let mut tx = r.producer().unwrap();
            (1..=3).filter(|&i| tx.try_push(&pair(i)).is_ok()).collect::<Vec<u64>>()
        },
        |r| {
            let mut rx = r.consumer().unwrap();
            (0..3).filter_map(|_| rx.try_pop().ok().map(untorn)).collect::<Vec<u64>>()
        },
        |r, pushed, mut popped| {
            let mut rx = r.consumer().unwrap();
            popped.extend(std::iter::from_fn(|| rx.try_pop().ok().map(untorn)));
            assert!(pushed.len() >= 2, "a ring of 2 takes two pushes: {pushed:?}");
            assert_eq!(popped, pushed, "in order, exactly once");
        },
    );
}

/// Two producers push one element each: both land, in distinct cells.
#[test]
fn mpmc_push_vs_push() {
    race(
        || mpmc(2),
        |r| r.try_push(&pair(1)).is_ok(),
        |r| r.try_push(&pair(2)).is_ok(),
        |r, a, b| {
            assert!(a && b);
            let mut popped: Vec<u64> =
                std::iter::from_fn(|| r.try_pop().ok().map(untorn)).collect();
            popped.sort_unstable();
            assert_eq!(popped, [1, 2]);
        },
    );
}

/// Two consumers pop one element each from a ring holding two: each gets a different one.
#[test]
fn mpmc_pop_vs_pop() {
    race(
        || {
            let r = mpmc(2);
            r.try_push(&pair(1)).unwrap();
            r.try_push(&pair(2)).unwrap();
            r
        },
        |r| r.try_pop().map(untorn).ok(),
        |r| r.try_pop().map(untorn).ok(),
        |r, a, b| {
            let mut got = [a.unwrap(), b.unwrap()];
            got.sort_unstable();
            assert_eq!(got, [1, 2]);
            assert!(matches!(r.try_pop(), Err(RingError::Empty)));
        },
    );
}

/// A push into a full ring of one races the pop that frees it (the cell changes lap): the
/// push succeeds only after the pop, and nothing is torn or lost.
#[test]
fn mpmc_push_vs_pop_across_a_lap() {
    race(
        || {
            let r = mpmc(1);
            r.try_push(&pair(1)).unwrap();
            r
        },
        |r| r.try_push(&pair(2)).is_ok(),
        |r| r.try_pop().map(untorn).ok(),
        |r, pushed, popped| {
            assert_eq!(popped, Some(1));
            let rest: Vec<u64> = std::iter::from_fn(|| r.try_pop().ok().map(untorn)).collect();
            assert_eq!(rest, if pushed { vec![2] } else { vec![] });
        },
    );
}

/// The SPMC producer's store-only push racing a consumer's claim.
#[test]
fn spmc_push_vs_pop() {
    race(
        || SpmcRing::<Pair>::options().capacity(1).open(&Backing::Heap).unwrap(),
        |r| {
            let mut tx = r.producer().unwrap();
            (1..=2).filter(|&i| tx.try_push(&pair(i)).is_ok()).collect::<Vec<u64>>()
        },
        |r| (0..2).filter_map(|_| r.try_pop().ok().map(untorn)).collect::<Vec<u64>>(),
        |r, pushed, mut popped| {
            popped.extend(std::iter::from_fn(|| r.try_pop().ok().map(untorn)));
            assert_eq!(popped, pushed);
        },
    );
}

/// Two recoverers (a monitor's `recover` and a waiting push) find the same cell claimed by a
/// dead consumer: exactly one republishes it, and its element is delivered exactly once.
#[test]
fn racing_recoveries_of_a_dead_consumers_claim() {
    race(
        || {
            let r = mpmc(2);
            r.try_push(&pair(10)).unwrap();
            r.try_push(&pair(11)).unwrap();
            r.loom_plant_dead_claim(0, false); // 10 was being popped by a process now dead
            assert_eq!(r.try_pop().map(untorn).unwrap(), 11);
            r
        },
        |r| r.recover(),
        |r| r.push_with(&pair(12), Wait::default()).is_ok(),
        |r, recovered, pushed| {
            assert!(pushed);
            assert!(recovered <= 1);
            assert_eq!(r.stats().redelivered, 1, "recovered exactly once");
            let popped: Vec<u64> = std::iter::from_fn(|| r.try_pop().ok().map(untorn)).collect();
            assert_eq!(popped, [10, 12], "the dead consumer's element comes back, once");
        },
    );
}

/// A consumer waits behind a cell claimed by a dead producer while a monitor recovers: the
/// dead push is skipped exactly once and the consumer gets the element after it.
#[test]
fn a_dead_producers_claim_is_skipped_once() {
    race(
        || {
            let r = mpmc(2);
            r.loom_plant_dead_claim(0, true);
            r.try_push(&pair(5)).unwrap(); // position 1
            r
        },
        |r| r.pop_with(Wait::default()).map(untorn).ok(),
        |r| r.recover(),
        |r, popped, _| {
            assert_eq!(popped, Some(5));
            assert_eq!(r.stats().dropped_pushes, 1);
            assert!(matches!(r.try_pop(), Err(RingError::Empty)));
        },
    );
}

/// A subscriber reading while the producer laps a ring of 2: every element it gets is untorn
/// and newer than the last, and what it missed is reported.
#[test]
fn broadcast_publish_vs_receive() {
    race(
        || BroadcastRing::<Pair>::options().capacity(2).open(&Backing::Heap).unwrap(),
        |r| {
            let mut tx = r.producer().unwrap();
            for i in 1..=3 {
                tx.push(&pair(i)).unwrap();
            }
        },
        |r| {
            let mut rx = r.subscribe_from_oldest();
            let (mut got, mut missed) = (Vec::new(), 0);
            for _ in 0..3 {
                match rx.try_recv() {
                    Ok(p) => got.push(untorn(p)),
                    Err(RingError::Lagged { missed: m }) => missed += m,
                    Err(RingError::Empty) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            (got, missed, rx.position())
        },
        |_, (), (got, missed, position)| {
            assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
            if let Some(&last) = got.last() {
                assert_eq!(position, last, "positions count from 0, elements from 1");
            }
            assert!(got.len() as u64 + missed <= position, "{got:?} + {missed} > {position}");
        },
    );
}

/// Two pushes onto a vector: distinct indexes, both published, `len` covers both.
#[test]
fn vector_push_vs_push() {
    race(
        || ShmVector::<Pair>::options().capacity(2).open(&Backing::Heap).unwrap(),
        |v| v.push(&pair(1)).unwrap(),
        |v| v.push(&pair(2)).unwrap(),
        |v, a, b| {
            assert_ne!(a, b);
            assert_eq!((v.get(a).map(untorn), v.get(b).map(untorn)), (Some(1), Some(2)));
            assert_eq!(v.len(), 2, "the published prefix covers both");
        },
    );
}

/// A reader racing a push sees nothing or the whole element, and `len` never runs ahead of
/// what `get` can read.
#[test]
fn vector_push_vs_read() {
    race(
        || ShmVector::<Pair>::options().capacity(2).open(&Backing::Heap).unwrap(),
        |v| v.push(&pair(7)).unwrap(),
        |v| {
            let len = v.len();
            let first = v.get(0).map(untorn);
            (len, first)
        },
        |_, index, (len, first)| {
            assert_eq!(index, 0);
            assert!(first.is_none() || first == Some(7));
            if len == 1 {
                assert_eq!(first, Some(7), "len counted an element get could not read");
            }
        },
    );
}

/// A publisher sets a flag and notifies while a waiter announces itself, re-checks the flag and
/// would sleep: no wake-up is lost. Either the waiter saw the flag, or it sleeps on a `seq`
/// that the publisher has moved (so `futex_wait` returns at once, or the wake reaches it).
#[test]
fn publish_vs_sleep() {
    loom::model(|| {
        let event = Arc::new(LoomEvent::default());
        let flag = Arc::new(AtomicBool::new(false));
        let publisher = {
            let (event, flag) = (Arc::clone(&event), Arc::clone(&flag));
            loom::thread::spawn(move || {
                // Release: the publication; pairs with the waiter's Acquire re-check.
                flag.store(true, Ordering::Release);
                event.notify();
            })
        };
        // The waiter stays announced, as it would while in `futex_wait`.
        // Acquire: pairs with the publisher's Release store of `flag`.
        let (ready, seen, seat) = event.announce_and_check(1, || flag.load(Ordering::Acquire));
        publisher.join().unwrap();
        assert!(
            ready || event.seq.load(Ordering::Relaxed) != seen,
            "a lost wake-up: the waiter sleeps on seq {seen} and nobody moved it"
        );
        event.leave(seat);
    });
}

/// No ABA on a role word: claimant A finds the producer role's holder `d` dead; before A's
/// compare-and-swap, claimant B takes the role over from `d` and gives it back, `d`'s id is
/// given to a new, live process, and that process claims the role. A's claim must then fail:
/// it judged the holding it saw, not the id. (With a bare owner id in the word, A's
/// compare-and-swap from `d` succeeded and robbed the live new holder.)
#[test]
fn a_stale_takeover_never_robs_a_holder_that_reused_the_id() {
    race(
        || {
            let r = spsc(2);
            let dead = r.loom_plant_dead_producer();
            (r, dead)
        },
        |(r, _)| {
            // Held to the end of this thread, then given back.
            r.producer().is_ok()
        },
        |(r, dead)| {
            drop(r.producer()); // takes over from the dead holder (or finds A holding)
            r.loom_reuse_owner_and_claim(*dead)
        },
        |(r, dead), _, reused| {
            if reused {
                assert_eq!(r.loom_producer_holder(), Some(*dead), "the new holder was robbed");
            }
        },
    );
}

/// No ABA on a sleeper's seat: sleeper 2 died announced in seat 0. Recoverer A (owner 4)
/// judges it dead; meanwhile recoverer B (owner 3) frees the seat, id 2 is given to a new, live
/// process (nothing names it any more), and that process announces itself as 2, perhaps in the
/// same seat. A's compare-and-swap must then fail: it judged the taking it saw, not the id. The
/// live sleeper stays announced (seat and bit) until it leaves, the dead seat is freed exactly
/// once, and no bit is left behind.
#[test]
fn recovering_a_dead_sleepers_seat_never_robs_a_sleeper_that_reused_the_id() {
    race(
        || {
            let event = LoomEvent::default();
            let (_, _, _dead) = event.announce_and_check(2, || false);
            (event, AtomicBool::new(false))
        },
        // Acquire: pairs with the Release store of `reused` below.
        |(e, reused)| e.recover_seats(4, |o| o == 2 && !reused.load(Ordering::Acquire)),
        |(e, reused)| {
            let freed = e.recover_seats(3, |o| o == 2 && !reused.load(Ordering::Acquire));
            // Release: from now on, owner 2 is a live process.
            reused.store(true, Ordering::Release);
            let (_, _, live) = e.announce_and_check(2, || false);
            let announced = e.is_announced(live);
            e.leave(live);
            (freed, announced)
        },
        |(e, _), freed_by_a, (freed_by_b, live_was_announced)| {
            assert!(live_was_announced, "a live sleeper's seat or bit was taken away");
            assert_eq!(freed_by_a + freed_by_b, 1, "the dead seat is freed exactly once");
            assert_eq!(e.sleepers.load(Ordering::Relaxed), 0, "a bit left behind");
        },
    );
}
