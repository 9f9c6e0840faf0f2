//! `Job`: the engine without an event loop (`sf_job_*`), for any reactor.

use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::ptr::{self, NonNull};

use crate::error::{Error, EINVAL};
use crate::options::Options;
use crate::region::{Region, Source};
use crate::sys;

/// What a [`Job::step`] asks its driver to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Head, region and tail are all out.  Stepping again says `Done` again.
    Done,
    /// The socket's send buffer is full: step again once it is writable.
    Write,
    /// The source (a non-blocking pipe, FIFO or device) has no data: step
    /// again once [`Job::source_fd`] is readable.
    Read,
    /// `max_chunk` bytes moved in this step: let other work run, then step
    /// again (the socket is probably still writable).
    Yield,
    /// The file was found cold and one of the library's disk threads has the
    /// transfer (reading a chunk in, or sending it): step again once
    /// [`Job::wait_fd`] is readable (a spurious wake-up may answer `Source`
    /// again).
    Source,
}

/// One transfer (head bytes, a [`Region`] of a file, tail bytes onto a
/// non-blocking stream socket) that *you* drive, from any event loop: call
/// [`step`](Job::step) while it answers [`Step::Yield`], and after
/// [`Step::Write`] / [`Step::Read`] once the socket is writable / the source
/// readable.  `examples/poll_job.rs` drives one with `poll(2)`.
///
/// The job uses the socket and the file by descriptor number, without
/// duplicating them: a job made by [`Job::new`] borrows them (`'a`), one made
/// by [`Job::owning`] owns them.  Dropping the job frees it (`sf_job_free`):
/// it uncorks the socket and closes a file the library opened from a path.
/// Bytes already written stay written: the peer may have seen part of the
/// response, so a protocol that framed it (HTTP) must close the connection.
///
/// A job may move to another thread between steps (`Send`); the idle timeout
/// of [`Options`] is not applied by stepping (time is the driver's business).
/// It is not `Sync`: it cannot be stepped from two threads at once.
///
/// ```compile_fail
/// fn assert_sync<T: Sync>() {}
/// assert_sync::<evsendfile::Job<'static>>(); // error: Job is not Sync
/// ```
pub struct Job<'a> {
    raw: NonNull<sys::sf_job_t>,
    sock: RawFd,
    /// Descriptors the job owns (Job::owning); closed after the C job is freed.
    owned: Vec<OwnedFd>,
    _borrow: PhantomData<BorrowedFd<'a>>,
}

// SAFETY: the C job has no thread affinity; it may be stepped on any thread as long as steps are
// ordered (evsendfile.h, "Hand-over"), which `&mut self` on step guarantees.  Not Sync: body_sent
// reads state that step writes.
unsafe impl Send for Job<'_> {}

