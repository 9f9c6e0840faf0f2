//! Raw declarations: `#[repr(C)]` mirrors of every public type of
//! `evsendfile.h`, its constants and functions, and the few libevent
//! functions the safe layer uses.  Everything here is `unsafe` to call; the
//! header's comments are the contract.  `tests/layout.rs` checks every size,
//! offset and constant against what the C compiler reports.
#![allow(non_camel_case_types, missing_docs)]

use std::marker::{PhantomData, PhantomPinned};
use std::os::raw::{c_char, c_int, c_long, c_short, c_uint, c_void};

// ------------------------------------------------------------------ version
pub const SF_VERSION_MAJOR: c_int = 2;
pub const SF_VERSION_MINOR: c_int = 1;
pub const SF_VERSION_PATCH: c_int = 0;

// ------------------------------------------------------------------- errors
pub const SF_ETRUNCATED: c_int = -30001;
pub const SF_ETIMEDOUT: c_int = -30002;
pub const SF_EBLOCKING: c_int = -30003;
pub const SF_ENOKTLS: c_int = -30004;

// ------------------------------------------------------------------ regions
pub const SF_COUNT_TO_EOF: u64 = u64::MAX;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sf_region_t {
    pub fd: c_int,
    pub path: *const c_char,
    pub offset: u64,
    pub count: u64,
}

// ------------------------------------------------------------------ options
pub const SF_NO_SENDFILE: c_uint = 0x1;
pub const SF_TLS: c_uint = 0x2;
pub const SF_NO_CORK: c_uint = 0x4;
pub const SF_TRUSTED: c_uint = 0x8;
pub const SF_FORCE_SENDFILE: c_uint = 0x10;
pub const SF_DISK_INLINE: c_uint = 0x20;
pub const SF_KNOWN_SIZE: c_uint = 0x40;
pub const SF_SHUT_WR: c_uint = 0x80;

pub const SF_DEFAULT_MAX_CHUNK: c_uint = 2 * 1024 * 1024;
pub const SF_SMALL_BODY_MAX: c_uint = 32 * 1024;
pub const SF_COPY_BUFFER_SIZE: c_uint = 256 * 1024;

/// `struct iovec` from `<sys/uio.h>`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct iovec {
    pub iov_base: *mut c_void,
    pub iov_len: usize,
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sf_options_t {
    pub struct_size: usize,
    pub head: *const iovec,
    pub head_count: c_int,
    pub tail: *const iovec,
    pub tail_count: c_int,
    pub max_chunk: u64,
    pub idle_timeout_ms: u32,
    pub flags: c_uint,
    pub file_size: u64,
}

