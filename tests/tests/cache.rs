//! The cache with real processes: filling from two processes at once, readers in another
//! process than the evictor and the writer, and processes SIGKILLed while they evict.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use shmap::{Backing, CacheSettings, Monitor, OpenErrorKind, ShmCache, ShmHashTable, SlotState};
use shmap_tests::{ShmName, Worker, cache_worker};

type Cache = ShmCache<u64, u64>;

fn create(name: &ShmName, capacity: usize, max_entries: Option<u64>) -> Cache {
    let mut opts = Cache::options().capacity(capacity);
    if let Some(max) = max_entries {
        opts = opts.max_entries(max);
    }
    opts.open(&name.backing()).unwrap()
}

/// Every slot of `cache` that holds an entry, as (key, value), after checking that no slot is
/// locked and no key is in two slots.
fn audit(cache: &Cache) -> Vec<(u64, u64)> {
    let entries: Vec<(u64, u64)> = cache.iter().collect::<Result<_, _>>().unwrap();
    let keys: HashSet<u64> = entries.iter().map(|&(k, _)| k).collect();
    assert_eq!(keys.len(), entries.len(), "a key in two slots");
    for &(k, v) in &entries {
        assert_eq!(v, k, "key {k} holds another key's value");
        assert_eq!(cache.get(&k).unwrap(), Some(v), "key {k} unreachable by get");
    }
    let stats = cache.stats();
    assert_eq!(stats.entries, entries.len(), "{stats}");
    entries
}

fn fill(name: &ShmName, start: u64, count: u64) -> Worker {
    Worker::spawn(cache_worker!("fill", name.as_str(), start.to_string(), count.to_string()))
}

/// Two processes insert 10 × capacity distinct keys into one cache, with an entry limit below
/// the capacity and with the whole capacity as the limit: neither ever sees `TableFull`, the
/// cache ends at its limit, and every key is either in it or was evicted, exactly.
#[test]
fn two_processes_put_ten_times_the_capacity_through_a_cache() {
    const CAPACITY: u64 = 1024;
    for max in [CAPACITY * 3 / 4, CAPACITY] {
        let name = ShmName::new("cache-fill");
        let cache = create(&name, CAPACITY as usize, Some(max));
        let half = 5 * CAPACITY;
        let mut workers = [fill(&name, 0, half), fill(&name, half, half)];
        for w in &mut workers {
            let line = w.line();
            assert!(line.starts_with("ok "), "max {max}: {line}");
        }
        for w in workers {
            w.finish();
        }
        let entries = audit(&cache);
        assert_eq!(cache.recount().unwrap(), entries.len());
        let stats = cache.stats();
        assert!(entries.len() as u64 <= max, "{stats}");
        assert!(entries.len() as u64 >= max - 2, "evicted more than it needed: {stats}");
        assert_eq!(
            entries.len() as u64 + stats.evictions,
            2 * half,
            "every key is in the cache or was evicted: {stats}"
        );
        assert!(entries.iter().all(|&(k, _)| k < 2 * half));
    }
}

/// Found by review: with the whole capacity as the limit, inserts that found the table full
/// gave up after a few rounds of making room that other processes took first. Processes
/// inserting distinct keys into caches of 1, 2 and 4 slots never see `TableFull`, and every
/// key is in the cache or was evicted, exactly.
#[test]
fn tiny_caches_at_their_limit_never_report_full() {
    for capacity in [1u64, 2, 4] {
        let name = ShmName::new("cache-tiny");
        let cache = create(&name, capacity as usize, Some(capacity));
        let per = 3_000;
        let mut workers: Vec<Worker> = (0..4).map(|p| fill(&name, p * per, per)).collect();
        for w in &mut workers {
            let line = w.line();
            assert!(line.starts_with("ok "), "capacity {capacity}: {line}");
        }
        for w in workers {
            w.finish();
        }
        let entries = audit(&cache).len() as u64;
        let stats = cache.stats();
        assert!(entries <= capacity, "{stats}");
        assert_eq!(entries + stats.evictions, 4 * per, "{stats}");
    }
}

/// This process evicts entries one by one and logs each key (in a table of its own) after
/// `evict` returned; a reader process reads the log, then the cache: an evicted key is never
/// read, and live keys always hold their own value.
#[test]
fn a_reader_never_gets_an_entry_after_its_eviction_returned() {
    let (name, log_name) = (ShmName::new("cache-evicted"), ShmName::new("cache-evicted-log"));
    let cache = create(&name, 512, None);
    let log = ShmHashTable::<u64, u64>::options().capacity(512).open(&log_name.backing()).unwrap();
    for k in 0..256 {
        cache.insert(&k, &k).unwrap();
    }
    let mut reader =
        Worker::spawn(cache_worker!("read-evicted", name.as_str(), log_name.as_str(), "1500"));
    let started = Instant::now();
    let mut evicted = 0;
    while started.elapsed() < Duration::from_millis(1000) && evicted < 200 {
        if let Some(key) = cache.evict() {
            log.insert(&key, &1).unwrap();
            evicted += 1;
        }
        std::thread::sleep(Duration::from_millis(4));
    }
    let line = reader.line();
    reader.finish();
    assert!(line.ends_with(" violations 0"), "{line}");
    let checked: u64 = line.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(checked > 1000, "the reader read too little to tell: {line}");
    assert!(evicted >= 50, "only {evicted} evictions");
    assert_eq!(audit(&cache).len(), 256 - evicted);
    assert_eq!(cache.stats().evictions, evicted as u64);
}

