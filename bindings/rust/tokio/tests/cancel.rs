//! No descriptor is duplicated while a transfer runs.  Dropping the future
//! at every await point: no descriptor leaks (the
//! library-opened file is closed, the pipe deregistered), nothing written
//! after the drop, and the socket stays open and usable — the peer has seen
//! an exact prefix of head + region, then whatever is written next.
//! One test in its own binary, so no other test opens descriptors meanwhile.

mod common;

use std::future::{poll_fn, Future};
use std::io::Write;
use std::pin::pin;
use std::task::Poll;

use common::*;
use evsendfile::{Options, Region};
use evsendfile_tokio::{send_file, send_region, Stream};
use tokio::io::{AsyncRead, AsyncWriteExt};

/// Polls `fut` once; true if it completed.
async fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> bool {
    let mut fut = fut;
    poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx).is_ready())).await
}

/// Sends `file` by path, polling the future `polls` times (letting the reader run between
/// polls), then drops it and writes a marker.  Returns whether the transfer completed first.
async fn drop_after<S, R>(mut server: S, client: R, file: &TempFile, data: &[u8], polls: usize) -> bool
where
    S: Stream + tokio::io::AsyncWrite + Unpin,
    R: AsyncRead + Unpin + Send + 'static,
{
    let reader = tokio::spawn(read_all(client));
    let opts = Options::new().head(b"HEAD").max_chunk(64 * 1024);
    let region = Region::path(&file.path);
    let mut completed = false;
    {
        let mut fut = pin!(send_region(&server, &region, &opts));
        for _ in 0..polls {
            if poll_once(fut.as_mut()).await {
                completed = true;
                break;
            }
            tokio::task::yield_now().await;
        }
    } // dropped here, at whatever step it was
    server.write_all(b"MARK").await.expect("the socket is usable after the drop");
    drop(server);
    let got = read_all_result(reader).await;
    assert!(got.ends_with(b"MARK"), "polls {polls}");
    let sent = &got[..got.len() - 4];
    let want = [&b"HEAD"[..], data].concat();
    assert!(sent.len() <= want.len() && sent == &want[..sent.len()], "polls {polls}: not a prefix");
    if completed {
        assert_eq!(sent.len(), want.len());
    }
    completed
}

async fn read_all_result(h: tokio::task::JoinHandle<Vec<u8>>) -> Vec<u8> {
    h.await.unwrap()
}

#[test]
fn dropping_the_future_at_every_step_leaks_nothing() {
    let rt = current_thread();
    rt.block_on(async {
        let data = pattern(1024 * 1024 + 5);
        let file = TempFile::with(&data);
        for unix in [false, true] {
            let mut polls = 0;
            loop {
                let before = open_fds();
                let completed = if unix {
                    let (s, c) = unix_pair();
                    drop_after(s, c, &file, &data, polls).await
                } else {
                    let (s, c) = tcp_pair().await;
                    drop_after(s, c, &file, &data, polls).await
                };
                assert_eq!(open_fds(), before, "descriptors leaked after {polls} polls (unix: {unix})");
                if completed {
                    assert!(polls > 3, "the transfer should take several steps");
                    break;
                }
                polls += 1;
            }
        }

        // Dropped while waiting for a pipe source (its AsyncFd registration goes with it).
        let before = open_fds();
        let (pipe_r, mut pipe_w) = std::io::pipe().unwrap();
        set_nonblocking(&pipe_r);
        let source = std::fs::File::from(std::os::fd::OwnedFd::from(pipe_r));
        pipe_w.write_all(b"some").unwrap();
        let (server, client) = unix_pair();
        let reader = tokio::spawn(read_all(client));
        let fds_now = open_fds();
        {
            let opts = Options::new();
            let mut fut = pin!(send_file(&server, &source, 0, None, &opts));
            for _ in 0..5 {
                assert!(!poll_once(fut.as_mut()).await, "a pipe with a live writer does not end");
                assert_eq!(open_fds(), fds_now, "no descriptor is duplicated or opened by a transfer");
                tokio::task::yield_now().await;
            }
        }
        // The same pipe can be registered again (the first registration is gone).
        pipe_w.write_all(b" more").unwrap();
        drop(pipe_w);
        let sent = send_file(&server, &source, 0, None, &Options::new()).await;
        assert_eq!(sent, Ok(5));
        drop(server);
        assert_eq!(reader.await.unwrap(), b"some more");
        drop(source);
        assert_eq!(open_fds(), before, "descriptors leaked by the pipe case");
    });
}
