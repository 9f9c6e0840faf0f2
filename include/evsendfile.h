/*
 * evsendfile.h -- send a region of a file to a non-blocking stream socket
 * with zero-copy sendfile(2), driven by libevent write events.
 *
 * Conventions (read these once, they hold for every function below):
 *
 *  - Errors are returned as NEGATIVE errno values (-EPIPE, -EAGAIN, ...) or as
 *    one of the library codes SF_E* below, which collide with no errno.
 *    sf_err_text() names every one of them.  No function sets errno for you.
 *  - Nothing here raises a signal or changes the process's signal
 *    disposition.  A peer that disconnects yields -EPIPE or -ECONNRESET, never
 *    a SIGPIPE, even when the process keeps the default SIGPIPE action; the
 *    calling thread's signal mask is left as it was found.
 *  - All offsets and counts are 64-bit, on every platform.
 *  - Thread rules: an sf_transfer_t / sf_job_t belongs to the thread that runs
 *    its event_base (or calls sf_job_step).  Different threads may run
 *    different transfers on different event bases at the same time.
 *    sf_worker_* functions are the only thread-safe entry points.
 *  - Nothing here throws (the library is C++ inside, C at the boundary).
 */
#ifndef EVSENDFILE_H
#define EVSENDFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h> /* struct iovec */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define SF_EXTERN __attribute__((visibility("default")))
#else
#define SF_EXTERN
#endif

struct event_base;

/* ---------------------------------------------------------------- version */

/* The one place the version is written: CMakeLists.txt reads these three
 * lines, the bindings ask the loaded library (sf_version / sf_version_text)
 * and their tests compare their package versions with it.  The major number
 * is the SONAME's (libevsendfile.so.2). */
#define SF_VERSION_MAJOR 2
#define SF_VERSION_MINOR 1
#define SF_VERSION_PATCH 0

/* (major << 16) | (minor << 8) | patch of the library actually loaded. */
SF_EXTERN unsigned sf_version(void);
/* "2.1.0"; a static string.  (Not "sf_version_string": libsndfile exports
 * that name, and a process may load both libraries.) */
SF_EXTERN const char *sf_version_text(void);

/* ----------------------------------------------------------------- errors */

/* Library error codes.  They are negative like the errno values, and far
 * below any errno, so `status < 0` is the one error test. */
#define SF_ETRUNCATED (-30001) /* the file ended before the region did: close the connection */
#define SF_ETIMEDOUT  (-30002) /* idle_timeout_ms passed without progress */
#define SF_EBLOCKING  (-30003) /* the socket is in blocking mode; set O_NONBLOCK first */
#define SF_ENOKTLS    (-30004) /* SF_TLS given, but kernel TLS transmit is not active */

/* A short English description of `err` (not "sf_strerror": libsndfile's name) (any value this library returns,
 * or any -errno).  Never NULL; the string is static. */
SF_EXTERN const char *sf_err_text(int err);
/* The symbolic name: "SF_ETRUNCATED", "EPIPE", "ENOBUFS", ... for the library's
 * codes and every -errno the C library can name; "UNKNOWN" otherwise. */
SF_EXTERN const char *sf_err_name(int err);

/* ---------------------------------------------------------------- regions */

#define SF_COUNT_TO_EOF UINT64_MAX

typedef struct sf_region {
    int         fd;     /* open file to read; -1 means open `path` (the library then closes it) */
    const char *path;   /* used only when fd == -1 */
    uint64_t    offset; /* first byte of the file to send */
    uint64_t    count;  /* bytes to send, or SF_COUNT_TO_EOF */
} sf_region_t;

