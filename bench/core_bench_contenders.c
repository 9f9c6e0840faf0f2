/* core_bench_contenders.c -- every way of sending "head + file" that the
 * benchmark compares, each as one function with the same contract
 * (struct spec in core_bench.h).  All of them run on the calling thread,
 * so getrusage(RUSAGE_THREAD) around a call is the sender's CPU.
 *
 *   limit-blocking   blocking sendfile loop (one connection)
 *   limit-poll       non-blocking poll() + sendfile asking 2 MiB per call
 *   evsf-async       sf_send_async on libevent (the library as shipped)
 *   evsf-trusted     the same with SF_TRUSTED (no per-transfer fd checks)
 *   evsf-known       SF_TRUSTED | SF_KNOWN_SIZE (the file's size handed in: no fstat either)
 *   evsf-peer-once   evsf-known, plus the body's method asked once per connection
 *   evsf-shut        evsf-known, and SF_SHUT_WR on each connection's last transfer
 *                    (the library sends the FIN; the harness does not)
 *                    (sf_peer_flags at its first transfer) instead of by every transfer
 *   evsf-handover    the same flags as evsf-known; the first step on the caller's own (sf_job_new +
 *                    sf_job_step), sf_job_start only for a transfer that did not finish there
 *   evsf-step        sf_job_new / sf_job_step on a bare epoll loop
 *   evsf-sendfile    sf_send_async with SF_FORCE_SENDFILE (the sink is on
 *                    loopback, where evsf-async takes the copy path)
 *   evbuf-sendfile   bufferevent + evbuffer_add + evbuffer_add_file_segment
 *   evbuf-mmap       the same, segment made with EVBUF_FS_DISABLE_SENDFILE
 *   copy             non-blocking pread + writev loop on libevent
 *   raw-writev / raw-sendfile   blocking loops, one connection: the
 *                    small-body crossover (read + writev vs MSG_MORE + sendfile)
 * plus variants of these with other knobs (max_chunk, SF_NO_CORK, the head
 * sent by the caller as a packet of its own: evsf-ownhead, ...).
 *
 * The event-loop contenders start at most one transfer per connection per
 * loop turn, as a server does when the next request must be read first:
 * evsf-async starts the next one from `done` (which runs from the loop),
 * bufferevent from its write callback, copy and evsf-step after a turn. */
#define _GNU_SOURCE
#include "core_bench.h"

#include <evsendfile.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_PER_SYSCALL 0x7ffff000u

static int fail(const char *who, const char *what) {
    fprintf(stderr, "%s: %s\n", who, what);
    return -1;
}

static void set_blocking(int fd, int blocking) {
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, blocking ? fl & ~O_NONBLOCK : fl | O_NONBLOCK);
}

/* Blocking: write all of p[0..n). */
static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* ----------------------------------------------------------- the limit */

static int run_limit_blocking(const struct spec *s, long *note) {
    (void)note;
    int sock = s->socks[0];
    set_blocking(sock, 1);
    for (int t = 0; t < s->per_conn[0]; t++) {
        if (s->head_len && send(sock, s->head, s->head_len, MSG_MORE) != (ssize_t)s->head_len)
            return fail("limit-blocking", "send head");
        off_t off = 0;
        while ((uint64_t)off < s->size) {
            uint64_t left = s->size - (uint64_t)off;
            ssize_t n = sendfile(sock, s->file_fd, &off, left < MAX_PER_SYSCALL ? left : MAX_PER_SYSCALL);
            if (n <= 0 && !(n < 0 && errno == EINTR)) return fail("limit-blocking", "sendfile");
        }
    }
    shutdown(sock, SHUT_WR);
    return 0;
}

