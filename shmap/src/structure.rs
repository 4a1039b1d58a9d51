//! What every structure over a segment shares: capacity rounding and the builder setters of
//! their options (one macro each for the segment's and the wait's, so that the table's, the
//! rings' and the vector's options read alike and cannot drift apart).
//!
//! An options type that uses [`segment_setters!`] has a `segment: SegmentOptions` field; one
//! that uses [`wait_setters!`] has a `wait: Wait` field.

use crate::error::OpenErrorKind;

/// `n` rounded up to a power of two, or why it cannot be the capacity of a `structure`
/// ("table", "ring", "vector") of `unit`s ("slot", "element").
pub(crate) fn round_capacity(n: usize, structure: &str, unit: &str) -> Result<u64, OpenErrorKind> {
    let invalid = |why: String| OpenErrorKind::InvalidOptions(format!("capacity {n}: {why}"));
    if n == 0 {
        return Err(invalid(format!("a {structure} needs at least one {unit}")));
    }
    let rounded = n.checked_next_power_of_two().ok_or_else(|| invalid("too large".into()))?;
    u64::try_from(rounded).map_err(|_| invalid("too large".into()))
}

/// The setters of the segment options, for the options of structure `$what` ("table",
/// "ring", "vector").
macro_rules! segment_setters {
    ($what:literal) => {
        #[doc = concat!("The permission bits of a new ", $what, "'s segment (default `0o600`), applied exactly.")]
        pub fn mode(mut self, mode: u32) -> Self {
            self.segment.mode = mode;
            self
        }

        #[doc = concat!("Whether the open may create the ", $what, ", must create it, or must find it.")]
        pub fn create(mut self, create: $crate::CreateMode) -> Self {
            self.segment.create = create;
            self
        }

        #[doc = concat!("Fault the whole ", $what, " in when it is opened (see [`SegmentOptions::prefault`](crate::segment::SegmentOptions::prefault)).")]
        pub fn prefault(mut self, prefault: bool) -> Self {
            self.segment.prefault = prefault;
            self
        }

        /// Ask for transparent huge pages (see
        /// [`SegmentOptions::huge_pages`](crate::segment::SegmentOptions::huge_pages)); falls
        /// back silently, and [`Segment::huge_pages`](crate::Segment::huge_pages) reports what
        /// happened.
        pub fn huge_pages(mut self, huge_pages: bool) -> Self {
            self.segment.huge_pages = huge_pages;
            self
        }

        /// How long an open keeps retrying while other processes create and remove the same name.
        pub fn open_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.segment.open_timeout = timeout;
            self
        }
    };
}
pub(crate) use segment_setters;

/// The setters of the wait of a structure's blocking operations: `$busy` says what they wait
/// on ("a locked slot", "a cell claimed by another process").
macro_rules! wait_setters {
    ($busy:literal) => {
        /// The default timeout of this handle's blocking operations (default 5 s).
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.wait.timeout = timeout;
            self
        }

        /// How this handle's blocking operations wait between attempts.
        pub fn backoff(mut self, backoff: $crate::Backoff) -> Self {
            self.wait.backoff = backoff;
            self
        }

        #[doc = concat!("How long an operation waits on ", $busy, " before it checks whether its holder is")]
        /// alive, and recovers what the holder left if it is dead (default 100 ms).
        pub fn stale_check(mut self, interval: std::time::Duration) -> Self {
            self.wait.stale_check = interval;
            self
        }
    };
}
pub(crate) use wait_setters;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_round_up_and_zero_is_refused() {
        assert_eq!(round_capacity(1000, "table", "slot").unwrap(), 1024);
        assert_eq!(round_capacity(1, "table", "slot").unwrap(), 1);
        let err = round_capacity(0, "ring", "element").unwrap_err().to_string();
        assert_eq!(err, "invalid options: capacity 0: a ring needs at least one element");
        assert!(round_capacity(usize::MAX, "table", "slot").is_err());
    }
}
