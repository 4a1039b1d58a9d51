// capacity is required.
#[shmap::shm_table(path = "/players")]
struct Players(u64, u64);

fn main() {}
