// The key type must be a ShmKey.
#[shmap::shm_table(capacity = 64, path = "/players")]
struct Players(String, u64);

fn main() {
    let _ = Players::get();
}
