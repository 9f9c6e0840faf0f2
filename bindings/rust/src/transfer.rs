//! `send` and `Transfer`: one file region on its way to a socket.
//!
//! Ownership model.  The library keeps using the socket and the source fd
//! until the completion callback has returned or `sf_cancel` has returned.
//! So that no Rust code can close them earlier (even through `mem::forget`
//! of a `Transfer`), `send` hands the library duplicates it owns, kept in
//! `Shared` and closed only after that point.  The library owns one `Rc`
//! reference to `Shared` (its callback argument) from a successful
//! `sf_send_async` until either the callback runs or `sf_cancel` returns 0.

use std::cell::Cell;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::raw::{c_int, c_void};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;

use crate::error::{Error, EINVAL};
use crate::event_loop::{EventLoop, LoopInner};
use crate::options::Options;
use crate::region::{Region, Source};
use crate::sys;

type Done = Box<dyn FnOnce(Result<u64, Error>)>;

/// Starts sending `options.head`, the `region` of a file, then
/// `options.tail` to `socket`, driven by `event_loop`.
///
/// `socket` must be a connected stream socket in non-blocking mode
/// (`set_nonblocking(true)`), else [`Error::Blocking`].  On success, `done`
/// runs exactly once, from the loop (never from inside `send`), with the
/// number of region bytes delivered, or with the error that ended the
/// transfer: `EPIPE`/`ECONNRESET` when the peer went away,
/// [`Error::Truncated`], [`Error::TimedOut`], read errors of the file...
/// — unless the returned [`Transfer`] is dropped first, which cancels it.
///
/// Synchronous errors (nothing was sent, `done` is dropped without running):
/// `ENOENT`/`EACCES` (path), `ERANGE` (region beyond the end), `EISDIR`,
/// `EBADF`, `ENOTSOCK`, `EPROTOTYPE`, `ESPIPE`, `EINVAL` (e.g. a path with a
/// NUL byte), [`Error::Blocking`], [`Error::NoKtls`].
///
/// `socket` and the region's file are duplicated: the transfer keeps the
/// connection open until it ends even if the caller closes its own handle.
pub fn send<S, F>(
    event_loop: &EventLoop,
    socket: &S,
    region: &Region<'_>,
    options: &Options<'_>,
    done: F,
) -> Result<Transfer, Error>
where
    S: AsFd + ?Sized,
    F: FnOnce(Result<u64, Error>) + 'static,
{
    let sock = dup(socket)?;
    let mut fds = vec![];
    let (fd, path) = match &region.source {
        Source::Fd(file) => {
            let owned = dup(file)?;
            let raw = owned.as_raw_fd();
            fds.push(owned);
            (raw, ptr::null())
        }
        Source::Path(Some(p)) => (-1, p.as_ptr()),
        Source::Path(None) => return Err(Error::Os(EINVAL)),
    };
    let c_region = sys::sf_region_t { fd, path, offset: region.offset, count: region.count.unwrap_or(sys::SF_COUNT_TO_EOF) };
    let mut iov = [sys::iovec { iov_base: ptr::null_mut(), iov_len: 0 }; 2];
    let c_opts = options.to_c(&mut iov);
    let sock_raw = sock.as_raw_fd();
    fds.push(sock);

    let shared = Rc::new(Shared {
        event_loop: event_loop.inner.clone(),
        handle: Cell::new(ptr::null_mut()),
        done: Cell::new(Some(Box::new(done))),
        fds: Cell::new(fds),
        final_sent: Cell::new(None),
    });
    let arg = Rc::into_raw(shared.clone()) as *mut c_void;
    let mut handle = ptr::null_mut();
    // SAFETY: the base is alive (event_loop borrowed); c_region, c_opts and the iovecs they point
    // to (iov, options' slices, the path CString in `region`) live until this call returns, and the
    // library copies what it keeps; sock_raw and fd are owned by `shared`, which stays alive while
    // the library holds `arg`.  on_done matches sf_done_cb.
    let rc = unsafe {
        sys::sf_send_async(event_loop.inner.base(), sock_raw, &c_region, &c_opts, Some(on_done), arg, &mut handle)
    };
    if rc < 0 {
        // SAFETY: on a synchronous error the library never calls `done`, so the reference given
        // to it by Rc::into_raw above comes back to us, once.
        drop(unsafe { Rc::from_raw(arg as *const Shared) });
        return Err(Error::from_code(rc));
    }
    shared.handle.set(handle);
    Ok(Transfer { shared })
}