/*
 * Which sources are accepted:
 *  - regular files: the size is read ONCE, with fstat on the very fd that is
 *    read (no stat-then-open race), or handed in (SF_KNOWN_SIZE).  offset >
 *    size is -ERANGE; an explicit count past the end is -ERANGE;
 *    SF_COUNT_TO_EOF means "size - offset".
 *    If the file shrinks during the transfer, the transfer ends with
 *    SF_ETRUNCATED and body_sent tells how much of the region got out.
 *  - files on pseudo filesystems whose sizes lie (/proc, sysfs, cgroup,
 *    debugfs, tracefs, securityfs, pstore, efivarfs, bpffs), pipes, FIFOs and
 *    character devices: streamed with read(2) to EOF (or until `count`
 *    bytes), through a bounded buffer.  offset must be 0 for a pipe
 *    (-ESPIPE otherwise).  A non-blocking pipe with no data waits for
 *    EV_READ on it (idle timeout included).  A FIFO or device opened by path
 *    is switched to O_NONBLOCK; note that open(2) of a FIFO by path itself
 *    blocks until a writer opens it -- pass an fd for FIFOs.
 *  - directories: -EISDIR; sockets as source: -EINVAL;
 *    an fd not open for reading (or an O_PATH fd): -EBADF.
 * The caller keeps ownership of `fd` (when fd >= 0); it must stay open until
 * the transfer completes or is cancelled.
 */

/* ---------------------------------------------------------------- options */

/* flags */
#define SF_NO_SENDFILE 0x1u /* never call sendfile: pread/read + write only (also: env EVSENDFILE_NO_SENDFILE=1, read at load) */
#define SF_TLS         0x2u /* the socket carries TLS: sendfile is allowed only when kernel TLS transmit is active */
#define SF_NO_CORK     0x4u /* do not set TCP_CORK around body + tail (see 3. below) */
/* The caller vouches that `sock` is a connected, non-blocking stream socket
 * and that a caller-owned region->fd is open for reading, as a server that
 * made both itself knows.  The three per-transfer checks (fcntl on each,
 * getsockopt) are skipped: half the syscalls of a small response besides
 * its read and write.  The socket is then treated as TCP (MSG_MORE, and
 * TCP_CORK before a tail; both are harmless on a Unix socket).  A false
 * promise corrupts nothing, but is not caught up front: a blocking socket
 * can block the loop inside sendfile, a write-only fd fails in done. */
#define SF_TRUSTED     0x8u
/* Bodies that are not small go with sendfile to remote peers and Unix sockets, with the copy path to
 * TCP peers on this host, where it measured faster (bench/RESULTS.md, "Sendfile or copy, per peer");
 * SF_FORCE_SENDFILE uses sendfile for every peer (also: env EVSENDFILE_FORCE_SENDFILE=1, read at load).
 * SF_NO_SENDFILE wins over it. */
#define SF_FORCE_SENDFILE 0x10u
/* Never ask whether the file's pages are in memory, never use the disk
 * threads: every read and sendfile runs on the calling thread, and a cold
 * file blocks it for as long as the disk takes (the behaviour before 2.1).
 * See "Cold files" below for the default. */
#define SF_DISK_INLINE 0x20u
/* The caller has fstat'ed region->fd (its own fd, a regular file) and hands
 * in st_size as opts->file_size; the library then skips its own fstat: a
 * small response of a server that opens, fstats (for Content-Length), reads
 * and writes costs 7 syscalls instead of 8.  The region's rules below apply to
 * that size.  With region->fd == -1 (a path): -EINVAL.  A false size
 * corrupts nothing: a file shorter than claimed ends in SF_ETRUNCATED, a
 * longer one is cut at the size given; a source that is not a regular file
 * fails in done. */
#define SF_KNOWN_SIZE 0x40u
/* The response ends the connection's output (HTTP/1.0, "Connection: close"):
 * once the transfer's last byte is out, the library shuts the socket's write
 * side down (shutdown(SHUT_WR)), so the peer sees the end of the stream at
 * once -- done runs later, from the loop's next turn (as libuv's uv_shutdown
 * follows the writes queued before it).  Only a transfer that succeeded is
 * shut; a shutdown that fails (ENOTCONN: the peer reset the connection)
 * becomes its status, with body_sent counting the bytes that went out.  The
 * socket stays open: closing it is the caller's.  sf_bufferevent_send and
 * sf_evhttp_send_file refuse it (-EINVAL): there the bufferevent owns the
 * stream's end. */
#define SF_SHUT_WR 0x80u

/* Defaults, each the winner of bench/core_bench runs (the figures and why:
 * bench/RESULTS.md, "The defaults and why").  SF_SMALL_BODY_MAX is also the
 * most heap a small transfer holds while it waits for its socket. */