static int run_limit_poll(const struct spec *s, long *note) {
    int sock = s->socks[0];
    for (int t = 0; t < s->per_conn[0]; t++) {
        if (s->head_len && send(sock, s->head, s->head_len, MSG_MORE) != (ssize_t)s->head_len)
            return fail("limit-poll", "send head");
        off_t off = 0;
        while ((uint64_t)off < s->size) {
            uint64_t left = s->size - (uint64_t)off;
            ssize_t n = sendfile(sock, s->file_fd, &off, left < (2u << 20) ? left : (2u << 20));
            if (n < 0 && errno == EAGAIN) {
                struct pollfd p = {sock, POLLOUT, 0};
                poll(&p, 1, -1);
                ++*note; /* polls */
            } else if (n <= 0 && !(n < 0 && errno == EINTR)) {
                return fail("limit-poll", "sendfile");
            }
        }
    }
    shutdown(sock, SHUT_WR);
    return 0;
}

/* ------------------------------------------- raw small-body crossover */

static int run_raw_writev(const struct spec *s, long *note) {
    (void)note;
    int sock = s->socks[0];
    set_blocking(sock, 1);
    char *body = malloc(s->size);
    for (int t = 0; t < s->per_conn[0]; t++) {
        if (pread(s->file_fd, body, s->size, 0) != (ssize_t)s->size) return fail("raw-writev", "pread");
        struct iovec iov[2] = {{(void *)s->head, s->head_len}, {body, s->size}};
        ssize_t k = writev(sock, iov, 2);
        if (k < 0) return fail("raw-writev", "writev");
        size_t done = (size_t)k; /* a blocking socket rarely writes short; finish it */
        if (done < s->head_len && write_all(sock, s->head + done, s->head_len - done)) return -1;
        size_t body_done = done > s->head_len ? done - s->head_len : 0;
        if (write_all(sock, body + body_done, s->size - body_done)) return fail("raw-writev", "write");
    }
    free(body);
    shutdown(sock, SHUT_WR);
    return 0;
}

static int run_raw_sendfile(const struct spec *s, long *note) {
    (void)note;
    int sock = s->socks[0];
    set_blocking(sock, 1);
    for (int t = 0; t < s->per_conn[0]; t++) {
        if (send(sock, s->head, s->head_len, MSG_MORE) != (ssize_t)s->head_len)
            return fail("raw-sendfile", "send");
        off_t off = 0;
        while ((uint64_t)off < s->size)
            if (sendfile(sock, s->file_fd, &off, s->size - (uint64_t)off) <= 0)
                return fail("raw-sendfile", "sendfile");
    }
    shutdown(sock, SHUT_WR);
    return 0;
}

/* Per-connection state shared by the event-loop contenders. */
struct conn {
    int fd;
    int left;        /* transfers still to start on this connection */
    struct run *run;
    /* copy */
    struct event *ev;
    int armed; /* ev is added (waiting for EV_WRITE) */
    uint64_t off;
    size_t head_pos;
    /* evsf-peer-once: sf_peer_flags' answer, asked at the first transfer */
    int peer_asked;
    unsigned flags;
    /* evsf-step */
    sf_job_t *job;
    int registered, queued;
    /* bufferevent */
    struct bufferevent *bev;
};

struct run {
    const struct spec *s;
    struct conn *c;
    int open_conns;
    int failed;
    long *note;
    struct event_base *base;
    sf_options_t opts;
    struct iovec head_iov;
    struct evbuffer_file_segment *seg;
    int own_head; /* evsf-ownhead: the harness sends the head itself */
    char *buf; /* the copy loop's buffer, shared by all connections */
    int late_shut; /* evsf-step-lateshut: FINs only after every transfer is out */
    int peer_once; /* evsf-peer-once */
    int shut_last; /* evsf-shut: SF_SHUT_WR on a connection's last transfer */
};

