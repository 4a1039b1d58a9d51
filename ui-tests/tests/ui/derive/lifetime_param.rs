// A stored type cannot borrow.
#[derive(shmap::ShmValue)]
#[repr(C)]
struct Borrowed<'a> {
    value: &'a u64,
}

fn main() {}
