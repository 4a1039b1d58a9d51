//! `shmap`: inspect shmap segments and find stuck slots, without knowing their Rust types.
//!
//! ```text
//! shmap inspect /players            the header, slot states, attached processes
//! shmap stuck /players --threshold 2s   slots held for 2 s or more (dead holders at once)
//! shmap watch /players --interval 1s    the same, every second
//! ```
//!
//! Every command opens the segment with `Segment::inspect`: read-only, validated for
//! consistency but not against any type, and without registering in the segment's process
//! table, so it never changes what it looks at. `--json` prints one JSON value per line.
//!
//! A named segment can be truncated while the command reads it (by anyone who may write to its
//! file), and the next read past the new end faults with `SIGBUS`: the command then says so and
//! exits with status 3 instead of dying of the signal.

mod args;
mod json;
mod render;

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};

use shmap::{Monitor, Segment};

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
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() || argv.iter().any(|a| a == "-h" || a == "--help" || a == "help") {
        println!("{}", args::USAGE);
        return ExitCode::SUCCESS;
    }
    let args = match args::parse(&argv) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("shmap: {e}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    let segment = match Segment::inspect(&args.backing) {
        Ok(segment) => segment,
        Err(e) => {
            eprintln!("shmap: {e}");
            return ExitCode::from(2);
        }
    };
    exit_with_a_message_on_sigbus(segment.address_range());
    match run(&args, &segment) {
        Ok(found_stuck) => ExitCode::from(u8::from(found_stuck)),
        Err(e) => {
            eprintln!("shmap: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the command; `Ok(true)` if stuck slots were found.
fn run(args: &args::Args, segment: &Segment) -> Result<bool, String> {
    let mut out = std::io::stdout().lock();
    let mut print = |text: String| {
        out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| e.to_string())
    };
    match args.command {
        args::Command::Inspect => {
            print(render::inspect(segment, args.json))?;
            Ok(false)
        }
        args::Command::Stuck { threshold } => {
            let mut monitor = monitor(segment)?;
            // The first poll starts the clock on every lock held now; after the threshold, the
            // second reports those still held by the same lock, and every dead holder.
            let mut reports = monitor.poll(threshold);
            if !threshold.is_zero() {
                std::thread::sleep(threshold);
                reports = monitor.poll(threshold);
            }
            print(render::stuck(&reports, threshold, args.json))?;
            Ok(!reports.is_empty())
        }
        args::Command::Watch { interval, threshold, count } => {
            let mut monitor = monitor(segment)?;
            let mut found = false;
            for round in 0..count.unwrap_or(u64::MAX) {
                if round > 0 {
                    std::thread::sleep(interval);
                }
                let reports = monitor.poll(threshold);
                found |= !reports.is_empty();
                if !args.json {
                    print(format!("-- {} --\n", render::utc(std::time::SystemTime::now())))?;
                }
                print(render::stuck(&reports, threshold, args.json))?;
            }
            Ok(found)
        }
    }
}

fn monitor(segment: &Segment) -> Result<Monitor<'_>, String> {
    if !render::is_table(segment) {
        return Err(format!(
            "{} holds a {}, not a hash table",
            segment.backing(),
            segment.info().kind
        ));
    }
    Monitor::for_segment(segment)
        .ok_or_else(|| "the hash table's geometry is inconsistent".to_owned())
}