#define SF_DEFAULT_MAX_CHUNK  (2u * 1024u * 1024u) /* bytes moved per readiness callback before yielding */
#define SF_SMALL_BODY_MAX     (32u * 1024u)        /* bodies up to this go as one read + one writev */
#define SF_COPY_BUFFER_SIZE   (256u * 1024u)       /* the copy path's buffer (see 4. below) */

typedef struct sf_options {
    size_t              struct_size;     /* sizeof(sf_options_t); lets the struct grow without an ABI break */
    const struct iovec *head;            /* bytes sent before the region (e.g. HTTP headers), copied at submit */
    int                 head_count;
    const struct iovec *tail;            /* bytes sent after it (e.g. chunk trailer), copied at submit */
    int                 tail_count;
    uint64_t            max_chunk;       /* most bytes moved per write-readiness callback before yielding; 0 = default */
    uint32_t            idle_timeout_ms; /* fail with SF_ETIMEDOUT after this long without progress; 0 = never.
                                          * Progress: a write, or bytes leaving the send queue (a peer
                                          * that keeps reading slowly is never cut; one that stops is) */
    unsigned            flags;           /* SF_NO_SENDFILE, SF_TLS, SF_NO_CORK, SF_TRUSTED,
                                          * SF_FORCE_SENDFILE, SF_DISK_INLINE, SF_KNOWN_SIZE, SF_SHUT_WR */
    /* Since 2.1 (a caller built against 2.0.x passes a smaller struct_size; fields it lacks read as 0): */
    uint64_t            file_size;       /* with SF_KNOWN_SIZE: region->fd's size (st_size) */
} sf_options_t;

/* Fills *opts with the defaults and the right struct_size. */
SF_EXTERN void sf_options_init(sf_options_t *opts);

