// A reference is an address in one process.
#[derive(shmap::ShmValue)]
#[repr(C)]
struct View {
    target: &'static u64,
}

fn main() {}
