// Only fieldless enums can be stored.
#[derive(shmap::ShmValue)]
#[repr(u8)]
enum Shape {
    Circle(u32),
    Square,
}

fn main() {}
