// A cache's default TTL is at least 1 ms.
#[shmap::shm_table(capacity = 64, path = "/sessions", ttl_ms = 0)]
struct Sessions(u64, u64);

fn main() {}
