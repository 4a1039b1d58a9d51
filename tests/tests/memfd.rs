//! Memfd-backed tables with real processes: sealed against resizing, handed to a child across
//! `exec` and back from a child over a unix socket, and refused when a memfd arrives unsealed.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use shmap::{Backing, OpenErrorKind, ShmHashTable};
use shmap_tests::{TempDir, Worker, pass_fd, recv_fd, worker};

type Table = ShmHashTable<u64, u64>;

fn memfd_table() -> Table {
    Table::options().capacity(64).open(&Backing::memfd("shmap-test")).unwrap()
}

/// A memfd table cannot be truncated or grown by anyone holding it (which, for a file or a
/// `/dev/shm` name, would kill every process mapping it with SIGBUS), nor can its seals change.
#[test]
fn a_memfd_table_is_sealed_against_resizing() {
    let t = memfd_table();
    t.insert(&1, &10).unwrap();
    let fd = t.segment().fd().unwrap().as_raw_fd();
    // SAFETY: plain fcntl/ftruncate calls on a descriptor the table keeps open.
    let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    let wanted = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    assert_eq!(seals & wanted, wanted, "seals {seals:#x}");
    for size in [0, 1 << 30] {
        // SAFETY: as above.
        assert_eq!(unsafe { libc::ftruncate(fd, size) }, -1);
        assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EPERM));
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, libc::F_SEAL_WRITE) }, -1);
    assert_eq!(t.get(&1).unwrap(), Some(10));
}

/// A parent hands its memfd table to a child it runs, as descriptor 3: the child sees the
/// parent's entries and the parent the child's.
#[test]
fn a_memfd_table_passes_to_a_child_across_exec() {
    let t = memfd_table();
    t.insert(&1, &10).unwrap();
    let mut command = worker!("memfd-open", "3");
    pass_fd(&mut command, t.segment().fd().unwrap(), 3);
    let mut child = Worker::spawn(command);
    assert_eq!(child.line(), "got Some(10)");
    assert_eq!(child.line(), "ok");
    child.finish();
    assert_eq!(t.get(&2).unwrap(), Some(20));
}

/// A child creates a memfd table and sends it to its parent over a unix socket (`SCM_RIGHTS`):
/// both use one table.
#[test]
fn a_memfd_table_comes_back_over_a_unix_socket() {
    let (mine, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let mut command = worker!("memfd-send", "3");
    pass_fd(&mut command, theirs.as_fd(), 3);
    let mut child = Worker::spawn(command);
    drop(theirs);
    let fd = recv_fd(&mine);
    assert_eq!(child.line(), "sent");
    let t = Table::options().open(&Backing::fd(fd.as_raw_fd())).unwrap();
    assert_eq!(t.get(&5).unwrap(), Some(50));
    t.insert(&6, &60).unwrap();
    child.close_stdin();
    assert_eq!(child.line(), "seen Some(60)");
    child.finish();
}

/// A memfd that arrives unsealed (built by hand: the bytes of a valid table) is refused, since
/// any holder could truncate it; a descriptor of a plain file is opened like the file.
#[test]
fn an_unsealed_memfd_is_refused_and_a_file_descriptor_opens() {
    let dir = TempDir::new("memfd");
    let path = dir.path().join("t.shm");
    let file_table = Table::options().capacity(64).open(&Backing::file(&path)).unwrap();
    file_table.insert(&3, &30).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    // SAFETY: the name is NUL-terminated; we own the new descriptor.
    let raw = unsafe { libc::memfd_create(c"unsealed".as_ptr(), libc::MFD_ALLOW_SEALING) };
    assert!(raw >= 0);
    // SAFETY: `raw` is a new descriptor nothing else owns.
    let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
    std::io::Write::write_all(&mut std::fs::File::from(memfd.try_clone().unwrap()), &bytes)
        .unwrap();
    let err = Table::options().open(&Backing::fd(memfd.as_raw_fd())).unwrap_err();
    assert!(matches!(err.kind(), OpenErrorKind::NotSealed { seals: 0 }), "{err}");
    assert!(err.to_string().contains("not sealed"), "{err}");

    let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
    let by_fd = Table::options().open(&Backing::fd(file.as_raw_fd())).unwrap();
    assert_eq!(by_fd.get(&3).unwrap(), Some(30));

    // A /dev/shm name's file answers F_GET_SEALS like a memfd (F_SEAL_SEAL), but it is a file,
    // not a memfd: it opens (found by a review, where it was refused as unsealed).
    let name = shmap_tests::ShmName::new("by-fd");
    let named = Table::options().capacity(64).open(&name.backing()).unwrap();
    named.insert(&8, &80).unwrap();
    let file = std::fs::OpenOptions::new().read(true).write(true).open(name.path()).unwrap();
    let by_fd = Table::options().open(&Backing::fd(file.as_raw_fd())).unwrap();
    assert_eq!(by_fd.get(&8).unwrap(), Some(80));

    // A memfd made without MFD_ALLOW_SEALING can never be sealed (its seals say F_SEAL_SEAL):
    // refused.
    // SAFETY: the name is NUL-terminated; we own the new descriptor.
    let raw = unsafe { libc::memfd_create(c"unsealable".as_ptr(), 0) };
    assert!(raw >= 0);
    // SAFETY: `raw` is a new descriptor nothing else owns.
    let memfd = unsafe { OwnedFd::from_raw_fd(raw) };
    std::io::Write::write_all(&mut std::fs::File::from(memfd.try_clone().unwrap()), &bytes)
        .unwrap();
    let err = Table::options().open(&Backing::fd(memfd.as_raw_fd())).unwrap_err();
    assert!(matches!(err.kind(), OpenErrorKind::NotSealed { .. }), "{err}");
}

/// A monitor reaches a memfd table, which has no name, through `/proc/<pid>/fd/<n>`: read-only
/// opens follow that link (and only that one: a symbolic link elsewhere is still refused).
#[test]
fn a_memfd_table_is_inspected_through_proc() {
    let t = memfd_table();
    t.insert(&4, &40).unwrap();
    let n = t.segment().fd().unwrap().as_raw_fd();
    let by_pid = Backing::file(format!("/proc/{}/fd/{n}", std::process::id()));
    let seen = shmap::Segment::inspect(&by_pid).unwrap();
    assert_eq!(seen.info().segment_id, t.info().segment_id);
    let reader =
        shmap::ShmTableReader::<u64, u64>::open(&Backing::file(format!("/proc/self/fd/{n}")))
            .unwrap();
    assert_eq!(reader.get(&4).unwrap(), Some(40));

    let dir = TempDir::new("memfd-link");
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(format!("/proc/self/fd/{n}"), &link).unwrap();
    let err = shmap::Segment::inspect(&Backing::file(&link)).unwrap_err();
    assert!(matches!(err.kind(), OpenErrorKind::SymlinkRefused), "{err}");
}