/*
 * How the bytes go out (so you know what to expect on the wire):
 *  1. head, then the region, then tail -- always in that order, never
 *     interleaved with anything else the library writes (a second transfer
 *     on the same socket is refused with -EBUSY while the first runs).
 *  2. A region of at most SF_SMALL_BODY_MAX bytes is read once (into the
 *     thread's copy buffer of 4.) and written with head and tail in one
 *     writev: one packet for a small response.  Only bytes the socket did
 *     not take are kept, in a buffer of the transfer's own.
 *  3. Larger regions go with sendfile(2) (the copy path of 4. to a TCP peer
 *     on this host, see SF_FORCE_SENDFILE) in calls of at most what remains
 *     and at most 0x7ffff000 bytes.  On TCP the head goes with MSG_MORE, so
 *     the kernel holds it until sendfile's first bytes join it (one packet,
 *     no cork needed: TCP_CORK around head + body cost 6-40 % throughput
 *     in 14 of 17 bench/ cells, three syscalls per response).  With a tail, TCP_CORK is set
 *     for the duration (unless it was already set, or SF_NO_CORK), so no
 *     Nagle / delayed-ACK stall separates the body's end from the tail.
 *  4. When sendfile refuses the source (EINVAL, ENOSYS, EOPNOTSUPP, EPERM,
 *     EOVERFLOW, ESOCKTNOSUPPORT, EAFNOSUPPORT), the transfer continues with
 *     pread + send from the current offset, through a SF_COPY_BUFFER_SIZE
 *     buffer, never re-sending the head and never reading past the region.
 *     ENOSYS is remembered for the rest of the process.  For a regular file
 *     that buffer is one per thread, not per transfer: bytes the socket did
 *     not take are read again (from the page cache) on the next step, so a
 *     transfer waiting for its socket holds no buffer.  Pipes, devices and
 *     files whose size lies keep theirs (they cannot be read twice).
 *  5. After max_chunk bytes in one callback, the transfer yields to the event
 *     loop, so other connections on the same base keep moving.
 *
 * Cold files (the default; SF_DISK_INLINE turns it off).  Before each
 * sendfile call of a regular file the engine asks the kernel whether the
 * chunk's pages are in the page cache (cachestat(2), ~58 ns per page on the
 * bench machine; mincore on older kernels; a kernel that can tell neither
 * means "send inline", remembered for the process).  The copy path asks
 * nothing: its reads on the loop are preadv2(RWF_NOWAIT), which the kernel
 * refuses when the first page is not in memory and cuts short before one
 * that is not (a file system that refuses RWF_NOWAIT, like tmpfs, is asked
 * with cachestat instead).  From the first page found missing, the
 * rest of the body is the library's disk threads' work, and the transfer
 * waits for them without blocking its loop: other connections, timers and
 * transfers on the same base run meanwhile; the idle timeout does not count
 * that wait.  A thread reads the first chunk (max_chunk bytes, at most
 * 2 MiB) in, asking the kernel to read the next 4 MiB ahead
 * (POSIX_FADV_WILLNEED, not waited for), then sends the body itself --
 * sendfile or the copy path, as the loop would, non-blocking -- chunk after
 * chunk, reading each later chunk as it sends it (the kernel's readahead);
 * between two chunks it lets other transfers waiting for a thread go first.
 * So the loop copies none of a cold transfer's bytes (like nginx's
 * `aio threads`).  When the socket is full the loop waits for it to be
 * writable and hands the transfer over again (what was read in is not read
 * again).  Head and tail are sent by the loop (the copy path's head goes
 * with the first chunk).  Regions of at most
 * SF_SMALL_BODY_MAX bytes are not asked about (their one read is small).
 *  - The disk threads: at most 4, started by the first cold chunk in the
 *    process and shared by every event_base, worker and stepped job; one
 *    FIFO queue of at most 1024 waiting chunks, one per transfer at a time
 *    (transfers take turns).  When the queue is full, or no thread can be
 *    started, the chunk is sent inline (it blocks, as with SF_DISK_INLINE).
 *    A thread reads through its own dup of the source fd, so sf_cancel /
 *    sf_job_free / sf_worker_cancel may be followed by close(fd) at once; a
 *    read in progress then finishes on the dup, sends nothing, and nothing
 *    is called back (until it ends, the library holds two fds for it: the
 *    dup and the job's eventfd).  A send in progress is waited for: the
 *    thread stops after its current syscall (one pread or sendfile of at
 *    most a chunk, which may wait for the disk); when they return, no thread
 *    touches the socket or the source fd any more.  When a transfer's done runs, its fds are
 *    already closed; a stepped job's stay open until sf_job_free.
 *  - The holes of a sparse file are not in the page cache either: they go
 *    through the disk threads like cold pages (quickly: nothing is read).
 *  - The threads block every signal, are detached, idle when there is no
 *    cold chunk, and run until the process exits (the shared library is
 *    never unloaded: it is linked -z nodelete).  In a child of fork() the
 *    pool starts afresh: its own threads, started when needed; chunks the
 *    parent's threads were reading are read again by the child's.  A
 *    transfer one of them was sending at the fork ends in the child with
 *    -ECANCELED (its copy there stopped mid-send; the parent's goes on).
 *    The sockets are shared: a child should not go on with the parent's
 *    transfers (exec, or cancel them).
 *  - Stepping jobs (sf_job_step) answer SF_STEP_SOURCE while they wait.
 */

/* -------------------------------------------------------- capability test */

/*
 * Returns 1 when sf_send_async on `sock` would be accepted and zero-copy
 * sendfile can serve a region above SF_SMALL_BODY_MAX (a TCP peer on this
 * host still gets the copy path unless SF_FORCE_SENDFILE); 0 when it would
 * take the copy path or cannot run at all; negative on error.  The socket
 * checks are the ones sf_send_async makes (flags' SF_TRUSTED is ignored here).
 *   0: not a stream socket, in blocking mode (SF_EBLOCKING), not connected,
 *      a platform without sendfile, `flags` has SF_NO_SENDFILE, env
 *      EVSENDFILE_NO_SENDFILE=1 (read once, when the library is loaded),
 *      sendfile was found to be ENOSYS earlier, or `flags` has SF_TLS and
 *      kernel TLS transmit is not active on `sock`.
 *  -EBADF: `sock` is not an open descriptor.
 * Thread-safe.
 */
SF_EXTERN int sf_can_use(int sock, unsigned flags);

