//! Criterion benchmarks of shmap against what a Rust user who needs a map shared by processes
//! on one host would otherwise pick: LMDB (through `heed`), the crates.io `shmap` crate (one
//! shared-memory file per key), and Redis over a unix socket. The same u64 → u64 `get`,
//! `insert` and `update`, one operation at a time, as independent requests of a server's
//! workers would make them.
//!
//! ```text
//! cargo bench -p shmap-examples --features alternatives --bench alternatives [-- FILTER]
//! ```
//!
//! Not built in CI (`required-features`): it compiles LMDB's C code and two more crates. Redis
//! is measured only when `redis-server` is on the `PATH` (Debian: `apt-get install
//! redis-server`); the benchmark starts its own server on a unix socket, without persistence,
//! and stops it.
//!
//! What each operation is, per store:
//!
//! | | get | insert | update (+1) |
//! |---|---|---|---|
//! | shmap | `get` | `insert` | `visit` |
//! | LMDB | a read transaction, `get` | a write transaction, `put`, commit | a write transaction, `get`, `put`, commit |
//! | crates.io `shmap` | `get` | `insert` | `get`, then `insert` |
//! | Redis | `GET` | `SET` | `INCR` |
//!
//! LMDB runs on tmpfs with `NO_SYNC | NO_META_SYNC` (no disk, no fsync: the closest it comes to
//! a shared-memory table), values are 8 bytes native-endian for LMDB and shmap, decimal text
//! for Redis (what `INCR` needs), and bincode for the crates.io `shmap` (its format).
//!
//! The stores hold 1M keys, except the crates.io `shmap`, which holds 10K: it keeps three files
//! per key in `/dev/shm` (value, metadata and lock), so 1M keys would be 3M files. Each
//! measurement is a pass over a store's own number of operations (1M for shmap, fewer for the
//! slower stores so that a pass takes about a second); criterion reports operations per
//! second.
//!
//! Beware when you run it: the crates.io `shmap` deletes, when it starts, any file in
//! `/dev/shm` whose name starts with `shmap` and that has no metadata file of its own (after 5
//! s). This benchmark's table is named `/alt-bench-*` for that reason; tables named
//! `/shmap-*` of other programs on the machine would be lost.

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

mod common;
use common::keys;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use heed::types::U64;
use heed::{Database, Env, EnvFlags, EnvOpenOptions, byteorder::NativeEndian};
use redis::Commands;
use shmap::{AccessMode, ShmHashTable};

/// Keys held by the stores (the crates.io `shmap`: [`FILES_KEYS`]).
const KEYS: usize = 1_000_000;
const FILES_KEYS: usize = 10_000;

/// A store under test, one operation at a time.
trait Store {
    /// How many operations a measured pass makes.
    const PASS: usize;
    fn get(&mut self, k: u64) -> Option<u64>;
    fn insert(&mut self, k: u64, v: u64);
    /// Adds 1 to `k`'s value; false if `k` is absent.
    fn increment(&mut self, k: u64) -> bool;
    /// Removes `k` (untimed: what an insert pass added).
    fn remove(&mut self, k: u64);
}

// ---------------------------------------------------------------------------------------------

struct Shm(ShmHashTable<u64, u64>);

impl Shm {
    fn new() -> Shm {
        // Room for the held keys and an insert pass's at half load. Not named `/shmap-*`: see
        // the module documentation.
        Shm(common::unnamed_shm_table("alt-bench", 1 << 22))
    }
}

