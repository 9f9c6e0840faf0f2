/* test_faults.c -- every syscall the engine makes, failing with every errno
 * its man page lists, at the first, a middle and the last call of a real
 * transfer; the outcomes must match the committed table
 * tests/fault_outcomes.tsv, row for row.
 *
 * Channels (the seam, src/syscalls.h): sendfile, pread, read, sendmsg (the
 * engine's only write/writev: head, small body + head + tail in one
 * message, copy buffers, tail), open, close, fstat, fstatfs, fcntl
 * (F_GETFL/F_SETFL), getsockopt (SO_PROTOCOL, SO_TYPE, TCP_CORK, TCP_ULP),
 * setsockopt (TCP_CORK), getpeername (is the peer on this host? peer.cpp),
 * resident (the page-cache probe) and fetch (the disk threads' read-in).
 * getsockname is routed too but only called where SO_PROTOCOL does not
 * exist (not on Linux) or for a TCP peer that is not on a loopback address
 * (these shapes all are): it has no rows.
 *
 * Shapes (one real transfer each, over loopback TCP or an AF_UNIX pair,
 * buffers big enough that the socket itself never says EAGAIN, and capped
 * sendfile/pread/read calls so every run makes the same calls; max_chunk
 * 16 KiB, so a transfer takes several loop turns and faults land in later
 * steps, not only in the one sf_send_async makes):
 *   small     TCP, caller's fd, 4000-byte region: one pread, one sendmsg
 *   small-short  the same, sendmsg writing at most 1500 bytes a call: the
 *             engine resumes inside head, body and tail
 *   small-shut  small with SF_SHUT_WR: a shutdown after the last byte
 *   sendfile  TCP, caller's fd, 64 KiB + 1 in 16 KiB sendfile calls, head
 *             and tail by sendmsg, TCP_CORK around them (SF_FORCE_SENDFILE:
 *             the loopback peer would take the copy path)
 *   loopback  the same without SF_FORCE_SENDFILE: getpeername says the peer
 *             is on this host, so the copy path, 16 KiB preads
 *   copy      the same with SF_NO_SENDFILE: 16 KiB preads, each sent by a
 *             short (10000-byte) sendmsg and one for the rest
 *   path      AF_UNIX pair, region->path (the library opens and closes
 *             the file), sendfile path (getpeername: a Unix peer)
 *   fifo      AF_UNIX pair, a FIFO by path: open, F_GETFL + F_SETFL
 *             O_NONBLOCK, 8 KiB reads, EAGAIN, EV_READ, EOF
 *   tls       TCP with SF_TLS and no kernel TLS: refused (SF_ENOKTLS)
 *   step-path TCP, region->path, sendfile path (SF_FORCE_SENDFILE), driven by sf_job_new /
 *             sf_job_step and poll(2) (a foreign loop); "done" is the final
 *             step's answer, "after done" is what sf_job_free does besides
 *             closing the job's own files (kept open until then, so a loop
 *             can stop watching them first)
 *   cold, cold-copy, cold-step  sendfile, copy and step-path with the
 *             page-cache probe (`resident`) answering "not resident": the
 *             first 16 KiB chunk is read in by a disk thread (`fetch`,
 *             through a dup made with fcntl F_DUPFD_CLOEXEC), which then
 *             sends the body, chunk by chunk, with the same syscalls the
 *             loop would make (so their rows match the warm shapes').
 *             `fetch` runs on the disk thread's own dup of the file: it is
 *             not counted in "after done", and fds are counted once it is
 *             over (an error can end a transfer while the thread still
 *             holds it)
 * The files live on /dev/shm (tmpfs), so the engine's fstatfs runs too.
 *
 * Recorded per case: the status (sf_send_async's return: "sync:X"; or what
 * done reported: "done:X"), what the peer received against head + region +
 * tail (all | prefix | none | bad), whether body_sent equals the region
 * bytes received, whether sendfile fell back to pread (sendfile was called,
 * then pread), the fd count before
 * and after, syscalls the engine made after done returned, and TCP_CORK on
 * the socket when done ran.
 *
 * The policy the table encodes.  Like nginx and lighttpd: EINTR retried,
 * EAGAIN waited for, EPIPE/ECONNRESET and other errors reported; the
 * fallback set is lighttpd's plus EPERM (seccomp) and EOVERFLOW (nginx has
 * no fallback at all):
 *  - EINTR: retried at once, on every call that can be interrupted
 *    (open, read, pread, sendfile, sendmsg).  EINTR from a call that cannot
 *    be interrupted (fcntl F_GETFL) is reported like any other error.
 *  - EAGAIN from the socket: wait for EV_WRITE, then carry on.  From a FIFO:
 *    wait for EV_READ.  From pread on a file (it cannot be waited for):
 *    reported as -EAGAIN.
 *  - sendfile refusing the pair (EINVAL, ENOSYS, EOPNOTSUPP, EPERM,
 *    EOVERFLOW, ESOCKTNOSUPPORT, EAFNOSUPPORT): pread + sendmsg from the
 *    current offset, head not re-sent.  ESPIPE is reported: the copy path
 *    would pread the same fd and get ESPIPE again.
 *  - EPIPE, ECONNRESET, and everything else from sendfile, sendmsg, pread
 *    and read (EIO, ENOMEM, ENOBUFS, ...): reported in done with exact
 *    body_sent; the peer holds an exact prefix.  ENOMEM/ENOBUFS are not
 *    retried: with no timer that would spin, and nginx reports them too.
 *  - open, fstat, fcntl, getsockopt(SO_PROTOCOL/SO_TYPE) failing: reported
 *    synchronously by sf_send_async, nothing sent, nothing left open.
 *  - TCP_CORK is an optimisation: getsockopt/setsockopt(TCP_CORK) failing
 *    never fails a transfer.  Uncorking is tried once, before done (every
 *    setsockopt errno is permanent: a retry would fail the same way); if it
 *    fails the socket stays corked -- the kernel still pushes corked bytes
 *    within 200 ms -- and the engine never touches the socket after done.
 *  - fstatfs failing: the fstat size is trusted.  close failing: ignored
 *    (Linux has released the fd anyway).
 *  - getsockopt(TCP_ULP/TLS_TX) failing with SF_TLS: kTLS is not active,
 *    SF_ENOKTLS.
 *  - getpeername failing: the peer's place is unknown, sendfile is used
 *    (what the library did before it asked), the transfer goes on.
 *  - The page-cache probe (resident) and the disk threads' read (fetch)
 *    failing never fail a transfer: the chunk is sent inline, and the send
 *    itself reports what the file says.  Nor does the writability check
 *    (writable) before a cold transfer is handed over again: it is handed
 *    over, and the thread's send reports what the socket says.  So does the dup (fcntl) a disk
 *    read needs.  ENOSYS from the probe is remembered (no probe again).
 *  - sendfile ENOSYS and resident ENOSYS are remembered for the process:
 *    those rows run in a child process of their own (this binary with --case).
 *
 * Modes:  test_faults            compare with the table (cmocka)
 *         test_faults --tsv      print the observed table (to regenerate:
 *                                test_faults --tsv > tests/fault_outcomes.tsv,
 *                                then REVIEW the diff)
 *         test_faults --markdown the observed outcomes, merged, as markdown
 *                                (also: EVSF_FAULTS_MARKDOWN=1)
 * The table is found next to this source file, or at $EVSF_FAULT_TABLE. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "evsendfile.h"
#include "harness.h"
#include "seam.h"

extern char **environ;

#define HEAD "HTTP/1.1 200 OK\r\nContent-Length: 65537\r\n\r\n"
#define TAIL "\r\n--tail--\r\n"
#define FIFO_BYTES 20000u
#define TMPFS_MAGIC_ 0x01021994

/* ------------------------------------------------------------ channels */

