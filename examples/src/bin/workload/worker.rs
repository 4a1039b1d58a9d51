//! One worker's share of every phase (`bench.cpp`'s `worker`), on a shmap table.

use std::sync::atomic::Ordering;
use std::time::Instant;

use std::collections::VecDeque;

use shmap::{AccessMode, Monitor, ShmHashTable, ShmValue, Visited};

use crate::ctl::{self, CHURN_LOADS, Ctl, HIT, HIT_BATCHED, INSERT, MISS, MIXED, REMOVE, UPDATE};
use crate::data::{Data, SplitMix64};

/// A value of the workload: `u64`, or 8 × `u64`.
pub(crate) trait Val: ShmValue + Copy + Send + Sync + 'static {
    /// Words per value (1 or 8).
    const WORDS: u64;
    /// Sets every word to `key`.
    fn set(&mut self, key: u64);
    /// The wrapping sum of the words.
    fn read(&self) -> u64;
    /// Adds 1 to every word.
    fn increment(&mut self);
    /// A value of zeroes.
    fn zeroed_value() -> Self;
}

impl Val for u64 {
    const WORDS: u64 = 1;
    fn set(&mut self, key: u64) {
        *self = key;
    }
    fn read(&self) -> u64 {
        *self
    }
    fn increment(&mut self) {
        *self = self.wrapping_add(1);
    }
    fn zeroed_value() -> Self {
        0
    }
}

/// The workload's 64-byte value: 8 words.
#[derive(shmap::ShmValue, Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct V64 {
    words: [u64; 8],
}

impl Val for V64 {
    const WORDS: u64 = 8;
    fn set(&mut self, key: u64) {
        self.words = [key; 8];
    }
    fn read(&self) -> u64 {
        self.words.iter().fold(0u64, |s, w| s.wrapping_add(*w))
    }
    fn increment(&mut self) {
        for w in &mut self.words {
            *w = w.wrapping_add(1);
        }
    }
    fn zeroed_value() -> Self {
        V64 { words: [0; 8] }
    }
}

/// Lookups per `get_many` call in the batched phase.
pub(crate) const BATCH: usize = 32;

