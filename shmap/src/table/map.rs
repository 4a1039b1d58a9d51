//! The map API in the habits of `HashMap` and dashmap, on top of [`visit`](ShmHashTable::visit),
//! [`get`](ShmHashTable::get) and the lock-free removal of the slot protocol: each method is one
//! lock-free read, one visit or one removal per key, so it has their guarantees (a per-key
//! linearisable operation, bounded waits, recovery of dead holders) and nothing of its own to
//! prove.

use std::convert::Infallible;

use crate::bytes;
use crate::hash::ShmHasher;
use crate::layout::{ShmKey, ShmValue};
use crate::sync::backoff::Wait;
use crate::table::raw::Waiting;
use crate::table::removal::Removal;
use crate::table::{
    AccessMode, ShmHashTable, TableError, TravelControl, TravelOutcome, VisitError, Visited,
};

/// A visit whose visitor cannot fail fails only with the table's error.
fn table_error(e: VisitError<Infallible>) -> TableError {
    match e {
        VisitError::Table(e) => e,
        VisitError::VisitorFailed(never) => match never {},
    }
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> ShmHashTable<K, V, H> {
    /// Whether `key` has a committed value: a lock-free read, like [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// let t = ShmHashTable::<u64, u64>::heap(16)?;
    /// t.insert(&1, &10)?;
    /// assert!(t.contains_key(&1)?);
    /// assert!(!t.contains_key(&2)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains_key(&self, key: &K) -> Result<bool, TableError> {
        self.read(key, |_, _| ()).map(|found| found.is_some())
    }

    /// Sets `key`'s value to `value`, inserting the key if it is absent, and returns the value
    /// it replaced (`None` for a new key).
    ///
    /// # Errors
    /// [`TableError::TableFull`] when the key is new and no slot is free for it;
    /// [`TableError::Timeout`] when its slot stays locked for the handle's timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// let t = ShmHashTable::<u32, [u8; 4]>::heap(16)?;
    /// assert_eq!(t.insert(&7, b"one ")?, None);
    /// assert_eq!(t.insert(&7, b"two ")?, Some(*b"one "));
    /// assert_eq!(t.get(&7)?, Some(*b"two "));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert(&self, key: &K, value: &V) -> Result<Option<V>, TableError> {
        let mut old = None;
        self.visit(key, AccessMode::CreateIfMiss, |_, v, is_new| {
            let new = bytes::copy(value);
            let previous = std::mem::replace(v, new);
            if !is_new {
                old = Some(previous);
            }
        })
        .map_err(table_error)?;
        Ok(old)
    }

    /// Runs `f` on `key`'s value under its lock and writes the result back; returns what `f`
    /// returned, or `None` (and runs nothing) if the key is absent. The one-argument form of
    /// [`visit`](Self::visit) with [`AccessMode::AccessExist`]; `f` cannot fail (use `visit`
    /// for a visitor that may refuse and be rolled back).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// let hits = ShmHashTable::<u64, u64>::heap(16)?;
    /// hits.insert(&1, &41)?;
    /// assert_eq!(hits.update(&1, |n| { *n += 1; *n })?, Some(42));
    /// assert_eq!(hits.update(&2, |n| *n += 1)?, None, "absent keys are not created");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn update<R>(&self, key: &K, f: impl FnOnce(&mut V) -> R) -> Result<Option<R>, TableError> {
        let mut result = None;
        let visited = self
            .visit(key, AccessMode::AccessExist, |_, v, _| result = Some(f(v)))
            .map_err(table_error)?;
        Ok(if visited == Visited::Found { result } else { None })
    }

    /// `key`'s value; if the key is absent, inserts `make()` first (`make` runs only then, and
    /// under the new slot's lock, so two processes racing on one key insert one value).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// let t = ShmHashTable::<u64, u64>::heap(16)?;
    /// assert_eq!(t.get_or_insert_with(&3, || 30)?, 30);
    /// assert_eq!(t.get_or_insert_with(&3, || unreachable!())?, 30);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_or_insert_with(&self, key: &K, make: impl FnOnce() -> V) -> Result<V, TableError> {
        if let Some(value) = self.get(key)? {
            return Ok(value);
        }
        let mut out = None;
        self.visit(key, AccessMode::CreateIfMiss, |_, v, is_new| {
            if is_new {
                *v = make();
            }
            out = Some(bytes::copy(v));
        })
        .map_err(table_error)?;
        Ok(out.expect("a successful visit ran the visitor"))
    }

    /// Replaces `key`'s value by `new` if it is `current` (compared byte for byte: stored types
    /// have no padding, so that is their value, except that `0.0` and `-0.0` differ and a NaN
    /// equals itself). Returns `Ok(current)` when it replaced it, `Err(Some(actual))` when the
    /// value was another, and `Err(None)` when the key is absent (nothing is inserted).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// let t = ShmHashTable::<u32, u64>::heap(16)?;
    /// t.insert(&1, &5)?;
    /// assert_eq!(t.compare_exchange(&1, &5, &6)?, Ok(5));
    /// assert_eq!(t.compare_exchange(&1, &5, &7)?, Err(Some(6)));
    /// assert_eq!(t.compare_exchange(&2, &0, &1)?, Err(None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compare_exchange(
        &self,
        key: &K,
        current: &V,
        new: &V,
    ) -> Result<Result<V, Option<V>>, TableError> {
        let found = self.update(key, |v| {
            if bytes::as_bytes(v) == bytes::as_bytes(current) {
                Ok(std::mem::replace(v, bytes::copy(new)))
            } else {
                Err(bytes::copy(v))
            }
        })?;
        Ok(match found {
            Some(Ok(previous)) => Ok(previous),
            Some(Err(actual)) => Err(Some(actual)),
            None => Err(None),
        })
    }

    /// Removes `key` and returns its value (`None` if it was absent).
    ///
    /// Lock-free: one compare-and-swap on the key's slot removes the entry (it waits only while
    /// a visit holds the slot); a second one then marks the slot EMPTY, or FREED where another
    /// key's probe chain runs through it. Linearisable: once `remove` returned, no `get` started afterwards sees the value, in
    /// any process. The slot is reused by later inserts of any key.
    ///
    /// # Errors
    /// [`TableError::Timeout`] when a visit holds the key's slot for the handle's timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// let sessions = ShmHashTable::<u64, u64>::heap(4)?;
    /// for id in 0..100 {
    ///     sessions.insert(&id, &(id * 10))?; // 100 keys come and go through 4 slots
    ///     assert_eq!(sessions.remove(&id)?, Some(id * 10));
    /// }
    /// assert_eq!(sessions.remove(&7)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove(&self, key: &K) -> Result<Option<V>, TableError> {
        self.remove_if(key, |_| true)
    }

    /// Removes `key` if `remove(&value)` returns `true` for its current value, and returns the
    /// value it removed (`None` if the key is absent or `remove` kept it): the Perl peer's
    /// `cas_take`. `remove` runs on a copy and may run more than once, if the value changes
    /// between the copy and the removal; the value removed is always the one `remove` last
    /// approved.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// let leases = ShmHashTable::<u32, u64>::heap(16)?;
    /// leases.insert(&1, &500)?; // expires at t = 500
    /// let now = 400;
    /// assert_eq!(leases.remove_if(&1, |&expiry| expiry <= now)?, None, "still valid");
    /// assert_eq!(leases.remove_if(&1, |&expiry| expiry <= 600)?, Some(500));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove_if(
        &self,
        key: &K,
        remove: impl FnMut(&V) -> bool,
    ) -> Result<Option<V>, TableError> {
        self.remove_hashed(key, Self::hash(key), remove)
    }

    /// [`remove_if`](Self::remove_if) with the key's hash computed.
    #[inline]
    fn remove_hashed(
        &self,
        key: &K,
        hash: u64,
        mut remove: impl FnMut(&V) -> bool,
    ) -> Result<Option<V>, TableError> {
        let mut waiting = Waiting::new(&self.wait, self);
        let owner = self.segment.owner().ok();
        match self.raw().remove(key, hash, owner, &mut waiting, |v| !remove(v)) {
            Ok(Removal::Removed(value)) => Ok(Some(value)), // counted by the removal
            Ok(Removal::Absent | Removal::Kept(_)) => Ok(None),
            Err(e) => Err(self.table_error(e)),
        }
    }

    /// Calls `op(i, hash of item i)` for each of `n` items in order, first prefetching the home
    /// slot of item `i + 16` (`key(i)` gives item i's key): the pipeline of
    /// [`get_many`](Self::get_many), for writes.
    fn pipelined(
        &self,
        n: usize,
        key: impl Fn(usize) -> K,
        mut op: impl FnMut(usize, u64) -> Result<(), TableError>,
    ) -> Result<(), TableError> {
        const AHEAD: usize = 16;
        let raw = self.raw();
        let mut hashes = [0u64; AHEAD];
        for (i, hash) in hashes.iter_mut().enumerate().take(n) {
            *hash = Self::hash(&key(i));
            raw.prefetch(*hash);
        }
        for i in 0..n {
            let hash = hashes[i % AHEAD];
            if i + AHEAD < n {
                let next = Self::hash(&key(i + AHEAD));
                hashes[i % AHEAD] = next;
                raw.prefetch(next);
            }
            op(i, hash)?;
        }
        Ok(())
    }

    /// Inserts many entries at once, as a loop of [`insert`](Self::insert)s would (each entry
    /// on its own: the batch is not atomic), and returns how many keys were new.
    ///
    /// Faster than that loop on a large table: each entry's slot is prefetched 16 entries
    /// before it is written, so the cache misses of consecutive inserts overlap (the Perl
    /// peer's `set_multi`).
    ///
    /// # Errors
    /// As [`insert`](Self::insert); the entries before the one that failed are inserted.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// let t = ShmHashTable::<u64, u64>::heap(64)?;
    /// t.insert(&2, &0)?;
    /// assert_eq!(t.insert_many(&[(1, 10), (2, 20), (3, 30)])?, 2, "2 was there already");
    /// assert_eq!((t.get(&2)?, t.len()), (Some(20), 3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn insert_many(&self, entries: &[(K, V)]) -> Result<usize, TableError> {
        let mut created = 0;
        self.pipelined(
            entries.len(),
            |i| bytes::copy(&entries[i].0),
            |i, hash| {
                let (key, value) = &entries[i];
                let visited = self
                    .visit_hashed(key, hash, AccessMode::CreateIfMiss, |_, v, _| {
                        *v = bytes::copy(value);
                    })
                    .map_err(table_error)?;
                created += usize::from(visited == Visited::Created);
                Ok(())
            },
        )?;
        Ok(created)
    }

    /// Removes many keys at once, as a loop of [`remove`](Self::remove)s would, and returns how
    /// many were present. Prefetches like [`insert_many`](Self::insert_many) (the Perl peer's
    /// `remove_multi`).
    ///
    /// # Errors
    /// As [`remove`](Self::remove); the keys before the one that failed are removed.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// let t = ShmHashTable::<u64, u64>::heap(64)?;
    /// t.insert_many(&[(1, 10), (2, 20), (3, 30)])?;
    /// assert_eq!(t.remove_many(&[1, 3, 4])?, 2);
    /// assert_eq!(t.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove_many(&self, keys: &[K]) -> Result<usize, TableError> {
        let mut removed = 0;
        self.pipelined(
            keys.len(),
            |i| bytes::copy(&keys[i]),
            |i, hash| {
                removed += usize::from(self.remove_hashed(&keys[i], hash, |_| true)?.is_some());
                Ok(())
            },
        )?;
        Ok(removed)
    }

    /// Keeps only the entries for which `keep(&key, &value)` returns `true` (on copies),
    /// removing the others one slot at a time, lock-free, like [`remove_if`](Self::remove_if).
    /// Entries inserted during the call may or may not be seen; every entry present for the
    /// whole call is judged at least once and kept or removed.
    ///
    /// # Errors
    /// [`TableError::Timeout`] if a visit holds a slot for the handle's timeout; the slots
    /// before it have been judged.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// let t = ShmHashTable::<u32, u32>::heap(64)?;
    /// for k in 0..10 {
    ///     t.insert(&k, &(k * k))?;
    /// }
    /// t.retain(|_, &square| square % 2 == 0)?;
    /// assert_eq!(t.len(), 5);
    /// assert_eq!(t.get(&3)?, None);
    /// assert_eq!(t.get(&4)?, Some(16));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) -> Result<(), TableError> {
        let raw = self.raw();
        for index in 0..self.capacity {
            let mut waiting = Waiting::new(&self.wait, self);
            match raw.remove_at(index, &mut waiting, &mut keep) {
                Ok(Some(_)) => self.removed(index),
                Ok(None) => {}
                Err(e) => return Err(self.table_error(e)),
            }
        }
        Ok(())
    }

    /// Removes every entry, one slot at a time (so concurrent users go on working, and a crash
    /// midway leaves a consistent table with some entries removed). An insert that commits
    /// during the call may survive it.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// let t = ShmHashTable::<u64, u64>::heap(8)?;
    /// for k in 0..8 {
    ///     t.insert(&k, &k)?;
    /// }
    /// t.clear()?;
    /// assert!(t.is_empty());
    /// t.insert(&100, &1)?; // every slot is free again
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear(&self) -> Result<(), TableError> {
        self.retain(|_, _| false)?;
        // Slots freed where no EMPTY was within reach (a full table) are shortened now, from the
        // end: each scan finds the EMPTY its successor left, so the sweep is linear.
        let owner = self.owner()?;
        for index in (0..self.capacity).rev() {
            self.raw().shorten_within(index, owner, self.capacity);
        }
        Ok(())
    }

    /// [`travel`](Self::travel) from slot `start` on (to the end of the table): resumes a
    /// traversal after a [`TravelOutcome::TimedOut`] or `Stopped` at slot `s` with
    /// `start = s + 1` (or `s`, to try that slot again). A `start` past the last slot visits
    /// nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{ShmHashTable, TravelOutcome};
    ///
    /// let t = ShmHashTable::<u32, u32>::heap(8)?;
    /// for k in 0..4 {
    ///     t.insert(&k, &1)?;
    /// }
    /// let mut seen = 0;
    /// let outcome = t.travel(|_, _, _| { seen += 1; seen < 2 })?; // stop after two
    /// let TravelOutcome::Stopped { slot, .. } = outcome else { panic!("{outcome:?}") };
    /// t.travel_from(slot + 1, |_, _, _| seen += 1)?;
    /// assert_eq!(seen, 4, "every entry exactly once");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn travel_from<F, R>(&self, start: usize, visitor: F) -> Result<TravelOutcome, TableError>
    where
        F: FnMut(usize, &K, &mut V) -> R,
        R: TravelControl,
    {
        self.travel_range(start, self.wait, visitor)
    }

    /// [`travel_from`](Self::travel_from) with another per-slot timeout or backoff.
    pub fn travel_from_with<B, F, R>(
        &self,
        start: usize,
        wait: Wait<B>,
        visitor: F,
    ) -> Result<TravelOutcome, TableError>
    where
        B: crate::BackoffPolicy,
        F: FnMut(usize, &K, &mut V) -> R,
        R: TravelControl,
    {
        self.travel_range(start, wait, visitor)
    }
}