static const int kSendfileErrs[] = {EAGAIN, EINTR, EBADF, EFAULT, EINVAL, EIO, ENOMEM, EOVERFLOW,
                                    ESPIPE, ENOSYS, EOPNOTSUPP, EPERM, ESOCKTNOSUPPORT, EAFNOSUPPORT,
                                    EPIPE, ECONNRESET, 0};
/* pread(2), and preadv2(2) with RWF_NOWAIT (the copy path's reads on the loop) */
static const int kPreadErrs[] = {EAGAIN, EINTR, EBADF, EFAULT, EINVAL, EIO, EISDIR, ENXIO, EOVERFLOW,
                                 ESPIPE, EOPNOTSUPP, 0};
static const int kReadErrs[] = {EAGAIN, EINTR, EBADF, EFAULT, EINVAL, EIO, EISDIR, 0};
/* send(2), sendmsg(2), write(2), writev(2) */
static const int kSendmsgErrs[] = {EAGAIN, EINTR, EACCES, EALREADY, EBADF, ECONNRESET, EDESTADDRREQ,
                                   EFAULT, EINVAL, EISCONN, EMSGSIZE, ENOBUFS, ENOMEM, ENOTCONN,
                                   ENOTSOCK, EOPNOTSUPP, EPIPE, EIO, EDQUOT, EFBIG, ENOSPC, EPERM, 0};
static const int kOpenErrs[] = {EACCES, EAGAIN, EBUSY, EDQUOT, EEXIST, EFAULT, EFBIG, EINTR, EINVAL,
                                EISDIR, ELOOP, EMFILE, ENAMETOOLONG, ENFILE, ENODEV, ENOENT, ENOMEM,
                                ENOSPC, ENOTDIR, ENXIO, EOPNOTSUPP, EOVERFLOW, EPERM, EROFS, ETXTBSY, 0};
static const int kCloseErrs[] = {EBADF, EINTR, EIO, ENOSPC, EDQUOT, 0};
static const int kFstatErrs[] = {EACCES, EBADF, EFAULT, ELOOP, ENAMETOOLONG, ENOENT, ENOMEM, ENOTDIR,
                                 EOVERFLOW, 0};
static const int kFstatfsErrs[] = {EACCES, EBADF, EFAULT, EINTR, EIO, ELOOP, ENAMETOOLONG, ENOENT,
                                   ENOMEM, ENOSYS, ENOTDIR, EOVERFLOW, 0};
static const int kFcntlErrs[] = {EACCES, EAGAIN, EBADF, EBUSY, EDEADLK, EFAULT, EINTR, EINVAL, EMFILE,
                                 ENOLCK, ENOTDIR, EPERM, 0};
static const int kSockoptErrs[] = {EBADF, EFAULT, EINVAL, ENOPROTOOPT, ENOTSOCK, 0};
static const int kSocknameErrs[] = {EBADF, EFAULT, EINVAL, ENOBUFS, ENOTSOCK, 0};
static const int kPeernameErrs[] = {EBADF, EFAULT, EINVAL, ENOBUFS, ENOTCONN, ENOTSOCK, 0};
/* cachestat(2), and mmap(2) + mincore(2) where it is missing (the sendfile
 * path's probe; the copy path's is its nowait pread) */
static const int kResidentErrs[] = {EAGAIN, EBADF, EFAULT, EINVAL, ENODEV, ENOMEM, ENOSYS, EOPNOTSUPP,
                                    EOVERFLOW, EPERM, 0};
