//! How to create or open a table: [`TableOptions`], and the segment flags they record.

use std::fmt;
use std::marker::PhantomData;

use crate::error::OpenError;
use crate::hash::{DefaultHasher, ShmHasher};
use crate::layout::{ShmKey, ShmValue};
use crate::segment::{Backing, Segment, SegmentInfo, SegmentOptions, SegmentSpec, StructureKind};
use crate::structure::round_capacity;
use crate::sync::backoff::Wait;
use crate::table::{ShmHashTable, Types};

/// How to create or open a [`ShmHashTable`]: capacity, rollback, timeouts, permissions.
///
/// # Examples
///
/// ```
/// use shmap::{Backing, ShmHashTable};
/// use std::time::Duration;
///
/// # let name = format!("/shmap-doc-options-{}", std::process::id());
/// let table = ShmHashTable::<u32, [u64; 4]>::options()
///     .capacity(1000) // rounded up to 1024 slots
///     .timeout(Duration::from_millis(200))
///     .rollback(false)
///     .mode(0o660)
///     .open(&Backing::shm(&name))?;
/// assert_eq!(table.capacity(), 1024);
/// # table.destroy()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TableOptions<K: ShmKey, V: ShmValue, H: ShmHasher = DefaultHasher> {
    capacity: Option<usize>,
    /// Whether an existing table with more slots than `capacity` is adopted.
    adopt_larger: bool,
    undo: Option<bool>,
    rollback: bool,
    wait: Wait,
    segment: SegmentOptions,
    _types: Types<K, V, H>,
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> Clone for TableOptions<K, V, H> {
    fn clone(&self) -> Self {
        TableOptions {
            capacity: self.capacity,
            adopt_larger: self.adopt_larger,
            undo: self.undo,
            rollback: self.rollback,
            wait: self.wait,
            segment: self.segment.clone(),
            _types: PhantomData,
        }
    }
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> fmt::Debug for TableOptions<K, V, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableOptions")
            .field("capacity", &self.capacity)
            .field("adopt_larger", &self.adopt_larger)
            .field("undo", &self.undo)
            .field("rollback", &self.rollback)
            .field("wait", &self.wait)
            .field("segment", &self.segment)
            .finish()
    }
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> Default for TableOptions<K, V, H> {
    fn default() -> Self {
        TableOptions {
            capacity: None,
            adopt_larger: false,
            undo: None,
            rollback: true,
            wait: Wait::default(),
            segment: SegmentOptions::default(),
            _types: PhantomData,
        }
    }
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> TableOptions<K, V, H> {
    /// The number of slots, rounded up to a power of two. Required to create a table; when
    /// opening an existing one, it must match (after rounding) or the open fails with
    /// [`CapacityMismatch`](crate::OpenErrorKind::CapacityMismatch). Without it, an open adopts
    /// the segment's capacity.
    ///
    /// Linear probing slows down as the table fills: keep the live entries below about 80% of
    /// the slots, and below about 75% if keys come and go. A removed key's slot is reused, but
    /// no key is moved nearer its home slot, so under steady churn a lookup that hits walks
    /// about as far as an insert at that load: a mean of about 2.4 slots at 50% live, 8 at 75%,
    /// 11 at 80% and 40 at 90%, against 1.5, 2.5, 2.9 and 5.5 in a table filled once (see
    /// BENCHMARKS.md, "Churn's end against its start").
    pub fn capacity(mut self, slots: usize) -> Self {
        self.capacity = Some(slots);
        self
    }

    /// At least `slots` slots: creates the table with `slots` (rounded up to a power of two),
    /// like [`capacity`](Self::capacity), and opens an existing one that has that many or more
    /// (it has room for what was asked); only a smaller one is a
    /// [`CapacityMismatch`](crate::OpenErrorKind::CapacityMismatch). What
    /// [`ShmHashTable::open_or_create`] asks for.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmHashTable};
    ///
    /// # let name = format!("/shmap-doc-min-capacity-{}", std::process::id());
    /// let big = ShmHashTable::<u64, u64>::open_or_create(&name, 4096)?;
    /// let small = ShmHashTable::<u64, u64>::options().min_capacity(1000).open(&Backing::shm(&name))?;
    /// assert_eq!(small.capacity(), 4096, "adopted");
    /// assert!(ShmHashTable::<u64, u64>::options().capacity(1000).open(&Backing::shm(&name)).is_err());
    /// # big.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn min_capacity(mut self, slots: usize) -> Self {
        self.capacity = Some(slots);
        self.adopt_larger = true;
        self
    }

    /// Whether each slot keeps an undo record: the value before a write-back, kept in shared
    /// memory while the new value is written, so that a process killed in the middle of writing
    /// a value back leaves the value exactly as it was before the visit once a waiter or a
    /// monitor recovers the slot. Costs a value's worth of bytes per slot and one extra copy per
    /// changed value; without it, such a value is released as it is (a value of more than 8
    /// bytes may then mix old and new words; the recovery is counted as torn).
    ///
    /// A property of the segment, set when it is created (default `false`); when opening, the
    /// segment's setting is adopted unless this is given, and a mismatch is an error.
    pub fn undo_records(mut self, undo: bool) -> Self {
        self.undo = Some(undo);
        self
    }

    /// Whether a visitor that fails (returns `false` or `Err`) or panics leaves the value as it
    /// was before the visit (default `true`). Without rollback, the value keeps whatever the
    /// visitor did to it. A new entry whose visitor fails is never kept either way.
    ///
    /// This is a property of this handle, not of the segment: it only decides what this
    /// process writes back.
    pub fn rollback(mut self, rollback: bool) -> Self {
        self.rollback = rollback;
        self
    }

    crate::structure::wait_setters!(
        "a locked slot",
        "shmap::ShmHashTable::<u64, u64>::options().capacity(8)"
    );
    crate::structure::segment_setters!(
        "table",
        "shmap::ShmHashTable::<u64, u64>::options().capacity(8)"
    );

    /// Creates or opens the table at `backing`.
    pub fn open(self, backing: &Backing) -> Result<ShmHashTable<K, V, H>, OpenError> {
        self.open_as(StructureKind::HashTable, [0; 4], backing)
    }

    /// Creates or opens, at `backing`, a segment of `kind` built on this table (a cache), whose
    /// creator records `params`.
    pub(crate) fn open_as(
        self,
        kind: StructureKind,
        params: [u64; 4],
        backing: &Backing,
    ) -> Result<ShmHashTable<K, V, H>, OpenError> {
        let capacity = match self.capacity {
            None => None,
            Some(n) => Some(
                round_capacity(n, "table", "slot").map_err(|kind| OpenError::new(backing, kind))?,
            ),
        };
        let flags = self.undo.map(|undo| if undo { FLAG_UNDO } else { 0 });
        let spec = SegmentSpec {
            adopt_larger: self.adopt_larger,
            ..ShmHashTable::<K, V, H>::spec(kind, capacity, flags, params)
        };
        let segment = Segment::open(backing, &spec, &self.segment)?;
        Ok(ShmHashTable::from_segment(segment, self.rollback, self.wait))
    }
}

/// Segment flag: each slot has an undo record.
pub(crate) const FLAG_UNDO: u64 = 1;

/// What the header says about a table, for readers without its types (the `shmap` command).
impl SegmentInfo {
    /// Whether the segment holds a hash table whose slots keep undo records (see
    /// [`TableOptions::undo_records`](crate::TableOptions::undo_records)).
    pub fn undo_records(&self) -> bool {
        self.kind == StructureKind::HashTable && self.flags & FLAG_UNDO != 0
    }
}
