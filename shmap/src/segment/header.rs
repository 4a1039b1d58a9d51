//! The segment header: one format for every structure, and its validation.
//!
//! ```text
//! offset 0          the identity (600 bytes): written once by the creator before the segment
//!                   gets its name, never changed after; covered by a checksum
//! offset 640        init state (u32)
//! offset 704        counters (one cache line)
//! offset 768        a hash table's entry counters: 64 shards, a cache line each
//! offset 4864       the process table: 4095 entries × 32 bytes
//! header_size       the structure's body (page aligned)
//! ```
//!
//! An opener copies the identity out with a volatile read and validates the copy field by field
//! (magic, version, checksum, sizes, kind, layouts, capacity, hasher, flags, total size) before
//! using any of it; offsets and sizes are recomputed from validated fields, never trusted from
//! the file. Validation only reads, so a segment that does not check out is left as it was.

use std::sync::atomic::{AtomicU32, AtomicU64};

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::error::{OpenErrorKind, Role};
use crate::hash::{DefaultHasher, ShmHasher};
use crate::layout::{DESC_CAPACITY, LayoutDesc, TypeLayout};
use crate::process::{MAX_PROCESSES, ProcEntry};
use crate::segment::count::{COUNT_SHARDS, CountLine};
use crate::segment::{SegmentSpec, StructureKind};

/// `b"SHMAPSEG"` read as a little-endian `u64`.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"SHMAPSEG");
/// The format this build reads and writes. Bump on any change to the header or a body layout.
/// 2: ring control blocks gained the seats of announced sleepers (recoverable after a kill).
/// 3: hash-table slots can be removed and reused (states FREED and EMPTYING replace TOMBSTONE
/// and DEAD), and the header holds the sharded entry counters behind `len()`.
/// 4: the header records whether a hash-table slot was ever freed (`slots_freed`), which inserts
/// rely on to skip their verification: a build of format 3 would free slots without setting it.
/// 5: a hash table's body ends with its probe bounds (a side table of `side_bytes_per_slot` bytes
/// per slot, recorded in the identity), which lookups rely on to stop short of an EMPTY slot.
/// 6: process-table entries have the states EXITED (retired by a normal exit: still naming the
/// process) and CHECKING (under a reclaim's check), which a build of format 5 would read as "no
/// entry", i.e. a dead holder, and rob the locks of a process still running.
/// 7: a shortening to EMPTY adds one to the slot's emptied epoch (the version's top bits),
/// which inserts compare to tell a chain cut at their claim; a build of format 6 would bump the
/// version by one and its shortenings would go unseen.
/// 8: a process-table entry's state word carries a generation above its state (a reclaim
/// claims the entry with one compare-and-swap from the word its checks started from; the
/// CHECKING states of format 6 are gone), which a build of format 7 would read as unknown
/// states, i.e. "no entry": a dead holder.
///
/// Caches (kind 7) came within format 8: their settings live in identity words that were
/// reserved (zero) before, their hand and their eviction and expiry counters in header words
/// that were unused, and a build that predates them refuses kind 7 as an unknown structure.
pub(crate) const FORMAT_VERSION: u32 = 8;
/// `init` once the creator has written everything (`b"INIT"`).
pub(crate) const INIT_DONE: u32 = u32::from_le_bytes(*b"INIT");
/// Bodies start on a page boundary.
pub(crate) const PAGE: u64 = 4096;
/// The largest header a valid segment may declare (room for later, larger formats).
const MAX_HEADER_SIZE: u64 = 2 << 20;
/// The largest capacity a segment may declare: 2^40 slots or elements. (`shmap-derive` checks
/// `#[shm_table]`/`#[shm_ring]` capacities against a copy, pinned to this by its tests.)
pub const MAX_CAPACITY: u64 = 1 << 40;

/// What the header records about a stored type.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub(crate) struct StoredType {
    pub(crate) hash: u64,
    pub(crate) size: u32,
    pub(crate) align: u32,
    pub(crate) desc_len: u16,
    pub(crate) desc_truncated: u8,
    pub(crate) _pad: [u8; 5],
    pub(crate) desc: [u8; DESC_CAPACITY],
}

