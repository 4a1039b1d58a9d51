//! Unit tests of the rings within one process. Dead claimants are real dead processes (a child
//! that registered and exited), as in the table's tests; cross-process behaviour is in
//! `tests/tests/rings.rs`.

use std::time::{Duration, Instant};

use super::*;
use crate::Liveness;
use crate::process::OwnerId;
use crate::ring::cell::{Cell, CellState};
use crate::segment::{Backing, Segment, StructureKind};
use crate::sync::backoff::Wait;
use crate::sync::primitive::Ordering;

fn quick() -> Wait {
    Wait::timeout(Duration::from_millis(30)).with_stale_check(Duration::from_millis(5))
}

#[test]
fn spsc_keeps_order_across_laps() {
    let ring = SpscRing::<u64>::heap(8).unwrap();
    let mut tx = ring.producer().unwrap();
    let mut rx = ring.consumer().unwrap();
    let mut next_out = 0;
    for i in 0..1000u64 {
        tx.try_push(&i).unwrap();
        if i % 3 == 2 {
            while let Ok(v) = rx.try_pop() {
                assert_eq!(v, next_out);
                next_out += 1;
            }
        }
    }
    while let Ok(v) = rx.try_pop() {
        assert_eq!(v, next_out);
        next_out += 1;
    }
    assert_eq!(next_out, 1000);
    assert!(ring.is_empty());
}

#[test]
fn spsc_full_and_empty() {
    let ring = SpscRing::<[u8; 3]>::heap(2).unwrap();
    let mut tx = ring.producer().unwrap();
    let mut rx = ring.consumer().unwrap();
    assert!(matches!(rx.try_pop(), Err(RingError::Empty)));
    tx.try_push(&[1, 2, 3]).unwrap();
    tx.try_push(&[4, 5, 6]).unwrap();
    assert!(matches!(tx.try_push(&[7, 8, 9]), Err(RingError::Full)));
    assert_eq!(ring.len(), 2);
    assert_eq!(rx.try_pop().unwrap(), [1, 2, 3]);
    tx.try_push(&[7, 8, 9]).unwrap();
    assert_eq!(rx.try_pop().unwrap(), [4, 5, 6]);
    assert_eq!(rx.try_pop().unwrap(), [7, 8, 9]);
}

#[test]
fn roles_are_exclusive_and_given_back() {
    let ring = SpscRing::<u32>::heap(4).unwrap();
    let tx = ring.producer().unwrap();
    match ring.producer() {
        Err(RingError::RoleTaken { role: RingRole::Producer, this_process: true, .. }) => {}
        other => panic!("expected RoleTaken, got {other:?}"),
    }
    let err = ring.producer().unwrap_err().to_string();
    assert!(err.contains("producer role is taken by another handle in this process"), "{err}");
    let rx = ring.consumer().unwrap(); // the other role is separate
    drop(tx);
    let mut tx = ring.producer().expect("given back on drop");
    tx.try_push(&5).unwrap();
    drop(rx);
    assert_eq!(ring.consumer().unwrap().try_pop().unwrap(), 5);
}

#[test]
fn blocking_pop_times_out_and_blocking_push_waits_for_space() {
    let ring = SpscRing::<u64>::heap(1).unwrap();
    let mut rx = ring.consumer().unwrap();
    let start = Instant::now();
    match rx.pop_with(quick()) {
        Err(RingError::Timeout { for_space: false, waited }) => {
            assert!(waited >= Duration::from_millis(30));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(start.elapsed() >= Duration::from_millis(30));
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut tx = ring.producer().unwrap();
            for i in 0..100 {
                tx.push_with(&i, Wait::timeout(Duration::from_secs(10))).unwrap();
            }
        });
        for i in 0..100 {
            assert_eq!(rx.pop_with(Wait::timeout(Duration::from_secs(10))).unwrap(), i);
        }
    });
}

#[test]
fn mpmc_threads_pop_every_element_once() {
    let ring = MpmcRing::<u64>::heap(16).unwrap();
    const PER: u64 = if cfg!(miri) { 200 } else { 20_000 };
    let wait = Wait::timeout(Duration::from_secs(20));
    let sums: Vec<(u64, u64)> = std::thread::scope(|s| {
        for p in 0..2u64 {
            let ring = &ring;
            s.spawn(move || {
                for i in 0..PER {
                    ring.push_with(&(p * PER + i + 1), wait).unwrap();
                }
            });
        }
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let ring = &ring;
                s.spawn(move || {
                    let (mut count, mut sum) = (0, 0);
                    while count < PER {
                        let v = ring.pop_with(wait).unwrap();
                        count += 1;
                        sum += v;
                    }
                    (count, sum)
                })
            })
            .collect();
        consumers.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let n = 2 * PER;
    assert_eq!(sums.iter().map(|s| s.0).sum::<u64>(), n);
    assert_eq!(sums.iter().map(|s| s.1).sum::<u64>(), n * (n + 1) / 2);
    assert!(matches!(ring.try_pop(), Err(RingError::Empty)));
}

