//! Unit tests of the table over heap segments: the protocol's rules one by one, then threads.
//! They also run under Miri (`cargo +nightly miri test -p shmap-ipc --lib`), with smaller counts.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use super::ctrl::Ctrl;
use super::*;
use crate::sync::primitive::Ordering;

type Table = ShmHashTable<u64, u64>;

const SHORT: Duration = Duration::from_millis(if cfg!(miri) { 1 } else { 50 });

fn table(capacity: usize) -> Table {
    Table::heap(capacity).unwrap()
}

fn insert(t: &Table, k: u64, v: u64) {
    assert_eq!(
        t.visit(&k, AccessMode::CreateIfMiss, |_, x, new| {
            assert!(new);
            *x = v;
        })
        .unwrap(),
        Visited::Created
    );
}

/// Two keys whose home slot is the same in a table of `capacity` slots, with different tags.
fn colliding_keys(capacity: usize) -> (u64, u64) {
    let home = |k: u64| DefaultHasher::hash(&k.to_ne_bytes()) as usize & (capacity - 1);
    let tag = |k: u64| RawTable::<u64, u64>::tag(DefaultHasher::hash(&k.to_ne_bytes()));
    let a = 1;
    let b = (2..).find(|&b| home(b) == home(a) && tag(b) != tag(a)).unwrap();
    (a, b)
}

/// Holds `key`'s slot locked (inside a visitor) on another thread until the returned sender is
/// dropped or sent to.
fn hold_lock(t: &Arc<Table>, key: u64) -> (mpsc::Sender<()>, thread::JoinHandle<()>) {
    let (inside_tx, inside_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let t2 = Arc::clone(t);
    let handle = thread::spawn(move || {
        t2.visit(&key, AccessMode::CreateIfMiss, |_, v, _| {
            inside_tx.send(()).unwrap();
            let _ = release_rx.recv();
            *v += 1;
        })
        .unwrap();
    });
    inside_rx.recv().unwrap();
    (release_tx, handle)
}

#[test]
fn visit_modes() {
    let t = table(16);
    assert_eq!(
        t.visit(&5, AccessMode::AccessExist, |_, _, _| -> bool { unreachable!() }).unwrap(),
        Visited::NotFound
    );
    assert_eq!(t.get(&5).unwrap(), None);
    insert(&t, 5, 50);
    let r = t.visit(&5, AccessMode::CreateIfMiss, |_, v, new| {
        assert!(!new);
        *v += 1;
    });
    assert_eq!(r.unwrap(), Visited::Found);
    assert_eq!(t.get(&5).unwrap(), Some(51));
    assert_eq!(t.read(&5, |_, v| *v * 2).unwrap(), Some(102));
    assert_eq!(t.read(&6, |_, v| *v).unwrap(), None);
}

#[test]
fn the_visitor_sees_its_slot_index() {
    let t = table(8);
    let mut seen = None;
    t.visit(&3, AccessMode::CreateIfMiss, |slot, _, _| seen = Some(slot)).unwrap();
    let slot = seen.unwrap();
    assert_eq!(t.slot_state(slot), SlotState::Ready);
    assert_eq!(t.read(&3, |s, _| s).unwrap(), Some(slot));
}

#[test]
fn a_failed_insert_frees_its_slot_for_any_key() {
    let t = table(8);
    let mut slot = 0;
    let r = t.visit(&7, AccessMode::CreateIfMiss, |s, v, _| {
        slot = s;
        *v = 99;
        false
    });
    assert!(matches!(r, Err(VisitError::VisitorFailed(Rejected))));
    assert_eq!(t.get(&7).unwrap(), None, "no half-made entry");
    assert_eq!(t.slot_state(slot), SlotState::Empty, "the chain ended there: shortened");
    assert_eq!(t.visit(&7, AccessMode::AccessExist, |_, _, _| {}).unwrap(), Visited::NotFound);
    let r = t.visit(&7, AccessMode::CreateIfMiss, |s, v, new| {
        assert_eq!((s, new), (slot, true));
        assert_eq!(*v, 0, "a new entry starts zeroed, not with the failed value");
        *v = 1;
    });
    assert_eq!(r.unwrap(), Visited::Created);
    assert_eq!(t.get(&7).unwrap(), Some(1));
}

/// The example: in a 4-slot table, 4 rejected inserts used every slot for good.
#[test]
fn rejected_inserts_use_no_slot() {
    let t = table(4);
    for k in 0..4u64 {
        let r = t.visit(&k, AccessMode::CreateIfMiss, |_, _, _| false);
        assert!(matches!(r, Err(VisitError::VisitorFailed(Rejected))));
    }
    for k in 10..14u64 {
        assert_eq!(t.insert(&k, &k).unwrap(), None);
    }
    assert_eq!(t.len(), 4);
    assert!(matches!(t.insert(&99, &0), Err(TableError::TableFull { capacity: 4 })));
}

#[test]
fn rollback_restores_the_value_on_failure() {
    let t = table(8);
    insert(&t, 1, 10);
    let r = t.visit(&1, AccessMode::AccessExist, |_, v, _| {
        *v = 11;
        Err::<(), _>("no")
    });
    assert!(matches!(r, Err(VisitError::VisitorFailed("no"))));
    assert_eq!(t.get(&1).unwrap(), Some(10));
}

#[test]
fn without_rollback_a_failed_visitor_keeps_its_changes() {
    let t = Table::options().capacity(8).rollback(false).open(&Backing::Heap).unwrap();
    insert(&t, 1, 10);
    assert!(
        t.visit(&1, AccessMode::AccessExist, |_, v, _| {
            *v = 11;
            false
        })
        .is_err()
    );
    assert_eq!(t.get(&1).unwrap(), Some(11));
    // A new entry whose visitor fails is still never kept.
    assert!(
        t.visit(&2, AccessMode::CreateIfMiss, |_, v, _| {
            *v = 5;
            false
        })
        .is_err()
    );
    assert_eq!(t.get(&2).unwrap(), None);
}

#[test]
fn a_panicking_visitor_unlocks_and_rolls_back() {
    let t = table(8);
    insert(&t, 1, 10);
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        let _ = t.visit(&1, AccessMode::AccessExist, |_, v, _| -> bool {
            *v = 666;
            panic!("visitor bug");
        });
    }));
    assert!(panicked.is_err(), "the panic reaches the caller");
    assert_eq!(t.get(&1).unwrap(), Some(10));
    let quick = Wait::timeout(SHORT);
    let r = t.visit_with(&1, AccessMode::AccessExist, quick, |_, v, _| *v += 1);
    assert_eq!(r.unwrap(), Visited::Found, "the slot was unlocked");
    assert_eq!(t.get(&1).unwrap(), Some(11));

    let panicked = catch_unwind(AssertUnwindSafe(|| {
        let _ = t.visit(&2, AccessMode::CreateIfMiss, |_, _, _| -> bool { panic!("in an insert") });
    }));
    assert!(panicked.is_err());
    assert_eq!(t.get(&2).unwrap(), None, "a panicking insert leaves no entry");
    insert(&t, 2, 20);
}

