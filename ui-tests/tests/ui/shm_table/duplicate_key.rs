// The same key twice.
#[shmap::shm_table(capacity = 64, capacity = 128, path = "/players")]
struct Players(u64, u64);

fn main() {}
