// A `String` points into one process's heap.
#[derive(shmap::ShmValue)]
#[repr(C)]
struct Player {
    hp: u32,
    name: String,
}

fn main() {}
