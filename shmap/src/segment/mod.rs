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
//!
//! # Parts
//!
//! | module | holds |
//! |---|---|
//! | `kind` | [`StructureKind`] |
//! | `options` | [`SegmentSpec`], [`SegmentOptions`], [`CreateMode`], [`SegmentInfo`], [`HugePages`] |
//! | `backing` | [`Backing`]: names, paths, anonymous and heap memory |
//! | `memory` | the mapping (or allocation) and its release |
//! | `header` | the header's layout, checksum and validation |
//! | `create` | the create-or-open loop and publication |
//! | `register` | this handle's process-table entry |
//! | `at_exit` | retiring the entries of handles never dropped (statics) when the process exits |
//! | `errno` | the one table from `errno` to [`OpenErrorKind`] |

mod at_exit;
mod backing;
mod count;
mod create;
mod errno;
pub(crate) mod header;
mod kind;
mod memory;
mod options;
mod register;
mod trust;

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use zerocopy::FromZeros;

pub use backing::{Backing, NAME_MAX, SHM_DIR};
pub use create::TEMP_PREFIX;
pub use header::MAX_CAPACITY;
pub use kind::StructureKind;
pub use options::{CreateMode, HugePages, Recoveries, SegmentInfo, SegmentOptions, SegmentSpec};

