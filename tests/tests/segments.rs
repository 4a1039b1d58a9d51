//! The segment rules: an opener that disagrees gets a typed error and changes nothing; broken
//! headers are refused; names are checked; permissions are exact; a full tmpfs is an error at
//! open, not a SIGBUS later.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use shmap::segment::{HugePages, Segment, SegmentOptions, SegmentSpec};
use shmap::{
    AccessMode, Backing, CreateMode, OpenError, OpenErrorKind, Role, ShmHashTable, ShmHasher,
    StructureKind, TypeLayout,
};
use shmap_tests::{ShmName, TempDir};

type Table = ShmHashTable<u64, u64>;

fn kind(result: Result<impl std::fmt::Debug, OpenError>) -> OpenErrorKind {
    match result {
        Ok(t) => panic!("expected an error, opened {t:?}"),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            e.kind
        }
    }
}

/// A table with a few entries, and a snapshot of its bytes.
fn populated(name: &ShmName) -> (Table, Vec<u8>) {
    let table = Table::open_or_create(name.as_str(), 64).unwrap();
    for k in 0..10 {
        table.visit(&k, AccessMode::CreateIfMiss, |_, v, _| *v = k * 3).unwrap();
    }
    let bytes = fs::read(name.path()).unwrap();
    (table, bytes)
}

/// Another hasher, to open a table with the wrong one.
struct OtherHasher;
impl ShmHasher for OtherHasher {
    const ID: u64 = 0xDEAD_0001;
    fn hash(bytes: &[u8]) -> u64 {
        shmap::DefaultHasher::hash(bytes).rotate_left(7)
    }
}

fn custom_spec(n: u32) -> SegmentSpec {
    SegmentSpec {
        capacity: Some(64),
        ..SegmentSpec::new(
            StructureKind::Custom(n),
            TypeLayout::NONE,
            TypeLayout::of::<u64>(),
            |_| 8,
        )
    }
}

#[test]
fn openers_that_disagree_get_typed_errors_and_change_nothing() {
    let name = ShmName::new("mismatch");
    let (table, mut before) = populated(&name);
    let unchanged = |before: &Vec<u8>| {
        assert!(fs::read(name.path()).unwrap() == *before, "the segment was modified")
    };

    match kind(Table::options().capacity(128).open(&name.backing())) {
        OpenErrorKind::CapacityMismatch { expected: 128, found: 64 } => {}
        other => panic!("{other:?}"),
    }
    unchanged(&before);
    // open_or_create asks for at least its capacity: a larger table is adopted, a smaller one
    // is refused by name.
    assert_eq!(Table::open_or_create(name.as_str(), 16).unwrap().capacity(), 64);
    // That opener agreed: it registered and released a process-table entry, whose generation
    // (in its state word) counts it. The openers below disagree and change nothing.
    before = fs::read(name.path()).unwrap();
    match kind(Table::open_or_create(name.as_str(), 100)) {
        OpenErrorKind::CapacityMismatch { expected: 128, found: 64 } => {}
        other => panic!("{other:?}"),
    }
    unchanged(&before);

    match kind(ShmHashTable::<u64, u32>::open(name.as_str())) {
        OpenErrorKind::LayoutMismatch { role: Role::Value, expected, found } => {
            assert_eq!((expected.desc.as_str(), found.desc.as_str()), ("u32", "u64"));
            assert_eq!((expected.size, found.size), (4, 8));
        }
        other => panic!("{other:?}"),
    }
    unchanged(&before);

    match kind(ShmHashTable::<i64, u64>::open(name.as_str())) {
        OpenErrorKind::LayoutMismatch { role: Role::Key, expected, found } => {
            assert_eq!((expected.desc.as_str(), found.desc.as_str()), ("i64", "u64"));
            assert_ne!(expected.hash, found.hash, "same size and alignment, another type");
        }
        other => panic!("{other:?}"),
    }
    unchanged(&before);

    let other_hasher = ShmHashTable::<u64, u64, OtherHasher>::options().open(&name.backing());
    match kind(other_hasher) {
        OpenErrorKind::HasherMismatch { expected: 0xDEAD_0001, found } => {
            assert_eq!(found, shmap::DefaultHasher::ID);
        }
        other => panic!("{other:?}"),
    }
    unchanged(&before);

    let as_custom = Segment::open(&name.backing(), &custom_spec(5), &SegmentOptions::default());
    match kind(as_custom) {
        OpenErrorKind::KindMismatch { expected, found } => {
            assert_eq!((expected, found), (StructureKind::Custom(5), StructureKind::HashTable));
        }
        other => panic!("{other:?}"),
    }
    unchanged(&before);

    let new_only =
        Table::options().capacity(64).create(CreateMode::CreateNew).open(&name.backing());
    assert!(matches!(kind(new_only), OpenErrorKind::AlreadyExists));
    unchanged(&before);

    // A matching open (50 rounds up to 64) succeeds; it registers in the process table, and
    // releases its entry when dropped (the entry keeps a bumped generation: see
    // `process::table`).
    let attached = table.segment().attached_processes();
    Table::options().capacity(50).open(&name.backing()).unwrap();
    assert_eq!(table.segment().attached_processes(), attached, "the entry was released");
    assert_eq!(table.get(&9).unwrap(), Some(27));
    drop(table);
}

