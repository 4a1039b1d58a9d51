//! The peer workload (`shared/bench/WORKLOAD.md`) on shmap, printing its JSON lines with
//! `"impl":"shmap"` (or `"shmap-undo"` with `--undo`).
//!
//! ```text
//! cargo run --release -p shmap-examples --bin workload -- [--case u64-1M|v64B-1M|u64-25K|v64B-25K|all|u64-50M]
//!     [--mode 1t|2t|2p|all] [--reps 3] [--warmup 1] [--undo] [--huge-pages]
//!     [--churn-rounds 20] [--backing shm|dir:DIR]
//! ```
//!
//! `u64-50M` (50 million keys in 2^26 slots, 1.7 GB) is not part of `all`. `--backing dir:DIR`
//! (or `--dir DIR`) puts the table in a file in `DIR` instead of a POSIX shared-memory name in
//! `/dev/shm` (`--backing shm`, the default): a hugetlbfs mount gives it huge pages
//! from the reserved pool (`echo 900 > /proc/sys/vm/nr_hugepages; mount -t hugetlbfs none
//! /dev/hugepages` for `u64-50M`).
//!
//! Like the original's `bench.cpp`, the driver precomputes a case's keys once, then runs every
//! (mode, rep) in a freshly forked child that creates a fresh table in a POSIX shm segment
//! (prefaulted, untimed), runs the phases, verifies the table with `travel`, and removes it.
//! 2t runs a second thread, 2p `fork`s a second process on the same segment. Phase time is
//! measured by worker 0 from leaving the start barrier to leaving the end barrier; the median
//! of the measured reps is reported. After the workload's five phases, shmap adds its own:
//! `lookup-hit-batched` (`get_many`, 32 keys per call, with prefetching) and `remove` (every
//! key). With `--churn-rounds R`, two churn phases follow on the emptied table, `churn-50` and
//! `churn-90`: each fills the table to that live load (untimed), then replaces the oldest key
//! by a new one (an `insert` and a `remove`: one churn operation) R × capacity times. Their
//! lines report the operations per second overall and in the first and last `capacity` of
//! them (medians over the reps), the median over the reps of each rep's ratio of the two
//! (`end_over_start`, with every rep's in `runs_end_over_start`: one window is short, so take
//! `--reps 5` or more before reading a ratio), and the probe lengths (`Monitor::occupancy`)
//! before and after.

mod ctl;
mod data;
mod worker;

use std::sync::atomic::{AtomicU64, Ordering};

use shmap::{Backing, CreateMode, ShmHashTable};

use ctl::{
    CHURN_LOADS, Ctl, HIT, HIT_BATCHED, INSERT, MISS, MIXED, PHASES, REMOVE, SharedCtl, UPDATE,
};
use data::Data;
use worker::{V64, Val};

struct Options {
    cases: Vec<String>,
    modes: Vec<String>,
    reps: usize,
    warmup: usize,
    undo: bool,
    huge_pages: bool,
    churn_rounds: u64,
    dir: Option<std::path::PathBuf>,
}

fn parse() -> Result<Options, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = Options {
        cases: vec!["all".into()],
        modes: vec!["all".into()],
        reps: 3,
        warmup: 1,
        undo: false,
        huge_pages: false,
        churn_rounds: 0,
        dir: None,
    };
    let mut i = 0;
    while i < args.len() {
        let value = |i: usize| args.get(i + 1).cloned().ok_or(format!("{} needs a value", args[i]));
        match args[i].as_str() {
            "--case" => o.cases = vec![value(i)?],
            "--mode" => o.modes = vec![value(i)?],
            "--reps" => o.reps = value(i)?.parse().map_err(|_| "--reps: not a number")?,
            "--warmup" => o.warmup = value(i)?.parse().map_err(|_| "--warmup: not a number")?,
            "--churn-rounds" => {
                o.churn_rounds = value(i)?.parse().map_err(|_| "--churn-rounds: not a number")?
            }
            "--dir" => o.dir = Some(value(i)?.into()),
            "--backing" => {
                o.dir = match value(i)?.as_str() {
                    "shm" => None,
                    other => match other.strip_prefix("dir:") {
                        Some(dir) => Some(dir.into()),
                        None => return Err(format!("--backing: shm or dir:DIR, not {other}")),
                    },
                }
            }
            "--undo" => {
                o.undo = true;
                i -= 1;
            }
            "--huge-pages" => {
                o.huge_pages = true;
                i -= 1;
            }
            other => return Err(format!("unknown argument {other}")),
        }
        i += 2;
    }
    if o.cases == ["all"] {
        o.cases = ["u64-1M", "v64B-1M", "u64-25K", "v64B-25K"].map(String::from).to_vec();
    }
    if o.modes == ["all"] {
        o.modes = ["1t", "2t", "2p"].map(String::from).to_vec();
    }
    Ok(o)
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("workload: {e}");
            std::process::exit(2);
        }
    };
    let mut all_ok = true;
    for case in &o.cases {
        all_ok &= match case.as_str() {
            "u64-1M" => run_case::<u64>(case, 1_000_000, 1 << 21, &o),
            "v64B-1M" => run_case::<V64>(case, 1_000_000, 1 << 21, &o),
            "u64-25K" => run_case::<u64>(case, 25_000, 1 << 16, &o),
            "v64B-25K" => run_case::<V64>(case, 25_000, 1 << 16, &o),
            "u64-50M" => run_case::<u64>(case, 50_000_000, 1 << 26, &o),
            other => {
                eprintln!("workload: unknown case {other}");
                std::process::exit(2);
            }
        };
    }
    std::process::exit(if all_ok { 0 } else { 1 });
}