/* poll(2) */
static const int kWritableErrs[] = {EFAULT, EINTR, EINVAL, ENOMEM, 0};
static const int kShutdownErrs[] = {EBADF, EINVAL, ENOTCONN, ENOTSOCK, 0};
/* mmap(MAP_POPULATE) or pread(2), on a disk thread */
static const int kFetchErrs[] = {EACCES, EAGAIN, EBADF, EINTR, EINVAL, EIO, ENODEV, ENOMEM, EOVERFLOW, 0};

typedef struct channel {
    const char *name;
    size_t offset; /* of its seam_channel_t in seam_t */
    const int *errs;
    int ignored; /* failures are ignored by design: also fail every call from the last one on */
} channel_t;

#define CH(n, errs, ignored) {#n, offsetof(seam_t, n), errs, ignored}
static const channel_t kChannels[] = {
    CH(sendfile, kSendfileErrs, 0),   CH(pread, kPreadErrs, 0),         CH(read, kReadErrs, 0),
    CH(sendmsg, kSendmsgErrs, 0),     CH(open, kOpenErrs, 0),           CH(close, kCloseErrs, 1),
    CH(fstat, kFstatErrs, 0),         CH(fstatfs, kFstatfsErrs, 0),     CH(fcntl, kFcntlErrs, 0),
    CH(getsockopt, kSockoptErrs, 0),  CH(setsockopt, kSockoptErrs, 1), CH(getsockname, kSocknameErrs, 0),
    CH(getpeername, kPeernameErrs, 0),
    CH(resident, kResidentErrs, 1),   CH(fetch, kFetchErrs, 1),         CH(writable, kWritableErrs, 1),
    CH(shutdown, kShutdownErrs, 0),
};
#define N_CHANNELS ((int)(sizeof kChannels / sizeof kChannels[0]))

static seam_channel_t *chan_of(int i) { return (seam_channel_t *)((char *)&seam + kChannels[i].offset); }

/* The engine's calls on the loop thread: not `fetch`, which the disk threads
 * make on their own dup of the file (one may still run after done, when an
 * error ends a transfer while the next chunk is being read in). */
static int total_calls(void) {
    int n = 0;
    for (int i = 0; i < N_CHANNELS; i++)
        if (strcmp(kChannels[i].name, "fetch") != 0) n += chan_of(i)->calls;
    return n;
}

