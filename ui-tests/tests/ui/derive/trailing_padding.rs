// A u64 followed by a u8 leaves 7 bytes of trailing padding.
#[derive(shmap::ShmKey)]
#[repr(C)]
struct Entry {
    id: u64,
    kind: u8,
}

fn main() {}
