// A TTL above 2^40 ms (about 35 years) is refused.
#[shmap::shm_table(capacity = 64, path = "/sessions", ttl_ms = 1099511627777)]
struct Sessions(u64, u64);

fn main() {}