static const char *errno_name(int e) {
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

/* A status: the library's own codes by sf_err_name, errno values by name. */
static const char *status_name(int st) {
    if (st == 0) return "ok";
    if (st < -4095) return sf_err_name(st);
    return errno_name(-st);
}

/* -------------------------------------------------------------- shapes */

enum source_kind { SRC_FD, SRC_PATH, SRC_FIFO };

typedef struct shape {
    const char *name;
    int tcp;
    enum source_kind src;
    uint64_t off, count;
    unsigned flags;
    size_t sendmsg_cap; /* > 0: sendmsg returns short, the engine must resume mid-buffer */
    int step;           /* driven by sf_job_new / sf_job_step + poll, not libevent */
    int cold;           /* the page-cache probe says "not resident": every chunk goes to a disk thread */
} shape_t;

static const shape_t kShapes[] = {
    {"small", 1, SRC_FD, 100, 4000, 0, 0, 0, 0},
    {"small-short", 1, SRC_FD, 100, 4000, 0, 1500, 0, 0},
    {"small-shut", 1, SRC_FD, 100, 4000, SF_SHUT_WR, 0, 0, 0},
    {"sendfile", 1, SRC_FD, 1000, 64 * KiB + 1, SF_FORCE_SENDFILE, 0, 0, 0},
    {"loopback", 1, SRC_FD, 1000, 64 * KiB + 1, 0, 0, 0, 0},
    {"copy", 1, SRC_FD, 1000, 64 * KiB + 1, SF_NO_SENDFILE, 10000, 0, 0},
    {"path", 0, SRC_PATH, 1000, 64 * KiB + 1, 0, 0, 0, 0},
    {"fifo", 0, SRC_FIFO, 0, SF_COUNT_TO_EOF, 0, 0, 0, 0},
    {"tls", 1, SRC_FD, 1000, 64 * KiB + 1, SF_TLS, 0, 0, 0},
    {"step-path", 1, SRC_PATH, 1000, 64 * KiB + 1, SF_FORCE_SENDFILE, 0, 1, 0},
    {"cold", 1, SRC_FD, 1000, 64 * KiB + 1, SF_FORCE_SENDFILE, 0, 0, 1},
    {"cold-copy", 1, SRC_FD, 1000, 64 * KiB + 1, SF_NO_SENDFILE, 10000, 0, 1},
    {"cold-step", 1, SRC_PATH, 1000, 64 * KiB + 1, SF_FORCE_SENDFILE, 0, 1, 1},
};

static int say_cold(int fd, uint64_t off, uint64_t len, int *ret) {
    (void)fd, (void)off, (void)len;
    *ret = 0;
    return 1;
}
#define N_SHAPES ((int)(sizeof kShapes / sizeof kShapes[0]))

/* Files shared by the cases of a run (made once, removed at exit). */
static int g_file_fd = -1;          /* 256 KiB patterned, unlinked */
static char g_path[PATH_MAX];       /* the same bytes, by name, on tmpfs if there is one */
static char g_fifo[PATH_MAX];
static int g_path_on_tmpfs;
static int g_listener = -1;         /* see tcp_pair_reused */

/* The files live on /dev/shm when it is tmpfs (nearly everywhere, Docker
 * included), so the engine's fstatfs (asked for files on anonymous-device
 * filesystems only) runs in every file shape, whatever $TMPDIR is.
 * Elsewhere the fstatfs rows may go unexercised (test_table_complete
 * accepts that). */
static void make_files(void) {
    if (g_file_fd >= 0) return;
    struct statfs fs;
    const char *no_shm = getenv("EVSF_FAULTS_NO_SHM"); /* to try the fallback */
    g_path_on_tmpfs = statfs("/dev/shm", &fs) == 0 && fs.f_type == TMPFS_MAGIC_ &&
                      access("/dev/shm", W_OK) == 0 && !(no_shm && *no_shm);
    if (g_path_on_tmpfs) {
        char tmp[] = "/dev/shm/evsf-faults-XXXXXX";
        g_file_fd = mkostemp(tmp, O_CLOEXEC);
        assert_true(g_file_fd >= 0);
        unlink(tmp);
        write_pattern_at(g_file_fd, 0, 256 * KiB);
        snprintf(g_path, sizeof g_path, "/dev/shm/evsf-faults-XXXXXX");
        int fd = mkostemp(g_path, O_CLOEXEC);
        assert_true(fd >= 0);
        write_pattern_at(fd, 0, 256 * KiB);
        close(fd);
    } else {
        g_file_fd = make_pattern_file(256 * KiB, NULL);
        close(make_pattern_file(256 * KiB, g_path));
    }
    const char *dir = getenv("TMPDIR");
    snprintf(g_fifo, sizeof g_fifo, "%s/evsf-faults-fifo-%d", dir && *dir ? dir : "/tmp", (int)getpid());
    unlink(g_fifo);
    assert_int_equal(mkfifo(g_fifo, 0600), 0);
}

static void remove_files(void) {
    if (g_listener >= 0) close(g_listener);
    g_listener = -1;
    if (g_file_fd < 0) return;
    close(g_file_fd);
    g_file_fd = -1;
    if (g_path_on_tmpfs) unlink(g_path);
    unlink(g_fifo);
    files_cleanup();
}

/* ------------------------------------------------------------- one case */

typedef struct outcome {
    char status[48];
    const char *wire;
    char body[48];
    const char *fallback;
    char fds[16];
    int after_done;
    const char *cork; /* TCP_CORK when done ran: on | off | - (not TCP, or no done) */
} outcome_t;

typedef struct done_state {
    int calls, status;
    uint64_t body_sent;
    int syscalls_at_done;
    int own_closes; /* stepping: closes of the job's own files by sf_job_free */
    int sock, tcp, cork_at_done;
} done_state_t;

static void on_done(sf_transfer_t *t, int status, uint64_t body_sent, void *arg) {
    (void)t;
    done_state_t *d = arg;
    d->calls++;
    d->status = status;
    d->body_sent = body_sent;
    d->syscalls_at_done = total_calls();
    d->cork_at_done = d->tcp ? tcp_cork_is_on(d->sock) : -1;
}

/* The stepping API, driven by poll(2) the way a foreign loop would: steps
 * until a final answer (reported like done), then sf_job_free.  Returns
 * sf_job_new's result. */
static int run_stepped(int s, const sf_region_t *reg, const sf_options_t *o, done_state_t *d) {
    sf_job_t *job = NULL;
    int rc = sf_job_new(s, reg, o, &job);
    if (rc != 0) return rc;
    int r = SF_STEP_WRITE;
    for (int turns = 0; turns < 100000; turns++) {
        r = sf_job_step(job);
        if (r == SF_STEP_WRITE || r == SF_STEP_READ || r == SF_STEP_SOURCE) {
            struct pollfd p = {r == SF_STEP_WRITE ? s : sf_job_wait_fd(job),
                               r == SF_STEP_WRITE ? POLLOUT : POLLIN, 0};
            if (poll(&p, 1, GUARD_SECONDS * 1000) != 1) break;
        } else if (r != SF_STEP_YIELD) {
            d->calls = 1;
            d->status = r;
            d->body_sent = sf_job_body_sent(job);
            d->syscalls_at_done = total_calls();
            d->cork_at_done = d->tcp ? tcp_cork_is_on(s) : -1;
            break;
        }
    }
    int logged = seam.close.logged;
    sf_job_free(job);
    /* sf_job_free closes the job's own files (a library-opened source, its
     * wake-up fd): kept open until then so a loop can stop watching them
     * first.  Those closes are not "after done"; anything on the socket is. */
    for (int i = logged; i < seam.close.logged; i++) d->own_closes += seam.close.log[i].fd != s;
    return 0;
}

/* Reads everything the peer got, until EOF (the sender shut its side). */
static uint8_t *drain(int fd, size_t *len) {
    size_t cap = 256 * KiB, n = 0;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, GUARD_SECONDS * 1000) != 1) {
            fprintf(stderr, "drain: nothing readable within the guard\n");
            break;
        }
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break; /* EOF, or a reset the test asked for */
        n += (size_t)r;
    }
    *len = n;
    return buf;
}

/* Hundreds of TCP pairs: one listener for the whole run (harness.c's
 * tcp_pair binds a new one each time, and a busy machine can run out of
 * ephemeral ports).  Like tcp_pair: *sender is the accepted, non-blocking end. */
static void tcp_pair_reused(int *sender, int *receiver) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (g_listener < 0) {
        g_listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(g_listener >= 0);
        assert_int_equal(bind(g_listener, (struct sockaddr *)&a, alen), 0);
        assert_int_equal(listen(g_listener, 4), 0);
    }
    assert_int_equal(getsockname(g_listener, (struct sockaddr *)&a, &alen), 0);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, alen), 0);
    int s = accept4(g_listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    assert_true(s >= 0);
    *sender = s;
    *receiver = c;
}

static void big_buffers(int s, int r) {
    int big = 1 << 20;
    assert_int_equal(setsockopt(s, SOL_SOCKET, SO_SNDBUF, &big, sizeof big), 0);
    assert_int_equal(setsockopt(r, SOL_SOCKET, SO_RCVBUF, &big, sizeof big), 0);
}

