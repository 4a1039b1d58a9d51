//! Loom models of the slot protocol, over heap-backed tables whose slots are loom atomics.
//!
//! ```text
//! RUSTFLAGS="--cfg shmap_loom" LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test -p shmap-ipc --lib --release --target-dir target/loom -- loom_tests
//! ```
//!
//! Each model runs two operations on two threads and checks the outcome in every interleaving
//! loom explores, including the stale reads its C11 model allows. Every pair runs twice, once
//! with each operation's thread spawned first: loom's DPOR remembers only the last access to
//! each atomic, so from one start order alone it can miss the interleavings in which the
//! thread that ran first is preempted (a read racing a write, in particular).
use crate::loom_support::{race, race_within};
use crate::segment::Recoveries;
use crate::{AccessMode, Backing, ShmHashTable, TravelOutcome, VisitError, Visited};

type Pair = [u64; 2];

fn table<V: crate::ShmValue>(capacity: usize) -> ShmHashTable<u64, V> {
    ShmHashTable::options().capacity(capacity).open(&Backing::Heap).unwrap()
}

fn increment(t: &ShmHashTable<u64, u64>) -> Visited {
    t.visit(&7, AccessMode::CreateIfMiss, |_, v, _| *v += 1).unwrap()
}

/// Two inserts of one key: exactly one creates it, both increments land, one slot is used.
#[test]
fn insert_vs_insert_of_the_same_key() {
    race(
        || table(4),
        increment,
        increment,
        |t, a, b| {
            assert!(
                matches!(
                    (a, b),
                    (Visited::Created, Visited::Found) | (Visited::Found, Visited::Created)
                ),
                "{a:?} {b:?}"
            );
            assert_eq!(t.get(&7).unwrap(), Some(2));
            assert_eq!(t.travel(|_, _, _| {}).unwrap(), TravelOutcome::Completed { visited: 1 });
        },
    );
}

/// Two keys that share their home slot (capacity 2), inserted at once: both present.
#[test]
fn insert_vs_insert_of_colliding_keys() {
    race(
        || table(2),
        |t| t.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v = 10).unwrap(),
        |t| t.visit(&2, AccessMode::CreateIfMiss, |_, v, _| *v = 20).unwrap(),
        |t, _, _| assert_eq!((t.get(&1).unwrap(), t.get(&2).unwrap()), (Some(10), Some(20))),
    );
}

/// A reader racing a visit sees the old value or the new one, never a mix of their words.
#[test]
fn visit_vs_read() {
    race(
        || {
            let t = table::<Pair>(4);
            t.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v = [1, 1]).unwrap();
            t
        },
        |t| t.visit(&1, AccessMode::AccessExist, |_, v, _| *v = [2, 2]).unwrap(),
        |t| t.get(&1).unwrap(),
        |t, _, seen| {
            assert!(seen == Some([1, 1]) || seen == Some([2, 2]), "torn or lost read: {seen:?}");
            assert_eq!(t.get(&1).unwrap(), Some([2, 2]));
        },
    );
}

/// A reader racing an insert sees nothing or the complete first value.
#[test]
fn read_vs_insert() {
    race(
        || table::<Pair>(4),
        |t| t.visit(&3, AccessMode::CreateIfMiss, |_, v, _| *v = [5, 6]).unwrap(),
        |t| t.get(&3).unwrap(),
        |t, _, seen| {
            assert!(seen.is_none() || seen == Some([5, 6]), "half-made entry visible: {seen:?}");
            assert_eq!(t.get(&3).unwrap(), Some([5, 6]));
        },
    );
}

/// A failed insert racing a successful one: the failure never leaves an entry or a value, and
/// the success is never lost.
#[test]
fn failed_insert_vs_insert() {
    race(
        || table::<u64>(4),
        |t| {
            t.visit(&4, AccessMode::CreateIfMiss, |_, v, _| {
                *v = 666;
                false
            })
            .is_err()
        },
        |t| {
            t.visit(&4, AccessMode::CreateIfMiss, |_, v, new| {
                assert!(new == (*v == 0) && *v != 666, "saw the failed visitor's value");
                *v += 1;
            })
            .unwrap()
        },
        |t, failed, _| {
            assert!(failed);
            assert_eq!(t.get(&4).unwrap(), Some(1));
        },
    );
}

