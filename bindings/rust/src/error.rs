//! `Error`: every status the library reports, convertible to `std::io::Error`.

use std::ffi::CStr;
use std::fmt;
use std::io;
use std::os::raw::c_int;

use crate::sys;

/// `EINVAL` (the same value on every Unix); used for a path containing NUL.
pub(crate) const EINVAL: i32 = 22;

/// Why a transfer failed or could not start.
///
/// Library codes get their own variants; everything else is an `errno`
/// value, kept as is, so `std::io::Error::from(e).raw_os_error()` returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The file ended before the region did (`SF_ETRUNCATED`): bytes promised
    /// to the peer are missing, so close the connection.
    Truncated,
    /// No progress within the idle timeout (`SF_ETIMEDOUT`).
    TimedOut,
    /// The socket is in blocking mode (`SF_EBLOCKING`): call
    /// `set_nonblocking(true)` first.
    Blocking,
    /// TLS was requested but kernel TLS transmit is not active (`SF_ENOKTLS`).
    NoKtls,
    /// An `errno` value (positive), e.g. `EPIPE`, `ECONNRESET`, `ENOENT`, `ERANGE`.
    Os(i32),
}

impl Error {
    /// Converts a negative status of the C library.
    pub(crate) fn from_code(code: c_int) -> Error {
        match code {
            sys::SF_ETRUNCATED => Error::Truncated,
            sys::SF_ETIMEDOUT => Error::TimedOut,
            sys::SF_EBLOCKING => Error::Blocking,
            sys::SF_ENOKTLS => Error::NoKtls,
            c => Error::Os(c.checked_neg().unwrap_or(c)),
        }
    }

    /// The C library's status code: `-errno`, or one of the `SF_E*` codes.
    pub fn code(&self) -> i32 {
        match *self {
            Error::Truncated => sys::SF_ETRUNCATED,
            Error::TimedOut => sys::SF_ETIMEDOUT,
            Error::Blocking => sys::SF_EBLOCKING,
            Error::NoKtls => sys::SF_ENOKTLS,
            Error::Os(e) => -e,
        }
    }

    /// The `errno` value, for [`Error::Os`].
    pub fn raw_os_error(&self) -> Option<i32> {
        match *self {
            Error::Os(e) => Some(e),
            _ => None,
        }
    }

    /// The symbolic name: `"SF_ETRUNCATED"`, `"EPIPE"`, ... (`sf_err_name`).
    pub fn name(&self) -> &'static str {
        // SAFETY: sf_err_name accepts any int and returns a static, NUL-terminated string, never NULL.
        let s = unsafe { CStr::from_ptr(sys::sf_err_name(self.code())) };
        s.to_str().unwrap_or("UNKNOWN")
    }

    fn description(&self) -> &'static str {
        // SAFETY: sf_err_text accepts any int and returns a static, NUL-terminated string, never NULL.
        let s = unsafe { CStr::from_ptr(sys::sf_err_text(self.code())) };
        s.to_str().unwrap_or("unknown error")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    /// `Os` keeps its errno (`raw_os_error()`); the library codes become an
    /// `io::Error` of a fitting kind that wraps the `Error` (get it back
    /// with `get_ref()` + `downcast_ref::<evsendfile::Error>()`).
    fn from(e: Error) -> io::Error {
        let kind = match e {
            Error::Os(errno) => return io::Error::from_raw_os_error(errno),
            Error::Truncated => io::ErrorKind::UnexpectedEof,
            Error::TimedOut => io::ErrorKind::TimedOut,
            Error::Blocking => io::ErrorKind::InvalidInput,
            Error::NoKtls => io::ErrorKind::Unsupported,
        };
        io::Error::new(kind, e)
    }
}
