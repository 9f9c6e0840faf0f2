//! `EventLoop`: an owned libevent `event_base` that runs transfers.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::CStr;
use std::io;
use std::os::fd::OwnedFd;
use std::os::raw::{c_short, c_void};
use std::panic;
use std::ptr::NonNull;
use std::rc::Rc;

use crate::sys;

/// A libevent event loop (`event_base`) owned by this thread.
///
/// Transfers started with [`send`](crate::send) progress while the loop runs,
/// and their completion closures run from it.  The loop is not `Send`: a
/// base and its transfers belong to one thread.  It is freed when the
/// `EventLoop` and every [`Transfer`](crate::Transfer) on it are gone.
///
/// A panic in a completion closure stops the current run and resumes from
/// `run`/`run_once`/`poll`, which the closure's caller then sees.
///
/// ```compile_fail
/// let event_loop = evsendfile::EventLoop::new().unwrap();
/// std::thread::spawn(move || event_loop.run()); // error: EventLoop is not Send
/// ```
pub struct EventLoop {
    pub(crate) inner: Rc<LoopInner>,
}

pub(crate) struct LoopInner {
    base: NonNull<sys::event_base>,
    running: Cell<bool>,
    panic: Cell<Option<Box<dyn Any + Send>>>,
    /// Descriptors the library may still touch until the callback that
    /// retired them has returned; closed on a later loop turn.
    retired: RefCell<Vec<OwnedFd>>,
    sweep_scheduled: Cell<bool>,
    /// libevent's epoll changelist defers `event_del` to the next dispatch:
    /// then no descriptor may be closed before that dispatch ran.
    changelist: bool,
}

impl EventLoop {
    /// Creates a new event base.
    pub fn new() -> io::Result<EventLoop> {
        // SAFETY: event_base_new has no preconditions; it returns NULL on failure.
        let base = NonNull::new(unsafe { sys::event_base_new() })
            .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "event_base_new failed"))?;
        // SAFETY: base is a valid event base; the method name is a static string owned by libevent.
        let method = unsafe { CStr::from_ptr(sys::event_base_get_method(base.as_ptr())) };
        let changelist = method.to_bytes().windows(10).any(|w| w == b"changelist");
        Ok(EventLoop {
            inner: Rc::new(LoopInner {
                base,
                running: Cell::new(false),
                panic: Cell::new(None),
                retired: RefCell::new(Vec::new()),
                sweep_scheduled: Cell::new(false),
                changelist,
            }),
        })
    }

    /// Runs until no transfer (or other event) is pending, or until
    /// [`break_loop`](Self::break_loop) is called.
    pub fn run(&self) -> io::Result<()> {
        self.inner.turn(0).map(|_| ())
    }

    /// Waits until at least one event is ready, runs the ready ones, and
    /// returns.  `Ok(false)` means nothing was pending (it did not wait).
    pub fn run_once(&self) -> io::Result<bool> {
        self.inner.turn(sys::EVLOOP_ONCE).map(|rc| rc == 0)
    }

    /// Runs the events that are ready now, without waiting.
    /// `Ok(false)` means nothing was pending.
    pub fn poll(&self) -> io::Result<bool> {
        self.inner.turn(sys::EVLOOP_NONBLOCK).map(|rc| rc == 0)
    }

    /// Makes the current `run` return after the callback that is running
    /// (`event_base_loopbreak`).  Without a running loop, the next run
    /// returns after its first batch of callbacks.
    pub fn break_loop(&self) {
        // SAFETY: base is valid for as long as self exists.
        unsafe { sys::event_base_loopbreak(self.inner.base.as_ptr()) };
    }

    /// The raw `event_base`, for adding other libevent events to this loop.
    /// It stays valid while this `EventLoop` exists; do not free it.
    pub fn as_raw(&self) -> *mut sys::event_base {
        self.inner.base.as_ptr()
    }
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop").field("base", &self.inner.base).finish()
    }
}