/* Wire image the peer should get: head, region bytes, tail. */
static const char *classify_wire(const uint8_t *got, size_t len, uint64_t off, uint64_t count) {
    size_t hl = strlen(HEAD), tl = strlen(TAIL);
    size_t full = hl + (size_t)count + tl;
    if (len == 0) return "none";
    if (len > full) return "bad";
    size_t h = len < hl ? len : hl;
    if (memcmp(got, HEAD, h) != 0) return "bad";
    if (len > hl) {
        size_t b = len - hl < count ? len - hl : (size_t)count;
        if (pattern_mismatch(got + hl, off, b) >= 0) return "bad";
        if (len > hl + count && memcmp(got + hl + count, TAIL, len - hl - (size_t)count) != 0) return "bad";
    }
    return len == full ? "all" : "prefix";
}

/* Real EAGAINs from the socket in the last case: the clean runs must have
 * none, or call numbers would depend on timing. */
static int g_socket_eagain;

/* Runs shape `sh` with `err` injected at call number `call` of channel
 * `ch` (ch < 0: no fault); call < 0: at every call from -call on.
 * Fills *out; *calls (may be NULL) gets every channel's call count. */
static void run_case(const shape_t *sh, int ch, int err, int call, outcome_t *out, int *calls) {
    make_files();
    int s, r;
    if (sh->tcp) tcp_pair_reused(&s, &r);
    else socketpair_nb(&s, &r);
    big_buffers(s, r);

    int writer = -1;
    sf_region_t reg = {g_file_fd, NULL, sh->off, sh->count};
    uint64_t image_count = sh->count, image_off = sh->off;
    if (sh->src == SRC_PATH) {
        reg.fd = -1;
        reg.path = g_path;
    } else if (sh->src == SRC_FIFO) {
        writer = open(g_fifo, O_RDWR | O_CLOEXEC); /* a writer exists: the engine's open won't block */
        assert_true(writer >= 0);
        uint8_t buf[FIFO_BYTES];
        pattern_fill(buf, 0, sizeof buf);
        assert_int_equal(write(writer, buf, sizeof buf), (ssize_t)sizeof buf);
        reg.fd = -1;
        reg.path = g_fifo;
        image_count = FIFO_BYTES;
        image_off = 0;
    }
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    o.flags = sh->flags;
    o.max_chunk = 16 * KiB; /* several loop turns: faults land in later steps too */

    seam_install();
    seam.sendfile.fault.cap = 16 * KiB;
    seam.pread.fault.cap = 16 * KiB;
    seam.read.fault.cap = 8 * KiB;
    seam.sendmsg.fault.cap = sh->sendmsg_cap;
    if (sh->cold) seam.resident_hook = say_cold;
    if (ch >= 0) {
        seam_fault_t *f = &chan_of(ch)->fault;
        f->err = err;
        f->first = call < 0 ? -call : call;
        f->times = call < 0 ? 0 : 1;
        f->every = call < 0 ? 1 : 0;
    }

    int fds_before = count_open_fds();
    done_state_t d = {0, 1, 0, 0, 0, s, sh->tcp, -1};
    int rc, done_ran;
    if (sh->step) {
        rc = run_stepped(s, &reg, &o, &d);
        done_ran = d.calls;
    } else {
        struct event_base *base = event_base_new();
        assert_non_null(base);
        rc = sf_send_async(base, s, &reg, &o, on_done, &d, NULL);
        if (writer >= 0) {
            close(writer); /* EOF once the FIFO is drained */
            fds_before--;
        }
        done_ran = rc == 0 ? run_until(base, &d.calls) : 0;
        event_base_free(base);
    }
    int after = total_calls() - (done_ran ? d.syscalls_at_done + d.own_closes : total_calls());
    /* A chunk still being read in when the transfer ended finishes on the
     * disk thread's own fds, which it then closes: wait (bounded) for that. */
    for (int i = 0; sh->cold && i < 2000 && (seam_fetch_calls() != seam_fetch_returned() ||
                                             count_open_fds() != fds_before); i++)
        usleep(1000);
    int fds_after = count_open_fds();
    int fired = ch < 0 || chan_of(ch)->injected == 1 || (call < 0 && chan_of(ch)->injected >= 1);
    if (calls)
        for (int i = 0; i < N_CHANNELS; i++) calls[i] = chan_of(i)->calls;
    uint64_t preads = seam.pread.calls, sendfiles = seam.sendfile.calls;
    g_socket_eagain = seam.sendfile.eagain + seam.sendmsg.eagain;
    seam_uninstall();

    shutdown(s, SHUT_WR);
    size_t len = 0;
    uint8_t *got = drain(r, &len);
    if (sh->tcp) {
        /* Close with a reset: no TIME_WAIT left behind by hundreds of cases. */
        struct linger lg = {1, 0};
        setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(s);
    close(r);

    memset(out, 0, sizeof *out);
    if (!fired) snprintf(out->status, sizeof out->status, "not-fired");
    else if (rc != 0) snprintf(out->status, sizeof out->status, "sync:%s", status_name(rc));
    else if (!done_ran) snprintf(out->status, sizeof out->status, "hang");
    else if (d.calls != 1) snprintf(out->status, sizeof out->status, "done-x%d", d.calls);
    else snprintf(out->status, sizeof out->status, "done:%s", status_name(d.status));
    out->wire = classify_wire(got, len, image_off, image_count);
    if (rc != 0) {
        snprintf(out->body, sizeof out->body, "-");
    } else {
        size_t hl = strlen(HEAD);
        uint64_t region_got = len > hl ? len - hl : 0;
        if (region_got > image_count) region_got = image_count;
        if (region_got == d.body_sent) snprintf(out->body, sizeof out->body, "ok");
        else
            snprintf(out->body, sizeof out->body, "bad(%llu!=%llu)", (unsigned long long)d.body_sent,
                     (unsigned long long)region_got);
    }
    int sendfile_shape = !(sh->flags & SF_NO_SENDFILE) && sh->src != SRC_FIFO && sh->count > SF_SMALL_BODY_MAX;
    out->fallback = !sendfile_shape || rc != 0 ? "-" : preads > 0 && sendfiles > 0 ? "yes" : "no";
    if (fds_after == fds_before) snprintf(out->fds, sizeof out->fds, "same");
    else snprintf(out->fds, sizeof out->fds, "%+d", fds_after - fds_before);
    out->after_done = after;
    out->cork = !done_ran || d.cork_at_done < 0 ? "-" : d.cork_at_done ? "on" : "off";
    free(got);
}

/* ------------------------------------------------------------ the table */

static void row_key(char *buf, size_t n, const shape_t *sh, int ch, int err, const char *pos) {
    snprintf(buf, n, "%s\t%s\t%s\t%s", sh->name, ch < 0 ? "none" : kChannels[ch].name,
             ch < 0 ? "-" : errno_name(err), pos);
}

static void row_value(char *buf, size_t n, const outcome_t *o) {
    snprintf(buf, n, "%s\t%s\t%s\t%s\t%s\t%d\t%s", o->status, o->wire, o->body, o->fallback, o->fds,
             o->after_done, o->cork);
}

#define TABLE_HEADER "shape\tsyscall\terrno\tposition\tstatus\twire\tbody_sent\tfallback\tfds\tafter_done\tcork_at_done"

typedef struct row {
    char key[96];
    char value[160];
    int seen;
} row_t;

static row_t *g_rows;
static int g_nrows;
static int g_bad; /* mismatches in the current cmocka test */

static void copy_str(char *dst, size_t n, const char *src) {
    size_t l = strlen(src);
    if (l >= n) fail_msg("table field too long: %s", src);
    memcpy(dst, src, l + 1);
}

static const char *table_path(void) {
    const char *env = getenv("EVSF_FAULT_TABLE");
    if (env && *env) return env;
    static char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", __FILE__);
    char *slash = strrchr(p, '/');
    snprintf(slash ? slash + 1 : p, sizeof p - (size_t)(slash ? slash + 1 - p : 0), "fault_outcomes.tsv");
    return p;
}

static void load_table(void) {
    if (g_rows) return;
    FILE *f = fopen(table_path(), "r");
    if (f == NULL) fail_msg("cannot open the outcome table %s", table_path());
    char line[512];
    int cap = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#' || strncmp(line, "shape\t", 6) == 0) continue;
        char *p = line;
        for (int tabs = 0; tabs < 4 && p; tabs++) p = strchr(p + 1, '\t');
        if (p == NULL) fail_msg("bad table line: %s", line);
        *p = '\0';
        if (g_nrows == cap) {
            cap = cap ? cap * 2 : 1024;
            g_rows = realloc(g_rows, (size_t)cap * sizeof *g_rows);
            assert_non_null(g_rows);
        }
        row_t *r = &g_rows[g_nrows++];
        copy_str(r->key, sizeof r->key, line);
        copy_str(r->value, sizeof r->value, p + 1);
        r->seen = 0;
    }
    fclose(f);
}