#[test]
fn spmc_producer_role_and_order() {
    let ring = SpmcRing::<u32>::heap(4).unwrap();
    let mut tx = ring.producer().unwrap();
    assert!(matches!(ring.producer(), Err(RingError::RoleTaken { .. })));
    for lap in 0..5u32 {
        for i in 0..4 {
            tx.try_push(&(lap * 10 + i)).unwrap();
        }
        assert!(matches!(tx.try_push(&99), Err(RingError::Full)));
        for i in 0..4 {
            assert_eq!(ring.try_pop().unwrap(), lap * 10 + i);
        }
        assert!(matches!(ring.try_pop(), Err(RingError::Empty)));
    }
}

#[test]
fn broadcast_subscribers_see_everything_in_order_or_a_gap() {
    let ring = BroadcastRing::<u64>::heap(8).unwrap();
    let mut tx = ring.producer().unwrap();
    let mut a = ring.subscribe();
    tx.push(&0).unwrap();
    let mut b = ring.subscribe(); // starts after 0
    for i in 1..20 {
        tx.push(&i).unwrap();
        assert_eq!(a.try_recv().unwrap(), i - 1);
    }
    assert_eq!(a.try_recv().unwrap(), 19);
    assert!(matches!(a.try_recv(), Err(RingError::Empty)));
    // b is 19 behind with 8 in the ring: 11 are gone.
    assert!(matches!(b.try_recv(), Err(RingError::Lagged { missed: 11 })));
    for i in 12..20 {
        assert_eq!(b.try_recv().unwrap(), i);
    }
    let mut oldest = ring.subscribe_from_oldest();
    assert_eq!(oldest.try_recv().unwrap(), 12);
    assert_eq!(oldest.behind(), 7);
}

/// A producer that publishes while a subscriber copies: the subscriber never returns a torn
/// element (each element's words are all equal), and every gap is reported.
#[test]
fn broadcast_never_returns_a_torn_element() {
    let ring = BroadcastRing::<[u64; 8]>::heap(4).unwrap();
    const N: u64 = if cfg!(miri) { 500 } else { 200_000 };
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut tx = ring.producer().unwrap();
            for i in 1..=N {
                tx.push(&[i; 8]).unwrap();
            }
        });
        let mut rx = ring.subscribe_from_oldest();
        let (mut last, mut received, mut missed) = (0u64, 0u64, 0u64);
        while last < N {
            match rx.try_recv() {
                Ok(e) => {
                    assert!(e.iter().all(|&w| w == e[0]), "torn element {e:?}");
                    assert!(e[0] > last, "out of order: {} after {last}", e[0]);
                    missed += e[0] - last - 1;
                    last = e[0];
                    received += 1;
                }
                Err(RingError::Lagged { missed: m }) => assert!(m > 0),
                Err(RingError::Empty) => std::hint::spin_loop(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(received + missed, N);
    });
}

#[test]
#[cfg_attr(miri, ignore = "POSIX shared memory")]
fn capacities_are_powers_of_two_and_checked_on_open() {
    let name = format!("/shmap-ring-unit-cap-{}", std::process::id());
    let _ = MpmcRing::<u64>::unlink(&name);
    let ring = MpmcRing::<u64>::open_or_create(&name, 100).unwrap();
    assert_eq!(ring.capacity(), 128);
    let err = MpmcRing::<u64>::options().capacity(64).open(&Backing::shm(&name)).unwrap_err();
    assert!(matches!(
        err.kind(),
        crate::OpenErrorKind::CapacityMismatch { expected: 64, found: 128 }
    ));
    let err = SpscRing::<u64>::open(&name).unwrap_err();
    assert!(
        matches!(err.kind(), crate::OpenErrorKind::KindMismatch { .. }),
        "an MPMC ring is not an SPSC ring: {err}"
    );
    let err = MpmcRing::<u32>::open(&name).unwrap_err();
    assert!(matches!(err.kind(), crate::OpenErrorKind::LayoutMismatch { .. }), "{err}");
    assert_eq!(MpmcRing::<u64>::open(&name).unwrap().capacity(), 128);
    ring.destroy().unwrap();
    assert!(MpmcRing::<u64>::options().capacity(0).open(&Backing::Heap).is_err());
}

