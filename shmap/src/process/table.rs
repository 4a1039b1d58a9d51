//! The process table in a segment's header: where each attached handle registers, so that a
//! lock can name its holder in 12 bits, and where a dead process's entry is reclaimed once
//! nothing names it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::process::{Liveness, OwnerId, ProcessIdentity};

/// Entry states.
pub(super) const FREE: u32 = 0;
/// Being filled in (by a registration, or a reclaim that proved the previous process dead and
/// unreferenced); others skip it.
const CLAIMED: u32 = 1;
/// Filled in: the fields describe a registered process.
const ACTIVE: u32 = 2;
/// Released by the process's exit (see [`ProcessTable::retire`]): the fields still describe
/// it, so that a lock one of its threads took, or takes while the process exits, is judged by
/// its identity like any other; it is not attached any more, and is reclaimed once its process
/// is proven dead and nothing names it.
const EXITED: u32 = 3;
/// ACTIVE, or EXITED, while a reclaim checks whether its process is dead and unreferenced: the
/// fields still name the entry's process (whose locks must go on being judged by them, even if
/// it is not the dead process the reclaimer first saw but one that re-registered there in
/// between), and its own `retire` or `release` still applies.
const CHECKING_ACTIVE: u32 = 4;
const CHECKING_EXITED: u32 = 5;

/// The state a reclaim's check puts an entry in, from `state` (ACTIVE or EXITED).
fn checking(state: u32) -> u32 {
    if state == ACTIVE { CHECKING_ACTIVE } else { CHECKING_EXITED }
}

/// The state an entry goes back to after a reclaim's check, from `state` (CHECKING_*).
fn unchecked(state: u32) -> u32 {
    if state == CHECKING_ACTIVE { ACTIVE } else { EXITED }
}

/// Whether an entry in `state` names a process: its fields describe it.
fn names_a_process(state: u32) -> bool {
    matches!(state, ACTIVE | EXITED | CHECKING_ACTIVE | CHECKING_EXITED)
}

/// Whether an entry in `state` is attached (registered, not released, not exited).
fn attached(state: u32) -> bool {
    matches!(state, ACTIVE | CHECKING_ACTIVE)
}

/// One registered process. Fields are written while the entry is CLAIMED and published by the
/// Release store of ACTIVE; readers load `state` with Acquire before reading them.
#[repr(C)]
pub(crate) struct ProcEntry {
    pub(super) state: AtomicU32,
    pub(super) pid: AtomicU32,
    pub(super) start_time: AtomicU64,
    pub(super) boot_id: AtomicU64,
    pub(super) pid_namespace: AtomicU64,
}

/// The process table of a segment, over memory in its header.
pub(crate) struct ProcessTable<'a> {
    entries: &'a [ProcEntry],
}

/// Registration failed: every entry is held by a live (or not provably dead) process.
#[derive(Debug)]
pub(crate) struct ProcessTableFull;

impl<'a> ProcessTable<'a> {
    pub(crate) fn new(entries: &'a [ProcEntry]) -> Self {
        ProcessTable { entries }
    }

    /// Registers `me` and returns its id.
    ///
    /// Takes a free entry if there is one; otherwise reclaims the entry of a dead process
    /// (attached, or exited) that `is_referenced` says no slot still names.
    pub(crate) fn register(
        &self,
        me: &ProcessIdentity,
        is_referenced: &dyn Fn(OwnerId) -> bool,
    ) -> Result<OwnerId, ProcessTableFull> {
        let n = self.entries.len();
        let start = me.pid as usize % n;
        for i in (start..n).chain(0..start) {
            let entry = &self.entries[i];
            // Acquire on success: pairs with the Release store of FREE in `release`, so the
            // previous holder's writes to the entry are ordered before ours.
            if entry
                .state
                .compare_exchange(FREE, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                fill(entry, me);
                return Ok(OwnerId::from_index(i));
            }
        }
        for i in 0..n {
            if let Some(id) = self.try_reclaim(i, me, is_referenced) {
                return Ok(id);
            }
        }
        Err(ProcessTableFull)
    }

