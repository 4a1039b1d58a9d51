// Floats are values, not keys: byte equality is not float equality (-0.0 == 0.0).
use shmap::ShmHashTable;

fn main() {
    let _ = ShmHashTable::<f64, u64>::heap(16);
}
