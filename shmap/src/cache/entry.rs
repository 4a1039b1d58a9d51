//! What a cache stores per key: the value behind a *meta word* that carries the entry's expiry
//! and CLOCK's referenced bit (Corbató's "second chance", as in Tanenbaum's *Modern Operating
//! Systems*, 3.4.5).
//!
//! The meta word is the first word of the slot's value words, so it is copied and validated
//! with the value by the table's seqlock read, and written with it by every visit: the expiry
//! is always consistent with the value it belongs to. The referenced bit is the exception: a
//! lookup sets it with an atomic `fetch_or` on the shared word, outside any lock (only when it
//! is clear, so a hot key costs no store), and the hand clears it the same way. Neither bumps
//! the slot's version, so neither disturbs a reader; a write-back that races with them may
//! undo one, which costs an entry at most one more trip of the hand.

use crate::layout::{LayoutDesc, LayoutHasher, ShmLayout, ShmValue};

/// The referenced bit: set by a lookup, cleared by the hand.
pub(crate) const REFERENCED: u64 = 1 << 63;
/// The expiry: milliseconds since the Unix epoch, 0 for an entry that never expires.
pub(crate) const EXPIRY_MASK: u64 = (1 << 48) - 1;

/// An entry's meta word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta(pub(crate) u64);

impl Meta {
    /// A new entry's word: expiring at `expires_ms` (0: never), referenced (CLOCK loads a page
    /// with its bit set: it was just used).
    pub(crate) const fn new(expires_ms: u64) -> Meta {
        Meta((expires_ms & EXPIRY_MASK) | REFERENCED)
    }

    /// When the entry expires, in milliseconds since the Unix epoch; `None` if never.
    pub(crate) const fn expires_ms(self) -> Option<u64> {
        match self.0 & EXPIRY_MASK {
            0 => None,
            ms => Some(ms),
        }
    }

    /// Whether the entry has expired at `now_ms` (an entry expires at its expiry instant).
    #[inline(always)]
    pub(crate) fn expired_at(self, now_ms: u64) -> bool {
        self.expires_ms().is_some_and(|at| at <= now_ms)
    }

    pub(crate) const fn referenced(self) -> bool {
        self.0 & REFERENCED != 0
    }

    /// The same entry, expiring at `expires_ms` instead (0: never).
    pub(crate) const fn with_expiry(self, expires_ms: u64) -> Meta {
        Meta((self.0 & !EXPIRY_MASK) | (expires_ms & EXPIRY_MASK))
    }
}

/// A cache slot's value: the meta word, then the caller's value.
///
/// `value` lies at offset 8, so the meta word is exactly the slot's first value word. That
/// needs `V`'s alignment to be at most 8 (checked at compile time by [`Self::CHECKED`]); then
/// the struct has no padding: 8 is a multiple of `align_of::<V>()`, so `value` follows `meta`
/// directly, and the size `8 + size_of::<V>()` is a multiple of the alignment.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct Stamped<V> {
    pub(crate) meta: [u8; 8],
    pub(crate) value: V,
}

impl<V: ShmValue> Stamped<V> {
    /// Fails the build of a cache whose value type is aligned to more than 8 bytes (`u128`):
    /// its stamped entry would have padding. Used (and so evaluated) by the cache's
    /// constructor.
    pub(crate) const CHECKED: () = assert!(
        align_of::<V>() <= 8 && size_of::<Stamped<V>>() == 8 + size_of::<V>(),
        "a ShmCache value must be aligned to at most 8 bytes (store a u128 as [u64; 2])"
    );

    #[inline(always)]
    pub(crate) fn new(meta: Meta, value: V) -> Self {
        Stamped { meta: meta.0.to_ne_bytes(), value }
    }

    #[inline(always)]
    pub(crate) fn meta(&self) -> Meta {
        Meta(u64::from_ne_bytes(self.meta))
    }

    #[inline(always)]
    pub(crate) fn set_meta(&mut self, meta: Meta) {
        self.meta = meta.0.to_ne_bytes();
    }
}

// SAFETY: `Stamped<V>` is `repr(C)` with a byte array (every bit pattern valid, no padding, no
// cell) and a `V` (the same, by `V`'s contract), at offsets 0 and 8 with no padding between or
// after them whenever `V` is aligned to at most 8 bytes, which `CHECKED` enforces in every
// cache that stores one (no other code builds one).
unsafe impl<V: ShmValue> ShmLayout for Stamped<V> {
    const LAYOUT_HASH: u64 = LayoutHasher::new()
        .write_str("cache entry")
        .write_u64(V::LAYOUT_HASH)
        .write_u64(size_of::<Stamped<V>>() as u64)
        .write_u64(align_of::<Stamped<V>>() as u64)
        .finish();
    const LAYOUT_DESC: LayoutDesc =
        LayoutDesc::new().push_str("{meta:u64@0;value:").push_desc(&V::LAYOUT_DESC).push_str("@8}");
}

impl<V: ShmValue> ShmValue for Stamped<V> {}

#[cfg(all(test, not(shmap_loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_meta_word_keeps_expiry_and_reference_apart() {
        let m = Meta::new(1_700_000_000_000);
        assert!(m.referenced());
        assert_eq!(m.expires_ms(), Some(1_700_000_000_000));
        assert!(!m.expired_at(1_699_999_999_999) && m.expired_at(1_700_000_000_000));
        let cleared = Meta(m.0 & !REFERENCED);
        assert_eq!((cleared.referenced(), cleared.expires_ms()), (false, m.expires_ms()));
        let never = m.with_expiry(0);
        assert!(never.referenced() && !never.expired_at(u64::MAX));
    }

    #[test]
    fn the_value_follows_the_meta_word() {
        let s = Stamped::new(Meta::new(5), 0xAAu8);
        assert_eq!(size_of_val(&s), 9);
        assert_eq!(std::mem::offset_of!(Stamped<[u32; 3]>, value), 8);
        assert_eq!(s.meta().expires_ms(), Some(5));
        assert_eq!(Stamped::<u64>::LAYOUT_DESC.as_str(), "{meta:u64@0;value:u64@8}");
        assert_ne!(Stamped::<u64>::LAYOUT_HASH, <[u64; 2]>::LAYOUT_HASH);
    }
}
