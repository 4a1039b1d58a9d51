//! Segments: shared memory with a self-describing header, created and opened race-free.
//!
//! A segment is a header (see `segment/header.rs` for its layout) followed by a structure's body. Every structure in shmap
//! sits on one, and [`Segment`] is public so that structures of your own can too.
//!
//! # The create-or-open protocol
//!
//! The original library created its object with `shm_open(O_CREAT | O_EXCL)` and only then
//! sized and initialised it: an opener in between mapped a zero-length object and died of
//! `SIGBUS`, and a creator that died while building left every opener spinning forever. shmap
//! never lets a name point at an incomplete segment:
//!
//! 1. try to open the name (`O_RDWR | O_NOFOLLOW | O_NONBLOCK`); if it exists, refuse it unless
//!    it is a regular file, and validate its header (below);
//! 2. otherwise create an **unnamed** file in the same directory (`O_TMPFILE`), give it its
//!    exact mode (`fchmod`, 0600 by default), size it (`ftruncate`), reserve its space
//!    (`posix_fallocate`, so a full tmpfs is an error now, not a `SIGBUS` later), map it,
//!    write the header and the body, and (for files) `fsync` it;
//! 3. publish it with `linkat`, which atomically gives it the name or fails with `EEXIST`
//!    if another process published first, in which case the loser drops its copy and goes
//!    back to 1. The loop is bounded by [`SegmentOptions::open_timeout`].
//!
//! So any number of processes may race on one name and all end up with the same, complete
//! segment; a creator killed at any point leaves either nothing or a complete segment (its
//! unnamed file is freed by the kernel); and no failure path ever unlinks a name, which could
//! be another process's segment. Where `O_TMPFILE` or `/proc` is unavailable, step 2 uses a
//! uniquely named temporary file and `link(2)` instead (same atomicity; a creator killed
//! mid-way leaves a `.shmap-tmp.*` file behind, never a partial segment under the real name).
//!
//! # Validation
//!
//! An opener copies the header and checks every field against what its types say before using
//! any of them: magic, format version, checksum, structure kind, key and value layout hashes,
//! sizes and alignments, capacity, hasher, flags, and that the object is exactly as large as
//! the header implies. Any mismatch is an [`OpenErrorKind`] that names both values, and the
//! segment is left exactly as it was: nothing is ever truncated or re-initialised because an
//! opener disagrees with it.

mod backing;
pub(crate) mod header;

use std::alloc::Layout;
use std::ffi::{CStr, CString};
use std::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use zerocopy::FromZeros;

pub use backing::{Backing, SHM_DIR};

use crate::error::{OpenError, OpenErrorKind};
use crate::layout::TypeLayout;
use crate::process::{self, MAX_PROCESSES, OwnerId, ProcessIdentity, ProcessTable};
use crate::sys::{self, Errno};
use header::{Geometry, HEADER_SIZE, Header, INIT_DONE, Identity};

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
            StructureKind::Custom(n) => write!(f, "custom structure #{n}"),
            StructureKind::Unknown(code) => write!(f, "unknown structure (code {code:#x})"),
        }
    }
}

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
    /// Structural options: `None` when opening adopts the segment's (creating uses 0).
    pub flags: Option<u64>,
    /// The flag bits this structure understands: a segment with others is refused.
    pub known_flags: u64,
    /// The bytes per slot for given flags (a multiple of 8).
    pub slot_size: fn(flags: u64) -> u64,
    /// Bytes of the body after the slots (a multiple of 8).
    pub fixed_body_size: u64,
    /// Whether any slot names `owner` as its lock holder; consulted before the process-table
    /// entry of a dead process is reused.
    pub references_owner: fn(&Segment, OwnerId) -> bool,
}

impl SegmentSpec {
    /// A spec with no hasher, no capacity (adopt), no flags (adopt) and no fixed body, for
    /// structures that never record owners in their slots.
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
            flags: None,
            known_flags: 0,
            slot_size,
            fixed_body_size: 0,
            references_owner: |_, _| false,
        }
    }
}

/// Whether an open may create the segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CreateMode {
    /// Open the segment if it exists, create it otherwise (the default).
    #[default]
    OpenOrCreate,
    /// Create a new segment; fail with [`OpenErrorKind::AlreadyExists`] if the name is taken.
    CreateNew,
    /// Open an existing segment; fail with [`OpenErrorKind::NotFound`] if there is none.
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
    pub mode: u32,
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

