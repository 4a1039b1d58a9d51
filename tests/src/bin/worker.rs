//! The other process in the integration tests: each subcommand does one thing to a table that
//! the test process also uses, and reports on stdout, one line per event.
//!
//! ```text
//! worker increment NAME CAPACITY KEYS ROUNDS   CreateIfMiss +1 on key i % KEYS, ROUNDS times
//! worker race NAME CAPACITY START_NS ID        at START_NS (unix time), open_or_create + insert ID
//! worker hold NAME KEY [dirty]                 lock KEY inside a visitor until stdin closes
//!                                              (dirty: change the visitor's copy first)
//! worker panic NAME KEY                        panic inside a visitor on KEY (rollback table)
//! worker create NAME CAPACITY                  open_or_create and print ok or the error kind
//! worker create-file PATH CAPACITY             the same with a file-backed table
//! worker memfd-open FD                        open the memfd table at descriptor FD, print
//!                                              key 1, insert 2 -> 20
//! worker memfd-send SOCKET                     create a memfd table with 5 -> 50, send its
//!                                              descriptor over SOCKET, then print key 6 once
//!                                              a line arrives on stdin
//! worker read NAME KEY...                     print KEYs' values through a read-only reader,
//!                                              its len, and what a read-write open gets
//! worker plant NAME CAPACITY MODE              create a table with MODE (octal), as whoever
//!                                              runs it, and leave it there
//! worker chaos NAME ID OPS LOG                 increment random Tally keys OPS times, logging
//!                                              each increment's `seq key` to LOG before it
//! worker churn NAME ID OPS KEYS LOG            insert and remove random keys below KEYS, OPS
//!                                              times, logging each (see `tests/churn.rs`)
//! worker exit-static NAME KEY [hold|late]      open NAME into a static (never dropped, as a
//!                                              `#[shm_table]` is), insert KEY -> 1, print the
//!                                              owner id, and return from `main` once stdin
//!                                              closes (hold: while another thread sits in a
//!                                              visitor on KEY + 1; late: and open NAME again
//!                                              in an exit handler that runs after shmap's)
//! ```

use std::io::Read;
use std::time::{Duration, SystemTime};

use std::io::Write;

use shmap::{AccessMode, Backing, ShmHashTable};
use shmap_tests::{CHAOS_PROCESSES, Tally};

type Table = ShmHashTable<u64, u64>;