/*
 * The per-peer choice of SF_FORCE_SENDFILE, made once per connection instead
 * of once per transfer.  Returns `flags` plus SF_NO_SENDFILE when a body above
 * SF_SMALL_BODY_MAX would take the copy path to this socket's peer (a TCP peer
 * on this host), or plus SF_FORCE_SENDFILE when it would take sendfile (a
 * Unix socket, a remote peer).  Give the result as sf_options_t.flags to every
 * transfer on that connection: they then skip their getpeername (and, for a
 * peer that is not on a loopback address, getsockname).  Costs those one or
 * two syscalls, once.
 * When `flags` or the environment already fix the method (SF_NO_SENDFILE,
 * SF_FORCE_SENDFILE, SF_TLS, EVSENDFILE_NO_SENDFILE=1,
 * EVSENDFILE_FORCE_SENDFILE=1, sendfile found ENOSYS), nothing is asked and
 * `flags` come back with that method's flag.
 * Errors, from getpeername or getsockname: -EBADF, -ENOTSOCK, -ENOTCONN,
 * -ENOBUFS...  Then pass `flags` unchanged: each transfer decides for itself.
 * Thread-safe.
 */
SF_EXTERN int sf_peer_flags(int sock, unsigned flags);

/* ----------------------------------------------------- libevent transfers */

typedef struct sf_transfer sf_transfer_t;

/* Called exactly once per successful sf_send_async (unless cancelled), from
 * the event loop.  `status` is 0 or an error; `body_sent` is the number of
 * region bytes delivered to the socket (head and tail not counted).
 * `t` is valid until this callback returns; do not free it. */
typedef void (*sf_done_cb)(sf_transfer_t *t, int status, uint64_t body_sent, void *arg);

/*
 * Starts sending `opts->head`, the region, then `opts->tail` to `sock`, a
 * connected, non-blocking stream socket, driven by EV_WRITE events on `base`.
 *
 * Returns 0 and, when `out` is not NULL, a handle for sf_cancel; or a negative
 * error synchronously -- then nothing was sent, no fd was leaked and `done`
 * never runs.  Synchronous errors:
 *   -EINVAL       NULL base/region/done, bad opts (struct_size too small,
 *                 negative counts, NULL iovec with count > 0), fd < 0 and
 *                 path NULL, a socket as the source
 *   -EBADF        `sock` or `region->fd` is not open (or not open for reading)
 *   -ENOTSOCK     `sock` is not a socket
 *   -EPROTOTYPE   `sock` is not a stream socket
 *   SF_EBLOCKING  `sock` is in blocking mode
 *   SF_ENOKTLS    SF_TLS given and kernel TLS transmit is not active
 *   -EISDIR       the source is a directory
 *   -ERANGE       offset beyond the end, or offset + count beyond the end
 *   -ESPIPE       offset != 0 on a pipe or FIFO
 *   -EBUSY        another transfer or job is still on `sock` (from sf_send_async,
 *                 sf_job_new or sf_worker_submit, in any thread): one at a
 *                 time per socket, so two responses never interleave.  The
 *                 socket is free again when the first one's `done` runs (its
 *                 done callback may start the next), when a job steps to
 *                 DONE or an error, or when it is cancelled or freed
 *   -ENOENT, -EACCES, ...  open(path) failed
 *   -ENOMEM       out of memory
 *
 * The first step runs inside this call (the socket is usually writable):
 * a small response may be entirely on the wire when it returns, and a
 * response that leaves at once never costs an epoll registration.  `done`
 * still runs exactly once, from `base`'s loop, never from inside this call
 * (a response that ends the connection ends it at once with SF_SHUT_WR,
 * without waiting for done: at 10,000 one-response connections that raised
 * the transfers per second 1.3-1.7x at up to 64 KiB, bench/RESULTS.md,
 * core_bench runs 15-16).
 * Asynchronous statuses: 0; -EPIPE / -ECONNRESET (peer went away);
 * SF_ETRUNCATED (file shrank: bytes promised in a header are missing, close
 * the connection); SF_ETIMEDOUT; -EIO and other read errors of the file
 * (-EAGAIN from a regular file opened O_NONBLOCK on a filesystem that
 * refuses to wait; only pipes, FIFOs and devices are waited on); -ENOBUFS,
 * -ENOMEM and any other -errno from the socket.  EINTR is retried; EINVAL,
 * ENOSYS, EOPNOTSUPP, EPERM, EOVERFLOW, ESOCKTNOSUPPORT and EAFNOSUPPORT
 * from sendfile fall back to read + send at the same offset; TCP_CORK
 * failures never fail a transfer (tests/fault_outcomes.tsv has every case).
 *
 * Files that change while they are sent: SF_ETRUNCATED catches a file that
 * ends before the region does, never a file rewritten in place.  sendfile
 * queues page-cache pages by reference, and truncating or rewriting the file
 * changes those pages, so a transfer that completes can still deliver zeros
 * or new bytes (measured: 3.8 % of responses in tests/httpd/test_soak.py
 * when truncating at arbitrary lengths).  Replace served files with
 * rename(2), as deployment tools do.
 *
 * The event_base: cancel every transfer on `base` (sf_cancel, or all at once
 * with sf_cancel_all) before event_base_free(base).  A transfer still pending when its base is freed
 * leaks its memory and a library-opened fd, and sf_cancel afterwards would
 * touch the freed base.
 *
 * Ownership: head/tail bytes are copied here.  `sock` and a caller-owned fd
 * stay the caller's, and must stay open until `done` runs or sf_cancel returns.
 * A library-opened fd (region->fd == -1) is closed before `done` runs.
 */
