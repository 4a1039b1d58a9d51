//! Ring buffers in shared memory: the original library's `ShmRingBuffer` in its SPSC, SPMC and
//! broadcast forms, plus MPMC (which the original's SPMC `push` already was).
//!
//! | ring | producers | consumers | each element goes to | a full ring |
//! |---|---|---|---|---|
//! | [`SpscRing`] | one ([`SpscProducer`]) | one ([`SpscConsumer`]) | the consumer | refuses a push |
//! | [`SpmcRing`] | one ([`SpmcProducer`]) | any number | one consumer | refuses a push |
//! | [`MpmcRing`] | any number | any number | one consumer | refuses a push |
//! | [`BroadcastRing`] | one ([`BroadcastProducer`]) | any number ([`Subscriber`]) | every subscriber | overwrites the oldest |
//!
//! Every ring has a power-of-two capacity and holds elements of a `T:`[`ShmValue`](crate::ShmValue), copied in
//! and out through atomics. Every operation comes in three forms: `try_` (never waits: `Full`
//! or `Empty`), the plain form (waits up to the handle's timeout, default 5 s), and `_with`
//! (waits under a [`Wait`](crate::Wait) of its own). Waiting spins, then yields, then sleeps in `futex(2)` on
//! a word of the ring until the other side makes progress (the `event` module has the protocol and why no
//! wake-up is lost); it never polls in a tight loop for longer than the [`Backoff`](crate::Backoff)'s spin and
//! yield steps. The cost of that guarantee falls on the sleeper, not on every push and pop: a
//! publisher pays a compiler barrier and one load, and a sleeper pays one `membarrier(2)` call
//! (the asymmetric barrier in `barrier`, with a fallback where the kernel lacks it).
//!
//! # Roles
//! A ring with one producer (or one consumer) hands out that role as a handle, claimed in a
//! word of the ring: a second claimant, in this process or another, gets
//! [`RingError::RoleTaken`] naming the holder, rather than two producers racing on one position.
//! The handle gives the role back when dropped. A holder process that dies cannot give it back:
//! the next claimant finds it dead and takes over where the ring's shared positions say it
//! stopped. A handle inherited across `fork` is refused ([`RingError::RoleLost`]); the child
//! claims the role again if it should have it.
//!
//! # Processes that die mid-operation
//! - SPSC, SPMC and broadcast: a producer publishes an element with one store after writing it,
//!   so one killed mid-push publishes nothing; its successor writes the same position again. An
//!   SPSC consumer advances its position only after copying; one killed mid-pop leaves the
//!   element to its successor.
//! - SPMC and MPMC consumers claim an element in its cell, with their owner id, before copying
//!   it. A consumer killed in that window leaves the cell claimed by a dead process: the next
//!   producer or consumer that reaches the cell finds the holder dead and publishes the element
//!   again, one lap later, for another consumer (it is delivered exactly once, out of order by
//!   one lap). An MPMC producer killed between claiming a cell and publishing it leaves a cell
//!   that a waiting consumer finds dead and skips (the push never returned, so nothing is lost).
//!   [`RingStats`] counts both.
//! - Broadcast subscribers keep their position in their own process: one that dies affects no
//!   one, and the producer never waits for subscribers.
//!
//! # Examples
//!
//! A producer process feeding a consumer process through an SPSC ring (threads stand in for the
//! processes here; `examples/src/bin/ring.rs` uses real ones):
//!
//! ```
//! use shmap::ring::SpscRing;
//!
//! # let name = format!("/shmap-doc-ring-{}", std::process::id());
//! let ring = SpscRing::<u64>::open_or_create(&name, 1024)?;
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         let mut producer = ring.producer().unwrap();
//!         for i in 0..10_000 {
//!             producer.push(&i).unwrap(); // waits while the ring is full
//!         }
//!     });
//!     let mut consumer = ring.consumer().unwrap();
//!     for i in 0..10_000 {
//!         assert_eq!(consumer.pop().unwrap(), i); // waits while the ring is empty
//!     }
//! });
//! # ring.destroy()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod barrier;
mod broadcast;
pub(crate) mod cell;
mod error;
pub(crate) mod event;
mod options;
mod queue;
mod ring_core;
mod role;
#[cfg(not(shmap_loom))]
mod snapshot;
mod spsc;

