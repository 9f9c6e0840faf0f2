/* test_worker.c -- the library-owned loop thread (sf_worker_*): submit from
 * other threads, cancel while running / after done / from a done callback,
 * free with transfers in flight.  Meant to run under ThreadSanitizer too. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "evsendfile.h"
#include "harness.h"
#include "seam.h"

#define HEAD "HTTP/1.1 200 OK\r\n\r\n"
#define TAIL "\r\n"

static int teardown(void **state) {
    (void)state;
    files_cleanup();
    return 0;
}

/* A done record shared between the worker thread and the test thread. */
typedef struct wdone {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls, status;
    uint64_t sent;
    pthread_t thread;
    int shut_fd;
    /* cancel-from-done scenario */
    sf_worker_t *w;
    uint64_t cancel_ticket, own_ticket;
    int cancel_other_rc, cancel_own_rc;
} wdone_t;

static void wdone_init(wdone_t *d, int shut_fd) {
    memset(d, 0, sizeof *d);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->status = 1;
    d->shut_fd = shut_fd;
}

static void wdone_destroy(wdone_t *d) {
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
}

static void on_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    (void)t;
    wdone_t *d = arg;
    pthread_mutex_lock(&d->mu);
    sf_worker_t *w = d->w;
    uint64_t other = d->cancel_ticket, own = d->own_ticket;
    pthread_mutex_unlock(&d->mu);
    int other_rc = 0, own_rc = 0;
    if (w) {
        other_rc = sf_worker_cancel(w, other);
        own_rc = sf_worker_cancel(w, own);
    }
    if (d->shut_fd >= 0) shutdown(d->shut_fd, SHUT_WR);
    pthread_mutex_lock(&d->mu);
    d->calls++;
    d->status = status;
    d->sent = sent;
    d->thread = pthread_self();
    d->cancel_other_rc = other_rc;
    d->cancel_own_rc = own_rc;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

/* Waits (bounded) for done; returns its call count. */
static int wdone_wait(wdone_t *d) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += GUARD_SECONDS;
    pthread_mutex_lock(&d->mu);
    while (d->calls == 0)
        if (pthread_cond_timedwait(&d->cv, &d->mu, &until) == ETIMEDOUT) break;
    int calls = d->calls;
    pthread_mutex_unlock(&d->mu);
    return calls;
}

static int wdone_calls(wdone_t *d) {
    pthread_mutex_lock(&d->mu);
    int c = d->calls;
    pthread_mutex_unlock(&d->mu);
    return c;
}

/* Blocks until the peer has data: the worker has started the transfer. */
static void wait_started(int peer) {
    struct pollfd p = {peer, POLLIN, 0};
    assert_int_equal(poll(&p, 1, GUARD_SECONDS * 1000), 1);
}

static void test_worker_submit_and_done(void **state) {
    (void)state;
    const uint64_t size = 3 * MiB + 1;
    int fd = make_pattern_file(size, NULL);
    sf_worker_t *w = NULL;
    assert_int_equal(sf_worker_new(&w), 0);
    int s, r;
    socketpair_nb(&s, &r);
    small_buffers(s, r, 8192);
    reader_t rd = {.fd = r, .keep = 1};
    reader_start(&rd);
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    sf_region_t reg = {fd, NULL, 7, size - 7};
    wdone_t d;
    wdone_init(&d, s);
    uint64_t ticket = 0;
    assert_int_equal(sf_worker_submit(w, s, &reg, &o, on_done, &d, &ticket), 0);
    assert_true(ticket != 0);
    assert_int_equal(wdone_wait(&d), 1);
    reader_join(&rd);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.sent, size - 7);
    assert_false(pthread_equal(d.thread, pthread_self())); /* ran on the worker */
    assert_true(wire_matches(rd.buf, rd.len, HEAD, 7, size - 7, TAIL));
    assert_int_equal(sf_worker_cancel(w, ticket), -EALREADY); /* after done */
    assert_int_equal(sf_worker_cancel(w, ticket + 1000), -EALREADY); /* unknown */
    assert_int_equal(sf_worker_cancel(NULL, ticket), -EINVAL);
    sf_worker_free(w);
    sf_worker_free(NULL);
    assert_int_equal(wdone_calls(&d), 1);
    reader_free(&rd);
    wdone_destroy(&d);
    close(s);
    close(r);
    close(fd);
}

/* Cancelled while running against a peer that does not read: 0, done
 * never runs, the socket may be closed at once, the library's fd is gone,
 * and the worker goes on serving others. */
