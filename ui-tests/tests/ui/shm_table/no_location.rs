// Neither path nor file.
#[shmap::shm_table(capacity = 64)]
struct Players(u64, u64);

fn main() {}
