// A key is compared as bytes; -0.0 == 0.0 but their bytes differ.
#[derive(shmap::ShmKey)]
#[repr(C)]
struct Position {
    x: f64,
    y: f64,
}

fn main() {}
