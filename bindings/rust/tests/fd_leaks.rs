//! Every path closes exactly what it opened: the transfer's duplicates of the
//! socket and the file, library-opened files, the loop's own descriptors.
//! One test in its own binary, so no other test opens descriptors meanwhile.

mod common;

use std::time::Duration;

use common::*;
use std::os::fd::AsFd;

use evsendfile::{send, EventLoop, Job, Options, Region, Step, Worker};

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

fn job_by_path_dropped_mid_way() {
    let file = TempFile::sparse(64 * 1024 * 1024);
    let (server, _client) = tcp_pair();
    let mut job = Job::new(server.as_fd(), &Region::path(file.path()), &Options::new().max_chunk(64 * 1024)).unwrap();
    // A sparse file's holes are not in the page cache: the first chunk is read in by a disk thread.
    let mut step = job.step();
    while step == Ok(Step::Source) {
        wait_fd(job.wait_fd(), POLLIN);
        step = job.step();
    }
    assert!(matches!(step, Ok(Step::Yield | Step::Write)));
    drop(job); // closes the file it opened (and the disk thread's fds)
}

fn owning_jobs_and_the_worker() {
    let file = TempFile::with(&pattern(100_000));
    let worker = Worker::new().unwrap();
    let own = |s: &std::net::TcpStream| s.as_fd().try_clone_to_owned().unwrap();
    // Dropped unsubmitted: closes both.
    let (server, _c) = tcp_pair();
    drop(Job::owning(own(&server), file.open(), 0, None, &Options::new()).unwrap());
    // Completed on the worker: closed after the callback.
    let (server, client) = tcp_pair();
    let reader = read_all(client);
    let (tx, rx) = std::sync::mpsc::channel();
    worker.submit(Job::owning(own(&server), file.open(), 0, None, &Options::new()).unwrap(), move |r| tx.send(r).unwrap()).unwrap();
    drop(server);
    assert_eq!(rx.recv().unwrap(), Ok(100_000));
    assert_eq!(reader.join().unwrap().unwrap().len(), 100_000, "EOF: the job's socket was closed");
    // Cancelled, and left to the worker's drop.
    let big = TempFile::sparse(256 * 1024 * 1024);
    let (server, _c1) = tcp_pair();
    let t = worker.submit(Job::owning(own(&server), big.open(), 0, None, &Options::new()).unwrap(), |_| {}).unwrap();
    let (server2, _c2) = tcp_pair();
    worker.submit(Job::owning(own(&server2), big.open(), 0, None, &Options::new()).unwrap(), |_| {}).unwrap();
    assert!(worker.cancel(t));
    drop(worker);
}

#[test]
fn no_descriptor_leaks_on_any_path() {
    let scenarios: [(&str, fn()); 9] = [
        ("job by path dropped", job_by_path_dropped_mid_way),
        ("owning jobs and the worker", owning_jobs_and_the_worker),
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
        // A job dropped while one of the library's disk threads reads a chunk in for it (a cold or
        // sparse file) leaves that thread its own two fds (a dup of the file, the wake-up eventfd)
        // until the read is over: give it a moment.
        for _ in 0..200 {
            if open_fds() == before {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(open_fds(), before, "descriptors leaked by: {name}");
    }
}
