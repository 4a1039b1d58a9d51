//! The slot control word: state, hash tag, version and lock owner in one `AtomicU64`.
//!
//! ```text
//!  63         52 51                          19 18           3 2     0
//! +-------------+------------------------------+--------------+-------+
//! |  owner (12) |        version (33)          |   tag (16)   | state |
//! +-------------+------------------------------+--------------+-------+
//! ```
//!
//! - **state**: see [`SlotState`]. A slot is never EMPTY again once claimed, so probe chains
//!   are never cut, and a key never moves: a key lives in at most one slot, for ever.
//! - **tag**: the top 16 bits of the key's hash, so a probe skips slots of other keys without
//!   reading them, and never waits on a slot being inserted with another tag.
//! - **version**: bumped by every unlock (see the table below), so a lock episode's word is
//!   never repeated: a monitor comparing two samples and a recoverer's compare-and-swap from an
//!   observed word each name one episode. Seqlock readers accept a copy only if the version
//!   did not change while they copied. 33 bits: a reader would have to stall while 2^33
//!   unlocks hit the same slot to be fooled, and even then `FromBytes` makes the torn copy a
//!   wrong value, not undefined behaviour.
//! - **owner**: while the slot is locked, the holder's [`OwnerId`], written by the same
//!   compare-and-swap that takes the lock; 0 otherwise.
//!
//! Transitions, in the notation `STATE(tag, version, owner)` (`o` = the caller):
//!
//! ```text
//! claim      EMPTY(0,0,0)      -> INSERTING(t,0,o)   CAS    then the key is written
//! publish    INSERTING(t,v,o)  -> NEW(t,v,o)         store  key now comparable
//! commit     NEW(t,v,o)        -> READY(t,v+1,0)     store  after the value is written
//! abort      NEW(t,v,o)        -> TOMBSTONE(t,v+1,0) store  failed or panicking insert
//! revive     TOMBSTONE(t,v,0)  -> NEW(t,v,o)         CAS    same key inserted again
//! lock       READY(t,v,0)      -> ACCESSING(t,v,o)   CAS    value still readable
//! write      ACCESSING(t,v,o)  -> WRITING(t,v,o)     store  value being written back
//! release    WRITING(t,v,o)    -> READY(t,v+1,0)     store
//! unlock     ACCESSING(t,v,o)  -> READY(t,v+1,0)     store  value unchanged
//! ```
//!
//! Recovery of a dead holder's lock (in `raw.rs`) bumps the version too: every way out of a
//! locked state does.
//!
//! DEAD marks a slot whose inserter died before its key was complete (recovery, issue #4):
//! its key bytes mean nothing and it is skipped for ever.

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
    /// Holds a key without a value (a failed insert, later a removal); only that key may reuse it.
    Tombstone = 6,
    /// Abandoned during insertion; the key bytes are meaningless and the slot is skipped.
    Dead = 7,
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
        SlotState::Tombstone,
        SlotState::Dead,
    ];

    /// Whether a process holds the slot's lock in this state (and its owner is recorded).
    pub const fn is_locked(self) -> bool {
        matches!(
            self,
            SlotState::Inserting | SlotState::New | SlotState::Accessing | SlotState::Writing
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
            SlotState::Tombstone => "TOMBSTONE",
            SlotState::Dead => "DEAD",
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
const OWNER_SHIFT: u32 = 52;
const OWNER_MASK: u64 = 0xfff;

impl Ctrl {
    /// A new control word.
    #[inline]
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
            6 => SlotState::Tombstone,
            _ => SlotState::Dead,
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

    /// The same slot, locked by `owner` in `state`.
    #[inline]
    pub(crate) fn locked(self, state: SlotState, owner: OwnerId) -> Ctrl {
        Ctrl::new(state, self.tag(), self.version(), Some(owner))
    }

    /// The same word in another state (owner kept).
    #[inline]
    pub(crate) fn with_state(self, state: SlotState) -> Ctrl {
        Ctrl((self.0 & !STATE_MASK) | state as u64)
    }

    /// The same slot, unlocked in `state`.
    #[inline]
    pub(crate) fn unlocked(self, state: SlotState) -> Ctrl {
        Ctrl::new(state, self.tag(), self.version(), None)
    }

    /// The same word with the version incremented (wrapping at 2^33).
    #[inline]
    pub(crate) fn bumped(self) -> Ctrl {
        Ctrl::new(self.state(), self.tag(), self.version().wrapping_add(1), self.owner())
    }

    /// Whether a seqlock reader may copy the value in this state: committed and not being
    /// written (READY or ACCESSING, which are 3 and 4: one subtraction and one compare).
    #[inline(always)]
    pub(crate) fn is_readable(self) -> bool {
        (self.0 & STATE_MASK).wrapping_sub(SlotState::Ready as u64) < 2
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
        let committed =
            locked.locked(SlotState::Writing, owner).unlocked(SlotState::Ready).bumped();
        assert_eq!((committed.version(), committed.owner()), (42, None));
        assert!(!locked.locked(SlotState::Writing, owner).is_readable());
        assert_eq!(format!("{locked:?}"), "ACCESSING(tag=0x1234, v=41, owner=1)");
    }

    #[test]
    fn locked_states_are_the_ones_with_owners() {
        let locked: Vec<_> = SlotState::ALL.iter().filter(|s| s.is_locked()).collect();
        assert_eq!(
            locked,
            [&SlotState::Inserting, &SlotState::New, &SlotState::Accessing, &SlotState::Writing]
        );
    }
}
