//! The entry count of a hash table, as counters in the segment header sharded by process and
//! thread: a writer adds to its own cache line and a reader sums them all, the scheme of
//! striped counters (Java's `LongAdder`, the per-CPU counters of Linux's `percpu_counter`), so
//! that counting never makes every writer of every process bounce one cache line.
//!
//! A counter changes right after the slot operation it counts (a commit of a new key, a
//! removal), not atomically with it: the sum is exact when no write is in flight, and a process
//! killed between the two leaves it off by one, until a recount (which scans the slots)
//! corrects it.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::process::OwnerId;
use crate::segment::Segment;

/// Counter shards: 64 cache lines (4 KiB) per segment.
pub(crate) const COUNT_SHARDS: usize = 64;

/// One shard on a cache line of its own: the entry count (as a wrapping two's-complement
/// `i64`), and a cache's eviction and expiry counts.
#[repr(C, align(64))]
pub(crate) struct CountLine {
    pub(crate) count: AtomicU64,
    /// Entries a cache evicted to make room (see `cache::evict`).
    pub(crate) evictions: AtomicU64,
    /// Expired entries a cache reclaimed.
    pub(crate) expirations: AtomicU64,
}

/// This thread's number, mixed into the shard index so that the threads of one process count
/// on different lines. Inline: one thread-local load on every insert and removal.
#[inline(always)]
fn thread_number() -> usize {
    thread_local!(static NUMBER: Cell<usize> = const { Cell::new(usize::MAX) });
    let v = NUMBER.get();
    if v != usize::MAX { v } else { first_thread_number(&NUMBER) }
}

/// Numbers the calling thread (its first count).
#[cold]
fn first_thread_number(number: &'static std::thread::LocalKey<Cell<usize>>) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let v = NEXT.fetch_add(1, Ordering::Relaxed);
    number.set(v);
    v
}

impl Segment {
    /// The shard that `owner`'s current thread counts on (a handle without an owner id counts
    /// as owner 0).
    #[inline(always)]
    fn count_shard(&self, owner: Option<OwnerId>) -> &AtomicU64 {
        &self.count_line(owner).count
    }

    /// The counter line that `owner`'s current thread counts on: line `9 × owner id + thread
    /// number` (mod 64). Nine is odd, so the first counting threads of 64 consecutive owner ids
    /// (many single-threaded worker processes) count on 64 different lines, and threads
    /// numbered below nine of neighbouring ids do not meet. Lines that do meet cost speed, not
    /// correctness: every count is a locked add.
    ///
    /// A single `lea`, not a multiplicative hash of the owner id: the index feeds the address
    /// of the locked add that follows an insert's claim, and with the hash's multiply in that
    /// chain an insert into a table of 1M keys ran 12–14 % slower than with a constant index
    /// (ten alternating pairs of the workload; BENCHMARKS.md, "Inserts against the table before
    /// removal").
    #[inline(always)]
    fn count_line(&self, owner: Option<OwnerId>) -> &CountLine {
        let spread = usize::from(owner.map_or(0, OwnerId::get)) * 9;
        &self.header().entry_counts[spread.wrapping_add(thread_number()) % COUNT_SHARDS]
    }

    /// Counts `n` evictions and `m` reclaimed expired entries of a cache, on the caller's shard.
    #[inline]
    pub(crate) fn count_reclaimed(&self, owner: Option<OwnerId>, evicted: u64, expired: u64) {
        let line = self.count_line(owner);
        // Relaxed: statistics; nothing is published through them.
        if evicted != 0 {
            line.evictions.fetch_add(evicted, Ordering::Relaxed);
        }
        if expired != 0 {
            line.expirations.fetch_add(expired, Ordering::Relaxed);
        }
    }

    /// A cache's evictions and reclaimed expired entries so far (0 for other structures): the
    /// sums of the counters every process adds to.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(8).max_entries(2).open(&Backing::Heap)?;
    /// for k in 0..5 {
    ///     c.insert(&k, &k)?;
    /// }
    /// assert_eq!(c.segment().reclaimed(), (3, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reclaimed(&self) -> (u64, u64) {
        self.header().entry_counts.iter().fold((0, 0), |(e, x), line| {
            // Relaxed: statistics.
            (
                e.wrapping_add(line.evictions.load(Ordering::Relaxed)),
                x.wrapping_add(line.expirations.load(Ordering::Relaxed)),
            )
        })
    }

    /// Adds `delta` (wrapping) to the entry count, on the caller's shard.
    #[inline(always)]
    pub(crate) fn add_entries(&self, owner: Option<OwnerId>, delta: i64) {
        // Relaxed: a statistic; nothing is published through it.
        self.count_shard(owner).fetch_add(delta as u64, Ordering::Relaxed);
    }

    /// Uncounts the entry of an insert whose holder died before it committed (its claim
    /// counted it, see `table::removal`), when a recoverer frees its slot. (A holder that died
    /// between its claim and the count leaves the count one short instead: `recount` fixes
    /// either.)
    pub(crate) fn uncount_abandoned_insert(&self) {
        self.add_entries(self.owner().ok(), -1);
    }

    /// The flag that says a hash-table slot was ever freed (see `table::removal`).
    #[cfg_attr(shmap_loom, allow(dead_code))] // under loom the flag is a modelled atomic
    pub(crate) fn slots_freed(&self) -> &AtomicU64 {
        &self.header().counters.slots_freed
    }

    /// A cache's CLOCK hand (see `cache::evict`).
    pub(crate) fn clock_hand(&self) -> &AtomicU64 {
        &self.header().counters.clock_hand
    }

    /// The sum of the shards (each read Relaxed, so the sum of a moment for each shard).
    pub(crate) fn entries(&self) -> i64 {
        self.header()
            .entry_counts
            .iter()
            .fold(0u64, |sum, line| sum.wrapping_add(line.count.load(Ordering::Relaxed)))
            as i64
    }
}
