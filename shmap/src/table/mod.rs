//! [`ShmHashTable`]: a fixed-capacity concurrent hash table in shared memory.
//!
//! The table is open addressing with linear probing over packed slots; each slot's control word
//! ([`ctrl`]) carries its state, a hash tag, a seqlock version and, while locked, its holder.
//! [`raw`] has the protocol and its memory-ordering argument; this module wires it to a
//! [`Segment`], a [`ShmHasher`] and the caller's timeouts.

pub(crate) mod bounds;
pub(crate) mod ctrl;
pub(crate) mod erased;
mod error;
mod held;
mod iter;
mod map;
mod options;
mod probe;
pub(crate) mod raw;
mod reader;
pub(crate) mod recovery;
mod removal;
pub(crate) mod slot;
mod visit;

use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::time::Duration;

pub use ctrl::SlotState;
pub use erased::{Occupancy, ProbeLengths};
pub use error::{TableError, VisitError};
pub use iter::{Cursor, Iter};
pub(crate) use options::FLAG_UNDO;
pub use options::TableOptions;
pub use reader::ShmTableReader;
pub use visit::{
    AccessMode, LockHolder, RecoveryAction, Rejected, TravelControl, TravelOutcome, VisitResult,
    Visited,
};

use crate::error::OpenError;
use crate::hash::{DefaultHasher, ShmHasher};
use crate::layout::{ShmKey, ShmValue, TypeLayout};
use crate::process::OwnerId;
use crate::segment::{Backing, CreateMode, Segment, SegmentInfo, SegmentSpec, StructureKind};
use crate::sync::backoff::{BackoffPolicy, Wait};
#[cfg(shmap_loom)]
use crate::sync::primitive::AtomicU32;
use crate::sync::primitive::AtomicU64;
use erased::ErasedTable;
use raw::{Host, Locker, RawError, RawTable, RawTravel, Waiting};

/// Marks the stored types without owning values of them (so the handle is `Send + Sync`).
type Types<K, V, H> = PhantomData<fn() -> (K, V, H)>;

/// A concurrent hash table from `K` to `V` in shared memory, for many processes and threads.
///
/// Every process that opens the same name (or inherits an anonymous table across `fork`) sees
/// the same entries. Operations never block forever: each waits for a busy slot at most its
/// timeout (default 5 s) and then fails with [`TableError::Timeout`], naming the holder.
///
/// - [`visit`](Self::visit) (the original's `Visit`) locks a key's slot, inserting the key if
///   asked, and runs a closure on its value; a failing or panicking closure is rolled back.
/// - [`get`](Self::get) and [`read`](Self::read) take no lock and write nothing: concurrent
///   readers in many processes do not slow each other down.
/// - [`travel`](Self::travel) (the original's `Travel`) visits every entry, can stop early, and
///   reports a slot that stayed locked instead of hanging on it.
///
/// - [`insert`](Self::insert), [`remove`](Self::remove), [`len`](Self::len),
///   [`iter`](Self::iter) and the rest of the map API, in the habits of `HashMap` and
///   dashmap; a removed entry's slot is reused by later inserts of any key.
///
/// The capacity is fixed at creation (rounded up to a power of two).
///
/// # Examples
///
/// ```
/// use shmap::{AccessMode, ShmHashTable};
///
/// # let name = format!("/shmap-doc-table-{}", std::process::id());
/// let scores = ShmHashTable::<u64, u64>::open_or_create(&name, 1024)?;
/// scores.insert(&1, &5)?;
/// scores.visit(&7, AccessMode::CreateIfMiss, |_slot, score, _is_new| *score += 10)?;
/// assert_eq!(scores.get(&7)?, Some(10));
/// assert_eq!(scores.remove(&1)?, Some(5));
/// assert_eq!(scores.len(), 1);
/// scores.destroy()?; // remove the name
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ShmHashTable<K: ShmKey, V: ShmValue, H: ShmHasher = DefaultHasher> {
    segment: Segment,
    /// The slots: a view of the segment's body (or, under loom, of `_loom_body`).
    raw: RawTable<K, V>,
    /// The slots' words, for the type-erased views of monitors.
    words: NonNull<[AtomicU64]>,
    capacity: usize,
    undo: bool,
    rollback: bool,
    wait: Wait,
    #[cfg(shmap_loom)]
    _loom_body: Box<[AtomicU64]>,
    #[cfg(shmap_loom)]
    _loom_bounds: Box<[AtomicU32]>,
    _types: Types<K, V, H>,
}

// SAFETY: `words` points into memory owned by `segment` (or `_loom_body`), which is `Send`; the
// table only accesses it through atomics, and K, V, H are only used as types (no values of them
// are stored in the handle).
unsafe impl<K: ShmKey, V: ShmValue, H: ShmHasher> Send for ShmHashTable<K, V, H> {}
// SAFETY: see `Send`: every access through `&ShmHashTable` is atomic.
unsafe impl<K: ShmKey, V: ShmValue, H: ShmHasher> Sync for ShmHashTable<K, V, H> {}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> fmt::Debug for ShmHashTable<K, V, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmHashTable")
            .field("backing", self.segment.backing())
            .field("capacity", &self.capacity)
            .field("rollback", &self.rollback)
            .field("timeout", &self.wait.timeout)
            .finish_non_exhaustive()
    }
}