static void test_worker_cancel_running(void **state) {
    (void)state;
    char path[4096];
    close(make_pattern_file(8 * MiB, path));
    int fd_small = make_pattern_file(3000, NULL);
    int before = count_open_fds();
    sf_worker_t *w = NULL;
    assert_int_equal(sf_worker_new(&w), 0);
    int with_worker = count_open_fds();
    int s, r;
    socketpair_nb(&s, &r);
    small_buffers(s, r, 4096);
    sf_region_t reg = {-1, path, 0, SF_COUNT_TO_EOF};
    wdone_t d;
    wdone_init(&d, -1);
    uint64_t ticket = 0;
    assert_int_equal(sf_worker_submit(w, s, &reg, NULL, on_done, &d, &ticket), 0);
    wait_started(r);
    assert_int_equal(sf_worker_cancel(w, ticket), 0);
    close(s);
    close(r);
    assert_int_equal(count_open_fds(), with_worker); /* the library's fd is closed already */

    /* The worker still works; by the time this one is done, anything the
     * cancelled one could have done would have happened. */
    int s2, r2;
    socketpair_nb(&s2, &r2);
    wdone_t d2;
    wdone_init(&d2, -1);
    sf_region_t small = {fd_small, NULL, 0, SF_COUNT_TO_EOF};
    assert_int_equal(sf_worker_submit(w, s2, &small, NULL, on_done, &d2, NULL), 0);
    assert_int_equal(wdone_wait(&d2), 1);
    assert_int_equal(d2.status, 0);
    assert_int_equal(wdone_calls(&d), 0);
    assert_int_equal(sf_worker_cancel(w, ticket), -EALREADY); /* already cancelled */
    sf_worker_free(w);
    assert_int_equal(wdone_calls(&d), 0);
    close(s2);
    close(r2);
    close(fd_small);
    assert_int_equal(count_open_fds(), before - 1);
    wdone_destroy(&d);
    wdone_destroy(&d2);
}

/* Cancel right after submit, racing the worker's start: whichever side
 * wins, 0 and no done, nothing leaks. */
static void test_worker_cancel_right_after_submit(void **state) {
    (void)state;
    char path[4096];
    close(make_pattern_file(1 * MiB, path));
    int before = count_open_fds();
    sf_worker_t *w = NULL;
    assert_int_equal(sf_worker_new(&w), 0);
    enum { N = 20 };
    wdone_t d[N];
    for (int i = 0; i < N; i++) {
        int s, r;
        socketpair_nb(&s, &r);
        small_buffers(s, r, 4096);
        wdone_init(&d[i], -1);
        sf_region_t reg = {-1, path, 0, SF_COUNT_TO_EOF};
        uint64_t ticket = 0;
        assert_int_equal(sf_worker_submit(w, s, &reg, NULL, on_done, &d[i], &ticket), 0);
        assert_int_equal(sf_worker_cancel(w, ticket), 0);
        close(s);
        close(r);
    }
    sf_worker_free(w);
    for (int i = 0; i < N; i++) {
        assert_int_equal(wdone_calls(&d[i]), 0);
        wdone_destroy(&d[i]);
    }
    assert_int_equal(count_open_fds(), before);
}

/* Freed with stalled transfers in flight: no done, no leaked fd. */
static void test_worker_free_in_flight(void **state) {
    (void)state;
    char path[4096];
    close(make_pattern_file(8 * MiB, path));
    int before = count_open_fds();
    sf_worker_t *w = NULL;
    assert_int_equal(sf_worker_new(&w), 0);
    enum { N = 3 };
    int s[N], r[N];
    wdone_t d[N];
    for (int i = 0; i < N; i++) {
        socketpair_nb(&s[i], &r[i]);
        small_buffers(s[i], r[i], 4096);
        wdone_init(&d[i], -1);
        sf_region_t reg = {-1, path, (uint64_t)i, SF_COUNT_TO_EOF};
        assert_int_equal(sf_worker_submit(w, s[i], &reg, NULL, on_done, &d[i], NULL), 0);
    }
    for (int i = 0; i < N; i++) wait_started(r[i]);
    sf_worker_free(w);
    for (int i = 0; i < N; i++) {
        assert_int_equal(wdone_calls(&d[i]), 0);
        close(s[i]);
        close(r[i]);
        wdone_destroy(&d[i]);
    }
    assert_int_equal(count_open_fds(), before);
}

