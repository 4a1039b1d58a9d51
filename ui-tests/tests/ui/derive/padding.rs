// A u8 followed by a u64 leaves 7 bytes of padding.
#[derive(shmap::ShmValue)]
#[repr(C)]
struct Account {
    active: u8,
    balance: u64,
}

fn main() {}
