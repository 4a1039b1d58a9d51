//! Unit tests of removal and slot reuse over heap tables: the protocol's rules one by one, then
//! threads churning one table. Also run under Miri, with smaller counts.

use std::collections::HashMap;

use super::ctrl::Ctrl;
use super::raw::RawTable;
use super::*;
use crate::hash::DefaultHasher;
use crate::sync::primitive::Ordering;

type Table = ShmHashTable<u64, u64>;

fn table(capacity: usize) -> Table {
    Table::heap(capacity).unwrap()
}

fn home(t: &Table, k: u64) -> usize {
    DefaultHasher::hash(&k.to_ne_bytes()) as usize & (t.capacity() - 1)
}

fn slot_of(t: &Table, k: u64) -> Option<usize> {
    t.read(&k, |s, _| s).unwrap()
}

/// Every slot's state, for messages.
fn states(t: &Table) -> Vec<SlotState> {
    (0..t.capacity()).map(|i| t.slot_state(i)).collect()
}

/// No key is in two slots, and every committed slot's key is found by `get` at that slot.
fn assert_consistent(t: &Table) {
    let mut seen = HashMap::new();
    let outcome = t
        .travel(|slot, k, _| {
            assert!(seen.insert(*k, slot).is_none(), "key {k} in two slots");
        })
        .unwrap();
    assert!(outcome.is_completed());
    for (k, slot) in &seen {
        assert_eq!(slot_of(t, *k), Some(*slot), "key {k} unreachable: {:?}", states(t));
    }
    assert_eq!(t.recount().unwrap(), seen.len());
    assert_eq!(t.len(), seen.len());
}

#[test]
fn remove_returns_the_value_and_the_key_is_gone() {
    let t = table(16);
    t.insert(&1, &10).unwrap();
    t.insert(&2, &20).unwrap();
    assert_eq!(t.remove(&1).unwrap(), Some(10));
    assert_eq!(t.get(&1).unwrap(), None);
    assert!(!t.contains_key(&1).unwrap());
    assert_eq!(t.update(&1, |v| *v).unwrap(), None);
    assert_eq!(t.remove(&1).unwrap(), None);
    assert_eq!(t.get(&2).unwrap(), Some(20));
    assert_eq!(t.len(), 1);
    t.insert(&1, &11).unwrap();
    assert_eq!(t.get(&1).unwrap(), Some(11), "a removed key can come back");
    assert_consistent(&t);
}

/// Keys come and go through a table far smaller than their number: it never fills.
#[test]
fn churn_through_a_small_table_never_fills() {
    let t = table(8);
    let rounds = if cfg!(miri) { 40 } else { 5000 };
    for k in 0..rounds {
        t.insert(&k, &k).unwrap();
        if k >= 6 {
            assert_eq!(t.remove(&(k - 6)).unwrap(), Some(k - 6));
        }
    }
    assert_eq!(t.len(), 6);
    for k in rounds - 6..rounds {
        assert_eq!(t.get(&k).unwrap(), Some(k));
    }
    assert_consistent(&t);
}

#[test]
fn remove_if_removes_only_what_the_predicate_approves() {
    let t = table(16);
    t.insert(&1, &5).unwrap();
    assert_eq!(t.remove_if(&1, |v| *v > 5).unwrap(), None);
    assert_eq!(t.get(&1).unwrap(), Some(5));
    assert_eq!(t.remove_if(&1, |v| *v == 5).unwrap(), Some(5));
    assert_eq!(t.remove_if(&1, |_| unreachable!("absent keys run nothing")).unwrap(), None);
}

/// The slot after a freed one is EMPTY, so no chain runs through it: it becomes EMPTY again.
#[test]
fn a_freed_slot_at_the_end_of_its_chain_becomes_empty() {
    let t = table(16);
    t.insert(&3, &3).unwrap();
    let s = slot_of(&t, 3).unwrap();
    t.remove(&3).unwrap();
    assert_eq!(t.slot_state(s), SlotState::Empty, "{:?}", states(&t));
}

