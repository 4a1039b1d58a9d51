// A cache stores its value behind an 8-byte meta word: a value aligned to 16 bytes would leave
// padding, and is refused when the code is generated (store a u128 as [u64; 2]).
use shmap::{Backing, ShmCache};

fn main() {
    let _ = ShmCache::<u64, u128>::options().capacity(8).open(&Backing::Heap);
}
