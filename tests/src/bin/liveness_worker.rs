//! The processes of `tests/liveness.rs`: waiters that cannot read `/proc` (no free file
//! descriptor, or `/proc` mounted `hidepid=2` under another uid) and a holder whose main thread
//! has exited. Each must find a live holder alive or unknown, never dead, so it never robs it.
//!
//! ```text
//! liveness_worker visit-no-fds NAME KEY        lower RLIMIT_NOFILE to 0, then visit KEY (a
//!                                              live holder in another process has it): prints
//!                                              "timeout" or "robbed"
//! liveness_worker siblings-no-fds NAME RING    a thread holds key 1 of table NAME and a handle
//!                                              holds the producer role of SPSC ring RING; with
//!                                              RLIMIT_NOFILE at 0, a sibling thread's visit, a
//!                                              second handle's claim and a monitor's recover
//!                                              each report what they did
//! liveness_worker visit-hidden NAME KEY UID    in a private mount namespace with /proc mounted
//!                                              hidepid=2, as UID, visit KEY: "timeout",
//!                                              "robbed", or "unsupported WHY"
//! liveness_worker visit NAME KEY               visit KEY, which a live holder has: "timeout" or
//!                                              "robbed" (run in other namespaces by the tests)
//! liveness_worker open NAME                    open the table: "ok" or "error KIND"
//! liveness_worker nested NAME                  register, then (pid 1 of a pid namespace) fork a
//!                                              child into a new pid namespace that has no /proc
//!                                              of its own: "child ok" or "child error KIND"
//! liveness_worker unshare-time NAME          unshare(CLONE_NEWTIME) with a boottime offset for
//!                                              children, then open: "ok" or "error KIND"
//! liveness_worker relay NAME                   register, then let a relay of threads (each
//!                                              starts the next and exits) keep the process alive
//!                                              after its main thread exited, until stdin closes
//! liveness_worker rawfork-hold NAME KEY        register, fork with the raw system call (no
//!                                              atfork handlers), and hold KEY in the child until
//!                                              stdin closes ("inside", "released"); the parent
//!                                              exits at once
//! liveness_worker zombie-main NAME KEY         a thread holds KEY until stdin closes, while
//!                                              the main thread exits (exit(2), as pthread_exit does): "inside",
//!                                              then "released"
//! ```

use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

use shmap::ring::{RingError, SpscRing};
use shmap::{AccessMode, Monitor, ShmHashTable, TableError, VisitError};

type Table = ShmHashTable<u64, u64>;

/// Opens table `name` as the tests share it: possibly with other users (mode 0666, see
/// `tests/liveness.rs`), which an opener accepts only if it asks for that mode.
fn open_shared(name: &str) -> Result<Table, shmap::OpenError> {
    Table::options().mode(0o666).open(&shmap::Backing::shm(name))
}

/// How long the waiters here wait, and how often they check the holder's liveness: about 15
/// checks before they give up.
const TIMEOUT: Duration = Duration::from_millis(300);
const STALE_CHECK: Duration = Duration::from_millis(20);

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> T {
    args.get(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("argument {i} missing or invalid: {args:?}"))
}

fn open_impatient(name: &str) -> Table {
    Table::options()
        .mode(0o666) // as `open_shared`
        .timeout(TIMEOUT)
        .stale_check(STALE_CHECK)
        .open(&shmap::Backing::shm(name))
        .unwrap()
}

/// Lowers the soft limit of open files to 0: every later `open` fails with `EMFILE`.
fn exhaust_file_descriptors() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid out-pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    limit.rlim_cur = 0;
    // SAFETY: `limit` is a valid, initialised rlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
    assert!(std::fs::File::open("/proc/self/stat").is_err(), "file descriptors are exhausted");
}

/// Visits `key`, writing 51: a waiter that wrongly finds the holder dead recovers its slot and
/// commits, and the holder's write-back later overwrites the 51.
fn visit_report(table: &Table, key: u64) -> &'static str {
    match table.visit(&key, AccessMode::AccessExist, |_, v, _| *v = 51) {
        Ok(_) => "robbed",
        Err(VisitError::Table(TableError::Timeout { .. })) => "timeout",
        Err(e) => panic!("unexpected error: {e}"),
    }
}