/// Runs worker `id` of `workers` over its contiguous slice of every phase, then (with
/// `churn_rounds > 0`) the churn phases.
pub(crate) fn run<V: Val>(
    table: &ShmHashTable<u64, V>,
    data: &Data,
    id: usize,
    workers: usize,
    ctl: &Ctl,
    churn_rounds: u64,
) {
    let n = data.n;
    let (lo, hi) = (id * n / workers, (id + 1) * n / workers);
    let result = &ctl.results[id];
    let phase = |index: usize, body: &mut dyn FnMut() -> (u64, u64)| {
        let faults = ctl::thread_minor_faults();
        ctl.barrier(workers as u32);
        let start = Instant::now();
        let (ok, sum) = body();
        ctl.barrier(workers as u32);
        if id == 0 {
            ctl.phase_ns[index].store(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        result.ok[index].store(ok, Ordering::Relaxed);
        result.sum[index].store(sum, Ordering::Relaxed);
        result.minflt[index].store(ctl::thread_minor_faults() - faults, Ordering::Relaxed);
    };

    phase(INSERT, &mut || {
        let (mut ok, mut created) = (0, 0);
        for &k in &data.keys[lo..hi] {
            match table.visit(&k, AccessMode::CreateIfMiss, |_, v, _| v.set(k)) {
                Ok(Visited::Created) => (ok, created) = (ok + 1, created + 1),
                Ok(Visited::Found) => ok += 1,
                _ => {}
            }
        }
        result.created.store(created, Ordering::Relaxed);
        (ok, 0)
    });
    phase(HIT, &mut || {
        let (mut ok, mut sum) = (0, 0u64);
        for k in &data.order[lo..hi] {
            if let Ok(Some(v)) = table.get(k) {
                ok += 1;
                sum = sum.wrapping_add(v.read());
            }
        }
        (ok, sum)
    });
    phase(MISS, &mut || {
        let ok = data.miss[lo..hi].iter().filter(|k| matches!(table.get(k), Ok(Some(_)))).count();
        (ok as u64, 0)
    });
    phase(UPDATE, &mut || {
        let mut ok = 0;
        for k in &data.order[lo..hi] {
            ok += u64::from(matches!(
                table.visit(k, AccessMode::AccessExist, |_, v, _| v.increment()),
                Ok(Visited::Found)
            ));
        }
        (ok, 0)
    });
    phase(MIXED, &mut || {
        let (mut ok, mut sum) = (0, 0u64);
        for (k, &update) in data.mix_keys[lo..hi].iter().zip(&data.mix_update[lo..hi]) {
            if update {
                ok += u64::from(matches!(
                    table.visit(k, AccessMode::AccessExist, |_, v, _| v.increment()),
                    Ok(Visited::Found)
                ));
            } else if let Ok(Some(v)) = table.get(k) {
                ok += 1;
                sum = sum.wrapping_add(v.read());
            }
        }
        (ok, sum)
    });
    phase(HIT_BATCHED, &mut || {
        let (mut ok, mut sum) = (0, 0u64);
        let mut out = [None; BATCH];
        for keys in data.order[lo..hi].chunks(BATCH) {
            let out = &mut out[..keys.len()];
            if table.get_many(keys, out).is_ok() {
                for v in out.iter().flatten() {
                    ok += 1;
                    sum = sum.wrapping_add(v.read());
                }
            }
        }
        (ok, sum)
    });
    // The verification of the first six phases, untimed, while nobody writes.
    ctl.barrier(workers as u32);
    if id == 0 {
        let (mut count, mut sum) = (0u64, 0u64);
        let outcome = table.travel(|_, _, v| {
            count += 1;
            sum = sum.wrapping_add(v.read());
        });
        if outcome.is_ok_and(|o| o.is_completed()) {
            ctl.travel_count.store(count, Ordering::Relaxed);
            ctl.travel_sum.store(sum, Ordering::Relaxed);
        }
    }
    phase(REMOVE, &mut || {
        let ok = data.order[lo..hi].iter().filter(|k| matches!(table.remove(k), Ok(Some(_))));
        (ok.count() as u64, 0)
    });
    if id == 0 {
        ctl.len_after_remove.store(table.len() as u64, Ordering::Relaxed);
    }
    ctl.barrier(workers as u32); // nobody writes before worker 0 has counted
    if churn_rounds > 0 {
        churn(table, id, workers, ctl, churn_rounds);
    }
}

/// The churn phases, on the table the remove phase emptied: each worker fills its share of the
/// load with keys of its own stream (untimed), then replaces its oldest key by a new one
/// (`insert` then `remove`) `rounds × capacity / workers` times. Worker 0 times its first and
/// last `capacity / workers` replacements, and samples the probe lengths before and after.
fn churn<V: Val>(table: &ShmHashTable<u64, V>, id: usize, workers: usize, ctl: &Ctl, rounds: u64) {
    let capacity = table.capacity() as u64;
    let mut stream = SplitMix64::new(1000 + id as u64);
    let mut next_key = move || loop {
        let k = stream.next();
        if k != 0 && k != u64::MAX {
            return k;
        }
    };
    let mut live: VecDeque<u64> = VecDeque::new();
    let mut value = V::zeroed_value();
    let probes = |into: &[std::sync::atomic::AtomicU64; 4]| {
        if let Some(p) = Monitor::new(table).occupancy().probes {
            let values = [p.hit_mean, p.hit_max as f64, p.miss_mean, p.miss_max as f64];
            for (slot, v) in into.iter().zip(values) {
                slot.store(v.to_bits(), Ordering::Relaxed);
            }
        }
    };
    for (c, &load) in CHURN_LOADS.iter().enumerate() {
        let result = &ctl.churn[c];
        let mut failures = 0;
        // Fill up to the load (untimed).
        let target = (capacity * load / 100 / workers as u64) as usize;
        while live.len() < target {
            let k = next_key();
            value.set(k);
            failures += u64::from(!matches!(table.insert(&k, &value), Ok(None)));
            live.push_back(k);
        }
        ctl.barrier(workers as u32);
        if id == 0 {
            probes(&result.probes_start);
        }
        ctl.barrier(workers as u32);
        let ops = rounds * capacity / workers as u64;
        let window = (capacity / workers as u64).min(ops / 2);
        let start = Instant::now();
        let (mut window_end, mut last_start) = (start, start);
        for i in 0..ops {
            if i == window {
                window_end = Instant::now();
            }
            if i == ops - window {
                last_start = Instant::now();
            }
            let k = next_key();
            value.set(k);
            failures += u64::from(!matches!(table.insert(&k, &value), Ok(None)));
            live.push_back(k);
            let old = live.pop_front().expect("a live key");
            failures += u64::from(!matches!(table.remove(&old), Ok(Some(_))));
        }
        let end = Instant::now();
        ctl.barrier(workers as u32);
        result.failures.fetch_add(failures, Ordering::Relaxed);
        result.live.fetch_add(live.len() as u64, Ordering::Relaxed);
        if id == 0 {
            result.total_ns.store((end - start).as_nanos() as u64, Ordering::Relaxed);
            result.start_ns.store((window_end - start).as_nanos() as u64, Ordering::Relaxed);
            result.end_ns.store((end - last_start).as_nanos() as u64, Ordering::Relaxed);
            result.ops.store(ops, Ordering::Relaxed);
            result.window.store(window, Ordering::Relaxed);
            probes(&result.probes_end);
            result.len.store(table.len() as u64, Ordering::Relaxed);
        }
        ctl.barrier(workers as u32);
    }
}
