// #[repr(packed)] alone does not fix the field order.
#[derive(shmap::ShmValue)]
#[repr(packed)]
struct Point {
    x: i32,
    y: i32,
}

fn main() {}
