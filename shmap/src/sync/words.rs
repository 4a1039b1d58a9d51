//! Copying stored types in and out of shared 8-byte words.
//!
//! Everything a segment stores (a table's keys and values, a ring's elements) is accessed
//! through `AtomicU64` loads and stores, so a reader copying a value while a writer (in any
//! process) stores a new one is a race on atomics — defined behaviour in the Rust memory model —
//! rather than a data race. A copy that a writer tore is detected by the structure's own
//! protocol (a seqlock version, a cell's sequence word) and discarded, and since every bit
//! pattern of a stored type is valid ([`ShmLayout`]), even a torn copy is a valid value.

use crate::bytes;
use crate::layout::ShmLayout;
use crate::sync::primitive::{AtomicU64, Ordering};

/// The number of 8-byte words that hold `bytes` bytes.
pub(crate) const fn words_for(bytes: usize) -> usize {
    bytes.div_ceil(8)
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
    fn odd_sizes_round_trip_with_zero_padding() {
        let w = words(2);
        let value: [u8; 11] = *b"hello world";
        store(&w, &value);
        assert_eq!(load::<[u8; 11]>(&w), value);
        assert!(equals(&w, &value));
        assert!(!equals(&w, b"hello worlD"));
        assert_eq!(w[1].load(Ordering::Relaxed).to_ne_bytes()[3..], [0; 5], "the tail stays zero");
    }
}
