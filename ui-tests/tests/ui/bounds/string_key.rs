// A `String` points into one process's heap: it cannot be a key.
use shmap::ShmHashTable;

fn main() {
    let _ = ShmHashTable::<String, u64>::heap(16);
}
