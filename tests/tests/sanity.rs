//! A sanity check at the benchmark's size: 1,000,000 u64 keys in 2^21 slots of a POSIX shm
//! table, all read back, none of another million found.

use shmap::{AccessMode, ShmHashTable, Visited};
use shmap_tests::ShmName;

/// splitmix64, the benchmark's key generator (`../shared/bench/WORKLOAD.md`).
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[test]
fn a_million_keys_in_two_million_slots() {
    const N: usize = 1_000_000;
    let mut state = 42;
    let keys: Vec<u64> = (0..N).map(|_| splitmix(&mut state)).collect();
    let misses: Vec<u64> = (0..N).map(|_| splitmix(&mut state)).collect();
    assert_eq!(keys[0], 0xBDD7_3226_2FEB_6E95, "the workload's first key");

    let name = ShmName::new("sanity");
    let table = ShmHashTable::<u64, u64>::open_or_create(name.as_str(), 1 << 21).unwrap();
    assert_eq!(
        table.info().total_size - table.info().header_size,
        (24 + 1) << 21,
        "24-byte slots, and a 4-byte probe bound per 4 slots"
    );
    for &k in &keys {
        assert_eq!(
            table.visit(&k, AccessMode::CreateIfMiss, |_, v, _| *v = k).unwrap(),
            Visited::Created
        );
    }
    for &k in &keys {
        assert_eq!(table.get(&k).unwrap(), Some(k));
    }
    assert!(misses.iter().all(|k| table.get(k).unwrap().is_none()));
    let mut count = 0;
    let mut sum = 0u64;
    assert!(
        table
            .travel(|_, k, v| {
                assert_eq!(k, v);
                count += 1;
                sum = sum.wrapping_add(*v);
            })
            .unwrap()
            .is_completed()
    );
    assert_eq!(count, N);
    assert_eq!(sum, keys.iter().fold(0u64, |s, k| s.wrapping_add(*k)));
}
