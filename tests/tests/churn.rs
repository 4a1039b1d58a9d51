//! Removal and slot reuse with real processes: processes that insert and remove overlapping
//! keys through a small table, with and without one of them SIGKILLed at a random moment.
//!
//! The audit is exact. Every insert writes a value used once (`process << 32 | seq`) and every
//! insert and removal logs the value it replaced or removed (see the `churn` worker). So every
//! value written is, at the end, either in the table under its key or was replaced or removed
//! exactly once, by an operation on the same key; no value is lost, duplicated or moved to
//! another key, whatever the interleaving. Only the operation a killed process was in may be
//! unlogged: its value may be in the table or nowhere, and what it replaced may be missing from
//! the log.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use shmap::ShmHashTable;
use shmap_tests::{ShmName, TempDir, Worker, worker};

const PROCESSES: usize = 4;
const KEYS: u64 = 48;
const CAPACITY: usize = 64;

/// One logged operation: the key, the value written (`None` for a removal), and the value it
/// replaced or removed (`None` if nothing; the outer `None` if the result was never logged).
type Op = (u64, Option<u64>, Option<Option<u64>>);

///
/// A SIGKILL can cut the victim's last line short: a `write(2)` to a file that crosses a page
/// boundary is done page by page and stops at a fatal signal. A cut `I`/`R` line was written
/// before its operation began, so the operation never ran and the line is dropped; a cut `=`
/// line leaves its operation unfinished, like one whose result was never written.
fn read_log(path: &Path) -> Vec<Op> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut ops: Vec<Op> = Vec::new();
    for line in text.split_inclusive('\n') {
        let Some(line) = line.strip_suffix('\n') else {
            break; // only the killed process can cut a line: `run_round` counts the others' lines
        };
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            ["I", key, value] => {
                ops.push((key.parse().unwrap(), Some(value.parse().unwrap()), None))
            }
            ["R", key] => ops.push((key.parse().unwrap(), None, None)),
            ["=", old] => {
                let last = ops.last_mut().expect("a result follows its operation");
                last.2 = Some(if *old == "-" { None } else { Some(old.parse().unwrap()) });
            }
            _ => panic!("bad log line {line:?}"),
        }
    }
    ops
}

/// The audit (see the module documentation). `victim` is the killed process, if any. Returns
/// the number of entries.
fn audit(table: &ShmHashTable<u64, u64>, logs: &[Vec<Op>], victim: Option<usize>) -> usize {
    // Every value written, with its key; and where each ended.
    let mut written: HashMap<u64, u64> = HashMap::new();
    let mut ended: HashMap<u64, &'static str> = HashMap::new();
    let mut unfinished = Vec::new();
    for (p, ops) in logs.iter().enumerate() {
        for (i, &(key, value, result)) in ops.iter().enumerate() {
            if let Some(v) = value {
                assert!(written.insert(v, key).is_none(), "value {v:#x} written twice");
            }
            match result {
                Some(Some(old)) => {
                    let what = if value.is_some() { "replaced" } else { "removed" };
                    assert!(ended.insert(old, what).is_none(), "value {old:#x} {what} twice");
                    let _ = key;
                }
                Some(None) => {}
                None => {
                    assert!(
                        Some(p) == victim && i + 1 == ops.len(),
                        "process {p} left operation {i} unfinished"
                    );
                    unfinished.push(value);
                }
            }
        }
    }
    // Keys of replaced and removed values.
    for (p, ops) in logs.iter().enumerate() {
        for &(key, _, result) in ops {
            if let Some(Some(old)) = result {
                assert_eq!(written.get(&old), Some(&key), "process {p} got another key's value");
            }
        }
    }
    let mut entries = 0;
    let mut in_table = HashMap::new();
    let outcome = table
        .travel(|_, k, v| {
            entries += 1;
            assert!(in_table.insert(*k, *v).is_none(), "key {k} in two slots");
        })
        .unwrap();
    assert!(outcome.is_completed(), "{outcome}");
    for (&k, &v) in &in_table {
        assert_eq!(written.get(&v), Some(&k), "key {k} holds {v:#x}, never written for it");
        assert!(!ended.contains_key(&v), "value {v:#x} is in the table and was {}", ended[&v]);
        assert_eq!(table.get(&k).unwrap(), Some(v), "key {k} unreachable by get");
    }
    // Conservation: every value written is in the table or ended once. The killed process's
    // unfinished insert may have done either or neither; what it replaced is unlogged, so one
    // value may be neither in the table nor ended: the one it replaced.
    let mut lost: Vec<u64> = written
        .keys()
        .filter(|v| !ended.contains_key(v) && !in_table.values().any(|t| t == *v))
        .copied()
        .collect();
    lost.retain(|v| !unfinished.contains(&Some(*v)));
    assert!(
        lost.len() <= usize::from(victim.is_some()),
        "values lost: {lost:#x?} (victim {victim:?})"
    );
    assert_eq!(table.recount().unwrap(), entries, "recount disagrees with a full count");
    assert_eq!(table.len(), entries);
    entries
}

