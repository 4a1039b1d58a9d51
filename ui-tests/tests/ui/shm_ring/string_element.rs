// The element type must be a ShmValue.
#[shmap::shm_ring(capacity = 64, path = "/jobs", kind = "mpmc")]
struct Jobs(String);

fn main() {
    let _ = Jobs::get();
}
