//! Zero-copy file-to-socket transfers on tokio: [`send_file`] drives
//! libevsendfile's stepping API ([`evsendfile::Job`]) on the calling task,
//! waiting through tokio's own readiness — no extra thread, no `dup()`.
//!
//! ```no_run
//! # async fn serve(stream: tokio::net::TcpStream) -> Result<(), evsendfile::Error> {
//! use evsendfile::Options;
//! let file = std::fs::File::open("index.html").map_err(|e| evsendfile::Error::Os(e.raw_os_error().unwrap()))?;
//! let len = file.metadata().unwrap().len();
//! let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
//! let sent = evsendfile_tokio::send_file(&stream, &file, 0, None, &Options::new().head(head.as_bytes())).await?;
//! assert_eq!(sent, len);
//! # Ok(())
//! # }
//! ```
//!
//! The first step runs as soon as the future is first polled (a small
//! response usually leaves then, in one `writev`).  How each step's answer
//! is waited for:
//! - [`Step::Write`]: `poll_write_ready` + `try_io(Interest::WRITABLE)`; the
//!   step runs inside `try_io`, so a step that finds the socket full clears
//!   tokio's readiness and the task sleeps until the next edge (a spurious
//!   wake-up costs one step, never a spin);
//! - [`Step::Yield`]: `tokio::task::yield_now()`, so other tasks on the same
//!   worker run every `max_chunk` bytes;
//! - [`Step::Read`] (a non-blocking pipe, FIFO or device as source): the
//!   source descriptor is registered with tokio (`AsyncFd`, for the rest of
//!   the transfer; it must not be registered with tokio elsewhere) and the
//!   step reruns inside its readiness guard;
//! - [`Step::Source`] (a cold file: one of the library's disk threads is
//!   reading or sending a chunk): the same with the job's wake-up eventfd
//!   ([`Job::wait_fd`]), without the idle timeout.
//!
//! **Cancellation.**  Dropping the future at any `.await` frees the job: it
//! uncorks the socket and closes a file opened from a path; nothing else is
//! written.  (If a disk thread is sending a cold file's chunk for it, the
//! drop waits for that thread's current syscall: a non-blocking send, or a
//! read of at most one chunk.)  The socket stays open and usable, but the peer has seen an
//! unknown prefix of head + region: for a framed protocol (HTTP with a
//! Content-Length) the connection is *poisoned* — close it.  The same holds
//! after an `Err` (use [`drive`] and [`Job::body_sent`] to learn how much of
//! the region went out).
//!
//! **Timeouts.**  `Options::idle_timeout(d)` is honoured here as an idle
//! timeout: `d` without progress ends the transfer with [`Error::TimedOut`]
//! (needs a runtime with the time driver, `enable_time()`/`enable_all()`).
//! Progress is the socket becoming writable, a pipe source readable, or
//! bytes leaving the socket's send queue ([`Job::progressed`]): a peer that
//! keeps reading slowly is never cut off, one that stops reading is.  For a deadline on the whole
//! transfer, wrap the call: `tokio::time::timeout(d, send_file(..)).await`
//! — on expiry the future is dropped, which cancels as above.
//!
//! **Threads.**  The future is `Send` (a [`Job`] may move between threads
//! between steps), so it runs on current-thread and multi-thread runtimes
//! alike and can be `tokio::spawn`ed:
//!
//! ```
//! fn assert_send<T: Send>(_: &T) {}
//! # async fn f(s: tokio::net::TcpStream, u: tokio::net::UnixStream, file: std::fs::File) {
//! let o = evsendfile::Options::new();
//! assert_send(&evsendfile_tokio::send_file(&s, &file, 0, None, &o));
//! assert_send(&evsendfile_tokio::send_file(&u, &file, 0, None, &o));
//! # }
//! ```
//!
//! SIGPIPE: a peer that went away yields `EPIPE`/`ECONNRESET`
//! (`io::ErrorKind::BrokenPipe`/`ConnectionReset` after `.into()`), never a
//! signal.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::task::{Context, Poll};
use std::time::Duration;

use evsendfile::{Error, Job, Options, Region, Step};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A tokio stream socket [`send_file`] can write to: `tokio::net::TcpStream`
/// and `tokio::net::UnixStream`.  Sealed.
pub trait Stream: AsRawFd + sealed::Sealed {
    /// The socket, borrowed for as long as the stream is (tokio 1.24's
    /// streams implement `AsRawFd` but not `AsFd`).
    fn socket(&self) -> BorrowedFd<'_>;
    #[doc(hidden)]
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    #[doc(hidden)]
    fn try_io<R>(&self, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for tokio::net::TcpStream {}
    impl Sealed for tokio::net::UnixStream {}
}

macro_rules! stream {
    ($t:ty) => {
        impl Stream for $t {
            fn socket(&self) -> BorrowedFd<'_> {
                // SAFETY: the descriptor is open for as long as `self` is borrowed.
                unsafe { BorrowedFd::borrow_raw(self.as_raw_fd()) }
            }
            fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                <$t>::poll_write_ready(self, cx)
            }
            fn try_io<R>(&self, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
                <$t>::try_io(self, Interest::WRITABLE, f)
            }
        }
    };
}
stream!(tokio::net::TcpStream);
stream!(tokio::net::UnixStream);

