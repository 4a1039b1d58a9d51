//! A rate limiter shared by several worker processes: a `ShmCache` of request counts whose
//! entries expire with their window.
//!
//! ```text
//! cargo run --release -p shmap-examples --bin rate_limit [-- WORKERS REQUESTS CLIENTS]
//! ```
//!
//! The parent creates the cache (a window of 2 s per client, at most `LIMIT` requests in it)
//! and starts `WORKERS` copies of this program (default 4). Each sends `REQUESTS` requests
//! (default 20,000) for clients drawn from `CLIENTS` (default 500), asks the limiter whether
//! to serve each, and tallies per client, in a plain table, how many it sent and how many were
//! allowed. The parent then checks the limit across all the processes: every client was
//! allowed exactly `min(LIMIT, requests it sent)`. It waits for the windows to expire, shows
//! that every client is allowed again, and prints the cache's statistics.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use shmap::{AccessMode, Backing, ShmCache, ShmHashTable};

/// Requests a client may make in one window.
const LIMIT: u32 = 50;
/// The window: a client's count expires this long after its first request in it.
const WINDOW: Duration = Duration::from_secs(2);

type Limiter = ShmCache<u64, u32>;
/// Per client: requests sent (high 32 bits) and allowed (low 32 bits).
type Tally = ShmHashTable<u64, u64>;

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

/// Removes the segments' names when dropped, so a failed run leaves nothing in /dev/shm.
struct Unlink(Vec<String>);

impl Drop for Unlink {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Tally::unlink(name);
        }
    }
}

/// Whether `client` may make one more request now.
fn allow(limiter: &Limiter, client: u64) -> Result<bool, shmap::TableError> {
    // One locked increment; a new or expired window starts again from zero.
    let n = limiter.visit(&client, AccessMode::CreateIfMiss, |n, _new_window| {
        *n += 1;
        *n
    })?;
    Ok(n <= Some(LIMIT))
}

fn parent(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let workers = number(args, 0, 4)?;
    let requests = number(args, 1, 20_000)?;
    let clients = number(args, 2, 500)?.max(1);
    let (limiter_name, tally_name) = (
        format!("/shmap-rate-limit-{}", std::process::id()),
        format!("/shmap-rate-tally-{}", std::process::id()),
    );
    let _unlink = Unlink(vec![limiter_name.clone(), tally_name.clone()]);
    let limiter = Limiter::options()
        .capacity(4 * clients as usize)
        .default_ttl(WINDOW)
        .max_entries(3 * clients)
        .open(&Backing::shm(&limiter_name))?;
    let tally = Tally::open_or_create(&tally_name, 2 * clients as usize)?;
    println!("limiter {limiter_name}: {}; {LIMIT} requests per window", limiter.settings());

    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    for id in 0..workers {
        let args = [
            "worker",
            &limiter_name,
            &tally_name,
            &id.to_string(),
            &requests.to_string(),
            &clients.to_string(),
        ];
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

    let (mut sent, mut allowed, mut limited) = (0u64, 0u64, 0u64);
    for entry in tally.iter() {
        let (client, t) = entry?;
        let (s, a) = (t >> 32, t & 0xffff_ffff);
        if a != s.min(u64::from(LIMIT)) {
            return Err(format!("client {client}: sent {s}, allowed {a}, limit {LIMIT}").into());
        }
        sent += s;
        allowed += a;
        limited += u64::from(s > u64::from(LIMIT));
    }
    println!(
        "parent: {sent} requests, {allowed} allowed; {limited} clients reached the limit, and \
         none got past it across the {workers} processes"
    );

    std::thread::sleep(WINDOW + Duration::from_millis(50));
    let reopened = (0..clients).filter(|&c| allow(&limiter, c).unwrap_or(false)).count();
    println!("after the window: {reopened} of {clients} clients allowed again");
    println!("limiter: {}", limiter.stats());
    if reopened as u64 != clients {
        return Err("expired windows did not start afresh".into());
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
    let limiter = Limiter::open(args.first().ok_or("worker: missing limiter name")?)?;
    let tally = Tally::open(args.get(1).ok_or("worker: missing tally name")?)?;
    let id = number(args, 2, 0)?;
    let requests = number(args, 3, 20_000)?;
    let clients = number(args, 4, 500)?.max(1);
    let mut rng = id + 1;
    let (mut allowed, start) = (0u64, std::time::Instant::now());
    for _ in 0..requests {
        // A skewed mix: half the requests come from a tenth of the clients.
        let r = splitmix(&mut rng);
        let client = if r & 1 == 0 { (r >> 1) % (clients / 10).max(1) } else { (r >> 1) % clients };
        let ok = allow(&limiter, client)?;
        allowed += u64::from(ok);
        tally
            .visit(&client, AccessMode::CreateIfMiss, |_, t, _| *t += (1 << 32) | u64::from(ok))?;
    }
    let elapsed = start.elapsed();
    println!(
        "worker {id} (pid {}): {requests} requests, {allowed} allowed, {:.0} ns per request \
         (the limiter's decision and the tally)",
        std::process::id(),
        elapsed.as_nanos() as f64 / requests.max(1) as f64,
    );
    Ok(())
}
