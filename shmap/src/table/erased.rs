//! A hash table's slots as words, whatever its key and value types: the view that a monitor
//! (and the `shmap` command, which opens a table without its types) reads.
//!
//! It addresses slots with the same [`SlotLayout`] as the typed table, from the geometry the
//! segment header records (validated at open), so the two never disagree on where a slot is.

#[cfg(not(shmap_loom))] // `from_segment` is not built under loom
use crate::hash::{DefaultHasher, ShmHasher};
use crate::segment::Segment;
#[cfg(not(shmap_loom))]
use crate::segment::StructureKind;
use crate::sync::primitive::{AtomicU32, AtomicU64, Ordering};
#[cfg(not(shmap_loom))]
use crate::table::FLAG_UNDO;
use crate::table::bounds::{self, Bound, UNBOUNDED, UNCHECKED_REACH};
use crate::table::ctrl::{Ctrl, SlotState};
use crate::table::slot::{Slot, SlotLayout};

/// A hash table's slots as words, whatever its key and value types.
pub(crate) struct ErasedTable<'a> {
    pub(crate) words: &'a [AtomicU64],
    pub(crate) capacity: usize,
    pub(crate) layout: SlotLayout,
    pub(crate) key_size: usize,
    pub(crate) value_size: usize,
    pub(crate) segment: &'a Segment,
    /// The table's hash function over key bytes, where known: the typed table's, or the
    /// default hasher's when the header names it. Without it, probe lengths cannot be told.
    pub(crate) hash: Option<fn(&[u8]) -> u64>,
    /// The table's flag that a slot was ever freed (set by recoveries that free one).
    pub(crate) freed: &'a AtomicU64,
    /// The table's probe bounds (see [`bounds`]).
    pub(crate) bounds: &'a [AtomicU32],
}

impl<'a> ErasedTable<'a> {
    /// The table in a hash-table segment opened without its types (for the `shmap` command).
    #[cfg(not(shmap_loom))]
    pub(crate) fn from_segment(segment: &'a Segment) -> Option<Self> {
        let info = segment.info();
        if !matches!(info.kind, StructureKind::HashTable | StructureKind::Cache) {
            return None;
        }
        let layout = SlotLayout::new(
            info.key.size as usize,
            info.value.size as usize,
            info.flags & FLAG_UNDO != 0,
        );
        let capacity = usize::try_from(info.capacity).ok()?;
        let hash = (info.hasher_id == DefaultHasher::ID)
            .then_some(DefaultHasher::hash as fn(&[u8]) -> u64);
        let body = segment.words();
        let slots = capacity.checked_mul(layout.stride)?;
        let side = bounds::words_for(capacity).div_ceil(2);
        if layout.bytes() != info.slot_size || body.len() != slots.checked_add(side)? {
            return None;
        }
        let (words, bounds) = bounds::split_body(body, capacity, layout.stride);
        Some(ErasedTable {
            words,
            capacity,
            layout,
            key_size: info.key.size as usize,
            value_size: info.value.size as usize,
            segment,
            hash,
            freed: segment.slots_freed(),
            bounds,
        })
    }

