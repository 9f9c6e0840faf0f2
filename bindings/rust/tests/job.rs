//! Job (sf_job_*) stepped by hand, and handed over to a Worker after a step,
//! after DONE and after an error; Worker cancel and drop.

mod common;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::*;
use evsendfile::{Error, Job, Options, Region, Step, Worker};

fn owned(s: &std::net::TcpStream) -> OwnedFd {
    s.as_fd().try_clone_to_owned().unwrap()
}

#[test]
fn job_stepped_with_poll_sends_exact_bytes() {
    let data = pattern(5 * 1024 * 1024 + 3);
    let file = TempFile::with(&data);
    let f = file.open();
    let (server, client) = tcp_pair();
    let reader = read_all(client);
    let opts = Options::new().head(b"HEAD").tail(b"TAIL").max_chunk(256 * 1024);
    let mut job = Job::new(server.as_fd(), &Region::fd(&f).offset(3), &opts).unwrap();
    assert_eq!(job.socket_fd(), server.as_raw_fd());
    assert_eq!(job.source_fd(), f.as_raw_fd());
    let (mut yields, mut writes) = (0, 0);
    loop {
        match job.step().unwrap() {
            Step::Done => break,
            Step::Yield => yields += 1,
            Step::Write => {
                writes += 1;
                wait_fd(server.as_raw_fd(), POLLOUT);
            }
            Step::Read => unreachable!("a regular file never waits for readability"),
            // A file the kernel evicted meanwhile: its chunk is read in off this thread.
            Step::Source => wait_fd(job.wait_fd(), POLLIN),
        }
    }
    assert!(yields + writes > 0);
    assert_eq!(job.body_sent(), data.len() as u64 - 3);
    assert_eq!(job.step(), Ok(Step::Done), "stepping after DONE repeats it");
    drop(job);
    drop(server);
    assert!(reader.join().unwrap().unwrap() == [&b"HEAD"[..], &data[3..], b"TAIL"].concat());
}

/// Submits and waits for the callback's result.
fn submit_and_wait(worker: &Worker, job: Job<'static>) -> Result<u64, Error> {
    let (tx, rx) = mpsc::channel();
    worker.submit(job, move |r| tx.send(r).unwrap()).unwrap();
    rx.recv_timeout(GUARD).expect("the worker's callback ran")
}

#[test]
fn hand_over_after_a_step_continues_where_it_stopped() {
    let data = pattern(8 * 1024 * 1024);
    let file = TempFile::with(&data);
    let (server, client) = tcp_pair();
    let reader = read_all(client);
    let opts = Options::new().head(b"HEAD").max_chunk(64 * 1024);
    let mut job = Job::owning(owned(&server), file.open(), 0, None, &opts).unwrap();
    drop(server); // the job owns its own handle now
    let first = job.step().unwrap();
    assert!(matches!(first, Step::Yield | Step::Write));
    let stepped = job.body_sent();
    assert!(stepped > 0 && stepped < data.len() as u64);
    let worker = Worker::new().unwrap();
    assert_eq!(submit_and_wait(&worker, job), Ok(data.len() as u64), "body_sent counts the bytes before the hand-over");
    // The job's socket closed after the callback: the reader sees EOF, the head once.
    assert!(reader.join().unwrap().unwrap() == [&b"HEAD"[..], &data].concat());
}

#[test]
fn hand_over_after_done_reports_done() {
    let file = TempFile::with(b"hello");
    let (server, client) = tcp_pair();
    let reader = read_all(client);
    let mut job = Job::owning(owned(&server), file.open(), 1, None, &Options::new().head(b">")).unwrap();
    drop(server);
    assert_eq!(job.step(), Ok(Step::Done));
    let worker = Worker::new().unwrap();
    assert_eq!(submit_and_wait(&worker, job), Ok(4));
    assert_eq!(reader.join().unwrap().unwrap(), b">ello", "nothing sent twice");
}

#[test]
fn hand_over_after_an_error_reports_the_error() {
    let file = TempFile::with(&pattern(4 * 1024 * 1024));
    let (server, _client) = tcp_pair();
    let mut job = Job::owning(owned(&server), file.open(), 0, None, &Options::new()).unwrap();
    // The file shrinks to nothing before the first step: the region is missing.
    std::fs::OpenOptions::new().write(true).open(&file.path).unwrap().set_len(0).unwrap();
    // Its pages are gone from the page cache too: the chunk may go to a disk thread first.
    let mut step = job.step();
    while step == Ok(Step::Source) {
        wait_fd(job.wait_fd(), POLLIN);
        step = job.step();
    }
    assert_eq!(step, Err(Error::Truncated));
    assert_eq!(job.step(), Err(Error::Truncated), "repeats its final answer");
    let worker = Worker::new().unwrap();
    assert_eq!(submit_and_wait(&worker, job), Err(Error::Truncated));
}

