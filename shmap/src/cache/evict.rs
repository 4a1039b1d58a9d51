//! Making room: the CLOCK hand (Corbató's second-chance algorithm, 1968; Tanenbaum, *Modern
//! Operating Systems*, 3.4.5) over the slots of a cache, shared by all its processes.
//!
//! The hand is a position counter in the segment header. A handle takes positions from it in
//! batches of [`HAND_BATCH`] (one `fetch_add` per batch, so evicting processes do not bounce
//! its cache line per slot). Position `p` names slot `p × stride mod capacity`, for an odd
//! stride near the capacity divided by the golden ratio (a Weyl sequence: every slot once per
//! lap, consecutive positions far apart and evenly spread). A hand that swept the slots in
//! order would free them in one contiguous run behind it, while inserts fill the table
//! everywhere: the slots ahead of it would fill up completely, and an insert landing there
//! would probe through all of them to the free run, thousands of slots (measured: a mean
//! lookup of 9,000 slots after one lap at 75 % load). Spread out, the evictions leave free
//! slots where linear probing needs them: everywhere. It examines each slot of its batch:
//!
//! - a slot without a committed entry, or locked (an insert, a visit, a write-back), is passed
//!   over: eviction never takes a locked slot and never waits on one;
//! - an expired entry is reclaimed (counted as an expiration), with or without an eviction
//!   policy;
//! - with an eviction policy, an entry whose referenced bit is set gets its second chance: the
//!   bit is cleared and the hand moves on; one whose bit is clear is evicted.
//!
//! Reclaiming is a removal: one compare-and-swap from the control word under which the hand
//! read the entry's meta word and key (READY(v) → FREED(v+1)), so it removes exactly the entry
//! it judged, and a lookup that starts after it never returns it (the slot protocol's removal,
//! see `table::raw`). A process killed while evicting holds no lock: at worst its removal is
//! not yet counted (`recount` corrects it) or its chain not yet shortened.

use std::sync::atomic::{AtomicU64 as LocalU64, Ordering as LocalOrdering};

use crate::cache::ShmCache;
use crate::cache::entry::{Meta, REFERENCED};
use crate::hash::ShmHasher;
use crate::layout::{ShmKey, ShmValue};
use crate::sync::primitive::{Ordering, fence};
use crate::sync::words;
use crate::table::ctrl::{Ctrl, SlotState};

/// Slot positions a handle takes from the shared hand at once.
pub(crate) const HAND_BATCH: u64 = 16;

/// The hand's stride over `capacity` slots (a power of two): odd, so that it visits every
/// slot once per lap, and near `capacity / φ`, so that consecutive positions spread evenly.
pub(crate) fn hand_stride(capacity: usize) -> usize {
    ((capacity as f64 * 0.618_033_988_749_895) as usize) | 1
}

/// What a run of the hand ([`sweep`](ShmCache::sweep)) found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Room {
    /// It reclaimed an entry.
    Made,
    /// It reclaimed none, but saw slots that may free up (vacant, locked, changing).
    Maybe,
    /// Every slot it examined held a live entry that it may not evict.
    None,
}

/// What the hand did at one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Examined {
    /// No committed entry there: free, being inserted, locked by a visit, or changed before
    /// the hand's compare-and-swap.
    Vacant,
    /// A live entry it left: not expired, and no eviction asked for.
    Passed,
    /// A referenced entry: its bit was cleared.
    SecondChance,
    /// An unreferenced entry, evicted.
    Evicted,
    /// An expired entry, reclaimed.
    Expired,
}

/// A handle's batch of hand positions: the next position (high 48 bits) and how many are left
/// (low 16 bits), in one word so that the threads sharing the handle take positions with a
/// compare-and-swap (no lock a `fork` child could inherit held).
#[derive(Debug, Default)]
pub(crate) struct HandBatch(LocalU64);

impl HandBatch {
    const LEFT_BITS: u32 = 16;
    const LEFT_MASK: u64 = (1 << Self::LEFT_BITS) - 1;
}

impl<K: ShmKey, V: ShmValue, H: ShmHasher> ShmCache<K, V, H> {
    /// The next slot for the hand to examine.
    pub(crate) fn next_hand_position(&self) -> usize {
        let batch = &self.hand.0;
        loop {
            // Relaxed: a handle-local cursor; positions carry no data.
            let word = batch.load(LocalOrdering::Relaxed);
            let (next, left) = (word >> HandBatch::LEFT_BITS, word & HandBatch::LEFT_MASK);
            let (position, after) = if left > 0 {
                (next, ((next + 1) << HandBatch::LEFT_BITS) | (left - 1))
            } else {
                // Relaxed: the shared hand only hands out positions; the slots it names are
                // read with their own orderings.
                let start = self.hand_word().fetch_add(HAND_BATCH, Ordering::Relaxed);
                (start, ((start + 1) << HandBatch::LEFT_BITS) | (HAND_BATCH - 1))
            };
            // Relaxed: see above. A lost race gives up this batch's rest (another thread of
            // this handle took a batch of its own): those slots wait for the next lap.
            if batch
                .compare_exchange(word, after, LocalOrdering::Relaxed, LocalOrdering::Relaxed)
                .is_ok()
            {
                return (position as usize).wrapping_mul(self.hand_stride) & (self.capacity() - 1);
            }
        }
    }