/// A registered process that has exited: its owner id names a dead process.
#[cfg(not(miri))] // spawns a process
fn dead_owner(segment: &Segment) -> OwnerId {
    segment.register_dead_process()
}

/// A consumer that died holding a cell (READING): the next pop after the stale check finds it
/// dead and the element is delivered again.
#[cfg(not(miri))] // uses dead_owner
#[test]
fn an_element_claimed_by_a_dead_consumer_is_redelivered() {
    let ring = MpmcRing::<u64>::heap(4).unwrap();
    for i in 10..14 {
        ring.try_push(&i).unwrap();
    }
    let dead = dead_owner(ring.segment());
    // Plant the dead consumer's claim on position 0 (value 10), as if it was killed mid-copy.
    let (seq, _) = ring.core.cell(0);
    // Relaxed: planted by the only thread, before any operation reads it.
    seq.store(Cell::new(0, CellState::Reading, Some(dead)).0, Ordering::Relaxed);
    ring.core.control(ctl::HEAD).store(1, Ordering::Relaxed);
    // The ring is full (position 4's cell still holds lap 0): a push waits on the dead claim,
    // recovers it (republished as position 4), and takes position 5's... which is full too.
    assert_eq!(ring.try_pop().unwrap(), 11);
    assert_eq!(ring.try_pop().unwrap(), 12);
    assert_eq!(ring.try_pop().unwrap(), 13);
    assert!(matches!(ring.try_pop(), Err(RingError::Empty)), "try_pop does not recover");
    assert_eq!(ring.pop_with(quick()).unwrap(), 10, "a blocking pop recovers and redelivers");
    assert_eq!(ring.stats().redelivered, 1);
    assert!(matches!(ring.try_pop(), Err(RingError::Empty)));
    for i in 0..4 {
        ring.try_push(&i).unwrap(); // the ring works on
    }
    assert!(matches!(ring.try_push(&9), Err(RingError::Full)));
}

/// A producer that died after claiming a cell (WRITING): a waiting consumer skips it.
#[cfg(not(miri))] // uses dead_owner
#[test]
fn a_push_abandoned_by_a_dead_producer_is_skipped() {
    let ring = MpmcRing::<u64>::heap(4).unwrap();
    let dead = dead_owner(ring.segment());
    let (seq, _) = ring.core.cell(0);
    // Relaxed: planted by the only thread, before any operation reads it.
    seq.store(Cell::new(0, CellState::Writing, Some(dead)).0, Ordering::Relaxed);
    ring.core.control(ctl::TAIL).store(1, Ordering::Relaxed);
    ring.try_push(&7).unwrap(); // position 1
    assert!(matches!(ring.try_pop(), Err(RingError::Empty)), "stuck behind the dead push");
    assert_eq!(ring.pop_with(quick()).unwrap(), 7);
    assert_eq!(ring.stats().dropped_pushes, 1);
}

#[cfg(not(miri))] // uses dead_owner
#[test]
fn a_monitor_recovers_cells_nobody_waits_on() {
    let ring = MpmcRing::<u64>::heap(4).unwrap();
    let dead = dead_owner(ring.segment());
    ring.try_push(&1).unwrap();
    let (seq, _) = ring.core.cell(0);
    // Relaxed: planted by the only thread, before any operation reads it.
    seq.store(Cell::new(0, CellState::Reading, Some(dead)).0, Ordering::Relaxed);
    ring.core.control(ctl::HEAD).store(1, Ordering::Relaxed);
    assert_eq!(ring.recover(), 1);
    assert_eq!(ring.recover(), 0);
    // Republished at position 4: after three pushes, the fourth position is taken by it.
    for i in 2..5 {
        ring.try_push(&i).unwrap();
    }
    let popped: Vec<u64> = std::iter::from_fn(|| ring.try_pop().ok()).collect();
    assert_eq!(popped, [2, 3, 4, 1]);
}

