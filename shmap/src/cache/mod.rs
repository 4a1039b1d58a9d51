//! [`ShmCache`]: a hash table in shared memory whose entries expire (TTL) and are evicted,
//! CLOCK-style, when the cache holds its maximum number of entries.
//!
//! A cache is a [`ShmHashTable`] of stamped entries ([`entry`]): each value is stored behind a
//! meta word with its expiry and a referenced bit, read and written with the value by the
//! table's seqlock reads and visits, so everything the table guarantees holds for the cache
//! (per-key linearisable operations, bounded waits, recovery of dead holders). On top of it:
//!
//! - **Expiry** is checked by every read against the coarse real-time clock ([`clock`]): an
//!   expired entry is absent to every read at once. Its slot is reclaimed lazily: by the next
//!   write of its key, by the eviction hand when it passes, and by
//!   [`flush_expired`](ShmCache::flush_expired). A handle may instead read a word that a
//!   thread of its process refreshes ([`ReadClock::Ticked`], [`ticker`]): a load instead of a
//!   clock call per read, for entries seen up to a period late.
//! - **Eviction** ([`evict`]) removes entries that were not used recently, with the hand of
//!   the CLOCK algorithm, when an insert of a new key finds the cache over `max_entries` (or
//!   the table full): a lookup sets the entry's referenced bit only when it is clear, so a hot
//!   key costs no store and reads keep scaling across processes.
//!
//! The settings (default TTL, entry limit, policy) are recorded in the segment header by the
//! creator ([`CacheSettings`]); a plain [`ShmHashTable`] has none of this and pays nothing
//! for it.

mod clock;
mod entry;
mod evict;
mod options;
mod settings;
mod stats;
mod ticker;

use std::fmt;
use std::time::Duration;

pub use clock::ReadClock;
pub use options::CacheOptions;
pub use settings::{CacheSettings, EvictionPolicy};
pub use stats::CacheStats;

use crate::bytes;
use crate::error::OpenError;
use crate::hash::{DefaultHasher, ShmHasher};
use crate::layout::{ShmKey, ShmValue};
use crate::segment::{Backing, CreateMode, Segment, SegmentInfo};
use crate::table::{AccessMode, ShmHashTable, TableError, VisitError, Visited};
use clock::{Clock, TimeWord};
use entry::{Meta, REFERENCED, Stamped};
use evict::{Examined, HandBatch, Room};

/// When an entry expires, as [`ShmCache::ttl_remaining`] reports it.
///
/// # Examples
///
/// ```
/// use shmap::Expiry;
/// use std::time::Duration;
///
/// assert_eq!(Expiry::In(Duration::from_millis(1500)).to_string(), "expires in 1500 ms");
/// assert_eq!(Expiry::Never.to_string(), "never expires");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expiry {
    /// The entry has no expiry (inserted without a TTL, or [`persist`](ShmCache::persist)ed).
    Never,
    /// The entry expires after this much more time (whole milliseconds).
    In(Duration),
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expiry::Never => f.write_str("never expires"),
            Expiry::In(d) => write!(f, "expires in {} ms", d.as_millis()),
        }
    }
}

/// The expiry instant of an entry written at `now_ms` with `ttl` (0: never). A TTL is capped
/// at the largest one a cache records (about 35 years); a zero TTL expires at `now_ms`.
fn expiry_after(now_ms: u64, ttl: Option<Duration>) -> u64 {
    match ttl {
        None => 0,
        Some(ttl) => {
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).min(settings::MAX_TTL_MS);
            now_ms.saturating_add(ms).max(1)
        }
    }
}

