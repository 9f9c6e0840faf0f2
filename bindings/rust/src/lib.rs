//! Send a region of a file to a non-blocking socket with zero-copy
//! `sendfile(2)`, driven by libevent: safe Rust bindings to libevsendfile.
//!
//! - [`EventLoop`] owns a libevent `event_base`; transfers progress while it runs.
//! - [`send`] starts one transfer (head bytes, a [`Region`] of a file, tail
//!   bytes) and calls a closure exactly once when it ends; the returned
//!   [`Transfer`] cancels it when dropped.
//! - [`Error`] keeps the errno (`EPIPE`, `ENOENT`, ...) and converts into
//!   `std::io::Error`; the library's own conditions ([`Error::Truncated`],
//!   [`Error::TimedOut`], ...) have their own variants.
//! - [`Job`] is the same engine without a loop, stepped by any reactor
//!   (the `evsendfile-tokio` crate drives it on tokio); [`Worker`] runs jobs
//!   handed to it on a library-owned thread.
//! - [`sys`] has the raw C declarations.
//!
//! ```
//! use std::cell::Cell;
//! use std::io::{Read, Write};
//! use std::net::{TcpListener, TcpStream};
//! use std::rc::Rc;
//! use evsendfile::{send, EventLoop, Options, Region};
//!
//! # fn main() -> std::io::Result<()> {
//! // A file to serve and a loopback connection to serve it on.
//! let path = std::env::temp_dir().join(format!("evsendfile-doc-{}", std::process::id()));
//! std::fs::File::create(&path)?.write_all(b"hello, world")?;
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let client = TcpStream::connect(listener.local_addr()?)?;
//! let (server, _) = listener.accept()?;
//! server.set_nonblocking(true)?; // required
//!
//! let event_loop = EventLoop::new()?;
//! let result = Rc::new(Cell::new(None));
//! let r = result.clone();
//! let file = std::fs::File::open(&path)?;
//! let _transfer = send(
//!     &event_loop,
//!     &server,
//!     &Region::fd(&file).offset(7),          // "world"
//!     &Options::new().head(b"hi ").tail(b"!"),
//!     move |res| r.set(Some(res)),
//! )?;
//! event_loop.run()?; // returns when nothing is pending
//! assert_eq!(result.take(), Some(Ok(5)));
//!
//! drop(server);
//! let mut received = String::new();
//! (&client).read_to_string(&mut received)?;
//! assert_eq!(received, "hi world!");
//! # std::fs::remove_file(&path)?;
//! # Ok(())
//! # }
//! ```
//!
//! Errors convert into `std::io::Error` with the errno kept:
//!
//! ```
//! # use evsendfile::{send, EventLoop, Options, Region};
//! # fn main() -> std::io::Result<()> {
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let sock = std::net::TcpStream::connect(listener.local_addr()?)?;
//! sock.set_nonblocking(true)?;
//! let event_loop = EventLoop::new()?;
//! let err = send(&event_loop, &sock, &Region::path("/no/such/file"), &Options::new(), |_| {}).unwrap_err();
//! let io_err = std::io::Error::from(err);
//! assert_eq!(io_err.kind(), std::io::ErrorKind::NotFound);
//! assert_eq!(io_err.raw_os_error(), err.raw_os_error());
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod error;
mod event_loop;
mod job;
mod options;
mod region;
pub mod sys;
mod transfer;
mod worker;

use std::ffi::CStr;
use std::io;
use std::os::fd::AsRawFd;

pub use error::Error;
pub use event_loop::EventLoop;
pub use options::Options;
pub use region::Region;
pub use job::{Job, Step};
pub use transfer::{send, Transfer};
pub use worker::{Ticket, Worker};

/// Whether a transfer on `socket` would use zero-copy sendfile (`true`) or
/// the copy path (`false`: not a stream socket, sendfile disabled by the
/// environment or found missing).  `EBADF` if it is not an open descriptor.
pub fn can_use<S: AsRawFd + ?Sized>(socket: &S) -> io::Result<bool> {
    // SAFETY: sf_can_use only inspects the descriptor number (fcntl/getsockopt); a stale one yields -EBADF.
    let rc = unsafe { sys::sf_can_use(socket.as_raw_fd(), 0) };
    if rc < 0 {
        return Err(Error::from_code(rc).into());
    }
    Ok(rc == 1)
}

/// The version of the C library actually loaded, e.g. `"2.1.0"`.
pub fn version() -> &'static str {
    // SAFETY: sf_version_text returns a static NUL-terminated string.
    let s = unsafe { CStr::from_ptr(sys::sf_version_text()) };
    s.to_str().unwrap_or("?")
}