/// A travel racing a visit visits both entries once, and the visit's increment is kept.
#[test]
fn travel_vs_visit() {
    race(
        || {
            let t = table::<u64>(4);
            for k in [1, 2] {
                t.visit(&k, AccessMode::CreateIfMiss, |_, v, _| *v = 10).unwrap();
            }
            t
        },
        |t| t.visit(&1, AccessMode::AccessExist, |_, v, _| *v += 1).unwrap(),
        |t| {
            let mut seen = Vec::new();
            let outcome = t.travel(|_, k, v| seen.push((*k, *v))).unwrap();
            seen.sort_unstable();
            (outcome, seen)
        },
        |t, _, (outcome, seen)| {
            assert_eq!(outcome, TravelOutcome::Completed { visited: 2 });
            assert!(seen == [(1, 10), (2, 10)] || seen == [(1, 11), (2, 10)], "{seen:?}");
            assert_eq!(t.get(&1).unwrap(), Some(11));
        },
    );
}

/// A visit whose visitor fails, racing a reader: the reader never sees the rolled-back value.
#[test]
fn rolled_back_visit_vs_read() {
    race(
        || {
            let t = table::<Pair>(4);
            t.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v = [1, 1]).unwrap();
            t
        },
        |t| {
            let r = t.visit(&1, AccessMode::AccessExist, |_, v, _| {
                *v = [9, 9];
                Err::<(), _>(())
            });
            matches!(r, Err(VisitError::VisitorFailed(())))
        },
        |t| t.get(&1).unwrap(),
        |_, failed, seen| {
            assert!(failed);
            assert_eq!(seen, Some([1, 1]));
        },
    );
}

/// A reader and a visitor both find a slot whose holder died mid-write-back: exactly one of
/// them rolls it back from the undo record, neither ever returns the torn value, and the
/// visitor's increment lands on the restored value.
#[test]
fn racing_recoveries_of_a_dead_write_back() {
    race(
        || {
            let t = ShmHashTable::<u64, Pair>::options()
                .capacity(4)
                .undo_records(true)
                .open(&Backing::Heap)
                .unwrap();
            t.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v = [1, 1]).unwrap();
            t.loom_plant_dead_write_back(&1, &[2, 1]);
            t
        },
        |t| t.visit(&1, AccessMode::AccessExist, |_, v, _| v[0] += 10).unwrap(),
        |t| t.get(&1).unwrap(),
        |t, _, seen| {
            assert!(seen == Some([1, 1]) || seen == Some([11, 1]), "torn or lost: {seen:?}");
            assert_eq!(t.get(&1).unwrap(), Some([11, 1]));
            assert_eq!(
                t.segment().recoveries(),
                Recoveries { total: 1, torn: 0 },
                "recovered exactly once"
            );
        },
    );
}

/// Every lock episode of a slot has a control word of its own: two inserts of one key whose
/// visitors fail, and a sampler (a monitor) that reads the key's slot three times, never sees a
/// locked word come back after the slot changed. Before aborts bumped the version, an aborted
/// insert left TOMBSTONE with its NEW word's version, so the next insert's NEW was the same
/// word: `Monitor::poll` took the two locks for one held all along and reported a stuck slot,
/// and a recoverer's compare-and-swap from the first word could hit the second lock.
#[test]
fn aborted_inserts_never_repeat_a_locked_word() {
    race(
        || table::<u64>(4),
        |t| {
            for _ in 0..2 {
                assert!(t.visit(&1, AccessMode::CreateIfMiss, |_, _, _| false).is_err());
            }
        },
        |t| [(); 3].map(|()| t.loom_home_ctrl(&1)),
        |t, (), [s1, s2, s3]| {
            let locked = |c: u64| matches!(c & 0b111, 1 | 2 | 4 | 5 | 7);
            assert!(
                !(locked(s1) && s1 == s3 && s2 != s1),
                "a locked word came back: {s1:#x} {s2:#x} {s3:#x}"
            );
            assert_eq!(t.get(&1).unwrap(), None);
        },
    );
}

