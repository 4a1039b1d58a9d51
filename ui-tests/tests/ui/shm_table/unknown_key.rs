// A misspelt key.
#[shmap::shm_table(capacity = 64, path = "/players", timeout = 5)]
struct Players(u64, u64);

fn main() {}
