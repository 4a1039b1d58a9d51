// `char` has invalid bit patterns (surrogates, values above 0x10FFFF): not a key.
use shmap::ShmHashTable;

fn main() {
    let _ = ShmHashTable::<char, u64>::heap(16);
}
