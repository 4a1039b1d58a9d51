//! What visitors return and what operations report: the original's `Visit`/`Travel` contract
//! (a visitor may return nothing, a `bool`, or here also a `Result`), in types.

use std::convert::Infallible;
use std::fmt;
use std::ops::ControlFlow;
use std::time::Duration;

use crate::process::{OwnerId, ProcessIdentity};
use crate::table::ctrl::SlotState;

/// Whether [`visit`](crate::ShmHashTable::visit) may insert the key (the original's
/// `AccessMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessMode {
    /// Visit the key only if it is present.
    AccessExist,
    /// Visit the key, inserting it (with a zeroed value) if it is absent.
    CreateIfMiss,
}

/// What a successful [`visit`](crate::ShmHashTable::visit) found.
///
/// # Examples
///
/// ```
/// use shmap::{AccessMode, ShmHashTable, Visited};
///
/// let t = ShmHashTable::<u32, u32>::heap(16)?;
/// assert_eq!(t.visit(&1, AccessMode::AccessExist, |_, _, _| {})?, Visited::NotFound);
/// assert_eq!(t.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v = 5)?, Visited::Created);
/// assert_eq!(t.visit(&1, AccessMode::CreateIfMiss, |_, v, _| *v += 1)?, Visited::Found);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Visited {
    /// The key was absent and has been inserted with the value the visitor initialised.
    Created,
    /// The key was present and the visitor ran on its value.
    Found,
    /// The key was absent and the mode was [`AccessMode::AccessExist`]; the visitor did not run.
    NotFound,
}

impl Visited {
    /// Whether the visitor ran (the entry exists now).
    pub fn ran(self) -> bool {
        !matches!(self, Visited::NotFound)
    }
}

/// A visitor's verdict: `()` and `true` mean success, `false` and `Err(e)` mean failure (the
/// value is rolled back if the table was configured with rollback, and a new entry is never
/// kept).
///
/// # Examples
///
/// ```
/// use shmap::VisitResult;
///
/// assert!(().into_result().is_ok());
/// assert!(false.into_result().is_err());
/// assert_eq!(Err::<(), _>("full").into_result(), Err("full"));
/// ```
pub trait VisitResult {
    /// What a failure carries.
    type Error;
    /// The verdict as a `Result`.
    fn into_result(self) -> Result<(), Self::Error>;
}

impl VisitResult for () {
    type Error = Infallible;
    fn into_result(self) -> Result<(), Infallible> {
        Ok(())
    }
}

impl VisitResult for bool {
    type Error = Rejected;
    fn into_result(self) -> Result<(), Rejected> {
        if self { Ok(()) } else { Err(Rejected) }
    }
}

impl<E> VisitResult for Result<(), E> {
    type Error = E;
    fn into_result(self) -> Result<(), E> {
        self
    }
}

/// The failure of a visitor that returned `false`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rejected;

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the visitor returned false")
    }
}

impl std::error::Error for Rejected {}

/// Whether a [`travel`](crate::ShmHashTable::travel) visitor wants to go on: `()` and `true`
/// continue, `false` stops (the original's rule), as do `ControlFlow::Continue`/`Break`.
pub trait TravelControl {
    /// `true` to visit the next entry.
    fn keep_going(self) -> bool;
}

impl TravelControl for () {
    fn keep_going(self) -> bool {
        true
    }
}

impl TravelControl for bool {
    fn keep_going(self) -> bool {
        self
    }
}

impl<B> TravelControl for ControlFlow<B> {
    fn keep_going(self) -> bool {
        self.is_continue()
    }
}

/// The process holding a slot's lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockHolder {
    /// Its id in the segment's process table.
    pub owner: OwnerId,
    /// What the process table says about it (`None` if the entry was released meanwhile).
    pub process: Option<ProcessIdentity>,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.process {
            Some(p) => write!(f, "pid {} (owner {})", p.pid, self.owner.get()),
            None => write!(f, "owner {} (no longer registered)", self.owner.get()),
        }
    }
}