// --- Removal and slot reuse (see `raw.rs`, "Removal and reuse") ---

/// `n` keys whose home slot is `home` in a table of `capacity` slots, each with a tag of its
/// own.
fn keys_at(capacity: usize, home: usize, n: usize) -> Vec<u64> {
    use crate::hash::{DefaultHasher, ShmHasher};
    let mut keys: Vec<u64> = Vec::new();
    let hash = |k: u64| DefaultHasher::hash(&k.to_ne_bytes());
    for k in 1.. {
        let tag_of = |k: u64| hash(k) >> 48;
        if hash(k) as usize & (capacity - 1) == home && keys.iter().all(|&o| tag_of(o) != tag_of(k))
        {
            keys.push(k);
            if keys.len() == n {
                break;
            }
        }
    }
    keys
}

/// Checks the table's invariants after a model: no key in two slots, every entry found by
/// `get` (no chain cut), and the count exact.
fn assert_consistent<V: crate::ShmValue + PartialEq + std::fmt::Debug>(t: &ShmHashTable<u64, V>) {
    let mut seen = Vec::new();
    assert!(t.travel(|_, k, _| seen.push(*k)).unwrap().is_completed());
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a key in two slots: {seen:?}");
    for k in &seen {
        assert!(t.get(k).unwrap().is_some(), "key {k} unreachable");
    }
    assert_eq!(t.recount().unwrap(), seen.len());
    assert_eq!(t.len(), seen.len());
}

/// A removal racing a lookup: the lookup sees the value or nothing, and nothing afterwards.
#[test]
fn remove_vs_get() {
    race(
        || {
            let t = table::<Pair>(4);
            t.insert(&1, &[1, 2]).unwrap();
            t
        },
        |t| t.remove(&1).unwrap(),
        |t| t.get(&1).unwrap(),
        |t, removed, seen| {
            assert_eq!(removed, Some([1, 2]));
            assert!(seen.is_none() || seen == Some([1, 2]), "{seen:?}");
            assert_eq!(t.get(&1).unwrap(), None);
            assert_consistent(t);
        },
    );
}

/// A removal racing an insert of the same key: the two are ordered one way or the other, and
/// the key is in at most one slot.
#[test]
fn remove_vs_insert_of_the_same_key() {
    race(
        || {
            let t = table::<u64>(4);
            t.insert(&1, &10).unwrap();
            t
        },
        |t| t.remove(&1).unwrap(),
        |t| t.insert(&1, &20).unwrap(),
        |t, removed, replaced| {
            match (removed, replaced) {
                // remove first, then a new insert
                (Some(10), None) => assert_eq!(t.get(&1).unwrap(), Some(20)),
                // insert (an update) first, then the removal of its value
                (Some(20), Some(10)) => assert_eq!(t.get(&1).unwrap(), None),
                other => panic!("not linearisable: {other:?}"),
            }
            assert_consistent(t);
        },
    );
}

