//! The slot control word: state, hash tag, version and lock owner in one `AtomicU64`.
//!
//! ```text
//!  63         52 51                          19 18           3 2     0
//! +-------------+------------------------------+--------------+-------+
//! |  owner (12) |        version (33)          |   tag (16)   | state |
//! +-------------+------------------------------+--------------+-------+
//! ```
//!
//! - **state**: see [`SlotState`]. A slot holds a key from its claim to its removal; a removed
//!   slot is FREED (keyless, reusable by any key) and becomes EMPTY again only when that cannot
//!   cut a probe chain (see [`raw`](super::raw)).
//! - **tag**: the top 16 bits of the key's hash, so a probe skips slots of other keys without
//!   reading them, and never waits on a slot being inserted with another tag. A FREED or EMPTY
//!   slot keeps its last tag, which means nothing there.
//! - **version**: bumped by every unlock and every removal (see the table below), and kept by
//!   every other transition, so a word is never repeated: a monitor comparing two samples and a
//!   recoverer's compare-and-swap from an observed word each name one episode, and a seqlock
//!   reader accepts a copy only if the version did not change while it copied (also across a
//!   removal and a reuse of the slot by another key). 33 bits: to be fooled, a reader would
//!   have to stall while the version goes all the way round (2^33 unlocks, or, since a
//!   shortening to EMPTY adds 2^13, at least 2^20 removals and shortenings of that one slot
//!   with their reuses) and read the control word again at the exact moment it comes back to
//!   the one it saw; and even then `FromBytes` makes the torn copy a wrong value, not undefined
//!   behaviour.
//!
//!   The version's top [`EPOCH_BITS`] bits are the slot's **emptied epoch**: the shortening
//!   that makes a slot EMPTY adds one to them (and nothing to the rest), every other bump adds
//!   one to the 13 bits below (a carry into the epoch every 8,192 bumps, which at worst makes
//!   an insert start over for nothing). So an insert that read a
//!   slot of its chain before its claim, and reads the same epoch there after it, knows that the
//!   slot was not made EMPTY in between (see [`raw`](super::raw), invariant 2), whatever else
//!   happened to it: updates, removals and reuses by other keys do not change the epoch.
//! - **owner**: while the slot is locked, the holder's [`OwnerId`], written by the same
//!   compare-and-swap that takes the lock; 0 otherwise.
//!
//! Transitions, in the notation `STATE(tag, version, owner)` (`o` = the caller; [`raw`](super::raw)
//! has the protocol that decides when each is taken):
//!
//! ```text
//! claim      EMPTY(_,v,0)      -> INSERTING(t,v,o)   CAS    then the key is written
//! reuse      FREED(_,v,0)      -> INSERTING(t,v,o)   CAS    same, in a removed slot
//! publish    INSERTING(t,v,o)  -> NEW(t,v,o)         store  key comparable; duplicates checked
//! commit     NEW(t,v,o)        -> READY(t,v+1,0)     store  after the value is written
//! abort      NEW(t,v,o)        -> FREED(t,v+1,0)     store  failed, panicking or duplicate insert
//! lock       READY(t,v,0)      -> ACCESSING(t,v,o)   CAS    value still readable
//! write      ACCESSING(t,v,o)  -> WRITING(t,v,o)     store  value being written back
//! release    WRITING(t,v,o)    -> READY(t,v+1,0)     store
//! unlock     ACCESSING(t,v,o)  -> READY(t,v+1,0)     store  value unchanged
//! remove     READY(t,v,0)      -> FREED(t,v+1,0)     CAS    lock-free: one step, nothing held
//!            READY(t,v,0)      -> EMPTYING(t,v,o)    CAS    or, by a remover with an owner id,
//!                                                           removed and locked to shorten at once
//! shorten    FREED(t,v,0)      -> EMPTYING(t,v,o)    CAS    if the next slot is EMPTY...
//!            EMPTYING(t,v,o)   -> EMPTY(t,v+2^13,0)  CAS    ...and still is after a fence (epoch+1)
//!            EMPTYING(t,v,o)   -> FREED(t,v+1,0)     CAS    ...else back
//! veto       EMPTYING(t,v,_)   -> FREED(t,v+1,0)     CAS    by an insert the shortening would cut
//! ```
//!
//! The shortener's last step is a compare-and-swap, so a veto (which any insert may cast, the
//! holder alive or not: an EMPTYING slot holds no data) makes it fail and leaves the slot FREED.
//!
//! Recovery of a dead holder's lock (in [`recovery`](super::recovery)) bumps the version too:
//! every way out of a locked state does.

use std::fmt;

use crate::process::OwnerId;