/// Sends `opts.head`, bytes `offset..offset + count` of `file` (`None`: to
/// its end), then `opts.tail` to `stream`; returns the region bytes sent.
///
/// Errors: the synchronous ones of [`Job::new`] (`ERANGE`, `EISDIR`,
/// `ESPIPE`, ...) before anything is written; then `EPIPE`/`ECONNRESET`
/// (peer gone), [`Error::Truncated`] (the file shrank: close the
/// connection), [`Error::TimedOut`] (idle timeout), read errors.  See the
/// crate docs for cancellation, timeouts and threads.
pub async fn send_file<S: Stream>(
    stream: &S,
    file: &std::fs::File,
    offset: u64,
    count: Option<u64>,
    opts: &Options<'_>,
) -> Result<u64, Error> {
    let mut region = Region::fd(file).offset(offset);
    if let Some(n) = count {
        region = region.count(n);
    }
    send_region(stream, &region, opts).await
}

/// Like [`send_file`] for any [`Region`] (e.g. `Region::path`, opened and
/// closed by the library).
pub async fn send_region<S: Stream>(stream: &S, region: &Region<'_>, opts: &Options<'_>) -> Result<u64, Error> {
    let mut job = Job::new(stream.socket(), region, opts)?;
    drive(stream, &mut job, opts.idle_timeout_value()).await
}

/// Drives a [`Job`] made for `stream` to its end on this task (what
/// [`send_file`] does); afterwards, also after an `Err`, `job.body_sent()`
/// tells how many region bytes went out.  `idle`: see the crate docs.
/// `EINVAL` if the job writes to another socket than `stream`.
pub async fn drive<S: Stream>(stream: &S, job: &mut Job<'_>, idle: Option<Duration>) -> Result<u64, Error> {
    if job.socket_fd() != stream.as_raw_fd() {
        return Err(Error::Os(22));
    }
    let mut source: Option<AsyncFd<Fd>> = None;
    // The first step runs at once, before tokio has seen the socket writable: a small response
    // usually leaves here, without a reactor turn.  A later step that finds the socket full
    // reruns under try_io, which then clears the stale readiness.
    let mut wait_for = job.step()?;
    loop {
        let step = match wait_for {
            Step::Done => return Ok(job.body_sent()),
            Step::Yield => {
                tokio::task::yield_now().await;
                Step::Write
            }
            Step::Write => {
                write_ready(stream, job, idle).await?;
                // A step that finds the socket full reports WouldBlock, so try_io clears readiness.
                match stream.try_io(|| match job.step() {
                    Ok(Step::Write) => Err(io::ErrorKind::WouldBlock.into()),
                    other => Ok(other),
                }) {
                    Ok(step) => step?,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Step::Write,
                    Err(e) => return Err(os_error(e)),
                }
            }
            Step::Read | Step::Source => {
                // One fd per job: a pipe's (Read) or the disk wake-up eventfd (Source), never both.
                if source.is_none() {
                    let fd = Fd(job.wait_fd());
                    source = Some(AsyncFd::with_interest(fd, Interest::READABLE).map_err(os_error)?);
                }
                let afd = source.as_ref().unwrap();
                // Waiting for the disk is not the peer's delay: no idle timeout then.
                let timeout = if wait_for == Step::Read { idle } else { None };
                let mut guard = idle_wait(timeout, afd.readable()).await?;
                match guard.try_io(|_| match job.step() {
                    Ok(s) if s == wait_for => Err(io::ErrorKind::WouldBlock.into()),
                    other => Ok(other),
                }) {
                    Ok(Ok(step)) => step?,
                    Ok(Err(e)) => return Err(os_error(e)),
                    Err(_would_block) => wait_for,
                }
            }
        };
        wait_for = step;
    }
}

/// Waits until tokio sees the socket writable.  With an idle timeout, a timer
/// that fires while the peer keeps draining the send queue (a slow reader, whose
/// reads may be too small to make the socket writable again) is re-armed.
async fn write_ready<S: Stream>(stream: &S, job: &mut Job<'_>, idle: Option<Duration>) -> Result<(), Error> {
    let Some(d) = idle else {
        return poll_fn(|cx| stream.poll_write_ready(cx)).await.map_err(os_error);
    };
    loop {
        match tokio::time::timeout(d, poll_fn(|cx| stream.poll_write_ready(cx))).await {
            Ok(res) => return res.map_err(os_error),
            Err(_) if job.progressed() => continue,
            Err(_) => return Err(Error::TimedOut),
        }
    }
}

/// Awaits `fut`, failing with `Error::TimedOut` after `idle` (if any).
async fn idle_wait<T>(idle: Option<Duration>, fut: impl Future<Output = io::Result<T>>) -> Result<T, Error> {
    let res = match idle {
        None => fut.await,
        Some(d) => tokio::time::timeout(d, fut).await.map_err(|_| Error::TimedOut)?,
    };
    res.map_err(os_error)
}

fn os_error(e: io::Error) -> Error {
    Error::Os(e.raw_os_error().unwrap_or(5 /* EIO */))
}

/// A descriptor number registered with tokio, not owned (the job owns or
/// borrows the source; AsyncFd deregisters it on drop, before the job goes).
struct Fd(RawFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}
