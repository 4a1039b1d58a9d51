// A key field must itself be a key, not only a value.
#[derive(shmap::ShmValue)]
#[repr(C)]
struct Money {
    amount: f64,
}

#[derive(shmap::ShmKey)]
#[repr(C)]
struct Ledger {
    id: u64,
    balance: Money,
}

fn main() {}
