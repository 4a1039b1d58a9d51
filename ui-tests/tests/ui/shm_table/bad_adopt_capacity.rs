// adopt_capacity takes a bool.
#[shmap::shm_table(capacity = 64, path = "/players", adopt_capacity = "yes")]
struct Players(u64, u64);

fn main() {}
