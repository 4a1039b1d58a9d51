//! The contract for types stored in shared memory, and the layout hash that enforces it across
//! builds.
//!
//! A type may live in a segment only if every process can read its bytes without undefined
//! behaviour whatever another process did to them. [`ShmLayout`] is that contract, and it is
//! zerocopy's: [`FromBytes`](zerocopy::FromBytes) (every bit pattern is a valid value, so a torn or
//! corrupted read is a wrong value, never UB), [`IntoBytes`](zerocopy::IntoBytes) (no padding, so
//! keys compare and hash as bytes) and [`Immutable`](zerocopy::Immutable) (no interior
//! mutability). It is an `unsafe trait` rather than zerocopy's traits themselves because only
//! zerocopy's own derive may implement those, and a user's `#[derive(ShmValue)]` must be able to
//! vouch for a struct; it does so the way zerocopy's derive does:
//!
//! - the leaves are the primitives, `()` and arrays: their impls below are checked at compile
//!   time against zerocopy's traits (`rests_on_zerocopy`);
//! - a derived struct must be `#[repr(C)]` or `#[repr(transparent)]`, every field must itself be
//!   `ShmLayout`, and the struct must have no padding (its size is the sum of its fields');
//!   then every byte belongs to a field whose every bit pattern is valid, so the struct has the
//!   three properties too.
//!
//! On top of that, each type has a **layout hash**: a `u64` computed at compile time from a
//! canonical structural description (for a primitive its name, size and alignment; for an array
//! its element's hash and length; for a struct the field names, their types' hashes and
//! offsets). The segment header records the key's and the value's hash and description, so a
//! process built with another layout is refused with [`OpenErrorKind::LayoutMismatch`] instead
//! of reading memory it misunderstands. The type's *name* is deliberately not part of the hash
//! (renaming a type is harmless), and neither is `core::any::type_name`, which is not stable
//! between builds.
//!
//! [`OpenErrorKind::LayoutMismatch`]: crate::OpenErrorKind::LayoutMismatch

use std::fmt;

use zerocopy::{FromBytes, Immutable, IntoBytes};

/// How many bytes of a [`LayoutDesc`] are kept (the segment header stores this many).
pub const DESC_CAPACITY: usize = 192;

/// A bounded, human-readable description of a type's layout, such as `[u64;8]` or
/// `{hp:u32@0;gold:u64@8}`, built in `const` code.
///
/// It is what an error message shows when two builds disagree. Only the first
/// [`DESC_CAPACITY`] bytes are kept (the rest is cut at a character boundary and
/// [`is_truncated`](Self::is_truncated) says so); the [layout hash](ShmLayout::LAYOUT_HASH) is
/// computed separately and covers the whole structure.
///
/// # Examples
///
/// ```
/// use shmap::{LayoutDesc, ShmLayout};
///
/// assert_eq!(<[u64; 8]>::LAYOUT_DESC.as_str(), "[u64;8]");
/// let d = LayoutDesc::new().push_str("{x:").push_desc(&u32::LAYOUT_DESC).push_str("@0}");
/// assert_eq!(d.as_str(), "{x:u32@0}");
/// ```
#[derive(Clone, Copy)]
pub struct LayoutDesc {
    bytes: [u8; DESC_CAPACITY],
    len: usize,
    truncated: bool,
}

impl LayoutDesc {
    /// An empty description.
    pub const fn new() -> Self {
        LayoutDesc { bytes: [0; DESC_CAPACITY], len: 0, truncated: false }
    }

    /// Appends `s`, cutting at a character boundary if the capacity runs out.
    pub const fn push_str(self, s: &str) -> Self {
        self.push_utf8(s.as_bytes())
    }

    /// Appends the decimal digits of `n`.
    pub const fn push_u64(self, mut n: u64) -> Self {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let (_, tail) = digits.split_at(i);
        self.push_utf8(tail)
    }

    /// Appends another description (and its truncation, if it was truncated).
    pub const fn push_desc(self, other: &LayoutDesc) -> Self {
        let (head, _) = other.bytes.split_at(other.len);
        let mut out = self.push_utf8(head);
        out.truncated |= other.truncated;
        out
    }