#[cfg(not(miri))] // uses dead_owner
#[test]
fn a_dead_role_holder_is_taken_over() {
    let ring = SpscRing::<u64>::heap(4).unwrap();
    let dead = dead_owner(ring.segment());
    // Relaxed: planted by the only thread, before the claim reads it.
    ring.core.control(ctl::PRODUCER).store(u64::from(dead.get()), Ordering::Relaxed);
    let mut tx = ring.producer().expect("the dead holder's role is taken over");
    tx.try_push(&1).unwrap();
    assert_eq!(ring.stats().takeovers, 1);
}

#[test]
fn zero_sized_elements_work_in_every_ring_and_the_vector() {
    let spsc = SpscRing::<()>::heap(4).expect("an SPSC ring of () opens");
    let mut tx = spsc.producer().unwrap();
    let mut rx = spsc.consumer().unwrap();
    assert!(matches!(rx.try_pop(), Err(RingError::Empty)));
    for _ in 0..4 {
        tx.try_push(&()).unwrap();
    }
    assert!(matches!(tx.try_push(&()), Err(RingError::Full)));
    assert_eq!(spsc.len(), 4);
    for _ in 0..4 {
        rx.try_pop().unwrap();
    }
    assert!(matches!(rx.try_pop(), Err(RingError::Empty)));

    let spmc = SpmcRing::<()>::heap(4).expect("an SPMC ring of () opens");
    let mut tx = spmc.producer().unwrap();
    for _ in 0..4 {
        tx.try_push(&()).unwrap();
    }
    assert!(matches!(tx.try_push(&()), Err(RingError::Full)));
    for _ in 0..4 {
        spmc.try_pop().unwrap();
    }
    assert!(matches!(spmc.try_pop(), Err(RingError::Empty)));

    let mpmc = MpmcRing::<()>::heap(4).expect("an MPMC ring of () opens");
    for _ in 0..4 {
        mpmc.try_push(&()).unwrap();
    }
    assert!(matches!(mpmc.try_push(&()), Err(RingError::Full)));
    for _ in 0..4 {
        mpmc.try_pop().unwrap();
    }
    assert!(matches!(mpmc.try_pop(), Err(RingError::Empty)));

    let broadcast = BroadcastRing::<()>::heap(4).expect("a broadcast ring of () opens");
    let mut sub = broadcast.subscribe();
    assert!(matches!(sub.try_recv(), Err(RingError::Empty)));
    let mut tx = broadcast.producer().unwrap();
    for _ in 0..6 {
        tx.push(&()).unwrap();
    }
    assert!(matches!(sub.try_recv(), Err(RingError::Lagged { missed: 2 })));
    for _ in 0..4 {
        sub.try_recv().unwrap();
    }
    assert!(matches!(sub.try_recv(), Err(RingError::Empty)));

    let vector = crate::ShmVector::<()>::heap(4).expect("a vector of () opens");
    for i in 0..4 {
        assert_eq!(vector.push(&()).unwrap(), i);
    }
    assert!(vector.push(&()).is_err(), "full");
    assert_eq!(vector.len(), 4);
    assert_eq!(vector.get(3), Some(()));
    assert_eq!(vector.get(4), None);

    // A set (a table of `()` values), with undo records (of no words) too.
    for undo in [false, true] {
        let set = crate::ShmHashTable::<u32, ()>::options()
            .capacity(8)
            .undo_records(undo)
            .open(&Backing::Heap)
            .expect("a table of () values opens");
        let visited = set.visit(&4, crate::AccessMode::CreateIfMiss, |_, _, _| {}).unwrap();
        assert_eq!(visited, crate::Visited::Created);
        assert_eq!(set.get(&4).unwrap(), Some(()));
        assert_eq!(set.get(&5).unwrap(), None);
    }
}

