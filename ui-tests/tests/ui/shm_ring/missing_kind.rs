// A ring singleton says which ring it is.
#[shmap::shm_ring(capacity = 64, path = "/jobs")]
struct Jobs(u64);

fn main() {}