/// Whether a mapping may be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    ReadWrite,
    /// For [`Segment::inspect`]: even a bug cannot write to what is only being looked at.
    ReadOnly,
}

/// Where a segment's bytes are.
enum Memory {
    Mapped { addr: NonNull<u8>, len: usize },
    Heap { ptr: NonNull<u8>, layout: Layout },
}

impl Memory {
    fn map(fd: Option<BorrowedFd<'_>>, len: u64, access: Access) -> Result<Memory, OpenErrorKind> {
        let len = usize::try_from(len)
            .map_err(|_| OpenErrorKind::InvalidOptions(format!("{len} bytes exceed usize")))?;
        let writable = access == Access::ReadWrite;
        let addr = sys::mmap_shared(fd, len, writable).map_err(|e| os("mmap", e))?;
        Ok(Memory::Mapped { addr, len })
    }

    fn heap(len: u64) -> Result<Memory, OpenErrorKind> {
        let layout = usize::try_from(len)
            .ok()
            .and_then(|len| Layout::from_size_align(len, header::PAGE as usize).ok())
            .ok_or_else(|| OpenErrorKind::InvalidOptions(format!("{len} bytes exceed usize")))?;
        // SAFETY: `layout` has a non-zero size (it includes the header).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr)
            .ok_or(OpenErrorKind::NoSpace { needed: len, source: Errno(libc::ENOMEM) })?;
        Ok(Memory::Heap { ptr, layout })
    }

    fn base(&self) -> NonNull<u8> {
        match *self {
            Memory::Mapped { addr, .. } => addr,
            Memory::Heap { ptr, .. } => ptr,
        }
    }

    fn len(&self) -> usize {
        match self {
            Memory::Mapped { len, .. } => *len,
            Memory::Heap { layout, .. } => layout.size(),
        }
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        match *self {
            // SAFETY: the range is the mapping `map` created; the segment that owned this
            // memory is being dropped, so no reference into it outlives this call.
            Memory::Mapped { addr, len } => unsafe { sys::munmap(addr, len) },
            // SAFETY: `ptr` was allocated by `alloc_zeroed` with this `layout` and is not used
            // after this call, for the same reason.
            Memory::Heap { ptr, layout } => unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) },
        }
    }
}

/// A mapped segment: a validated header and a body of `capacity × slot_size` bytes (plus a
/// fixed part), in shared memory.
///
/// The body is exposed as a slice of [`AtomicU64`]: shmap structures access shared memory only
/// through atomics, so that a concurrent write by another process is never a data race in the
/// Rust memory model.
pub struct Segment {
    memory: Memory,
    geometry: Geometry,
    backing: Backing,
    created: bool,
    /// Opened by [`Segment::inspect`]: mapped read-only, never registered.
    read_only: bool,
    huge_pages: HugePages,
    /// This handle's process-table registration: `fork generation << 16 | owner id`, 0 if none.
    registration: AtomicU64,
    references_owner: fn(&Segment, OwnerId) -> bool,
}

// SAFETY: a `Segment` owns its mapping (or allocation); the memory is only accessed through
// atomics or, for the identity, read after publication, so sharing the handle between threads
// and sending it to another thread are both sound.
unsafe impl Send for Segment {}
// SAFETY: see `Send`: every access through `&Segment` is atomic or a read of immutable bytes.
unsafe impl Sync for Segment {}

impl fmt::Debug for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Segment")
            .field("backing", &self.backing)
            .field("geometry", &self.geometry)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

fn os(call: &'static str, e: Errno) -> OpenErrorKind {
    OpenErrorKind::Os { call, source: e }
}

/// Maps the errno of opening an existing object.
fn open_errno(e: Errno) -> OpenErrorKind {
    match e.0 {
        libc::ENOENT => OpenErrorKind::NotFound,
        libc::EACCES | libc::EPERM => OpenErrorKind::PermissionDenied,
        libc::ELOOP => OpenErrorKind::SymlinkRefused,
        libc::EISDIR | libc::ENXIO | libc::ENODEV => OpenErrorKind::NotRegularFile,
        _ => os("open", e),
    }
}

/// What happened to an attempt to create and publish a segment.
enum Published {
    Created(Segment),
    /// Another process published a segment under the name first.
    NameTaken,
}