/// Two lookups of a key racing its removal and re-insertion, whose insert reuses the FREED slot
/// before the removed copy: the lookups pass the claim there (INSERTING, then NEW) without
/// waiting, and see the key's history in order: the old value, nothing, the new value.
#[test]
fn gets_vs_remove_then_insert_into_a_reused_slot() {
    race(
        || {
            let t = table::<u64>(4);
            let [x, k] = keys_at(4, 0, 2)[..] else { unreachable!() };
            t.insert(&x, &1).unwrap(); // slot 0
            t.insert(&k, &10).unwrap(); // slot 1
            t.remove(&x).unwrap(); // slot 0 FREED: the slot the re-insertion reuses
            t
        },
        |t| {
            let k = keys_at(4, 0, 2)[1];
            (t.get(&k).unwrap(), t.get(&k).unwrap())
        },
        |t| {
            let k = keys_at(4, 0, 2)[1];
            assert_eq!(t.remove(&k).unwrap(), Some(10));
            t.insert(&k, &20).unwrap()
        },
        |t, (first, second), created| {
            let order = |v: Option<u64>| match v {
                Some(10) => 0,
                None => 1,
                Some(20) => 2,
                other => panic!("a value never stored: {other:?}"),
            };
            assert!(order(first) <= order(second), "out of order: {first:?} then {second:?}");
            assert_eq!(created, None);
            assert_eq!(t.get(&keys_at(4, 0, 2)[1]).unwrap(), Some(20));
            assert_consistent(t);
        },
    );
}

/// Adds one to the third key of home slot 0, creating it if it is missing.
fn increment_the_third_key(t: &ShmHashTable<u64, u64>) -> Visited {
    t.visit(&keys_at(4, 0, 3)[2], AccessMode::CreateIfMiss, |_, v, _| *v += 1).unwrap()
}

/// The check of two increments (`a`, `b`) of the third key of home slot 0, each of which may
/// have created it: one did, and the one copy holds both.
fn one_copy_with_both_increments(t: &ShmHashTable<u64, u64>, a: Visited, b: Visited) {
    assert!(
        matches!((a, b), (Visited::Created, Visited::Found) | (Visited::Found, Visited::Created)),
        "{a:?} {b:?}"
    );
    assert_eq!(t.get(&keys_at(4, 0, 3)[2]).unwrap(), Some(2));
    assert_consistent(t);
}

/// Two inserts of one key, in a chain with FREED slots before the EMPTY one: whichever slots
/// they claim, one copy commits and both increments land on it.
#[test]
fn inserts_of_one_key_racing_for_reusable_slots() {
    race(
        || {
            let t = table::<u64>(4);
            let [x, z, k] = keys_at(4, 0, 3)[..] else { unreachable!() };
            t.insert(&x, &1).unwrap();
            t.insert(&z, &1).unwrap();
            t.remove(&x).unwrap(); // slot 0 FREED: z's chain runs through it
            assert_eq!(t.loom_home(&k), 0);
            t
        },
        increment_the_third_key,
        increment_the_third_key,
        one_copy_with_both_increments,
    );
}

/// An insert of a key that claims the EMPTY end of its chain (slot 2), racing a process that
/// frees slot 0 (a removal) and then inserts the same key: the second insert's walk stops at
/// slot 0, the first slot free for it, and claims it without looking past it, so only the
/// verifications stand between the two copies (the nearer one wins, or the second aborts on
/// the first's commit). One copy commits and both increments land on it.
#[test]
fn a_reusing_claim_before_a_copy_claimed_past_it() {
    race(
        || keys_of_home_inserted(0, 3, 2),
        increment_the_third_key,
        |t| {
            t.remove(&keys_at(4, 0, 3)[0]).unwrap(); // slot 0 FREED: z's chain runs through it
            increment_the_third_key(t)
        },
        one_copy_with_both_increments,
    );
}

/// A key removed and its slot reused by another key while a lookup of the first key copies
/// the slot: the lookup returns the first key's value or nothing, never the second's.
#[test]
fn reused_slot_vs_get_of_the_old_key() {
    race(
        || {
            let t = table::<Pair>(4);
            t.insert(&keys_at(4, 0, 2)[0], &[1, 1]).unwrap();
            t
        },
        |t| {
            let [x, k] = keys_at(4, 0, 2)[..] else { unreachable!() };
            t.remove(&x).unwrap();
            t.insert(&k, &[2, 2]).unwrap();
        },
        |t| t.get(&keys_at(4, 0, 2)[0]).unwrap(),
        |t, (), seen| {
            assert!(seen.is_none() || seen == Some([1, 1]), "another key's value: {seen:?}");
            let [x, k] = keys_at(4, 0, 2)[..] else { unreachable!() };
            assert_eq!((t.get(&x).unwrap(), t.get(&k).unwrap()), (None, Some([2, 2])));
            assert_consistent(t);
        },
    );
}

