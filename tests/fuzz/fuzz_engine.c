/* fuzz_engine.c -- the library itself, driven by a structure-aware input.
 *
 * One input is one transfer over a real socket (an AF_UNIX socketpair or a
 * loopback TCP connection) whose receiving end is played in-process by a
 * scripted peer.  The input chooses:
 *   - the driver: sf_send_async on an event_base, or the sf_job_* stepping API;
 *   - the source: a temporary file of 0..160 KiB (by fd or by path), the
 *     region (offset, count, SF_COUNT_TO_EOF, regions past the end);
 *   - head and tail (0..4 iovecs each), flags (SF_NO_SENDFILE, SF_NO_CORK,
 *     SF_TLS, SF_TRUSTED, SF_FORCE_SENDFILE: sendfile on loopback TCP,
 *     SF_DISK_INLINE), max_chunk, socket buffer sizes, a TCP_CORK the caller set;
 *   - the page-cache probe's answers (the real one, "not resident" always or
 *     every other call, or an errno) and a failing disk-thread read, so
 *     chunks go through the disk threads (SF_STEP_SOURCE when stepping);
 *   - faults in the syscall seam (tests/seam.h) on sendfile, pread, read and
 *     sendmsg (an errno on chosen calls, or calls cut short), and on the
 *     set-up / clean-up calls open, close, fstat, fstatfs, fcntl, getsockopt,
 *     setsockopt, getsockname;
 *   - the peer: read sizes and pauses, closing at byte X, the file shrinking
 *     at step N, a cancel (sf_cancel / sf_job_free) at step N.
 *
 * Invariants checked on every input:
 *   - synchronous errors are exactly the documented ones (or the errno of a
 *     set-up call we made fail), then nothing was sent and done never runs;
 *   - done runs exactly once (never after a cancel), never from inside
 *     sf_send_async, with body_sent == sf_transfer_body_sent;
 *   - the bytes received are always an exact prefix of head + region + tail;
 *     on success they are all of it and body_sent == count; on failure the
 *     status is one the situation allows (an injected fatal errno, EPIPE or
 *     ECONNRESET after the peer closed, SF_ETRUNCATED after the file shrank
 *     below the region) and, unless the peer closed, body_sent is exactly
 *     the region bytes the peer got;
 *   - a transfer with no reason to fail succeeds;
 *   - the read(2) channel is never used for a regular file, a stepping job
 *     never asks to wait for its (regular file) source, stepping after the
 *     end returns the same result;
 *   - the file is never read outside the region; on TCP with a tail every
 *     sendfile call runs under TCP_CORK; TCP_CORK is off afterwards unless
 *     the caller had set it (then still on) -- when no cork call was made
 *     to fail;
 *   - the probe is never asked with SF_DISK_INLINE, and never about bytes
 *     outside the region;
 *   - the event_base holds no event afterwards, and no fd is leaked.
 * Every wait is bounded (a hang is reported as a failure, not waited out). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "evsendfile.h"
#include "input.h"
#include "seam.h"

#define FILE_MAX (160u * 1024u)
#define HEAD_MAX 600u
#define TAIL_MAX 200u
#define ITER_MAX 400000       /* loop turns per input before we call it a hang */
#define IDLE_MAX 200          /* consecutive 10 ms polls with nothing happening */

static uint8_t g_content[FILE_MAX];
static char g_path[PATH_MAX];
static int g_file = -1;
static int g_listen = -1;
static struct sockaddr_in g_addr;

/* ------------------------------------------------------------- setup */

static void cleanup(void) {
    if (g_path[0]) unlink(g_path);
}

static void setup(void) {
    /* No short period: a byte sent from the wrong offset shows. */
    for (uint32_t i = 0; i < FILE_MAX; i++) g_content[i] = (uint8_t)((i * 2654435761u) >> 24 ^ i >> 12);
    const char *t = getenv("TMPDIR");
    snprintf(g_path, sizeof g_path, "%s/evsf-fuzz-engine-XXXXXX", t && *t ? t : "/tmp");
    g_file = mkstemp(g_path);
    FUZZ_CHECK(g_file >= 0, "mkstemp: %s", strerror(errno));
    atexit(cleanup);

    g_listen = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(g_listen >= 0, "socket");
    memset(&g_addr, 0, sizeof g_addr);
    g_addr.sin_family = AF_INET;
    g_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof g_addr;
    FUZZ_CHECK(bind(g_listen, (struct sockaddr *)&g_addr, sizeof g_addr) == 0 &&
                   listen(g_listen, 16) == 0 && getsockname(g_listen, (struct sockaddr *)&g_addr, &al) == 0,
               "loopback listener: %s", strerror(errno));
}

