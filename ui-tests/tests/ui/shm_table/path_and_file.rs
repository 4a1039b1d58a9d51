// Either a POSIX name or a file, not both.
#[shmap::shm_table(capacity = 64, path = "/players", file = "/var/lib/players.shm")]
struct Players(u64, u64);

fn main() {}
