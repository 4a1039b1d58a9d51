//! Unit tests of the probe bounds over heap tables: the reach follows the farthest key of its
//! group up and down, lookups stop at it, and churn keeps it (and every walk) short.

use super::bounds::{Bound, GROUP, UNCHECKED_REACH};
use super::ctrl::Ctrl;
use super::raw::RawTable;
use super::*;
use crate::hash::ShmHasher;
use crate::sync::backoff::Wait;
use crate::sync::primitive::Ordering;
use crate::{AccessMode, Visited};

/// A hasher that places keys: key `home << 16 | n` has home slot `home` and tag `n`.
struct Placed;

impl crate::hash::ShmHasher for Placed {
    const ID: u64 = 0x504c_4143_4544_0000;
    fn hash(bytes: &[u8]) -> u64 {
        let k = u64::from_ne_bytes(bytes[..8].try_into().unwrap());
        (k >> 16) | (k & 0xffff) << 48
    }
}

type Table = ShmHashTable<u64, u64, Placed>;

fn table(capacity: usize) -> Table {
    Table::options().capacity(capacity).open(&crate::Backing::Heap).unwrap()
}

/// The key with home slot `home` and tag `n`.
fn key(home: usize, n: u64) -> u64 {
    (home as u64) << 16 | n
}

/// The reach of the group of home slot `home`.
fn reach(t: &Table, home: usize) -> usize {
    Bound(t.raw().bounds()[home / GROUP].load(Ordering::Relaxed)).reach()
}

/// The reach rises with each key placed farther from its home slot, and falls back when the
/// farthest one leaves (to the next farthest, counted from each key's own home slot); removing
/// a nearer key leaves it, and so does removing a key within the slots a walk passes before it
/// reads the reach.
#[test]
fn the_reach_follows_the_farthest_key_of_its_group() {
    let t = table(64);
    assert_eq!(reach(&t, 8), 0);
    for n in 0..6 {
        t.insert(&key(8, n), &n).unwrap(); // slots 8..=13
    }
    assert_eq!(reach(&t, 8), 5);
    t.insert(&key(9, 0), &0).unwrap(); // slot 14, 5 past its home
    assert_eq!(reach(&t, 8), 5, "one word for the group of homes 8..=11");
    assert_eq!(t.remove(&key(8, 2)).unwrap(), Some(2));
    assert_eq!(reach(&t, 8), 5, "not the farthest");
    assert_eq!(t.remove(&key(8, 5)).unwrap(), Some(5));
    assert_eq!(reach(&t, 9), 5, "the key of home 9 is still 5 past it");
    assert_eq!(t.remove(&key(9, 0)).unwrap(), Some(0));
    assert_eq!(reach(&t, 8), 4);
    t.remove(&key(8, 4)).unwrap();
    assert_eq!(reach(&t, 8), 3);
    t.remove(&key(8, 3)).unwrap();
    assert_eq!(reach(&t, 8), 3, "3 < UNCHECKED_REACH: not worth a scan");
    assert_eq!(t.get(&key(8, 0)).unwrap(), Some(0));
    assert_eq!(reach(&t, 16), 0, "other groups untouched");
}

/// A lookup of an absent key stops at the reach of its home slot even where no EMPTY slot
/// ends the chain: it does not wait on a slot past the reach that is being inserted with its
/// tag (here a stuck insert, whose key cannot be the absent one: a claim past the reach is
/// raised before its verification, and this one never got there).
#[test]
fn a_lookup_stops_at_the_reach_without_an_empty_slot() {
    let t = table(16);
    for n in 0..=UNCHECKED_REACH as u64 + 1 {
        t.insert(&key(0, n + 100), &n).unwrap(); // slots 0..: reach of homes 0..=3 above 4
    }
    let end = UNCHECKED_REACH + 2;
    assert_eq!(reach(&t, 0), end - 1);
    // Slot `end` holds a key at home; slot `end + 1` a stuck insert with the absent key's tag.
    t.insert(&key(end, 200), &0).unwrap();
    let absent = key(1, 7);
    let owner = t.segment().owner().unwrap();
    let tag = RawTable::<u64, u64>::tag(Placed::hash(&absent.to_ne_bytes()));
    let stuck = Ctrl::new(SlotState::Inserting, tag, 0, Some(owner));
    t.raw().slot(end + 1).ctrl.store(stuck.0, Ordering::Release);

    let quick = Wait::timeout(std::time::Duration::from_millis(50));
    assert_eq!(t.get_with(&absent, quick).unwrap(), None);
    assert!(!t.contains_key(&absent).unwrap());
    assert_eq!(t.remove(&absent).unwrap(), None);
    // A key whose home slot is the stuck slot: a lookup passes it (nothing committed there), an
    // insert waits on it (it may be the key's own claim).
    let waits = key(end + 1, 7);
    assert_eq!(t.get_with(&waits, quick).unwrap(), None);
    let r = t.visit_with(&waits, AccessMode::CreateIfMiss, quick, |_, v, _| *v = 1);
    assert!(matches!(r, Err(VisitError::Table(TableError::Timeout { .. }))), "{r:?}");
}

