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
