// A read clock is a cache's: a table (no `ttl_ms`, no `max_entries`) has no expiry to check.
#[shmap::shm_table(capacity = 64, path = "/players", read_tick_ms = 1)]
struct Players(u64, u64);

fn main() {}
