//! Whose segment this is: on opening an existing segment to write to it, the check of its
//! file's owner and mode that refuses one planted by another user.
//!
//! `/dev/shm` (like `/tmp`) is writable by every local user, and a segment's memory is trusted
//! by every process that maps it: its locks name holders, its header sizes the mapping, its
//! slots hold values. A user who creates a valid-looking segment under the name a service will
//! open, and keeps write access to it, can forge locks (stalling the service or making it
//! "recover" live holders), change values under it, or truncate the file (every process that
//! maps it dies of `SIGBUS`). So an existing segment is opened read-write only if:
//!
//! - its owner is this process's effective user or root, or, where
//!   [`SegmentOptions::shared_group`] names its group, another member of that group, as long as
//!   others may not write to it;
//! - group and others may not write to it beyond what [`SegmentOptions::mode`] grants.
//!
//! The same rules as OpenSSH's for its key files (`StrictModes`). Read-only opens (the
//! monitor, the `shmap` command) skip the check: they never write, and validate what they read.

use crate::error::OpenErrorKind;
use crate::segment::SegmentOptions;
use crate::sys::{self, FileStat};

/// Checks an existing segment's file (see the module documentation).
pub(crate) fn check(stat: &FileStat, options: &SegmentOptions) -> Result<(), OpenErrorKind> {
    let me = sys::geteuid();
    let group_member = options.shared_group == Some(stat.gid) && stat.mode & 0o002 == 0;
    if stat.uid != me && stat.uid != 0 && !group_member {
        return Err(OpenErrorKind::UntrustedOwner {
            owner: stat.uid,
            group: stat.gid,
            mode: stat.mode,
            expected: me,
        });
    }
    let allowed = options.mode & 0o7777;
    if stat.mode & 0o022 & !allowed != 0 {
        return Err(OpenErrorKind::TooPermissive { mode: stat.mode, allowed });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(uid: u32, gid: u32, mode: u32) -> FileStat {
        FileStat { size: 0, is_regular: true, identity: (0, 0), uid, gid, mode }
    }

    fn options(mode: u32, shared_group: Option<u32>) -> SegmentOptions {
        SegmentOptions { mode, shared_group, ..SegmentOptions::default() }
    }

    #[test]
    fn the_owner_must_be_this_user_or_root_or_of_the_shared_group() {
        let me = sys::geteuid();
        let other = me.wrapping_add(1).max(1);
        assert!(check(&stat(me, 5, 0o600), &options(0o600, None)).is_ok());
        assert!(check(&stat(0, 5, 0o600), &options(0o600, None)).is_ok(), "root");
        let planted = check(&stat(other, 5, 0o600), &options(0o600, None)).unwrap_err();
        assert!(
            matches!(planted, OpenErrorKind::UntrustedOwner { owner, group: 5, mode: 0o600, expected }
                if owner == other && expected == me),
            "{planted:?}"
        );
        let message = planted.to_string();
        assert!(message.contains(&format!("uid {other}")) && message.contains("0600"), "{message}");
        assert!(check(&stat(other, 5, 0o660), &options(0o660, Some(5))).is_ok(), "shared group");
        assert!(
            matches!(
                check(&stat(other, 6, 0o660), &options(0o660, Some(5))),
                Err(OpenErrorKind::UntrustedOwner { .. })
            ),
            "another group"
        );
        assert!(
            matches!(
                check(&stat(other, 5, 0o662), &options(0o662, Some(5))),
                Err(OpenErrorKind::UntrustedOwner { .. })
            ),
            "others may write: not a group's segment"
        );
    }

    #[test]
    fn group_and_others_may_write_only_what_the_mode_grants() {
        let me = sys::geteuid();
        assert!(
            check(&stat(me, 5, 0o644), &options(0o600, None)).is_ok(),
            "reading is not writing"
        );
        for (mode, allowed) in [(0o666, 0o600), (0o620, 0o600), (0o662, 0o660)] {
            let e = check(&stat(me, 5, mode), &options(allowed, None)).unwrap_err();
            assert!(
                matches!(e, OpenErrorKind::TooPermissive { mode: m, allowed: a } if m == mode && a == allowed),
                "{e:?}"
            );
        }
        assert!(check(&stat(me, 5, 0o666), &options(0o666, None)).is_ok(), "asked for");
        let message = check(&stat(me, 5, 0o666), &options(0o600, None)).unwrap_err().to_string();
        assert!(message.contains("0666") && message.contains("0600"), "{message}");
    }
}