    fn try_reclaim(
        &self,
        i: usize,
        me: &ProcessIdentity,
        is_referenced: &dyn Fn(OwnerId) -> bool,
    ) -> Option<OwnerId> {
        let entry = &self.entries[i];
        // Acquire: pairs with the Release store of ACTIVE in `fill`, making the fields readable.
        let state = entry.state.load(Ordering::Acquire);
        if state != ACTIVE && state != EXITED {
            return None;
        }
        let old = read_fields(entry);
        if old.liveness() != Liveness::Dead {
            return None;
        }
        // Acquire: as above; the CAS makes us the only reclaimer of this entry. It may succeed
        // on an entry that another reclaim gave to a new process in between (the state went
        // ACTIVE, CLAIMED, ACTIVE): CHECKING keeps that process's fields readable, and the
        // comparison below sees that they are not the dead process's any more.
        if entry
            .state
            .compare_exchange(state, checking(state), Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        let id = OwnerId::from_index(i);
        if read_fields(entry) != old || is_referenced(id) {
            // Someone re-registered in between, or a slot still names the dead process: leave
            // the entry to recovery.
            restore(entry);
            return None;
        }
        // Acquire: as above. Fails only if the entry's process released it (it is then not
        // the dead process we proved dead: leave the entry alone) or retired it meanwhile.
        if let Err(now) = entry.state.compare_exchange(
            checking(state),
            CLAIMED,
            Ordering::Acquire,
            Ordering::Relaxed,
        ) {
            if now == checking(EXITED) || now == checking(ACTIVE) {
                restore(entry);
            }
            return None;
        }
        fill(entry, me);
        Some(id)
    }

    /// Fills `id`'s entry with `who`, as a registration that reclaimed it would: for the loom
    /// model of owner-id reuse.
    #[cfg(all(test, shmap_loom))]
    pub(crate) fn loom_refill(&self, id: OwnerId, who: &ProcessIdentity) {
        fill(&self.entries[id.index()], who);
    }

    /// Releases `id`'s entry (its process holds no lock any more).
    pub(crate) fn release(&self, id: OwnerId) {
        let entry = &self.entries[id.index()];
        fill_fields(
            entry,
            &ProcessIdentity { pid: 0, start_time: 0, boot_id: 0, pid_namespace: 0 },
        );
        // Release: pairs with the Acquire CAS in `register`, which reuses the entry.
        entry.state.store(FREE, Ordering::Release);
    }

    /// Marks `id`'s entry as its process's exit left it: no longer attached, but still naming
    /// the process (threads other than the exiting one may run on, and lock, until the kernel
    /// ends them). Does nothing to an entry that is not active.
    pub(crate) fn retire(&self, id: OwnerId) {
        let entry = &self.entries[id.index()];
        for (from, to) in [(ACTIVE, EXITED), (CHECKING_ACTIVE, CHECKING_EXITED)] {
            // Release: pairs with the Acquire loads of `state` in `lookup` and `try_reclaim`
            // (the fields, unchanged, stay published).
            if entry.state.compare_exchange(from, to, Ordering::Release, Ordering::Relaxed).is_ok()
            {
                return;
            }
        }
        // A reclaim's check that ended between the two attempts: once more.
        let _ = entry.state.compare_exchange(ACTIVE, EXITED, Ordering::Release, Ordering::Relaxed);
    }

    /// The identity registered under `id`, if the entry is active or retired by an exit.
    pub(crate) fn lookup(&self, id: OwnerId) -> Option<ProcessIdentity> {
        let entry = self.entries.get(id.index())?;
        // Acquire: pairs with the Release store of ACTIVE in `fill`.
        names_a_process(entry.state.load(Ordering::Acquire)).then(|| read_fields(entry))
    }

    /// Every attached process (active entry), for the monitor and `inspect`.
    pub(crate) fn active(&self) -> impl Iterator<Item = (OwnerId, ProcessIdentity)> + '_ {
        self.entries
            .iter()
            .enumerate()
            // Acquire: pairs with the Release store of ACTIVE in `fill`.
            .filter(|(_, entry)| attached(entry.state.load(Ordering::Acquire)))
            .map(|(i, entry)| (OwnerId::from_index(i), read_fields(entry)))
    }
}

/// Ends a reclaim's check of `entry`: back to ACTIVE or EXITED, as its process left it
/// (unless it released the entry meanwhile).
fn restore(entry: &ProcEntry) {
    // Relaxed: the compare-and-swap below decides.
    let mut now = entry.state.load(Ordering::Relaxed);
    while now == CHECKING_ACTIVE || now == CHECKING_EXITED {
        // Release: pairs with the Acquire loads of readers (the fields are unchanged).
        match entry.state.compare_exchange(
            now,
            unchecked(now),
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            Ok(_) => return,
            Err(seen) => now = seen,
        }
    }
}

fn fill(entry: &ProcEntry, me: &ProcessIdentity) {
    fill_fields(entry, me);
    // Release: publishes the fields above; pairs with the Acquire loads in `lookup`.
    entry.state.store(ACTIVE, Ordering::Release);
}

fn fill_fields(entry: &ProcEntry, me: &ProcessIdentity) {
    entry.pid.store(me.pid, Ordering::Relaxed);
    entry.start_time.store(me.start_time, Ordering::Relaxed);
    entry.boot_id.store(me.boot_id, Ordering::Relaxed);
    entry.pid_namespace.store(me.pid_namespace, Ordering::Relaxed);
}

fn read_fields(entry: &ProcEntry) -> ProcessIdentity {
    ProcessIdentity {
        pid: entry.pid.load(Ordering::Relaxed),
        start_time: entry.start_time.load(Ordering::Relaxed),
        boot_id: entry.boot_id.load(Ordering::Relaxed),
        pid_namespace: entry.pid_namespace.load(Ordering::Relaxed),
    }
}
