// A reference is an address in one process: it cannot be a value.
use shmap::ShmHashTable;

fn main() {
    let _ = ShmHashTable::<u64, &'static u64>::heap(16);
}
