// Interior mutability is not allowed in shared memory.
use std::cell::Cell;

#[derive(shmap::ShmValue)]
#[repr(C)]
struct Counter {
    hits: Cell<u64>,
}

fn main() {}
