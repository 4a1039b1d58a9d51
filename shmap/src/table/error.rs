//! Errors of table operations: waiting too long, running out of slots, and visitors that fail.

use std::fmt;
use std::time::Duration;

use crate::table::ctrl::SlotState;
use crate::table::visit::LockHolder;

/// A table operation could not complete.
///
/// # Examples
///
/// ```
/// use shmap::{AccessMode, ShmHashTable, TableError, VisitError};
///
/// let t = ShmHashTable::<u64, u64>::heap(2)?;
/// t.visit(&1, AccessMode::CreateIfMiss, |_, _, _| {})?;
/// t.visit(&2, AccessMode::CreateIfMiss, |_, _, _| {})?;
/// let err = t.visit(&3, AccessMode::CreateIfMiss, |_, _, _| {}).unwrap_err();
/// assert!(matches!(err, VisitError::Table(TableError::TableFull { capacity: 2 })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// A slot the operation needed stayed locked for longer than the timeout.
    #[error("timed out after {waited:?} waiting for slot {slot} ({state}, held by {})", HolderText(.holder))]
    Timeout {
        /// The slot.
        slot: usize,
        /// Its state when the wait gave up.
        state: SlotState,
        /// Who held it.
        holder: Option<LockHolder>,
        /// How long the operation waited.
        waited: Duration,
    },
    /// Every slot holds another key: the key cannot be inserted. Returned when two passes over
    /// the table saw every slot unchanged (so it was full at one instant), or, when other
    /// processes keep changing the full table (updating its values, say), at the operation's
    /// timeout.
    #[error("table full: all {capacity} slots hold other keys")]
    TableFull {
        /// The table's capacity.
        capacity: usize,
    },
    /// The process (a `fork` child, say) could not register in the segment's process table.
    #[error("cannot register this process in the segment: {0}")]
    Register(#[from] crate::RegisterError),
}

struct HolderText<'a>(&'a Option<LockHolder>);

impl fmt::Display for HolderText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(holder) => holder.fmt(f),
            None => f.write_str("nobody (the slot is mid-write)"),
        }
    }
}

/// A [`visit`](crate::ShmHashTable::visit) failed: the table could not give the visitor the
/// slot, or the visitor reported failure.
///
/// `E` is what the visitor's failure carries: [`Rejected`](crate::Rejected) for a visitor that
/// returns `bool`, `E` for one that returns `Result<(), E>`, and
/// [`Infallible`](std::convert::Infallible) for one that returns `()`.
#[derive(Debug, thiserror::Error)]
pub enum VisitError<E> {
    /// The table could not give the visitor the slot.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The visitor reported failure; the value was rolled back (if configured) and a new entry
    /// was not kept.
    #[error("the visitor failed: {0}")]
    VisitorFailed(E),
}

impl<E> VisitError<E> {
    /// The table error, if that is what this is.
    pub fn table_error(&self) -> Option<&TableError> {
        match self {
            VisitError::Table(e) => Some(e),
            VisitError::VisitorFailed(_) => None,
        }
    }
}
