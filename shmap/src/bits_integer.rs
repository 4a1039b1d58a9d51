//! [`BitsInteger<BITS>`]: the original library's bit-width integer, an unsigned integer that
//! holds at most `BITS` bits, checked when it is made.

use std::fmt;

use crate::layout::{LayoutDesc, LayoutHasher, ShmKey, ShmLayout, ShmValue};

/// An unsigned integer of at most `BITS` bits (1 to 64), stored in a `u64`.
///
/// Construction is checked ([`new`](Self::new), `TryFrom<u64>`), so a value made by this process
/// always fits. Another process may write any bits into shared memory; [`get`](Self::get)
/// ignores bits above `BITS` and [`is_valid`](Self::is_valid) tells whether there were any.
/// Usable as a key (compared as its stored `u64`) and as a field.
///
/// # Examples
///
/// ```
/// use shmap::BitsInteger;
///
/// type Level = BitsInteger<7>; // 0..=127
/// let l = Level::new(100).unwrap();
/// assert_eq!(l.get(), 100);
/// assert_eq!(Level::MAX, 127);
/// assert!(Level::new(128).is_none());
/// assert_eq!(l.checked_add(27).map(Level::get), Some(127));
/// assert_eq!(l.checked_add(28), None);
/// assert_eq!(l.wrapping_add(30).get(), 2);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[repr(transparent)]
pub struct BitsInteger<const BITS: u32>(u64);

/// A value does not fit in a [`BitsInteger`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value} does not fit in {bits} bits (at most {max})")]
pub struct OutOfRange {
    /// The value.
    pub value: u64,
    /// The width.
    pub bits: u32,
    /// The largest value that fits.
    pub max: u64,
}

impl<const BITS: u32> BitsInteger<BITS> {
    const WIDTH_IS_VALID: () =
        assert!(BITS >= 1 && BITS <= 64, "BitsInteger<BITS> needs 1 <= BITS <= 64");

    /// The largest value: `2^BITS − 1`.
    pub const MAX: u64 = {
        let () = Self::WIDTH_IS_VALID;
        u64::MAX >> (64 - BITS)
    };

    /// Zero.
    pub const ZERO: Self = BitsInteger(0);

    /// `value`, if it fits in `BITS` bits.
    pub const fn new(value: u64) -> Option<Self> {
        if value <= Self::MAX { Some(BitsInteger(value)) } else { None }
    }

    /// The value (bits above `BITS`, which only a foreign writer can set, are ignored).
    pub const fn get(self) -> u64 {
        self.0 & Self::MAX
    }

    /// The stored `u64`, as it is in memory.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// Whether the stored bits fit in `BITS` (always, for values made by [`new`](Self::new)).
    pub const fn is_valid(self) -> bool {
        self.0 <= Self::MAX
    }

    /// `self + rhs`, if it fits.
    pub const fn checked_add(self, rhs: u64) -> Option<Self> {
        match self.get().checked_add(rhs) {
            Some(sum) => Self::new(sum),
            None => None,
        }
    }

    /// `self + rhs` modulo `2^BITS`.
    pub const fn wrapping_add(self, rhs: u64) -> Self {
        BitsInteger(self.get().wrapping_add(rhs) & Self::MAX)
    }
}

impl<const BITS: u32> TryFrom<u64> for BitsInteger<BITS> {
    type Error = OutOfRange;

    fn try_from(value: u64) -> Result<Self, OutOfRange> {
        Self::new(value).ok_or(OutOfRange { value, bits: BITS, max: Self::MAX })
    }
}

impl<const BITS: u32> From<BitsInteger<BITS>> for u64 {
    fn from(v: BitsInteger<BITS>) -> u64 {
        v.get()
    }
}

impl<const BITS: u32> fmt::Display for BitsInteger<BITS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.get(), f)
    }
}

impl<const BITS: u32> fmt::Debug for BitsInteger<BITS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_valid() {
            write!(f, "BitsInteger<{BITS}>({})", self.0)
        } else {
            write!(f, "BitsInteger<{BITS}>(invalid raw {:#x})", self.0)
        }
    }
}

// SAFETY: `#[repr(transparent)]` over a `u64`, which zerocopy vouches for (`layout.rs`): no
// padding, every bit pattern valid (out-of-range bits are ignored by `get`, never assumed
// absent), no interior mutability.
unsafe impl<const BITS: u32> ShmLayout for BitsInteger<BITS> {
    const LAYOUT_HASH: u64 = LayoutHasher::new()
        .write_str("BitsInteger")
        .write_u64(BITS as u64)
        .write_u64(u64::LAYOUT_HASH)
        .finish();
    const LAYOUT_DESC: LayoutDesc =
        LayoutDesc::new().push_str("BitsInteger<").push_u64(BITS as u64).push_str(">");
}

impl<const BITS: u32> ShmKey for BitsInteger<BITS> {}
impl<const BITS: u32> ShmValue for BitsInteger<BITS> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths() {
        assert_eq!(BitsInteger::<1>::MAX, 1);
        assert_eq!(BitsInteger::<12>::MAX, 4095);
        assert_eq!(BitsInteger::<64>::MAX, u64::MAX);
        assert_eq!(BitsInteger::<64>::new(u64::MAX).unwrap().get(), u64::MAX);
        assert_eq!(BitsInteger::<3>::try_from(8), Err(OutOfRange { value: 8, bits: 3, max: 7 }));
        assert_eq!(u64::from(BitsInteger::<3>::new(5).unwrap()), 5);
    }

    #[test]
    fn foreign_bits_are_ignored_and_reported() {
        let mut v = BitsInteger::<4>::new(3).unwrap();
        crate::bytes::as_bytes_mut(&mut v)[0] = 0xf3;
        assert_eq!((v.get(), v.raw(), v.is_valid()), (3, 0xf3, false));
        assert!(format!("{v:?}").contains("invalid"));
    }

    #[test]
    fn layout_identity() {
        assert_eq!(BitsInteger::<12>::LAYOUT_DESC.as_str(), "BitsInteger<12>");
        assert_ne!(BitsInteger::<12>::LAYOUT_HASH, BitsInteger::<13>::LAYOUT_HASH);
        assert_ne!(BitsInteger::<12>::LAYOUT_HASH, u64::LAYOUT_HASH);
    }
}