#[test]
fn without_rollback_a_panicking_visitor_keeps_its_changes() {
    let t = Table::options().capacity(8).rollback(false).open(&Backing::Heap).unwrap();
    insert(&t, 1, 10);
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let _ = t.visit(&1, AccessMode::AccessExist, |_, v, _| -> bool {
            *v = 12;
            panic!("after writing");
        });
    }));
    assert_eq!(t.get(&1).unwrap(), Some(12));
}

/// A visit that changes nothing writes nothing back: no undo record, no value stores. The
/// version still moves on every unlock, so a monitor can tell lock episodes apart.
#[test]
fn an_unchanged_value_is_not_written_back() {
    let t = Table::options().capacity(8).undo_records(true).open(&Backing::Heap).unwrap();
    insert(&t, 1, 10);
    let slot = t.read(&1, |s, _| s).unwrap().unwrap();
    let undo = |t: &Table| t.raw().slot(slot).undo[0].load(Ordering::Relaxed);
    let version = t.raw().ctrl(slot).version();
    t.visit(&1, AccessMode::AccessExist, |_, v, _| assert_eq!(*v, 10)).unwrap();
    assert_eq!(undo(&t), 0, "a read-only visit writes no undo record");
    assert_eq!(t.raw().ctrl(slot).version(), version + 1);
    t.visit(&1, AccessMode::AccessExist, |_, v, _| *v = 11).unwrap();
    assert_eq!(undo(&t), 10, "a write-back first saves the committed value");
    assert_eq!(t.get(&1).unwrap(), Some(11));
}

