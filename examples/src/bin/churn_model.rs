//! A model of linear probing under the workload's churn, to decide how a table should delete:
//! a single-threaded table of bare keys (not shmap), filled to a live load (50, 75, 80 and
//! 90 % of its slots) and then churned first in, first out (insert a new key, remove the oldest) for 20 × its capacity, under
//! three deletion policies:
//!
//! - `tombstones`: shmap's. A removed slot becomes a tombstone (FREED), which an insert whose
//!   chain reaches it reuses (an insert takes the first free slot from its key's home), and
//!   which becomes EMPTY again when no probe chain runs through it (the shortening, scanning
//!   [`SHORTEN_REACH`] slots ahead, and then the slots before it).
//! - `backward-shift`: Knuth's algorithm R (TAOCP vol. 3, 6.4): the removal moves back into
//!   the hole the first key past it whose chain runs through it, then does the same for the
//!   hole that move left, until an EMPTY slot: no tombstone ever, and the table is as if the
//!   removed keys had never been inserted.
//! - `shift-within-W`: algorithm R looking at most W slots past each hole, which leaves a
//!   tombstone where it gives up.
//!
//! For each it prints the mean displacement of the live keys (slots from the home slot, plus
//! one: what a lookup that hits walks) when churn starts and when it ends, the slots an insert
//! walks to its free slot in the first and the last capacity's worth of replacements, and a
//! removal's moves and scanned slots. It measures no time: the model counts what the policies
//! do, and the workload (`workload --churn-rounds 20`) measures what shmap's costs.
//!
//! ```text
//! cargo run --release -p shmap-examples --bin churn_model [-- --log2-capacity 16 --rounds 20]
//! ```

use std::collections::VecDeque;
use std::process::ExitCode;

/// How far a shortening scans past a tombstone for the end of the chains (shmap's
/// `removal::SHORTEN_REACH`).
const SHORTEN_REACH: usize = 16;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Empty,
    Tombstone,
    Key(u64),
}

#[derive(Clone, Copy)]
enum Policy {
    Tombstones,
    BackwardShift,
    ShiftWithin(usize),
}

impl Policy {
    fn name(self) -> String {
        match self {
            Policy::Tombstones => "tombstones".into(),
            Policy::BackwardShift => "backward-shift".into(),
            Policy::ShiftWithin(w) => format!("shift-within-{w}"),
        }
    }
}

/// splitmix64's finaliser: the keys' hash.
fn hash(key: u64) -> u64 {
    let mut z = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What a table did, summed since it was made.
#[derive(Clone, Copy, Default)]
struct Work {
    insert_walk: u64,
    moves: u64,
    removal_scan: u64,
}

struct Table {
    slots: Vec<Slot>,
    mask: usize,
    policy: Policy,
    work: Work,
}

impl Table {
    fn new(log2_capacity: u32, policy: Policy) -> Table {
        let capacity = 1usize << log2_capacity;
        Table {
            slots: vec![Slot::Empty; capacity],
            mask: capacity - 1,
            policy,
            work: Work::default(),
        }
    }

    fn home(&self, key: u64) -> usize {
        hash(key) as usize & self.mask
    }

    /// Slots from `from` to `to`, forwards (wrapping at the end).
    fn distance(&self, from: usize, to: usize) -> usize {
        to.wrapping_sub(from) & self.mask
    }

    fn next(&self, i: usize) -> usize {
        (i + 1) & self.mask
    }

    /// Whether the chain of the key in slot `at` runs through slot `i` (lies between its home
    /// slot and `at`).
    fn chain_through(&self, i: usize, at: usize) -> bool {
        match self.slots[at] {
            Slot::Key(key) => {
                let home = self.home(key);
                self.distance(home, i) < self.distance(home, at)
            }
            _ => false,
        }
    }

    /// Puts `key` (absent) in the first free slot from its home slot.
    fn insert(&mut self, key: u64) {
        let mut i = self.home(key);
        loop {
            self.work.insert_walk += 1;
            if matches!(self.slots[i], Slot::Empty | Slot::Tombstone) {
                self.slots[i] = Slot::Key(key);
                return;
            }
            i = self.next(i);
        }
    }

    fn remove(&mut self, key: u64) {
        let mut i = self.home(key);
        while self.slots[i] != Slot::Key(key) {
            i = self.next(i);
        }
        self.slots[i] = Slot::Tombstone;
        match self.policy {
            Policy::Tombstones => self.shorten(i),
            Policy::BackwardShift => self.shift(i, usize::MAX),
            Policy::ShiftWithin(window) => self.shift(i, window),
        }
    }

    /// Turns tombstone `i` into EMPTY if no chain runs through it (judged within
    /// [`SHORTEN_REACH`] slots), then the tombstones before it, as shmap's removal does.
    fn shorten(&mut self, mut i: usize) {
        while self.slots[i] == Slot::Tombstone {
            let mut j = self.next(i);
            let mut scanned = 0;
            while self.slots[j] != Slot::Empty && scanned < SHORTEN_REACH {
                if self.chain_through(i, j) {
                    return;
                }
                j = self.next(j);
                scanned += 1;
            }
            self.work.removal_scan += scanned as u64;
            if self.slots[j] != Slot::Empty {
                return;
            }
            self.slots[i] = Slot::Empty;
            i = (i + self.mask) & self.mask;
        }
    }

    /// Algorithm R from the hole `hole` (a tombstone), looking at most `window` slots past
    /// each hole.
    fn shift(&mut self, mut hole: usize, window: usize) {
        'holes: loop {
            let mut j = self.next(hole);
            let mut scanned = 0;
            while self.slots[j] != Slot::Empty && scanned < window {
                scanned += 1;
                if self.chain_through(hole, j) {
                    self.work.removal_scan += scanned as u64;
                    self.slots[hole] = self.slots[j];
                    self.slots[j] = Slot::Tombstone;
                    self.work.moves += 1;
                    hole = j;
                    continue 'holes;
                }
                j = self.next(j);
            }
            self.work.removal_scan += scanned as u64;
            if self.slots[j] == Slot::Empty {
                // Every key between the hole and this EMPTY slot lies at or past its home
                // slot, which is past the hole: no chain runs through the hole. Tombstones a
                // windowed shift left before it are shortened as usual.
                self.slots[hole] = Slot::Empty;
                self.shorten((hole + self.mask) & self.mask);
            }
            return;
        }
    }

    /// The mean displacement of the live keys, plus one (the slots a hit walks).
    fn hit_walk(&self) -> f64 {
        let (mut sum, mut keys) = (0, 0);
        for (i, slot) in self.slots.iter().enumerate() {
            if let Slot::Key(key) = *slot {
                sum += self.distance(self.home(key), i) + 1;
                keys += 1;
            }
        }
        sum as f64 / keys as f64
    }

    /// Checks that every live key is found by a walk from its home slot that meets no EMPTY
    /// slot before it (the invariant every policy must keep), and how many keys there are.
    fn check(&self) -> usize {
        let mut keys = 0;
        for (at, slot) in self.slots.iter().enumerate() {
            if let Slot::Key(key) = *slot {
                let mut i = self.home(key);
                while i != at {
                    assert!(
                        self.slots[i] != Slot::Empty,
                        "{}: key {key} cut off",
                        self.policy.name()
                    );
                    i = self.next(i);
                }
                keys += 1;
            }
        }
        keys
    }

    fn tombstones(&self) -> usize {
        self.slots.iter().filter(|s| **s == Slot::Tombstone).count()
    }
}