impl Segment {
    /// Creates or opens the segment at `backing` for the structure `spec` describes.
    ///
    /// See the [module documentation](self) for the protocol and the checks. The calling
    /// process is registered in the segment's process table until the handle is dropped.
    pub fn open(
        backing: &Backing,
        spec: &SegmentSpec,
        options: &SegmentOptions,
    ) -> Result<Segment, OpenError> {
        let fail = |kind| OpenError::new(backing, kind);
        let mut segment = match backing.location().map_err(fail)? {
            None => Self::create_private(backing, spec),
            Some(location) => Self::open_named(backing, &location, spec, options),
        }
        .map_err(fail)?;
        segment.register().map_err(fail)?;
        segment.apply_memory_options(options);
        Ok(segment)
    }

    /// Huge pages and prefaulting: best effort, after the segment checked out.
    fn apply_memory_options(&mut self, options: &SegmentOptions) {
        let (addr, len) = (self.memory.base(), self.memory.len());
        if options.huge_pages {
            // SAFETY: the range is exactly this segment's live mapping (or heap allocation,
            // which is page aligned and which `madvise` only advises).
            let advised = unsafe { sys::advise_huge_pages(addr, len) };
            self.huge_pages = HugePages::Requested { advised: advised.is_ok() };
        }
        if options.prefault && !self.read_only {
            // The body only: most of the header is the process table, whose pages are touched
            // only as processes register.
            let header = self.geometry.header_size as usize;
            // SAFETY: the body lies inside the mapping, `header_size` (a page multiple) bytes in.
            let body = unsafe { addr.add(header) };
            // SAFETY: as above; the mapping (or allocation) is writable.
            if unsafe { sys::populate(body, len - header) }.is_err() {
                self.touch_every_page();
            }
        }
    }

    /// Faults the body's pages in by loading one word of each (where `MADV_POPULATE_WRITE` is
    /// missing). Other processes may be storing to those words meanwhile, so the load is atomic,
    /// through the `AtomicU64` that every process uses for the body's words ([`body`](Self::body)).
    ///
    /// The word loaded is the last of its page (or of the body, on its last page), so that it is
    /// never one of the rings' futex words, the only body words accessed as something else (as
    /// the `AtomicU32` of their first four bytes; atomics of different sizes must not overlap):
    /// those are the control words `ITEMS_SEQ` and `SPACE_SEQ` (24 and 32), at word offsets
    /// that are multiples of 8 in the body (the control block starts at one), whereas the body
    /// starts at a page boundary, so a page's last word is at offset 511 mod 512. And the body's
    /// last word is at or after the control block's last one, 7 words past `SPACE_SEQ`.
    fn touch_every_page(&self) {
        const PAGE_WORDS: usize = header::PAGE as usize / size_of::<AtomicU64>();
        let body = self.body();
        for page in (0..body.len()).step_by(PAGE_WORDS) {
            let last = (page + PAGE_WORDS - 1).min(body.len() - 1);
            // Relaxed: only faults the page in; the value is discarded and orders nothing.
            std::hint::black_box(body[last].load(Ordering::Relaxed));
        }
    }

    /// Whether huge pages were asked for, and whether the kernel took the advice (see
    /// [`SegmentOptions::huge_pages`]; `/proc/<pid>/smaps` shows whether it used them).
    pub fn huge_pages(&self) -> HugePages {
        self.huge_pages
    }

    /// Removes the name of a segment (`shm_unlink(3)` or `unlink(2)`). Processes that have it
    /// open keep using it; the memory is freed when the last of them unmaps it.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, OpenErrorKind};
    ///
    /// let err = shmap::segment::Segment::unlink(&Backing::shm("/shmap-doc-never-created")).unwrap_err();
    /// assert!(matches!(err.kind(), OpenErrorKind::NotFound));
    /// ```
    pub fn unlink(backing: &Backing) -> Result<(), OpenError> {
        let fail = |kind| OpenError::new(backing, kind);
        let Some(location) = backing.location().map_err(fail)? else {
            return Ok(()); // anonymous and heap segments have no name
        };
        let dir = sys::open_dir(&location.dir).map_err(|e| fail(open_errno(e)))?;
        sys::unlinkat(dir.as_fd(), &location.name).map_err(|e| fail(open_errno(e)))
    }

