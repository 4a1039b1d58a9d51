//! The main example: one table of counters shared by several real processes.
//!
//! ```text
//! cargo run --release -p shmap-examples --bin counter [-- WORKERS INCREMENTS KEYS]
//! ```
//!
//! The parent creates a POSIX shared-memory table and starts `WORKERS` copies of this program
//! (default 4). Each opens the table by name, increments randomly chosen counters
//! `INCREMENTS` times (default 100,000) over `KEYS` keys (default 1,000) with
//! `visit(CreateIfMiss)`, reads a few back with the lock-free `get`, and prints what it did.
//! The parent then walks the table with `travel`, checks that every increment is there, and
//! removes the table's name.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use shmap::{AccessMode, ShmHashTable, Visited};

type Counters = ShmHashTable<u64, u64>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("worker") => worker(&args[2..]),
        _ => parent(&args[1..]),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn number(args: &[String], i: usize, default: u64) -> Result<u64, String> {
    args.get(i).map_or(Ok(default), |s| s.parse().map_err(|_| format!("not a number: {s}")))
}

/// Removes the table's name when dropped, so a failed run leaves nothing in /dev/shm.
struct Unlink<'a>(&'a str);

impl Drop for Unlink<'_> {
    fn drop(&mut self) {
        let _ = Counters::unlink(self.0);
    }
}

fn parent(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let workers = number(args, 0, 4)?;
    let increments = number(args, 1, 100_000)?;
    let keys = number(args, 2, 1_000)?.max(1);
    let name = format!("/shmap-counter-{}", std::process::id());
    let table = Counters::open_or_create(&name, (keys * 2) as usize)?;
    let _unlink = Unlink(&name);
    let info = table.info();
    println!(
        "table {name}: {} slots of {} bytes, created by pid {}",
        info.capacity, info.slot_size, info.creator_pid
    );

    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for id in 0..workers {
        let args = ["worker", &name, &id.to_string(), &increments.to_string(), &keys.to_string()];
        children.push(Command::new(&exe).args(args).stdout(Stdio::piped()).spawn()?);
    }
    for mut child in children {
        let stdout = child.stdout.take().expect("stdout is piped");
        for line in BufReader::new(stdout).lines() {
            println!("{}", line?);
        }
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a worker failed: {status}").into());
        }
    }

    let (mut total, mut count, mut min, mut max) = (0, 0, u64::MAX, 0);
    let outcome = table.travel(|_slot, _key, n| {
        total += *n;
        count += 1;
        min = min.min(*n);
        max = max.max(*n);
    })?;
    if !outcome.is_completed() {
        return Err(format!("travel did not complete: {outcome:?}").into());
    }
    let expected = workers * increments;
    println!(
        "parent: {count} keys hold {total} increments (expected {expected}); \
         per key min {min}, max {max}"
    );
    if total != expected {
        return Err(format!("lost increments: {total} != {expected}").into());
    }
    Ok(())
}

/// splitmix64: a fixed, fast stream of well-mixed numbers.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn worker(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let name = args.first().ok_or("worker: missing table name")?;
    let id = number(args, 1, 0)?;
    let increments = number(args, 2, 100_000)?;
    let keys = number(args, 3, 1_000)?.max(1);
    let table = Counters::open(name)?;

    let mut rng = id + 1;
    let mut created = 0;
    let start = Instant::now();
    for _ in 0..increments {
        let key = splitmix(&mut rng) % keys;
        if table.visit(&key, AccessMode::CreateIfMiss, |_slot, n, _is_new| *n += 1)?
            == Visited::Created
        {
            created += 1;
        }
    }
    let elapsed = start.elapsed();
    let sample = table.get(&(id % keys))?.unwrap_or(0);
    println!(
        "worker {id} (pid {}): {increments} increments in {:.1} ms ({:.0} ns each), \
         created {created} keys first; key {} reads {sample} so far",
        std::process::id(),
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_nanos() as f64 / increments.max(1) as f64,
        id % keys,
    );
    Ok(())
}