#[test]
fn a_table_opener_refuses_another_kind_of_structure() {
    let name = ShmName::new("custom-kind");
    let custom =
        Segment::open(&name.backing(), &custom_spec(9), &SegmentOptions::default()).unwrap();
    let before = fs::read(name.path()).unwrap();
    let err = Table::open(name.as_str()).unwrap_err();
    assert!(
        err.to_string().contains("expected a hash table, found a custom structure #9"),
        "the message names both kinds: {err}"
    );
    assert!(fs::read(name.path()).unwrap() == before);
    drop(custom);
}

#[test]
fn truncated_segments_are_refused() {
    let name = ShmName::new("truncated");
    let (table, before) = populated(&name);
    let total = table.info().total_size;
    drop(table);
    for len in [total - 4096, 1000, 4, 0] {
        fs::OpenOptions::new().write(true).open(name.path()).unwrap().set_len(len).unwrap();
        match kind(Table::open(name.as_str())) {
            OpenErrorKind::Truncated { expected, found } => {
                assert_eq!(found, len);
                assert!(expected > len);
            }
            other => panic!("length {len}: {other:?}"),
        }
        assert_eq!(fs::metadata(name.path()).unwrap().len(), len, "left as it was");
    }
    drop(before);
}

/// Writes `patch` at `offset` of a copy of a good segment, and opens the result.
fn open_patched(name: &ShmName, good: &[u8], offset: usize, patch: &[u8]) -> OpenErrorKind {
    let mut bytes = good.to_vec();
    bytes[offset..offset + patch.len()].copy_from_slice(patch);
    fs::write(name.path(), &bytes).unwrap();
    let result = kind(Table::open(name.as_str()));
    assert!(fs::read(name.path()).unwrap() == bytes, "a refused segment is left as it was");
    result
}

