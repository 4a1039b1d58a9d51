// Not every u32 is a `char`.
#[derive(shmap::ShmKey)]
#[repr(C)]
struct Initial {
    letter: char,
}

fn main() {}
