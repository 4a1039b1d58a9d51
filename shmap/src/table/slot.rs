//! Slot layout, and copying keys and values in and out of shared words.
//!
//! A slot is packed, not cache-line aligned: one control word, then the key, then the value,
//! each rounded up to whole 8-byte words (a `u64 → u64` slot is 24 bytes, against 64 in the
//! original). All of it is accessed through `AtomicU64` loads and stores, so a reader copying a
//! value while a writer (in any process) stores a new one is a race on atomics — defined
//! behaviour in the Rust memory model — rather than a data race. A copy that a writer tore is
//! detected by the seqlock version and discarded, and since every bit pattern of a stored type is
//! valid ([`ShmLayout`]), even a torn copy is a valid value of the type.

use crate::bytes;
use crate::layout::ShmLayout;
use crate::primitive::{AtomicU64, Ordering};

/// The number of 8-byte words that hold `bytes` bytes.
pub(crate) const fn words_for(bytes: usize) -> usize {
    bytes.div_ceil(8)
}

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

/// Splits `T`'s bytes at the last whole word: `size_of::<T>()` is a constant, so after inlining
/// every copy below is a fixed sequence of 8-byte moves (and at most one shorter one), with no
/// loop or `memcpy` call left even in a build without LTO.
#[inline(always)]
fn split_words(bytes: &[u8]) -> (&[u8], &[u8]) {
    bytes.split_at(bytes.len() / 8 * 8)
}

/// The word holding `tail` (fewer than 8 bytes), zero-padded.
#[inline(always)]
fn word_of_tail(tail: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..tail.len()].copy_from_slice(tail);
    u64::from_ne_bytes(word)
}

/// `chunk` (exactly 8 bytes) as a word.
#[inline(always)]
fn word_of(chunk: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    u64::from_ne_bytes(word)
}

/// Copies a `T` out of `words` with relaxed loads. The caller orders the loads (a lock it holds,
/// or the seqlock fences).
#[inline]
pub(crate) fn load<T: ShmLayout>(words: &[AtomicU64]) -> T {
    let mut out = bytes::zeroed::<T>();
    let bytes = bytes::as_bytes_mut(&mut out);
    let (full, tail) = bytes.split_at_mut(bytes.len() / 8 * 8);
    let mut words = words.iter();
    for (chunk, word) in full.chunks_exact_mut(8).zip(words.by_ref()) {
        chunk.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
    }
    if let (false, Some(word)) = (tail.is_empty(), words.next()) {
        let len = tail.len();
        tail.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes()[..len]);
    }
    out
}

/// Copies `value` into `words` with relaxed stores (the tail of a partial word is zero).
#[inline]
pub(crate) fn store<T: ShmLayout>(words: &[AtomicU64], value: &T) {
    let (full, tail) = split_words(bytes::as_bytes(value));
    let mut words = words.iter();
    for (chunk, word) in full.chunks_exact(8).zip(words.by_ref()) {
        word.store(word_of(chunk), Ordering::Relaxed);
    }
    if let (false, Some(word)) = (tail.is_empty(), words.next()) {
        word.store(word_of_tail(tail), Ordering::Relaxed);
    }
}

/// Whether `words` hold exactly `value`'s bytes.
#[inline]
pub(crate) fn equals<T: ShmLayout>(words: &[AtomicU64], value: &T) -> bool {
    let (full, tail) = split_words(bytes::as_bytes(value));
    let mut words = words.iter();
    let full_equal = full
        .chunks_exact(8)
        .zip(words.by_ref())
        .all(|(chunk, word)| word.load(Ordering::Relaxed) == word_of(chunk));
    full_equal
        && (tail.is_empty()
            || words.next().is_none_or(|word| word.load(Ordering::Relaxed) == word_of_tail(tail)))
}

#[cfg(all(test, not(shmap_loom)))]
mod tests {
    use super::*;

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
    fn odd_sizes_round_trip_with_zero_padding() {
        let w = words(2);
        let value: [u8; 11] = *b"hello world";
        store(&w, &value);
        assert_eq!(load::<[u8; 11]>(&w), value);
        assert!(equals(&w, &value));
        assert!(!equals(&w, b"hello worlD"));
        assert_eq!(w[1].load(Ordering::Relaxed).to_ne_bytes()[3..], [0; 5], "the tail stays zero");
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
