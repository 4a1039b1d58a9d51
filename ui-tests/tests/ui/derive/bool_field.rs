// Only 0 and 1 are valid `bool`s; another process may write any byte.
#[derive(shmap::ShmValue)]
#[repr(C)]
struct Flags {
    online: bool,
}

fn main() {}
