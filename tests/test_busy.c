/* test_busy.c -- one transfer per socket at a time.  A second transfer on a
 * socket whose first is still in flight is refused with -EBUSY and sends
 * nothing (it used to be accepted and its head landed inside the first
 * body); from the first one's done callback the socket is free again, so
 * pipelined responses can follow each other. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "evsendfile.h"
#include "harness.h"

#define HEAD1 "HTTP/1.1 200 OK\r\nX-N: 1\r\n\r\n"
#define HEAD2 "HTTP/1.1 200 OK\r\nX-N: 2\r\n\r\n"

static int teardown(void **state) {
    (void)state;
    files_cleanup();
    return 0;
}

typedef struct chain {
    struct event_base *base;
    int sock, file;
    uint64_t size;
    int second_rc;   /* sf_send_async while the first is in flight */
    int from_done_rc;/* ... and from the first one's done */
    done_rec_t first, second;
    struct iovec h2;
    sf_options_t o2;
} chain_t;

static void second_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    chain_t *c = arg;
    record_done(t, status, sent, &c->second);
    shutdown(c->sock, SHUT_WR);
}

static void first_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    chain_t *c = arg;
    record_done(t, status, sent, &c->first);
    sf_region_t region = {.fd = c->file, .offset = 0, .count = c->size};
    c->from_done_rc = sf_send_async(c->base, c->sock, &region, &c->o2, second_done, c, NULL);
}

static void test_second_transfer_refused_then_chained(void **state) {
    (void)state;
    chain_t c = {.size = 4 * MiB};
    c.file = make_pattern_file(c.size, NULL);
    int r;
    tcp_pair(&c.sock, &r);
    c.base = event_base_new();
    done_rec_init(&c.first, -1);
    done_rec_init(&c.second, -1);
    reader_t rd = {.fd = r, .keep = 1};
    reader_start(&rd);

    struct iovec h1;
    sf_options_t o1;
    opts_with(&o1, &h1, HEAD1, NULL, NULL);
    opts_with(&c.o2, &c.h2, HEAD2, NULL, NULL);
    sf_region_t region = {.fd = c.file, .offset = 0, .count = c.size};
    assert_int_equal(sf_send_async(c.base, c.sock, &region, &o1, first_done, &c, NULL), 0);
    /* 4 MiB cannot have left in the first step: the first is in flight. */
    assert_true(c.first.calls == 0);
    c.second_rc = sf_send_async(c.base, c.sock, &region, &c.o2, second_done, &c, NULL);
    assert_int_equal(c.second_rc, -EBUSY);
    /* The stepping API sees the same claim. */
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(c.sock, &region, NULL, &job), -EBUSY);
    assert_null(job);

    assert_true(run_until(c.base, &c.second.calls));
    reader_join(&rd);
    assert_int_equal(c.first.status, 0);
    assert_int_equal(c.from_done_rc, 0);
    assert_int_equal(c.second.status, 0);
    /* Exactly: response 1, then response 2, nothing interleaved. */
    size_t one = strlen(HEAD1) + c.size;
    assert_int_equal(rd.len, one + strlen(HEAD2) + c.size);
    assert_true(wire_matches(rd.buf, one, HEAD1, 0, c.size, NULL));
    assert_true(wire_matches(rd.buf + one, rd.len - one, HEAD2, 0, c.size, NULL));
    reader_free(&rd);
    event_base_free(c.base);
    close(c.sock);
    close(r);
    close(c.file);
}