static int run_init(struct run *r, const struct spec *s, long *note, int with_base) {
    memset(r, 0, sizeof *r);
    r->s = s;
    r->note = note;
    r->open_conns = s->n_conns;
    r->c = calloc((size_t)s->n_conns, sizeof *r->c);
    if (!r->c) return -1;
    for (int i = 0; i < s->n_conns; i++) {
        r->c[i].fd = s->socks[i];
        r->c[i].left = s->per_conn[i];
        r->c[i].run = r;
    }
    sf_options_init(&r->opts);
    r->head_iov.iov_base = (void *)s->head;
    r->head_iov.iov_len = s->head_len;
    if (s->head_len) {
        r->opts.head = &r->head_iov;
        r->opts.head_count = 1;
    }
    r->opts.flags = s->evsf_flags;
    r->opts.max_chunk = s->max_chunk;
    if (s->evsf_flags & SF_KNOWN_SIZE) { /* the caller's fstat, made once, as a server's per response */
        struct stat st;
        if (fstat(s->file_fd, &st) != 0) return -1;
        r->opts.file_size = (uint64_t)st.st_size;
    }
    if (with_base && !(r->base = event_base_new())) return -1;
    return 0;
}

static int run_finish(struct run *r) {
    if (r->base) event_base_free(r->base);
    free(r->c);
    return r->failed || r->open_conns ? -1 : 0;
}

/* The last transfer is out: FIN after the data.  The fd stays open until
 * the sink has everything (the driver closes it): closed sockets with data
 * still queued are orphans, and the kernel resets orphans under memory
 * pressure, losing the data (seen with 10,000 x 1 MiB). */
static void conn_closed(struct conn *c) {
    if (!c->run->late_shut && !c->run->shut_last) shutdown(c->fd, SHUT_WR);
    c->fd = -1;
    c->run->open_conns--;
}

/* ---------------------------------------------------------- evsf-async */

static void evsf_next(struct conn *c);

/* Counts the connection's next transfer; 0 (and the connection shut) when none is left. */
static int take_next(struct conn *c) {
    if (c->left == 0) {
        conn_closed(c);
        return 0;
    }
    c->left--;
    return 1;
}

/* A done callback's check: the whole body, no error; else the run fails. */
static int done_ok(struct conn *c, const char *who, int status, uint64_t sent) {
    if (status == 0 && sent == c->run->s->size) return 1;
    fprintf(stderr, "%s: %s, %llu bytes\n", who, sf_err_text(status), (unsigned long long)sent);
    c->run->failed = 1;
    event_base_loopbreak(c->run->base);
    return 0;
}

static void evsf_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    (void)t;
    if (done_ok(arg, "evsf-async", status, sent)) evsf_next(arg);
}

static void evsf_next(struct conn *c) {
    struct run *r = c->run;
    if (!take_next(c)) return;
    sf_region_t region = {r->s->file_fd, NULL, 0, r->s->size};
    unsigned flags = r->s->evsf_flags;
    if (r->peer_once) { /* as a server would: once per connection, kept with it */
        if (!c->peer_asked) {
            int f = sf_peer_flags(c->fd, r->s->evsf_flags);
            c->flags = f < 0 ? r->s->evsf_flags : (unsigned)f;
            c->peer_asked = 1;
        }
        flags = c->flags;
    }
    if (r->shut_last && c->left == 0) flags |= SF_SHUT_WR; /* the connection's last response */
    r->opts.flags = flags;
    if (r->own_head) { /* experiment: the head as a packet of its own, sent before the library runs */
        if (send(c->fd, r->s->head, r->s->head_len, MSG_NOSIGNAL) != (ssize_t)r->s->head_len) {
            fprintf(stderr, "evsf-ownhead: head did not fit\n");
            r->failed = 1;
            event_base_loopbreak(r->base);
            return;
        }
    }
    int err = sf_send_async(r->base, c->fd, &region, &r->opts, evsf_done, c, NULL);
    if (err) {
        fprintf(stderr, "sf_send_async: %s\n", sf_err_text(err));
        r->failed = 1;
        event_base_loopbreak(r->base);
    }
}

