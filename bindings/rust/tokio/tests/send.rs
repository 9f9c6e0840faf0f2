//! send_file over real loopback TCP and Unix sockets: exact bytes, slow
//! readers, pipes, peers that leave, truncation, timeouts, many at once.

mod common;

use std::io::{self, Write};
use std::time::Duration;

use common::*;
use evsendfile::{Error, Job, Options, Region};
use evsendfile_tokio::{drive, send_file, send_region, Stream};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Sends and reads everything on the peer; the sender's stream is closed after the transfer.
async fn roundtrip<S, R>(server: S, client: R, file: &std::fs::File, off: u64, count: Option<u64>, opts: Options<'_>)
    -> (Result<u64, Error>, Vec<u8>)
where
    S: Stream,
    R: AsyncRead + Unpin + Send + 'static,
{
    let reader = tokio::spawn(read_all(client));
    let res = send_file(&server, file, off, count, &opts).await;
    drop(server);
    (res, reader.await.unwrap())
}

fn expected(data: &[u8], head: &[u8], off: usize, count: Option<usize>, tail: &[u8]) -> Vec<u8> {
    let end = count.map_or(data.len(), |c| off + c);
    [head, &data[off..end], tail].concat()
}

async fn exact_bytes_on_both_sockets() {
    let sizes = [0usize, 1, 4096, 32 * 1024, 32 * 1024 + 1, 1024 * 1024 + 3, 5 * 1024 * 1024 + 7];
    for &size in &sizes {
        let data = pattern(size);
        let file = TempFile::with(&data);
        let f = file.open();
        type Case<'a> = (&'a [u8], usize, Option<usize>, &'a [u8], bool); // head, offset, count, tail, no_sendfile
        let cases: [Case; 4] = [
            (b"", 0, None, b"", false),
            (b"HEAD\r\n\r\n", 0, None, b"", false),
            (b"h", size / 3, Some(size / 2), b"-tail", false),
            (b"copy:", size / 5, None, b":path", true),
        ];
        for (head, off, count, tail, no_sendfile) in cases {
            let opts = Options::new().head(head).tail(tail).no_sendfile(no_sendfile).max_chunk(256 * 1024);
            let want = expected(&data, head, off, count, tail);
            let c = count.map(|c| c as u64);
            let (server, client) = tcp_pair().await;
            let (res, got) = roundtrip(server, client, &f, off as u64, c, opts).await;
            assert_eq!(res, Ok((want.len() - head.len() - tail.len()) as u64), "tcp size {size}");
            assert!(got == want, "tcp size {size} off {off} count {count:?}: got {} bytes, want {}", got.len(), want.len());
            let (server, client) = unix_pair();
            let (res, got) = roundtrip(server, client, &f, off as u64, c, opts).await;
            assert_eq!(res, Ok((want.len() - head.len() - tail.len()) as u64), "unix size {size}");
            assert!(got == want, "unix size {size} off {off} count {count:?}");
        }
    }
}

#[test]
fn exact_bytes_current_thread() {
    current_thread().block_on(exact_bytes_on_both_sockets());
}

#[test]
fn exact_bytes_multi_thread() {
    // Spawned, so the transfer's task may move between the two workers.
    let rt = multi_thread();
    rt.block_on(async { tokio::spawn(exact_bytes_on_both_sockets()).await.unwrap() });
}

/// 4.5 GiB, mostly holes, with marks around the 4 GiB boundary: no 32-bit offset anywhere.
async fn huge_sparse<S: Stream, R: AsyncRead + Unpin + Send + 'static>(server: S, mut client: R) {
    const LEN: u64 = 4608 * 1024 * 1024;
    let marks = [0, 4096, (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32, (1 << 32) + 1, LEN - 1];
    let file = TempFile::sparse_marked(LEN, &marks);
    let f = file.open();
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 1 << 20];
        let (mut pos, mut seen) = (0u64, Vec::new());
        loop {
            let n = client.read(&mut buf).await.unwrap();
            if n == 0 {
                return (pos, seen);
            }
            for (i, &b) in buf[..n].iter().enumerate() {
                if b != 0 {
                    seen.push((pos + i as u64, b));
                }
            }
            pos += n as u64;
        }
    });
    let res = send_file(&server, &f, 0, None, &Options::new()).await;
    drop(server);
    let (total, seen) = reader.await.unwrap();
    assert_eq!(res, Ok(LEN));
    assert_eq!(total, LEN);
    let want: Vec<(u64, u8)> = marks.iter().enumerate().map(|(i, &m)| (m, mark(i))).collect();
    assert_eq!(seen, want);
}

