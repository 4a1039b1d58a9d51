//! Iteration without locks: [`Iter`] walks the slots in order and copies each committed entry
//! through the seqlock read (Boehm, 2012, as [`get`](ShmHashTable::get) does), so iterating
//! never writes to shared memory, never blocks a writer, and can be resumed from a [`Cursor`].
//!
//! # The guarantee
//!
//! Keys never move once inserted, and every copy is validated against the slot's version, so:
//! every key present (committed, not removed) for the whole iteration is yielded exactly once,
//! with a value it held at some instant during the iteration (never a torn one); a key
//! inserted or removed during the iteration may or may not be yielded. [`travel`] is the
//! locking walk, for visitors that must change values.
//!
//! [`travel`]: ShmHashTable::travel

use std::iter::FusedIterator;

use crate::hash::ShmHasher;
use crate::layout::{ShmKey, ShmValue};
use crate::table::raw::Waiting;
use crate::table::{ShmHashTable, TableError};

/// Where an iteration stands: the next slot it looks at. Keep it to resume an iteration later
/// ([`ShmHashTable::iter_from`]), reset it, or seek it to a slot.
///
/// # Examples
///
/// ```
/// use shmap::{Cursor, ShmHashTable};
///
/// let t = ShmHashTable::<u32, u32>::heap(16)?;
/// for k in 0..6 {
///     t.insert(&k, &(k * 10))?;
/// }
/// let mut first = t.iter();
/// let some: Vec<_> = first.by_ref().take(2).collect::<Result<_, _>>()?;
/// let cursor = first.cursor(); // resume later from here
/// let rest: Vec<_> = t.iter_from(cursor).collect::<Result<_, _>>()?;
/// assert_eq!(some.len() + rest.len(), 6);
/// assert_eq!(Cursor::START.slot(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cursor {
    slot: usize,
}

impl Cursor {
    /// The first slot: a whole iteration.
    pub const START: Cursor = Cursor { slot: 0 };

    /// A cursor at slot `slot` (one past the last slot, or more, ends the iteration at once).
    pub const fn at(slot: usize) -> Cursor {
        Cursor { slot }
    }

    /// The next slot the iteration looks at.
    pub const fn slot(self) -> usize {
        self.slot
    }
}

/// A lock-free iteration over a table's entries, yielding copies of `(key, value)` in slot
/// order.
///
/// Keys never move once inserted, and every copy is validated against the slot's version, so
/// every key present (committed, not removed) for the whole iteration is yielded exactly
/// once, with a value it held at some instant during the iteration (never a torn one); a key
/// inserted or removed during the iteration may or may not be yielded. Iterating never writes
/// to shared memory and never blocks a writer. [`travel`](ShmHashTable::travel) is the locking
/// walk, for visitors that change values.
///
/// An item is an error only if a slot stayed in a write-back for the handle's whole timeout
/// ([`TableError::Timeout`], naming the holder); the cursor then still points at that slot,
/// so the caller may retry it or [`skip`](Self::skip) it. A [`ShmTableReader`]'s iteration,
/// which can never recover a dead holder's slot, moves past it after the error instead (else
/// `flatten()` or `filter_map(Result::ok)` would retry it for ever).
///
/// [`ShmTableReader`]: crate::ShmTableReader
///
/// # Examples
///
/// ```
/// use shmap::ShmHashTable;
///
/// let t = ShmHashTable::<u64, u64>::heap(64)?;
/// for k in 1..=3 {
///     t.insert(&k, &(k * k))?;
/// }
/// let mut pairs: Vec<(u64, u64)> = t.iter().collect::<Result<_, _>>()?;
/// pairs.sort_unstable();
/// assert_eq!(pairs, [(1, 1), (2, 4), (3, 9)]);
/// assert_eq!(t.keys().collect::<Result<Vec<_>, _>>()?.len(), 3);
/// assert_eq!(t.values().map(Result::unwrap).sum::<u64>(), 14);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Iter<'t, K: ShmKey, V: ShmValue, H: ShmHasher> {
    table: &'t ShmHashTable<K, V, H>,
    cursor: Cursor,
}

impl<'t, K: ShmKey, V: ShmValue, H: ShmHasher> Iter<'t, K, V, H> {
    pub(crate) fn new(table: &'t ShmHashTable<K, V, H>, cursor: Cursor) -> Self {
        Iter { table, cursor }
    }

    /// Where the iteration stands: the next slot it will look at.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// Moves the iteration to `cursor` (backwards too: slots may then be yielded again).
    pub fn seek(&mut self, cursor: Cursor) {
        self.cursor = cursor;
    }

    /// Moves past the slot the cursor points at (after an error on it, say).
    pub fn skip(&mut self) {
        self.cursor.slot = self.cursor.slot.saturating_add(1);
    }
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> Iterator for Iter<'_, K, V, H> {
    type Item = Result<(K, V), TableError>;

    fn next(&mut self) -> Option<Self::Item> {
        let table = self.table;
        while self.cursor.slot < table.capacity() {
            let mut waiting = Waiting::new(&table.wait, table);
            match table.raw().read_slot(self.cursor.slot, &mut waiting) {
                Ok(Some(entry)) => {
                    self.cursor.slot += 1;
                    return Some(Ok(entry));
                }
                Ok(None) => self.cursor.slot += 1,
                Err(e) => {
                    if table.segment().is_read_only() {
                        self.cursor.slot += 1; // a reader's retry could never succeed
                    }
                    return Some(Err(table.table_error(e)));
                }
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.table.capacity().saturating_sub(self.cursor.slot)))
    }
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> FusedIterator for Iter<'_, K, V, H> {}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> ShmHashTable<K, V, H> {
    /// A lock-free iteration over every entry, as copies of `(key, value)` in slot order.
    /// See [`Iter`] for the items and for the guarantee under concurrent writers (every key
    /// present throughout is yielded exactly once).
    pub fn iter(&self) -> Iter<'_, K, V, H> {
        Iter::new(self, Cursor::START)
    }

    /// [`iter`](Self::iter) from `cursor` on (see [`Cursor`]).
    pub fn iter_from(&self, cursor: Cursor) -> Iter<'_, K, V, H> {
        Iter::new(self, cursor)
    }

    /// The keys, as [`iter`](Self::iter) yields them.
    pub fn keys(&self) -> impl Iterator<Item = Result<K, TableError>> + '_ {
        self.iter().map(|entry| entry.map(|(k, _)| k))
    }

    /// The values, as [`iter`](Self::iter) yields them.
    pub fn values(&self) -> impl Iterator<Item = Result<V, TableError>> + '_ {
        self.iter().map(|entry| entry.map(|(_, v)| v))
    }
}