/* From a done callback (on the worker thread): cancelling another running
 * transfer gives 0 and suppresses its done; cancelling itself gives
 * -EALREADY. */
static void test_worker_cancel_from_done(void **state) {
    (void)state;
    char path[4096];
    close(make_pattern_file(8 * MiB, path));
    int fd_small = make_pattern_file(2000, NULL);
    sf_worker_t *w = NULL;
    assert_int_equal(sf_worker_new(&w), 0);
    int bs, br, as, ar;
    socketpair_nb(&bs, &br);
    small_buffers(bs, br, 4096);
    socketpair_nb(&as, &ar);
    wdone_t big, small;
    wdone_init(&big, -1);
    wdone_init(&small, -1);
    sf_region_t big_reg = {-1, path, 0, SF_COUNT_TO_EOF};
    uint64_t big_ticket = 0, small_ticket = 0;
    assert_int_equal(sf_worker_submit(w, bs, &big_reg, NULL, on_done, &big, &big_ticket), 0);
    wait_started(br);
    sf_region_t small_reg = {fd_small, NULL, 0, SF_COUNT_TO_EOF};
    /* hold the lock so done cannot read the tickets before they are set */
    pthread_mutex_lock(&small.mu);
    assert_int_equal(sf_worker_submit(w, as, &small_reg, NULL, on_done, &small, &small_ticket), 0);
    small.w = w;
    small.cancel_ticket = big_ticket;
    small.own_ticket = small_ticket;
    pthread_mutex_unlock(&small.mu);
    assert_int_equal(wdone_wait(&small), 1);
    assert_int_equal(small.status, 0);
    assert_int_equal(small.cancel_other_rc, 0);
    assert_int_equal(small.cancel_own_rc, -EALREADY);
    sf_worker_free(w);
    assert_int_equal(wdone_calls(&big), 0);
    int fds[] = {bs, br, as, ar, fd_small};
    for (int i = 0; i < 5; i++) close(fds[i]);
    wdone_destroy(&big);
    wdone_destroy(&small);
}

/* Several threads submit to one worker at once. */
struct submitter {
    sf_worker_t *w;
    int fd;
    uint64_t off;
    int rc, status, wire_ok, calls;
    pthread_t thread;
};

static void *submitter_main(void *arg) {
    struct submitter *sb = arg;
    int s, r;
    socketpair_nb(&s, &r);
    reader_t rd = {.fd = r, .keep = 1};
    reader_start(&rd);
    wdone_t d;
    wdone_init(&d, s);
    sf_region_t reg = {sb->fd, NULL, sb->off, 1 * MiB};
    sb->rc = sf_worker_submit(sb->w, s, &reg, NULL, on_done, &d, NULL);
    if (sb->rc != 0) shutdown(s, SHUT_WR);
    sb->calls = sb->rc == 0 ? wdone_wait(&d) : 0;
    reader_join(&rd);
    sb->status = d.status;
    sb->wire_ok = wire_matches(rd.buf, rd.len, NULL, sb->off, 1 * MiB, NULL);
    reader_free(&rd);
    wdone_destroy(&d);
    close(s);
    close(r);
    return NULL;
}

static void test_worker_concurrent_submitters(void **state) {
    (void)state;
    int fd = make_pattern_file(2 * MiB, NULL);
    sf_worker_t *w = NULL;
    assert_int_equal(sf_worker_new(&w), 0);
    struct submitter sb[4];
    for (int i = 0; i < 4; i++) {
        sb[i] = (struct submitter){.w = w, .fd = fd, .off = (uint64_t)i * 12345};
        assert_int_equal(pthread_create(&sb[i].thread, NULL, submitter_main, &sb[i]), 0);
    }
    for (int i = 0; i < 4; i++) pthread_join(sb[i].thread, NULL);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(sb[i].rc, 0);
        assert_int_equal(sb[i].calls, 1);
        assert_int_equal(sb[i].status, 0);
        assert_true(sb[i].wire_ok);
    }
    sf_worker_free(w);
    close(fd);
}

/* Freed right after submitting: the Start may still be queued.  No done,
 * no fd left open. */
