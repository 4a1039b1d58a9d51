//! Finding what is stuck, poll after poll: a hash table's slots through [`Monitor`], a ring's
//! or a vector's cells, roles and sleeper seats through [`RingSnapshot`]s. A lock counts as
//! stuck once the same lock has been seen for the threshold, or at once when its holder is
//! proven dead.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use shmap::ring::RingSnapshot;
use shmap::{Liveness, Monitor, Segment, StructureKind, TypeLayout};

use crate::report::{self, Stuck, StuckSlotReport};

/// Polls one segment.
pub(crate) enum Poller<'s> {
    /// A table's monitor, and its key's and value's layouts (to decode them).
    Table(Monitor<'s>, Box<(TypeLayout, TypeLayout)>),
    Ring(RingPoller<'s>),
}

impl<'s> Poller<'s> {
    pub(crate) fn new(segment: &'s Segment) -> Result<Poller<'s>, String> {
        match segment.info().kind {
            StructureKind::HashTable | StructureKind::Cache => Monitor::for_segment(segment)
                .map(|m| Poller::Table(m, Box::new((segment.info().key, segment.info().value))))
                .ok_or_else(|| "the hash table's geometry is inconsistent".to_owned()),
            kind => match RingSnapshot::of(segment) {
                Some(_) => Ok(Poller::Ring(RingPoller { segment, first_seen: HashMap::new() })),
                None => Err(format!(
                    "{} holds a {kind}, which this command cannot read",
                    segment.backing()
                )),
            },
        }
    }

    /// What is stuck now; the first poll starts the clock on every lock it sees.
    pub(crate) fn poll(&mut self, threshold: Duration) -> Vec<Stuck> {
        match self {
            Poller::Table(monitor, layouts) => monitor
                .poll(threshold)
                .iter()
                .map(|r| Stuck::Slot(StuckSlotReport::of(r, &layouts.0, &layouts.1)))
                .collect(),
            Poller::Ring(ring) => ring.poll(threshold),
        }
    }
}

/// Tracks a ring's claimed cells across polls.
pub(crate) struct RingPoller<'s> {
    segment: &'s Segment,
    /// When each claim (cell index, claim word) was first seen.
    first_seen: HashMap<(usize, u64), Instant>,
}

impl RingPoller<'_> {
    fn poll(&mut self, threshold: Duration) -> Vec<Stuck> {
        let Some(snapshot) = RingSnapshot::of(self.segment) else { return Vec::new() };
        let now = Instant::now();
        let dead = |h: &shmap::ring::Holder| h.liveness == Liveness::Dead;
        let mut stuck = Vec::new();
        let mut seen = HashMap::new();
        for cell in &snapshot.busy {
            let first = *self.first_seen.get(&(cell.index, cell.word)).unwrap_or(&now);
            seen.insert((cell.index, cell.word), first);
            let held = now - first;
            if dead(&cell.holder) || held >= threshold {
                stuck.push(Stuck::Cell { cell: cell.into(), held_for_ms: report::millis(held) });
            }
        }
        self.first_seen = seen;
        let state = report::ring_state(&snapshot);
        for role in state.roles {
            if role.holder.liveness == report::LivenessName::Dead {
                stuck.push(Stuck::Role(role));
            }
        }
        for sleeper in state.sleepers {
            if sleeper.holder.liveness == report::LivenessName::Dead {
                stuck.push(Stuck::Sleeper(sleeper));
            }
        }
        stuck
    }
}