impl<'a> Job<'a> {
    /// Validates and prepares a transfer of `options.head`, `region`, then
    /// `options.tail` to `socket` (connected, non-blocking); writes nothing.
    /// The synchronous errors of [`send`](crate::send): `ENOENT`, `ERANGE`,
    /// `EISDIR`, `ESPIPE`, `ENOTSOCK`, [`Error::Blocking`], `EBUSY` (another
    /// job or transfer is still on this socket), ...  Head and tail
    /// are copied.  `socket` (`stream.as_fd()`) and a file given by
    /// [`Region::fd`] are borrowed for `'a`.
    pub fn new(socket: BorrowedFd<'a>, region: &Region<'a>, options: &Options<'_>) -> Result<Job<'a>, Error> {
        let (fd, path) = match &region.source {
            Source::Fd(file) => (file.as_raw_fd(), ptr::null()),
            Source::Path(Some(p)) => (-1, p.as_ptr()),
            Source::Path(None) => return Err(Error::Os(EINVAL)),
        };
        let c_region =
            sys::sf_region_t { fd, path, offset: region.offset, count: region.count.unwrap_or(sys::SF_COUNT_TO_EOF) };
        let mut iov = [sys::iovec { iov_base: ptr::null_mut(), iov_len: 0 }; 2];
        let c_opts = options.to_c(&mut iov);
        let sock = socket.as_raw_fd();
        let mut raw = ptr::null_mut();
        // SAFETY: c_region, c_opts and what they point to (iov, the option slices, the path
        // CString in `region`) outlive the call, which copies what it keeps; the descriptors are
        // borrowed for 'a, which the returned Job carries.
        let rc = unsafe { sys::sf_job_new(sock, &c_region, &c_opts, &mut raw) };
        if rc < 0 {
            return Err(Error::from_code(rc));
        }
        let raw = NonNull::new(raw).ok_or(Error::Os(EINVAL))?;
        Ok(Job { raw, sock, owned: Vec::new(), _borrow: PhantomData })
    }

    /// One step: moves bytes until the socket would block, the source has no
    /// data, `max_chunk` bytes went out, or the transfer ended.  `Err` is the
    /// status that ended it (`EPIPE`, `ECONNRESET`, [`Error::Truncated`],
    /// read errors, ...); stepping after `Done` or an error repeats it.
    pub fn step(&mut self) -> Result<Step, Error> {
        // SAFETY: raw is a live job (freed only in Drop / handed over by value); &mut self orders steps.
        match unsafe { sys::sf_job_step(self.raw.as_ptr()) } {
            sys::SF_STEP_DONE => Ok(Step::Done),
            sys::SF_STEP_WRITE => Ok(Step::Write),
            sys::SF_STEP_READ => Ok(Step::Read),
            sys::SF_STEP_YIELD => Ok(Step::Yield),
            sys::SF_STEP_SOURCE => Ok(Step::Source),
            rc => Err(Error::from_code(rc)),
        }
    }

    /// Region bytes delivered to the socket so far (head and tail not counted).
    pub fn body_sent(&self) -> u64 {
        // SAFETY: raw is live; no step runs concurrently (Job is not Sync).
        unsafe { sys::sf_job_body_sent(self.raw.as_ptr()) }
    }

    /// For the driver's idle timer, when it fires while the job waits after
    /// [`Step::Write`]: `true` when bytes left the socket's send queue since
    /// that step (or since the previous call) — a slow reader that keeps
    /// reading: re-arm the timer — `false` when none did: time out.  Always
    /// `false` unless [`Options::idle_timeout`] was set for the job.
    pub fn progressed(&mut self) -> bool {
        // SAFETY: raw is live; &mut self orders this with the steps.
        unsafe { sys::sf_job_progressed(self.raw.as_ptr()) == 1 }
    }

    /// The descriptor to wait on for readability after [`Step::Read`] (the
    /// caller's file, or the one the library opened from a path).
    pub fn source_fd(&self) -> RawFd {
        // SAFETY: raw is live.
        unsafe { sys::sf_job_source_fd(self.raw.as_ptr()) }
    }

    /// The descriptor to wait on for readability after [`Step::Read`] (the
    /// source) or [`Step::Source`] (the job's disk wake-up eventfd, owned by
    /// the library: never read or close it; stop watching it before the job
    /// is dropped).
    pub fn wait_fd(&self) -> RawFd {
        // SAFETY: raw is live.
        unsafe { sys::sf_job_wait_fd(self.raw.as_ptr()) }
    }

    /// The socket the job writes to.
    pub fn socket_fd(&self) -> RawFd {
        self.sock
    }

    /// Gives up the C job and the owned descriptors without freeing them
    /// (for the hand-over functions, which take the job in every case).
    pub(crate) fn into_raw(self) -> (*mut sys::sf_job_t, Vec<OwnedFd>) {
        let mut me = std::mem::ManuallyDrop::new(self);
        (me.raw.as_ptr(), std::mem::take(&mut me.owned))
    }
}

impl Job<'static> {
    /// Like [`Job::new`] for the region `offset..offset + count` (`None`: to
    /// the end) of `file`, but the job owns `socket` and `file` and closes
    /// them when it is dropped, or, once handed to a
    /// [`Worker`](crate::Worker), after the worker's callback returned.
    pub fn owning(
        socket: impl Into<OwnedFd>,
        file: impl Into<OwnedFd>,
        offset: u64,
        count: Option<u64>,
        options: &Options<'_>,
    ) -> Result<Job<'static>, Error> {
        let (socket, file) = (socket.into(), file.into());
        let mut region = Region::borrowed(file.as_fd()).offset(offset);
        region.count = count;
        // SAFETY of the lifetime extension: the descriptors move into the Job, which frees the C
        // job (in Drop, or through the hand-over) before they are closed.
        let job = Job::new(socket.as_fd(), &region, options)?;
        let (raw, sock) = (job.raw, job.sock);
        std::mem::forget(job);
        Ok(Job { raw, sock, owned: vec![socket, file], _borrow: PhantomData })
    }
}

impl Drop for Job<'_> {
    fn drop(&mut self) {
        // SAFETY: raw is live and ours; after this line it is never used.  `owned` (dropped after
        // this body) closes the descriptors only once the job let go of them.
        unsafe { sys::sf_job_free(self.raw.as_ptr()) };
    }
}

impl fmt::Debug for Job<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job").field("socket", &self.sock).field("body_sent", &self.body_sent()).finish()
    }
}