pub use broadcast::{BroadcastProducer, BroadcastRing, Subscriber};
pub use error::{RingError, RingRole, RingStats};
pub use options::RingOptions;
pub use queue::{MpmcRing, SpmcProducer, SpmcRing};
pub(crate) use ring_core::{Attempt, Claim, RingCore, StaleCheck, ctl};
#[cfg(not(shmap_loom))]
pub use snapshot::{BusyCell, CellWork, Holder, RingSnapshot, SleepsFor};
pub use spsc::{SpscConsumer, SpscProducer, SpscRing};

/// The constructors and accessors of every structure built on a [`RingCore`] (the rings and
/// `ShmVector`); `$what` names the structure in their documentation, and `$path` is the module
/// its examples import it from. Each structure defines
/// its own `options()` (rings: [`RingOptions`], the vector: `VectorOptions`).
macro_rules! core_handle {
    ($ty:ident, $kind:expr, $seq:expr, $what:literal, $path:literal) => {
        impl<T: ShmValue> $ty<T> {
            #[doc = concat!("Opens the POSIX shared-memory ", $what, " `name` (`/name`), creating it with room for")]
            /// `capacity` elements (rounded up to a power of two) if it does not exist.
            ///
            /// Any number of processes may call this at once: they all get the same one.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", $path, "::", stringify!($ty), ";")]
            ///
            /// # let name = format!("/shmap-doc-ooc-{}", std::process::id());
            #[doc = concat!("let a = ", stringify!($ty), "::<u64>::open_or_create(&name, 16)?;")]
            #[doc = concat!("let b = ", stringify!($ty), "::<u64>::open_or_create(&name, 16)?; // in another process, say: the same one")]
            /// assert_eq!(a.segment().info().segment_id, b.segment().info().segment_id);
            /// a.destroy()?;
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn open_or_create(name: &str, capacity: usize) -> Result<Self, OpenError> {
                Self::options().capacity(capacity).open(&Backing::shm(name))
            }

            #[doc = concat!("Opens the existing POSIX shared-memory ", $what, " `name`, whatever its capacity.")]
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", $path, "::", stringify!($ty), ";")]
            ///
            /// # let name = format!("/shmap-doc-open-{}", std::process::id());
            #[doc = concat!("assert!(", stringify!($ty), "::<u64>::open(&name).is_err(), \"no such name yet\");")]
            #[doc = concat!("let created = ", stringify!($ty), "::<u64>::open_or_create(&name, 32)?;")]
            #[doc = concat!("assert_eq!(", stringify!($ty), "::<u64>::open(&name)?.capacity(), 32);")]
            /// created.destroy()?;
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn open(name: &str) -> Result<Self, OpenError> {
                Self::options().create(CreateMode::OpenExisting).open(&Backing::shm(name))
            }

            #[doc = concat!("A ", $what, " in an anonymous shared mapping: shared with the `fork` children of this")]
            /// process, invisible to every other process.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", $path, "::", stringify!($ty), ";")]
            ///
            #[doc = concat!("let shared_with_children = ", stringify!($ty), "::<u64>::anonymous(8)?; // then fork")]
            /// assert_eq!(shared_with_children.capacity(), 8);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn anonymous(capacity: usize) -> Result<Self, OpenError> {
                Self::options().capacity(capacity).open(&Backing::Anonymous)
            }

            #[doc = concat!("A ", $what, " on the heap, for the threads of this process only.")]
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", $path, "::", stringify!($ty), ";")]
            ///
            #[doc = concat!("assert_eq!(", stringify!($ty), "::<u64>::heap(8)?.capacity(), 8);")]
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn heap(capacity: usize) -> Result<Self, OpenError> {
                Self::options().capacity(capacity).open(&Backing::Heap)
            }

            #[doc = concat!("The number of elements the ", $what, " holds when full.")]
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", $path, "::", stringify!($ty), ";")]
            ///
            #[doc = concat!("assert_eq!(", stringify!($ty), "::<u64>::heap(100)?.capacity(), 128, \"rounded up to a power of two\");")]
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn capacity(&self) -> usize {
                self.core.capacity()
            }

            #[doc = concat!("The segment the ", $what, " lives in (its header, its attached processes).")]
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", $path, "::", stringify!($ty), ";")]
            ///
            #[doc = concat!("let x = ", stringify!($ty), "::<u64>::heap(8)?;")]
            /// assert_eq!(x.segment().info().capacity, 8);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn segment(&self) -> &Segment {
                &self.core.segment
            }

            #[doc = concat!("Removes the ", $what, "'s name; processes that have it open keep using it, and the")]
            /// memory is freed when the last of them closes it.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", $path, "::", stringify!($ty), ";")]
            ///
            /// # let name = format!("/shmap-doc-destroy-{}", std::process::id());
            #[doc = concat!("let x = ", stringify!($ty), "::<u64>::open_or_create(&name, 8)?;")]
            /// x.destroy()?;
            #[doc = concat!("assert!(", stringify!($ty), "::<u64>::open(&name).is_err(), \"the name is gone\");")]
            /// assert_eq!(x.capacity(), 8, "the handle still works");
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn destroy(&self) -> Result<(), OpenError> {
                Segment::unlink(&self.core.segment.info().backing)
            }

            #[doc = concat!("Removes the name of the POSIX shared-memory ", $what, " `name`.")]
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", $path, "::", stringify!($ty), ";")]
            ///
            /// # let name = format!("/shmap-doc-unlink-{}", std::process::id());
            #[doc = concat!("let x = ", stringify!($ty), "::<u64>::open_or_create(&name, 8)?;")]
            #[doc = concat!(stringify!($ty), "::<u64>::unlink(&name)?;")]
            #[doc = concat!("assert!(", stringify!($ty), "::<u64>::open(&name).is_err());")]
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn unlink(name: &str) -> Result<(), OpenError> {
                Segment::unlink(&Backing::shm(name))
            }
        }

    };
}
pub(crate) use core_handle;