static row_t *find_row(const char *key) {
    for (int i = 0; i < g_nrows; i++)
        if (strcmp(g_rows[i].key, key) == 0) return &g_rows[i];
    return NULL;
}

/* What each mode does with a row. */
enum mode { MODE_CHECK, MODE_TSV, MODE_MARKDOWN };
static enum mode g_mode = MODE_CHECK;
static const char *g_argv0;

typedef struct seen_row {
    char key[96];
    char value[160];
} seen_row_t;
static seen_row_t *g_seen;
static int g_nseen, g_capseen;

static void emit(const char *key, const char *value) {
    if (g_mode == MODE_CHECK) {
        row_t *r = find_row(key);
        if (r == NULL) {
            fprintf(stderr, "NO ROW in %s for:\n  %s\t%s\n", table_path(), key, value);
            g_bad++;
        } else {
            r->seen = 1;
            if (strcmp(r->value, value) != 0) {
                fprintf(stderr, "MISMATCH %s\n  expected: %s\n  got:      %s\n", key, r->value, value);
                g_bad++;
            }
        }
        return;
    }
    if (g_nseen == g_capseen) {
        g_capseen = g_capseen ? g_capseen * 2 : 1024;
        g_seen = realloc(g_seen, (size_t)g_capseen * sizeof *g_seen);
        assert_non_null(g_seen);
    }
    copy_str(g_seen[g_nseen].key, sizeof g_seen[g_nseen].key, key);
    copy_str(g_seen[g_nseen].value, sizeof g_seen[g_nseen].value, value);
    g_nseen++;
}