/// Opens table `name` as the tests share it: possibly with other users (mode 0666, see
/// `tests/liveness.rs`), which an opener accepts only if it asks for that mode.
fn open_shared(name: &str) -> Result<Table, shmap::OpenError> {
    Table::options().mode(0o666).open(&shmap::Backing::shm(name))
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> T {
    args.get(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("argument {i} missing or invalid: {args:?}"))
}

/// Never returns (spurious wake-ups included); typed `()` so that a visitor can end with it.
fn park_for_ever() {
    loop {
        std::thread::park();
    }
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
            let table = open_shared(&name).unwrap();
            let key: u64 = arg(&args, 2);
            let dirty = args.get(3).is_some_and(|a| a == "dirty");
            table
                .visit(&key, AccessMode::CreateIfMiss, |slot, v, _| {
                    if dirty {
                        *v = 999_999; // never reaches shared memory unless the visit commits
                    }
                    println!("inside {slot}");
                    let mut rest = Vec::new();
                    let _ = std::io::stdin().read_to_end(&mut rest); // until the test closes stdin
                    *v += 1;
                })
                .unwrap();
            println!("released");
        }
        "exit-static" => {
            static TABLE: std::sync::OnceLock<Table> = std::sync::OnceLock::new();
            static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            /// Runs after shmap's exit handler (handlers run in reverse order of
            /// installation, and this one is installed first): a registration that comes
            /// too late for it, never dropped.
            extern "C" fn open_late() {
                let late = open_shared(NAME.get().unwrap()).unwrap();
                late.insert(&7, &7).unwrap();
                std::mem::forget(late);
            }
            NAME.set(name.clone()).unwrap();
            if args.get(3).is_some_and(|a| a == "late") {
                // SAFETY: `open_late` is an `extern "C" fn()`; a panic in it aborts, which
                // the test would see as a failure.
                assert_eq!(unsafe { libc::atexit(open_late) }, 0);
            }
            let table = TABLE.get_or_init(|| open_shared(&name).unwrap());
            let key: u64 = arg(&args, 2);
            table.insert(&key, &1).unwrap();
            println!("owner {}", table.segment().owner().unwrap().get());
            if args.get(3).is_some_and(|a| a == "hold") {
                let (inside, wait) = std::sync::mpsc::channel();
                std::thread::spawn(move || {
                    table
                        .visit(&(key + 1), AccessMode::CreateIfMiss, |_, v, _| {
                            *v = 999_999; // never committed: the process exits in here
                            inside.send(()).unwrap();
                            park_for_ever();
                        })
                        .unwrap();
                });
                wait.recv().unwrap();
                println!("inside");
            }
            // Until the test has seen this process attached.
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            // Returning from `main` runs the `atexit` handlers (and ends the holding thread).
        }
        "panic" => {
            let table = open_shared(&name).unwrap();
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
        "memfd-open" => {
            // Opens the memfd table handed over as descriptor NAME, reads key 1, inserts 2.
            let fd: i32 = name.parse().unwrap();
            let table = Table::options().open(&Backing::fd(fd)).unwrap();
            println!("got {:?}", table.get(&1).unwrap());
            table.insert(&2, &20).unwrap();
            println!("ok");
        }
        "memfd-send" => {
            // Creates a memfd table with 5 -> 50, sends it over the unix socket NAME (an fd),
            // then, once told on stdin, prints key 6.
            use std::os::fd::FromRawFd;
            // SAFETY: the parent handed us this descriptor (see `pass_fd`); nothing else owns it.
            let socket =
                unsafe { std::os::unix::net::UnixStream::from_raw_fd(name.parse().unwrap()) };
            let table = Table::options().capacity(64).open(&Backing::memfd("child")).unwrap();
            table.insert(&5, &50).unwrap();
            shmap_tests::send_fd(&socket, table.segment().fd().unwrap());
            println!("sent");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            println!("seen {:?}", table.get(&6).unwrap());
        }
        "read" => {
            // Reads keys through a read-only reader, then tries a read-write open.
            let reader = shmap::ShmTableReader::<u64, u64>::open(&Backing::shm(&name)).unwrap();
            let values: Vec<String> = args[2..]
                .iter()
                .map(|k| match reader.get(&k.parse().unwrap()).unwrap() {
                    Some(v) => v.to_string(),
                    None => "-".into(),
                })
                .collect();
            println!("values {}", values.join(" "));
            println!("len {}", reader.len());
            match Table::options().open(&Backing::shm(&name)) {
                Ok(_) => println!("write-open ok"),
                Err(e) => println!("write-open {:?}", e.kind()),
            }
        }
        "plant" => {
            // Creates a table with the given mode as whatever user runs this, and leaves it.
            let mode = u32::from_str_radix(&args[3], 8).unwrap();
            match Table::options().capacity(arg(&args, 2)).mode(mode).open(&Backing::shm(name)) {
                Ok(_) => println!("ok"),
                Err(e) => println!("error {:?} | {e}", e.kind()),
            }
        }
        "chaos" => {
            let table = ShmHashTable::<u64, Tally>::open(&name).unwrap();
            let (id, ops): (usize, u64) = (arg(&args, 2), arg(&args, 3));
            assert!(id < CHAOS_PROCESSES);
            let mut log =
                std::fs::OpenOptions::new().create(true).append(true).open(&args[4]).unwrap();
            let mut rng = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(id as u64 + 1);
            for seq in 1..=ops {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let key = rng % 16;
                // One write(2) per line, before the increment (a kill can cut it short: see the test).
                log.write_all(format!("{seq} {key}\n").as_bytes()).unwrap();
                table
                    .visit(&key, AccessMode::CreateIfMiss, |_, t, _| {
                        t.count += 1;
                        t.last_seq[id] = seq;
                    })
                    .unwrap();
            }
            println!("done");
        }
        "churn" => {
            // Each operation is logged twice, one write(2) per line (a kill can cut the last
            // one short: see the test): `I key value` (insert) or `R key` (remove) before it,
            // and `= old` (the value it replaced or removed, `-` if none) after it. Values are
            // unique: `id << 32 | seq`.
            let table = open_shared(&name).unwrap();
            let (id, ops, keys): (u64, u64, u64) = (arg(&args, 2), arg(&args, 3), arg(&args, 4));
            let mut log =
                std::fs::OpenOptions::new().create(true).append(true).open(&args[5]).unwrap();
            let mut rng = 0x2545_f491_4f6c_dd1du64.wrapping_mul(id + 1);
            for seq in 1..=ops {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let key = rng % keys;
                let old = if rng >> 62 == 0 {
                    log.write_all(format!("R {key}\n").as_bytes()).unwrap();
                    table.remove(&key).unwrap()
                } else {
                    let value = id << 32 | seq;
                    log.write_all(format!("I {key} {value}\n").as_bytes()).unwrap();
                    table.insert(&key, &value).unwrap()
                };
                let old = old.map_or("-".to_owned(), |v| v.to_string());
                log.write_all(format!("= {old}\n").as_bytes()).unwrap();
            }
            println!("done");
        }
        other => panic!("unknown worker command {other:?}"),
    }
}
