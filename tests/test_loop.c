/* test_loop.c -- transfers living on a shared event_base: the idle
 * timeout, fairness between a huge and a small transfer (max_chunk), and
 * sf_cancel from callbacks, timers and between loop runs. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "evsendfile.h"
#include "harness.h"
#include "seam.h"

#define HEAD "HTTP/1.1 200 OK\r\n\r\n"
#define TAIL "\r\n"

static int teardown(void **state) {
    (void)state;
    seam_uninstall();
    files_cleanup();
    return 0;
}

/* ------------------------------------------------------ idle timeout */

struct timeout_rec {
    done_rec_t d;
    int sock;
    int cork_in_done; /* TCP_CORK on the socket when done ran */
    int fds_in_done;
};

static void timeout_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    struct timeout_rec *tr = arg;
    tr->cork_in_done = tcp_cork_is_on(tr->sock);
    tr->fds_in_done = count_open_fds();
    record_done(t, status, sent, &tr->d);
}

/* The peer never reads: SF_ETIMEDOUT.  When done runs, the library has
 * already let go of the socket (cork off: the caller may close it right
 * there) and of its own fd. */
static void test_idle_timeout_stalled_peer(void **state) {
    (void)state;
    char path[4096];
    close(make_pattern_file(8 * MiB, path));
    int s, r;
    tcp_pair(&s, &r);
    small_buffers(s, r, 16384);
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    o.idle_timeout_ms = 200;
    sf_region_t reg = {-1, path, 0, SF_COUNT_TO_EOF};
    struct event_base *base = event_base_new();
    struct timeout_rec tr = {.sock = s};
    done_rec_init(&tr.d, -1);
    int fds_before = count_open_fds();
    assert_int_equal(sf_send_async(base, s, &reg, &o, timeout_done, &tr, NULL), 0);
    assert_true(run_until(base, &tr.d.calls));
    assert_int_equal(tr.d.calls, 1);
    assert_int_equal(tr.d.status, SF_ETIMEDOUT);
    assert_true(tr.d.body_sent > 0);
    assert_true(tr.d.body_sent < 8 * MiB);
    assert_int_equal(tr.cork_in_done, 0);
    assert_int_equal(tr.fds_in_done, fds_before);
    assert_int_equal(tcp_cork_is_on(s), 0);
    event_base_free(base);
    close(s);
    close(r);
}

/* A pipe nobody writes to: the wait for readability times out too. */
static void test_idle_timeout_silent_pipe(void **state) {
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    set_nonblocking(p[0], 1);
    int s, r;
    socketpair_nb(&s, &r);
    sf_options_t o;
    sf_options_init(&o);
    o.idle_timeout_ms = 100;
    sf_region_t reg = {p[0], NULL, 0, SF_COUNT_TO_EOF};
    struct event_base *base = event_base_new();
    done_rec_t d;
    done_rec_init(&d, -1);
    assert_int_equal(sf_send_async(base, s, &reg, &o, record_done, &d, NULL), 0);
    assert_true(run_until(base, &d.calls));
    assert_int_equal(d.status, SF_ETIMEDOUT);
    assert_int_equal(d.body_sent, 0);
    event_base_free(base);
    int fds[] = {p[0], p[1], s, r};
    for (int i = 0; i < 4; i++) close(fds[i]);
}

/* A reader that takes 2 KiB every 10 ms needs well over the 500 ms timeout
 * in total, but never stalls that long: the transfer completes. */
