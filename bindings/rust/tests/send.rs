//! Bytes on the wire: exact content, offsets, methods, slow readers, pipes,
//! several transfers on one loop, and how completion closures behave.

mod common;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;

use common::*;
use evsendfile::{send, Error, EventLoop, Options, Region};

/// Sends `region` of `data` with `opts`, reads everything on a thread, and
/// returns (the closure's result, the bytes the peer got).
fn transfer(region: impl FnOnce(&std::fs::File) -> Region<'_>, data: &[u8], opts: Options<'_>) -> (Result<u64, Error>, Vec<u8>) {
    let file = TempFile::with(data);
    let f = file.open();
    let (server, client) = tcp_pair();
    let reader = read_all(client);
    let lp = EventLoop::new().unwrap();
    let out = Outcome::new();
    let t = send(&lp, &server, &region(&f), &opts, out.callback()).unwrap();
    lp.run().unwrap();
    assert_eq!(out.calls(), 1);
    assert!(t.is_finished());
    drop(server);
    (out.get().unwrap(), reader.join().unwrap().unwrap())
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn whole_file_with_head_and_tail_arrives_exactly() {
    let data = pattern(5 * 1024 * 1024 + 3);
    let (res, got) = transfer(|f| Region::fd(f), &data, Options::new().head(b"HEAD\r\n").tail(b"\r\nTAIL"));
    assert_eq!(res, Ok(data.len() as u64));
    assert!(got == concat(&[b"HEAD\r\n", &data, b"\r\nTAIL"]), "bytes differ");
}

/// With `shut_wr` the peer reads the whole response and then EOF while the
/// test still holds its own handle of the socket: the library shut it.  (With
/// the flag ignored the reader would time out instead.)
#[test]
fn shut_wr_ends_the_stream_after_the_last_byte() {
    for len in [4000usize, 3 * 1024 * 1024] {
        let data = pattern(len);
        let file = TempFile::with(&data);
        let f = file.open();
        let (server, client) = tcp_pair();
        let reader = read_all(client);
        let lp = EventLoop::new().unwrap();
        let out = Outcome::new();
        let _t = send(&lp, &server, &Region::fd(&f), &Options::new().head(b"HEAD\r\n").shut_wr(true), out.callback()).unwrap();
        lp.run().unwrap();
        assert_eq!(out.get().unwrap(), Ok(len as u64));
        let got = reader.join().unwrap().expect("EOF from the library's shutdown");
        assert!(got == concat(&[b"HEAD\r\n", &data]), "bytes differ");
        drop(server);
    }
}

#[test]
fn small_region_at_an_offset_is_exact() {
    let data = pattern(64 * 1024);
    let (res, got) = transfer(|f| Region::fd(f).offset(1000).count(5000), &data, Options::new().head(b"h"));
    assert_eq!(res, Ok(5000));
    assert!(got == concat(&[b"h", &data[1000..6000]]));
}

#[test]
fn large_region_at_an_offset_is_exact() {
    let data = pattern(4 * 1024 * 1024);
    let count = 3 * 1024 * 1024 + 7;
    let (res, got) = transfer(|f| Region::fd(f).offset(12_345).count(count as u64), &data, Options::new());
    assert_eq!(res, Ok(count as u64));
    assert!(got == data[12_345..12_345 + count]);
}

#[test]
fn to_eof_from_an_offset() {
    let data = pattern(1024 * 1024 + 17);
    let (res, got) = transfer(|f| Region::fd(f).offset(100_001).to_eof(), &data, Options::new());
    assert_eq!(res, Ok((data.len() - 100_001) as u64));
    assert!(got == data[100_001..]);
}

#[test]
fn offset_at_the_end_sends_only_head_and_tail() {
    let data = pattern(4096);
    let (res, got) = transfer(|f| Region::fd(f).offset(4096), &data, Options::new().head(b"<").tail(b">"));
    assert_eq!(res, Ok(0));
    assert_eq!(got, b"<>");
}

#[test]
fn copy_path_with_a_small_budget_is_exact() {
    let data = pattern(3 * 1024 * 1024 + 11);
    let opts = Options::new().no_sendfile(true).max_chunk(64 * 1024).head(b"H").tail(b"T");
    let (res, got) = transfer(|f| Region::fd(f).offset(3).count(data.len() as u64 - 5), &data, opts);
    assert_eq!(res, Ok(data.len() as u64 - 5));
    assert!(got == concat(&[b"H", &data[3..data.len() - 2], b"T"]));
}

#[test]
fn path_region_is_opened_by_the_library() {
    let data = pattern(300_000);
    let file = TempFile::with(&data);
    let (server, client) = tcp_pair();
    let reader = read_all(client);
    let lp = EventLoop::new().unwrap();
    let out = Outcome::new();
    let _t = send(&lp, &server, &Region::path(file.path()).offset(1), &Options::new(), out.callback()).unwrap();
    lp.run().unwrap();
    drop(server);
    assert_eq!(out.get(), Some(Ok(299_999)));
    assert!(reader.join().unwrap().unwrap() == data[1..]);
}

#[test]
fn slow_reader_gets_every_byte() {
    let data = pattern(8 * 1024 * 1024);
    let file = TempFile::with(&data);
    let f = file.open();
    let (server, mut client) = tcp_pair();
    // Reads in 1 KiB pieces, yielding in between: the sender keeps meeting a full socket.
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let n = client.read(&mut buf)?;
            if n == 0 {
                return Ok::<_, std::io::Error>(got);
            }
            got.extend_from_slice(&buf[..n]);
            std::thread::yield_now();
        }
    });
    let lp = EventLoop::new().unwrap();
    let out = Outcome::new();
    let t = send(&lp, &server, &Region::fd(&f), &Options::new().max_chunk(256 * 1024), out.callback()).unwrap();
    let turns = run_until(&lp, || out.calls() == 1);
    // send() makes the first step itself; the loop needs the other 31 at least.
    assert!(turns >= 31, "8 MiB in 256 KiB budgets needs at least 31 loop turns, took {turns}");
    assert_eq!(t.body_sent(), data.len() as u64);
    drop(server);
    assert_eq!(out.get(), Some(Ok(data.len() as u64)));
    assert!(reader.join().unwrap().unwrap() == data);
}

