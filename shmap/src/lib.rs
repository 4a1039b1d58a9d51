//! Typed, crash-aware concurrent data structures in shared memory, for many processes and
//! threads on one Linux host.
//!
//! shmap keeps hot state in shared memory so that it survives a process restart and can be read
//! by a monitor process. It grew out of a C++17 library of the same name and keeps its
//! vocabulary (`ShmHashTable`, `visit`, [`AccessMode::CreateIfMiss`], `travel`, [`Backoff`]) while
//! fixing what a review of it found (see [the review](crate::guide::original_review)).
//!
//! ## The hash table
//! - [`ShmHashTable`]: fixed capacity, open addressing over packed 64-bit control words;
//!   [`visit`](ShmHashTable::visit) under a per-slot lock, lock-free
//!   [`get`](ShmHashTable::get)/[`read`](ShmHashTable::read), [`travel`](ShmHashTable::travel)
//!   that can stop early and times out instead of hanging.
//! - [`AccessMode`], [`Visited`], [`VisitResult`], [`TravelOutcome`], [`SlotState`].
//! - Errors: [`TableError`] (timeouts, a full table), [`VisitError`] (plus a failed visitor).
//!
//! ## The cache
//! - [`ShmCache`]: the table with expiry and eviction. Entries live for a time to live (a
//!   default one or their own) and are absent to every read from that instant on; with
//!   `max_entries`, an insert evicts an entry not used recently (CLOCK, whose reads store
//!   nothing for a hot key). Settings recorded in the header ([`CacheSettings`]),
//!   [`CacheStats`], [`Expiry`], [`EvictionPolicy`].
//!
//! ## Rings and a vector
//! - [`ring`]: [`SpscRing`](ring::SpscRing), [`SpmcRing`](ring::SpmcRing),
//!   [`MpmcRing`](ring::MpmcRing) (Vyukov's sequence-numbered cells) and
//!   [`BroadcastRing`](ring::BroadcastRing), with producer and consumer roles as handles,
//!   `futex` sleeps across processes, and recovery from a process killed mid-operation.
//! - [`ShmVector`]: fixed capacity, append-only from any number of processes; an element is
//!   visible once fully written.
//! - [`shm_ring`]: `#[shm_ring(capacity = 4096, path = "/jobs", kind = "spmc")] struct
//!   Jobs(Job);` makes `Jobs::get()`, a process-wide ring, from which roles are claimed.
//!
//! ## Segments
//! - [`Backing`]: a POSIX shm name, a file (on hugetlbfs: huge pages), a sealed memfd handed
//!   over as a descriptor, an anonymous mapping shared across `fork`, or the heap. An existing
//!   named segment is refused if another user could have planted it
//!   ([`OpenErrorKind::UntrustedOwner`]); [`ShmTableReader`] reads a table without writing.
//! - [`segment`]: race-free create-or-open, the self-describing header, [`Segment`] for structures
//!   of your own.
//! - [`OpenError`] / [`OpenErrorKind`]: every way an open can fail, with expected and found values.
//!
//! ## Stored types
//! - `#[derive(ShmKey)]`, `#[derive(ShmValue)]` on `#[repr(C)]` structs: checked at compile time
//!   (no heap owners, references, `bool`, `char`, `Option`, padding, ...) and given a layout
//!   hash that the segment header records, so a build with another layout is refused instead
//!   of misreading memory. [`ShmLayout`], [`ShmKey`], [`ShmValue`] are the traits.
//! - [`FixedString`] (inline UTF-8) and [`BitsInteger`] (a checked bit-width integer) for fields
//!   and keys.
//! - [`shm_table`]: `#[shm_table(capacity = 4096, path = "/players")] struct Players(K, V);`
//!   makes `Players::get()`, a process-wide handle.
//! - [`ShmHasher`], [`DefaultHasher`]: a key hash that is the same in every process and build.
//!
//! ## Waiting
//! - [`Wait`], [`Backoff`], [`BackoffPolicy`]: every wait is bounded; the clock is read only once
//!   a wait begins.
//! - [`OwnerId`], [`ProcessIdentity`], [`Liveness`]: who holds a slot, and whether it is alive.
//!
//! # Example
//!
//! A table of counters opened by name twice, as two processes would (see
//! `examples/src/bin/counter.rs` for the same with real processes):
//!
//! ```
//! use shmap::{AccessMode, ShmHashTable};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let name = format!("/shmap-doc-lib-{}", std::process::id());
//! let hits = ShmHashTable::<u64, u64>::open_or_create(&name, 1 << 10)?;
//!
//! let worker = {
//!     let name = name.clone();
//!     std::thread::spawn(move || -> Result<(), shmap::OpenError> {
//!         // Another handle on the same segment: what a second process would do.
//!         let hits = ShmHashTable::<u64, u64>::open(&name)?;
//!         for page in 0..100 {
//!             hits.visit(&page, AccessMode::CreateIfMiss, |_, n, _| *n += 1).unwrap();
//!         }
//!         Ok(())
//!     })
//! };
//! for page in 0..100 {
//!     hits.visit(&page, AccessMode::CreateIfMiss, |_slot, n, _is_new| *n += 1)?;
//! }
//! worker.join().unwrap()?;
//!
//! assert_eq!(hits.get(&42)?, Some(2));
//! let total = {
//!     let mut total = 0;
//!     assert!(hits.travel(|_slot, _page, n| total += *n)?.is_completed());
//!     total
//! };
//! assert_eq!(total, 200);
//! hits.destroy()?; // remove the name; the memory goes with the last handle
//! # Ok(())
//! # }
//! ```

