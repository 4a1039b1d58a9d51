//! Removal and slot reuse: removing an entry (one compare-and-swap), claiming an EMPTY or FREED
//! slot for a new key and checking that no other copy of the key exists (the verification),
//! and turning FREED slots back into EMPTY where no probe chain runs through them (shortening).
//!
//! The protocol and the invariants it keeps (one slot per key, chains never cut, readers never
//! see another key's value) are in [`raw`](super::raw)'s documentation. The duplicate check is
//! the one of Purcell and Harris ("Non-blocking hashtables with open addressing", DISC 2005):
//! publish a tentative copy, then scan the key's probe range for other copies, the copy
//! nearer the home slot winning; the chain shortening is the tombstone clean-up of linear
//! probing (Knuth, TAOCP vol. 3, 6.4, algorithm R, done lock-free with a locked EMPTYING
//! state instead of moving entries).

use crate::layout::{ShmKey, ShmValue};
use crate::process::OwnerId;
use crate::sync::backoff::BackoffPolicy;
use crate::sync::primitive::{AtomicU64, Ordering, dekker_fence, fence};
use crate::sync::words;
use crate::table::bounds::UNCHECKED_REACH;
use crate::table::ctrl::{Ctrl, SlotState};
use crate::table::probe::{NEAR_SLOTS, Stop};
use crate::table::raw::{Host, RawError, RawTable, Waiting};
use crate::table::slot::Slot;

/// How many slots past a freed slot a remover scans for the end of the chain before it leaves
/// the slot FREED (an insert reuses it, or a later removal near the end of the run shortens it).
/// A few cache lines: at low and medium load the next EMPTY is almost always within reach.
pub(crate) const SHORTEN_REACH: usize = 16;

/// Sets a table's flag that a slot was ever freed (see [`RawTable::claim_end`]), before the
/// caller frees one: every way into FREED goes through here first (a removal, an abandoned
/// claim, a failed insert, a recovery; a veto and a shortening start from a FREED slot).
///
/// Until the flag is set, no FREED slot exists, so an insert that claims the EMPTY slot at the
/// end of its chain, and then reads the flag as unset, needs no verification. The argument, in
/// the single total order S of `SeqCst` operations: its claim and its load of the flag are SC,
/// so `claim <S load <S this store`; this store is sequenced before the release that frees a
/// slot, which a later claimer of that slot acquires, so this store strongly happens before the
/// SC loads of that claimer's verification, which therefore see our claim (and our key, once
/// published) and abort or wait in its favour; and a shortening that could cut our chain
/// comes after this store too, so its scan sees our claim.
#[inline]
pub(crate) fn note_freed(freed: &AtomicU64) {
    // Relaxed: a check that saves a store once the flag is set; the store is what orders.
    if freed.load(Ordering::Relaxed) == 0 {
        // SeqCst: in S before the freeing that follows (see above); pairs with the SeqCst load
        // in `claim_end`.
        freed.store(1, Ordering::SeqCst);
    }
}

