//! Loom models of the cache's eviction and expiry against the table's reads and visits, over
//! heap-backed caches whose slots are loom atomics and whose clock the model sets (see
//! `table/loom_tests.rs` for how the models run).
//!
//! The hand is driven at one slot (`examine`), as each of its steps is: one look at the
//! control word, meta word and key, then at most one compare-and-swap or bit clear.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use crate::cache::ShmCache;
use crate::cache::evict::Examined;
use crate::loom_support::race;
use crate::{Backing, SlotState};

const T0: u64 = 1_800_000_000_000;

/// A cache of 4 slots holding key 1 → 10 (its referenced bit cleared by one pass of the hand
/// when `cleared`), with its clock at `now`; and the key's slot.
fn cache_with_one(ttl_ms: Option<u64>, now: u64, cleared: bool) -> (ShmCache<u64, u64>, usize) {
    let mut opts = ShmCache::<u64, u64>::options().capacity(4).max_entries(4);
    if let Some(ms) = ttl_ms {
        opts = opts.default_ttl(Duration::from_millis(ms));
    }
    let clock = Arc::new(AtomicU64::new(T0));
    let c = opts.open(&Backing::Heap).unwrap().with_manual_clock(clock.clone());
    c.insert(&1, &10).unwrap();
    let slot = (0..4).find(|&i| c.table().slot_state(i) == SlotState::Ready).unwrap();
    if cleared {
        assert_eq!(c.examine(slot, T0, true), Examined::SecondChance);
    }
    clock.store(now, std::sync::atomic::Ordering::Relaxed);
    (c, slot)
}

/// The hand evicts key 1 while a lookup reads it: the lookup gets the value or nothing (never
/// another), a lookup that misses implies the eviction, and a lookup that sets the bit first
/// saves the entry (second chance).
#[test]
fn eviction_vs_get_of_the_evicted_key() {
    race(
        || cache_with_one(None, T0, true),
        |(c, slot)| c.examine(*slot, T0, true),
        |(c, _)| c.get(&1).unwrap(),
        |(c, _), evicted, read| {
            assert!(read.is_none() || read == Some(10), "read {read:?}");
            match evicted {
                Examined::Evicted => {
                    assert_eq!((c.get(&1).unwrap(), c.len()), (None, 0));
                }
                Examined::SecondChance => {
                    assert_eq!(read, Some(10), "the lookup's bit saved it");
                    assert_eq!((c.get(&1).unwrap(), c.len()), (Some(10), 1));
                }
                other => panic!("the hand {other:?}"),
            }
            assert_eq!(c.recount().unwrap(), c.len());
        },
    );
}

/// The hand evicts key 1 while a visit updates it: the eviction never takes the locked slot,
/// an update that ran either lands (the entry stays) or was evicted with the entry, and an
/// update that found nothing implies the eviction.
#[test]
fn eviction_vs_visit_of_the_same_key() {
    race(
        || cache_with_one(None, T0, true),
        |(c, slot)| c.examine(*slot, T0, true),
        |(c, _)| c.update(&1, |v| *v += 1).unwrap(),
        |(c, _), evicted, updated| {
            let after = c.get(&1).unwrap();
            match evicted {
                Examined::Evicted => assert_eq!((after, c.len()), (None, 0)),
                // Locked by the visit (or changed by it under the hand), or referenced by its
                // write-back.
                Examined::Vacant | Examined::SecondChance => {
                    assert_eq!(updated, Some(()), "nothing evicted, so the update found it");
                    assert_eq!((after, c.len()), (Some(11), 1));
                }
                other => panic!("the hand {other:?}: nothing expires, the entry was live"),
            }
            assert_eq!(c.recount().unwrap(), c.len());
        },
    );
}

/// The hand meets key 1 after its expiry while a `touch` (at the cache's clock, also past the
/// expiry) tries to refresh it: the entry is never revived, it is reclaimed exactly once
/// (counted once), by the hand or by the touch.
#[test]
fn expiry_vs_touch_of_an_expired_entry() {
    race(
        || cache_with_one(Some(10), T0 + 10, false),
        |(c, slot)| c.examine(*slot, T0 + 10, false),
        |(c, _)| c.touch(&1).unwrap(),
        |(c, _), reclaimed, touched| {
            assert!(!touched, "an expired entry was revived");
            assert!(matches!(reclaimed, Examined::Expired | Examined::Vacant), "{reclaimed:?}");
            assert_eq!((c.get(&1).unwrap(), c.len(), c.recount().unwrap()), (None, 0, 0));
            assert_eq!(c.stats().expirations, 1, "reclaimed once");
        },
    );
}

/// A `touch` that reads the clock before the expiry refreshes the entry while the hand, with a
/// later clock, finds it expired: either the hand reclaims it first (the touch then finds
/// nothing) or the touch refreshes it first (the hand's compare-and-swap then fails): never
/// both, never neither.
#[test]
fn expiry_vs_touch_before_the_expiry() {
    race(
        || cache_with_one(Some(10), T0 + 5, false),
        |(c, slot)| c.examine(*slot, T0 + 10, false),
        |(c, _)| c.touch(&1).unwrap(),
        |(c, slot), reclaimed, touched| match (reclaimed, touched) {
            (Examined::Expired, false) => assert_eq!((c.get(&1).unwrap(), c.len()), (None, 0)),
            // The touch held the slot, or refreshed it, when the hand looked.
            (Examined::Vacant | Examined::Passed, true) => {
                assert_eq!(c.get(&1).unwrap(), Some(10));
                assert_eq!(c.examine(*slot, T0 + 14, false), Examined::Passed, "still live");
            }
            other => panic!("hand and touch disagree: {other:?}"),
        },
    );
}
