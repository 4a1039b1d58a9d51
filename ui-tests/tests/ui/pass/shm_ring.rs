// Accepted: a ring singleton of each kind, over a derived element, with every optional key.
use shmap::{ShmValue, shm_ring};

#[derive(ShmValue, Clone, Copy)]
#[repr(C)]
struct Tick {
    price: f64,
    size: u32,
    venue: u32,
}

#[shm_ring(capacity = 1024, path = "/ticks-spsc", kind = "spsc")]
struct SpscTicks(Tick);

#[shm_ring(capacity = 1024, path = "/ticks-spmc", kind = "spmc", timeout_ms = 10)]
pub struct SpmcTicks(Tick);

#[shm_ring(capacity = 64, file = "/var/lib/app/ticks.shm", kind = "mpmc", mode = 0o640)]
pub(crate) struct MpmcTicks(Tick);

/// Docs on the struct are kept.
#[shm_ring(capacity = 4096, path = "/ticks-fanout", kind = "broadcast")]
struct Fanout([u64; 4]);

fn main() {
    let _: fn() -> &'static shmap::ring::SpscRing<Tick> = SpscTicks::get;
    let _: fn() -> &'static shmap::ring::SpmcRing<Tick> = SpmcTicks::get;
    let _: fn() -> &'static shmap::ring::MpmcRing<Tick> = MpmcTicks::get;
    let _: fn() -> &'static shmap::ring::BroadcastRing<[u64; 4]> = Fanout::get;
    assert_eq!(SpscTicks::KIND, "spsc");
    assert_eq!(Fanout::CAPACITY, 4096);
    assert_eq!(MpmcTicks::PATH, "/var/lib/app/ticks.shm");
    assert_eq!(SpmcTicks::LAYOUT_HASH, <Tick as shmap::ShmLayout>::LAYOUT_HASH);
}
