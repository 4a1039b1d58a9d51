// Three variants leave 253 values of a u8 invalid.
#[derive(shmap::ShmValue)]
#[repr(u8)]
enum Color {
    Red,
    Green,
    Blue,
}

fn main() {}
