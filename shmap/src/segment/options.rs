//! What a structure asks of its segment ([`SegmentSpec`]), how a caller wants it opened
//! ([`SegmentOptions`], [`CreateMode`]), and what an open segment reports ([`SegmentInfo`],
//! [`HugePages`]).

use std::time::{Duration, SystemTime};

use crate::layout::TypeLayout;
use crate::process::OwnerId;
use crate::segment::{Backing, Segment, StructureKind};

/// What a structure expects of its segment: the header fields an opener checks, and how to
/// size the body.
///
/// # Examples
///
/// A custom structure of 64 `u64` counters:
///
/// ```
/// use shmap::segment::{Segment, SegmentOptions, SegmentSpec};
/// use shmap::{Backing, StructureKind, TypeLayout};
/// use std::sync::atomic::Ordering;
///
/// let spec = SegmentSpec {
///     capacity: Some(64),
///     ..SegmentSpec::new(StructureKind::Custom(1), TypeLayout::NONE, TypeLayout::of::<u64>(), |_| 8)
/// };
/// let seg = Segment::open(&Backing::Heap, &spec, &SegmentOptions::default())?;
/// seg.body()[3].fetch_add(1, Ordering::Relaxed);
/// assert_eq!(seg.body().len(), 64);
/// # Ok::<(), shmap::OpenError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SegmentSpec {
    /// The structure.
    pub kind: StructureKind,
    /// The key type ([`TypeLayout::NONE`] if there is none).
    pub key: TypeLayout,
    /// The value or element type.
    pub value: TypeLayout,
    /// The hasher's id (0 if there is none).
    pub hasher_id: u64,
    /// The number of slots, a power of two: required to create; `None` when opening adopts the
    /// segment's.
    pub capacity: Option<u64>,
    /// Whether opening an existing segment accepts one with more slots than `capacity` (it
    /// has room for what was asked); otherwise the capacity must match exactly.
    pub adopt_larger: bool,
    /// Structural options: `None` when opening adopts the segment's (creating uses 0).
    pub flags: Option<u64>,
    /// The flag bits this structure understands: a segment with others is refused.
    pub known_flags: u64,
    /// The bytes per slot for given flags (a multiple of 8).
    pub slot_size: fn(flags: u64) -> u64,
    /// Bytes per slot of a side table after the slots, rounded up to whole 8-byte words in all
    /// (a hash table's probe bounds).
    pub side_bytes_per_slot: u64,
    /// Bytes of the body after the slots and their side table (a multiple of 8).
    pub fixed_body_size: u64,
    /// Whether any slot names `owner` as its lock holder; consulted before the process-table
    /// entry of a dead process is reused.
    pub references_owner: fn(&Segment, OwnerId) -> bool,
    /// The structure's own parameters, recorded in the header by the creator (a cache's
    /// settings) and read back with [`Segment::params`]: the opener, not the segment, checks
    /// them, so that its error can name them.
    pub params: [u64; 4],
}

impl SegmentSpec {
    /// A spec with no hasher, no capacity (adopt), no flags (adopt), no side table and no fixed
    /// body, for structures that never record owners in their slots.
    pub fn new(
        kind: StructureKind,
        key: TypeLayout,
        value: TypeLayout,
        slot_size: fn(u64) -> u64,
    ) -> Self {
        SegmentSpec {
            kind,
            key,
            value,
            hasher_id: 0,
            capacity: None,
            adopt_larger: false,
            flags: None,
            known_flags: 0,
            slot_size,
            side_bytes_per_slot: 0,
            fixed_body_size: 0,
            references_owner: |_, _| false,
            params: [0; 4],
        }
    }
}

/// Whether an open may create the segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CreateMode {
    /// Open the segment if it exists, create it otherwise (the default).
    #[default]
    OpenOrCreate,
    /// Create a new segment; fail with [`OpenErrorKind::AlreadyExists`](crate::OpenErrorKind::AlreadyExists) if the name is taken.
    CreateNew,
    /// Open an existing segment; fail with [`OpenErrorKind::NotFound`](crate::OpenErrorKind::NotFound) if there is none.
    OpenExisting,
}

