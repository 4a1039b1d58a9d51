// A `Vec` owns heap memory of one process.
#[derive(shmap::ShmValue)]
#[repr(C)]
struct Inventory {
    items: Vec<u32>,
}

fn main() {}