/// Holds `key` inside a visitor ("inside") until stdin closes, then adds 1 ("released").
fn hold_until_stdin_closes(table: &Table, key: u64) {
    table
        .visit(&key, AccessMode::AccessExist, |_, v, _| {
            println!("inside");
            let mut rest = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut rest);
            *v += 1;
        })
        .unwrap();
    println!("released");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str).unwrap_or("");
    let name = args.get(1).cloned().unwrap_or_default();
    match command {
        "visit-no-fds" => {
            let table = open_impatient(&name);
            exhaust_file_descriptors();
            println!("{}", visit_report(&table, arg(&args, 2)));
        }
        "visit" => println!("{}", visit_report(&open_impatient(&name), arg(&args, 2))),
        "open" => match open_shared(&name) {
            Ok(_) => println!("ok"),
            Err(e) => println!("error {:?}", e.kind()),
        },
        "nested" => nested_pid_namespace(&name),
        "unshare-time" => {
            // SAFETY: a plain system call in a single-threaded process.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWTIME) }, 0, "unshare(CLONE_NEWTIME)");
            std::fs::write("/proc/self/timens_offsets", "boottime 1000 0\n").unwrap();
            match open_shared(&name) {
                Ok(_) => println!("ok"),
                Err(e) => println!("error {:?}", e.kind()),
            }
        }
        "relay" => relay(&name),
        "rawfork-hold" => rawfork_hold(&name, arg(&args, 2)),
        "siblings-no-fds" => siblings_without_file_descriptors(&name, &args[2]),
        "visit-hidden" => {
            let (key, uid): (u64, u32) = (arg(&args, 2), arg(&args, 3));
            if let Err(why) = hide_proc_and_become(uid) {
                println!("unsupported {why}");
                return;
            }
            let table = open_impatient(&name);
            println!("{}", visit_report(&table, key));
        }
        "zombie-main" => {
            let table = open_shared(&name).unwrap();
            let key: u64 = arg(&args, 2);
            std::thread::spawn(move || {
                hold_until_stdin_closes(&table, key);
                // The last thread: ends the process with status 0.
                std::process::exit(0);
            });
            // What `pthread_exit` does in the kernel, without its forced unwinding (which Rust's
            // `main` frames refuse with an abort): `exit(2)` ends only the calling thread, and
            // the process lives on in the thread above with a zombie main thread.
            // SAFETY: nothing on this thread's stack is used after it ends (the table was moved
            // into the thread above); the raw syscall runs no destructors.
            unsafe { libc::syscall(libc::SYS_exit, 0) };
            unreachable!("exit(2) does not return");
        }
        other => panic!("unknown liveness_worker command {other:?}"),
    }
}

fn siblings_without_file_descriptors(name: &str, ring_name: &str) {
    let table = open_impatient(name);
    let (inside_tx, inside) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let table = &table;
        let holder = s.spawn(move || {
            table
                .visit(&1, AccessMode::AccessExist, |_, v, _| {
                    inside_tx.send(()).unwrap();
                    let _ = released.recv();
                    *v += 1;
                })
                .unwrap();
        });
        inside.recv().unwrap();
        // Two handles of one ring: two registrations, so two owner ids of this one process.
        let ring = SpscRing::<u64>::open(ring_name).unwrap();
        let other = SpscRing::<u64>::open(ring_name).unwrap();
        let producer = ring.producer().unwrap();
        let mut monitor = Monitor::new(table);
        let report = monitor.poll(Duration::ZERO).pop().expect("the held slot is reported");

        exhaust_file_descriptors();
        println!("visit {}", visit_report(table, 1));
        match other.producer() {
            Err(RingError::RoleTaken { .. }) => println!("claim refused"),
            Ok(_) => println!("claim took over"),
            Err(e) => panic!("unexpected error: {e}"),
        }
        match monitor.recover(&report) {
            Ok(action) => println!("recover {action:?}"),
            Err(e) => println!("recover refused: {e}"),
        }
        drop(producer);
        release.send(()).unwrap();
        holder.join().unwrap();
    });
    println!("value {}", table.get(&1).unwrap().unwrap());
}