SF_EXTERN int sf_send_async(struct event_base *base, int sock, const sf_region_t *region,
                            const sf_options_t *opts /* may be NULL */, sf_done_cb done, void *arg,
                            sf_transfer_t **out /* may be NULL */);

/*
 * Stops a transfer started by sf_send_async.  After it returns 0, `done` never
 * runs, the event is removed from its base, and a library-opened fd is closed.
 * Bytes already written stay written: the peer saw a partial response.
 * Call it on the thread that runs the transfer's base (from any callback,
 * a timer, or between loop runs).
 *   -EINVAL    t is NULL
 *   -EALREADY  called from t's own done callback (t is released when done returns)
 * Calling it after `done` has returned is undefined behaviour (the handle is gone).
 */
SF_EXTERN int sf_cancel(sf_transfer_t *t);

/*
 * Cancels every transfer running on `base` (as sf_cancel does, one by one:
 * their `done` never runs, library-opened fds are closed) and returns how
 * many; for a server shutting down before event_base_free(base).  Only
 * transfers started on `base`: the worker's are sf_worker_free's business.
 * A transfer whose `done` is running (the call comes from a done callback)
 * is left to finish.  Call on the thread that runs `base`.
 *   -EINVAL    base is NULL
 */
SF_EXTERN int sf_cancel_all(struct event_base *base);

/* Region bytes delivered so far (for progress reporting). */
SF_EXTERN uint64_t sf_transfer_body_sent(const sf_transfer_t *t);

/* ------------------------------------------ stepping API (foreign loops) */

/*
 * The same engine, without libevent: for event loops that are not libevent
 * (asyncio, a Rust reactor, epoll by hand).  Create a job, call sf_job_step
 * whenever the socket is writable, and act on what it returns:
 *   SF_STEP_DONE (0)   all of head, region and tail are out; free the job.
 *   SF_STEP_WRITE      the socket's buffer is full: wait until it is writable.
 *                      The step saw it full itself (a send said EAGAIN; after
 *                      a disk thread's send did, a poll(POLLOUT) check), so an
 *                      edge-triggered loop may clear its write readiness.
 *   SF_STEP_READ       the source (a non-blocking pipe) has no data: wait until
 *                      sf_job_source_fd(job) is readable.
 *   SF_STEP_YIELD      max_chunk bytes moved in this call: let other work run,
 *                      then step again (the socket is probably still writable).
 *   SF_STEP_SOURCE     the file was found cold and a disk thread is reading
 *                      or sending a chunk ("Cold files" above): wait until
 *                      sf_job_wait_fd(job) is readable (poll/epoll POLLIN, or
 *                      asyncio add_reader), then step again.  Stop watching
 *                      that fd before sf_job_free.  A step may also say this
 *                      again after a wake-up (then wait again).
 *   < 0                the transfer failed (same statuses as sf_done_cb); free it.
 * Stepping after DONE or an error returns the same value again.
 * idle_timeout_ms is not applied here: that is the loop's business (see
 * sf_job_progressed for a timer that fires).
 */
typedef struct sf_job sf_job_t;

