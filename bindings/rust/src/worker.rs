//! `Worker`: a library-owned libevent loop on its own thread (`sf_worker_*`).
//!
//! Ownership model.  Every accepted submission has a `Slot` (the callback and
//! the job's owned descriptors).  The C library holds one `Arc<Slot>` (the
//! callback argument) until `done` runs or `sf_worker_cancel` returns 0; the
//! worker's table holds another under its ticket until then, so `cancel` can
//! find it.  Both updates of the table happen under its mutex, which is
//! never held while calling into the library.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::os::fd::OwnedFd;
use std::os::raw::{c_int, c_void};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::{Arc, Mutex};

use crate::error::Error;
use crate::job::Job;
use crate::sys;

type Done = Box<dyn FnOnce(Result<u64, Error>) + Send>;

/// Identifies a transfer submitted to a [`Worker`], for [`Worker::cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket(u64);

/// A libevent loop on a thread of its own that runs [`Job`]s handed to it,
/// from exactly where their last step left them (for callers whose own
/// reactor cannot watch the socket).  `Send + Sync`: submit and cancel from
/// any thread.  Dropping it cancels what is still running (those callbacks
/// never run) and joins the thread; a worker dropped inside one of its own
/// callbacks (the last `Arc` of it, say) cannot join itself and is leaked
/// instead, with a message on stderr.
///
/// Only jobs that own their descriptors (or borrow `'static` ones) can be
/// handed over: the worker may use them after the caller's borrows end.
///
/// ```compile_fail,E0597
/// use std::os::fd::AsFd;
/// use evsendfile::{Job, Options, Region, Worker};
/// let worker = Worker::new().unwrap();
/// let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// let sock = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
/// let file = std::fs::File::open("Cargo.toml").unwrap();
/// let job = Job::new(sock.as_fd(), &Region::fd(&file), &Options::new()).unwrap();
/// worker.submit(job, |_| {}); // error: `sock` and `file` do not live long enough
/// ```
pub struct Worker {
    raw: *mut sys::sf_worker_t,
    table: Arc<Table>,
}

#[derive(Default)]
struct Table {
    live: Mutex<HashMap<u64, Arc<Slot>>>,
}

struct Slot {
    payload: Mutex<Option<(Done, Vec<OwnedFd>)>>,
    /// (ticket once known, done has run); guarded by the table's mutex.
    state: Mutex<(Option<u64>, bool)>,
    table: Arc<Table>,
}

// SAFETY: every sf_worker_* function is thread-safe (evsendfile.h); the table is behind a mutex.
unsafe impl Send for Worker {}
// SAFETY: as above.
unsafe impl Sync for Worker {}

thread_local! {
    /// The table of the worker whose callback runs on this thread (null: none).
    static IN_CALLBACK: Cell<*const Table> = const { Cell::new(ptr::null()) };
}

impl Worker {
    /// Starts the thread.
    pub fn new() -> Result<Worker, Error> {
        let mut raw = ptr::null_mut();
        // SAFETY: raw is a valid out-pointer.
        let rc = unsafe { sys::sf_worker_new(&mut raw) };
        if rc < 0 {
            return Err(Error::from_code(rc));
        }
        Ok(Worker { raw, table: Arc::default() })
    }