impl<K: ShmKey, V: ShmValue> ShmHashTable<K, V, DefaultHasher> {
    /// Opens the POSIX shared-memory table `name` (`/name`), creating it with `capacity` slots
    /// (rounded up to a power of two) if it does not exist. An existing table with at least
    /// that many slots is adopted (see [`TableOptions::min_capacity`]); one with fewer is a
    /// [`CapacityMismatch`](crate::OpenErrorKind::CapacityMismatch), as are other layouts.
    ///
    /// Any number of processes may call this at once: they all get the same table.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// # let name = format!("/shmap-doc-open-or-create-{}", std::process::id());
    /// let a = ShmHashTable::<u64, u64>::open_or_create(&name, 1000)?; // creates 1024 slots
    /// let b = ShmHashTable::<u64, u64>::open_or_create(&name, 1000)?; // opens the same table
    /// a.insert(&1, &10)?;
    /// assert_eq!(b.get(&1)?, Some(10));
    /// # a.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_or_create(name: &str, capacity: usize) -> Result<Self, OpenError> {
        Self::options().min_capacity(capacity).open(&Backing::shm(name))
    }

    /// Opens the existing POSIX shared-memory table `name`, whatever its capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{OpenErrorKind, ShmHashTable};
    ///
    /// # let name = format!("/shmap-doc-open-{}", std::process::id());
    /// let err = ShmHashTable::<u64, u64>::open(&name).unwrap_err();
    /// assert!(matches!(err.kind(), OpenErrorKind::NotFound));
    /// let created = ShmHashTable::<u64, u64>::open_or_create(&name, 64)?;
    /// assert_eq!(ShmHashTable::<u64, u64>::open(&name)?.capacity(), 64); // adopts it
    /// # created.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(name: &str) -> Result<Self, OpenError> {
        Self::options().create(CreateMode::OpenExisting).open(&Backing::shm(name))
    }

    /// A table in an anonymous shared mapping: shared with the `fork` children of this
    /// process, invisible to every other process.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// let t = ShmHashTable::<u32, u32>::anonymous(16)?; // shared with children forked after this
    /// t.insert(&1, &2)?;
    /// assert_eq!(t.get(&1)?, Some(2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn anonymous(capacity: usize) -> Result<Self, OpenError> {
        Self::options().capacity(capacity).open(&Backing::Anonymous)
    }

    /// A table on the heap, for the threads of this process only (and for tests under Miri).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// let t = ShmHashTable::<u64, [u8; 8]>::heap(16)?;
    /// t.insert(&7, b"in-proc ")?;
    /// assert_eq!(t.get(&7)?, Some(*b"in-proc "));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn heap(capacity: usize) -> Result<Self, OpenError> {
        Self::options().capacity(capacity).open(&Backing::Heap)
    }
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> ShmHashTable<K, V, H> {
    /// Options to create or open a table with another hasher, backing or timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmHashTable};
    ///
    /// let t = ShmHashTable::<u64, u64>::options().capacity(100).undo_records(true).open(&Backing::Heap)?;
    /// assert_eq!((t.capacity(), t.undo_records()), (128, true));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn options() -> TableOptions<K, V, H> {
        TableOptions::default()
    }

    /// The segment header this table's type expects, for a segment of `kind` (a hash table,
    /// or a cache built on one) with the structure parameters `params`.
    pub(crate) fn spec(
        kind: StructureKind,
        capacity: Option<u64>,
        flags: Option<u64>,
        params: [u64; 4],
    ) -> SegmentSpec {
        SegmentSpec {
            kind,
            key: TypeLayout::of::<K>(),
            value: TypeLayout::of::<V>(),
            hasher_id: H::ID,
            capacity,
            adopt_larger: false,
            flags,
            known_flags: FLAG_UNDO,
            slot_size: |flags| RawTable::<K, V>::layout(flags & FLAG_UNDO != 0).bytes(),
            side_bytes_per_slot: bounds::BYTES_PER_SLOT,
            fixed_body_size: 0,
            references_owner: Self::segment_references_owner,
            params,
        }
    }

    #[cfg(not(shmap_loom))]
    fn segment_references_owner(segment: &Segment, owner: OwnerId) -> bool {
        let undo = segment.flags() & FLAG_UNDO != 0;
        let capacity = segment.capacity() as usize;
        let (slots, bounds) =
            bounds::split_body(segment.words(), capacity, RawTable::<K, V>::layout(undo).stride);
        // SAFETY: the view is used within this call, while `segment` (and its mapping) lives.
        let raw = unsafe {
            RawTable::<K, V>::new(slots, capacity, undo, Self::hash, segment.slots_freed(), bounds)
        };
        raw.references_owner(owner)
    }

    #[cfg(shmap_loom)]
    fn segment_references_owner(_: &Segment, _: OwnerId) -> bool {
        false // the modelled slots are not in the segment
    }

    pub(crate) fn from_segment(segment: Segment, rollback: bool, wait: Wait) -> Self {
        let capacity = usize::try_from(segment.capacity()).expect("validated capacity fits usize");
        let undo = segment.flags() & FLAG_UNDO != 0;
        #[cfg(not(shmap_loom))]
        let (words, freed, bounds) = {
            let stride = RawTable::<K, V>::layout(undo).stride;
            let (slots, bounds) = bounds::split_body(segment.words(), capacity, stride);
            (NonNull::from(slots), NonNull::from(segment.slots_freed()), NonNull::from(bounds))
        };
        // Under loom, the slots, the freed flag (its last word) and the bounds are modelled
        // atomics.
        #[cfg(shmap_loom)]
        let loom_body: Box<[AtomicU64]> = (0..capacity * RawTable::<K, V>::layout(undo).stride + 1)
            .map(|_| AtomicU64::new(0))
            .collect();
        #[cfg(shmap_loom)]
        let loom_bounds: Box<[AtomicU32]> =
            (0..bounds::words_for(capacity)).map(|_| AtomicU32::new(0)).collect();
        #[cfg(shmap_loom)]
        let (words, freed, bounds) = {
            let (flag, slots) = loom_body.split_last().expect("the flag");
            (NonNull::from(slots), NonNull::from(flag), NonNull::from(&*loom_bounds))
        };
        // SAFETY: `words` points to the segment's body (or `loom_body`), initialised atomics.
        let slots = unsafe { words.as_ref() };
        // SAFETY: `freed` points to the segment's header (or `loom_body`), an initialised atomic.
        let freed_flag = unsafe { freed.as_ref() };
        // SAFETY: `bounds` points to the segment's body (or `loom_bounds`), initialised atomics.
        let bound_words = unsafe { bounds.as_ref() };
        // SAFETY: those atomics are owned by `segment` (or `loom_body` and `loom_bounds`), which
        // the table keeps until the view, a field of the same table, is dropped with it.
        let raw =
            unsafe { RawTable::new(slots, capacity, undo, Self::hash, freed_flag, bound_words) };
        ShmHashTable {
            segment,
            raw,
            words,
            capacity,
            undo,
            rollback,
            wait,
            #[cfg(shmap_loom)]
            _loom_body: loom_body,
            #[cfg(shmap_loom)]
            _loom_bounds: loom_bounds,
            _types: PhantomData,
        }
    }

    #[inline(always)]
    pub(crate) fn raw(&self) -> &RawTable<K, V> {
        &self.raw
    }

    /// The slots as words, for the monitor.
    pub(crate) fn erased(&self) -> ErasedTable<'_> {
        ErasedTable {
            // SAFETY: as in `raw`.
            words: unsafe { self.words.as_ref() },
            capacity: self.capacity,
            layout: RawTable::<K, V>::layout(self.undo),
            key_size: size_of::<K>(),
            value_size: size_of::<V>(),
            segment: &self.segment,
            hash: Some(H::hash),
            freed: self.raw.freed(),
            bounds: self.raw.bounds(),
        }
    }

    #[inline]
    pub(crate) fn hash(key: &K) -> u64 {
        H::hash(crate::bytes::as_bytes(key))
    }

    #[inline]
    fn owner(&self) -> Result<OwnerId, TableError> {
        Ok(self.segment.owner()?)
    }

    #[cold]
    fn table_error(&self, e: RawError) -> TableError {
        match e {
            RawError::Full => TableError::TableFull { capacity: self.capacity },
            RawError::Busy { slot, ctrl, waited } => {
                TableError::Timeout { slot, state: ctrl.state(), holder: self.holder(ctrl), waited }
            }
        }
    }

    fn holder(&self, ctrl: ctrl::Ctrl) -> Option<LockHolder> {
        ctrl.owner().map(|owner| LockHolder { owner, process: self.segment.process(owner) })
    }

    /// The value of `key`, if present, read without taking a lock.
    ///
    /// Waits (up to this handle's timeout) only while a writer is copying a new value into the
    /// slot, or while an insert with a colliding tag is writing its key: windows of a few
    /// nanoseconds, unless the writer's process stalls or dies in them.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{AccessMode, ShmHashTable};
    ///
    /// let t = ShmHashTable::<u64, [u64; 2]>::heap(64)?;
    /// assert_eq!(t.get(&1)?, None);
    /// t.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v = [3, 4])?;
    /// assert_eq!(t.get(&1)?, Some([3, 4]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn get(&self, key: &K) -> Result<Option<V>, TableError> {
        let hash = Self::hash(key);
        match self.raw().get_fast(key, hash) {
            raw::FastGet::Found(_, value) => Ok(Some(value)),
            raw::FastGet::Absent => Ok(None),
            raw::FastGet::Slow => self.get_slow(key, hash),
        }
    }

    #[cold]
    #[inline(never)]
    fn get_slow(&self, key: &K, hash: u64) -> Result<Option<V>, TableError> {
        Ok(self.get_slow_indexed(key, hash)?.map(|(_, value)| value))
    }

    /// [`get`](Self::get), passing what it finds through `f(slot index, value)` (a cache
    /// checks the entry and marks it used).
    ///
    /// `f` runs in each path before they merge, so that what merges is `f`'s small result:
    /// merging the found `(index, value)` first made the compiler build it in memory, and the
    /// check then read it back (a cache's lookups ran 10-15 % slower).
    #[inline(always)]
    pub(crate) fn get_map<T>(
        &self,
        key: &K,
        f: impl Fn(usize, V) -> Option<T>,
    ) -> Result<Option<T>, TableError> {
        let hash = Self::hash(key);
        match self.raw().get_fast(key, hash) {
            raw::FastGet::Found(index, value) => Ok(f(index, value)),
            raw::FastGet::Absent => Ok(None),
            raw::FastGet::Slow => Ok(self.get_slow_indexed(key, hash)?.and_then(|(i, v)| f(i, v))),
        }
    }

    #[cold]
    #[inline(never)]
    fn get_slow_indexed(&self, key: &K, hash: u64) -> Result<Option<(usize, V)>, TableError> {
        self.raw().get_slow(key, hash, &self.wait, self).map_err(|e| self.table_error(e))
    }

    /// [`get`](Self::get) with another timeout or backoff.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{ShmHashTable, Wait};
    /// use std::time::Duration;
    ///
    /// let t = ShmHashTable::<u64, u64>::heap(16)?;
    /// t.insert(&1, &5)?;
    /// // This lookup waits at most 10 ms for a slot being written back.
    /// assert_eq!(t.get_with(&1, Wait::timeout(Duration::from_millis(10)))?, Some(5));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn get_with<B: BackoffPolicy>(
        &self,
        key: &K,
        wait: Wait<B>,
    ) -> Result<Option<V>, TableError> {
        match self.raw().get(key, Self::hash(key), &wait, self) {
            Ok(found) => Ok(found.map(|(_, value)| value)),
            Err(e) => Err(self.table_error(e)),
        }
    }

    /// Looks up many keys at once: `out[i]` receives the value of `keys[i]` (or `None`), as
    /// [`get`](Self::get) would return it.
    ///
    /// Faster than a loop of `get`s on a large table: each key's slot is prefetched 16 lookups
    /// before it is read, so the cache misses of consecutive lookups overlap instead of queuing
    /// one behind the other. Larger batches amortise the start of the pipeline better.
    ///
    /// # Panics
    /// If `keys` and `out` have different lengths.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{AccessMode, ShmHashTable};
    ///
    /// let t = ShmHashTable::<u64, u64>::heap(64)?;
    /// for k in [1, 3] {
    ///     t.visit(&k, AccessMode::CreateIfMiss, |_, v, _| *v = k * 100)?;
    /// }
    /// let mut out = [None; 3];
    /// t.get_many(&[1, 2, 3], &mut out)?;
    /// assert_eq!(out, [Some(100), None, Some(300)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_many(&self, keys: &[K], out: &mut [Option<V>]) -> Result<(), TableError> {
        assert_eq!(keys.len(), out.len(), "get_many: one output per key");
        self.get_many_indexed(keys, |i, found| out[i] = found.map(|(_, value)| value))
    }

    /// The pipeline of [`get_many`](Self::get_many): calls `found(i, entry)` with what a `get`
    /// of `keys[i]` finds (the slot and the value), in order.
    #[inline]
    pub(crate) fn get_many_indexed(
        &self,
        keys: &[K],
        mut found: impl FnMut(usize, Option<(usize, V)>),
    ) -> Result<(), TableError> {
        /// How many lookups ahead a slot is prefetched: enough misses in flight to cover the
        /// memory latency, few enough to stay within the CPU's fill buffers.
        const AHEAD: usize = 16;
        let raw = self.raw();
        let mut hashes = [0u64; AHEAD];
        for (key, hash) in keys.iter().zip(&mut hashes) {
            *hash = Self::hash(key);
            raw.prefetch(*hash);
        }
        for (i, key) in keys.iter().enumerate() {
            let hash = hashes[i % AHEAD];
            if let Some(ahead) = keys.get(i + AHEAD) {
                let next = Self::hash(ahead);
                hashes[i % AHEAD] = next;
                raw.prefetch(next);
            }
            let entry = match raw.get_fast(key, hash) {
                raw::FastGet::Found(index, value) => Some((index, value)),
                raw::FastGet::Absent => None,
                raw::FastGet::Slow => self.get_slow_indexed(key, hash)?,
            };
            found(i, entry);
        }
        Ok(())
    }

    /// Runs `reader` on a consistent copy of `key`'s value and its slot index, without taking a
    /// lock; `None` if the key is absent.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{AccessMode, ShmHashTable};
    ///
    /// let t = ShmHashTable::<u32, [u32; 3]>::heap(16)?;
    /// t.visit(&9, AccessMode::CreateIfMiss, |_, v, _| *v = [1, 2, 3])?;
    /// let sum = t.read(&9, |_slot, v| v.iter().sum::<u32>())?;
    /// assert_eq!(sum, Some(6));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read<R>(
        &self,
        key: &K,
        reader: impl FnOnce(usize, &V) -> R,
    ) -> Result<Option<R>, TableError> {
        match self.raw().get(key, Self::hash(key), &self.wait, self) {
            Ok(found) => Ok(found.map(|(slot, value)| reader(slot, &value))),
            Err(e) => Err(self.table_error(e)),
        }
    }

    /// Locks `key`'s slot and runs `visitor(slot, &mut value, is_new)` on it (the original's
    /// `Visit`). With [`AccessMode::CreateIfMiss`] an absent key is inserted with a zeroed value
    /// for the visitor to initialise (`is_new == true`).
    ///
    /// The visitor works on a copy of the value, written back when it returns `()`, `true` or
    /// `Ok(())`. When it returns `false` or `Err(e)` the call fails with
    /// [`VisitError::VisitorFailed`] and, with rollback (the default), the value is left as it
    /// was; a new entry is never kept. A visitor that panics leaves the slot unlocked (and rolled
    /// back), and the panic continues into the caller. Other processes can [`get`](Self::get)
    /// the old value while the visitor runs.
    ///
    /// Do not visit the same key again from inside the visitor: the slot is locked, so the inner
    /// visit waits for itself until it times out.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{AccessMode, ShmHashTable, VisitError};
    ///
    /// let stock = ShmHashTable::<u32, u32>::heap(64)?;
    /// stock.visit(&1, AccessMode::CreateIfMiss, |_, n, _| *n = 2)?;
    /// // Take one item if there is one; refuse (and roll back) otherwise.
    /// let take = |_: usize, n: &mut u32, _: bool| -> Result<(), &'static str> {
    ///     *n = n.checked_sub(1).ok_or("out of stock")?;
    ///     Ok(())
    /// };
    /// stock.visit(&1, AccessMode::AccessExist, take)?;
    /// stock.visit(&1, AccessMode::AccessExist, take)?;
    /// let err = stock.visit(&1, AccessMode::AccessExist, take).unwrap_err();
    /// assert!(matches!(err, VisitError::VisitorFailed("out of stock")));
    /// assert_eq!(stock.get(&1)?, Some(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn visit<F, R>(
        &self,
        key: &K,
        mode: AccessMode,
        visitor: F,
    ) -> Result<Visited, VisitError<R::Error>>
    where
        F: FnOnce(usize, &mut V, bool) -> R,
        R: VisitResult,
    {
        self.visit_waiting(key, mode, &self.wait, visitor)
    }

    /// [`visit`](Self::visit) with another timeout or backoff.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{AccessMode, ShmHashTable, Wait};
    /// use std::time::Duration;
    ///
    /// let t = ShmHashTable::<u64, u64>::heap(16)?;
    /// let quick = Wait::timeout(Duration::from_millis(20));
    /// t.visit_with(&1, AccessMode::CreateIfMiss, quick, |_, v, _| *v += 1)?;
    /// assert_eq!(t.get(&1)?, Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn visit_with<B, F, R>(
        &self,
        key: &K,
        mode: AccessMode,
        wait: Wait<B>,
        visitor: F,
    ) -> Result<Visited, VisitError<R::Error>>
    where
        B: BackoffPolicy,
        F: FnOnce(usize, &mut V, bool) -> R,
        R: VisitResult,
    {
        self.visit_waiting(key, mode, &wait, visitor)
    }

    /// [`visit_with`](Self::visit_with) with the wait borrowed (the handle's own, for `visit`).
    #[inline(always)]
    fn visit_waiting<B, F, R>(
        &self,
        key: &K,
        mode: AccessMode,
        wait: &Wait<B>,
        visitor: F,
    ) -> Result<Visited, VisitError<R::Error>>
    where
        B: BackoffPolicy,
        F: FnOnce(usize, &mut V, bool) -> R,
        R: VisitResult,
    {
        self.visit_hashed_waiting(key, Self::hash(key), mode, wait, visitor)
    }

    /// [`visit`](Self::visit) with the key's hash computed (for the batched writes).
    #[inline(always)]
    pub(crate) fn visit_hashed<F, R>(
        &self,
        key: &K,
        hash: u64,
        mode: AccessMode,
        visitor: F,
    ) -> Result<Visited, VisitError<R::Error>>
    where
        F: FnOnce(usize, &mut V, bool) -> R,
        R: VisitResult,
    {
        self.visit_hashed_waiting(key, hash, mode, &self.wait, visitor)
    }

    #[inline(always)]
    fn visit_hashed_waiting<B, F, R>(
        &self,
        key: &K,
        hash: u64,
        mode: AccessMode,
        wait: &Wait<B>,
        visitor: F,
    ) -> Result<Visited, VisitError<R::Error>>
    where
        B: BackoffPolicy,
        F: FnOnce(usize, &mut V, bool) -> R,
        R: VisitResult,
    {
        let locker = Locker { owner: self.owner()?, rollback: self.rollback };
        let mut waiting = Waiting::new(wait, self);
        match self.raw().visit(key, hash, mode, locker, &mut waiting, visitor) {
            Ok(Ok(visited)) => Ok(visited),
            Ok(Err(e)) => Err(VisitError::VisitorFailed(e)),
            Err(e) => Err(VisitError::Table(self.table_error(e))),
        }
    }

    /// Visits every entry in slot order (the original's `Travel`), locking each while
    /// `visitor(slot, &key, &mut value)` runs; changes to the value are written back. The
    /// visitor returns `()` or `true` to go on, `false` to stop.
    ///
    /// A slot that stays locked for longer than the timeout (which applies to each slot, not
    /// to the whole traversal) ends the traversal with [`TravelOutcome::TimedOut`], naming the
    /// slot and its holder. Entries inserted or changed during the traversal may or may not be
    /// seen.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{AccessMode, ShmHashTable};
    ///
    /// let t = ShmHashTable::<u32, u32>::heap(16)?;
    /// for k in 1..=3 {
    ///     t.visit(&k, AccessMode::CreateIfMiss, |_, v, _| *v = k * 10)?;
    /// }
    /// let mut total = 0;
    /// let outcome = t.travel(|_slot, _key, value| {
    ///     total += *value;
    ///     *value = 0; // reset while visiting
    /// })?;
    /// assert!(outcome.is_completed());
    /// assert_eq!((total, t.get(&2)?), (60, Some(0)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn travel<F, R>(&self, visitor: F) -> Result<TravelOutcome, TableError>
    where
        F: FnMut(usize, &K, &mut V) -> R,
        R: TravelControl,
    {
        self.travel_with(self.wait, visitor)
    }

    /// [`travel`](Self::travel) with another per-slot timeout or backoff.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{ShmHashTable, Wait};
    /// use std::time::Duration;
    ///
    /// let t = ShmHashTable::<u64, u64>::heap(16)?;
    /// t.insert(&1, &5)?;
    /// let mut sum = 0;
    /// let outcome = t.travel_with(Wait::timeout(Duration::from_millis(20)), |_, _, v| sum += *v)?;
    /// assert!(outcome.is_completed() && sum == 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn travel_with<B, F, R>(
        &self,
        wait: Wait<B>,
        visitor: F,
    ) -> Result<TravelOutcome, TableError>
    where
        B: BackoffPolicy,
        F: FnMut(usize, &K, &mut V) -> R,
        R: TravelControl,
    {
        self.travel_range(0, wait, visitor)
    }

    /// The traversal of `travel` and `travel_from`, from slot `start` on.
    fn travel_range<B, F, R>(
        &self,
        start: usize,
        wait: Wait<B>,
        visitor: F,
    ) -> Result<TravelOutcome, TableError>
    where
        B: BackoffPolicy,
        F: FnMut(usize, &K, &mut V) -> R,
        R: TravelControl,
    {
        let locker = Locker { owner: self.owner()?, rollback: self.rollback };
        let mut waiting = Waiting::new(&wait, self);
        Ok(match self.raw().travel(start, locker, &mut waiting, visitor) {
            RawTravel::Completed { visited } => TravelOutcome::Completed { visited },
            RawTravel::Stopped { slot, visited } => TravelOutcome::Stopped { slot, visited },
            RawTravel::TimedOut { slot, visited, ctrl, waited } => TravelOutcome::TimedOut {
                slot,
                visited,
                state: ctrl.state(),
                holder: self.holder(ctrl),
                waited,
            },
        })
    }

    /// Shortens the chain at slot `index`, whose entry was just removed (and counted as such).
    pub(crate) fn removed(&self, index: usize) {
        let owner = self.segment.owner().ok();
        // Shortening locks the slot (EMPTYING), which needs an owner id; without one the slot
        // stays FREED, for an insert to reuse.
        if let Some(owner) = owner {
            self.raw().shorten(index, owner);
        }
    }

    /// The number of entries, from counters that every insert and removal updates (sharded by
    /// process and thread, so that counting does not slow writers down).
    ///
    /// Exact when no insert or removal is in flight; with some in flight, it is off by at most
    /// their number (an insert counts from the moment it claims its slot). An insert whose
    /// process dies before it commits is uncounted when its slot is recovered; a process killed
    /// between removing an entry and counting the removal leaves the count one too high until
    /// [`recount`](Self::recount).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// let t = ShmHashTable::<u64, u64>::heap(16)?;
    /// assert!(t.is_empty());
    /// t.insert(&1, &1)?;
    /// t.insert(&1, &2)?; // an update: still one entry
    /// t.insert(&2, &1)?;
    /// assert_eq!(t.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.segment.entries().clamp(0, self.capacity as i64) as usize
    }

    /// Whether [`len`](Self::len) is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// let t = ShmHashTable::<u64, u64>::heap(16)?;
    /// assert!(t.is_empty());
    /// t.insert(&1, &1)?;
    /// assert!(!t.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts the entries slot by slot, and corrects the counters behind [`len`](Self::len) by
    /// the difference (after a crash, say). Returns the count.
    ///
    /// The scan reads each slot once (no lock), so with no write in flight the count is exact
    /// and `len()` equals it afterwards; with writes in flight, each slot counts as it was when
    /// the scan passed it. Like the counters, the scan counts an insert from its claim on (a
    /// slot in INSERTING or NEW), so an insert in flight, or one whose process died and is
    /// recovered later, is counted once either way.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// let t = ShmHashTable::<u64, u64>::heap(16)?;
    /// t.insert(&1, &1)?;
    /// assert_eq!(t.recount()?, 1);
    /// assert_eq!(t.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recount(&self) -> Result<usize, TableError> {
        let owner = self.owner()?;
        let before = self.segment.entries();
        let counted = (0..self.capacity).filter(|&i| self.raw().ctrl(i).is_counted()).count();
        let after = self.segment.entries();
        // Writes counted while we scanned were seen by the scan or not, either way: correct by
        // the difference from the counters' value before the scan only if none moved.
        if before == after {
            self.segment.add_entries(Some(owner), counted as i64 - after);
        }
        Ok(counted)
    }

    /// The number of slots.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// assert_eq!(ShmHashTable::<u64, u64>::heap(1000)?.capacity(), 1024);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the table keeps undo records (see [`TableOptions::undo_records`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// assert!(!ShmHashTable::<u64, u64>::heap(8)?.undo_records()); // the default
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn undo_records(&self) -> bool {
        self.undo
    }

    /// Whether the process registered as `owner` (a lock holder named by a
    /// [`LockHolder`] or a monitor report) is alive: [`Liveness::Unknown`] for a process in
    /// another pid namespace.
    ///
    /// [`Liveness::Unknown`]: crate::Liveness::Unknown
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Liveness, ShmHashTable};
    ///
    /// let t = ShmHashTable::<u64, u64>::heap(8)?;
    /// let me = t.segment().owner()?; // this handle's own entry
    /// assert_eq!(t.owner_liveness(me), Liveness::Alive);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn owner_liveness(&self, owner: OwnerId) -> crate::Liveness {
        self.segment.owner_liveness(owner)
    }

    /// The state of slot `index` (for monitors and tests).
    ///
    /// # Panics
    /// If `index >= capacity()`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{AccessMode, ShmHashTable, SlotState};
    ///
    /// let t = ShmHashTable::<u64, u64>::heap(8)?;
    /// t.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v = 1)?;
    /// let ready = (0..t.capacity()).filter(|&i| t.slot_state(i) == SlotState::Ready).count();
    /// assert_eq!(ready, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn slot_state(&self, index: usize) -> SlotState {
        assert!(index < self.capacity, "slot {index} out of range (capacity {})", self.capacity);
        self.raw().ctrl(index).state()
    }

    /// What the segment header says (creator, layouts, sizes, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{ShmHashTable, StructureKind};
    ///
    /// let t = ShmHashTable::<u32, [u8; 12]>::heap(64)?;
    /// let info = t.info();
    /// assert_eq!((info.kind, info.capacity, info.value.desc.as_str()), (StructureKind::HashTable, 64, "[u8;12]"));
    /// assert_eq!(info.creator_pid, std::process::id());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn info(&self) -> SegmentInfo {
        self.segment.info()
    }

    /// The segment under the table.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// let t = ShmHashTable::<u64, u64>::heap(8)?;
    /// assert_eq!(t.segment().attached_processes().len(), 1, "this handle");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// The default timeout of this handle's operations.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmHashTable};
    /// use std::time::Duration;
    ///
    /// let t = ShmHashTable::<u64, u64>::options()
    ///     .capacity(8)
    ///     .timeout(Duration::from_millis(250))
    ///     .open(&Backing::Heap)?;
    /// assert_eq!(t.timeout(), Duration::from_millis(250));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn timeout(&self) -> Duration {
        self.wait.timeout
    }

    /// Removes the table's name (POSIX shm or file). This handle, and every process that has
    /// the table open, keeps using it; the memory is freed when the last of them closes it.
    /// (The same as the rings' and the vector's `destroy`.)
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{OpenErrorKind, ShmHashTable};
    ///
    /// # let name = format!("/shmap-doc-destroy-{}", std::process::id());
    /// let t = ShmHashTable::<u64, u64>::open_or_create(&name, 8)?;
    /// t.destroy()?;
    /// t.insert(&1, &1)?; // the handle keeps working
    /// assert!(matches!(ShmHashTable::<u64, u64>::open(&name).unwrap_err().kind(), OpenErrorKind::NotFound));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn destroy(&self) -> Result<(), OpenError> {
        Segment::unlink(self.segment.backing())
    }

    /// Removes the name of the POSIX shared-memory table `name` without opening it.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmHashTable;
    ///
    /// # let name = format!("/shmap-doc-unlink-{}", std::process::id());
    /// drop(ShmHashTable::<u64, u64>::open_or_create(&name, 8)?);
    /// ShmHashTable::<u64, u64>::unlink(&name)?;
    /// assert!(ShmHashTable::<u64, u64>::open(&name).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unlink(name: &str) -> Result<(), OpenError> {
        Segment::unlink(&Backing::shm(name))
    }
}