static void set_nonblock(int fd) {
    FUZZ_CHECK(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0, "O_NONBLOCK");
}

/* sender: the library's end; receiver: the peer's.  Both non-blocking. */
static void make_pair(int tcp, int *sender, int *receiver) {
    if (!tcp) {
        int sv[2];
        FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0, "socketpair");
        *sender = sv[0];
        *receiver = sv[1];
        return;
    }
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(c >= 0 && connect(c, (struct sockaddr *)&g_addr, sizeof g_addr) == 0, "connect: %s",
               strerror(errno));
    int s = accept4(g_listen, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    FUZZ_CHECK(s >= 0, "accept: %s", strerror(errno));
    set_nonblock(c);
    *sender = s;
    *receiver = c;
}

/* Closes without TIME_WAIT (RST), so fuzzing never runs out of ports. */
static void close_hard(int fd, int tcp) {
    if (tcp) {
        struct linger l = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close(fd);
}

static int cork_of(int fd) {
    int on = 0;
    socklen_t len = sizeof on;
    return getsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, &len) == 0 && on;
}

/* ------------------------------------------------------------- the plan */

/* The transfer channels, then the set-up / clean-up ones. */
enum {
    CH_SENDFILE, CH_PREAD, CH_READ, CH_SENDMSG,
    CH_OPEN, CH_CLOSE, CH_FSTAT, CH_FSTATFS, CH_FCNTL, CH_GETSOCKOPT, CH_SETSOCKOPT, CH_GETSOCKNAME,
    CH_COUNT
};
#define CH_TRANSFER_COUNT 4

static seam_channel_t *channel(int ch) {
    seam_channel_t *all[CH_COUNT] = {&seam.sendfile, &seam.pread, &seam.read, &seam.sendmsg,
                                     &seam.open, &seam.close, &seam.fstat, &seam.fstatfs,
                                     &seam.fcntl, &seam.getsockopt, &seam.setsockopt, &seam.getsockname};
    return all[ch];
}

static const int k_errs[CH_COUNT][14] = {
    [CH_SENDFILE] = {0, EINTR, EAGAIN, EINVAL, EOPNOTSUPP, EPERM, EOVERFLOW, ESOCKTNOSUPPORT, EAFNOSUPPORT, EIO,
                     ENOMEM, EPIPE, ECONNRESET, ENOBUFS},
    /* The kernel never says EAGAIN for a regular file; the library then
     * reports it rather than waiting for readability. */
    [CH_PREAD] = {0, EINTR, EIO, ENOMEM, EFAULT, EAGAIN},
    [CH_READ] = {0, EINTR, EIO},
    [CH_SENDMSG] = {0, EINTR, EAGAIN, EIO, ENOBUFS, EPIPE, ECONNRESET, EINVAL, EMSGSIZE},
    [CH_OPEN] = {EACCES, ENOENT, EMFILE, ENFILE, EINTR, ENOMEM},
    [CH_CLOSE] = {EIO, EINTR},
    [CH_FSTAT] = {EIO, ENOMEM, EOVERFLOW},
    [CH_FSTATFS] = {EIO, ENOSYS},
    [CH_FCNTL] = {EBADF, EINVAL},
    [CH_GETSOCKOPT] = {ENOTSOCK, EBADF, ENOPROTOOPT, EINVAL},
    [CH_SETSOCKOPT] = {EINVAL, ENOPROTOOPT, ENOMEM},
    [CH_GETSOCKNAME] = {EBADF, ENOBUFS},
};
static const int k_nerrs[CH_COUNT] = {14, 6, 3, 9, 6, 2, 3, 2, 2, 4, 3, 2};

/* Errors the engine rides out: EINTR anywhere, EAGAIN from the socket. */
static int is_retry(int ch, int err) { return err == EINTR || (err == EAGAIN && ch != CH_PREAD); }

static int is_fallback(int ch, int err) {
    return ch == CH_SENDFILE && (err == EINVAL || err == EOPNOTSUPP || err == EPERM || err == EOVERFLOW ||
                                 err == ESOCKTNOSUPPORT || err == EAFNOSUPPORT);
}

