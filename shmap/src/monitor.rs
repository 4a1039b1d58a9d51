//! Finding slots that stay locked (a hung or dead holder), and releasing them.
//!
//! The original library's author asked for "an interface for a monitor process that walks the
//! table and finds elements that stay in a modifying state for a long time, returning their
//! bucket id, key and value". [`Monitor::poll`] is that interface. It costs the table's users
//! nothing: visitors record nothing and read no clock. The monitor samples the control words
//! (plain loads, no locks, no writes) and remembers, for each locked slot, the word it saw and
//! when. Every unlock bumps a slot's version, so a slot whose word is unchanged since an earlier
//! poll has been held by the same lock all along. A slot is reported once it has been seen
//! locked for at least the threshold, and at once if its holder is dead.
//!
//! What a monitor can do about a report is discussed in [the recovery guide](crate::guide::recovery):
//! [`recover`](Monitor::recover) releases a dead holder's slot exactly as a waiting visitor
//! would (rolling an interrupted write-back back from its undo record), and
//! [`force_release`](Monitor::force_release) does the same for a holder that may be alive, which
//! must be acknowledged explicitly.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::hash::ShmHasher;
use crate::layout::{ShmKey, ShmLayout, ShmValue};
use crate::process::{Liveness, OwnerId, ProcessIdentity};
#[cfg_attr(shmap_loom, allow(unused_imports))]
// used by `Monitor::for_segment`, not under loom
use crate::segment::Segment;
use crate::table::ctrl::{Ctrl, SlotState};
use crate::table::erased::ErasedTable;
use crate::table::recovery::{NotRecovered, recover_slot};
use crate::table::{Occupancy, RecoveryAction, ShmHashTable};

/// A slot that has stayed locked for at least the threshold, or whose holder is dead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StuckSlot {
    /// The slot's index (the original's "bucket id").
    pub slot: usize,
    /// Its state: INSERTING, NEW, ACCESSING or WRITING.
    pub state: SlotState,
    /// The holder's id in the segment's process table.
    pub owner: Option<OwnerId>,
    /// What the process table says about the holder.
    pub process: Option<ProcessIdentity>,
    /// Whether the holder is alive.
    pub liveness: Liveness,
    /// How long this monitor has seen the slot held by the same lock (zero on the first poll
    /// that sees it).
    pub locked_for: Duration,
    /// A copy of the key's bytes. Meaningful unless the state is INSERTING (then the key may be
    /// half-written: see [`key_complete`](Self::key_complete)).
    pub key: Vec<u8>,
    /// A copy of the value's bytes: the committed value in ACCESSING (the visitor works on a
    /// copy), possibly a mix of old and new words in WRITING, not yet initialised in NEW.
    pub value: Vec<u8>,
    /// In WRITING with undo records: the value before the interrupted visit.
    pub undo: Option<Vec<u8>>,
    /// Whether [`key`](Self::key) is the whole, final key.
    pub key_complete: bool,
    /// Whether [`value`](Self::value) is a committed value (not mid-write, not uninitialised).
    pub value_committed: bool,
    /// The control word observed, which [`Monitor::recover`] swaps from.
    pub ctrl: u64,
}

impl StuckSlot {
    /// The key, read from the copied bytes.
    ///
    /// # Panics
    /// If `K` is not as large as the table's key.
    pub fn key_as<K: ShmLayout>(&self) -> K {
        from_bytes(&self.key)
    }

    /// The value, read from the copied bytes (see [`value_committed`](Self::value_committed)).
    ///
    /// # Panics
    /// If `V` is not as large as the table's value.
    pub fn value_as<V: ShmLayout>(&self) -> V {
        from_bytes(&self.value)
    }
}

fn from_bytes<T: ShmLayout>(bytes: &[u8]) -> T {
    let mut out = crate::bytes::zeroed::<T>();
    crate::bytes::as_bytes_mut(&mut out).copy_from_slice(bytes);
    out
}

