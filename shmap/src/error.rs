//! Errors of creating and opening segments.
//!
//! Every way an open can fail is one [`OpenErrorKind`] variant that carries what was expected
//! and what was found, so a caller can match on it and a log line says what to fix. The
//! [`OpenError`] around it adds the segment's name. An open that fails never modifies the
//! segment it looked at.

use std::fmt;
use std::time::Duration;

use crate::layout::TypeLayout;
use crate::segment::StructureKind;
use crate::sys::Errno;

/// Creating or opening a segment failed.
///
/// # Examples
///
/// ```
/// use shmap::{OpenErrorKind, ShmHashTable};
///
/// let err = ShmHashTable::<u64, u64>::open("no-leading-slash").unwrap_err();
/// assert!(matches!(err.kind(), OpenErrorKind::InvalidName { .. }));
/// assert!(err.to_string().contains("no-leading-slash"));
/// ```
#[derive(Debug)]
pub struct OpenError {
    /// The segment, as the caller named it (`/name`, a file path, `anonymous mapping`, `heap`).
    pub segment: String,
    /// What went wrong.
    pub kind: OpenErrorKind,
    /// What was being done: opening (or creating) the segment, or removing its name.
    action: Action,
}

/// What a failed [`OpenError`] was doing, for its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Open,
    Remove,
}

impl OpenError {
    pub(crate) fn new(segment: impl fmt::Display, kind: OpenErrorKind) -> Self {
        OpenError { segment: segment.to_string(), kind, action: Action::Open }
    }

    /// A failure to remove a segment's name ([`Segment::unlink`](crate::Segment::unlink)).
    pub(crate) fn removing(segment: impl fmt::Display, kind: OpenErrorKind) -> Self {
        OpenError { segment: segment.to_string(), kind, action: Action::Remove }
    }

    /// What went wrong.
    pub fn kind(&self) -> &OpenErrorKind {
        &self.kind
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.action {
            Action::Open => "open",
            Action::Remove => "remove",
        };
        write!(f, "cannot {verb} shared-memory segment {}: {}", self.segment, self.kind)
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            OpenErrorKind::Os { source, .. }
            | OpenErrorKind::NoSpace { source, .. }
            | OpenErrorKind::FileTooLarge { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Which stored type a layout check is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The key type.
    Key,
    /// The value (or element) type.
    Value,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Key => "key",
            Role::Value => "value",
        })
    }
}

