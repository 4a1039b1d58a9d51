//! [`FixedString<N>`]: a string of at most `N` UTF-8 bytes stored inline, for keys and fields in
//! shared memory where `String` (a pointer into one process's heap) cannot go.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::layout::{LayoutDesc, LayoutHasher, ShmKey, ShmLayout, ShmValue};

/// A string of at most `N` bytes of UTF-8, stored inline: a 2-byte length, then the bytes, then
/// zeros.
///
/// The tail after the string is always zero, so two equal strings have equal bytes, and a
/// `FixedString` can be a key (hashed and compared as bytes). Another process may write any
/// bytes into shared memory, so reading the text back is checked: [`as_str`](Self::as_str)
/// reports a length above `N` or invalid UTF-8 as an error (never undefined behaviour), and
/// `Display` shows such bytes lossily. `N` is at most 65,535.
///
/// # Size
///
/// `N + 2` bytes (a 2-byte length, then the bytes), alignment 1. A derived type must have no padding,
/// so next to 8-byte fields choose `N = 8k − 2` (6, 14, 22, 30, 62, ...): `FixedString<22>` is
/// 24 bytes, which is why the README's `Player { name: FixedString<22>, gold: u64 }` packs into
/// 32. With another `N` the derive reports the padding at the string field, with the number of
/// bytes to fill.
///
/// ```
/// use shmap::FixedString;
///
/// assert_eq!(size_of::<FixedString<22>>(), 24);
/// assert_eq!(size_of::<FixedString<16>>(), 18); // 6 bytes short of a u64's alignment
/// assert_eq!(align_of::<FixedString<22>>(), 1);
/// ```
///
/// # Examples
///
/// ```
/// use shmap::FixedString;
///
/// let name = FixedString::<16>::try_from("alice")?;
/// assert_eq!(name.as_str()?, "alice");
/// assert_eq!(name.to_string(), "alice");
/// assert!(FixedString::<4>::try_from("too long").is_err());
/// assert!(FixedString::<8>::try_from("bob")? < FixedString::<8>::try_from("carol")?);
/// # Ok::<(), shmap::FixedStringError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C)]
pub struct FixedString<const N: usize> {
    /// The length in bytes, little-endian (bytes, so the struct has alignment 1 and no padding).
    len: [u8; 2],
    bytes: [u8; N],
}

/// Why a [`FixedString`] could not be made, or read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FixedStringError {
    /// The text is longer than the capacity.
    #[error("{len} bytes do not fit in a FixedString<{capacity}>")]
    TooLong {
        /// The text's length in bytes.
        len: usize,
        /// `N`.
        capacity: usize,
    },
    /// The stored length is larger than the capacity (the bytes were not written by shmap).
    #[error("stored length {len} exceeds the capacity {capacity}")]
    BadLength {
        /// The stored length.
        len: usize,
        /// `N`.
        capacity: usize,
    },
    /// The stored bytes are not UTF-8 (they were not written by shmap).
    #[error("stored bytes are not UTF-8 after {valid_up_to} valid bytes")]
    InvalidUtf8 {
        /// How many leading bytes are valid UTF-8.
        valid_up_to: usize,
    },
}

impl<const N: usize> FixedString<N> {
    const CAPACITY_FITS: () =
        assert!(N <= u16::MAX as usize, "FixedString<N> holds at most 65,535 bytes");

    /// The empty string.
    pub const fn new() -> Self {
        let () = Self::CAPACITY_FITS;
        FixedString { len: [0; 2], bytes: [0; N] }
    }

    /// The capacity `N`, in bytes.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// The stored length in bytes (may exceed `N` if the bytes were not written by shmap).
    pub const fn stored_len(&self) -> usize {
        u16::from_le_bytes(self.len) as usize
    }

    /// The length in bytes, at most `N`.
    pub const fn len(&self) -> usize {
        let len = self.stored_len();
        if len < N { len } else { N }
    }

    /// Whether the string is empty.
    pub const fn is_empty(&self) -> bool {
        self.stored_len() == 0
    }

    /// The string's bytes (at most `N`).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len()]
    }

    /// The string, or why the stored bytes are not one.
    pub fn as_str(&self) -> Result<&str, FixedStringError> {
        if self.stored_len() > N {
            return Err(FixedStringError::BadLength { len: self.stored_len(), capacity: N });
        }
        std::str::from_utf8(self.as_bytes())
            .map_err(|e| FixedStringError::InvalidUtf8 { valid_up_to: e.valid_up_to() })
    }
}

impl<const N: usize> Default for FixedString<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> TryFrom<&str> for FixedString<N> {
    type Error = FixedStringError;

