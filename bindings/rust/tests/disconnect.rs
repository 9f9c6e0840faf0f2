//! A peer that goes away mid-transfer ends it with EPIPE or ECONNRESET, and
//! does not kill the process with SIGPIPE even under the default SIGPIPE
//! action (this test binary restores it; Rust programs otherwise ignore it).

mod common;

use std::io::Read;
use std::os::raw::c_int;

use common::*;
use evsendfile::{send, Error, EventLoop, Options, Region};

extern "C" {
    fn signal(signum: c_int, handler: usize) -> usize;
}
const SIG_DFL: usize = 0;

fn peer_leaves_mid_way(opts: Options<'_>) {
    // SAFETY: installing the default action has no preconditions; all tests in this binary want it.
    unsafe { signal(c::SIGPIPE as c_int, SIG_DFL) };
    let file = TempFile::sparse(64 * 1024 * 1024);
    let (server, mut client) = tcp_pair();
    // Reads a little, then closes with unread data pending: the kernel resets the connection.
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        client.read_exact(&mut buf).map(|_| drop(client))
    });
    let lp = EventLoop::new().unwrap();
    let out = Outcome::new();
    let t = send(&lp, &server, &Region::path(file.path()), &opts, out.callback()).unwrap();
    lp.run().unwrap();
    reader.join().unwrap().unwrap();
    let res = out.get().expect("done must run");
    let (epipe, econnreset) = (Error::Os(errno(c::EPIPE)), Error::Os(errno(c::ECONNRESET)));
    assert!(res == Err(epipe) || res == Err(econnreset), "got {res:?}");
    assert!(t.body_sent() >= 64 * 1024 && t.body_sent() < 64 * 1024 * 1024);
}

#[test]
fn sendfile_path_reports_the_disconnect() {
    // The peer is on loopback, which would take the copy path: force sendfile.
    peer_leaves_mid_way(Options::new().head(b"HEAD").force_sendfile(true));
}

#[test]
fn copy_path_reports_the_disconnect() {
    peer_leaves_mid_way(Options::new().no_sendfile(true));
}
