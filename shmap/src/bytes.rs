//! Viewing stored values as bytes, under the [`ShmLayout`] contract.
//!
//! These three functions are the only place where the runtime relies on that contract (no
//! padding, every bit pattern valid) to reinterpret memory; everything else copies through them.

use crate::layout::ShmLayout;

/// The bytes of `value`.
#[inline(always)]
pub(crate) fn as_bytes<T: ShmLayout>(value: &T) -> &[u8] {
    // SAFETY: `value` is a valid reference, so its `size_of::<T>()` bytes are readable for the
    // borrow's lifetime; `T: ShmLayout` has no padding, so every one of them is initialised.
    unsafe { std::slice::from_raw_parts(std::ptr::from_ref(value).cast::<u8>(), size_of::<T>()) }
}

/// The bytes of `value`, writable.
#[inline(always)]
pub(crate) fn as_bytes_mut<T: ShmLayout>(value: &mut T) -> &mut [u8] {
    // SAFETY: as in `as_bytes`, and any bytes written through the slice leave a valid `T`
    // behind, since every bit pattern of a `T: ShmLayout` is valid.
    unsafe {
        std::slice::from_raw_parts_mut(std::ptr::from_mut(value).cast::<u8>(), size_of::<T>())
    }
}

/// A `T` whose bytes are all zero.
#[inline(always)]
pub(crate) fn zeroed<T: ShmLayout>() -> T {
    // SAFETY: every bit pattern of a `T: ShmLayout` is a valid `T`, all-zero included.
    unsafe { std::mem::zeroed() }
}

/// A copy of `value`, byte for byte (stored types need not be `Clone`).
#[inline(always)]
pub(crate) fn copy<T: ShmLayout>(value: &T) -> T {
    let mut out = zeroed::<T>();
    as_bytes_mut(&mut out).copy_from_slice(as_bytes(value));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_equal_byte_for_byte() {
        let v = [1u16, 2, 3];
        assert_eq!(copy(&v), v);
    }

    #[test]
    fn round_trip() {
        let mut v: [u32; 3] = zeroed();
        assert_eq!(v, [0; 3]);
        as_bytes_mut(&mut v)[4] = 1;
        assert_eq!(v[1], u32::from_ne_bytes([1, 0, 0, 0]));
        assert_eq!(as_bytes(&v).len(), 12);
    }
}