    /// Appends bytes that are valid UTF-8, keeping the buffer valid UTF-8.
    const fn push_utf8(mut self, s: &[u8]) -> Self {
        let room = DESC_CAPACITY - self.len;
        let mut take = if s.len() < room { s.len() } else { room };
        if take < s.len() {
            // Back off to a character boundary: a UTF-8 continuation byte is 0b10xx_xxxx.
            while take > 0 && (s[take] & 0b1100_0000) == 0b1000_0000 {
                take -= 1;
            }
            self.truncated = true;
        }
        let mut i = 0;
        while i < take {
            self.bytes[self.len + i] = s[i];
            i += 1;
        }
        self.len += take;
        self
    }

    /// Rebuilds a description from bytes read out of a segment header, which may be garbage.
    pub(crate) fn from_stored(bytes: &[u8], truncated: bool) -> Self {
        let len = bytes.len().min(DESC_CAPACITY);
        let valid = match std::str::from_utf8(&bytes[..len]) {
            Ok(s) => s.len(),
            Err(e) => e.valid_up_to(),
        };
        LayoutDesc::new().push_utf8(&bytes[..valid]).with_truncated(truncated || valid < len)
    }

    const fn with_truncated(mut self, truncated: bool) -> Self {
        self.truncated |= truncated;
        self
    }

    /// The description as text.
    pub fn as_str(&self) -> &str {
        // The buffer only ever receives whole UTF-8 characters (see `push_utf8`).
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }

    /// The stored bytes (at most [`DESC_CAPACITY`]).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Whether the description was cut to fit [`DESC_CAPACITY`] bytes.
    pub const fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl Default for LayoutDesc {
    fn default() -> Self {
        LayoutDesc::new()
    }
}

impl PartialEq for LayoutDesc {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes() && self.truncated == other.truncated
    }
}

impl Eq for LayoutDesc {}

impl fmt::Display for LayoutDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())?;
        if self.truncated { f.write_str("…") } else { Ok(()) }
    }
}

impl fmt::Debug for LayoutDesc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LayoutDesc({:?}{})", self.as_str(), if self.truncated { "…" } else { "" })
    }
}

/// A `const` hasher for layout descriptions: 64-bit FNV-1a over length-prefixed items, with a
/// final avalanche step.
///
/// The exact arithmetic is part of the segment format: changing it changes every layout hash,
/// which `tests` pin for a few types.
///
/// # Examples
///
/// ```
/// use shmap::{LayoutHasher, ShmLayout};
///
/// // How an array's hash is composed from its element's.
/// let h = LayoutHasher::new()
///     .write_str("array")
///     .write_u64(u64::LAYOUT_HASH)
///     .write_u64(4)
///     .write_u64(32)
///     .write_u64(8)
///     .finish();
/// assert_eq!(h, <[u64; 4]>::LAYOUT_HASH);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct LayoutHasher(u64);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl LayoutHasher {
    /// A hasher in its initial state.
    pub const fn new() -> Self {
        LayoutHasher(FNV_OFFSET)
    }

    const fn write_bytes(mut self, bytes: &[u8]) -> Self {
        let mut i = 0;
        while i < bytes.len() {
            self.0 ^= bytes[i] as u64;
            self.0 = self.0.wrapping_mul(FNV_PRIME);
            i += 1;
        }
        self
    }

    /// Feeds a string, prefixed by its length so that `("ab","c")` and `("a","bc")` differ.
    pub const fn write_str(self, s: &str) -> Self {
        self.write_u64(s.len() as u64).write_bytes(s.as_bytes())
    }

    /// Feeds an integer (little-endian bytes, so the result is the same on every host).
    pub const fn write_u64(self, n: u64) -> Self {
        self.write_bytes(&n.to_le_bytes())
    }

    /// The hash, mixed so that every input bit affects every output bit.
    pub const fn finish(self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Default for LayoutHasher {
    fn default() -> Self {
        LayoutHasher::new()
    }
}

/// A type whose bytes may live in shared memory, with a layout hash that the segment header
/// records.
///
/// Implement it with `#[derive(ShmKey)]` or `#[derive(ShmValue)]` (which check the rules below at
/// compile time) rather than by hand. Implemented for the primitive integers and floats, `()`,
/// arrays of implementors, [`FixedString`](crate::FixedString) and
/// [`BitsInteger`](crate::BitsInteger).
///
/// # Safety
///
/// An implementation promises what zerocopy's `FromBytes + IntoBytes + Immutable` promise:
/// - every sequence of `size_of::<Self>()` initialised bytes is a valid `Self`;
/// - `Self` has no padding, so every byte of a `Self` is initialised;
/// - `Self` has no interior mutability (contains no `UnsafeCell`);
///
/// and that [`LAYOUT_HASH`](Self::LAYOUT_HASH) changes whenever the layout does (a wrong hash is
/// not undefined behaviour, but lets two builds misread each other's values).
///
/// # Examples
///
/// ```
/// use shmap::ShmLayout;
///
/// assert_eq!(u64::LAYOUT_DESC.as_str(), "u64");
/// assert_ne!(u64::LAYOUT_HASH, i64::LAYOUT_HASH);
/// assert_ne!(<[u32; 2]>::LAYOUT_HASH, u64::LAYOUT_HASH);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot live in shared memory: it does not implement `shmap::ShmLayout`",
    label = "not storable in a shmap segment",
    note = "stored types must be plain bytes: no pointers or references, no heap owners \
            (String, Vec, Box), no padding, no invalid bit patterns (bool, char, enums with holes)",
    note = "derive `shmap::ShmKey` or `shmap::ShmValue` on a `#[repr(C)]` struct of such fields"
)]
pub unsafe trait ShmLayout: Sized {
    /// A hash of the type's structure: field names, field types' hashes, offsets, size and
    /// alignment. Two types with the same hash have the same layout; the type's name is not
    /// part of it.
    const LAYOUT_HASH: u64;
    /// The canonical description that the hash was computed from (bounded, for messages).
    const LAYOUT_DESC: LayoutDesc;
}

