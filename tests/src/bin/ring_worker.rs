//! The other processes of the ring and vector tests (`tests/rings.rs`): each subcommand plays
//! one role on a ring that the test process also opens, and reports on stdout.
//!
//! ```text
//! ring_worker spsc-produce NAME COUNT          push 0..COUNT (waiting while full); "done"
//! ring_worker spsc-consume NAME COUNT          pop COUNT, checking they continue the sequence
//!                                              from the first; "popped K" every 1000, "ok"
//! ring_worker hold-producer NAME               claim the SPSC producer role; "holding";
//!                                              keep it until stdin closes
//! ring_worker mpmc-produce NAME ID COUNT       push ID << 32 | i for i in 0..COUNT; "done"
//! ring_worker mpmc-consume NAME [RECEIPTS]     pop until STOP, checking each producer's order;
//!                                              with RECEIPTS (a table), count each value's
//!                                              receipts there; "popped K" every 1000, then
//!                                              "count C sum S hash H"
//! ring_worker subscribe NAME N                 subscribe, "ready", receive until STOP checking
//!                                              that every gap was reported; "received R missed M"
//! ring_worker broadcast NAME N                 publish 1..=N, then a lap of STOPs; "done"
//! ring_worker vector-push NAME ID COUNT        push [ID, i] for i in 0..COUNT; "done"
//! ```

use std::io::Read;
use std::time::Duration;

use shmap::ring::{BroadcastRing, MpmcRing, RingError, SpscRing};
use shmap::{AccessMode, ShmHashTable, ShmVector, Wait};
use shmap_tests::{STOP, mix};

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> T {
    args.get(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("argument {i} missing or invalid: {args:?}"))
}

fn patient() -> Wait {
    Wait::timeout(Duration::from_secs(60))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("");
    let name = args.get(1).cloned().unwrap_or_default();
    match command {
        "spsc-produce" => {
            let ring = SpscRing::<u64>::open(&name).unwrap();
            let mut tx = ring.producer().unwrap();
            for i in 0..arg::<u64>(&args, 2) {
                tx.push_with(&i, patient()).unwrap();
            }
            println!("done");
        }
        "spsc-consume" => {
            let ring = SpscRing::<u64>::open(&name).unwrap();
            let mut rx = ring.consumer().unwrap();
            let count: u64 = arg(&args, 2);
            let first = rx.pop_with(patient()).unwrap();
            for k in 1..count {
                assert_eq!(rx.pop_with(patient()).unwrap(), first + k, "out of order");
                if k % 1000 == 0 {
                    println!("popped {k}");
                }
            }
            println!("ok");
        }
        "hold-producer" => {
            let ring = SpscRing::<u64>::open(&name).unwrap();
            let _tx = ring.producer().unwrap();
            println!("holding");
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
        }
        "mpmc-produce" => {
            let ring = MpmcRing::<u64>::open(&name).unwrap();
            let id: u64 = arg(&args, 2);
            for i in 0..arg::<u64>(&args, 3) {
                ring.push_with(&(id << 32 | i), patient()).unwrap();
            }
            println!("done");
        }
        "mpmc-consume" => {
            let ring = MpmcRing::<u64>::open(&name).unwrap();
            let receipts = args.get(2).map(|t| ShmHashTable::<u64, u64>::open(t).unwrap());
            let (mut count, mut sum, mut hash, mut late) = (0u64, 0u64, 0u64, 0u64);
            let mut last = std::collections::HashMap::<u64, u64>::new();
            loop {
                let v = ring.pop_with(patient()).unwrap();
                if v == STOP {
                    break;
                }
                let (producer, i) = (v >> 32, v & 0xffff_ffff);
                // Each producer's elements come in order, except one that a dead consumer
                // popped and never returned: it is republished a lap late (see `ring::queue`).
                match last.get(&producer) {
                    Some(&previous) if i < previous => late += 1,
                    Some(&previous) => assert!(i > previous, "producer {producer}: {i} twice"),
                    None => {}
                }
                let newest = last.entry(producer).or_insert(i);
                *newest = (*newest).max(i);
                if let Some(receipts) = &receipts {
                    receipts.visit(&v, AccessMode::CreateIfMiss, |_, n, _| *n += 1).unwrap();
                }
                count += 1;
                sum = sum.wrapping_add(v);
                hash = hash.wrapping_add(mix(v));
                if count % 1000 == 0 {
                    println!("popped {count}");
                }
            }
            println!("count {count} sum {sum} hash {hash} late {late}");
        }
        "subscribe" => {
            let ring = BroadcastRing::<u64>::open(&name).unwrap();
            let n: u64 = arg(&args, 2);
            let mut rx = ring.subscribe();
            println!("ready");
            let (mut last, mut received, mut missed, mut gap) = (0u64, 0u64, 0u64, 0u64);
            loop {
                match rx.recv_with(patient()) {
                    Ok(STOP) => break,
                    Ok(v) => {
                        assert_eq!(v, last + 1 + gap, "a gap that was not reported");
                        assert!(v <= n);
                        (last, gap, received) = (v, 0, received + 1);
                    }
                    Err(RingError::Lagged { missed: m }) => {
                        gap += m;
                        missed += m;
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            println!("received {received} missed {missed}");
        }
        "broadcast" => {
            let ring = BroadcastRing::<u64>::open(&name).unwrap();
            let mut tx = ring.producer().unwrap();
            for v in 1..=arg::<u64>(&args, 2) {
                tx.push(&v).unwrap();
            }
            for _ in 0..ring.capacity() {
                tx.push(&STOP).unwrap();
            }
            println!("done");
        }
        "vector-push" => {
            let vector = ShmVector::<[u64; 2]>::open(&name).unwrap();
            let id: u64 = arg(&args, 2);
            for i in 0..arg::<u64>(&args, 3) {
                let index = vector.push(&[id, i]).unwrap();
                assert_eq!(vector.get(index), Some([id, i]));
            }
            println!("done");
        }
        other => panic!("unknown ring_worker command {other:?}"),
    }
}