impl fmt::Display for StuckSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slot {} {} for {:?}", self.slot, self.state, self.locked_for)?;
        match (self.owner, self.process) {
            (Some(owner), Some(p)) => write!(f, ", held by pid {} (owner {})", p.pid, owner.get())?,
            (Some(owner), None) => write!(f, ", held by owner {} (not registered)", owner.get())?,
            (None, _) => {}
        }
        write!(f, " [{}]", self.liveness)
    }
}

/// Why a [`Monitor`] did not release a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecoverError {
    /// The holder is alive: use [`Monitor::force_release`] if it must be released anyway.
    #[error("the holder is alive; only force_release may release its slot")]
    HolderAlive,
    /// The holder's liveness cannot be told (another pid namespace).
    #[error(
        "the holder's liveness is unknown (another pid namespace); only force_release may release its slot"
    )]
    HolderUnknown,
    /// The slot no longer holds the reported word: its holder released it, or another process
    /// recovered it first. Nothing to do.
    #[error("the slot changed since the report (released, or recovered by another process)")]
    Changed,
    /// The monitor's segment was opened read-only by [`Segment::inspect`] (or this process could
    /// not register in the segment to roll a write-back back): open the table to release slots.
    #[error(
        "this monitor cannot write to the segment (opened with Segment::inspect, or not registered)"
    )]
    NotRegistered,
}

/// The acknowledgement that [`Monitor::force_release`] requires: releasing a slot whose holder
/// may still be running lets that holder's later writes land on a value it no longer owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HolderMayBeRunning {
    /// The caller has stopped (or accepts the risk of) the holder.
    Acknowledged,
}

/// Samples a table's control words to find stuck slots, and releases them on request.
///
/// # Examples
///
/// ```
/// use shmap::{AccessMode, Monitor, ShmHashTable};
/// use std::time::Duration;
///
/// let table = ShmHashTable::<u64, u64>::heap(64)?;
/// table.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v = 1)?;
/// let mut monitor = Monitor::new(&table);
/// // A daemon would call this every second or so and alert on what it returns.
/// assert!(monitor.poll(Duration::from_secs(2)).is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Monitor<'t> {
    table: ErasedTable<'t>,
    seen: HashMap<usize, (u64, Instant)>,
}

impl<'t> Monitor<'t> {
    /// A monitor of `table`.
    pub fn new<K: ShmKey, V: ShmValue, H: ShmHasher>(table: &'t ShmHashTable<K, V, H>) -> Self {
        Monitor { table: table.erased(), seen: HashMap::new() }
    }