/* A job holds the socket from sf_job_new until it finishes or is freed. */
static void test_stepping_claims_until_done_or_free(void **state) {
    (void)state;
    int fd = make_pattern_file(1000, NULL);
    int s, r;
    socketpair_nb(&s, &r);
    sf_region_t region = {.fd = fd, .offset = 0, .count = 1000};
    sf_job_t *a = NULL, *b = NULL;
    assert_int_equal(sf_job_new(s, &region, NULL, &a), 0);
    assert_int_equal(sf_job_new(s, &region, NULL, &b), -EBUSY);
    sf_job_free(a); /* freed unfinished: the socket is free */
    assert_int_equal(sf_job_new(s, &region, NULL, &a), 0);
    assert_int_equal(sf_job_step(a), SF_STEP_DONE); /* finished: free too */
    assert_int_equal(sf_job_new(s, &region, NULL, &b), 0);
    sf_job_free(a);
    sf_job_free(b);
    /* Another socket is another claim. */
    int s2, r2;
    socketpair_nb(&s2, &r2);
    assert_int_equal(sf_job_new(s, &region, NULL, &a), 0);
    assert_int_equal(sf_job_new(s2, &region, NULL, &b), 0);
    sf_job_free(a);
    sf_job_free(b);
    int fds[] = {fd, s, r, s2, r2};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) close(fds[i]);
}

static void must_not_run(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    (void)t; (void)status; (void)sent; (void)arg;
    fail_msg("done ran for a cancelled transfer");
}

typedef struct all_rec {
    struct event_base *base;
    int calls, cancelled_from_done;
} all_rec_t;

static void cancel_rest(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    (void)t; (void)status; (void)sent;
    all_rec_t *a = arg;
    a->calls++;
    a->cancelled_from_done = sf_cancel_all(a->base);
}

/* sf_cancel_all: every transfer on the base, before event_base_free; from a
 * done callback it leaves the one whose done runs. */
static void test_cancel_all(void **state) {
    (void)state;
    char path[4096];
    int fd = make_pattern_file(8 * MiB, path);
    struct event_base *base = event_base_new();
    int fds_before = count_open_fds();
    assert_int_equal(sf_cancel_all(NULL), -EINVAL);
    assert_int_equal(sf_cancel_all(base), 0);
    enum { N = 70 };  /* more than one batch */
    int s[N], r[N];
    for (int i = 0; i < N; i++) {
        socketpair_nb(&s[i], &r[i]);
        small_buffers(s[i], r[i], 4096);
        sf_region_t region = {.fd = i % 2 ? fd : -1, .path = path, .offset = 0, .count = 8 * MiB};
        assert_int_equal(sf_send_async(base, s[i], &region, NULL, must_not_run, NULL, NULL), 0);
    }
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(sf_cancel_all(base), N);
    assert_int_equal(sf_cancel_all(base), 0);
    event_base_loop(base, EVLOOP_NONBLOCK);
    for (int i = 0; i < N; i++) {
        close(s[i]);
        close(r[i]);
    }
    assert_int_equal(count_open_fds(), fds_before);  /* library-opened files closed */
    event_base_free(base);

    /* From a done callback: a small transfer finishes and cancels the others. */
    base = event_base_new();
    all_rec_t a = {.base = base};
    int ss, sr;
    socketpair_nb(&ss, &sr);
    for (int i = 0; i < 3; i++) {
        socketpair_nb(&s[i], &r[i]);
        small_buffers(s[i], r[i], 4096);
        sf_region_t region = {.fd = fd, .offset = 0, .count = 8 * MiB};
        assert_int_equal(sf_send_async(base, s[i], &region, NULL, must_not_run, NULL, NULL), 0);
    }
    sf_region_t small = {.fd = fd, .offset = 0, .count = 100};
    assert_int_equal(sf_send_async(base, ss, &small, NULL, cancel_rest, &a, NULL), 0);
    assert_true(run_until(base, &a.calls));
    assert_int_equal(a.cancelled_from_done, 3);
    event_base_free(base);
    for (int i = 0; i < 3; i++) {
        close(s[i]);
        close(r[i]);
    }
    close(ss);
    close(sr);
    close(fd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_second_transfer_refused_then_chained, teardown),
        cmocka_unit_test_teardown(test_stepping_claims_until_done_or_free, teardown),
        cmocka_unit_test_teardown(test_cancel_all, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
