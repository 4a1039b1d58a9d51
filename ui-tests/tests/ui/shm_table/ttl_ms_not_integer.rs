// ttl_ms takes milliseconds as an integer literal, not a duration string.
#[shmap::shm_table(capacity = 64, path = "/sessions", ttl_ms = "60s")]
struct Sessions(u64, u64);

fn main() {}