    /// Slot `index`'s words.
    ///
    /// # Panics
    /// If `index >= capacity`.
    pub(crate) fn slot(&self, index: usize) -> Slot<'a> {
        self.layout.slot(self.words, index)
    }

    pub(crate) fn ctrl(&self, index: usize) -> Ctrl {
        // Acquire: pairs with the Release stores of the protocol, so a key published by the
        // word we read (NEW or later) is visible to the copy that follows.
        Ctrl(self.slot(index).ctrl.load(Ordering::Acquire))
    }

    /// How the slots are used: one pass over the control words (and, for probe lengths, over
    /// the keys of committed entries), without locks or writes. Slots that change during the
    /// pass count as the pass saw them.
    pub(crate) fn occupancy(&self) -> Occupancy {
        let mask = self.capacity - 1;
        let mut states = [0usize; 8];
        let (mut hit_total, mut hit_max) = (0usize, 0usize);
        for index in 0..self.capacity {
            let c = self.ctrl(index);
            states[c.state() as usize] += 1;
            if let (true, Some(hash)) = (c.holds_entry(), self.hash) {
                let key = Self::bytes(self.slot(index).key, self.key_size);
                let home = hash(&key) as usize & mask;
                let probes = (index.wrapping_sub(home) & mask) + 1;
                hit_total += probes;
                hit_max = hit_max.max(probes);
            }
        }
        // A lookup of an absent key starting at slot i looks at every slot up to the next
        // EMPTY one, included, or (past the first few) up to the reach of its probe bound: one
        // backward pass (twice around, so that runs that wrap around the end are measured too).
        let mut to_empty = vec![0usize; self.capacity];
        let mut next_empty: Option<usize> = None;
        for step in 0..2 * self.capacity {
            let i = (2 * self.capacity - 1 - step) & mask;
            if self.ctrl(i).is(SlotState::Empty) {
                next_empty = Some(i);
            }
            to_empty[i] = next_empty.map_or(self.capacity, |e| (e.wrapping_sub(i) & mask) + 1);
        }
        for (home, walk) in to_empty.iter_mut().enumerate() {
            // Relaxed: a best-effort snapshot, like the control words.
            let reach = Bound(self.bounds[home / bounds::GROUP].load(Ordering::Relaxed)).reach();
            if reach != UNBOUNDED {
                *walk = (*walk).min((reach + 1).max(UNCHECKED_REACH));
            }
        }
        let entries = states[SlotState::Ready as usize]
            + states[SlotState::Accessing as usize]
            + states[SlotState::Writing as usize];
        Occupancy {
            states: std::array::from_fn(|i| (SlotState::ALL[i], states[i])),
            entries,
            counted: self.segment.entries().clamp(0, self.capacity as i64) as usize,
            reusable: states[SlotState::Freed as usize],
            probes: self.hash.map(|_| ProbeLengths {
                hit_mean: if entries == 0 { 0.0 } else { hit_total as f64 / entries as f64 },
                hit_max,
                miss_mean: to_empty.iter().sum::<usize>() as f64 / self.capacity as f64,
                miss_max: to_empty.iter().copied().max().unwrap_or(0),
            }),
        }
    }

    /// The first `len` bytes of `words` (relaxed loads: a best-effort copy).
    pub(crate) fn bytes(words: &[AtomicU64], len: usize) -> Vec<u8> {
        let mut out: Vec<u8> =
            words.iter().flat_map(|w| w.load(Ordering::Relaxed).to_ne_bytes()).collect();
        out.truncate(len);
        out
    }
}

/// How a table's slots are used, from one pass over them (see
/// [`Monitor::occupancy`](crate::Monitor::occupancy)).
///
/// # Examples
///
/// ```
/// use shmap::{Monitor, ShmHashTable, SlotState};
///
/// let t = ShmHashTable::<u64, u64>::heap(64)?;
/// for k in 0..10 {
///     t.insert(&k, &k)?;
/// }
/// t.remove(&3)?;
/// let o = Monitor::new(&t).occupancy();
/// assert_eq!((o.entries, o.counted), (9, 9));
/// assert_eq!(o.states[SlotState::Ready as usize], (SlotState::Ready, 9));
/// let probes = o.probes.expect("the default hasher is known");
/// assert!(probes.hit_mean >= 1.0 && probes.hit_max >= 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Occupancy {
    /// How many slots are in each state, in the order of [`SlotState::ALL`].
    pub states: [(SlotState, usize); 8],
    /// Committed entries found by the pass (READY, ACCESSING, WRITING).
    pub entries: usize,
    /// The entry count that [`len`](crate::ShmHashTable::len) reads (the counters): equal to
    /// `entries` when no write was in flight, unless a crash left it off (see
    /// [`recount`](crate::ShmHashTable::recount)).
    pub counted: usize,
    /// FREED slots: removed entries' slots, which inserts reuse.
    pub reusable: usize,
    /// Probe lengths, where the table's hasher is known (`None` for a custom hasher seen
    /// without the table's types).
    pub probes: Option<ProbeLengths>,
}

/// How many slots lookups look at (each counts the slot it stops at).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbeLengths {
    /// A lookup of a present key, averaged over the entries.
    pub hit_mean: f64,
    /// The longest of those.
    pub hit_max: usize,
    /// A lookup of an absent key (also an insert's walk), averaged over the home slots it may
    /// start from: the slots up to the next EMPTY one.
    pub miss_mean: f64,
    /// The longest of those (the longest run of non-EMPTY slots, plus one).
    pub miss_max: usize,
}
