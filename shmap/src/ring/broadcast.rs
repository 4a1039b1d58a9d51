//! [`BroadcastRing`]: one producer, any number of subscribers that each read every element.
//!
//! The producer never waits: it writes position `p` into cell `p mod capacity`, overwriting
//! whatever lap was there, under a per-cell seqlock (Boehm, "Can seqlocks get along with
//! programming language memory models?", 2012): the cell's word is `2p + 1` while the element is
//! being written and `2p + 2` once it is published, then `tail` moves to `p + 1`. A subscriber
//! keeps its own position (in its own process: subscribers are not registered, and one that
//! dies affects no one). It copies the element out between two reads of the cell's word and
//! keeps the copy only if both read `2p + 2`; anything else means the producer lapped it, and
//! the subscriber is told how many elements it missed ([`RingError::Lagged`]) and moves to the
//! oldest element still in the ring. A torn copy is never returned.

use std::fmt;

use crate::error::OpenError;
use crate::layout::ShmValue;
use crate::ring::{
    Attempt, Claim, RingCore, RingError, RingOptions, RingRole, RingStats, ctl, ring_common,
};
use crate::segment::{Backing, CreateMode, Segment, StructureKind};
use crate::sync::backoff::Wait;
use crate::sync::primitive::{Ordering, fence};
use crate::sync::words;

/// A broadcast ring buffer in shared memory: one producer, any number of [`Subscriber`]s in any
/// number of processes, each of which reads every element in order at its own pace.
///
/// The producer is a role ([`producer`](Self::producer)) and never waits for subscribers: a
/// subscriber that falls more than a lap behind loses the overwritten elements and is told how
/// many ([`RingError::Lagged`]).
///
/// # Examples
///
/// ```
/// use shmap::ring::{BroadcastRing, RingError};
///
/// let ring = BroadcastRing::<u64>::heap(4)?;
/// let mut tx = ring.producer()?;
/// let mut fast = ring.subscribe();
/// let mut slow = ring.subscribe();
/// for i in 0..6 {
///     tx.push(&i)?;
///     assert_eq!(fast.try_recv()?, i);
/// }
/// // `slow` read nothing: the ring (4 elements) was lapped, 0 and 1 are gone.
/// assert!(matches!(slow.try_recv(), Err(RingError::Lagged { missed: 2 })));
/// assert_eq!(slow.try_recv()?, 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BroadcastRing<T: ShmValue> {
    pub(super) core: RingCore<T>,
}

ring_common!(BroadcastRing, StructureKind::BroadcastRing, true);

impl<T: ShmValue> BroadcastRing<T> {
    /// Claims the producer role. Fails with [`RingError::RoleTaken`] while another handle (in
    /// any process) holds it; a holder whose process died is taken over.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::{BroadcastRing, RingError};
    ///
    /// let ring = BroadcastRing::<u64>::heap(8)?;
    /// let _tx = ring.producer()?;
    /// assert!(matches!(ring.producer(), Err(RingError::RoleTaken { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn producer(&self) -> Result<BroadcastProducer<'_, T>, RingError> {
        let claim = self.core.claim(RingRole::Producer)?;
        // Acquire: pairs with the previous holder's Release store of `tail`.
        let tail = self.core.control(ctl::TAIL).load(Ordering::Acquire);
        Ok(BroadcastProducer { ring: self, claim, tail })
    }

    /// A subscriber that receives the elements published from now on.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::BroadcastRing;
    ///
    /// let ring = BroadcastRing::<u64>::heap(8)?;
    /// let mut tx = ring.producer()?;
    /// tx.push(&1)?; // before the subscription: not seen
    /// let mut rx = ring.subscribe();
    /// tx.push(&2)?;
    /// assert_eq!(rx.try_recv()?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(&self) -> Subscriber<'_, T> {
        Subscriber { ring: self, next: self.published() }
    }

    /// A subscriber that starts at the oldest element still in the ring.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::BroadcastRing;
    ///
    /// let ring = BroadcastRing::<u64>::heap(2)?;
    /// let mut tx = ring.producer()?;
    /// for v in 1..=3 {
    ///     tx.push(&v)?; // 1 is overwritten by 3
    /// }
    /// let mut rx = ring.subscribe_from_oldest();
    /// assert_eq!((rx.try_recv()?, rx.try_recv()?), (2, 3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe_from_oldest(&self) -> Subscriber<'_, T> {
        let published = self.published();
        let next = published.saturating_sub(self.core.capacity() as u64);
        Subscriber { ring: self, next }
    }

    /// How many elements have been published since the ring was created.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::BroadcastRing;
    ///
    /// let ring = BroadcastRing::<u64>::heap(2)?;
    /// let mut tx = ring.producer()?;
    /// (0..5).try_for_each(|v| tx.push(&v))?;
    /// assert_eq!(ring.published(), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn published(&self) -> u64 {
        // Acquire: pairs with the producer's Release store of `tail`.
        self.core.control(ctl::TAIL).load(Ordering::Acquire)
    }
}