fn impl_name(o: &Options) -> &'static str {
    if o.undo { "shmap-undo" } else { "shmap" }
}

/// Runs every mode of one case; prints its JSON lines; returns whether every check passed.
fn run_case<V: Val>(case: &str, n: usize, capacity: usize, o: &Options) -> bool {
    let data = Data::new(n);
    let name = format!("/shmap-workload-{}-{case}", std::process::id());
    let backing = match &o.dir {
        Some(dir) => Backing::file(dir.join(&name[1..])),
        None => Backing::shm(&name),
    };
    eprintln!(
        "# case {case}: n={n}, {capacity} slots, slot {} bytes, undo {}",
        ShmHashTable::<u64, V>::options()
            .capacity(capacity)
            .undo_records(o.undo)
            .open(&Backing::Heap)
            .map_or(0, |t| t.info().slot_size),
        o.undo
    );
    let mut all_ok = true;
    for mode in &o.modes {
        let mut mops: Vec<Vec<f64>> = vec![Vec::new(); PHASES.len()];
        let (mut errors, mut rss, mut huge) = (Vec::new(), 0, 0);
        let mut faults = [[0u64; PHASES.len()]; 2];
        let mut churns: Vec<Vec<ChurnRep>> = vec![Vec::new(); CHURN_LOADS.len()];
        for rep in 0..o.warmup + o.reps {
            let ctl = SharedCtl::new();
            // SAFETY: the driver is single-threaded, so the child may run anything.
            match unsafe { libc::fork() } {
                -1 => panic!("fork: {}", std::io::Error::last_os_error()),
                0 => {
                    run_rep::<V>(&backing, capacity, &data, mode, o, &ctl);
                    // SAFETY: ends the child without unwinding into the driver's code.
                    unsafe { libc::_exit(0) };
                }
                child => wait_for(child),
            }
            match check::<V>(&data, mode, &ctl) {
                Err(e) => errors.push(format!("rep{rep}:{e}")),
                Ok(()) if rep >= o.warmup => {
                    for (p, runs) in mops.iter_mut().enumerate() {
                        let ns = ctl.phase_ns[p].load(Ordering::Relaxed).max(1);
                        runs.push(n as f64 / ns as f64 * 1e3);
                    }
                    if o.churn_rounds > 0 {
                        for (c, runs) in churns.iter_mut().enumerate() {
                            runs.push(ChurnRep::of(&ctl, c, mode));
                        }
                    }
                }
                Ok(()) => {}
            }
            rss = rss.max(ctl.rss_kib.load(Ordering::Relaxed));
            huge = huge.max(ctl.huge_kib.load(Ordering::Relaxed));
            for (w, f) in faults.iter_mut().enumerate() {
                for (p, slot) in f.iter_mut().enumerate() {
                    *slot = ctl.results[w].minflt[p].load(Ordering::Relaxed);
                }
            }
            let _ = shmap::Segment::unlink(&backing);
        }
        let ok = errors.is_empty();
        all_ok &= ok;
        for (p, phase) in PHASES.iter().enumerate() {
            let typical = median(mops[p].clone());
            let runs: Vec<String> = mops[p].iter().map(|m| format!("{m:.3}")).collect();
            println!(
                "{{\"impl\":\"{}\",\"case\":\"{case}\",\"mode\":\"{mode}\",\"phase\":\"{phase}\",\"mops\":{typical:.3},\
                 \"ns_per_op\":{:.2},\"runs_mops\":[{}],\"minflt_w0\":{},\"minflt_w1\":{},\"ok\":{ok}}}",
                impl_name(o),
                if typical > 0.0 { 1e3 / typical } else { 0.0 },
                runs.join(","),
                faults[0][p],
                faults[1][p],
            );
        }
        for (c, runs) in churns.iter_mut().enumerate() {
            if runs.is_empty() {
                continue;
            }
            // The start and end windows are one capacity's worth of replacements each (about
            // 10 ms at u64-25K), so one rep's ratio is noisy: each rep's ratio is its own
            // (start and end from the same table), and the line reports their median with
            // every run's, as it does the medians of the start and end rates.
            let ratios = runs.iter().map(|r| r.mops_end / r.mops_start).collect::<Vec<_>>();
            let listed = |v: &[f64]| v.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>();
            let (ratio_runs, ratio) = (listed(&ratios), median(ratios));
            let start = median(runs.iter().map(|r| r.mops_start).collect());
            let end = median(runs.iter().map(|r| r.mops_end).collect());
            runs.sort_by(|a, b| a.mops.total_cmp(&b.mops));
            let all: Vec<String> = runs.iter().map(|r| format!("{:.3}", r.mops)).collect();
            // Probe lengths of the rep with the median overall rate.
            let m = &runs[runs.len() / 2];
            let probes = |p: &[f64; 4]| {
                format!(
                    "{{\"hit_mean\":{:.3},\"hit_max\":{},\"miss_mean\":{:.3},\"miss_max\":{}}}",
                    p[0], p[1], p[2], p[3]
                )
            };
            println!(
                "{{\"impl\":\"{}\",\"case\":\"{case}\",\"mode\":\"{mode}\",\"phase\":\"churn-{}\",\
                 \"mops\":{:.3},\"mops_start\":{start:.3},\"mops_end\":{end:.3},\
                 \"end_over_start\":{ratio:.3},\"runs_end_over_start\":[{}],\"runs_mops\":[{}],\
                 \"probes_start\":{},\"probes_end\":{},\"ok\":{ok}}}",
                impl_name(o),
                CHURN_LOADS[c],
                m.mops,
                ratio_runs.join(","),
                all.join(","),
                probes(&m.probes_start),
                probes(&m.probes_end),
            );
        }
        let error = if ok { String::new() } else { format!(",\"error\":\"{}\"", errors.join(";")) };
        println!(
            "{{\"impl\":\"{}\",\"case\":\"{case}\",\"mode\":\"{mode}\",\"metric\":\"peak_rss\",\"peak_rss_kib\":{rss},\
             \"huge_pages_kib\":{huge},\"ok\":{ok}{error}}}",
            impl_name(o)
        );
    }
    all_ok
}

