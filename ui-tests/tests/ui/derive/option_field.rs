// Option's discriminant has invalid bit patterns.
#[derive(shmap::ShmValue)]
#[repr(C)]
struct Slot {
    owner: Option<u32>,
}

fn main() {}