/// The producer of a [`BroadcastRing`]. Holds the role until dropped.
///
/// # Examples
///
/// ```
/// use shmap::ring::BroadcastRing;
///
/// let ring = BroadcastRing::<[u32; 2]>::heap(8)?;
/// let mut tx = ring.producer()?;
/// tx.push(&[1, 2])?;
/// assert_eq!(ring.published(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BroadcastProducer<'r, T: ShmValue> {
    ring: &'r BroadcastRing<T>,
    claim: Claim,
    /// The next position to publish.
    tail: u64,
}

impl<T: ShmValue> BroadcastProducer<'_, T> {
    /// Publishes `value` to every subscriber, overwriting the oldest element if the ring is
    /// full. Never waits; fails only with [`RingError::RoleLost`] (a handle inherited across
    /// `fork`).
    #[inline]
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::BroadcastRing;
    ///
    /// let ring = BroadcastRing::<u64>::heap(4)?;
    /// let (mut a, mut b) = (ring.subscribe(), ring.subscribe());
    /// ring.producer()?.push(&7)?;
    /// assert_eq!((a.try_recv()?, b.try_recv()?), (7, 7), "every subscriber sees it");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push(&mut self, value: &T) -> Result<(), RingError> {
        self.claim.check()?;
        let core = &self.ring.core;
        let position = self.tail;
        let (seq, data) = core.cell(position);
        // Relaxed: ordered before the element's words by the fence below.
        seq.store(2 * position + 1, Ordering::Relaxed);
        // Release fence: the odd word is visible before any of the new element's words (Boehm's
        // seqlock writer); pairs with the subscriber's fence(Acquire) before its second read.
        fence(Ordering::Release);
        words::store(data, value);
        // Release: publishes the element; pairs with the subscriber's Acquire load of the word.
        seq.store(2 * position + 2, Ordering::Release);
        self.tail = position + 1;
        // Release: publishes the position; pairs with subscribers' Acquire load of `tail`.
        core.control(ctl::TAIL).store(self.tail, Ordering::Release);
        core.notify_items();
        Ok(())
    }

    /// The ring this handle publishes to.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::BroadcastRing;
    ///
    /// let ring = BroadcastRing::<u64>::heap(4)?;
    /// let mut tx = ring.producer()?;
    /// tx.push(&1)?;
    /// assert_eq!(tx.ring().published(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ring(&self) -> &BroadcastRing<T> {
        self.ring
    }
}

impl<T: ShmValue> Drop for BroadcastProducer<'_, T> {
    fn drop(&mut self) {
        if self.claim.check().is_ok() {
            self.ring.core.role(RingRole::Producer).release(self.claim.me);
        }
    }
}

impl<T: ShmValue> fmt::Debug for BroadcastProducer<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastProducer").field("tail", &self.tail).finish_non_exhaustive()
    }
}

/// A reader of a [`BroadcastRing`]: receives every element in order, from where it started.
/// Any number of subscribers may exist in any number of processes; each keeps its position to
/// itself.
///
/// # Examples
///
/// ```
/// use shmap::ring::BroadcastRing;
/// use std::time::Duration;
///
/// let ring = BroadcastRing::<u16>::heap(16)?;
/// let mut rx = ring.subscribe();
/// ring.producer()?.push(&7)?;
/// assert_eq!(rx.recv()?, 7);
/// assert!(rx.recv_with(shmap::Wait::timeout(Duration::from_millis(10))).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Subscriber<'r, T: ShmValue> {
    ring: &'r BroadcastRing<T>,
    /// The next position to read.
    next: u64,
}

impl<T: ShmValue> Clone for Subscriber<'_, T> {
    fn clone(&self) -> Self {
        Subscriber { ring: self.ring, next: self.next }
    }
}