impl LoopInner {
    pub(crate) fn base(&self) -> *mut sys::event_base {
        self.base.as_ptr()
    }

    fn turn(&self, flags: std::os::raw::c_int) -> io::Result<std::os::raw::c_int> {
        if self.running.replace(true) {
            return Err(io::Error::other("the EventLoop is already running (called from one of its own callbacks)"));
        }
        // SAFETY: base is valid; `running` guarantees this is not a nested run of the same base.
        let rc = unsafe { sys::event_base_loop(self.base.as_ptr(), flags) };
        self.running.set(false);
        if !self.changelist {
            // Every callback has returned: the library is done with retired fds.
            self.sweep();
        }
        if let Some(payload) = self.panic.take() {
            panic::resume_unwind(payload);
        }
        if rc < 0 {
            return Err(io::Error::other("event_base_loop failed"));
        }
        Ok(rc)
    }

    /// Keeps the first panic of a completion closure for `turn` to resume,
    /// and stops the loop so that happens soon.
    pub(crate) fn store_panic(&self, payload: Box<dyn Any + Send>) {
        let first = self.panic.take().unwrap_or(payload);
        self.panic.set(Some(first));
        // SAFETY: base is valid; loopbreak only sets a flag.
        unsafe { sys::event_base_loopbreak(self.base.as_ptr()) };
    }

    /// Closes `fds` once the library can no longer touch them: after the
    /// running callback returned (right after it, or when `turn` returns).
    pub(crate) fn retire(&self, fds: Vec<OwnedFd>) {
        if fds.is_empty() {
            return;
        }
        self.retired.borrow_mut().extend(fds);
        if self.sweep_scheduled.get() {
            return;
        }
        // A zero timeout makes libevent run the sweep right after the running callbacks; with a
        // changelist the sweep must instead wait for the next dispatch (which applies the deferred
        // event_del), so it gets a timer, and timers are processed after a dispatch.
        let delay = sys::timeval { tv_sec: 0, tv_usec: if self.changelist { 1 } else { 0 } };
        let arg = self as *const LoopInner as *mut c_void;
        // SAFETY: base is valid; `arg` points into the Rc that owns the base, and libevent calls
        // sweep_cb only from event_base_loop on this base, which runs only while that Rc is alive.
        // event_base_free frees a still-pending once-event without calling it.
        let rc = unsafe { sys::event_base_once(self.base.as_ptr(), -1, sys::EV_TIMEOUT, Some(sweep_cb), arg, &delay) };
        // If that failed, the fds wait for the end of the run or for the loop's drop.
        self.sweep_scheduled.set(rc == 0);
    }

    /// Closes `fds` now if the library's `event_del` took effect already,
    /// otherwise after the next dispatch.
    pub(crate) fn release(&self, fds: Vec<OwnedFd>) {
        if self.changelist {
            self.retire(fds);
        } else {
            drop(fds);
        }
    }

    fn sweep(&self) {
        let fds = std::mem::take(&mut *self.retired.borrow_mut());
        drop(fds);
    }
}

extern "C" fn sweep_cb(_fd: sys::evutil_socket_t, _what: c_short, arg: *mut c_void) {
    // SAFETY: arg is the LoopInner that scheduled this once-event (see `retire`); it is alive
    // because its base is running this callback.
    let inner = unsafe { &*(arg as *const LoopInner) };
    inner.sweep_scheduled.set(false);
    inner.sweep();
}

impl Drop for LoopInner {
    fn drop(&mut self) {
        // Every transfer holds an Rc<LoopInner>, so none is pending here; at most
        // the sweep once-event is, and event_base_free frees it.
        // SAFETY: base came from event_base_new, is freed only here, and no loop runs on it
        // (a run borrows an EventLoop, which holds this Rc).
        unsafe { sys::event_base_free(self.base.as_ptr()) };
        self.sweep_scheduled.set(false);
        self.sweep();
    }
}