#[test]
fn corrupt_headers_are_refused() {
    let name = ShmName::new("corrupt");
    let (table, good) = populated(&name);
    drop(table);
    // Magic (offset 0), version (8), then a byte of the capacity field (32).
    assert!(matches!(
        open_patched(&name, &good, 0, b"NOTSHMAP"),
        OpenErrorKind::NotShmap { found, .. } if found == u64::from_le_bytes(*b"NOTSHMAP")
    ));
    assert!(matches!(
        open_patched(&name, &good, 8, &9u32.to_ne_bytes()),
        OpenErrorKind::VersionMismatch { expected: 8, found: 9 }
    ));
    // Segments of the previous formats: 7, process-table entries without a generation in
    // their state word (whose reclaims could strand an entry); 6, tables whose shortenings do not bump the emptied
    // epoch (inserts of this build would miss a chain cut by them); 5, process tables without the EXITED and CHECKING
    // states (a build of format 5 would take such entries for dead processes); 4, tables
    // without probe bounds (whose lookups walk to
    // an EMPTY slot, and whose inserts would not raise the bounds); 3, tables whose header did
    // not record whether a slot was ever freed; 2, hash-table slots that could not be removed
    // (states TOMBSTONE and DEAD, which later formats read as FREED and EMPTYING); 1, ring
    // control blocks without sleeper seats.
    for old in [7u32, 6, 5, 4, 3, 2, 1] {
        let kind = open_patched(&name, &good, 8, &old.to_ne_bytes());
        assert!(
            matches!(kind, OpenErrorKind::VersionMismatch { expected: 8, found } if found == old),
            "{kind:?}"
        );
        let message = kind.to_string();
        assert!(message.contains('8') && message.contains(&old.to_string()), "{message}");
    }
    assert!(matches!(open_patched(&name, &good, 32, &[0xff]), OpenErrorKind::CorruptHeader { .. }));
    // A byte of the value's layout description.
    assert!(matches!(open_patched(&name, &good, 400, b"x"), OpenErrorKind::CorruptHeader { .. }));
    // The good bytes open again.
    fs::write(name.path(), &good).unwrap();
    assert_eq!(Table::open(name.as_str()).unwrap().get(&4).unwrap(), Some(12));
}

#[test]
fn objects_that_are_not_segments_are_refused() {
    let name = ShmName::new("foreign");
    fs::write(name.path(), vec![b'x'; 1 << 20]).unwrap();
    assert!(matches!(kind(Table::open(name.as_str())), OpenErrorKind::NotShmap { .. }));
    assert!(matches!(
        kind(Table::open_or_create(name.as_str(), 64)),
        OpenErrorKind::NotShmap { .. }
    ));
    assert_eq!(fs::read(name.path()).unwrap(), vec![b'x'; 1 << 20], "never re-initialised");

    let dir = ShmName::new("a-directory");
    fs::create_dir(dir.path()).unwrap();
    let result = kind(Table::open(dir.as_str()));
    fs::remove_dir(dir.path()).unwrap();
    assert!(matches!(result, OpenErrorKind::NotRegularFile), "{result:?}");
}

/// Runs `open` (which opens the FIFO at `fifo`) on another thread and returns what it returned,
/// failing the test if it has not returned within 10 s (after unblocking it by opening the FIFO
/// for writing, so that the thread can finish).
fn promptly(
    what: &str,
    fifo: &Path,
    open: impl FnOnce() -> Result<(), OpenErrorKind> + Send + 'static,
) -> Result<(), OpenErrorKind> {
    let (done, result) = std::sync::mpsc::channel();
    let opener = std::thread::spawn(move || done.send(open()).unwrap());
    match result.recv_timeout(std::time::Duration::from_secs(10)) {
        Ok(result) => {
            opener.join().unwrap();
            result
        }
        Err(_) => {
            // A writer lets the blocked open of the reading end return.
            let writer =
                fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(fifo);
            let _ = opener.join();
            drop(writer);
            panic!("{what} of a FIFO blocked for 10 s");
        }
    }
}

#[test]
fn fifos_are_refused_without_blocking() {
    let dir = TempDir::new("fifo");
    let fifo = dir.path().join("t.shm");
    let path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: `path` is a valid NUL-terminated string.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");
    let backing = Backing::file(&fifo);

    let b = backing.clone();
    let inspected = promptly("Segment::inspect", &fifo, move || {
        Segment::inspect(&b).map(drop).map_err(|e| e.kind)
    });
    assert!(matches!(inspected, Err(OpenErrorKind::NotRegularFile)), "{inspected:?}");

    for create in [CreateMode::OpenExisting, CreateMode::OpenOrCreate] {
        let b = backing.clone();
        let opened = promptly("a table's open", &fifo, move || {
            Table::options().capacity(16).create(create).open(&b).map(drop).map_err(|e| e.kind)
        });
        assert!(matches!(opened, Err(OpenErrorKind::NotRegularFile)), "{create:?}: {opened:?}");
    }
    assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo(), "left as it was");
}