impl<T: ShmValue> Subscriber<'_, T> {
    /// Receives the next element if it has been published; [`RingError::Empty`] if not, and
    /// [`RingError::Lagged`] if the producer overwrote it (the next call then reads the oldest
    /// element left).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::{BroadcastRing, RingError};
    ///
    /// let ring = BroadcastRing::<u64>::heap(2)?;
    /// let mut rx = ring.subscribe();
    /// assert!(matches!(rx.try_recv(), Err(RingError::Empty)));
    /// let mut tx = ring.producer()?;
    /// (1..=3).try_for_each(|v| tx.push(&v))?; // 1 is overwritten before rx reads it
    /// assert!(matches!(rx.try_recv(), Err(RingError::Lagged { .. })));
    /// assert_eq!(rx.try_recv()?, 2, "then the oldest element left");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv(&mut self) -> Result<T, RingError> {
        let core = &self.ring.core;
        let capacity = core.capacity() as u64;
        // Acquire: pairs with the producer's Release store of `tail`.
        let tail = core.control(ctl::TAIL).load(Ordering::Acquire);
        if self.next >= tail {
            return Err(RingError::Empty);
        }
        if tail - self.next > capacity {
            return Err(self.lagged(tail));
        }
        let position = self.next;
        let (seq, data) = core.cell(position);
        let published = 2 * position + 2;
        // Acquire: pairs with the producer's Release store of the even word.
        let before = seq.load(Ordering::Acquire);
        if before != published {
            // Overwritten by a later lap already (a word below ours cannot be: `tail` is past
            // our position, so it was published).
            return Err(self.lagged(tail.max(position + 1)));
        }
        let value = words::load::<T>(data);
        // Acquire fence: our copy happens before the second read (Boehm's seqlock reader);
        // pairs with the producer's fence(Release) after its odd store.
        fence(Ordering::Acquire);
        let after = seq.load(Ordering::Relaxed);
        if after != published {
            // Acquire: as above.
            let tail = core.control(ctl::TAIL).load(Ordering::Acquire);
            return Err(self.lagged(tail.max(position + capacity)));
        }
        self.next = position + 1;
        Ok(value)
    }

    /// Moves to the oldest element that `tail` leaves in the ring and says how many were lost.
    #[cold]
    fn lagged(&mut self, tail: u64) -> RingError {
        let oldest = tail.saturating_sub(self.ring.core.capacity() as u64);
        // The element at `oldest` may itself be being overwritten: start one later when the
        // producer is on it, so that the next read does not lag again at once.
        let restart = oldest.max(self.next + 1);
        let missed = restart - self.next;
        self.next = restart;
        RingError::Lagged { missed }
    }

    /// Receives the next element, waiting up to the ring's timeout for it to be published.
    /// [`RingError::Lagged`] is returned at once.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::BroadcastRing;
    ///
    /// let ring = BroadcastRing::<u64>::heap(4)?;
    /// let mut rx = ring.subscribe();
    /// std::thread::scope(|s| -> Result<(), shmap::ring::RingError> {
    ///     s.spawn(|| ring.producer().unwrap().push(&5).unwrap());
    ///     assert_eq!(rx.recv()?, 5); // waits for the push
    ///     Ok(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv(&mut self) -> Result<T, RingError> {
        let wait = self.ring.core.wait;
        self.recv_with(wait)
    }

    /// Receives the next element, waiting for it as `wait` says.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Wait, ring::{BroadcastRing, RingError}};
    /// use std::time::Duration;
    ///
    /// let ring = BroadcastRing::<u64>::heap(4)?;
    /// let mut rx = ring.subscribe();
    /// let r = rx.recv_with(Wait::timeout(Duration::from_millis(5)));
    /// assert!(matches!(r, Err(RingError::Timeout { .. })), "nothing published");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_with(&mut self, wait: Wait) -> Result<T, RingError> {
        let core = &self.ring.core;
        core.block_on(core.items(), &wait, false, |_| match self.try_recv() {
            Err(RingError::Empty) => Attempt::NotYet,
            other => Attempt::Done(other),
        })
    }

    /// The position of the next element this subscriber reads (elements published since the
    /// ring was created).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::BroadcastRing;
    ///
    /// let ring = BroadcastRing::<u64>::heap(4)?;
    /// let mut tx = ring.producer()?;
    /// tx.push(&1)?;
    /// let mut rx = ring.subscribe_from_oldest();
    /// assert_eq!(rx.position(), 0);
    /// rx.try_recv()?;
    /// assert_eq!(rx.position(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn position(&self) -> u64 {
        self.next
    }

    /// How many published elements this subscriber has not read yet (some may already be
    /// overwritten).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::BroadcastRing;
    ///
    /// let ring = BroadcastRing::<u64>::heap(4)?;
    /// let rx = ring.subscribe();
    /// let mut tx = ring.producer()?;
    /// tx.push(&1)?;
    /// tx.push(&2)?;
    /// assert_eq!(rx.behind(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn behind(&self) -> u64 {
        self.ring.published().saturating_sub(self.next)
    }
}

impl<T: ShmValue> fmt::Debug for Subscriber<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber").field("next", &self.next).finish_non_exhaustive()
    }
}
