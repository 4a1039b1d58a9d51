//! Tables shared by real processes: exact counts under contention, racing creators, a slot
//! held by another process, and a visitor that panics in another process.

use std::time::{Duration, Instant, SystemTime};

use shmap::{AccessMode, ShmHashTable, SlotState, TableError, TravelOutcome, VisitError, Wait};
use shmap_tests::{ShmName, Worker, worker};

type Table = ShmHashTable<u64, u64>;

/// How much later than its timeout a wait may return. By design the overshoot is one backoff
/// step (at most 1 ms of sleep) plus the scheduler's delay in waking the thread; the bound is
/// generous because CI machines are shared and noisy.
const TIMEOUT_SLACK: Duration = Duration::from_secs(1);

#[test]
fn four_processes_increment_a_thousand_keys_exactly() {
    let name = ShmName::new("increments");
    let workers: Vec<Worker> = (0..4)
        .map(|_| Worker::spawn(worker!("increment", name.as_str(), "2048", "1000", "10000")))
        .collect();
    for w in workers {
        w.finish();
    }
    let table = Table::open(name.as_str()).unwrap();
    for key in 0..1000 {
        assert_eq!(table.get(&key).unwrap(), Some(40), "key {key}: 4 processes × 10 increments");
    }
    let (mut keys, mut total) = (0, 0);
    assert!(
        table
            .travel(|_, _, n| {
                keys += 1;
                total += *n;
            })
            .unwrap()
            .is_completed()
    );
    assert_eq!((keys, total), (1000, 40_000));
}

#[test]
fn eight_racing_creators_share_one_table_thirty_times() {
    for round in 0..30 {
        let name = ShmName::new("race");
        let start = SystemTime::now() + Duration::from_millis(150);
        let start_ns = start.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos().to_string();
        let mut workers: Vec<Worker> = (0..8)
            .map(|id| {
                Worker::spawn(worker!("race", name.as_str(), "64", &start_ns, id.to_string()))
            })
            .collect();
        let reports: Vec<(bool, String, String)> = workers
            .iter_mut()
            .map(|w| {
                let line = w.expect("opened");
                let field = |k: &str| {
                    line.split_whitespace()
                        .find_map(|f| f.strip_prefix(k))
                        .unwrap_or_else(|| panic!("no {k} in {line:?}"))
                        .to_owned()
                };
                (field("created=") == "true", field("segment="), field("creator="))
            })
            .collect();
        let creators: Vec<_> = workers.iter().zip(&reports).filter(|(_, r)| r.0).collect();
        assert_eq!(creators.len(), 1, "round {round}: exactly one process creates: {reports:?}");
        let creator_pid = creators[0].0.pid().to_string();
        for (_, segment, creator) in &reports {
            assert_eq!(segment, &reports[0].1, "round {round}: one segment for all: {reports:?}");
            assert_eq!(creator, &creator_pid, "round {round}: {reports:?}");
        }
        for w in workers {
            w.finish();
        }
        let table = Table::open(name.as_str()).unwrap();
        for id in 0..8 {
            assert_eq!(table.get(&id).unwrap(), Some(id + 1), "round {round}: key {id}");
        }
    }
    let leftovers: Vec<_> = std::fs::read_dir(shmap::segment::SHM_DIR)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            n.starts_with(".shmap-tmp.") && n.contains(&format!(".{}.", std::process::id()))
        })
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
}

/// A creator killed at any point of creation leaves either nothing or a complete segment, so
/// the next opener never waits for it: it creates the table or opens the complete one at once.
#[test]
fn a_creator_killed_during_creation_leaves_nothing_or_a_complete_segment() {
    const SLOTS: u64 = 1 << 24; // 384 MiB to reserve and map: ~130 ms, so kills land inside
    let mut left_complete = 0;
    for round in 0..12u64 {
        let name = ShmName::new("killed-creator");
        let mut creator = Worker::spawn(worker!("create", name.as_str(), SLOTS.to_string()));
        std::thread::sleep(Duration::from_millis(round * 12));
        creator.signal(libc::SIGKILL);
        creator.wait(Duration::from_secs(30));
        let existed = name.path().exists();
        let start = Instant::now();
        let table = Table::options()
            .capacity(SLOTS as usize)
            .open_timeout(Duration::from_secs(1))
            .open(&name.backing())
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(start.elapsed() < Duration::from_secs(5), "round {round}: the opener waited");
        assert_eq!(table.info().created_by_this_handle, !existed, "round {round}");
        table.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v += 1).unwrap();
        assert_eq!(table.get(&1).unwrap(), Some(1));
        left_complete += usize::from(existed);
    }
    eprintln!("{left_complete} of 12 killed creators had published a complete segment");
    let leftovers: Vec<_> = std::fs::read_dir(shmap::segment::SHM_DIR)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(".shmap-tmp."))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left behind: {leftovers:?}");
}