#[test]
fn names_and_links() {
    assert!(matches!(kind(Table::open("no-slash")), OpenErrorKind::InvalidName { .. }));
    assert!(matches!(kind(Table::open("/a/b")), OpenErrorKind::InvalidName { .. }));
    let missing = ShmName::new("missing");
    assert!(matches!(kind(Table::open(missing.as_str())), OpenErrorKind::NotFound));

    let target = ShmName::new("link-target");
    let link = ShmName::new("link");
    Table::open_or_create(target.as_str(), 16).unwrap();
    std::os::unix::fs::symlink(target.path(), link.path()).unwrap();
    let result = kind(Table::open_or_create(link.as_str(), 16));
    fs::remove_file(link.path()).unwrap();
    assert!(matches!(result, OpenErrorKind::SymlinkRefused), "{result:?}");

    let dir = TempDir::new("links");
    let file_link = dir.path().join("link.shm");
    std::os::unix::fs::symlink(target.path(), &file_link).unwrap();
    let result = kind(Table::options().capacity(16).open(&Backing::file(&file_link)));
    assert!(matches!(result, OpenErrorKind::SymlinkRefused), "{result:?}");
    let in_missing_dir = Backing::file(dir.path().join("no/such/dir/t.shm"));
    assert!(matches!(
        kind(Table::options().capacity(16).open(&in_missing_dir)),
        OpenErrorKind::InvalidName { .. }
    ));
}

#[test]
fn new_segments_get_exactly_the_requested_mode() {
    let private = ShmName::new("mode-default");
    Table::open_or_create(private.as_str(), 16).unwrap();
    let mode = fs::metadata(private.path()).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);

    let shared = ShmName::new("mode-group");
    Table::options().capacity(16).mode(0o660).open(&shared.backing()).unwrap();
    let mode = fs::metadata(shared.path()).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o660, "set with fchmod, so the umask (usually 022) does not strip g+w");
}

#[test]
fn file_backed_tables_persist_and_destroy_removes_them() {
    let dir = TempDir::new("file");
    let path = dir.path().join("scores.shm");
    let backing = Backing::file(&path);
    {
        let t = Table::options().capacity(64).open(&backing).unwrap();
        assert!(t.info().created_by_this_handle);
        t.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v = 11).unwrap();
        t.segment().flush().unwrap();
    }
    let t = Table::options().open(&backing).unwrap();
    assert!(!t.info().created_by_this_handle);
    assert_eq!((t.capacity(), t.get(&1).unwrap()), (64, Some(11)));
    t.destroy().unwrap();
    assert!(!path.exists());
    let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn open_adopts_the_segments_capacity_and_reports_its_header() {
    let name = ShmName::new("adopt");
    let created = Table::open_or_create(name.as_str(), 100).unwrap();
    let opened = Table::open(name.as_str()).unwrap();
    assert_eq!(opened.capacity(), 128);
    let (a, b) = (created.info(), opened.info());
    assert_eq!(a.segment_id, b.segment_id);
    assert_eq!(
        (b.creator_pid, b.slot_size, b.kind),
        (std::process::id(), 24, StructureKind::HashTable)
    );
    assert_eq!((a.created_by_this_handle, b.created_by_this_handle), (true, false));
    assert_eq!(b.key.desc.as_str(), "u64");
    assert!(b.total_size as usize == opened.segment().len());
    assert_eq!(opened.segment().attached_processes().len(), 2, "one entry per handle");
    drop(created);
    assert_eq!(opened.segment().attached_processes().len(), 1, "released on drop");
}