static void test_idle_timeout_slow_steady_reader(void **state) {
    (void)state;
    const uint64_t size = 256 * KiB;
    int fd = make_pattern_file(size, NULL);
    int s, r;
    socketpair_nb(&s, &r);
    small_buffers(s, r, 4096);
    sf_options_t o;
    sf_options_init(&o);
    o.idle_timeout_ms = test_ms(500);
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    reader_t rd = {.chunk = 2048, .pace_us = 10000, .keep = 1};
    done_rec_t d;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    assert_int_equal(transfer_collect(s, r, &reg, &o, &rd, &d), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_int_equal(d.status, 0);
    assert_true(wire_matches(rd.buf, rd.len, NULL, 0, size, NULL));
    /* Not a timing assertion on the library: the reader's own pauses add up
     * to more than the timeout, so the scenario is the one intended. */
    assert_true((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 > 500);
    reader_free(&rd);
    close(s);
    close(r);
    close(fd);
}

/* ---------------------------------------------------------- fairness */

struct fair {
    struct event_base *base;
    sf_transfer_t *big;
    done_rec_t big_done, small_done;
    uint64_t big_at_small_done;
    int cancel_big_rc;
    uint64_t submit_after;
    int small_submitted;
    struct event *submit_ev;
    int small_sock;
    sf_region_t small_region;
};

static void small_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    struct fair *f = arg;
    record_done(t, status, sent, &f->small_done);
    if (f->big_done.calls == 0) {
        f->big_at_small_done = sf_transfer_body_sent(f->big);
        f->cancel_big_rc = sf_cancel(f->big); /* cancel from another transfer's done */
    }
}

static void submit_small(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    struct fair *f = arg;
    if (f->small_submitted || f->big_done.calls) return;
    if (sf_transfer_body_sent(f->big) < f->submit_after) return;
    f->small_submitted = 1;
    event_del(f->submit_ev);
    assert_int_equal(sf_send_async(f->base, f->small_sock, &f->small_region, NULL, small_done, f, NULL), 0);
}

/* Real reader threads on both sockets; the small transfer is submitted from
 * a timer once the big one has moved 8 MiB of its 3 GiB. */
static void test_fairness_with_readers(void **state) {
    (void)state;
    const uint64_t big_size = 3 * GiB;
    int big_fd = make_sparse_file(big_size, NULL);
    int small_fd = make_pattern_file(64 * KiB + 1, NULL); /* sendfile path, fits one socket buffer */
    int bs, br, ss, sr;
    socketpair_nb(&bs, &br);
    socketpair_nb(&ss, &sr);
    struct fair f;
    memset(&f, 0, sizeof f);
    f.base = event_base_new();
    done_rec_init(&f.big_done, -1);
    done_rec_init(&f.small_done, ss);
    f.submit_after = 8 * MiB;
    f.small_sock = ss;
    f.small_region = (sf_region_t){small_fd, NULL, 0, SF_COUNT_TO_EOF};
    reader_t big_rd = {.fd = br, .chunk = 256 * KiB}, small_rd = {.fd = sr, .keep = 1};
    reader_start(&big_rd);
    reader_start(&small_rd);
    sf_region_t big_region = {big_fd, NULL, 0, SF_COUNT_TO_EOF};
    assert_int_equal(sf_send_async(f.base, bs, &big_region, NULL, record_done, &f.big_done, &f.big), 0);
    f.submit_ev = event_new(f.base, -1, EV_PERSIST, submit_small, &f);
    struct timeval ms = {0, 1000};
    event_add(f.submit_ev, &ms);
    assert_true(run_until(f.base, &f.small_done.calls));
    event_free(f.submit_ev);
    shutdown(bs, SHUT_WR);
    shutdown(ss, SHUT_WR); /* (small's done did it, unless it never ran) */
    reader_join(&big_rd);
    reader_join(&small_rd);
    assert_int_equal(f.small_done.status, 0);
    assert_true(wire_matches(small_rd.buf, small_rd.len, NULL, 0, 64 * KiB + 1, NULL));
    assert_int_equal(f.big_done.calls, 0);
    assert_int_equal(f.cancel_big_rc, 0);
    assert_true(f.big_at_small_done >= 8 * MiB);
    assert_true(f.big_at_small_done < big_size / 4);
    reader_free(&small_rd);
    event_base_free(f.base);
    int fds[] = {big_fd, small_fd, bs, br, ss, sr};
    for (int i = 0; i < 6; i++) close(fds[i]);
}

/* Deterministic form: the big transfer's socket is made "always writable"
 * (its sendfile calls are sunk by the seam), so nothing but max_chunk can
 * make it yield.  Once it has moved 8 MiB, the seam activates an event that
 * submits the small one (a 4 KiB body).  Without yielding, the big transfer would finish
 * its 3 GiB inside one callback, before the small one even started. */
static struct fair *g_fair;
static int g_big_sock;

static int sink_big_hook(int out, int in, off_t *off, size_t count, ssize_t *ret) {
    (void)in;
    if (out != g_big_sock) return 0;
    *off += (off_t)count;
    *ret = (ssize_t)count;
    if (!g_fair->small_submitted && seam.sendfile.bytes + count >= g_fair->submit_after)
        event_active(g_fair->submit_ev, EV_TIMEOUT, 0);
    return 1;
}

static void test_fairness_max_chunk_yields(void **state) {
    (void)state;
    const uint64_t big_size = 3 * GiB;
    int big_fd = make_sparse_file(big_size, NULL);
    int small_fd = make_pattern_file(4 * KiB, NULL); /* small path: done on its first callback */
    int bs, br, ss, sr;
    socketpair_nb(&bs, &br);
    socketpair_nb(&ss, &sr);
    struct fair f;
    memset(&f, 0, sizeof f);
    f.base = event_base_new();
    done_rec_init(&f.big_done, -1);
    done_rec_init(&f.small_done, ss);
    f.submit_after = 8 * MiB;
    f.small_sock = ss;
    f.small_region = (sf_region_t){small_fd, NULL, 0, SF_COUNT_TO_EOF};
    f.submit_ev = event_new(f.base, -1, 0, submit_small, &f);
    g_fair = &f;
    g_big_sock = bs;
    seam_install();
    seam.sendfile_hook = sink_big_hook;
    reader_t small_rd = {.fd = sr, .keep = 1};
    reader_start(&small_rd);
    sf_region_t big_region = {big_fd, NULL, 0, SF_COUNT_TO_EOF};
    /* On the loop thread, where max_chunk applies: a sparse file's holes
     * are not in the page cache, and a cold transfer is sent by disk threads. */
    sf_options_t big_opts = {.struct_size = sizeof big_opts, .flags = SF_DISK_INLINE};
    assert_int_equal(sf_send_async(f.base, bs, &big_region, &big_opts, record_done, &f.big_done, &f.big), 0);
    int either = 0;
    while (!f.small_done.calls && !f.big_done.calls && either++ < 100000) event_base_loop(f.base, EVLOOP_ONCE);
    shutdown(ss, SHUT_WR); /* (done already did, unless it never ran) */
    reader_join(&small_rd);
    assert_int_equal(f.big_done.calls, 0); /* big still running when small finished */
    assert_int_equal(f.small_done.calls, 1);
    assert_int_equal(f.small_done.status, 0);
    assert_true(wire_matches(small_rd.buf, small_rd.len, NULL, 0, 4 * KiB, NULL));
    assert_int_equal(f.cancel_big_rc, 0);
    assert_true(f.big_at_small_done >= 8 * MiB);
    /* submitted within one chunk of 8 MiB, done on its first callback */
    assert_true(f.big_at_small_done <= 8 * MiB + 3 * SF_DEFAULT_MAX_CHUNK);
    /* every sunk call stayed within one max_chunk budget */
    for (int i = 0; i < seam.sendfile.logged; i++)
        if (seam.sendfile.log[i].fd == bs) assert_true(seam.sendfile.log[i].count <= SF_DEFAULT_MAX_CHUNK);
    reader_free(&small_rd);
    event_free(f.submit_ev);
    event_base_free(f.base);
    int fds[] = {big_fd, small_fd, bs, br, ss, sr};
    for (int i = 0; i < 6; i++) close(fds[i]);
}

/* ------------------------------------------------------------ cancel */

/* After a cancel: nothing of the transfer is left on the base. */
static void assert_base_empty(struct event_base *base) {
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE), 0);
}

