//! Every path closes exactly what it opened: the transfer's duplicates of the
//! socket and the file, library-opened files, the loop's own descriptors.
//! One test in its own binary, so no other test opens descriptors meanwhile.

mod common;

use std::time::Duration;

use common::*;
use evsendfile::{send, EventLoop, Options, Region};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn complete(region_by_path: bool) {
    let file = TempFile::with(&pattern(3 * 1024 * 1024));
    let f = file.open();
    let (server, client) = tcp_pair();
    let reader = read_all(client);
    let lp = EventLoop::new().unwrap();
    let out = Outcome::new();
    let region = if region_by_path { Region::path(file.path()) } else { Region::fd(&f) };
    let _t = send(&lp, &server, &region, &Options::new().head(b"h"), out.callback()).unwrap();
    lp.run().unwrap();
    assert_eq!(out.get(), Some(Ok(3 * 1024 * 1024)));
    drop(server);
    reader.join().unwrap().unwrap();
}

fn cancel_mid_way() {
    let file = TempFile::sparse(64 * 1024 * 1024);
    let f = file.open();
    let (server, _client) = tcp_pair();
    let lp = EventLoop::new().unwrap();
    let t = send(&lp, &server, &Region::fd(&f), &Options::new().max_chunk(64 * 1024), |_| panic!("cancelled")).unwrap();
    assert!(lp.run_once().unwrap());
    drop(t);
}

fn sync_errors() {
    let file = TempFile::with(b"abc");
    let f = file.open();
    let (server, _client) = tcp_pair();
    let lp = EventLoop::new().unwrap();
    assert!(send(&lp, &server, &Region::path("/nonexistent/x"), &Options::new(), |_| {}).is_err());
    assert!(send(&lp, &server, &Region::fd(&f).offset(4), &Options::new(), |_| {}).is_err());
    server.set_nonblocking(false).unwrap();
    assert!(send(&lp, &server, &Region::fd(&f), &Options::new(), |_| {}).is_err());
}

fn timeout() {
    let file = TempFile::sparse(64 * 1024 * 1024);
    let (server, _client) = tcp_pair();
    let lp = EventLoop::new().unwrap();
    let out = Outcome::new();
    let opts = Options::new().head(b"h").idle_timeout(Duration::from_millis(20));
    let _t = send(&lp, &server, &Region::path(file.path()), &opts, out.callback()).unwrap();
    lp.run().unwrap();
    assert_eq!(out.get(), Some(Err(evsendfile::Error::TimedOut)));
}

fn loop_dropped_then_transfer() {
    let file = TempFile::sparse(64 * 1024 * 1024);
    let (server, _client) = tcp_pair();
    let lp = EventLoop::new().unwrap();
    let t = send(&lp, &server, &Region::path(file.path()), &Options::new(), |_| {}).unwrap();
    drop(lp);
    drop(t);
}

fn completion_seen_with_run_once() {
    // Done runs inside run_once; the duplicates must be closed when it returns.
    let file = TempFile::with(b"abc");
    let (server, client) = tcp_pair();
    let lp = EventLoop::new().unwrap();
    let out = Outcome::new();
    let _t = send(&lp, &server, &Region::path(file.path()), &Options::new(), out.callback()).unwrap();
    run_until(&lp, || out.calls() == 1);
    drop(server);
    assert_eq!(read_all(client).join().unwrap().unwrap(), b"abc", "EOF right after run_once");
    drop(lp);
}

#[test]
fn no_descriptor_leaks_on_any_path() {
    let scenarios: [(&str, fn()); 7] = [
        ("complete fd", || complete(false)),
        ("complete path", || complete(true)),
        ("cancel mid-way", cancel_mid_way),
        ("sync errors", sync_errors),
        ("timeout", timeout),
        ("loop dropped first", loop_dropped_then_transfer),
        ("run_once completion", completion_seen_with_run_once),
    ];
    for (name, scenario) in scenarios {
        let before = open_fds();
        scenario();
        assert_eq!(open_fds(), before, "descriptors leaked by: {name}");
    }
}
