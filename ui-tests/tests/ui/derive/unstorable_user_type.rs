// A field of a type that does not derive ShmValue.
#[repr(C)]
struct Plain {
    x: u32,
}

#[derive(shmap::ShmValue)]
#[repr(C)]
struct Outer {
    inner: Plain,
}

fn main() {}
