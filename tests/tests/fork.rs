//! An anonymous table shared across `fork`: the children use the handle they inherited, which
//! registers itself in the process table as their own process on first use.
//!
//! This test binary has no harness (`harness = false`): it is single-threaded when it forks, so
//! the children may allocate and take locks.

use shmap::{AccessMode, Liveness, ShmHashTable};

const CHILDREN: u64 = 3;
const ROUNDS: u64 = 20_000;
/// The key under which each child stores its owner id, offset by its number.
const OWNER_KEY: u64 = 1 << 40;

fn main() {
    children_share_an_inherited_table();
    children_of_a_threaded_parent_never_hang();
}

fn children_share_an_inherited_table() {
    let table = ShmHashTable::<u64, u64>::anonymous(4096).unwrap();
    let parent_owner = u64::from(table.segment().owner().unwrap().get());
    let mut pids = Vec::new();
    for child in 0..CHILDREN {
        // SAFETY: this process is single-threaded (no test harness), so the child may run
        // arbitrary code after fork.
        match unsafe { libc::fork() } {
            -1 => panic!("fork failed: {}", std::io::Error::last_os_error()),
            0 => {
                for i in 0..ROUNDS {
                    table.visit(&(i % 100), AccessMode::CreateIfMiss, |_, n, _| *n += 1).unwrap();
                }
                let owner = u64::from(table.segment().owner().unwrap().get());
                table
                    .visit(&(OWNER_KEY + child), AccessMode::CreateIfMiss, |_, v, _| *v = owner)
                    .unwrap();
                if child == 0 {
                    // Child 0 closes its handle, releasing its process-table entry; the others
                    // exit holding theirs, as a crashed process would.
                    // SAFETY: the child owns this copy of the parent's handle and never touches
                    // `table` again (it exits below), so it is dropped exactly once here.
                    drop(unsafe { std::ptr::read(&table) });
                }
                // SAFETY: ends the child without running the parent's atexit handlers twice.
                unsafe { libc::_exit(0) };
            }
            pid => pids.push(pid),
        }
    }
    for &pid in &pids {
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child {pid}: {status:#x}"
        );
    }
    for k in 0..100 {
        assert_eq!(table.get(&k).unwrap(), Some(CHILDREN * ROUNDS / 100), "key {k}");
    }
    let mut owners: Vec<u64> =
        (0..CHILDREN).map(|c| table.get(&(OWNER_KEY + c)).unwrap().unwrap()).collect();
    owners.push(parent_owner);
    owners.sort_unstable();
    owners.dedup();
    assert_eq!(owners.len() as u64, CHILDREN + 1, "each process registered its own owner id");
    let attached = table.segment().attached_processes();
    let pid_of = |i: usize| u32::try_from(pids[i]).unwrap();
    let alive: Vec<_> = attached.iter().map(|(_, p)| (p.pid, p.liveness())).collect();
    assert_eq!(attached.len(), 3, "the parent and the two children that did not close: {alive:?}");
    assert!(alive.contains(&(std::process::id(), Liveness::Alive)), "{alive:?}");
    assert!(alive.contains(&(pid_of(1), Liveness::Dead)), "{alive:?}");
    assert!(alive.contains(&(pid_of(2), Liveness::Dead)), "{alive:?}");
    println!(
        "fork: {CHILDREN} children × {ROUNDS} increments through an inherited anonymous table: ok"
    );
}

/// A child forked while another thread of its parent opens and drops tables (and so holds the
/// registry of registrations that the exit handler reads, at random moments) registers, drops
/// its handle and exits without waiting on a lock that no thread of the child can release.
/// Each child has 10 s (`alarm`) before SIGALRM ends it, which fails the test.
fn children_of_a_threaded_parent_never_hang() {
    const FORKS: u64 = 300;
    let table = ShmHashTable::<u64, u64>::anonymous(64).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut open = std::collections::VecDeque::new();
            // Relaxed: a stop flag; the join below synchronises.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                open.push_back(ShmHashTable::<u64, u64>::anonymous(16).unwrap());
                if open.len() > 50 {
                    open.pop_front();
                }
            }
        })
    };
    for i in 0..FORKS {
        // SAFETY: the child uses shmap handles (which a child of a threaded parent may: this
        // test checks it) and glibc's allocator (fork-safe), then ends with `_exit` or `exit`.
        match unsafe { libc::fork() } {
            -1 => panic!("fork failed: {}", std::io::Error::last_os_error()),
            0 => {
                // SAFETY: `alarm` has no preconditions.
                unsafe { libc::alarm(10) };
                table.insert(&(i % 32), &i).unwrap(); // registers the child
                if i % 2 == 0 {
                    // SAFETY: the child's copy of the handle, never touched again.
                    drop(unsafe { std::ptr::read(&table) }); // forgets the registration
                    // SAFETY: ends the child without the parent's exit handlers.
                    unsafe { libc::_exit(0) };
                }
                // SAFETY: a normal exit, which runs shmap's exit handler in the child.
                unsafe { libc::exit(0) };
            }
            pid => {
                let mut status = 0;
                // SAFETY: waits for our own child; `status` is a valid out-pointer.
                assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "child {i} (pid {pid}) hung or failed: {status:#x}"
                );
            }
        }
    }
    // Relaxed: see above.
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    churn.join().unwrap();
    let me = std::process::id();
    let listed: Vec<u32> = table
        .segment()
        .attached_processes()
        .into_iter()
        .map(|(_, p)| p.pid)
        .filter(|&pid| pid != me)
        .collect();
    assert!(listed.is_empty(), "children that exited or dropped are not attached: {listed:?}");
    println!("fork: {FORKS} children of a threaded parent registered, dropped or exited: ok");
}
