//! A live holder is never robbed: liveness says dead only on proof. Each test puts a waiter in
//! a position where `/proc` cannot tell it whether the holder lives (no free file descriptor,
//! `hidepid=2` under another uid) or where `/proc/<pid>/stat` says `Z` for a process that still
//! runs (its main thread exited), and checks that the waiter times out and the holder's update
//! lands. Before liveness failed safe, each of these waiters recovered the live holder's slot
//! and the holder's write-back then overwrote the waiter's committed update.

use std::time::Duration;

use shmap::segment::Recoveries;
use shmap::{AccessMode, Liveness, Monitor, ShmHashTable, TableError, VisitError};
use shmap_tests::{ShmName, Worker, worker};

type Table = ShmHashTable<u64, u64>;

macro_rules! liveness_worker {
    ($($arg:expr),* $(,)?) => {{
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_liveness_worker"));
        $(command.arg($arg);)*
        command
    }};
}

/// The liveness worker started by `unshare UNSHARE_ARGS` (in other namespaces), and its first
/// line; `None`, with a note, where this machine refuses those namespaces (not root, or a
/// kernel without them).
fn in_namespace(unshare_args: &[&str], worker_args: &[&str]) -> Option<(Worker, String)> {
    let mut command = std::process::Command::new("unshare");
    command.args(unshare_args).arg(env!("CARGO_BIN_EXE_liveness_worker")).args(worker_args);
    let mut worker = Worker::spawn(command);
    match worker.try_line() {
        Some(line) => Some((worker, line)),
        None => {
            // SAFETY: `geteuid` has no preconditions.
            let root = unsafe { libc::geteuid() } == 0;
            eprintln!(
                "skipped: `unshare {}` was refused here (root: {root})",
                unshare_args.join(" ")
            );
            None
        }
    }
}

/// A table with key 1 → 0, writable by every uid (the `hidepid` test's waiter is `nobody`).
fn table(name: &ShmName) -> Table {
    let t = Table::options().capacity(64).mode(0o666).open(&name.backing()).unwrap();
    t.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v = 0).unwrap();
    t
}

/// A table with key 1 → `value` whose waits give up after 300 ms and check the holder's
/// liveness every 20 ms (so about 15 times before they give up).
fn impatient_table(name: &ShmName, value: u64) -> Table {
    let t = Table::options()
        .capacity(64)
        .timeout(Duration::from_millis(300))
        .stale_check(Duration::from_millis(20))
        .open(&name.backing())
        .unwrap();
    t.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v = value).unwrap();
    t
}

/// A `worker hold` process inside its visitor on key 1 (it sets 999_999, then adds 1 when its
/// stdin closes).
fn holder(name: &ShmName) -> Worker {
    let mut holder = Worker::spawn(worker!("hold", name.as_str(), "1", "dirty"));
    holder.expect("inside");
    holder
}

/// Lets the holder commit and checks that its update is the one in the table, and that
/// nothing was recovered.
fn release_and_check(t: &Table, mut holder: Worker) {
    holder.close_stdin();
    holder.expect("released");
    holder.finish();
    assert_eq!(t.get(&1).unwrap(), Some(1_000_000), "the holder's committed update");
    assert_eq!(t.segment().recoveries(), Recoveries { total: 0, torn: 0 }, "no lock was recovered");
}

/// A waiter with no free file descriptor (`EMFILE` on every `/proc` read) finds a live holder
/// in another process unknown, not dead: it times out.
#[test]
fn a_waiter_out_of_file_descriptors_never_robs_a_live_holder() {
    let name = ShmName::new("live-emfile");
    let t = table(&name);
    let holder = holder(&name);
    let mut waiter = Worker::spawn(liveness_worker!("visit-no-fds", name.as_str(), "1"));
    assert_eq!(waiter.line(), "timeout");
    waiter.finish();
    release_and_check(&t, holder);
}

