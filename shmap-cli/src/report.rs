//! What the commands report, as data: built from a segment, printed as text by
//! [`render`](crate::render) or as JSON by serde. The JSON Schema of each `--json` output is
//! generated from these types (`shmap schema COMMAND`, checked in under `schema/`).

use std::time::{Duration, SystemTime};

use schemars::JsonSchema;
use serde::Serialize;
use shmap::ring::{Holder, RingSnapshot};
use shmap::{
    CacheSettings, Liveness, Monitor, Segment, SlotState, StructureKind, StuckSlot, TypeLayout,
};

use crate::decode::{self, Value};

/// `shmap inspect`: a segment's header, its structure's state and its attached processes.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Inspect {
    /// The segment's name or path.
    pub(crate) segment: String,
    /// `hash table`, `SPSC ring buffer`, …
    pub(crate) kind: String,
    /// Slots (a table) or cells (a ring, a vector).
    pub(crate) capacity: u64,
    /// Bytes per slot or cell.
    pub(crate) slot_size: u64,
    /// Whether visits keep undo records (tables).
    pub(crate) undo_records: bool,
    /// The segment's size in bytes.
    pub(crate) total_size: u64,
    /// The header's size in bytes.
    pub(crate) header_size: u64,
    /// The key's layout (`none` for rings and vectors).
    pub(crate) key: Layout,
    /// The value's (element's) layout.
    pub(crate) value: Layout,
    /// The hasher's id, hex.
    pub(crate) hasher_id: String,
    /// When the segment was created, in seconds since the Unix epoch.
    pub(crate) created_unix: u64,
    /// The creating process.
    pub(crate) creator_pid: u32,
    /// The creating process's user.
    pub(crate) creator_uid: u32,
    /// The segment's random id, hex.
    pub(crate) segment_id: String,
    /// Locks of dead holders recovered so far.
    pub(crate) recoveries: u64,
    /// Of those, write-backs released without an undo record (values possibly torn).
    pub(crate) torn_recoveries: u64,
    /// A hash table's slots and probe lengths (absent for other structures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) table: Option<TableState>,
    /// A cache's settings and what it evicted and expired (absent for other structures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cache: Option<CacheState>,
    /// A ring's or a vector's positions, holders and counters (absent for tables).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ring: Option<RingState>,
    /// The processes attached now (registered, neither detached nor exited normally).
    pub(crate) processes: Vec<Process>,
}

/// A key's or a value's layout, as the header records it.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Layout {
    /// Its description: `u64`, `[u8;16]`, `{site:u32@0;sensor:u32@4}`, or `none`.
    pub(crate) desc: String,
    /// `size_of`, in bytes.
    pub(crate) size: u32,
    /// `align_of`, in bytes.
    pub(crate) align: u32,
    /// The layout hash, hex.
    pub(crate) hash: String,
}

impl From<&TypeLayout> for Layout {
    fn from(t: &TypeLayout) -> Layout {
        let none = t.size == 0 && t.hash == 0;
        Layout {
            desc: if none { "none".into() } else { t.desc.to_string() },
            size: t.size,
            align: t.align,
            hash: format!("{:#018x}", t.hash),
        }
    }
}

/// How a hash table's slots are used.
#[derive(Serialize, JsonSchema)]
pub(crate) struct TableState {
    /// Slots in each state.
    pub(crate) slots: SlotCounts,
    /// Keys present (READY, ACCESSING and WRITING slots).
    pub(crate) entries: u64,
    /// What the table's counters say (equal to `entries` when no write is in flight).
    pub(crate) counted_entries: u64,
    /// Slots a new key may take without lengthening a chain (EMPTY and FREED).
    pub(crate) reusable_slots: u64,
    /// Probe lengths of the keys present (absent with a custom hasher).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) probes: Option<Probes>,
}

/// A cache's settings and counters.
#[derive(Serialize, JsonSchema)]
pub(crate) struct CacheState {
    /// The default time to live of an entry, in milliseconds (absent: entries inserted without
    /// a TTL of their own never expire).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) default_ttl_ms: Option<u64>,
    /// The number of entries past which inserts evict (absent: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_entries: Option<u64>,
    /// The eviction policy (`CLOCK`).
    pub(crate) policy: String,
    /// Entries evicted to make room, since the cache was created.
    pub(crate) evictions: u64,
    /// Expired entries reclaimed.
    pub(crate) expirations: u64,
}