// --------------------------------------------------------------- transfers
/// Opaque `sf_transfer_t`.
#[repr(C)]
pub struct sf_transfer_t {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `sf_done_cb`; `None` is C's NULL (refused with -EINVAL).
pub type sf_done_cb =
    Option<unsafe extern "C" fn(t: *mut sf_transfer_t, status: c_int, body_sent: u64, arg: *mut c_void)>;

// ------------------------------------------------------------------- jobs
/// Opaque `sf_job_t`.
#[repr(C)]
pub struct sf_job_t {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

pub const SF_STEP_DONE: c_int = 0;
pub const SF_STEP_WRITE: c_int = 1;
pub const SF_STEP_READ: c_int = 2;
pub const SF_STEP_YIELD: c_int = 3;
pub const SF_STEP_SOURCE: c_int = 4;

// ----------------------------------------------------------------- worker
/// Opaque `sf_worker_t`.
#[repr(C)]
pub struct sf_worker_t {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

// --------------------------------------------------------------- libevent
/// Opaque libevent `struct event_base`.
#[repr(C)]
pub struct event_base {
    _private: [u8; 0],
    _marker: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `evutil_socket_t` on Unix.
pub type evutil_socket_t = c_int;
/// `event_callback_fn`.
pub type event_callback_fn = Option<unsafe extern "C" fn(fd: evutil_socket_t, what: c_short, arg: *mut c_void)>;

/// `struct timeval` (Linux/glibc, BSD, macOS LP64: both fields are `long`-sized).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct timeval {
    pub tv_sec: c_long,
    pub tv_usec: c_long,
}

pub const EV_TIMEOUT: c_short = 0x01;
pub const EVLOOP_ONCE: c_int = 0x01;
pub const EVLOOP_NONBLOCK: c_int = 0x02;
pub const EVLOOP_NO_EXIT_ON_EMPTY: c_int = 0x04;

extern "C" {
    pub fn sf_version() -> c_uint;
    pub fn sf_version_text() -> *const c_char;

    pub fn sf_err_text(err: c_int) -> *const c_char;
    pub fn sf_err_name(err: c_int) -> *const c_char;

    pub fn sf_options_init(opts: *mut sf_options_t);

    pub fn sf_can_use(sock: c_int, flags: c_uint) -> c_int;
    pub fn sf_peer_flags(sock: c_int, flags: c_uint) -> c_int;

    pub fn sf_send_async(
        base: *mut event_base,
        sock: c_int,
        region: *const sf_region_t,
        opts: *const sf_options_t,
        done: sf_done_cb,
        arg: *mut c_void,
        out: *mut *mut sf_transfer_t,
    ) -> c_int;
    pub fn sf_cancel(t: *mut sf_transfer_t) -> c_int;
    pub fn sf_cancel_all(base: *mut event_base) -> c_int;
    pub fn sf_transfer_body_sent(t: *const sf_transfer_t) -> u64;

    pub fn sf_job_new(sock: c_int, region: *const sf_region_t, opts: *const sf_options_t, out: *mut *mut sf_job_t)
        -> c_int;
    pub fn sf_job_step(job: *mut sf_job_t) -> c_int;
    pub fn sf_job_body_sent(job: *const sf_job_t) -> u64;
    pub fn sf_job_progressed(job: *mut sf_job_t) -> c_int;
    pub fn sf_job_source_fd(job: *const sf_job_t) -> c_int;
    pub fn sf_job_wait_fd(job: *const sf_job_t) -> c_int;
    pub fn sf_job_free(job: *mut sf_job_t);
    pub fn sf_job_start(
        job: *mut sf_job_t,
        base: *mut event_base,
        done: sf_done_cb,
        arg: *mut c_void,
        out: *mut *mut sf_transfer_t,
    ) -> c_int;

    pub fn sf_worker_new(out: *mut *mut sf_worker_t) -> c_int;
    pub fn sf_worker_submit(
        w: *mut sf_worker_t,
        sock: c_int,
        region: *const sf_region_t,
        opts: *const sf_options_t,
        done: sf_done_cb,
        arg: *mut c_void,
        ticket: *mut u64,
    ) -> c_int;
    pub fn sf_worker_submit_job(
        w: *mut sf_worker_t,
        job: *mut sf_job_t,
        done: sf_done_cb,
        arg: *mut c_void,
        ticket: *mut u64,
    ) -> c_int;
    pub fn sf_worker_cancel(w: *mut sf_worker_t, ticket: u64) -> c_int;
    pub fn sf_worker_free(w: *mut sf_worker_t);
}

// libevent_core
extern "C" {
    pub fn event_base_new() -> *mut event_base;
    pub fn event_base_free(base: *mut event_base);
    pub fn event_base_get_method(base: *const event_base) -> *const c_char;
    pub fn event_base_loop(base: *mut event_base, flags: c_int) -> c_int;
    pub fn event_base_dispatch(base: *mut event_base) -> c_int;
    pub fn event_base_loopbreak(base: *mut event_base) -> c_int;
    pub fn event_base_once(
        base: *mut event_base,
        fd: evutil_socket_t,
        events: c_short,
        callback: event_callback_fn,
        arg: *mut c_void,
        timeout: *const timeval,
    ) -> c_int;
}