#[test]
fn pipe_source_streams_to_eof() {
    let data = pattern(700_000);
    let (pipe_r, mut pipe_w) = std::io::pipe().unwrap();
    let expected = data.clone();
    let writer = std::thread::spawn(move || pipe_w.write_all(&data));
    let (server, client) = tcp_pair();
    let reader = read_all(client);
    let lp = EventLoop::new().unwrap();
    let out = Outcome::new();
    let _t = send(&lp, &server, &Region::fd(&pipe_r), &Options::new().head(b"P"), out.callback()).unwrap();
    drop(pipe_r); // the transfer holds its own duplicate
    lp.run().unwrap();
    writer.join().unwrap().unwrap();
    drop(server);
    assert_eq!(out.get(), Some(Ok(expected.len() as u64)));
    assert!(reader.join().unwrap().unwrap() == concat(&[b"P", &expected]));
}

#[test]
fn two_transfers_share_one_loop() {
    let a = pattern(3 * 1024 * 1024);
    let b: Vec<u8> = pattern(2 * 1024 * 1024 + 1).iter().map(|x| !x).collect();
    let (fa, fb) = (TempFile::with(&a), TempFile::with(&b));
    let (sa, ca) = tcp_pair();
    let (sb, cb) = tcp_pair();
    let (ra, rb) = (read_all(ca), read_all(cb));
    let lp = EventLoop::new().unwrap();
    let (oa, ob) = (Outcome::new(), Outcome::new());
    let opts = Options::new().max_chunk(128 * 1024);
    let _ta = send(&lp, &sa, &Region::path(fa.path()), &opts, oa.callback()).unwrap();
    let _tb = send(&lp, &sb, &Region::path(fb.path()), &opts, ob.callback()).unwrap();
    lp.run().unwrap();
    drop((sa, sb));
    assert_eq!((oa.get(), ob.get()), (Some(Ok(a.len() as u64)), Some(Ok(b.len() as u64))));
    assert!(ra.join().unwrap().unwrap() == a);
    assert!(rb.join().unwrap().unwrap() == b);
}