/// A removal that shortens the chain (its slot becomes EMPTY) racing an insert whose chain
/// runs through that slot: the insert's key stays reachable.
#[test]
fn shortening_vs_insert_through_the_slot() {
    race(
        || {
            let t = table::<u64>(4);
            t.insert(&keys_at(4, 0, 2)[0], &1).unwrap();
            t
        },
        |t| t.remove(&keys_at(4, 0, 2)[0]).unwrap(),
        |t| t.insert(&keys_at(4, 0, 2)[1], &2).unwrap(),
        |t, removed, inserted| {
            assert_eq!((removed, inserted), (Some(1), None));
            assert_eq!(t.get(&keys_at(4, 0, 2)[1]).unwrap(), Some(2), "the chain was cut");
            assert_consistent(t);
        },
    );
}

/// A reusing insert whose process died after publishing its key (NEW in a FREED slot), found
/// by an insert of the same key and by a lookup: the dead claim is freed once, the lookup never
/// sees it, and the key ends in one slot with the live insert's value.
#[test]
fn recovery_of_a_dead_reusing_insert() {
    race(
        || {
            let t = table::<u64>(4);
            let [x, z, k] = keys_at(4, 0, 3)[..] else { unreachable!() };
            t.insert(&x, &1).unwrap();
            t.insert(&z, &1).unwrap();
            t.remove(&x).unwrap(); // slot 0 FREED
            t.loom_plant_dead_insert(0, &k);
            t
        },
        |t| t.insert(&keys_at(4, 0, 3)[2], &7).unwrap(),
        |t| t.get(&keys_at(4, 0, 3)[2]).unwrap(),
        |t, replaced, seen| {
            assert_eq!(replaced, None, "the dead insert never committed");
            assert!(seen.is_none() || seen == Some(7), "{seen:?}");
            assert_eq!(t.get(&keys_at(4, 0, 3)[2]).unwrap(), Some(7));
            assert_eq!(t.segment().recoveries().total, 1);
            assert_consistent(t);
        },
    );
}

/// An insert that claims the EMPTY end of its key's chain (verified inline against the key in
/// the home slot) racing a removal of that key, which shortens the home slot to EMPTY, and an
/// insert of the same key there, which is not verified: one copy, linearisable results (from
/// the adversarial review).
#[test]
fn end_claim_vs_remove_then_home_claim() {
    race(
        || {
            let t = table::<u64>(4);
            t.insert(&keys_at(4, 0, 2)[0], &1).unwrap();
            t
        },
        |t| t.insert(&keys_at(4, 0, 2)[1], &10).unwrap(),
        |t| {
            let [x, k] = keys_at(4, 0, 2)[..] else { unreachable!() };
            t.remove(&x).unwrap();
            t.insert(&k, &20).unwrap()
        },
        |t, a, b| {
            let k = keys_at(4, 0, 2)[1];
            match (a, b) {
                (None, Some(10)) => assert_eq!(t.get(&k).unwrap(), Some(20)),
                (Some(20), None) => assert_eq!(t.get(&k).unwrap(), Some(10)),
                other => panic!("not linearisable: {other:?}"),
            }
            assert_consistent(t);
        },
    );
}

// --- Probe bounds (see `bounds.rs`); under loom a walk reads the bound after one slot ---

/// The reach of the group of `k`'s home slot.
fn reach_of(t: &ShmHashTable<u64, u64>, k: u64) -> usize {
    let home = t.loom_home(&k);
    super::bounds::Bound(
        t.raw().bounds()[home / super::bounds::GROUP]
            .load(crate::sync::primitive::Ordering::SeqCst),
    )
    .reach()
}