    /// Examines slot `index` for the hand at time `now_ms`; with `evict`, unreferenced entries
    /// are evicted, else only expired ones are reclaimed.
    pub(crate) fn examine(&self, index: usize, now_ms: u64, evict: bool) -> Examined {
        self.examine_slot(index, now_ms, evict).0
    }

    /// [`examine`](Self::examine), with the key of the entry it evicted or reclaimed.
    pub(crate) fn examine_slot(
        &self,
        index: usize,
        now_ms: u64,
        evict: bool,
    ) -> (Examined, Option<K>) {
        let raw = self.table.raw();
        let slot = raw.slot(index);
        // Acquire: pairs with the Release stores of NEW and READY, so the key and meta word
        // read below are this entry's (or newer, which the re-check catches).
        let c = Ctrl(slot.ctrl.load(Ordering::Acquire));
        if !c.is(SlotState::Ready) {
            return (Examined::Vacant, None);
        }
        // Relaxed, validated below like a seqlock read.
        let meta = Meta(slot.value[0].load(Ordering::Relaxed));
        let key = words::load::<K>(slot.key);
        // Acquire: pairs with a writer's fence(Release) before its value stores (as in the
        // table's seqlock read): if we read a word of a later write, the re-read sees its lock.
        fence(Ordering::Acquire);
        if slot.ctrl.load(Ordering::Relaxed) != c.0 {
            return (Examined::Vacant, None);
        }
        let expired = meta.expired_at(now_ms);
        if !expired {
            if !evict {
                return (Examined::Passed, None);
            }
            if meta.referenced() {
                // Relaxed: a hint for the next lap; racing with a lookup that sets it again,
                // or a write-back that rewrites the word, only changes who is evicted.
                slot.value[0].fetch_and(!REFERENCED, Ordering::Relaxed);
                return (Examined::SecondChance, None);
            }
        }
        if !raw.evict_at(index, c, &key, &self.table) {
            return (Examined::Vacant, None); // locked, changed or removed since we read it
        }
        self.table.removed(index);
        let owner = self.table.segment().owner().ok();
        let (evicted, expired_n) = if expired { (0, 1) } else { (1, 0) };
        self.table.segment().count_reclaimed(owner, evicted, expired_n);
        (if expired { Examined::Expired } else { Examined::Evicted }, Some(key))
    }

    /// Runs the hand over at most `budget` slots, until it has reclaimed an entry: an expired
    /// one, or with `evict` any unreferenced one. Returns what it found ([`Room::Made`] with
    /// the reclaimed key; else [`Room::Maybe`] if it saw a slot that may free up: vacant,
    /// locked, changing, or referenced and evicted on a later lap; else [`Room::None`]: every
    /// slot held a live entry it may not evict).
    pub(crate) fn sweep(&self, budget: usize, evict: bool) -> (Room, Option<K>) {
        let now = self.clock.now_ms();
        let mut room = Room::None;
        for _ in 0..budget {
            match self.examine_slot(self.next_hand_position(), now, evict) {
                (Examined::Evicted | Examined::Expired, key) => return (Room::Made, key),
                (Examined::Vacant | Examined::SecondChance, _) => room = Room::Maybe,
                (Examined::Passed, _) => {} // live, and no eviction asked for
            }
        }
        (room, None)
    }

    /// Runs the hand, as the cache's settings say (evicting only with an entry limit), over
    /// at most `budget` slots. Whether it reclaimed an entry.
    pub(crate) fn run_hand(&self, budget: usize) -> bool {
        self.sweep(budget, self.settings.max_entries.is_some()).0 == Room::Made
    }

    /// Makes room for an insert that found the table full: the hand for a full sweep (see
    /// [`sweep`](Self::sweep)); [`Room::None`] means the table is full for good (a cache without
    /// an entry limit, full of live entries).
    pub(crate) fn make_room(&self) -> Room {
        self.sweep(self.full_sweep(), self.settings.max_entries.is_some()).0
    }

    /// The hand's budget to find one entry to evict: two full laps (the first may only clear
    /// referenced bits) and a batch.
    pub(crate) fn full_sweep(&self) -> usize {
        2 * self.capacity() + HAND_BATCH as usize
    }
}
