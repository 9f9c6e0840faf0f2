//! Synchronous errors of `send`, `Error`'s conversions and texts, `can_use` errors.

mod common;

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use common::*;
use evsendfile::{send, sys, Error, EventLoop, Options, Region};

/// `send` must fail synchronously with `want`, dropping the closure unrun.
fn expect_error(socket: &impl std::os::fd::AsFd, region: Region<'_>, want: Error) {
    let lp = EventLoop::new().unwrap();
    let (called, dropped) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
    let c = called.clone();
    let guard = DropFlag(dropped.clone());
    let r = send(&lp, socket, &region, &Options::new(), move |_| {
        let _g = guard;
        c.set(true);
    });
    assert_eq!(r.err(), Some(want));
    assert!(dropped.get(), "closure must be dropped at once");
    lp.run().unwrap();
    assert!(!called.get());
}

#[test]
fn missing_path_is_not_found() {
    let (server, _client) = tcp_pair();
    let err = Error::Os(errno(c::ENOENT));
    expect_error(&server, Region::path("/nonexistent/evsendfile-test"), err);
    let io_err = io::Error::from(err);
    assert_eq!(io_err.kind(), io::ErrorKind::NotFound);
    assert_eq!(io_err.raw_os_error(), Some(errno(c::ENOENT)));
}

#[test]
fn region_beyond_the_end_is_erange() {
    let (server, _client) = tcp_pair();
    let file = TempFile::with(&pattern(1000));
    let f = file.open();
    let erange = Error::Os(errno(c::ERANGE));
    expect_error(&server, Region::fd(&f).offset(1001), erange);
    expect_error(&server, Region::fd(&f).offset(10).count(991), erange);
    expect_error(&server, Region::path(file.path()).count(1001), erange);
}

#[test]
fn blocking_socket_is_refused() {
    let (server, _client) = tcp_pair();
    server.set_nonblocking(false).unwrap();
    let file = TempFile::with(b"data");
    expect_error(&server, Region::path(file.path()), Error::Blocking);
    let io_err = io::Error::from(Error::Blocking);
    assert_eq!(io_err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(io_err.get_ref().and_then(|e| e.downcast_ref::<Error>()), Some(&Error::Blocking));
}

#[test]
fn directory_and_nul_path_are_refused() {
    let (server, _client) = tcp_pair();
    expect_error(&server, Region::path(std::env::temp_dir()), Error::Os(errno(c::EISDIR)));
    expect_error(&server, Region::path("bad\0path"), Error::Os(errno(c::EINVAL)));
}

#[test]
fn non_stream_targets_are_refused() {
    let file = TempFile::with(b"data");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.set_nonblocking(true).unwrap();
    expect_error(&udp, Region::path(file.path()), Error::Os(errno(c::EPROTOTYPE)));
    expect_error(&file.open(), Region::path(file.path()), Error::Os(errno(c::ENOTSOCK)));
}

#[test]
fn library_codes_have_their_own_variants_and_texts() {
    for (e, code) in [
        (Error::Truncated, sys::SF_ETRUNCATED),
        (Error::TimedOut, sys::SF_ETIMEDOUT),
        (Error::Blocking, sys::SF_EBLOCKING),
        (Error::NoKtls, sys::SF_ENOKTLS),
    ] {
        assert_eq!(e.code(), code);
        assert_eq!(e.raw_os_error(), None);
        // SAFETY: sf_err_text returns a static string for any int.
        let text = unsafe { std::ffi::CStr::from_ptr(sys::sf_err_text(code)) };
        assert_eq!(e.to_string(), text.to_str().unwrap());
        assert!(e.name().starts_with("SF_E"), "{}", e.name());
    }
    assert_eq!(Error::Truncated.name(), "SF_ETRUNCATED");
    let epipe = Error::Os(errno(c::EPIPE));
    assert_eq!(epipe.name(), "EPIPE");
    assert_eq!(epipe.code(), -errno(c::EPIPE));
    assert_eq!(io::Error::from(epipe).kind(), io::ErrorKind::BrokenPipe);
    let truncated = io::Error::from(Error::Truncated);
    assert_eq!(truncated.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(truncated.get_ref().and_then(|e| e.downcast_ref::<Error>()), Some(&Error::Truncated));
    assert_eq!(io::Error::from(Error::TimedOut).kind(), io::ErrorKind::TimedOut);
}

#[test]
fn can_use_on_a_bad_descriptor_is_ebadf() {
    struct Closed;
    impl AsRawFd for Closed {
        fn as_raw_fd(&self) -> RawFd {
            -1
        }
    }
    let err = evsendfile::can_use(&Closed).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(errno(c::EBADF)));
    let file = TempFile::with(b"x");
    assert!(!evsendfile::can_use(&file.open()).unwrap(), "a regular file is no socket");
}