impl CacheState {
    fn of(segment: &Segment) -> Option<CacheState> {
        let settings = CacheSettings::of(segment)?;
        let (evictions, expirations) = segment.reclaimed();
        Some(CacheState {
            default_ttl_ms: settings.default_ttl.map(|d| d.as_millis() as u64),
            max_entries: settings.max_entries,
            policy: settings.policy.to_string(),
            evictions,
            expirations,
        })
    }
}

/// Slots in each state.
#[allow(missing_docs)] // the states are documented in `shmap::SlotState`
#[derive(Serialize, JsonSchema, Default)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) struct SlotCounts {
    pub(crate) empty: u64,
    pub(crate) inserting: u64,
    pub(crate) new: u64,
    pub(crate) ready: u64,
    pub(crate) accessing: u64,
    pub(crate) writing: u64,
    pub(crate) freed: u64,
    pub(crate) emptying: u64,
}

/// Probe lengths, in slots.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Probes {
    /// Mean slots a lookup of a present key looks at.
    pub(crate) hit_mean: f64,
    /// The most.
    pub(crate) hit_max: u64,
    /// Mean slots a lookup of an absent key looks at.
    pub(crate) miss_mean: f64,
    /// The most.
    pub(crate) miss_max: u64,
}

/// A ring's or a vector's state.
#[derive(Serialize, JsonSchema)]
pub(crate) struct RingState {
    /// A ring's next position to consume or claim; a vector's length.
    pub(crate) head: u64,
    /// A ring's next position to publish or claim; a vector's claimed indexes.
    pub(crate) tail: u64,
    /// Exclusive roles held.
    pub(crate) roles: Vec<RoleHeld>,
    /// Cells a process claimed and has not finished with.
    pub(crate) busy_cells: Vec<BusyCell>,
    /// Threads announced asleep.
    pub(crate) sleepers: Vec<Sleeper>,
    /// A ring's counters (absent for a vector).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stats: Option<RingCounters>,
    /// A vector's pushes abandoned by pushers that died (absent for a ring).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) abandoned: Option<u64>,
}

/// A process named in a structure, and its liveness.
#[derive(Serialize, JsonSchema, Clone, Copy)]
pub(crate) struct Who {
    /// Its id in the segment's process table.
    pub(crate) owner: u16,
    /// Its pid, if its entry is still there.
    pub(crate) pid: Option<u32>,
    /// `alive`, `dead` (proven) or `unknown`.
    pub(crate) liveness: LivenessName,
}

impl From<&Holder> for Who {
    fn from(h: &Holder) -> Who {
        Who { owner: h.owner.get(), pid: h.process.map(|p| p.pid), liveness: h.liveness.into() }
    }
}

/// A liveness verdict.
#[derive(Serialize, JsonSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LivenessName {
    /// The process runs.
    Alive,
    /// Proven dead.
    Dead,
    /// Cannot be told (another pid namespace, `/proc` unreadable): treated as alive.
    Unknown,
}

impl From<Liveness> for LivenessName {
    fn from(l: Liveness) -> LivenessName {
        match l {
            Liveness::Alive => LivenessName::Alive,
            Liveness::Dead => LivenessName::Dead,
            _ => LivenessName::Unknown,
        }
    }
}

impl std::fmt::Display for LivenessName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LivenessName::Alive => "alive",
            LivenessName::Dead => "dead",
            LivenessName::Unknown => "unknown",
        })
    }
}

/// An exclusive role and its holder.
#[derive(Serialize, JsonSchema)]
pub(crate) struct RoleHeld {
    /// `producer` or `consumer`.
    pub(crate) role: String,
    /// Its holder.
    #[serde(flatten)]
    pub(crate) holder: Who,
}

/// A cell a process claimed.
#[derive(Serialize, JsonSchema)]
pub(crate) struct BusyCell {
    /// The cell's index (a vector's element index).
    pub(crate) index: u64,
    /// The claim's lap.
    pub(crate) lap: u64,
    /// `writing` (a producer or pusher) or `reading` (a consumer).
    pub(crate) work: String,
    /// Its claimant.
    #[serde(flatten)]
    pub(crate) holder: Who,
}

/// An announced sleeper.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Sleeper {
    /// `items` (a consumer) or `space` (a producer).
    pub(crate) waits_for: String,
    /// The sleeping process.
    #[serde(flatten)]
    pub(crate) holder: Who,
}

/// A ring's counters (see `shmap::ring::RingStats`).
#[derive(Serialize, JsonSchema)]
pub(crate) struct RingCounters {
    /// Pushes abandoned by producers that died mid-push.
    pub(crate) dropped_pushes: u64,
    /// Elements republished after their consumer died mid-pop.
    pub(crate) redelivered: u64,
    /// Roles taken over from dead holders.
    pub(crate) takeovers: u64,
    /// Seats of dead sleepers freed.
    pub(crate) sleepers_recovered: u64,
}