impl StoredType {
    pub(crate) fn new(t: &TypeLayout) -> Self {
        let bytes = t.desc.as_bytes();
        let mut desc = [0u8; DESC_CAPACITY];
        desc[..bytes.len()].copy_from_slice(bytes);
        StoredType {
            hash: t.hash,
            size: t.size,
            align: t.align,
            desc_len: bytes.len() as u16,
            desc_truncated: u8::from(t.desc.is_truncated()),
            _pad: [0; 5],
            desc,
        }
    }

    pub(crate) fn layout(&self) -> TypeLayout {
        let len = usize::from(self.desc_len).min(DESC_CAPACITY);
        TypeLayout {
            hash: self.hash,
            size: self.size,
            align: self.align,
            desc: LayoutDesc::from_stored(&self.desc[..len], self.desc_truncated != 0),
        }
    }
}

/// The immutable part of the header.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub(crate) struct Identity {
    pub(crate) magic: u64,
    pub(crate) format_version: u32,
    pub(crate) kind: u32,
    pub(crate) header_size: u64,
    pub(crate) total_size: u64,
    pub(crate) capacity: u64,
    pub(crate) slot_size: u64,
    pub(crate) fixed_body_size: u64,
    pub(crate) hasher_id: u64,
    pub(crate) flags: u64,
    pub(crate) key: StoredType,
    pub(crate) value: StoredType,
    pub(crate) max_processes: u32,
    pub(crate) creator_pid: u32,
    pub(crate) creator_uid: u32,
    pub(crate) _pad: u32,
    pub(crate) created_unix_ns: u64,
    pub(crate) segment_id: u64,
    /// Bytes per slot of the side table that follows the slots (see [`SegmentSpec`]).
    pub(crate) side_bytes_per_slot: u64,
    /// The structure's parameters (see [`SegmentSpec::params`]): a cache's settings.
    pub(crate) params: [u64; 4],
    pub(crate) reserved: [u64; 2],
    /// [`checksum`] of every byte above.
    pub(crate) checksum: u64,
}

/// Counters in shared memory, on their own cache line. Written only on recovery paths.
#[repr(C, align(64))]
pub(crate) struct Counters {
    /// Locks recovered from dead holders, by waiters and monitors.
    pub(crate) recoveries: AtomicU64,
    /// Of those, write-backs released without an undo record (the value may be torn).
    pub(crate) torn_recoveries: AtomicU64,
    /// Nonzero once a hash-table slot has been freed (see `table::removal`): until then,
    /// inserts need not verify their claims. Set once, never cleared.
    pub(crate) slots_freed: AtomicU64,
    /// A cache's CLOCK hand: the slot position its evictions have reached (see `cache::evict`).
    pub(crate) clock_hand: AtomicU64,
    pub(crate) reserved: [AtomicU64; 4],
}

/// The header as it lies in the segment.
#[repr(C, align(64))]
pub(crate) struct Header {
    pub(crate) identity: Identity,
    /// [`INIT_DONE`] once the creator finished. Aligned to its own cache line.
    pub(crate) init: InitLine,
    pub(crate) counters: Counters,
    /// The committed entries of a hash table, as sharded counters (see `segment::count`).
    pub(crate) entry_counts: [CountLine; COUNT_SHARDS],
    pub(crate) processes: [ProcEntry; MAX_PROCESSES],
}

/// The init word on a cache line of its own.
#[repr(C, align(64))]
pub(crate) struct InitLine {
    pub(crate) state: AtomicU32,
}

/// The size of the header in this format: [`Header`] rounded up to a page.
pub(crate) const HEADER_SIZE: u64 = (size_of::<Header>() as u64).div_ceil(PAGE) * PAGE;

/// The checksum of an identity: [`DefaultHasher`] over its bytes, checksum field excluded.
pub(crate) fn checksum(id: &Identity) -> u64 {
    let bytes = id.as_bytes();
    DefaultHasher::hash(&bytes[..bytes.len() - size_of::<u64>()])
}