    /// A monitor of the table `reader` reads: it finds stuck slots and measures occupancy
    /// without writing anything (its [`recover`](Self::recover) and
    /// [`force_release`](Self::force_release) answer [`RecoverError::NotRegistered`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmap::{Backing, Monitor, ShmHashTable, ShmTableReader};
    ///
    /// # let name = format!("/shmap-doc-monitor-reader-{}", std::process::id());
    /// let table = ShmHashTable::<u64, u64>::open_or_create(&name, 64)?;
    /// table.insert(&1, &1)?;
    /// let reader = ShmTableReader::<u64, u64>::open(&Backing::shm(&name))?;
    /// let mut monitor = Monitor::for_reader(&reader);
    /// assert!(monitor.poll(Duration::from_secs(1)).is_empty());
    /// assert_eq!(monitor.occupancy().entries, 1);
    /// # table.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_reader<K: ShmKey, V: ShmValue, H: ShmHasher>(
        reader: &'t crate::ShmTableReader<K, V, H>,
    ) -> Self {
        Monitor::new(reader.table())
    }

    /// A monitor of the hash table in `segment`, opened without its types; `None` if the segment
    /// is not a hash table.
    #[cfg(not(shmap_loom))]
    pub fn for_segment(segment: &'t Segment) -> Option<Self> {
        Some(Monitor { table: ErasedTable::from_segment(segment)?, seen: HashMap::new() })
    }

    /// Samples every slot once. Returns the slots that have been held by the same lock for at
    /// least `threshold` (over this and earlier polls), and every locked slot whose holder is
    /// dead, whatever its age. Takes no lock and writes nothing to the table.
    pub fn poll(&mut self, threshold: Duration) -> Vec<StuckSlot> {
        let now = Instant::now();
        let mut seen = HashMap::with_capacity(self.seen.len());
        let mut owners: HashMap<OwnerId, (Option<ProcessIdentity>, Liveness)> = HashMap::new();
        let mut stuck = Vec::new();
        for index in 0..self.table.capacity {
            let c = self.table.ctrl(index);
            if !c.state().is_locked() {
                continue;
            }
            let since = match self.seen.get(&index) {
                Some(&(word, since)) if word == c.0 => since,
                _ => now,
            };
            seen.insert(index, (c.0, since));
            let (process, liveness) = match c.owner() {
                Some(owner) => *owners.entry(owner).or_insert_with(|| {
                    let process = self.table.segment.process(owner);
                    (process, process.map_or(Liveness::Dead, |p| p.liveness()))
                }),
                None => (None, Liveness::Unknown),
            };
            let locked_for = now.saturating_duration_since(since);
            if liveness == Liveness::Dead || locked_for >= threshold {
                stuck.push(self.report(index, c, process, liveness, locked_for));
            }
        }
        self.seen = seen;
        stuck
    }

    fn report(
        &self,
        index: usize,
        c: Ctrl,
        process: Option<ProcessIdentity>,
        liveness: Liveness,
        locked_for: Duration,
    ) -> StuckSlot {
        let slot = self.table.slot(index);
        let state = c.state();
        StuckSlot {
            slot: index,
            state,
            owner: c.owner(),
            process,
            liveness,
            locked_for,
            key: ErasedTable::bytes(slot.key, self.table.key_size),
            value: ErasedTable::bytes(slot.value, self.table.value_size),
            undo: (state == SlotState::Writing && !slot.undo.is_empty())
                .then(|| ErasedTable::bytes(slot.undo, self.table.value_size)),
            key_complete: !matches!(state, SlotState::Inserting | SlotState::Emptying),
            value_committed: state == SlotState::Accessing,
            ctrl: c.0,
        }
    }

    /// Releases a reported slot whose holder is dead, as a waiting visitor would (see
    /// [`RecoveryAction`]). Liveness is checked again first, and the release is a
    /// compare-and-swap from the reported word, so it is safe against a concurrent waiter doing
    /// the same recovery: one of them does it, the other gets [`RecoverError::Changed`].
    pub fn recover(&self, report: &StuckSlot) -> Result<RecoveryAction, RecoverError> {
        let observed = Ctrl(report.ctrl);
        match observed.owner().map_or(Liveness::Unknown, |o| self.table.segment.owner_liveness(o)) {
            Liveness::Dead => self.release(report),
            Liveness::Alive => Err(RecoverError::HolderAlive),
            Liveness::Unknown => Err(RecoverError::HolderUnknown),
        }
    }

    /// Releases a reported slot whatever its holder's liveness, as [`recover`](Self::recover)
    /// would. If the holder is still running, its own release will later overwrite the slot's
    /// control word and value: stop it first (`kill -STOP`, or kill it), which is what the
    /// acknowledgement says.
    pub fn force_release(
        &self,
        report: &StuckSlot,
        _acknowledged: HolderMayBeRunning,
    ) -> Result<RecoveryAction, RecoverError> {
        self.release(report)
    }

    fn release(&self, report: &StuckSlot) -> Result<RecoveryAction, RecoverError> {
        if self.table.segment.is_read_only() {
            return Err(RecoverError::NotRegistered);
        }
        let me = self.table.segment.owner().ok();
        match recover_slot(self.table.slot(report.slot), Ctrl(report.ctrl), me, self.table.freed) {
            Ok(action) => {
                self.table.segment.count_recovery(action == RecoveryAction::ReleasedTorn);
                if action == RecoveryAction::InsertAbandoned {
                    self.table.segment.uncount_abandoned_insert();
                }
                Ok(action)
            }
            Err(NotRecovered::NoOwnerId) => Err(RecoverError::NotRegistered),
            Err(NotRecovered::Changed | NotRecovered::NotLocked) => Err(RecoverError::Changed),
        }
    }

    /// How many slots are in each state (for `inspect`).
    pub fn state_counts(&self) -> [(SlotState, usize); 8] {
        let mut counts = [0usize; 8];
        for index in 0..self.table.capacity {
            counts[self.table.ctrl(index).state() as usize] += 1;
        }
        std::array::from_fn(|i| (SlotState::ALL[i], counts[i]))
    }

    /// How the slots are used: states, entries (scanned and counted), reusable slots, and probe
    /// lengths (see [`Occupancy`]). One pass, without locks or writes; its cost is a read of
    /// the whole table.
    pub fn occupancy(&self) -> Occupancy {
        self.table.occupancy()
    }
}