static int run_evsf_async_with(const struct spec *s, long *note, int own_head, int peer_once, int shut_last) {
    struct run r;
    if (run_init(&r, s, note, 1)) return fail("evsf-async", "init");
    r.peer_once = peer_once;
    r.shut_last = shut_last;
    if ((r.own_head = own_head)) {
        r.opts.head = NULL;
        r.opts.head_count = 0;
    }
    for (int i = 0; i < s->n_conns && !r.failed; i++) evsf_next(&r.c[i]);
    if (!r.failed) event_base_dispatch(r.base);
    return run_finish(&r);
}

static int run_evsf_async(const struct spec *s, long *note) { return run_evsf_async_with(s, note, 0, 0, 0); }
static int run_evsf_ownhead(const struct spec *s, long *note) { return run_evsf_async_with(s, note, 1, 0, 0); }
static int run_evsf_peer_once(const struct spec *s, long *note) { return run_evsf_async_with(s, note, 0, 1, 0); }
static int run_evsf_shut(const struct spec *s, long *note) { return run_evsf_async_with(s, note, 0, 0, 1); }

/* ----------------------------------------------------------- evsf-step */

static int run_evsf_step_with(const struct spec *s, long *note, int late_shut) {
    struct run r;
    if (run_init(&r, s, note, 0)) return fail("evsf-step", "init");
    r.late_shut = late_shut;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct conn **yielded = malloc((size_t)s->n_conns * sizeof *yielded);
    struct conn **again = malloc((size_t)s->n_conns * sizeof *again);
    int n_yielded = 0;
    struct epoll_event evs[512];
    sf_region_t region = {s->file_fd, NULL, 0, s->size};

    /* Each connection in again[] is stepped once; one that finished a
     * transfer or yielded goes again after the next epoll_wait (timeout 0). */
    int pending_start = s->n_conns;
    for (int i = 0; i < s->n_conns; i++) again[i] = &r.c[i];
    for (;;) {
        for (int k = 0; k < pending_start && !r.failed; k++) {
            struct conn *c = again[k];
            c->queued = 0;
            for (;;) {
                if (!c->job) {
                    if (c->left == 0) {
                        conn_closed(c);
                        break;
                    }
                    c->left--;
                    int err = sf_job_new(c->fd, &region, &r.opts, &c->job);
                    if (err) {
                        fprintf(stderr, "sf_job_new: %s\n", sf_err_text(err));
                        r.failed = 1;
                        break;
                    }
                }
                int st = sf_job_step(c->job);
                if (st == SF_STEP_DONE) {
                    if (sf_job_body_sent(c->job) != s->size) r.failed = 1;
                    sf_job_free(c->job);
                    c->job = NULL;
                    if (c->left == 0) {
                        conn_closed(c);
                    } else { /* the next transfer starts on the next loop turn */
                        c->queued = 1;
                        yielded[n_yielded++] = c;
                    }
                    break;
                }
                if (st == SF_STEP_YIELD) {
                    c->queued = 1;
                    yielded[n_yielded++] = c;
                    break;
                }
                if (st == SF_STEP_WRITE) {
                    if (!c->registered) {
                        struct epoll_event e = {.events = EPOLLOUT | EPOLLET, .data.ptr = c};
                        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e)) r.failed = 1;
                        c->registered = 1;
                    }
                    break;
                }
                fprintf(stderr, "sf_job_step: %s\n", sf_err_text(st));
                r.failed = 1;
                break;
            }
        }
        if (r.failed || r.open_conns == 0) break;
        /* next: the yielded ones, then whatever epoll reports */
        memcpy(again, yielded, (size_t)n_yielded * sizeof *again);
        pending_start = n_yielded;
        int timeout = n_yielded ? 0 : -1;
        n_yielded = 0;
        int n = epoll_wait(ep, evs, 512, timeout);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c->queued && c->fd >= 0) { /* not already queued as yielded */
                c->queued = 1;
                again[pending_start++] = c;
            }
        }
    }
    for (int i = 0; i < s->n_conns; i++) sf_job_free(r.c[i].job);
    if (late_shut)
        for (int i = 0; i < s->n_conns; i++) shutdown(s->socks[i], SHUT_WR);
    close(ep);
    free(yielded);
    free(again);
    return run_finish(&r);
}