    fn try_from(text: &str) -> Result<Self, FixedStringError> {
        let mut out = Self::new();
        if text.len() > N {
            return Err(FixedStringError::TooLong { len: text.len(), capacity: N });
        }
        out.bytes[..text.len()].copy_from_slice(text.as_bytes());
        out.len = (text.len() as u16).to_le_bytes();
        Ok(out)
    }
}

impl<const N: usize> FromStr for FixedString<N> {
    type Err = FixedStringError;

    fn from_str(text: &str) -> Result<Self, FixedStringError> {
        Self::try_from(text)
    }
}

impl<const N: usize> PartialOrd for FixedString<N> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// By the string's bytes (the same order as `str` for valid strings), then by the raw bytes so
/// that the order agrees with `Eq` even for strings another process corrupted.
impl<const N: usize> Ord for FixedString<N> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes()
            .cmp(other.as_bytes())
            .then_with(|| (self.len, self.bytes).cmp(&(other.len, other.bytes)))
    }
}

impl<const N: usize> fmt::Display for FixedString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&String::from_utf8_lossy(self.as_bytes()), f)
    }
}

impl<const N: usize> fmt::Debug for FixedString<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Ok(s) => write!(f, "FixedString<{N}>({s:?})"),
            Err(e) => write!(f, "FixedString<{N}>(<{e}> {:?})", self.as_bytes()),
        }
    }
}

// SAFETY: `FixedString<N>` is `#[repr(C)]` with two fields of byte arrays: alignment 1, so it
// has no padding (its size is 2 + N); every bit pattern of a byte array is valid (a bad length or
// invalid UTF-8 is reported by `as_str`, never assumed away); and byte arrays have no interior
// mutability.
unsafe impl<const N: usize> ShmLayout for FixedString<N> {
    const LAYOUT_HASH: u64 = LayoutHasher::new()
        .write_str("FixedString")
        .write_u64(N as u64)
        .write_u64(size_of::<Self>() as u64)
        .write_u64(align_of::<Self>() as u64)
        .finish();
    const LAYOUT_DESC: LayoutDesc =
        LayoutDesc::new().push_str("FixedString<").push_u64(N as u64).push_str(">");
}

impl<const N: usize> ShmKey for FixedString<N> {}
impl<const N: usize> ShmValue for FixedString<N> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes;

    #[test]
    fn round_trips_and_pads_with_zeros() {
        let s = FixedString::<8>::try_from("héllo").unwrap();
        assert_eq!((s.as_str().unwrap(), s.len(), s.capacity()), ("héllo", 6, 8));
        assert_eq!(&bytes::as_bytes(&s)[8..], [0, 0], "zero tail");
        assert_eq!(size_of::<FixedString<8>>(), 10);
        assert_eq!(FixedString::<8>::try_from("").unwrap(), FixedString::new());
        assert!(FixedString::<0>::new().is_empty());
        assert_eq!("abc".parse::<FixedString<3>>().unwrap().as_str(), Ok("abc"));
        assert_eq!(
            FixedString::<3>::try_from("abcd"),
            Err(FixedStringError::TooLong { len: 4, capacity: 3 })
        );
    }

    #[test]
    fn foreign_bytes_are_reported_not_trusted() {
        let mut s = FixedString::<4>::try_from("ab").unwrap();
        bytes::as_bytes_mut(&mut s)[0] = 9; // a length above the capacity
        assert_eq!(s.as_str(), Err(FixedStringError::BadLength { len: 9, capacity: 4 }));
        assert_eq!(s.len(), 4);
        let mut s = FixedString::<4>::try_from("ab").unwrap();
        bytes::as_bytes_mut(&mut s)[3] = 0xff; // invalid UTF-8
        assert_eq!(s.as_str(), Err(FixedStringError::InvalidUtf8 { valid_up_to: 1 }));
        assert_eq!(s.to_string(), "a\u{fffd}");
        assert!(format!("{s:?}").contains("not UTF-8"));
    }

    #[test]
    fn order_follows_the_text() {
        let mut v: Vec<FixedString<8>> =
            ["pear", "apple", "fig", ""].iter().map(|s| s.parse().unwrap()).collect();
        v.sort();
        let sorted: Vec<_> = v.iter().map(|s| s.as_str().unwrap()).collect();
        assert_eq!(sorted, ["", "apple", "fig", "pear"]);
    }

    #[test]
    fn layout_identity() {
        assert_eq!(FixedString::<16>::LAYOUT_DESC.as_str(), "FixedString<16>");
        assert_ne!(FixedString::<16>::LAYOUT_HASH, FixedString::<17>::LAYOUT_HASH);
        assert_ne!(FixedString::<16>::LAYOUT_HASH, <[u8; 18]>::LAYOUT_HASH);
    }
}