/// A 64-bit mix (splitmix64's finaliser), so that a sum of mixed terms changes when any term
/// does.
#[inline]
fn mix(v: u64) -> u64 {
    let mut z = v.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// How a claim of a slot for a new key ended.
pub(super) enum Claim {
    /// The slot (index) is ours, in NEW (the word), verified.
    Won(usize, Ctrl),
    /// Another process took the slot, or a verification found our key elsewhere or the chain
    /// cut: walk again from the home slot.
    Lost,
    /// No EMPTY or FREED slot in the whole table.
    NoRoom,
}

/// How [`RawTable::claim_end`] ended.
pub(super) enum ClaimEnd {
    /// The slot is ours, in NEW (the word), verified.
    Won(Ctrl),
    /// Another process took the slot first: read it again.
    Lost,
    /// The chain was cut before our slot since the walk (or may have been, at our claim, which
    /// we gave up): insert through the out-of-line path, which walks again from the home slot.
    Cut,
    /// The slot is ours, in NEW (the word), but the inline check met a slot that needs the
    /// full verification (our tag, EMPTY, EMPTYING) or a FREED slot we would rather reuse; with
    /// the emptied epochs of the slots before ours, read before the claim (see `verify`).
    Check(Ctrl, u64),
}

/// What [`RawTable::remove`] did.
pub(crate) enum Removal<V> {
    /// The key was absent.
    Absent,
    /// The predicate kept the entry, whose value was this.
    Kept(V),
    /// The entry was removed; its value was this.
    Removed(V),
}

impl<K: ShmKey, V: ShmValue> RawTable<K, V> {
    /// Claims slot `index`, last seen as `seen` (EMPTY or FREED), for `key` with a
    /// compare-and-swap, writes the key and publishes NEW. Returns the NEW word, or `None` if
    /// another process took the slot first. The caller verifies the claim if it needs to.
    ///
    /// `order` is the claim's: SeqCst where a verification follows (Dekker's store-load pair
    /// with its SeqCst loads, see `dekker_fence`, against other claimers and shorteners),
    /// Acquire otherwise; either way it acquires the Release store that freed the slot, so our
    /// stores come after its previous holder's.
    ///
    /// The claim counts the entry at once (`host.count_entries`), and whoever gives the slot up
    /// uncounts it: the counter's locked add then directly follows the claim's, when the store
    /// buffer is already drained, which costs an insert less than a second barrier at the
    /// commit.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn publish<H: Host + ?Sized>(
        &self,
        key: &K,
        hash: u64,
        slot: Slot<'_>,
        seen: Ctrl,
        owner: OwnerId,
        order: Ordering,
        host: &H,
    ) -> Option<Ctrl> {
        let claimed = seen.claimed(Self::tag(hash), owner);
        slot.ctrl.compare_exchange(seen.0, claimed.0, order, Ordering::Relaxed).ok()?;
        host.count_entries(Some(owner), 1);
        if order == Ordering::SeqCst {
            dekker_fence();
        }
        // Release fence: orders the claim before the key stores, for readers still validating
        // a copy of the slot's previous life (Boehm's seqlock writer); pairs with their
        // fence(Acquire).
        fence(Ordering::Release);
        words::store(slot.key, key);
        let new = claimed.locked(SlotState::New, owner);
        // Release: publishes the key; pairs with the Acquire loads of probers, which compare keys
        // only in NEW or later states.
        slot.ctrl.store(new.0, Ordering::Release);
        Some(new)
    }

    /// Claims `key`'s EMPTY home slot (`slot`, seen as `seen`): the common case of an insert,
    /// which has nothing to reuse before it and nothing to verify (see [`verify`]: no copy of
    /// the key can lie past an EMPTY slot that was claimed, and no slot lies before it; that
    /// argument needs only the coherence of the one word, so the claim is a plain Acquire).
    /// The NEW word, or `None` if another process took the slot first.
    ///
    /// [`verify`]: Self::verify
    #[inline(always)]
    pub(super) fn claim_home<H: Host + ?Sized>(
        &self,
        key: &K,
        hash: u64,
        slot: Slot<'_>,
        seen: Ctrl,
        owner: OwnerId,
        host: &H,
    ) -> Option<Ctrl> {
        self.publish(key, hash, slot, seen, owner, Ordering::Acquire, host)
    }

    /// Claims the EMPTY slot `index` (`slot`, seen as `seen`) that ended a walk from the home
    /// slot, and checks inline the common case of its verification: every slot from the home
    /// slot on holds another key (another tag), and none was made EMPTY since before the claim
    /// (else the claim is given up: `Cut`). Anything else is left to
    /// [`check_end`](Self::check_end): a slot with our tag or being emptied (the full
    /// verification decides), an EMPTY one (a cut chain), a FREED one (which the key should
    /// reuse instead).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn claim_end<H: Host + ?Sized>(
        &self,
        key: &K,
        hash: u64,
        index: usize,
        slot: Slot<'_>,
        seen: Ctrl,
        owner: OwnerId,
        host: &H,
    ) -> ClaimEnd {
        let home = self.home(hash);
        // Before the claim, once a slot was ever freed: the emptied epochs of the slots before
        // ours, which the checks after it compare (see `verify`); an EMPTY one means the chain
        // was cut since the walk: walk again. Without a freed slot no slot was ever made EMPTY
        // again, and none can be before our claim is judged (see `note_freed`).
        // Relaxed: a hint; the SeqCst load after the claim decides.
        let before = if self.freed().load(Ordering::Relaxed) == 0 {
            None
        } else {
            let mut sum = 0u64;
            let mut i = home;
            while i != index {
                // SeqCst: a read before our claim, in the single order with the claim and the
                // shortenings' locks and scans (as in `claim_in_chain`'s walk; free on x86).
                let c = Ctrl(self.ctrl_word(i).load(Ordering::SeqCst));
                if c.is(SlotState::Empty) {
                    return ClaimEnd::Cut;
                }
                sum = sum.wrapping_add(c.emptied_epoch());
                i = (i + 1) & self.mask;
            }
            Some(sum)
        };
        let Some(new) = self.publish(key, hash, slot, seen, owner, Ordering::SeqCst, host) else {
            return ClaimEnd::Lost;
        };
        let distance = index.wrapping_sub(home) & self.mask;
        if distance >= UNCHECKED_REACH {
            // No verification reads the reach it returns: it stops at our slot, EMPTY before.
            self.raise_reach(home, distance);
        }
        // SeqCst: after our SeqCst claim; pairs with the SeqCst store in `note_freed`. No slot
        // was ever freed: nothing to reuse, and nothing to verify (see `note_freed`).
        if self.freed().load(Ordering::SeqCst) == 0 {
            return ClaimEnd::Won(new);
        }
        let Some(before) = before else {
            // The first slot ever freed was freed during our insert: we have no epochs to
            // compare. Rare: give the claim up and walk again.
            self.abandon_claim(index, slot, new, home, owner, host);
            return ClaimEnd::Cut;
        };
        let tag = Self::tag(hash);
        let (mut after, mut check) = (0u64, false);
        let mut i = home;
        while i != index {
            // SeqCst: Dekker's load after our SeqCst claim (see `dekker_fence`).
            let c = Ctrl(self.ctrl_word(i).load(Ordering::SeqCst));
            after = after.wrapping_add(c.emptied_epoch());
            check |= c.tag() == tag || c.is(SlotState::Empty) || c.is_vacant();
            i = (i + 1) & self.mask;
        }
        if after != before {
            // A slot before ours was made EMPTY since we read it: our claim may lie past a cut
            // in the chain (see `verify`). Give it up and walk again.
            self.abandon_claim(index, slot, new, home, owner, host);
            return ClaimEnd::Cut;
        }
        if check { ClaimEnd::Check(new, before) } else { ClaimEnd::Won(new) }
    }

    /// Whether a FREED slot lies from `from` on, before `to`.
    pub(super) fn first_free(&self, from: usize, to: usize) -> Option<usize> {
        let mut i = from;
        while i != to {
            // Relaxed: a hint; the claim's compare-and-swap decides.
            if Ctrl(self.ctrl_word(i).load(Ordering::Relaxed)).is(SlotState::Freed) {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
        None
    }

    /// Frees slot `index`, which we claimed (NEW as `new`) for a key of home slot `home` and
    /// give up, uncounts it, and lowers the probe bound our claim may have raised.
    ///
    /// It does not shorten the chain there: a shortening to EMPTY cuts the chains of the
    /// claims made past our slot while we held it, which then give up in turn (see `verify`),
    /// and in a small, busy table inserts could keep cutting each other's chains for ever (a
    /// livelock found by `churn_in_full_tables_of_colliding_keys`). The FREED slot is reused by
    /// the next insert whose chain reaches it, or shortened by a later removal before it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn abandon_claim<H: Host + ?Sized>(
        &self,
        index: usize,
        slot: Slot<'_>,
        new: Ctrl,
        home: usize,
        owner: OwnerId,
        host: &H,
    ) {
        note_freed(self.freed());
        // Release: hands the slot on (pairs with the next claimer's Acquire CAS).
        slot.ctrl.store(new.released(SlotState::Freed).0, Ordering::Release);
        host.count_entries(Some(owner), -1);
        self.lower_reach_after_removal(home, index.wrapping_sub(home) & self.mask);
    }

    /// Claims a slot for `key`, absent, whose chain is longer than its home slot: walks the
    /// chain again from the home slot to the first slot free for it (FREED, EMPTYING or EMPTY),
    /// claims that one, and verifies the claim. `Lost` if the walk meets the key (or a slot
    /// that may hold it) before that slot, or the claim fails: the caller walks again. Out of
    /// line, so that the inline insert path stays short enough for consecutive inserts to
    /// overlap their cache misses.
    ///
    /// The walk stops at the free slot: a copy of the key past it (one committed since the
    /// caller's walk, or a claim in flight) is the verification's to find, which reads up to
    /// the reach after our raise and so covers every claim of the key that could miss ours
    /// ([`bounds`](super::bounds), rule 3). A walk on to the probe bound, as this one did
    /// before, only saved a claim in those races, and cost every insert that reuses a slot
    /// near its home a walk of the rest of the bound: 23 % of the instructions of the
    /// workload's churn (see BENCHMARKS.md, "The claim in a chain stops at its free slot").
    #[inline(never)]
    pub(super) fn claim_in_chain<B: BackoffPolicy, H: Host + ?Sized>(
        &self,
        key: &K,
        hash: u64,
        owner: OwnerId,
        waiting: &mut Waiting<'_, B, H>,
    ) -> Result<Claim, RawError> {
        let tag = Self::tag(hash);
        let home = self.home(hash);
        let mut index = home;
        // The first slot free for us (EMPTY, FREED, or EMPTYING, whose shortening we veto), and
        // the first held by another insert (which may free it again), in case there is none.
        let (mut target, mut busy) = (None, None);
        // The emptied epochs of the slots before the target, for the verification.
        let mut epochs = 0u64;
        for _ in 0..self.capacity() {
            // SeqCst: these reads come before our claim, and the epochs they sum are compared
            // after it (see `verify`): SeqCst puts them in the single order with the claim and
            // the shortenings' locks and scans, which the argument needs in the C++ model (free
            // on x86; hardware with multi-copy atomicity gives it anyway). As an acquire, pairs
            // with the Release store of NEW (the key compared below).
            let c = Ctrl(self.ctrl_word(index).load(Ordering::SeqCst));
            if c.is(SlotState::Empty) || c.is_vacant() {
                target = Some((index, c));
                break;
            } else if c.tag() == tag
                && (c.is(SlotState::Inserting) || words::equals(self.slot(index).key, key))
            {
                if c.is(SlotState::Inserting) || c.is(SlotState::New) {
                    // Not committed: wait for it here (recovering it if its holder died). The
                    // caller's walk would, but a claim not yet covered by the probe bound lies
                    // past where that walk stops, and the two would take turns for ever.
                    self.wait_on(waiting, index, c)?;
                }
                return Ok(Claim::Lost); // the key may be here after all: the caller's walk sees
            } else if c.is(SlotState::Inserting) || c.is(SlotState::New) {
                busy = busy.or(Some((index, c)));
            }
            epochs = epochs.wrapping_add(c.emptied_epoch());
            index = (index + 1) & self.mask;
        }
        let (index, seen) = match (target, busy) {
            (Some((index, c)), _) if c.is(SlotState::Emptying) => {
                match self.veto_shortening(index, c) {
                    Some(freed) => (index, freed),
                    None => return Ok(Claim::Lost),
                }
            }
            (Some(target), _) => target,
            // Full but for inserts in flight: wait for one (recovering it if its holder died),
            // then look again.
            (None, Some((index, c))) => {
                self.wait_on(waiting, index, c)?;
                return Ok(Claim::Lost);
            }
            // Full only if two more laps see no free slot and every word the same (then the
            // table was full at one instant: see `slot_signature`): a lap alone, this walk
            // included, is not a snapshot, and under churn a key removed behind it and
            // inserted ahead of it is seen twice (a spurious full table, found by a review's
            // churn in a full table). The laps come after the walk, so that the walk itself,
            // which nearly always finds a free slot, computes no signature.
            (None, None) => {
                let full = self.full_at_one_instant(key, tag);
                if full == Some(true) {
                    return Ok(Claim::NoRoom);
                }
                // The laps saw a free slot, an insert in flight or the key itself (`None`), or
                // a full table whose words changed between them (`Some(false)`): wait a step,
                // bounded by the operation's timeout, and look again. At the timeout, a table
                // that looked full at both laps and kept changing (values updated by others)
                // is full; anything else is a timeout, never `TableFull` (a review found
                // inserts of a key that existed, with a short timeout, told the table was
                // full). So an insert into a full table that others keep updating returns
                // `TableFull` only at its timeout (a signature of keys alone, which would
                // conclude at once, is not a snapshot).
                return match self.wait_on(waiting, index, Ctrl(0)) {
                    Ok(()) => Ok(Claim::Lost),
                    Err(RawError::Busy { .. }) if full == Some(false) => Ok(Claim::NoRoom),
                    Err(e) => Err(e),
                };
            }
        };
        let slot = self.slot(index);
        let host = waiting.host;
        let Some(new) = self.publish(key, hash, slot, seen, owner, Ordering::SeqCst, host) else {
            return Ok(Claim::Lost);
        };
        let reach = self.raise_reach(home, index.wrapping_sub(home) & self.mask);
        let empty = seen.is(SlotState::Empty);
        Ok(
            match self
                .finish_claim(key, hash, index, slot, empty, reach, epochs, new, owner, waiting)?
            {
                Some(new) => Claim::Won(index, new),
                None => Claim::Lost,
            },
        )
    }

    /// What a full-table check records of slot `index`, seen as `c`: the whole control word.
    ///
    /// Two laps that see every word the same prove the table was full at one instant (a double
    /// collect): a word's version grows with every episode of its slot (an update in place, a
    /// removal, a reuse), so a slot that shows one word to both laps held it all the time
    /// between them, and every slot's interval contains the instant between the laps. A
    /// signature of keys alone (which an earlier version used, so that updates in place would
    /// not keep the check from concluding) is not a snapshot: a key that leaves a slot and
    /// comes back between the reads of each lap looks the same to both, while the table was
    /// never full (found by `churn_in_full_tables_of_colliding_keys`, once in 200 runs). A
    /// table kept busy by updates waits instead, bounded by the operation's timeout (the
    /// caller's second arm).
    fn slot_signature(&self, index: usize, c: Ctrl) -> u64 {
        // The index mixed on its own first, so that no bit of it lines up with a bit of the
        // word (a review's remark: `c ^ index` let two (slot, word) pairs share an input).
        mix(c.0 ^ mix(index as u64))
    }

    /// The signature of a lap over every slot, `None` if it saw one that is, or may become,
    /// free for a new key (EMPTY, FREED, EMPTYING, or held by an insert in flight), or one
    /// that holds `key` (tag `tag`) after all.
    fn lap_signature(&self, key: &K, tag: u16) -> Option<u64> {
        (0..self.capacity()).try_fold(0u64, |sum, i| {
            // Acquire: as in `claim_in_chain`'s walk (the key compared below is published).
            let c = Ctrl(self.ctrl_word(i).load(Ordering::Acquire));
            let taken = !(c.is(SlotState::Empty)
                || c.is_vacant()
                || c.is(SlotState::Inserting)
                || c.is(SlotState::New)
                || (c.tag() == tag && words::equals(self.slot(i).key, key)));
            taken.then(|| sum.wrapping_add(self.slot_signature(i, c)))
        })
    }

    /// Whether the table was full of other keys at one instant: two laps, one after the other,
    /// that see neither a free slot nor `key`, and the same word in every slot (a double
    /// collect, see `slot_signature`): at the instant between them every slot held what both
    /// saw.
    ///
    /// `Some(true)`: full of other keys at one instant; `Some(false)`: both laps saw a full
    /// table, with different words; `None`: a lap saw a free slot, an insert in flight or the
    /// key (the second lap is then not run).
    fn full_at_one_instant(&self, key: &K, tag: u16) -> Option<bool> {
        let first = self.lap_signature(key, tag)?;
        let second = self.lap_signature(key, tag)?;
        Some(first == second)
    }

    /// Verifies our claim of slot `index` (EMPTY before it if `was_empty`, NEW as `new` now;
    /// `reach` is the probe bound our claim's raise left; `epochs_before` the sum of the
    /// emptied epochs of the slots from the home slot to `index`, read before the claim) and
    /// returns `new` if it stands; else frees the slot again.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn finish_claim<B: BackoffPolicy, H: Host + ?Sized>(
        &self,
        key: &K,
        hash: u64,
        index: usize,
        slot: Slot<'_>,
        was_empty: bool,
        reach: usize,
        epochs_before: u64,
        new: Ctrl,
        owner: OwnerId,
        waiting: &mut Waiting<'_, B, H>,
    ) -> Result<Option<Ctrl>, RawError> {
        let verified = self.verify(key, hash, index, was_empty, reach, epochs_before, waiting);
        if matches!(verified, Ok(true)) {
            return Ok(Some(new));
        }
        self.abandon_claim(index, slot, new, self.home(hash), owner, waiting.host);
        verified.map(|_| None)
    }

    /// The verification of a claim of slot `mine` for `key`: walks the chain from the home slot
    /// to the first EMPTY past `mine` or to `reach` slots past the home slot, whichever comes
    /// first (only to `mine` if `mine` was EMPTY: see below). `reach`, the probe bound read by
    /// our raise after our claim, covers every copy claimed before it ([`bounds`], rule 3).
    /// `Ok(false)` if the key is committed in another slot, or NEW in a slot nearer the home
    /// slot, or if a slot before `mine` is EMPTY or was made EMPTY since the claimer read it
    /// before its claim (a shortening cut the chain: the sum of the slots' emptied epochs is
    /// not `epochs_before`); waits on slots
    /// that may resolve either way (INSERTING with our tag, NEW farther on, EMPTYING before
    /// `mine`).
    ///
    /// No copy of the key can lie past a claimed EMPTY slot `e`: its chain runs through `e`, so
    /// its own verification (which reads `e` after its claim) saw `e` EMPTY and aborted, or saw
    /// our claim, nearer, and aborted; or it read `e` before `e` became EMPTY, and then the
    /// shortening that made `e` EMPTY scanned after that copy's claim and would have kept `e`
    /// while the copy existed.
    ///
    ///
    /// The emptied epochs close a gap in that argument: a slot `p` before our slot may be made
    /// EMPTY by a shortening whose scan read our slot before our claim (and so saw no chain
    /// through `p`), and then be claimed again by another key before our verification reads
    /// it. Our claim would then have been made with the chain cut, so a later shortening of a
    /// slot before `p` (whose scan stops at `p`) could not see our copy either, and an insert
    /// could claim that slot, EMPTY, as its home: two copies (found by
    /// `churn_in_full_tables_of_colliding_keys`). Dekker's order makes our read of `p` after
    /// our claim see the shortening's EMPTYING lock or a later word, and every word from the
    /// EMPTY on has a larger epoch than the one we read before our claim.
    ///
    /// [`bounds`]: super::bounds
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn verify<B: BackoffPolicy, H: Host + ?Sized>(
        &self,
        key: &K,
        hash: u64,
        mine: usize,
        mine_was_empty: bool,
        reach: usize,
        epochs_before: u64,
        waiting: &mut Waiting<'_, B, H>,
    ) -> Result<bool, RawError> {
        let tag = Self::tag(hash);
        let mut index = self.home(hash);
        let mut passed = false;
        // The emptied epochs of the slots before ours, as this verification last read them.
        let mut epochs = 0u64;
        for distance in 0..self.capacity() {
            if distance > reach {
                debug_assert!(passed, "our raise made the reach cover our slot");
                return Ok(true);
            }
            if index == mine {
                if epochs != epochs_before {
                    return Ok(false); // a slot before ours was made EMPTY since we read it
                }
                if mine_was_empty {
                    return Ok(true);
                }
                passed = true;
            } else {
                let mut last_epoch = 0;
                loop {
                    // SeqCst: Dekker's load after our SeqCst claim (see `dekker_fence`); as an
                    // acquire, pairs with the Release store of NEW, so the key compared below is
                    // the published one.
                    let c = Ctrl(self.ctrl_word(index).load(Ordering::SeqCst));
                    if !passed {
                        // This read of the slot, the last unless it is read again below.
                        last_epoch = c.emptied_epoch();
                    }
                    // Most slots: another key's, or FREED (its tag is stale).
                    if c.tag() != tag && !c.is(SlotState::Empty) && !c.is(SlotState::Emptying)
                        || c.is(SlotState::Freed)
                    {
                        break;
                    }
                    let wait = if c.is(SlotState::Empty) {
                        return Ok(passed);
                    } else if c.is(SlotState::Emptying) {
                        if !passed {
                            // Before our slot it may become EMPTY and cut our chain: veto the
                            // shortening instead of waiting for it (a stopped remover must
                            // not stop inserts of other keys), and read the slot again.
                            self.veto_shortening(index, c);
                            continue;
                        }
                        false
                    } else if c.is(SlotState::Inserting) {
                        true // may be our key
                    } else if !words::equals(self.slot(index).key, key) {
                        false
                    } else if c.is(SlotState::New) {
                        if !passed {
                            return Ok(false); // a tentative copy nearer home wins
                        }
                        true // a farther tentative copy aborts when it sees ours
                    } else {
                        return Ok(false); // committed elsewhere
                    };
                    if !wait {
                        break;
                    }
                    self.wait_on(waiting, index, c)?;
                }
                epochs = epochs.wrapping_add(last_epoch);
            }
            index = (index + 1) & self.mask;
        }
        Ok(true)
    }

    /// Cancels the shortening of slot `index`, seen EMPTYING as `c`: back to FREED (bumped,
    /// like every way out of a locked state). Safe whoever holds the lock, alive or dead: an
    /// EMPTYING slot holds no data, and its holder's last step is a compare-and-swap from `c`
    /// that then fails. Returns the FREED word if the veto took.
    pub(super) fn veto_shortening(&self, index: usize, c: Ctrl) -> Option<Ctrl> {
        let freed = c.released(SlotState::Freed);
        // AcqRel: the same as a recovery's (see `recovery::recover_slot`).
        self.ctrl_word(index)
            .compare_exchange(c.0, freed.0, Ordering::AcqRel, Ordering::Relaxed)
            .ok()
            .map(|_| freed)
    }

    /// Tries to turn FREED slot `index` back into EMPTY, and then the FREED slots before it, as
    /// long as no probe chain runs through them (see [`raw`](super::raw), invariant 2). Gives
    /// up at the first slot that must stay.
    #[cold]
    pub(crate) fn shorten(&self, index: usize, owner: OwnerId) {
        self.shorten_within(index, owner, SHORTEN_REACH);
    }

    /// [`shorten`](Self::shorten), scanning up to `reach` slots ahead.
    pub(crate) fn shorten_within(&self, index: usize, owner: OwnerId, reach: usize) {
        let mut i = index;
        for _ in 0..self.capacity() {
            let slot = self.slot(i);
            let c = Ctrl(slot.ctrl.load(Ordering::Relaxed));
            if !c.is(SlotState::Freed) {
                return;
            }
            let locked = c.locked(SlotState::Emptying, owner);
            // SeqCst: the lock and the scan's SeqCst loads are Dekker's store-load pair against
            // a claimer's claim and verification (see `dekker_fence`).
            if slot
                .ctrl
                .compare_exchange(c.0, locked.0, Ordering::SeqCst, Ordering::Relaxed)
                .is_err()
            {
                return;
            }
            dekker_fence();
            if !self.finish_shortening(i, locked, reach) {
                return;
            }
            i = (i + self.mask) & self.mask;
        }
    }

    /// Whether no key's probe chain runs through slot `i`, which the caller holds EMPTYING:
    /// scans from `i + 1` to the next EMPTY (at most `reach` slots, else `false`), rehashing
    /// each key it passes. A slot it cannot judge (a key being written, or a slot that changes
    /// under the scan) counts as a chain.
    fn no_chain_through(&self, i: usize, reach: usize) -> bool {
        let mask = self.mask;
        let mut j = (i + 1) & mask;
        for _ in 0..reach.min(mask) {
            let slot = self.slot(j);
            // SeqCst: Dekker's load after our SeqCst lock (see `dekker_fence`); as an acquire,
            // pairs with the Release store of NEW, so the key read below is published.
            let c = Ctrl(slot.ctrl.load(Ordering::SeqCst));
            if c.is(SlotState::Empty) {
                return true;
            } else if c.is(SlotState::Inserting) {
                return false;
            } else if !c.is_vacant() {
                let key = words::load::<K>(slot.key);
                // Acquire fence: if the key copy saw a later claimer's store, the re-read below
                // sees its claim (pairs with the claimer's Release fence before its key stores).
                fence(Ordering::Acquire);
                if slot.ctrl.load(Ordering::Relaxed) != c.0 {
                    return false;
                }
                let home = (self.hash)(&key) as usize & mask;
                if (i.wrapping_sub(home) & mask) < (j.wrapping_sub(home) & mask) {
                    return false; // the chain from `home` to `j` runs through `i`
                }
            }
            j = (j + 1) & mask;
        }
        j == i // a whole lap, every key judged
    }

    /// The rest of a shortening of slot `i`, which we hold EMPTYING (`locked`), after the
    /// Dekker fence: scans for a chain through it and leaves it EMPTY or FREED. Returns whether
    /// it became EMPTY (then the slot before it may be shortened too).
    ///
    /// Inlined into its two callers: as a call it saved and restored most of the callee-saved
    /// registers, 32 of a removal's 314 instructions (callgrind).
    #[inline(always)]
    fn finish_shortening(&self, i: usize, locked: Ctrl, reach: usize) -> bool {
        let empty = self.no_chain_through(i, reach);
        // EMPTY with the emptied epoch bumped (claimers that read the slot before compare it:
        // see `verify`), or FREED again.
        // Release: pairs with the Acquire CAS of the slot's next claimer. A compare-and-swap, not
        // a store: a verifying insert may have vetoed the shortening (EMPTYING -> FREED)
        // meanwhile, and then the slot stays as the veto left it.
        let done = self
            .ctrl_word(i)
            .compare_exchange(
                locked.0,
                if empty { locked.emptied().0 } else { locked.released(SlotState::Freed).0 },
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok();
        done && empty
    }

    /// Frees slot `index`, READY as `c` (whose value the caller copied), for a removal: one
    /// compare-and-swap, which returns whether it took. With an owner id, that compare-and-swap
    /// locks the slot EMPTYING (the removal is done: the slot holds no key) and the shortening
    /// follows at once, which leaves it EMPTY or FREED; without one, the slot is FREED and
    /// stays so.
    ///
    /// The lock is taken without first looking ahead for a chain through the slot: an
    /// unlocked look ahead, which saved the shortening's second compare-and-swap where the
    /// slot had to stay FREED, cost a scan of its own on every removal, and removals ran 7 %
    /// faster without it (`bench/ab.py`, u64-25K, with churn unchanged; see BENCHMARKS.md,
    /// "A leaner removal").
    fn free_removed<H: Host + ?Sized>(
        &self,
        index: usize,
        c: Ctrl,
        owner: Option<OwnerId>,
        host: &H,
    ) -> bool {
        note_freed(self.freed());
        let word = self.ctrl_word(index);
        match owner {
            Some(owner) => {
                let locked = c.locked(SlotState::Emptying, owner);
                // SeqCst: the EMPTYING lock's Dekker pair with claims, as in `shorten_within`;
                // as a release, orders our copy of the value before the next claimer's writes.
                if word
                    .compare_exchange(c.0, locked.0, Ordering::SeqCst, Ordering::Relaxed)
                    .is_err()
                {
                    return false;
                }
                // Counted at once: a process killed in the shortening below leaves the count
                // right.
                host.count_entries(Some(owner), -1);
                dekker_fence();
                if self.finish_shortening(index, locked, SHORTEN_REACH) {
                    self.shorten_within((index + self.mask) & self.mask, owner, SHORTEN_REACH);
                }
                true
            }
            None => self.free_counted(index, c, owner, host),
        }
    }

    /// Removes `key` if `keep` returns `false` for its value (a copy). Lock-free: one
    /// compare-and-swap from the word under which the value was copied, so the value returned is
    /// exactly the one removed; waits only while a visit holds the slot. The chain is shortened
    /// at the slot where it can be (which needs `owner`).
    pub(crate) fn remove<B: BackoffPolicy, H: Host + ?Sized>(
        &self,
        key: &K,
        hash: u64,
        owner: Option<OwnerId>,
        waiting: &mut Waiting<'_, B, H>,
        mut keep: impl FnMut(&V) -> bool,
    ) -> Result<Removal<V>, RawError> {
        // The near slots first, as `visit` does: a committed entry there is copied and freed
        // with no walk state kept; anything else (a held slot, a lost race, a longer chain)
        // goes to the general walk below, from the home slot again.
        match self.probe(key, hash).step_near() {
            Ok(Some(Stop::Mine { index, slot, ctrl })) if ctrl.is(SlotState::Ready) => {
                if let Some(done) =
                    self.remove_ready(index, slot, ctrl, hash, owner, waiting.host, &mut keep)
                {
                    return Ok(done);
                }
            }
            Ok(Some(Stop::Empty { .. } | Stop::Exhausted)) => return Ok(Removal::Absent),
            Ok(None) if self.mask < NEAR_SLOTS => return Ok(Removal::Absent),
            _ => {}
        }
        let mut walk = self.probe(key, hash);
        loop {
            let (index, slot, c) = match walk.next_committed() {
                Stop::Mine { index, slot, ctrl } => (index, slot, ctrl),
                Stop::Empty { .. } | Stop::Exhausted => return Ok(Removal::Absent),
            };
            if c.is(SlotState::New) {
                walk.pass(); // not committed: absent here
            } else if c.is(SlotState::Ready) {
                // A write-back that overlapped the copy, or a lost removal, changed the word: the
                // walk reads the slot again.
                if let Some(done) =
                    self.remove_ready(index, slot, c, hash, owner, waiting.host, &mut keep)
                {
                    return Ok(done);
                }
            } else {
                self.wait_on(waiting, index, c)?; // ACCESSING or WRITING: a visit may change it
            }
        }
    }

    /// Copies the committed entry of slot `index` (READY as `c`, holding `remove`'s key of
    /// hash `hash`) and removes it unless `keep` keeps it: what happened, or `None` if the
    /// slot changed under the copy or before the removal (the caller reads it again).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn remove_ready<H: Host + ?Sized>(
        &self,
        index: usize,
        slot: Slot<'_>,
        c: Ctrl,
        hash: u64,
        owner: Option<OwnerId>,
        host: &H,
        keep: &mut impl FnMut(&V) -> bool,
    ) -> Option<Removal<V>> {
        let value = Self::read_validated(slot, c).ok()?;
        if keep(&value) {
            return Some(Removal::Kept(value));
        }
        if !self.free_removed(index, c, owner, host) {
            return None;
        }
        let home = self.home(hash);
        self.lower_reach_after_removal(home, index.wrapping_sub(home) & self.mask);
        Some(Removal::Removed(value))
    }

    /// Removes the committed entry in slot `index` if `keep` returns `false` for it (copies of
    /// its key and value), as [`remove`](Self::remove) does; `Ok(Some(..))` with what it removed.
    /// Slots without a committed entry are left alone.
    pub(crate) fn remove_at<B: BackoffPolicy, H: Host + ?Sized>(
        &self,
        index: usize,
        waiting: &mut Waiting<'_, B, H>,
        mut keep: impl FnMut(&K, &V) -> bool,
    ) -> Result<Option<(K, V)>, RawError> {
        let slot = self.slot(index);
        loop {
            // Acquire: pairs with the Release stores of NEW and READY (the key and value).
            let c = Ctrl(slot.ctrl.load(Ordering::Acquire));
            if c.is(SlotState::Ready) {
                let key = words::load::<K>(slot.key);
                let Ok(value) = Self::read_validated(slot, c) else { continue };
                if keep(&key, &value) {
                    return Ok(None);
                }
                if self.evict_at(index, c, &key, waiting.host) {
                    return Ok(Some((key, value)));
                }
            } else if c.is(SlotState::Accessing) || c.is(SlotState::Writing) {
                self.wait_on(waiting, index, c)?;
            } else {
                return Ok(None); // nothing committed here (an insert in flight commits later)
            }
        }
    }

    /// Frees slot `index`, READY as `c`, with one compare-and-swap, and counts the removal at
    /// once (on `owner`'s shard) if it took: before any scan that follows (a shortening,
    /// lowering a probe bound), so that a process killed in that scan leaves the count right.
    /// The caller has called [`note_freed`].
    fn free_counted<H: Host + ?Sized>(
        &self,
        index: usize,
        c: Ctrl,
        owner: Option<OwnerId>,
        host: &H,
    ) -> bool {
        // AcqRel: Acquire pairs with the Release store of READY that `c` came from (the value
        // the caller copied); Release hands the slot to its next claimer, whose Acquire
        // compare-and-swap pairs with it.
        let freed = self
            .ctrl_word(index)
            .compare_exchange(
                c.0,
                c.released(SlotState::Freed).0,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok();
        if freed {
            host.count_entries(owner, -1);
        }
        freed
    }

    /// Removes the committed entry of slot `index`, read as `c` (READY) with key `key`, without
    /// waiting: one compare-and-swap from `c`, so it removes exactly the entry its caller read,
    /// and fails (returns `false`) if the slot was locked, changed or removed since. On success
    /// it counts the removal and lowers the probe bound the key held; the caller shortens the
    /// chain (`ShmHashTable::removed`). A cache's hand evicts through this.
    pub(crate) fn evict_at<H: Host + ?Sized>(
        &self,
        index: usize,
        c: Ctrl,
        key: &K,
        host: &H,
    ) -> bool {
        debug_assert!(c.is(SlotState::Ready));
        note_freed(self.freed());
        let removed = self.free_counted(index, c, host.me(), host);
        if removed {
            let home = (self.hash)(key) as usize & self.mask;
            self.lower_reach_after_removal(home, index.wrapping_sub(home) & self.mask);
        }
        removed
    }
}
