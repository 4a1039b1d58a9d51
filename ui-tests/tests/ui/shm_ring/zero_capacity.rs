// A ring needs room for one element.
#[shmap::shm_ring(capacity = 0, path = "/jobs", kind = "broadcast")]
struct Jobs(u64);

fn main() {}
