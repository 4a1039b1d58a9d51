//! Procedural macros for [`shmap`](https://docs.rs/shmap).
//!
//! This crate is the future home of `#[derive(ShmKey)]`, `#[derive(ShmValue)]` and
//! `#[shm_table]`. It exports no macro yet: until it does, types are made storable by
//! implementing `shmap::ShmLayout`, `shmap::ShmKey` and `shmap::ShmValue` by hand (see the
//! `shmap::layout` module), and the runtime crate does not re-export anything from here.
