//! The `shmap` command on real segments: a table with a slot held by a process that was
//! SIGKILLed inside its visit (keys and values are structs, decoded by field), a ring whose
//! consumer was killed asleep, a folder of segments and other files for `ls`, and `rm` with and
//! without live processes. Outputs are compared with `tests/golden/*` after masking what varies
//! between runs (name, pids, owner ids, uid, times, ids), and `shmap schema` with `schema/*`.
//! Regenerate both with `SHMAP_BLESS=1 cargo test -p shmap-cli --test cli` and read the diff.
//!
//! No test harness (`harness = false`): the process is single-threaded when it forks.

use std::path::Path;
use std::process::Command;

use shmap::segment::Recoveries;
use shmap::{AccessMode, Backing, FixedString, ShmHashTable, ShmKey, ShmValue};

/// A key with fields, as `inspect` and `stuck` decode it: `{site: 1, sensor: 2}`.
#[derive(ShmKey, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(C)]
struct Sensor {
    site: u32,
    sensor: u32,
}

#[derive(ShmValue, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Reading {
    celsius: f64,
    label: FixedString<6>,
}

type Table = ShmHashTable<Sensor, Reading>;

fn sensor(n: u32) -> Sensor {
    Sensor { site: 1, sensor: n }
}

fn reading(n: u32) -> Reading {
    Reading { celsius: f64::from(n) * 10.5, label: FixedString::try_from("oven").unwrap() }
}

fn shmap(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shmap")).args(args).output().expect("run shmap");
    let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8 output");
    (out.status.code().unwrap_or(-1), text(out.stdout), text(out.stderr))
}

/// Replaces each whole-number occurrence of `value` (not part of a longer number).
fn mask_number(text: &str, value: &str, placeholder: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(value) {
        let before = rest[..i].chars().next_back();
        let after = rest[i + value.len()..].chars().next();
        let whole = !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_digit());
        out.push_str(&rest[..i]);
        out.push_str(if whole { placeholder } else { value });
        rest = &rest[i + value.len()..];
    }
    out.push_str(rest);
    out
}

/// Replaces each run of spaces after `placeholder` by one space.
fn squeeze_spaces_after(text: &str, placeholder: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(placeholder) {
        out.push_str(&rest[..i + placeholder.len()]);
        rest = &rest[i + placeholder.len()..];
        let trimmed = rest.trim_start_matches(' ');
        if trimmed.len() < rest.len() {
            out.push(' ');
        }
        rest = trimmed;
    }
    out.push_str(rest);
    out
}

/// Replaces the number that follows each `marker` up to `end` (durations, milliseconds).
fn mask_after(text: &str, marker: &str, end: char, placeholder: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(marker) {
        out.push_str(&rest[..i + marker.len()]);
        rest = &rest[i + marker.len()..];
        if !rest.starts_with(|c: char| c.is_ascii_digit()) {
            continue; // words, not a number
        }
        let stop = rest.find(end).unwrap_or(rest.len());
        out.push_str(placeholder);
        rest = &rest[stop..];
    }
    out.push_str(rest);
    out
}

fn check(golden: &str, actual: &str) {
    check_file(&Path::new("tests/golden").join(golden), actual);
}

/// Compares `actual` with the file at `path` (relative to the package), or writes it.
fn check_file(path: &Path, actual: &str) {
    let golden = path.display().to_string();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    if std::env::var_os("SHMAP_BLESS").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing {}", path.display()));
    assert!(
        expected == actual,
        "{golden} differs:\n--- expected\n{expected}\n--- actual\n{actual}"
    );
}