static int run_evsf_step(const struct spec *s, long *note) { return run_evsf_step_with(s, note, 0); }
/* Experiment: the stepping harness with evsf-async's FIN pattern (every
 * transfer out first, then every shutdown), for the 10,000-connection gap. */
static int run_evsf_step_lateshut(const struct spec *s, long *note) { return run_evsf_step_with(s, note, 1); }

/* -------------------------------------------------------- bufferevent */

static void bev_next(struct conn *c) {
    struct run *r = c->run;
    if (c->left == 0) {
        bufferevent_free(c->bev); /* without BEV_OPT_CLOSE_ON_FREE: the socket stays */
        c->bev = NULL;
        conn_closed(c);
        return;
    }
    c->left--;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_add(out, r->s->head, r->s->head_len) ||
        evbuffer_add_file_segment(out, r->seg, 0, (ev_off_t)r->s->size)) {
        r->failed = 1;
        event_base_loopbreak(r->base);
    }
}

/* The write callback runs when the output buffer is empty (low watermark 0). */
static void bev_written(struct bufferevent *bev, void *arg) {
    (void)bev;
    bev_next(arg);
}

static void bev_event(struct bufferevent *bev, short what, void *arg) {
    struct conn *c = arg;
    if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_WRITING) && evbuffer_get_length(bufferevent_get_output(bev))) {
        /* libevent 2.1 reports a sendfile EAGAIN on Linux as EOF; nothing was
         * lost, so switch writing back on (a user would have to do this). */
        ++*c->run->note;
        bufferevent_enable(bev, EV_WRITE);
        return;
    }
    fprintf(stderr, "bufferevent: event 0x%x\n", what);
    c->run->failed = 1;
    event_base_loopbreak(c->run->base);
}

static int run_bufferevent(const struct spec *s, long *note, unsigned seg_flags) {
    struct run r;
    if (run_init(&r, s, note, 1)) return fail("bufferevent", "init");
    r.seg = evbuffer_file_segment_new(s->file_fd, 0, (ev_off_t)s->size, seg_flags);
    if (!r.seg) return fail("bufferevent", "evbuffer_file_segment_new");
    for (int i = 0; i < s->n_conns && !r.failed; i++) {
        struct conn *c = &r.c[i];
        c->bev = bufferevent_socket_new(r.base, c->fd, 0);
        if (!c->bev) return fail("bufferevent", "bufferevent_socket_new");
        bufferevent_setcb(c->bev, NULL, bev_written, bev_event, c);
        bufferevent_enable(c->bev, EV_WRITE);
        bev_next(c);
    }
    if (!r.failed) event_base_dispatch(r.base);
    for (int i = 0; i < s->n_conns; i++)
        if (r.c[i].bev) bufferevent_free(r.c[i].bev);
    evbuffer_file_segment_free(r.seg);
    return run_finish(&r);
}

static int run_evbuf_sendfile(const struct spec *s, long *note) { return run_bufferevent(s, note, 0); }
static int run_evbuf_mmap(const struct spec *s, long *note) {
    return run_bufferevent(s, note, EVBUF_FS_DISABLE_SENDFILE);
}

/* ---------------------------------------------------- copy, by hand */

/* pread the next piece at c->off into the shared buffer, writev head rest +
 * piece; bytes the socket did not take are read again next time.
 * 0: transfer done; 1: socket full; -1: error. */
