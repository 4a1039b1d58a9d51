//! Synchronisation parts shared by every structure in a segment (the table, the rings, the
//! vector): the loom seam for atomics ([`primitive`]), word-atomic copies of stored types
//! ([`words`]), and bounded waiting ([`backoff`]: `Backoff`, `Wait`, `Waiter`).
//!
//! Nothing here knows about segments or any one structure: they all build on it, and it
//! depends on nothing above it.

pub(crate) mod backoff;
pub(crate) mod primitive;
pub(crate) mod words;