/// A broadcast ring's cells hold seqlock words (`2p + 2`), which name no process: once its
/// producer is gone, no owner id is referenced, so a dead process's entry can be reused.
/// (Decoded as claims, the words of published elements named even owner ids once 2^16
/// elements had been published.)
#[cfg(not(miri))] // reads the body through the segment's own view
#[test]
fn broadcast_cells_name_no_owner() {
    let ring = BroadcastRing::<u64>::heap(4096).unwrap();
    let mut tx = ring.producer().unwrap();
    // Positions 62,904..67,000 end up in the cells: from 65,535 on, `2p + 2` has the bits of
    // a claimed MPMC cell set, and its low 16 bits are small even numbers, i.e. owner ids.
    for i in 0..67_000 {
        tx.push(&i).unwrap();
    }
    let holder = ring.segment().owner().unwrap();
    let view = RingCore::<u64>::view(ring.segment(), true, false);
    assert!(view.references(holder), "the producer role names its holder");
    drop(tx);
    let referenced: Vec<u16> = (1..=crate::MAX_PROCESSES as u64)
        .filter_map(OwnerId::from_bits)
        .filter(|&o| view.references(o))
        .map(OwnerId::get)
        .collect();
    assert_eq!(referenced, Vec::<u16>::new());
    // And the claims of an MPMC ring do name their claimants.
    let mpmc = MpmcRing::<u64>::heap(4).unwrap();
    let dead = dead_owner(mpmc.segment());
    let (seq, _) = mpmc.core.cell(0);
    // Relaxed: planted by the only thread.
    seq.store(Cell::new(0, CellState::Reading, Some(dead)).0, Ordering::Relaxed);
    assert!(RingCore::<u64>::view(mpmc.segment(), true, true).references(dead));
}

/// The seats of sleepers name their owners, so a dead sleeper's process-table entry is not
/// reused while its seat is taken.
#[cfg(not(miri))]
#[test]
fn sleeper_seats_name_their_owners() {
    let ring = SpscRing::<u64>::heap(4).unwrap();
    let dead = dead_owner(ring.segment());
    let (_, seat, _) = ring.core.items().announce(Some(dead));
    assert!(seat.is_some());
    assert!(RingCore::<u64>::view(ring.segment(), false, false).references(dead));
    assert_eq!(ring.stats().sleeping, 1);
    assert_eq!(ring.recover_sleepers(), 1);
    assert_eq!(ring.stats(), RingStats { sleepers_recovered: 1, ..RingStats::default() });
    assert!(!RingCore::<u64>::view(ring.segment(), false, false).references(dead));
}

/// A snapshot names every holder: roles, claimed cells (with the claim's lap and work) and
/// sleepers, each with its liveness; it reads a vector's length and claims.
#[cfg(not(miri))]
#[test]
fn snapshots_name_roles_claims_and_sleepers() {
    let me = std::process::id();
    let ring = MpmcRing::<u64>::heap(4).unwrap();
    for i in 0..6 {
        if i >= 4 {
            ring.pop().unwrap();
        }
        ring.push(&i).unwrap();
    }
    let dead = dead_owner(ring.segment());
    let (seq, _) = ring.core.cell(1);
    // Relaxed: planted by the only thread.
    seq.store(Cell::new(1, CellState::Reading, Some(dead)).0, Ordering::Relaxed);
    let (_, seat, _) = ring.core.space().announce(Some(dead));
    assert!(seat.is_some());
    let s = RingSnapshot::of(ring.segment()).unwrap();
    assert_eq!((s.kind, s.capacity, s.head, s.tail), (StructureKind::MpmcRing, 4, 2, 6));
    assert_eq!(s.roles, [], "an MPMC ring has no exclusive role");
    assert_eq!(s.busy.len(), 1, "{:?}", s.busy);
    let busy = s.busy[0];
    assert_eq!((busy.index, busy.lap, busy.work), (1, 1, CellWork::Reading));
    assert_eq!((busy.holder.owner, busy.holder.liveness), (dead, Liveness::Dead));
    assert_eq!(s.sleepers.len(), 1);
    assert_eq!((s.sleepers[0].0, s.sleepers[0].1.owner), (SleepsFor::Space, dead));
    assert_eq!(s.stats.unwrap().sleeping, 1);
    assert_eq!(s.abandoned, None);

    let spsc = SpscRing::<u64>::heap(4).unwrap();
    let _consumer = spsc.consumer().unwrap();
    let s = RingSnapshot::of(spsc.segment()).unwrap();
    let roles: Vec<_> = s.roles.iter().map(|(r, h)| (*r, h.process.unwrap().pid)).collect();
    assert_eq!(roles, [(RingRole::Consumer, me)]);
    assert_eq!(s.roles[0].1.liveness, Liveness::Alive);

    let v = crate::ShmVector::<u64>::heap(2).unwrap();
    for i in 0..3 {
        let _ = v.push(&i);
    }
    let s = RingSnapshot::of(v.segment()).unwrap();
    assert_eq!(
        (s.kind, s.head, s.tail, s.abandoned, s.stats),
        (StructureKind::Vector, 2, 2, Some(0), None)
    );

    let table = crate::ShmHashTable::<u64, u64>::heap(4).unwrap();
    assert_eq!(RingSnapshot::of(table.segment()), None, "not a ring");
}
