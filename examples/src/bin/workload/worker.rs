//! One worker's share of every phase (`bench.cpp`'s `worker`), on a shmap table.

use std::sync::atomic::Ordering;
use std::time::Instant;

use shmap::{AccessMode, ShmHashTable, ShmValue, Visited};

use crate::ctl::{self, Ctl, HIT, HIT_BATCHED, INSERT, MISS, MIXED, UPDATE};
use crate::data::Data;

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
}

/// Lookups per `get_many` call in the batched phase.
pub(crate) const BATCH: usize = 32;

/// Runs worker `id` of `workers` over its contiguous slice of every phase.
pub(crate) fn run<V: Val>(
    table: &ShmHashTable<u64, V>,
    data: &Data,
    id: usize,
    workers: usize,
    ctl: &Ctl,
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
}
