// Accepted: cache singletons (a default TTL, an entry limit, both, at the largest TTL, a ticked
// read clock), with the table's other keys.
use shmap::{ShmValue, shm_table};

#[derive(ShmValue, Clone, Copy)]
#[repr(C)]
struct Session {
    user: u64,
    flags: u32,
    _pad: u32,
}

#[shm_table(capacity = 1000, path = "/sessions", ttl_ms = 60_000, read_tick_ms = 1)]
struct Sessions(u64, Session);

#[shm_table(capacity = 1000, path = "/lookups", max_entries = 1024, timeout_ms = 50)]
pub struct Lookups(u64, [u8; 16]);

#[shm_table(capacity = 64, file = "/var/lib/app/limits.shm", ttl_ms = 1099511627776, max_entries = 48, undo_records = true, mode = 0o640)]
pub(crate) struct Limits(u32, u32);

fn main() {
    let _: fn() -> &'static shmap::ShmCache<u64, Session> = Sessions::get;
    let _: fn() -> &'static shmap::ShmCache<u64, [u8; 16]> = Lookups::get;
    let _: fn() -> &'static shmap::ShmCache<u32, u32> = Limits::get;
    let _: fn() -> shmap::CacheOptions<u64, Session> = Sessions::options;
    assert_eq!((Lookups::CAPACITY, Limits::PATH), (1000, "/var/lib/app/limits.shm"));
    let sessions = format!("{:?}", Sessions::options());
    assert!(sessions.contains("read_clock: Ticked(1ms)"), "{sessions}");
    assert!(format!("{:?}", Lookups::options()).contains("read_clock: PerRead"));
}