/// Churn at high load through a table with FREED slots everywhere: every key stays reachable,
/// absent keys are absent, and a lookup of an absent key walks no farther than the keys lie
/// (the mean miss walk stays near the mean hit walk instead of growing to the table's size).
#[test]
fn churn_keeps_lookups_of_absent_keys_short() {
    let t = ShmHashTable::<u64, u64>::heap(1024).unwrap();
    let live = 900u64;
    let rounds = if cfg!(miri) { 300 } else { 20 * 1024 };
    for k in 0..live {
        t.insert(&k, &k).unwrap();
    }
    for k in live..live + rounds {
        t.insert(&k, &k).unwrap();
        assert_eq!(t.remove(&(k - live)).unwrap(), Some(k - live));
    }
    for k in rounds..live + rounds {
        assert_eq!(t.get(&k).unwrap(), Some(k));
    }
    for k in 0..rounds {
        assert_eq!(t.get(&k).unwrap(), None);
    }
    let o = crate::Monitor::new(&t).occupancy();
    let probes = o.probes.unwrap();
    assert_eq!(o.entries, live as usize);
    assert!(
        probes.miss_mean < 4.0 * probes.hit_mean.max(UNCHECKED_REACH as f64),
        "{probes:?}, {:?}",
        o.states
    );
}

/// Runs `f` on a thread and returns its result, or `None` if it is still running after
/// `limit` (a hang; the thread is left behind).
fn within<R: Send + 'static>(
    limit: std::time::Duration,
    f: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

/// Plants in slot `index` a claim of `k` by `owner` in `state` (INSERTING or NEW): an insert
/// stopped, or killed, after its claim and before it raised the probe bound.
fn plant_claim(t: &Table, index: usize, k: u64, state: SlotState, owner: crate::process::OwnerId) {
    let slot = t.raw().slot(index);
    let tag = RawTable::<u64, u64>::tag(Placed::hash(&k.to_ne_bytes()));
    crate::sync::words::store(slot.key, &k);
    let claimed = t.raw().ctrl(index).claimed(tag, owner);
    let word = if state == SlotState::New { claimed.locked(state, owner) } else { claimed };
    slot.ctrl.store(word.0, Ordering::Release);
}

/// A table whose home slots 0..=3 hold keys at home (reach 0) and whose freed flag is set,
/// with a claim of `k = key(0, 5)` planted at slot 4, past the reach, in `state`.
fn table_with_an_unraised_claim(
    state: SlotState,
    owner: impl Fn(&Table) -> crate::process::OwnerId,
) -> (std::sync::Arc<Table>, u64) {
    let t = std::sync::Arc::new(table(64));
    for h in 0..4 {
        t.insert(&key(h, 8 + h as u64), &0).unwrap();
    }
    t.remove(&key(3, 11)).unwrap(); // a removal sets the freed flag: claims are verified
    t.insert(&key(3, 11), &0).unwrap();
    let k = key(0, 5);
    plant_claim(&t, 4, k, state, owner(&t));
    (t, k)
}

