//! Cancelling: dropping a `Transfer` mid-way, from another transfer's
//! closure, from its own closure, after the loop handle is gone; and what
//! `mem::forget` leaves behind.

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use common::*;
use evsendfile::{send, EventLoop, Options, Region, Transfer};

const BIG: u64 = 64 * 1024 * 1024; // far more than loopback socket buffers hold

/// A closure that records a call and drops a flag with itself.
fn watched(called: &Rc<Cell<bool>>, dropped: &Rc<Cell<bool>>) -> impl FnOnce(Result<u64, evsendfile::Error>) + 'static {
    let called = called.clone();
    let guard = DropFlag(dropped.clone());
    move |_| {
        let _g = guard;
        called.set(true);
    }
}

#[test]
fn dropping_mid_way_cancels_and_the_closure_never_runs() {
    // Written just now, so in the page cache: the loop sends it, max_chunk per step (a cold
    // file's body would be sent by the library's disk threads, between the loop's turns).
    let file = TempFile::with(&pattern(BIG as usize));
    let (server, client) = tcp_pair();
    let lp = EventLoop::new().unwrap();
    let (called, dropped) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
    let opts = Options::new().head(b"HEAD").max_chunk(64 * 1024);
    let t = send(&lp, &server, &Region::path(file.path()), &opts, watched(&called, &dropped)).unwrap();
    while t.body_sent() == 0 {
        assert!(lp.run_once().unwrap());
    }
    let sent = t.body_sent();
    // Each step moves at most max_chunk, and the first one already did.
    assert!(sent > 0 && sent <= 64 * 1024, "one step moves at most max_chunk, moved {sent}");
    drop(t);
    assert!(dropped.get() && !called.get(), "closure must be dropped without running");
    // Nothing is pending any more: run returns at once and runs nothing.
    lp.run().unwrap();
    assert!(!called.get());
    // The peer got exactly the head and what was sent before the cancel, then EOF.
    drop(server);
    let got = read_all(client).join().unwrap().unwrap();
    assert_eq!(got.len() as u64, 4 + sent);
    assert_eq!(&got[..4], b"HEAD");
}

#[test]
fn explicit_cancel_reports_it_cancelled() {
    let file = TempFile::sparse(BIG);
    let (server, _client) = tcp_pair();
    let lp = EventLoop::new().unwrap();
    let (called, dropped) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
    let t = send(&lp, &server, &Region::path(file.path()), &Options::new(), watched(&called, &dropped)).unwrap();
    assert!(t.cancel(), "never ran: cancel must succeed");
    assert!(dropped.get());
    lp.run().unwrap();
    assert!(!called.get());
}

#[test]
fn dropping_another_transfer_from_a_closure_cancels_it() {
    let small = TempFile::with(b"small");
    let big = TempFile::sparse(BIG);
    let (s1, c1) = tcp_pair();
    let (s2, _c2) = tcp_pair(); // never read: the big transfer cannot finish
    let r1 = read_all(c1);
    let lp = EventLoop::new().unwrap();
    let slot: Rc<RefCell<Option<Transfer>>> = Rc::default();
    let (called, dropped) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
    let slot2 = slot.clone();
    let out = Outcome::new();
    let record = out.callback();
    let _a = send(&lp, &s1, &Region::path(small.path()), &Options::new(), move |r| {
        record(r);
        drop(slot2.borrow_mut().take()); // cancels the big one
    })
    .unwrap();
    *slot.borrow_mut() = Some(send(&lp, &s2, &Region::path(big.path()), &Options::new(), watched(&called, &dropped)).unwrap());
    lp.run().unwrap(); // returns: the small one finished, the big one was cancelled
    assert_eq!(out.get(), Some(Ok(5)));
    assert!(dropped.get() && !called.get());
    drop(s1);
    assert_eq!(r1.join().unwrap().unwrap(), b"small");
}

#[test]
fn a_transfer_dropped_inside_its_own_closure_is_not_cancelled_twice() {
    let file = TempFile::with(&pattern(100_000));
    let (server, client) = tcp_pair();
    let reader = read_all(client);
    let lp = EventLoop::new().unwrap();
    let slot: Rc<RefCell<Option<Transfer>>> = Rc::default();
    let slot2 = slot.clone();
    let result = Rc::new(Cell::new(None));
    let result2 = result.clone();
    let t = send(&lp, &server, &Region::path(file.path()), &Options::new(), move |r| {
        let me = slot2.borrow_mut().take().expect("handle stored before the loop ran");
        assert!(me.is_finished());
        result2.set(Some((r, me.body_sent())));
        drop(me);
    })
    .unwrap();
    *slot.borrow_mut() = Some(t);
    lp.run().unwrap();
    assert_eq!(result.get(), Some((Ok(100_000), 100_000)));
    drop(server);
    assert_eq!(reader.join().unwrap().unwrap().len(), 100_000);
}

#[test]
fn the_transfer_may_outlive_the_loop_handle() {
    let file = TempFile::sparse(BIG);
    let (server, _client) = tcp_pair();
    let lp = EventLoop::new().unwrap();
    let (called, dropped) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
    let t = send(&lp, &server, &Region::path(file.path()), &Options::new(), watched(&called, &dropped)).unwrap();
    drop(lp); // the base lives on while the transfer does
    assert!(!t.is_finished());
    drop(t);
    assert!(dropped.get() && !called.get());
}

#[test]
fn a_forgotten_transfer_still_completes_on_its_own_socket_duplicate() {
    let data = pattern(3 * 1024 * 1024);
    let file = TempFile::with(&data);
    let (server, client) = tcp_pair();
    let reader = read_all(client);
    let lp = EventLoop::new().unwrap();
    let out = Outcome::new();
    let t = send(&lp, &server, &Region::path(file.path()), &Options::new(), out.callback()).unwrap();
    std::mem::forget(t);
    drop(server); // our handle is gone; the transfer's duplicate keeps the connection
    lp.run().unwrap();
    assert_eq!(out.get(), Some(Ok(data.len() as u64)));
    // and is closed after completion: the reader sees EOF.
    assert!(reader.join().unwrap().unwrap() == data);
}
