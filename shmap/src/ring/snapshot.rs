//! A snapshot of a ring's (or a vector's) shared state, read from its segment without its
//! element type: positions, held roles, cells a process is working on, announced sleepers and
//! counters, each holder with its liveness. For the `shmap` command and monitors that hold only
//! a [`Segment`] (opened with [`Segment::inspect`], say); it reads with relaxed loads, changes
//! nothing, and a busy ring moves while it reads, so the fields are each exact but not
//! mutually consistent.

use crate::process::{Liveness, OwnerId, ProcessIdentity};
use crate::ring::cell::{Cell, CellState};
use crate::ring::event::{self, Event};
use crate::ring::role::holder_of;
use crate::ring::{RingRole, RingStats, ctl};
use crate::segment::{Segment, StructureKind};
use crate::sync::primitive::Ordering;

/// A process named somewhere in a ring, and what the process table says about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
    /// Its id in the segment's process table.
    pub owner: OwnerId,
    /// Its entry there, if any.
    pub process: Option<ProcessIdentity>,
    /// Whether it is alive ([`Liveness::Dead`] only on proof).
    pub liveness: Liveness,
}

impl Holder {
    fn of(segment: &Segment, owner: OwnerId) -> Holder {
        let process = segment.process(owner);
        Holder { owner, process, liveness: segment.owner_liveness(owner) }
    }
}

/// What a process is doing to a [`BusyCell`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CellWork {
    /// A producer (or a vector's pusher) claimed the cell and has not published it yet.
    Writing,
    /// A consumer claimed the cell's element and has not freed the cell yet.
    Reading,
}

impl std::fmt::Display for CellWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CellWork::Writing => "writing",
            CellWork::Reading => "reading",
        })
    }
}

/// A cell claimed by a process (SPMC and MPMC rings, vectors: the other kinds' cells name
/// nobody).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusyCell {
    /// The cell's index (a vector's element index).
    pub index: usize,
    /// The claim's lap (always 0 in a vector).
    pub lap: u64,
    /// What the claimant does.
    pub work: CellWork,
    /// Who claimed it.
    pub holder: Holder,
    /// The cell's whole claim word: a later snapshot with the same word at the same index saw
    /// the same claim (a new claim has another lap, or another owner).
    pub word: u64,
}

/// Which way a sleeper waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SleepsFor {
    /// A consumer (or subscriber) waiting for elements.
    Items,
    /// A producer waiting for space.
    Space,
}

impl std::fmt::Display for SleepsFor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SleepsFor::Items => "items",
            SleepsFor::Space => "space",
        })
    }
}

/// A snapshot of a ring's or a vector's shared state.
///
/// # Examples
///
/// ```
/// use shmap::ring::{RingSnapshot, SpscRing};
///
/// let ring = SpscRing::<u64>::anonymous(8)?;
/// let mut producer = ring.producer()?;
/// producer.push(&7)?;
/// let s = RingSnapshot::of(ring.segment()).expect("a ring");
/// assert_eq!((s.capacity, s.head, s.tail), (8, 0, 1));
/// assert_eq!(s.roles.len(), 1, "the producer role is held");
/// assert_eq!(s.roles[0].1.process.unwrap().pid, std::process::id());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingSnapshot {
    /// Which ring, or a vector.
    pub kind: StructureKind,
    /// Cells.
    pub capacity: usize,
    /// A ring's next position to consume (SPSC) or claim (SPMC, MPMC; unused, 0, in a
    /// broadcast ring); a vector's length (its published prefix).
    pub head: u64,
    /// A ring's next position to publish (or, MPMC, to claim); a vector's claimed indexes.
    pub tail: u64,
    /// The exclusive roles held, and by whom.
    pub roles: Vec<(RingRole, Holder)>,
    /// The cells claimed by a process, in index order.
    pub busy: Vec<BusyCell>,
    /// The announced sleepers, by seat.
    pub sleepers: Vec<(SleepsFor, Holder)>,
    /// The ring's counters (`None` for a vector, which counts only abandoned pushes).
    pub stats: Option<RingStats>,
    /// A vector's pushes abandoned by pushers that died before publishing (`None` for a
    /// ring).
    pub abandoned: Option<u64>,
}

impl RingSnapshot {
    /// Reads the ring or vector in `segment`; `None` if the segment holds another kind of
    /// structure.
    pub fn of(segment: &Segment) -> Option<RingSnapshot> {
        let kind = segment.info().kind;
        // Which cells start with a claim word that may name an owner.
        let claims = match kind {
            StructureKind::SpscRing | StructureKind::BroadcastRing => false,
            StructureKind::SpmcRing | StructureKind::MpmcRing | StructureKind::Vector => true,
            _ => return None,
        };
        let words = segment.words();
        let capacity = usize::try_from(segment.capacity()).ok()?;
        let cell_words = usize::try_from(segment.info().slot_size / 8).ok()?.max(1);
        let control = (capacity.checked_mul(cell_words)?).next_multiple_of(8);
        let ctl_words = words.get(control..control.checked_add(ctl::WORDS)?)?;
        let read = |offset: usize| ctl_words[offset].load(Ordering::Relaxed);
        let holder = |owner| Holder::of(segment, owner);

        let mut roles = Vec::new();
        let role_words: &[(RingRole, usize)] = match kind {
            StructureKind::SpscRing => {
                &[(RingRole::Producer, ctl::PRODUCER), (RingRole::Consumer, ctl::CONSUMER)]
            }
            StructureKind::SpmcRing | StructureKind::BroadcastRing => {
                &[(RingRole::Producer, ctl::PRODUCER)]
            }
            _ => &[],
        };
        for &(role, offset) in role_words {
            if let Some(owner) = holder_of(read(offset)) {
                roles.push((role, holder(owner)));
            }
        }

        let mut busy = Vec::new();
        if claims {
            for index in 0..capacity {
                let word = words[index * cell_words].load(Ordering::Relaxed);
                let cell = Cell(word);
                let work = match cell.state() {
                    CellState::Writing => CellWork::Writing,
                    CellState::Reading => CellWork::Reading,
                    CellState::Free | CellState::Full => continue,
                };
                let Some(owner) = cell.owner() else { continue };
                busy.push(BusyCell { index, lap: cell.lap(), work, holder: holder(owner), word });
            }
        }

        let mut sleepers = Vec::new();
        for (way, seats) in
            [(SleepsFor::Items, ctl::ITEMS_SEATS), (SleepsFor::Space, ctl::SPACE_SEATS)]
        {
            for owner in Event::seat_owners(&ctl_words[seats..seats + event::SEATS]) {
                sleepers.push((way, holder(owner)));
            }
        }

        let vector = kind == StructureKind::Vector;
        let stats = (!vector).then(|| RingStats {
            dropped_pushes: read(ctl::DROPPED_PUSHES),
            redelivered: read(ctl::REDELIVERED),
            takeovers: read(ctl::TAKEOVERS),
            sleepers_recovered: read(ctl::SLEEPERS_RECOVERED),
            sleeping: read(ctl::ITEMS_SLEEPERS).count_ones()
                + read(ctl::SPACE_SLEEPERS).count_ones(),
        });
        // A vector's claim hint runs past its capacity once full.
        let tail = if vector { read(ctl::TAIL).min(capacity as u64) } else { read(ctl::TAIL) };
        Some(RingSnapshot {
            kind,
            capacity,
            head: read(ctl::HEAD),
            tail,
            roles,
            busy,
            sleepers,
            stats,
            abandoned: vector.then(|| read(ctl::DROPPED_PUSHES)),
        })
    }
}
