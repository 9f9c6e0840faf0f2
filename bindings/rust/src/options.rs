//! `Options`: bytes around the region, pacing, timeout and method switches.

use std::os::raw::{c_int, c_uint, c_void};
use std::ptr;
use std::time::Duration;

use crate::sys;

/// How to send: optional `head` bytes before the region and `tail` bytes
/// after it (copied when the transfer starts), the per-wakeup byte budget,
/// an idle timeout, and switches.  `Options::default()` is the library's
/// defaults.
///
/// ```
/// use std::time::Duration;
/// let opts = evsendfile::Options::new()
///     .head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
///     .idle_timeout(Duration::from_secs(30));
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    head: &'a [u8],
    tail: &'a [u8],
    max_chunk: u64,
    idle_timeout_ms: u32,
    flags: c_uint,
}

impl<'a> Options<'a> {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes sent before the region (e.g. HTTP response headers).
    pub fn head(mut self, bytes: &'a [u8]) -> Self {
        self.head = bytes;
        self
    }

    /// Bytes sent after the region.
    pub fn tail(mut self, bytes: &'a [u8]) -> Self {
        self.tail = bytes;
        self
    }

    /// Most bytes moved per write-readiness callback before yielding to the
    /// loop; 0 means the default (2 MiB).
    pub fn max_chunk(mut self, bytes: u64) -> Self {
        self.max_chunk = bytes;
        self
    }

    /// Fail with [`Error::TimedOut`](crate::Error::TimedOut) after this long
    /// without progress (millisecond resolution, at least 1 ms; zero: never).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        let ms = timeout.as_millis().min(u32::MAX as u128) as u32;
        self.idle_timeout_ms = if ms == 0 && !timeout.is_zero() { 1 } else { ms };
        self
    }

    /// The idle timeout set with [`Options::idle_timeout`], if any (for
    /// drivers of a [`Job`](crate::Job), which apply it themselves).
    pub fn idle_timeout_value(&self) -> Option<Duration> {
        (self.idle_timeout_ms != 0).then(|| Duration::from_millis(self.idle_timeout_ms.into()))
    }

    /// Never use sendfile: pread/read + write only.
    pub fn no_sendfile(self, on: bool) -> Self {
        self.flag(sys::SF_NO_SENDFILE, on)
    }

    /// Use sendfile whoever the peer is.  By default a TCP peer on this host
    /// gets the copy path, which measured faster there (bench/RESULTS.md);
    /// `no_sendfile` wins over this.
    pub fn force_sendfile(self, on: bool) -> Self {
        self.flag(sys::SF_FORCE_SENDFILE, on)
    }

    /// The socket carries kernel TLS: sendfile only when kTLS transmit is active
    /// (otherwise `send` fails with [`Error::NoKtls`](crate::Error::NoKtls)).
    pub fn tls(self, on: bool) -> Self {
        self.flag(sys::SF_TLS, on)
    }

    /// Do not set TCP_CORK around region + tail (it is only set when a tail follows the body).
    pub fn no_cork(self, on: bool) -> Self {
        self.flag(sys::SF_NO_CORK, on)
    }

    /// The response ends the connection's output (HTTP/1.0, `Connection:
    /// close`): once its last byte is out the library shuts the socket's write
    /// side (`shutdown(SHUT_WR)`), so the peer sees EOF without waiting for the
    /// completion, which runs from the loop.  Only a transfer that succeeded
    /// is shut; a failing shutdown (`ENOTCONN`) is its error.
    pub fn shut_wr(self, on: bool) -> Self {
        self.flag(sys::SF_SHUT_WR, on)
    }

    fn flag(mut self, bit: c_uint, on: bool) -> Self {
        if on {
            self.flags |= bit;
        } else {
            self.flags &= !bit;
        }
        self
    }

    /// The C struct; its iovecs point into `iov`, which must outlive its use.
    pub(crate) fn to_c(self, iov: &mut [sys::iovec; 2]) -> sys::sf_options_t {
        iov[0] = sys::iovec { iov_base: self.head.as_ptr() as *mut c_void, iov_len: self.head.len() };
        iov[1] = sys::iovec { iov_base: self.tail.as_ptr() as *mut c_void, iov_len: self.tail.len() };
        let mut opts = sys::sf_options_t {
            struct_size: 0,
            head: ptr::null(),
            head_count: 0,
            tail: ptr::null(),
            tail_count: 0,
            max_chunk: 0,
            idle_timeout_ms: 0,
            flags: 0,
            file_size: 0,
        };
        // SAFETY: opts is a valid, writable sf_options_t.
        unsafe { sys::sf_options_init(&mut opts) };
        opts.head = &iov[0];
        opts.head_count = !self.head.is_empty() as c_int;
        opts.tail = &iov[1];
        opts.tail_count = !self.tail.is_empty() as c_int;
        if self.max_chunk != 0 {
            opts.max_chunk = self.max_chunk;
        }
        opts.idle_timeout_ms = self.idle_timeout_ms;
        opts.flags = self.flags;
        opts
    }
}
