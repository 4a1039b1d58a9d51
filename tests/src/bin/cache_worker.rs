//! The other process in the cache tests (`tests/cache.rs`): each subcommand does one thing to a
//! `ShmCache<u64, u64>` that the test process also uses, and reports on stdout.
//!
//! ```text
//! cache_worker fill NAME START COUNT           insert keys START..START+COUNT (value = key),
//!                                              print `ok EVICTIONS_SEEN` or the first error
//! cache_worker read-evicted NAME LOG MILLIS    for MILLIS: read the keys logged in table LOG
//!                                              (each logged after its eviction returned) and
//!                                              get each from NAME, which must miss; get live
//!                                              keys, which must hold their own value; print
//!                                              `checked N violations V`
//! cache_worker expire-writer NAME KEYS MILLIS  for MILLIS: insert random keys below KEYS with
//!                                              TTLs of 1-30 ms, then set the value to a bound
//!                                              on the entry's expiry instant (ms)
//! cache_worker expire-reader NAME KEYS MILLIS  for MILLIS: read the clock, then get a key; a
//!                                              hit must have read the clock before the bound
//!                                              its value names; print `checked N hits H
//!                                              violations V`
//! cache_worker insert-forever NAME ID          print `started`, then insert ID << 40 | seq
//!                                              (value = key) until killed
//! ```

use std::time::{Duration, Instant};

use shmap::{Backing, CreateMode, ShmCache, ShmHashTable};

type Cache = ShmCache<u64, u64>;

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> T {
    args.get(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("argument {i} missing or invalid: {args:?}"))
}

fn open(name: &str) -> Cache {
    Cache::options().create(CreateMode::OpenExisting).open(&Backing::shm(name)).unwrap()
}

/// The clock the cache measures expiry on (`CLOCK_REALTIME_COARSE`), in ms.
fn now_ms() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut now) };
    now.tv_sec as u64 * 1000 + now.tv_nsec as u64 / 1_000_000
}

/// xorshift64.
fn next(rng: &mut u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    *rng
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("");
    let name = args.get(1).cloned().unwrap_or_default();
    match command {
        "fill" => {
            let cache = open(&name);
            let (start, count): (u64, u64) = (arg(&args, 2), arg(&args, 3));
            for key in start..start + count {
                if let Err(e) = cache.insert(&key, &key) {
                    println!("error at key {key}: {e}");
                    return;
                }
            }
            println!("ok {}", cache.stats().evictions);
        }
        "read-evicted" => {
            let cache = open(&name);
            let log = ShmHashTable::<u64, u64>::open(&args[2]).unwrap();
            let until = Instant::now() + Duration::from_millis(arg(&args, 3));
            let (mut checked, mut violations) = (0u64, 0u64);
            while Instant::now() < until {
                let evicted: Vec<u64> = log.keys().collect::<Result<_, _>>().unwrap();
                for key in &evicted {
                    checked += 1;
                    if let Some(v) = cache.get(key).unwrap() {
                        violations += 1;
                        eprintln!("key {key} evicted, and then read as {v}");
                    }
                }
                for key in 0..256 {
                    if let Some(v) = cache.get(&key).unwrap() {
                        checked += 1;
                        if v != key {
                            violations += 1;
                            eprintln!("key {key} read as {v}");
                        }
                    }
                }
            }
            println!("checked {checked} violations {violations}");
        }
        "expire-writer" => {
            let cache = open(&name);
            let keys: u64 = arg(&args, 2);
            let until = Instant::now() + Duration::from_millis(arg(&args, 3));
            let mut rng = 0x9e37_79b9_7f4a_7c15u64;
            while Instant::now() < until {
                let key = next(&mut rng) % keys;
                let ttl = 1 + next(&mut rng) % 30;
                // The value 0 says "no bound yet"; the cache reads its clock during the insert,
                // so the entry expires at most `ttl` after the clock read that follows it.
                cache.insert_with_ttl(&key, &0, Duration::from_millis(ttl)).unwrap();
                let bound = now_ms() + ttl;
                cache.update(&key, |v| *v = bound).unwrap();
            }
            println!("done");
        }
        "expire-reader" => {
            let cache = open(&name);
            let keys: u64 = arg(&args, 2);
            let until = Instant::now() + Duration::from_millis(arg(&args, 3));
            let (mut checked, mut hits, mut violations) = (0u64, 0u64, 0u64);
            let mut rng = 0x2545_f491_4f6c_dd1du64;
            while Instant::now() < until {
                let key = next(&mut rng) % keys;
                let before = now_ms();
                checked += 1;
                if let Some(bound) = cache.get(&key).unwrap().filter(|&v| v != 0) {
                    hits += 1;
                    if before >= bound {
                        violations += 1;
                        eprintln!("key {key} read at {before}, after its expiry (at most {bound})");
                    }
                }
            }
            println!("checked {checked} hits {hits} violations {violations}");
        }
        "insert-forever" => {
            let cache = open(&name);
            let id: u64 = arg(&args, 2);
            println!("started");
            for seq in 0.. {
                let key = id << 40 | seq;
                cache.insert(&key, &key).unwrap();
            }
        }
        other => panic!("unknown cache_worker command {other:?}"),
    }
}