static int copy_step(struct conn *c) {
    struct run *r = c->run;
    const struct spec *s = r->s;
    for (;;) {
        size_t hleft = s->head_len - c->head_pos;
        uint64_t bleft = s->size - c->off;
        if (hleft == 0 && bleft == 0) return 0;
        size_t want = bleft < s->buf_size ? (size_t)bleft : s->buf_size;
        ssize_t got = 0;
        if (want) {
            got = pread(s->file_fd, r->buf, want, (off_t)c->off);
            if (got <= 0) return -1;
        }
        struct iovec iov[2] = {{(char *)s->head + c->head_pos, hleft}, {r->buf, (size_t)got}};
        ssize_t n = hleft ? writev(c->fd, iov, 2) : write(c->fd, r->buf, (size_t)got);
        if (n < 0) return errno == EAGAIN ? 1 : errno == EINTR ? 2 : -1;
        size_t h = (size_t)n < hleft ? (size_t)n : hleft;
        c->head_pos += h;
        c->off += (uint64_t)n - h;
    }
}

static void copy_ready(evutil_socket_t fd, short what, void *arg);

static void copy_drive(struct conn *c) {
    struct run *r = c->run;
    for (;;) {
        int st = copy_step(c);
        if (st == 2) continue;
        if (st < 0) {
            r->failed = 1;
            event_base_loopbreak(r->base);
            return;
        }
        if (st == 1) {
            if (!c->armed) event_add(c->ev, NULL);
            c->armed = 1;
            return;
        }
        if (c->armed) event_del(c->ev);
        c->armed = 0;
        if (c->left == 0) { /* last transfer done */
            event_free(c->ev);
            c->ev = NULL;
            conn_closed(c);
            return;
        }
        c->left--; /* the next transfer starts on the next loop turn */
        c->off = 0;
        c->head_pos = 0;
        event_active(c->ev, EV_WRITE, 0);
        return;
    }
}

static void copy_ready(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    copy_drive(arg);
}

static int run_copy(const struct spec *s, long *note) {
    struct run r;
    if (run_init(&r, s, note, 1)) return fail("copy", "init");
    r.buf = malloc(s->buf_size);
    for (int i = 0; i < s->n_conns; i++) {
        struct conn *c = &r.c[i];
        if (c->left == 0) {
            conn_closed(c);
            continue;
        }
        c->left--;
        c->ev = event_new(r.base, c->fd, EV_WRITE | EV_PERSIST, copy_ready, c);
        if (!c->ev) return fail("copy", "event_new");
        copy_drive(c);
    }
    if (!r.failed) event_base_dispatch(r.base);
    for (int i = 0; i < s->n_conns; i++)
        if (r.c[i].ev) event_free(r.c[i].ev);
    free(r.buf);
    return run_finish(&r);
}

/* -------------------------------------------------------- evsf-handover */
/* What a server that closes after a response can do with the public API: step
 * the job once itself (sf_job_new + sf_job_step); a transfer that finished
 * there is done now (the connection is shut at once, as the copy loop does),
 * any other is handed to the loop with sf_job_start.  sf_send_async instead
 * reports every completion from the loop's next turn (its done never runs
 * inside the call). */

static void handover_next(struct conn *c);

static void handover_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    (void)t;
    if (done_ok(arg, "evsf-handover", status, sent)) handover_next(arg);
}

static void handover_turn(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    handover_next(arg);
}

static void handover_next(struct conn *c) {
    struct run *r = c->run;
    if (!take_next(c)) return;
    sf_region_t region = {r->s->file_fd, NULL, 0, r->s->size};
    sf_job_t *job = NULL;
    int st = sf_job_new(c->fd, &region, &r->opts, &job);
    if (st == 0) st = sf_job_step(job);
    if (st == SF_STEP_DONE) {
        int short_body = sf_job_body_sent(job) != r->s->size;
        sf_job_free(job);
        if (short_body) st = -EIO;
        else if (c->left == 0) conn_closed(c);
        else event_active(c->ev, EV_WRITE, 0); /* the next transfer starts on the next loop turn */
    } else if (st > 0) {
        st = sf_job_start(job, r->base, handover_done, c, NULL); /* takes the job, whatever it returns */
    } else if (job) {
        sf_job_free(job);
    }
    if (st < 0) {
        fprintf(stderr, "evsf-handover: %s\n", sf_err_text(st));
        r->failed = 1;
        event_base_loopbreak(r->base);
    }
}

