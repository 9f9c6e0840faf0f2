/* test_alloc.c -- every heap allocation of the library, failed one at a time.
 *
 * For each way in (sf_send_async on the small, sendfile and copy paths, a
 * library-opened path, the stepping API, sf_job_start, the worker), the
 * seam's `alloc` channel fails call 1, then 2, ... until a run makes no
 * allocation at the failing number: by then every allocation site that way
 * in reaches has failed once.  Each failure must end in -ENOMEM -- returned
 * synchronously (nothing sent) or through `done` / the step, never a crash,
 * a throw, a hang or a NULL transfer in done -- with the peer holding an exact
 * prefix and the fd count back at its baseline.  Leaks are the sanitizer
 * builds' and valgrind's to find (this binary runs under both). */
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
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "evsendfile.h"
#include "harness.h"
#include "seam.h"

#define HEAD "HTTP/1.1 200 OK\r\n\r\n"
#define MAX_SITES 64

static int teardown(void **state) {
    (void)state;
    seam_uninstall();
    files_cleanup();
    return 0;
}

enum way { SMALL, SENDFILE, COPY, PATH };

typedef struct outcome {
    int sync;         /* sf_send_async's return */
    done_rec_t done;  /* when sync == 0 */
    int injected;     /* did the fault fire? */
} outcome_t;

/* One transfer of `way` with the n-th allocation failing (0: none). */
static outcome_t run_way(enum way way, int n) {
    char path[4096];
    uint64_t size = way == SMALL ? 3000 : 300 * KiB;
    int fd = make_pattern_file(size, path);
    int fds_before = count_open_fds();
    int s, r;
    socketpair_nb(&s, &r);

    struct iovec hiov;
    sf_options_t o;
    opts_with(&o, &hiov, HEAD, NULL, NULL);
    if (way == COPY) o.flags |= SF_NO_SENDFILE;
    sf_region_t region = {.fd = way == PATH ? -1 : fd, .path = path, .offset = 0, .count = size};

    seam_install();
    seam.alloc.fault = (seam_fault_t){.err = n ? ENOMEM : 0, .first = n, .times = 1};
    reader_t rd = {.keep = 1};
    outcome_t out = {0};
    out.sync = transfer_collect(s, r, &region, &o, &rd, &out.done);
    out.injected = seam.alloc.injected;
    seam_uninstall();

    if (out.sync != 0) {
        assert_int_equal(out.sync, -ENOMEM);
        assert_int_equal(rd.total, 0);  /* a synchronous error sent nothing */
    } else {
        assert_int_equal(out.done.calls, 1);
        assert_true(out.done.status == 0 || out.done.status == -ENOMEM);
        if (out.done.status == 0) assert_int_equal(out.injected, 0);
        assert_true(wire_matches(rd.buf, rd.len, HEAD, 0, out.done.body_sent, NULL) ||
                    (rd.len <= strlen(HEAD) && (rd.len == 0 || memcmp(rd.buf, HEAD, rd.len) == 0)));
        if (out.done.status == 0) assert_true(wire_matches(rd.buf, rd.len, HEAD, 0, size, NULL));
    }
    reader_free(&rd);
    close(s);
    close(r);
    assert_int_equal(count_open_fds(), fds_before);  /* a library-opened fd is closed too */
    close(fd);
    return out;
}

static void every_site(enum way way) {
    int failures = 0;
    for (int n = 1; n <= MAX_SITES; n++) {
        outcome_t o = run_way(way, n);
        if (!o.injected) {
            assert_true(n > 1);  /* the way in allocates at all */
            print_message("way %d: %d allocations, each failed once\n", (int)way, failures);
            assert_int_equal(o.sync, 0);
            assert_int_equal(o.done.status, 0);
            return;
        }
        assert_true(o.sync == -ENOMEM || o.done.status == -ENOMEM);
        failures++;
    }
    fail_msg("more than %d allocations in one transfer", MAX_SITES);
}

static void test_small(void **state) { (void)state; every_site(SMALL); }
static void test_sendfile(void **state) { (void)state; every_site(SENDFILE); }
static void test_copy(void **state) { (void)state; every_site(COPY); }
static void test_path(void **state) { (void)state; every_site(PATH); }

/* The stepping API: sf_job_new, then steps over poll(2). */
static void test_stepping(void **state) {
    (void)state;
    int fd = make_pattern_file(3000, NULL);
    for (int n = 1; n <= MAX_SITES; n++) {
        int fds_before = count_open_fds();
        int s, r;
        socketpair_nb(&s, &r);
        sf_region_t region = {.fd = fd, .offset = 0, .count = 3000};
        seam_install();
        seam.alloc.fault = (seam_fault_t){.err = ENOMEM, .first = n, .times = 1};
        sf_job_t *job = NULL;
        int rc = sf_job_new(s, &region, NULL, &job);
        int st = rc;
        if (rc == 0) {
            while ((st = sf_job_step(job)) == SF_STEP_WRITE || st == SF_STEP_YIELD) {
                struct pollfd p = {.fd = s, .events = POLLOUT};
                poll(&p, 1, 1000);
            }
            sf_job_free(job);
        }
        int injected = seam.alloc.injected;
        seam_uninstall();
        close(s);
        close(r);
        assert_int_equal(count_open_fds(), fds_before);
        if (!injected) {
            assert_int_equal(st, SF_STEP_DONE);
            close(fd);
            return;
        }
        assert_int_equal(st, -ENOMEM);
    }
    fail_msg("more than %d allocations", MAX_SITES);
}