/// The same inside one process: a thread out of file descriptors never robs its sibling, a
/// second handle does not take over a ring role held by the first, and a monitor does not
/// recover the sibling's slot. Liveness reads the process's own identity once, at
/// registration, so running out of descriptors later cannot make its own entries look dead.
#[test]
fn a_thread_out_of_file_descriptors_never_robs_its_sibling() {
    let name = ShmName::new("live-siblings");
    let ring = ShmName::new("live-siblings-ring");
    let t = table(&name);
    let _ring = shmap::ring::SpscRing::<u64>::options().capacity(4).open(&ring.backing()).unwrap();
    let mut w = Worker::spawn(liveness_worker!("siblings-no-fds", name.as_str(), ring.as_str()));
    assert_eq!(w.line(), "visit timeout");
    assert_eq!(w.line(), "claim refused");
    assert!(w.line().starts_with("recover refused"), "the monitor robbed a live holder");
    assert_eq!(w.line(), "value 1", "the sibling's increment, alone");
    w.finish();
    assert_eq!(t.segment().recoveries(), Recoveries { total: 0, torn: 0 });
}

/// With `/proc` mounted `hidepid=2`, a waiter of another uid can neither signal the holder
/// (`EPERM`) nor see it in `/proc` (`ENOENT`): unknown, so it waits and times out.
#[test]
fn a_waiter_that_cannot_see_the_holder_in_proc_never_robs_it() {
    let name = ShmName::new("live-hidepid");
    let t = table(&name);
    let holder = holder(&name);
    // 65534: `nobody`, which may neither signal the root holder nor see it.
    let mut waiter = Worker::spawn(liveness_worker!("visit-hidden", name.as_str(), "1", "65534"));
    let line = waiter.line();
    if let Some(why) = line.strip_prefix("unsupported ") {
        // SAFETY: `geteuid` has no preconditions.
        assert_ne!(unsafe { libc::geteuid() }, 0, "root could not mount /proc: {why}");
        eprintln!("skipped: a private /proc with hidepid=2 needs root ({why})");
        return;
    }
    assert_eq!(line, "timeout");
    waiter.finish();
    release_and_check(&t, holder);
}

