//! Processes that die or stop while holding a slot: the others recover by themselves (dead
//! holders), or wait and report (live ones), and nothing committed is lost.

use std::time::{Duration, Instant};

use shmap::segment::Recoveries;
use shmap::{
    AccessMode, DefaultHasher, Liveness, Monitor, RecoverError, ShmHashTable, ShmHasher, SlotState,
    TableError, VisitError, Visited, Wait,
};
use shmap_tests::{ShmName, Worker, worker};

type Table = ShmHashTable<u64, u64>;

/// The stale-check interval these tests use: a waiter checks the holder's liveness after this.
const STALE: Duration = Duration::from_millis(100);

fn undo_table(name: &ShmName, capacity: usize) -> Table {
    Table::options()
        .capacity(capacity)
        .undo_records(true)
        .stale_check(STALE)
        .open(&name.backing())
        .unwrap()
}

fn kill(worker: &mut Worker) {
    worker.signal(libc::SIGKILL);
    let status = worker.wait(Duration::from_secs(10));
    assert!(!status.success());
}

#[test]
fn a_visitor_killed_inside_its_visit_is_recovered_by_the_next_visitor() {
    let name = ShmName::new("killed-visitor");
    let table = undo_table(&name, 64);
    table.visit(&5, AccessMode::CreateIfMiss, |_, v, _| *v = 50).unwrap();
    let mut holder = Worker::spawn(worker!("hold", name.as_str(), "5", "dirty"));
    let slot: usize = holder.expect("inside").parse().unwrap();
    assert_eq!(table.slot_state(slot), SlotState::Accessing);

    kill(&mut holder);
    let killed = Instant::now();
    let r = table.visit(&5, AccessMode::AccessExist, |_, v, _| *v += 1).unwrap();
    let recovered_after = killed.elapsed();
    assert_eq!(r, Visited::Found);
    assert_eq!(table.get(&5).unwrap(), Some(51), "the pre-visit value (the dead copy was 999999)");
    assert_eq!(
        table.segment().recoveries(),
        Recoveries { total: 1, torn: 0 },
        "one recovery, nothing torn"
    );
    assert!(recovered_after >= STALE, "recovered only after the stale-check interval");
    eprintln!("kill to recovered visit: {recovered_after:?} (stale-check interval {STALE:?})");
}

#[test]
fn a_process_killed_while_inserting_leaves_the_key_insertable_and_the_chain_intact() {
    const CAPACITY: usize = 64;
    let name = ShmName::new("killed-inserter");
    let table = undo_table(&name, CAPACITY);
    // Keys that share key 7's home slot, with other tags.
    let home = |k: u64| DefaultHasher::hash(&k.to_ne_bytes()) as usize & (CAPACITY - 1);
    let tag = |k: u64| DefaultHasher::hash(&k.to_ne_bytes()) >> 48;
    let victim = 7u64;
    let chain: Vec<u64> =
        (100..).filter(|&k| home(k) == home(victim) && tag(k) != tag(victim)).take(3).collect();

    let mut inserter = Worker::spawn(worker!("hold", name.as_str(), victim.to_string()));
    let slot: usize = inserter.expect("inside").parse().unwrap();
    assert_eq!(table.slot_state(slot), SlotState::New, "an insert in progress");
    for &k in &chain {
        // Inserted behind the unfinished insert: its tag differs, so it is not waited on.
        let quick = Wait::timeout(Duration::from_millis(50));
        table.visit_with(&k, AccessMode::CreateIfMiss, quick, |_, v, _| *v = k).unwrap();
    }
    kill(&mut inserter);

    assert_eq!(table.get(&victim).unwrap(), None, "the key never committed");
    let r = table.visit(&victim, AccessMode::CreateIfMiss, |s, v, new| {
        assert!(new && s == slot, "the freed slot is reused");
        *v = 70;
    });
    assert_eq!(r.unwrap(), Visited::Created);
    assert_eq!(table.get(&victim).unwrap(), Some(70));
    for &k in &chain {
        assert_eq!(
            table.get(&k).unwrap(),
            Some(k),
            "key {k} behind the dead insert is still found"
        );
    }
    assert_eq!(table.segment().recoveries(), Recoveries { total: 1, torn: 0 });
}

#[test]
fn a_stopped_holder_is_reported_alive_and_never_robbed() {
    let name = ShmName::new("stopped-holder");
    let table = undo_table(&name, 64);
    table.visit(&3, AccessMode::CreateIfMiss, |_, v, _| *v = 30).unwrap();
    let mut holder = Worker::spawn(worker!("hold", name.as_str(), "3"));
    let slot: usize = holder.expect("inside").parse().unwrap();
    holder.signal(libc::SIGSTOP);

    let mut monitor = Monitor::new(&table);
    assert!(monitor.poll(Duration::from_millis(150)).is_empty());
    std::thread::sleep(Duration::from_millis(200));
    let stuck = monitor.poll(Duration::from_millis(150));
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    let s = &stuck[0];
    assert_eq!((s.slot, s.state, s.liveness), (slot, SlotState::Accessing, Liveness::Alive));
    assert_eq!(s.process.unwrap().pid, holder.pid());
    assert_eq!((s.key_as::<u64>(), s.value_as::<u64>()), (3, 30));
    assert!(s.locked_for >= Duration::from_millis(150));
    assert_eq!(monitor.recover(s), Err(RecoverError::HolderAlive));

    // A waiter checks liveness every 20 ms, finds the holder alive, and times out.
    let wait =
        Wait::timeout(Duration::from_millis(300)).with_stale_check(Duration::from_millis(20));
    let r = table.visit_with(&3, AccessMode::AccessExist, wait, |_, v, _| *v = 0);
    assert!(matches!(r, Err(VisitError::Table(TableError::Timeout { .. }))), "{r:?}");
    assert_eq!(
        table.segment().recoveries(),
        Recoveries { total: 0, torn: 0 },
        "nobody stole the lock"
    );

    holder.signal(libc::SIGCONT);
    holder.close_stdin();
    assert_eq!(holder.line(), "released");
    holder.finish();
    assert_eq!(table.get(&3).unwrap(), Some(31), "the holder completed its visit");
}
