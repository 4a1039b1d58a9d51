//! 100 rounds of kill-at-a-random-point: 4 processes increment 16 shared counters, one of them
//! is SIGKILLed at a random moment, and afterwards every counter must equal the number of
//! committed increments, and no process may hang.
//!
//! The accounting is exact. Each process logs `seq key` *before* each increment, and the
//! increment records `seq` in the counter (`Tally::last_seq[process]`). Since a process's
//! increments of one key happen in `seq` order, a logged increment committed exactly when
//! `seq <= last_seq[process]` of its key. Only the last logged increment of the killed process
//! may be uncommitted; every other one must be counted, exactly once.

use std::path::Path;
use std::time::{Duration, Instant};

use shmap::ShmHashTable;
use shmap_tests::{CHAOS_PROCESSES, ShmName, Tally, TempDir, Worker, worker};

const ROUNDS: u64 = 100;
const OPS: u64 = 4000;
const KEYS: u64 = 16;
/// Each worker's visits time out after 5 s (the default); a round that takes longer than this
/// has a process hanging.
const ROUND_DEADLINE: Duration = Duration::from_secs(30);

/// The logged intents, `(seq, key)`. A SIGKILL can cut the victim's last line short (a `write(2)`
/// that crosses a page boundary is done page by page and stops at a fatal signal): that line
/// was written before its increment began, so it is dropped.
fn read_log(path: &Path) -> Vec<(u64, u64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .map_while(|line| line.strip_suffix('\n'))
        .map(|line| {
            let (seq, key) = line.split_once(' ').expect("a log line is `seq key`");
            (seq.parse().unwrap(), key.parse().unwrap())
        })
        .collect()
}

#[test]
fn a_hundred_random_kills_lose_no_committed_increment() {
    let dir = TempDir::new("chaos");
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let (mut recoveries, mut interrupted) = (0, 0);
    let started = Instant::now();
    for round in 0..ROUNDS {
        let name = ShmName::new("chaos");
        let table = ShmHashTable::<u64, Tally>::options()
            .capacity(64)
            .undo_records(true)
            .open(&name.backing())
            .unwrap();
        let logs: Vec<_> = (0..CHAOS_PROCESSES)
            .map(|p| dir.path().join(format!("round{round}-p{p}.log")))
            .collect();
        let mut workers: Vec<Worker> = logs
            .iter()
            .enumerate()
            .map(|(p, log)| {
                let log = log.to_str().unwrap();
                Worker::spawn(worker!("chaos", name.as_str(), p.to_string(), OPS.to_string(), log))
            })
            .collect();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let victim = (rng % CHAOS_PROCESSES as u64) as usize;
        std::thread::sleep(Duration::from_micros(rng % 25_000));
        workers[victim].signal(libc::SIGKILL);
        let round_start = Instant::now();
        for (p, w) in workers.iter_mut().enumerate() {
            let status = w.wait(ROUND_DEADLINE.saturating_sub(round_start.elapsed()));
            if p != victim {
                assert!(status.success(), "round {round}: process {p} failed: {status}");
            }
        }

        // The audit.
        let tallies: Vec<Tally> =
            (0..KEYS).map(|k| table.get(&k).unwrap().unwrap_or_default()).collect();
        let mut expected = vec![0u64; KEYS as usize];
        for (p, log) in logs.iter().enumerate() {
            let intents = read_log(log);
            let mut uncommitted = Vec::new();
            for &(seq, key) in &intents {
                if seq <= tallies[key as usize].last_seq[p] {
                    expected[key as usize] += 1;
                } else {
                    uncommitted.push(seq);
                }
            }
            match uncommitted.as_slice() {
                [] => {}
                [seq] if p == victim && Some(*seq) == intents.last().map(|i| i.0) => {
                    interrupted += 1
                }
                other => panic!("round {round}: process {p} has uncommitted increments {other:?}"),
            }
            if p != victim {
                assert_eq!(
                    intents.len() as u64,
                    OPS,
                    "round {round}: process {p} did every increment"
                );
            }
        }
        for k in 0..KEYS as usize {
            assert_eq!(
                tallies[k].count, expected[k],
                "round {round}: key {k} lost or doubled increments"
            );
        }
        let shmap::segment::Recoveries { total: recovered, torn } = table.segment().recoveries();
        assert_eq!(torn, 0, "undo records: nothing is ever torn");
        recoveries += recovered;
    }
    eprintln!(
        "{ROUNDS} rounds in {:.1} s: {recoveries} locks of killed processes recovered, \
         {interrupted} kills interrupted an increment that then did not count",
        started.elapsed().as_secs_f64()
    );
}