typedef struct plan {
    int stepping, tcp, by_path, caller_cork;
    unsigned flags;
    uint64_t size, offset, count;
    uint64_t max_chunk;
    int sndbuf, rcvbuf;
    uint8_t head[HEAD_MAX], tail[TAIL_MAX];
    size_t head_len, tail_len;
    struct iovec head_iov[4], tail_iov[4];
    int head_n, tail_n;
    seam_fault_t fault[CH_COUNT];
    int close_early;
    uint64_t close_at;   /* peer byte count at which it closes */
    long trunc_iter;     /* -1: never */
    uint64_t trunc_size;
    long cancel_iter;    /* -1: never */
    int probe;           /* 0 real, 1 always cold, 2 cold every other call, 3 an errno */
    int probe_err, fetch_fails;
    input_t script;      /* the peer's read sizes */
} plan_t;

/* Splits bytes[0..len) into n iovecs (some possibly empty) at input-chosen points. */
static int split(input_t *in, const uint8_t *bytes, size_t len, struct iovec *iov) {
    int n = take_u8(in) % 5;
    if (n == 0) return len ? (iov[0] = (struct iovec){(void *)bytes, len}, 1) : 0;
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        size_t piece = i == n - 1 ? len - at : (len - at) * take_u8(in) / 255;
        iov[i] = (struct iovec){(void *)(bytes + at), piece};
        at += piece;
    }
    return n;
}

static void read_fault(input_t *in, int ch, seam_fault_t *f) {
    memset(f, 0, sizeof *f);
    uint8_t b = take_u8(in);
    if (!(b & 1)) return;
    f->err = k_errs[ch][(b >> 1) % k_nerrs[ch]];
    f->first = 1 + take_u8(in) % 16;
    f->every = take_u8(in) % 4;
    f->times = 1 + take_u8(in) % 4; /* bounded: an endless EINTR would be our hang, not the library's */
    uint8_t c = take_u8(in);
    f->cap = c & 1 ? (size_t)(c >> 1) * 61 + 1 : 0;
}

static void read_plan(input_t *in, plan_t *p) {
    memset(p, 0, sizeof *p);
    uint8_t m = take_u8(in);
    p->stepping = m & 1;
    p->tcp = (m >> 1) & 1;
    p->by_path = (m >> 2) & 1;
    p->caller_cork = p->tcp && ((m >> 3) & 1);
    switch ((m >> 4) & 3) {
    case 0: p->size = take_u8(in); break;
    case 1: p->size = SF_SMALL_BODY_MAX - 64 + take_u8(in) % 128; break;
    case 2: p->size = take_u16(in) % (SF_SMALL_BODY_MAX * 2); break;
    default: p->size = take_u32(in) % (FILE_MAX + 1); break;
    }
    /* Small buffers on AF_UNIX only: on loopback TCP (MSS 64 KiB) a window
     * below one MSS under TCP_CORK moves one piece per 200 ms cork timer --
     * correct, but far too slow for a fuzz input. */
    int small_bufs = !p->tcp && ((m >> 6) & 1);

    uint8_t f = take_u8(in);
    p->flags = (f & 1 ? SF_NO_SENDFILE : 0) | (f & 2 ? SF_NO_CORK : 0) | (f & 0x10 ? SF_TRUSTED : 0) |
               (f & 0x20 ? SF_FORCE_SENDFILE : 0) | ((f & 0xc0) == 0xc0 ? SF_TLS : 0);
    p->max_chunk = f & 4 ? 64u * (1u + take_u8(in)) : 0;
    if (f & 8) { /* the disk: what the probe says, whether the read-in fails */
        uint8_t c = take_u8(in);
        p->probe = c & 3;
        p->probe_err = c & 4 ? EINVAL : EBADF; /* not ENOSYS: that is remembered by the process */
        p->fetch_fails = (c >> 3) & 1;
        if (c & 0x10) p->flags |= SF_DISK_INLINE;
    }

    p->offset = take_u32(in) % (p->size + 2); /* size + 1: past the end */
    uint8_t ck = take_u8(in);
    uint64_t room = p->offset <= p->size ? p->size - p->offset : 0;
    switch (ck & 3) {
    case 0: p->count = SF_COUNT_TO_EOF; break;
    case 1: p->count = room; break;
    case 2: p->count = take_u32(in) % (room + 3); break; /* up to 2 past the end */
    default: p->count = 0; break;
    }

    p->head_len = take_u16(in) % HEAD_MAX;
    p->tail_len = take_u8(in) % TAIL_MAX;
    for (size_t i = 0; i < p->head_len; i++) p->head[i] = (uint8_t)('A' + i % 26);
    for (size_t i = 0; i < p->tail_len; i++) p->tail[i] = (uint8_t)('a' + i % 26);
    p->head_n = split(in, p->head, p->head_len, p->head_iov);
    p->tail_n = split(in, p->tail, p->tail_len, p->tail_iov);

    if (small_bufs) {
        p->sndbuf = 1024 * (1 + take_u8(in) % 64);
        p->rcvbuf = 1024 * (1 + take_u8(in) % 64);
        /* Not with a probe that says "cold": each time such a socket fills,
         * the disk thread hands the transfer back and this harness waits
         * 10 ms per poll for it (below), and a few-KiB buffer fills every
         * few hundred bytes -- a 100 KB body took 205 s (CI, 2026-12-02):
         * correct, but far too slow for a fuzz input. */
        if (p->probe) p->sndbuf = p->rcvbuf = 0;
    }
    for (int ch = 0; ch < CH_TRANSFER_COUNT; ch++) read_fault(in, ch, &p->fault[ch]);
    /* Set-up / clean-up faults: a mask, then one fault per bit set. */
    uint8_t setup = take_u8(in);
    for (int ch = CH_TRANSFER_COUNT; ch < CH_COUNT; ch++)
        if (setup & (1u << (ch - CH_TRANSFER_COUNT))) read_fault(in, ch, &p->fault[ch]);

    uint8_t e = take_u8(in);
    p->close_early = e & 1;
    p->close_at = take_u32(in); /* reduced once the wire length is known */
    p->trunc_iter = e & 2 ? take_u8(in) : -1;
    p->trunc_size = take_u32(in) % (p->size + 1);
    p->cancel_iter = e & 4 ? take_u8(in) : -1;
    p->script = *in;
}