/// Masks what varies between runs in the outputs about `segment` (named `name`): ids, times,
/// the uid, owner ids, this process's pid and the `killed` child's, durations.
fn mask(text: &str, name: &str, segment: &shmap::Segment, killed: i32) -> String {
    let info = segment.info();
    let owners: Vec<String> =
        segment.attached_processes().iter().map(|(o, _)| o.get().to_string()).collect();
    let mut t = text.replace(name, "<name>");
    t = t.replace(&format!("{:#018x}", info.segment_id), "<segment-id>");
    t = t.replace(&shmap_cli_utc(info.created_at), "<created>");
    t = mask_number(
        &t,
        &(info.created_at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).to_string(),
        "<created>",
    );
    t = t.replace(&format!("(uid {})", info.creator_uid), "(uid <uid>)");
    t = t.replace(&format!("\"creator_uid\":{}", info.creator_uid), "\"creator_uid\":\"<uid>\"");
    // Owner ids first: a small owner id may read like a pid, and pids like owner ids.
    for owner in &owners {
        t = t.replace(&format!("owner {owner:<5}"), "owner <owner>");
        t = t.replace(&format!("owner {owner})"), "owner <owner>)");
        t = t.replace(&format!("\"owner\":{owner},"), "\"owner\":\"<owner>\",");
    }
    t = mask_number(&t, &std::process::id().to_string(), "<pid>");
    t = mask_number(&t, &killed.to_string(), "<killed-pid>");
    // Column padding depends on how many digits the masked numbers had.
    for placeholder in ["<pid>", "<killed-pid>", "<owner>"] {
        t = squeeze_spaces_after(&t, placeholder);
    }
    t = mask_after(&t, " for ", ',', "<duration>");
    t = mask_after(&t, "\"locked_for_ms\":", ',', "<ms>");
    t = mask_after(&t, "\"held_for_ms\":", ',', "<ms>");
    // `watch` headers: `-- 2026-11-23 08:55:33 UTC --` (which may equal the creation time).
    t.lines()
        .map(
            |line| {
                if line.starts_with("-- ") && line.ends_with(" --") { "-- <time> --" } else { line }
            },
        )
        .fold(String::new(), |out, line| out + line + "\n")
}

/// Forks a child that runs `body` and then waits for ever; returns its pid once `body` said
/// (by writing to the pipe it is given) that it is ready.
fn child_that(body: impl FnOnce(i32)) -> i32 {
    let mut pipe = [0; 2];
    // SAFETY: `pipe` is a valid array of two descriptors for pipe(2) to fill.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    // SAFETY: this test has no harness and no other thread, so the child may run anything.
    let child = unsafe { libc::fork() };
    if child == 0 {
        body(pipe[1]);
        std::thread::sleep(std::time::Duration::from_secs(600));
        // SAFETY: leaves the child without running the parent's exit handlers.
        unsafe { libc::_exit(0) };
    }
    let mut byte = [0u8];
    // SAFETY: reads one byte into a valid buffer from the pipe's read end.
    assert_eq!(unsafe { libc::read(pipe[0], byte.as_mut_ptr().cast(), 1) }, 1);
    for fd in pipe {
        // SAFETY: closes our copy of one of the pipe's descriptors, used by nothing else.
        unsafe { libc::close(fd) };
    }
    child
}

/// Tells the parent of `child_that` that the child is ready.
fn ready(pipe: i32) {
    // SAFETY: writes one byte from a valid buffer to the pipe's write end.
    unsafe { libc::write(pipe, b"!".as_ptr().cast(), 1) };
}

fn kill_and_reap(child: i32) {
    // SAFETY: `child` is our own unreaped child.
    unsafe { libc::kill(child, libc::SIGKILL) };
    let mut status = 0;
    // SAFETY: reaps our own child; `status` is a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
}

