// Without #[repr(C)] another build may reorder the fields.
#[derive(shmap::ShmValue)]
struct Point {
    x: i32,
    y: i32,
}

fn main() {}