/// Two keys with one home slot: removing the first must not cut the second's chain; removing
/// the second then shortens both.
#[test]
fn a_freed_slot_inside_a_chain_stays_until_the_chain_ends_there() {
    let t = table(16);
    let a = 1;
    let b = (2..).find(|&b| home(&t, b) == home(&t, a)).unwrap();
    t.insert(&a, &1).unwrap();
    t.insert(&b, &2).unwrap();
    let (sa, sb) = (slot_of(&t, a).unwrap(), slot_of(&t, b).unwrap());
    assert_eq!(sb, (sa + 1) % 16);
    t.remove(&a).unwrap();
    assert_eq!(t.slot_state(sa), SlotState::Freed, "b's chain runs through it");
    assert_eq!(t.get(&b).unwrap(), Some(2));
    // A third key of the same home reuses the freed slot, nearer its home.
    let c = (b + 1..).find(|&c| home(&t, c) == home(&t, a)).unwrap();
    t.insert(&c, &3).unwrap();
    assert_eq!(slot_of(&t, c), Some(sa));
    t.remove(&c).unwrap();
    t.remove(&b).unwrap();
    assert_eq!((t.slot_state(sa), t.slot_state(sb)), (SlotState::Empty, SlotState::Empty));
}

/// A key whose home is its own slot does not hold the slot before it: that one is shortened
/// even though the next slot is not EMPTY.
#[test]
fn a_freed_slot_followed_by_keys_at_home_becomes_empty() {
    let t = table(16);
    let a = 1;
    let ha = home(&t, a);
    let b = (2..).find(|&b| home(&t, b) == (ha + 1) % 16).unwrap();
    t.insert(&a, &1).unwrap();
    t.insert(&b, &2).unwrap();
    t.remove(&a).unwrap();
    assert_eq!(t.slot_state(ha), SlotState::Empty, "{:?}", states(&t));
    assert_eq!(t.get(&b).unwrap(), Some(2));
}

#[test]
fn clear_empties_a_full_table() {
    let t = table(8);
    for k in 0..8 {
        t.insert(&k, &k).unwrap();
    }
    assert!(matches!(t.insert(&100, &0), Err(TableError::TableFull { .. })));
    t.clear().unwrap();
    assert!(t.is_empty());
    assert_eq!(states(&t), vec![SlotState::Empty; 8], "every chain shortened");
    for k in 100..108 {
        t.insert(&k, &k).unwrap();
    }
    assert_consistent(&t);
}

#[test]
fn retain_keeps_what_the_predicate_keeps() {
    let t = table(64);
    for k in 0..40 {
        t.insert(&k, &(k % 3)).unwrap();
    }
    let mut judged = 0;
    t.retain(|_, v| {
        judged += 1;
        *v == 0
    })
    .unwrap();
    assert_eq!(judged, 40);
    assert_eq!(t.len(), 14);
    for k in 0..40 {
        assert_eq!(t.get(&k).unwrap().is_some(), k % 3 == 0);
    }
    assert_consistent(&t);
}

/// A removal waits for a visit of the key to end, and removes the value it wrote.
#[test]
fn remove_waits_for_a_visit() {
    let t = std::sync::Arc::new(table(16));
    t.insert(&1, &1).unwrap();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let t2 = std::sync::Arc::clone(&t);
    let visitor = std::thread::spawn(move || {
        t2.update(&1, |v| {
            entered_tx.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(if cfg!(miri) { 1 } else { 30 }));
            *v = 2;
        })
        .unwrap();
    });
    entered_rx.recv().unwrap();
    assert_eq!(t.remove(&1).unwrap(), Some(2));
    visitor.join().unwrap();
}

/// `recount` corrects a count that a crash left wrong.
#[test]
fn recount_corrects_the_counters() {
    let t = table(16);
    for k in 0..5 {
        t.insert(&k, &k).unwrap();
    }
    t.segment().add_entries(t.segment().owner().ok(), 3); // as if 3 counts were lost
    assert_eq!(t.len(), 8);
    assert_eq!(t.recount().unwrap(), 5);
    assert_eq!(t.len(), 5);
}

