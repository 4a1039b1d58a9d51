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
//! cache_worker expire-reader NAME KEYS MILLIS ticked
//!                                              the same through `ReadClock::Ticked` (1 ms):
//!                                              a hit may come up to 1 s after the bound
//! cache_worker expire-reader NAME KEYS MILLIS ticked-without-thread
//!                                              the same in a process that cannot start the
//!                                              ticker (run with `RUST_MIN_STACK` too big to
//!                                              map; checked): reads read the clock, so no hit
//!                                              may come after the bound
//! cache_worker ticked-fork                     a ticked cache on the heap, an entry with a
//!                                              100 ms TTL, then `fork`: after 400 ms both
//!                                              read it; print `child expired B ticker B`
//!                                              (whether the child started a ticker thread)
//!                                              and `parent expired B child status N`
//! cache_worker ticked-period-shrink           a cache ticked every 1 s, then one every 1 ms
//!                                              whose entries (5 ms TTL) must expire soon:
//!                                              print `latest MS`, the latest expiry seen
//! cache_worker insert-forever NAME ID          print `started`, then insert ID << 40 | seq
//!                                              (value = key) until killed
//! ```

use std::time::{Duration, Instant};

use shmap::{Backing, CreateMode, ReadClock, ShmCache, ShmHashTable};

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

/// How late a ticked read may see an entry (ms): the period (1 ms) plus a generous scheduling
/// delay for a loaded test machine.
const TICKED_LATENESS_MS: u64 = 1000;

/// Whether this process has a thread named `shmap-clock` (the ticker), waiting up to 10 s for
/// one to appear.
fn wait_for_ticker_thread() -> bool {
    ticker_thread_within(Duration::from_secs(10))
}

/// Whether a thread named `shmap-clock` appears in this process within `wait`.
fn ticker_thread_within(wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        let found = std::fs::read_dir("/proc/self/task").unwrap().any(|task| {
            let comm = task.unwrap().path().join("comm");
            std::fs::read_to_string(comm).is_ok_and(|name| name.trim() == "shmap-clock")
        });
        if found || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
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
            let (ticked, without_thread) = match args.get(4).map(String::as_str) {
                None => (false, false),
                Some("ticked") => (true, false),
                Some("ticked-without-thread") => (true, true),
                Some(other) => panic!("expire-reader: no read clock {other:?}"),
            };
            let cache = if ticked {
                Cache::options()
                    .create(CreateMode::OpenExisting)
                    .read_clock(ReadClock::Ticked(Duration::from_millis(1)))
                    .open(&Backing::shm(&name))
                    .unwrap()
            } else {
                open(&name)
            };
            if without_thread {
                // The test made thread creation fail: the opening above tried, and failed.
                assert!(
                    !ticker_thread_within(Duration::from_millis(200)),
                    "a ticker thread started: this reader does not test a failed start"
                );
            }
            // A ticked read may see an entry after its expiry, by the ticker's period plus its
            // scheduling delay: a violation is then a read later than this. A process without a
            // ticker reads the clock: no lateness.
            let allowed = if ticked && !without_thread { TICKED_LATENESS_MS } else { 0 };
            let keys: u64 = arg(&args, 2);
            let until = Instant::now() + Duration::from_millis(arg(&args, 3));
            let (mut checked, mut hits, mut violations) = (0u64, 0u64, 0u64);
            let (mut late, mut latest) = (0u64, 0u64);
            let mut rng = 0x2545_f491_4f6c_dd1du64;
            while Instant::now() < until {
                let key = next(&mut rng) % keys;
                let before = now_ms();
                checked += 1;
                if let Some(bound) = cache.get(&key).unwrap().filter(|&v| v != 0) {
                    hits += 1;
                    if before >= bound {
                        late += 1;
                        latest = latest.max(before - bound);
                    }
                    if before >= bound + allowed {
                        violations += 1;
                        eprintln!("key {key} read at {before}, after its expiry (at most {bound})");
                    }
                }
            }
            if ticked {
                eprintln!("ticked reader: {late} hits after the bound, the latest by {latest} ms");
            }
            println!("checked {checked} hits {hits} violations {violations}");
        }
        "ticked-period-shrink" => {
            // A cache ticked every second, then one ticked every millisecond: the second must
            // not wait for the first's period before its word moves.
            let ticked = |ms| {
                Cache::options()
                    .capacity(64)
                    .read_clock(ReadClock::Ticked(Duration::from_millis(ms)))
                    .open(&Backing::Heap)
                    .unwrap()
            };
            let _slow = ticked(1000);
            assert!(wait_for_ticker_thread(), "no ticker thread started");
            std::thread::sleep(Duration::from_millis(50));
            let fast = ticked(1);
            let mut latest = 0;
            for key in 0..5 {
                fast.insert_with_ttl(&key, &key, Duration::from_millis(5)).unwrap();
                let expiry = now_ms() + 5;
                while fast.get(&key).unwrap().is_some() {
                    std::thread::sleep(Duration::from_micros(200));
                }
                latest = latest.max(now_ms().saturating_sub(expiry));
            }
            println!("latest {latest}");
        }
        "ticked-fork" => {
            // A ticked cache on this process's heap, read by a `fork` child: the child has no
            // ticker thread, so without the fork handler its copy of the ticker's word would
            // stand still, and the entry would never expire for it.
            let cache = Cache::options()
                .capacity(64)
                .read_clock(ReadClock::Ticked(Duration::from_millis(1)))
                .open(&Backing::Heap)
                .unwrap();
            cache.insert_with_ttl(&1, &1, Duration::from_millis(100)).unwrap();
            assert_eq!(cache.get(&1).unwrap(), Some(1), "read before its expiry");
            assert!(wait_for_ticker_thread(), "the parent's ticker thread never started");
            std::thread::sleep(Duration::from_millis(20)); // it has stored a time by now
            // SAFETY: the child only reads the cache, sleeps, and may start a thread of its
            // own; the parent's other thread (the ticker) holds no lock across a fork.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0, "fork failed");
            std::thread::sleep(Duration::from_millis(400)); // past the TTL, in both
            let expired = cache.get(&1).unwrap().is_none();
            if pid == 0 {
                let ticker = wait_for_ticker_thread();
                println!("child expired {expired} ticker {ticker}");
                use std::io::Write;
                std::io::stdout().flush().unwrap();
                // SAFETY: ends the child without running the parent's exit handlers twice.
                unsafe { libc::_exit(0) };
            }
            let mut status = 0;
            // SAFETY: waits for our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            println!("parent expired {expired} child status {status}");
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
