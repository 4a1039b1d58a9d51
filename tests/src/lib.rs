//! Helpers shared by the integration tests in `tests/`: unique segment names that are removed
//! even when a test fails, children that are killed if a test fails, and the `worker` binary
//! (`src/bin/worker.rs`) that the tests run as other processes.

use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use shmap::{Backing, ShmValue};

/// Processes in the chaos test.
pub const CHAOS_PROCESSES: usize = 4;

/// A counter for the chaos test (`tests/chaos.rs`): how many increments it received, and for
/// each process the sequence number of its last increment on this key. A process logs each
/// increment's sequence number before it visits, so after a kill its last logged increment is
/// known to have committed exactly when `last_seq[process]` reached it.
#[derive(ShmValue, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Tally {
    /// Increments received.
    pub count: u64,
    /// Per process, the sequence number of its last committed increment on this key.
    pub last_seq: [u64; CHAOS_PROCESSES],
}

/// The element that tells a ring consumer in the tests to stop.
pub const STOP: u64 = u64::MAX;

/// A 64-bit mix (splitmix64's finaliser): the tests sum it over every element received, so
/// that a lost element and a duplicated one cannot cancel out as they could in a plain sum.
pub fn mix(v: u64) -> u64 {
    let mut z = v.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The README's examples, compiled and run as doctests of this crate.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// A `Command` for the `worker` binary of this package (only usable from integration tests,
/// where Cargo sets `CARGO_BIN_EXE_worker`).
#[macro_export]
macro_rules! worker {
    ($($arg:expr),* $(,)?) => {{
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_worker"));
        $(command.arg($arg);)*
        command
    }};
}

/// A `Command` for the `ring_worker` binary of this package (see `src/bin/ring_worker.rs`).
#[macro_export]
macro_rules! ring_worker {
    ($($arg:expr),* $(,)?) => {{
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ring_worker"));
        $(command.arg($arg);)*
        command
    }};
}

/// A `Command` for the `cache_worker` binary of this package (see `src/bin/cache_worker.rs`).
#[macro_export]
macro_rules! cache_worker {
    ($($arg:expr),* $(,)?) => {{
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cache_worker"));
        $(command.arg($arg);)*
        command
    }};
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{}-{}-{nanos:x}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A POSIX shared-memory name unique to this test run, unlinked when dropped (also when the
/// test panics).
pub struct ShmName(String);

impl ShmName {
    /// A fresh name containing `tag`.
    pub fn new(tag: &str) -> Self {
        ShmName(format!("/shmap-test-{tag}-{}", unique_suffix()))
    }

    /// The name, with its leading `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The backing for this name.
    pub fn backing(&self) -> Backing {
        Backing::shm(&self.0)
    }

    /// The object's path in `/dev/shm`.
    pub fn path(&self) -> PathBuf {
        Path::new(shmap::segment::SHM_DIR).join(&self.0[1..])
    }
}

impl Drop for ShmName {
    fn drop(&mut self) {
        let _ = shmap::segment::Segment::unlink(&self.backing());
    }
}

/// A temporary directory, removed with its contents when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// A fresh directory under the system's temporary directory.
    pub fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!("shmap-test-{tag}-{}", unique_suffix()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process that is killed and reaped if it is still running when dropped, so a failed
/// test leaves no process behind.
pub struct Worker {
    child: Child,
    lines: Option<Lines<BufReader<ChildStdout>>>,
}

impl Worker {
    /// Starts `command` with piped stdin and stdout.
    pub fn spawn(mut command: Command) -> Self {
        command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
        let mut child = command.spawn().expect("start the worker");
        let lines = child.stdout.take().map(|out| BufReader::new(out).lines());
        Worker { child, lines }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line the child prints, or `None` if it exits (closes its stdout) first.
    pub fn try_line(&mut self) -> Option<String> {
        self.lines.as_mut().and_then(Iterator::next).map(|l| l.expect("read the worker's output"))
    }

    /// The next line the child prints; panics if it exits first.
    pub fn line(&mut self) -> String {
        match self.lines.as_mut().and_then(Iterator::next) {
            Some(line) => line.expect("read the worker's output"),
            None => panic!("the worker exited without printing: {:?}", self.child.try_wait()),
        }
    }

    /// Reads lines until one starts with `prefix`, and returns the rest of it.
    pub fn expect(&mut self, prefix: &str) -> String {
        loop {
            let line = self.line();
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.trim().to_owned();
            }
        }
    }

    /// Closes the child's stdin (workers that hold something release it on EOF).
    pub fn close_stdin(&mut self) {
        drop(self.child.stdin.take());
    }

    /// Sends a signal to the child.
    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: `pid` is our own unreaped child, so it cannot have been reused.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// The child's exit status, if it has exited (without waiting).
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("query the worker")
    }

    /// Waits for the child to exit (at most `timeout`) and returns whether it succeeded.
    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < timeout,
                "worker {} still running after {timeout:?}",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for a successful exit.
    pub fn finish(mut self) {
        let status = self.wait(Duration::from_secs(60));
        assert!(status.success(), "worker {} failed: {status}", self.pid());
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Makes `command`'s child find `fd` as its descriptor `target` (not close-on-exec), the way a
/// parent hands a memfd table to a child it `exec`s.
pub fn pass_fd(command: &mut Command, fd: std::os::fd::BorrowedFd<'_>, target: i32) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let raw = fd.as_raw_fd();
    let dup2 = move || {
        // `dup2` onto itself changes nothing, FD_CLOEXEC included: clear the flag instead.
        let done = if raw == target {
            // SAFETY: `fcntl` has no memory-safety preconditions and is async-signal-safe (this
            // runs between fork and exec).
            unsafe { libc::fcntl(raw, libc::F_SETFD, 0) }
        } else {
            // SAFETY: as above, for `dup2`, which leaves the new descriptor without
            // FD_CLOEXEC.
            unsafe { libc::dup2(raw, target) }
        };
        if done == -1 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the closure only calls `dup2` or `fcntl` (see above).
    unsafe { command.pre_exec(dup2) };
}

/// The control buffer of a message carrying one descriptor: `u64` words, so that it is aligned
/// for `cmsghdr`.
type Control = [u64; 8];

/// A message header for one byte in `byte` and control messages in `control`.
fn message(byte: &mut [u8; 1], iov: &mut libc::iovec, control: &mut Control) -> libc::msghdr {
    *iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: `msghdr` is plain data, for which all zeroes is a valid (empty) value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(control);
    msg
}

/// Sends descriptor `fd` over the unix socket `socket` (`SCM_RIGHTS`), with one byte of data.
pub fn send_fd(socket: &std::os::unix::net::UnixStream, fd: std::os::fd::BorrowedFd<'_>) {
    use std::os::fd::AsRawFd;
    let (mut byte, mut control) = ([0u8; 1], [0u64; 8]);
    let mut iov = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
    let mut msg = message(&mut byte, &mut iov, &mut control);
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(size_of::<libc::c_int>() as u32) };
    msg.msg_controllen = space as usize;
    // SAFETY: `msg` has a control buffer of `msg_controllen` bytes (at most the buffer's size).
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    assert!(!cmsg.is_null());
    // SAFETY: CMSG_LEN only computes a size.
    let len = unsafe { libc::CMSG_LEN(size_of::<libc::c_int>() as u32) };
    let header = libc::cmsghdr {
        cmsg_len: len as usize,
        cmsg_level: libc::SOL_SOCKET,
        cmsg_type: libc::SCM_RIGHTS,
    };
    // SAFETY: `cmsg` points to the start of the control buffer, aligned and large enough for a
    // header (CMSG_FIRSTHDR returned it for a buffer of CMSG_SPACE bytes).
    unsafe { cmsg.write(header) };
    // SAFETY: CMSG_DATA of a header in a buffer of CMSG_SPACE(size of an fd) bytes points to
    // room for one fd.
    let data = unsafe { libc::CMSG_DATA(cmsg) };
    // SAFETY: see above; unaligned, since CMSG_DATA promises no alignment for an int.
    unsafe { data.cast::<libc::c_int>().write_unaligned(fd.as_raw_fd()) };
    // SAFETY: `msg` points to live buffers described by their lengths.
    let sent = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, 0) };
    assert_eq!(sent, 1, "sendmsg: {}", std::io::Error::last_os_error());
}

/// Receives a descriptor sent with [`send_fd`] over the unix socket `socket`.
pub fn recv_fd(socket: &std::os::unix::net::UnixStream) -> std::os::fd::OwnedFd {
    use std::os::fd::{AsRawFd, FromRawFd};
    let (mut byte, mut control) = ([0u8; 1], [0u64; 8]);
    let mut iov = libc::iovec { iov_base: std::ptr::null_mut(), iov_len: 0 };
    let mut msg = message(&mut byte, &mut iov, &mut control);
    // SAFETY: `msg` points to live buffers described by their lengths.
    let got = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    assert_eq!(got, 1, "recvmsg: {}", std::io::Error::last_os_error());
    // SAFETY: the kernel filled `msg_controllen` bytes of the control buffer.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    assert!(!cmsg.is_null(), "no descriptor came with the message");
    // SAFETY: a non-null first header lies, aligned, in the control buffer.
    let header = unsafe { cmsg.read() };
    assert_eq!((header.cmsg_level, header.cmsg_type), (libc::SOL_SOCKET, libc::SCM_RIGHTS));
    // SAFETY: an SCM_RIGHTS message's data holds the descriptors.
    let data = unsafe { libc::CMSG_DATA(cmsg) };
    // SAFETY: see above; unaligned, since CMSG_DATA promises no alignment for an int.
    let fd = unsafe { data.cast::<libc::c_int>().read_unaligned() };
    // SAFETY: the kernel installed `fd` in this process for us; nothing else owns it.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}