    /// Opens an existing segment only to look at it, whatever structure and types it holds: the
    /// header is validated for consistency (magic, version, checksum, sizes) but not against any
    /// type, the mapping is read-only, and the process does not register in the segment's
    /// process table. For monitors and the `shmap` command.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, Segment, ShmHashTable, StructureKind};
    ///
    /// # let name = format!("/shmap-doc-inspect-{}", std::process::id());
    /// let table = ShmHashTable::<u32, [u8; 12]>::open_or_create(&name, 64)?;
    /// let seen = Segment::inspect(&Backing::shm(&name))?;
    /// let info = seen.info();
    /// assert_eq!((info.kind, info.capacity, info.value.desc.as_str()), (StructureKind::HashTable, 64, "[u8;12]"));
    /// assert_eq!(seen.attached_processes().len(), 1, "the inspector did not register");
    /// # table.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn inspect(backing: &Backing) -> Result<Segment, OpenError> {
        let fail = |kind| OpenError::new(backing, kind);
        let Some(location) = backing.location().map_err(fail)? else {
            return Err(fail(OpenErrorKind::InvalidOptions(
                "only named segments (POSIX shm names and files) can be inspected".into(),
            )));
        };
        let dir = sys::open_dir(&location.dir).map_err(|e| fail(open_errno(e)))?;
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer (and some
        // devices for a carrier); `attach` then refuses anything that is not a regular file.
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
        let fd =
            sys::openat(dir.as_fd(), &location.name, flags, 0).map_err(|e| fail(open_errno(e)))?;
        Self::attach(backing, fd, None, Access::ReadOnly).map_err(fail)
    }