static void cancel_from_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    int *rc = ((void **)arg)[1];
    *rc = sf_cancel(((void **)arg)[0]);
}

/* A stalled transfer reading a library-opened file, cancelled by a timer:
 * rc 0, done never runs, its event is gone (the loop runs dry by itself),
 * its fd is closed. */
static void test_cancel_from_timer(void **state) {
    (void)state;
    char path[4096];
    close(make_pattern_file(4 * MiB, path));
    int fds_before = count_open_fds();
    int s, r;
    socketpair_nb(&s, &r);
    small_buffers(s, r, 4096);
    struct event_base *base = event_base_new();
    done_rec_t d;
    done_rec_init(&d, -1);
    sf_transfer_t *t = NULL;
    sf_region_t reg = {-1, path, 0, SF_COUNT_TO_EOF};
    assert_int_equal(sf_send_async(base, s, &reg, NULL, record_done, &d, &t), 0);
    assert_non_null(t);
    int rc = 99;
    void *args[2] = {t, &rc};
    struct event *timer = evtimer_new(base, cancel_from_timer, args);
    struct timeval tv = {0, 20 * 1000};
    evtimer_add(timer, &tv);
    int fired = 0;
    while (rc == 99 && fired++ < 100000) event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(rc, 0);
    assert_base_empty(base);
    assert_int_equal(d.calls, 0);
    char b[8192];
    assert_true(recv(r, b, sizeof b, MSG_DONTWAIT) > 0); /* it had started */
    event_free(timer);
    event_base_free(base);
    close(s);
    close(r);
    assert_int_equal(count_open_fds(), fds_before);
}

