//! Thin, typed wrappers over the Linux system calls that shmap makes.
//!
//! One function per call, in the manner of rustix's `backend/libc` layer: each documents the C
//! signature it wraps, converts the C return convention into `Result<_, Errno>`, and owns file
//! descriptors through [`OwnedFd`] so that no path can leak one. Nothing here decides policy;
//! `segment` maps each `Errno` to the typed error of the operation that failed.
//!
//! # References
//! - [`open(2)`](https://man7.org/linux/man-pages/man2/open.2.html) (`O_TMPFILE`, `O_NOFOLLOW`)
//! - [`linkat(2)`](https://man7.org/linux/man-pages/man2/linkat.2.html)
//! - [`posix_fallocate(3)`](https://man7.org/linux/man-pages/man3/posix_fallocate.3.html)
//! - [`mmap(2)`](https://man7.org/linux/man-pages/man2/mmap.2.html)
//! - [`shm_overview(7)`](https://man7.org/linux/man-pages/man7/shm_overview.7.html)
//! - [`futex(2)`](https://man7.org/linux/man-pages/man2/futex.2.html)
//! - [`membarrier(2)`](https://man7.org/linux/man-pages/man2/membarrier.2.html)

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

/// An error number returned by a system call (`errno`).
///
/// A newtype rather than an enum because the kernel may return values this crate does not know.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// The calling thread's current `errno`.
    pub(crate) fn last() -> Errno {
        Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }

    /// The symbolic name of the common values (`ENOENT`), or `errno N` for the others.
    pub fn name(self) -> &'static str {
        match self.0 {
            libc::EPERM => "EPERM",
            libc::ENOENT => "ENOENT",
            libc::ESRCH => "ESRCH",
            libc::EINTR => "EINTR",
            libc::EIO => "EIO",
            libc::EBADF => "EBADF",
            libc::EAGAIN => "EAGAIN",
            libc::ENOMEM => "ENOMEM",
            libc::EACCES => "EACCES",
            libc::EEXIST => "EEXIST",
            libc::ENOTDIR => "ENOTDIR",
            libc::EISDIR => "EISDIR",
            libc::EINVAL => "EINVAL",
            libc::EMFILE => "EMFILE",
            libc::EFBIG => "EFBIG",
            libc::ENOSPC => "ENOSPC",
            libc::EROFS => "EROFS",
            libc::ENAMETOOLONG => "ENAMETOOLONG",
            libc::ELOOP => "ELOOP",
            libc::EOPNOTSUPP => "EOPNOTSUPP",
            libc::EDQUOT => "EDQUOT",
            _ => "errno",
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = std::io::Error::from_raw_os_error(self.0);
        write!(f, "{} ({})", text, self.name())
    }
}

impl std::error::Error for Errno {}

/// Converts the `-1 and errno` convention into a `Result`.
fn cvt(ret: libc::c_int) -> Result<libc::c_int, Errno> {
    if ret == -1 { Err(Errno::last()) } else { Ok(ret) }
}

/// Retries a call interrupted by a signal (`EINTR`).
fn retry<T>(mut call: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match call() {
            Err(Errno(libc::EINTR)) => continue,
            other => return other,
        }
    }
}

/// Wraps a freshly returned descriptor.
fn owned(fd: libc::c_int) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open-like call and is owned by no one else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// `open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)`: a handle on a directory for the `*at` calls.
pub(crate) fn open_dir(path: &CStr) -> Result<OwnedFd, Errno> {
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    // SAFETY: `path` is a valid NUL-terminated string; the call has no other preconditions.
    let fd = retry(|| cvt(unsafe { libc::open(path.as_ptr(), flags) }))?;
    Ok(owned(fd))
}

/// `openat(dir, name, flags | O_CLOEXEC | O_NOCTTY, mode)`.
pub(crate) fn openat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> Result<OwnedFd, Errno> {
    // O_NOCTTY: a terminal opened by mistake must not become the controlling one.
    let flags = flags | libc::O_CLOEXEC | libc::O_NOCTTY;
    let raw = dir.as_raw_fd();
    // SAFETY: `raw` is a live descriptor borrowed for this call, `name` is NUL-terminated, and
    // `mode` is passed as the variadic `mode_t` argument that `open(2)` reads with O_CREAT/O_TMPFILE.
    let fd =
        retry(|| cvt(unsafe { libc::openat(raw, name.as_ptr(), flags, mode as libc::c_uint) }))?;
    Ok(owned(fd))
}

