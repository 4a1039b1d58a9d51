//! A cache's settings ([`CacheSettings`]): recorded in the segment header by the creator, so that
//! every process applies the same default TTL and entry limit, and compared by every opener
//! that asks for settings of its own.

use std::fmt;
use std::time::Duration;

/// How a cache chooses the entry to evict when it holds `max_entries`.
///
/// # Examples
///
/// ```
/// use shmap::EvictionPolicy;
///
/// assert_eq!(EvictionPolicy::default(), EvictionPolicy::Clock);
/// assert_eq!(EvictionPolicy::Clock.to_string(), "CLOCK");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EvictionPolicy {
    /// CLOCK (second chance), an approximation of least-recently-used: every entry has a
    /// referenced bit, set by a lookup when it is clear (so a hot key costs no store), and a
    /// hand shared by all processes sweeps the slots, clearing set bits and evicting the
    /// first entry whose bit is clear. Expired entries the hand meets go first.
    #[default]
    Clock,
}

impl EvictionPolicy {
    pub(crate) const fn code(self) -> u64 {
        match self {
            EvictionPolicy::Clock => 1,
        }
    }

    pub(crate) const fn from_code(code: u64) -> Option<Self> {
        match code {
            1 => Some(EvictionPolicy::Clock),
            _ => None,
        }
    }
}

impl fmt::Display for EvictionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvictionPolicy::Clock => f.write_str("CLOCK"),
        }
    }
}

/// What a cache does with its entries: their default time to live, and the number of entries
/// past which inserts evict. Recorded in the segment header when the cache is created.
///
/// # Examples
///
/// ```
/// use shmap::CacheSettings;
/// use std::time::Duration;
///
/// let s = CacheSettings { default_ttl: Some(Duration::from_secs(60)), ..CacheSettings::default() };
/// assert_eq!(s.to_string(), "default TTL 60000 ms, no entry limit");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CacheSettings {
    /// How long an entry inserted without a TTL of its own lives (whole milliseconds, at least
    /// one); `None`: such entries never expire.
    pub default_ttl: Option<Duration>,
    /// The number of entries past which an insert of a new key evicts one; `None`: the cache
    /// only makes room by reclaiming expired entries (and fails with `TableFull` when none is).
    pub max_entries: Option<u64>,
    /// How the entry to evict is chosen.
    pub policy: EvictionPolicy,
}

/// The largest TTL a cache records: 2^40 ms, about 35 years.
pub(crate) const MAX_TTL_MS: u64 = 1 << 40;

impl CacheSettings {
    /// The default TTL in whole milliseconds (0: none).
    pub(crate) fn default_ttl_ms(&self) -> u64 {
        self.default_ttl.map_or(0, |d| d.as_millis() as u64)
    }

    /// Checks the settings for a cache of `capacity` slots.
    pub(crate) fn check(&self, capacity: u64) -> Result<(), String> {
        if let Some(ttl) = self.default_ttl {
            let ms = ttl.as_millis();
            if ms == 0 || ms > u128::from(MAX_TTL_MS) || ttl.subsec_nanos() % 1_000_000 != 0 {
                return Err(format!(
                    "a default TTL is whole milliseconds from 1 ms to 2^40 ms, not {ttl:?}"
                ));
            }
        }
        if let Some(max) = self.max_entries {
            if max == 0 || max > capacity {
                return Err(format!(
                    "max_entries must be from 1 to the capacity ({capacity}), not {max}"
                ));
            }
        }
        Ok(())
    }

    /// The header words that record the settings.
    pub(crate) fn to_params(self) -> [u64; 4] {
        [self.default_ttl_ms(), self.max_entries.unwrap_or(0), self.policy.code(), 0]
    }

    /// The settings the header words record, or `None` if they are not a cache's.
    pub(crate) fn from_params(p: [u64; 4]) -> Option<Self> {
        let [ttl_ms, max_entries, policy, rest] = p;
        if ttl_ms > MAX_TTL_MS || rest != 0 {
            return None;
        }
        Some(CacheSettings {
            default_ttl: (ttl_ms != 0).then(|| Duration::from_millis(ttl_ms)),
            max_entries: (max_entries != 0).then_some(max_entries),
            policy: EvictionPolicy::from_code(policy)?,
        })
    }
}

impl CacheSettings {
    /// The settings a cache segment records, read without the cache's types (for monitors and
    /// the `shmap` command); `None` if the segment is not a cache or its settings are invalid.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, CacheSettings, ShmCache, ShmHashTable};
    ///
    /// let c = ShmCache::<u64, u64>::options().capacity(16).max_entries(12).open(&Backing::Heap)?;
    /// assert_eq!(CacheSettings::of(c.segment()).unwrap().max_entries, Some(12));
    /// let t = ShmHashTable::<u64, u64>::heap(16)?;
    /// assert_eq!(CacheSettings::of(t.segment()), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn of(segment: &crate::Segment) -> Option<CacheSettings> {
        if segment.info().kind != crate::StructureKind::Cache {
            return None;
        }
        Self::from_params(segment.params()).filter(|s| s.check(segment.capacity()).is_ok())
    }
}

impl fmt::Display for CacheSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.default_ttl {
            Some(ttl) => write!(f, "default TTL {} ms, ", ttl.as_millis())?,
            None => f.write_str("no default TTL, ")?,
        }
        match self.max_entries {
            Some(max) => write!(f, "at most {max} entries ({} eviction)", self.policy),
            None => f.write_str("no entry limit"),
        }
    }
}

#[cfg(all(test, not(shmap_loom)))]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_through_the_header_words() {
        let s = CacheSettings {
            default_ttl: Some(Duration::from_millis(1500)),
            max_entries: Some(900),
            policy: EvictionPolicy::Clock,
        };
        assert_eq!(CacheSettings::from_params(s.to_params()), Some(s));
        assert_eq!(s.to_string(), "default TTL 1500 ms, at most 900 entries (CLOCK eviction)");
        assert_eq!(CacheSettings::from_params([0; 4]), None, "a plain table's words");
        assert_eq!(CacheSettings::from_params([0, 0, 7, 0]), None, "an unknown policy");
    }

    #[test]
    fn bad_settings_are_refused_with_the_reason() {
        let ttl = |d| CacheSettings { default_ttl: Some(d), ..Default::default() };
        assert!(ttl(Duration::ZERO).check(64).unwrap_err().contains("whole milliseconds"));
        assert!(ttl(Duration::from_micros(1500)).check(64).is_err());
        let max = |n| CacheSettings { max_entries: Some(n), ..Default::default() };
        assert!(max(65).check(64).unwrap_err().contains("from 1 to the capacity (64), not 65"));
        assert!(max(0).check(64).is_err());
        assert!(max(64).check(64).is_ok());
        // The largest TTL, as `#[shm_table(ttl_ms = …)]` also accepts it (its ui tests).
        assert!(ttl(Duration::from_millis(1 << 40)).check(64).is_ok());
        assert!(ttl(Duration::from_millis((1 << 40) + 1)).check(64).is_err());
    }
}