/// A removal of the farthest key of a group, which lowers the reach, racing an insert of
/// another key of the group past where the lowering's scan may have looked: the insert's key
/// stays reachable (the insert clears the lowerer's scanning bit, so the lowering fails), and
/// the reach covers it.
#[test]
fn lowering_the_reach_vs_an_insert_past_it() {
    race(
        || keys_of_home_inserted(0, 3, 2), // slots 0 and 1: reach 1
        |t| t.remove(&keys_at(4, 0, 3)[1]).unwrap(),
        |t| t.insert(&keys_at(4, 0, 3)[2], &3).unwrap(),
        |t, removed, replaced| {
            let [a, b, c] = keys_at(4, 0, 3)[..] else { unreachable!() };
            assert_eq!((removed, replaced), (Some(2), None));
            assert_eq!(t.get(&c).unwrap(), Some(3), "the insert's key is reachable");
            assert_eq!(t.get(&a).unwrap(), Some(1));
            assert_eq!(t.get(&b).unwrap(), None);
            let slot = t.read(&c, |s, _| s).unwrap().unwrap();
            assert!(reach_of(t, c) >= slot, "reach {} < distance {slot}", reach_of(t, c));
            assert_consistent(t);
        },
    );
}

/// A lookup racing an insert whose key lands past the reach it may have read: it sees the key
/// or not, and once the insert returned, every lookup sees it.
#[test]
fn get_vs_insert_past_the_reach() {
    race(
        || {
            let t = table::<u64>(4);
            t.insert(&keys_at(4, 0, 2)[0], &1).unwrap(); // slot 0: reach 0
            t
        },
        |t| t.insert(&keys_at(4, 0, 2)[1], &2).unwrap(),
        |t| t.get(&keys_at(4, 0, 2)[1]).unwrap(),
        |t, replaced, seen| {
            assert_eq!(replaced, None);
            assert!(seen.is_none() || seen == Some(2), "{seen:?}");
            assert_eq!(t.get(&keys_at(4, 0, 2)[1]).unwrap(), Some(2));
            assert_consistent(t);
        },
    );
}

/// Every entry lies within its group's reach, and the table is consistent.
fn assert_reach_covers(t: &ShmHashTable<u64, u64>) {
    let mask = t.capacity() - 1;
    let mut entries = Vec::new();
    assert!(t.travel(|slot, k, _| entries.push((slot, *k))).unwrap().is_completed());
    for &(slot, k) in &entries {
        let d = slot.wrapping_sub(t.loom_home(&k)) & mask;
        assert!(reach_of(t, k) >= d, "key {k} at {slot}, {d} past home, reach {}", reach_of(t, k));
    }
    assert_consistent(t);
}

/// A table of 4 slots holding the first `inserted` of `keys_at(4, home, n)`, with values 1,
/// 2, ..., in the slots from `home` on (the reach of its group is then `inserted - 1`).
fn keys_of_home_inserted(home: usize, n: usize, inserted: usize) -> ShmHashTable<u64, u64> {
    let t = table::<u64>(4);
    for (value, k) in (1..).zip(&keys_at(4, home, n)[..inserted]) {
        t.insert(k, &value).unwrap();
    }
    t
}

/// Two removals racing to lower one group's reach (scanning bits and sequences).
#[test]
fn two_lowerings_of_one_reach() {
    race(
        || keys_of_home_inserted(0, 3, 3),
        |t| t.remove(&keys_at(4, 0, 3)[2]).unwrap(),
        |t| t.remove(&keys_at(4, 0, 3)[1]).unwrap(),
        |t, ry, rx| {
            assert_eq!((ry, rx), (Some(3), Some(2)));
            assert_eq!(t.get(&keys_at(4, 0, 3)[0]).unwrap(), Some(1));
            assert_reach_covers(t);
        },
    );
}