struct pair_cancel {
    sf_transfer_t *victim;
    int rc;
    done_rec_t a;
};

static void cancel_victim_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    struct pair_cancel *pc = arg;
    record_done(t, status, sent, &pc->a);
    pc->rc = sf_cancel(pc->victim);
}

static void test_cancel_from_other_done(void **state) {
    (void)state;
    char path[4096];
    close(make_pattern_file(4 * MiB, path));
    int small_fd = make_pattern_file(1000, NULL);
    int fds_before = count_open_fds();
    int s, r, s2, r2;
    socketpair_nb(&s, &r);
    socketpair_nb(&s2, &r2);
    small_buffers(s, r, 4096);
    struct event_base *base = event_base_new();
    struct pair_cancel pc = {.rc = 99};
    done_rec_init(&pc.a, -1);
    done_rec_t victim_done;
    done_rec_init(&victim_done, -1);
    sf_region_t big = {-1, path, 0, SF_COUNT_TO_EOF}, small = {small_fd, NULL, 0, SF_COUNT_TO_EOF};
    assert_int_equal(sf_send_async(base, s, &big, NULL, record_done, &victim_done, &pc.victim), 0);
    assert_int_equal(sf_send_async(base, s2, &small, NULL, cancel_victim_done, &pc, NULL), 0);
    assert_true(run_until(base, &pc.a.calls));
    assert_base_empty(base);
    assert_int_equal(pc.a.calls, 1);
    assert_int_equal(pc.a.status, 0);
    assert_int_equal(pc.rc, 0);
    assert_int_equal(victim_done.calls, 0);
    event_base_free(base);
    int fds[] = {s, r, s2, r2};
    for (int i = 0; i < 4; i++) close(fds[i]);
    close(small_fd);
    assert_int_equal(count_open_fds(), fds_before - 1);
}

struct self_cancel {
    int calls, rc;
};

static void cancel_self_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    (void)status, (void)sent;
    struct self_cancel *sc = arg;
    sc->calls++;
    sc->rc = sf_cancel(t);
}

