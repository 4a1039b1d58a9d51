//! What the cache mode costs and how well it caches, in the workload benchmark's JSON-line
//! format (issue 13's measurements; the numbers are in BENCHMARKS.md).
//!
//! ```text
//! cargo run --release -p shmap-examples --bin cache_bench [-- --keys N --reps 5 --only get,insert,hit,clock]
//! ```
//!
//! - `get`: lookups of every key (over again, for a million lookups at least), in shuffled order, in a plain `ShmHashTable<u64, u64>`, in
//!   a `ShmCache<u64, u64>` whose entries all expire (a default TTL: each lookup reads the
//!   clock), in another read through `ReadClock::Ticked` (each lookup loads a ticker thread's
//!   word), and in one with an entry limit (each lookup may set a referenced bit). They
//!   run in turn (with a table of 16-byte values, whose slots are as big as the caches'), `--reps` times each after a warm-up, at `--keys` keys in twice as many slots
//!   (the workload's sizing) and at 25,000; medians, and each cache's ratio to the table.
//! - `insert-evicting`: a cache of `--keys` slots limited to 3/4 of them takes 10 × its slots
//!   in distinct keys, each insert past the limit evicting one: one thread (`1t`), and two
//!   `fork`ed processes on one anonymous segment (`2p`, each half the keys; timed from a start
//!   barrier to the last one's end).
//! - `hit-rate`: a Zipf(0.99) stream over 10 × the capacity in distinct keys (the issue's
//!   workload), each key looked up and inserted on a miss, through the CLOCK cache and
//!   through an exact LRU of the same number of entries (in-process, for reference).
//! - `clock`: what one read of the coarse clock costs (`clock_gettime(CLOCK_REALTIME_COARSE)`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmap::{Backing, ReadClock, ShmCache, ShmHashTable};

struct Options {
    keys: usize,
    reps: usize,
    /// Which parts to run: `clock`, `get`, `insert`, `hit` (all by default).
    only: Option<String>,
}

impl Options {
    fn runs(&self, part: &str) -> bool {
        self.only.as_deref().is_none_or(|only| only.split(',').any(|p| p == part))
    }
}

fn options() -> Options {
    let mut o = Options { keys: 1_000_000, reps: 5, only: None };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--only" {
            o.only = it.next().cloned();
            continue;
        }
        let mut value = || -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--keys" => o.keys = value(),
            "--reps" => o.reps = value(),
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