#define SF_STEP_DONE  0
#define SF_STEP_WRITE 1
#define SF_STEP_READ  2
#define SF_STEP_YIELD 3
#define SF_STEP_SOURCE 4

/* Validates and prepares; the same synchronous errors as sf_send_async.
 * Writes nothing to the socket. */
SF_EXTERN int sf_job_new(int sock, const sf_region_t *region, const sf_options_t *opts, sf_job_t **out);
SF_EXTERN int sf_job_step(sf_job_t *job);
SF_EXTERN uint64_t sf_job_body_sent(const sf_job_t *job);
/* For the caller's idle timer, when it fires while the job waits after
 * SF_STEP_WRITE: 1 when bytes left the socket's send queue since that step
 * (or since the previous call) -- a slow reader that keeps reading; re-arm
 * the timer -- and 0 when none did: time out.  Needs opts->idle_timeout_ms
 * set at sf_job_new (then each step that says SF_STEP_WRITE or SF_STEP_YIELD
 * notes the queue's level, one ioctl); 0 without it, or where the kernel
 * cannot tell.
 * The libevent driver and the worker do exactly this with idle_timeout_ms. */
SF_EXTERN int sf_job_progressed(sf_job_t *job);
/* The source fd (to wait for readability after SF_STEP_READ). */
SF_EXTERN int sf_job_source_fd(const sf_job_t *job);
/* The fd to wait for readability after SF_STEP_READ (the source fd) or
 * SF_STEP_SOURCE (the job's disk wake-up fd, an eventfd owned by the
 * library: never close or read it).  -1 for NULL. */
SF_EXTERN int sf_job_wait_fd(const sf_job_t *job);
/* Frees the job and closes a library-opened fd and the job's wake-up fd
 * (both stay open until here, also after DONE or an error, so a loop can stop
 * watching them first).  NULL is allowed. */
SF_EXTERN void sf_job_free(sf_job_t *job);

/*
 * Hand-over: a job that was created (and maybe stepped) by the caller goes on
 * under the library's drivers, from exactly where it stopped -- the head is
 * not sent again, the offset is where the last step left it.  A job that is
 * already DONE or failed is accepted too: its `done` reports that status.
 *
 * Ownership: these calls take `job` in EVERY case, also when they fail (the
 * job is then freed and a library-opened fd closed); never step or free it
 * again.  Thread rules: the job must not be stepped concurrently with the
 * call; it may have been created and stepped on any thread, provided the
 * caller orders those steps before the call (a mutex, a queue, a join).
 */

/* Drives `job` on `base` as sf_send_async would (its first step runs inside
 * this call; `done` runs from the loop).  Call on the thread that runs `base`.
 *   0        *out (may be NULL) is a handle for sf_cancel
 *   -EINVAL  NULL job, base or done
 *   -ENOMEM  out of memory */
SF_EXTERN int sf_job_start(sf_job_t *job, struct event_base *base, sf_done_cb done, void *arg,
                           sf_transfer_t **out /* may be NULL */);

/* ------------------------------------------ worker: a library-owned loop */

/*
 * A libevent loop on a thread of its own, for callers that cannot add the
 * socket to their own loop (Python's asyncio refuses add_writer on a
 * transport's fd).  All sf_worker_* functions are thread-safe.
 * `done` runs on the worker's thread.
 */
typedef struct sf_worker sf_worker_t;

/* Starts the thread.  -ENOMEM, -EAGAIN (no thread), or another -errno. */
SF_EXTERN int sf_worker_new(sf_worker_t **out);

/* Like sf_send_async (same synchronous errors), on the worker's loop.
 * *ticket (may be NULL) identifies the transfer for sf_worker_cancel. */
SF_EXTERN int sf_worker_submit(sf_worker_t *w, int sock, const sf_region_t *region,
                               const sf_options_t *opts, sf_done_cb done, void *arg,
                               uint64_t *ticket);

/* Continues `job` on the worker's loop (see "Hand-over" above for ownership).
 * From any thread.  -EINVAL (NULL w, job or done), -ENOMEM. */
SF_EXTERN int sf_worker_submit_job(sf_worker_t *w, sf_job_t *job, sf_done_cb done, void *arg,
                                   uint64_t *ticket /* may be NULL */);

