//! A table opened for reading only: [`ShmTableReader`] maps the segment `PROT_READ`, does not
//! register in its process table, and offers only the lookups that never write (`get`,
//! `get_many`, `contains_key`, `iter`, `len`), so writing is refused at compile time, and a
//! stray store would fault instead of corrupting the table.
//!
//! A process that may only read a table's file (mode `0640`, a member of the group) can open
//! it this way, and a monitor or a dashboard that must never change what it watches should
//! ([`Monitor::for_reader`](crate::Monitor::for_reader); the `shmap` command inspects segments
//! read-only too).
//! What it cannot do is recover a dead holder's slot (that writes): where a lookup meets a slot
//! held by a process that died, it waits, like any lookup, for a process that can, and times
//! out naming the holder.

use crate::error::OpenError;
use crate::hash::{DefaultHasher, ShmHasher};
use crate::layout::{ShmKey, ShmValue};
use crate::segment::{Backing, Segment, SegmentInfo, StructureKind};
use crate::sync::backoff::{BackoffPolicy, Wait};
use crate::table::{Iter, ShmHashTable, TableError};

/// A read-only handle on a hash table: a `PROT_READ` mapping of the segment, opened
/// `O_RDONLY`, with no entry in its process table, and only the lookups that never write, so
/// writing is refused at compile time.
///
/// For a process that may only read the table's file (mode `0640` and its group), and for a
/// monitor or a dashboard that must never change what it watches
/// ([`Monitor::for_reader`](crate::Monitor::for_reader)). It cannot recover a dead holder's
/// slot (that writes): a lookup that meets one waits, like any lookup, for a process that can,
/// and times out naming the holder.
///
/// # Examples
///
/// ```
/// use shmap::{Backing, ShmHashTable, ShmTableReader};
///
/// # let name = format!("/shmap-doc-reader-{}", std::process::id());
/// let table = ShmHashTable::<u64, u64>::open_or_create(&name, 64)?;
/// table.insert(&7, &49)?;
/// let reader = ShmTableReader::<u64, u64>::open(&Backing::shm(&name))?;
/// assert_eq!(reader.get(&7)?, Some(49));
/// assert_eq!(reader.len(), 1);
/// assert_eq!(table.segment().attached_processes().len(), 1, "the reader did not register");
/// # table.destroy()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ShmTableReader<K: ShmKey, V: ShmValue, H: ShmHasher = DefaultHasher> {
    table: ShmHashTable<K, V, H>,
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> ShmTableReader<K, V, H> {
    /// Opens the table at `backing` for reading: the same checks of the header as a writer's
    /// open (kind, key and value layouts, hasher; the capacity and options are adopted), a
    /// `PROT_READ` mapping of a descriptor opened `O_RDONLY`, and no registration.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, OpenErrorKind, ShmTableReader};
    ///
    /// let missing = ShmTableReader::<u64, u64>::open(&Backing::shm("/shmap-doc-no-such-table"));
    /// assert!(matches!(missing.unwrap_err().kind(), OpenErrorKind::NotFound));
    /// ```
    pub fn open(backing: &Backing) -> Result<Self, OpenError> {
        Self::open_with(backing, Wait::default())
    }

    /// [`open`](Self::open), with the timeout and backoff of the reader's lookups.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmap::{Backing, ShmHashTable, ShmTableReader, Wait};
    ///
    /// # let name = format!("/shmap-doc-reader-with-{}", std::process::id());
    /// let table = ShmHashTable::<u64, u64>::open_or_create(&name, 64)?;
    /// let wait = Wait::timeout(Duration::from_millis(50));
    /// let reader = ShmTableReader::<u64, u64>::open_with(&Backing::shm(&name), wait)?;
    /// assert_eq!(reader.get(&1)?, None);
    /// # table.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_with(backing: &Backing, wait: Wait) -> Result<Self, OpenError> {
        let spec = ShmHashTable::<K, V, H>::spec(StructureKind::HashTable, None, None, [0; 4]);
        let segment = Segment::open_read_only(backing, Some(&spec))?;
        Ok(ShmTableReader { table: ShmHashTable::from_segment(segment, true, wait) })
    }

    /// The committed value of `key`, as [`ShmHashTable::get`] reads it.
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmap::{Backing, ShmHashTable, ShmTableReader};
    /// # let name = format!("/shmap-doc-reader-get-{}", std::process::id());
    /// # let table = ShmHashTable::<u64, u64>::open_or_create(&name, 64)?;
    /// table.insert(&1, &10)?;
    /// let reader = ShmTableReader::<u64, u64>::open(&Backing::shm(&name))?;
    /// assert_eq!(reader.get(&1)?, Some(10));
    /// # table.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, key: &K) -> Result<Option<V>, TableError> {
        self.table.get(key)
    }

    /// [`get`](Self::get) with another timeout or backoff.
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmap::{Backing, ShmHashTable, ShmTableReader, Wait};
    /// # let name = format!("/shmap-doc-reader-get-with-{}", std::process::id());
    /// # let table = ShmHashTable::<u64, u64>::open_or_create(&name, 64)?;
    /// let reader = ShmTableReader::<u64, u64>::open(&Backing::shm(&name))?;
    /// let quick = Wait::timeout(std::time::Duration::from_millis(10));
    /// assert_eq!(reader.get_with(&1, quick)?, None);
    /// # table.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_with<B: BackoffPolicy>(
        &self,
        key: &K,
        wait: Wait<B>,
    ) -> Result<Option<V>, TableError> {
        self.table.get_with(key, wait)
    }

    /// Many lookups at once, as [`ShmHashTable::get_many`] does them.
    ///
    /// # Panics
    /// If `keys` and `out` differ in length.
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmap::{Backing, ShmHashTable, ShmTableReader};
    /// # let name = format!("/shmap-doc-reader-many-{}", std::process::id());
    /// # let table = ShmHashTable::<u64, u64>::open_or_create(&name, 64)?;
    /// table.insert(&2, &20)?;
    /// let reader = ShmTableReader::<u64, u64>::open(&Backing::shm(&name))?;
    /// let mut out = [None; 2];
    /// reader.get_many(&[1, 2], &mut out)?;
    /// assert_eq!(out, [None, Some(20)]);
    /// # table.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many(&self, keys: &[K], out: &mut [Option<V>]) -> Result<(), TableError> {
        self.table.get_many(keys, out)
    }

    /// Whether `key` has a committed value.
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmap::{Backing, ShmHashTable, ShmTableReader};
    /// # let name = format!("/shmap-doc-reader-contains-{}", std::process::id());
    /// # let table = ShmHashTable::<u64, u64>::open_or_create(&name, 64)?;
    /// table.insert(&3, &0)?;
    /// let reader = ShmTableReader::<u64, u64>::open(&Backing::shm(&name))?;
    /// assert!(reader.contains_key(&3)? && !reader.contains_key(&4)?);
    /// # table.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn contains_key(&self, key: &K) -> Result<bool, TableError> {
        self.table.contains_key(key)
    }

    /// The entries, copied without locks (see [`Iter`] for the guarantee).
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmap::{Backing, ShmHashTable, ShmTableReader};
    /// # let name = format!("/shmap-doc-reader-iter-{}", std::process::id());
    /// # let table = ShmHashTable::<u64, u64>::open_or_create(&name, 64)?;
    /// table.insert(&1, &10)?;
    /// table.insert(&2, &20)?;
    /// let reader = ShmTableReader::<u64, u64>::open(&Backing::shm(&name))?;
    /// let sum: u64 = reader.iter().map(|e| e.map(|(_, v)| v)).sum::<Result<u64, _>>()?;
    /// assert_eq!(sum, 30);
    /// # table.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> Iter<'_, K, V, H> {
        self.table.iter()
    }

    /// The number of entries, as [`ShmHashTable::len`] counts them.
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmap::{Backing, ShmHashTable, ShmTableReader};
    /// # let name = format!("/shmap-doc-reader-len-{}", std::process::id());
    /// # let table = ShmHashTable::<u64, u64>::open_or_create(&name, 64)?;
    /// let reader = ShmTableReader::<u64, u64>::open(&Backing::shm(&name))?;
    /// assert!(reader.is_empty());
    /// table.insert(&1, &1)?;
    /// assert_eq!(reader.len(), 1);
    /// # table.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the table has no entries.
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmap::{Backing, ShmHashTable, ShmTableReader};
    /// # let name = format!("/shmap-doc-reader-empty-{}", std::process::id());
    /// # let table = ShmHashTable::<u64, u64>::open_or_create(&name, 64)?;
    /// assert!(ShmTableReader::<u64, u64>::open(&Backing::shm(&name))?.is_empty());
    /// # table.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The number of slots.
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmap::{Backing, ShmHashTable, ShmTableReader};
    /// # let name = format!("/shmap-doc-reader-capacity-{}", std::process::id());
    /// # let table = ShmHashTable::<u64, u64>::open_or_create(&name, 64)?;
    /// assert_eq!(ShmTableReader::<u64, u64>::open(&Backing::shm(&name))?.capacity(), 64);
    /// # table.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// What the segment's header says.
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmap::{Backing, ShmHashTable, ShmTableReader};
    /// # let name = format!("/shmap-doc-reader-info-{}", std::process::id());
    /// # let table = ShmHashTable::<u64, u64>::open_or_create(&name, 64)?;
    /// let reader = ShmTableReader::<u64, u64>::open(&Backing::shm(&name))?;
    /// assert_eq!(reader.info().segment_id, table.info().segment_id);
    /// # table.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn info(&self) -> SegmentInfo {
        self.table.info()
    }

    /// The segment, read-only ([`Segment::is_read_only`]).
    ///
    /// # Examples
    ///
    /// ```
    /// # use shmap::{Backing, ShmHashTable, ShmTableReader};
    /// # let name = format!("/shmap-doc-reader-segment-{}", std::process::id());
    /// # let table = ShmHashTable::<u64, u64>::open_or_create(&name, 64)?;
    /// let reader = ShmTableReader::<u64, u64>::open(&Backing::shm(&name))?;
    /// assert!(reader.segment().is_read_only());
    /// # table.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn segment(&self) -> &Segment {
        self.table.segment()
    }
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> ShmTableReader<K, V, H> {
    /// The table inside, for the monitor (whose writes check that the segment is read-only).
    pub(crate) fn table(&self) -> &ShmHashTable<K, V, H> {
        &self.table
    }
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> std::fmt::Debug for ShmTableReader<K, V, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmTableReader").field("table", &self.table).finish()
    }
}