/// Model-checking support: only in loom builds.
#[cfg(all(test, shmap_loom))]
impl<K: ShmKey, V: ShmValue, H: ShmHasher> ShmHashTable<K, V, H> {
    /// Makes `key`'s slot (which must hold a committed entry) look as if a process had died
    /// while writing `torn` back over it: WRITING, held by a dead owner (pid 0), with the
    /// current value saved in the undo record. Only for `table/loom_tests.rs`.
    pub(crate) fn loom_plant_dead_write_back(&self, key: &K, torn: &V) {
        use crate::sync::primitive::Ordering;
        let dead = crate::process::ProcessIdentity {
            pid: 0,
            ..crate::process::ProcessIdentity::current().unwrap()
        };
        let owner = self.segment.processes().register(&dead, &|_| false).expect("a free entry");
        let (index, _) =
            self.raw().get(key, Self::hash(key), &self.wait, self).unwrap().expect("present");
        let slot = self.raw().slot(index);
        for (undo, value) in slot.undo.iter().zip(slot.value) {
            undo.store(value.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        crate::sync::words::store(slot.value, torn);
        let c = self.raw().ctrl(index);
        slot.ctrl.store(c.locked(SlotState::Writing, owner).0, Ordering::Release);
    }

    /// Plants, in slot `index`, an insert of `key` by a process that died after publishing it
    /// (NEW, as a reusing insert killed in its visitor). Only for `table/loom_tests.rs`.
    pub(crate) fn loom_plant_dead_insert(&self, index: usize, key: &K) {
        use crate::sync::primitive::Ordering;
        let dead = crate::process::ProcessIdentity {
            pid: 0,
            ..crate::process::ProcessIdentity::current().unwrap()
        };
        let owner = self.segment.processes().register(&dead, &|_| false).expect("a free entry");
        let slot = self.raw().slot(index);
        let seen = self.raw().ctrl(index);
        assert!(seen.is_vacant() || seen.is(SlotState::Empty), "plant into a free slot");
        crate::sync::words::store(slot.key, key);
        let new = seen.claimed(RawTable::<K, V>::tag(Self::hash(key)), owner);
        slot.ctrl.store(new.locked(SlotState::New, owner).0, Ordering::Release);
        self.segment.add_entries(Some(owner), 1); // counted at its claim, as a real one is
    }

    /// The slot index of `key`'s home. Only for `table/loom_tests.rs`.
    pub(crate) fn loom_home(&self, key: &K) -> usize {
        self.raw().home(Self::hash(key))
    }

    /// The control word of `key`'s home slot, as a monitor samples it. Only for `table/loom_tests.rs`.
    pub(crate) fn loom_home_ctrl(&self, key: &K) -> u64 {
        let raw = self.raw();
        raw.ctrl(raw.home(Self::hash(key))).0
    }
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> Host for ShmHashTable<K, V, H> {
    fn liveness(&self, owner: OwnerId) -> crate::Liveness {
        if self.segment.is_read_only() {
            // A reader never writes, so it never recovers a dead holder's slot: it waits for
            // a process that can, and times out naming the holder.
            return crate::Liveness::Unknown;
        }
        self.segment.owner_liveness(owner)
    }

    fn me(&self) -> Option<OwnerId> {
        self.segment.owner().ok()
    }

    fn recovered(&self, action: RecoveryAction) {
        self.segment.count_recovery(action == RecoveryAction::ReleasedTorn);
        if action == RecoveryAction::InsertAbandoned {
            self.segment.uncount_abandoned_insert();
        }
    }

    #[inline(always)]
    fn count_entries(&self, owner: Option<OwnerId>, delta: i64) {
        self.segment.add_entries(owner, delta);
    }
}

#[cfg(all(test, not(shmap_loom)))]
mod bounds_tests;
#[cfg(all(test, shmap_loom))]
mod loom_tests;
#[cfg(all(test, not(shmap_loom)))]
mod removal_tests;
#[cfg(all(test, not(shmap_loom)))]
mod tests;
