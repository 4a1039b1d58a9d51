//! Key hashing that gives the same answer in every process and every build.
//!
//! A shared table is only correct if every process maps a key to the same slot, so the hasher
//! can be neither randomly seeded (`std::collections::hash_map::RandomState`) nor defined by a
//! standard library that may change (`std::hash` in C++, `Hash` impls in Rust). A
//! [`ShmHasher`] hashes the key's bytes with fixed arithmetic and has an [`ID`](ShmHasher::ID)
//! that the segment header records; opening a table with another hasher is an error.
//!
//! [`DefaultHasher`] is a folded-multiply hash in the style of foldhash/wyhash: each 8-byte word
//! is mixed with the state through a 64×64→128-bit multiply whose halves are xored, then the
//! result is finalised by a second folded multiply. On x86-64 a `u64` key costs two `mul`s.

/// A hash function over key bytes that every process computes identically.
///
/// Implement it to use your own hash; give it a new, fixed [`ID`](Self::ID) (never reuse one
/// for a different function: the header check is the only thing that catches a mismatch).
///
/// # Examples
///
/// ```
/// use shmap::ShmHasher;
///
/// /// FNV-1a, for illustration.
/// struct Fnv;
/// impl ShmHasher for Fnv {
///     const ID: u64 = 0xF0F0_0001;
///     fn hash(bytes: &[u8]) -> u64 {
///         bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
///     }
/// }
/// assert_eq!(Fnv::hash(b"a"), Fnv::hash(b"a"));
/// ```
pub trait ShmHasher {
    /// Identifies the function in segment headers.
    const ID: u64;
    /// Hashes a key's bytes. The low bits choose the home slot and the high 16 bits become the
    /// slot's tag, so both ends must be well mixed.
    fn hash(bytes: &[u8]) -> u64;
}

/// shmap's default key hash (id `0x5348_4d41_5048_0001`, "SHMAPH" v1).
///
/// # Examples
///
/// ```
/// use shmap::{DefaultHasher, ShmHasher};
///
/// // Fixed arithmetic: the same value in every process and every build.
/// assert_eq!(DefaultHasher::hash(&42u64.to_ne_bytes()), DefaultHasher::hash(&42u64.to_ne_bytes()));
/// assert_ne!(DefaultHasher::hash(&1u64.to_ne_bytes()), DefaultHasher::hash(&2u64.to_ne_bytes()));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultHasher;

/// The 64-bit golden ratio and a second odd constant (from splitmix64).
const K0: u64 = 0x9e37_79b9_7f4a_7c15;
const K1: u64 = 0xbf58_476d_1ce4_e5b9;

#[inline(always)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

impl ShmHasher for DefaultHasher {
    const ID: u64 = 0x5348_4d41_5048_0001;

    #[inline]
    fn hash(bytes: &[u8]) -> u64 {
        let mut h = K1 ^ (bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word =
                u64::from_ne_bytes(chunk.try_into().expect("chunks_exact(8) yields 8 bytes"));
            h = folded_multiply(h ^ word, K0);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            h = folded_multiply(h ^ u64::from_ne_bytes(last), K0);
        }
        folded_multiply(h, K1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash is part of the segment format (a stored key's slot depends on it): pinned.
    #[test]
    fn default_hash_is_pinned() {
        let got = [0u64, 1, 0xBDD7_3226_2FEB_6E95].map(|k| DefaultHasher::hash(&k.to_le_bytes()));
        assert_eq!(
            got,
            [0x3463_d340_2de9_50ec, 0x1f5e_985b_0056_de13, 0x7f07_9c5a_f031_6b0a],
            "{got:#018x?}"
        );
        assert_eq!(DefaultHasher::hash(b""), DefaultHasher::hash(&[]));
        assert_ne!(
            DefaultHasher::hash(b"abc"),
            DefaultHasher::hash(b"abc\0"),
            "length is mixed in"
        );
    }

    /// Sequential keys must spread over the low bits (home slot) and the high bits (tag).
    #[test]
    fn sequential_keys_spread() {
        const SLOTS: usize = 1 << 10;
        let mut home = vec![0u32; SLOTS];
        let mut tags = std::collections::HashSet::new();
        for k in 0..(SLOTS as u64 * 4) {
            let h = DefaultHasher::hash(&k.to_ne_bytes());
            home[h as usize & (SLOTS - 1)] += 1;
            tags.insert(h >> 48);
        }
        let max = *home.iter().max().unwrap();
        assert!(max <= 16, "a home slot got {max} of 4 keys on average");
        assert!(tags.len() > 3900, "only {} distinct tags for 4096 keys", tags.len());
    }
}
