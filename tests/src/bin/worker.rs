//! The other process in the integration tests: each subcommand does one thing to a table that
//! the test process also uses, and reports on stdout, one line per event.
//!
//! ```text
//! worker increment NAME CAPACITY KEYS ROUNDS   CreateIfMiss +1 on key i % KEYS, ROUNDS times
//! worker race NAME CAPACITY START_NS ID        at START_NS (unix time), open_or_create + insert ID
//! worker hold NAME KEY                         lock KEY inside a visitor until stdin closes
//! worker panic NAME KEY                        panic inside a visitor on KEY (rollback table)
//! worker create NAME CAPACITY                  open_or_create and print ok or the error kind
//! worker create-file PATH CAPACITY             the same with a file-backed table
//! ```

use std::io::Read;
use std::time::{Duration, SystemTime};

use shmap::{AccessMode, Backing, ShmHashTable};

type Table = ShmHashTable<u64, u64>;

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> T {
    args.get(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("argument {i} missing or invalid: {args:?}"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("");
    let name = args.get(1).cloned().unwrap_or_default();
    match command {
        "increment" => {
            let table = Table::open_or_create(&name, arg(&args, 2)).unwrap();
            let (keys, rounds): (u64, u64) = (arg(&args, 3), arg(&args, 4));
            for i in 0..rounds {
                table.visit(&(i % keys), AccessMode::CreateIfMiss, |_, n, _| *n += 1).unwrap();
            }
            println!("done");
        }
        "race" => {
            let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(arg(&args, 3));
            let id: u64 = arg(&args, 4);
            while SystemTime::now() < start {
                std::hint::spin_loop();
            }
            let table = Table::open_or_create(&name, arg(&args, 2)).unwrap();
            table.visit(&id, AccessMode::CreateIfMiss, |_, v, _| *v = id + 1).unwrap();
            let info = table.info();
            println!(
                "opened created={} segment={:x} creator={}",
                info.created_by_this_handle, info.segment_id, info.creator_pid
            );
        }
        "hold" => {
            let table = Table::open(&name).unwrap();
            let key: u64 = arg(&args, 2);
            table
                .visit(&key, AccessMode::CreateIfMiss, |slot, v, _| {
                    println!("inside {slot}");
                    let mut rest = Vec::new();
                    let _ = std::io::stdin().read_to_end(&mut rest); // until the test closes stdin
                    *v += 1;
                })
                .unwrap();
            println!("released");
        }
        "panic" => {
            let table = Table::open(&name).unwrap();
            let key: u64 = arg(&args, 2);
            let _ = table.visit(&key, AccessMode::AccessExist, |_, v, _| -> bool {
                *v = 999_999;
                panic!("a bug in the visitor");
            });
            unreachable!("the panic continues into the caller");
        }
        "create" | "create-file" => {
            let backing =
                if command == "create" { Backing::shm(name) } else { Backing::file(name) };
            match Table::options().capacity(arg(&args, 2)).open(&backing) {
                Ok(_) => println!("ok"),
                Err(e) => println!("error {:?} | {e}", e.kind()),
            }
        }
        other => panic!("unknown worker command {other:?}"),
    }
}
