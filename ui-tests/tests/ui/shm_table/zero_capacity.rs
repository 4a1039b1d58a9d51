// A table needs at least one slot.
#[shmap::shm_table(capacity = 0, path = "/players")]
struct Players(u64, u64);

fn main() {}
