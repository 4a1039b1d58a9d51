use std::sync::atomic::{AtomicU32, AtomicU64};

use super::table::{FREE, ProcEntry, ProcessTable};
use super::*;

fn table(n: usize) -> Vec<ProcEntry> {
    (0..n)
        .map(|_| ProcEntry {
            state: AtomicU32::new(FREE),
            pid: AtomicU32::new(0),
            start_time: AtomicU64::new(0),
            boot_id: AtomicU64::new(0),
            pid_namespace: AtomicU64::new(0),
        })
        .collect()
}

#[test]
fn owner_ids_round_trip() {
    assert_eq!(OwnerId::from_bits(0), None);
    assert_eq!(OwnerId::from_bits(MAX_PROCESSES as u64 + 1), None);
    let id = OwnerId::from_bits(7).unwrap();
    assert_eq!((id.get(), id.index()), (7, 6));
}

#[test]
fn register_release_lookup() {
    let entries = table(3);
    let t = ProcessTable::new(&entries);
    let me = ProcessIdentity::current().unwrap();
    let a = t.register(&me, &|_| false).unwrap();
    let b = t.register(&me, &|_| false).unwrap();
    assert_ne!(a, b);
    assert_eq!(t.lookup(a), Some(me));
    assert_eq!(t.active().count(), 2);
    t.release(a);
    assert_eq!(t.lookup(a), None);
    assert_eq!(t.register(&me, &|_| false).unwrap(), a, "a released entry is reused");
}

#[test]
fn the_calling_process_is_alive() {
    assert_eq!(ProcessIdentity::current().unwrap().liveness(), Liveness::Alive);
}

#[cfg(not(miri))]
#[test]
fn current_identity_reads_proc() {
    let me = ProcessIdentity::current().unwrap();
    assert!(me.start_time > 0 && me.boot_id != 0 && me.pid_namespace != 0, "{me:?}");
}

#[cfg(not(miri))]
#[test]
fn dead_reused_and_foreign_processes() {
    let me = ProcessIdentity::current().unwrap();
    // A child that has exited and been reaped.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let gone = ProcessIdentity { pid, ..me };
    assert_eq!(gone.liveness(), Liveness::Dead);
    // Our pid with another start time: the pid was reused.
    assert_eq!(ProcessIdentity { start_time: me.start_time + 1, ..me }.liveness(), Liveness::Dead);
    // Another boot.
    assert_eq!(ProcessIdentity { boot_id: me.boot_id ^ 1, ..me }.liveness(), Liveness::Dead);
    // Another pid namespace: unknown, never dead.
    let foreign = ProcessIdentity { pid: 1, pid_namespace: me.pid_namespace ^ 1, ..me };
    assert_eq!(foreign.liveness(), Liveness::Unknown);
}

#[cfg(not(miri))]
#[test]
fn dead_entries_are_reclaimed_only_when_unreferenced() {
    let entries = table(1);
    let t = ProcessTable::new(&entries);
    let me = ProcessIdentity::current().unwrap();
    let dead = ProcessIdentity { start_time: me.start_time + 1, ..me };
    let id = t.register(&dead, &|_| false).unwrap();
    assert!(t.register(&me, &|_| true).is_err(), "a referenced dead entry is kept");
    assert_eq!(t.lookup(id), Some(dead));
    assert_eq!(t.register(&me, &|_| false).unwrap(), id);
    assert_eq!(t.lookup(id), Some(me));
    assert!(t.register(&me, &|_| false).is_err(), "a live entry is never reclaimed");
}

/// Without a wipe-on-fork page, a process and its child still differ (generation g and g + 1),
/// and no incarnation is 0.
#[test]
fn fallback_incarnations_differ_between_parent_and_child() {
    for generation in [0, 1, 7, (1 << 48) - 1] {
        let (parent, child) =
            (fallback_incarnation(generation), fallback_incarnation(generation + 1));
        assert!(parent != 0 && child != 0);
        assert_ne!(parent, child, "generation {generation}");
    }
}

/// A child forked while its parent's thread was installing finds the installation in progress
/// under another pid, and installs for itself instead of waiting for ever.
#[test]
fn an_installation_interrupted_by_fork_is_redone_in_the_child() {
    let state = AtomicU64::new((4242 << 2) | INSTALLING); // the parent, pid 4242, mid-way
    let mut ran = false;
    install_once(&state, 4343, || ran = true);
    assert!(ran);
    assert_eq!(state.load(std::sync::atomic::Ordering::Relaxed), (4343 << 2) | INSTALLED);
    install_once(&state, 4343, || panic!("installed twice in one process"));
    // An installation that finished in the parent holds in the child.
    install_once(&state, 5000, || panic!("the parent's installation was complete"));
}

