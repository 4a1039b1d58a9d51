//! Command-line parsing: `shmap COMMAND PATH [OPTIONS]`, by hand (three commands and four
//! options do not need a parser crate).

use std::time::Duration;

use shmap::Backing;

/// What to do.
#[derive(Debug, PartialEq)]
pub(crate) enum Command {
    /// Print the header, slot-state counts and attached processes.
    Inspect,
    /// Report slots locked for at least the threshold (and dead holders at once).
    Stuck { threshold: Duration },
    /// Poll every interval and report, `count` times (or for ever).
    Watch { interval: Duration, threshold: Duration, count: Option<u64> },
}

/// A parsed command line.
#[derive(Debug, PartialEq)]
pub(crate) struct Args {
    pub(crate) command: Command,
    pub(crate) backing: Backing,
    pub(crate) json: bool,
}

pub(crate) const USAGE: &str = "\
usage: shmap inspect PATH [--json]
       shmap stuck PATH [--threshold 2s] [--json]
       shmap watch PATH [--interval 1s] [--threshold 2s] [--count N] [--json]

PATH is a POSIX shared-memory name (/name) or a file path (anything with another '/';
--file forces a file). Durations: 500ms, 2s, 1.5s, 1m, 1h.
Exit status: 0 nothing stuck, 1 stuck slots found, 2 error, 3 the segment was truncated
while being read.";

/// Parses the arguments after the program name.
pub(crate) fn parse(args: &[String]) -> Result<Args, String> {
    let (command, rest) = args.split_first().ok_or("missing command")?;
    let (mut path, mut json, mut file) = (None, false, false);
    let (mut interval, mut threshold, mut count) =
        (Duration::from_secs(1), Duration::from_secs(2), None);
    let mut i = 0;
    while i < rest.len() {
        let value = || rest.get(i + 1).ok_or_else(|| format!("{} needs a value", rest[i]));
        match rest[i].as_str() {
            "--json" => json = true,
            "--file" => file = true,
            "--threshold" => {
                threshold = duration(value()?)?;
                i += 1;
            }
            "--interval" => {
                interval = duration(value()?)?;
                i += 1;
            }
            "--count" => {
                count = Some(
                    value()?
                        .parse()
                        .map_err(|_| format!("--count: not a number: {}", rest[i + 1]))?,
                );
                i += 1;
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            p if path.is_none() => path = Some(p.to_owned()),
            extra => return Err(format!("unexpected argument {extra}")),
        }
        i += 1;
    }
    let path = path.ok_or("missing PATH")?;
    let command = match command.as_str() {
        "inspect" => Command::Inspect,
        "stuck" => Command::Stuck { threshold },
        "watch" => Command::Watch { interval, threshold, count },
        other => return Err(format!("unknown command {other}")),
    };
    Ok(Args { command, backing: backing(&path, file), json })
}

/// `/name` is a POSIX shared-memory name; a path with another `/` (or `--file`) is a file.
fn backing(path: &str, file: bool) -> Backing {
    let shm_name = path.starts_with('/') && !path[1..].contains('/');
    if shm_name && !file { Backing::shm(path) } else { Backing::file(path) }
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

    fn args(line: &str) -> Result<Args, String> {
        parse(&line.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
    }

    #[test]
    fn commands_and_options() {
        let a = args("stuck /players --threshold 500ms --json").unwrap();
        assert_eq!(a.command, Command::Stuck { threshold: Duration::from_millis(500) });
        assert_eq!((a.backing, a.json), (Backing::shm("/players"), true));
        let a = args("watch /var/lib/t.shm --interval 2s --count 3").unwrap();
        assert_eq!(
            a.command,
            Command::Watch {
                interval: Duration::from_secs(2),
                threshold: Duration::from_secs(2),
                count: Some(3)
            }
        );
        assert_eq!(a.backing, Backing::file("/var/lib/t.shm"));
        assert_eq!(args("inspect /t.shm --file").unwrap().backing, Backing::file("/t.shm"));
        assert!(args("inspect").unwrap_err().contains("PATH"));
        assert!(args("frob /x").unwrap_err().contains("unknown command"));
        assert!(args("inspect /x --bogus").unwrap_err().contains("unknown option"));
        assert!(args("stuck /x --threshold").unwrap_err().contains("needs a value"));
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