/// The ways creating or opening a segment can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenErrorKind {
    /// The name is not a valid POSIX shared-memory name or file path.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The options asked for something impossible (a zero or huge capacity, …).
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// No segment exists under this name (and creating one was not allowed).
    #[error("no such segment (open without create)")]
    NotFound,
    /// A segment exists under this name (and only creating a new one was allowed).
    #[error("a segment with this name already exists (create_new)")]
    AlreadyExists,
    /// The process may not open the object.
    #[error("permission denied")]
    PermissionDenied,
    /// The name is a symbolic link, which shmap does not follow (`O_NOFOLLOW`).
    #[error("the name is a symbolic link; shmap does not follow links (O_NOFOLLOW)")]
    SymlinkRefused,
    /// The object is not a regular file (a directory, FIFO, device, …).
    #[error("not a regular file")]
    NotRegularFile,
    /// The segment belongs to another user (not this process's effective user, nor root, nor,
    /// where [`SegmentOptions::shared_group`](crate::segment::SegmentOptions::shared_group)
    /// allows it, a member of that group): it may have been planted to hand this process
    /// memory that user controls.
    #[error(
        "the segment is owned by uid {owner} (group {group}, mode {mode:04o}), not by this \
         process's uid {expected} or root: another user may have created it under this name \
         (SegmentOptions::shared_group accepts the owners of a group)"
    )]
    UntrustedOwner {
        /// The segment's owner.
        owner: u32,
        /// Its group.
        group: u32,
        /// Its permission bits.
        mode: u32,
        /// This process's effective user.
        expected: u32,
    },
    /// A memfd segment received as a descriptor is not sealed against resizing: any holder of
    /// it could truncate it under the others (who would die of `SIGBUS`).
    #[error(
        "the memfd is not sealed against resizing (seals {seals:#x}, expected F_SEAL_SHRINK and \
         F_SEAL_GROW): any holder could truncate it"
    )]
    NotSealed {
        /// The seals it has (`F_GET_SEALS`).
        seals: u32,
    },
    /// The segment's permissions let group or others write to it beyond the mode the options
    /// ask for: any of them could forge its locks or truncate it.
    #[error(
        "the segment's mode {mode:04o} lets group or others write to it beyond the mode asked \
         for ({allowed:04o}): anyone with those rights can forge its locks or truncate it"
    )]
    TooPermissive {
        /// The segment's permission bits.
        mode: u32,
        /// The mode the options ask for.
        allowed: u32,
    },
    /// The object does not start with shmap's magic number: it is something else.
    #[error("not a shmap segment: expected magic {expected:#018x}, found {found:#018x}")]
    NotShmap {
        /// shmap's magic.
        expected: u64,
        /// The first 8 bytes of the object.
        found: u64,
    },
    /// The segment was written by an incompatible version of shmap.
    #[error("segment format version {found}, this build of shmap reads version {expected}")]
    VersionMismatch {
        /// The version this build reads.
        expected: u32,
        /// The segment's version.
        found: u32,
    },
    /// The header's checksum does not match its contents: it was overwritten or corrupted.
    #[error("corrupt header: checksum {found:#018x} stored, {expected:#018x} computed")]
    CorruptHeader {
        /// The checksum computed over the header.
        expected: u64,
        /// The checksum stored in the header.
        found: u64,
    },
    /// A header field holds a value that cannot be right (checked before it is used).
    #[error("invalid header: {field} is {found}, expected {expected}")]
    InvalidHeader {
        /// The field.
        field: &'static str,
        /// What a valid header would hold.
        expected: String,
        /// What it holds.
        found: u64,
    },
    /// The object is smaller than its header says: it was truncated.
    #[error("truncated: {found} bytes, the header requires {expected}")]
    Truncated {
        /// The size the header requires.
        expected: u64,
        /// The object's size.
        found: u64,
    },
    /// The segment holds another kind of structure.
    #[error("structure kind mismatch: expected a {expected}, found a {found}")]
    KindMismatch {
        /// The kind the caller opens.
        expected: StructureKind,
        /// The kind in the segment.
        found: StructureKind,
    },
    /// The stored type's layout differs from the caller's: another build, another struct.
    #[error("{role} layout mismatch: expected {expected}, found {found}")]
    LayoutMismatch {
        /// Key or value.
        role: Role,
        /// The caller's type (boxed: a layout carries its description).
        expected: Box<TypeLayout>,
        /// The segment's type.
        found: Box<TypeLayout>,
    },
    /// The segment has another capacity than the caller asked for.
    #[error("capacity mismatch: expected {expected} slots, found {found}")]
    CapacityMismatch {
        /// The caller's capacity (after rounding up to a power of two).
        expected: u64,
        /// The segment's.
        found: u64,
    },
    /// The segment's keys were hashed by another function.
    #[error("hasher mismatch: expected hasher id {expected:#018x}, found {found:#018x}")]
    HasherMismatch {
        /// The caller's hasher id.
        expected: u64,
        /// The segment's.
        found: u64,
    },
    /// The segment was created with other structural options (e.g. undo records).
    #[error("option mismatch: expected flags {expected:#x}, found {found:#x}")]
    FlagsMismatch {
        /// The caller's flags.
        expected: u64,
        /// The segment's.
        found: u64,
    },
    /// The cache was created with other settings (default TTL, entry limit, policy) than
    /// the opener asked for.
    #[error("cache settings mismatch: expected {expected}; found {found}")]
    CacheMismatch {
        /// The opener's settings.
        expected: Box<crate::CacheSettings>,
        /// The segment's.
        found: Box<crate::CacheSettings>,
    },
    /// The segment's creator did not finish initialising it.
    #[error("not initialised (state {state:#x}, creator pid {creator_pid})")]
    NotInitialised {
        /// The initialisation state found.
        state: u32,
        /// Who created it.
        creator_pid: u32,
    },
    /// The filesystem has no room for the segment (`ENOSPC` or `EDQUOT` while creating, sizing
    /// or reserving it: a full tmpfs or disk, or a quota).
    #[error("cannot reserve {needed} bytes: {source} (the filesystem is full or over quota)")]
    NoSpace {
        /// The bytes that were to be reserved (the segment's total size).
        needed: u64,
        /// The error of the system call.
        source: Errno,
    },
    /// The segment would be larger than a file may be here (`EFBIG`: the filesystem's limit or
    /// the process's `RLIMIT_FSIZE`).
    #[error("a segment of {size} bytes is larger than a file may be here: {source}")]
    FileTooLarge {
        /// The segment's total size.
        size: u64,
        /// The error of `ftruncate` or `posix_fallocate`.
        source: Errno,
    },
    /// There is no memory for the segment (a heap allocation failed, or `ENOMEM` while
    /// reserving it).
    #[error("out of memory for a segment of {needed} bytes")]
    OutOfMemory {
        /// The segment's total size.
        needed: u64,
    },
    /// The process could not register in the segment's process table.
    #[error("cannot register this process in the segment: {0}")]
    Register(crate::process::RegisterError),
    /// The segment kept appearing and disappearing (created and destroyed by others) for
    /// longer than the open timeout.
    #[error("gave up after {waited:?}: the segment was repeatedly removed while opening")]
    Timeout {
        /// How long the open tried.
        waited: Duration,
    },
    /// A system call failed.
    #[error("{call} failed: {source}")]
    Os {
        /// The call (`open`, `mmap`, `ftruncate`, …).
        call: &'static str,
        /// Its error.
        source: Errno,
    },
}