/*
 * Cancels a worker transfer and WAITS until the worker no longer touches the
 * socket or the file, so the caller may close them right after.
 *   0          cancelled: `done` will never run
 *   -EALREADY  `done` has run or is running: it runs to its end exactly once
 *   -EINVAL    w is NULL
 * May be called from any thread, including from a done callback.
 */
SF_EXTERN int sf_worker_cancel(sf_worker_t *w, uint64_t ticket);

/* Cancels every transfer still running (their `done` never runs), stops
 * and joins the thread, frees `w`.  NULL is allowed.  Not from a done cb. */
SF_EXTERN void sf_worker_free(sf_worker_t *w);

/* ------------------------------------------------------------ bufferevents */

struct bufferevent;

/*
 * Sends head, the region, then tail on the socket under `bev` (a socket
 * bufferevent, libevent_core), for programs that do their I/O through
 * bufferevents.  Call it on the thread that runs bev's event_base.
 *
 * On the wire: the bytes already in bev's output buffer go first (libevent
 * writes them, as it would have), then opts->head, the region, opts->tail,
 * exactly as sf_send_async sends them.  Pass response headers in opts->head
 * rather than writing them to bev: then they leave with the body's first
 * bytes (one packet) instead of in a write of their own.
 *
 * While the transfer runs the library owns the socket and bev is parked: its
 * callbacks are replaced, EV_READ and (once the queued bytes are out) EV_WRITE
 * are disabled, so bev neither reads nor writes and none of its callbacks or
 * timeouts fire.  Until `done` runs, do not write to bev, read or drain its
 * input, enable or disable it, or change its callbacks.  Before `done` runs,
 * bev is put back as it was: the same callbacks and cbarg, the same enabled
 * events (their timeouts re-armed from then), watermarks untouched.  Input
 * that arrived meanwhile is still in the kernel and is read, and the read
 * callback called, from the loop once EV_READ is enabled again.  `t` in done
 * is the handle `out` returned.
 *
 * Refused bufferevents (nothing was sent, bev untouched, done never runs):
 *   -EOPNOTSUPP  a pair (bufferevent_pair_new), a filter (bufferevent_filter_new,
 *                OpenSSL over another bufferevent), or rate-limited
 *                (bufferevent_set_rate_limit, or a rate-limit group whose share
 *                is below the single-write maximum: a group with tokens to spare
 *                cannot be told apart) -- their bytes must pass through
 *                libevent, so send the file with evbuffer_add_file instead
 *   SF_ENOKTLS   an OpenSSL socket bufferevent (bufferevent_openssl_socket_new)
 *                without kernel TLS transmit active on its socket; with it, the
 *                transfer proceeds as if SF_TLS was given
 *   -EBADF       bev has no socket yet (bufferevent_getfd < 0)
 * plus every synchronous error of sf_send_async (-EINVAL for NULL bev, region
 * or done, and for SF_SHUT_WR: the bufferevent owns the stream's end).
 *
 * Asynchronous statuses: those of sf_send_async, -ECANCELED (bev was freed,
 * see below), and for the flush of bytes
 * queued in bev before the call: -errno of a socket error, -EPIPE when
 * libevent reports EOF, SF_ETIMEDOUT when bev's own write timeout fires
 * (opts->idle_timeout_ms covers the transfer after the flush).
 *
 * Ending early:
 *  - sf_cancel(*out), or sf_cancel_all(bev's base): the transfer stops, done
 *    never runs, bev is put back at once (bytes already written stay written:
 *    close the connection).
 *  - bufferevent_free(bev): ends the transfer too, and done runs once with
 *    -ECANCELED (from the loop, at the latest when libevent finalizes bev):
 *    bev is gone then, so release only your own state in it.  The library
 *    holds no reference on bev: a BEV_OPT_CLOSE_ON_FREE socket is closed by
 *    libevent as usual, and the engine has let go of it by then.
 *  - sf_transfer_body_sent(*out) reports progress (0 while queued bytes flush).
 */
SF_EXTERN int sf_bufferevent_send(struct bufferevent *bev, const sf_region_t *region,
                                  const sf_options_t *opts /* may be NULL */, sf_done_cb done, void *arg,
                                  sf_transfer_t **out /* may be NULL */);

#ifdef __cplusplus
}
#endif

#endif /* EVSENDFILE_H */
