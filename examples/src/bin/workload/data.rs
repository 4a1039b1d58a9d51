//! The workload's key streams, exactly as `shared/bench/WORKLOAD.md` and `bench.cpp` (`makeData`)
//! define them: splitmix64 seeded 42 for the keys and the misses, 43 for the shuffle, 44 for the
//! mixed phase. All precomputed before any timing.

/// splitmix64.
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The precomputed operations of one case.
pub(crate) struct Data {
    pub(crate) n: usize,
    /// Insert order (generation order).
    pub(crate) keys: Vec<u64>,
    /// `keys`, Fisher-Yates shuffled (lookup-hit, update).
    pub(crate) order: Vec<u64>,
    /// The next `n` outputs of the stream: never inserted.
    pub(crate) miss: Vec<u64>,
    /// Mixed-phase keys and whether each op is an update.
    pub(crate) mix_keys: Vec<u64>,
    pub(crate) mix_update: Vec<bool>,
    /// Wrapping sum of the keys.
    pub(crate) sum_keys: u64,
    /// Updates in the mixed phase.
    pub(crate) mix_updates: u64,
}

impl Data {
    pub(crate) fn new(n: usize) -> Data {
        let mut g = SplitMix64::new(42);
        let mut stream =
            std::iter::from_fn(move || Some(g.next())).filter(|&k| k != 0 && k != u64::MAX);
        let keys: Vec<u64> = stream.by_ref().take(n).collect();
        let miss: Vec<u64> = stream.by_ref().take(n).collect();
        let sum_keys = keys.iter().fold(0u64, |s, &k| s.wrapping_add(k));
        let mut order = keys.clone();
        let mut shuffle = SplitMix64::new(43);
        for i in (1..n).rev() {
            let j = (shuffle.next() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let mut mix = SplitMix64::new(44);
        let (mut mix_keys, mut mix_update) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            mix_keys.push(keys[(mix.next() % n as u64) as usize]);
            mix_update.push(mix.next() % 10 == 0);
        }
        let mix_updates = mix_update.iter().filter(|&&u| u).count() as u64;
        Data { n, keys, order, miss, mix_keys, mix_update, sum_keys, mix_updates }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_workload_definition() {
        let d = Data::new(1_000_000);
        assert_eq!(d.keys[0], 0xBDD7_3226_2FEB_6E95, "WORKLOAD.md's check value");
        assert_eq!(d.mix_updates, 100_245, "WORKLOAD.md: U for u64-1M");
    }
}
