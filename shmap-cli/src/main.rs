//! `shmap`: inspect shmap segments and find what is stuck in them, without knowing their Rust
//! types.
//!
//! ```text
//! shmap inspect /players                 the header, slot states (or a ring's positions and
//!                                        holders), attached processes
//! shmap stuck /players --threshold 2s    slots or cells held for 2 s or more (dead holders at
//!                                        once), keys and values decoded by their layout
//! shmap watch /players --interval 1s     the same, every second
//! shmap ls [DIR...]                      every shmap segment in /dev/shm (or the folders)
//! shmap rm /players [--force]            remove a name no live process is attached to
//! shmap schema inspect|stuck|ls          the JSON Schema of a command's --json output
//! ```
//!
//! Every command but `rm` opens segments with `Segment::inspect`: read-only, validated for
//! consistency but not against any type, and without registering in the segment's process
//! table, so it never changes what it looks at. `--json` prints one JSON value per line, in
//! the shape `shmap schema COMMAND` describes (checked in under `shmap-cli/schema/`).
//!
//! A named segment can be truncated while the command reads it (by anyone who may write to its
//! file), and the next read past the new end faults with `SIGBUS`: the command then says so and
//! exits with status 3 instead of dying of the signal.

mod args;
mod decode;
mod poll;
mod render;
mod report;

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser;
use shmap::{Backing, OpenErrorKind, Segment};

use crate::args::{Cli, Command, SchemaOf};
use crate::report::{Inspect, Listed, Stuck};

/// The addresses of the segment's mapping, for the `SIGBUS` handler (0..0 until it is mapped).
static MAPPED: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// Exit status 3: the segment was truncated under the command (see the module documentation).
/// Only for a fault at a nonexistent address inside the segment's mapping; any other `SIGBUS`
/// (a bug, a `kill -BUS`) keeps its default action.
fn exit_with_a_message_on_sigbus(mapped: std::ops::Range<usize>) {
    extern "C" fn on_sigbus(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
        let info = unsafe { &*info };
        // SAFETY: for SIGBUS the union holds the fault's address (garbage for a sent signal,
        // whose code is not BUS_ADRERR, and which is then not looked at).
        let addr = unsafe { info.si_addr() } as usize;
        let code = info.si_code;
        // Relaxed: written once, before the handler could run for this mapping.
        let range = MAPPED[0].load(Ordering::Relaxed)..MAPPED[1].load(Ordering::Relaxed);
        if code == libc::BUS_ADRERR && range.contains(&addr) {
            const MESSAGE: &[u8] =
                b"shmap: the segment was truncated while being read (SIGBUS); it was not changed\n";
            // SAFETY: `write` and `_exit` are async-signal-safe; the buffer is a static.
            unsafe { libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len()) };
            // SAFETY: as above.
            unsafe { libc::_exit(3) };
        }
        // Not ours: the default action, at once (a fault re-raises on return; a sent signal
        // is raised again here).
        // SAFETY: `signal` and `raise` are async-signal-safe.
        unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
        // SAFETY: as above.
        unsafe { libc::raise(libc::SIGBUS) };
    }
    // Relaxed: read by the handler, which runs in this thread after this store.
    MAPPED[0].store(mapped.start, Ordering::Relaxed);
    MAPPED[1].store(mapped.end, Ordering::Relaxed);
    // SAFETY: `sigaction` is plain data, for which all zeroes is a valid value (no flags, an
    // empty mask), filled in below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = on_sigbus;
    action.sa_sigaction = handler as libc::sighandler_t;
    action.sa_flags = libc::SA_SIGINFO;
    // SAFETY: `action` is a valid, initialised sigaction; the old one is not asked for.
    let installed = unsafe { libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) };
    debug_assert_eq!(installed, 0);
}

fn main() -> ExitCode {
    let cli = Cli::parse(); // usage errors: clap's message and exit status 2
    match run(cli.command) {
        Ok(found_stuck) => ExitCode::from(u8::from(found_stuck)),
        Err(e) => {
            eprintln!("shmap: {e}");
            ExitCode::from(2)
        }
    }
}

/// Opens `backing` read-only, for a command that reads it.
fn inspect(backing: &Backing) -> Result<Segment, String> {
    let segment = Segment::inspect(backing).map_err(|e| e.to_string())?;
    exit_with_a_message_on_sigbus(segment.address_range());
    Ok(segment)
}

fn print(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| e.to_string())
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("reports serialise") + "\n"
}