/// A lowering racing a removal and then an insert of another key of the group: the insert
/// clears the first lowerer's bit and the second lowerer sets it again (ABA on the word, which
/// the sequence number defeats).
#[test]
fn a_lowering_vs_another_lowering_then_an_insert() {
    race(
        || keys_of_home_inserted(0, 4, 3),
        |t| t.remove(&keys_at(4, 0, 4)[2]).unwrap(),
        |t| {
            let [_, x, _, z] = keys_at(4, 0, 4)[..] else { unreachable!() };
            (t.remove(&x).unwrap(), t.insert(&z, &4).unwrap())
        },
        |t, ry, (rx, rz)| {
            assert_eq!((ry, rx, rz), (Some(3), Some(2), None));
            let [a, _, _, z] = keys_at(4, 0, 4)[..] else { unreachable!() };
            assert_eq!(t.get(&a).unwrap(), Some(1));
            assert_eq!(t.get(&z).unwrap(), Some(4));
            assert_reach_covers(t);
        },
    );
}

/// A lowering racing an insert that reuses a FREED slot of the group's chain.
#[test]
fn a_lowering_vs_an_insert_reusing_a_freed_slot() {
    race(
        || {
            let t = keys_of_home_inserted(0, 4, 3);
            t.remove(&keys_at(4, 0, 4)[1]).unwrap(); // slot 1 FREED (slot 2's chain runs through it)
            t
        },
        |t| t.remove(&keys_at(4, 0, 4)[2]).unwrap(),
        |t| t.insert(&keys_at(4, 0, 4)[3], &4).unwrap(),
        |t, rb, rk| {
            assert_eq!((rb, rk), (Some(3), None));
            let [a, _, _, k] = keys_at(4, 0, 4)[..] else { unreachable!() };
            assert_eq!(t.get(&a).unwrap(), Some(1));
            assert_eq!(t.get(&k).unwrap(), Some(4));
            assert_reach_covers(t);
        },
    );
}

/// Wrap-around: keys of the last home slot lie at slots 0.. (one group in 4 slots), and a
/// lowering scan that covers the lap races an insert there (from the review of the bounds).
#[test]
fn a_lowering_vs_an_insert_at_the_wrap() {
    race(
        || keys_of_home_inserted(3, 3, 2), // slots 3 and 0: reach 1
        |t| t.remove(&keys_at(4, 3, 3)[1]).unwrap(),
        |t| t.insert(&keys_at(4, 3, 3)[2], &3).unwrap(),
        |t, rx, rk| {
            assert_eq!((rx, rk), (Some(2), None));
            let [a, _, k] = keys_at(4, 3, 3)[..] else { unreachable!() };
            assert_eq!(t.get(&a).unwrap(), Some(1));
            assert_eq!(t.get(&k).unwrap(), Some(3));
            assert_reach_covers(t);
        },
    );
}

/// Two inserts of one key into a chain whose reach was lowered: one creates it (from the
/// review of the bounds, where it found an insert spinning on a claim past the reach).
#[test]
fn two_inserts_of_one_key_past_a_lowered_reach() {
    race(
        || {
            let t = keys_of_home_inserted(0, 4, 3);
            let [_, x, y, _] = keys_at(4, 0, 4)[..] else { unreachable!() };
            t.remove(&x).unwrap(); // slot 1 FREED
            t.remove(&y).unwrap(); // the reach lowered, slots 2 and 1 EMPTY
            t
        },
        |t| t.visit(&keys_at(4, 0, 4)[3], AccessMode::CreateIfMiss, |_, v, _| *v += 1).unwrap(),
        |t| t.visit(&keys_at(4, 0, 4)[3], AccessMode::CreateIfMiss, |_, v, _| *v += 1).unwrap(),
        |t, a, b| {
            assert!(
                matches!(
                    (a, b),
                    (Visited::Created, Visited::Found) | (Visited::Found, Visited::Created)
                ),
                "{a:?} {b:?}"
            );
            assert_eq!(t.get(&keys_at(4, 0, 4)[3]).unwrap(), Some(2));
            assert_reach_covers(t);
        },
    );
}

