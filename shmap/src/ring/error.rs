//! What ring operations fail with ([`RingError`], naming the [`RingRole`] in question) and
//! what a ring counts about its recoveries ([`RingStats`]).

use std::fmt;
use std::time::Duration;

use crate::process::ProcessIdentity;

/// Which exclusive role of a ring a handle holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RingRole {
    /// The one producer of an SPSC, SPMC or broadcast ring.
    Producer,
    /// The one consumer of an SPSC ring.
    Consumer,
}

impl fmt::Display for RingRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RingRole::Producer => "producer",
            RingRole::Consumer => "consumer",
        })
    }
}

/// What a ring operation can fail with. Each method says which of these it returns.
///
/// # Examples
///
/// ```
/// use shmap::ring::{RingError, SpscRing};
///
/// let ring = SpscRing::<u32>::heap(2)?;
/// let mut producer = ring.producer()?;
/// producer.try_push(&1)?;
/// producer.try_push(&2)?;
/// assert!(matches!(producer.try_push(&3), Err(RingError::Full)));
/// assert!(matches!(ring.producer(), Err(RingError::RoleTaken { this_process: true, .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// The ring is full (a `try_` push).
    #[error("the ring is full")]
    Full,
    /// The ring is empty (a `try_` pop or receive).
    #[error("the ring is empty")]
    Empty,
    /// A broadcast subscriber fell more than a lap behind the producer: `missed` elements were
    /// overwritten before it read them. Its next receive starts at the oldest element left.
    #[error("fell behind the producer: {missed} elements were overwritten before they were read")]
    Lagged {
        /// How many elements this subscriber will never see.
        missed: u64,
    },
    /// A blocking operation waited for its whole timeout.
    #[error("timed out after {waited:?} waiting for {}", awaited(.for_space))]
    Timeout {
        /// How long it waited.
        waited: Duration,
        /// Whether it waited for space (a push) rather than for an element.
        for_space: bool,
    },
    /// Another handle holds the exclusive role.
    #[error("the {role} role is taken by {}", HolderText(.holder, .this_process))]
    RoleTaken {
        /// The role asked for.
        role: RingRole,
        /// The process that holds it, as its process-table entry says.
        holder: Option<ProcessIdentity>,
        /// Whether the holder is another handle of this very process.
        this_process: bool,
    },
    /// This role handle was inherited across `fork`: the parent still holds the role. Claim it
    /// again in the child if the child should have it.
    #[error("this {role} handle was inherited across fork; claim the role again in the child")]
    RoleLost {
        /// The role the handle held.
        role: RingRole,
    },
    /// This process could not register in the ring's process table, so it cannot be named
    /// as a role holder or an element's claimant.
    #[error("cannot register this process in the segment: {0}")]
    Register(#[from] crate::RegisterError),
}

fn awaited(for_space: &bool) -> &'static str {
    if *for_space { "space in a full ring" } else { "an element in an empty ring" }
}

struct HolderText<'a>(&'a Option<ProcessIdentity>, &'a bool);

impl fmt::Display for HolderText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (*self.1, self.0) {
            (true, _) => f.write_str("another handle in this process"),
            (false, Some(p)) => write!(f, "pid {}, which is alive or cannot be checked", p.pid),
            (false, None) => f.write_str("a process that is no longer registered"),
        }
    }
}

/// Recovery counters of a ring, kept in its shared control block.
///
/// # Examples
///
/// ```
/// use shmap::ring::MpmcRing;
///
/// let ring = MpmcRing::<u64>::heap(8)?;
/// assert_eq!(ring.stats().redelivered, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Pushes abandoned by producers that died after claiming a cell and before publishing it
    /// (MPMC): skipped, since those pushes never returned.
    pub dropped_pushes: u64,
    /// Elements claimed by consumers that died before finishing their pop (SPMC, MPMC):
    /// published again for another consumer.
    pub redelivered: u64,
    /// Exclusive roles taken over from dead holders.
    pub takeovers: u64,
    /// Seats of sleepers that were killed while asleep, freed (so that pushes and pops stop
    /// paying a wake-up for them).
    pub sleepers_recovered: u64,
    /// Threads announced as asleep in a blocking operation now (both directions).
    pub sleeping: u32,
}