/// Runs the command; `Ok(true)` if something stuck was found.
fn run(command: Command) -> Result<bool, String> {
    match command {
        Command::Inspect { target, json: as_json } => {
            let segment = inspect(&target.backing())?;
            let report = Inspect::of(&segment);
            print(&if as_json { json(&report) } else { render::inspect(&report) })?;
            Ok(false)
        }
        Command::Stuck { target, threshold, json: as_json } => {
            let segment = inspect(&target.backing())?;
            let mut poller = poll::Poller::new(&segment)?;
            // The first poll starts the clock on every lock held now; after the threshold, the
            // second reports those still held by the same lock, and every dead holder.
            let mut reports = poller.poll(threshold);
            if !threshold.is_zero() {
                std::thread::sleep(threshold);
                reports = poller.poll(threshold);
            }
            print(&stuck_text(&reports, threshold, as_json))?;
            Ok(!reports.is_empty())
        }
        Command::Watch { target, interval, threshold, count, json: as_json } => {
            let segment = inspect(&target.backing())?;
            let mut poller = poll::Poller::new(&segment)?;
            let mut found = false;
            for round in 0..count.unwrap_or(u64::MAX) {
                if round > 0 {
                    std::thread::sleep(interval);
                }
                let reports = poller.poll(threshold);
                found |= !reports.is_empty();
                if !as_json {
                    print(&format!("-- {} --\n", render::utc(std::time::SystemTime::now())))?;
                }
                print(&stuck_text(&reports, threshold, as_json))?;
            }
            Ok(found)
        }
        Command::Ls { dirs, json: as_json } => {
            let dirs = if dirs.is_empty() { vec![DEV_SHM.into()] } else { dirs };
            let mut entries = Vec::new();
            for dir in &dirs {
                entries.extend(list(dir)?);
            }
            print(&if as_json { json(&entries) } else { render::listing(&entries) })?;
            Ok(false)
        }
        Command::Rm { target, force } => {
            remove(&target.backing(), force)?;
            Ok(false)
        }
        Command::Schema { command } => {
            print(&schema(command))?;
            Ok(false)
        }
    }
}

fn stuck_text(reports: &[Stuck], threshold: std::time::Duration, as_json: bool) -> String {
    if as_json { json(&reports) } else { render::stuck(reports, threshold) }
}

/// Where POSIX shared-memory names live.
const DEV_SHM: &str = "/dev/shm";

/// The shmap segments in `dir`, by name: other files are skipped, and so are a creator's
/// unpublished temporary files.
fn list(dir: &std::path::Path) -> Result<Vec<Listed>, String> {
    let read = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut names: Vec<_> = read.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    names.sort();
    let shm = dir == std::path::Path::new(DEV_SHM);
    let mut listed = Vec::new();
    for name in names {
        let Some(text) = name.to_str() else { continue };
        if text.starts_with(".shmap-tmp") {
            continue;
        }
        let path = dir.join(&name);
        let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
        if !meta.file_type().is_file() {
            continue;
        }
        let backing = if shm { Backing::shm(format!("/{text}")) } else { Backing::file(&path) };
        match Segment::inspect(&backing) {
            Ok(segment) => {
                exit_with_a_message_on_sigbus(segment.address_range());
                listed.push(Listed::of(&segment, meta.len()));
            }
            Err(e) => match e.kind {
                // Not a shmap segment (or too short to say): not ours to list.
                OpenErrorKind::NotShmap { .. } | OpenErrorKind::NotRegularFile => {}
                OpenErrorKind::Truncated { found, .. } if found < 8 => {}
                kind => listed.push(Listed::unreadable(
                    backing.to_string(),
                    meta.len(),
                    kind.to_string(),
                )),
            },
        }
    }
    Ok(listed)
}

/// `shmap rm`: removes the name unless live processes are attached (or `force`).
fn remove(backing: &Backing, force: bool) -> Result<(), String> {
    if backing.to_string().starts_with("/proc/") {
        return Err(format!(
            "{backing} is a descriptor, not a name: a memfd segment lives until its last descriptor and mapping close"
        ));
    }
    let segment = inspect(backing)?;
    let live: Vec<String> = segment
        .attached_processes()
        .into_iter()
        .filter(|(_, p)| p.liveness() != shmap::Liveness::Dead)
        .map(|(_, p)| p.pid.to_string())
        .collect();
    drop(segment);
    if !live.is_empty() && !force {
        return Err(format!(
            "refusing to remove {backing}: {} live process(es) attached (pid {}); --force removes \
             the name anyway (they keep their mapping, and nobody can open it again)",
            live.len(),
            live.join(", ")
        ));
    }
    Segment::unlink(backing).map_err(|e| e.to_string())?;
    print(&format!("removed {backing}\n"))
}

/// The JSON Schema of `command`'s `--json` output.
fn schema(command: SchemaOf) -> String {
    let schema = match command {
        SchemaOf::Inspect => schemars::schema_for!(Inspect),
        SchemaOf::Stuck => schemars::schema_for!(Vec<Stuck>),
        SchemaOf::Ls => schemars::schema_for!(Vec<Listed>),
    };
    serde_json::to_string_pretty(&schema).expect("schemas serialise") + "\n"
}
