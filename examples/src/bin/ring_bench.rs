//! Ring throughput: one producer → one consumer, elements per second, in the workload
//! benchmark's JSON-line format, against crossbeam's `ArrayQueue` in one process.
//!
//! ```text
//! cargo run --release -p shmap-examples --bin ring_bench [-- --count N --reps 3 --capacity 4096]
//! ```
//!
//! Cases (u64 elements, a ring of `--capacity`):
//! - `shmap-spsc` and `shmap-mpmc`, mode `2p`: the consumer is a `fork`ed process, the producer
//!   this one; the consumer times from its first element to its last (so process start-up is
//!   not counted) and checks that every element arrived in order;
//! - `shmap-spsc`, mode `2t`: the same with two threads of one process;
//! - `crossbeam-arrayqueue`, mode `2t`: `crossbeam_queue::ArrayQueue` with two threads, both
//!   spinning on full and empty as the shmap `try_` loops do.
//!
//! Each case runs a warm-up and `--reps` timed runs and prints the median. The last lines (on
//! stderr) give each case's ratio to the `ArrayQueue` baseline, measured in the same process
//! run.

use std::sync::Arc;
use std::time::Instant;

use shmap::ring::{MpmcRing, RingError, SpscRing};

struct Options {
    count: u64,
    reps: usize,
    capacity: usize,
}

fn options() -> Options {
    let mut o = Options { count: 10_000_000, reps: 3, capacity: 4096 };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--count" => o.count = value(),
            "--reps" => o.reps = value() as usize,
            "--capacity" => o.capacity = value() as usize,
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

/// Runs `transfer` once as a warm-up and `reps` times timed; prints the JSON line and returns
/// the median in millions of elements per second.
fn case(name: &str, mode: &str, o: &Options, mut transfer: impl FnMut() -> Option<u64>) -> f64 {
    let _ = transfer();
    let mut runs: Vec<f64> = Vec::new();
    let mut ok = true;
    for _ in 0..o.reps {
        match transfer() {
            Some(ns) => runs.push(o.count as f64 / ns.max(1) as f64 * 1e3),
            None => ok = false,
        }
    }
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let runs: Vec<String> = runs.iter().map(|m| format!("{m:.3}")).collect();
    println!(
        "{{\"impl\":\"{name}\",\"case\":\"u64-ring{}\",\"mode\":\"{mode}\",\"phase\":\"transfer\",\
         \"mops\":{median:.3},\"ns_per_op\":{:.2},\"runs_mops\":[{}],\"ok\":{ok}}}",
        o.capacity,
        if median > 0.0 { 1e3 / median } else { 0.0 },
        runs.join(",")
    );
    median
}

/// What the consumer does: pops `count` elements, checking that they are 0, 1, 2, …, and
/// returns the nanoseconds from the first to the last (None if the order broke).
fn consume(count: u64, mut pop: impl FnMut() -> Result<u64, RingError>) -> Option<u64> {
    let mut next = || loop {
        match pop() {
            Ok(v) => return v,
            Err(_) => std::hint::spin_loop(),
        }
    };
    let first = next();
    let start = Instant::now();
    let mut ok = first == 0;
    for expected in 1..count {
        ok &= next() == expected;
    }
    ok.then(|| start.elapsed().as_nanos() as u64)
}

/// Runs `consumer` in a `fork`ed child while this process runs `producer`; the child sends its
/// result back through an SPSC ring of one element (u64::MAX for a failed check).
fn two_processes(producer: impl FnOnce(), consumer: impl FnOnce() -> Option<u64>) -> Option<u64> {
    let results = SpscRing::<u64>::anonymous(1).expect("a results ring");
    // SAFETY: this process is single-threaded here, so the child may run anything.
    match unsafe { libc::fork() } {
        -1 => panic!("fork: {}", std::io::Error::last_os_error()),
        0 => {
            let ns = consumer().unwrap_or(u64::MAX);
            results.producer().and_then(|mut tx| tx.push(&ns)).expect("report the result");
            // SAFETY: ends the child without running the parent's destructors twice.
            unsafe { libc::_exit(0) };
        }
        child => {
            producer();
            let ns = results.consumer().and_then(|mut rx| rx.pop()).expect("the child's result");
            let mut status = 0;
            // SAFETY: reaps our own child; `status` is a valid out-pointer.
            unsafe { libc::waitpid(child, &mut status, 0) };
            (ns != u64::MAX).then_some(ns)
        }
    }
}

fn main() {
    let o = options();
    let n = o.count;
    eprintln!("# {n} u64 elements per run, rings of {} elements, {} reps", o.capacity, o.reps);

    let baseline = case("crossbeam-arrayqueue", "2t", &o, || {
        let queue = Arc::new(crossbeam_queue::ArrayQueue::<u64>::new(o.capacity));
        std::thread::scope(|s| {
            let q = Arc::clone(&queue);
            s.spawn(move || {
                for i in 0..n {
                    let mut v = i;
                    while let Err(back) = q.push(v) {
                        v = back;
                        std::hint::spin_loop();
                    }
                }
            });
            consume(n, || queue.pop().ok_or(RingError::Empty))
        })
    });

    let spsc_2t = case("shmap-spsc", "2t", &o, || {
        let ring = SpscRing::<u64>::heap(o.capacity).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut tx = ring.producer().unwrap();
                for i in 0..n {
                    while tx.try_push(&i).is_err() {
                        std::hint::spin_loop();
                    }
                }
            });
            let mut rx = ring.consumer().unwrap();
            consume(n, || rx.try_pop())
        })
    });

    let spsc_2p = case("shmap-spsc", "2p", &o, || {
        let ring = SpscRing::<u64>::anonymous(o.capacity).unwrap();
        two_processes(
            || {
                let mut tx = ring.producer().unwrap();
                for i in 0..n {
                    while tx.try_push(&i).is_err() {
                        std::hint::spin_loop();
                    }
                }
            },
            || {
                let mut rx = ring.consumer().unwrap();
                consume(n, || rx.try_pop())
            },
        )
    });

    let mpmc_2p = case("shmap-mpmc", "2p", &o, || {
        let ring = MpmcRing::<u64>::anonymous(o.capacity).unwrap();
        two_processes(
            || {
                for i in 0..n {
                    while ring.try_push(&i).is_err() {
                        std::hint::spin_loop();
                    }
                }
            },
            || consume(n, || ring.try_pop()),
        )
    });

    eprintln!("# ratios of medians against crossbeam ArrayQueue (2 threads), this run:");
    for (name, mops) in
        [("shmap-spsc 2t", spsc_2t), ("shmap-spsc 2p", spsc_2p), ("shmap-mpmc 2p", mpmc_2p)]
    {
        eprintln!("#   {name:14} {mops:8.2} M/s  {:5.2}x", mops / baseline);
    }
}