    /// Hands `job` over: the worker continues it from where its last step
    /// left it (a job already `Done` or failed reports that status).  `done`
    /// runs exactly once on the worker's thread with the region bytes sent
    /// in total, or the error — unless [`cancel`](Worker::cancel) wins.
    /// The job is consumed in every case, also on `Err` (`ENOMEM`).  Its
    /// owned descriptors ([`Job::owning`]) close after `done` returned.  A
    /// panic in `done` is caught and printed (it cannot cross the C thread).
    pub fn submit<F>(&self, job: Job<'static>, done: F) -> Result<Ticket, Error>
    where
        F: FnOnce(Result<u64, Error>) + Send + 'static,
    {
        let (job, fds) = job.into_raw();
        let slot = Arc::new(Slot {
            payload: Mutex::new(Some((Box::new(done), fds))),
            state: Mutex::new((None, false)),
            table: self.table.clone(),
        });
        let arg = Arc::into_raw(slot.clone()) as *mut c_void;
        let mut ticket = 0u64;
        // SAFETY: the worker is live; the call takes `job` in every case; on_done matches
        // sf_done_cb and `arg` is one Arc reference the library owns until done or a cancel.
        let rc = unsafe { sys::sf_worker_submit_job(self.raw, job, Some(on_done), arg, &mut ticket) };
        if rc < 0 {
            // SAFETY: on failure `done` never runs: the library's reference comes back, once.
            drop(unsafe { Arc::from_raw(arg as *const Slot) });
            return Err(Error::from_code(rc));
        }
        let mut live = self.table.live.lock().unwrap();
        let mut state = slot.state.lock().unwrap();
        if !state.1 {
            state.0 = Some(ticket);
            drop(state);
            live.insert(ticket, slot);
        }
        Ok(Ticket(ticket))
    }

    /// Cancels a submitted transfer and waits until the worker no longer
    /// touches its socket or file.  `true`: cancelled, its callback never
    /// runs (it is dropped here, and the job's owned descriptors closed);
    /// `false`: the callback has run or is running.  Callable from any
    /// thread, a callback included.
    pub fn cancel(&self, ticket: Ticket) -> bool {
        let Some(slot) = self.table.live.lock().unwrap().get(&ticket.0).cloned() else {
            return false;
        };
        // SAFETY: the worker is live; sf_worker_cancel is thread-safe and may run in a callback.
        if unsafe { sys::sf_worker_cancel(self.raw, ticket.0) } != 0 {
            return false;
        }
        self.table.live.lock().unwrap().remove(&ticket.0);
        // SAFETY: cancelled: done never runs, so the library's reference (the pointer given to
        // submit, equal to Arc::as_ptr) is ours to release, exactly once (the entry is gone).
        drop(unsafe { Arc::from_raw(Arc::as_ptr(&slot)) });
        drop(slot.payload.lock().unwrap().take());
        true
    }
}

extern "C" fn on_done(_t: *mut sys::sf_transfer_t, status: c_int, body_sent: u64, arg: *mut c_void) {
    // SAFETY: arg is the reference `submit` gave the library; done runs at most once and never
    // after a successful cancel, so it is reclaimed exactly once.
    let slot = unsafe { Arc::from_raw(arg as *const Slot) };
    {
        let mut live = slot.table.live.lock().unwrap();
        let mut state = slot.state.lock().unwrap();
        state.1 = true;
        if let Some(t) = state.0 {
            live.remove(&t);
        }
    }
    let Some((done, fds)) = slot.payload.lock().unwrap().take() else { return };
    let result = if status == 0 { Ok(body_sent) } else { Err(Error::from_code(status)) };
    IN_CALLBACK.with(|c| c.set(Arc::as_ptr(&slot.table)));
    if let Err(p) = panic::catch_unwind(AssertUnwindSafe(move || done(result))) {
        let msg = p.downcast_ref::<&str>().copied().or_else(|| p.downcast_ref::<String>().map(String::as_str));
        eprintln!("evsendfile: a Worker callback panicked: {}", msg.unwrap_or("(no message)"));
    }
    IN_CALLBACK.with(|c| c.set(ptr::null()));
    drop(fds);
}

impl Drop for Worker {
    fn drop(&mut self) {
        if IN_CALLBACK.with(Cell::get) == Arc::as_ptr(&self.table) {
            // The library forbids sf_worker_free from a done callback: leave the thread running.
            eprintln!("evsendfile: a Worker dropped inside its own callback is leaked");
            return;
        }
        // SAFETY: not inside a callback; the worker is not used after this.  Every transfer still
        // running is cancelled: their done never runs.
        unsafe { sys::sf_worker_free(self.raw) };
        let cancelled: Vec<_> = self.table.live.lock().unwrap().drain().collect();
        for (_, slot) in cancelled {
            // SAFETY: as in cancel: the library's reference of a cancelled transfer is ours.
            drop(unsafe { Arc::from_raw(Arc::as_ptr(&slot)) });
            drop(slot.payload.lock().unwrap().take());
        }
    }
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker").field("running", &self.table.live.lock().unwrap().len()).finish()
    }
}