/// The state of a slot, as stored in the low 3 bits of its control word.
///
/// # Examples
///
/// ```
/// use shmap::SlotState;
///
/// assert_eq!(SlotState::Accessing.to_string(), "ACCESSING");
/// assert!(SlotState::Writing.is_locked());
/// assert!(!SlotState::Ready.is_locked());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum SlotState {
    /// Never used; ends every probe chain.
    Empty = 0,
    /// Claimed by an inserter that is writing the key (the key is not yet comparable).
    Inserting = 1,
    /// Locked by an inserter whose visitor is initialising the value; the key is absent until
    /// the commit.
    New = 2,
    /// Holds a committed key and value.
    Ready = 3,
    /// Locked by a visitor; the committed value is still readable.
    Accessing = 4,
    /// Locked by a visitor that is writing its new value back; readers wait.
    Writing = 5,
    /// Removed (or an insert that did not commit): holds no key; probes pass it, and an insert
    /// of any key may reuse it.
    Freed = 6,
    /// A FREED slot being turned back into EMPTY, locked for a moment while its remover checks
    /// that no probe chain runs through it; probes pass it like a FREED slot.
    Emptying = 7,
}

impl SlotState {
    /// Every state, in the order of their codes (`SlotState::ALL[s as usize] == s`).
    pub const ALL: [SlotState; 8] = [
        SlotState::Empty,
        SlotState::Inserting,
        SlotState::New,
        SlotState::Ready,
        SlotState::Accessing,
        SlotState::Writing,
        SlotState::Freed,
        SlotState::Emptying,
    ];

    /// Whether a process holds the slot's lock in this state (and its owner is recorded).
    pub const fn is_locked(self) -> bool {
        matches!(
            self,
            SlotState::Inserting
                | SlotState::New
                | SlotState::Accessing
                | SlotState::Writing
                | SlotState::Emptying
        )
    }

    /// The name used in messages.
    pub const fn name(self) -> &'static str {
        match self {
            SlotState::Empty => "EMPTY",
            SlotState::Inserting => "INSERTING",
            SlotState::New => "NEW",
            SlotState::Ready => "READY",
            SlotState::Accessing => "ACCESSING",
            SlotState::Writing => "WRITING",
            SlotState::Freed => "FREED",
            SlotState::Emptying => "EMPTYING",
        }
    }
}

impl fmt::Display for SlotState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A control word value.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct Ctrl(pub(crate) u64);

const STATE_MASK: u64 = 0b111;
const TAG_SHIFT: u32 = 3;
const TAG_MASK: u64 = 0xffff;
const VERSION_SHIFT: u32 = 19;
const VERSION_MASK: u64 = (1 << 33) - 1;
/// Bits of the version that count the slot's shortenings to EMPTY (its emptied epoch).
pub(crate) const EPOCH_BITS: u32 = 20;
/// Where the emptied epoch starts within the version.
const EPOCH_IN_VERSION: u32 = 33 - EPOCH_BITS;
const OWNER_SHIFT: u32 = 52;
const OWNER_MASK: u64 = 0xfff;

impl Ctrl {
    /// A new control word (the protocol derives words from observed ones; tests build them).
    #[cfg(test)]
    pub(crate) fn new(state: SlotState, tag: u16, version: u64, owner: Option<OwnerId>) -> Ctrl {
        let owner = owner.map_or(0, |o| u64::from(o.get()));
        Ctrl(
            state as u64
                | (u64::from(tag) << TAG_SHIFT)
                | ((version & VERSION_MASK) << VERSION_SHIFT)
                | (owner << OWNER_SHIFT),
        )
    }

    #[inline(always)]
    pub(crate) fn state(self) -> SlotState {
        // A match (not a table) so that decoding is a register operation: the variants are
        // numbered as the bits are.
        match self.0 & STATE_MASK {
            0 => SlotState::Empty,
            1 => SlotState::Inserting,
            2 => SlotState::New,
            3 => SlotState::Ready,
            4 => SlotState::Accessing,
            5 => SlotState::Writing,
            6 => SlotState::Freed,
            _ => SlotState::Emptying,
        }
    }

    #[inline(always)]
    pub(crate) fn tag(self) -> u16 {
        ((self.0 >> TAG_SHIFT) & TAG_MASK) as u16
    }

    #[inline(always)]
    pub(crate) fn version(self) -> u64 {
        (self.0 >> VERSION_SHIFT) & VERSION_MASK
    }

    /// The lock holder, if the word names one.
    #[inline]
    pub(crate) fn owner(self) -> Option<OwnerId> {
        OwnerId::from_bits((self.0 >> OWNER_SHIFT) & OWNER_MASK)
    }