/// A process that exited, registered in `t`'s process table (a dead owner id).
#[cfg(not(miri))]
fn dead_owner(t: &Table) -> crate::process::OwnerId {
    use crate::process::{Liveness, ProcessIdentity};
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let dead = ProcessIdentity { pid, ..ProcessIdentity::current().unwrap() };
    let dead = t.segment().processes().register(&dead, &|_| false).unwrap();
    assert_eq!(t.owner_liveness(dead), Liveness::Dead);
    dead
}

/// Puts slot `index` (FREED or EMPTY) in EMPTYING held by `owner`, as a remover shortening the
/// chain there does for a moment.
fn plant_emptying(t: &Table, index: usize, owner: crate::process::OwnerId) {
    let c = t.raw().ctrl(index);
    let freed = Ctrl::new(SlotState::Freed, c.tag(), c.version(), None);
    t.raw().slot(index).ctrl.store(freed.locked(SlotState::Emptying, owner).0, Ordering::Release);
}

/// A shortener that died in EMPTYING does not block: an insert whose chain runs through the
/// slot vetoes the shortening (the slot is FREED again) instead of waiting on it.
#[cfg(not(miri))] // a dead process is made with fork/exec
#[test]
fn a_dead_shortener_is_recovered() {
    let t = table(16);
    let a = 1;
    let ha = home(&t, a);
    t.insert(&a, &1).unwrap();
    t.remove(&a).unwrap();
    plant_emptying(&t, ha, dead_owner(&t));
    let b = (2..).find(|&b| home(&t, b) == ha).unwrap();
    t.insert(&b, &2).unwrap();
    assert_eq!(t.get(&b).unwrap(), Some(2));
    assert_ne!(t.slot_state(ha), SlotState::Emptying);
    assert_consistent(&t);
}

/// Threads churn over overlapping keys: afterwards every key is in one slot at most, its value
/// is one that was written for it, and the count is exact.
#[test]
fn threads_churning_overlapping_keys_keep_one_slot_per_key() {
    let t = table(64);
    let rounds = if cfg!(miri) { 30 } else { 20_000 };
    std::thread::scope(|s| {
        for thread in 0..4u64 {
            let t = &t;
            s.spawn(move || {
                let mut x = thread + 1;
                for _ in 0..rounds {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = x % 48;
                    match x >> 60 {
                        0..=7 => drop(t.insert(&k, &(k * 1000 + thread)).unwrap()),
                        8..=13 => drop(t.remove(&k).unwrap()),
                        _ => drop(t.get(&k).unwrap().map(|v| assert_eq!(v / 1000, k))),
                    }
                }
            });
        }
    });
    assert!(t.travel(|_, k, v| assert_eq!(*v / 1000, *k)).unwrap().is_completed());
    assert_consistent(&t);
}

