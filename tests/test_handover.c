/* test_handover.c -- a job made and stepped by the caller, handed over to a
 * driver (sf_job_start) or to the worker (sf_worker_submit_job): it goes on
 * from where it stopped (the head is not sent again), after YIELD, WRITE,
 * DONE or an error, from another thread too (this binary runs under TSan in
 * CI), and the library owns it in every case. */
#include <errno.h>
#include <pthread.h>
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

#define HEAD "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"
#define TAIL "\r\n--end--\r\n"

static int teardown(void **state) {
    (void)state;
    files_cleanup();
    return 0;
}

/* Makes a job on a TCP pair, steps it `steps` times (or until it ends),
 * hands it to a base and checks the whole wire image. */
static void handover_on_base(uint64_t size, uint64_t max_chunk, int steps) {
    int fd = make_pattern_file(size, NULL);
    int s, r;
    tcp_pair(&s, &r);
    struct iovec h, t;
    sf_options_t o;
    opts_with(&o, &h, HEAD, &t, TAIL);
    o.max_chunk = max_chunk;
    sf_region_t region = {.fd = fd, .offset = 0, .count = size};
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(s, &region, &o, &job), 0);
    int last = SF_STEP_YIELD;
    for (int i = 0; i < steps && last > 0; i++) last = sf_job_step(job);
    uint64_t before = sf_job_body_sent(job);

    reader_t rd = {.fd = r, .keep = 1};
    reader_start(&rd);
    struct event_base *base = event_base_new();
    done_rec_t d;
    done_rec_init(&d, s);
    sf_transfer_t *tr = NULL;
    assert_int_equal(sf_job_start(job, base, record_done, &d, &tr), 0);
    assert_int_equal(d.calls, 0);  /* never from inside the call */
    assert_true(run_until(base, &d.calls));
    reader_join(&rd);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.body_sent, size);
    assert_true(d.body_sent >= before);
    assert_true(wire_matches(rd.buf, rd.len, HEAD, 0, size, TAIL));  /* head once, nothing lost */
    reader_free(&rd);
    event_base_free(base);
    close(s);
    close(r);
    close(fd);
}

static void test_after_yield(void **state) {
    (void)state;
    handover_on_base(8 * MiB, 64 * KiB, 1);  /* one step: head + 64 KiB, then YIELD */
}

static void test_after_several_steps(void **state) {
    (void)state;
    handover_on_base(8 * MiB, 64 * KiB, 5);
}

static void test_after_done(void **state) {
    (void)state;
    handover_on_base(1000, 0, 100);  /* small: DONE in the first step */
}

static void test_never_stepped(void **state) {
    (void)state;
    handover_on_base(3 * MiB, 0, 0);
}

/* A job that failed: done reports the same error. */
static void test_after_error(void **state) {
    (void)state;
    int fd = make_pattern_file(4 * MiB, NULL);
    int s, r;
    socketpair_nb(&s, &r);
    close(r);  /* the peer is gone */
    sf_region_t region = {.fd = fd, .offset = 0, .count = 4 * MiB};
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(s, &region, NULL, &job), 0);
    assert_int_equal(sf_job_step(job), -EPIPE);
    struct event_base *base = event_base_new();
    done_rec_t d;
    done_rec_init(&d, -1);
    assert_int_equal(sf_job_start(job, base, record_done, &d, NULL), 0);
    assert_true(run_until(base, &d.calls));
    assert_int_equal(d.status, -EPIPE);
    assert_int_equal(d.body_sent, 0);
    event_base_free(base);
    close(s);
    close(fd);
}

/* Made and stepped on one thread, continued on the worker's. */
typedef struct wctx {
    sf_worker_t *w;
    int sock, fd;
    uint64_t size;
    int submit_rc;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls, status, null_transfer;
    uint64_t sent;
} wctx_t;

static void on_worker_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    wctx_t *c = arg;
    pthread_mutex_lock(&c->mu);
    c->null_transfer |= t == NULL;
    c->calls++;
    c->status = status;
    c->sent = sent;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void *make_and_submit(void *arg) {
    wctx_t *c = arg;
    struct iovec h, t;
    sf_options_t o;
    opts_with(&o, &h, HEAD, &t, TAIL);
    o.max_chunk = 64 * KiB;
    sf_region_t region = {.fd = c->fd, .offset = 0, .count = c->size};
    sf_job_t *job = NULL;
    if (sf_job_new(c->sock, &region, &o, &job) != 0) return NULL;
    sf_job_step(job);
    sf_job_step(job);
    c->submit_rc = sf_worker_submit_job(c->w, job, on_worker_done, c, NULL);
    return NULL;
}

static void test_worker_from_another_thread(void **state) {
    (void)state;
    wctx_t c = {.size = 6 * MiB, .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .submit_rc = 1};
    c.fd = make_pattern_file(c.size, NULL);
    int r;
    tcp_pair(&c.sock, &r);
    assert_int_equal(sf_worker_new(&c.w), 0);
    reader_t rd = {.fd = r, .keep = 1};
    reader_start(&rd);
    pthread_t th;
    pthread_create(&th, NULL, make_and_submit, &c);
    pthread_join(th, NULL);
    assert_int_equal(c.submit_rc, 0);
    pthread_mutex_lock(&c.mu);
    while (c.calls == 0) pthread_cond_wait(&c.cv, &c.mu);
    pthread_mutex_unlock(&c.mu);
    shutdown(c.sock, SHUT_WR);
    reader_join(&rd);
    assert_int_equal(c.status, 0);
    assert_int_equal(c.null_transfer, 0);
    assert_int_equal(c.sent, c.size);
    assert_true(wire_matches(rd.buf, rd.len, HEAD, 0, c.size, TAIL));
    reader_free(&rd);
    sf_worker_free(c.w);
    close(c.sock);
    close(r);
    close(c.fd);
}

/* Refused hand-overs free the job (and close a library-opened file). */
static void test_refused_handover_frees_the_job(void **state) {
    (void)state;
    char path[4096];
    close(make_pattern_file(100 * KiB, path));
    int s, r;
    socketpair_nb(&s, &r);
    int fds_before = count_open_fds();
    sf_region_t region = {.fd = -1, .path = path, .offset = 0, .count = SF_COUNT_TO_EOF};
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(s, &region, NULL, &job), 0);
    assert_int_equal(sf_worker_submit_job(NULL, job, on_worker_done, NULL, NULL), -EINVAL);
    assert_int_equal(count_open_fds(), fds_before);
    assert_int_equal(sf_job_new(s, &region, NULL, &job), 0);  /* the socket is free again */
    assert_int_equal(sf_job_start(job, NULL, record_done, NULL, NULL), -EINVAL);
    assert_int_equal(count_open_fds(), fds_before);
    close(s);
    close(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_after_yield, teardown),
        cmocka_unit_test_teardown(test_after_several_steps, teardown),
        cmocka_unit_test_teardown(test_after_done, teardown),
        cmocka_unit_test_teardown(test_never_stepped, teardown),
        cmocka_unit_test_teardown(test_after_error, teardown),
        cmocka_unit_test_teardown(test_worker_from_another_thread, teardown),
        cmocka_unit_test_teardown(test_refused_handover_frees_the_job, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
