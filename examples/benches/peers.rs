//! Criterion benchmarks of shmap against in-process maps: the same u64 → u64 `get`, `insert`,
//! `update` and `remove` over 1M random keys, at 1 and 2 threads, so a user sees what sharing a
//! table between processes costs against maps that live in one process.
//!
//! ```text
//! cargo bench -p shmap-examples --bench peers [-- FILTER]
//! SHMAP_PEERS_KEYS=131072 cargo bench -p shmap-examples --bench peers [-- FILTER]
//! ```
//!
//! - shmap: a POSIX shm table of 2^21 slots (the workload's size; twice the keys, rounded up
//!   to a power of two, with `SHMAP_PEERS_KEYS`), prefaulted;
//! - dashmap, papaya, `std::sync::RwLock<HashMap>`: preallocated for 1M entries (or
//!   `SHMAP_PEERS_KEYS`).
//!
//! All use the same fast hasher (a folded multiply, like shmap's), so the comparison is about
//! the tables, not SipHash; `dashmap-siphash` shows dashmap with its default hasher, which is
//! what most users get. Each measurement is one pass over 1M operations (2 threads: half each,
//! timed from a barrier to both finishing); criterion reports time per pass, and throughput in
//! operations per second.

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Barrier, RwLock};
use std::time::{Duration, Instant};

mod common;
use common::keys;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shmap::{AccessMode, ShmHashTable};

/// The number of keys: 1M, or `SHMAP_PEERS_KEYS` (a smaller table shows the maps in the CPU's
/// caches rather than in memory).
fn n() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        std::env::var("SHMAP_PEERS_KEYS").map_or(1_000_000, |v| {
            v.parse().unwrap_or_else(|_| panic!("SHMAP_PEERS_KEYS={v:?}: not a number"))
        })
    })
}

/// A folded-multiply hasher for u64 keys (the peers' fast hasher).
#[derive(Clone, Copy, Default)]
struct Fold;

struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        let full = u128::from(self.0) * 0x9e37_79b9_7f4a_7c15;
        (full as u64) ^ ((full >> 64) as u64)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

impl BuildHasher for Fold {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher(0xbf58_476d_1ce4_e5b9)
    }
}

/// The maps under test, behind one interface.
trait Map: Sync {
    fn get(&self, k: u64) -> Option<u64>;
    fn insert(&self, k: u64, v: u64);
    fn increment(&self, k: u64) -> bool;
    fn remove(&self, k: u64) -> Option<u64>;
}

struct Shm(ShmHashTable<u64, u64>);

impl Map for Shm {
    fn get(&self, k: u64) -> Option<u64> {
        self.0.get(&k).unwrap()
    }
    fn insert(&self, k: u64, v: u64) {
        self.0.visit(&k, AccessMode::CreateIfMiss, |_, x, _| *x = v).unwrap();
    }
    fn increment(&self, k: u64) -> bool {
        self.0.visit(&k, AccessMode::AccessExist, |_, x, _| *x += 1).unwrap().ran()
    }
    fn remove(&self, k: u64) -> Option<u64> {
        self.0.remove(&k).unwrap()
    }
}

impl<S: BuildHasher + Clone + Send + Sync> Map for dashmap::DashMap<u64, u64, S> {
    fn get(&self, k: u64) -> Option<u64> {
        dashmap::DashMap::get(self, &k).map(|v| *v)
    }
    fn insert(&self, k: u64, v: u64) {
        dashmap::DashMap::insert(self, k, v);
    }
    fn increment(&self, k: u64) -> bool {
        self.get_mut(&k).map(|mut v| *v += 1).is_some()
    }
    fn remove(&self, k: u64) -> Option<u64> {
        dashmap::DashMap::remove(self, &k).map(|(_, v)| v)
    }
}

impl Map for papaya::HashMap<u64, u64, Fold> {
    fn get(&self, k: u64) -> Option<u64> {
        self.pin().get(&k).copied()
    }
    fn insert(&self, k: u64, v: u64) {
        self.pin().insert(k, v);
    }
    fn increment(&self, k: u64) -> bool {
        self.pin().update(k, |v| v + 1).is_some()
    }
    fn remove(&self, k: u64) -> Option<u64> {
        self.pin().remove(&k).copied()
    }
}

impl Map for RwLock<HashMap<u64, u64, Fold>> {
    fn get(&self, k: u64) -> Option<u64> {
        self.read().unwrap().get(&k).copied()
    }
    fn insert(&self, k: u64, v: u64) {
        self.write().unwrap().insert(k, v);
    }
    fn increment(&self, k: u64) -> bool {
        self.write().unwrap().get_mut(&k).map(|v| *v += 1).is_some()
    }
    fn remove(&self, k: u64) -> Option<u64> {
        self.write().unwrap().remove(&k)
    }
}

fn shm_table() -> Shm {
    Shm(common::unnamed_shm_table("shmap-bench-peers", (2 * n()).next_power_of_two()))
}

