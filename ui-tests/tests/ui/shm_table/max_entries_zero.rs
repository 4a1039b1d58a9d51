// A cache limited to no entry could hold nothing.
#[shmap::shm_table(capacity = 64, path = "/sessions", max_entries = 0)]
struct Sessions(u64, u64);

fn main() {}