#[cfg(all(test, not(miri), not(shmap_loom)))]
mod tests {
    use std::sync::{Arc, mpsc};
    use std::thread;

    use super::*;
    use crate::segment::Recoveries;
    use crate::sync::primitive::Ordering;
    use crate::{AccessMode, Backing, ShmKey, ShmValue, Wait};

    #[derive(ShmKey, Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(C)]
    struct Id {
        a: u32,
        b: u32,
    }

    #[derive(ShmValue, Clone, Copy, Debug, PartialEq)]
    #[repr(C)]
    struct Score {
        points: u64,
        ratio: f64,
    }

    type Table = ShmHashTable<Id, Score>;

    fn table() -> Arc<Table> {
        Arc::new(Table::options().capacity(32).undo_records(true).open(&Backing::Heap).unwrap())
    }

    /// Holds `key` inside a visitor on another thread until the sender is dropped.
    fn hold(t: &Arc<Table>, key: Id) -> (mpsc::Sender<()>, thread::JoinHandle<()>) {
        let (inside, wait_inside) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let t = Arc::clone(t);
        let handle = thread::spawn(move || {
            t.visit(&key, AccessMode::AccessExist, |_, s, _| {
                inside.send(()).unwrap();
                let _ = released.recv();
                s.points += 1;
            })
            .unwrap();
        });
        wait_inside.recv().unwrap();
        (release, handle)
    }

    fn dead_owner(t: &Table) -> OwnerId {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = ProcessIdentity { pid, ..ProcessIdentity::current().unwrap() };
        t.segment().processes().register(&dead, &|_| false).unwrap()
    }

    #[test]
    fn a_live_holder_is_reported_after_the_threshold_with_its_key_and_value() {
        let t = table();
        let key = Id { a: 1, b: 2 };
        t.visit(&key, AccessMode::CreateIfMiss, |_, s, _| *s = Score { points: 7, ratio: 0.5 })
            .unwrap();
        let mut monitor = Monitor::new(&t);
        let (release, handle) = hold(&t, key);
        assert!(monitor.poll(Duration::from_millis(30)).is_empty(), "not yet held long enough");
        thread::sleep(Duration::from_millis(40));
        let stuck = monitor.poll(Duration::from_millis(30));
        assert_eq!(stuck.len(), 1);
        let s = &stuck[0];
        assert_eq!((s.state, s.liveness), (SlotState::Accessing, Liveness::Alive));
        assert!(s.locked_for >= Duration::from_millis(30));
        assert_eq!(s.process.unwrap().pid, std::process::id());
        assert_eq!(s.key_as::<Id>(), key);
        assert_eq!(s.value_as::<Score>(), Score { points: 7, ratio: 0.5 }, "the committed value");
        assert!(s.key_complete && s.value_committed);
        assert!(s.to_string().contains("ACCESSING") && s.to_string().contains("[alive]"));
        assert_eq!(
            monitor.recover(s),
            Err(RecoverError::HolderAlive),
            "a live holder is not robbed"
        );
        release.send(()).unwrap();
        handle.join().unwrap();
        assert!(monitor.poll(Duration::ZERO).is_empty(), "released");
        assert_eq!(t.get(&key).unwrap().unwrap().points, 8);
    }

    /// Holds a new `key` inside an insert whose visitor fails once released (an aborted insert).
    fn hold_failing_insert(t: &Arc<Table>, key: Id) -> (mpsc::Sender<()>, thread::JoinHandle<()>) {
        let (inside, wait_inside) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let t = Arc::clone(t);
        let handle = thread::spawn(move || {
            let r = t.visit(&key, AccessMode::CreateIfMiss, |_, _, _| {
                inside.send(()).unwrap();
                let _ = released.recv();
                false
            });
            assert!(r.is_err(), "the visitor refused");
        });
        wait_inside.recv().unwrap();
        (release, handle)
    }

