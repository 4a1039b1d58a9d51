// undo_records takes a bool.
#[shmap::shm_table(capacity = 64, path = "/players", undo_records = 1)]
struct Players(u64, u64);

fn main() {}
