// A union's bytes do not say which field is live.
#[derive(shmap::ShmValue)]
#[repr(C)]
union Either {
    a: u32,
    b: f32,
}

fn main() {}
