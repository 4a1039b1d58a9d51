//! The command line, declared with clap's derive: `shmap COMMAND …`, with `--help` for each.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use shmap::Backing;

/// Inspect shmap segments (hash tables, rings, vectors) and find what is stuck in them,
/// without their Rust types and without changing them.
#[derive(Debug, Parser)]
#[command(name = "shmap", version, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

const AFTER_HELP: &str = "\
PATH is a POSIX shared-memory name (/name) or a file path (anything with another '/'; --file
forces a file); /proc/PID/fd/N reads a memfd segment another process holds.
Durations: 100us, 500ms, 2s, 1.5s, 1m, 1h.
Exit status: 0 nothing stuck (or done), 1 something stuck, 2 error or refusal, 3 the segment
was truncated while being read.";

/// What to do.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the header, the structure's state (slots, or a ring's positions, holders and
    /// counters) and the attached processes.
    Inspect {
        #[command(flatten)]
        target: Target,
        /// One JSON object (see `shmap schema inspect`).
        #[arg(long)]
        json: bool,
    },
    /// Report slots or cells locked for at least the threshold, and everything a dead
    /// process holds at once; exit 1 if there is any.
    Stuck {
        #[command(flatten)]
        target: Target,
        /// How long a lock must be held to count as stuck.
        #[arg(long, default_value = "2s", value_parser = duration)]
        threshold: Duration,
        /// One JSON array (see `shmap schema stuck`).
        #[arg(long)]
        json: bool,
    },
    /// The same as `stuck`, every interval, COUNT times or until interrupted.
    Watch {
        #[command(flatten)]
        target: Target,
        /// Time between polls.
        #[arg(long, default_value = "1s", value_parser = duration)]
        interval: Duration,
        /// How long a lock must be held to count as stuck.
        #[arg(long, default_value = "2s", value_parser = duration)]
        threshold: Duration,
        /// Polls before exiting (default: for ever).
        #[arg(long)]
        count: Option<u64>,
        /// One JSON array per poll, one per line (see `shmap schema stuck`).
        #[arg(long)]
        json: bool,
    },
    /// List the shmap segments in the given folders (default: /dev/shm), with kind, layouts,
    /// capacity, size and attached processes; files that are not shmap segments are skipped.
    Ls {
        /// Folders to list (not recursively).
        dirs: Vec<PathBuf>,
        /// One JSON array (see `shmap schema ls`).
        #[arg(long)]
        json: bool,
    },
    /// Remove a segment's name. Refused while live processes are attached (they would keep
    /// using a segment nobody can open any more) unless --force; processes already attached
    /// keep their mapping either way.
    Rm {
        #[command(flatten)]
        target: Target,
        /// Remove it even if live processes are attached.
        #[arg(long)]
        force: bool,
    },
    /// Print the JSON Schema of a command's --json output.
    Schema {
        /// The command.
        #[arg(value_enum)]
        command: SchemaOf,
    },
}

/// The commands with a JSON output (`watch` prints `stuck`'s, once per poll).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SchemaOf {
    Inspect,
    Stuck,
    Ls,
}

/// The segment a command works on.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// The segment: /name, a file path, or /proc/PID/fd/N.
    path: String,
    /// Read PATH as a file path even if it looks like a shared-memory name.
    #[arg(long)]
    file: bool,
}

impl Target {
    /// `/name` is a POSIX shared-memory name; a path with another `/` (or `--file`) is a file.
    pub(crate) fn backing(&self) -> Backing {
        let shm_name = self.path.starts_with('/') && !self.path[1..].contains('/');
        if shm_name && !self.file { Backing::shm(&self.path) } else { Backing::file(&self.path) }
    }
}

/// `500ms`, `2s`, `1.5s`, `1m`, `1h`, `100us`.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("not a duration: {text}"))?;
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" | "" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("unknown unit in {text}: use us, ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("not a duration: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Command, String> {
        let argv = std::iter::once("shmap").chain(line.split_whitespace());
        Cli::try_parse_from(argv).map(|c| c.command).map_err(|e| e.to_string())
    }

    #[test]
    fn the_declaration_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn commands_and_options() {
        let Command::Stuck { target, threshold, json } =
            args("stuck /players --threshold 500ms --json").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            (target.backing(), threshold, json),
            (Backing::shm("/players"), Duration::from_millis(500), true)
        );
        let Command::Watch { target, interval, threshold, count, json } =
            args("watch /var/lib/t.shm --interval 2s --count 3").unwrap()
        else {
            panic!()
        };
        assert_eq!(target.backing(), Backing::file("/var/lib/t.shm"));
        assert_eq!(
            (interval, threshold, count, json),
            (Duration::from_secs(2), Duration::from_secs(2), Some(3), false)
        );
        let Command::Inspect { target, .. } = args("inspect /t.shm --file").unwrap() else {
            panic!()
        };
        assert_eq!(target.backing(), Backing::file("/t.shm"));
        let Command::Ls { dirs, json } = args("ls /dev/shm /tmp --json").unwrap() else { panic!() };
        assert_eq!((dirs, json), (vec![PathBuf::from("/dev/shm"), PathBuf::from("/tmp")], true));
        assert!(matches!(args("rm /x --force").unwrap(), Command::Rm { force: true, .. }));
        assert!(args("inspect").unwrap_err().contains("<PATH>"));
        assert!(args("frob /x").unwrap_err().contains("unrecognized subcommand"));
        assert!(args("inspect /x --bogus").unwrap_err().contains("--bogus"));
        assert!(args("stuck /x --threshold 3d").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn durations() {
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(duration("3d").is_err() && duration("x").is_err() && duration("-1s").is_err());
    }
}
