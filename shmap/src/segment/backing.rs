//! Where a segment's memory comes from: a POSIX shared-memory name, a file, an anonymous
//! mapping shared across `fork`, or the heap (one process; for tests and Miri).

use std::ffi::{CString, OsStr};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::error::OpenErrorKind;

/// The directory where Linux keeps POSIX shared-memory objects: glibc's and musl's
/// `shm_open("/name")` is `open("/dev/shm/name")`, so objects shmap creates there are the same
/// objects other programs reach through `shm_open(3)` and remove with `shm_unlink(3)`.
pub const SHM_DIR: &str = "/dev/shm";

/// The longest file name Linux accepts (`NAME_MAX`): the longest POSIX shared-memory name after
/// its `/`. (`shmap-derive` checks `path = ...` against a copy, pinned to this by its tests.)
pub const NAME_MAX: usize = 255;

/// Where a segment lives.
///
/// # Examples
///
/// ```
/// use shmap::Backing;
///
/// let by_name = Backing::shm("/players");
/// let on_disk = Backing::file("/var/lib/app/players.shm");
/// assert_eq!(by_name.to_string(), "/players");
/// assert_eq!(on_disk.to_string(), "/var/lib/app/players.shm");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Backing {
    /// A POSIX shared-memory object (`/name`, in [`SHM_DIR`]): lives until unlinked or reboot.
    Shm(String),
    /// A file (memory-mapped): survives reboots on a persistent filesystem. On a hugetlbfs
    /// mount (e.g. `/dev/hugepages`) the segment is made of huge pages from the reserved pool,
    /// the file rounded up to a whole page ([`HugePages::Hugetlbfs`](crate::segment::HugePages)
    /// reports it), and a pool too small is a `NoSpace` error at creation.
    File(PathBuf),
    /// An anonymous shared mapping: shared with `fork` children only, gone with the last of them.
    Anonymous,
    /// An anonymous memory file (`memfd_create(2)`, the name shown in `/proc/<pid>/fd` only),
    /// sealed against shrinking and growing once it is built, so that no process can truncate
    /// it under the others (a name in `/dev/shm` or a file can be truncated by anyone who may
    /// write to it, which kills every process that maps it with `SIGBUS`). Always created;
    /// other processes open it through its descriptor ([`Segment::fd`](crate::Segment::fd)),
    /// inherited across `fork` and `exec` or sent over a unix socket, as [`Backing::Fd`].
    Memfd(String),
    /// A segment's open file descriptor, received from the process that created it (a sealed
    /// memfd, or a file): opened, never created. The handle keeps a duplicate of it; the caller
    /// keeps its own. The owner and mode checks of named segments do not apply (the descriptor
    /// was handed over on purpose), but a memfd must be sealed against resizing.
    Fd(i32),
    /// Ordinary heap memory: one process only (threads). For tests, Miri and private tables.
    Heap,
}

impl Backing {
    /// A POSIX shared-memory name, such as `/players`.
    pub fn shm(name: impl Into<String>) -> Backing {
        Backing::Shm(name.into())
    }

    /// A file path.
    pub fn file(path: impl Into<PathBuf>) -> Backing {
        Backing::File(path.into())
    }

    /// A new sealed memory file named `name` (shown in `/proc/<pid>/fd`; need not be unique).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmHashTable};
    ///
    /// let t = ShmHashTable::<u64, u64>::options().capacity(64).open(&Backing::memfd("sessions"))?;
    /// t.insert(&1, &2)?;
    /// let fd = t.segment().fd().expect("a memfd segment keeps its descriptor");
    /// // Hand `fd` to another process, which opens it with `Backing::fd`.
    /// # let _ = fd;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn memfd(name: impl Into<String>) -> Backing {
        Backing::Memfd(name.into())
    }

    /// The segment behind open descriptor `fd` (see [`Backing::Fd`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use shmap::{Backing, ShmHashTable};
    ///
    /// let created = ShmHashTable::<u64, u64>::options().capacity(64).open(&Backing::memfd("t"))?;
    /// created.insert(&7, &49)?;
    /// let fd = created.segment().fd().unwrap().as_raw_fd(); // as another process would get it
    /// let opened = ShmHashTable::<u64, u64>::options().open(&Backing::fd(fd))?;
    /// assert_eq!(opened.get(&7)?, Some(49));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fd(fd: i32) -> Backing {
        Backing::Fd(fd)
    }

    /// Checks the name or path without touching the filesystem: the rules of [`Backing::Shm`]
    /// (a `/`, then 1 to [`NAME_MAX`] bytes without `/` or NUL, not `.` or `..`) and of
    /// [`Backing::File`] (a path ending in a file name of at most `NAME_MAX` bytes).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, OpenErrorKind};
    ///
    /// assert!(Backing::shm("/players").check().is_ok());
    /// let err = Backing::shm("players").check().unwrap_err();
    /// assert!(matches!(err, OpenErrorKind::InvalidName { .. }));
    /// ```
    pub fn check(&self) -> Result<(), OpenErrorKind> {
        self.location().map(drop)
    }

    /// The directory and file name this backing's object lives under, validated.
    pub(crate) fn location(&self) -> Result<Option<Location>, OpenErrorKind> {
        match self {
            Backing::Shm(name) => shm_location(name).map(Some),
            Backing::File(path) => file_location(path).map(Some),
            Backing::Anonymous | Backing::Heap | Backing::Memfd(_) | Backing::Fd(_) => Ok(None),
        }
    }
}