/// The original stored its `mmap` result in a local that shadowed the member, so `munmap` never
/// ran: every open leaked a mapping of the whole table. A dropped shmap handle unmaps.
#[test]
fn dropped_handles_unmap_their_segment() {
    let name = ShmName::new("unmap");
    let file = &name.as_str()[1..];
    let mappings = || {
        fs::read_to_string("/proc/self/maps").unwrap().lines().filter(|l| l.ends_with(file)).count()
    };
    let first = Table::open_or_create(name.as_str(), 1 << 12).unwrap();
    assert_eq!(mappings(), 1);
    for _ in 0..200 {
        let again = Table::open(name.as_str()).unwrap();
        assert_eq!(mappings(), 2);
        drop(again);
    }
    assert_eq!(mappings(), 1);
    drop(first);
    assert_eq!(mappings(), 0);
}

/// Runs `sh -c script` in a private mount namespace (so it can mount a tiny tmpfs), as an
/// unprivileged user namespace if possible, else as root.
fn in_private_mounts(script: &str) -> String {
    for args in [&["-r", "-m"][..], &["-m"][..]] {
        let out = Command::new("unshare").args(args).args(["sh", "-c", script]).output();
        if let Ok(out) = out {
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && !stdout.contains("MOUNT_FAILED") {
                return stdout;
            }
        }
    }
    panic!("this test needs `unshare -rm` (or root) to mount a 1 MiB tmpfs; neither worked here");
}

