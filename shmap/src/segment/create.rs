//! Creating a segment: the create-or-open loop over a name, building a segment in an unnamed
//! file and publishing it with `linkat` (steps 1 to 3 of the protocol in the [module
//! documentation](super)), and private segments (anonymous or heap).

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Instant;

use crate::error::OpenErrorKind;
use crate::segment::errno::{Step, error};
use crate::segment::header::{self, Geometry, HEADER_SIZE};
use crate::segment::memory::{Access, Memory};
use crate::segment::{Backing, CreateMode, Segment, SegmentOptions, SegmentSpec, backing, trust};
use crate::sys::{self, Errno};

/// The size of the file that holds a segment of `total_size` bytes: the same, or on hugetlbfs
/// (pages of `huge_page` bytes) rounded up to a whole page.
pub(crate) fn file_size(total_size: u64, huge_page: Option<u64>) -> u64 {
    match huge_page {
        Some(page) if page > 0 => total_size.div_ceil(page) * page,
        _ => total_size,
    }
}

/// A memory file of `size` bytes, reserved and sealed against shrinking and growing (and
/// against further seals, so that no holder can forbid the others' writes either).
fn new_memfd(name: &str, size: u64) -> Result<OwnedFd, OpenErrorKind> {
    let name_c = CString::new(name).map_err(|_| OpenErrorKind::InvalidName {
        name: name.to_owned(),
        reason: "contains a NUL byte",
    })?;
    let fd = sys::memfd_create(&name_c).map_err(|e| error(Step::Call("memfd_create"), e))?;
    sys::ftruncate(fd.as_fd(), size).map_err(|e| error(Step::Size { size }, e))?;
    sys::fallocate(fd.as_fd(), size).map_err(|e| error(Step::Reserve { size }, e))?;
    sys::add_seals(fd.as_fd(), sys::RESIZE_SEALS | libc::F_SEAL_SEAL)
        .map_err(|e| error(Step::Call("fcntl(F_ADD_SEALS)"), e))?;
    Ok(fd)
}

/// What happened to an attempt to create and publish a segment.
pub(crate) enum Published {
    Created(Segment),
    /// Another process published a segment under the name first.
    NameTaken,
}

impl Segment {
    /// A segment that no other process can open by name: anonymous (shared with `fork`
    /// children) or on the heap (this process only).
    pub(crate) fn create_private(
        backing: &Backing,
        spec: &SegmentSpec,
    ) -> Result<Segment, OpenErrorKind> {
        let geometry = new_geometry(spec)?;
        // Exhaustive: a new backing must say here what its memory is.
        let mut fd = None;
        let memory = match backing {
            Backing::Heap => Memory::heap(geometry.total_size)?,
            Backing::Anonymous => Memory::map(None, geometry.total_size, Access::ReadWrite)?,
            Backing::Memfd(name) => {
                let memfd = new_memfd(name, geometry.total_size)?;
                let memory =
                    Memory::map(Some(memfd.as_fd()), geometry.total_size, Access::ReadWrite)?;
                fd = Some(memfd);
                memory
            }
            Backing::Shm(_) | Backing::File(_) | Backing::Fd(_) => {
                unreachable!("named segments are created by `open_named`, and descriptors opened")
            }
        };
        let mut segment = Segment::new(memory, geometry, backing, true, Some(spec));
        segment.write_header(spec);
        segment.fd = fd;
        Ok(segment)
    }

    pub(crate) fn open_named(
        backing: &Backing,
        location: &backing::Location,
        spec: &SegmentSpec,
        options: &SegmentOptions,
    ) -> Result<Segment, OpenErrorKind> {
        let name = backing.to_string();
        let dir =
            sys::open_dir(&location.dir).map_err(|e| error(Step::Locate { name: &name }, e))?;
        let started = Instant::now();
        loop {
            if options.create != CreateMode::CreateNew {
                // O_NONBLOCK: as in `inspect`, never wait in `open` for a FIFO's or a device's
                // other end; `attach` refuses them.
                let flags = libc::O_RDWR | libc::O_NOFOLLOW | libc::O_NONBLOCK;
                match sys::openat(dir.as_fd(), &location.name, flags, 0) {
                    Ok(fd) => {
                        let stat =
                            sys::fstat(fd.as_fd()).map_err(|e| error(Step::Call("fstat"), e))?;
                        trust::check(&stat, options)?;
                        return Self::attach(backing, fd, Some(spec), Access::ReadWrite);
                    }
                    Err(Errno(libc::ENOENT)) if options.create == CreateMode::OpenOrCreate => {}
                    Err(e) => return Err(error(Step::Open, e)),
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
            // On hugetlbfs a file's size must be a whole number of its huge pages.
            let huge_page = sys::hugetlbfs_page_size(fd.as_fd())
                .map_err(|e| error(Step::Call("fstatfs"), e))?;
            let size = file_size(geometry.total_size, huge_page);
            sys::fchmod(fd.as_fd(), mode).map_err(|e| error(Step::Call("fchmod"), e))?;
            sys::ftruncate(fd.as_fd(), size).map_err(|e| error(Step::Size { size }, e))?;
            sys::fallocate(fd.as_fd(), size).map_err(|e| error(Step::Reserve { size }, e))?;
            let memory = Memory::map(Some(fd.as_fd()), size, Access::ReadWrite)?;
            let mut segment = Segment::new(memory, geometry, backing, true, Some(spec));
            segment.note_hugetlbfs(huge_page);
            segment.write_header(spec);
            if location.durable {
                sys::fsync(fd.as_fd()).map_err(|e| error(Step::Call("fsync"), e))?;
            }
            let linked = match &temp_name {
                None => sys::link_fd(fd.as_fd(), dir, &location.name),
                Some(temp) => sys::linkat(dir, temp, &location.name),
            };
            match linked {
                Ok(()) => Ok(Published::Created(segment.mapped_by_name(dir, location, &fd))),
                Err(Errno(libc::EEXIST)) => Ok(Published::NameTaken),
                Err(e) => Err(error(Step::Call("linkat"), e)),
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
                Memory::map(Some(named.as_fd()), self.memory.len() as u64, Access::ReadWrite)
            {
                // The old mapping is unmapped as it drops; nothing refers into it yet.
                self.memory = memory;
            }
        }
        self
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
            Err(e) => return Err(error(Step::Create, e)),
        }
    }
    let temp = temp_name();
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
    let fd = sys::openat(dir, &temp, flags, mode).map_err(|e| error(Step::Create, e))?;
    Ok((fd, Some(temp)))
}

fn temp_name() -> CString {
    let name = format!(".shmap-tmp.{}.{:016x}", std::process::id(), sys::random_u64());
    CString::new(name).expect("a formatted name has no NUL byte")
}

/// The prefix of the temporary files that creation uses where `O_TMPFILE` is unavailable (a
/// creator killed mid-way may leave one behind; cleanup tools can remove them).
pub const TEMP_PREFIX: &CStr = c".shmap-tmp.";
