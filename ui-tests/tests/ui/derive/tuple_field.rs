// Tuples have no stable layout.
#[derive(shmap::ShmValue)]
#[repr(C)]
struct Segment {
    range: (u32, u32),
}

fn main() {}