/// Review finding: `recount` while an insert's visitor runs (its slot NEW, counted at the
/// claim) used to drop that entry from the counters for good.
#[test]
fn recount_with_an_insert_in_flight_counts_it_once() {
    let t = std::sync::Arc::new(table(16));
    let (inside_tx, inside_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let t2 = std::sync::Arc::clone(&t);
    let inserter = std::thread::spawn(move || {
        t2.visit(&7, AccessMode::CreateIfMiss, |_, v, _| {
            inside_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            *v = 70;
        })
        .unwrap();
    });
    inside_rx.recv().unwrap();
    assert_eq!(t.recount().unwrap(), 1, "the claim counts");
    go_tx.send(()).unwrap();
    inserter.join().unwrap();
    assert_eq!(t.len(), 1);
    assert_consistent(&t);
}

/// Review finding: `recount` after a crash, then the recovery of the crashed insert, used to
/// uncount the entry twice.
#[cfg(not(miri))]
#[test]
fn recount_then_recovery_of_a_dead_insert_counts_right() {
    let t = table(16);
    t.insert(&1, &10).unwrap();
    let dead = dead_owner(&t);
    let b = (2..).find(|&b| home(&t, b) != home(&t, 1)).unwrap();
    let hb = home(&t, b);
    // What a process killed in b's insert visitor leaves: NEW with b's key, counted at its claim.
    let c = t.raw().ctrl(hb);
    let tag = RawTable::<u64, u64>::tag(DefaultHasher::hash(&b.to_ne_bytes()));
    crate::sync::words::store(t.raw().slot(hb).key, &b);
    let new = Ctrl::new(SlotState::New, tag, c.version(), Some(dead));
    t.raw().slot(hb).ctrl.store(new.0, Ordering::Release);
    t.segment().add_entries(Some(dead), 1);
    assert_eq!(t.recount().unwrap(), 2, "the dead claim counts until it is recovered");
    let wait = Wait::timeout(std::time::Duration::from_secs(5))
        .with_stale_check(std::time::Duration::from_millis(5));
    t.visit_with(&b, AccessMode::CreateIfMiss, wait, |_, v, _| *v = 20).unwrap();
    assert_eq!(t.segment().recoveries().total, 1);
    assert_eq!(t.len(), 2);
    assert_consistent(&t);
}

/// Review finding: an insert into a table whose only free slot was being shortened (EMPTYING)
/// failed with `TableFull`. It vetoes the shortening and takes the slot.
#[test]
fn an_insert_takes_a_slot_being_shortened_rather_than_fail() {
    let t = table(1);
    t.insert(&1, &10).unwrap();
    t.remove(&1).unwrap();
    plant_emptying(&t, 0, t.segment().owner().unwrap());
    assert_eq!(t.insert(&2, &20).unwrap(), None);
    assert_eq!(t.get(&2).unwrap(), Some(20));
    assert_consistent(&t);
}

/// Review finding: a remover stopped (or killed) while shortening a slot made inserts of other
/// keys whose chains run through the slot wait on it, and time out. They veto the shortening.
#[test]
fn a_stopped_shortening_does_not_block_inserts_of_other_keys() {
    let t = table(16);
    let x = 1;
    let b = (2..).find(|&b| home(&t, b) == home(&t, x)).unwrap();
    let c = (b + 1..).find(|&c| home(&t, c) == home(&t, x)).unwrap();
    t.insert(&x, &1).unwrap();
    t.insert(&b, &2).unwrap(); // behind x
    t.remove(&x).unwrap(); // x's slot FREED: b's chain runs through it
    assert_eq!(t.slot_state(home(&t, x)), SlotState::Freed);
    plant_emptying(&t, home(&t, x), t.segment().owner().unwrap()); // "stopped" mid-shortening
    let quick = Wait::timeout(std::time::Duration::from_millis(200));
    let r = t.visit_with(&c, AccessMode::CreateIfMiss, quick, |_, v, _| *v = 3);
    assert_eq!(r.unwrap(), Visited::Created);
    assert_eq!((t.get(&b).unwrap(), t.get(&c).unwrap()), (Some(2), Some(3)));
    assert_consistent(&t);
}

/// Review finding: in a table full but for a slot whose shortening process died, inserts
/// reported `TableFull` for ever and never recovered the slot.
#[cfg(not(miri))]
#[test]
fn a_dead_shortening_in_a_full_table_is_taken_over() {
    let t = table(4);
    for k in 0..4 {
        t.insert(&k, &k).unwrap();
    }
    let s = slot_of(&t, 3).unwrap();
    t.remove(&3).unwrap();
    plant_emptying(&t, s, dead_owner(&t));
    assert_eq!(t.insert(&100, &1).unwrap(), None);
    assert!(matches!(t.insert(&101, &1), Err(TableError::TableFull { capacity: 4 })));
    assert_consistent(&t);
}

/// A hasher that makes keys collide: `HOMES` home slots and `TAGS` tags (from the review).
struct Collide<const HOMES: u64, const TAGS: u64>;

impl<const HOMES: u64, const TAGS: u64> crate::hash::ShmHasher for Collide<HOMES, TAGS> {
    const ID: u64 = 0x4144_5600_0000_0000 | (HOMES << 16) | TAGS;
    fn hash(bytes: &[u8]) -> u64 {
        let k = u64::from_ne_bytes(bytes[..8].try_into().unwrap());
        ((k % HOMES) * 0x9e37 % 1024) | ((k % TAGS) << 48)
    }
}

/// Threads insert and remove overlapping, colliding keys in a table as small as the keys, with
/// unique values: every value ends in the table or was returned once (by an operation on its
/// own key), no insert ever sees `TableFull` (the keys fit), and the count is exact.
fn churn_colliding<H: crate::hash::ShmHasher>(capacity: usize, keys: u64, rounds: u64) {
    let t = ShmHashTable::<u64, u64, H>::options()
        .capacity(capacity)
        .open(&crate::Backing::Heap)
        .unwrap();
    type Log = Vec<(u64, Option<u64>, Option<u64>)>;
    let logs: Vec<Log> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..3u64)
            .map(|thread| {
                let t = &t;
                s.spawn(move || {
                    let (mut log, mut x) = (Vec::new(), thread * 7919 + 1);
                    for seq in 0..rounds {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let k = x % keys;
                        if x >> 62 == 0 {
                            let old = t.remove(&k).unwrap();
                            log.push((k, None, old));
                        } else {
                            let v = k << 40 | thread << 32 | seq;
                            let old = t.insert(&k, &v).unwrap();
                            log.push((k, Some(v), old));
                        }
                        if let Some(v) = t.get(&k).unwrap() {
                            assert_eq!(v >> 40, k, "get({k}) returned another key's value");
                        }
                    }
                    log
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let (mut written, mut ended) = (HashMap::new(), HashMap::new());
    for &(k, v, old) in logs.iter().flatten() {
        if let Some(v) = v {
            written.insert(v, k);
        }
        if let Some(old) = old {
            assert_eq!(old >> 40, k, "key {k} returned another key's value");
            assert!(ended.insert(old, ()).is_none(), "value {old:#x} returned twice");
        }
    }
    let mut present = HashMap::new();
    for item in t.iter() {
        let (k, v) = item.unwrap();
        assert!(present.insert(k, v).is_none(), "key {k} in two slots");
        assert!(!ended.contains_key(&v), "value {v:#x} present and returned");
    }
    let lost =
        written.iter().filter(|(v, k)| !ended.contains_key(*v) && present.get(*k) != Some(*v));
    assert_eq!(lost.count(), 0, "values lost");
    assert_eq!(t.recount().unwrap(), present.len());
    assert_eq!(t.len(), present.len());
}

#[test]
fn churn_in_a_table_of_one_slot() {
    churn_colliding::<Collide<1, 1>>(1, 1, if cfg!(miri) { 20 } else { 20_000 });
}

#[test]
fn churn_in_full_tables_of_colliding_keys() {
    let rounds = if cfg!(miri) { 20 } else { 20_000 };
    churn_colliding::<Collide<2, 2>>(2, 2, rounds);
    churn_colliding::<Collide<2, 1>>(4, 4, rounds);
    churn_colliding::<Collide<1, 2>>(8, 7, rounds);
}

/// The batched writes do what their loops would: a full table stops `insert_many` at the entry
/// that does not fit, with the ones before it inserted; `remove_many` counts what it removed.
#[test]
fn batched_writes_match_their_loops() {
    let t = table(8);
    let entries: Vec<(u64, u64)> = (0..20).map(|k| (k, k * 10)).collect();
    assert_eq!(t.insert_many(&entries[..6]).unwrap(), 6);
    assert_eq!(t.insert_many(&entries[..6]).unwrap(), 0, "all present: replaced");
    let full = t.insert_many(&entries);
    assert!(matches!(full, Err(TableError::TableFull { capacity: 8 })), "{full:?}");
    assert_eq!(t.len(), 8, "the entries before the failure went in");
    let keys: Vec<u64> = (0..20).collect();
    assert_eq!(t.remove_many(&keys).unwrap(), 8);
    assert!(t.is_empty());
    assert_consistent(&t);
}

/// Second review's finding: an insert into a full table that another thread keeps updating
/// retried its full-table check for as long as the updates went on (each update changes a
/// slot's version), far past its timeout. The check compares whole words (a snapshot, so that
/// a key moving between slots cannot fake a full table), so updates keep it from concluding;
/// it waits between laps and ends with `TableFull` within the timeout.
#[test]
fn an_insert_into_a_full_busy_table_ends_within_its_timeout() {
    let capacity = if cfg!(miri) { 8 } else { 4096 };
    let t = table(capacity);
    for k in 0..capacity as u64 {
        t.insert(&k, &0).unwrap();
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut k = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                t.update(&(k % capacity as u64), |v| *v += 1).unwrap();
                k += 1;
            }
        });
        let wait = Wait::timeout(std::time::Duration::from_millis(50));
        let start = std::time::Instant::now();
        let r = t.visit_with(&(1 << 40), AccessMode::CreateIfMiss, wait, |_, v, _| *v = 1);
        let took = start.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(matches!(r, Err(VisitError::Table(TableError::TableFull { .. }))), "{r:?}");
        // A hang check, not a timing: the bound is 100 times the timeout.
        assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    });
}

