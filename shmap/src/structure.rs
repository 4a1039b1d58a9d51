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
/// "ring", "vector"); `$options` is an expression that makes such options, for the examples.
macro_rules! segment_setters {
    ($what:literal, $options:literal) => {
        #[doc = concat!("The permission bits of a new ", $what, "'s segment (default `0o600`), applied exactly.")]
        ///
        /// Also the most an existing segment may let group and others write: one writable by
        /// them beyond this mode is refused (it could have been planted by another user).
        ///
        /// # Examples
        ///
        /// ```
        /// use std::os::unix::fs::PermissionsExt;
        ///
        /// # let name = format!("/shmap-doc-mode-{}", std::process::id());
        #[doc = concat!("let x = ", $options, ".mode(0o640).open(&shmap::Backing::shm(&name))?;")]
        /// let mode = std::fs::metadata(format!("/dev/shm{name}"))?.permissions().mode();
        /// assert_eq!(mode & 0o777, 0o640);
        /// x.destroy()?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn mode(mut self, mode: u32) -> Self {
            self.segment.mode = mode;
            self
        }

        /// Also accept an existing segment owned by another user of group `gid`, provided
        /// others may not write to it (see
        /// [`SegmentOptions::shared_group`](crate::segment::SegmentOptions::shared_group));
        /// without it, one owned by another user than this process's or root is refused.
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!("let x = ", $options, ".mode(0o660).shared_group(0).open(&shmap::Backing::Heap)?;")]
        /// assert!(x.segment().info().total_size > 0);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn shared_group(mut self, gid: u32) -> Self {
            self.segment.shared_group = Some(gid);
            self
        }

        #[doc = concat!("Whether the open may create the ", $what, ", must create it, or must find it.")]
        ///
        /// # Examples
        ///
        /// ```
        /// use shmap::{Backing, CreateMode};
        ///
        /// # let name = format!("/shmap-doc-create-{}", std::process::id());
        #[doc = concat!("let missing = ", $options, ".create(CreateMode::OpenExisting).open(&Backing::shm(&name));")]
        /// assert!(missing.is_err(), "OpenExisting never creates");
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn create(mut self, create: $crate::CreateMode) -> Self {
            self.segment.create = create;
            self
        }

        #[doc = concat!("Fault the whole ", $what, " in when it is opened (see [`SegmentOptions::prefault`](crate::segment::SegmentOptions::prefault)).")]
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!("let x = ", $options, ".prefault(true).open(&shmap::Backing::Heap)?; // every page touched at open")]
        /// assert!(x.segment().info().total_size > 0);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn prefault(mut self, prefault: bool) -> Self {
            self.segment.prefault = prefault;
            self
        }

        /// Ask for transparent huge pages (see
        /// [`SegmentOptions::huge_pages`](crate::segment::SegmentOptions::huge_pages)); falls
        /// back silently, and [`Segment::huge_pages`](crate::Segment::huge_pages) reports what
        /// happened.
        ///
        /// # Examples
        ///
        /// ```
        #[doc = concat!("let x = ", $options, ".huge_pages(true).open(&shmap::Backing::Heap)?;")]
        /// println!("huge pages: {:?}", x.segment().huge_pages()); // what the kernel gave
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn huge_pages(mut self, huge_pages: bool) -> Self {
            self.segment.huge_pages = huge_pages;
            self
        }

        /// How long an open keeps retrying while other processes create and remove the same name.
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        ///
        #[doc = concat!("let x = ", $options, ".open_timeout(Duration::from_millis(200)).open(&shmap::Backing::Heap)?;")]
        /// assert!(x.segment().info().total_size > 0);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn open_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.segment.open_timeout = timeout;
            self
        }
    };
}
pub(crate) use segment_setters;

/// The setters of the wait of a structure's blocking operations: `$busy` says what they wait
/// on ("a locked slot", "a cell claimed by another process"); `$options` is an expression that
/// makes such options, for the examples.
macro_rules! wait_setters {
    ($busy:literal, $options:literal) => {
        /// The default timeout of this handle's blocking operations (default 5 s).
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        ///
        #[doc = concat!("let x = ", $options, ".timeout(Duration::from_millis(20)).open(&shmap::Backing::Heap)?;")]
        /// assert!(x.segment().info().total_size > 0); // its waits now give up after 20 ms
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.wait.timeout = timeout;
            self
        }

        /// How this handle's blocking operations wait between attempts.
        ///
        /// # Examples
        ///
        /// ```
        /// use shmap::Backoff;
        ///
        /// let spin_longer = Backoff::new().spin_steps(64);
        #[doc = concat!("let x = ", $options, ".backoff(spin_longer).open(&shmap::Backing::Heap)?;")]
        /// assert!(x.segment().info().total_size > 0);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn backoff(mut self, backoff: $crate::Backoff) -> Self {
            self.wait.backoff = backoff;
            self
        }

        #[doc = concat!("How long an operation waits on ", $busy, " before it checks whether its holder is")]
        /// alive, and recovers what the holder left if it is dead (default 100 ms).
        ///
        /// # Examples
        ///
        /// ```
        /// use std::time::Duration;
        ///
        #[doc = concat!("let x = ", $options, ".stale_check(Duration::from_millis(10)).open(&shmap::Backing::Heap)?;")]
        /// assert!(x.segment().info().total_size > 0); // dead holders are checked for after 10 ms
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
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
