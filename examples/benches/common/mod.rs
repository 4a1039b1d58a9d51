//! What the criterion benchmarks share: the workload's key stream.

/// `n` keys from splitmix64 seeded with `seed`, as in the workload.
pub(crate) fn keys(seed: u64, n: usize) -> Vec<u64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
        .collect()
}

/// A prefaulted POSIX shm table of `capacity` slots named `/PREFIX-PID`, whose name is removed
/// at once (the mapping stays): nothing is left behind if the benchmark dies.
pub(crate) fn unnamed_shm_table(prefix: &str, capacity: usize) -> shmap::ShmHashTable<u64, u64> {
    use shmap::{Backing, ShmHashTable};
    let name = format!("/{prefix}-{}", std::process::id());
    let _ = ShmHashTable::<u64, u64>::unlink(&name);
    let t = ShmHashTable::options()
        .capacity(capacity)
        .prefault(true)
        .open(&Backing::shm(&name))
        .unwrap();
    let _ = ShmHashTable::<u64, u64>::unlink(&name);
    t
}