    /// Whether this handle only inspects the segment (see [`inspect`](Self::inspect)).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    fn create_private(backing: &Backing, spec: &SegmentSpec) -> Result<Segment, OpenErrorKind> {
        let geometry = new_geometry(spec)?;
        let memory = match backing {
            Backing::Heap => Memory::heap(geometry.total_size)?,
            _ => Memory::map(None, geometry.total_size, Access::ReadWrite)?,
        };
        let segment = Segment::new(memory, geometry, backing, true, Some(spec));
        segment.write_header(spec);
        Ok(segment)
    }

    fn new(
        memory: Memory,
        geometry: Geometry,
        backing: &Backing,
        created: bool,
        spec: Option<&SegmentSpec>,
    ) -> Segment {
        Segment {
            memory,
            geometry,
            backing: backing.clone(),
            created,
            read_only: false,
            huge_pages: HugePages::NotRequested,
            registration: AtomicU64::new(0),
            references_owner: spec.map_or(|_, _| true, |s| s.references_owner),
        }
    }

    fn open_named(
        backing: &Backing,
        location: &backing::Location,
        spec: &SegmentSpec,
        options: &SegmentOptions,
    ) -> Result<Segment, OpenErrorKind> {
        let dir = sys::open_dir(&location.dir).map_err(|e| match e.0 {
            libc::ENOENT | libc::ENOTDIR => OpenErrorKind::InvalidName {
                name: backing.to_string(),
                reason: "its directory does not exist",
            },
            _ => open_errno(e),
        })?;
        let started = Instant::now();
        loop {
            if options.create != CreateMode::CreateNew {
                // O_NONBLOCK: as in `inspect`, never wait in `open` for a FIFO's or a device's
                // other end; `attach` refuses them.
                let flags = libc::O_RDWR | libc::O_NOFOLLOW | libc::O_NONBLOCK;
                match sys::openat(dir.as_fd(), &location.name, flags, 0) {
                    Ok(fd) => return Self::attach(backing, fd, Some(spec), Access::ReadWrite),
                    Err(Errno(libc::ENOENT)) if options.create == CreateMode::OpenOrCreate => {}
                    Err(e) => return Err(open_errno(e)),
                }
            }
            match Self::create_published(backing, dir.as_fd(), location, spec, options)? {
                Published::Created(segment) => return Ok(segment),
                Published::NameTaken if options.create == CreateMode::CreateNew => {
                    return Err(OpenErrorKind::AlreadyExists);
                }
                // Another process published first: open theirs.
                Published::NameTaken => {}
            }
            let waited = started.elapsed();
            if waited > options.open_timeout {
                return Err(OpenErrorKind::Timeout { waited });
            }
            std::thread::yield_now();
        }
    }

    /// Steps 2 and 3 of the protocol: build the segment in an unnamed file, then publish it.
    fn create_published(
        backing: &Backing,
        dir: BorrowedFd<'_>,
        location: &backing::Location,
        spec: &SegmentSpec,
        options: &SegmentOptions,
    ) -> Result<Published, OpenErrorKind> {
        let geometry = new_geometry(spec)?;
        let mode = options.mode & 0o7777;
        let (fd, temp_name) = new_unnamed_file(dir, mode)?;
        let result = (|| {
            sys::fchmod(fd.as_fd(), mode).map_err(|e| os("fchmod", e))?;
            sys::ftruncate(fd.as_fd(), geometry.total_size).map_err(|e| match e.0 {
                libc::EFBIG | libc::ENOSPC => {
                    OpenErrorKind::NoSpace { needed: geometry.total_size, source: e }
                }
                _ => os("ftruncate", e),
            })?;
            sys::fallocate(fd.as_fd(), geometry.total_size).map_err(|e| match e.0 {
                libc::ENOSPC | libc::EDQUOT | libc::EFBIG | libc::ENOMEM => {
                    OpenErrorKind::NoSpace { needed: geometry.total_size, source: e }
                }
                _ => os("posix_fallocate", e),
            })?;
            let memory = Memory::map(Some(fd.as_fd()), geometry.total_size, Access::ReadWrite)?;
            let segment = Segment::new(memory, geometry, backing, true, Some(spec));
            segment.write_header(spec);
            if location.durable {
                sys::fsync(fd.as_fd()).map_err(|e| os("fsync", e))?;
            }
            let linked = match &temp_name {
                None => sys::link_fd(fd.as_fd(), dir, &location.name),
                Some(temp) => sys::linkat(dir, temp, &location.name),
            };
            match linked {
                Ok(()) => Ok(Published::Created(segment.mapped_by_name(dir, location, &fd))),
                Err(Errno(libc::EEXIST)) => Ok(Published::NameTaken),
                Err(e) => Err(os("linkat", e)),
            }
        })();
        if let Some(temp) = temp_name {
            // Only the temporary name is ever removed on the way out, never the real one.
            let _ = sys::unlinkat(dir, &temp);
        }
        result
    }

    /// Replaces the creator's mapping of its unnamed file by a mapping of the published name,
    /// so that `/proc/<pid>/maps`, `lsof` and `fuser` show the creator as a user of the name
    /// (a mapping made before `linkat` shows as `/dev/shm/#<inode> (deleted)`). Keeps the
    /// original mapping if the name no longer leads to the same file.
    fn mapped_by_name(
        mut self,
        dir: BorrowedFd<'_>,
        location: &backing::Location,
        fd: &OwnedFd,
    ) -> Self {
        // O_NONBLOCK: the name may have been replaced by a FIFO meanwhile (then not the same file).
        let flags = libc::O_RDWR | libc::O_NOFOLLOW | libc::O_NONBLOCK;
        let Ok(named) = sys::openat(dir, &location.name, flags, 0) else { return self };
        let same_file = match (sys::fstat(named.as_fd()), sys::fstat(fd.as_fd())) {
            (Ok(a), Ok(b)) => a.identity == b.identity,
            _ => false,
        };
        if same_file {
            if let Ok(memory) =
                Memory::map(Some(named.as_fd()), self.geometry.total_size, Access::ReadWrite)
            {
                // The old mapping is unmapped as it drops; nothing refers into it yet.
                self.memory = memory;
            }
        }
        self
    }

    /// Validates an existing object and maps it.
    fn attach(
        backing: &Backing,
        fd: OwnedFd,
        spec: Option<&SegmentSpec>,
        access: Access,
    ) -> Result<Segment, OpenErrorKind> {
        let stat = sys::fstat(fd.as_fd()).map_err(|e| os("fstat", e))?;
        if !stat.is_regular {
            return Err(OpenErrorKind::NotRegularFile);
        }
        if stat.size < size_of::<u64>() as u64 {
            return Err(OpenErrorKind::Truncated { expected: HEADER_SIZE, found: stat.size });
        }
        let memory = Memory::map(Some(fd.as_fd()), stat.size, access)?;
        let base = memory.base().cast::<u64>();
        // SAFETY: the mapping is at least 8 bytes long and page aligned.
        let magic = unsafe { base.read_volatile() };
        if magic != header::MAGIC {
            return Err(OpenErrorKind::NotShmap { expected: header::MAGIC, found: magic });
        }
        if stat.size < size_of::<Identity>() as u64 {
            return Err(OpenErrorKind::Truncated { expected: HEADER_SIZE, found: stat.size });
        }
        // SAFETY: the mapping holds at least `size_of::<Identity>()` bytes and is page aligned;
        // `Identity` is `FromBytes`, so any bytes are a valid value. A volatile copy, because
        // another process could be writing (a corrupt or hostile writer) and we must validate
        // one consistent snapshot rather than re-read fields after checking them.
        let identity = unsafe { memory.base().cast::<Identity>().read_volatile() };
        let geometry = header::validate(&identity, stat.size, spec)?;
        let mut segment = Segment::new(memory, geometry, backing, false, spec);
        segment.read_only = access == Access::ReadOnly;
        // Acquire: pairs with the creator's Release store of INIT_DONE in `write_header`.
        let state = segment.header().init.state.load(Ordering::Acquire);
        if state != INIT_DONE {
            return Err(OpenErrorKind::NotInitialised { state, creator_pid: identity.creator_pid });
        }
        Ok(segment)
    }

    /// Writes the header of a segment this process just created (before anyone else sees it).
    fn write_header(&self, spec: &SegmentSpec) {
        let g = self.geometry;
        let mut id = Identity::new_zeroed();
        id.magic = header::MAGIC;
        id.format_version = header::FORMAT_VERSION;
        id.kind = spec.kind.code();
        id.header_size = g.header_size;
        id.total_size = g.total_size;
        id.capacity = g.capacity;
        id.slot_size = g.slot_size;
        id.fixed_body_size = spec.fixed_body_size;
        id.hasher_id = spec.hasher_id;
        id.flags = g.flags;
        id.key = header::StoredType::new(&spec.key);
        id.value = header::StoredType::new(&spec.value);
        id.max_processes = MAX_PROCESSES as u32;
        id.creator_pid = std::process::id();
        id.creator_uid = if cfg!(miri) { 0 } else { sys::uid() };
        // Miri (with isolation) has neither a wall clock nor getrandom.
        id.created_unix_ns = if cfg!(miri) {
            0
        } else {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        };
        id.segment_id =
            if cfg!(miri) { self.memory.base().as_ptr().addr() as u64 } else { sys::random_u64() };
        id.checksum = header::checksum(&id);
        // SAFETY: the memory is at least HEADER_SIZE bytes, page aligned, and not yet visible
        // to any other process or thread (it has no name yet, or is private to this handle);
        // no reference to the identity exists yet.
        unsafe { self.memory.base().cast::<Identity>().write(id) };
        // Release: publishes the identity and body to openers; pairs with the Acquire load of
        // `init` in `attach`.
        self.header().init.state.store(INIT_DONE, Ordering::Release);
    }

    fn header(&self) -> &Header {
        // SAFETY: the memory starts with a `Header` (at least HEADER_SIZE bytes, page aligned),
        // whose identity has been written and validated and whose other fields are atomics
        // (zero-initialised by ftruncate/alloc_zeroed, a valid value for atomics).
        unsafe { self.memory.base().cast::<Header>().as_ref() }
    }

    /// The body: `capacity × slot_size` bytes of slots, then the fixed part, as 64-bit words.
    pub fn body(&self) -> &[AtomicU64] {
        let g = self.geometry;
        let words = ((g.total_size - g.header_size) / 8) as usize;
        // SAFETY: `header_size < total_size`, the length of the memory, so the offset stays
        // inside the allocation.
        let start = unsafe { self.memory.base().as_ptr().add(g.header_size as usize) };
        // SAFETY: the body starts `header_size` bytes (a page multiple) into the memory, so it is
        // 8-aligned, and it spans `total_size - header_size` bytes, all inside the memory; the
        // bytes are initialised (zeroed at creation) and every access goes through the atomics.
        unsafe { std::slice::from_raw_parts(start.cast::<AtomicU64>(), words) }
    }

    /// The segment's process table.
    pub(crate) fn processes(&self) -> ProcessTable<'_> {
        ProcessTable::new(&self.header().processes)
    }

    /// The number of slots.
    pub fn capacity(&self) -> u64 {
        self.geometry.capacity
    }

    /// The structural flags.
    pub fn flags(&self) -> u64 {
        self.geometry.flags
    }

    /// What the header says.
    pub fn info(&self) -> SegmentInfo {
        let id = &self.header().identity;
        SegmentInfo {
            backing: self.backing.clone(),
            kind: StructureKind::from_code(id.kind),
            capacity: id.capacity,
            slot_size: id.slot_size,
            flags: id.flags,
            header_size: id.header_size,
            total_size: id.total_size,
            key: id.key.layout(),
            value: id.value.layout(),
            hasher_id: id.hasher_id,
            creator_pid: id.creator_pid,
            creator_uid: id.creator_uid,
            created_at: SystemTime::UNIX_EPOCH + Duration::from_nanos(id.created_unix_ns),
            segment_id: id.segment_id,
            created_by_this_handle: self.created,
        }
    }

    /// The process registered under `owner`, if any.
    pub fn process(&self, owner: OwnerId) -> Option<ProcessIdentity> {
        self.processes().lookup(owner)
    }

    /// Whether the process registered as `owner` is alive (see [`ProcessIdentity::liveness`]).
    ///
    /// An owner with no active entry is reported dead, and that is a proof too: an entry is
    /// freed only by its handle's drop (which holds no lock then), or reclaimed only after its
    /// process was proven dead and no slot, role or cell still named it; an entry being filled
    /// in belongs to a process that cannot hold anything yet.
    pub fn owner_liveness(&self, owner: OwnerId) -> crate::Liveness {
        self.process(owner).map_or(crate::Liveness::Dead, |p| p.liveness())
    }

    /// How many locks of dead holders have been recovered, and how many of those were
    /// write-backs released without an undo record (values possibly torn).
    pub fn recoveries(&self) -> (u64, u64) {
        let c = &self.header().counters;
        (c.recoveries.load(Ordering::Relaxed), c.torn_recoveries.load(Ordering::Relaxed))
    }

    /// Counts a recovery in the header.
    pub(crate) fn count_recovery(&self, torn: bool) {
        let c = &self.header().counters;
        c.recoveries.fetch_add(1, Ordering::Relaxed);
        if torn {
            c.torn_recoveries.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every process attached to the segment.
    pub fn attached_processes(&self) -> Vec<(OwnerId, ProcessIdentity)> {
        self.processes().active().collect()
    }

    /// This handle's owner id, registering the process first if the handle was inherited
    /// across `fork`. Costs two relaxed loads when registered.
    #[inline]
    pub fn owner(&self) -> Result<OwnerId, OpenErrorKind> {
        if self.read_only {
            return Err(OpenErrorKind::ReadOnly);
        }
        let registration = self.registration.load(Ordering::Relaxed);
        let generation = process::current_fork_generation();
        if registration >> 16 == u64::from(generation) {
            if let Some(owner) = OwnerId::from_bits(registration & 0xffff) {
                return Ok(owner);
            }
        }
        self.register()
    }

    #[cold]
    fn register(&self) -> Result<OwnerId, OpenErrorKind> {
        let generation = process::fork_generation();
        let current = self.registration.load(Ordering::Relaxed);
        if current >> 16 == u64::from(generation) {
            if let Some(owner) = OwnerId::from_bits(current & 0xffff) {
                return Ok(owner); // another thread registered first
            }
        }
        let me = ProcessIdentity::current().map_err(OpenErrorKind::IdentityUnavailable)?;
        let referenced = |owner| (self.references_owner)(self, owner);
        let owner = self
            .processes()
            .register(&me, &referenced)
            .map_err(|_| OpenErrorKind::TooManyProcesses { max: MAX_PROCESSES })?;
        let new = (u64::from(generation) << 16) | u64::from(owner.get());
        match self.registration.compare_exchange(current, new, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => Ok(owner),
            Err(winner) => {
                // Another thread of this process registered concurrently: use its entry.
                self.processes().release(owner);
                OwnerId::from_bits(winner & 0xffff)
                    .ok_or(OpenErrorKind::TooManyProcesses { max: MAX_PROCESSES })
            }
        }
    }

    /// Writes a file-backed segment's dirty pages to its file (`msync(MS_SYNC)`); a no-op for
    /// other backings.
    pub fn flush(&self) -> Result<(), OpenError> {
        if let (Backing::File(_), Memory::Mapped { addr, len }) = (&self.backing, &self.memory) {
            // SAFETY: the range is exactly this segment's live mapping.
            unsafe { sys::msync(*addr, *len) }
                .map_err(|e| OpenError::new(&self.backing, os("msync", e)))?;
        }
        Ok(())
    }

    /// Where the segment lives.
    pub fn backing(&self) -> &Backing {
        &self.backing
    }

    /// The size of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.memory.len()
    }

    /// Always false: a segment holds at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        let registration = *self.registration.get_mut();
        // Only the process that registered releases the entry: a handle inherited across `fork`
        // but never used there holds the parent's entry, which the parent releases.
        if registration >> 16 == u64::from(process::current_fork_generation()) {
            if let Some(owner) = OwnerId::from_bits(registration & 0xffff) {
                self.processes().release(owner);
            }
        }
    }
}

