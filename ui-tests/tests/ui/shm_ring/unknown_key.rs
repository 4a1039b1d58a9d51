// `rollback` belongs to tables, not rings.
#[shmap::shm_ring(capacity = 64, path = "/jobs", kind = "spsc", rollback = true)]
struct Jobs(u64);

fn main() {}