    /// Two aborted inserts of one key, one after the other, are two locks to the monitor: the
    /// second is not reported as held since the first was seen. (Before aborts bumped the
    /// version, the second NEW word equalled the first, and it was reported after 60 ms.)
    #[test]
    fn aborted_inserts_in_a_row_are_not_one_long_lock() {
        let t = table();
        let key = Id { a: 9, b: 9 };
        let mut monitor = Monitor::new(&t);
        let (release, first) = hold_failing_insert(&t, key);
        assert!(monitor.poll(Duration::from_millis(30)).is_empty());
        release.send(()).unwrap();
        first.join().unwrap();
        thread::sleep(Duration::from_millis(60));
        let (release, second) = hold_failing_insert(&t, key);
        let stuck = monitor.poll(Duration::from_millis(30));
        release.send(()).unwrap();
        second.join().unwrap();
        assert!(stuck.is_empty(), "a fresh lock reported as stuck: {stuck:?}");
        assert_eq!(t.get(&key).unwrap(), None);
    }

    #[test]
    fn a_dead_holder_is_reported_at_once_and_recovered_exactly_once() {
        let t = table();
        let key = Id { a: 3, b: 4 };
        t.visit(&key, AccessMode::CreateIfMiss, |_, s, _| s.points = 1).unwrap();
        let slot = t.read(&key, |s, _| s).unwrap().unwrap();
        let dead = dead_owner(&t);
        // Died while writing 2 back: the undo record holds 1.
        let words = t.erased().slot(slot);
        words.undo[0].store(1, Ordering::Relaxed);
        words.value[0].store(2, Ordering::Relaxed);
        let c = t.erased().ctrl(slot);
        words.ctrl.store(c.locked(SlotState::Writing, dead).0, Ordering::Release);

        let mut monitor = Monitor::new(&t);
        let stuck = monitor.poll(Duration::from_secs(3600));
        assert_eq!(stuck.len(), 1, "dead holders are reported whatever the threshold");
        let s = &stuck[0];
        assert_eq!((s.slot, s.state, s.liveness), (slot, SlotState::Writing, Liveness::Dead));
        assert_eq!(s.undo.as_deref().map(|u| u[0]), Some(1), "the value before the visit");
        assert!(!s.value_committed);
        assert_eq!(monitor.recover(s), Ok(RecoveryAction::RolledBack));
        assert_eq!(monitor.recover(s), Err(RecoverError::Changed), "only once");
        assert_eq!(t.get(&key).unwrap().unwrap().points, 1);
        assert_eq!(t.segment().recoveries(), Recoveries { total: 1, torn: 0 });
        assert!(monitor.poll(Duration::ZERO).is_empty());
    }

    /// A monitor that recovers an insert whose process died before committing (NEW, counted at
    /// its claim) frees the slot as a waiter would: the table's freed flag is set first (so
    /// later inserts verify their claims), the count is taken back, and the slot is reused.
    #[test]
    fn a_monitor_recovering_a_dead_insert_frees_and_uncounts_it() {
        let t = table();
        let key = Id { a: 7, b: 8 };
        // The key's home slot, never used: the table has never freed a slot.
        let hash = crate::hash::DefaultHasher::hash(crate::bytes::as_bytes(&key));
        let slot = hash as usize & (t.capacity() - 1);
        assert_eq!(t.segment().slots_freed().load(Ordering::Relaxed), 0);
        // What a process killed inside an insert's visitor leaves: NEW, counted at its claim.
        let dead = dead_owner(&t);
        let words = t.erased().slot(slot);
        crate::sync::words::store(words.key, &key);
        let c = Ctrl((hash >> 48) << 3); // EMPTY, with the key's tag
        words.ctrl.store(c.locked(SlotState::New, dead).0, Ordering::Release);
        t.segment().add_entries(Some(dead), 1);
        assert_eq!(t.len(), 1);

        let mut monitor = Monitor::new(&t);
        let stuck = monitor.poll(Duration::from_secs(3600));
        assert_eq!(stuck.len(), 1, "{stuck:?}");
        assert_eq!(monitor.recover(&stuck[0]), Ok(RecoveryAction::InsertAbandoned));
        assert_ne!(t.segment().slots_freed().load(Ordering::Relaxed), 0, "the flag is set");
        assert_eq!((t.len(), t.recount().unwrap()), (0, 0), "uncounted once");
        assert_eq!(t.slot_state(slot), SlotState::Freed);
        assert_eq!(t.get(&key).unwrap(), None, "the insert never committed");
        t.visit(&key, AccessMode::CreateIfMiss, |_, s, _| s.points = 2).unwrap();
        assert_eq!((t.get(&key).unwrap().map(|s| s.points), t.len()), (Some(2), 1));
    }