/* sendfile ENOSYS is remembered process-wide: run it in a child. */
static void run_case_in_child(int shape, int ch, int err, int call, char *value, size_t n) {
    int p[2];
    assert_int_equal(pipe(p), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, p[0]);
    char a[4][16];
    snprintf(a[0], 16, "%d", shape);
    snprintf(a[1], 16, "%d", ch);
    snprintf(a[2], 16, "%d", err);
    snprintf(a[3], 16, "%d", call);
    char *argv[] = {(char *)g_argv0, "--case", a[0], a[1], a[2], a[3], NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, g_argv0, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    assert_int_equal(rc, 0);
    size_t len = 0;
    while (len + 1 < n) {
        ssize_t r = read(p[0], value + len, n - 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
    }
    value[len] = '\0';
    value[strcspn(value, "\n")] = '\0';
    close(p[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) snprintf(value, n, "child-failed");
}

static int g_shape_calls[N_SHAPES][N_CHANNELS]; /* clean runs, for --markdown */

/* Where a fault goes: call number `call` of its channel (< 0: every call
 * from -call on). */
typedef struct position {
    const char *name;
    int call;
} position_t;

static int sticky(int ch, int err) {
    return (strcmp(kChannels[ch].name, "sendfile") == 0 || strcmp(kChannels[ch].name, "resident") == 0) &&
           err == ENOSYS;
}

/* Every case of one shape: a clean run counts the calls per channel, then
 * each errno at the first, middle and last call of each channel used. */
static void run_shape(int shape) {
    const shape_t *sh = &kShapes[shape];
    char key[96], value[160];
    outcome_t o;
    int calls[N_CHANNELS];
    run_case(sh, -1, 0, 0, &o, calls);
    if (g_socket_eagain)
        fail_msg("%s: the socket said EAGAIN %d time(s) in a clean run; positions would depend on timing "
                 "(socket buffers smaller than 1 MiB here?)",
                 sh->name, g_socket_eagain);
    memcpy(g_shape_calls[shape], calls, sizeof calls);
    row_key(key, sizeof key, sh, -1, 0, "-");
    row_value(value, sizeof value, &o);
    emit(key, value);
    for (int ch = 0; ch < N_CHANNELS; ch++) {
        int n = calls[ch];
        position_t pos[4];
        int npos = 0;
        if (n >= 1) pos[npos++] = (position_t){"first", 1};
        if (n >= 3) pos[npos++] = (position_t){"middle", (n + 1) / 2};
        if (n >= 2) pos[npos++] = (position_t){"last", n};
        if (n >= 1 && kChannels[ch].ignored) pos[npos++] = (position_t){"from-last", -n};
        for (const int *e = kChannels[ch].errs; *e; e++) {
            for (int p = 0; p < npos; p++) {
                row_key(key, sizeof key, sh, ch, *e, pos[p].name);
                if (sticky(ch, *e)) {
                    run_case_in_child(shape, ch, *e, pos[p].call, value, sizeof value);
                } else {
                    run_case(sh, ch, *e, pos[p].call, &o, NULL);
                    row_value(value, sizeof value, &o);
                }
                emit(key, value);
            }
        }
    }
}

/* ---------------------------------------------------------- cmocka side */

static void test_shape(void **state) {
    int shape = (int)(intptr_t)*state;
    load_table();
    g_bad = 0;
    run_shape(shape);
    if (g_bad) fail_msg("%d outcome(s) differ from %s (rows above)", g_bad, table_path());
}

/* Every row of the table was exercised (a row for a call the engine no
 * longer makes is stale: regenerate and review). */
static void test_table_complete(void **state) {
    (void)state;
    load_table();
    int stale = 0;
    for (int i = 0; i < g_nrows; i++) {
        if (g_rows[i].seen) continue;
        /* fstatfs only runs for files on anonymous-device filesystems. */
        if (!g_path_on_tmpfs && strstr(g_rows[i].key, "\tfstatfs\t")) continue;
        fprintf(stderr, "STALE row (never exercised): %s\t%s\n", g_rows[i].key, g_rows[i].value);
        stale++;
    }
    if (stale) fail_msg("%d stale row(s) in %s", stale, table_path());
}

static int teardown_all(void **state) {
    (void)state;
    remove_files();
    free(g_rows);
    g_rows = NULL;
    g_nrows = 0;
    return 0;
}

/* ------------------------------------------------------------- printing */

static void print_markdown(void) {
    /* counts by outcome class, over the injected faults (not the clean runs) */
    int n_cases = 0, n_ok = 0, n_sync = 0, n_fail = 0, n_fallback = 0, n_other = 0, n_leaks = 0;
    for (int i = 0; i < g_nseen; i++) {
        const char *v = g_seen[i].value;
        if (strstr(g_seen[i].key, "\tnone\t-\t-") != NULL) continue;
        n_cases++;
        if (strstr(v, "\tsame\t0\t") == NULL) n_leaks++;
        if (strncmp(v, "done:ok\t", 8) == 0) {
            n_ok++;
            if (strstr(v, "\tyes\t")) n_fallback++;
        } else if (strncmp(v, "sync:", 5) == 0) {
            n_sync++;
        } else if (strncmp(v, "done:", 5) == 0 && strstr(v, "\tbad") == NULL) {
            n_fail++;
        } else {
            n_other++;
        }
    }
    printf("%d injected faults over %d transfer shapes: %d transfers completed anyway (%d of them by "
           "falling back to pread + send), %d failed in done with an exact prefix delivered (maybe empty) and "
           "body_sent matching it, %d refused synchronously by sf_send_async (nothing sent), %d other; "
           "%d with an fd leaked or a syscall after done.\n\n",
           n_cases, N_SHAPES, n_ok, n_fallback, n_fail, n_sync, n_other, n_leaks);
    printf("Calls per clean transfer (the positions first/middle/last are taken from these):\n\n| shape |");
    for (int c = 0; c < N_CHANNELS; c++) printf(" %s |", kChannels[c].name);
    printf("\n|---|");
    for (int c = 0; c < N_CHANNELS; c++) printf("---|");
    printf("\n");
    for (int sh = 0; sh < N_SHAPES; sh++) {
        printf("| %s |", kShapes[sh].name);
        for (int c = 0; c < N_CHANNELS; c++) printf(" %d |", g_shape_calls[sh][c]);
        printf("\n");
    }
    printf("\n");
    /* Rows that differ only by errno (the status naming that same errno)
     * and share syscall, places and outcome are merged into one line. */
    typedef struct md_row {
        char sys[32], errs[640], where[1024], value[160];
    } md_row_t;
    md_row_t *md = calloc((size_t)g_nseen, sizeof *md);
    int *used = calloc((size_t)g_nseen, sizeof *used);
    assert_non_null(md);
    assert_non_null(used);
    int nmd = 0;
    for (int i = 0; i < g_nseen; i++) {
        if (used[i]) continue;
        char sys[32], err[32], where[1024] = "", last_shape[32] = "";
        sscanf(g_seen[i].key, "%*s %31s %31s", sys, err);
        for (int j = i; j < g_nseen; j++) {
            char s2[32], e2[32], shp[32], pos[32];
            sscanf(g_seen[j].key, "%31s %31s %31s %31s", shp, s2, e2, pos);
            if (used[j] || strcmp(s2, sys) || strcmp(e2, err) || strcmp(g_seen[j].value, g_seen[i].value))
                continue;
            used[j] = 1;
            size_t l = strlen(where);
            if (strcmp(shp, last_shape) == 0) snprintf(where + l, sizeof where - l, " %s", pos);
            else snprintf(where + l, sizeof where - l, "%s%s: %s", l ? "; " : "", shp, pos);
            snprintf(last_shape, sizeof last_shape, "%s", shp);
        }
        char value[160], same_done[48], same_sync[48];
        snprintf(same_done, sizeof same_done, "done:%s\t", err);
        snprintf(same_sync, sizeof same_sync, "sync:%s\t", err);
        if (strncmp(g_seen[i].value, same_done, strlen(same_done)) == 0)
            snprintf(value, sizeof value, "done:same\t%s", g_seen[i].value + strlen(same_done));
        else if (strncmp(g_seen[i].value, same_sync, strlen(same_sync)) == 0)
            snprintf(value, sizeof value, "sync:same\t%s", g_seen[i].value + strlen(same_sync));
        else
            snprintf(value, sizeof value, "%s", g_seen[i].value);
        int k = 0;
        while (k < nmd && (strcmp(md[k].sys, sys) || strcmp(md[k].where, where) || strcmp(md[k].value, value)))
            k++;
        if (k == nmd) {
            nmd++;
            snprintf(md[k].sys, sizeof md[k].sys, "%s", sys);
            snprintf(md[k].where, sizeof md[k].where, "%s", where);
            snprintf(md[k].value, sizeof md[k].value, "%s", value);
        }
        size_t l = strlen(md[k].errs);
        snprintf(md[k].errs + l, sizeof md[k].errs - l, "%s%s", l ? " " : "", err);
    }
    printf("`sendmsg` is the engine's write(2)/writev(2): head, small body + head + tail in one message, "
           "copy buffers and tail all go out by sendmsg(MSG_NOSIGNAL).\n\n");
    printf("| syscall | errno | where (shape: positions) | status | peer got | body_sent | fallback | fds | "
           "syscalls after done | TCP_CORK at done |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < nmd; k++) {
        char v[160];
        snprintf(v, sizeof v, "%s", md[k].value);
        char *f[7] = {0};
        int n = 0;
        for (char *tok = strtok(v, "\t"); tok && n < 7; tok = strtok(NULL, "\t")) f[n++] = tok;
        const char *status = strcmp(f[0], "done:same") == 0   ? "done: that errno"
                             : strcmp(f[0], "sync:same") == 0 ? "sync: that errno"
                                                              : f[0];
        printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", md[k].sys, md[k].errs, md[k].where,
               status, f[1], f[2], f[3], f[4], f[5], f[6]);
    }
    free(used);
    free(md);
}

static int run_all_and_print(void) {
    for (int sh = 0; sh < N_SHAPES; sh++) run_shape(sh);
    if (g_mode == MODE_TSV) {
        printf("# What the engine does when each syscall fails: one row per injected fault\n"
               "# (tests/test_faults.c explains the shapes, the columns and the policy).\n"
               "# Regenerate: build/tests/test_faults --tsv > tests/fault_outcomes.tsv, then review the diff.\n");
        printf("%s\n", TABLE_HEADER);
        for (int i = 0; i < g_nseen; i++) printf("%s\t%s\n", g_seen[i].key, g_seen[i].value);
    } else {
        print_markdown();
    }
    remove_files();
    free(g_seen);
    return 0;
}

int main(int argc, char **argv) {
    g_argv0 = argv[0];
    if (argc == 6 && strcmp(argv[1], "--case") == 0) {
        int sh = atoi(argv[2]), ch = atoi(argv[3]), err = atoi(argv[4]), call = atoi(argv[5]);
        outcome_t o;
        char value[160];
        run_case(&kShapes[sh], ch, err, call, &o, NULL);
        row_value(value, sizeof value, &o);
        printf("%s\n", value);
        remove_files();
        return 0;
    }
    const char *md = getenv("EVSF_FAULTS_MARKDOWN");
    if (argc == 2 && strcmp(argv[1], "--tsv") == 0) g_mode = MODE_TSV;
    if ((argc == 2 && strcmp(argv[1], "--markdown") == 0) || (md && *md && strcmp(md, "0") != 0))
        g_mode = MODE_MARKDOWN;
    if (g_mode != MODE_CHECK) return run_all_and_print();

    struct CMUnitTest tests[N_SHAPES + 1];
    for (int i = 0; i < N_SHAPES; i++) {
        tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(test_shape, (void *)(intptr_t)i);
        tests[i].name = kShapes[i].name;
    }
    tests[N_SHAPES] = (struct CMUnitTest)cmocka_unit_test(test_table_complete);
    return cmocka_run_group_tests(tests, NULL, teardown_all);
}
