//! The process table in a segment's header: where each attached handle registers, so that a
//! lock can name its holder in 12 bits, and where a dead process's entry is reclaimed once
//! nothing names it.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

use crate::process::{Liveness, OwnerId, ProcessIdentity};

/// Entry states, in the low [`STATE_BITS`] bits of an entry's state word; the bits above
/// are the entry's *generation*, bumped by every registration that fills it, so that a word
/// seen once names one occupancy: a compare-and-swap from it fails if the entry was released,
/// retired or given to another process since.
pub(super) const FREE: u32 = 0;
/// Being filled in by a registration; others skip it.
const CLAIMED: u32 = 1;
/// Filled in: the fields describe a registered process.
const ACTIVE: u32 = 2;
/// Released by the process's exit (see [`ProcessTable::retire`]): the fields still describe
/// it, so that a lock one of its threads took, or takes while the process exits, is judged by
/// its identity like any other; it is not attached any more, and is reclaimed once its process
/// is proven dead and nothing names it.
const EXITED: u32 = 3;

const STATE_BITS: u32 = 3;
const STATE_MASK: u32 = (1 << STATE_BITS) - 1;
/// One generation, above the state bits.
const ONE_GENERATION: u32 = 1 << STATE_BITS;

/// The state of an entry's state word.
fn state(word: u32) -> u32 {
    word & STATE_MASK
}

/// `word` with its state replaced by `new` (the generation kept).
fn with_state(word: u32, new: u32) -> u32 {
    (word & !STATE_MASK) | new
}

/// Whether an entry whose state word is `word` names a process: its fields describe it.
fn names_a_process(word: u32) -> bool {
    matches!(state(word), ACTIVE | EXITED)
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
            // Relaxed: the compare-and-swap below decides.
            let word = entry.state.load(Ordering::Relaxed);
            if state(word) != FREE {
                continue;
            }
            let claimed = with_state(word, CLAIMED);
            // Acquire on success: pairs with the Release store of FREE in `release`, so the
            // previous holder's writes to the entry are ordered before ours.
            if entry
                .state
                .compare_exchange(word, claimed, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                fill(entry, claimed, me);
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

    /// Takes entry `i` if its process is proven dead and `is_referenced` says nothing names
    /// it. The checks run while the entry stays as its process left it (its fields readable to
    /// anyone judging its locks, its own `retire` free to apply), and one compare-and-swap from
    /// the word they started from claims it: it fails if anything happened to the entry
    /// meanwhile (a generation counts the fills), and a reclaimer killed during its checks
    /// leaves nothing behind.
    fn try_reclaim(
        &self,
        i: usize,
        me: &ProcessIdentity,
        is_referenced: &dyn Fn(OwnerId) -> bool,
    ) -> Option<OwnerId> {
        let entry = &self.entries[i];
        let (word, old) = read_entry(entry)?;
        if old.liveness() != Liveness::Dead {
            return None;
        }
        // A dead process names nothing new; a recoverer names itself, not it. So what the scan
        // finds unreferenced stays unreferenced while the word stays the same.
        let id = OwnerId::from_index(i);
        if is_referenced(id) {
            return None; // a slot still names the dead process: leave the entry to recovery
        }
        let claimed = with_state(word, CLAIMED);
        // Acquire: as in `register` (the previous occupant's writes before ours).
        entry.state.compare_exchange(word, claimed, Ordering::Acquire, Ordering::Relaxed).ok()?;
        fill(entry, claimed, me);
        Some(id)
    }

    /// Fills `id`'s entry with `who`, as a registration that reclaimed it would: for the loom
    /// model of owner-id reuse.
    #[cfg(all(test, shmap_loom))]
    pub(crate) fn loom_refill(&self, id: OwnerId, who: &ProcessIdentity) {
        let entry = &self.entries[id.index()];
        fill(entry, entry.state.load(Ordering::Relaxed), who);
    }

    /// Releases `id`'s entry (its process holds no lock any more).
    pub(crate) fn release(&self, id: OwnerId) {
        let entry = &self.entries[id.index()];
        fill_fields(
            entry,
            &ProcessIdentity { pid: 0, start_time: 0, boot_id: 0, pid_namespace: 0 },
        );
        // Relaxed: our own entry, which nobody else changes while we live (a reclaim needs us
        // dead, and our retire runs in this process).
        let word = entry.state.load(Ordering::Relaxed);
        // Release: pairs with the Acquire CAS in `register`, which reuses the entry.
        entry.state.store(with_state(word, FREE), Ordering::Release);
    }

    /// Marks `id`'s entry as its process's exit left it: no longer attached, but still naming
    /// the process (threads other than the exiting one may run on, and lock, until the kernel
    /// ends them). Does nothing to an entry that is not active.
    pub(crate) fn retire(&self, id: OwnerId) {
        let entry = &self.entries[id.index()];
        // Relaxed: our own entry (see `release`).
        let word = entry.state.load(Ordering::Relaxed);
        if state(word) == ACTIVE {
            // Release: pairs with the Acquire loads of the state word in `lookup` and
            // `try_reclaim` (the fields, unchanged, stay published).
            entry.state.store(with_state(word, EXITED), Ordering::Release);
        }
    }

    /// The identity registered under `id`, if the entry is active or retired by an exit.
    pub(crate) fn lookup(&self, id: OwnerId) -> Option<ProcessIdentity> {
        read_entry(self.entries.get(id.index())?).map(|(_, who)| who)
    }

    /// Every attached process (active entry), for the monitor and `inspect`.
    pub(crate) fn active(&self) -> impl Iterator<Item = (OwnerId, ProcessIdentity)> + '_ {
        self.entries
            .iter()
            .enumerate()
            // Acquire: pairs with the Release store of ACTIVE in `fill`.
            .filter_map(|(i, entry)| {
                let (word, who) = read_entry(entry)?;
                (state(word) == ACTIVE).then(|| (OwnerId::from_index(i), who))
            })
    }
}

/// Fills the entry we hold as `claimed` with `me`: ACTIVE, in the next generation.
fn fill(entry: &ProcEntry, claimed: u32, me: &ProcessIdentity) {
    // Release fence: orders our claim before the field stores, for readers still validating a
    // copy of the previous occupant's fields; pairs with the Acquire fence in `read_entry`.
    fence(Ordering::Release);
    fill_fields(entry, me);
    let active = with_state(claimed.wrapping_add(ONE_GENERATION), ACTIVE);
    // Release: publishes the fields above; pairs with the Acquire loads in `read_entry`.
    entry.state.store(active, Ordering::Release);
}

/// The state word of an entry that names a process, and that process, read consistently: the
/// word is read again after the fields, so that fields written by a later occupancy (the entry
/// reclaimed and filled meanwhile) are never mixed with the ones read.
fn read_entry(entry: &ProcEntry) -> Option<(u32, ProcessIdentity)> {
    loop {
        // Acquire: pairs with the Release store of ACTIVE in `fill` (the fields).
        let word = entry.state.load(Ordering::Acquire);
        if !names_a_process(word) {
            return None;
        }
        let who = read_fields(entry);
        // Acquire fence: if a field read saw a later occupancy's store, the reload below sees
        // its claim (pairs with the Acquire CAS of that claim, ordered before its field stores).
        fence(Ordering::Acquire);
        // Relaxed: ordered by the fence above.
        if entry.state.load(Ordering::Relaxed) == word {
            return Some((word, who));
        }
    }
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
