// rollback takes a bool.
#[shmap::shm_table(capacity = 64, path = "/players", rollback = "yes")]
struct Players(u64, u64);

fn main() {}