static void never_called(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    (void)t; (void)status; (void)sent; (void)arg;
    fail_msg("done ran after a synchronous error");
}

/* sf_job_start takes the job in every case: a failed start frees it and
 * closes the file it opened. */
static void test_job_start_owns_the_job(void **state) {
    (void)state;
    char path[4096];
    int fd = make_pattern_file(300 * KiB, path);
    close(fd);
    struct event_base *base = event_base_new();
    for (int n = 1; n <= MAX_SITES; n++) {
        int s, r;
        socketpair_nb(&s, &r);
        int fds_before = count_open_fds();
        sf_region_t region = {.fd = -1, .path = path, .offset = 0, .count = SF_COUNT_TO_EOF};
        sf_job_t *job = NULL;
        assert_int_equal(sf_job_new(s, &region, NULL, &job), 0);
        assert_int_equal(count_open_fds(), fds_before + 1);
        seam_install();
        seam.alloc.fault = (seam_fault_t){.err = ENOMEM, .first = n, .times = 1};
        sf_transfer_t *t = NULL;
        int rc = sf_job_start(job, base, never_called, NULL, &t);
        int injected = seam.alloc.injected;
        seam_uninstall();
        if (!injected) {
            assert_int_equal(rc, 0);
            assert_int_equal(sf_cancel(t), 0);
            assert_int_equal(count_open_fds(), fds_before);
            close(s);
            close(r);
            break;
        }
        assert_int_equal(rc, -ENOMEM);
        assert_int_equal(count_open_fds(), fds_before);  /* the job and its fd are gone */
        close(s);
        close(r);
    }
    /* NULL arguments: the job is freed too. */
    int s, r;
    socketpair_nb(&s, &r);
    int fds_before = count_open_fds();
    sf_region_t region = {.fd = -1, .path = path, .offset = 0, .count = SF_COUNT_TO_EOF};
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(s, &region, NULL, &job), 0);
    assert_int_equal(sf_job_start(job, NULL, never_called, NULL, NULL), -EINVAL);
    assert_int_equal(count_open_fds(), fds_before);
    assert_int_equal(sf_job_start(NULL, base, never_called, NULL, NULL), -EINVAL);
    close(s);
    close(r);
    event_base_free(base);
}

/* The worker: sf_worker_new and sf_worker_submit fail synchronously; once a
 * submit succeeded, done runs with a real transfer handle. */
typedef struct wres {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls, status, null_transfer;
} wres_t;

static void on_worker_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    (void)sent;
    wres_t *w = arg;
    pthread_mutex_lock(&w->mu);
    w->calls++;
    w->status = status;
    w->null_transfer |= t == NULL;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void test_worker(void **state) {
    (void)state;
    int fd = make_pattern_file(300 * KiB, NULL);
    int created = 0;
    for (int n = 1; n <= MAX_SITES && !created; n++) {
        seam_install();
        seam.alloc.fault = (seam_fault_t){.err = ENOMEM, .first = n, .times = 1};
        sf_worker_t *w = NULL;
        int rc = sf_worker_new(&w);
        int injected = seam.alloc.injected;
        seam_uninstall();
        if (rc == 0) {
            sf_worker_free(w);
            created = !injected;
        } else {
            assert_int_equal(rc, -ENOMEM);
        }
    }
    assert_true(created);

    sf_worker_t *w = NULL;
    assert_int_equal(sf_worker_new(&w), 0);
    for (int n = 1; n <= MAX_SITES; n++) {
        int fds_before = count_open_fds();
        int s, r;
        socketpair_nb(&s, &r);
        reader_t rd = {.fd = r};
        reader_start(&rd);
        wres_t res = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .status = 1};
        sf_region_t region = {.fd = fd, .offset = 0, .count = 300 * KiB};
        seam_install();
        seam.alloc.fault = (seam_fault_t){.err = ENOMEM, .first = n, .times = 1};
        int rc = sf_worker_submit(w, s, &region, NULL, on_worker_done, &res, NULL);
        int injected_at_submit = seam.alloc.injected;
        if (rc == 0) {
            pthread_mutex_lock(&res.mu);
            while (res.calls == 0) pthread_cond_wait(&res.cv, &res.mu);
            pthread_mutex_unlock(&res.mu);
        }
        int injected = seam.alloc.injected;
        seam_uninstall();
        shutdown(s, SHUT_WR);
        reader_join(&rd);
        reader_free(&rd);
        close(s);
        close(r);
        assert_int_equal(count_open_fds(), fds_before);
        if (!injected) {
            assert_int_equal(rc, 0);
            assert_int_equal(res.status, 0);
            assert_int_equal(res.null_transfer, 0);
            break;
        }
        if (injected_at_submit) {
            assert_int_equal(rc, -ENOMEM);
        } else {
            assert_int_equal(res.calls, 1);
            assert_int_equal(res.status, -ENOMEM);
            assert_int_equal(res.null_transfer, 0);
        }
    }
    sf_worker_free(w);
    close(fd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_small, teardown),
        cmocka_unit_test_teardown(test_sendfile, teardown),
        cmocka_unit_test_teardown(test_copy, teardown),
        cmocka_unit_test_teardown(test_path, teardown),
        cmocka_unit_test_teardown(test_stepping, teardown),
        cmocka_unit_test_teardown(test_job_start_owns_the_job, teardown),
        cmocka_unit_test_teardown(test_worker, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