#[test]
fn closure_runs_once_from_the_loop_not_from_send() {
    let file = TempFile::with(b"tiny");
    let (server, client) = tcp_pair();
    let reader = read_all(client);
    let lp = EventLoop::new().unwrap();
    let out = Outcome::new();
    let t = send(&lp, &server, &Region::path(file.path()), &Options::new(), out.callback()).unwrap();
    assert_eq!(out.calls(), 0);
    assert!(!t.is_finished());
    lp.run().unwrap();
    assert_eq!(out.calls(), 1);
    assert!(t.is_finished());
    assert_eq!(t.body_sent(), 4);
    assert!(!t.cancel(), "cancel after completion must report it was too late");
    lp.run().unwrap();
    assert_eq!(out.calls(), 1);
    drop(server);
    assert_eq!(reader.join().unwrap().unwrap(), b"tiny");
}

#[test]
fn a_panic_in_the_closure_comes_out_of_run() {
    let file = TempFile::with(b"x");
    let (server, client) = tcp_pair();
    let reader = read_all(client);
    let lp = EventLoop::new().unwrap();
    let _t = send(&lp, &server, &Region::path(file.path()), &Options::new(), |_| panic!("boom")).unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom"));
    // The loop is still usable.
    let out = Outcome::new();
    let _t2 = send(&lp, &server, &Region::path(file.path()), &Options::new(), out.callback()).unwrap();
    lp.run().unwrap();
    assert_eq!(out.get(), Some(Ok(1)));
    drop(server);
    assert_eq!(reader.join().unwrap().unwrap(), b"xx");
}

#[test]
fn running_the_loop_from_its_own_closure_is_refused() {
    let file = TempFile::with(b"x");
    let (server, client) = tcp_pair();
    let reader = read_all(client);
    let lp = Rc::new(EventLoop::new().unwrap());
    let inner = Rc::new(RefCell::new(None));
    let (lp2, inner2) = (lp.clone(), inner.clone());
    let _t = send(&lp, &server, &Region::path(file.path()), &Options::new(), move |_| {
        *inner2.borrow_mut() = Some(lp2.run().is_err());
    })
    .unwrap();
    lp.run().unwrap();
    assert_eq!(*inner.borrow(), Some(true));
    drop(server);
    assert_eq!(reader.join().unwrap().unwrap(), b"x");
}

#[test]
fn idle_timeout_fires_when_the_reader_stalls() {
    let file = TempFile::sparse(64 * 1024 * 1024);
    let (server, client) = tcp_pair();
    let lp = EventLoop::new().unwrap();
    let out = Outcome::new();
    // A head makes the library cork the socket: after the timeout it must still let go of it.
    let opts = Options::new().head(b"HEAD").idle_timeout(Duration::from_millis(50));
    let t = send(&lp, &server, &Region::path(file.path()), &opts, out.callback()).unwrap();
    lp.run().unwrap(); // nobody reads: progress stops, the timeout ends it
    assert_eq!(out.get(), Some(Err(Error::TimedOut)));
    let sent = t.body_sent();
    assert!(sent > 0 && sent < 64 * 1024 * 1024, "body_sent {sent}");
    drop(server);
    // Everything the library wrote arrives, then EOF: its duplicate socket was closed.
    let got = read_all(client).join().unwrap().unwrap();
    assert_eq!(got.len() as u64, 4 + sent);
}

#[test]
fn can_use_reports_sendfile_on_tcp() {
    let (server, _client) = tcp_pair();
    assert_eq!(evsendfile::can_use(&server).unwrap(), !sendfile_disabled_by_env());
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    assert!(!evsendfile::can_use(&udp).unwrap());
}