/// Threads of one process install once between them, and all wait for it.
#[test]
fn threads_of_one_process_install_once() {
    let state = AtomicU64::new(0);
    let count = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                install_once(&state, 77, || {
                    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                });
                // Acquire: pairs with the installer's Release store of INSTALLED.
                assert_eq!(state.load(std::sync::atomic::Ordering::Acquire) & 3, INSTALLED);
            });
        }
    });
    assert_eq!(count.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[cfg(not(miri))]
#[test]
fn a_retired_entry_is_not_attached_but_still_names_its_process() {
    let entries = table(2);
    let t = ProcessTable::new(&entries);
    let me = ProcessIdentity::current().unwrap();
    let id = t.register(&me, &|_| false).unwrap();
    t.retire(id);
    assert_eq!(t.active().count(), 0, "an exited process is not attached");
    assert_eq!(t.lookup(id), Some(me), "its locks still name it");
    assert_eq!(t.lookup(id).unwrap().liveness(), Liveness::Alive);
    // While its process lives, the entry is not reclaimed: the second registration takes the
    // free entry, and a third finds none.
    let other = t.register(&me, &|_| false).unwrap();
    assert_ne!(other, id);
    assert!(t.register(&me, &|_| false).is_err(), "a live exited process keeps its entry");
    t.release(id);
    assert_eq!(t.lookup(id), None, "a drop after the exit handler frees the entry");
}

#[cfg(not(miri))]
#[test]
fn a_retired_entry_of_a_dead_process_is_reclaimed_only_when_unreferenced() {
    let entries = table(1);
    let t = ProcessTable::new(&entries);
    let me = ProcessIdentity::current().unwrap();
    let dead = ProcessIdentity { start_time: me.start_time + 1, ..me };
    let id = t.register(&dead, &|_| false).unwrap();
    t.retire(id);
    assert!(t.register(&me, &|_| true).is_err(), "a referenced exited entry is kept");
    assert_eq!(t.lookup(id), Some(dead), "and still names the dead process");
    assert_eq!(t.active().count(), 0, "as exited, not attached");
    assert_eq!(t.register(&me, &|_| false).unwrap(), id, "reclaimed once unreferenced");
    assert_eq!(t.active().collect::<Vec<_>>(), vec![(id, me)]);
}

/// While a reclaim checks an entry, the entry still names its process (a waiter judging one of
/// its locks must not find "no entry", which reads as dead), is still listed as attached, and
/// a `retire` by its process is not lost.
#[cfg(not(miri))]
#[test]
fn an_entry_under_a_reclaims_check_still_names_its_process() {
    let entries = table(1);
    let t = ProcessTable::new(&entries);
    let me = ProcessIdentity::current().unwrap();
    let dead = ProcessIdentity { start_time: me.start_time + 1, ..me };
    let id = t.register(&dead, &|_| false).unwrap();
    let checked = std::cell::Cell::new(false);
    let during_the_check = |checking: OwnerId| {
        assert_eq!(checking, id);
        assert_eq!(t.lookup(id), Some(dead), "the fields stay readable");
        assert_eq!(t.active().count(), 1, "still attached");
        t.retire(id);
        assert_eq!(t.active().count(), 0, "retired during the check");
        checked.set(true);
        true // referenced: the reclaim gives up
    };
    assert!(t.register(&me, &during_the_check).is_err());
    assert!(checked.get());
    assert_eq!(t.lookup(id), Some(dead), "back as it was, retired");
    assert_eq!(t.active().count(), 0);
    // Released during a check: the reclaim leaves the free entry alone.
    let entries = table(1);
    let t = ProcessTable::new(&entries);
    let id = t.register(&dead, &|_| false).unwrap();
    assert!(
        t.register(&me, &|_| {
            t.release(id);
            false
        })
        .is_err()
    );
    assert_eq!(t.lookup(id), None, "free");
    assert_eq!(t.register(&me, &|_| false).unwrap(), id, "and reusable");
}

/// A reclaim whose checks are cut short (its process killed: here, a panic) leaves the dead
/// process's entry as it was, reclaimable by the next registration; and a reclaim overtaken
/// by another (the entry refilled during its checks) takes nothing.
#[cfg(not(miri))]
#[test]
fn a_reclaim_cut_short_or_overtaken_leaves_the_entry_whole() {
    let entries = table(1);
    let t = ProcessTable::new(&entries);
    let me = ProcessIdentity::current().unwrap();
    let dead = ProcessIdentity { start_time: me.start_time + 1, ..me };
    let id = t.register(&dead, &|_| false).unwrap();
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        t.register(&me, &|_| panic!("the registrar dies in its scan"))
    }));
    assert!(killed.is_err());
    assert_eq!(t.lookup(id), Some(dead), "untouched");
    assert_eq!(t.active().collect::<Vec<_>>(), vec![(id, dead)]);
    let other = ProcessIdentity { pid: me.pid, start_time: me.start_time, ..me };
    let overtaken = t.register(&me, &|_| {
        // Another registrar reclaims the entry while this one scans.
        assert_eq!(t.register(&other, &|_| false).unwrap(), id);
        false
    });
    assert!(overtaken.is_err(), "the entry is the other registrar's now");
    assert_eq!(t.lookup(id), Some(other));
    assert!(
        t.register(&dead, &|_| false).is_err(),
        "the other registrar is alive: no entry is free"
    );
}