#[test]
fn a_full_tmpfs_is_an_error_at_open_not_a_sigbus_later() {
    let worker = env!("CARGO_BIN_EXE_worker");
    // /dev/shm itself, replaced by a 1 MiB tmpfs: a 2^16-slot table needs 1.7 MB.
    let out = in_private_mounts(&format!(
        "mount -t tmpfs -o size=1m tmpfs /dev/shm || {{ echo MOUNT_FAILED; exit 0; }}; \
         {worker} create /big 65536; {worker} create /small 1024; ls -a /dev/shm"
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("error NoSpace"), "{out}");
    assert!(lines[0].contains("1777664") && lines[0].contains("ENOSPC"), "names the size: {out}");
    assert_eq!(lines[1], "ok", "a table that fits is still created: {out}");
    assert_eq!(lines[2..], [".", "..", "small"], "nothing else left behind: {out}");

    // A file-backed table on a full filesystem.
    let dir = TempDir::new("full-fs");
    let d = dir.path().display();
    let out = in_private_mounts(&format!(
        "mount -t tmpfs -o size=1m tmpfs {d} || {{ echo MOUNT_FAILED; exit 0; }}; \
         {worker} create-file {d}/t.shm 65536; ls -a {d}"
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("error NoSpace"), "{out}");
    assert_eq!(lines[1..], [".", ".."], "nothing left behind: {out}");
    assert!(Path::new(&dir.path()).exists());
}

/// The user the tests plant segments as: `nobody`.
const OTHER_UID: u32 = 65534;

/// Whether this process may run others as another user (root); if not, says the test skips.
fn can_switch_users(what: &str) -> bool {
    // SAFETY: no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("skipped: {what} as another user needs root (run as root in CI)");
    }
    root
}

/// The worker with `args`, run as `OTHER_UID` (user and group).
fn worker_as_another_user(args: &[&str]) -> std::io::Result<std::process::Output> {
    use std::os::unix::process::CommandExt;
    Command::new(env!("CARGO_BIN_EXE_worker")).args(args).uid(OTHER_UID).gid(OTHER_UID).output()
}

/// Runs the worker as `OTHER_UID` to create table `name` with `mode`, as another local user
/// would plant it in world-writable `/dev/shm` before a service opens it; `false` where this
/// process cannot run a process as another user (then the test says so and skips).
fn plant_as_another_user(name: &ShmName, mode: u32) -> bool {
    let out = worker_as_another_user(&["plant", name.as_str(), "64", &format!("{mode:o}")]);
    match out {
        Ok(out) if String::from_utf8_lossy(&out.stdout).trim() == "ok" => true,
        other => {
            eprintln!("skipped: cannot create a segment as uid {OTHER_UID}: {other:?}");
            false
        }
    }
}

/// A segment created by another user under the name a service opens is refused, with the owner
/// and mode named, whatever its mode; a shared group accepts it deliberately, and only if others
/// cannot write to it. It can still be inspected (read-only opens never write).
#[test]
fn segments_planted_by_another_user_are_refused() {
    if !can_switch_users("planting a segment") {
        return;
    }
    let name = ShmName::new("planted");
    if !plant_as_another_user(&name, 0o666) {
        return;
    }
    let bytes = fs::read(name.path()).unwrap();
    let refused = kind(Table::options().capacity(64).open(&name.backing()));
    assert!(
        matches!(
            refused,
            OpenErrorKind::UntrustedOwner { owner: OTHER_UID, mode: 0o666, expected: 0, .. }
        ),
        "{refused:?}"
    );
    let message = refused.to_string();
    assert!(message.contains("uid 65534") && message.contains("0666"), "{message}");
    assert_eq!(fs::read(name.path()).unwrap(), bytes, "a refused segment is left as it was");
    let writable_by_all = kind(
        Table::options().capacity(64).mode(0o666).shared_group(OTHER_UID).open(&name.backing()),
    );
    assert!(matches!(writable_by_all, OpenErrorKind::UntrustedOwner { .. }), "{writable_by_all:?}");
    assert!(Segment::inspect(&name.backing()).is_ok(), "inspection is read-only");
    drop(name);

    // The same user's group, with others shut out: accepted only when asked for.
    let name = ShmName::new("planted-group");
    if !plant_as_another_user(&name, 0o660) {
        return;
    }
    let refused = kind(Table::options().capacity(64).mode(0o660).open(&name.backing()));
    assert!(
        matches!(refused, OpenErrorKind::UntrustedOwner { group: OTHER_UID, .. }),
        "{refused:?}"
    );
    let shared = Table::options()
        .capacity(64)
        .mode(0o660)
        .shared_group(OTHER_UID)
        .open(&name.backing())
        .unwrap();
    shared.insert(&1, &2).unwrap();
    assert_eq!(shared.get(&1).unwrap(), Some(2));
}

/// A segment of this user's that group or others may write to beyond the mode the options ask
/// for (chmod'ed after its creation, or created so by a careless or hostile process of the same
/// user) is refused with its mode and the mode asked for; asking for that mode opens it.
#[test]
fn segments_writable_beyond_the_requested_mode_are_refused() {
    let name = ShmName::new("permissive");
    drop(Table::options().capacity(64).open(&name.backing()).unwrap());
    fs::set_permissions(name.path(), fs::Permissions::from_mode(0o666)).unwrap();
    let refused = kind(Table::options().capacity(64).open(&name.backing()));
    assert!(
        matches!(refused, OpenErrorKind::TooPermissive { mode: 0o666, allowed: 0o600 }),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("0666"), "{refused}");
    fs::set_permissions(name.path(), fs::Permissions::from_mode(0o644)).unwrap();
    assert!(Table::options().capacity(64).open(&name.backing()).is_ok(), "others only read");
    fs::set_permissions(name.path(), fs::Permissions::from_mode(0o666)).unwrap();
    assert!(Table::options().capacity(64).mode(0o666).open(&name.backing()).is_ok(), "asked for");
}

/// A process that may only read a table's file (mode 0640, a member of its group, another user)
/// opens it with a `ShmTableReader`: lookups and `len` work, a read-write open is refused, and
/// the file is left byte for byte as it was (the reader registers nowhere, writes nothing).
#[test]
fn a_reader_that_may_only_read_the_file_reads_without_writing() {
    if !can_switch_users("running a reader") {
        return;
    }
    let name = ShmName::new("reader");
    let table = Table::options().capacity(64).mode(0o640).open(&name.backing()).unwrap();
    for k in 0..5 {
        table.insert(&k, &(k * 10)).unwrap();
    }
    std::os::unix::fs::chown(name.path(), None, Some(OTHER_UID)).unwrap();
    let before = fs::read(name.path()).unwrap();
    let out = worker_as_another_user(&["read", name.as_str(), "0", "1", "2", "9"]).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["values 0 10 20 -", "len 5", "write-open PermissionDenied"],
        "{out:?}"
    );
    assert!(fs::read(name.path()).unwrap() == before, "the reader wrote to the file");
}