static void test_worker_free_right_after_submit(void **state) {
    (void)state;
    char path[4096];
    close(make_pattern_file(1 * MiB, path));
    int before = count_open_fds();
    for (int i = 0; i < 10; i++) {
        sf_worker_t *w = NULL;
        assert_int_equal(sf_worker_new(&w), 0);
        int s, r;
        socketpair_nb(&s, &r);
        small_buffers(s, r, 4096);
        wdone_t d;
        wdone_init(&d, -1);
        sf_region_t reg = {-1, path, 0, SF_COUNT_TO_EOF};
        assert_int_equal(sf_worker_submit(w, s, &reg, NULL, on_done, &d, NULL), 0);
        sf_worker_free(w);
        assert_int_equal(wdone_calls(&d), 0);
        wdone_destroy(&d);
        close(s);
        close(r);
    }
    assert_int_equal(count_open_fds(), before);
}

/* Cancel racing completion: the worker is held inside the transfer's last
 * step (a pread hook) until the test thread, having seen it there, is about
 * to cancel, plus a short window for the cancel to get in.  Either outcome is legal -- 0 and done
 * never runs, or -EALREADY and done runs once -- but never 0 *and* done. */
static pthread_mutex_t g_race_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_race_cv = PTHREAD_COND_INITIALIZER;
static int g_in_hook, g_about_to_cancel;

static int race_pread_hook(int fd, void *buf, size_t count, off_t off, ssize_t *ret) {
    (void)fd, (void)buf, (void)count, (void)off, (void)ret;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&g_race_mu);
    g_in_hook = 1;
    pthread_cond_broadcast(&g_race_cv);
    while (!g_about_to_cancel)
        if (pthread_cond_timedwait(&g_race_cv, &g_race_mu, &until) == ETIMEDOUT) break;
    pthread_mutex_unlock(&g_race_mu);
    /* A window for the canceller, not a wait for a condition: the outcome
     * is checked against the contract whichever side wins. */
    struct timespec window = {0, 30 * 1000 * 1000};
    nanosleep(&window, NULL);
    return 0; /* the real pread follows; the transfer then completes */
}

static void test_worker_cancel_racing_completion(void **state) {
    (void)state;
    int fd = make_pattern_file(1000, NULL);
    sf_worker_t *w = NULL;
    assert_int_equal(sf_worker_new(&w), 0);
    int cancelled = 0, completed = 0;
    for (int i = 0; i < 5; i++) {
        seam_install();
        seam.pread_hook = race_pread_hook;
        g_about_to_cancel = g_in_hook = 0;
        int s, r;
        socketpair_nb(&s, &r);
        wdone_t d;
        wdone_init(&d, -1);
        sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
        uint64_t ticket = 0;
        assert_int_equal(sf_worker_submit(w, s, &reg, NULL, on_done, &d, &ticket), 0);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += GUARD_SECONDS;
        pthread_mutex_lock(&g_race_mu);
        while (!g_in_hook) /* the worker is inside the transfer's last step */
            if (pthread_cond_timedwait(&g_race_cv, &g_race_mu, &until) == ETIMEDOUT) break;
        assert_true(g_in_hook);
        g_about_to_cancel = 1;
        pthread_cond_broadcast(&g_race_cv);
        pthread_mutex_unlock(&g_race_mu);
        int rc = sf_worker_cancel(w, ticket);
        /* a second transfer, done after anything the first could still do */
        seam_uninstall();
        int s2, r2;
        socketpair_nb(&s2, &r2);
        wdone_t d2;
        wdone_init(&d2, -1);
        assert_int_equal(sf_worker_submit(w, s2, &reg, NULL, on_done, &d2, NULL), 0);
        assert_int_equal(wdone_wait(&d2), 1);
        if (rc == 0) {
            assert_int_equal(wdone_calls(&d), 0);
            cancelled++;
        } else {
            assert_int_equal(rc, -EALREADY);
            assert_int_equal(wdone_calls(&d), 1);
            completed++;
        }
        wdone_destroy(&d);
        wdone_destroy(&d2);
        int fds[] = {s, r, s2, r2};
        for (int k = 0; k < 4; k++) close(fds[k]);
    }
    sf_worker_free(w);
    close(fd);
    print_message("cancel won %d, completion won %d\n", cancelled, completed);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_worker_submit_and_done, teardown),
        cmocka_unit_test_teardown(test_worker_cancel_running, teardown),
        cmocka_unit_test_teardown(test_worker_cancel_right_after_submit, teardown),
        cmocka_unit_test_teardown(test_worker_free_in_flight, teardown),
        cmocka_unit_test_teardown(test_worker_cancel_from_done, teardown),
        cmocka_unit_test_teardown(test_worker_free_right_after_submit, teardown),
        cmocka_unit_test_teardown(test_worker_concurrent_submitters, teardown),
        cmocka_unit_test_teardown(test_worker_cancel_racing_completion, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