/// Threads remove, update and insert keys of a table with exactly as many slots as keys, so
/// the table is never full of *other* keys: an insert must never get `TableFull` (a timeout
/// is allowed: the inserts wait at most `wait`).
fn churn_never_full_of_other_keys<H: crate::hash::ShmHasher>(
    slots: usize,
    rounds: u64,
    wait: Wait,
) {
    let t = ShmHashTable::<u64, u64, H>::options().capacity(slots).open(&Backing::Heap).unwrap();
    std::thread::scope(|s| {
        for thread in 0..3u64 {
            let t = &t;
            s.spawn(move || {
                let mut x = thread * 7919 + 1;
                for _ in 0..rounds {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = x % slots as u64;
                    match x >> 61 {
                        0 => drop(t.remove(&k).unwrap()),
                        1 => drop(t.update(&k, |v| *v += 1).unwrap()),
                        _ => match t
                            .visit_with(&k, AccessMode::CreateIfMiss, wait, |_, v, _| *v = k)
                        {
                            Ok(_) | Err(VisitError::Table(TableError::Timeout { .. })) => {}
                            Err(e) => panic!("key {k} of {slots} in {slots} slots: {e}"),
                        },
                    }
                }
            });
        }
    });
    let mut present = HashMap::new();
    for item in t.iter() {
        let (k, v) = item.unwrap();
        assert!(present.insert(k, v).is_none(), "key {k} in two slots");
    }
    assert_eq!(t.recount().unwrap(), present.len());
}

/// Second review of the full-table check: once an insert had waited its whole timeout, any
/// pass through the check answered `TableFull`, also when its laps had just seen the key itself
/// or a free slot (with a zero timeout, 1–3 times in 2M rounds of this churn). Only a table
/// seen full at both laps is full at the timeout now; anything else is a timeout.
#[test]
fn an_insert_that_runs_out_of_time_in_a_table_with_room_is_not_told_it_is_full() {
    let rounds = if cfg!(miri) {
        30
    } else if cfg!(debug_assertions) {
        200_000
    } else {
        1_000_000
    };
    let zero = Wait::timeout(std::time::Duration::ZERO);
    churn_never_full_of_other_keys::<Collide<1, 1>>(1, rounds, zero);
    churn_never_full_of_other_keys::<Collide<2, 2>>(2, rounds, zero);
    churn_never_full_of_other_keys::<Collide<2, 1>>(4, rounds, zero);
    churn_never_full_of_other_keys::<Collide<1, 2>>(8, rounds, zero);
}
