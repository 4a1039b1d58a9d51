//! The `shmap` command on a real segment: a table with a slot held by a process that was
//! SIGKILLed inside its visit. Outputs are compared with `tests/golden/*` after masking what
//! varies between runs (name, pids, owner ids, uid, times, ids). Regenerate the golden files
//! with `SHMAP_BLESS=1 cargo test -p shmap-cli --test cli` and read the diff.
//!
//! No test harness (`harness = false`): the process is single-threaded when it forks.

use std::path::Path;
use std::process::Command;

use shmap::segment::Recoveries;
use shmap::{AccessMode, Backing, ShmHashTable};

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
        let stop = rest.find(end).unwrap_or(rest.len());
        out.push_str(placeholder);
        rest = &rest[stop..];
    }
    out.push_str(rest);
    out
}

fn check(golden: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(golden);
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

fn main() {
    let name = format!("/shmap-cli-test-{}", std::process::id());
    let result = std::panic::catch_unwind(|| run(&name));
    let _ = ShmHashTable::<u64, u64>::unlink(&name);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    memfd_through_proc();
    truncated_under_watch();
    other_sigbus_keeps_its_default_action();
    println!("cli: inspect, stuck, watch and errors match their golden outputs");
}

fn run(name: &str) {
    let table = ShmHashTable::<u64, u64>::options()
        .capacity(16)
        .undo_records(true)
        .open(&Backing::shm(name))
        .unwrap();
    for k in 1..=3u64 {
        table.visit(&k, AccessMode::CreateIfMiss, |_, v, _| *v = k * 10).unwrap();
    }

    // A child locks key 2 and is killed inside its visitor.
    let mut pipe = [0; 2];
    // SAFETY: `pipe` is a valid array of two descriptors for pipe(2) to fill.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    // SAFETY: this test has no harness and no other thread, so the child may run anything.
    let child = unsafe { libc::fork() };
    if child == 0 {
        let t = ShmHashTable::<u64, u64>::open(name).unwrap();
        let _ = t.visit(&2, AccessMode::AccessExist, |_, v, _| {
            *v = 999;
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

    let info = table.info();
    let owners: Vec<String> =
        table.segment().attached_processes().iter().map(|(o, _)| o.get().to_string()).collect();
    let mask = |text: &str| {
        let mut t = text.replace(name, "<name>");
        t = t.replace(&format!("{:#018x}", info.segment_id), "<segment-id>");
        t = t.replace(&shmap_cli_utc(info.created_at), "<created>");
        t = mask_number(
            &t,
            &(info.created_at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).to_string(),
            "<created>",
        );
        t = t.replace(&format!("(uid {})", info.creator_uid), "(uid <uid>)");
        t = t
            .replace(&format!("\"creator_uid\":{}", info.creator_uid), "\"creator_uid\":\"<uid>\"");
        // Owner ids first: a small owner id may read like a pid, and pids like owner ids.
        for owner in &owners {
            t = t.replace(&format!("owner {owner:<5}"), "owner <owner>");
            t = t.replace(&format!("owner {owner})"), "owner <owner>)");
            t = t.replace(&format!("\"owner\":{owner},"), "\"owner\":\"<owner>\",");
        }
        t = mask_number(&t, &std::process::id().to_string(), "<pid>");
        t = mask_number(&t, &child.to_string(), "<killed-pid>");
        // Column padding depends on how many digits the masked numbers had.
        for placeholder in ["<pid>", "<killed-pid>", "<owner>"] {
            t = squeeze_spaces_after(&t, placeholder);
        }
        t = mask_after(&t, " for ", ',', "<duration>");
        t = mask_after(&t, "\"locked_for_ms\":", ',', "<ms>");
        // `watch` headers: `-- 2026-11-23 08:55:33 UTC --` (which may equal the creation time).
        t.lines()
            .map(|line| {
                if line.starts_with("-- ") && line.ends_with(" --") { "-- <time> --" } else { line }
            })
            .fold(String::new(), |out, line| out + line + "\n")
    };

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
    table.visit(&2, AccessMode::AccessExist, |_, v, _| *v += 1).unwrap();
    assert_eq!(table.get(&2).unwrap(), Some(21));
    let (code, out, _) = shmap(&["stuck", name, "--threshold", "0s"]);
    assert_eq!((code, out.as_str()), (0, "no stuck slots (threshold 0ns)\n"));

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
    assert!(err.contains("missing PATH") && err.contains("usage:"), "{err}");
    a_fifo_is_refused_without_blocking();
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