/// What a round saw: entries at the end, whether the kill interrupted the victim (it had not
/// finished), and how many locks of the killed process were recovered.
struct Round {
    entries: usize,
    interrupted: bool,
    recoveries: u64,
}

fn run_round(dir: &TempDir, round: usize, ops: u64, kill_after: Option<Duration>) -> Round {
    let name = ShmName::new("churn");
    let table =
        ShmHashTable::<u64, u64>::options().capacity(CAPACITY).open(&name.backing()).unwrap();
    let logs: Vec<_> =
        (0..PROCESSES).map(|p| dir.path().join(format!("round{round}-p{p}.log"))).collect();
    let mut workers: Vec<Worker> = logs
        .iter()
        .enumerate()
        .map(|(p, log)| {
            Worker::spawn(worker!(
                "churn",
                name.as_str(),
                p.to_string(),
                ops.to_string(),
                KEYS.to_string(),
                log.to_str().unwrap()
            ))
        })
        .collect();
    let victim = kill_after.map(|after| {
        std::thread::sleep(after);
        let victim = round % PROCESSES;
        workers[victim].signal(libc::SIGKILL);
        victim
    });
    // Operations time out after 5 s (the default): a round that takes longer has a hang.
    let start = Instant::now();
    for (p, w) in workers.iter_mut().enumerate() {
        let status = w.wait(Duration::from_secs(30).saturating_sub(start.elapsed()));
        if Some(p) != victim {
            assert!(status.success(), "round {round}: process {p} failed: {status}");
        }
    }
    let logs: Vec<Vec<Op>> = logs.iter().map(|l| read_log(l)).collect();
    for (p, log) in logs.iter().enumerate() {
        if Some(p) != victim {
            assert_eq!(log.len() as u64, ops, "process {p} did every operation");
        }
    }
    Round {
        entries: audit(&table, &logs, victim),
        interrupted: victim.is_some_and(|v| (logs[v].len() as u64) < ops),
        recoveries: table.segment().recoveries().total,
    }
}

/// Four processes churn 48 keys through 64 slots: slots are freed and reused all the time.
#[test]
fn processes_churning_overlapping_keys_reconcile_exactly() {
    let dir = TempDir::new("churn");
    for round in 0..3 {
        let Round { entries, .. } = run_round(&dir, round, 20_000, None);
        assert!(entries <= KEYS as usize);
    }
}

/// 100 rounds in which one of four churning processes is SIGKILLed at a random moment: no
/// value is lost or duplicated beyond the killed operation, no key is in two slots, every key
/// is reachable, the count is exact after `recount`, and the survivors never time out.
#[test]
fn a_hundred_kills_during_insert_and_remove_lose_nothing() {
    let dir = TempDir::new("churn-kill");
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let started = Instant::now();
    let (mut interrupted, mut recoveries) = (0, 0);
    for round in 0..100 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let r = run_round(&dir, round, 10_000, Some(Duration::from_micros(rng % 10_000)));
        interrupted += u32::from(r.interrupted);
        recoveries += r.recoveries;
    }
    eprintln!(
        "100 kill rounds in {:.1} s: {interrupted} kills interrupted a process, \
         {recoveries} of its locks recovered",
        started.elapsed().as_secs_f64()
    );
    assert!(interrupted >= 50, "too few kills landed mid-run ({interrupted}): raise the ops");
}

/// A process killed inside its insert's visitor (its slot NEW, counted at its claim): `recount`
/// (the documented fix-up after a crash) and the later recovery of the slot by a survivor's
/// insert of the same key count it once between them.
#[test]
fn recount_after_a_kill_inside_an_insert_then_recovery_counts_right() {
    use shmap::{AccessMode, Wait};
    let name = ShmName::new("churn-recount");
    let table = ShmHashTable::<u64, u64>::options().capacity(16).open(&name.backing()).unwrap();
    table.insert(&1, &10).unwrap();
    let mut holder = Worker::spawn(worker!("hold", name.as_str(), "5"));
    holder.expect("inside");
    holder.signal(libc::SIGKILL);
    let _ = holder.wait(Duration::from_secs(5));
    assert_eq!(table.len(), 2, "the killed insert was counted at its claim");
    assert_eq!(table.recount().unwrap(), 2, "and still counts until its slot is recovered");
    let wait = Wait::timeout(Duration::from_secs(5)).with_stale_check(Duration::from_millis(10));
    table.visit_with(&5, AccessMode::CreateIfMiss, wait, |_, v, _| *v = 50).unwrap();
    assert_eq!(table.segment().recoveries().total, 1);
    assert_eq!((table.len(), table.iter().count()), (2, 2));
}
