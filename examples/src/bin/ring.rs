//! A producer process feeding two consumer processes through a ring in shared memory.
//!
//! ```text
//! cargo run --release -p shmap-examples --bin ring [-- JOBS CONSUMERS]
//! ```
//!
//! The parent creates an `SpmcRing` of jobs (through the `#[shm_ring]` singleton `Jobs`) and a [`ShmVector`] of reports, starts
//! `CONSUMERS` copies of this program (default 2) and then produces `JOBS` jobs (default
//! 1,000,000), followed by one stop job per consumer. Each consumer takes jobs until it takes a
//! stop job, adds up what it did, and appends its report to the vector. The parent prints the
//! reports and checks that every job was done exactly once: the counts add up to `JOBS` and the
//! checksums to the checksum of every job id.

use std::process::{Command, ExitCode};
use std::time::Instant;

use shmap::{ShmValue, ShmVector, shm_ring};

/// One unit of work. Derived types are checked at compile time to be safe in shared memory.
#[derive(ShmValue, Clone, Copy, Debug)]
#[repr(C)]
struct Job {
    id: u64,
    /// How much work: the consumer spins this many rounds of its checksum.
    weight: u32,
    /// Non-zero for the last job a consumer takes (`bool` has invalid bit patterns).
    stop: u32,
}

/// What a consumer did, appended to the vector when it stops.
#[derive(ShmValue, Clone, Copy, Debug)]
#[repr(C)]
struct Report {
    consumer: u32,
    pid: u32,
    jobs: u64,
    id_sum: u64,
    first_id: u64,
    last_id: u64,
    busy_micros: u64,
}

/// The job ring, reached by every process through `Jobs::get()` and created by whichever comes
/// first. A consumer waits at most 30 s for a job: the producer is gone by then.
#[shm_ring(capacity = 4096, path = "/shmap-example-ring-jobs", kind = "spmc", timeout_ms = 30000)]
struct Jobs(Job);

const REPORTS: &str = "/shmap-example-ring-reports";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("consumer") => consumer(&args[2..]),
        _ => producer(&args[1..]),
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

fn producer(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let jobs = number(args, 0, 1_000_000)?;
    let consumers = number(args, 1, 2)?.clamp(1, 32) as u32;
    // Segments left by an interrupted run would hold its jobs.
    let _ = Jobs::destroy();
    let _ = ShmVector::<Report>::unlink(REPORTS);
    let ring = Jobs::try_get()?;
    let reports = ShmVector::<Report>::open_or_create(REPORTS, 64)?;
    println!(
        "producer (pid {}): ring {} of {} jobs of {} bytes; {consumers} consumer processes",
        std::process::id(),
        Jobs::PATH,
        ring.capacity(),
        size_of::<Job>()
    );

    let exe = std::env::current_exe()?;
    let children: Vec<_> = (0..consumers)
        .map(|c| Command::new(&exe).args(["consumer", &c.to_string()]).spawn())
        .collect::<Result<_, _>>()?;

    let start = Instant::now();
    let mut producer = ring.producer()?; // the one producer role; a second would be refused
    for id in 1..=jobs {
        // Waits while the ring is full: the consumers set the pace.
        producer.push(&Job { id, weight: (id % 7) as u32, stop: 0 })?;
    }
    for _ in 0..consumers {
        producer.push(&Job { id: 0, weight: 0, stop: 1 })?;
    }
    let produced_in = start.elapsed();
    drop(producer);

    let mut failed = 0;
    for mut child in children {
        if !child.wait()?.success() {
            failed += 1;
        }
    }
    let elapsed = start.elapsed();

    let mut total_jobs = 0;
    let mut total_ids = 0u64;
    for (_, r) in reports.iter() {
        println!(
            "consumer {} (pid {}): {:>8} jobs, ids {}..={}, busy {:.1} ms",
            r.consumer,
            r.pid,
            r.jobs,
            r.first_id,
            r.last_id,
            r.busy_micros as f64 / 1e3
        );
        total_jobs += r.jobs;
        total_ids = total_ids.wrapping_add(r.id_sum);
    }
    let expected_ids = jobs * (jobs + 1) / 2;
    println!(
        "produced {jobs} jobs in {:.1} ms; all consumed after {:.1} ms ({:.2} M jobs/s); \
         stats: {:?}",
        produced_in.as_secs_f64() * 1e3,
        elapsed.as_secs_f64() * 1e3,
        jobs as f64 / elapsed.as_secs_f64() / 1e6,
        ring.stats()
    );
    ring.destroy()?;
    reports.destroy()?;
    if failed > 0 || reports.len() != consumers as usize {
        return Err(format!("{failed} consumers failed, {} reported", reports.len()).into());
    }
    if total_jobs != jobs || total_ids != expected_ids {
        return Err(format!(
            "jobs done {total_jobs} (expected {jobs}), id sum {total_ids} (expected {expected_ids})"
        )
        .into());
    }
    println!("ok: every job was taken by exactly one consumer");
    Ok(())
}

fn consumer(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let number = number(args, 0, 0)? as u32;
    let ring = Jobs::try_get()?;
    let reports = ShmVector::<Report>::open_or_create(REPORTS, 64)?;
    let mut report = Report {
        consumer: number,
        pid: std::process::id(),
        jobs: 0,
        id_sum: 0,
        first_id: 0,
        last_id: 0,
        busy_micros: 0,
    };
    let mut checksum = 0u64;
    let start = Instant::now();
    loop {
        let job = ring.pop()?; // waits (futex) while the ring is empty
        if job.stop != 0 {
            break;
        }
        for _ in 0..job.weight {
            checksum = checksum.rotate_left(5) ^ job.id; // the "work"
        }
        if report.jobs == 0 {
            report.first_id = job.id;
        }
        report.jobs += 1;
        report.id_sum = report.id_sum.wrapping_add(job.id);
        report.last_id = job.id;
    }
    report.busy_micros = start.elapsed().as_micros() as u64;
    std::hint::black_box(checksum);
    reports.push(&report)?;
    Ok(())
}