/// A process attached to the segment.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Process {
    /// Its id in the segment's process table.
    pub(crate) owner: u16,
    /// Its pid.
    pub(crate) pid: u32,
    /// `alive`, `dead` or `unknown`.
    pub(crate) liveness: LivenessName,
}

pub(crate) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Inspect {
    pub(crate) fn of(segment: &Segment) -> Inspect {
        let info = segment.info();
        let recoveries = segment.recoveries();
        Inspect {
            segment: info.backing.to_string(),
            kind: info.kind.to_string(),
            capacity: info.capacity,
            slot_size: info.slot_size,
            undo_records: info.undo_records(),
            total_size: info.total_size,
            header_size: info.header_size,
            key: (&info.key).into(),
            value: (&info.value).into(),
            hasher_id: format!("{:#018x}", info.hasher_id),
            created_unix: unix_seconds(info.created_at),
            creator_pid: info.creator_pid,
            creator_uid: info.creator_uid,
            segment_id: format!("{:#018x}", info.segment_id),
            recoveries: recoveries.total,
            torn_recoveries: recoveries.torn,
            table: table_state(segment),
            cache: CacheState::of(segment),
            ring: RingSnapshot::of(segment).map(|s| ring_state(&s)),
            processes: segment
                .attached_processes()
                .into_iter()
                .map(|(owner, p)| Process {
                    owner: owner.get(),
                    pid: p.pid,
                    liveness: p.liveness().into(),
                })
                .collect(),
        }
    }
}

fn table_state(segment: &Segment) -> Option<TableState> {
    if !matches!(segment.info().kind, StructureKind::HashTable | StructureKind::Cache) {
        return None;
    }
    let o = Monitor::for_segment(segment)?.occupancy();
    let mut slots = SlotCounts::default();
    for (state, n) in o.states {
        let n = n as u64;
        match state {
            SlotState::Empty => slots.empty = n,
            SlotState::Inserting => slots.inserting = n,
            SlotState::New => slots.new = n,
            SlotState::Ready => slots.ready = n,
            SlotState::Accessing => slots.accessing = n,
            SlotState::Writing => slots.writing = n,
            SlotState::Freed => slots.freed = n,
            _ => slots.emptying = n,
        }
    }
    Some(TableState {
        slots,
        entries: o.entries as u64,
        counted_entries: o.counted as u64,
        reusable_slots: o.reusable as u64,
        probes: o.probes.map(|p| Probes {
            hit_mean: p.hit_mean,
            hit_max: p.hit_max as u64,
            miss_mean: p.miss_mean,
            miss_max: p.miss_max as u64,
        }),
    })
}

impl From<&shmap::ring::BusyCell> for BusyCell {
    fn from(c: &shmap::ring::BusyCell) -> BusyCell {
        BusyCell {
            index: c.index as u64,
            lap: c.lap,
            work: c.work.to_string(),
            holder: (&c.holder).into(),
        }
    }
}

pub(crate) fn ring_state(s: &RingSnapshot) -> RingState {
    RingState {
        head: s.head,
        tail: s.tail,
        roles: s
            .roles
            .iter()
            .map(|(role, h)| RoleHeld { role: role.to_string(), holder: h.into() })
            .collect(),
        busy_cells: s.busy.iter().map(BusyCell::from).collect(),
        sleepers: s
            .sleepers
            .iter()
            .map(|(way, h)| Sleeper { waits_for: way.to_string(), holder: h.into() })
            .collect(),
        stats: s.stats.map(|st| RingCounters {
            dropped_pushes: st.dropped_pushes,
            redelivered: st.redelivered,
            takeovers: st.takeovers,
            sleepers_recovered: st.sleepers_recovered,
        }),
        abandoned: s.abandoned,
    }
}

/// Something `stuck` and `watch` report.
#[derive(Serialize, JsonSchema)]
#[serde(tag = "what", rename_all = "lowercase")]
pub(crate) enum Stuck {
    /// A hash table's slot locked for at least the threshold, or by a dead holder.
    Slot(StuckSlotReport),
    /// A ring's or a vector's cell claimed for at least the threshold, or by a dead process.
    Cell {
        /// The cell.
        #[serde(flatten)]
        cell: BusyCell,
        /// How long this command has seen the same claim, in milliseconds.
        held_for_ms: f64,
    },
    /// A ring's exclusive role held by a dead process (the next claimant takes it over).
    Role(RoleHeld),
    /// A sleeper's seat left by a dead process (every wake pays for it until recovered).
    Sleeper(Sleeper),
}

