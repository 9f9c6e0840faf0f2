//! Helpers shared by the integration tests: patterned files, loopback
//! connections, a reader thread, a completion recorder, bounded loop runs.
#![allow(dead_code)]

mod files;
#[allow(unused_imports)] // not every test uses every helper
pub use files::*;

use std::cell::Cell;
use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use evsendfile::{Error, EventLoop};

/// Values the C compiler reported (written by build.rs from probe/layout.c).
pub mod c {
    #![allow(dead_code, non_upper_case_globals)]
    include!(concat!(env!("OUT_DIR"), "/c_layout.rs"));
}

pub fn errno(v: i128) -> i32 {
    v as i32
}

/// EVSENDFILE_NO_SENDFILE=1 makes the library take the copy path everywhere.
pub fn sendfile_disabled_by_env() -> bool {
    std::env::var("EVSENDFILE_NO_SENDFILE").map(|v| !v.is_empty() && v != "0").unwrap_or(false)
}

/// Generous guard so a broken test fails instead of hanging.
pub const GUARD: Duration = Duration::from_secs(60);

/// A connected loopback pair: (server side, non-blocking; client side, blocking).
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    client.set_read_timeout(Some(GUARD)).unwrap();
    (server, client)
}

/// Reads everything until EOF on a thread.
pub fn read_all(mut client: TcpStream) -> JoinHandle<io::Result<Vec<u8>>> {
    thread::spawn(move || {
        let mut v = Vec::new();
        client.read_to_end(&mut v)?;
        Ok(v)
    })
}

/// Records the completion closure's argument (and that it ran once).
#[derive(Clone, Default)]
pub struct Outcome(Rc<Cell<Option<Result<u64, Error>>>>, Rc<Cell<u32>>);

impl Outcome {
    pub fn new() -> Outcome {
        Outcome::default()
    }

    pub fn callback(&self) -> impl FnOnce(Result<u64, Error>) + 'static {
        let me = self.clone();
        move |r| {
            me.1.set(me.1.get() + 1);
            me.0.set(Some(r));
        }
    }

    pub fn calls(&self) -> u32 {
        self.1.get()
    }

    pub fn get(&self) -> Option<Result<u64, Error>> {
        self.0.get()
    }
}

/// Turns the loop (bounded in count and time) until `done()`; returns the turns taken.
pub fn run_until(lp: &EventLoop, mut done: impl FnMut() -> bool) -> usize {
    let start = Instant::now();
    for turn in 0..10_000_000 {
        if done() {
            if std::env::var_os("EVENT_EPOLL_USE_CHANGELIST").is_some() {
                // With libevent's changelist, finished transfers' descriptors close on a later turn.
                lp.run().unwrap();
            }
            return turn;
        }
        assert!(start.elapsed() < GUARD, "loop did not finish within {GUARD:?}");
        assert!(lp.run_once().unwrap(), "nothing pending, but not done");
    }
    panic!("too many loop turns");
}

/// Sets a flag when dropped (to see whether a closure was dropped unrun).
pub struct DropFlag(pub Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// poll(2) on one descriptor, without libc: waits until `events` (POLLIN / POLLOUT) or GUARD passes.
pub fn wait_fd(fd: std::os::fd::RawFd, events: i16) {
    #[repr(C)]
    struct PollFd {
        fd: std::os::raw::c_int,
        events: std::os::raw::c_short,
        revents: std::os::raw::c_short,
    }
    extern "C" {
        fn poll(fds: *mut PollFd, n: std::os::raw::c_ulong, timeout_ms: std::os::raw::c_int) -> std::os::raw::c_int;
    }
    let mut p = PollFd { fd, events, revents: 0 };
    // SAFETY: one valid pollfd.
    let rc = unsafe { poll(&mut p, 1, GUARD.as_millis() as i32) };
    assert_eq!(rc, 1, "poll timed out or failed");
}
pub const POLLIN: i16 = 0x1;
pub const POLLOUT: i16 = 0x4;
