// Atomics are not allowed: shmap synchronises slots itself.
use std::sync::atomic::AtomicU64;

#[derive(shmap::ShmValue)]
#[repr(C)]
struct Counter {
    hits: AtomicU64,
}

fn main() {}
