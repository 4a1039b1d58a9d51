// A generic struct with padding fails when an instance is used.
#[derive(shmap::ShmValue)]
#[repr(C)]
struct Mixed<A, B> {
    a: A,
    b: B,
}

fn main() {
    let _ = shmap::ShmHashTable::<u64, Mixed<u8, u64>>::heap(16);
}