/// An insert whose chain runs through a claim of its key that was never covered by the probe
/// bound (its inserter died between its claim and its raise) waits on it and recovers it, in
/// either state, instead of spinning between a walk that stops short of it and a claim scan
/// that sees it (found by the review of the bounds).
#[cfg(not(miri))] // a dead process is made with fork/exec
#[test]
fn an_insert_recovers_a_dead_claim_past_the_reach() {
    for state in [SlotState::Inserting, SlotState::New] {
        let (t, k) = table_with_an_unraised_claim(state, |t| t.segment().register_dead_process());
        let t2 = t.clone();
        let wait = Wait::timeout(std::time::Duration::from_secs(2))
            .with_stale_check(std::time::Duration::from_millis(10));
        let outcome = within(std::time::Duration::from_secs(20), move || {
            t2.visit_with(&k, AccessMode::CreateIfMiss, wait, |_, v, _| *v = 1)
                .map_err(|e| e.to_string())
        });
        assert_eq!(outcome, Some(Ok(Visited::Created)), "{state:?}");
        assert_eq!(t.get(&k).unwrap(), Some(1));
        assert_eq!(t.segment().recoveries().total, 1, "{state:?}");
    }
}

/// The same claim held by a live process that is stopped: the insert times out, naming it.
#[test]
fn an_insert_times_out_on_a_stopped_claim_past_the_reach() {
    let (t, k) =
        table_with_an_unraised_claim(SlotState::Inserting, |t| t.segment().owner().unwrap());
    let t2 = t.clone();
    let wait = Wait::timeout(std::time::Duration::from_millis(100));
    let outcome = within(std::time::Duration::from_secs(20), move || {
        t2.visit_with(&k, AccessMode::CreateIfMiss, wait, |_, v, _| *v = 1)
            .map_err(|e| matches!(e.table_error(), Some(TableError::Timeout { slot: 4, .. })))
    });
    assert_eq!(outcome, Some(Err(true)), "a timeout on slot 4, not a hang");
}

/// A claim given up (here by a visitor that refuses) lowers the probe bound it raised.
#[test]
fn an_abandoned_claim_lowers_the_reach_it_raised() {
    let t = table(1024);
    for n in 0..40u64 {
        t.insert(&key(0, n), &n).unwrap(); // slots 0..40: reach 39
    }
    assert_eq!(reach(&t, 0), 39);
    let refused = t.visit(&key(0, 999), AccessMode::CreateIfMiss, |_, _, _| Err::<(), _>("no"));
    assert!(matches!(refused, Err(VisitError::VisitorFailed("no"))), "{refused:?}");
    assert_eq!(reach(&t, 0), 39, "raised to 40 by the claim, lowered when it was given up");
    for n in 1..40u64 {
        t.remove(&key(0, n)).unwrap();
    }
    assert!(reach(&t, 0) < UNCHECKED_REACH, "{}", reach(&t, 0));
}

/// A key that wrapped around the end of the table, lying in its group's own home slots, while
/// a visit keeps changing its control word under the lowering scans of another thread: the
/// scans must not take it for a key near its home (found by the review of the bounds).
#[cfg(not(miri))] // many rounds with two threads
#[test]
fn a_key_that_wrapped_a_lap_survives_lowering_scans() {
    use std::sync::atomic::{AtomicBool, Ordering as StdOrdering};
    let t = std::sync::Arc::new(table(8)); // one scan covers the lap
    for n in 0..5u64 {
        t.insert(&key(7, n), &0).unwrap(); // slots 7, 0, 1, 2, 3
    }
    let wrapped = key(7, 5);
    t.insert(&wrapped, &0).unwrap(); // slot 4: 5 past its home, in the group of homes 4..=7
    assert_eq!(t.read(&wrapped, |s, _| s).unwrap(), Some(4));
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let updater = {
        let (t, stop) = (t.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut lost = 0;
            while !stop.load(StdOrdering::Relaxed) {
                lost += u32::from(t.update(&wrapped, |v| *v += 1).unwrap().is_none());
            }
            lost
        })
    };
    let farthest = key(7, 6);
    for _ in 0..20_000 {
        t.insert(&farthest, &0).unwrap(); // slot 5: 6 past its home
        assert_eq!(t.remove(&farthest).unwrap(), Some(0)); // lowers, scanning from slot 4
    }
    stop.store(true, StdOrdering::Relaxed);
    assert_eq!(updater.join().unwrap(), 0, "an update found no key");
    assert!(t.get(&wrapped).unwrap().is_some());
}