/* ------------------------------------------------------------- the peer */

typedef struct peer {
    int fd; /* -1 once closed */
    uint8_t *rx;
    size_t len, cap;
    uint64_t close_at;
    int close_early, closed;
    input_t script;
} peer_t;

/* One turn: reads a scripted amount (or pauses).  Returns bytes read, or -1
 * for a deliberate pause (which counts as activity, not as a hang). */
static long peer_turn(peer_t *pe) {
    if (pe->fd < 0) return 0;
    size_t want = 65536;
    if (pe->script.left > 0) {
        uint8_t b = take_u8(&pe->script);
        if ((b & 0xe0) == 0xe0) return -1;
        want = ((size_t)(b & 0x1f) + 1) << (2 * (b >> 5));
    }
    if (pe->close_early) {
        if (pe->len >= pe->close_at) {
            close(pe->fd); /* unread data: TCP answers with RST, AF_UNIX with EPIPE */
            pe->fd = -1;
            pe->closed = 1;
            return 0;
        }
        if (want > pe->close_at - pe->len) want = pe->close_at - pe->len;
    }
    /* rx has one byte more than the wire should carry: an extra byte shows. */
    if (want > pe->cap - pe->len) want = pe->cap - pe->len;
    ssize_t n = read(pe->fd, pe->rx + pe->len, want);
    if (n < 0) {
        FUZZ_CHECK(errno == EAGAIN, "peer read: %s", strerror(errno));
        return 0;
    }
    FUZZ_CHECK(pe->len + (size_t)n <= pe->cap - 1, "the peer got more bytes than head + region + tail");
    pe->len += (size_t)n;
    return n;
}

/* What the kernel says about a stalled TCP connection (for the report). */
static void tcp_report(const char *who, int fd) {
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    int inq = -1, outq = -1;
    ioctl(fd, SIOCINQ, &inq);
    ioctl(fd, SIOCOUTQ, &outq);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return;
    fprintf(stderr, "%s: state %u probes %u backoff %u unacked %u rto %u us snd_mss %u rcv_space %u inq %d outq %d "
            "cork %d\n", who, ti.tcpi_state, ti.tcpi_probes, ti.tcpi_backoff, ti.tcpi_unacked, ti.tcpi_rto,
            ti.tcpi_snd_mss, ti.tcpi_rcv_space, inq, outq, cork_of(fd));
}

/* After the sender has shut down its side: everything still in flight.
 *
 * Once in a few thousand loopback TCP connections on this (busy, virtual)
 * machine the kernel leaves the sender's FIN in flight for many seconds
 * (sender FIN_WAIT1 with one packet unacked, no retransmission, receiver
 * with everything read): when the peer already holds the whole expected
 * image and nothing more is readable, that is accepted after 3 s.  Short of
 * the whole image, a missing EOF after 30 s is a failure. */