/// The huge pages free in the pool (`HugePages_Free` in `/proc/meminfo`).
fn free_huge_pages() -> Option<u64> {
    let meminfo = fs::read_to_string("/proc/meminfo").ok()?;
    meminfo.lines().find_map(|l| l.strip_prefix("HugePages_Free:")?.trim().parse().ok())
}

/// A hugetlbfs mount where this process may create files, if huge pages are free.
fn hugetlbfs_with_free_pages() -> Option<std::path::PathBuf> {
    if free_huge_pages()? == 0 {
        return None;
    }
    let mounts = fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            let (path, kind) = (fields.nth(1)?, fields.next()?);
            (kind == "hugetlbfs").then(|| std::path::PathBuf::from(path))
        })
        .find(|dir| {
            let probe = dir.join(format!(".shmap-probe-{}", std::process::id()));
            let ok = fs::File::create(&probe).is_ok();
            let _ = fs::remove_file(&probe);
            ok
        })
}

/// A file-backed table on hugetlbfs (huge pages from the reserved pool): the file's size is the
/// segment's rounded up to a whole huge page (which `ftruncate` there requires), the segment
/// reports the page size, and it reopens and is removed like any file-backed table.
#[test]
fn tables_on_hugetlbfs_use_whole_huge_pages() {
    let Some(mount) = hugetlbfs_with_free_pages() else {
        eprintln!(
            "skipped: no hugetlbfs mount with free huge pages (as root: `echo 8 > \
             /proc/sys/vm/nr_hugepages; mount -t hugetlbfs none /dev/hugepages`)"
        );
        return;
    };
    let path = mount.join(format!("shmap-test-huge-{}", std::process::id()));
    let backing = Backing::file(&path);
    struct Remove<'a>(&'a Path);
    impl Drop for Remove<'_> {
        fn drop(&mut self) {
            let _ = fs::remove_file(self.0);
        }
    }
    let _cleanup = Remove(&path);
    let t = Table::options().capacity(1024).open(&backing).unwrap();
    let HugePages::Hugetlbfs { page_size } = t.segment().huge_pages() else {
        panic!("not reported as hugetlbfs: {:?}", t.segment().huge_pages());
    };
    assert!(page_size >= 2 << 20, "{page_size}");
    let (file, total) = (fs::metadata(&path).unwrap().len(), t.info().total_size);
    assert!(file % page_size == 0 && file >= total && file - total < page_size, "{file} {total}");
    t.insert(&1, &2).unwrap();
    drop(t);
    let t = Table::options().open(&backing).unwrap();
    assert_eq!(t.get(&1).unwrap(), Some(2));
    assert_eq!(t.segment().huge_pages(), HugePages::Hugetlbfs { page_size });
    t.destroy().unwrap();
    assert!(!path.exists());

    // More than the pool holds: refused at open (the pages are reserved at creation), not a
    // SIGBUS at the first touch of a page the pool cannot give.
    let free = free_huge_pages().unwrap();
    let slots = ((free + 1) * page_size / 24).next_power_of_two() as usize;
    let err = Table::options().capacity(slots).open(&backing).unwrap_err();
    assert!(matches!(err.kind(), OpenErrorKind::NoSpace { .. }), "{err}");
    assert!(!path.exists(), "nothing left behind");
}