/// `open(path, flags | O_CLOEXEC)`, following links: only for `/proc/<pid>/fd/<n>`, whose
/// entries are links by nature (see `Segment::open_read_only`).
pub(crate) fn open_following(path: &CStr, flags: libc::c_int) -> Result<OwnedFd, Errno> {
    let flags = flags | libc::O_NOCTTY;
    // SAFETY: `path` is NUL-terminated; no O_CREAT, so no mode argument is read.
    let fd = retry(|| cvt(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) }))?;
    Ok(owned(fd))
}

/// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)`: an anonymous memory file that can be
/// sealed.
pub(crate) fn memfd_create(name: &CStr) -> Result<OwnedFd, Errno> {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: `name` is NUL-terminated; the call has no other memory-safety preconditions.
    let fd = retry(|| cvt(unsafe { libc::memfd_create(name.as_ptr(), flags) }))?;
    Ok(owned(fd))
}

/// The seals against resizing a segment's memfd: `F_SEAL_SHRINK | F_SEAL_GROW`.
pub(crate) const RESIZE_SEALS: libc::c_int = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;

/// `fcntl(fd, F_ADD_SEALS, seals)`.
pub(crate) fn add_seals(fd: BorrowedFd<'_>, seals: libc::c_int) -> Result<(), Errno> {
    let raw = fd.as_raw_fd();
    // SAFETY: `raw` is a live descriptor; the call has no memory-safety preconditions.
    retry(|| cvt(unsafe { libc::fcntl(raw, libc::F_ADD_SEALS, seals) }))?;
    Ok(())
}