/// A writer process inserts entries with TTLs of 1 to 30 ms and then stores in each a bound on
/// its expiry instant; a reader process that reads the clock and then hits an entry always
/// read the clock before that bound.
#[test]
fn a_reader_never_gets_an_entry_after_its_expiry() {
    let name = ShmName::new("cache-expiry");
    let cache = create(&name, 256, None);
    expiry_check(&name, Reads::Clock);
    std::thread::sleep(Duration::from_millis(40)); // past every TTL, by a tick at least
    assert_eq!(cache.iter().count(), 0, "every entry has expired");
    let flushed = cache.flush_expired();
    assert_eq!((cache.recount().unwrap(), cache.len()), (0, 0), "flushed {flushed}");
}

/// How the reader process of [`expiry_check`] tells the time.
#[derive(Clone, Copy)]
enum Reads {
    /// `ReadClock::PerRead`.
    Clock,
    /// `ReadClock::Ticked`.
    Ticked,
    /// `ReadClock::Ticked` in a process where the ticker thread cannot start.
    TickedWithoutThread,
}

/// Runs an `expire-writer` and an `expire-reader` process on the cache `name` for 1.5 s, the
/// reader reading as `reads` says, and checks the reader's report: no violation, and enough
/// hits and misses to tell.
fn expiry_check(name: &ShmName, reads: Reads) {
    let mut writer = Worker::spawn(cache_worker!("expire-writer", name.as_str(), "64", "1500"));
    let mut reader = cache_worker!("expire-reader", name.as_str(), "64", "1500");
    match reads {
        Reads::Clock => {}
        Reads::Ticked => {
            reader.arg("ticked");
        }
        Reads::TickedWithoutThread => {
            // A default stack larger than any address space: every thread spawn of the reader
            // fails (also where the kernel overcommits memory without limit).
            reader.arg("ticked-without-thread").env("RUST_MIN_STACK", (1u64 << 60).to_string());
        }
    }
    let mut reader = Worker::spawn(reader);
    let line = reader.line();
    assert_eq!(writer.line(), "done");
    reader.finish();
    writer.finish();
    assert!(line.ends_with(" violations 0"), "{line}");
    let words: Vec<u64> = line.split(' ').filter_map(|w| w.parse().ok()).collect();
    let (checked, hits) = (words[0], words[1]);
    assert!(hits > 100 && hits < checked, "too few hits or misses to tell: {line}");
}

/// The same through `ReadClock::Ticked`: the reader process's ticker thread keeps its word
/// close to the clock (a word that stood still would let entries live for good).
#[test]
fn a_ticked_reader_gets_an_entry_at_most_a_little_after_its_expiry() {
    let name = ShmName::new("cache-expiry-ticked");
    let _cache = create(&name, 256, None);
    expiry_check(&name, Reads::Ticked);
}

/// A ticked reader whose process cannot start the ticker thread reads the clock: never an entry
/// after its expiry (with the word's "no time" value wrong, entries never expire for it: a
/// review saw hits 417 ms late).
#[test]
fn a_ticked_reader_without_a_ticker_thread_reads_the_clock() {
    let name = ShmName::new("cache-expiry-no-ticker");
    let _cache = create(&name, 256, None);
    expiry_check(&name, Reads::TickedWithoutThread);
}

/// A cache that asks for a shorter period than the process's ticker has gets it at once, not
/// after the ticker's longer sleep (a review saw an entry read 943 ms after a 5 ms TTL).
#[test]
fn a_shorter_period_asked_for_later_takes_effect_at_once() {
    let mut worker = Worker::spawn(cache_worker!("ticked-period-shrink"));
    let line = worker.line();
    worker.finish();
    let latest: u64 = line.strip_prefix("latest ").and_then(|n| n.parse().ok()).expect(&line);
    // The ticker naps 10 ms at most; a generous bound for a loaded machine, far below the
    // 1 s period of the first cache.
    assert!(latest < 500, "an entry was read {latest} ms after its expiry");
}

/// A `fork` child of a process whose ticked reads run a ticker thread has no such thread: it
/// starts its own at its first read, and sees entries expire (a copy of the parent's word would
/// stand still at the moment of the fork).
#[test]
fn a_fork_child_starts_its_own_ticker_and_sees_entries_expire() {
    let mut worker = Worker::spawn(cache_worker!("ticked-fork"));
    let child = worker.line();
    let parent = worker.line();
    worker.finish();
    assert_eq!(child, "child expired true ticker true");
    assert_eq!(parent, "parent expired true child status 0");
}