/// A stuck slot of a hash table.
#[derive(Serialize, JsonSchema)]
pub(crate) struct StuckSlotReport {
    /// The slot's index.
    pub(crate) slot: u64,
    /// `INSERTING`, `NEW`, `ACCESSING` or `WRITING`.
    pub(crate) state: String,
    /// Its holder.
    #[serde(flatten)]
    pub(crate) holder: Who,
    /// How long this command has seen the same lock, in milliseconds.
    pub(crate) locked_for_ms: f64,
    /// The key, decoded by its layout description (null where it has none that decodes).
    #[schemars(with = "serde_json::Value")]
    pub(crate) key: Option<Value>,
    /// The key's bytes, hex.
    pub(crate) key_hex: String,
    /// Whether the key is whole (false while INSERTING: it may be half-written).
    pub(crate) key_complete: bool,
    /// The value, decoded (null where it cannot be).
    #[schemars(with = "serde_json::Value")]
    pub(crate) value: Option<Value>,
    /// The value's bytes, hex.
    pub(crate) value_hex: String,
    /// Whether the value is the committed one (ACCESSING).
    pub(crate) value_committed: bool,
    /// With undo records, in WRITING: the value before the visit, decoded.
    #[schemars(with = "serde_json::Value")]
    pub(crate) undo: Option<Value>,
    /// The same, hex.
    pub(crate) undo_hex: Option<String>,
}

fn compact_hex(bytes: &[u8]) -> String {
    decode::hex(bytes).replace(' ', "")
}

impl StuckSlotReport {
    pub(crate) fn of(r: &StuckSlot, key: &TypeLayout, value: &TypeLayout) -> StuckSlotReport {
        StuckSlotReport {
            slot: r.slot as u64,
            state: r.state.name().into(),
            holder: Who {
                owner: r.owner.map_or(0, |o| o.get()),
                pid: r.process.map(|p| p.pid),
                liveness: r.liveness.into(),
            },
            locked_for_ms: millis(r.locked_for),
            key: decode::decode(key, &r.key),
            key_hex: compact_hex(&r.key),
            key_complete: r.key_complete,
            value: decode::decode(value, &r.value),
            value_hex: compact_hex(&r.value),
            value_committed: r.value_committed,
            undo: r.undo.as_deref().and_then(|u| decode::decode(value, u)),
            undo_hex: r.undo.as_deref().map(compact_hex),
        }
    }
}

pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e3).round()
}

/// One segment in `shmap ls`.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Listed {
    /// Its name (`/name` in `/dev/shm`) or path.
    pub(crate) segment: String,
    /// `hash table`, `MPMC ring buffer`, …; absent if it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) kind: Option<String>,
    /// The key's layout description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) key: Option<String>,
    /// The value's (element's) layout description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) value: Option<String>,
    /// Slots or cells.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) capacity: Option<u64>,
    /// The file's size in bytes.
    pub(crate) size: u64,
    /// Attached processes that are alive (or cannot be proven dead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) live_processes: Option<u64>,
    /// Attached processes proven dead (killed while attached).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dead_processes: Option<u64>,
    /// Why it could not be read (a shmap segment of another version, a corrupt header, no
    /// permission).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// Live (or unprovably dead) and dead attached processes.
pub(crate) fn attached_counts(segment: &Segment) -> (u64, u64) {
    let mut counts = (0, 0);
    for (_, p) in segment.attached_processes() {
        if p.liveness() == Liveness::Dead {
            counts.1 += 1;
        } else {
            counts.0 += 1;
        }
    }
    counts
}

impl Listed {
    pub(crate) fn of(segment: &Segment, size: u64) -> Listed {
        let info = segment.info();
        let (live, dead) = attached_counts(segment);
        let desc = |t: &TypeLayout| Layout::from(t).desc;
        Listed {
            segment: info.backing.to_string(),
            kind: Some(info.kind.to_string()),
            key: Some(desc(&info.key)),
            value: Some(desc(&info.value)),
            capacity: Some(info.capacity),
            size,
            live_processes: Some(live),
            dead_processes: Some(dead),
            error: None,
        }
    }

    pub(crate) fn unreadable(segment: String, size: u64, error: String) -> Listed {
        Listed {
            segment,
            kind: None,
            key: None,
            value: None,
            capacity: None,
            size,
            live_processes: None,
            dead_processes: None,
            error: Some(error),
        }
    }
}