/// How a [`travel`](crate::ShmHashTable::travel) ended (the original's `Travel`, which could
/// neither stop early nor time out).
///
/// # Examples
///
/// ```
/// use shmap::{AccessMode, ShmHashTable, TravelOutcome};
///
/// let t = ShmHashTable::<u32, u32>::heap(16)?;
/// for k in 0..5 {
///     t.visit(&k, AccessMode::CreateIfMiss, |_, v, _| *v = k)?;
/// }
/// let mut seen = 0;
/// let outcome = t.travel(|_slot, _key, _value| {
///     seen += 1;
///     seen < 3 // stop after the third entry
/// })?;
/// assert!(matches!(outcome, TravelOutcome::Stopped { visited: 3, .. }));
/// assert!(outcome.to_string().ends_with("after 3 entries"));
/// assert!(t.travel(|_, _, _| {})?.is_completed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum TravelOutcome {
    /// Every committed entry was visited.
    Completed {
        /// How many entries the visitor saw.
        visited: usize,
    },
    /// The visitor returned `false` (or `Break`) at this slot.
    Stopped {
        /// The slot of the last entry visited.
        slot: usize,
        /// How many entries the visitor saw, that one included.
        visited: usize,
    },
    /// A slot stayed locked for longer than the timeout.
    TimedOut {
        /// The slot that stayed locked; slots after it were not visited.
        slot: usize,
        /// How many entries the visitor saw before it.
        visited: usize,
        /// The slot's state when the wait gave up.
        state: SlotState,
        /// Who held it.
        holder: Option<LockHolder>,
        /// How long the travel waited on it.
        waited: Duration,
    },
}

impl fmt::Display for TravelOutcome {
    /// `completed: 3 entries`, `stopped at slot 7 after 2 entries`, or `timed out after 5s at
    /// slot 9 (ACCESSING, held by …) after 4 entries`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TravelOutcome::Completed { visited } => write!(f, "completed: {visited} entries"),
            TravelOutcome::Stopped { slot, visited } => {
                write!(f, "stopped at slot {slot} after {visited} entries")
            }
            TravelOutcome::TimedOut { slot, visited, state, holder, waited } => {
                write!(f, "timed out after {waited:?} at slot {slot} ({state}, held by ")?;
                match holder {
                    Some(holder) => write!(f, "{holder}")?,
                    None => f.write_str("nobody")?,
                }
                write!(f, ") after {visited} entries")
            }
        }
    }
}

impl TravelOutcome {
    /// Whether every entry was visited.
    pub fn is_completed(&self) -> bool {
        matches!(self, TravelOutcome::Completed { .. })
    }

    /// How many entries the visitor saw.
    pub fn visited(&self) -> usize {
        match *self {
            TravelOutcome::Completed { visited }
            | TravelOutcome::Stopped { visited, .. }
            | TravelOutcome::TimedOut { visited, .. } => visited,
        }
    }
}

/// What recovering a slot whose holder died did to it.
///
/// # Examples
///
/// ```
/// use shmap::RecoveryAction;
///
/// assert!(RecoveryAction::RolledBack.value_intact());
/// assert!(!RecoveryAction::ReleasedTorn.value_intact());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecoveryAction {
    /// A visit's slot (ACCESSING) was unlocked: the visitor worked on a copy, so the value is as
    /// it was before the visit.
    Unlocked,
    /// An insert that never committed (INSERTING or NEW) was abandoned: the key stays absent and
    /// the slot is FREED, free for any key.
    InsertAbandoned,
    /// A chain shortening (EMPTYING) was abandoned: the slot is FREED again, free for any key.
    ShorteningAbandoned,
    /// A write-back in progress (WRITING) was rolled back from the slot's undo record: the value
    /// is as it was before the visit.
    RolledBack,
    /// A write-back in progress was released without an undo record (the table has none): a
    /// value of more than 8 bytes may mix old and new words.
    ReleasedTorn,
}

impl RecoveryAction {
    /// Whether the value (or the key's absence) is exactly as before the interrupted operation.
    pub fn value_intact(self) -> bool {
        !matches!(self, RecoveryAction::ReleasedTorn)
    }
}

impl fmt::Display for RecoveryAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RecoveryAction::Unlocked => "unlocked (value untouched)",
            RecoveryAction::InsertAbandoned => "uncommitted insert abandoned (slot freed)",
            RecoveryAction::ShorteningAbandoned => "chain shortening abandoned (slot freed)",
            RecoveryAction::RolledBack => "write-back rolled back from the undo record",
            RecoveryAction::ReleasedTorn => {
                "write-back released without undo record (value may be torn)"
            }
        })
    }
}