    /// The word that claims this EMPTY or FREED slot for a key with `tag`: INSERTING, locked by
    /// `owner`, version kept (bit operations only: this is on every insert's path).
    #[inline(always)]
    pub(crate) fn claimed(self, tag: u16, owner: OwnerId) -> Ctrl {
        Ctrl(
            (self.0 & (VERSION_MASK << VERSION_SHIFT))
                | (u64::from(owner.get()) << OWNER_SHIFT)
                | (u64::from(tag) << TAG_SHIFT)
                | SlotState::Inserting as u64,
        )
    }

    /// The same slot, locked by `owner` in `state`.
    #[inline(always)]
    pub(crate) fn locked(self, state: SlotState, owner: OwnerId) -> Ctrl {
        Ctrl(
            (self.0 & !(STATE_MASK | (OWNER_MASK << OWNER_SHIFT)))
                | (u64::from(owner.get()) << OWNER_SHIFT)
                | state as u64,
        )
    }

    /// The same word in another state (owner kept).
    #[inline]
    pub(crate) fn with_state(self, state: SlotState) -> Ctrl {
        Ctrl((self.0 & !STATE_MASK) | state as u64)
    }

    /// The same slot, unlocked in `state`.
    #[cfg(test)]
    pub(crate) fn unlocked(self, state: SlotState) -> Ctrl {
        Ctrl::new(state, self.tag(), self.version(), None)
    }

    /// The same slot unlocked in `state` with the version incremented (wrapping at 2^33): how
    /// every lock episode ends, `self.unlocked(state).bumped()` in bit operations (it is on
    /// every write's path).
    #[inline(always)]
    pub(crate) fn released(self, state: SlotState) -> Ctrl {
        const KEPT: u64 = (TAG_MASK << TAG_SHIFT) | (VERSION_MASK << VERSION_SHIFT);
        let kept = self.0 & KEPT;
        // A carry out of the version lands in the owner bits, which the mask clears: the wrap.
        Ctrl(((kept + (1 << VERSION_SHIFT)) & KEPT) | state as u64)
    }

    /// The same slot, unlocked EMPTY by a shortening: the emptied epoch incremented (the bits
    /// below it kept), wrapping with the version.
    #[inline]
    pub(crate) fn emptied(self) -> Ctrl {
        const KEPT: u64 = (TAG_MASK << TAG_SHIFT) | (VERSION_MASK << VERSION_SHIFT);
        let kept = self.0 & KEPT;
        // A carry out of the version lands in the owner bits, which the mask clears: the wrap.
        Ctrl(((kept + (1 << (VERSION_SHIFT + EPOCH_IN_VERSION))) & KEPT) | SlotState::Empty as u64)
    }

    /// The slot's emptied epoch: how many times a shortening made it EMPTY (modulo
    /// 2^[`EPOCH_BITS`]), changed by nothing else but a carry from the bits below every 8,192
    /// other bumps.
    #[inline(always)]
    pub(crate) fn emptied_epoch(self) -> u64 {
        self.version() >> EPOCH_IN_VERSION
    }

    /// The same word with the version incremented (wrapping at 2^33).
    #[cfg(test)]
    pub(crate) fn bumped(self) -> Ctrl {
        Ctrl::new(self.state(), self.tag(), self.version().wrapping_add(1), self.owner())
    }

    /// Whether a seqlock reader may copy the value in this state: committed and not being
    /// written (READY or ACCESSING, which are 3 and 4: one subtraction and one compare).
    #[inline(always)]
    pub(crate) fn is_readable(self) -> bool {
        (self.0 & STATE_MASK).wrapping_sub(SlotState::Ready as u64) < 2
    }

    /// Whether the slot holds a committed entry (READY, ACCESSING or WRITING).
    #[inline]
    pub(crate) fn holds_entry(self) -> bool {
        matches!(self.state(), SlotState::Ready | SlotState::Accessing | SlotState::Writing)
    }

    /// Whether the entry counters count this slot: a committed entry, or a claim not yet
    /// committed or given up (INSERTING, NEW), which is counted from its claim on.
    #[inline]
    pub(crate) fn is_counted(self) -> bool {
        !self.is(SlotState::Empty) && !self.is_vacant()
    }

    /// Whether the slot holds no key and is not EMPTY: FREED or EMPTYING (6 and 7, the two codes
    /// with both high state bits set).
    #[inline(always)]
    pub(crate) fn is_vacant(self) -> bool {
        self.0 & 0b110 == 0b110
    }