/// `fcntl(fd, F_GET_SEALS)`: the file's seals, or `None` if it cannot be sealed (not a memfd).
pub(crate) fn seals(fd: BorrowedFd<'_>) -> Result<Option<libc::c_int>, Errno> {
    let raw = fd.as_raw_fd();
    // SAFETY: `raw` is a live descriptor; the call has no memory-safety preconditions.
    match retry(|| cvt(unsafe { libc::fcntl(raw, libc::F_GET_SEALS) })) {
        Ok(seals) => Ok(Some(seals)),
        Err(Errno(libc::EINVAL)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether `fd` is a memfd, from its `/proc/self/fd` link (`/memfd:NAME (deleted)`); `None`
/// where the link cannot be read. (`F_GET_SEALS` cannot tell: every shmem file, a `/dev/shm`
/// name included, answers it.)
pub(crate) fn is_memfd(fd: BorrowedFd<'_>) -> Option<bool> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    Some(link.as_os_str().as_encoded_bytes().starts_with(b"/memfd:"))
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, 0)`: a duplicate of a descriptor the caller only borrows.
pub(crate) fn dup(fd: libc::c_int) -> Result<OwnedFd, Errno> {
    // SAFETY: `fcntl` on any integer is memory-safe (a closed one is EBADF).
    let new = retry(|| cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) }))?;
    Ok(owned(new))
}

/// `openat(dir, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, mode)`: an unnamed file in `dir` that
/// vanishes on close unless [`link_fd`] gives it a name.
pub(crate) fn open_tmpfile(dir: BorrowedFd<'_>, mode: libc::mode_t) -> Result<OwnedFd, Errno> {
    openat(dir, c".", libc::O_TMPFILE | libc::O_RDWR, mode)
}

/// `linkat(AT_FDCWD, "/proc/self/fd/<fd>", dir, name, AT_SYMLINK_FOLLOW)`: gives an
/// `O_TMPFILE` file a name, atomically, failing with `EEXIST` if the name exists. This is the
/// unprivileged form documented in `open(2)`; it needs `/proc`.
pub(crate) fn link_fd(fd: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    let proc_path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .expect("a formatted integer has no NUL byte");
    let (raw_dir, flags) = (dir.as_raw_fd(), libc::AT_SYMLINK_FOLLOW);
    retry(|| {
        let old = proc_path.as_ptr();
        // SAFETY: both paths are NUL-terminated strings and `raw_dir` is a live descriptor.
        cvt(unsafe { libc::linkat(libc::AT_FDCWD, old, raw_dir, name.as_ptr(), flags) })
    })?;
    Ok(())
}

/// `linkat(dir, old, dir, new, 0)`: a second name for `old`, failing with `EEXIST` if `new` exists.
pub(crate) fn linkat(dir: BorrowedFd<'_>, old: &CStr, new: &CStr) -> Result<(), Errno> {
    let raw = dir.as_raw_fd();
    // SAFETY: both names are NUL-terminated and `raw` is a live descriptor.
    retry(|| cvt(unsafe { libc::linkat(raw, old.as_ptr(), raw, new.as_ptr(), 0) }))?;
    Ok(())
}

/// `unlinkat(dir, name, 0)`.
pub(crate) fn unlinkat(dir: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    let raw = dir.as_raw_fd();
    // SAFETY: `name` is NUL-terminated and `raw` is a live descriptor.
    retry(|| cvt(unsafe { libc::unlinkat(raw, name.as_ptr(), 0) }))?;
    Ok(())
}

/// `fchmod(fd, mode)`: sets the exact mode, whatever the process umask removed at creation.
pub(crate) fn fchmod(fd: BorrowedFd<'_>, mode: libc::mode_t) -> Result<(), Errno> {
    let raw = fd.as_raw_fd();
    // SAFETY: `raw` is a live descriptor; the call has no memory-safety preconditions.
    retry(|| cvt(unsafe { libc::fchmod(raw, mode) }))?;
    Ok(())
}

/// What `fstat(2)` says about a segment's file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FileStat {
    /// `st_size` in bytes.
    pub(crate) size: u64,
    /// Whether `st_mode` says a regular file.
    pub(crate) is_regular: bool,
    /// `(st_dev, st_ino)`: which file this is.
    pub(crate) identity: (u64, u64),
    /// `st_uid`: the owner.
    pub(crate) uid: u32,
    /// `st_gid`: the group.
    pub(crate) gid: u32,
    /// The permission bits of `st_mode` (`0o7777`).
    pub(crate) mode: u32,
}

/// `geteuid()`: the user the process acts as.
pub(crate) fn geteuid() -> u32 {
    // SAFETY: no preconditions; it cannot fail.
    unsafe { libc::geteuid() }
}

/// `fstat(fd, &st)`.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> Result<FileStat, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    let raw = fd.as_raw_fd();
    // SAFETY: `st` is valid for writes of one `struct stat`, which the kernel fills on success.
    retry(|| cvt(unsafe { libc::fstat(raw, st.as_mut_ptr()) }))?;
    // SAFETY: `fstat` returned 0, so it initialised the whole struct.
    let st = unsafe { st.assume_init() };
    Ok(FileStat {
        size: u64::try_from(st.st_size).unwrap_or(0),
        is_regular: st.st_mode & libc::S_IFMT == libc::S_IFREG,
        identity: (st.st_dev, st.st_ino),
        uid: st.st_uid,
        gid: st.st_gid,
        mode: st.st_mode & 0o7777,
    })
}

/// `fstatfs(fd)`: the page size of the hugetlbfs mount the file lies on, or `None` if it lies
/// on another filesystem.
pub(crate) fn hugetlbfs_page_size(fd: BorrowedFd<'_>) -> Result<Option<u64>, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    let raw = fd.as_raw_fd();
    // SAFETY: `st` is valid for writes of one `struct statfs`, which the kernel fills on success.
    retry(|| cvt(unsafe { libc::fstatfs(raw, st.as_mut_ptr()) }))?;
    // SAFETY: `fstatfs` returned 0, so it initialised the whole struct.
    let st = unsafe { st.assume_init() };
    Ok((st.f_type == libc::HUGETLBFS_MAGIC).then(|| u64::try_from(st.f_bsize).unwrap_or(0)))
}

/// `ftruncate(fd, len)`.
pub(crate) fn ftruncate(fd: BorrowedFd<'_>, len: u64) -> Result<(), Errno> {
    let len = libc::off_t::try_from(len).map_err(|_| Errno(libc::EFBIG))?;
    let raw = fd.as_raw_fd();
    // SAFETY: `raw` is a live descriptor; the call has no memory-safety preconditions.
    retry(|| cvt(unsafe { libc::ftruncate(raw, len) }))?;
    Ok(())
}

/// `posix_fallocate(fd, 0, len)`: reserves the blocks (on tmpfs: the pages) of the whole file, so
/// that running out of space is an error now instead of a `SIGBUS` on a later write.
pub(crate) fn fallocate(fd: BorrowedFd<'_>, len: u64) -> Result<(), Errno> {
    let len = libc::off_t::try_from(len).map_err(|_| Errno(libc::EFBIG))?;
    let raw = fd.as_raw_fd();
    // `posix_fallocate` returns the error number instead of setting errno.
    // SAFETY: `raw` is a live descriptor; the call has no memory-safety preconditions.
    retry(|| match unsafe { libc::posix_fallocate(raw, 0, len) } {
        0 => Ok(()),
        err => Err(Errno(err)),
    })
}

/// `fsync(fd)`.
pub(crate) fn fsync(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let raw = fd.as_raw_fd();
    // SAFETY: `raw` is a live descriptor; the call has no memory-safety preconditions.
    retry(|| cvt(unsafe { libc::fsync(raw) }))?;
    Ok(())
}

/// `mmap(NULL, len, PROT_READ [| PROT_WRITE], MAP_SHARED [| MAP_ANONYMOUS], fd, 0)`.
///
/// With `fd == None` the mapping is anonymous and shared: it is inherited by `fork` children
/// and visible to nobody else.
pub(crate) fn mmap_shared(
    fd: Option<BorrowedFd<'_>>,
    len: usize,
    writable: bool,
) -> Result<NonNull<u8>, Errno> {
    let (raw, flags) = match fd {
        Some(fd) => (fd.as_raw_fd(), libc::MAP_SHARED),
        None => (-1, libc::MAP_SHARED | libc::MAP_ANONYMOUS),
    };
    let prot = if writable { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_READ };
    // SAFETY: a NULL hint lets the kernel choose an address that overlaps no existing mapping,
    // so the call cannot invalidate memory that Rust code holds references to.
    let addr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, raw, 0) };
    if addr == libc::MAP_FAILED {
        return Err(Errno::last());
    }
    NonNull::new(addr.cast::<u8>()).ok_or(Errno(libc::ENOMEM))
}

/// `munmap(addr, len)`.
///
/// # Safety
/// - `addr..addr + len` must be exactly a mapping returned by [`mmap_shared`];
/// - no reference into it may be used after this call.
pub(crate) unsafe fn munmap(addr: NonNull<u8>, len: usize) {
    // SAFETY: the caller guarantees that the range is one of our mappings and is no longer used.
    let ret = unsafe { libc::munmap(addr.as_ptr().cast(), len) };
    debug_assert_eq!(ret, 0, "munmap of a mapping we created failed: {:?}", Errno::last());
}

/// `msync(addr, len, MS_SYNC)`: writes a file-backed mapping's dirty pages to the file.
///
/// # Safety
/// `addr..addr + len` must lie inside a live mapping returned by [`mmap_shared`].
pub(crate) unsafe fn msync(addr: NonNull<u8>, len: usize) -> Result<(), Errno> {
    // SAFETY: the caller guarantees that the range is mapped; msync reads no Rust-visible memory.
    cvt(unsafe { libc::msync(addr.as_ptr().cast(), len, libc::MS_SYNC) })?;
    Ok(())
}

/// `madvise(addr, len, MADV_POPULATE_WRITE)` (Linux 5.14): faults every page of a shared
/// mapping in, writable, so that first touches do not fault later.
///
/// # Safety
/// `addr..addr + len` must lie inside a live, writable mapping returned by [`mmap_shared`].
pub(crate) unsafe fn populate(addr: NonNull<u8>, len: usize) -> Result<(), Errno> {
    const MADV_POPULATE_WRITE: libc::c_int = 23;
    // SAFETY: the caller guarantees the range is one of our writable mappings; the advice only
    // faults pages in and changes no contents.
    cvt(unsafe { libc::madvise(addr.as_ptr().cast(), len, MADV_POPULATE_WRITE) })?;
    Ok(())
}

/// `madvise(addr, len, MADV_HUGEPAGE)`: asks for transparent huge pages (honoured where the
/// kernel's settings allow it: always for anonymous memory in `madvise` mode; for shared memory
/// only if `shmem_enabled` allows it).
///
/// # Safety
/// `addr..addr + len` must lie inside a live mapping returned by [`mmap_shared`].
pub(crate) unsafe fn advise_huge_pages(addr: NonNull<u8>, len: usize) -> Result<(), Errno> {
    // SAFETY: the caller guarantees the range is one of our mappings; the advice changes no
    // contents.
    cvt(unsafe { libc::madvise(addr.as_ptr().cast(), len, libc::MADV_HUGEPAGE) })?;
    Ok(())
}

/// `getrandom(&buf, 8, 0)`, falling back to a time- and pid-derived value if the call fails.
pub(crate) fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    // SAFETY: `buf` is valid for writes of 8 bytes.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n == 8 {
        return u64::from_ne_bytes(buf);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

/// `kill(pid, 0)`: `Ok(())` if the process exists and we may signal it, `Err(ESRCH)` if no
/// such process exists, `Err(EPERM)` if it exists but belongs to another user.
pub(crate) fn probe_pid(pid: u32) -> Result<(), Errno> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| Errno(libc::ESRCH))?;
    if pid <= 0 {
        return Err(Errno(libc::ESRCH));
    }
    // SAFETY: signal 0 performs only the existence and permission checks; nothing is delivered.
    cvt(unsafe { libc::kill(pid, 0) })?;
    Ok(())
}

/// `getuid()`.
pub(crate) fn uid() -> u32 {
    // SAFETY: `getuid` cannot fail and has no preconditions.
    unsafe { libc::getuid() }
}

/// `futex(word, FUTEX_WAIT, expected, timeout)`: sleeps while the 32-bit word at `word` holds
/// `expected`, until a [`futex_wake`] on it, the timeout, or a signal. Returns at once if the
/// word holds another value. Not `FUTEX_PRIVATE_FLAG`: the word may be in memory shared with
/// other processes, which wake it by its physical page.
///
/// Spurious returns are allowed; callers re-check their condition.
///
/// # Safety
/// `word` must point to a 4-byte aligned, initialised 32-bit word that stays mapped for the
/// duration of the call; other threads and processes may access it atomically.
#[cfg_attr(shmap_loom, allow(dead_code))] // under loom a sleep is a yield
pub(crate) unsafe fn futex_wait(
    word: *const u32,
    expected: u32,
    timeout: Option<std::time::Duration>,
) -> Result<(), Errno> {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
    });
    let ts_ptr = ts.as_ref().map_or(std::ptr::null(), std::ptr::from_ref);
    // SAFETY: the caller guarantees `word` is a valid, aligned, mapped u32; `ts_ptr` is null or
    // points to a timespec that lives until the call returns; the kernel reads both atomically.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word,
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if ret == -1 { Err(Errno::last()) } else { Ok(()) }
}

/// `futex(word, FUTEX_WAKE, count)`: wakes up to `count` waiters sleeping on `word`; returns
/// how many it woke.
///
/// # Safety
/// As for [`futex_wait`].
#[cfg_attr(shmap_loom, allow(dead_code))]
pub(crate) unsafe fn futex_wake(word: *const u32, count: i32) -> Result<usize, Errno> {
    // SAFETY: the caller guarantees `word` is a valid, aligned, mapped u32; FUTEX_WAKE reads
    // nothing else.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word,
            libc::FUTEX_WAKE,
            count,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if ret == -1 { Err(Errno::last()) } else { Ok(ret as usize) }
}

/// `membarrier(2)` commands (`<linux/membarrier.h>`; not all are in the `libc` crate).
#[cfg_attr(any(shmap_loom, miri), allow(dead_code))] // neither runs the system call
pub(crate) mod membarrier_cmd {
    /// Runs a full memory barrier on every CPU that is running a thread of a process that
    /// registered with [`REGISTER_GLOBAL_EXPEDITED`], by inter-processor interrupt.
    pub(crate) const GLOBAL_EXPEDITED: i32 = 1 << 1;
    /// Declares that this process (its whole address space, kept across `fork`) relies on
    /// [`GLOBAL_EXPEDITED`] barriers issued by others.
    pub(crate) const REGISTER_GLOBAL_EXPEDITED: i32 = 1 << 2;
}

/// `membarrier(cmd, 0, 0)`: see [`membarrier_cmd`] for the commands shmap uses.
#[cfg_attr(any(shmap_loom, miri), allow(dead_code))]
pub(crate) fn membarrier(cmd: i32) -> Result<(), Errno> {
    // SAFETY: membarrier takes no pointers; an unknown or unsupported command is EINVAL (and a
    // seccomp filter may make it ENOSYS or EPERM), never undefined behaviour.
    let ret = unsafe { libc::syscall(libc::SYS_membarrier, cmd, 0u32, 0i32) };
    if ret == -1 { Err(Errno::last()) } else { Ok(()) }
}
