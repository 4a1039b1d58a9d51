//! [`ShmVector`]: a fixed-capacity, append-only vector in shared memory.
//!
//! Each element's cell starts with a word in the format of a ring cell
//! ([`ring::cell`](crate::ring)): EMPTY (FREE at lap 0), WRITING with the pusher's owner id,
//! PUBLISHED (FULL at lap 0), or ABANDONED (FREE at lap 1: its pusher died before publishing).
//! A push claims the first EMPTY cell with a compare-and-swap (the `claimed` word is a hint
//! that every pusher helps along, as in an MPMC ring), writes the element and publishes it with
//! a Release store; once published an element never changes, so reading it needs no lock and no
//! retry. `len` is the length of the longest prefix of settled (published or abandoned) cells,
//! advanced by every pusher after it publishes, so concurrent pushes that finish out of order
//! still leave a contiguous, readable prefix.

use std::fmt;
use std::marker::PhantomData;

use crate::error::OpenError;
use crate::layout::ShmValue;
use crate::process::Liveness;
use crate::ring::cell::{Cell, CellState};
use crate::ring::{RingCore, RingOptions};
use crate::segment::{Backing, CreateMode, Segment, SegmentOptions, StructureKind};
use crate::sync::primitive::{AtomicU64, Ordering, fence};
use crate::sync::words;

/// How to create or open a [`ShmVector`]: capacity and permissions. (A push never waits, so,
/// unlike the rings' options, there is no timeout to set.)
///
/// # Examples
///
/// ```
/// use shmap::{Backing, ShmVector};
///
/// # let name = format!("/shmap-doc-vector-options-{}", std::process::id());
/// let v = ShmVector::<u64>::options().capacity(100).mode(0o640).open(&Backing::shm(&name))?;
/// assert_eq!(v.capacity(), 128);
/// # v.destroy()?;
/// # Ok::<(), shmap::OpenError>(())
/// ```
pub struct VectorOptions<T> {
    capacity: Option<usize>,
    segment: SegmentOptions,
    _elements: PhantomData<fn() -> T>,
}

impl<T> Default for VectorOptions<T> {
    fn default() -> Self {
        VectorOptions { capacity: None, segment: SegmentOptions::default(), _elements: PhantomData }
    }
}

impl<T> Clone for VectorOptions<T> {
    fn clone(&self) -> Self {
        VectorOptions {
            capacity: self.capacity,
            segment: self.segment.clone(),
            _elements: PhantomData,
        }
    }
}

impl<T> fmt::Debug for VectorOptions<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VectorOptions")
            .field("capacity", &self.capacity)
            .field("segment", &self.segment)
            .finish()
    }
}

impl<T: ShmValue> VectorOptions<T> {
    /// The number of elements, rounded up to a power of two. Required to create a vector; when
    /// opening an existing one it must match (after rounding), and without it an open adopts
    /// the vector's capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmVector};
    ///
    /// let v = ShmVector::<u64>::options().capacity(100).open(&Backing::Heap)?;
    /// assert_eq!(v.capacity(), 128);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(mut self, elements: usize) -> Self {
        self.capacity = Some(elements);
        self
    }

    crate::structure::segment_setters!("vector", "shmap::ShmVector::<u64>::options().capacity(8)");

    /// Creates or opens the vector at `backing`.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmVector};
    ///
    /// # let name = format!("/shmap-doc-vector-open-{}", std::process::id());
    /// let v = ShmVector::<u64>::options().capacity(16).open(&Backing::shm(&name))?;
    /// v.push(&1)?;
    /// let again = ShmVector::<u64>::options().open(&Backing::shm(&name))?; // adopts the capacity
    /// assert_eq!((again.capacity(), again.get(0)), (16, Some(1)));
    /// v.destroy()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(self, backing: &Backing) -> Result<ShmVector<T>, OpenError> {
        let core = RingOptions::<ShmVector<T>>::default()
            .capacity_option(self.capacity)
            .segment_options(self.segment)
            .open_core(backing, StructureKind::Vector, true)?;
        Ok(ShmVector { core })
    }
}

/// What a push onto a [`ShmVector`] can fail with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VectorError {
    /// Every index has been taken.
    #[error("the vector is full ({capacity} elements)")]
    Full {
        /// The vector's capacity.
        capacity: usize,
    },
    /// This process could not register in the vector's process table, so it cannot be named
    /// as a pusher.
    #[error("cannot register this process in the segment: {0}")]
    Register(#[from] crate::RegisterError),
}

/// The vector's words in the control block of its [`RingCore`] (whose layout is the rings'),
/// under the vector's own names.
mod vctl {
    use crate::ring::ctl;

    /// The next index to claim: a push takes its index from it.
    pub(super) const CLAIMED: usize = ctl::TAIL;
    /// The published prefix: every index below it is published or abandoned.
    pub(super) const LEN: usize = ctl::HEAD;
    /// How many pushes were abandoned by pushers that died before publishing.
    pub(super) const ABANDONED: usize = ctl::DROPPED_PUSHES;
}

const EMPTY: u64 = 0;