/// Runs `op` over `keys` on `threads` threads (contiguous halves), timed from a barrier.
/// Generic, so that each map's calls are inlined into the loop as they would be in real code.
fn pass<M: Map, F: Fn(&M, u64) + Sync>(map: &M, keys: &[u64], threads: usize, op: &F) -> Duration {
    if threads == 1 {
        let start = Instant::now();
        for &k in keys {
            op(map, k);
        }
        return start.elapsed();
    }
    let barrier = Barrier::new(threads);
    let chunk = keys.len().div_ceil(threads);
    std::thread::scope(|s| {
        let workers: Vec<_> = keys
            .chunks(chunk)
            .map(|part| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for &k in part {
                        op(map, k);
                    }
                    start.elapsed()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).max().unwrap()
    })
}

/// The keys in insertion order, and shuffled (the order of lookups and updates).
fn data() -> (Vec<u64>, Vec<u64>) {
    let inserted = keys(42, n());
    let mut order = inserted.clone();
    let mut s = 43u64;
    for i in (1..n()).rev() {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        order.swap(i, (s % (i as u64 + 1)) as usize);
    }
    (inserted, order)
}

/// get, update and insert for one map type.
/// A benchmark group whose iterations are whole passes over the [`n`] keys: throughput in
/// elements, and few samples (a pass takes a fair fraction of a second).
fn group_of_passes<'c>(
    c: &'c mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'c, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .throughput(Throughput::Elements(n() as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(4));
    group
}

fn bench_map<M: Map>(c: &mut Criterion, name: &str, fresh: impl Fn() -> M, with_writes: bool) {
    let (inserted, order) = data();
    let map = fresh();
    for &k in &inserted {
        map.insert(k, k);
    }
    let ops: &[&str] = if with_writes { &["get", "update"] } else { &["get"] };
    for &op_name in ops {
        let mut group = group_of_passes(c, op_name);
        for threads in [1, 2] {
            group.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &threads| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| match op_name {
                            "get" => {
                                pass(&map, &order, threads, &|m: &M, k| assert!(m.get(k).is_some()))
                            }
                            _ => pass(&map, &order, threads, &|m: &M, k| assert!(m.increment(k))),
                        })
                        .sum()
                });
            });
        }
        group.finish();
    }
    if !with_writes {
        return;
    }
    let mut group = group_of_passes(c, "insert");
    for threads in [1, 2] {
        group.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &threads| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let map = fresh(); // untimed: a fresh, empty map per pass
                        pass(&map, &inserted, threads, &|m: &M, k| m.insert(k, k))
                    })
                    .sum()
            });
        });
    }
    group.finish();
    let mut group = group_of_passes(c, "remove");
    for threads in [1, 2] {
        group.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &threads| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let map = fresh(); // untimed: a full map per pass
                        for &k in &inserted {
                            map.insert(k, k);
                        }
                        pass(&map, &order, threads, &|m: &M, k| assert!(m.remove(k).is_some()))
                    })
                    .sum()
            });
        });
    }
    group.finish();
}

/// shmap's batched writes (`insert_many`, `remove_many`, 64 entries per call, prefetching
/// like `get_many`), in the `insert` and `remove` groups, one thread.
fn bench_batched(c: &mut Criterion) {
    const BATCH: usize = 64;
    let (inserted, order) = data();
    let entries: Vec<(u64, u64)> = inserted.iter().map(|&k| (k, k)).collect();
    for op_name in ["insert", "remove"] {
        let mut group = group_of_passes(c, op_name);
        group.bench_function(BenchmarkId::new("shmap-batched", 1), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let map = shm_table(); // untimed: fresh (insert) or full (remove)
                        if op_name == "remove" {
                            map.0.insert_many(&entries).unwrap();
                        }
                        let start = Instant::now();
                        let done: usize = if op_name == "insert" {
                            entries.chunks(BATCH).map(|c| map.0.insert_many(c).unwrap()).sum()
                        } else {
                            order.chunks(BATCH).map(|c| map.0.remove_many(c).unwrap()).sum()
                        };
                        let elapsed = start.elapsed();
                        assert_eq!(done, n());
                        elapsed
                    })
                    .sum()
            });
        });
        group.finish();
    }
}

fn bench(c: &mut Criterion) {
    bench_map(c, "shmap", shm_table, true);
    bench_batched(c);
    bench_map(c, "dashmap", || dashmap::DashMap::with_capacity_and_hasher(n(), Fold), true);
    bench_map(c, "papaya", || papaya::HashMap::builder().capacity(n()).hasher(Fold).build(), true);
    bench_map(
        c,
        "rwlock-hashmap",
        || RwLock::new(HashMap::with_capacity_and_hasher(n(), Fold)),
        true,
    );
    bench_map(c, "dashmap-siphash", || dashmap::DashMap::<u64, u64>::with_capacity(n()), false);
}

criterion_group!(benches, bench);
criterion_main!(benches);
