// The struct must be `struct Name(Key, Value);`.
#[shmap::shm_table(capacity = 64, path = "/players")]
struct Players {
    key: u64,
    value: u64,
}

fn main() {}
