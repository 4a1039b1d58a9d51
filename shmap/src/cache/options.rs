//! How to create or open a cache: [`CacheOptions`].

use std::fmt;
use std::time::Duration;

use crate::cache::entry::Stamped;
use crate::cache::{CacheSettings, EvictionPolicy, ReadClock, ShmCache};
use crate::error::{OpenError, OpenErrorKind};
use crate::hash::{DefaultHasher, ShmHasher};
use crate::layout::{ShmKey, ShmValue};
use crate::segment::{Backing, CreateMode, StructureKind};

use crate::table::TableOptions;

/// How to create or open a [`ShmCache`]: the table's options (capacity, timeouts,
/// permissions) and the cache's settings (default TTL, entry limit).
///
/// The settings are recorded in the segment when it is created. An open that gives none of
/// them adopts the segment's; one that gives any must match them all (the others at their
/// defaults: no TTL, no limit, CLOCK), or fails with
/// [`CacheMismatch`](crate::OpenErrorKind::CacheMismatch).
///
/// # Examples
///
/// ```
/// use shmap::{Backing, OpenErrorKind, ShmCache};
/// use std::time::Duration;
///
/// # let name = format!("/shmap-doc-cache-options-{}", std::process::id());
/// let opts = || ShmCache::<u64, u64>::options().capacity(1024).default_ttl(Duration::from_secs(30));
/// let a = opts().max_entries(900).open(&Backing::shm(&name))?;
/// let b = opts().max_entries(900).open(&Backing::shm(&name))?; // the same settings: fine
/// let err = opts().open(&Backing::shm(&name)).unwrap_err(); // no limit: another cache
/// assert!(matches!(err.kind(), OpenErrorKind::CacheMismatch { .. }), "{err}");
/// # a.destroy()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CacheOptions<K: ShmKey, V: ShmValue, H: ShmHasher = DefaultHasher> {
    table: TableOptions<K, Stamped<V>, H>,
    settings: CacheSettings,
    /// Whether any setting was given (else an open adopts the segment's).
    given: bool,
    /// The capacity asked for, to check `max_entries` against before creating.
    requested: Option<usize>,
    read_clock: ReadClock,
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> Default for CacheOptions<K, V, H> {
    fn default() -> Self {
        CacheOptions {
            table: TableOptions::default(),
            settings: CacheSettings::default(),
            given: false,
            requested: None,
            read_clock: ReadClock::PerRead,
        }
    }
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> Clone for CacheOptions<K, V, H> {
    fn clone(&self) -> Self {
        CacheOptions {
            table: self.table.clone(),
            settings: self.settings,
            given: self.given,
            requested: self.requested,
            read_clock: self.read_clock,
        }
    }
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> fmt::Debug for CacheOptions<K, V, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheOptions")
            .field("table", &self.table)
            .field("settings", &self.settings)
            .field("given", &self.given)
            .field("read_clock", &self.read_clock)
            .finish()
    }
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> CacheOptions<K, V, H> {
    /// The number of slots, rounded up to a power of two (see [`TableOptions::capacity`]).
    /// Required to create a cache.
    pub fn capacity(mut self, slots: usize) -> Self {
        self.table = self.table.capacity(slots);
        self.requested = Some(slots);
        self
    }

    /// At least `slots` slots (see [`TableOptions::min_capacity`]).
    pub fn min_capacity(mut self, slots: usize) -> Self {
        self.table = self.table.min_capacity(slots);
        self.requested = Some(slots);
        self
    }

    /// How long an entry inserted without a TTL of its own lives: whole milliseconds, from
    /// 1 ms to 2^40 ms (default: such entries never expire).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.settings.default_ttl = Some(ttl);
        self.given = true;
        self
    }

    /// The number of entries past which an insert of a new key evicts one, from 1 to the
    /// capacity (default: no limit). Linear probing slows down as the table fills: a limit
    /// of about 80 % of the capacity keeps lookups short; the capacity itself evicts only
    /// when the table is full.
    pub fn max_entries(mut self, max: u64) -> Self {
        self.settings.max_entries = Some(max);
        self.given = true;
        self
    }

    /// How the entry to evict is chosen (default and only: [`EvictionPolicy::Clock`]).
    pub fn policy(mut self, policy: EvictionPolicy) -> Self {
        self.settings.policy = policy;
        self.given = true;
        self
    }

    /// How this handle's reads tell the time (default: [`ReadClock::PerRead`]). A choice of
    /// the handle, not recorded in the segment. [`ReadClock::Ticked`] takes a period from
    /// 1 ms to 1 s; another is refused with [`InvalidOptions`](OpenErrorKind::InvalidOptions).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, OpenErrorKind, ReadClock, ShmCache};
    /// use std::time::Duration;
    ///
    /// let ticked = ReadClock::Ticked(Duration::from_millis(1));
    /// let c = ShmCache::<u64, u64>::options().capacity(8).read_clock(ticked).open(&Backing::Heap)?;
    /// assert_eq!(c.read_clock(), ticked);
    /// let too_fast = ReadClock::Ticked(Duration::from_micros(10));
    /// let err = ShmCache::<u64, u64>::options().capacity(8).read_clock(too_fast).open(&Backing::Heap);
    /// assert!(matches!(err.unwrap_err().kind(), OpenErrorKind::InvalidOptions(_)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_clock(mut self, clock: ReadClock) -> Self {
        self.read_clock = clock;
        self
    }

    /// The default timeout of this handle's blocking operations (see
    /// [`TableOptions::timeout`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.table = self.table.timeout(timeout);
        self
    }

    /// Whether each slot keeps an undo record (see [`TableOptions::undo_records`]).
    pub fn undo_records(mut self, undo: bool) -> Self {
        self.table = self.table.undo_records(undo);
        self
    }

    /// Whether a panicking visitor leaves the value as it was (see
    /// [`TableOptions::rollback`]; default `true`).
    pub fn rollback(mut self, rollback: bool) -> Self {
        self.table = self.table.rollback(rollback);
        self
    }

    /// Whether an open may create the cache (see [`CreateMode`]).
    pub fn create(mut self, create: CreateMode) -> Self {
        self.table = self.table.create(create);
        self
    }

    /// The permission bits of a created segment (see [`TableOptions::mode`]).
    pub fn mode(mut self, mode: u32) -> Self {
        self.table = self.table.mode(mode);
        self
    }

    /// Creates or opens the cache at `backing`.
    pub fn open(self, backing: &Backing) -> Result<ShmCache<K, V, H>, OpenError> {
        let fail = |kind| OpenError::new(backing, kind);
        if let ReadClock::Ticked(period) = self.read_clock {
            let (min, max) = (super::ticker::MIN_PERIOD, super::ticker::MAX_PERIOD);
            if !(min..=max).contains(&period) {
                return Err(fail(OpenErrorKind::InvalidOptions(format!(
                    "a ticked read clock's period must be from {min:?} to {max:?}, found \
                     {period:?}"
                ))));
            }
        }
        if self.given {
            // Before anything is created: against the capacity asked for (a larger one that
            // is adopted only has more room).
            let capacity = self.requested.map_or(crate::segment::MAX_CAPACITY, |n| {
                n.checked_next_power_of_two().map_or(u64::MAX, |n| n as u64)
            });
            self.settings
                .check(capacity)
                .map_err(|why| fail(OpenErrorKind::InvalidOptions(why)))?;
        }
        let table = self.table.open_as(StructureKind::Cache, self.settings.to_params(), backing)?;
        let params = table.segment().params();
        let found = CacheSettings::from_params(params)
            .filter(|found| found.check(table.capacity() as u64).is_ok())
            .ok_or_else(|| {
                fail(OpenErrorKind::InvalidHeader {
                    field: "cache settings",
                    expected: "a TTL of at most 2^40 ms, at most as many entries as slots, and a \
                               known policy"
                        .into(),
                    found: params[0],
                })
            })?;
        if self.given && found != self.settings {
            return Err(fail(OpenErrorKind::CacheMismatch {
                expected: Box::new(self.settings),
                found: Box::new(found),
            }));
        }
        Ok(ShmCache::from_table(table, found, self.read_clock))
    }
}
