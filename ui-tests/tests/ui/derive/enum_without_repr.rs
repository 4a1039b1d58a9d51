// An enum needs an integer repr to have a fixed layout.
#[derive(shmap::ShmValue)]
enum State {
    Idle,
    Busy,
}

fn main() {}
