// Discriminants must be literals so coverage can be checked.
const BASE: u8 = 1;

#[derive(shmap::ShmValue)]
#[repr(u8)]
enum Level {
    Low = BASE,
}

fn main() {}
