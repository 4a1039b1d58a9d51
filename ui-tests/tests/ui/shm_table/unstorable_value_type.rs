// A value type that is not storable is reported at the type.
#[repr(C)]
struct Plain {
    x: u32,
}

#[shmap::shm_table(capacity = 64, path = "/players")]
struct Players(u64, Plain);

fn main() {
    let _ = Players::get();
}
