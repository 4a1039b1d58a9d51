// The same name rules as `#[shm_table]`.
#[shmap::shm_ring(capacity = 64, path = "jobs", kind = "spsc")]
struct Jobs(u64);

fn main() {}