/// A type that can be a hash table key: hashed and compared as bytes.
///
/// Derive it on a `#[repr(C)]` struct (or `#[repr(transparent)]`) whose fields are keys:
/// integers, arrays of keys, [`FixedString`](crate::FixedString),
/// [`BitsInteger`](crate::BitsInteger) and other derived keys. A key is also a value: derive
/// `ShmKey` *or* `ShmValue`, not both. Floats are not keys (`-0.0 == 0.0` but their bytes
/// differ; `NaN != NaN` but its bytes are equal), so byte equality would not be the type's
/// equality.
///
/// A fieldless enum can be derived too, but only if its variants cover every value of its
/// integer representation (256 variants for `#[repr(u8)]`): another process may write any byte,
/// and a byte that is no variant would be undefined behaviour. Most enums do not qualify: store
/// the integer and convert it with `TryFrom`.
///
/// # Examples
///
/// ```
/// use shmap::{FixedString, ShmKey, ShmLayout};
///
/// #[derive(ShmKey)]
/// #[repr(C)]
/// struct Account {
///     region: u16,
///     kind: u16,
///     number: u32,
///     owner: FixedString<22>,
/// }
///
/// assert_eq!(
///     Account::LAYOUT_DESC.as_str(),
///     "{region:u16@0;kind:u16@2;number:u32@4;owner:FixedString<22>@8}"
/// );
/// fn takes_key<K: shmap::ShmKey>() {}
/// takes_key::<Account>();
/// takes_key::<[u8; 16]>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a shmap hash table key",
    label = "not a `ShmKey`",
    note = "keys are hashed and compared as raw bytes in every process: integers, arrays of keys \
            and types that implement `ShmKey` qualify",
    note = "floats are not keys (-0.0 == 0.0 but their bytes differ), and heap owners like \
            `String` point into one process's memory; derive `shmap::ShmKey` on a `#[repr(C)]` \
            struct of key fields"
)]
pub trait ShmKey: ShmLayout {}

