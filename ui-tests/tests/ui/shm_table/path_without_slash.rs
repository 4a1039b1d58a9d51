// A POSIX shared-memory name starts with '/'.
#[shmap::shm_table(capacity = 64, path = "players")]
struct Players(u64, u64);

fn main() {}
