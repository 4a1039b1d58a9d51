//! [`SpscRing`]: one producer, one consumer, wait-free on both sides.
//!
//! Lamport's single-producer single-consumer ring, as folly's `ProducerConsumerQueue` and the
//! `rtrb` crate write it: the producer owns `tail`, the consumer owns `head`, each on its own
//! cache line, and each side keeps a cached copy of the other's position so that it reads the
//! other's line only when the ring looks full (or empty). The producer writes an element's words
//! and then publishes it with a store of `tail`; the consumer copies the element out and then
//! frees its cell with a store of `head`. Cells carry no sequence word.
//!
//! The positions live in shared memory, so a role's next holder (after the previous handle was
//! dropped, or its process died) continues exactly where the last one stopped: a push or pop
//! that did not publish its position never happened.

use std::fmt;

use crate::error::OpenError;
use crate::layout::ShmValue;
use crate::ring::{
    Attempt, Claim, RingCore, RingError, RingOptions, RingRole, RingStats, ctl, ring_common,
};
use crate::segment::{Backing, CreateMode, Segment, StructureKind};
use crate::sync::backoff::Wait;
use crate::sync::primitive::Ordering;
use crate::sync::words;

/// A single-producer single-consumer ring buffer in shared memory.
///
/// The producer and the consumer are roles: [`producer`](Self::producer) and
/// [`consumer`](Self::consumer) hand out at most one [`SpscProducer`] and one [`SpscConsumer`]
/// at a time, across all processes. Both are wait-free: a push or a pop is a few loads and
/// stores, and touches the other side's cache line only when the ring looks full or empty.
///
/// # Examples
///
/// ```
/// use shmap::ring::{RingError, SpscRing};
///
/// let ring = SpscRing::<[u8; 16]>::heap(4)?;
/// let mut tx = ring.producer()?;
/// let mut rx = ring.consumer()?;
/// tx.try_push(b"hello, consumer!")?;
/// assert_eq!(&rx.try_pop()?, b"hello, consumer!");
/// assert!(matches!(rx.try_pop(), Err(RingError::Empty)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SpscRing<T: ShmValue> {
    pub(super) core: RingCore<T>,
}

ring_common!(SpscRing, StructureKind::SpscRing, false);

/// Model-checking support for the role words: only in loom builds (`ring/loom_tests.rs`).
#[cfg(all(test, shmap_loom))]
impl<T: ShmValue> SpscRing<T> {
    /// Makes the producer role look held by a process that died holding it (pid 0); returns
    /// that holder's owner id.
    pub(crate) fn loom_plant_dead_producer(&self) -> u16 {
        let dead = crate::process::ProcessIdentity {
            pid: 0,
            ..crate::process::ProcessIdentity::current().unwrap()
        };
        let owner = self.core.segment.processes().register(&dead, &|_| false).expect("an entry");
        // Relaxed: planted before the model spawns its threads, which the spawn orders after.
        self.core.control(ctl::PRODUCER).store(u64::from(owner.get()), Ordering::Relaxed);
        owner.get()
    }

    /// As a new process that was given the dead `owner`'s id (once nothing named it) would:
    /// registers this process under that id and claims the producer role with it, keeping it.
    /// Returns whether the claim succeeded.
    pub(crate) fn loom_reuse_owner_and_claim(&self, owner: u16) -> bool {
        let owner = crate::process::OwnerId::from_bits(u64::from(owner)).expect("an owner id");
        let me = crate::process::ProcessIdentity::current().unwrap();
        self.core.segment.processes().loom_refill(owner, &me);
        self.core.role(RingRole::Producer).claim(&self.core.segment, owner).is_ok()
    }

    /// The producer role's holder, as the owner id in its word.
    pub(crate) fn loom_producer_holder(&self) -> Option<u16> {
        // Acquire: pairs with the claims' and releases' read-modify-writes of the word.
        let word = self.core.control(ctl::PRODUCER).load(Ordering::Acquire);
        super::role::holder_of(word).map(|o| o.get())
    }
}