/// Keeps a table handle alive in a relay of threads while the main thread has exited: the
/// process lives on with a zombie leader and a changing set of threads.
fn relay(name: &str) {
    let table = open_shared(name).unwrap();
    println!("registered");
    // No thread waits on stdin (a thread that stays would make the process trivially alive):
    // each hop polls it without blocking, and the relay ends at its end.
    // SAFETY: plain `fcntl` on our own stdin.
    let flags = unsafe { libc::fcntl(0, libc::F_GETFL) };
    // SAFETY: as above.
    unsafe { libc::fcntl(0, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    /// Each hop carries the handle (so the registration lives on), starts the next, and exits.
    fn hop(_table: Table) {
        let mut byte = [0u8; 1];
        // SAFETY: reads at most one byte into a valid buffer.
        if unsafe { libc::read(0, byte.as_mut_ptr().cast(), 1) } == 0 {
            std::process::exit(0); // end of stdin
        }
        std::thread::spawn(move || hop(_table));
    }
    hop(table);
    // SAFETY: as in `zombie-main`: ends only the main thread, whose stack nothing else uses.
    unsafe { libc::syscall(libc::SYS_exit, 0) };
    unreachable!("exit(2) does not return");
}

/// Registers, then forks with the raw system call, which runs no `pthread_atfork` handler: the
/// child must still notice that it is another process and register anew, so that its lock
/// names it and not its (exiting) parent.
fn rawfork_hold(name: &str, key: u64) {
    let table = open_shared(name).unwrap();
    let _ = table.segment().owner().unwrap();
    // SAFETY: the worker is single-threaded; the child only uses what it inherited.
    match unsafe { libc::syscall(libc::SYS_fork) } {
        0 => hold_until_stdin_closes(&table, key),
        -1 => panic!("fork failed"),
        // The parent leaves at once, without dropping its handle (as a crash would).
        _ => std::process::exit(0),
    }
}

/// Registers (caching this process's identity), then forks a child into a new pid namespace
/// without a `/proc` of its own: the child must read its own identity, find that `/proc` is
/// not its namespace's, and refuse to register, rather than reuse the parent's identity (same
/// pid number, 1) and misjudge every holder from there.
fn nested_pid_namespace(name: &str) {
    let table = open_shared(name).unwrap();
    table.get(&1).unwrap();
    let _ = table.segment().owner().unwrap();
    // SAFETY: a plain system call; afterwards only our children are in the new namespace.
    assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWPID) }, 0, "unshare(CLONE_NEWPID)");
    // SAFETY: the worker is single-threaded, so the child may do anything after `fork`.
    match unsafe { libc::fork() } {
        0 => {
            match open_shared(name) {
                Ok(t) => match t.segment().owner() {
                    Ok(_) => println!("child ok"),
                    Err(e) => println!("child error {e:?}"),
                },
                Err(e) => println!("child error {:?}", e.kind()),
            }
            std::process::exit(0);
        }
        -1 => panic!("fork failed"),
        child => {
            let mut status = 0;
            // SAFETY: `child` is our child; `status` is a valid out-pointer.
            unsafe { libc::waitpid(child, &mut status, 0) };
        }
    }
}

/// Enters a private mount namespace, mounts a `/proc` that hides other users' processes, and
/// becomes `uid`.
fn hide_proc_and_become(uid: u32) -> Result<(), String> {
    let fail = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    // SAFETY: a plain system call; the worker is single-threaded, as `CLONE_NEWNS` needs.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(fail("unshare"));
    }
    let private = libc::MS_REC | libc::MS_PRIVATE;
    let null = std::ptr::null();
    // SAFETY: NUL-terminated strings and null pointers where `mount(2)` allows them.
    if unsafe { libc::mount(c"none".as_ptr(), c"/".as_ptr(), null, private, null.cast()) } != 0 {
        return Err(fail("mount --make-rprivate /"));
    }
    let (proc_, options) = (c"proc".as_ptr(), c"hidepid=2".as_ptr().cast());
    // SAFETY: as above; this mount is private to the new namespace.
    if unsafe { libc::mount(proc_, c"/proc".as_ptr(), proc_, 0, options) } != 0 {
        return Err(fail("mount proc hidepid=2"));
    }
    // SAFETY: plain system calls.
    if unsafe { libc::setgid(uid) } != 0 || unsafe { libc::setuid(uid) } != 0 {
        return Err(fail("setuid"));
    }
    Ok(())
}
