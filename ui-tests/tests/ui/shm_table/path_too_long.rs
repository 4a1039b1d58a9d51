// A name longer than NAME_MAX.
#[shmap::shm_table(
    capacity = 64,
    path = "/pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
)]
struct Players(u64, u64);

fn main() {}