/// A type that can be a hash table value.
///
/// Derive it on a `#[repr(C)]` struct whose fields are values: integers, floats, arrays,
/// [`FixedString`](crate::FixedString), [`BitsInteger`](crate::BitsInteger), derived keys and
/// values. The derive refuses, at compile time and naming the field, what cannot live in shared
/// memory: heap owners (`String`, `Vec`, `Box`), references and pointers, `bool`, `char`,
/// `Option`, cells and atomics, tuples, and padding (add it as an explicit field).
///
/// # The layout hash
///
/// A derived type's [`LAYOUT_HASH`](ShmLayout::LAYOUT_HASH) covers, in order, each field's name,
/// its type's own layout hash and its offset, then the size and alignment. So reordering,
/// renaming or retyping a field changes it (even `u32` to `i32`); renaming the type, adding
/// methods or derives, or changing docs and visibility does not.
///
/// # Examples
///
/// ```
/// use shmap::{ShmLayout, ShmValue};
///
/// #[derive(ShmValue)]
/// #[repr(C)]
/// struct Position {
///     x: f32,
///     y: f32,
///     z: f32,
///     _pad: u32, // explicit padding keeps the size a multiple of 8
/// }
///
/// #[derive(ShmValue)]
/// #[repr(C)]
/// struct Place {
///     x: f32,
///     y: f32,
///     z: f32,
///     _pad: u32,
/// }
///
/// // Same fields, another name: the same layout.
/// assert_eq!(Position::LAYOUT_HASH, Place::LAYOUT_HASH);
/// fn takes_value<V: shmap::ShmValue>() {}
/// takes_value::<Position>();
/// takes_value::<f64>();
/// takes_value::<()>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a shmap value",
    label = "not a `ShmValue`",
    note = "values are copied as raw bytes between processes: integers, floats, arrays of values \
            and types that implement `ShmValue` qualify",
    note = "heap owners like `String`, `Vec` or `Box` point into one process's memory; `bool`, \
            `char` and most enums have bit patterns that are not valid values; derive \
            `shmap::ShmValue` on a `#[repr(C)]` struct of value fields"
)]
pub trait ShmValue: ShmLayout {}

/// The hash of a primitive: its name, size and alignment.
const fn primitive_hash(name: &str, size: usize, align: usize) -> u64 {
    LayoutHasher::new()
        .write_str("primitive")
        .write_str(name)
        .write_u64(size as u64)
        .write_u64(align as u64)
        .finish()
}

/// Compiles only if zerocopy itself vouches for `T`: the leaves of every stored type rest on
/// zerocopy's analysis, not on this crate's word.
const fn rests_on_zerocopy<T: FromBytes + IntoBytes + Immutable>() {}

macro_rules! primitives {
    ($($ty:ident => $($marker:ident),+;)*) => {$(
        const _: () = rests_on_zerocopy::<$ty>();
        // SAFETY: zerocopy implements `FromBytes`, `IntoBytes` and `Immutable` for this type
        // (checked just above), which is exactly this trait's contract.
        unsafe impl ShmLayout for $ty {
            const LAYOUT_HASH: u64 =
                primitive_hash(stringify!($ty), size_of::<$ty>(), align_of::<$ty>());
            const LAYOUT_DESC: LayoutDesc = LayoutDesc::new().push_str(stringify!($ty));
        }
        $(impl $marker for $ty {})+
    )*};
}

primitives! {
    u8 => ShmKey, ShmValue;
    u16 => ShmKey, ShmValue;
    u32 => ShmKey, ShmValue;
    u64 => ShmKey, ShmValue;
    u128 => ShmKey, ShmValue;
    usize => ShmKey, ShmValue;
    i8 => ShmKey, ShmValue;
    i16 => ShmKey, ShmValue;
    i32 => ShmKey, ShmValue;
    i64 => ShmKey, ShmValue;
    i128 => ShmKey, ShmValue;
    isize => ShmKey, ShmValue;
    f32 => ShmValue;
    f64 => ShmValue;
}

const _: () = rests_on_zerocopy::<()>();
// SAFETY: zerocopy implements `FromBytes`, `IntoBytes` and `Immutable` for `()` (checked above).
unsafe impl ShmLayout for () {
    const LAYOUT_HASH: u64 = primitive_hash("()", 0, 1);
    const LAYOUT_DESC: LayoutDesc = LayoutDesc::new().push_str("()");
}

/// `()` as a value makes the table a set.
impl ShmValue for () {}

// SAFETY: an array has no padding (its size is `N × size_of::<T>()` and its elements are
// contiguous), every byte belongs to an element whose every bit pattern is valid, and an array
// has interior mutability only if its element does: `T`'s contract carries over.
unsafe impl<T: ShmLayout, const N: usize> ShmLayout for [T; N] {
    const LAYOUT_HASH: u64 = LayoutHasher::new()
        .write_str("array")
        .write_u64(T::LAYOUT_HASH)
        .write_u64(N as u64)
        .write_u64(size_of::<[T; N]>() as u64)
        .write_u64(align_of::<[T; N]>() as u64)
        .finish();
    const LAYOUT_DESC: LayoutDesc = LayoutDesc::new()
        .push_str("[")
        .push_desc(&T::LAYOUT_DESC)
        .push_str(";")
        .push_u64(N as u64)
        .push_str("]");
}

impl<T: ShmKey, const N: usize> ShmKey for [T; N] {}
impl<T: ShmValue, const N: usize> ShmValue for [T; N] {}