static void peer_drain(peer_t *pe, int sender, int tcp, size_t total) {
    while (pe->fd >= 0) {
        struct pollfd pf = {pe->fd, POLLIN, 0};
        int complete = pe->len == total;
        if (poll(&pf, 1, complete ? 3000 : 30000) != 1) {
            if (tcp) {
                tcp_report("sender", sender);
                tcp_report("receiver", pe->fd);
            }
            if (complete) {
                fprintf(stderr, "note: no EOF yet, but the peer has all %zu bytes: accepted\n", total);
                return;
            }
        }
        FUZZ_CHECK(pf.revents != 0, "no EOF from the sender within 30 s (peer has %zu of %zu bytes)", pe->len,
                   total);
        size_t room = pe->cap - pe->len;
        ssize_t n = read(pe->fd, pe->rx + pe->len, room);
        if (n == 0) return;
        if (n < 0) {
            FUZZ_CHECK(errno == EAGAIN, "drain: %s", strerror(errno));
            continue;
        }
        FUZZ_CHECK((size_t)n < room, "the peer got more bytes than head + region + tail");
        pe->len += (size_t)n;
    }
}

/* ------------------------------------------------------------- one input */

typedef struct done_rec {
    int calls;
    int inside_submit;
    int status;
    uint64_t body_sent;
    int cancel_in_done;
    uint64_t handle_body_sent;
} done_rec_t;

static void on_done(sf_transfer_t *t, int status, uint64_t body_sent, void *arg) {
    done_rec_t *d = arg;
    d->calls++;
    d->status = status;
    d->body_sent = body_sent;
    d->handle_body_sent = sf_transfer_body_sent(t);
    d->cancel_in_done = sf_cancel(t);
}

/* What the seam recorded: no file read outside the region (header: "never
 * reading past the region"), and on TCP with a tail, every sendfile call
 * made under TCP_CORK (header, point 3). */
static void check_syscall_log(const plan_t *p, uint64_t count, int cork_faults) {
    uint64_t end = p->offset + count;
    for (int i = 0; i < seam.pread.logged; i++) {
        const seam_call_t *c = &seam.pread.log[i];
        FUZZ_CHECK(c->off >= p->offset && c->off + c->count <= end,
                   "pread of [%" PRIu64 ", +%zu) outside the region [%" PRIu64 ", %" PRIu64 ")", c->off, c->count,
                   p->offset, end);
    }
    int want_cork = p->tcp && !(p->flags & SF_NO_CORK) && p->tail_len > 0 && cork_faults == 0;
    for (int i = 0; i < seam.sendfile.logged; i++) {
        const seam_call_t *c = &seam.sendfile.log[i];
        FUZZ_CHECK(c->off >= p->offset && c->off + c->count <= end,
                   "sendfile of [%" PRIu64 ", +%zu) outside the region [%" PRIu64 ", %" PRIu64 ")", c->off,
                   c->count, p->offset, end);
        if (want_cork) FUZZ_CHECK(c->corked == 1, "sendfile call %d without TCP_CORK (head %zu, tail %zu)", i,
                                  p->head_len, p->tail_len);
    }
}

static int sync_error_expected(const plan_t *p) {
    if (p->flags & SF_TLS) return SF_ENOKTLS; /* neither socket carries kernel TLS */
    if (p->offset > p->size) return -ERANGE;
    if (p->count != SF_COUNT_TO_EOF && p->count > p->size - p->offset) return -ERANGE;
    return 0;
}

static int g_probe_mode, g_probe_calls, g_cold_answers;

/* Answers for the probe (the real one in mode 0), counting "not resident". */
static int probe_hook(int fd, uint64_t off, uint64_t len, int *ret) {
    g_probe_calls++;
    *ret = g_probe_mode == 1 || (g_probe_mode == 2 && (g_probe_calls & 1)) ? 0 : seam_real_resident(fd, off, len);
    g_cold_answers += *ret == 0;
    return 1;
}

