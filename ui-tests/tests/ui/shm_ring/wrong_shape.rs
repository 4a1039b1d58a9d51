// The struct must be `struct Name(Element);`.
#[shmap::shm_ring(capacity = 64, path = "/jobs", kind = "spsc")]
struct Jobs(u64, u64);

fn main() {}