/// splitmix64: keys spread over the table, distinct for distinct inputs.
fn mix(v: u64) -> u64 {
    let mut z = v.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn line(case: &str, phase: &str, mode: &str, mops: f64, extra: &str) {
    println!(
        "{{\"impl\":\"shmap\",\"case\":\"{case}\",\"mode\":\"{mode}\",\"phase\":\"{phase}\",\
         \"mops\":{mops:.3}{extra}}}"
    );
}

/// A batched lookup: `get_many` of a table or a cache.
type GetMany<'a> = dyn Fn(&[u64], &mut [Option<u64>]) + 'a;

/// Passes over `n` keys that make a timed phase last about a million lookups (a pass over a
/// small table takes a fraction of a millisecond, too short to time).
fn passes(n: usize) -> usize {
    (1_000_000 / n).max(1)
}

/// The name of a case of `n` keys: `u64-1M`, `u64-25K`.
fn case_name(n: usize) -> String {
    if n >= 1 << 20 || n % 1_000_000 == 0 {
        format!("u64-{}M", n.div_ceil(1_000_000))
    } else {
        format!("u64-{}K", n / 1000)
    }
}

/// Millions of lookups per second over `keys` with `get`.
fn time_gets(keys: &[u64], get: impl Fn(&u64) -> Option<u64>) -> f64 {
    let start = Instant::now();
    let mut found = 0u64;
    for _ in 0..passes(keys.len()) {
        for k in keys {
            found += u64::from(get(k).is_some());
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(found, (keys.len() * passes(keys.len())) as u64, "every key is present");
    found as f64 / secs / 1e6
}

fn get_case(n: usize, o: &Options) {
    let capacity = 2 * n;
    let mut keys: Vec<u64> = (0..n as u64).map(mix).collect();
    let table =
        ShmHashTable::<u64, u64>::options().capacity(capacity).open(&Backing::Anonymous).unwrap();
    let ttl = ShmCache::<u64, u64>::options()
        .capacity(capacity)
        .default_ttl(Duration::from_secs(3600))
        .open(&Backing::Anonymous)
        .unwrap();
    // A TTL cache whose reads load a ticker's word (ReadClock::Ticked).
    let ticked = ShmCache::<u64, u64>::options()
        .capacity(capacity)
        .default_ttl(Duration::from_secs(3600))
        .read_clock(ReadClock::Ticked(Duration::from_millis(1)))
        .open(&Backing::Anonymous)
        .unwrap();
    let limited = ShmCache::<u64, u64>::options()
        .capacity(capacity)
        .max_entries(capacity as u64)
        .open(&Backing::Anonymous)
        .unwrap();
    // A table whose slots are as big as the caches' (a 16-byte value: 32-byte slots), to tell
    // the cost of the bigger slot from the cost of the cache's checks.
    let wide = ShmHashTable::<u64, [u64; 2]>::options()
        .capacity(capacity)
        .open(&Backing::Anonymous)
        .unwrap();
    for k in &keys {
        table.insert(k, k).unwrap();
        wide.insert(k, &[*k, 0]).unwrap();
        ttl.insert(k, k).unwrap();
        ticked.insert(k, k).unwrap();
        limited.insert(k, k).unwrap();
    }
    // Shuffled lookups (a fixed permutation: Fisher-Yates over xorshift).
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for i in (1..keys.len()).rev() {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        keys.swap(i, (rng % (i as u64 + 1)) as usize);
    }
    // Batched: `get_many` over the same keys, 1,024 per call.
    let time_batched = |get_many: &GetMany| {
        let mut out = vec![None; 1024];
        let start = Instant::now();
        let mut found = 0;
        for _ in 0..passes(keys.len()) {
            for chunk in keys.chunks(1024) {
                get_many(chunk, &mut out[..chunk.len()]);
                found += out[..chunk.len()].iter().filter(|v| v.is_some()).count();
            }
        }
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(found, keys.len() * passes(keys.len()));
        found as f64 / secs / 1e6
    };
    let (mut plain_many, mut ttl_many) = (Vec::new(), Vec::new());
    for rep in 0..=o.reps {
        let p = time_batched(&|k, out| table.get_many(k, out).unwrap());
        let t = time_batched(&|k, out| ttl.get_many(k, out).unwrap());
        if rep > 0 {
            plain_many.push(p);
            ttl_many.push(t);
        }
    }
    let (mut plain, mut ttl_runs, mut lim_runs) = (Vec::new(), Vec::new(), Vec::new());
    let (mut wide_runs, mut ticked_runs) = (Vec::new(), Vec::new());
    for rep in 0..=o.reps {
        let w = time_gets(&keys, |k| wide.get(k).unwrap().map(|v| v[0]));
        let p = time_gets(&keys, |k| table.get(k).unwrap());
        let t = time_gets(&keys, |k| ttl.get(k).unwrap());
        let tk = time_gets(&keys, |k| ticked.get(k).unwrap());
        let l = time_gets(&keys, |k| limited.get(k).unwrap());
        if rep > 0 {
            ticked_runs.push(tk);
            plain.push(p);
            ttl_runs.push(t);
            lim_runs.push(l);
            wide_runs.push(w);
        }
    }
    let case = case_name(n);
    let (p, t, l) = (median(plain), median(ttl_runs), median(lim_runs));
    line(&case, "get-table", "1t", p, "");
    let w = median(wide_runs);
    line(&case, "get-table-16B-values", "1t", w, &format!(",\"vs_table\":{:.3}", w / p));
    line(&case, "get-ttl-cache", "1t", t, &format!(",\"vs_table\":{:.3}", t / p));
    let tk = median(ticked_runs);
    line(&case, "get-ttl-cache-ticked", "1t", tk, &format!(",\"vs_table\":{:.3}", tk / p));
    line(&case, "get-limited-cache", "1t", l, &format!(",\"vs_table\":{:.3}", l / p));
    let (pm, tm) = (median(plain_many), median(ttl_many));
    line(&case, "get_many-table", "1t", pm, "");
    line(&case, "get_many-ttl-cache", "1t", tm, &format!(",\"vs_table\":{:.3}", tm / pm));
}

/// `--reps` rounds of lookups of every key of `--keys` in one kind of table (see `main`).
fn loop_gets(kind: &str, o: &Options) {
    let keys: Vec<u64> = (0..o.keys as u64).map(mix).collect();
    let capacity = 2 * o.keys;
    let table =
        ShmHashTable::<u64, u64>::options().capacity(capacity).open(&Backing::Heap).unwrap();
    let mut opts = ShmCache::<u64, u64>::options().capacity(capacity);
    opts = if kind == "ttl" {
        opts.default_ttl(Duration::from_secs(3600))
    } else if kind == "ticked" {
        opts.default_ttl(Duration::from_secs(3600))
            .read_clock(ReadClock::Ticked(Duration::from_millis(1)))
    } else {
        opts.max_entries(capacity as u64)
    };
    let cache = opts.open(&Backing::Heap).unwrap();
    for k in &keys {
        table.insert(k, k).unwrap();
        cache.insert(k, k).unwrap();
    }
    // Let a ticker thread store its first time (under valgrind, threads take turns).
    std::thread::sleep(Duration::from_millis(100));
    let mut found = 0;
    for _ in 0..o.reps {
        for k in &keys {
            let hit = if kind == "table" { table.get(k) } else { cache.get(k) };
            found += u64::from(std::hint::black_box(hit.unwrap()).is_some());
        }
    }
    println!("{kind}: {found} found");
}

/// Inserts `count` distinct keys from `first` into `cache`; returns the seconds it took.
fn insert_keys(cache: &ShmCache<u64, u64>, first: u64, count: u64) -> f64 {
    let start = Instant::now();
    for i in first..first + count {
        let k = mix(i);
        cache.insert(&k, &i).unwrap();
    }
    start.elapsed().as_secs_f64()
}

fn insert_evicting(o: &Options) {
    let capacity = o.keys;
    let total = 10 * capacity as u64;
    let fresh = || {
        ShmCache::<u64, u64>::options()
            .capacity(capacity)
            .max_entries(capacity as u64 / 4 * 3)
            .open(&Backing::Anonymous)
            .unwrap()
    };
    let (mut one, mut two) = (Vec::new(), Vec::new());
    for rep in 0..=o.reps {
        let cache = fresh();
        let secs = if std::env::var_os("CACHE_BENCH_TRACE").is_some() {
            let mut secs = 0.0;
            for lap in 0..10 {
                let s = insert_keys(&cache, lap * capacity as u64, capacity as u64);
                let st = cache.stats();
                eprintln!(
                    "lap {lap}: {:.2} M/s, probe mean {:.1} max {}, reusable {}",
                    capacity as f64 / s / 1e6,
                    st.probes.hit_mean,
                    st.probes.hit_max,
                    st.reusable
                );
                secs += s;
            }
            secs
        } else {
            insert_keys(&cache, 0, total)
        };
        let evictions = cache.stats().evictions;
        assert!(evictions >= total - capacity as u64, "{}", cache.stats());
        if rep > 0 {
            one.push(total as f64 / secs / 1e6);
        }
        // Two processes: a forked child takes the first half of the keys, this process the
        // second, both released by a start flag in shared memory; timed from the release to
        // the child's exit.
        let cache = fresh();
        let flags =
            ShmHashTable::<u64, u64>::options().capacity(4).open(&Backing::Anonymous).unwrap();
        // SAFETY: this process is single-threaded here; the child only uses the mappings it
        // inherited and ends with `_exit`.
        match unsafe { libc::fork() } {
            -1 => panic!("fork: {}", std::io::Error::last_os_error()),
            0 => {
                flags.insert(&1, &1).unwrap(); // ready
                while flags.get(&2).unwrap().is_none() {
                    std::hint::spin_loop();
                }
                insert_keys(&cache, 0, total / 2);
                // SAFETY: ends the child without running the parent's exit handlers.
                unsafe { libc::_exit(0) };
            }
            child => {
                while flags.get(&1).unwrap().is_none() {
                    std::hint::spin_loop();
                }
                let start = Instant::now();
                flags.insert(&2, &1).unwrap(); // go
                insert_keys(&cache, total / 2, total / 2);
                let mut status = 0;
                // SAFETY: waits for our own child.
                unsafe { libc::waitpid(child, &mut status, 0) };
                let secs = start.elapsed().as_secs_f64();
                assert_eq!(status, 0, "the child failed");
                if rep > 0 {
                    two.push(total as f64 / secs / 1e6);
                }
                let stats = cache.stats();
                assert!(stats.entries as u64 <= capacity as u64 / 4 * 3 + 2, "{stats}");
                assert_eq!(stats.entries as u64 + stats.evictions, total, "{stats}");
            }
        }
    }
    let case = case_name(capacity);
    let (a, b) = (median(one), median(two));
    line(&case, "insert-evicting", "1t", a, "");
    line(&case, "insert-evicting", "2p", b, &format!(",\"vs_1t\":{:.3}", b / a));
}

/// An exact LRU of `max` entries: a hash map to nodes of a doubly-linked recency list.
struct Lru {
    max: usize,
    map: HashMap<u64, usize>,
    nodes: Vec<(u64, usize, usize)>, // key, prev, next
    head: usize,                     // most recent
    tail: usize,                     // least recent
}

const NIL: usize = usize::MAX;

impl Lru {
    fn new(max: usize) -> Self {
        Lru {
            max,
            map: HashMap::with_capacity(max),
            nodes: Vec::with_capacity(max),
            head: NIL,
            tail: NIL,
        }
    }

    fn unlink(&mut self, i: usize) {
        let (_, prev, next) = self.nodes[i];
        if prev != NIL {
            self.nodes[prev].2 = next
        } else {
            self.head = next
        }
        if next != NIL { self.nodes[next].1 = prev } else { self.tail = prev }
    }

    fn push_front(&mut self, i: usize) {
        self.nodes[i].1 = NIL;
        self.nodes[i].2 = self.head;
        if self.head != NIL {
            self.nodes[self.head].1 = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// Looks `key` up (moving it to the front); on a miss inserts it, evicting the least
    /// recent entry when full. Whether it hit.
    fn access(&mut self, key: u64) -> bool {
        if let Some(&i) = self.map.get(&key) {
            self.unlink(i);
            self.push_front(i);
            return true;
        }
        let i = if self.nodes.len() < self.max {
            self.nodes.push((key, NIL, NIL));
            self.nodes.len() - 1
        } else {
            let victim = self.tail;
            self.unlink(victim);
            self.map.remove(&self.nodes[victim].0);
            self.nodes[victim].0 = key;
            victim
        };
        self.map.insert(key, i);
        self.push_front(i);
        false
    }
}

/// Zipf(s) over ranks 1..=n by inversion of the cumulative distribution.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for rank in 1..=n {
            sum += 1.0 / (rank as f64).powf(s);
            cdf.push(sum);
        }
        cdf.iter_mut().for_each(|c| *c /= sum);
        Zipf { cdf }
    }

    fn sample(&self, u: f64) -> usize {
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

fn hit_rate(capacity: usize) {
    let max = capacity / 4 * 3;
    let universe = 10 * capacity;
    let requests = 40 * capacity;
    let zipf = Zipf::new(universe, 0.99);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let stream: Vec<u64> = (0..requests)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            mix(zipf.sample((rng >> 11) as f64 / (1u64 << 53) as f64) as u64)
        })
        .collect();
    // The first quarter warms both caches up; hits are counted over the rest.
    let warm = requests / 4;
    let cache = ShmCache::<u64, u64>::options()
        .capacity(capacity)
        .max_entries(max as u64)
        .open(&Backing::Anonymous)
        .unwrap();
    let mut lru = Lru::new(max);
    let (mut clock_hits, mut lru_hits) = (0usize, 0usize);
    for (i, &k) in stream.iter().enumerate() {
        let hit = cache.get(&k).unwrap().is_some();
        if !hit {
            cache.insert(&k, &k).unwrap();
        }
        let lru_hit = lru.access(k);
        if i >= warm {
            clock_hits += usize::from(hit);
            lru_hits += usize::from(lru_hit);
        }
    }
    let counted = (requests - warm) as f64;
    let (c, l) = (clock_hits as f64 / counted, lru_hits as f64 / counted);
    println!(
        "{{\"impl\":\"shmap\",\"case\":\"zipf-0.99\",\"phase\":\"hit-rate\",\"capacity\":{capacity},\
         \"max_entries\":{max},\"distinct_keys\":{universe},\"requests\":{requests},\
         \"clock\":{c:.4},\"exact_lru\":{l:.4},\"difference_pp\":{:.2}}}",
        (l - c) * 100.0
    );
}

fn clock_cost() {
    static SINK: AtomicU64 = AtomicU64::new(0);
    let n = 20_000_000u64;
    let start = Instant::now();
    let mut sum = 0u64;
    for _ in 0..n {
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: a valid out-pointer.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut now) };
        sum = sum.wrapping_add(now.tv_nsec as u64);
    }
    SINK.store(sum, Ordering::Relaxed);
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "{{\"impl\":\"libc\",\"case\":\"clock\",\"phase\":\"clock_gettime-realtime-coarse\",\"ns\":{ns:.2}}}"
    );
}

fn main() {
    let o = options();
    if o.runs("clock") {
        clock_cost();
    }
    if o.runs("get") {
        get_case(o.keys, &o);
        get_case(25_000, &o);
    }
    // For instruction counts under callgrind: only the lookups of one kind, `--reps` rounds.
    for kind in ["table", "ttl", "ticked", "limited"] {
        if o.only.as_deref() == Some(&format!("loop-{kind}")) {
            loop_gets(kind, &o);
        }
    }
    if o.runs("insert") {
        insert_evicting(&o);
    }
    if o.runs("hit") {
        hit_rate(16_384);
        hit_rate(o.keys.next_power_of_two() / 8);
    }
}