/// How to create or open a segment.
///
/// # Examples
///
/// ```
/// use shmap::segment::{CreateMode, SegmentOptions};
///
/// let opts = SegmentOptions { mode: 0o660, create: CreateMode::OpenExisting, ..Default::default() };
/// assert_eq!(opts.open_timeout, std::time::Duration::from_secs(5));
/// ```
#[derive(Clone, Debug)]
pub struct SegmentOptions {
    /// Permission bits of a new segment, set exactly (the umask does not apply). Default 0600.
    /// Also the most an existing segment may let group and others write: one writable beyond
    /// them is refused with [`TooPermissive`](crate::OpenErrorKind::TooPermissive).
    pub mode: u32,
    /// A group whose members may own the segments this process opens. By default an existing
    /// segment must be owned by this process's effective user or by root, else the open fails
    /// with [`UntrustedOwner`](crate::OpenErrorKind::UntrustedOwner): in a world-writable
    /// directory such as `/dev/shm`, another user could have created it first, to hand this
    /// process memory it controls. With `Some(gid)`, a segment owned by another user is also
    /// accepted if its group is `gid` and others may not write to it (a table shared by the
    /// services of one group; give them a `mode` such as `0o660`). Default `None`.
    pub shared_group: Option<u32>,
    /// Whether to create, open, or both.
    pub create: CreateMode,
    /// How long to keep trying while others create and destroy the same name.
    pub open_timeout: Duration,
    /// Fault every page of the body in when the segment is opened, so that first touches do not
    /// pay a page fault later (in a latency-critical path or a timed benchmark). Default `false`.
    pub prefault: bool,
    /// Ask for transparent huge pages for the mapping (fewer TLB misses on large tables). Where
    /// the system does not allow them, the open succeeds anyway;
    /// [`Segment::huge_pages`] says what happened. Default `false`.
    pub huge_pages: bool,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            mode: 0o600,
            shared_group: None,
            create: CreateMode::OpenOrCreate,
            open_timeout: Duration::from_secs(5),
            prefault: false,
            huge_pages: false,
        }
    }
}

/// What became of a request for huge pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HugePages {
    /// Not asked for.
    NotRequested,
    /// Asked for with `madvise(MADV_HUGEPAGE)`; `advised` is whether the kernel accepted the
    /// advice (it does not promise to use huge pages: `/proc/<pid>/smaps` says whether it did).
    Requested {
        /// Whether `madvise` succeeded.
        advised: bool,
    },
    /// The segment is a file on a hugetlbfs mount (`Backing::file("/dev/hugepages/...")`): its
    /// memory is huge pages of `page_size` bytes, reserved from the pool
    /// (`/proc/sys/vm/nr_hugepages`) when it was created, and the file's size is the segment's
    /// rounded up to a whole page.
    Hugetlbfs {
        /// The mount's page size (2 MiB or 1 GiB on x86-64).
        page_size: u64,
    },
}

/// How many locks of dead holders a segment's users have recovered (counted in its header).
///
/// # Examples
///
/// ```
/// use shmap::ShmHashTable;
/// use shmap::segment::Recoveries;
///
/// let t = ShmHashTable::<u64, u64>::heap(8)?;
/// assert_eq!(t.segment().recoveries(), Recoveries { total: 0, torn: 0 });
/// # Ok::<(), shmap::OpenError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Recoveries {
    /// Locks released because their holder was dead.
    pub total: u64,
    /// Of those, write-backs released without an undo record: the value may mix old and new
    /// words.
    pub torn: u64,
}

/// What a segment's header says, for logs and monitors.
#[derive(Clone, Debug)]
pub struct SegmentInfo {
    /// Where the segment lives.
    pub backing: Backing,
    /// The structure it holds.
    pub kind: StructureKind,
    /// Number of slots.
    pub capacity: u64,
    /// Bytes per slot.
    pub slot_size: u64,
    /// Structural options.
    pub flags: u64,
    /// Bytes before the body.
    pub header_size: u64,
    /// Bytes in all.
    pub total_size: u64,
    /// The key type's layout.
    pub key: TypeLayout,
    /// The value type's layout.
    pub value: TypeLayout,
    /// The hasher's id.
    pub hasher_id: u64,
    /// The structure's parameters (see [`SegmentSpec::params`]).
    pub params: [u64; 4],
    /// The pid of the process that created the segment.
    pub creator_pid: u32,
    /// The uid it ran as.
    pub creator_uid: u32,
    /// When it was created.
    pub created_at: SystemTime,
    /// A random number drawn at creation: two handles with the same id share one segment.
    pub segment_id: u64,
    /// Whether this handle created the segment (rather than opening an existing one).
    pub created_by_this_handle: bool,
}