/// A process whose main thread called `pthread_exit` shows `Z` in `/proc/<pid>/stat` while its
/// other threads run: a waiter finds its holding thread alive and times out.
#[test]
fn a_holder_whose_main_thread_exited_is_alive() {
    let name = ShmName::new("live-zombie-main");
    let t = impatient_table(&name, 41);
    let mut holder = Worker::spawn(liveness_worker!("zombie-main", name.as_str(), "1"));
    holder.expect("inside");
    let stat = format!("/proc/{}/stat", holder.pid());
    let state = || {
        let text = std::fs::read_to_string(&stat).unwrap();
        text[text.rfind(')').unwrap() + 2..].chars().next().unwrap()
    };
    let start = std::time::Instant::now();
    while state() != 'Z' {
        assert!(start.elapsed() < Duration::from_secs(10), "the main thread did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
    match t.visit(&1, AccessMode::AccessExist, |_, v, _| *v = 51) {
        Err(VisitError::Table(TableError::Timeout { holder: Some(h), .. })) => {
            assert_eq!(h.process.map(|p| p.pid), Some(holder.pid()));
            assert_eq!(t.owner_liveness(h.owner), Liveness::Alive);
        }
        other => panic!("the holder was robbed: {other:?}"),
    }
    holder.close_stdin();
    holder.expect("released");
    holder.finish();
    assert_eq!(t.get(&1).unwrap(), Some(42), "the holder's increment");
    assert_eq!(t.segment().recoveries(), Recoveries { total: 0, torn: 0 });
}

/// Once every thread of that process has exited, it is dead, and a waiter recovers its slot.
#[test]
fn a_holder_killed_with_its_main_thread_gone_is_dead() {
    let name = ShmName::new("live-zombie-killed");
    let t = Table::options()
        .capacity(64)
        .stale_check(Duration::from_millis(20))
        .open(&name.backing())
        .unwrap();
    t.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v = 41).unwrap();
    let mut holder = Worker::spawn(liveness_worker!("zombie-main", name.as_str(), "1"));
    holder.expect("inside");
    holder.signal(libc::SIGKILL);
    // Not reaped yet: a zombie with no live thread, which is dead.
    std::thread::sleep(Duration::from_millis(50));
    t.visit(&1, AccessMode::AccessExist, |_, v, _| *v += 1).unwrap();
    assert_eq!(t.get(&1).unwrap(), Some(42), "the value before the killed visit, plus ours");
    assert_eq!(t.segment().recoveries(), Recoveries { total: 1, torn: 0 });
}

/// Start times in `/proc/<pid>/stat` are shifted by the reader's time namespace: a waiter in
/// a time namespace with another boottime offset (a CRIU restore, `unshare -T`) compares them
/// in the initial namespace's time base, finds the holder alive, and times out.
#[test]
fn a_waiter_in_another_time_namespace_never_robs_a_live_holder() {
    let name = ShmName::new("live-timens-waiter");
    let t = table(&name);
    let holder = holder(&name);
    let args = ["-T", "--boottime", "1000", "-f"];
    let Some((waiter, line)) = in_namespace(&args, &["visit", name.as_str(), "1"]) else {
        return;
    };
    assert_eq!(line, "timeout");
    waiter.finish();
    release_and_check(&t, holder);
}

/// The same the other way round: a holder in a time namespace, a waiter (this process) outside.
#[test]
fn a_holder_in_another_time_namespace_is_alive() {
    let name = ShmName::new("live-timens-holder");
    let t = impatient_table(&name, 0);
    let mut command = std::process::Command::new("unshare");
    command.args(["-T", "--boottime", "1000", "-f", env!("CARGO_BIN_EXE_worker")]);
    command.args(["hold", name.as_str(), "1", "dirty"]);
    let mut holder = Worker::spawn(command);
    match holder.try_line() {
        Some(line) => assert!(line.starts_with("inside"), "{line}"),
        None => return eprintln!("skipped: `unshare -T` was refused here"),
    }
    match t.visit(&1, AccessMode::AccessExist, |_, v, _| *v = 51) {
        Err(VisitError::Table(TableError::Timeout { .. })) => {}
        other => panic!("the holder was robbed: {other:?}"),
    }
    release_and_check(&t, holder);
}

/// A process in a pid namespace without a `/proc` of its own (`unshare -p -f` without
/// `--mount-proc`) would read other processes' entries under its pids: it cannot tell who is
/// who, so it refuses to register, with a typed error.
#[test]
fn a_process_whose_proc_is_another_pid_namespaces_refuses_to_register() {
    let name = ShmName::new("live-foreign-proc");
    let _t = table(&name);
    let Some((w, line)) = in_namespace(&["-p", "-f"], &["open", name.as_str()]) else {
        return;
    };
    assert!(line.starts_with("error Register(IdentityUnavailable"), "{line}");
    w.finish();
}

/// A `fork` child reads its own identity: pid 1 of a pid namespace forks a child into a new
/// pid namespace (also pid 1 there, without a `/proc` of its own), which must not reuse its
/// parent's cached identity, and refuses to register.
#[test]
fn a_fork_child_with_its_parents_pid_reads_its_own_identity() {
    let name = ShmName::new("live-nested-pidns");
    let _t = table(&name);
    let args = ["-p", "-f", "--mount-proc"];
    let Some((w, line)) = in_namespace(&args, &["nested", name.as_str()]) else {
        return;
    };
    assert!(line.starts_with("child error Register(IdentityUnavailable"), "{line}");
    w.finish();
}

/// A waiter whose view of the boot id differs (a bind mount over
/// `/proc/sys/kernel/random/boot_id`) sees a holder that runs with the recorded pid and start
/// time: not proof of another boot, so it waits.
#[test]
fn a_waiter_with_another_boot_id_view_never_robs_a_live_holder() {
    let name = ShmName::new("live-boot-id");
    let dir = shmap_tests::TempDir::new("boot-id");
    let fake = dir.path().join("boot_id");
    std::fs::write(&fake, "11111111-2222-3333-4444-555555555555\n").unwrap();
    let t = table(&name);
    let holder = holder(&name);
    let script = format!(
        "mount --bind {} /proc/sys/kernel/random/boot_id && exec {} visit {} 1",
        fake.display(),
        env!("CARGO_BIN_EXE_liveness_worker"),
        name.as_str()
    );
    let mut command = std::process::Command::new("unshare");
    command.args(["-m", "sh", "-c", &script]);
    let mut waiter = Worker::spawn(command);
    let Some(line) = waiter.try_line() else {
        return eprintln!("skipped: a private mount namespace was refused here");
    };
    assert_eq!(line, "timeout");
    waiter.finish();
    release_and_check(&t, holder);
}

/// A waiter in a time namespace whose boottime offset is more negative than the holder's start
/// time reads a wrapped start time from the kernel: it cannot normalise it, so a difference
/// proves nothing, and it waits.
#[test]
fn a_waiter_with_a_negative_boottime_offset_never_robs_a_live_holder() {
    let name = ShmName::new("live-timens-negative");
    let t = table(&name);
    let holder = holder(&name);
    // An offset just more negative than the holder's start time (in seconds since boot), so
    // that the kernel's shifted start time of the holder wraps below zero, while the waiter,
    // started later, keeps a positive one.
    std::thread::sleep(Duration::from_millis(2500));
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", holder.pid())).unwrap();
    let ticks: u64 =
        stat[stat.rfind(')').unwrap() + 2..].split_whitespace().nth(19).unwrap().parse().unwrap();
    // SAFETY: `sysconf` has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let offset = format!("-{}", ticks / ticks_per_second + 1);
    let args = ["-T", "--boottime", &offset, "-f"];
    let Some((waiter, line)) = in_namespace(&args, &["visit", name.as_str(), "1"]) else {
        return;
    };
    assert_eq!(line, "timeout");
    waiter.finish();
    release_and_check(&t, holder);
}

/// A process that moved its children to a new time namespace (`unshare(CLONE_NEWTIME)`) cannot
/// read its own boottime offset (`timens_offsets` shows the children's), so it refuses to
/// register rather than record a start time in the wrong time base.
#[test]
fn a_process_that_unshared_its_time_namespace_refuses_to_register() {
    let name = ShmName::new("live-unshare-time");
    let _t = table(&name);
    let mut w = Worker::spawn(liveness_worker!("unshare-time", name.as_str()));
    let Some(line) = w.try_line() else {
        return eprintln!("skipped: unshare(CLONE_NEWTIME) was refused here");
    };
    assert!(line.starts_with("error Register(IdentityUnavailable"), "{line}");
    w.finish();
}

/// A process whose main thread exited and whose threads keep starting and exiting is alive:
/// a listing of `/proc/<pid>/task` can miss the thread that runs, the `Threads:` count cannot.
#[test]
fn a_process_whose_threads_come_and_go_is_alive() {
    let name = ShmName::new("live-relay");
    let t = table(&name);
    let mut relay = Worker::spawn(liveness_worker!("relay", name.as_str()));
    assert_eq!(relay.line(), "registered");
    let pid = relay.pid();
    let who = t
        .segment()
        .attached_processes()
        .into_iter()
        .find_map(|(_, p)| (p.pid == pid).then_some(p))
        .expect("the relay registered");
    let stat = format!("/proc/{pid}/stat");
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(&stat).unwrap().contains(") Z ") {
        assert!(start.elapsed() < Duration::from_secs(10), "the main thread did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
    let dead = (0..20_000).filter(|_| who.liveness() == Liveness::Dead).count();
    assert_eq!(dead, 0, "a live process was judged dead {dead} times in 20,000");
    relay.close_stdin();
    relay.finish();
}

/// A child made by the raw `fork` system call (no `pthread_atfork` handler runs, as with
/// glibc's `_Fork` or `clone`) registers anew: its lock names it, not its exited parent, so a
/// waiter finds the holder alive and times out.
#[test]
fn a_child_of_a_raw_fork_is_not_taken_for_its_parent() {
    let name = ShmName::new("live-rawfork");
    let t = impatient_table(&name, 41);
    let mut holder = Worker::spawn(liveness_worker!("rawfork-hold", name.as_str(), "1"));
    holder.expect("inside");
    holder.wait(Duration::from_secs(10)); // the parent has exited; its child holds the slot
    match t.visit(&1, AccessMode::AccessExist, |_, v, _| *v = 51) {
        Err(VisitError::Table(TableError::Timeout { .. })) => {}
        other => panic!("the child was robbed: {other:?}"),
    }
    holder.close_stdin();
    holder.expect("released");
    assert_eq!(t.get(&1).unwrap(), Some(42), "the child's increment");
    assert_eq!(t.segment().recoveries(), Recoveries { total: 0, torn: 0 });
}

/// A process that exits normally with a handle that is never dropped (a static, as
/// `#[shm_table]` makes) is not left listed as attached; its entry still names it, so a lock
/// another of its threads held at the exit is judged by its identity (dead, once it has
/// exited) and recovered, never left to look like some other process's.
#[test]
fn a_process_that_exits_normally_is_not_left_attached() {
    let name = ShmName::new("live-exit");
    let t = table(&name);
    let me = std::process::id();
    let pids = |t: &Table| -> Vec<u32> {
        t.segment().attached_processes().into_iter().map(|(_, p)| p.pid).collect()
    };

    let mut plain = Worker::spawn(worker!("exit-static", name.as_str(), "10"));
    plain.expect("owner ");
    assert_eq!(pids(&t).len(), 2, "attached while it runs: {:?}", pids(&t));
    plain.close_stdin();
    plain.finish();
    assert_eq!(pids(&t), vec![me], "only this process is attached");
    assert_eq!(t.get(&10).unwrap(), Some(1), "its insert stays");

    // A handle opened after shmap's exit handler ran (in a later exit handler) is retired at
    // once.
    let mut late = Worker::spawn(worker!("exit-static", name.as_str(), "30", "late"));
    late.expect("owner ");
    late.close_stdin();
    late.finish();
    assert_eq!(pids(&t), vec![me], "a late registration is not left attached either");
    assert_eq!(t.get(&7).unwrap(), Some(7), "the late handle worked");

    let mut holding = Worker::spawn(worker!("exit-static", name.as_str(), "20", "hold"));
    let owner: u16 = holding.expect("owner ").parse().unwrap();
    assert_eq!(holding.line(), "inside");
    let pid = holding.pid();
    holding.close_stdin();
    holding.finish();
    assert_eq!(pids(&t), vec![me], "the holder exited: not attached either");
    let mut monitor = Monitor::new(&t);
    let stuck = monitor.poll(Duration::ZERO);
    assert_eq!(stuck.len(), 1, "{stuck:?}");
    let s = &stuck[0];
    assert_eq!(s.owner.map(|o| o.get()), Some(owner));
    assert_eq!(s.process.map(|p| p.pid), Some(pid), "the lock still names its process");
    assert_eq!(s.liveness, Liveness::Dead);
    monitor.recover(s).unwrap();
    assert_eq!(t.get(&21).unwrap(), None, "the uncommitted insert was rolled back");
    assert_eq!(t.get(&20).unwrap(), Some(1));
}