#[test]
fn huge_sparse_file_over_tcp() {
    multi_thread().block_on(async {
        let (server, client) = tcp_pair().await;
        huge_sparse(server, client).await
    });
}

#[test]
fn huge_sparse_file_over_unix() {
    multi_thread().block_on(async {
        let (server, client) = unix_pair();
        huge_sparse(server, client).await
    });
}

#[test]
fn slow_reader_gets_exact_bytes() {
    // The peer reads 7 KiB every few ms: the sender waits for writability hundreds of times.
    current_thread().block_on(async {
        let data = pattern(3 * 1024 * 1024 + 11);
        let file = TempFile::with(&data);
        let (server, mut client) = tcp_pair().await;
        let reader = tokio::spawn(async move {
            let (mut v, mut buf) = (Vec::new(), vec![0u8; 7 * 1024]);
            loop {
                let n = client.read(&mut buf).await.unwrap();
                if n == 0 {
                    return v;
                }
                v.extend_from_slice(&buf[..n]);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
        let res = send_file(&server, &file.open(), 5, None, &Options::new().head(b"HEAD").tail(b"TAIL")).await;
        drop(server);
        assert_eq!(res, Ok(data.len() as u64 - 5));
        assert!(reader.await.unwrap() == expected(&data, b"HEAD", 5, None, b"TAIL"));
    });
}

#[test]
fn pipe_source_waits_through_asyncfd() {
    // A non-blocking pipe fed slowly by a thread: SF_STEP_READ is answered by the source's readiness.
    multi_thread().block_on(async {
        let data = pattern(600 * 1024 + 5);
        let (pipe_r, mut pipe_w) = io::pipe().unwrap();
        set_nonblocking(&pipe_r);
        let source = std::fs::File::from(std::os::fd::OwnedFd::from(pipe_r));
        let feed = data.clone();
        let writer = std::thread::spawn(move || {
            for chunk in feed.chunks(50 * 1024) {
                pipe_w.write_all(chunk).unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let (server, client) = unix_pair();
        let (res, got) = roundtrip(server, client, &source, 0, None, Options::new().head(b"P")).await;
        writer.join().unwrap();
        assert_eq!(res, Ok(data.len() as u64));
        assert!(got == [&b"P"[..], &data].concat());
    });
}

async fn peer_resets<S: Stream>(server: S, client: impl AsyncRead + Unpin + Send + 'static) -> io::Error {
    default_sigpipe();
    let file = TempFile::sparse(256 * 1024 * 1024);
    // Reads a little, then closes with unread data pending: TCP resets, a Unix socket breaks.
    let reader = tokio::spawn(async move {
        let mut client = client;
        let mut buf = vec![0u8; 64 * 1024];
        client.read_exact(&mut buf).await.unwrap();
    });
    let res = send_file(&server, &file.open(), 0, None, &Options::new()).await;
    reader.await.unwrap();
    io::Error::from(res.expect_err("the peer left before the end"))
}

#[test]
fn peer_reset_is_an_error_not_a_signal() {
    current_thread().block_on(async {
        let (server, client) = tcp_pair().await;
        let e = peer_resets(server, client).await;
        assert!(matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset), "{e:?}");
        let (server, client) = unix_pair();
        let e = peer_resets(server, client).await;
        assert!(matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset), "{e:?}");
    });
}

#[test]
fn truncated_file_ends_with_truncated_and_body_sent_is_what_arrived() {
    current_thread().block_on(async {
        let data = pattern(8 * 1024 * 1024);
        let file = TempFile::with(&data);
        let f = file.open();
        let (server, mut client) = tcp_pair().await;
        let path = file.path.clone();
        // The peer reads 1 MiB, shrinks the file to 2 MiB, then reads the rest.
        let reader = tokio::spawn(async move {
            let mut first = vec![0u8; 1024 * 1024];
            client.read_exact(&mut first).await.unwrap();
            std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(2 * 1024 * 1024).unwrap();
            let mut rest = Vec::new();
            client.read_to_end(&mut rest).await.unwrap();
            [first, rest].concat()
        });
        let sock = std::os::fd::AsFd::as_fd(&f); // any AsFd works for the region
        let mut job = Job::new(server.socket(), &Region::borrowed(sock), &Options::new()).unwrap();
        let res = drive(&server, &mut job, None).await;
        let sent = job.body_sent();
        drop(job);
        drop(server);
        let got = reader.await.unwrap();
        assert_eq!(res, Err(Error::Truncated));
        assert!(sent < data.len() as u64);
        assert_eq!(got.len() as u64, sent, "body_sent counts exactly the bytes that arrived");
        assert!(got[..] == data[..got.len()]);
    });
}

#[test]
fn idle_timeout_option_and_tokio_timeout() {
    current_thread().block_on(async {
        let file = TempFile::sparse(64 * 1024 * 1024);
        let f = file.open();
        // A peer that never reads: the socket buffer fills and stays full.
        let (server, _client) = tcp_pair().await;
        let opts = Options::new().head(b"h").idle_timeout(Duration::from_millis(50));
        assert_eq!(send_file(&server, &f, 0, None, &opts).await, Err(Error::TimedOut));
        // A deadline on the whole transfer: the future is dropped (cancelled) when it expires.
        let (server, _client) = unix_pair();
        let r = tokio::time::timeout(Duration::from_millis(50), send_file(&server, &f, 0, None, &Options::new())).await;
        assert!(r.is_err(), "expected the deadline to expire: {r:?}");
        // The option is an *idle* timeout: a slow but steady reader is not cut off.
        let (server, mut client) = unix_pair();
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = 0;
            loop {
                let n = client.read(&mut buf).await.unwrap();
                if n == 0 {
                    return total;
                }
                total += n;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        let opts = Options::new().idle_timeout(Duration::from_secs(20));
        let res = send_file(&server, &f, 0, Some(16 * 1024 * 1024), &opts).await;
        drop(server);
        assert_eq!(res, Ok(16 * 1024 * 1024));
        assert_eq!(reader.await.unwrap(), 16 * 1024 * 1024);
    });
}

#[test]
fn idle_timeout_spares_a_reader_that_drains_in_small_reads() {
    // Small, spaced reads free too little of the send queue to make the socket writable again
    // within the idle timeout; bytes still leave it, which counts as progress.
    current_thread().block_on(async {
        let data = pattern(6 * 1024 * 1024);
        let file = TempFile::with(&data);
        // Bytes leave the send queue every ~20 ms (measured), far within the timeout even on a
        // loaded machine; a default receive buffer releases them in ~100 ms steps.
        let (server, mut client) = tcp_pair_small_rcvbuf(16 * 1024).await;
        let reader = tokio::spawn(async move {
            let (mut v, mut buf) = (Vec::new(), vec![0u8; 2048]);
            loop {
                let n = client.read(&mut buf).await.unwrap();
                if n == 0 {
                    return v;
                }
                v.extend_from_slice(&buf[..n]);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        // At most ~1 MB/s: under 1.3 MB (a third of the autotuned send buffer) per timeout, so
        // the socket does not turn writable in time and the timer fires with progress to see.
        let opts = Options::new().idle_timeout(Duration::from_millis(900));
        let res = send_file(&server, &file.open(), 0, None, &opts).await;
        drop(server);
        assert_eq!(res, Ok(data.len() as u64));
        assert!(reader.await.unwrap() == data);
    });
}

#[test]
fn synchronous_errors() {
    current_thread().block_on(async {
        let file = TempFile::with(b"abc");
        let (server, _client) = tcp_pair().await;
        let f = file.open();
        assert_eq!(send_file(&server, &f, 4, None, &Options::new()).await, Err(Error::Os(34))); // ERANGE
        assert_eq!(send_file(&server, &f, 0, Some(4), &Options::new()).await, Err(Error::Os(34)));
        let dir = std::fs::File::open("/").unwrap();
        assert_eq!(send_file(&server, &dir, 0, None, &Options::new()).await, Err(Error::Os(21))); // EISDIR
        assert_eq!(send_region(&server, &Region::path("/no/such"), &Options::new()).await, Err(Error::Os(2)));
        // A job for another socket is refused by drive.
        let (other, _c2) = tcp_pair().await;
        let mut job = Job::new(other.socket(), &Region::fd(&f), &Options::new()).unwrap();
        assert_eq!(drive(&server, &mut job, None).await, Err(Error::Os(22)));
    });
}

#[test]
fn thousand_concurrent_transfers_on_a_multi_thread_runtime() {
    let rt = multi_thread();
    rt.block_on(async {
        let data = std::sync::Arc::new(pattern(200 * 1024 + 17));
        let file = std::sync::Arc::new(TempFile::with(&data));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn({
            let file = file.clone();
            async move {
                let f = std::sync::Arc::new(file.open());
                let mut tasks = Vec::new();
                for i in 0..1000u64 {
                    let (sock, _) = listener.accept().await.unwrap();
                    let f = f.clone();
                    tasks.push(tokio::spawn(async move {
                        let head = format!("{i:04}");
                        let opts = Options::new().head(head.as_bytes()).max_chunk(64 * 1024);
                        send_file(&sock, &f, i, None, &opts).await
                    }));
                }
                let mut results = Vec::new();
                for t in tasks {
                    results.push(t.await.unwrap());
                }
                results
            }
        });
        let mut clients = Vec::new();
        for _ in 0..1000 {
            let c = tokio::net::TcpStream::connect(addr).await.unwrap();
            clients.push(tokio::spawn(read_all(c)));
        }
        let results = server.await.unwrap();
        for (i, r) in results.into_iter().enumerate() {
            assert_eq!(r, Ok(data.len() as u64 - i as u64), "transfer {i}");
        }
        for c in clients {
            let got = c.await.unwrap();
            let i: usize = std::str::from_utf8(&got[..4]).unwrap().parse().unwrap();
            assert!(got[4..] == data[i..], "transfer {i}: wrong body");
        }
    });
}

#[test]
fn blocking_socket_is_refused() {
    // tokio sockets are non-blocking; a std socket turned blocking through into_std shows the check.
    let rt = current_thread();
    rt.block_on(async {
        let (server, _client) = tcp_pair().await;
        let std_sock = server.into_std().unwrap();
        std_sock.set_nonblocking(false).unwrap();
        let file = TempFile::with(b"x");
        let f = file.open();
        assert_eq!(Job::new(std::os::fd::AsFd::as_fd(&std_sock), &Region::fd(&f), &Options::new()).err(), Some(Error::Blocking));
    });
}

/// Counts the polls of the future it wraps.
struct Counted<F> {
    fut: std::pin::Pin<Box<F>>,
    polls: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl<F: std::future::Future> std::future::Future for Counted<F> {
    type Output = F::Output;
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        self.polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.fut.as_mut().poll(cx)
    }
}

#[test]
fn a_stalled_transfer_sleeps_instead_of_spinning() {
    // The peer never reads: after the buffers fill, the task must sleep until the idle timeout,
    // polled a handful of times, not busy-stepping (inside one poll or across polls).  Run on a
    // thread so that a busy loop inside one poll fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        current_thread().block_on(async {
            let file = TempFile::sparse(256 * 1024 * 1024);
            let (server, _client) = tcp_pair().await;
            let polls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let opts = Options::new().idle_timeout(Duration::from_millis(300));
            let f = file.open();
            let fut = Counted { fut: Box::pin(send_file(&server, &f, 0, None, &opts)), polls: polls.clone() };
            let res = fut.await;
            tx.send((res, polls.load(std::sync::atomic::Ordering::Relaxed))).unwrap();
        })
    });
    let (res, polls) = rx.recv_timeout(GUARD).expect("the transfer never yielded to the runtime");
    assert_eq!(res, Err(Error::TimedOut));
    assert!(polls <= 10, "polled {polls} times while stalled");
}
