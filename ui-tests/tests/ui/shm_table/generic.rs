// A singleton names one table: no generics.
#[shmap::shm_table(capacity = 64, path = "/players")]
struct Players<K>(K, u64);

fn main() {}