/// A cache from `K` to `V` in shared memory, for many processes and threads: a
/// [`ShmHashTable`] whose entries expire after a time to live and are evicted, least
/// recently used first (approximately: CLOCK), when it holds `max_entries`.
///
/// - Reads ([`get`](Self::get), [`contains_key`](Self::contains_key),
///   [`ttl_remaining`](Self::ttl_remaining)) take no lock. An expired entry is absent to them
///   from its expiry instant on (to the coarse clock's tick, see [`CacheSettings`]); with
///   [`ReadClock::Ticked`], from up to a period later, for a cheaper read.
/// - [`insert`](Self::insert) gives the entry the cache's default TTL,
///   [`insert_with_ttl`](Self::insert_with_ttl) one of its own; [`touch`](Self::touch)
///   restarts the default TTL, [`persist`](Self::persist) removes the expiry.
/// - An insert of a new key into a cache that holds more than `max_entries` evicts an entry
///   that was not used recently; one that finds the table full reclaims an expired entry (or,
///   with an entry limit, evicts one) and tries again. Eviction never takes a locked slot and
///   never waits on one.
/// - [`stats`](Self::stats) counts entries, evictions, expirations and recoveries.
///
/// Expiries are wall-clock instants (milliseconds since the Unix epoch), so every process of
/// the host agrees on them, and a file-backed cache keeps them across a reboot: entries due
/// before the host came back are expired when it does. A step of the system clock moves every
/// expiry by the step.
///
/// The value type must be aligned to at most 8 bytes (every type but `u128` and `i128`, which
/// can be stored as `[u64; 2]`); a cache slot holds 8 bytes more than a table's. The check is
/// made when the cache's code is generated: `cargo build` reports it, `cargo check` does not.
///
/// As in a table, a process killed while it writes a value back (an `insert` over an existing
/// key, an `update`, a `touch`) leaves the slot to be recovered; without undo records the
/// recovery releases what was written so far, counted as torn in [`stats`](Self::stats), and
/// since the expiry is the entry's first word, a torn entry may pair the new expiry with the
/// old value or the reverse. Caches whose entries must survive such a kill whole should be
/// created with [`CacheOptions::undo_records`]`(true)` (a value's worth of bytes per slot).
///
/// With an entry limit, a process killed between an insert's claim and its commit, or between
/// a removal and its count, leaves the count one high until the slot is recovered or
/// [`recount`](Self::recount) runs; the cache then holds one entry fewer than its limit.
///
/// # Examples
///
/// ```
/// use shmap::{Backing, ShmCache};
/// use std::time::Duration;
///
/// # let name = format!("/shmap-doc-cache-{}", std::process::id());
/// let sessions = ShmCache::<u64, [u8; 16]>::options()
///     .capacity(1024)
///     .default_ttl(Duration::from_secs(600))
///     .max_entries(800)
///     .open(&Backing::shm(&name))?;
/// sessions.insert(&42, b"user=alice;ro=1 ")?;
/// assert_eq!(sessions.get(&42)?, Some(*b"user=alice;ro=1 "));
/// assert!(sessions.ttl_remaining(&42)?.is_some());
/// for id in 0..5_000 {
///     sessions.insert(&id, b"                ")?; // never full: old sessions are evicted
/// }
/// assert!(sessions.len() <= 800);
/// assert!(sessions.stats().evictions > 0);
/// # sessions.destroy()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ShmCache<K: ShmKey, V: ShmValue, H: ShmHasher = DefaultHasher> {
    table: ShmHashTable<K, Stamped<V>, H>,
    settings: CacheSettings,
    /// The referenced bit if lookups set it (only an eviction policy reads it), else 0: what a
    /// lookup expects in the meta word's expiry and referenced bits of an entry that needs no
    /// more thought (see [`is_live`](Self::is_live)).
    use_bit: u64,
    /// `EXPIRY_MASK | use_bit`, kept rather than recomputed on every lookup (3 instructions of
    /// about 90 per lookup, measured with callgrind).
    live_mask: u64,
    hand: HandBatch,
    /// The hand's step between slots (see [`evict`]).
    hand_stride: usize,
    /// The clock of writes, and of the reclaiming ones of maintenance.
    clock: Clock,
    /// The clock of lock-free reads ([`ReadClock`]).
    read_clock: Clock,
    /// Where lookups load the time from, if `read_clock` is a ticker's word: `read_clock.word()`,
    /// kept so that a lookup does not branch on the kind of clock (that branch and a test of
    /// the word cost the ticked get 5-6 %, see [`is_live`](Self::is_live)).
    read_word: Option<TimeWord>,
    /// What the opener asked for (the period, which `read_clock` does not keep).
    read_clock_choice: ReadClock,
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> fmt::Debug for ShmCache<K, V, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmCache")
            .field("backing", self.table.segment().backing())
            .field("capacity", &self.table.capacity())
            .field("settings", &self.settings)
            .field("read_clock", &self.read_clock_choice)
            .finish_non_exhaustive()
    }
}