impl fmt::Display for Backing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backing::Shm(name) => f.write_str(name),
            Backing::File(path) => write!(f, "{}", path.display()),
            Backing::Anonymous => f.write_str("anonymous mapping"),
            Backing::Memfd(name) => write!(f, "memfd:{name}"),
            Backing::Fd(fd) => write!(f, "fd {fd}"),
            Backing::Heap => f.write_str("heap"),
        }
    }
}

/// A validated directory + file name.
#[derive(Debug)]
pub(crate) struct Location {
    pub(crate) dir: CString,
    pub(crate) name: CString,
    /// Whether writes should be made durable (fsync) before the name is published.
    pub(crate) durable: bool,
}

fn invalid(name: &str, reason: &'static str) -> OpenErrorKind {
    OpenErrorKind::InvalidName { name: name.to_owned(), reason }
}

fn shm_location(name: &str) -> Result<Location, OpenErrorKind> {
    let Some(rest) = name.strip_prefix('/') else {
        return Err(invalid(name, "a POSIX shared-memory name starts with '/'"));
    };
    if rest.is_empty() {
        return Err(invalid(name, "the name after '/' is empty"));
    }
    if rest.contains('/') {
        return Err(invalid(name, "a POSIX shared-memory name has no '/' after the first"));
    }
    if rest.len() > NAME_MAX {
        return Err(invalid(name, "longer than NAME_MAX (255 bytes after the '/')"));
    }
    if rest == "." || rest == ".." {
        return Err(invalid(name, "'.' and '..' are not object names"));
    }
    let name_c = CString::new(rest).map_err(|_| invalid(name, "contains a NUL byte"))?;
    let dir = CString::new(SHM_DIR).expect("SHM_DIR has no NUL byte");
    Ok(Location { dir, name: name_c, durable: false })
}

fn file_location(path: &Path) -> Result<Location, OpenErrorKind> {
    let shown = path.display().to_string();
    let Some(file_name) = path.file_name() else {
        return Err(invalid(&shown, "the path does not end in a file name"));
    };
    if file_name.len() > NAME_MAX {
        return Err(invalid(&shown, "the file name is longer than NAME_MAX (255 bytes)"));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.as_os_str(),
        _ => OsStr::new("."),
    };
    let dir = CString::new(dir.as_bytes()).map_err(|_| invalid(&shown, "contains a NUL byte"))?;
    let name =
        CString::new(file_name.as_bytes()).map_err(|_| invalid(&shown, "contains a NUL byte"))?;
    Ok(Location { dir, name, durable: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(b: Backing) -> &'static str {
        match b.location() {
            Err(OpenErrorKind::InvalidName { reason, .. }) => reason,
            other => panic!("expected InvalidName, got {other:?}"),
        }
    }

    #[test]
    fn shm_names_are_validated() {
        assert!(reason(Backing::shm("players")).contains("starts with '/'"));
        assert!(reason(Backing::shm("/")).contains("empty"));
        assert!(reason(Backing::shm("/a/b")).contains("no '/'"));
        assert!(reason(Backing::shm(format!("/{}", "x".repeat(256)))).contains("NAME_MAX"));
        assert!(reason(Backing::shm("/..")).contains("'..'"));
        assert!(reason(Backing::shm("/a\0b")).contains("NUL"));
        let loc = Backing::shm(format!("/{}", "x".repeat(255))).location().unwrap().unwrap();
        assert_eq!(loc.dir.to_str().unwrap(), SHM_DIR);
        assert!(!loc.durable);
    }

    #[test]
    fn file_paths_are_split() {
        let loc = Backing::file("/var/lib/app/t.shm").location().unwrap().unwrap();
        assert_eq!(
            (loc.dir.to_str().unwrap(), loc.name.to_str().unwrap()),
            ("/var/lib/app", "t.shm")
        );
        assert!(loc.durable);
        let loc = Backing::file("t.shm").location().unwrap().unwrap();
        assert_eq!(loc.dir.to_str().unwrap(), ".");
        assert!(reason(Backing::file("/")).contains("file name"));
        assert!(Backing::Heap.location().unwrap().is_none());
    }
}