/* Waits (bounded) until no disk-thread read is in progress. */
static void wait_disk_idle(void) {
    for (int i = 0; i < 10000 && seam_fetch_calls() != seam_fetch_returned(); i++) usleep(1000);
    FUZZ_CHECK(seam_fetch_calls() == seam_fetch_returned(), "a disk-thread read never returned");
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int set_up;
    if (!set_up) {
        setup();
        set_up = 1;
    }
    /* Counted per input: between inputs libFuzzer may open fds of its own
     * (pipes to llvm-symbolizer when it reports a new function). */
    int fds_before = count_fds();
    input_t in = {data, size};
    static plan_t p;
    read_plan(&in, &p);

    /* The file, as this input wants it. */
    FUZZ_CHECK(ftruncate(g_file, 0) == 0 && pwrite(g_file, g_content, p.size, 0) == (ssize_t)p.size,
               "writing the file");

    int sender, receiver;
    make_pair(p.tcp, &sender, &receiver);
    if (p.sndbuf) setsockopt(sender, SOL_SOCKET, SO_SNDBUF, &p.sndbuf, sizeof p.sndbuf);
    if (p.rcvbuf) setsockopt(receiver, SOL_SOCKET, SO_RCVBUF, &p.rcvbuf, sizeof p.rcvbuf);
    if (p.caller_cork) {
        int one = 1;
        FUZZ_CHECK(setsockopt(sender, IPPROTO_TCP, TCP_CORK, &one, sizeof one) == 0, "TCP_CORK");
    }

    /* What the wire must carry. */
    int sync_want = sync_error_expected(&p);
    uint64_t count = p.count == SF_COUNT_TO_EOF && sync_want == 0 ? p.size - p.offset : p.count;
    size_t total = sync_want ? 0 : p.head_len + (size_t)count + p.tail_len;
    uint8_t *expect = malloc(total + 1);
    FUZZ_CHECK(expect != NULL, "malloc");
    if (!sync_want) {
        memcpy(expect, p.head, p.head_len);
        memcpy(expect + p.head_len, g_content + p.offset, (size_t)count);
        memcpy(expect + p.head_len + count, p.tail, p.tail_len);
    }
    peer_t pe = {.fd = receiver, .cap = total + 1, .close_early = p.close_early,
                 .close_at = p.close_at % (total + 1), .script = p.script};
    pe.rx = malloc(pe.cap);
    FUZZ_CHECK(pe.rx != NULL, "malloc");

    sf_options_t o;
    sf_options_init(&o);
    o.head = p.head_iov;
    o.head_count = p.head_n;
    o.tail = p.tail_iov;
    o.tail_count = p.tail_n;
    o.max_chunk = p.max_chunk;
    o.flags = p.flags;
    sf_region_t reg = {p.by_path ? -1 : g_file, p.by_path ? g_path : NULL, p.offset, p.count};

    seam_install();
    for (int ch = 0; ch < CH_COUNT; ch++) channel(ch)->fault = p.fault[ch];
    g_probe_mode = p.probe;
    g_probe_calls = g_cold_answers = 0;
    seam.resident_hook = probe_hook;
    if (p.probe == 3) seam.resident.fault = (seam_fault_t){.err = p.probe_err, .first = 1, .every = 1};
    if (p.fetch_fails) seam.fetch.fault = (seam_fault_t){.err = EIO, .first = 1, .times = 1};

    struct event_base *base = NULL;
    sf_transfer_t *t = NULL;
    sf_job_t *job = NULL;
    done_rec_t d = {0};
    int r;
    if (p.stepping) {
        r = sf_job_new(sender, &reg, &o, &job);
    } else {
        base = event_base_new();
        FUZZ_CHECK(base != NULL, "event_base_new");
        r = sf_send_async(base, sender, &reg, &o, on_done, &d, &t);
        FUZZ_CHECK(d.calls == 0, "done ran inside sf_send_async");
    }
    /* A set-up call that failed may be the synchronous error instead. */
    int sync_ok = r == sync_want;
    for (int ch = CH_TRANSFER_COUNT; ch < CH_COUNT; ch++)
        sync_ok |= channel(ch)->injected > 0 && r == -channel(ch)->fault.err;
    FUZZ_CHECK(sync_ok, "submit returned %d (%s), expected %d", r, sf_err_name(r), sync_want);

    int finished = r != 0, cancelled = 0, truncated = 0, status = 0, idle = 0;
    uint64_t body_sent = 0;
    for (long iter = 0; !finished; iter++) {
        FUZZ_CHECK(iter < ITER_MAX, "no end after %d loop turns", ITER_MAX);
        uint64_t moved_before = seam_bytes_moved();
        if (iter == p.trunc_iter) {
            FUZZ_CHECK(ftruncate(g_file, (off_t)p.trunc_size) == 0, "ftruncate");
            truncated = 1;
        }
        if (iter == p.cancel_iter) {
            if (p.stepping) {
                body_sent = sf_job_body_sent(job);
                sf_job_free(job);
                job = NULL;
            } else {
                FUZZ_CHECK(sf_cancel(t) == 0, "sf_cancel before done");
            }
            cancelled = finished = 1;
            break;
        }
        int stepped_yield = 0, disk_before = seam_fetch_returned();
        if (p.stepping) {
            int sr = sf_job_step(job);
            FUZZ_CHECK(sr != SF_STEP_READ, "a regular file source asked to wait for readability");
            if (sr <= 0) {
                status = sr;
                body_sent = sf_job_body_sent(job);
                FUZZ_CHECK(sf_job_step(job) == sr, "stepping after the end changed the result");
                finished = 1;
            }
            stepped_yield = sr == SF_STEP_YIELD;
            if (sr == SF_STEP_SOURCE) { /* as a foreign loop would: wait for the wake-up fd */
                struct pollfd wf = {sf_job_wait_fd(job), POLLIN, 0};
                FUZZ_CHECK(wf.fd >= 0 && wf.fd != g_file, "SF_STEP_SOURCE without a wake-up fd");
                FUZZ_CHECK(poll(&wf, 1, 10000) == 1, "the wake-up fd never became readable");
                stepped_yield = 1;
            }
        } else {
            event_base_loop(base, EVLOOP_NONBLOCK);
            if (d.calls) {
                status = d.status;
                body_sent = d.body_sent;
                finished = 1;
            }
        }
        long got = peer_turn(&pe);
        /* A chunk being read in by a disk thread is progress too. */
        int disk_busy = seam_fetch_calls() != seam_fetch_returned() || seam_fetch_returned() != disk_before;
        if (disk_busy && !stepped_yield) usleep(100);
        if (got != 0 || stepped_yield || disk_busy || seam_bytes_moved() != moved_before || finished) {
            idle = 0;
            continue;
        }
        /* Nothing moved: wait (bounded) for the kernel to move something. */
        FUZZ_CHECK(++idle < IDLE_MAX,
                   "stuck: nothing moved for %d polls (peer has %zu of %zu bytes; probe mode %d, %d cold answers, "
                   "%d disk reads, %d returned)",
                   IDLE_MAX, pe.len, total, p.probe, g_cold_answers, seam_fetch_calls(), seam_fetch_returned());
        struct pollfd pf[2] = {{sender, POLLOUT, 0}, {pe.fd, POLLIN, 0}};
        poll(pf, pe.fd >= 0 ? 2 : 1, 10);
        /* A chunk queued for a disk thread (the thread maybe not started
         * yet) shows nowhere else: give it the same 10 ms per poll.  The
         * copy path hands over without a probe answer too (an injected
         * EAGAIN on its nowait read), so ask the pool. */
        if (g_cold_answers > 0 || evsf_disk_pending() > 0) usleep(10000);
    }

    if (!p.stepping) {
        /* A few more turns: a second done, or one after sf_cancel, would show. */
        for (int i = 0; i < 3; i++) event_base_loop(base, EVLOOP_NONBLOCK);
        FUZZ_CHECK(d.calls == (r == 0 && !cancelled), "done ran %d times (submit %d, cancelled %d)", d.calls, r,
                   cancelled);
        if (d.calls) {
            FUZZ_CHECK(d.cancel_in_done == -EALREADY, "sf_cancel inside done returned %d", d.cancel_in_done);
            FUZZ_CHECK(d.handle_body_sent == d.body_sent, "sf_transfer_body_sent disagrees with done");
        }
        FUZZ_CHECK(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE) == 0,
                   "events left on the base after the transfer");
    }
    /* The cork is the caller's again -- unless we made the cork calls fail. */
    int cork_faults = seam.getsockopt.injected + seam.setsockopt.injected;
    if (p.tcp && r == 0 && cork_faults == 0) {
        FUZZ_CHECK(cork_of(sender) == p.caller_cork, "TCP_CORK is %d afterwards, the caller had %d",
                   cork_of(sender), p.caller_cork);
        int zero = 0;
        setsockopt(sender, IPPROTO_TCP, TCP_CORK, &zero, sizeof zero);
    }
    sf_job_free(job);
    if (base) event_base_free(base);
    FUZZ_CHECK(seam.read.calls == 0, "read(2) used on a regular file");
    int fatal[CH_TRANSFER_COUNT] = {0};
    int any_fatal = 0;
    for (int ch = 0; ch < CH_TRANSFER_COUNT; ch++) {
        const seam_channel_t *c = channel(ch);
        int err = c->fault.err;
        if (c->injected > 0 && err && !is_retry(ch, err) && !is_fallback(ch, err)) fatal[ch] = -err, any_fatal = 1;
    }
    if (r == 0) check_syscall_log(&p, count, cork_faults);
    if (p.flags & SF_DISK_INLINE) FUZZ_CHECK(seam.resident.calls == 0, "SF_DISK_INLINE, yet the probe was asked");
    for (int i = 0; i < seam.resident.logged; i++) {
        const seam_call_t *c = &seam.resident.log[i];
        FUZZ_CHECK(c->off >= p.offset && c->off + c->count <= p.offset + count,
                   "probe of [%" PRIu64 ", +%zu) outside the region", c->off, c->count);
    }
    wait_disk_idle(); /* a cancel may leave one in progress: it ends on the thread's own fd */
    int injected[3] = {seam.sendfile.injected, seam.pread.injected, seam.sendmsg.injected};
    seam_uninstall();

    /* Everything the sender wrote reaches the peer (unless it closed). */
    shutdown(sender, SHUT_WR);
    peer_drain(&pe, sender, p.tcp, r == 0 ? total : 0);

    /* ---- the verdict */
    /* Bytes already handed to the socket by sendfile are page references, not
     * copies: when the file shrinks, the kernel zeroes the tail of the page
     * holding the new end, and the peer can see those zeros.  So past the new
     * end, a 0 is as good as the original byte. */
    uint64_t zero_from = truncated ? p.head_len + (p.trunc_size > p.offset ? p.trunc_size - p.offset : 0) : total;
    size_t bad = 0;
    while (bad < pe.len && bad < total &&
           (pe.rx[bad] == expect[bad] ||
            (pe.rx[bad] == 0 && bad >= zero_from && bad < p.head_len + count)))
        bad++;
    FUZZ_CHECK(bad == pe.len, "the peer got %zu bytes (of %zu expected) that differ from byte %zu (got 0x%02x, "
               "want 0x%02x)", pe.len, total, bad, pe.rx[bad], bad < total ? expect[bad] : 0);
    if (r != 0) FUZZ_CHECK(pe.len == 0, "%zu bytes sent despite the synchronous error", pe.len);
    uint64_t region_got = pe.len <= p.head_len ? 0 : pe.len - p.head_len;
    if (region_got > count) region_got = count;
    if (r == 0 && cancelled) {
        FUZZ_CHECK(body_sent <= count, "body_sent %" PRIu64 " > count", body_sent);
    } else if (r == 0) {
        int shrank = truncated && p.trunc_size < p.offset + count;
        int allowed = status == 0 || (pe.closed && (status == -EPIPE || status == -ECONNRESET)) ||
                      (shrank && status == SF_ETRUNCATED);
        for (int ch = 0; ch < CH_TRANSFER_COUNT; ch++) allowed |= fatal[ch] && status == fatal[ch];
        FUZZ_CHECK(allowed, "status %d (%s) has no cause", status, sf_err_name(status));
        FUZZ_CHECK(body_sent <= count, "body_sent %" PRIu64 " > count %" PRIu64, body_sent, count);
        if (status == 0) {
            FUZZ_CHECK(body_sent == count, "success with body_sent %" PRIu64 " of %" PRIu64, body_sent, count);
            if (!pe.closed) FUZZ_CHECK(pe.len == total, "success, but the peer got %zu of %zu", pe.len, total);
        } else {
            FUZZ_CHECK(pe.len < total, "status %d, yet the peer got everything", status);
        }
        if (!pe.closed) {
            FUZZ_CHECK(body_sent == region_got, "body_sent %" PRIu64 ", the peer got %" PRIu64 " region bytes",
                       body_sent, region_got);
        } else {
            FUZZ_CHECK(body_sent >= region_got, "body_sent %" PRIu64 " < %" PRIu64 " region bytes received",
                       body_sent, region_got);
        }
        if (!any_fatal && !pe.closed && !shrank)
            FUZZ_CHECK(status == 0, "failed with %d (%s) for no reason", status, sf_err_name(status));
    }

    if (getenv("FUZZ_ENGINE_VERBOSE"))
        fprintf(stderr, "engine: %s %s%s submit=%d status=%d(%s) body_sent=%" PRIu64 "/%" PRIu64
                " peer=%zu/%zu closed=%d shrank=%d cancelled=%d faults sf=%d pr=%d sm=%d\n",
                p.stepping ? "step" : "async", p.tcp ? "tcp" : "unix", p.by_path ? " path" : "", r, status,
                sf_err_name(status), body_sent, count, pe.len, total, pe.closed, truncated, cancelled,
                injected[0], injected[1], injected[2]);
    close_hard(sender, p.tcp);
    if (pe.fd >= 0) close_hard(pe.fd, p.tcp);
    free(pe.rx);
    free(expect);
    int fds = count_fds();
    /* The disk thread lets go of its dup and wake-up fd right after its read. */
    for (int i = 0; i < 1000 && fds != fds_before; i++) {
        usleep(1000);
        fds = count_fds();
    }
    FUZZ_CHECK(fds == fds_before, "%d fds open, %d before: leaked", fds, fds_before);
    return 0;
}