/// What every ring type shares: [`core_handle`], its recovery counters and `Debug`.
macro_rules! ring_common {
    ($ring:ident, $kind:expr, $seq:expr) => {
        $crate::ring::core_handle!($ring, $kind, $seq, "ring", "shmap::ring");

        impl<T: ShmValue> RingOptions<$ring<T>> {
            /// Creates or opens the ring at `backing`.
            ///
            /// # Examples
            ///
            /// ```
            /// use shmap::Backing;
            #[doc = concat!("use ", "shmap::ring", "::", stringify!($ring), ";")]
            /// use std::time::Duration;
            ///
            #[doc = concat!("let ring = ", stringify!($ring), "::<u64>::options()")]
            ///     .capacity(8)
            ///     .timeout(Duration::from_millis(50))
            ///     .open(&Backing::Heap)?;
            /// assert_eq!(ring.capacity(), 8);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn open(self, backing: &Backing) -> Result<$ring<T>, OpenError> {
                Ok($ring { core: self.open_core(backing, $kind, $seq)? })
            }
        }

        impl<T: ShmValue> $ring<T> {
            /// Options to create or open a ring with another backing, timeout or mode.
            ///
            /// # Examples
            ///
            /// ```
            /// use shmap::Backing;
            #[doc = concat!("use ", "shmap::ring", "::", stringify!($ring), ";")]
            ///
            #[doc = concat!("let ring = ", stringify!($ring), "::<[u8; 8]>::options().capacity(4).open(&Backing::Heap)?;")]
            /// assert_eq!(ring.capacity(), 4);
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn options() -> RingOptions<Self> {
                RingOptions::default()
            }

            /// The recovery counters, and how many threads sleep in a blocking operation now.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", "shmap::ring", "::", stringify!($ring), ";")]
            ///
            #[doc = concat!("let stats = ", stringify!($ring), "::<u64>::heap(8)?.stats();")]
            /// assert_eq!((stats.takeovers, stats.sleeping), (0, 0));
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn stats(&self) -> RingStats {
                self.core.stats()
            }

            /// Frees the seats of threads that were killed while asleep in a blocking
            /// operation, and returns how many. Without this, each later push (or pop) would
            /// pay a futex wake for a sleeper that is gone. Pushes and pops do it on their own
            /// (when a wake finds nobody asleep, at most once per stale-check interval); a
            /// monitor process can call it. A seat is freed only when its process is proven
            /// dead ([`Liveness::Dead`](crate::Liveness::Dead)).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use ", "shmap::ring", "::", stringify!($ring), ";")]
            ///
            #[doc = concat!("assert_eq!(", stringify!($ring), "::<u64>::heap(8)?.recover_sleepers(), 0, \"nobody was killed asleep\");")]
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn recover_sleepers(&self) -> usize {
                self.core.recover_sleepers()
            }
        }

        impl<T: ShmValue> fmt::Debug for $ring<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ring))
                    .field("segment", &self.core.segment.info().backing)
                    .field("capacity", &self.core.capacity())
                    .finish_non_exhaustive()
            }
        }
    };
}
use ring_common;

#[cfg(all(test, shmap_loom))]
mod loom_tests;
#[cfg(all(test, not(shmap_loom)))]
mod tests;