/// What the segment header records about one stored type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeLayout {
    /// [`ShmLayout::LAYOUT_HASH`].
    pub hash: u64,
    /// `size_of` in bytes.
    pub size: u32,
    /// `align_of` in bytes.
    pub align: u32,
    /// [`ShmLayout::LAYOUT_DESC`].
    pub desc: LayoutDesc,
}

impl TypeLayout {
    /// The layout record of `T`.
    ///
    /// # Examples
    ///
    /// ```
    /// let l = shmap::TypeLayout::of::<[u32; 3]>();
    /// assert_eq!((l.size, l.align, l.desc.as_str()), (12, 4, "[u32;3]"));
    /// ```
    pub fn of<T: ShmLayout>() -> Self {
        TypeLayout {
            hash: T::LAYOUT_HASH,
            size: u32::try_from(size_of::<T>()).expect("a stored type is smaller than 4 GiB"),
            align: u32::try_from(align_of::<T>()).expect("alignments fit in u32"),
            desc: T::LAYOUT_DESC,
        }
    }

    /// The record for "no type" (a structure without keys).
    pub const NONE: TypeLayout = TypeLayout { hash: 0, size: 0, align: 0, desc: LayoutDesc::new() };
}

impl fmt::Display for TypeLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (size {}, align {}, hash {:#018x})",
            self.desc, self.size, self.align, self.hash
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_compose() {
        assert_eq!(u8::LAYOUT_DESC.as_str(), "u8");
        assert_eq!(<[[u16; 2]; 3]>::LAYOUT_DESC.as_str(), "[[u16;2];3]");
        assert_eq!(<()>::LAYOUT_DESC.as_str(), "()");
        assert!(!<[u64; 8]>::LAYOUT_DESC.is_truncated());
    }

    #[test]
    fn long_descriptions_are_cut_at_a_char_boundary() {
        let mut d = LayoutDesc::new();
        for _ in 0..100 {
            d = d.push_str("é"); // two bytes each: 200 bytes > capacity
        }
        assert!(d.is_truncated());
        assert_eq!(d.as_bytes().len(), DESC_CAPACITY);
        assert!(d.as_str().chars().all(|c| c == 'é'));
        let d = LayoutDesc::new().push_str("a").push_str(&"é".repeat(100));
        assert_eq!(d.as_bytes().len(), DESC_CAPACITY - 1, "cut before a split character");
        assert_eq!(d.to_string().chars().last(), Some('…'));
    }

    #[test]
    fn integers_format_in_const_code() {
        const D: LayoutDesc = LayoutDesc::new().push_u64(0).push_str(",").push_u64(u64::MAX);
        assert_eq!(D.as_str(), "0,18446744073709551615");
    }

    #[test]
    fn stored_descriptions_are_sanitised() {
        let d = LayoutDesc::from_stored(b"u6\xff4", false);
        assert_eq!(d.as_str(), "u6");
        assert!(d.is_truncated(), "invalid bytes are reported as a cut description");
    }

    #[test]
    fn hashes_distinguish_layouts() {
        let hashes = [
            u8::LAYOUT_HASH,
            i8::LAYOUT_HASH,
            u64::LAYOUT_HASH,
            i64::LAYOUT_HASH,
            f64::LAYOUT_HASH,
            <[u32; 2]>::LAYOUT_HASH,
            <[u64; 1]>::LAYOUT_HASH,
            <[u8; 8]>::LAYOUT_HASH,
            <()>::LAYOUT_HASH,
        ];
        for (i, a) in hashes.iter().enumerate() {
            for b in &hashes[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    /// The hashes are part of the segment format: a change here makes every existing segment
    /// unreadable, so it must be deliberate (and come with a format version bump).
    #[test]
    fn layout_hashes_are_pinned() {
        assert_eq!(u64::LAYOUT_HASH, 0x9306_0f65_0baf_835a, "u64: {:#018x}", u64::LAYOUT_HASH);
        assert_eq!(
            <[u64; 8]>::LAYOUT_HASH,
            0xdbe0_6f14_79c0_0126,
            "[u64; 8]: {:#018x}",
            <[u64; 8]>::LAYOUT_HASH
        );
        assert_eq!(f32::LAYOUT_HASH, 0x1f82_8ece_0ef9_1cb6, "f32: {:#018x}", f32::LAYOUT_HASH);
    }
}
