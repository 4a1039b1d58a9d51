//! A segment's process table, seen from a handle: registering this process (once per handle,
//! again in a `fork` child), releasing the entry on drop, and asking who an owner id is and
//! whether it is alive ([`process`](crate::process) has the table and the liveness rules).

use std::sync::atomic::Ordering;

use crate::process::{self, MAX_PROCESSES, OwnerId, ProcessIdentity, ProcessTable, RegisterError};
use crate::segment::{Recoveries, Segment};

impl Segment {
    /// The segment's process table.
    pub(crate) fn processes(&self) -> ProcessTable<'_> {
        ProcessTable::new(&self.header().processes)
    }

    /// The process registered under `owner`, if any.
    pub fn process(&self, owner: OwnerId) -> Option<ProcessIdentity> {
        self.processes().lookup(owner)
    }

    /// Whether the process registered as `owner` is alive (see [`ProcessIdentity::liveness`]).
    ///
    /// An owner with no entry is reported dead, and that is a proof too: an entry is freed
    /// only by its handle's drop (which holds no lock then), or reclaimed only after its
    /// process was proven dead and no slot, role or cell still named it; an entry being filled
    /// in belongs to a process that cannot hold anything yet. (A process's normal exit only
    /// retires its entries, which keep its identity: its other threads may still run.)
    pub fn owner_liveness(&self, owner: OwnerId) -> crate::Liveness {
        self.process(owner).map_or(crate::Liveness::Dead, |p| p.liveness())
    }

    /// How many locks of dead holders have been recovered, and how many of those were
    /// write-backs released without an undo record (values possibly torn).
    pub fn recoveries(&self) -> Recoveries {
        let c = &self.header().counters;
        Recoveries {
            total: c.recoveries.load(Ordering::Relaxed),
            torn: c.torn_recoveries.load(Ordering::Relaxed),
        }
    }

    /// Counts a recovery in the header.
    pub(crate) fn count_recovery(&self, torn: bool) {
        let c = &self.header().counters;
        c.recoveries.fetch_add(1, Ordering::Relaxed);
        if torn {
            c.torn_recoveries.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every process attached to the segment: registered, and neither detached (every handle
    /// dropped) nor exited normally. A process killed while attached stays listed, with
    /// [`Liveness::Dead`](crate::Liveness::Dead), until its entry is reclaimed.
    ///
    /// ```
    /// let t = shmap::ShmHashTable::<u64, u64>::anonymous(64)?;
    /// let me = std::process::id();
    /// assert!(t.segment().attached_processes().iter().any(|(_, p)| p.pid == me));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attached_processes(&self) -> Vec<(OwnerId, ProcessIdentity)> {
        self.processes().active().collect()
    }

    /// This handle's owner id, registering the process first if the handle was inherited
    /// across `fork`. Costs two relaxed loads when registered.
    #[inline]
    pub fn owner(&self) -> Result<OwnerId, RegisterError> {
        if self.read_only {
            return Err(RegisterError::ReadOnly);
        }
        let registration = self.registration.load(Ordering::Relaxed);
        if registration >> 16 == process::incarnation() {
            if let Some(owner) = OwnerId::from_bits(registration & 0xffff) {
                return Ok(owner);
            }
        }
        self.register()
    }

    #[cold]
    pub(crate) fn register(&self) -> Result<OwnerId, RegisterError> {
        let incarnation = process::incarnation();
        let current = self.registration.load(Ordering::Relaxed);
        if current >> 16 == incarnation {
            if let Some(owner) = OwnerId::from_bits(current & 0xffff) {
                return Ok(owner); // another thread registered first
            }
        }
        let me = ProcessIdentity::current().map_err(RegisterError::IdentityUnavailable)?;
        let referenced = |owner| (self.references_owner)(self, owner);
        let owner = self
            .processes()
            .register(&me, &referenced)
            .map_err(|_| RegisterError::TooManyProcesses { max: MAX_PROCESSES })?;
        let new = (incarnation << 16) | u64::from(owner.get());
        match self.registration.compare_exchange(current, new, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => {
                super::at_exit::record(&self.header().processes, owner);
                Ok(owner)
            }
            Err(winner) => {
                // Another thread of this process registered concurrently: use its entry.
                self.processes().release(owner);
                OwnerId::from_bits(winner & 0xffff)
                    .ok_or(RegisterError::TooManyProcesses { max: MAX_PROCESSES })
            }
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if !self.read_only {
            super::at_exit::forget(&self.header().processes);
        }
        let registration = *self.registration.get_mut();
        // Only the process that registered releases the entry: a handle inherited across `fork`
        // but never used there holds the parent's entry, which the parent releases.
        if registration >> 16 == process::incarnation() {
            if let Some(owner) = OwnerId::from_bits(registration & 0xffff) {
                self.processes().release(owner);
            }
        }
    }
}

#[cfg(all(test, not(miri), not(shmap_loom)))]
impl Segment {
    /// A registered owner id whose process has exited: a child that was spawned, reaped, and
    /// then registered under its pid, as if it had attached and been killed.
    pub(crate) fn register_dead_process(&self) -> OwnerId {
        let mut child = std::process::Command::new("true").spawn().expect("spawn `true`");
        let pid = child.id();
        child.wait().expect("reap `true`");
        let dead = ProcessIdentity { pid, ..ProcessIdentity::current().unwrap() };
        let owner = self.processes().register(&dead, &|_| false).expect("a free entry");
        assert_eq!(self.owner_liveness(owner), crate::Liveness::Dead);
        owner
    }
}