extern crate self as shmap; // so derived code (`::shmap::…`) also compiles inside this crate

mod bits_integer;
mod bytes;
mod cache;
mod error;
mod fixed_string;
pub mod guide {
    //! Guides that go with the API documentation: what to do about stuck slots, and what the
    //! review of the original C++ library found (the files in `shmap/docs/`).

    #[doc = include_str!("../docs/recovery.md")]
    pub mod recovery {}

    #[doc = include_str!("../docs/original-review.md")]
    pub mod original_review {}
}
mod hash;
mod layout;
#[cfg(all(test, shmap_loom))]
mod loom_support;
pub mod monitor;
#[doc(hidden)]
pub mod __private {
    //! For `shmap-derive`'s generated code only.
    pub use crate::private::*;
}
mod private;
mod process;
pub mod ring;
pub mod segment;
mod structure;
mod sync;
mod sys;
mod table;
mod vector;

pub use bits_integer::{BitsInteger, OutOfRange};
pub use cache::{
    CacheOptions, CacheSettings, CacheStats, EvictionPolicy, Expiry, ReadClock, ShmCache,
};
pub use error::{OpenError, OpenErrorKind, Role};
pub use fixed_string::{FixedString, FixedStringError};
pub use hash::{DefaultHasher, ShmHasher};
pub use layout::{
    DESC_CAPACITY, LayoutDesc, LayoutHasher, ShmKey, ShmLayout, ShmValue, TypeLayout,
};
pub use monitor::{HolderMayBeRunning, Monitor, RecoverError, StuckSlot};
pub use process::{
    IdentityError, Liveness, MAX_PROCESSES, OwnerId, ProcessIdentity, RegisterError,
};
pub use segment::{Backing, CreateMode, HugePages, Segment, SegmentInfo, StructureKind};
/// # Examples
///
/// A ring of jobs that every process of a service reaches through `Jobs::get()`; roles are
/// claimed from it like from any ring:
///
/// ```
/// use shmap::{ShmValue, shm_ring};
///
/// #[derive(ShmValue, Clone, Copy)]
/// #[repr(C)]
/// struct Job { id: u64, weight: u32, stop: u32 }
///
/// #[shm_ring(capacity = 1024, path = "/shmap-doc-jobs", kind = "spmc", timeout_ms = 2000)]
/// struct Jobs(Job);
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let _ = Jobs::destroy();
/// let mut producer = Jobs::get().producer()?; // one producer, in whichever process
/// producer.push(&Job { id: 1, weight: 3, stop: 0 })?;
/// assert_eq!(Jobs::get().pop()?.id, 1); // any process may consume
/// assert_eq!((Jobs::CAPACITY, Jobs::PATH, Jobs::KIND), (1024, "/shmap-doc-jobs", "spmc"));
/// Jobs::destroy()?;
/// # Ok(())
/// # }
/// ```
pub use shmap_derive::shm_ring;
/// # What it generates
///
/// On `struct Name(Key, Value);` (whose fields become private), associated items of `Name`:
///
/// | item | what |
/// |---|---|
/// | `CAPACITY: usize` | the `capacity` argument (rounded up to a power of two at creation) |
/// | `PATH: &str` | the `path` (a POSIX shared-memory name) or `file` argument |
/// | `LAYOUT_HASH: u64` | the key's and the value's layout hashes together |
/// | `backing()` | where the table lives, as a [`Backing`] |
/// | `options()` | the [`TableOptions`] `get` opens it with (from the arguments below) |
/// | `try_get()` | `Result<&'static ShmHashTable<Key, Value>, OpenError>`: opens (or creates) the table on the first successful call in the process, then returns the same handle; an error is returned, and the next call tries again |
/// | `get()` | `&'static ShmHashTable<Key, Value>`, the same; **panics** if the table cannot be opened, with the message `Name::get(): cannot open shared-memory segment /name: <the error> (path /name)` |
/// | `destroy()` | removes the name ([`Segment::unlink`]) |
///
/// The arguments: `capacity` (required), `path = "/name"` or `file = "/a/path"` (one of them),
/// `rollback = bool`, `timeout_ms = N`, `mode = 0o…`, `undo_records = bool` (see
/// [`TableOptions::undo_records`]), `hasher = path::To::Hasher` (a [`ShmHasher`]; the table
/// type becomes `ShmHashTable<Key, Value, Hasher>`) and `adopt_capacity = bool` (open an
/// existing table with more slots too: [`TableOptions::min_capacity`]). Each is checked at
/// compile time.
///
/// With `ttl_ms = N` (a default time to live, 1 ms to 2^40 ms) or `max_entries = N` (from 1
/// to the capacity), the handle is a [`ShmCache`] with those settings instead of a table
/// (`get()` returns `&'static ShmCache<Key, Value>`, `options()` a [`CacheOptions`]):
///
/// ```
/// use shmap::shm_table;
///
/// #[shm_table(capacity = 1024, path = "/shmap-doc-sessions", ttl_ms = 60_000, max_entries = 800)]
/// pub struct Sessions(u64, [u8; 32]);
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let _ = Sessions::destroy();
/// Sessions::get().insert(&7, &[1; 32])?; // expires in a minute, evicted if 800 are newer
/// assert_eq!(Sessions::get().settings().max_entries, Some(800));
/// Sessions::destroy()?;
/// # Ok(())
/// # }
/// ```
///
/// # Examples
///
/// ```
/// use shmap::{AccessMode, shm_table};
///
/// #[shm_table(capacity = 256, path = "/shmap-doc-gold", timeout_ms = 500)]
/// pub struct Gold(u64, u64);
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let _ = Gold::destroy();
/// // Opened (or created) on first use in this process, then the same handle every time.
/// Gold::get().visit(&42, AccessMode::CreateIfMiss, |_slot, gold, _is_new| *gold += 5)?;
/// assert_eq!(Gold::get().get(&42)?, Some(5));
/// Gold::destroy()?;
/// # Ok(())
/// # }
/// ```
pub use shmap_derive::shm_table;
pub use shmap_derive::{ShmKey, ShmValue};
pub use sync::backoff::{Backoff, BackoffPolicy, Wait};
pub use sys::Errno;
pub use table::{
    AccessMode, Cursor, Iter, LockHolder, Occupancy, ProbeLengths, RecoveryAction, Rejected,
    ShmHashTable, ShmTableReader, SlotState, TableError, TableOptions, TravelControl,
    TravelOutcome, VisitError, VisitResult, Visited,
};
pub use vector::{ShmVector, VectorError, VectorOptions};