impl<K: ShmKey, V: ShmValue> ShmCache<K, V, DefaultHasher> {
    /// Opens the existing POSIX shared-memory cache `name`, with the settings it was created
    /// with.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    /// use std::time::Duration;
    ///
    /// # let name = format!("/shmap-doc-cache-open-{}", std::process::id());
    /// let created = ShmCache::<u64, u64>::options()
    ///     .capacity(64)
    ///     .default_ttl(Duration::from_secs(5))
    ///     .open(&Backing::shm(&name))?;
    /// let opened = ShmCache::<u64, u64>::open(&name)?;
    /// assert_eq!(opened.settings(), created.settings());
    /// # created.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::options().create(CreateMode::OpenExisting).open(&Backing::shm(name))
    }
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> ShmCache<K, V, H> {
    /// Options to create or open a cache: capacity, default TTL, entry limit, backing.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    ///
    /// let c = ShmCache::<u32, u32>::options().capacity(100).max_entries(80).open(&Backing::Heap)?;
    /// assert_eq!((c.capacity(), c.settings().max_entries), (128, Some(80)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn options() -> CacheOptions<K, V, H> {
        CacheOptions::default()
    }

    fn from_table(
        table: ShmHashTable<K, Stamped<V>, H>,
        settings: CacheSettings,
        read_clock: ReadClock,
    ) -> Self {
        #[allow(clippy::let_unit_value)] // evaluates the check for this `V`
        let () = Stamped::<V>::CHECKED;
        let clock = match read_clock {
            ReadClock::PerRead => Clock::System,
            ReadClock::Ticked(period) => {
                ticker::request(period);
                Clock::Ticked
            }
        };
        ShmCache {
            hand_stride: evict::hand_stride(table.capacity()),
            table,
            use_bit: if settings.max_entries.is_some() { REFERENCED } else { 0 },
            live_mask: entry::EXPIRY_MASK
                | if settings.max_entries.is_some() { REFERENCED } else { 0 },
            settings,
            hand: HandBatch::default(),
            clock: Clock::System,
            read_word: clock.word(),
            read_clock: clock,
            read_clock_choice: read_clock,
        }
    }

    /// The shared hand word in the header.
    fn hand_word(&self) -> &std::sync::atomic::AtomicU64 {
        self.table.segment().clock_hand()
    }

    /// The value of `key`, if present and not expired, read without taking a lock (see
    /// [`ShmHashTable::get`]). Marks the entry used for the eviction policy (a store only the
    /// first time after the hand passed it).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    /// use std::time::Duration;
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(64).open(&Backing::Heap)?;
    /// c.insert_with_ttl(&1, &10, Duration::from_secs(60))?;
    /// assert_eq!(c.get(&1)?, Some(10));
    /// assert_eq!(c.get(&2)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline(always)]
    pub fn get(&self, key: &K) -> Result<Option<V>, TableError> {
        self.table.get_map(key, |index, entry| {
            self.is_live(index, entry.meta(), None).then_some(entry.value)
        })
    }

    /// Looks up many keys at once: `out[i]` receives what [`get`](Self::get) of `keys[i]`
    /// would return. Faster than a loop of `get`s: slots are prefetched ahead, as
    /// [`ShmHashTable::get_many`] does, and the clock is read once per 64 keys rather than
    /// once per key (a read of the clock costs as much as a lookup's cache miss when misses
    /// are in flight: see BENCHMARKS.md). An entry counts as expired from the clock reading
    /// of its group of 64 on, microseconds at most before its own lookup.
    ///
    /// # Panics
    /// If `keys` and `out` have different lengths.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    /// use std::time::Duration;
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(64).open(&Backing::Heap)?;
    /// c.insert(&1, &10)?;
    /// c.insert_with_ttl(&2, &20, Duration::ZERO)?; // expired
    /// let mut out = [None; 3];
    /// c.get_many(&[1, 2, 3], &mut out)?;
    /// assert_eq!(out, [Some(10), None, None]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many(&self, keys: &[K], out: &mut [Option<V>]) -> Result<(), TableError> {
        /// Keys looked up per clock reading.
        const PER_READING: usize = 64;
        assert_eq!(keys.len(), out.len(), "get_many: one output per key");
        let mut now = 0;
        self.table.get_many_indexed(keys, |i, found| {
            if i % PER_READING == 0 {
                now = self.read_clock.now_ms();
            }
            out[i] = found.and_then(|(index, entry)| {
                self.is_live(index, entry.meta(), Some(now)).then_some(entry.value)
            });
        })
    }

    /// Reads `key`'s entry if it is live (present and not expired), marking it used.
    #[inline(always)]
    fn read_live(&self, key: &K) -> Result<Option<Stamped<V>>, TableError> {
        self.table
            .get_map(key, |index, entry| self.is_live(index, entry.meta(), None).then_some(entry))
    }

    /// Whether the entry a lookup read from slot `index`, with meta word `meta`, is live at
    /// `now` (when `None`: at the time in the handle's word if it has one, else the clock's
    /// if the entry has an expiry), marking it used if lookups do.
    ///
    /// The inline path is short, and the rest goes out of line (`check_entry`, `mark_used`),
    /// so that a loop of lookups keeps enough of them in flight to overlap their cache misses
    /// (tested in line, the conditions cost a cache without a TTL 0.77-0.81x a table's speed;
    /// out of line 0.86-0.95x):
    /// - **With a word** ([`ReadClock::Ticked`]): one load of the word, one compare of the
    ///   expiry with it, one test of the referenced bit, and no branch taken for a live entry.
    ///   The word's [`NO_TIME`](clock::NO_TIME) (no time stored yet) folds into the compare:
    ///   every entry that expires then compares as expired, and the out-of-line check reads
    ///   the clock (a separate test of the word cost the ticked get 5-6 %: 0.79 -> 0.84x a
    ///   table's speed at 1M keys without it).
    /// - **Without** ([`ReadClock::PerRead`]): the common entry (no expiry, and already
    ///   referenced when lookups mark use) is told by one test of the meta word; any other
    ///   goes out of line, where reading the clock costs about what the lookup does.
    #[inline(always)]
    fn is_live(&self, index: usize, meta: Meta, now: Option<u64>) -> bool {
        match (now, &self.read_word) {
            (Some(now), _) => self.live_at(index, meta, now),
            (None, Some(word)) if meta.expired_at(word.load()) => self.check_entry(index, meta),
            (None, Some(_)) => {
                if !meta.0 & self.use_bit != 0 {
                    self.mark_used(index);
                }
                true
            }
            (None, None) if meta.0 & self.live_mask == self.use_bit => true,
            (None, None) => self.check_entry(index, meta),
        }
    }

    /// [`is_live`](Self::is_live) out of line: reads the time (the word's if it holds one, or
    /// the clock) if the entry has an expiry.
    #[inline(never)]
    fn check_entry(&self, index: usize, meta: Meta) -> bool {
        let now = if meta.expires_ms().is_some() { self.read_clock.now_ms() } else { 0 };
        self.live_at(index, meta, now)
    }

    /// Whether the entry is live at `now`, marking it used if lookups do and it is not marked.
    #[inline(always)]
    fn live_at(&self, index: usize, meta: Meta, now: u64) -> bool {
        let live = !meta.expired_at(now);
        if live & (!meta.0 & self.use_bit != 0) {
            self.mark_used(index);
        }
        live
    }

    /// Sets slot `index`'s referenced bit (it held our entry a moment ago; if another key has
    /// taken the slot since, that key gets the bit: a harmless error of the approximation).
    #[cold]
    fn mark_used(&self, index: usize) {
        // Relaxed: a hint for the hand; nothing is published through it.
        self.table.raw().slot(index).value[0]
            .fetch_or(REFERENCED, crate::sync::primitive::Ordering::Relaxed);
    }

    /// Whether `key` is present and not expired (a lock-free read, like [`get`](Self::get)).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(64).open(&Backing::Heap)?;
    /// c.insert(&1, &1)?;
    /// assert!(c.contains_key(&1)? && !c.contains_key(&2)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains_key(&self, key: &K) -> Result<bool, TableError> {
        Ok(self.read_live(key)?.is_some())
    }

    /// When `key`'s entry expires: `None` if the key is absent or expired.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, Expiry, ShmCache};
    /// use std::time::Duration;
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(64).open(&Backing::Heap)?;
    /// c.insert(&1, &1)?; // no default TTL
    /// assert_eq!(c.ttl_remaining(&1)?, Some(Expiry::Never));
    /// c.insert_with_ttl(&2, &2, Duration::from_secs(30))?;
    /// assert!(matches!(c.ttl_remaining(&2)?, Some(Expiry::In(d)) if d <= Duration::from_secs(30)));
    /// assert_eq!(c.ttl_remaining(&3)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ttl_remaining(&self, key: &K) -> Result<Option<Expiry>, TableError> {
        self.table.get_map(key, |index, entry| {
            let meta = entry.meta();
            // One reading of the time both decides liveness and measures what remains.
            let now = if meta.expires_ms().is_some() { self.read_clock.now_ms() } else { 0 };
            self.is_live(index, meta, Some(now)).then(|| match meta.expires_ms() {
                None => Expiry::Never,
                // Live at `now`: `at > now`.
                Some(at) => Expiry::In(Duration::from_millis(at - now)),
            })
        })
    }

    /// Sets `key`'s value, with the cache's default TTL (none if it has none), and returns the
    /// live value it replaced (`None` for a new key, or one whose entry had expired).
    ///
    /// An insert of a new key into a cache over its `max_entries` evicts an entry; one that
    /// finds the table full first reclaims room (see [`ShmCache`]).
    ///
    /// # Errors
    /// [`TableError::TableFull`] only when the table is full of entries that cannot be
    /// reclaimed: without an entry limit, live ones; with one, locked ones.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(64).open(&Backing::Heap)?;
    /// assert_eq!(c.insert(&1, &10)?, None);
    /// assert_eq!(c.insert(&1, &11)?, Some(10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert(&self, key: &K, value: &V) -> Result<Option<V>, TableError> {
        self.insert_expiring(key, value, self.settings.default_ttl)
    }

    /// Sets `key`'s value with a TTL of its own (whole milliseconds; zero expires it at
    /// once), and returns the live value it replaced.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    /// use std::time::Duration;
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(64).open(&Backing::Heap)?;
    /// c.insert_with_ttl(&1, &10, Duration::from_millis(20))?;
    /// assert_eq!(c.get(&1)?, Some(10));
    /// std::thread::sleep(Duration::from_millis(40)); // two ticks of the coarse clock, at least
    /// assert_eq!(c.get(&1)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert_with_ttl(
        &self,
        key: &K,
        value: &V,
        ttl: Duration,
    ) -> Result<Option<V>, TableError> {
        self.insert_expiring(key, value, Some(ttl))
    }

    fn insert_expiring(
        &self,
        key: &K,
        value: &V,
        ttl: Option<Duration>,
    ) -> Result<Option<V>, TableError> {
        let old = self.write(key, true, |entry, fresh, now| {
            let old = (!fresh).then(|| bytes::copy(&entry.value));
            *entry = Stamped::new(Meta::new(expiry_after(now, ttl)), bytes::copy(value));
            old
        })?;
        Ok(old.flatten())
    }

    /// `key`'s live value; if the key is absent or expired, inserts `make()` (with the default
    /// TTL) first: `make` runs only then, under the slot's lock, so processes racing on one
    /// key insert one value.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(64).open(&Backing::Heap)?;
    /// assert_eq!(c.get_or_insert_with(&3, || 30)?, 30);
    /// assert_eq!(c.get_or_insert_with(&3, || unreachable!())?, 30);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_or_insert_with(&self, key: &K, make: impl FnOnce() -> V) -> Result<V, TableError> {
        if let Some(value) = self.get(key)? {
            return Ok(value);
        }
        let ttl = self.settings.default_ttl;
        let out = self.write(key, true, |entry, fresh, now| {
            if fresh {
                *entry = Stamped::new(Meta::new(expiry_after(now, ttl)), make());
            }
            bytes::copy(&entry.value)
        })?;
        Ok(out.expect("an insert runs its visitor"))
    }

    /// Locks `key`'s slot and runs `visitor(&mut value, is_new)` on a copy of its live value,
    /// written back when it returns (the table's [`visit`](ShmHashTable::visit), one-argument
    /// and infallible). With [`AccessMode::CreateIfMiss`] an absent or expired key is inserted
    /// with a zeroed value and the default TTL, for the visitor to initialise (`is_new`);
    /// with [`AccessMode::AccessExist`] it is left absent (`None`, and the visitor does not
    /// run). A visit keeps the entry's expiry and marks it used.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{AccessMode, Backing, ShmCache};
    ///
    /// let hits = ShmCache::<u64, u32>::options().capacity(64).open(&Backing::Heap)?;
    /// let count = |client| hits.visit(&client, AccessMode::CreateIfMiss, |n, _| { *n += 1; *n });
    /// assert_eq!((count(7)?, count(7)?), (Some(1), Some(2)));
    /// assert_eq!(hits.visit(&8, AccessMode::AccessExist, |n, _| *n)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn visit<R>(
        &self,
        key: &K,
        mode: AccessMode,
        visitor: impl FnOnce(&mut V, bool) -> R,
    ) -> Result<Option<R>, TableError> {
        let (create, ttl) = (mode == AccessMode::CreateIfMiss, self.settings.default_ttl);
        self.write(key, create, |entry, fresh, now| {
            if fresh {
                entry.set_meta(Meta::new(expiry_after(now, ttl)));
            }
            visitor(&mut entry.value, fresh)
        })
    }

    /// Runs `f` on `key`'s live value under its lock, keeping its expiry, and returns what `f`
    /// returned; `None` (and runs nothing) if the key is absent or expired.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    ///
    /// let hits = ShmCache::<u64, u64>::options().capacity(64).open(&Backing::Heap)?;
    /// hits.insert(&1, &41)?;
    /// assert_eq!(hits.update(&1, |n| { *n += 1; *n })?, Some(42));
    /// assert_eq!(hits.update(&2, |n| *n += 1)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn update<R>(&self, key: &K, f: impl FnOnce(&mut V) -> R) -> Result<Option<R>, TableError> {
        self.write(key, false, |entry, _, _| f(&mut entry.value))
    }

    /// Restarts `key`'s expiry at the cache's default TTL (an entry of a cache without one is
    /// left as it is) and marks it used. Returns whether the key was present and live.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    /// use std::time::Duration;
    ///
    /// let c = ShmCache::<u64, u64>::options()
    ///     .capacity(64)
    ///     .default_ttl(Duration::from_secs(60))
    ///     .open(&Backing::Heap)?;
    /// c.insert_with_ttl(&1, &1, Duration::from_secs(1))?;
    /// assert!(c.touch(&1)?); // now 60 s again
    /// assert!(!c.touch(&2)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn touch(&self, key: &K) -> Result<bool, TableError> {
        let ttl = self.settings.default_ttl;
        let done = self.write(key, false, |entry, _, now| {
            if ttl.is_some() {
                entry.set_meta(entry.meta().with_expiry(expiry_after(now, ttl)));
            }
        })?;
        Ok(done.is_some())
    }

    /// Gives `key`'s entry a new TTL from now (zero expires it at once). Returns whether the
    /// key was present and live.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, Expiry, ShmCache};
    /// use std::time::Duration;
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(64).open(&Backing::Heap)?;
    /// c.insert(&1, &1)?;
    /// assert!(c.set_ttl(&1, Duration::from_secs(9))?);
    /// assert!(matches!(c.ttl_remaining(&1)?, Some(Expiry::In(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_ttl(&self, key: &K, ttl: Duration) -> Result<bool, TableError> {
        let done = self.write(key, false, |entry, _, now| {
            entry.set_meta(entry.meta().with_expiry(expiry_after(now, Some(ttl))));
        })?;
        Ok(done.is_some())
    }

    /// Removes `key`'s expiry: the entry stays until it is removed or evicted. Returns whether
    /// the key was present and live.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, Expiry, ShmCache};
    /// use std::time::Duration;
    ///
    /// let c = ShmCache::<u64, u64>::options()
    ///     .capacity(64)
    ///     .default_ttl(Duration::from_secs(1))
    ///     .open(&Backing::Heap)?;
    /// c.insert(&1, &1)?;
    /// assert!(c.persist(&1)?);
    /// assert_eq!(c.ttl_remaining(&1)?, Some(Expiry::Never));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn persist(&self, key: &K) -> Result<bool, TableError> {
        let done = self.write(key, false, |entry, _, _| {
            entry.set_meta(entry.meta().with_expiry(0));
        })?;
        Ok(done.is_some())
    }

    /// Removes `key` and returns its live value (`None` if it was absent or expired; an
    /// expired entry is removed all the same). Linearisable like [`ShmHashTable::remove`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(64).open(&Backing::Heap)?;
    /// c.insert(&1, &10)?;
    /// assert_eq!(c.remove(&1)?, Some(10));
    /// assert_eq!(c.remove(&1)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove(&self, key: &K) -> Result<Option<V>, TableError> {
        let Some(entry) = self.table.remove(key)? else { return Ok(None) };
        if entry.meta().expired_at(self.clock.now_ms()) {
            self.count_expired(1);
            return Ok(None);
        }
        Ok(Some(entry.value))
    }

    /// Reclaims every expired entry now (without waiting on locked slots, which are left for
    /// later), and returns how many it reclaimed. Expired entries are also reclaimed lazily;
    /// call this from a housekeeping thread or a monitor process to free their slots sooner.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    /// use std::time::Duration;
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(64).open(&Backing::Heap)?;
    /// c.insert_with_ttl(&1, &1, Duration::ZERO)?; // expired at once
    /// c.insert(&2, &2)?;
    /// assert_eq!(c.flush_expired(), 1);
    /// assert_eq!((c.len(), c.stats().expirations), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush_expired(&self) -> usize {
        let now = self.clock.now_ms();
        (0..self.capacity()).filter(|&i| self.examine(i, now, false) == Examined::Expired).count()
    }

    /// A lock-free iteration over the live entries, as copies of `(key, value)` in slot order,
    /// with [`ShmHashTable::iter`]'s guarantee (every key present and live throughout is
    /// yielded exactly once); entries expired when the iteration reaches them are skipped.
    /// Reading does not mark entries used.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    /// use std::time::Duration;
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(16).open(&Backing::Heap)?;
    /// c.insert(&1, &10)?;
    /// c.insert_with_ttl(&2, &20, Duration::ZERO)?; // expired
    /// let live: Vec<(u64, u64)> = c.iter().collect::<Result<_, _>>()?;
    /// assert_eq!(live, [(1, 10)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = Result<(K, V), TableError>> + '_ {
        self.table.iter().filter_map(move |entry| match entry {
            // The clock read as each entry is reached: an iteration may be slow.
            Ok((_, e))
                if e.meta().expires_ms().is_some_and(|at| at <= self.read_clock.now_ms()) =>
            {
                None
            }
            Ok((key, e)) => Some(Ok((key, e.value))),
            Err(e) => Some(Err(e)),
        })
    }

    /// Evicts one entry now, the one the policy would evict next (an expired entry the hand
    /// meets first goes instead), and returns its key; `None` if the hand found none in two
    /// laps of the slots (every entry locked). Works with or without an entry limit: the
    /// Perl peer's `pop`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(8).open(&Backing::Heap)?;
    /// c.insert(&1, &10)?;
    /// assert_eq!(c.evict(), Some(1)); // the hand's first lap only cleared its referenced bit
    /// assert_eq!((c.get(&1)?, c.evict()), (None, None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn evict(&self) -> Option<K> {
        self.sweep(self.full_sweep(), true).1
    }

    /// Visits `key` under its lock (inserting it if `create`) and runs `f(entry, fresh, now)`
    /// on a copy of its entry: `fresh` when the key is new or its entry had expired (then a
    /// zeroed entry, which `f` must fill), `now` the clock read under the lock (so that an
    /// entry that expired while the visit waited for the lock is seen expired, and a new
    /// expiry counts from the moment it is written). An expired entry met without `create` is
    /// reclaimed and reported absent (`None`). After an insert of a new key, enforces the entry
    /// limit; an insert that finds the table full makes room and tries again.
    fn write<R>(
        &self,
        key: &K,
        create: bool,
        f: impl FnOnce(&mut Stamped<V>, bool, u64) -> R,
    ) -> Result<Option<R>, TableError> {
        let mode = if create { AccessMode::CreateIfMiss } else { AccessMode::AccessExist };
        let mut f = Some(f);
        let mut out = None;
        let mut stale = false;
        let mut deadline = None;
        let visited = loop {
            let visit = self.table.visit(key, mode, |_, entry, is_new| {
                let now = self.clock.now_ms();
                stale = !is_new && entry.meta().expired_at(now);
                if stale && !create {
                    return false; // absent: leave the entry for the removal below
                }
                if stale {
                    *entry = bytes::zeroed();
                }
                let f = f.take().expect("a visit runs its visitor once");
                out = Some(f(entry, is_new || stale, now));
                // A write is a use: keep the bit set, whatever the visitor stored.
                entry.set_meta(Meta(entry.meta().0 | REFERENCED));
                true
            });
            match visit {
                Ok(visited) => break visited,
                Err(VisitError::VisitorFailed(_)) => {
                    let now = self.clock.now_ms();
                    if self.table.remove_if(key, |e| e.meta().expired_at(now))?.is_some() {
                        self.count_expired(1);
                    }
                    return Ok(None);
                }
                Err(VisitError::Table(TableError::TableFull { capacity })) => {
                    // Other processes may take the room we make before our retry, or make
                    // some themselves: retry until the handle's timeout, and give up early
                    // only when a whole sweep saw nothing but live entries it may not evict.
                    let deadline = *deadline
                        .get_or_insert_with(|| std::time::Instant::now() + self.table.timeout());
                    if self.make_room() == Room::None || std::time::Instant::now() >= deadline {
                        return Err(TableError::TableFull { capacity });
                    }
                    std::thread::yield_now();
                }
                Err(VisitError::Table(e)) => return Err(e),
            }
        };
        if stale {
            self.count_expired(1); // replaced in place: reclaimed by this write
        }
        if visited == Visited::Created {
            self.after_insert();
        }
        Ok(out)
    }

    /// After an insert of a new key: evicts one entry if the cache is over its limit; without
    /// a limit, reclaims an expired entry near the hand once the table is 7/8 full.
    fn after_insert(&self) {
        /// Slots a TTL-only cache's insert examines for an expired entry.
        const SWEEP: usize = 32;
        match self.settings.max_entries {
            Some(max) => {
                // At most two: one for this insert, one for a count left high by inserts that
                // raced with ours (or by evictions that found nothing).
                for _ in 0..2 {
                    if self.table.len() as u64 <= max || !self.run_hand(self.full_sweep()) {
                        break;
                    }
                }
            }
            None if self.settings.default_ttl.is_some()
                && self.table.len() >= self.capacity() / 8 * 7 =>
            {
                self.run_hand(SWEEP);
            }
            None => {}
        }
    }

    fn count_expired(&self, n: u64) {
        self.table.segment().count_reclaimed(self.table.segment().owner().ok(), 0, n);
    }

    /// The number of entries, as [`ShmHashTable::len`] counts them: expired entries count
    /// until they are reclaimed.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(64).open(&Backing::Heap)?;
    /// c.insert(&1, &1)?;
    /// assert_eq!(c.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Counts the entries slot by slot and corrects the counters behind [`len`](Self::len)
    /// (after a crash, say), as [`ShmHashTable::recount`] does. Returns the count.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(16).open(&Backing::Heap)?;
    /// c.insert(&1, &1)?;
    /// assert_eq!(c.recount()?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recount(&self) -> Result<usize, TableError> {
        self.table.recount()
    }

    /// Whether [`len`](Self::len) is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    ///
    /// assert!(ShmCache::<u64, u64>::options().capacity(8).open(&Backing::Heap)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of slots.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    ///
    /// assert_eq!(ShmCache::<u64, u64>::options().capacity(1000).open(&Backing::Heap)?.capacity(), 1024);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// The settings the cache was created with.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(8).max_entries(6).open(&Backing::Heap)?;
    /// assert_eq!(c.settings().max_entries, Some(6));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn settings(&self) -> CacheSettings {
        self.settings
    }

    /// How this handle's reads tell the time (see [`CacheOptions::read_clock`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ReadClock, ShmCache};
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(8).open(&Backing::Heap)?;
    /// assert_eq!(c.read_clock(), ReadClock::PerRead);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_clock(&self) -> ReadClock {
        self.read_clock_choice
    }

    /// What the segment header says (creator, layouts, sizes, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache, StructureKind};
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(8).open(&Backing::Heap)?;
    /// assert_eq!(c.info().kind, StructureKind::Cache);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn info(&self) -> SegmentInfo {
        self.table.info()
    }

    /// The segment under the cache.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(8).open(&Backing::Heap)?;
    /// assert_eq!(c.segment().attached_processes().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn segment(&self) -> &Segment {
        self.table.segment()
    }

    /// Removes the cache's name; handles that have it open keep using it (see
    /// [`ShmHashTable::destroy`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    ///
    /// # let name = format!("/shmap-doc-cache-destroy-{}", std::process::id());
    /// let c = ShmCache::<u64, u64>::options().capacity(8).open(&Backing::shm(&name))?;
    /// c.destroy()?;
    /// assert!(ShmCache::<u64, u64>::open(&name).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn destroy(&self) -> Result<(), OpenError> {
        self.table.destroy()
    }
}

#[cfg(test)]
impl<K: ShmKey, V: ShmValue, H: ShmHasher> ShmCache<K, V, H> {
    /// Makes the cache read the time from `clock` (tests only): lookups read it out of line
    /// for an entry that expires, like a handle with [`ReadClock::PerRead`].
    pub(crate) fn with_manual_clock(
        mut self,
        clock: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        self.read_clock = Clock::Manual(clock.clone());
        self.read_word = None;
        self.clock = Clock::Manual(clock);
        self
    }

    /// [`with_manual_clock`](Self::with_manual_clock), with lookups that load `clock` as their
    /// word in line, like a handle with [`ReadClock::Ticked`] (tests only).
    #[cfg_attr(shmap_loom, allow(dead_code))] // the loom models read the clock
    pub(crate) fn with_manual_word(
        self,
        clock: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) -> Self {
        let mut c = self.with_manual_clock(clock);
        c.read_word = c.read_clock.word();
        c
    }

    /// The underlying table (tests only).
    pub(crate) fn table(&self) -> &ShmHashTable<K, Stamped<V>, H> {
        &self.table
    }
}

#[cfg(all(test, shmap_loom))]
mod loom_tests;
#[cfg(all(test, not(shmap_loom)))]
mod tests;