impl<T: ShmValue> SpscRing<T> {
    /// Claims the producer role. Fails with [`RingError::RoleTaken`] while another handle (in
    /// any process) holds it; a holder whose process died is taken over.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::{RingError, SpscRing};
    ///
    /// let ring = SpscRing::<u64>::heap(8)?;
    /// let tx = ring.producer()?;
    /// assert!(matches!(ring.producer(), Err(RingError::RoleTaken { .. })), "one producer at a time");
    /// drop(tx);
    /// ring.producer()?; // free again
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn producer(&self) -> Result<SpscProducer<'_, T>, RingError> {
        let claim = self.core.claim(RingRole::Producer)?;
        // Acquire: pairs with the previous holder's Release store of `tail` (the claim's own
        // Acquire already orders its writes; this reads the value).
        let tail = self.core.control(ctl::TAIL).load(Ordering::Acquire);
        // Acquire: pairs with the consumer's Release store of `head`.
        let head = self.core.control(ctl::HEAD).load(Ordering::Acquire);
        Ok(SpscProducer { ring: self, claim, tail, cached_head: head })
    }

    /// Claims the consumer role (see [`producer`](Self::producer)).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::{RingError, SpscRing};
    ///
    /// let ring = SpscRing::<u64>::heap(8)?;
    /// let _rx = ring.consumer()?;
    /// assert!(matches!(ring.consumer(), Err(RingError::RoleTaken { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn consumer(&self) -> Result<SpscConsumer<'_, T>, RingError> {
        let claim = self.core.claim(RingRole::Consumer)?;
        // Acquire: pairs with the previous holder's Release store of `head`.
        let head = self.core.control(ctl::HEAD).load(Ordering::Acquire);
        // Acquire: pairs with the producer's Release store of `tail`.
        let tail = self.core.control(ctl::TAIL).load(Ordering::Acquire);
        Ok(SpscConsumer { ring: self, claim, head, cached_tail: tail })
    }

    /// How many elements the ring holds right now (a snapshot: both sides may be moving).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::SpscRing;
    ///
    /// let ring = SpscRing::<u64>::heap(8)?;
    /// let mut tx = ring.producer()?;
    /// tx.try_push(&1)?;
    /// tx.try_push(&2)?;
    /// assert_eq!(ring.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        let tail = self.core.control(ctl::TAIL).load(Ordering::Relaxed);
        let head = self.core.control(ctl::HEAD).load(Ordering::Relaxed);
        tail.saturating_sub(head).min(self.core.capacity() as u64) as usize
    }

    /// Whether the ring holds no element right now.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::SpscRing;
    ///
    /// let ring = SpscRing::<u64>::heap(8)?;
    /// assert!(ring.is_empty());
    /// ring.producer()?.try_push(&1)?;
    /// assert!(!ring.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The producer of an [`SpscRing`]: pushes elements. Holds the role until dropped.
///
/// # Examples
///
/// ```
/// use shmap::ring::SpscRing;
/// use std::time::Duration;
///
/// let ring = SpscRing::<u64>::heap(1)?;
/// let mut tx = ring.producer()?;
/// tx.push(&1)?; // there is room
/// let waited = tx.push_with(&2, shmap::Wait::timeout(Duration::from_millis(10)));
/// assert!(waited.is_err(), "the ring stays full: times out");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SpscProducer<'r, T: ShmValue> {
    ring: &'r SpscRing<T>,
    claim: Claim,
    /// The next position to publish (this handle is the only writer of `tail`).
    tail: u64,
    /// The consumer's `head` as last read: the ring has room up to `cached_head + capacity`.
    cached_head: u64,
}

impl<T: ShmValue> SpscProducer<'_, T> {
    /// Pushes `value` if there is room; [`RingError::Full`] otherwise.
    #[inline]
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::{RingError, SpscRing};
    ///
    /// let ring = SpscRing::<u64>::heap(1)?;
    /// let mut tx = ring.producer()?;
    /// tx.try_push(&1)?;
    /// assert!(matches!(tx.try_push(&2), Err(RingError::Full)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_push(&mut self, value: &T) -> Result<(), RingError> {
        self.claim.check()?;
        let core = &self.ring.core;
        let capacity = core.capacity() as u64;
        if self.tail.wrapping_sub(self.cached_head) >= capacity {
            // Acquire: pairs with the consumer's Release store of `head`, so that its reads of
            // the cells it freed happen before we overwrite them.
            self.cached_head = core.control(ctl::HEAD).load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.cached_head) >= capacity {
                return Err(RingError::Full);
            }
        }
        let (_, data) = core.cell(self.tail);
        words::store(data, value);
        self.tail += 1;
        // Release: publishes the element; pairs with the consumer's Acquire load of `tail`.
        core.control(ctl::TAIL).store(self.tail, Ordering::Release);
        core.notify_items();
        Ok(())
    }

    /// Pushes `value`, waiting while the ring is full, up to the ring's timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::SpscRing;
    ///
    /// let ring = SpscRing::<u64>::heap(4)?;
    /// let mut tx = ring.producer()?;
    /// tx.push(&7)?; // room: returns at once
    /// assert_eq!(ring.consumer()?.pop()?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push(&mut self, value: &T) -> Result<(), RingError> {
        let wait = self.ring.core.wait;
        self.push_with(value, wait)
    }

    /// Pushes `value`, waiting while the ring is full as `wait` says.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Wait, ring::{RingError, SpscRing}};
    /// use std::time::Duration;
    ///
    /// let ring = SpscRing::<u64>::heap(1)?;
    /// let mut tx = ring.producer()?;
    /// tx.push(&1)?;
    /// let r = tx.push_with(&2, Wait::timeout(Duration::from_millis(5)));
    /// assert!(matches!(r, Err(RingError::Timeout { .. })), "full, and nobody pops");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn push_with(&mut self, value: &T, wait: Wait) -> Result<(), RingError> {
        let core = &self.ring.core;
        core.block_on(core.space(), &wait, true, |_| match self.try_push(value) {
            Err(RingError::Full) => Attempt::NotYet,
            other => Attempt::Done(other),
        })
    }

    /// The ring this handle pushes to.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::SpscRing;
    ///
    /// let ring = SpscRing::<u64>::heap(8)?;
    /// let tx = ring.producer()?;
    /// assert_eq!(tx.ring().capacity(), 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ring(&self) -> &SpscRing<T> {
        self.ring
    }
}