    #[test]
    fn force_release_needs_an_acknowledgement_and_releases_a_live_holder() {
        let t = table();
        let key = Id { a: 5, b: 6 };
        t.visit(&key, AccessMode::CreateIfMiss, |_, s, _| s.points = 10).unwrap();
        let slot = t.read(&key, |s, _| s).unwrap().unwrap();
        let me = t.segment().owner().unwrap();
        let words = t.erased().slot(slot);
        let c = t.erased().ctrl(slot);
        words.ctrl.store(c.locked(SlotState::Accessing, me).0, Ordering::Release);
        let mut monitor = Monitor::new(&t);
        let s = monitor.poll(Duration::ZERO).pop().unwrap();
        assert_eq!(s.liveness, Liveness::Alive);
        let action = monitor.force_release(&s, HolderMayBeRunning::Acknowledged);
        assert_eq!(action, Ok(RecoveryAction::Unlocked));
        let quick = Wait::timeout(Duration::from_millis(50));
        t.visit_with(&key, AccessMode::AccessExist, quick, |_, s, _| s.points += 1).unwrap();
        assert_eq!(t.get(&key).unwrap().unwrap().points, 11);
    }

    #[test]
    fn an_inspecting_monitor_reads_but_never_writes() {
        let backing = Backing::shm(format!("/shmap-monitor-test-{}", std::process::id()));
        let _unlink = crate::segment::UnlinkOnDrop(backing.clone());
        let t = Table::options().capacity(16).open(&backing).unwrap();
        let key = Id { a: 9, b: 9 };
        t.visit(&key, AccessMode::CreateIfMiss, |_, s, _| s.points = 3).unwrap();
        let slot = t.read(&key, |s, _| s).unwrap().unwrap();
        let dead = dead_owner(&t);
        let c = t.erased().ctrl(slot);
        t.erased().slot(slot).ctrl.store(c.locked(SlotState::Accessing, dead).0, Ordering::Release);
        let seen = Segment::inspect(&backing).unwrap();
        let mut monitor = Monitor::for_segment(&seen).expect("a hash table");
        let stuck = monitor.poll(Duration::ZERO);
        assert_eq!(stuck.len(), 1);
        assert_eq!(stuck[0].key_as::<Id>(), key);
        assert_eq!(monitor.recover(&stuck[0]), Err(RecoverError::NotRegistered));
        assert_eq!(
            monitor.state_counts()[SlotState::Accessing as usize],
            (SlotState::Accessing, 1)
        );
    }

    /// Every unlock bumps the version, so two lock episodes never show the same word: a monitor
    /// cannot mistake a busy key, locked again and again, for one stuck lock.
    #[test]
    fn two_lock_episodes_never_show_the_same_word() {
        let t = table();
        let key = Id { a: 1, b: 1 };
        t.visit(&key, AccessMode::CreateIfMiss, |_, _, _| {}).unwrap();
        let slot = t.read(&key, |s, _| s).unwrap().unwrap();
        let mut words = Vec::new();
        for _ in 0..3 {
            t.visit(&key, AccessMode::AccessExist, |_, _, _| words.push(t.erased().ctrl(slot).0))
                .unwrap();
        }
        words.sort_unstable();
        words.dedup();
        assert_eq!(words.len(), 3, "read-only visits of one key, one process, still differ");
    }
}