/// The median of `runs` (the upper one of an even count; 0 for none).
fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs.get(runs.len() / 2).copied().unwrap_or(0.0)
}

/// One rep's churn phase, as worker 0 measured it (operations of all workers per second,
/// estimated as worker 0's rate times the workers).
#[derive(Clone)]
struct ChurnRep {
    mops: f64,
    mops_start: f64,
    mops_end: f64,
    probes_start: [f64; 4],
    probes_end: [f64; 4],
}

impl ChurnRep {
    fn of(ctl: &Ctl, c: usize, mode: &str) -> ChurnRep {
        let r = &ctl.churn[c];
        let workers = if mode == "1t" { 1.0 } else { 2.0 };
        let rate = |ops: u64, ns: u64| workers * ops as f64 / ns.max(1) as f64 * 1e3;
        let bits = |a: &[AtomicU64; 4]| {
            std::array::from_fn(|i| f64::from_bits(a[i].load(Ordering::Relaxed)))
        };
        let window = r.window.load(Ordering::Relaxed);
        ChurnRep {
            mops: rate(r.ops.load(Ordering::Relaxed), r.total_ns.load(Ordering::Relaxed)),
            mops_start: rate(window, r.start_ns.load(Ordering::Relaxed)),
            mops_end: rate(window, r.end_ns.load(Ordering::Relaxed)),
            probes_start: bits(&r.probes_start),
            probes_end: bits(&r.probes_end),
        }
    }
}

fn wait_for(child: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out-pointer.
    unsafe { libc::waitpid(child, &mut status, 0) };
    if status != 0 {
        eprintln!("workload: a rep's process {child} ended with wait status {status:#x}");
    }
}