#[test]
fn a_full_table_is_an_error_not_an_endless_probe() {
    let t = table(4);
    for k in 0..4 {
        insert(&t, k, k);
    }
    let r = t.visit(&100, AccessMode::CreateIfMiss, |_, _, _| {});
    assert!(matches!(r, Err(VisitError::Table(TableError::TableFull { capacity: 4 }))));
    assert_eq!(t.get(&100).unwrap(), None, "a miss in a full table ends too");
    assert_eq!(t.visit(&100, AccessMode::AccessExist, |_, _, _| {}).unwrap(), Visited::NotFound);
    for k in 0..4 {
        assert_eq!(t.get(&k).unwrap(), Some(k), "probe chains wrap around the end");
    }
}

#[test]
fn capacity_is_rounded_up_and_zero_refused() {
    assert_eq!(table(1000).capacity(), 1024);
    assert_eq!(table(1).capacity(), 1);
    let err = Table::heap(0).unwrap_err();
    assert!(matches!(err.kind(), crate::OpenErrorKind::InvalidOptions(_)), "{err}");
}

#[test]
fn wide_and_odd_sized_types() {
    let t = ShmHashTable::<[u8; 3], [u64; 8]>::heap(32).unwrap();
    for i in 0..20u8 {
        t.visit(&[i, i, i], AccessMode::CreateIfMiss, |_, v, _| *v = [u64::from(i); 8]).unwrap();
    }
    for i in 0..20u8 {
        assert_eq!(t.get(&[i, i, i]).unwrap(), Some([u64::from(i); 8]));
    }
    assert_eq!(t.get(&[1, 2, 3]).unwrap(), None);

    let set = ShmHashTable::<u32, ()>::heap(8).unwrap();
    assert_eq!(set.visit(&4, AccessMode::CreateIfMiss, |_, _, _| {}).unwrap(), Visited::Created);
    assert_eq!(set.get(&4).unwrap(), Some(()));
    assert_eq!(set.get(&5).unwrap(), None);
}

#[test]
fn travel_visits_stops_and_writes_back() {
    let t = table(64);
    for k in 0..10 {
        insert(&t, k, k);
    }
    let mut keys = Vec::new();
    let outcome = t.travel(|slot, k, v| {
        assert_eq!(t.slot_state(slot), SlotState::Accessing);
        keys.push(*k);
        *v += 100;
    });
    assert_eq!(outcome.unwrap(), TravelOutcome::Completed { visited: 10 });
    keys.sort_unstable();
    assert_eq!(keys, (0..10).collect::<Vec<_>>());
    assert_eq!(t.get(&3).unwrap(), Some(103));

    let mut n = 0;
    let outcome = t.travel(|_, _, _| {
        n += 1;
        n < 4
    });
    assert!(matches!(outcome.unwrap(), TravelOutcome::Stopped { visited: 4, .. }));
    let outcome = t.travel(|_, _, _| std::ops::ControlFlow::<()>::Break(()));
    assert!(matches!(outcome.unwrap(), TravelOutcome::Stopped { visited: 1, .. }));
}

#[test]
fn travel_skips_freed_slots() {
    let t = table(8);
    insert(&t, 1, 1);
    let _ = t.visit(&2, AccessMode::CreateIfMiss, |_, _, _| false);
    assert_eq!(t.travel(|_, _, _| {}).unwrap().visited(), 1);
}

/// Plants in slot `index` a claim of `key` by this process that never finishes (INSERTING, the
/// key not yet written), as a process stopped inside its claim leaves it; returns the owner id.
fn plant_claim(t: &Table, index: usize, key: u64) -> OwnerId {
    let owner = t.segment().owner().unwrap();
    let tag = RawTable::<u64, u64>::tag(DefaultHasher::hash(&key.to_ne_bytes()));
    let claim = Ctrl::new(SlotState::Inserting, tag, 0, Some(owner));
    t.raw().slot(index).ctrl.store(claim.0, Ordering::Release);
    owner
}

