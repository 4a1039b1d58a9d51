// `bool` has bit patterns (2..=255) that are not valid values: another process could write one.
use shmap::ShmHashTable;

fn main() {
    let _ = ShmHashTable::<u64, bool>::heap(16);
}
