// A `Vec` owns heap memory of one process: it cannot be a value.
use shmap::ShmHashTable;

fn main() {
    let _ = ShmHashTable::<u64, Vec<u8>>::heap(16);
}