/// An insert that claims the EMPTY end of its key's chain (home slot 0: A, B, then slot 2)
/// racing a process that removes B (slot 1 becomes EMPTY: its scan saw slot 2 still EMPTY),
/// removes A (slot 0 becomes EMPTY: its scan stops at slot 1) and inserts C, whose home is
/// slot 1, there. A verification that read slot 0 before the second removal and slot 1 after
/// the insert saw the chain whole, while it had been cut before the claim: the key would then
/// sit past an EMPTY home slot, unreachable (and a later insert of it would make a second
/// copy). The emptied epochs make that verification fail and the insert start over.
#[test]
fn end_claim_vs_shortenings_and_a_refill_before_it() {
    race(
        || {
            let t = table::<u64>(4);
            let [a, b, _] = keys_at(4, 0, 3)[..] else { unreachable!() };
            t.insert(&a, &1).unwrap();
            t.insert(&b, &2).unwrap();
            t
        },
        |t| t.insert(&keys_at(4, 0, 3)[2], &3).unwrap(),
        |t| {
            let [a, b, _] = keys_at(4, 0, 3)[..] else { unreachable!() };
            assert_eq!(t.remove(&b).unwrap(), Some(2));
            assert_eq!(t.remove(&a).unwrap(), Some(1));
            t.insert(&keys_at(4, 1, 1)[0], &4).unwrap()
        },
        |t, inserted, refilled| {
            assert_eq!((inserted, refilled), (None, None));
            assert_eq!(t.get(&keys_at(4, 0, 3)[2]).unwrap(), Some(3), "the key was lost");
            assert_eq!(t.get(&keys_at(4, 1, 1)[0]).unwrap(), Some(4));
            assert_consistent(t);
        },
    );
}

/// Two processes each free a slot of a key's chain (its other two keys) and then increment the
/// key, committed past both: both find it (their walks pass the FREED slots), and both
/// increments land on the one copy.
#[test]
fn removals_before_a_committed_key_vs_its_increments() {
    race(
        || keys_of_home_inserted(0, 3, 3), // the third key holds 3
        |t| {
            t.remove(&keys_at(4, 0, 3)[0]).unwrap();
            increment_the_third_key(t)
        },
        |t| {
            t.remove(&keys_at(4, 0, 3)[1]).unwrap();
            increment_the_third_key(t)
        },
        |t, a, b| {
            assert!(matches!((a, b), (Visited::Found, Visited::Found)), "{a:?} {b:?}");
            assert_eq!(t.get(&keys_at(4, 0, 3)[2]).unwrap(), Some(5));
            assert_consistent(t);
        },
    );
}

/// A process frees slot 0 and increments a key whose copy lies past it, while another removes
/// that copy and inserts the key again: the first may reuse slot 0 for the key (its walk stops
/// there) while the second claims another slot; one copy commits, and the increments minus
/// what was removed are what remains.
///
/// Two preemptions, not the three of the other models: 150 s of CI at three.
#[test]
fn a_reusing_claim_vs_a_removal_and_reinsert_of_the_key() {
    race_within(
        Some(2),
        || {
            let t = table::<u64>(4);
            let [x, k, _] = keys_at(4, 0, 3)[..] else { unreachable!() };
            t.insert(&x, &1).unwrap();
            t.insert(&k, &1).unwrap();
            t
        },
        |t| {
            let [x, k, _] = keys_at(4, 0, 3)[..] else { unreachable!() };
            t.remove(&x).unwrap();
            t.visit(&k, AccessMode::CreateIfMiss, |_, v, _| *v += 1).unwrap();
        },
        |t| {
            let k = keys_at(4, 0, 3)[1];
            let removed = t.remove(&k).unwrap().unwrap_or(0);
            t.visit(&k, AccessMode::CreateIfMiss, |_, v, _| *v += 1).unwrap();
            removed
        },
        |t, (), removed| {
            let v = t.get(&keys_at(4, 0, 3)[1]).unwrap().unwrap();
            assert_eq!(v + removed, 3, "final {v} removed {removed}");
            assert_consistent(t);
        },
    );
}