/// Per replacement, over one capacity's worth: insert walk, moves, removal scan.
fn per_replacement(before: Work, after: Work, replacements: usize) -> [f64; 3] {
    let n = replacements as f64;
    [
        (after.insert_walk - before.insert_walk) as f64 / n,
        (after.moves - before.moves) as f64 / n,
        (after.removal_scan - before.removal_scan) as f64 / n,
    ]
}

fn run(log2_capacity: u32, rounds: usize, load: usize, policy: Policy) {
    let mut table = Table::new(log2_capacity, policy);
    let capacity = 1usize << log2_capacity;
    let mut live = VecDeque::new();
    let mut next_key = 1u64;
    while live.len() < capacity * load / 100 {
        table.insert(next_key);
        live.push_back(next_key);
        next_key += 1;
    }
    let hit_start = table.hit_walk();
    let (mut first, mut last) = ([0.0; 3], [0.0; 3]);
    for round in 0..rounds {
        let before = table.work;
        for _ in 0..capacity {
            table.insert(next_key);
            live.push_back(next_key);
            next_key += 1;
            table.remove(live.pop_front().expect("a live key"));
        }
        let done = per_replacement(before, table.work, capacity);
        if round == 0 {
            first = done;
        }
        last = done;
    }
    assert_eq!(table.check(), live.len());
    println!(
        "{{\"load\":{load},\"policy\":\"{}\",\"hit_walk_start\":{hit_start:.1},\"hit_walk_end\":{:.1},\
         \"insert_walk_first\":{:.1},\"insert_walk_last\":{:.1},\"moves_first\":{:.4},\"moves_last\":{:.4},\
         \"removal_scan_first\":{:.1},\"removal_scan_last\":{:.1},\"tombstones_end\":{}}}",
        policy.name(),
        table.hit_walk(),
        first[0],
        last[0],
        first[1],
        last[1],
        first[2],
        last[2],
        table.tombstones(),
    );
}

fn main() -> ExitCode {
    let (mut log2_capacity, mut rounds) = (16u32, 20usize);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).and_then(|v| v.parse::<usize>().ok());
        match (args[i].as_str(), value) {
            ("--log2-capacity", Some(v)) if (4..=26).contains(&v) => log2_capacity = v as u32,
            ("--rounds", Some(v)) if v > 0 => rounds = v,
            _ => {
                eprintln!("usage: churn_model [--log2-capacity 4..=26] [--rounds N>0]");
                return ExitCode::FAILURE;
            }
        }
        i += 2;
    }
    for load in [50, 75, 80, 90] {
        for policy in [
            Policy::Tombstones,
            Policy::BackwardShift,
            Policy::ShiftWithin(16),
            Policy::ShiftWithin(64),
        ] {
            run(log2_capacity, rounds, load, policy);
        }
    }
    ExitCode::SUCCESS
}