#[test]
fn worker_cancel_and_drop_never_run_the_callback() {
    let file = TempFile::sparse(256 * 1024 * 1024);
    let worker = Worker::new().unwrap();
    // A peer that never reads: the transfer stalls on a full socket buffer.
    let (server, client) = tcp_pair();
    let job = Job::owning(owned(&server), file.open(), 0, None, &Options::new()).unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = DropFlagSync(dropped.clone());
    let r = ran.clone();
    let ticket = worker
        .submit(job, move |_| {
            let _keep = &flag;
            r.store(true, Ordering::SeqCst)
        })
        .unwrap();
    // In flight: its first bytes have reached the peer (which reads none of them).
    client.set_read_timeout(Some(GUARD)).unwrap();
    assert_eq!(client.peek(&mut [0u8; 1]).unwrap(), 1, "the worker started the transfer");
    assert!(worker.cancel(ticket), "a stalled transfer is cancelled");
    assert!(dropped.load(Ordering::SeqCst), "the callback is dropped by cancel");
    assert!(!worker.cancel(ticket), "cancelling twice");
    // Completed transfers can no longer be cancelled.
    let small = TempFile::with(b"abc");
    let (server2, client2) = tcp_pair();
    let reader = read_all(client2);
    let (tx, rx) = mpsc::channel();
    let t2 = worker.submit(Job::owning(owned(&server2), small.open(), 0, None, &Options::new()).unwrap(), move |r| tx.send(r).unwrap()).unwrap();
    drop(server2);
    assert_eq!(rx.recv_timeout(GUARD).unwrap(), Ok(3));
    assert!(!worker.cancel(t2));
    assert_eq!(reader.join().unwrap().unwrap(), b"abc");
    // Dropping the worker cancels what still runs.
    let (server3, _client3) = tcp_pair();
    let dropped3 = Arc::new(AtomicBool::new(false));
    let flag3 = DropFlagSync(dropped3.clone());
    let job3 = Job::owning(owned(&server3), file.open(), 0, None, &Options::new()).unwrap();
    worker.submit(job3, move |_| drop(flag3)).unwrap();
    drop(worker);
    assert!(dropped3.load(Ordering::SeqCst));
    assert!(!ran.load(Ordering::SeqCst));
}

struct DropFlagSync(Arc<AtomicBool>);
impl Drop for DropFlagSync {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn worker_is_send_and_sync_job_is_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Worker>();
    send::<Job<'static>>();
}

#[test]
fn progressed_tells_whether_the_send_queue_moved() {
    let file = TempFile::sparse(64 * 1024 * 1024);
    let f = file.open();
    let (server, mut client) = tcp_pair();
    let opts = Options::new().idle_timeout(Duration::from_secs(1));
    let mut job = Job::new(server.as_fd(), &Region::fd(&f), &opts).unwrap();
    while job.step().unwrap() != Step::Write {}
    assert!(!job.progressed(), "nobody read: the queue did not move");
    let mut buf = vec![0u8; 256 * 1024]; // less than the peer's receive buffer holds by now
    std::io::Read::read_exact(&mut client, &mut buf).unwrap();
    let mut moved = false;
    for _ in 0..1000 {
        if job.progressed() {
            moved = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(moved, "256 KiB read: the send queue shrank");
    let mut no_idle = Job::new(server.as_fd(), &Region::fd(&f), &Options::new());
    assert_eq!(no_idle.as_ref().err(), Some(&Error::Os(16)), "one job per socket (EBUSY)");
    drop(job);
    no_idle = Job::new(server.as_fd(), &Region::fd(&f), &Options::new());
    let mut no_idle = no_idle.unwrap();
    assert!(matches!(no_idle.step(), Ok(Step::Write | Step::Yield)));
    assert!(!no_idle.progressed(), "always false without an idle timeout");
}

#[test]
fn a_worker_dropped_in_its_own_callback_is_leaked_not_deadlocked() {
    let file = TempFile::with(b"xyz");
    let (server, client) = tcp_pair();
    let reader = read_all(client);
    let worker = Arc::new(std::sync::Mutex::new(Some(Worker::new().unwrap())));
    let (tx, rx) = mpsc::channel();
    let w = worker.clone();
    let job = Job::owning(owned(&server), file.open(), 0, None, &Options::new()).unwrap();
    drop(server);
    let guard = worker.lock().unwrap();
    guard.as_ref().unwrap().submit(job, move |r| {
        drop(w.lock().unwrap().take()); // the last handle, dropped on the worker's own thread
        tx.send(r).unwrap();
    }).unwrap();
    drop(guard);
    assert_eq!(rx.recv_timeout(GUARD).unwrap(), Ok(3));
    assert_eq!(reader.join().unwrap().unwrap(), b"xyz");
    assert!(worker.lock().unwrap().is_none());
}
