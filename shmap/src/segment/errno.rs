//! From `errno` to [`OpenErrorKind`]: the one table for every system call a segment makes, by
//! the step it was taking (the same `ENOENT` means "no such segment" when opening a name, and
//! "invalid name" when the directory to create it in is missing).

use crate::error::OpenErrorKind;
use crate::sys::Errno;

/// What a segment was doing when a system call failed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step<'a> {
    /// Opening the directory in which a segment named `name` is to be created or opened.
    Locate { name: &'a str },
    /// Opening an existing object by name.
    Open,
    /// Creating the unnamed file of a new segment.
    Create,
    /// Sizing a new segment to `size` bytes (`ftruncate`).
    Size { size: u64 },
    /// Reserving the `size` bytes of a new segment (`posix_fallocate`).
    Reserve { size: u64 },
    /// Removing a name.
    Unlink,
    /// Any other system call, by name.
    Call(&'static str),
}

impl Step<'_> {
    /// The system call behind the step, for [`OpenErrorKind::Os`].
    fn call(self) -> &'static str {
        match self {
            Step::Locate { .. } | Step::Open | Step::Create => "open",
            Step::Size { .. } => "ftruncate",
            Step::Reserve { .. } => "posix_fallocate",
            Step::Unlink => "unlink",
            Step::Call(call) => call,
        }
    }
}

/// The error kind of `e` at `step`.
pub(crate) fn error(step: Step<'_>, e: Errno) -> OpenErrorKind {
    use OpenErrorKind as K;
    match (step, e.0) {
        (Step::Locate { name }, libc::ENOENT | libc::ENOTDIR) => {
            K::InvalidName { name: name.to_owned(), reason: "its directory does not exist" }
        }
        (Step::Open | Step::Unlink, libc::ENOENT) => K::NotFound,
        (
            Step::Locate { .. } | Step::Open | Step::Create | Step::Unlink,
            libc::EACCES | libc::EPERM | libc::EROFS,
        ) => K::PermissionDenied,
        (Step::Open, libc::ELOOP) => K::SymlinkRefused,
        (Step::Open, libc::EISDIR | libc::ENXIO | libc::ENODEV) => K::NotRegularFile,
        (Step::Create, libc::ENOSPC | libc::EDQUOT) => {
            K::NoSpace { needed: crate::segment::header::HEADER_SIZE, source: e }
        }
        (Step::Size { size } | Step::Reserve { size }, libc::ENOSPC | libc::EDQUOT) => {
            K::NoSpace { needed: size, source: e }
        }
        (Step::Size { size } | Step::Reserve { size }, libc::EFBIG) => {
            K::FileTooLarge { size, source: e }
        }
        (Step::Reserve { size }, libc::ENOMEM) => K::OutOfMemory { needed: size },
        _ => K::Os { call: step.call(), source: e },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_errno_means_what_the_step_makes_of_it() {
        let enoent = Errno(libc::ENOENT);
        assert!(matches!(error(Step::Open, enoent), OpenErrorKind::NotFound));
        assert!(matches!(
            error(Step::Locate { name: "/x/y" }, enoent),
            OpenErrorKind::InvalidName { reason: "its directory does not exist", .. }
        ));
        assert!(matches!(
            error(Step::Size { size: 9 }, Errno(libc::EFBIG)),
            OpenErrorKind::FileTooLarge { size: 9, .. }
        ));
        assert!(matches!(
            error(Step::Reserve { size: 9 }, Errno(libc::ENOSPC)),
            OpenErrorKind::NoSpace { needed: 9, .. }
        ));
        assert!(matches!(
            error(Step::Call("mmap"), Errno(libc::ENOMEM)),
            OpenErrorKind::Os { call: "mmap", .. }
        ));
        assert!(matches!(error(Step::Unlink, Errno(libc::EROFS)), OpenErrorKind::PermissionDenied));
    }
}