static void test_cancel_own_done_is_ealready(void **state) {
    (void)state;
    int fd = make_pattern_file(100 * KiB, NULL);
    int s, r;
    socketpair_nb(&s, &r);
    struct event_base *base = event_base_new();
    struct self_cancel sc = {0, 99};
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    assert_int_equal(sf_send_async(base, s, &reg, NULL, cancel_self_done, &sc, NULL), 0);
    assert_true(run_until(base, &sc.calls));
    assert_base_empty(base);
    assert_int_equal(sc.calls, 1);
    assert_int_equal(sc.rc, -EALREADY);
    event_base_free(base);
    close(s);
    close(r);
    close(fd);
}

/* Cancelled between loop runs, mid-body on TCP with a head: the cork the
 * library set is taken off, nothing more is written, done never runs. */
static void test_cancel_between_runs_uncorks(void **state) {
    (void)state;
    int fd = make_pattern_file(8 * MiB, NULL);
    int s, r;
    tcp_pair(&s, &r);
    small_buffers(s, r, 16384);
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    struct event_base *base = event_base_new();
    done_rec_t d;
    done_rec_init(&d, -1);
    sf_transfer_t *t = NULL;
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    assert_int_equal(sf_send_async(base, s, &reg, &o, record_done, &d, &t), 0);
    event_base_loop(base, EVLOOP_NONBLOCK);  /* no reader: the socket fills up */
    assert_true(sf_transfer_body_sent(t) > 0);
    assert_int_equal(tcp_cork_is_on(s), 1);
    assert_int_equal(sf_cancel(t), 0);
    assert_int_equal(tcp_cork_is_on(s), 0);
    assert_base_empty(base);
    assert_int_equal(d.calls, 0);
    assert_int_equal(sf_transfer_body_sent(NULL), 0);
    event_base_free(base);
    close(s);
    close(r);
    close(fd);
}

/* Cancelled before the loop ever ran.  sf_send_async makes its first step
 * at once, so some bytes may be out: exactly head + body_sent of them (a
 * clean prefix), nothing after the cancel, and done never runs. */
static void test_cancel_before_loop_runs(void **state) {
    (void)state;
    int fd = make_pattern_file(100 * KiB, NULL);
    int s, r;
    socketpair_nb(&s, &r);
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    struct event_base *base = event_base_new();
    done_rec_t d;
    done_rec_init(&d, -1);
    sf_transfer_t *t = NULL;
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    small_buffers(s, r, 16384);  /* the first step cannot finish the 100 KiB */
    assert_int_equal(sf_send_async(base, s, &reg, &o, record_done, &d, &t), 0);
    uint64_t sent = sf_transfer_body_sent(t);
    assert_true(sent < 100 * KiB);
    assert_int_equal(sf_cancel(t), 0);
    assert_base_empty(base);
    assert_int_equal(d.calls, 0);
    static uint8_t got[256 * 1024];
    size_t len = 0;
    ssize_t n;
    while ((n = recv(r, got + len, sizeof got - len, MSG_DONTWAIT)) > 0) len += (size_t)n;
    assert_true(wire_matches(got, len, HEAD, 0, sent, NULL));
    event_base_free(base);
    close(s);
    close(r);
    close(fd);
}

/* ------------------------------------------------ backends, re-entry */

static struct event_base *base_with_only(const char *method) {
    const char **all = event_get_supported_methods();
    int supported = 0;
    struct event_config *cfg = event_config_new();
    for (int i = 0; all[i]; i++) {
        if (strcmp(all[i], method) == 0) supported = 1;
        else event_config_avoid_method(cfg, all[i]);
    }
    struct event_base *b = supported ? event_base_new_with_config(cfg) : NULL;
    event_config_free(cfg);
    return b;
}

/* The same engine on libevent's poll and select backends: a file with
 * head/tail through a slow 4 KiB socketpair, and a pipe (read events). */
