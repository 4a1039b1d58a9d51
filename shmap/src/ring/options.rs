//! How to create or open a ring: [`RingOptions`].

use std::fmt;
use std::marker::PhantomData;

use crate::error::OpenError;
use crate::layout::ShmValue;
use crate::ring::ring_core::RingCore;
use crate::segment::{Backing, Segment, SegmentOptions, StructureKind};
use crate::structure::round_capacity;
use crate::sync::backoff::Wait;

/// How to create or open a ring of type `R`: capacity, timeouts, permissions.
///
/// # Examples
///
/// ```
/// use shmap::ring::MpmcRing;
/// use shmap::Backing;
/// use std::time::Duration;
///
/// # let name = format!("/shmap-doc-ring-options-{}", std::process::id());
/// let ring = MpmcRing::<[u64; 4]>::options()
///     .capacity(1000) // rounded up to 1024 elements
///     .timeout(Duration::from_millis(50))
///     .mode(0o660)
///     .open(&Backing::shm(&name))?;
/// assert_eq!(ring.capacity(), 1024);
/// assert!(ring.pop().is_err(), "times out after 50 ms on an empty ring");
/// # ring.destroy()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RingOptions<R> {
    capacity: Option<usize>,
    wait: Wait,
    segment: SegmentOptions,
    _ring: PhantomData<fn() -> R>,
}

impl<R> Clone for RingOptions<R> {
    fn clone(&self) -> Self {
        RingOptions {
            capacity: self.capacity,
            wait: self.wait,
            segment: self.segment.clone(),
            _ring: PhantomData,
        }
    }
}

impl<R> fmt::Debug for RingOptions<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RingOptions")
            .field("capacity", &self.capacity)
            .field("wait", &self.wait)
            .field("segment", &self.segment)
            .finish()
    }
}

impl<R> Default for RingOptions<R> {
    fn default() -> Self {
        RingOptions {
            capacity: None,
            wait: Wait::default(),
            segment: SegmentOptions::default(),
            _ring: PhantomData,
        }
    }
}

impl<R> RingOptions<R> {
    /// The number of elements, rounded up to a power of two. Required to create a ring; when
    /// opening an existing one it must match (after rounding), and without it an open adopts
    /// the ring's capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmap::{Backing, ring::SpscRing};
    ///
    /// let ring = SpscRing::<u64>::options().capacity(1000).open(&Backing::Heap)?;
    /// assert_eq!(ring.capacity(), 1024);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(mut self, elements: usize) -> Self {
        self.capacity = Some(elements);
        self
    }

    crate::structure::wait_setters!(
        "a cell claimed by another process",
        "shmap::ring::MpmcRing::<u64>::options().capacity(8)"
    );
    crate::structure::segment_setters!(
        "ring",
        "shmap::ring::MpmcRing::<u64>::options().capacity(8)"
    );

    /// The capacity as an option (for the vector's options, which build on these).
    pub(crate) fn capacity_option(mut self, elements: Option<usize>) -> Self {
        self.capacity = elements;
        self
    }

    /// All the segment options at once (as above).
    pub(crate) fn segment_options(mut self, segment: SegmentOptions) -> Self {
        self.segment = segment;
        self
    }

    pub(crate) fn open_core<T: ShmValue>(
        &self,
        backing: &Backing,
        kind: StructureKind,
        seq: bool,
    ) -> Result<RingCore<T>, OpenError> {
        let capacity = match self.capacity {
            None => None,
            Some(n) => Some(
                round_capacity(n, &kind.to_string(), "element")
                    .map_err(|kind| OpenError::new(backing, kind))?,
            ),
        };
        let spec = RingCore::<T>::spec(kind, seq, capacity);
        let segment = Segment::open(backing, &spec, &self.segment)?;
        Ok(RingCore::new(segment, seq, self.wait))
    }
}