/// The probing rule: a slot being inserted with another tag is skipped at once; with the same
/// tag, an insert waits (its key may be ours) and times out, while a lookup or a removal passes
/// it at once (it holds no committed entry).
#[test]
fn probes_wait_only_on_slots_that_may_hold_their_key() {
    let capacity = 16;
    let t = table(capacity);
    let (a, b) = colliding_keys(capacity);
    let home = t.raw().home(DefaultHasher::hash(&a.to_ne_bytes()));
    // Simulate a process stuck while writing key `a` into its home slot.
    let owner = plant_claim(&t, home, a);

    let quick = Wait::timeout(SHORT);
    assert_eq!(t.get_with(&b, quick).unwrap(), None, "another tag: not waited on");
    let r = t.visit_with(&b, AccessMode::CreateIfMiss, quick, |_, v, _| *v = 2);
    assert_eq!(r.unwrap(), Visited::Created);
    assert_eq!(t.get(&b).unwrap(), Some(2));

    // A reader passes the claim: no committed `a` there, and none farther on. (A wait would
    // end in a timeout, an error: the claim is never published.)
    assert_eq!(t.get_with(&a, quick).unwrap(), None, "an uncommitted claim is absent");
    assert_eq!(t.remove(&a).unwrap(), None, "nothing committed to remove");

    let err = t.visit_with(&a, AccessMode::CreateIfMiss, quick, |_, _, _| {}).unwrap_err();
    match err {
        VisitError::Table(TableError::Timeout { slot, state, holder, waited }) => {
            assert_eq!((slot, state), (home, SlotState::Inserting));
            assert_eq!(holder.unwrap().owner, owner);
            assert!(waited >= SHORT);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

/// A committed copy of a key past a claim of the same key (a duplicate insert in flight, here a
/// claim planted nearer the home slot): lookups and removals pass the claim and find the
/// committed copy.
#[test]
fn readers_find_a_committed_key_past_a_claim_of_it() {
    let capacity = 16;
    let t = table(capacity);
    let (a, b) = colliding_keys(capacity);
    let home = t.raw().home(DefaultHasher::hash(&a.to_ne_bytes()));
    insert(&t, b, 2); // the home slot
    insert(&t, a, 1); // the slot after it
    assert_eq!(t.read(&a, |s, _| s).unwrap(), Some((home + 1) & (capacity - 1)));
    // `b`'s slot, seen as a claim of `a` in flight (`b` itself is only planted over).
    plant_claim(&t, home, a);
    let quick = Wait::timeout(SHORT);
    assert_eq!(t.get_with(&a, quick).unwrap(), Some(1));
    assert_eq!(t.remove(&a).unwrap(), Some(1));
    assert_eq!(t.get_with(&a, quick).unwrap(), None);
}

#[test]
fn readers_do_not_wait_for_a_running_visitor() {
    let t = Arc::new(table(16));
    insert(&t, 1, 10);
    let (release, handle) = hold_lock(&t, 1);
    let quick = Wait::timeout(SHORT);
    assert_eq!(t.get_with(&1, quick).unwrap(), Some(10), "ACCESSING is readable");
    release.send(()).unwrap();
    handle.join().unwrap();
    assert_eq!(t.get(&1).unwrap(), Some(11));
}

#[test]
fn a_visit_on_a_held_slot_times_out_naming_the_holder() {
    let t = Arc::new(table(16));
    insert(&t, 1, 10);
    let (release, handle) = hold_lock(&t, 1);
    let start = Instant::now();
    let r = t.visit_with(&1, AccessMode::AccessExist, Wait::timeout(SHORT), |_, _, _| {});
    let elapsed = start.elapsed();
    match r {
        Err(VisitError::Table(TableError::Timeout { state, holder, .. })) => {
            assert_eq!(state, SlotState::Accessing);
            let holder = holder.expect("a locked slot names its holder");
            assert_eq!(holder.process.unwrap().pid, std::process::id());
            assert!(holder.to_string().contains(&format!("pid {}", std::process::id())));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(elapsed >= SHORT);

    // A travel waits on the same slot, and reports where it gave up.
    let outcome = t.travel_with(Wait::timeout(SHORT), |_, _, _| {}).unwrap();
    match outcome {
        TravelOutcome::TimedOut { slot, state, holder, .. } => {
            assert_eq!(Some(slot), t.read(&1, |s, _| s).unwrap());
            assert_eq!(state, SlotState::Accessing);
            assert!(holder.is_some());
        }
        other => panic!("expected a travel timeout, got {other:?}"),
    }
    drop(release);
    handle.join().unwrap();
    assert!(t.travel(|_, _, _| {}).unwrap().is_completed());
}

#[test]
fn another_keys_held_slot_does_not_block() {
    let capacity = 16;
    let t = Arc::new(table(capacity));
    let (a, b) = colliding_keys(capacity);
    insert(&t, a, 1);
    let (release, handle) = hold_lock(&t, a);
    let quick = Wait::timeout(SHORT);
    let r = t.visit_with(&b, AccessMode::CreateIfMiss, quick, |_, v, _| *v = 2);
    assert_eq!(r.unwrap(), Visited::Created);
    assert_eq!(t.get_with(&b, quick).unwrap(), Some(2));
    drop(release);
    handle.join().unwrap();
}

#[test]
fn concurrent_increments_are_exact() {
    let threads = 4;
    let rounds: u64 = if cfg!(miri) { 20 } else { 5_000 };
    let keys = 50;
    let t = Arc::new(table(128));
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (t, start) = (Arc::clone(&t), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                for i in 0..rounds {
                    t.visit(&(i % keys), AccessMode::CreateIfMiss, |_, v, _| *v += 1).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut total = 0;
    assert!(t.travel(|_, _, v| total += *v).unwrap().is_completed());
    assert_eq!(total, threads as u64 * rounds);
    for k in 0..keys.min(rounds) {
        let expected = threads as u64 * (rounds / keys + u64::from(k < rounds % keys));
        assert_eq!(t.get(&k).unwrap(), Some(expected), "key {k}");
    }
}

/// Seqlock reads never return a torn value: every copy a reader accepts has all words equal.
#[test]
fn concurrent_reads_see_whole_values() {
    let rounds: u64 = if cfg!(miri) { 30 } else { 20_000 };
    let t = Arc::new(ShmHashTable::<u64, [u64; 8]>::heap(16).unwrap());
    t.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v = [0; 8]).unwrap();
    let writer = {
        let t = Arc::clone(&t);
        thread::spawn(move || {
            for i in 1..=rounds {
                t.visit(&1, AccessMode::AccessExist, |_, v, _| *v = [i; 8]).unwrap();
            }
        })
    };
    let reader = {
        let t = Arc::clone(&t);
        thread::spawn(move || {
            let mut last = 0;
            while last < rounds {
                let v = t.get(&1).unwrap().unwrap();
                assert!(v.iter().all(|&w| w == v[0]), "torn read: {v:?}");
                assert!(v[0] >= last, "values go back in time: {} after {last}", v[0]);
                last = v[0];
            }
        })
    };
    writer.join().unwrap();
    reader.join().unwrap();
}

#[test]
fn concurrent_inserts_of_one_key_create_it_once() {
    let threads = 4;
    let rounds = if cfg!(miri) { 3 } else { 200 };
    for round in 0..rounds {
        let t = Arc::new(table(64));
        let start = Arc::new(Barrier::new(threads));
        let created: usize = (0..threads)
            .map(|_| {
                let (t, start) = (Arc::clone(&t), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    t.visit(&round, AccessMode::CreateIfMiss, |_, v, _| *v += 1).unwrap()
                        == Visited::Created
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| usize::from(h.join().unwrap()))
            .sum();
        assert_eq!(created, 1);
        assert_eq!(t.get(&round).unwrap(), Some(threads as u64));
        assert_eq!(t.travel(|_, _, _| {}).unwrap().visited(), 1, "one slot for the key");
    }
}

// ---------------------------------------------------------------------------------------------
// Recovery from dead holders. The holder is a real dead process: a child that has exited and
// been reaped, registered in the table's process table under its pid.

#[cfg(not(miri))]
mod recovery {
    use super::*;
    use crate::process::{Liveness, ProcessIdentity};
    use crate::segment::Recoveries;

    const STALE: Duration = Duration::from_millis(10);

    fn quick() -> Wait {
        Wait::timeout(Duration::from_secs(5)).with_stale_check(STALE)
    }

    /// An owner id whose process has exited.
    fn dead_owner<V: ShmValue>(t: &ShmHashTable<u64, V>) -> OwnerId {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = ProcessIdentity { pid, ..ProcessIdentity::current().unwrap() };
        let owner = t.segment().processes().register(&dead, &|_| false).unwrap();
        assert_eq!(t.owner_liveness(owner), Liveness::Dead);
        owner
    }

    /// Puts slot `slot` in `state`, held by `owner`, keeping its tag and version.
    fn plant<V: ShmValue>(t: &ShmHashTable<u64, V>, slot: usize, state: SlotState, owner: OwnerId) {
        let c = t.raw().ctrl(slot);
        t.raw().slot(slot).ctrl.store(c.locked(state, owner).0, Ordering::Release);
    }

    #[test]
    fn a_dead_visitors_slot_is_unlocked_by_the_next_visit() {
        let t = table(16);
        insert(&t, 1, 10);
        let slot = t.read(&1, |s, _| s).unwrap().unwrap();
        let dead = dead_owner(&t);
        plant(&t, slot, SlotState::Accessing, dead);
        let start = Instant::now();
        let r = t.visit_with(&1, AccessMode::AccessExist, quick(), |_, v, _| *v += 1);
        assert_eq!(r.unwrap(), Visited::Found);
        assert!(start.elapsed() >= STALE, "recovered only after the stale-check interval");
        assert_eq!(t.get(&1).unwrap(), Some(11), "the dead visitor's copy was never written");
        assert_eq!(t.segment().recoveries(), Recoveries { total: 1, torn: 0 });
    }

    #[test]
    fn an_interrupted_write_back_is_rolled_back_from_the_undo_record() {
        let t = ShmHashTable::<u64, [u64; 2]>::options()
            .capacity(16)
            .undo_records(true)
            .open(&Backing::Heap)
            .unwrap();
        t.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v = [1, 1]).unwrap();
        let slot = t.read(&1, |s, _| s).unwrap().unwrap();
        let dead = dead_owner(&t);
        // Died half-way through writing [2, 2]: the undo record holds [1, 1].
        let words = t.raw().slot(slot);
        words.undo[0].store(1, Ordering::Relaxed);
        words.undo[1].store(1, Ordering::Relaxed);
        words.value[0].store(2, Ordering::Relaxed);
        plant(&t, slot, SlotState::Writing, dead);
        assert_eq!(t.get_with(&1, quick()).unwrap(), Some([1, 1]), "a reader recovers it too");
        assert_eq!(t.segment().recoveries(), Recoveries { total: 1, torn: 0 });
        assert_eq!(t.slot_state(slot), SlotState::Ready);
    }

    /// A read-only reader never recovers (that writes): on a slot a dead writer left in
    /// WRITING it times out naming the holder, and leaves the slot for a writer to recover.
    #[test]
    fn a_reader_times_out_on_a_dead_holder_and_leaves_it_to_a_writer() {
        let name = format!("/shmap-unit-reader-dead-{}", std::process::id());
        let t = ShmHashTable::<u64, u64>::options()
            .capacity(16)
            .open(&crate::Backing::shm(&name))
            .unwrap();
        let _cleanup = crate::segment::UnlinkOnDrop(crate::Backing::shm(&name));
        t.insert(&1, &10).unwrap();
        let slot = t.read(&1, |s, _| s).unwrap().unwrap();
        let dead = dead_owner(&t);
        plant(&t, slot, SlotState::Writing, dead);
        let reader = crate::ShmTableReader::<u64, u64>::open_with(
            &crate::Backing::shm(&name),
            Wait::timeout(Duration::from_millis(100)).with_stale_check(STALE),
        )
        .unwrap();
        match reader.get(&1) {
            Err(TableError::Timeout { slot: s, state: SlotState::Writing, holder, .. }) => {
                assert_eq!((s, holder.unwrap().owner), (slot, dead));
            }
            other => panic!("expected a timeout on the dead holder's slot, got {other:?}"),
        }
        let items: Vec<_> = reader.iter().collect();
        assert!(
            matches!(items.as_slice(), [Err(TableError::Timeout { .. })]),
            "the iteration reports the slot once and moves on: {items:?}"
        );
        assert!(
            std::panic::catch_unwind(|| reader.segment().body().len()).is_err(),
            "no writable atomics over a read-only mapping"
        );
        assert_eq!(reader.segment().load_word(0), t.segment().load_word(0));
        assert_eq!(t.slot_state(slot), SlotState::Writing, "not recovered by the reader");
        assert_eq!(t.segment().recoveries().total, 0);
        assert_eq!(t.get_with(&1, quick()).unwrap(), Some(10), "a writer recovers it");
        assert_eq!(t.segment().recoveries().total, 1);
    }

    #[test]
    fn without_undo_records_an_interrupted_write_back_is_released_torn() {
        let t = ShmHashTable::<u64, [u64; 2]>::heap(16).unwrap();
        t.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v = [1, 1]).unwrap();
        let slot = t.read(&1, |s, _| s).unwrap().unwrap();
        let dead = dead_owner(&t);
        t.raw().slot(slot).value[0].store(2, Ordering::Relaxed);
        plant(&t, slot, SlotState::Writing, dead);
        assert_eq!(t.get_with(&1, quick()).unwrap(), Some([2, 1]), "released as it was");
        assert_eq!(
            t.segment().recoveries(),
            Recoveries { total: 1, torn: 1 },
            "and counted as torn"
        );
    }

    #[test]
    fn a_dead_inserters_slot_never_cuts_a_probe_chain() {
        let capacity = 16;
        let t = table(capacity);
        let (a, b) = colliding_keys(capacity);
        let dead = dead_owner(&t);
        // `a` died after publishing its key (NEW); `b` was inserted behind it.
        let slot_a = t.raw().home(DefaultHasher::hash(&a.to_ne_bytes()));
        insert(&t, a, 1);
        plant(&t, slot_a, SlotState::New, dead);
        let r = t.visit_with(&b, AccessMode::CreateIfMiss, quick(), |_, v, _| *v = 2);
        assert_eq!(r.unwrap(), Visited::Created, "another tag is not waited on");
        assert_eq!(t.get_with(&a, quick()).unwrap(), None, "an uncommitted insert is absent");
        assert_eq!(t.get_with(&b, quick()).unwrap(), Some(2));
        assert_eq!(
            t.visit_with(&a, AccessMode::AccessExist, quick(), |_, _, _| {}).unwrap(),
            Visited::NotFound
        );
        // Inserting `a` again waits out the stale check, frees the slot, and reuses it.
        let r = t.visit_with(&a, AccessMode::CreateIfMiss, quick(), |s, v, new| {
            assert_eq!((s, new), (slot_a, true));
            *v = 3;
        });
        assert_eq!(r.unwrap(), Visited::Created);
        assert_eq!((t.get(&a).unwrap(), t.get(&b).unwrap()), (Some(3), Some(2)));
        assert_eq!(t.segment().recoveries().total, 1);
    }

    #[test]
    fn a_half_written_key_is_abandoned_and_its_slot_reused() {
        let capacity = 16;
        let t = table(capacity);
        let a: u64 = 5;
        let hash = DefaultHasher::hash(&a.to_ne_bytes());
        let home = t.raw().home(hash);
        let dead = dead_owner(&t);
        // The dead inserter claimed `a`'s home slot and wrote half a key.
        let claimed =
            Ctrl::new(SlotState::Inserting, RawTable::<u64, u64>::tag(hash), 0, Some(dead));
        t.raw().slot(home).key[0].store(0xdead, Ordering::Relaxed);
        t.raw().slot(home).ctrl.store(claimed.0, Ordering::Release);
        insert_with(&t, a, 7, quick());
        assert_eq!(t.slot_state(home), SlotState::Ready);
        assert_eq!(t.get(&a).unwrap(), Some(7));
        assert_eq!(t.read(&a, |s, _| s).unwrap(), Some(home), "the freed slot was reused");
    }

    fn insert_with(t: &Table, k: u64, v: u64, wait: Wait) {
        let r = t.visit_with(&k, AccessMode::CreateIfMiss, wait, |_, x, _| *x = v);
        assert_eq!(r.unwrap(), Visited::Created);
    }

    /// A slow but live holder keeps its lock: the waiter times out, the holder finishes.
    #[test]
    fn a_live_holder_is_never_robbed() {
        let t = Arc::new(table(16));
        insert(&t, 1, 10);
        let (release, handle) = hold_lock(&t, 1);
        let wait =
            Wait::timeout(Duration::from_millis(60)).with_stale_check(Duration::from_millis(1));
        let r = t.visit_with(&1, AccessMode::AccessExist, wait, |_, v, _| *v = 0);
        assert!(matches!(r, Err(VisitError::Table(TableError::Timeout { .. }))), "{r:?}");
        release.send(()).unwrap();
        handle.join().unwrap();
        assert_eq!(t.get(&1).unwrap(), Some(11), "the holder's write-back went through");
        assert_eq!(t.segment().recoveries(), Recoveries { total: 0, torn: 0 });
    }

    /// A holder in another pid namespace cannot be judged from here: never recovered.
    #[test]
    fn a_holder_of_unknown_liveness_is_left_alone() {
        let t = table(16);
        insert(&t, 1, 10);
        let slot = t.read(&1, |s, _| s).unwrap().unwrap();
        let me = ProcessIdentity::current().unwrap();
        let foreign = ProcessIdentity { pid: 1, pid_namespace: me.pid_namespace ^ 1, ..me };
        let owner = t.segment().processes().register(&foreign, &|_| false).unwrap();
        assert_eq!(t.owner_liveness(owner), Liveness::Unknown);
        plant(&t, slot, SlotState::Accessing, owner);
        let wait =
            Wait::timeout(Duration::from_millis(40)).with_stale_check(Duration::from_millis(1));
        assert!(t.get_with(&1, wait).unwrap() == Some(10), "readers still read it");
        let r = t.visit_with(&1, AccessMode::AccessExist, wait, |_, _, _| {});
        assert!(matches!(r, Err(VisitError::Table(TableError::Timeout { .. }))));
        assert_eq!(t.segment().recoveries(), Recoveries { total: 0, torn: 0 });
    }

    /// Several waiters find the same dead holder: exactly one recovers the slot.
    #[test]
    fn concurrent_recoveries_happen_once() {
        let t = Arc::new(
            ShmHashTable::<u64, [u64; 2]>::options()
                .capacity(16)
                .undo_records(true)
                .open(&Backing::Heap)
                .unwrap(),
        );
        t.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v = [1, 1]).unwrap();
        let slot = t.read(&1, |s, _| s).unwrap().unwrap();
        let dead = dead_owner(&t);
        t.raw().slot(slot).undo[0].store(1, Ordering::Relaxed);
        t.raw().slot(slot).undo[1].store(1, Ordering::Relaxed);
        plant(&t, slot, SlotState::Writing, dead);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let t = Arc::clone(&t);
                thread::spawn(move || {
                    t.visit_with(&1, AccessMode::AccessExist, quick(), |_, v, _| v[0] += 1)
                        .unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(t.get(&1).unwrap(), Some([5, 1]));
        assert_eq!(
            t.segment().recoveries(),
            Recoveries { total: 1, torn: 0 },
            "one recovery, whoever did it"
        );
    }
}

/// The map API's read-modify-write methods are per-key atomic: threads that increment one
/// counter with a compare-and-exchange loop, and threads that race to create another key with
/// `get_or_insert_with`, lose nothing and create it once.
#[test]
fn map_api_read_modify_writes_are_atomic() {
    let t = ShmHashTable::<u64, u64>::heap(64).unwrap();
    t.insert(&1, &0).unwrap();
    let made = std::sync::atomic::AtomicUsize::new(0);
    let rounds = if cfg!(miri) { 10 } else { 500 };
    std::thread::scope(|s| {
        for thread in 0..4u64 {
            let (t, made) = (&t, &made);
            s.spawn(move || {
                for _ in 0..rounds {
                    let mut seen = t.get(&1).unwrap().unwrap();
                    while let Err(actual) = t.compare_exchange(&1, &seen, &(seen + 1)).unwrap() {
                        seen = actual.expect("the key stays present");
                    }
                }
                let v = t
                    .get_or_insert_with(&2, || {
                        made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        100 + thread
                    })
                    .unwrap();
                assert!((100..104).contains(&v));
            });
        }
    });
    assert_eq!(t.get(&1).unwrap(), Some(4 * rounds));
    assert_eq!(made.load(std::sync::atomic::Ordering::Relaxed), 1, "one creation of key 2");
    assert_eq!(t.insert(&2, &7).unwrap().map(|v| (100..104).contains(&v)), Some(true));
    assert_eq!(t.update(&2, |v| *v).unwrap(), Some(7));
}
