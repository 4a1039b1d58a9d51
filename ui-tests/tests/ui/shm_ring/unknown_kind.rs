// `kind` names one of the four rings.
#[shmap::shm_ring(capacity = 64, path = "/jobs", kind = "lifo")]
struct Jobs(u64);

fn main() {}
