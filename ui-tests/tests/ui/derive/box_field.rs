// A `Box` points into one process's heap.
#[derive(shmap::ShmValue)]
#[repr(C)]
struct Node {
    next: Box<u64>,
}

fn main() {}
