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

use shmap::{Monitor, Segment};

/// Exit status 3: the segment was truncated under the command (see the module documentation).
fn exit_with_a_message_on_sigbus() {
    extern "C" fn on_sigbus(_: libc::c_int) {
        const MESSAGE: &[u8] =
            b"shmap: the segment was truncated while being read (SIGBUS); it was not changed\n";
        // SAFETY: `write` and `_exit` are async-signal-safe; the buffer is a static.
        unsafe { libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len()) };
        // SAFETY: as above.
        unsafe { libc::_exit(3) };
    }
    // SAFETY: `sigaction` is plain data, for which all zeroes is a valid value (no flags, an
    // empty mask), filled in below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `action` is a valid, initialised sigaction; the old one is not asked for.
    let installed = unsafe { libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) };
    debug_assert_eq!(installed, 0);
}

fn main() -> ExitCode {
    exit_with_a_message_on_sigbus();
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
