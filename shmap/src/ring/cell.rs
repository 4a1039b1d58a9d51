//! The sequence word of an SPMC or MPMC cell (and of a [`ShmVector`](crate::ShmVector) element).
//!
//! Vyukov's bounded MPMC queue gives each cell a sequence number that says which position the
//! cell is ready for and whether it holds that position's element. shmap's word also says who
//! is working on the cell, so that a process that dies in the middle can be found:
//!
//! ```text
//! bits 63..18  lap     the position's lap (position >> log2 capacity), modulo 2^46
//! bits 17..16  state   FREE (ready for the lap's push), FULL (holds the lap's element),
//!                      WRITING (a producer is filling it), READING (a consumer is copying it)
//! bits 15..0   owner   the process-table id of the WRITING or READING process, else 0
//! ```
//!
//! All zeroes is FREE at lap 0: a new ring's zeroed cells are ready for their first push
//! without an initialisation pass.

use crate::process::OwnerId;

const OWNER_BITS: u32 = 16;
const OWNER_MASK: u64 = (1 << OWNER_BITS) - 1;
const STATE_SHIFT: u32 = OWNER_BITS;
const STATE_MASK: u64 = 0b11 << STATE_SHIFT;
const LAP_SHIFT: u32 = STATE_SHIFT + 2;
/// Laps are kept modulo 2^46 and compared with wrapping arithmetic.
const LAP_BITS: u32 = 64 - LAP_SHIFT;
const LAP_MASK: u64 = (1 << LAP_BITS) - 1;

/// What a cell holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CellState {
    /// Ready for the push of its lap.
    Free = 0,
    /// Holds its lap's element.
    Full = 1,
    /// A producer is writing its lap's element.
    Writing = 2,
    /// A consumer is copying its lap's element out.
    Reading = 3,
}

/// Where a cell's lap is, against the lap of the position being looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lap {
    /// The same lap.
    Same,
    /// One lap behind: the cell still serves the previous lap.
    Previous,
    /// Ahead: the position is done with (the looker's position is stale).
    Ahead,
    /// Any other distance: a stale read; look again.
    Other,
}

/// A cell's sequence word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cell(pub(crate) u64);

impl Cell {
    pub(crate) fn new(lap: u64, state: CellState, owner: Option<OwnerId>) -> Cell {
        let owner = owner.map_or(0, |o| u64::from(o.get()));
        Cell(((lap & LAP_MASK) << LAP_SHIFT) | ((state as u64) << STATE_SHIFT) | owner)
    }

    pub(crate) fn lap(self) -> u64 {
        self.0 >> LAP_SHIFT
    }

    pub(crate) fn state(self) -> CellState {
        match (self.0 & STATE_MASK) >> STATE_SHIFT {
            0 => CellState::Free,
            1 => CellState::Full,
            2 => CellState::Writing,
            _ => CellState::Reading,
        }
    }

    /// The process working on the cell (WRITING or READING).
    pub(crate) fn owner(self) -> Option<OwnerId> {
        match self.state() {
            CellState::Writing | CellState::Reading => OwnerId::from_bits(self.0 & OWNER_MASK),
            CellState::Free | CellState::Full => None,
        }
    }

    /// Where the cell's lap is against `lap`.
    pub(crate) fn against(self, lap: u64) -> Lap {
        let diff = self.lap().wrapping_sub(lap) & LAP_MASK;
        match diff {
            0 => Lap::Same,
            d if d == LAP_MASK => Lap::Previous,
            d if d < (1 << (LAP_BITS - 1)) => Lap::Ahead,
            _ => Lap::Other,
        }
    }
}

impl std::fmt::Debug for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}@lap{}", self.state(), self.lap())?;
        if let Some(owner) = self.owner() {
            write!(f, " by {}", owner.get())?;
        }
        Ok(())
    }
}

#[cfg(all(test, not(shmap_loom)))]
mod tests {
    use super::*;

    #[test]
    fn zero_is_free_at_lap_zero() {
        assert_eq!(Cell(0).state(), CellState::Free);
        assert_eq!(Cell(0).lap(), 0);
        assert_eq!(Cell(0).owner(), None);
    }

    #[test]
    fn fields_round_trip() {
        let owner = OwnerId::from_bits(4095).unwrap();
        let c = Cell::new(123_456, CellState::Reading, Some(owner));
        assert_eq!((c.lap(), c.state(), c.owner()), (123_456, CellState::Reading, Some(owner)));
        assert_eq!(Cell::new(7, CellState::Full, None).owner(), None);
    }

    #[test]
    fn laps_compare_across_the_wrap() {
        let top = LAP_MASK; // the last lap before wrapping to 0
        assert_eq!(Cell::new(0, CellState::Free, None).against(top), Lap::Ahead);
        assert_eq!(Cell::new(top, CellState::Full, None).against(0), Lap::Previous);
        assert_eq!(Cell::new(5, CellState::Full, None).against(5), Lap::Same);
        assert_eq!(Cell::new(4, CellState::Full, None).against(5), Lap::Previous);
        assert_eq!(Cell::new(9, CellState::Full, None).against(5), Lap::Ahead);
        assert_eq!(Cell::new(2, CellState::Full, None).against(5), Lap::Other);
        // A position's lap beyond 2^46 wraps like the stored one.
        assert_eq!(Cell::new(top + 1, CellState::Full, None).against(top + 1), Lap::Same);
    }
}