/// One rep, in its own process: a fresh table, the phases, the verification.
fn run_rep<V: Val>(
    backing: &Backing,
    capacity: usize,
    data: &Data,
    mode: &str,
    o: &Options,
    ctl: &Ctl,
) {
    // SAFETY: alarm(2) has no memory-safety preconditions; it ends a hung rep.
    unsafe { libc::alarm(300) };
    let _ = shmap::Segment::unlink(backing);
    let table = ShmHashTable::<u64, V>::options()
        .capacity(capacity)
        .undo_records(o.undo)
        .prefault(true)
        .huge_pages(o.huge_pages)
        .create(CreateMode::CreateNew)
        .open(backing)
        .expect("create the table");
    match mode {
        "1t" => worker::run(&table, data, 0, 1, ctl, o.churn_rounds),
        "2t" => std::thread::scope(|s| {
            s.spawn(|| worker::run(&table, data, 1, 2, ctl, o.churn_rounds));
            worker::run(&table, data, 0, 2, ctl, o.churn_rounds);
        }),
        "2p" => {
            // SAFETY: this process is single-threaded here, so the child may run anything.
            match unsafe { libc::fork() } {
                -1 => panic!("fork: {}", std::io::Error::last_os_error()),
                0 => {
                    table.segment().owner().expect("register the second process"); // untimed
                    worker::run(&table, data, 1, 2, ctl, o.churn_rounds);
                    // SAFETY: ends the worker without running the rep's cleanup twice.
                    unsafe { libc::_exit(0) };
                }
                child => {
                    worker::run(&table, data, 0, 2, ctl, o.churn_rounds);
                    wait_for(child);
                }
            }
        }
        other => panic!("unknown mode {other}"),
    }
    ctl.rss_kib.store(ctl::max_rss_kib(), Ordering::Relaxed);
    ctl.huge_kib.store(huge_pages_kib(&backing.to_string()), Ordering::Relaxed);
    ctl.done.store(1, Ordering::Release);
    let _ = table.destroy();
}

/// Huge pages backing the table's mapping (named `name`: a shm name or a path), from
/// /proc/self/smaps (KiB): transparent ones, or hugetlbfs ones.
fn huge_pages_kib(name: &str) -> u64 {
    let file = name.rsplit('/').next().unwrap_or(name);
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut in_table = false;
    let mut kib = 0;
    for line in smaps.lines() {
        if line.contains(" rw-s ") || line.contains(" rw-p ") {
            in_table = line.ends_with(file);
        } else if in_table
            && (line.starts_with("ShmemPmdMapped:")
                || line.starts_with("AnonHugePages:")
                || line.starts_with("Shared_Hugetlb:")
                || line.starts_with("Private_Hugetlb:"))
        {
            kib += line.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    kib
}

/// The workload's correctness checks for one rep.
fn check<V: Val>(data: &Data, mode: &str, ctl: &Ctl) -> Result<(), String> {
    if ctl.done.load(Ordering::Acquire) != 1 {
        return Err("the rep did not finish".into());
    }
    let workers = if mode == "1t" { 1 } else { 2 };
    let total =
        |p: usize| (0..workers).map(|w| ctl.results[w].ok[p].load(Ordering::Relaxed)).sum::<u64>();
    let sum = |p: usize| {
        (0..workers)
            .fold(0u64, |s, w| s.wrapping_add(ctl.results[w].sum[p].load(Ordering::Relaxed)))
    };
    let n = data.n as u64;
    let created: u64 = (0..workers).map(|w| ctl.results[w].created.load(Ordering::Relaxed)).sum();
    let w = V::WORDS;
    let final_sum = w.wrapping_mul(data.sum_keys.wrapping_add(n).wrapping_add(data.mix_updates));
    let checks = [
        (total(INSERT) == n && created == n, "insert"),
        (total(HIT) == n && sum(HIT) == w.wrapping_mul(data.sum_keys), "lookup-hit"),
        (total(MISS) == 0, "lookup-miss"),
        (total(UPDATE) == n, "update"),
        (total(MIXED) == n, "mixed"),
        (total(HIT_BATCHED) == n && sum(HIT_BATCHED) == final_sum, "lookup-hit-batched"),
        (total(REMOVE) == n, "remove"),
        (ctl.len_after_remove.load(Ordering::Relaxed) == 0, "len after remove"),
        (
            ctl.travel_count.load(Ordering::Relaxed) == n
                && ctl.travel_sum.load(Ordering::Relaxed) == final_sum,
            "travel",
        ),
    ];
    if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(format!("{what} check failed"));
    }
    for (c, load) in CHURN_LOADS.iter().enumerate() {
        let r = &ctl.churn[c];
        let (failures, len) = (r.failures.load(Ordering::Relaxed), r.len.load(Ordering::Relaxed));
        if r.ops.load(Ordering::Relaxed) > 0
            && (failures > 0 || len != r.live.load(Ordering::Relaxed))
        {
            return Err(format!("churn-{load}: {failures} failed operations, len {len}"));
        }
    }
    Ok(())
}