fn dup<F: AsFd + ?Sized>(fd: &F) -> Result<OwnedFd, Error> {
    fd.as_fd().try_clone_to_owned().map_err(|e| Error::Os(e.raw_os_error().unwrap_or(EINVAL)))
}

struct Shared {
    event_loop: Rc<LoopInner>,
    /// The live C transfer; null once `done` ran or the transfer was cancelled.
    handle: Cell<*mut sys::sf_transfer_t>,
    done: Cell<Option<Done>>,
    /// Our duplicates of the socket and the source, for the library's use.
    fds: Cell<Vec<OwnedFd>>,
    /// body_sent when the transfer ended (done ran, or cancelled).
    final_sent: Cell<Option<u64>>,
}

extern "C" fn on_done(_t: *mut sys::sf_transfer_t, status: c_int, body_sent: u64, arg: *mut c_void) {
    // SAFETY: arg is the reference `send` leaked with Rc::into_raw.  The library runs `done` at most
    // once and never after sf_cancel returned 0 (where Transfer::cancel_now takes it back instead),
    // so it is reclaimed exactly once.
    let shared = unsafe { Rc::from_raw(arg as *const Shared) };
    shared.handle.set(ptr::null_mut());
    shared.final_sent.set(Some(body_sent));
    // The library may still touch the socket until this callback returns (it uncorks after
    // a timeout), so the descriptors are closed on a later loop turn.
    shared.event_loop.retire(shared.fds.take());
    let result = if status == 0 { Ok(body_sent) } else { Err(Error::from_code(status)) };
    if let Some(done) = shared.done.take() {
        // Unwinding into C would abort: keep the panic for the loop's run to resume.
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(move || done(result))) {
            shared.event_loop.store_panic(payload);
        }
    }
}

/// A running transfer.  Dropping it cancels the transfer if it has not
/// completed yet: its closure then never runs, and bytes already written
/// stay written (the peer saw a partial response).
///
/// Dropping it after completion, or from inside any completion closure
/// (its own included), is fine.  `mem::forget` on it is safe too: the
/// transfer then runs to its end and closes its descriptors.  It belongs to
/// the loop's thread:
///
/// ```compile_fail
/// fn assert_send<T: Send>() {}
/// assert_send::<evsendfile::Transfer>(); // error: Transfer is not Send
/// ```
pub struct Transfer {
    shared: Rc<Shared>,
}

impl Transfer {
    /// Region bytes delivered to the socket so far (final once finished).
    pub fn body_sent(&self) -> u64 {
        let h = self.shared.handle.get();
        if h.is_null() {
            return self.shared.final_sent.get().unwrap_or(0);
        }
        // SAFETY: a non-null handle is live: neither done ran nor a cancel succeeded (both null it),
        // and we are on the loop's thread (Transfer is not Send).
        unsafe { sys::sf_transfer_body_sent(h) }
    }

    /// Whether the completion closure has run (or is running).
    pub fn is_finished(&self) -> bool {
        self.shared.handle.get().is_null()
    }

    /// Cancels now.  `true`: cancelled, the closure will never run.
    /// `false`: it had already completed.
    pub fn cancel(self) -> bool {
        self.cancel_now()
    }

    fn cancel_now(&self) -> bool {
        let h = self.shared.handle.replace(ptr::null_mut());
        if h.is_null() {
            return false;
        }
        // SAFETY: h is live (see body_sent); this is not its own done callback, because on_done
        // nulls the handle before running user code; we are on the loop's thread.
        let sent = unsafe { sys::sf_transfer_body_sent(h) };
        // SAFETY: as above; sf_cancel may be called between runs or from any callback.
        let rc = unsafe { sys::sf_cancel(h) };
        if rc != 0 {
            // Not cancelled (cannot happen per the header): done will still run.
            self.shared.handle.set(h);
            return false;
        }
        self.shared.final_sent.set(Some(sent));
        // SAFETY: sf_cancel returned 0, so done never runs: the reference `send` gave the library
        // is ours to drop, exactly once (the handle is null from now on).
        drop(unsafe { Rc::from_raw(Rc::as_ptr(&self.shared)) });
        // The library has let go of the descriptors.
        self.shared.event_loop.release(self.shared.fds.take());
        // Last: dropping the closure runs arbitrary user code.
        drop(self.shared.done.take());
        true
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        self.cancel_now();
    }
}

impl fmt::Debug for Transfer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transfer")
            .field("finished", &self.is_finished())
            .field("body_sent", &self.body_sent())
            .finish()
    }
}