impl<T: ShmValue> Drop for SpscProducer<'_, T> {
    fn drop(&mut self) {
        if self.claim.check().is_ok() {
            self.ring.core.role(RingRole::Producer).release(self.claim.me);
        }
    }
}

impl<T: ShmValue> fmt::Debug for SpscProducer<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpscProducer").field("tail", &self.tail).finish_non_exhaustive()
    }
}

/// The consumer of an [`SpscRing`]: pops elements in the order they were pushed. Holds the
/// role until dropped.
///
/// # Examples
///
/// ```
/// use shmap::ring::SpscRing;
///
/// let ring = SpscRing::<u64>::heap(8)?;
/// ring.producer()?.push(&42)?; // the producer handle is dropped: the role is free again
/// let mut rx = ring.consumer()?;
/// assert_eq!(rx.pop()?, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SpscConsumer<'r, T: ShmValue> {
    ring: &'r SpscRing<T>,
    claim: Claim,
    /// The next position to consume (this handle is the only writer of `head`).
    head: u64,
    /// The producer's `tail` as last read: elements are published up to it.
    cached_tail: u64,
}

impl<T: ShmValue> SpscConsumer<'_, T> {
    /// Pops the oldest element if there is one; [`RingError::Empty`] otherwise.
    #[inline]
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::{RingError, SpscRing};
    ///
    /// let ring = SpscRing::<u64>::heap(8)?;
    /// let mut rx = ring.consumer()?;
    /// assert!(matches!(rx.try_pop(), Err(RingError::Empty)));
    /// ring.producer()?.try_push(&3)?;
    /// assert_eq!(rx.try_pop()?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_pop(&mut self) -> Result<T, RingError> {
        self.claim.check()?;
        let core = &self.ring.core;
        if self.head == self.cached_tail {
            // Acquire: pairs with the producer's Release store of `tail`: the
            // element's words are visible.
            self.cached_tail = core.control(ctl::TAIL).load(Ordering::Acquire);
            if self.head == self.cached_tail {
                return Err(RingError::Empty);
            }
        }
        let (_, data) = core.cell(self.head);
        let value = words::load::<T>(data);
        self.head += 1;
        // Release: frees the cell; pairs with the producer's Acquire load of `head`, so our
        // reads happen before its next writes.
        core.control(ctl::HEAD).store(self.head, Ordering::Release);
        core.notify_space();
        Ok(value)
    }

    /// Pops the oldest element, waiting while the ring is empty, up to the ring's timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::SpscRing;
    ///
    /// let ring = SpscRing::<u64>::heap(8)?;
    /// std::thread::scope(|s| -> Result<(), shmap::ring::RingError> {
    ///     s.spawn(|| ring.producer().unwrap().push(&9).unwrap());
    ///     assert_eq!(ring.consumer()?.pop()?, 9); // waits for the push
    ///     Ok(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop(&mut self) -> Result<T, RingError> {
        let wait = self.ring.core.wait;
        self.pop_with(wait)
    }

    /// Pops the oldest element, waiting while the ring is empty as `wait` says.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Wait, ring::{RingError, SpscRing}};
    /// use std::time::Duration;
    ///
    /// let ring = SpscRing::<u64>::heap(8)?;
    /// let mut rx = ring.consumer()?;
    /// let r = rx.pop_with(Wait::timeout(Duration::from_millis(5)));
    /// assert!(matches!(r, Err(RingError::Timeout { .. })), "empty, and nobody pushes");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_with(&mut self, wait: Wait) -> Result<T, RingError> {
        let core = &self.ring.core;
        core.block_on(core.items(), &wait, false, |_| match self.try_pop() {
            Err(RingError::Empty) => Attempt::NotYet,
            other => Attempt::Done(other),
        })
    }

    /// The ring this handle pops from.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::ring::SpscRing;
    ///
    /// let ring = SpscRing::<u64>::heap(8)?;
    /// let rx = ring.consumer()?;
    /// assert!(rx.ring().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ring(&self) -> &SpscRing<T> {
        self.ring
    }
}

impl<T: ShmValue> Drop for SpscConsumer<'_, T> {
    fn drop(&mut self) {
        if self.claim.check().is_ok() {
            self.ring.core.role(RingRole::Consumer).release(self.claim.me);
        }
    }
}

impl<T: ShmValue> fmt::Debug for SpscConsumer<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpscConsumer").field("head", &self.head).finish_non_exhaustive()
    }
}
