//! Unit tests of the probe bounds over heap tables: the reach follows the farthest key of its
//! group up and down, lookups stop at it, and churn keeps it (and every walk) short.

use super::bounds::{Bound, GROUP, UNCHECKED_REACH};
use super::ctrl::Ctrl;
use super::raw::RawTable;
use super::*;
use crate::hash::ShmHasher;
use crate::sync::backoff::Wait;
use crate::sync::primitive::Ordering;

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
    // A key whose home slot is past the reach's group still waits on the stuck slot.
    let waits = key(end + 1, 7);
    assert!(matches!(t.get_with(&waits, quick), Err(TableError::Timeout { .. })));
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
