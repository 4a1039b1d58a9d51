//! What a cache reports about itself: [`CacheStats`].

use std::fmt;

use crate::cache::ShmCache;
use crate::hash::ShmHasher;
use crate::layout::{ShmKey, ShmValue};
use crate::table::ProbeLengths;

/// A cache's statistics (see [`ShmCache::stats`]).
///
/// # Examples
///
/// ```
/// use shmap::{Backing, ShmCache};
///
/// let c = ShmCache::<u64, u64>::options().capacity(8).max_entries(4).open(&Backing::Heap)?;
/// for k in 0..10 {
///     c.insert(&k, &k)?;
/// }
/// let s = c.stats();
/// assert_eq!((s.entries, s.capacity, s.evictions), (4, 8, 6));
/// assert!(s.to_string().starts_with("4 of 8 slots hold entries (limit 4)"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Committed entries (expired ones included until they are reclaimed), counted slot by
    /// slot.
    pub entries: usize,
    /// Slots.
    pub capacity: usize,
    /// The entry limit, if the cache has one.
    pub max_entries: Option<u64>,
    /// Slots of removed, evicted or expired entries that inserts reuse.
    pub reusable: usize,
    /// Entries evicted to make room, since the cache was created.
    pub evictions: u64,
    /// Expired entries reclaimed (lazily, by the hand, or by `flush_expired`).
    pub expirations: u64,
    /// Locks of dead processes recovered.
    pub recoveries: u64,
    /// Of those, write-backs released without an undo record (values possibly torn).
    pub torn_recoveries: u64,
    /// How many slots lookups look at (see [`ProbeLengths`]).
    pub probes: ProbeLengths,
}

impl fmt::Display for CacheStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {} slots hold entries", self.entries, self.capacity)?;
        if let Some(max) = self.max_entries {
            write!(f, " (limit {max})")?;
        }
        write!(
            f,
            ", {} reusable; {} evicted, {} expired; {} recoveries ({} torn); probe mean {:.1}, max {}",
            self.reusable,
            self.evictions,
            self.expirations,
            self.recoveries,
            self.torn_recoveries,
            self.probes.hit_mean,
            self.probes.hit_max,
        )
    }
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> ShmCache<K, V, H> {
    /// The cache's statistics: one pass over the slots (no lock, no write), and the counters
    /// every process adds to. Entries that change during the pass count as the pass saw them.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmCache};
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(64).open(&Backing::Heap)?;
    /// c.insert(&1, &1)?;
    /// assert_eq!(c.stats().entries, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> CacheStats {
        let occupancy = self.table.erased().occupancy();
        let (evictions, expirations) = self.segment().reclaimed();
        let recoveries = self.segment().recoveries();
        CacheStats {
            entries: occupancy.entries,
            capacity: self.capacity(),
            max_entries: self.settings.max_entries,
            reusable: occupancy.reusable,
            evictions,
            expirations,
            recoveries: recoveries.total,
            torn_recoveries: recoveries.torn,
            probes: occupancy.probes.expect("a typed table knows its hasher"),
        }
    }
}