    /// Whether the state is `state` (a compare of the state bits, without decoding them).
    #[inline(always)]
    pub(crate) fn is(self, state: SlotState) -> bool {
        self.0 & STATE_MASK == state as u64
    }
}

impl fmt::Debug for Ctrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(tag={:#06x}, v={}", self.state(), self.tag(), self.version())?;
        if let Some(owner) = self.owner() {
            write!(f, ", owner={}", owner.get())?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let owner = OwnerId::from_bits(4095).unwrap();
        let c = Ctrl::new(SlotState::Accessing, 0xbeef, VERSION_MASK, Some(owner));
        assert_eq!(c.state(), SlotState::Accessing);
        assert_eq!(c.tag(), 0xbeef);
        assert_eq!(c.version(), VERSION_MASK);
        assert_eq!(c.owner(), Some(owner));
        assert_eq!(Ctrl(0).state(), SlotState::Empty);
        assert_eq!(Ctrl(0).owner(), None);
    }

    #[test]
    fn version_wraps_without_touching_other_fields() {
        let owner = OwnerId::from_bits(9).unwrap();
        let c = Ctrl::new(SlotState::Writing, 7, VERSION_MASK, Some(owner)).bumped();
        assert_eq!(
            (c.version(), c.tag(), c.state(), c.owner()),
            (0, 7, SlotState::Writing, Some(owner))
        );
    }

    #[test]
    fn transitions_keep_tag_and_version() {
        let owner = OwnerId::from_bits(1).unwrap();
        let ready = Ctrl::new(SlotState::Ready, 0x1234, 41, None);
        let locked = ready.locked(SlotState::Accessing, owner);
        assert!(locked.is_readable());
        assert_eq!(locked.unlocked(SlotState::Ready), ready);
        let committed = locked.locked(SlotState::Writing, owner).released(SlotState::Ready);
        assert_eq!((committed.version(), committed.owner()), (42, None));
        assert!(!locked.locked(SlotState::Writing, owner).is_readable());
        assert_eq!(format!("{locked:?}"), "ACCESSING(tag=0x1234, v=41, owner=1)");
    }

    #[test]
    fn only_a_shortening_changes_the_emptied_epoch() {
        let owner = OwnerId::from_bits(5).unwrap();
        let c = Ctrl::new(SlotState::Ready, 0xbeef, 41, None);
        let updated = c.locked(SlotState::Accessing, owner).released(SlotState::Ready);
        let removed = updated.released(SlotState::Freed);
        let reused = removed.claimed(7, owner).locked(SlotState::New, owner);
        let committed = reused.released(SlotState::Ready);
        for later in [updated, removed, reused, committed] {
            assert_eq!(later.emptied_epoch(), c.emptied_epoch(), "{later:?}");
        }
        let shortened = removed.locked(SlotState::Emptying, owner).emptied();
        assert_eq!(shortened.state(), SlotState::Empty);
        assert_eq!(shortened.emptied_epoch(), c.emptied_epoch() + 1);
        assert_eq!((shortened.tag(), shortened.owner()), (0xbeef, None));
        assert_eq!(
            shortened.version() & ((1 << EPOCH_IN_VERSION) - 1),
            removed.version() & ((1 << EPOCH_IN_VERSION) - 1)
        );
        // The epoch wraps with the version, leaving the owner bits clear.
        let last = Ctrl::new(SlotState::Emptying, 1, VERSION_MASK, Some(owner)).emptied();
        assert_eq!((last.emptied_epoch(), last.owner()), (0, None));
    }

    #[test]
    fn released_is_unlocked_and_bumped() {
        let owner = OwnerId::from_bits(77).unwrap();
        for version in [0, 41, VERSION_MASK] {
            for state in SlotState::ALL {
                let c = Ctrl::new(SlotState::Writing, 0xfeed, version, Some(owner));
                assert_eq!(c.released(state), c.unlocked(state).bumped());
            }
        }
        let empty = Ctrl::new(SlotState::Freed, 9, 5, None);
        let claimed = empty.claimed(0x1234, owner);
        assert_eq!(claimed, Ctrl::new(SlotState::Inserting, 0x1234, 5, Some(owner)));
        let locked = claimed.locked(SlotState::New, owner);
        assert_eq!(locked, Ctrl::new(SlotState::New, 0x1234, 5, Some(owner)));
    }

    #[test]
    fn locked_states_are_the_ones_with_owners() {
        let locked: Vec<_> = SlotState::ALL.iter().filter(|s| s.is_locked()).collect();
        assert_eq!(
            locked,
            [
                &SlotState::Inserting,
                &SlotState::New,
                &SlotState::Accessing,
                &SlotState::Writing,
                &SlotState::Emptying
            ]
        );
    }
}
