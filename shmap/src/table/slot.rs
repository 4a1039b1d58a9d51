//! Slot layout: where a slot's control word, key, value and undo record lie.
//!
//! A slot is packed, not cache-line aligned: one control word, then the key, then the value,
//! each rounded up to whole 8-byte words (a `u64 → u64` slot is 24 bytes, against 64 in the
//! original), then the undo record if the table keeps them. All of it is accessed through
//! `AtomicU64`s ([`words`](crate::sync::words) copies keys and values in and out).

use crate::sync::primitive::AtomicU64;
use crate::sync::words::words_for;

/// The word offsets of a slot's parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotLayout {
    pub(crate) key_words: usize,
    pub(crate) value_words: usize,
    /// Words of the undo record: as many as the value when the table keeps undo records, else 0.
    pub(crate) undo_words: usize,
    /// Words in all: control + key + value + undo.
    pub(crate) stride: usize,
}

impl SlotLayout {
    pub(crate) const fn new(key_bytes: usize, value_bytes: usize, undo: bool) -> SlotLayout {
        let key_words = words_for(key_bytes);
        let value_words = words_for(value_bytes);
        let undo_words = if undo { value_words } else { 0 };
        SlotLayout {
            key_words,
            value_words,
            undo_words,
            stride: 1 + key_words + value_words + undo_words,
        }
    }

    /// Slot `index` of the slots laid out in `words` (`index * stride` words in).
    ///
    /// # Panics
    /// If the slot does not lie inside `words`.
    #[inline]
    pub(crate) fn slot<'a>(&self, words: &'a [AtomicU64], index: usize) -> Slot<'a> {
        let start = index * self.stride;
        Slot::new(&words[start..start + self.stride], *self)
    }

    /// The slot size in bytes, as recorded in the segment header.
    pub(crate) const fn bytes(&self) -> u64 {
        (self.stride * 8) as u64
    }
}

/// One slot's words.
#[derive(Clone, Copy)]
pub(crate) struct Slot<'a> {
    pub(crate) ctrl: &'a AtomicU64,
    pub(crate) key: &'a [AtomicU64],
    pub(crate) value: &'a [AtomicU64],
    /// The value before the write-back in progress (empty without undo records).
    pub(crate) undo: &'a [AtomicU64],
}

impl<'a> Slot<'a> {
    /// Splits a slot's `stride` words.
    #[inline]
    pub(crate) fn new(words: &'a [AtomicU64], layout: SlotLayout) -> Slot<'a> {
        let (ctrl, rest) = words.split_first().expect("a slot has a control word");
        let (key, rest) = rest.split_at(layout.key_words);
        let (value, undo) = rest.split_at(layout.value_words);
        Slot { ctrl, key, value, undo: &undo[..layout.undo_words] }
    }
}

#[cfg(all(test, not(shmap_loom)))]
mod tests {
    use super::*;
    use crate::sync::primitive::Ordering;

    fn words(n: usize) -> Vec<AtomicU64> {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn layouts_are_packed() {
        assert_eq!(SlotLayout::new(8, 8, false).bytes(), 24, "a u64 -> u64 slot is 24 bytes");
        assert_eq!(SlotLayout::new(8, 8, true).bytes(), 32, "plus an 8-byte undo record");
        assert_eq!(SlotLayout::new(8, 64, false).bytes(), 80);
        assert_eq!(
            SlotLayout::new(3, 0, true),
            SlotLayout { key_words: 1, value_words: 0, undo_words: 0, stride: 2 }
        );
    }

    #[test]
    fn slots_split_into_parts() {
        let w = words(1 + 2 + 1 + 1);
        let s = Slot::new(&w, SlotLayout::new(16, 8, true));
        assert_eq!((s.key.len(), s.value.len(), s.undo.len()), (2, 1, 1));
        s.ctrl.store(5, Ordering::Relaxed);
        assert_eq!(w[0].load(Ordering::Relaxed), 5);
    }
}