#[test]
fn version_is_the_headers() {
    let want = format!("{}.{}.{}", c::SF_VERSION_MAJOR, c::SF_VERSION_MINOR, c::SF_VERSION_PATCH);
    assert_eq!(evsendfile::version(), want);
    // The crate's own version is the library's (one version, the header's).
    assert_eq!(env!("CARGO_PKG_VERSION"), want);
}

#[test]
fn dropping_the_region_file_early_is_fine() {
    let data = pattern(2 * 1024 * 1024);
    let file = TempFile::with(&data);
    let (server, client) = tcp_pair();
    let reader = read_all(client);
    let lp = EventLoop::new().unwrap();
    let out = Outcome::new();
    let f = file.open();
    let _t = send(&lp, &server, &Region::fd(&f), &Options::new(), out.callback()).unwrap();
    drop(f);
    lp.run().unwrap();
    drop(server);
    assert_eq!(out.get(), Some(Ok(data.len() as u64)));
    assert!(reader.join().unwrap().unwrap() == data);
}

#[test]
fn a_file_shrinking_mid_transfer_ends_truncated() {
    for no_sendfile in [false, true] {
        let data = pattern(4 * 1024 * 1024);
        let file = TempFile::with(&data);
        let (server, client) = tcp_pair();
        let lp = EventLoop::new().unwrap();
        let out = Outcome::new();
        // Loopback would take the copy path: force sendfile for its case.
        let opts = Options::new().max_chunk(64 * 1024).no_sendfile(no_sendfile).force_sendfile(!no_sendfile);
        let t = send(&lp, &server, &Region::path(file.path()), &opts, out.callback()).unwrap();
        assert!(lp.run_once().unwrap());
        // send() made the first step, run_once() one more: at most 2 * max_chunk.
        assert!(t.body_sent() <= 2 * 64 * 1024 && out.calls() == 0);
        std::fs::OpenOptions::new().write(true).open(file.path()).unwrap().set_len(128 * 1024).unwrap();
        let reader = read_all(client);
        lp.run().unwrap();
        assert_eq!(out.get(), Some(Err(Error::Truncated)), "no_sendfile={no_sendfile}");
        // sendfile stops at the new end; the copy path also sends what it had already read.
        let sent = t.body_sent() as usize;
        if no_sendfile || sendfile_disabled_by_env() {
            assert!((128 * 1024..data.len()).contains(&sent), "body_sent {sent}");
        } else {
            assert_eq!(sent, 128 * 1024);
        }
        drop(server);
        assert!(reader.join().unwrap().unwrap() == data[..sent]);
    }
}

#[test]
fn an_empty_file_sends_head_and_tail_only() {
    let (res, got) = transfer(|f| Region::fd(f), b"", Options::new().head(b"<").tail(b">"));
    assert_eq!(res, Ok(0));
    assert_eq!(got, b"<>");
}

#[test]
fn offsets_beyond_4_gib_pass_through_uncut() {
    use std::io::{Seek, SeekFrom};
    const FOUR_GIB: u64 = 4 << 30;
    let file = TempFile::sparse(FOUR_GIB + 2 * 1024 * 1024);
    let data = pattern(1024 * 1024);
    let mut w = std::fs::OpenOptions::new().write(true).open(file.path()).unwrap();
    w.seek(SeekFrom::Start(FOUR_GIB)).unwrap();
    w.write_all(&data).unwrap();
    drop(w);
    let (server, client) = tcp_pair();
    let reader = read_all(client);
    let lp = EventLoop::new().unwrap();
    let out = Outcome::new();
    // A 32-bit truncation of the offset would read the (zero) start of the file.
    let region = Region::path(file.path()).offset(FOUR_GIB + 100).count(500_000);
    let _t = send(&lp, &server, &region, &Options::new(), out.callback()).unwrap();
    lp.run().unwrap();
    drop(server);
    assert_eq!(out.get(), Some(Ok(500_000)));
    assert!(reader.join().unwrap().unwrap() == data[100..500_100]);
}
