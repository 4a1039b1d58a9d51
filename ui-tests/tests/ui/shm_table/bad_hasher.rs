// hasher takes a type path, not a string.
#[shmap::shm_table(capacity = 64, path = "/players", hasher = "fast")]
struct Players(u64, u64);

fn main() {}