static void test_poll_and_select_backends(void **state) {
    (void)state;
    const char *methods[] = {"poll", "select", "epoll"};
    int fd = make_pattern_file(1 * MiB + 3, NULL);
    int ran = 0;
    for (int m = 0; m < 3; m++) {
        struct event_base *base = base_with_only(methods[m]);
        if (base == NULL) continue;
        assert_string_equal(event_base_get_method(base), methods[m]);
        ran++;
        int s, r;
        socketpair_nb(&s, &r);
        small_buffers(s, r, 4096);
        struct iovec hv, tv;
        sf_options_t o;
        opts_with(&o, &hv, HEAD, &tv, TAIL);
        sf_region_t reg = {fd, NULL, 3, 1 * MiB};
        done_rec_t d;
        done_rec_init(&d, s);
        reader_t rd = {.fd = r, .chunk = 1000, .keep = 1};
        reader_start(&rd);
        assert_int_equal(sf_send_async(base, s, &reg, &o, record_done, &d, NULL), 0);
        assert_true(run_until(base, &d.calls));
        reader_join(&rd);
        assert_int_equal(d.status, 0);
        assert_true(wire_matches(rd.buf, rd.len, HEAD, 3, 1 * MiB, TAIL));
        reader_free(&rd);
        close(s);
        close(r);

        /* pipe source: the first bytes arrive only after the engine waited */
        int p[2];
        assert_int_equal(pipe(p), 0);
        set_nonblocking(p[0], 1);
        socketpair_nb(&s, &r);
        sf_region_t pr = {p[0], NULL, 0, SF_COUNT_TO_EOF};
        done_rec_init(&d, s);
        reader_t rd2 = {.fd = r, .keep = 1};
        reader_start(&rd2);
        assert_int_equal(sf_send_async(base, s, &pr, NULL, record_done, &d, NULL), 0);
        event_base_loop(base, EVLOOP_ONCE); /* meets the empty pipe */
        uint8_t buf[50000];
        pattern_fill(buf, 0, sizeof buf);
        assert_int_equal(write(p[1], buf, sizeof buf), (ssize_t)sizeof buf);
        close(p[1]);
        assert_true(run_until(base, &d.calls));
        reader_join(&rd2);
        assert_int_equal(d.status, 0);
        assert_true(wire_matches(rd2.buf, rd2.len, NULL, 0, sizeof buf, NULL));
        reader_free(&rd2);
        close(p[0]);
        close(s);
        close(r);
        event_base_free(base);
    }
    assert_true(ran >= 2);
    close(fd);
}

/* done never runs inside sf_send_async, even when the transfer could
 * complete at once (small body, empty socket buffer). */
static void test_done_never_inside_submit(void **state) {
    (void)state;
    int fd = make_pattern_file(100, NULL);
    int s, r;
    socketpair_nb(&s, &r);
    struct event_base *base = event_base_new();
    done_rec_t d;
    done_rec_init(&d, -1);
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    assert_int_equal(sf_send_async(base, s, &reg, NULL, record_done, &d, NULL), 0);
    assert_int_equal(d.calls, 0);  /* the bytes may be out already; the report waits for the loop */
    assert_true(run_until(base, &d.calls));
    assert_int_equal(d.status, 0);
    event_base_free(base);
    close(s);
    close(r);
    close(fd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_idle_timeout_stalled_peer, teardown),
        cmocka_unit_test_teardown(test_idle_timeout_silent_pipe, teardown),
        cmocka_unit_test_teardown(test_idle_timeout_slow_steady_reader, teardown),
        cmocka_unit_test_teardown(test_fairness_with_readers, teardown),
        cmocka_unit_test_teardown(test_fairness_max_chunk_yields, teardown),
        cmocka_unit_test_teardown(test_cancel_from_timer, teardown),
        cmocka_unit_test_teardown(test_cancel_from_other_done, teardown),
        cmocka_unit_test_teardown(test_cancel_own_done_is_ealready, teardown),
        cmocka_unit_test_teardown(test_cancel_between_runs_uncorks, teardown),
        cmocka_unit_test_teardown(test_cancel_before_loop_runs, teardown),
        cmocka_unit_test_teardown(test_poll_and_select_backends, teardown),
        cmocka_unit_test_teardown(test_done_never_inside_submit, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
