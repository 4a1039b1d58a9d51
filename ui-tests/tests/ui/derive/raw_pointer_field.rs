// A raw pointer is an address in one process.
#[derive(shmap::ShmValue)]
#[repr(C)]
struct Buffer {
    data: *const u8,
    len: usize,
}

fn main() {}
