// A cache holds at most one entry per slot: 100 entries do not fit in 64 slots.
#[shmap::shm_table(capacity = 64, path = "/sessions", max_entries = 100)]
struct Sessions(u64, u64);

fn main() {}
