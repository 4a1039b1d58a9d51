// A POSIX shared-memory name has no other '/'.
#[shmap::shm_table(capacity = 64, path = "/game/players")]
struct Players(u64, u64);

fn main() {}
