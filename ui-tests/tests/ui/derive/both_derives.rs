// ShmKey implies ShmValue: deriving both conflicts.
#[derive(shmap::ShmKey, shmap::ShmValue)]
#[repr(C)]
struct Id {
    value: u64,
}

fn main() {}
