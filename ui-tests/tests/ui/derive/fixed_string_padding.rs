// The case that used to give no hint where: a `FixedString<16>` (18 bytes) before
// a `u64` leaves 6 bytes of padding, reported at the string field. `FixedString<14>` or `<22>`
// would pack.
use shmap::FixedString;

#[derive(shmap::ShmValue)]
#[repr(C)]
struct Player {
    name: FixedString<16>,
    gold: u64,
}

fn main() {}
