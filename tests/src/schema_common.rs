// Shared by the `schema_v1` and `schema_v2` binaries, which differ only in `OrderNumber`: two
// builds of one program whose key struct disagrees on one field's type.
//
// usage: schema_vN create NAME | open NAME
// prints `ok <key layout> <value>` or `error <kind> | <message>`

use shmap::{AccessMode, Backing, CreateMode, ShmHashTable, ShmKey, ShmValue};

#[derive(ShmKey)]
#[repr(C)]
struct OrderKey {
    account: u32,
    order: OrderNumber,
}

#[derive(ShmValue)]
#[repr(C)]
struct Order {
    quantity: u64,
    price_cents: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, name) = (args[0].as_str(), Backing::shm(&args[1]));
    let create = if command == "create" { CreateMode::CreateNew } else { CreateMode::OpenExisting };
    let table = ShmHashTable::<OrderKey, Order>::options().capacity(64).create(create).open(&name);
    let table = match table {
        Ok(table) => table,
        Err(e) => {
            println!("error {:?} | {e}", e.kind());
            return;
        }
    };
    let key = OrderKey { account: 7, order: 1 };
    if command == "create" {
        table
            .visit(&key, AccessMode::CreateIfMiss, |_, o, _| {
                o.quantity = 3;
                o.price_cents = 1999;
            })
            .unwrap();
    }
    let order = table.get(&key).unwrap().expect("the order written at creation");
    println!("ok {} {}x{}", table.info().key.desc, order.quantity, order.price_cents);
}
