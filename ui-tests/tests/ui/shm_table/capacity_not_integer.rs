// capacity must be an integer literal.
#[shmap::shm_table(capacity = "big", path = "/players")]
struct Players(u64, u64);

fn main() {}
