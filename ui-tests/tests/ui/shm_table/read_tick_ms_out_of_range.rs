// A ticked read clock's period is 1 to 1000 ms.
#[shmap::shm_table(capacity = 64, path = "/sessions", ttl_ms = 60_000, read_tick_ms = 1001)]
struct Sessions(u64, u64);

fn main() {}
