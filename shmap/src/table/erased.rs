//! A hash table's slots as words, whatever its key and value types: the view that a monitor
//! (and the `shmap` command, which opens a table without its types) reads.
//!
//! It addresses slots with the same [`SlotLayout`] as the typed table, from the geometry the
//! segment header records (validated at open), so the two never disagree on where a slot is.

use crate::segment::Segment;
#[cfg(not(shmap_loom))] // `from_segment` is not built under loom
use crate::segment::StructureKind;
use crate::sync::primitive::{AtomicU64, Ordering};
#[cfg(not(shmap_loom))]
use crate::table::FLAG_UNDO;
use crate::table::ctrl::Ctrl;
use crate::table::slot::{Slot, SlotLayout};

/// A hash table's slots as words, whatever its key and value types.
pub(crate) struct ErasedTable<'a> {
    pub(crate) words: &'a [AtomicU64],
    pub(crate) capacity: usize,
    pub(crate) layout: SlotLayout,
    pub(crate) key_size: usize,
    pub(crate) value_size: usize,
    pub(crate) segment: &'a Segment,
}

impl<'a> ErasedTable<'a> {
    /// The table in a hash-table segment opened without its types (for the `shmap` command).
    #[cfg(not(shmap_loom))]
    pub(crate) fn from_segment(segment: &'a Segment) -> Option<Self> {
        let info = segment.info();
        if info.kind != StructureKind::HashTable {
            return None;
        }
        let layout = SlotLayout::new(
            info.key.size as usize,
            info.value.size as usize,
            info.flags & FLAG_UNDO != 0,
        );
        let capacity = usize::try_from(info.capacity).ok()?;
        let words = segment.body();
        (layout.bytes() == info.slot_size && words.len() == capacity * layout.stride).then_some(
            ErasedTable {
                words,
                capacity,
                layout,
                key_size: info.key.size as usize,
                value_size: info.value.size as usize,
                segment,
            },
        )
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

    /// The first `len` bytes of `words` (relaxed loads: a best-effort copy).
    pub(crate) fn bytes(words: &[AtomicU64], len: usize) -> Vec<u8> {
        let mut out: Vec<u8> =
            words.iter().flat_map(|w| w.load(Ordering::Relaxed).to_ne_bytes()).collect();
        out.truncate(len);
        out
    }
}
