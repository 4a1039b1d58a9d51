// hasher must name a type implementing shmap::ShmHasher.
#[shmap::shm_table(capacity = 64, path = "/players", hasher = std::collections::hash_map::DefaultHasher)]
struct Players(u64, u64);

fn main() {}