/// The sizes a validated (or about-to-be-created) header implies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) capacity: u64,
    pub(crate) slot_size: u64,
    pub(crate) flags: u64,
    pub(crate) header_size: u64,
    pub(crate) total_size: u64,
}

/// Computes the geometry of a segment for `spec` with this capacity and these flags.
pub(crate) fn geometry(
    spec: &SegmentSpec,
    capacity: u64,
    flags: u64,
    header_size: u64,
) -> Result<Geometry, String> {
    let body = Body {
        slot_size: (spec.slot_size)(flags),
        side_bytes_per_slot: spec.side_bytes_per_slot,
        fixed_body_size: spec.fixed_body_size,
    };
    sized(capacity, body, flags, header_size)
}

/// What a body is made of: slots, a side table of so many bytes per slot (rounded up to whole
/// words), and a fixed part.
#[derive(Clone, Copy)]
struct Body {
    slot_size: u64,
    side_bytes_per_slot: u64,
    fixed_body_size: u64,
}

/// The geometry of `capacity` slots of `slot_size` bytes, their side table and a fixed part,
/// checked.
fn sized(capacity: u64, body: Body, flags: u64, header_size: u64) -> Result<Geometry, String> {
    let Body { slot_size, side_bytes_per_slot, fixed_body_size } = body;
    if capacity == 0 || capacity > MAX_CAPACITY || !capacity.is_power_of_two() {
        return Err(format!("capacity {capacity} is not a power of two in 1..=2^40"));
    }
    if slot_size == 0 || slot_size % 8 != 0 || fixed_body_size % 8 != 0 {
        return Err(format!(
            "slot size {slot_size} and fixed body size {fixed_body_size} must be multiples of 8, \
             the slot size nonzero"
        ));
    }
    let side = capacity.checked_mul(side_bytes_per_slot).map(|b| b.div_ceil(8) * 8);
    let total_size = capacity
        .checked_mul(slot_size)
        .and_then(|b| b.checked_add(side?))
        .and_then(|b| b.checked_add(fixed_body_size))
        .and_then(|b| b.checked_add(header_size))
        .filter(|&t| usize::try_from(t).is_ok_and(|t| t <= isize::MAX as usize))
        .ok_or_else(|| {
            format!("{capacity} slots of {slot_size} bytes overflow the address space")
        })?;
    Ok(Geometry { capacity, slot_size, flags, header_size, total_size })
}

fn invalid(field: &'static str, expected: impl Into<String>, found: u64) -> OpenErrorKind {
    OpenErrorKind::InvalidHeader { field, expected: expected.into(), found }
}

/// Validates a copy of a segment's identity: its own consistency and the size of the object it
/// came from, and, given a `spec`, the caller's expectations (kind, layouts, hasher, capacity,
/// flags). Returns the geometry to map, recomputed from validated fields.
pub(crate) fn validate(
    id: &Identity,
    file_size: u64,
    spec: Option<&SegmentSpec>,
) -> Result<Geometry, OpenErrorKind> {
    if id.magic != MAGIC {
        return Err(OpenErrorKind::NotShmap { expected: MAGIC, found: id.magic });
    }
    if id.format_version != FORMAT_VERSION {
        return Err(OpenErrorKind::VersionMismatch {
            expected: FORMAT_VERSION,
            found: id.format_version,
        });
    }
    let computed = checksum(id);
    if computed != id.checksum {
        return Err(OpenErrorKind::CorruptHeader { expected: computed, found: id.checksum });
    }
    // From here on the header is what some shmap build wrote; check it against this build's
    // rules before trusting any size in it.
    if id.header_size < HEADER_SIZE
        || id.header_size > MAX_HEADER_SIZE
        || id.header_size % PAGE != 0
    {
        return Err(invalid(
            "header_size",
            format!("a multiple of {PAGE} from {HEADER_SIZE}"),
            id.header_size,
        ));
    }
    if id.max_processes as usize != MAX_PROCESSES {
        return Err(invalid("max_processes", MAX_PROCESSES.to_string(), id.max_processes.into()));
    }
    if let Some(spec) = spec {
        expected_by(id, spec)?;
    }
    let body = Body {
        slot_size: id.slot_size,
        side_bytes_per_slot: id.side_bytes_per_slot,
        fixed_body_size: id.fixed_body_size,
    };
    let geometry = sized(id.capacity, body, id.flags, id.header_size)
        .map_err(|why| invalid("capacity", why, id.capacity))?;
    if id.total_size != geometry.total_size {
        return Err(invalid("total_size", geometry.total_size.to_string(), id.total_size));
    }
    if file_size < geometry.total_size {
        return Err(OpenErrorKind::Truncated { expected: geometry.total_size, found: file_size });
    }
    if file_size > geometry.total_size {
        return Err(invalid("the object's size", geometry.total_size.to_string(), file_size));
    }
    Ok(geometry)
}