/// The geometry of a segment about to be created.
fn new_geometry(spec: &SegmentSpec) -> Result<Geometry, OpenErrorKind> {
    let capacity = spec.capacity.ok_or_else(|| {
        OpenErrorKind::InvalidOptions("a capacity is required to create a segment".into())
    })?;
    header::geometry(spec, capacity, spec.flags.unwrap_or(0), HEADER_SIZE)
        .map_err(OpenErrorKind::InvalidOptions)
}

/// Whether `/proc/self/fd` exists, which linking an `O_TMPFILE` file without privileges needs.
fn proc_fd_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| std::path::Path::new("/proc/self/fd").is_dir())
}

/// An unnamed file in `dir` (`O_TMPFILE`), or a uniquely named temporary one where `O_TMPFILE`
/// or `/proc` is unavailable (then the name is returned so the caller can remove it).
fn new_unnamed_file(
    dir: BorrowedFd<'_>,
    mode: u32,
) -> Result<(OwnedFd, Option<CString>), OpenErrorKind> {
    if proc_fd_available() {
        match sys::open_tmpfile(dir, mode) {
            Ok(fd) => return Ok((fd, None)),
            Err(Errno(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)) => {}
            Err(e) => return Err(create_errno(e)),
        }
    }
    let temp = temp_name();
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
    let fd = sys::openat(dir, &temp, flags, mode).map_err(create_errno)?;
    Ok((fd, Some(temp)))
}

