// capacity above 2^40 slots.
#[shmap::shm_table(capacity = 2_000_000_000_000, path = "/players")]
struct Players(u64, u64);

fn main() {}