/// The caller's expectations: kind, layouts, hasher, capacity, flags and the slot size they imply.
fn expected_by(id: &Identity, spec: &SegmentSpec) -> Result<(), OpenErrorKind> {
    let found_kind = StructureKind::from_code(id.kind);
    if found_kind != spec.kind {
        return Err(OpenErrorKind::KindMismatch { expected: spec.kind, found: found_kind });
    }
    check_type(Role::Key, &spec.key, &id.key)?;
    check_type(Role::Value, &spec.value, &id.value)?;
    if id.hasher_id != spec.hasher_id {
        return Err(OpenErrorKind::HasherMismatch {
            expected: spec.hasher_id,
            found: id.hasher_id,
        });
    }
    if let Some(expected) = spec.capacity {
        if expected != id.capacity && !(spec.adopt_larger && id.capacity > expected) {
            return Err(OpenErrorKind::CapacityMismatch { expected, found: id.capacity });
        }
    }
    if id.flags & !spec.known_flags != 0 {
        return Err(invalid("flags", format!("a subset of {:#x}", spec.known_flags), id.flags));
    }
    if let Some(expected) = spec.flags {
        if expected != id.flags {
            return Err(OpenErrorKind::FlagsMismatch { expected, found: id.flags });
        }
    }
    let slot_size = (spec.slot_size)(id.flags);
    if id.slot_size != slot_size {
        return Err(invalid("slot_size", slot_size.to_string(), id.slot_size));
    }
    if id.side_bytes_per_slot != spec.side_bytes_per_slot {
        return Err(invalid(
            "side_bytes_per_slot",
            spec.side_bytes_per_slot.to_string(),
            id.side_bytes_per_slot,
        ));
    }
    if id.fixed_body_size != spec.fixed_body_size {
        return Err(invalid(
            "fixed_body_size",
            spec.fixed_body_size.to_string(),
            id.fixed_body_size,
        ));
    }
    Ok(())
}

fn check_type(role: Role, expected: &TypeLayout, stored: &StoredType) -> Result<(), OpenErrorKind> {
    let found = stored.layout();
    if found.hash != expected.hash || found.size != expected.size || found.align != expected.align {
        return Err(OpenErrorKind::LayoutMismatch {
            role,
            expected: Box::new(*expected),
            found: Box::new(found),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_is_as_documented() {
        assert_eq!(size_of::<StoredType>(), 216);
        assert_eq!(size_of::<Identity>(), 600);
        assert_eq!(std::mem::offset_of!(Header, init), 640);
        assert_eq!(std::mem::offset_of!(Header, counters), 704);
        assert_eq!(std::mem::offset_of!(Header, entry_counts), 768);
        assert_eq!(std::mem::offset_of!(Header, processes), 4864);
        assert_eq!(size_of::<ProcEntry>(), 32);
        assert_eq!(HEADER_SIZE, 139_264, "4864 + 4095 × 32 = 135,904, rounded up to 34 pages");
    }

    #[test]
    fn stored_types_round_trip() {
        let t = TypeLayout::of::<[u64; 8]>();
        assert_eq!(StoredType::new(&t).layout(), t);
    }
}