#[test]
fn a_slot_held_by_another_process_times_out_and_does_not_block_readers() {
    let name = ShmName::new("held");
    let table = Table::open_or_create(name.as_str(), 64).unwrap();
    table.visit(&5, AccessMode::CreateIfMiss, |_, v, _| *v = 50).unwrap();
    let mut holder = Worker::spawn(worker!("hold", name.as_str(), "5"));
    let slot: usize = holder.expect("inside").parse().unwrap();
    assert_eq!(table.slot_state(slot), SlotState::Accessing);

    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    let err = table
        .visit_with(&5, AccessMode::AccessExist, Wait::timeout(timeout), |_, v, _| *v += 1)
        .unwrap_err();
    let elapsed = start.elapsed();
    match &err {
        VisitError::Table(TableError::Timeout { slot: s, state, holder: Some(h), waited }) => {
            assert_eq!((*s, *state), (slot, SlotState::Accessing));
            assert_eq!(h.process.expect("registered").pid, holder.pid(), "names the holder");
            assert!(*waited >= timeout);
        }
        other => panic!("expected a timeout naming the holder, got {other:?}"),
    }
    assert!(err.to_string().contains(&format!("pid {}", holder.pid())), "{err}");
    assert!(elapsed >= timeout, "returned after {elapsed:?}, before its timeout");
    assert!(elapsed < timeout + TIMEOUT_SLACK, "returned {elapsed:?} after a {timeout:?} timeout");

    // Readers are not blocked by the visitor: they see the committed value.
    assert_eq!(table.get_with(&5, Wait::timeout(timeout)).unwrap(), Some(50));

    // A travel waits on the held slot and reports where it stopped.
    let outcome =
        table.travel_with(Wait::timeout(Duration::from_millis(100)), |_, _, _| {}).unwrap();
    match outcome {
        TravelOutcome::TimedOut { slot: s, state, holder: Some(h), .. } => {
            assert_eq!((s, state), (slot, SlotState::Accessing));
            assert_eq!(h.process.unwrap().pid, holder.pid());
        }
        other => panic!("expected a travel timeout, got {other:?}"),
    }

    holder.close_stdin();
    assert_eq!(holder.line(), "released");
    holder.finish();
    assert_eq!(table.get(&5).unwrap(), Some(51), "the holder's write-back is visible");
    assert!(table.travel(|_, _, _| {}).unwrap().is_completed());
}

#[test]
fn a_visitor_panicking_in_another_process_leaves_the_table_usable() {
    let name = ShmName::new("panic");
    let table = Table::open_or_create(name.as_str(), 64).unwrap();
    table.visit(&9, AccessMode::CreateIfMiss, |_, v, _| *v = 90).unwrap();
    let mut command = worker!("panic", name.as_str(), "9");
    command.env("RUST_BACKTRACE", "0"); // the panic message is expected; keep the log short
    let mut child = Worker::spawn(command);
    let status = child.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(101), "the child died of its panic");
    assert_eq!(table.get(&9).unwrap(), Some(90), "rolled back");
    let slot = table.read(&9, |s, _| s).unwrap().unwrap();
    assert_eq!(table.slot_state(slot), SlotState::Ready, "unlocked");
    let quick = Wait::timeout(Duration::from_millis(100));
    table.visit_with(&9, AccessMode::AccessExist, quick, |_, v, _| *v += 1).unwrap();
    assert_eq!(table.get(&9).unwrap(), Some(91));
}

/// Iterating without locks while another process updates and inserts: every key present for
/// the whole iteration is yielded exactly once, with a value no older than the one the previous
/// iteration saw (values only grow), and keys inserted meanwhile at most once.
#[test]
fn an_iteration_sees_every_present_key_once_while_another_process_writes() {
    const PRESENT: u64 = 100;
    const ALL: u64 = 300;
    let name = ShmName::new("iter-vs-writer");
    let table = ShmHashTable::<u64, u64>::open_or_create(name.as_str(), 1024).unwrap();
    for k in 0..PRESENT {
        table.insert(&k, &0).unwrap();
    }
    // Increments keys 0..300 round-robin: updates the present ones, inserts the others.
    let mut writer =
        Worker::spawn(worker!("increment", name.as_str(), "1024", ALL.to_string(), "3000000"));
    let mut last = vec![0u64; PRESENT as usize];
    let mut iterations = 0;
    while writer.try_wait().is_none() || iterations == 0 {
        let mut seen = vec![0u32; ALL as usize];
        for entry in table.iter() {
            let (k, v) = entry.unwrap();
            assert!(k < ALL, "a key nobody inserted: {k}");
            seen[k as usize] += 1;
            if k < PRESENT {
                assert!(
                    v >= last[k as usize],
                    "key {k} went back from {} to {v}",
                    last[k as usize]
                );
                last[k as usize] = v;
            }
        }
        assert!(seen[..PRESENT as usize].iter().all(|&n| n == 1), "a present key not seen once");
        assert!(seen.iter().all(|&n| n <= 1), "a key seen twice");
        iterations += 1;
    }
    writer.finish();
    let total: u64 = table.values().map(Result::unwrap).sum();
    assert_eq!(total, 3_000_000, "every increment committed (the pre-inserted zeros add none)");
    assert!(iterations > 1, "the iterations overlapped the writer ({iterations})");
}