fn create_errno(e: Errno) -> OpenErrorKind {
    match e.0 {
        libc::EACCES | libc::EPERM | libc::EROFS => OpenErrorKind::PermissionDenied,
        libc::ENOSPC | libc::EDQUOT => OpenErrorKind::NoSpace { needed: HEADER_SIZE, source: e },
        _ => os("open", e),
    }
}

fn temp_name() -> CString {
    let name = format!(".shmap-tmp.{}.{:016x}", std::process::id(), sys::random_u64());
    CString::new(name).expect("a formatted name has no NUL byte")
}

/// The prefix of the temporary files that creation uses where `O_TMPFILE` is unavailable (a
/// creator killed mid-way may leave one behind; cleanup tools can remove them).
pub const TEMP_PREFIX: &CStr = c".shmap-tmp.";

#[cfg(all(test, not(miri)))]
impl Segment {
    /// A registered owner id whose process has exited: a child that was spawned, reaped, and
    /// then registered under its pid, as if it had attached and been killed.
    pub(crate) fn register_dead_process(&self) -> OwnerId {
        let mut child = std::process::Command::new("true").spawn().expect("spawn `true`");
        let pid = child.id();
        child.wait().expect("reap `true`");
        let dead = ProcessIdentity { pid, ..ProcessIdentity::current().unwrap() };
        let owner = self.processes().register(&dead, &|_| false).expect("a free entry");
        assert_eq!(self.owner_liveness(owner), crate::Liveness::Dead);
        owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prefault fallback reads every page while other threads (and processes) store to the
    /// body: its reads must be atomic too, or they race with those stores (Miri checks this).
    #[test]
    fn touching_every_page_does_not_race_with_stores() {
        let spec = SegmentSpec {
            capacity: Some(2048), // four pages of 8-byte slots,
            fixed_body_size: 24,  // and three words on a fifth
            ..SegmentSpec::new(
                StructureKind::Custom(1),
                TypeLayout::NONE,
                TypeLayout::of::<u64>(),
                |_| 8,
            )
        };
        let segment = Segment::create_private(&Backing::Heap, &spec).unwrap();
        let body = segment.body();
        assert_eq!(body.len(), 4 * header::PAGE as usize / 8 + 3);
        std::thread::scope(|s| {
            s.spawn(|| {
                for (i, word) in body.iter().enumerate() {
                    // Relaxed: publishes nothing; only the overlap with the touch matters.
                    word.store(i as u64 + 1, Ordering::Relaxed);
                }
            });
            segment.touch_every_page();
        });
        // Relaxed: the writer was joined at the end of the scope.
        assert!(body.iter().enumerate().all(|(i, w)| w.load(Ordering::Relaxed) == i as u64 + 1));
    }
}
