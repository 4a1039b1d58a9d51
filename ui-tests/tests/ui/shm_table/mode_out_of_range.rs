// A mode above 0o7777.
#[shmap::shm_table(capacity = 64, path = "/players", mode = 0o10000)]
struct Players(u64, u64);

fn main() {}
