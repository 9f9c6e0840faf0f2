/* test_idle.c -- the idle timeout measures progress as bytes leaving the
 * socket's send queue, over real TCP with the kernel's default (autotuned)
 * buffers.  Linux reports a socket writable only once a third of SO_SNDBUF
 * is free, so a reader that keeps reading slowly may never make the socket
 * writable within the timeout; it must not be cut.  A reader that stops
 * reading must still be cut.  No timing is asserted: only which phase the
 * reader was in when the transfer ended. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "evsendfile.h"
#include "harness.h"

static int teardown(void **state) {
    (void)state;
    files_cleanup();
    return 0;
}

typedef struct slow_reader {
    int fd;
    uint64_t slow_bytes;       /* read this much slowly, then stop reading */
    atomic_uint_fast64_t got;
    atomic_int stopped;        /* reached slow_bytes and stopped reading */
    atomic_int release;        /* set by the test: drain to EOF */
    pthread_t thread;
} slow_reader_t;

static void *slow_read(void *arg) {
    slow_reader_t *r = arg;
    char buf[16384];
    struct timespec pace = {0, 25 * 1000 * 1000};  /* 16 KiB per 25 ms: ~0.65 MB/s */
    while (atomic_load(&r->got) < r->slow_bytes) {
        ssize_t n = read(r->fd, buf, sizeof buf);
        if (n <= 0) return NULL;
        atomic_fetch_add(&r->got, (uint64_t)n);
        nanosleep(&pace, NULL);
    }
    atomic_store(&r->stopped, 1);
    while (!atomic_load(&r->release)) {
        struct timespec t = {0, 5 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    ssize_t n;
    while ((n = read(r->fd, buf, sizeof buf)) > 0) atomic_fetch_add(&r->got, (uint64_t)n);
    return NULL;
}

typedef struct idle_done {
    int calls, status;
    uint64_t sent;
    int reader_stopped;  /* had the reader stopped when done ran? */
    slow_reader_t *reader;
} idle_done_t;

static void on_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    (void)t;
    idle_done_t *d = arg;
    d->calls++;
    d->status = status;
    d->sent = sent;
    d->reader_stopped = atomic_load(&d->reader->stopped);
}

static void test_slow_reader_not_cut_stopped_reader_cut(void **state) {
    (void)state;
    const uint64_t size = 64 * MiB;
    int fd = make_pattern_file(size, NULL);
    int s, r;
    tcp_pair(&s, &r);  /* the sender's buffer as the kernel sizes it (autotuned, MiBs) */
    /* A small receive buffer, so each read opens the window at once (a big
     * one may hold back window updates while its queue drains). */
    int rcv = 64 * 1024;
    setsockopt(r, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    set_nonblocking(r, 0);
    slow_reader_t rd = {.fd = r, .slow_bytes = 3 * MiB};
    pthread_create(&rd.thread, NULL, slow_read, &rd);

    struct event_base *base = event_base_new();
    sf_options_t o;
    sf_options_init(&o);
    /* Several of them pass during the slow phase (about 5 s), in each of
     * which the reader takes ~1 MB: less than the third of the send buffer
     * that would make the socket writable again. */
    o.idle_timeout_ms = test_ms(1500);
    idle_done_t d = {.reader = &rd};
    sf_region_t region = {.fd = fd, .offset = 0, .count = size};
    assert_int_equal(sf_send_async(base, s, &region, &o, on_done, &d, NULL), 0);
    assert_true(run_until(base, &d.calls));
    atomic_store(&rd.release, 1);
    shutdown(s, SHUT_WR);
    pthread_join(rd.thread, NULL);

    assert_int_equal(d.status, SF_ETIMEDOUT);
    /* Cut only after the reader stopped: the slow phase passed without a
     * timeout. */
    assert_true(d.reader_stopped);
    assert_true(d.sent >= 3 * MiB);
    event_base_free(base);
    close(s);
    close(r);
    close(fd);
}

/* The stepping API's hook: sf_job_progressed. */
static void test_job_progressed(void **state) {
    (void)state;
    const uint64_t size = 16 * MiB;
    int fd = make_pattern_file(size, NULL);
    int s, r;
    tcp_pair(&s, &r);
    sf_options_t o;
    sf_options_init(&o);
    o.idle_timeout_ms = 1000;
    sf_region_t region = {.fd = fd, .offset = 0, .count = size};
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(s, &region, &o, &job), 0);
    int st;
    while ((st = sf_job_step(job)) == SF_STEP_YIELD) {
    }
    assert_int_equal(st, SF_STEP_WRITE);
    assert_int_equal(sf_job_progressed(job), 0);  /* nobody read anything */
    char buf[65536];
    set_nonblocking(r, 1);
    uint64_t drained = 0;
    for (int i = 0; i < 200 && drained < 1 * MiB; i++) {
        ssize_t n = read(r, buf, sizeof buf);
        if (n > 0) drained += (uint64_t)n;
        else poll(NULL, 0, 5);
    }
    poll(NULL, 0, 50);  /* let the ACKs come back */
    assert_int_equal(sf_job_progressed(job), 1);
    assert_int_equal(sf_job_progressed(job), 0);  /* and nothing since */
    sf_job_free(job);
    close(s);
    close(r);
    close(fd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_slow_reader_not_cut_stopped_reader_cut, teardown),
        cmocka_unit_test_teardown(test_job_progressed, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
