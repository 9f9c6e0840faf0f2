//! Helpers shared by the tests: patterned and sparse files, loopback TCP and
//! Unix socket pairs, readers, runtimes, descriptor counts.
#![allow(dead_code)]

#[path = "../../../tests/common/files.rs"]
mod files;
#[allow(unused_imports)] // not every test uses every helper
pub use files::*;

use std::os::fd::AsRawFd;
use std::os::raw::c_int;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream, UnixStream};

/// Generous guard so a broken test fails instead of hanging.
pub const GUARD: Duration = Duration::from_secs(120);

pub async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (server, client)
}

/// A loopback pair whose client has a small receive buffer, set before connecting so that the
/// advertised window follows it: each few KiB the client reads reopen the window and leave the
/// server's send queue (an autotuned one takes ~64 KiB of reads per window update).
pub async fn tcp_pair_small_rcvbuf(bytes: u32) -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(bytes).unwrap();
    let client = socket.connect(listener.local_addr().unwrap()).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (server, client)
}

pub fn unix_pair() -> (UnixStream, UnixStream) {
    UnixStream::pair().unwrap()
}

/// Reads to EOF (bounded by GUARD).
pub async fn read_all<R: tokio::io::AsyncRead + Unpin>(mut r: R) -> Vec<u8> {
    let mut v = Vec::new();
    tokio::time::timeout(GUARD, r.read_to_end(&mut v)).await.expect("reader timed out").unwrap();
    v
}

pub fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

pub fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

extern "C" {
    fn signal(signum: c_int, handler: usize) -> usize;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
}

/// Restores the default SIGPIPE action (Rust programs start with it ignored).
pub fn default_sigpipe() {
    const SIGPIPE: c_int = 13;
    // SAFETY: installing the default action has no preconditions.
    unsafe { signal(SIGPIPE, 0) };
}

pub fn set_nonblocking<F: AsRawFd>(f: &F) {
    const F_GETFL: c_int = 3;
    const F_SETFL: c_int = 4;
    const O_NONBLOCK: c_int = 0o4000;
    // SAFETY: fcntl on a descriptor we own; F_GETFL/F_SETFL take an int.
    unsafe {
        let fl = fcntl(f.as_raw_fd(), F_GETFL);
        assert!(fl >= 0);
        assert_eq!(fcntl(f.as_raw_fd(), F_SETFL, fl | O_NONBLOCK), 0);
    }
}