/// An SPSC ring whose consumer was killed while asleep in `pop`: `inspect` shows the roles and
/// the sleeper, `stuck` reports the dead consumer's role and seat (not the live producer).
fn ring_with_a_dead_consumer() {
    use shmap::ring::{RingSnapshot, SpscRing};
    let name = format!("/shmap-cli-ring-{}", std::process::id());
    let ring = SpscRing::<u64>::options().capacity(8).open(&Backing::shm(&name)).unwrap();
    let result = std::panic::catch_unwind(|| {
        let mut producer = ring.producer().unwrap();
        producer.push(&5).unwrap();
        let child = child_that(|pipe| {
            let ring = SpscRing::<u64>::open(&name).unwrap();
            let mut consumer = ring.consumer().unwrap();
            assert_eq!(consumer.pop().unwrap(), 5);
            ready(pipe);
            let wait = shmap::Wait::timeout(std::time::Duration::from_secs(600));
            let _ = consumer.pop_with(wait); // empty: sleeps until killed
        });
        let start = std::time::Instant::now();
        while RingSnapshot::of(ring.segment()).unwrap().sleepers.is_empty() {
            assert!(start.elapsed().as_secs() < 10, "the consumer never went to sleep");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        kill_and_reap(child);
        let mask = |text: &str| mask(text, &name, ring.segment(), child);
        let (code, out, err) = shmap(&["inspect", &name]);
        assert_eq!(code, 0, "{err}");
        check("ring-inspect.txt", &mask(&out));
        let (code, out, _) = shmap(&["inspect", &name, "--json"]);
        assert_eq!(code, 0);
        check("ring-inspect.json", &mask(&out));
        let (code, out, _) = shmap(&["stuck", &name, "--threshold", "0s"]);
        assert_eq!(code, 1, "a dead consumer's role and seat: exit 1");
        check("ring-stuck.txt", &mask(&out));
        let (code, out, _) = shmap(&["stuck", &name, "--threshold", "0s", "--json"]);
        assert_eq!(code, 1);
        check("ring-stuck.json", &mask(&out));
        drop(producer);
    });
    let _ = ring.destroy();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// `shmap ls DIR` lists the shmap segments in it (one that cannot be read with its error) and
/// skips everything else.
fn ls_lists_segments_only() {
    use shmap::ShmVector;
    use shmap::ring::MpmcRing;
    let dir = std::env::temp_dir().join(format!("shmap-cli-ls-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    let result = std::panic::catch_unwind(|| {
        let table = ShmHashTable::<u64, u64>::options()
            .capacity(16)
            .open(&Backing::file(dir.join("table")))
            .unwrap();
        table.insert(&1, &10).unwrap();
        drop(
            MpmcRing::<u64>::options().capacity(8).open(&Backing::file(dir.join("ring"))).unwrap(),
        );
        drop(
            ShmVector::<u32>::options()
                .capacity(4)
                .open(&Backing::file(dir.join("vector")))
                .unwrap(),
        );
        // A segment of a format version this build does not read.
        let mut bytes = std::fs::read(dir.join("ring")).unwrap();
        bytes[8..12].copy_from_slice(&99u32.to_ne_bytes());
        std::fs::write(dir.join("version-99"), bytes).unwrap();
        std::fs::write(dir.join("notes.txt"), "not a segment").unwrap();
        std::fs::write(dir.join("empty"), "").unwrap();
        std::fs::write(dir.join(".shmap-tmp.1234"), "a creator's unpublished file").unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        let dir_text = dir.to_str().unwrap();
        let mask = |text: &str| {
            let t = text.replace(dir_text, "<dir>");
            // The column widths depend on the folder's name.
            let mut lines = t.lines().map(|l| {
                l.split("  ")
                    .filter(|c| !c.is_empty())
                    .map(str::trim)
                    .collect::<Vec<_>>()
                    .join(" | ")
            });
            lines.next().map(|h| h + "\n").unwrap_or_default()
                + &lines.map(|l| l + "\n").collect::<String>()
        };
        let (code, out, err) = shmap(&["ls", dir_text]);
        assert_eq!(code, 0, "{err}");
        check("ls.txt", &mask(&out));
        let (code, out, _) = shmap(&["ls", dir_text, "--json"]);
        assert_eq!(code, 0);
        check("ls.json", &out.replace(dir_text, "<dir>"));
        let (code, _, err) = shmap(&["ls", "/shmap-cli-no-such-folder"]);
        assert_eq!(code, 2);
        assert!(err.contains("cannot list /shmap-cli-no-such-folder"), "{err}");
        drop(table);
    });
    std::fs::remove_dir_all(&dir).unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// `shmap rm` removes a name unless a live process is attached (`--force` overrides); a name
/// whose processes are all dead goes without `--force`; it never removes what is not a shmap
/// segment.
fn rm_refuses_while_live_processes_are_attached() {
    let name = format!("/shmap-cli-rm-{}", std::process::id());
    let pid = std::process::id().to_string();
    let table =
        ShmHashTable::<u64, u64>::options().capacity(16).open(&Backing::shm(&name)).unwrap();
    let (code, _, err) = shmap(&["rm", &name]);
    assert_eq!(code, 2);
    check("rm-refused.err", &mask_number(&err.replace(&name, "<name>"), &pid, "<pid>"));
    assert!(ShmHashTable::<u64, u64>::open(&name).is_ok(), "still there");
    let (code, out, err) = shmap(&["rm", &name, "--force"]);
    assert_eq!((code, out.replace(&name, "<name>").as_str()), (0, "removed <name>\n"), "{err}");
    let gone = ShmHashTable::<u64, u64>::open(&name).unwrap_err();
    assert!(matches!(gone.kind, shmap::OpenErrorKind::NotFound), "{gone}");
    drop(table);

    // Attached only by a process that was killed: removed without --force.
    let table =
        ShmHashTable::<u64, u64>::options().capacity(16).open(&Backing::shm(&name)).unwrap();
    let child = child_that(|pipe| {
        let _t = ShmHashTable::<u64, u64>::open(&name).unwrap();
        ready(pipe);
        std::thread::sleep(std::time::Duration::from_secs(600));
    });
    kill_and_reap(child);
    drop(table);
    let (code, _, err) = shmap(&["rm", &name]);
    assert_eq!(code, 0, "{err}");
    assert!(ShmHashTable::<u64, u64>::open(&name).is_err());

    let (code, _, err) = shmap(&["rm", "/shmap-cli-rm-never-created"]);
    assert_eq!(code, 2);
    assert!(err.contains("no such segment"), "{err}");
    let (code, _, err) = shmap(&["rm", "/proc/self/fd/0"]);
    assert_eq!(code, 2);
    assert!(err.contains("is a descriptor, not a name"), "{err}");
    let foreign = std::env::temp_dir().join(format!("shmap-cli-rm-foreign-{}", std::process::id()));
    std::fs::write(&foreign, b"someone else's file").unwrap();
    let (code, _, err) = shmap(&["rm", foreign.to_str().unwrap(), "--force"]);
    let kept = foreign.exists();
    let _ = std::fs::remove_file(&foreign);
    assert_eq!(code, 2);
    assert!(kept && err.contains("not a shmap segment"), "{err}");
}

/// `shmap schema COMMAND` is what `schema/COMMAND.json` holds, and every key of the golden
/// JSON outputs is a property the schema declares.
fn schemas_are_checked_in() {
    for (command, outputs) in [
        ("inspect", &["inspect.json", "ring-inspect.json", "cache-inspect.json"][..]),
        ("stuck", &["stuck.json", "ring-stuck.json"][..]),
        ("ls", &["ls.json"][..]),
    ] {
        let (code, schema, err) = shmap(&["schema", command]);
        assert_eq!(code, 0, "{err}");
        check_file(&Path::new("schema").join(format!("{command}.json")), &schema);
        let schema: serde_json::Value = serde_json::from_str(&schema).unwrap();
        let mut declared = std::collections::BTreeSet::new();
        properties(&schema, &mut declared);
        for output in outputs {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(output);
            let mut text = std::fs::read_to_string(path).unwrap();
            for placeholder in ["<pid>", "<killed-pid>", "<created>", "<ms>"] {
                text = text.replace(&format!(":{placeholder}"), ":0"); // masked numbers
            }
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            let mut used = std::collections::BTreeSet::new();
            keys(&value, &mut used);
            let undeclared: Vec<_> = used.difference(&declared).collect();
            assert!(undeclared.is_empty(), "{output}: keys not in the schema: {undeclared:?}");
        }
    }
}

/// Every property name declared anywhere in a JSON Schema.
fn properties(schema: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match schema {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().cloned());
            }
            map.values().for_each(|v| properties(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| properties(v, out)),
        _ => {}
    }
}

/// Every object key in a JSON value, except inside decoded keys and values (whose fields are
/// the user's).
fn keys(value: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.insert(k.clone());
                if !["key", "value", "undo"].contains(&k.as_str()) {
                    keys(v, out);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

fn main() {
    let name = format!("/shmap-cli-test-{}", std::process::id());
    let result = std::panic::catch_unwind(|| run(&name));
    let _ = Table::unlink(&name);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    ring_with_a_dead_consumer();
    cache_inspect();
    ls_lists_segments_only();
    rm_refuses_while_live_processes_are_attached();
    schemas_are_checked_in();
    memfd_through_proc();
    truncated_under_watch();
    other_sigbus_keeps_its_default_action();
    println!("cli: inspect, stuck, watch, ls, rm, schema and errors match their golden outputs");
}

fn run(name: &str) {
    let table = Table::options().capacity(16).undo_records(true).open(&Backing::shm(name)).unwrap();
    for k in 1..=3 {
        table.visit(&sensor(k), AccessMode::CreateIfMiss, |_, v, _| *v = reading(k)).unwrap();
    }

    // A child locks key 2 and is killed inside its visitor.
    let mut pipe = [0; 2];
    // SAFETY: `pipe` is a valid array of two descriptors for pipe(2) to fill.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    // SAFETY: this test has no harness and no other thread, so the child may run anything.
    let child = unsafe { libc::fork() };
    if child == 0 {
        let t = Table::open(name).unwrap();
        let _ = t.visit(&sensor(2), AccessMode::AccessExist, |_, v, _| {
            v.celsius = 999.0;
            // SAFETY: writes one byte from a valid buffer to the pipe's write end.
            unsafe { libc::write(pipe[1], b"!".as_ptr().cast(), 1) };
            std::thread::sleep(std::time::Duration::from_secs(600));
        });
        // SAFETY: leaves the child without running the parent's exit handlers.
        unsafe { libc::_exit(0) };
    }
    let mut byte = [0u8];
    // SAFETY: reads one byte into a valid buffer from the pipe's read end.
    assert_eq!(unsafe { libc::read(pipe[0], byte.as_mut_ptr().cast(), 1) }, 1);
    // SAFETY: `child` is our own unreaped child.
    unsafe {
        libc::kill(child, libc::SIGKILL);
    }
    let mut status = 0;
    // SAFETY: reaps our own child; `status` is a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);

    let mask = |text: &str| mask(text, name, table.segment(), child);

    let (code, out, err) = shmap(&["inspect", name]);
    assert_eq!(code, 0, "{err}");
    check("inspect.txt", &mask(&out));
    let (code, out, _) = shmap(&["inspect", name, "--json"]);
    assert_eq!(code, 0);
    check("inspect.json", &mask(&out));

    let (code, out, _) = shmap(&["stuck", name, "--threshold", "50ms"]);
    assert_eq!(code, 1, "stuck slots found: exit 1");
    check("stuck.txt", &mask(&out));
    let (code, out, _) = shmap(&["stuck", name, "--threshold", "50ms", "--json"]);
    assert_eq!(code, 1);
    check("stuck.json", &mask(&out));
    let (code, out, _) =
        shmap(&["watch", name, "--interval", "10ms", "--threshold", "1h", "--count", "2"]);
    assert_eq!(code, 1);
    check("watch.txt", &mask(&out));

    // The CLI never wrote: the dead holder's slot is still locked, and the next visit recovers
    // it (rolling the child's copy back: it was never written).
    assert_eq!(table.segment().recoveries(), Recoveries { total: 0, torn: 0 });
    table.visit(&sensor(2), AccessMode::AccessExist, |_, v, _| v.celsius += 1.0).unwrap();
    assert_eq!(table.get(&sensor(2)).unwrap().map(|r| r.celsius), Some(22.0));
    let (code, out, _) = shmap(&["stuck", name, "--threshold", "0s"]);
    assert_eq!((code, out.as_str()), (0, "nothing stuck (threshold 0ns)\n"));

    // Errors: a missing segment, and a file that is not a segment.
    let (code, _, err) = shmap(&["inspect", "/shmap-cli-test-never-created"]);
    assert_eq!(code, 2);
    check("missing.err", &err);
    let foreign = std::env::temp_dir().join(format!("shmap-cli-foreign-{}", std::process::id()));
    std::fs::write(&foreign, b"not a segment, just text").unwrap();
    let (code, _, err) = shmap(&["inspect", foreign.to_str().unwrap()]);
    std::fs::remove_file(&foreign).unwrap();
    assert_eq!(code, 2);
    check("foreign.err", &err.replace(foreign.to_str().unwrap(), "<file>"));
    let (code, _, err) = shmap(&["stuck"]);
    assert_eq!(code, 2);
    assert!(err.contains("<PATH>") && err.contains("Usage:"), "{err}");
    let (code, out, _) = shmap(&["stuck", "--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("--threshold <THRESHOLD>"), "{out}");
    a_fifo_is_refused_without_blocking();
}

/// `shmap inspect` on a cache: its settings and what it evicted and expired, besides the
/// table's slots; `shmap stuck` reads its slots like a table's.
fn cache_inspect() {
    let name = format!("/shmap-cli-cache-test-{}", std::process::id());
    let cache = shmap::ShmCache::<u64, u64>::options()
        .capacity(16)
        .default_ttl(std::time::Duration::from_secs(60))
        .max_entries(8)
        .open(&Backing::shm(&name))
        .unwrap();
    let _unlink = Unlink(name.clone());
    for k in 0..12 {
        cache.insert(&k, &(k * 10)).unwrap(); // the last 4 inserts evict
    }
    cache.insert_with_ttl(&100, &1, std::time::Duration::ZERO).unwrap();
    assert_eq!(cache.flush_expired(), 1);
    let mask = |text: &str| mask(text, &name, cache.segment(), -1);
    let (code, out, err) = shmap(&["inspect", &name]);
    assert_eq!(code, 0, "{err}");
    check("cache-inspect.txt", &mask(&out));
    let (code, out, _) = shmap(&["inspect", &name, "--json"]);
    assert_eq!(code, 0);
    check("cache-inspect.json", &mask(&out));
    let (code, out, _) = shmap(&["stuck", &name, "--threshold", "0s"]);
    assert_eq!((code, out.as_str()), (0, "nothing stuck (threshold 0ns)\n"));
}

/// Removes a segment's name when dropped (also when a check fails).
struct Unlink(String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = Table::unlink(&self.0);
    }
}

/// `shmap inspect FIFO` fails at once: opening a FIFO for reading must not wait for a writer.
fn a_fifo_is_refused_without_blocking() {
    use std::os::unix::ffi::OsStrExt;
    use std::time::{Duration, Instant};

    let fifo = std::env::temp_dir().join(format!("shmap-cli-fifo-{}", std::process::id()));
    let path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: `path` is a valid NUL-terminated string.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0, "mkfifo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_shmap"))
        .args(["inspect", fifo.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run shmap");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = child.wait_with_output().unwrap();
    std::fs::remove_file(&fifo).unwrap();
    let status = status.expect("`shmap inspect FIFO` ran for 10 s: killed");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

/// The CLI's UTC format, to mask the creation time.
fn shmap_cli_utc(time: std::time::SystemTime) -> String {
    let out = Command::new("date")
        .args(["-u", "-d"])
        .arg(format!("@{}", time.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()))
        .arg("+%Y-%m-%d %H:%M:%S UTC")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `shmap inspect /proc/<pid>/fd/<n>` reads a memfd table, which has no other name.
fn memfd_through_proc() {
    use std::os::fd::AsRawFd;
    let table =
        ShmHashTable::<u64, u64>::options().capacity(16).open(&Backing::memfd("cli")).unwrap();
    table.insert(&1, &10).unwrap();
    let n = table.segment().fd().unwrap().as_raw_fd();
    let path = format!("/proc/{}/fd/{n}", std::process::id());
    let (code, out, err) = shmap(&["inspect", &path]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("hash table") && out.contains("entries      1 "), "{out}");
}

/// A file-backed table truncated while `shmap watch` reads it: the command says so and exits
/// with status 3 instead of dying of SIGBUS.
fn truncated_under_watch() {
    let path = std::env::temp_dir().join(format!("shmap-cli-truncated-{}", std::process::id()));
    let table =
        ShmHashTable::<u64, u64>::options().capacity(1024).open(&Backing::file(&path)).unwrap();
    let mut watch = Command::new(env!("CARGO_BIN_EXE_shmap"))
        .args(["watch", path.to_str().unwrap(), "--interval", "5ms", "--threshold", "1h"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(4096).unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = watch.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(10), "watch still running");
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut watch.stderr.take().unwrap(), &mut err).unwrap();
    // Our own handle maps the file too: give the pages back before it writes on drop.
    let total = table.info().total_size;
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(total).unwrap();
    drop(table);
    let _ = std::fs::remove_file(&path);
    assert_eq!(status.code(), Some(3), "{status} {err}");
    assert!(err.contains("truncated while being read"), "{err}");
}

/// A SIGBUS that is not a read past a truncated segment (here one sent with kill) keeps its
/// default action: the command dies of it, not with the truncation message.
fn other_sigbus_keeps_its_default_action() {
    use std::os::unix::process::ExitStatusExt;
    let name = format!("/shmap-cli-sigbus-{}", std::process::id());
    let table =
        ShmHashTable::<u64, u64>::options().capacity(16).open(&Backing::shm(&name)).unwrap();
    let mut watch = Command::new(env!("CARGO_BIN_EXE_shmap"))
        .args(["watch", &name, "--interval", "5ms", "--threshold", "1h"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    // SAFETY: our own unreaped child.
    unsafe { libc::kill(watch.id() as i32, libc::SIGBUS) };
    let status = watch.wait().unwrap();
    let _ = table.destroy();
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status}");
}