/// Three processes insert new keys into a cache at its entry limit, so that nearly every insert
/// evicts; one of them is SIGKILLed at a random moment, a hundred times, and replaced. Then a
/// monitor recovers what the killed processes held: no slot stays locked, no key is in two
/// slots, every value is its key's, the count is exact after `recount`, and the cache keeps
/// taking new keys without ever being full.
#[test]
fn a_hundred_processes_killed_while_evicting_are_recovered() {
    const KILLS: u64 = 100;
    let name = ShmName::new("cache-kill");
    let cache = create(&name, 256, Some(192));
    let spawn = |id: u64| {
        let mut w = Worker::spawn(cache_worker!("insert-forever", name.as_str(), id.to_string()));
        assert_eq!(w.line(), "started");
        w
    };
    let mut workers: Vec<Worker> = (0..3).map(spawn).collect();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for kill in 0..KILLS {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_micros(500 + rng % 10_000));
        let victim = (rng >> 32) as usize % workers.len();
        workers[victim].signal(libc::SIGKILL);
        let status = workers[victim].wait(Duration::from_secs(10));
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL),
            "a survivor failed instead: {status}"
        );
        workers[victim] = spawn(3 + kill);
    }
    for w in &workers {
        w.signal(libc::SIGKILL);
    }
    for w in &mut workers {
        w.wait(Duration::from_secs(10));
    }
    // A killed insert may have left its slot locked (NEW): the monitor frees it.
    let mut monitor = Monitor::for_segment(cache.segment()).unwrap();
    let stuck = monitor.poll(Duration::ZERO);
    for s in &stuck {
        monitor.recover(s).unwrap();
    }
    let counted = cache.len();
    let states = monitor.state_counts();
    for (state, n) in states {
        assert!(
            n == 0 || matches!(state, SlotState::Ready | SlotState::Empty | SlotState::Freed),
            "{n} slots left {state:?}: {states:?}"
        );
    }
    let entries = audit(&cache);
    // A removal is counted right after its compare-and-swap, and a claim right after its own:
    // only a kill between the two leaves the count off, by one (`len`'s documented bound). How
    // many kills land there depends on the build and the machine (0-5 of these 103 were seen),
    // so the test holds the count to the documented bound, and `recount` to exactness.
    let kills = KILLS as usize + workers.len();
    assert!(
        counted.abs_diff(entries.len()) <= kills,
        "count {counted}, entries {}: off by more than one per kill ({kills})",
        entries.len()
    );
    assert_eq!(cache.recount().unwrap(), entries.len());
    assert_eq!(cache.len(), entries.len());
    eprintln!(
        "after {KILLS} kills: {} left locked, recovered by the monitor; {} by the survivors; \
         count off by {} before recount; {}",
        stuck.len(),
        cache.stats().recoveries - stuck.len() as u64,
        counted as i64 - entries.len() as i64,
        cache.stats()
    );
    for k in 0..10 * 256u64 {
        cache.insert(&(u64::MAX - k), &(u64::MAX - k)).unwrap();
    }
    assert!(cache.len() <= 192, "{}", cache.stats());
    audit(&cache);
}

/// The settings are the segment's: openers that ask for others get a typed error naming both,
/// openers that ask for none adopt them, and tables and caches do not open each other.
#[test]
fn openers_agree_on_the_settings_or_get_a_typed_error() {
    let name = ShmName::new("cache-settings");
    let ttl = Duration::from_secs(30);
    let created = Cache::options()
        .capacity(64)
        .default_ttl(ttl)
        .max_entries(50)
        .open(&name.backing())
        .unwrap();
    let adopted = Cache::options().open(&name.backing()).unwrap();
    assert_eq!(adopted.settings(), created.settings());
    let err = Cache::options().capacity(64).default_ttl(ttl).open(&name.backing()).unwrap_err();
    match err.kind() {
        OpenErrorKind::CacheMismatch { expected, found } => {
            assert_eq!(**expected, CacheSettings { default_ttl: Some(ttl), ..Default::default() });
            assert_eq!(**found, created.settings());
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().ends_with(
            ": cache settings mismatch: expected default TTL 30000 ms, no entry limit; found \
             default TTL 30000 ms, at most 50 entries (CLOCK eviction)"
        ),
        "{err}"
    );
    let as_table = ShmHashTable::<u64, u64>::open(name.as_str()).unwrap_err();
    assert!(matches!(as_table.kind(), OpenErrorKind::KindMismatch { .. }), "{as_table}");
    let bad = Cache::options().capacity(64).max_entries(65).open(&Backing::Heap).unwrap_err();
    assert!(matches!(bad.kind(), OpenErrorKind::InvalidOptions(_)), "{bad}");
    let table_name = ShmName::new("cache-settings-table");
    let _table =
        ShmHashTable::<u64, u64>::options().capacity(8).open(&table_name.backing()).unwrap();
    let as_cache = Cache::options().open(&table_name.backing()).unwrap_err();
    assert!(matches!(as_cache.kind(), OpenErrorKind::KindMismatch { .. }), "{as_cache}");
}