impl Store for Shm {
    const PASS: usize = 1_000_000;
    fn get(&mut self, k: u64) -> Option<u64> {
        self.0.get(&k).unwrap()
    }
    fn insert(&mut self, k: u64, v: u64) {
        self.0.insert(&k, &v).unwrap();
    }
    fn increment(&mut self, k: u64) -> bool {
        self.0.visit(&k, AccessMode::AccessExist, |_, v, _| *v += 1).is_ok()
    }
    fn remove(&mut self, k: u64) {
        self.0.remove(&k).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------

struct Lmdb {
    dir: PathBuf,
    env: Env,
    db: Database<U64<NativeEndian>, U64<NativeEndian>>,
}

impl Lmdb {
    fn new() -> Lmdb {
        let dir = PathBuf::from(format!("/dev/shm/alt-bench-lmdb-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut options = EnvOpenOptions::new();
        options.map_size(1 << 30);
        // SAFETY: tmpfs, no sync: a crash loses the environment, which a benchmark accepts.
        unsafe { options.flags(EnvFlags::NO_SYNC | EnvFlags::NO_META_SYNC) };
        // SAFETY: this process opens the environment once, and nobody else uses the folder.
        let env = unsafe { options.open(&dir) }.unwrap();
        let mut txn = env.write_txn().unwrap();
        let db = env.create_database(&mut txn, None).unwrap();
        txn.commit().unwrap();
        Lmdb { dir, env, db }
    }
}

impl Drop for Lmdb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Store for Lmdb {
    const PASS: usize = 200_000;
    fn get(&mut self, k: u64) -> Option<u64> {
        let txn = self.env.read_txn().unwrap();
        self.db.get(&txn, &k).unwrap()
    }
    fn insert(&mut self, k: u64, v: u64) {
        let mut txn = self.env.write_txn().unwrap();
        self.db.put(&mut txn, &k, &v).unwrap();
        txn.commit().unwrap();
    }
    fn increment(&mut self, k: u64) -> bool {
        let mut txn = self.env.write_txn().unwrap();
        let Some(v) = self.db.get(&txn, &k).unwrap() else { return false };
        self.db.put(&mut txn, &k, &(v + 1)).unwrap();
        txn.commit().unwrap();
        true
    }
    fn remove(&mut self, k: u64) {
        let mut txn = self.env.write_txn().unwrap();
        self.db.delete(&mut txn, &k).unwrap();
        txn.commit().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------

struct Files {
    map: shmap_files::Shmap,
    /// The keys it holds (removed when the benchmark ends: they are files in `/dev/shm`).
    held: Vec<u64>,
    /// Its lock files before the benchmark started (others' to keep).
    locks_before: std::collections::HashSet<PathBuf>,
}

impl Files {
    fn name(k: u64) -> String {
        format!("k{k:016x}")
    }
}

impl Store for Files {
    const PASS: usize = 5_000;
    fn get(&mut self, k: u64) -> Option<u64> {
        self.map.get(&Self::name(k)).unwrap()
    }
    fn insert(&mut self, k: u64, v: u64) {
        self.map.insert(&Self::name(k), v).unwrap();
    }
    fn increment(&mut self, k: u64) -> bool {
        let name = Self::name(k);
        let Some(v) = self.map.get::<u64>(&name).unwrap() else { return false };
        self.map.insert(&name, v + 1).unwrap();
        true
    }
    fn remove(&mut self, k: u64) {
        self.map.remove(&Self::name(k)).unwrap();
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        for k in self.held.drain(..) {
            let _ = self.map.remove(&Self::name(k));
        }
        // Its `remove` leaves each key's lock file behind (`/dev/shm/shmap.<sha224>.lock`):
        // delete those that appeared while it ran.
        for lock in lock_files() {
            if !self.locks_before.contains(&lock) {
                let _ = std::fs::remove_file(lock);
            }
        }
    }
}

/// The crates.io `shmap`'s lock files in `/dev/shm`.
fn lock_files() -> std::collections::HashSet<PathBuf> {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else { return Default::default() };
    dir.filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with("shmap.") && name.ends_with(".lock")
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------

struct Redis {
    server: std::process::Child,
    socket: PathBuf,
    connection: redis::Connection,
}

impl Redis {
    /// A private `redis-server` on a unix socket, or `None` if there is none on the `PATH`.
    fn start() -> Option<Redis> {
        let socket =
            std::env::temp_dir().join(format!("alt-bench-redis-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&socket);
        let server = std::process::Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no", "--unixsocketperm", "700"])
            .arg("--unixsocket")
            .arg(&socket)
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let start = Instant::now();
        while !socket.exists() {
            assert!(start.elapsed() < Duration::from_secs(10), "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        let client = redis::Client::open(format!("unix://{}", socket.display())).unwrap();
        let connection = client.get_connection().unwrap();
        Some(Redis { server, socket, connection })
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

impl Store for Redis {
    const PASS: usize = 20_000;
    fn get(&mut self, k: u64) -> Option<u64> {
        self.connection.get(k).unwrap()
    }
    fn insert(&mut self, k: u64, v: u64) {
        let () = self.connection.set(k, v).unwrap();
    }
    fn increment(&mut self, k: u64) -> bool {
        let _: u64 = self.connection.incr(k, 1).unwrap();
        true
    }
    fn remove(&mut self, k: u64) {
        let _: u64 = self.connection.del(k).unwrap();
    }
}

/// The value stored under `k`: below 2^32, so that Redis's `INCR` (signed 64-bit) takes it.
fn value(k: u64) -> u64 {
    k >> 32
}

/// Fills `store` with `held`.
fn fill<S: Store>(store: &mut S, held: &[u64]) {
    for &k in held {
        store.insert(k, value(k));
    }
}

fn fill_redis(store: &mut Redis, held: &[u64]) {
    for chunk in held.chunks(10_000) {
        let mut pipe = redis::pipe();
        for &k in chunk {
            pipe.set(k, value(k)).ignore();
        }
        let () = pipe.query(&mut store.connection).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------

/// `get`, `update` and `insert` passes of `S::PASS` operations on `store`, which holds `held`.
fn bench_store<S: Store>(c: &mut Criterion, name: &str, store: &mut S, held: &[u64]) {
    // Lookups and updates in a shuffled order of the held keys (a pass takes the first PASS).
    let mut order = held.to_vec();
    let mut s = 43u64;
    for i in (1..order.len()).rev() {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        order.swap(i, (s % (i as u64 + 1)) as usize);
    }
    let pass = &order[..S::PASS.min(order.len())];
    let fresh = keys(7, S::PASS); // insert: keys no store holds
    for op in ["get", "update", "insert"] {
        // Not `get` alone: the `peers` benchmark's groups have those names, and criterion
        // would compare the two.
        let mut group = c.benchmark_group(format!("shared-{op}"));
        group
            .throughput(Throughput::Elements(pass.len() as u64))
            .sample_size(10)
            .measurement_time(Duration::from_secs(5));
        group.bench_function(BenchmarkId::new(name, 1), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    match op {
                        "get" => {
                            let start = Instant::now();
                            for &k in pass {
                                assert!(store.get(k).is_some());
                            }
                            total += start.elapsed();
                        }
                        "update" => {
                            let start = Instant::now();
                            for &k in pass {
                                assert!(store.increment(k));
                            }
                            total += start.elapsed();
                        }
                        _ => {
                            let start = Instant::now();
                            for &k in &fresh[..pass.len()] {
                                store.insert(k, value(k));
                            }
                            total += start.elapsed();
                            // Untimed: take the new keys out again, so that every pass
                            // inserts into the same store.
                            for &k in &fresh[..pass.len()] {
                                store.remove(k);
                            }
                        }
                    }
                }
                total
            });
        });
        group.finish();
    }
}

fn alternatives(c: &mut Criterion) {
    let held = keys(42, KEYS);

    let mut shm = Shm::new();
    fill(&mut shm, &held);
    bench_store(c, "shmap", &mut shm, &held);
    drop(shm);

    let mut lmdb = Lmdb::new();
    {
        // One transaction for the whole fill (untimed).
        let mut txn = lmdb.env.write_txn().unwrap();
        for &k in &held {
            lmdb.db.put(&mut txn, &k, &value(k)).unwrap();
        }
        txn.commit().unwrap();
    }
    bench_store(c, "lmdb", &mut lmdb, &held);
    drop(lmdb);

    let locks_before = lock_files();
    let mut files = Files { map: shmap_files::Shmap::new(), held: Vec::new(), locks_before };
    fill(&mut files, &held[..FILES_KEYS]);
    files.held = held[..FILES_KEYS].to_vec();
    bench_store(c, "shmap-crates-io", &mut files, &held[..FILES_KEYS]);
    drop(files);

    match Redis::start() {
        Some(mut redis) => {
            fill_redis(&mut redis, &held);
            bench_store(c, "redis", &mut redis, &held);
        }
        None => eprintln!("redis: skipped (no redis-server on the PATH)"),
    }
}

criterion_group!(benches, alternatives);
criterion_main!(benches);