fn published() -> Cell {
    Cell::new(0, CellState::Full, None)
}

fn abandoned() -> Cell {
    Cell::new(1, CellState::Free, None)
}

/// A fixed-capacity, append-only vector in shared memory, for many processes and threads.
///
/// [`push`](Self::push) appends concurrently and returns the element's index; an element is
/// visible to [`get`](Self::get) and [`iter`](Self::iter) only once it is fully written, and
/// never changes after that. The capacity (rounded up to a power of two) is fixed at creation.
///
/// # Examples
///
/// ```
/// use shmap::ShmVector;
///
/// # let name = format!("/shmap-doc-vector-{}", std::process::id());
/// let log = ShmVector::<[u8; 8]>::open_or_create(&name, 1000)?;
/// let i = log.push(b"started ")?;
/// assert_eq!(log.get(i), Some(*b"started "));
/// assert_eq!(log.len(), 1);
/// assert_eq!(log.iter().map(|(_, e)| e).collect::<Vec<_>>(), [*b"started "]);
/// # log.destroy()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ShmVector<T: ShmValue> {
    core: RingCore<T>,
}

impl<T: ShmValue> ShmVector<T> {
    /// Appends `value` and returns its index. Never waits: pushers only race for indexes.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{ShmVector, VectorError};
    ///
    /// let v = ShmVector::<u32>::heap(2)?;
    /// assert_eq!(v.push(&10)?, 0);
    /// assert_eq!(v.push(&20)?, 1);
    /// assert_eq!(v.push(&30), Err(VectorError::Full { capacity: 2 }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push(&self, value: &T) -> Result<usize, VectorError> {
        let core = &self.core;
        let me = core.segment.owner()?;
        let capacity = core.capacity() as u64;
        let claimed = core.control(vctl::CLAIMED);
        loop {
            let index = claimed.load(Ordering::Relaxed);
            if index >= capacity {
                return Err(VectorError::Full { capacity: core.capacity() });
            }
            let (seq, data) = core.cell(index);
            let writing = Cell::new(0, CellState::Writing, Some(me));
            // Relaxed: an EMPTY cell was never written, and nobody reads our element before the
            // Release store below.
            if seq.compare_exchange(EMPTY, writing.0, Ordering::Relaxed, Ordering::Relaxed).is_ok()
            {
                help(claimed, index);
                words::store(data, value);
                // Release: publishes the element; pairs with the Acquire loads in `get` and
                // `advance_len`.
                seq.store(published().0, Ordering::Release);
                // SeqCst fence: orders our publication before our reads in `advance_len`, and
                // pairs with the same fence of any other push finishing now: of two pushes,
                // the one whose fence comes second in the total order sees the other's element,
                // so `len` never stops short of both (Dekker's pattern; a SeqCst store and load
                // alone would not do under loom, which models only SeqCst fences).
                fence(Ordering::SeqCst);
                self.advance_len();
                return Ok(index as usize);
            }
            // Taken: help the hint along.
            help(claimed, index);
        }
    }

    /// The element at `index`, if it has been published.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmVector;
    ///
    /// let v = ShmVector::<u64>::heap(4)?;
    /// let i = v.push(&42)?;
    /// assert_eq!((v.get(i), v.get(i + 1)), (Some(42), None));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self, index: usize) -> Option<T> {
        if index >= self.core.capacity() {
            return None;
        }
        let (seq, data) = self.core.cell(index as u64);
        // Acquire: pairs with the pusher's Release store of PUBLISHED; the element never
        // changes after it.
        (Cell(seq.load(Ordering::Acquire)) == published()).then(|| words::load::<T>(data))
    }

    /// The length of the published prefix: every index below it is published (or was
    /// abandoned by a pusher that died, see [`recover`](Self::recover)). Pushes that are still
    /// writing, and published elements after them, are not counted until those pushes finish.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmVector;
    ///
    /// let v = ShmVector::<u64>::heap(4)?;
    /// v.push(&1)?;
    /// v.push(&2)?;
    /// assert_eq!(v.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        // Acquire: pairs with the Release compare-and-swap that advanced it.
        self.core.control(vctl::LEN).load(Ordering::Acquire) as usize
    }

    /// Whether nothing has been published yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmVector;
    ///
    /// let v = ShmVector::<u64>::heap(4)?;
    /// assert!(v.is_empty());
    /// v.push(&1)?;
    /// assert!(!v.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many indexes pushes have taken (published, being written, or abandoned).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmVector;
    ///
    /// let v = ShmVector::<u64>::heap(4)?;
    /// v.push(&1)?;
    /// assert_eq!((v.claimed(), v.len()), (1, 1), "no push in flight");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn claimed(&self) -> usize {
        let claimed = self.core.control(vctl::CLAIMED).load(Ordering::Relaxed);
        claimed.min(self.core.capacity() as u64) as usize
    }

    /// The published elements with their indexes, in index order (skipping indexes whose push
    /// has not finished).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmVector;
    ///
    /// let v = ShmVector::<u64>::heap(4)?;
    /// for x in [5, 6, 7] {
    ///     v.push(&x)?;
    /// }
    /// assert_eq!(v.iter().collect::<Vec<_>>(), [(0, 5), (1, 6), (2, 7)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (usize, T)> + '_ {
        (0..self.claimed()).filter_map(|i| self.get(i).map(|e| (i, e)))
    }

    /// Marks the cells of pushers that died before publishing as abandoned, so that
    /// [`len`](Self::len) can move past them, and returns how many it marked. For a monitor:
    /// nothing else waits on such a cell. A cell is claimed once, for one index, and its
    /// claim is settled once (published or abandoned), so a claim word is never seen again and
    /// the compare-and-swap from it cannot hit another claim (no ABA, even if the dead pusher's
    /// owner id is reused).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ShmVector;
    ///
    /// let v = ShmVector::<u64>::heap(4)?;
    /// v.push(&1)?;
    /// assert_eq!(v.recover(), 0, "no pusher died mid-push");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recover(&self) -> usize {
        let mut recovered = 0;
        for index in self.len()..self.claimed() {
            let (seq, _) = self.core.cell(index as u64);
            // Relaxed: only the owner id is used; the CAS below decides.
            let c = Cell(seq.load(Ordering::Relaxed));
            let Some(owner) = c.owner() else { continue };
            if self.core.segment.owner_liveness(owner) == Liveness::Dead
                // Release: settles the cell like a publication (see `push`).
                && seq
                    .compare_exchange(c.0, abandoned().0, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
            {
                recovered += 1;
                self.core.count(vctl::ABANDONED);
            }
        }
        // SeqCst fence: as after a push's publication.
        fence(Ordering::SeqCst);
        self.advance_len();
        recovered
    }

    /// Moves `len` past every settled cell after it.
    fn advance_len(&self) {
        let len = self.core.control(vctl::LEN);
        loop {
            // Acquire: pairs with the Release half of the compare-and-swap below (by any
            // pusher), whose prefix we then read.
            let current = len.load(Ordering::Acquire);
            if current >= self.core.capacity() as u64 {
                return;
            }
            let (seq, _) = self.core.cell(current);
            // Acquire: pairs with the pusher's Release publication, so that a reader that sees
            // the new `len` also sees the element.
            let c = Cell(seq.load(Ordering::Acquire));
            if c != published() && c != abandoned() {
                return;
            }
            // AcqRel: releases the prefix to `len`'s readers; acquires the previous advance.
            let _ = len.compare_exchange(current, current + 1, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}

/// Moves the hint `word` from `index` to the next one, unless someone already did.
fn help(word: &AtomicU64, index: u64) {
    // Relaxed: a hint; the cells' words carry the synchronisation.
    let _ = word.compare_exchange(index, index + 1, Ordering::Relaxed, Ordering::Relaxed);
}

crate::ring::core_handle!(ShmVector, StructureKind::Vector, true, "vector", "shmap");

impl<T: ShmValue> ShmVector<T> {
    /// Options to create or open a vector with another backing, capacity or mode.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ShmVector};
    ///
    /// let v = ShmVector::<[u8; 4]>::options().capacity(8).open(&Backing::Heap)?;
    /// assert_eq!(v.push(b"abcd")?, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn options() -> VectorOptions<T> {
        VectorOptions::default()
    }
}

impl<T: ShmValue> fmt::Debug for ShmVector<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmVector")
            .field("segment", &self.core.segment.info().backing)
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(shmap_loom)))]
mod tests {
    use super::*;