static int run_evsf_handover(const struct spec *s, long *note) {
    struct run r;
    if (run_init(&r, s, note, 1)) return fail("evsf-handover", "init");
    for (int i = 0; i < s->n_conns && !r.failed; i++) {
        struct conn *c = &r.c[i];
        if (!(c->ev = event_new(r.base, -1, 0, handover_turn, c))) return fail("evsf-handover", "event_new");
        handover_next(c);
    }
    if (!r.failed) event_base_dispatch(r.base);
    for (int i = 0; i < s->n_conns; i++)
        if (r.c[i].ev) event_free(r.c[i].ev);
    return run_finish(&r);
}

/* ------------------------------------------------------------ the table */

const struct contender contenders[] = {
    {"limit-blocking", run_limit_blocking, 0, 0, 0, 1},
    {"limit-poll", run_limit_poll, 0, 0, 0, 1},
    {"evsf-async", run_evsf_async, 0, 0, 0, 0},
    {"evsf-trusted", run_evsf_async, SF_TRUSTED, 0, 0, 0},
    {"evsf-known", run_evsf_async, SF_TRUSTED | SF_KNOWN_SIZE, 0, 0, 0},
    {"evsf-peer-once", run_evsf_peer_once, SF_TRUSTED | SF_KNOWN_SIZE, 0, 0, 0},
    {"evsf-shut", run_evsf_shut, SF_TRUSTED | SF_KNOWN_SIZE, 0, 0, 0},
    {"evsf-handover", run_evsf_handover, SF_TRUSTED | SF_KNOWN_SIZE, 0, 0, 0},
    {"evsf-step", run_evsf_step, 0, 0, 0, 0},
    {"evsf-step-lateshut", run_evsf_step_lateshut, 0, 0, 0, 0},
    {"evbuf-sendfile", run_evbuf_sendfile, 0, 0, 0, 0},
    {"evbuf-mmap", run_evbuf_mmap, 0, 0, 0, 0},
    {"copy", run_copy, 0, 0, 256 * 1024, 0},
    /* knobs for the defaults */
    {"evsf-nocork", run_evsf_async, SF_NO_CORK, 0, 0, 0},
    {"evsf-chunk-256K", run_evsf_async, 0, 256 * 1024, 0, 0},
    {"evsf-chunk-16M", run_evsf_async, 0, 16u << 20, 0, 0},
    {"evsf-nosendfile", run_evsf_async, SF_NO_SENDFILE, 0, 0, 0},
    /* the sink is on loopback: evsf-async takes the copy path there (peer.cpp) */
    {"evsf-sendfile", run_evsf_async, SF_FORCE_SENDFILE, 0, 0, 0},
    /* the same without the page-cache probe: what the probe costs */
    {"evsf-sendfile-inline", run_evsf_async, SF_FORCE_SENDFILE | SF_DISK_INLINE, 0, 0, 0},
    /* evsf-known told to use sendfile: a caller whose peer does not copy */
    {"evsf-known-sendfile", run_evsf_async, SF_TRUSTED | SF_KNOWN_SIZE | SF_FORCE_SENDFILE, 0, 0, 0},
    {"copy-64K", run_copy, 0, 0, 64 * 1024, 0},
    {"copy-1M", run_copy, 0, 0, 1024 * 1024, 0},
    {"evsf-ownhead", run_evsf_ownhead, 0, 0, 0, 0},
    {"raw-writev", run_raw_writev, 0, 0, 0, 1},
    {"raw-sendfile", run_raw_sendfile, 0, 0, 0, 1},
};
const int n_contenders = (int)(sizeof contenders / sizeof contenders[0]);

int contender_index(const char *name) {
    for (int i = 0; i < n_contenders; i++)
        if (!strcmp(contenders[i].name, name)) return i;
    return -1;
}
