//! Which structure a segment holds: the kind code recorded in the header, so that opening a
//! ring as a table (or one ring kind as another) is a typed error, never a misread body.

use std::fmt;

/// Which structure a segment holds.
///
/// # Examples
///
/// ```
/// use shmap::StructureKind;
///
/// assert_eq!(StructureKind::HashTable.to_string(), "hash table");
/// assert_eq!(StructureKind::Custom(7).to_string(), "custom structure #7");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StructureKind {
    /// A [`ShmHashTable`](crate::ShmHashTable).
    HashTable,
    /// A [`SpscRing`](crate::ring::SpscRing).
    SpscRing,
    /// A [`SpmcRing`](crate::ring::SpmcRing).
    SpmcRing,
    /// An [`MpmcRing`](crate::ring::MpmcRing).
    MpmcRing,
    /// A [`BroadcastRing`](crate::ring::BroadcastRing).
    BroadcastRing,
    /// A [`ShmVector`](crate::ShmVector).
    Vector,
    /// A [`ShmCache`](crate::ShmCache): a hash table whose entries expire and are evicted.
    Cache,
    /// A structure defined outside shmap, numbered by its author (below 2^31).
    Custom(u32),
    /// A code this build does not know (a newer shmap, or garbage).
    Unknown(u32),
}

const CUSTOM_BIT: u32 = 1 << 31;

impl StructureKind {
    /// The code stored in the header.
    pub fn code(self) -> u32 {
        match self {
            StructureKind::HashTable => 1,
            StructureKind::SpscRing => 2,
            StructureKind::SpmcRing => 3,
            StructureKind::MpmcRing => 4,
            StructureKind::BroadcastRing => 5,
            StructureKind::Vector => 6,
            StructureKind::Cache => 7,
            StructureKind::Custom(n) => CUSTOM_BIT | (n & !CUSTOM_BIT),
            StructureKind::Unknown(code) => code,
        }
    }

    /// The kind a stored code stands for.
    pub fn from_code(code: u32) -> StructureKind {
        match code {
            1 => StructureKind::HashTable,
            2 => StructureKind::SpscRing,
            3 => StructureKind::SpmcRing,
            4 => StructureKind::MpmcRing,
            5 => StructureKind::BroadcastRing,
            6 => StructureKind::Vector,
            7 => StructureKind::Cache,
            c if c & CUSTOM_BIT != 0 => StructureKind::Custom(c & !CUSTOM_BIT),
            c => StructureKind::Unknown(c),
        }
    }
}

impl fmt::Display for StructureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StructureKind::HashTable => f.write_str("hash table"),
            StructureKind::SpscRing => f.write_str("SPSC ring buffer"),
            StructureKind::SpmcRing => f.write_str("SPMC ring buffer"),
            StructureKind::MpmcRing => f.write_str("MPMC ring buffer"),
            StructureKind::BroadcastRing => f.write_str("broadcast ring buffer"),
            StructureKind::Vector => f.write_str("vector"),
            StructureKind::Cache => f.write_str("cache"),
            StructureKind::Custom(n) => write!(f, "custom structure #{n}"),
            StructureKind::Unknown(code) => write!(f, "unknown structure (code {code:#x})"),
        }
    }
}