    #[test]
    fn concurrent_pushes_publish_a_contiguous_prefix() {
        const PER: u64 = if cfg!(miri) { 50 } else { 1000 };
        let v = ShmVector::<[u64; 3]>::heap(4096).unwrap();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let v = &v;
                s.spawn(move || {
                    for i in 0..PER {
                        let index = v.push(&[t, i, t * 1000 + i]).unwrap();
                        assert_eq!(v.get(index), Some([t, i, t * 1000 + i]));
                    }
                });
            }
        });
        assert_eq!(v.len(), 4 * PER as usize);
        assert_eq!(v.claimed(), 4 * PER as usize);
        let mut seen: Vec<u64> = v.iter().map(|(_, e)| e[2]).collect();
        seen.sort_unstable();
        let mut expected: Vec<u64> =
            (0..4).flat_map(|t| (0..PER).map(move |i| t * 1000 + i)).collect();
        expected.sort_unstable();
        assert_eq!(seen, expected, "every push is there exactly once");
        assert_eq!(v.get(4 * PER as usize), None);
        assert_eq!(v.get(1 << 20), None);
    }

    #[test]
    fn a_full_vector_refuses_and_keeps_its_elements() {
        let v = ShmVector::<u8>::heap(3).unwrap(); // rounded up to 4
        assert_eq!(v.capacity(), 4);
        for i in 0..4 {
            assert_eq!(v.push(&i).unwrap(), usize::from(i));
        }
        assert_eq!(v.push(&9), Err(VectorError::Full { capacity: 4 }));
        assert_eq!(v.iter().collect::<Vec<_>>(), [(0, 0), (1, 1), (2, 2), (3, 3)]);
    }
}