use crate::error::{OpenError, OpenErrorKind};
use crate::process::{MAX_PROCESSES, OwnerId};
use crate::sys;
use errno::{Step, error};
use header::{Geometry, HEADER_SIZE, Header, INIT_DONE, Identity};
use memory::{Access, Memory};

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
    /// This handle's process-table registration: `incarnation << 16 | owner id`, 0 if none (see
    /// `process::incarnation`: a handle inherited by a child process registers anew).
    registration: AtomicU64,
    references_owner: fn(&Segment, OwnerId) -> bool,
    /// The descriptor of a memfd segment, or of one opened from a descriptor: what another
    /// process needs to open it ([`fd`](Self::fd)).
    fd: Option<OwnedFd>,
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
        let mut segment = match (backing, backing.location().map_err(fail)?) {
            (Backing::Fd(fd), _) => Self::open_fd(backing, *fd, spec),
            (_, None) => Self::create_private(backing, spec),
            (_, Some(location)) => Self::open_named(backing, &location, spec, options),
        }
        .map_err(fail)?;
        segment.register().map_err(|e| fail(OpenErrorKind::Register(e)))?;
        segment.apply_memory_options(options);
        Ok(segment)
    }

    /// Records that the segment's file lies on a hugetlbfs mount of pages of `huge_page` bytes.
    pub(crate) fn note_hugetlbfs(&mut self, huge_page: Option<u64>) {
        if let Some(page_size) = huge_page {
            self.huge_pages = HugePages::Hugetlbfs { page_size };
        }
    }

    /// Huge pages and prefaulting: best effort, after the segment checked out.
    fn apply_memory_options(&mut self, options: &SegmentOptions) {
        let (addr, len) = (self.memory.base(), self.memory.len());
        let hugetlbfs = matches!(self.huge_pages, HugePages::Hugetlbfs { .. });
        if options.huge_pages && !hugetlbfs {
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
        let body = self.words();
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
    /// assert_eq!(
    ///     err.to_string(),
    ///     "cannot remove shared-memory segment /shmap-doc-never-created: no such segment (open without create)"
    /// );
    /// ```
    pub fn unlink(backing: &Backing) -> Result<(), OpenError> {
        let fail = |kind| OpenError::new(backing, kind);
        let Some(location) = backing.location().map_err(fail)? else {
            return Ok(()); // anonymous, heap and memfd segments have no name
        };
        let fail = |kind| OpenError::removing(backing, kind);
        let dir = sys::open_dir(&location.dir).map_err(|e| fail(error(Step::Unlink, e)))?;
        sys::unlinkat(dir.as_fd(), &location.name).map_err(|e| fail(error(Step::Unlink, e)))
    }

    /// Opens an existing segment only to look at it, whatever structure and types it holds: the
    /// header is validated for consistency (magic, version, checksum, sizes) but not against any
    /// type, the mapping is read-only, and the process does not register in the segment's
    /// process table. For monitors and the `shmap` command.
    ///
    /// A segment with no name (a memfd) is reached as `Backing::file("/proc/<pid>/fd/<n>")`:
    /// only there does the open follow a link.
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
        Self::open_read_only(backing, None)
    }

    /// Opens the segment at `backing` without writing to it, as [`inspect`](Self::inspect)
    /// does, and checks it against `spec` if one is given (a typed reader's open).
    pub(crate) fn open_read_only(
        backing: &Backing,
        spec: Option<&SegmentSpec>,
    ) -> Result<Segment, OpenError> {
        let fail = |kind| OpenError::new(backing, kind);
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer (and some
        // devices for a carrier); `attach` then refuses anything that is not a regular file.
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK;
        if let Some(path) = proc_fd_path(backing) {
            // Another process's descriptor (a memfd has no other name): `/proc/<pid>/fd/<n>`
            // is a link by nature, so here, and only here, the link is followed.
            let fd = sys::open_following(&path, flags & !libc::O_NOFOLLOW)
                .map_err(|e| fail(error(Step::Open, e)))?;
            return Self::attach(backing, fd, spec, Access::ReadOnly).map_err(fail);
        }
        let Some(location) = backing.location().map_err(fail)? else {
            return Err(fail(OpenErrorKind::InvalidOptions(
                "only named segments (POSIX shm names, files, /proc/<pid>/fd/<n>) can be \
                 inspected"
                    .into(),
            )));
        };
        let dir = sys::open_dir(&location.dir).map_err(|e| fail(error(Step::Open, e)))?;
        let fd = sys::openat(dir.as_fd(), &location.name, flags, 0)
            .map_err(|e| fail(error(Step::Open, e)))?;
        Self::attach(backing, fd, spec, Access::ReadOnly).map_err(fail)
    }

    /// The segment's file descriptor, for a memfd segment ([`Backing::Memfd`]) or one opened from
    /// a descriptor ([`Backing::Fd`]): what another process needs to open it, inherited across
    /// `fork` and `exec` (it is close-on-exec: `dup2` it onto the descriptor the child expects,
    /// or clear `FD_CLOEXEC` if it already has that number, since `dup2` onto itself leaves the
    /// flag) or sent over a unix socket (`SCM_RIGHTS`). `None` for other backings, which are opened
    /// by name.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmHashTable};
    ///
    /// let t = ShmHashTable::<u64, u64>::options().capacity(16).open(&Backing::memfd("t"))?;
    /// assert!(t.segment().fd().is_some());
    /// assert!(ShmHashTable::<u64, u64>::heap(16)?.segment().fd().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.fd.as_ref().map(|fd| fd.as_fd())
    }

    /// Opens the segment behind descriptor `fd` ([`Backing::Fd`]): a duplicate is attached and
    /// kept; a memfd must be sealed against resizing.
    fn open_fd(backing: &Backing, fd: i32, spec: &SegmentSpec) -> Result<Segment, OpenErrorKind> {
        let fd = sys::dup(fd).map_err(|e| error(Step::Call("fcntl(F_DUPFD_CLOEXEC)"), e))?;
        let seals =
            sys::seals(fd.as_fd()).map_err(|e| error(Step::Call("fcntl(F_GET_SEALS)"), e))?;
        // Only a memfd must be sealed: a file (a /dev/shm name, which also answers F_GET_SEALS,
        // a hugetlbfs or disk file) cannot be. Where /proc cannot tell, a sealable file is
        // taken for a memfd.
        let memfd = sys::is_memfd(fd.as_fd()).unwrap_or(seals.is_some());
        match seals {
            Some(seals) if memfd && seals & sys::RESIZE_SEALS != sys::RESIZE_SEALS => {
                return Err(OpenErrorKind::NotSealed { seals: seals as u32 });
            }
            _ => {}
        }
        let kept =
            sys::dup(fd.as_raw_fd()).map_err(|e| error(Step::Call("fcntl(F_DUPFD_CLOEXEC)"), e))?;
        let mut segment = Self::attach(backing, fd, Some(spec), Access::ReadWrite)?;
        segment.fd = Some(kept);
        Ok(segment)
    }

    /// Whether this handle only inspects the segment (see [`inspect`](Self::inspect)).
    pub fn is_read_only(&self) -> bool {
        self.read_only
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
            fd: None,
        }
    }

    /// Validates an existing object and maps it.
    fn attach(
        backing: &Backing,
        fd: OwnedFd,
        spec: Option<&SegmentSpec>,
        access: Access,
    ) -> Result<Segment, OpenErrorKind> {
        let stat = sys::fstat(fd.as_fd()).map_err(|e| error(Step::Call("fstat"), e))?;
        if !stat.is_regular {
            return Err(OpenErrorKind::NotRegularFile);
        }
        let huge_page =
            sys::hugetlbfs_page_size(fd.as_fd()).map_err(|e| error(Step::Call("fstatfs"), e))?;
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
        // On hugetlbfs the file is the segment rounded up to a whole huge page.
        let size = if stat.size == create::file_size(identity.total_size, huge_page) {
            identity.total_size
        } else {
            stat.size
        };
        let geometry = header::validate(&identity, size, spec)?;
        let mut segment = Segment::new(memory, geometry, backing, false, spec);
        segment.note_hugetlbfs(huge_page);
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
        id.side_bytes_per_slot = spec.side_bytes_per_slot;
        id.fixed_body_size = spec.fixed_body_size;
        id.hasher_id = spec.hasher_id;
        id.flags = g.flags;
        id.params = spec.params;
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

    /// The body: `capacity × slot_size` bytes of slots, then their side table and the fixed
    /// part, as 64-bit words.
    ///
    /// # Panics
    /// If the segment was opened read-only ([`inspect`](Self::inspect), a
    /// [`ShmTableReader`](crate::ShmTableReader)): its memory is mapped `PROT_READ`, and a store
    /// through these atomics would fault. Read such a body with [`load_word`](Self::load_word).
    pub fn body(&self) -> &[AtomicU64] {
        assert!(
            !self.read_only,
            "Segment::body on a read-only segment (mapped PROT_READ): use Segment::load_word"
        );
        self.words()
    }

    /// The addresses of this handle's mapping of the segment: for a `SIGBUS` handler that tells
    /// a read past the end of a segment truncated under it from another fault.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = shmap::ShmHashTable::<u64, u64>::heap(16)?;
    /// let range = t.segment().address_range();
    /// assert!(range.len() as u64 >= t.info().total_size);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn address_range(&self) -> std::ops::Range<usize> {
        let start = self.memory.base().as_ptr() as usize;
        start..start + self.memory.len()
    }

    /// Word `index` of the body (see [`body`](Self::body)), loaded with `Acquire` ordering; on
    /// any segment, read-only ones included.
    ///
    /// # Panics
    /// If `index` is past the body.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, Segment, ShmHashTable};
    ///
    /// # let name = format!("/shmap-doc-load-word-{}", std::process::id());
    /// let table = ShmHashTable::<u64, u64>::open_or_create(&name, 16)?;
    /// let seen = Segment::inspect(&Backing::shm(&name))?;
    /// assert_eq!(seen.load_word(0), 0, "slot 0's control word: EMPTY");
    /// # table.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_word(&self, index: usize) -> u64 {
        // Acquire: pairs with the Release stores of the structure's protocol, like its loads.
        self.words()[index].load(Ordering::Acquire)
    }

    /// The body's words, on any segment: only ever loaded from when it is read-only (every
    /// store to a read-only segment is gated by [`is_read_only`](Self::is_read_only)).
    pub(crate) fn words(&self) -> &[AtomicU64] {
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

    /// The number of slots.
    pub fn capacity(&self) -> u64 {
        self.geometry.capacity
    }

    /// The structural flags.
    pub fn flags(&self) -> u64 {
        self.geometry.flags
    }

    /// The structure's parameters, as its creator recorded them (see [`SegmentSpec::params`]).
    pub fn params(&self) -> [u64; 4] {
        self.header().identity.params
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
            params: id.params,
            creator_pid: id.creator_pid,
            creator_uid: id.creator_uid,
            created_at: SystemTime::UNIX_EPOCH + Duration::from_nanos(id.created_unix_ns),
            segment_id: id.segment_id,
            created_by_this_handle: self.created,
        }
    }

    /// Writes a file-backed segment's dirty pages to its file (`msync(MS_SYNC)`); a no-op for
    /// other backings.
    pub fn flush(&self) -> Result<(), OpenError> {
        if let (Backing::File(_), Memory::Mapped { addr, len }) = (&self.backing, &self.memory) {
            // SAFETY: the range is exactly this segment's live mapping.
            unsafe { sys::msync(*addr, *len) }
                .map_err(|e| OpenError::new(&self.backing, error(Step::Call("msync"), e)))?;
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

/// Removes a named segment when dropped, also when the test that made it fails.
#[cfg(all(test, not(shmap_loom)))]
pub(crate) struct UnlinkOnDrop(pub(crate) Backing);

#[cfg(all(test, not(shmap_loom)))]
impl Drop for UnlinkOnDrop {
    fn drop(&mut self) {
        let _ = Segment::unlink(&self.0);
    }
}

/// The path of `backing` if it is exactly `/proc/<pid>/fd/<n>` (or `/proc/self/fd/<n>`): how
/// a monitor reaches a memfd segment of another process.
fn proc_fd_path(backing: &Backing) -> Option<std::ffi::CString> {
    let Backing::File(path) = backing else { return None };
    let text = path.to_str()?;
    let rest = text.strip_prefix("/proc/")?;
    let (pid, rest) = rest.split_once('/')?;
    let n = rest.strip_prefix("fd/")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if (pid == "self" || digits(pid)) && digits(n) {
        std::ffi::CString::new(text).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only `/proc/<pid>/fd/<n>` and `/proc/self/fd/<n>` have their link followed.
    #[test]
    fn only_proc_fd_paths_are_followed() {
        let followed = |p: &str| proc_fd_path(&Backing::file(p)).is_some();
        assert!(followed("/proc/123/fd/4") && followed("/proc/self/fd/10"));
        for p in ["/proc/123/fd/", "/proc/x/fd/4", "/proc/1/fd/4/x", "/proc/1/fdinfo/4", "/tmp/4"] {
            assert!(!followed(p), "{p}");
        }
        assert!(proc_fd_path(&Backing::shm("/proc")).is_none());
    }
    use crate::layout::TypeLayout;

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
