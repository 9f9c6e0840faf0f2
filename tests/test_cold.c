/* test_cold.c -- a cold file never stalls the loop.  The page-cache probe
 * (seam `resident`) is told to answer "cold" for chosen files, and the disk
 * threads' read (seam `fetch`) is held at a gate the test opens: while it is
 * closed, timers, other transfers and the stepping API's wake-up fd must
 * behave as if the cold transfer were simply waiting.  Only the order and
 * the counts of callbacks are asserted, never a duration.
 *
 * The pool's limits are process-wide: test_pool_full runs first, while no
 * disk thread exists yet. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "evsendfile.h"
#include "harness.h"
#include "seam.h"

#define REGION (256 * KiB + 17)
#define HEAD "HTTP/1.1 200 OK\r\n\r\n"

/* ------------------------------------------------------------- the gate */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_open = 1;        /* the disk threads' reads may go on */
static int g_cold_fd = -1;    /* the probe says "cold" for this source fd (-2: every fd) */
static int g_seen_fd = -1;    /* the fd the last fetch read through */
static int g_seen_fstat = -2; /* fstat on it after the gate opened: 0 = a live fd */
static off_t g_truncate_to = -1;
static int g_truncate_fd = -1;
#define MAX_FETCHES 64
static struct fetch_rec { int fd; uint64_t off, len, ahead; } g_fetches[MAX_FETCHES]; /* every fetch, in order */
static int g_n_fetches;

static void gate_close(void) {
    pthread_mutex_lock(&g_mu);
    g_open = 0;
    pthread_mutex_unlock(&g_mu);
}

static void gate_open(void) {
    pthread_mutex_lock(&g_mu);
    g_open = 1;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

/* On a disk thread.  A bounded wait: were the fetch run on the loop thread
 * (the bug these tests look for), the test would see the wrong order, not hang. */
static int fetch_hook(int fd, uint64_t off, uint64_t len, uint64_t ahead) {
    pthread_mutex_lock(&g_mu);
    if (g_n_fetches < MAX_FETCHES) g_fetches[g_n_fetches++] = (struct fetch_rec){fd, off, len, ahead};
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    while (!g_open && pthread_cond_timedwait(&g_cv, &g_mu, &until) == 0) {
    }
    struct stat st;
    g_seen_fd = fd;
    g_seen_fstat = fstat(fd, &st);
    if (g_truncate_to >= 0) {
        if (ftruncate(g_truncate_fd, g_truncate_to) != 0) g_seen_fstat = -3;
        g_truncate_to = -1;
    }
    pthread_mutex_unlock(&g_mu);
    return 0; /* the real fetch runs too */
}

static int resident_hook(int fd, uint64_t off, uint64_t len, int *ret) {
    (void)off, (void)len;
    if (g_cold_fd != -2 && fd != g_cold_fd) return 0;
    *ret = 0;
    return 1;
}

static void install(int cold_fd) {
    seam_install();
    g_cold_fd = cold_fd;
    seam.resident_hook = resident_hook;
    seam.fetch_hook = fetch_hook;
    pthread_mutex_lock(&g_mu);
    g_seen_fd = -1;
    g_seen_fstat = -2;
    g_n_fetches = 0;
    pthread_mutex_unlock(&g_mu);
}

/* Waits (bounded) until the disk threads have started `n` fetches. */
static void wait_fetches(int n) {
    for (int i = 0; i < GUARD_SECONDS * 1000 && seam_fetch_calls() < n; i++) usleep(1000);
    assert_int_equal(seam_fetch_calls(), n);
}

static void wait_fetches_returned(int n) {
    for (int i = 0; i < GUARD_SECONDS * 1000 && seam_fetch_returned() < n; i++) usleep(1000);
    assert_int_equal(seam_fetch_returned(), n);
}

/* ------------------------------------------------- transfers and events */

#define MAX_EVENTS 16
static char g_order[MAX_EVENTS];
static int g_norder;

typedef struct xfer {
    char tag;
    int sender, receiver, file;
    reader_t reader;
    done_rec_t done;
    sf_transfer_t *t;
} xfer_t;

static void on_done(sf_transfer_t *t, int status, uint64_t body_sent, void *arg) {
    xfer_t *x = arg;
    record_done(t, status, body_sent, &x->done);
    if (g_norder < MAX_EVENTS) g_order[g_norder++] = x->tag;
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    int *fired = arg;
    (*fired)++;
    if (g_norder < MAX_EVENTS) g_order[g_norder++] = 'T';
}

static void xfer_open(xfer_t *x, char tag) {
    memset(x, 0, sizeof *x);
    x->tag = tag;
    x->file = make_pattern_file(REGION + 1000, NULL);
    socketpair_nb(&x->sender, &x->receiver);
    done_rec_init(&x->done, x->sender);
    x->reader.fd = x->receiver;
    x->reader.keep = 1;
    reader_start(&x->reader);
}

static int xfer_start(xfer_t *x, struct event_base *base, unsigned flags) {
    sf_region_t reg = {x->file, NULL, 1000, REGION};
    struct iovec hv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, NULL, NULL);
    o.flags = flags;
    return sf_send_async(base, x->sender, &reg, &o, on_done, x, &x->t);
}

static void xfer_close(xfer_t *x) {
    reader_free(&x->reader);
    close(x->sender);
    close(x->receiver);
    if (x->file >= 0) close(x->file);
}

/* After done: the peer saw EOF; check the bytes and close everything. */
static void xfer_finish(xfer_t *x, int expect_status) {
    reader_join(&x->reader);
    assert_int_equal(x->done.calls, 1);
    assert_int_equal(x->done.status, expect_status);
    if (expect_status == 0) {
        assert_int_equal(x->done.body_sent, REGION);
        assert_true(wire_matches(x->reader.buf, x->reader.len, HEAD, 1000, REGION, NULL));
    }
    xfer_close(x);
}

/* After a cancel: nothing of the transfer left on the base; the peer is
 * let go, everything closed, and every fd the library made is gone (a disk
 * thread lets go of its own right after its work returns). */
static void xfer_abandon(xfer_t *x, struct event_base *base, int fds_before) {
    assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED), 0);
    shutdown(x->sender, SHUT_RDWR);
    reader_join(&x->reader);
    xfer_close(x);
    event_base_free(base);
    seam_uninstall();
    for (int i = 0; i < GUARD_SECONDS * 100 && count_open_fds() != fds_before; i++) usleep(10000);
    assert_int_equal(count_open_fds(), fds_before);
}

static int teardown(void **state) {
    (void)state;
    gate_open();
    seam_uninstall();
    files_cleanup();
    return 0;
}

/* ------------------------------------ the body's bytes leave from a disk thread */

/* Which thread took each body byte from the file: the seam's sendfile and
 * pread hooks run on the thread that calls them. */
static pthread_t g_loop_thread;
static int g_body_on_loop, g_body_off_loop; /* calls (atomics: the hooks run on either thread) */
static int g_hold_send = 0;                 /* the next off-loop call waits at the send gate */
static int g_send_held, g_send_released;    /* it reached the gate; it returned */
static pthread_mutex_t g_send_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_send_cv = PTHREAD_COND_INITIALIZER;
static int g_send_open = 1;

#define MAX_BODY_CALLS 4096
static int g_body_fds[MAX_BODY_CALLS], g_n_body; /* the source fd of each off-loop call, in order (under g_mu) */
static int g_sink_fd = -1;                       /* sendfile to this socket is sunk: "all sent" */

static void note_body_call(int src_fd) {
    if (pthread_equal(pthread_self(), g_loop_thread)) {
        __atomic_add_fetch(&g_body_on_loop, 1, __ATOMIC_SEQ_CST);
        return;
    }
    __atomic_add_fetch(&g_body_off_loop, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&g_mu);
    if (g_n_body < MAX_BODY_CALLS) g_body_fds[g_n_body++] = src_fd;
    pthread_mutex_unlock(&g_mu);
    if (!__atomic_exchange_n(&g_hold_send, 0, __ATOMIC_SEQ_CST)) return;
    pthread_mutex_lock(&g_send_mu);
    __atomic_store_n(&g_send_held, 1, __ATOMIC_SEQ_CST);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    while (!g_send_open && pthread_cond_timedwait(&g_send_cv, &g_send_mu, &until) == 0) {
    }
    pthread_mutex_unlock(&g_send_mu);
}

static int sendfile_note(int out_fd, int in_fd, off_t *off, size_t count, ssize_t *ret) {
    note_body_call(in_fd);
    if (out_fd != g_sink_fd) return 0; /* the real call runs */
    *off += (off_t)count;
    *ret = (ssize_t)count;
    return 1;
}

static int pread_note(int fd, void *buf, size_t count, off_t off, ssize_t *ret) {
    (void)buf, (void)count, (void)off, (void)ret;
    note_body_call(fd);
    return 0;
}

static void install_body_notes(int cold_fd) {
    install(cold_fd);
    g_loop_thread = pthread_self();
    __atomic_store_n(&g_body_on_loop, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_body_off_loop, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_send_held, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_send_released, 0, __ATOMIC_SEQ_CST);
    g_n_body = 0;
    g_sink_fd = -1;
    seam.sendfile_hook = sendfile_note;
    seam.pread_hook = pread_note;
}

/* Starts x with its first off-loop body call held at the send gate;
 * returns once a disk thread waits there. */
static void start_held_at_send(xfer_t *x, struct event_base *base, unsigned flags) {
    pthread_mutex_lock(&g_send_mu);
    g_send_open = 0;
    pthread_mutex_unlock(&g_send_mu);
    __atomic_store_n(&g_hold_send, 1, __ATOMIC_SEQ_CST);
    assert_int_equal(xfer_start(x, base, flags), 0);
    for (int k = 0; k < GUARD_SECONDS * 1000 && !__atomic_load_n(&g_send_held, __ATOMIC_SEQ_CST); k++)
        usleep(1000);
    assert_int_equal(__atomic_load_n(&g_send_held, __ATOMIC_SEQ_CST), 1);
}

static void send_gate_open(void) {
    pthread_mutex_lock(&g_send_mu);
    __atomic_store_n(&g_send_released, 1, __ATOMIC_SEQ_CST);
    g_send_open = 1;
    pthread_cond_broadcast(&g_send_cv);
    pthread_mutex_unlock(&g_send_mu);
}

/* Waits (bounded) until the disk threads hold no work: whatever a thread
 * was going to do for a transfer, it has done. */
static void wait_disk_idle(void) {
    for (int k = 0; k < GUARD_SECONDS * 1000 && evsf_disk_pending() != 0; k++) usleep(1000);
    assert_int_equal(evsf_disk_pending(), 0);
}

/* ---------------------------------------------------------------- tests */

/* One thread, a queue of one: the first cold transfer's chunk is on the
 * thread, the second waits in the queue, the third finds the pool full and
 * is sent inline -- it finishes while the other two still wait. */
static void test_pool_full(void **state) {
    (void)state;
    assert_int_equal(evsf_disk_threads(), 0); /* started lazily, not at load */
    evsf_disk_limits(1, 1);
    install(-2);
    gate_close();
    struct event_base *base = event_base_new();
    xfer_t x[3];
    for (int i = 0; i < 3; i++) xfer_open(&x[i], (char)('A' + i));
    g_norder = 0;
    assert_int_equal(xfer_start(&x[0], base, 0), 0);
    wait_fetches(1); /* A's chunk is in the thread's hands */
    assert_int_equal(xfer_start(&x[1], base, 0), 0);
    assert_int_equal(xfer_start(&x[2], base, 0), 0);
    assert_true(run_until(base, &x[2].done.calls));
    assert_int_equal(x[0].done.calls, 0);
    assert_int_equal(x[1].done.calls, 0);
    assert_int_equal(seam_fetch_calls(), 1);
    assert_int_equal(evsf_disk_threads(), 1);
    gate_open();
    assert_true(run_until(base, &x[0].done.calls));
    assert_true(run_until(base, &x[1].done.calls));
    assert_int_equal(seam_fetch_calls(), 2); /* A and B; C never went to the pool */
    for (int i = 0; i < 3; i++) xfer_finish(&x[i], 0);
    assert_int_equal(g_order[0], 'C');
    event_base_free(base);
    seam_uninstall();
    evsf_disk_limits(4, 1024);
}

/* Still one thread: two cold transfers of several chunks take turns.  The
 * thread goes on to a transfer's next chunk by itself only while no other
 * work waits; here B waits from the start, so B's first bytes go out
 * before A's last, not after all of A. */
static void test_transfers_take_turns(void **state) {
    (void)state;
    evsf_disk_limits(1, 1024);
    assert_int_equal(evsf_disk_threads(), 1);
    install_body_notes(-2);
    gate_close();
    struct event_base *base = event_base_new();
    xfer_t x[2];
    for (int i = 0; i < 2; i++) xfer_open(&x[i], (char)('A' + i));
    sf_region_t reg[2];
    struct iovec hv[2];
    sf_options_t o[2];
    for (int i = 0; i < 2; i++) {
        reg[i] = (sf_region_t){x[i].file, NULL, 1000, REGION};
        opts_with(&o[i], &hv[i], HEAD, NULL, NULL);
        o[i].max_chunk = 64 * KiB; /* five chunks each */
    }
    assert_int_equal(sf_send_async(base, x[0].sender, &reg[0], &o[0], on_done, &x[0], &x[0].t), 0);
    wait_fetches(1); /* A's first chunk is in the thread's hands */
    assert_int_equal(sf_send_async(base, x[1].sender, &reg[1], &o[1], on_done, &x[1], &x[1].t), 0);
    gate_open();
    assert_true(run_until(base, &x[0].done.calls));
    assert_true(run_until(base, &x[1].done.calls));
    for (int i = 0; i < 2; i++) xfer_finish(&x[i], 0);
    /* In the order the thread sent them: B's first bytes before A's last. */
    pthread_mutex_lock(&g_mu);
    int first_b = -1, last_a = -1;
    for (int i = 0; i < g_n_body; i++) {
        if (g_body_fds[i] == x[1].file && first_b < 0) first_b = i;
        if (g_body_fds[i] == x[0].file) last_a = i;
    }
    pthread_mutex_unlock(&g_mu);
    assert_true(first_b >= 0 && last_a >= 0);
    assert_true(first_b < last_a);
    event_base_free(base);
    seam_uninstall();
    evsf_disk_limits(4, 1024);
}

/* A cold transfer whose read-ahead is held does not hold up a timer or a
 * warm transfer on the same base. */
static void test_cold_does_not_block_loop(void **state) {
    (void)state;
    int fds_before = count_open_fds();
    struct event_base *base = event_base_new();
    xfer_t cold, warm;
    xfer_open(&cold, 'C');
    xfer_open(&warm, 'W');
    install(cold.file);
    gate_close();
    g_norder = 0;
    int fired = 0;
    struct event *timer = evtimer_new(base, on_timer, &fired);
    struct timeval ms = {0, 1000};
    assert_int_equal(xfer_start(&cold, base, 0), 0);
    evtimer_add(timer, &ms);
    assert_int_equal(xfer_start(&warm, base, 0), 0);
    assert_true(run_until(base, &warm.done.calls));
    assert_true(run_until(base, &fired));
    assert_int_equal(cold.done.calls, 0);
    wait_fetches(1);
    gate_open();
    assert_true(run_until(base, &cold.done.calls));
    assert_int_equal(g_norder, 3);
    assert_int_equal(g_order[2], 'C'); /* the timer and the warm transfer came first */
    assert_int_equal(fired, 1);
    xfer_finish(&cold, 0);
    xfer_finish(&warm, 0);
    assert_int_equal(seam_fetch_calls(), 1); /* 256 KiB: one chunk */
    assert_true(seam.resident.calls >= 2);
    assert_int_equal(seam.sendfile.bytes, 2 * (uint64_t)REGION); /* still zero-copy */
    event_free(timer);
    event_base_free(base);
    seam_uninstall();
    assert_int_equal(count_open_fds(), fds_before);
}

/* sf_cancel while the chunk is being read, then the caller closes its fd
 * at once: no done, and the disk thread read through a fd of its own that
 * was still open; every fd the library made is gone afterwards. */
static void test_cancel_in_flight(void **state) {
    (void)state;
    int fds_before = count_open_fds();
    struct event_base *base = event_base_new();
    xfer_t x;
    xfer_open(&x, 'X');
    install(x.file);
    gate_close();
    assert_int_equal(xfer_start(&x, base, 0), 0);
    wait_fetches(1);
    assert_int_equal(sf_cancel(x.t), 0);
    int file = x.file;
    close(file);
    x.file = -1;
    gate_open();
    wait_fetches_returned(1);
    for (int i = 0; i < 5; i++) event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(x.done.calls, 0);
    pthread_mutex_lock(&g_mu);
    assert_true(g_seen_fd >= 0);
    assert_int_not_equal(g_seen_fd, file);
    assert_int_equal(g_seen_fstat, 0); /* its own fd, open after the caller's close */
    pthread_mutex_unlock(&g_mu);
    xfer_abandon(&x, base, fds_before);
}

/* The file shrinks while its chunk is being read in: SF_ETRUNCATED with the
 * bytes that existed, no crash (the thread never touches the mapping). */
static void test_truncated_while_cold(void **state) {
    (void)state;
    struct event_base *base = event_base_new();
    xfer_t x;
    xfer_open(&x, 'X');
    install(x.file);
    pthread_mutex_lock(&g_mu);
    g_truncate_fd = x.file;
    g_truncate_to = 1000 + 100 * KiB;
    pthread_mutex_unlock(&g_mu);
    assert_int_equal(xfer_start(&x, base, 0), 0);
    assert_true(run_until(base, &x.done.calls));
    xfer_finish(&x, SF_ETRUNCATED);
    assert_true(x.done.body_sent <= 100 * KiB);
    event_base_free(base);
    seam_uninstall();
}

/* The stepping API: SF_STEP_SOURCE, and a wake-up fd that poll(2) sees
 * become readable when the chunk is in. */
static void test_step_source_poll(void **state) {
    (void)state;
    int fds_before = count_open_fds();
    xfer_t x;
    xfer_open(&x, 'S');
    install(x.file);
    gate_close();
    sf_region_t reg = {x.file, NULL, 1000, REGION};
    struct iovec hv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, NULL, NULL);
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(x.sender, &reg, &o, &job), 0);
    assert_int_equal(sf_job_step(job), SF_STEP_SOURCE);
    int wfd = sf_job_wait_fd(job);
    assert_true(wfd >= 0);
    assert_int_not_equal(wfd, x.file);
    assert_int_equal(sf_job_source_fd(job), x.file);
    struct pollfd p = {wfd, POLLIN, 0};
    assert_int_equal(poll(&p, 1, 0), 0); /* held at the gate: not readable */
    assert_int_equal(sf_job_step(job), SF_STEP_SOURCE);
    gate_open();
    int r = SF_STEP_SOURCE, sources = 0;
    for (int turns = 0; turns < 100000 && r > 0; turns++) {
        if (r == SF_STEP_SOURCE) {
            sources++;
            struct pollfd q = {sf_job_wait_fd(job), POLLIN, 0};
            assert_int_equal(poll(&q, 1, GUARD_SECONDS * 1000), 1);
        } else if (r == SF_STEP_WRITE) {
            struct pollfd q = {x.sender, POLLOUT, 0};
            assert_int_equal(poll(&q, 1, GUARD_SECONDS * 1000), 1);
        }
        r = sf_job_step(job);
    }
    assert_int_equal(r, SF_STEP_DONE);
    assert_true(sources >= 1);
    x.done.calls = 1;
    x.done.status = 0;
    x.done.body_sent = sf_job_body_sent(job);
    sf_job_free(job);
    shutdown(x.sender, SHUT_WR);
    xfer_finish(&x, 0);
    assert_int_equal(seam_fetch_calls(), 1);
    seam_uninstall();
    assert_int_equal(count_open_fds(), fds_before);
}

/* An edge-triggered loop (tokio) may still believe the socket writable
 * after a disk thread found it full.  The step after SF_STEP_WRITE asks the
 * socket: still full, it says SF_STEP_WRITE again by itself -- no hand-over,
 * no byte moved -- so such a loop waits instead of bouncing the job between
 * itself and a thread; once the peer reads, the job goes on. */
static void test_step_write_after_thread_found_full(void **state) {
    (void)state;
    const uint64_t count = 4 * MiB;
    int file = make_pattern_file(count, NULL);
    int s, r;
    socketpair_nb(&s, &r);
    install(file);
    sf_region_t reg = {file, NULL, 0, count};
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(s, &reg, NULL, &job), 0);
    int st = sf_job_step(job);
    for (int i = 0; i < 1000 && st == SF_STEP_SOURCE; i++) { /* nobody reads: the thread fills the socket */
        struct pollfd q = {sf_job_wait_fd(job), POLLIN, 0};
        assert_int_equal(poll(&q, 1, GUARD_SECONDS * 1000), 1);
        st = sf_job_step(job);
    }
    assert_int_equal(st, SF_STEP_WRITE);
    uint64_t sent = sf_job_body_sent(job);
    assert_true(sent > 0 && sent < count);
    int fetches = seam_fetch_calls(), sends = seam.sendfile.calls;
    for (int i = 0; i < 3; i++) { /* stale readiness: stepped while the socket is still full */
        assert_int_equal(sf_job_step(job), SF_STEP_WRITE);
        assert_true(sf_job_body_sent(job) == sent);
    }
    wait_disk_idle(); /* a thread handed the job would have sent by the time it let go of it */
    assert_true(seam.writable.calls >= 3);
    assert_int_equal(seam.sendfile.calls, sends); /* nothing was handed over */
    /* The check failing (any errno) is no reason to stop: the job is handed
     * over, and the thread's send says what the socket says. */
    seam.writable.fault = (seam_fault_t){.err = EINVAL, .first = seam.writable.calls + 1, .every = 1};
    assert_int_equal(sf_job_step(job), SF_STEP_SOURCE);
    struct pollfd w = {sf_job_wait_fd(job), POLLIN, 0};
    assert_int_equal(poll(&w, 1, GUARD_SECONDS * 1000), 1);
    assert_int_equal(sf_job_step(job), SF_STEP_WRITE); /* still full */
    assert_true(seam.writable.injected >= 1);
    st = SF_STEP_WRITE;
    reader_t rd = {.fd = r, .keep = 1};
    reader_start(&rd);
    for (int turns = 0; turns < 100000 && st > 0; turns++) {
        struct pollfd q = {st == SF_STEP_SOURCE ? sf_job_wait_fd(job) : s, st == SF_STEP_SOURCE ? POLLIN : POLLOUT, 0};
        assert_int_equal(poll(&q, 1, GUARD_SECONDS * 1000), 1);
        st = sf_job_step(job);
    }
    assert_int_equal(st, SF_STEP_DONE);
    assert_true(sf_job_body_sent(job) == count);
    sf_job_free(job);
    shutdown(s, SHUT_WR);
    reader_join(&rd);
    assert_true(wire_matches(rd.buf, rd.len, NULL, 0, count, NULL));
    assert_true(seam_fetch_calls() >= fetches);
    reader_free(&rd);
    seam_uninstall();
    close(s);
    close(r);
    close(file);
}

/* The worker's loop waits for the disk the same way. */
static void wdone(sf_transfer_t *t, int status, uint64_t body_sent, void *arg) {
    (void)t;
    xfer_t *x = arg;
    x->done.status = status;
    x->done.body_sent = body_sent;
    shutdown(x->sender, SHUT_WR);
    __atomic_store_n(&x->done.calls, 1, __ATOMIC_SEQ_CST);
}

static void test_worker_cold(void **state) {
    (void)state;
    xfer_t x;
    xfer_open(&x, 'W');
    install(x.file);
    gate_close();
    sf_worker_t *w = NULL;
    assert_int_equal(sf_worker_new(&w), 0);
    sf_region_t reg = {x.file, NULL, 1000, REGION};
    struct iovec hv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, NULL, NULL);
    assert_int_equal(sf_worker_submit(w, x.sender, &reg, &o, wdone, &x, NULL), 0);
    wait_fetches(1);
    assert_int_equal(__atomic_load_n(&x.done.calls, __ATOMIC_SEQ_CST), 0);
    gate_open();
    for (int i = 0; i < GUARD_SECONDS * 1000 && !__atomic_load_n(&x.done.calls, __ATOMIC_SEQ_CST); i++)
        usleep(1000);
    sf_worker_free(w);
    xfer_finish(&x, 0);
    seam_uninstall();
}

/* A cold transfer of many chunks to a slow socket (a socketpair: it fills
 * after a few KiB, so every chunk is handed over several times), on both
 * body methods: every sendfile / pread of the body runs on a disk thread,
 * none on the loop; head, body and tail arrive whole and in order. */
static void test_cold_sent_off_loop(void **state) {
    (void)state;
    static const unsigned flags[] = {SF_NO_SENDFILE, 0};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        const uint64_t off = 777, count = 5 * MiB + 3;
        int fds_before = count_open_fds();
        int file = make_pattern_file(off + count + 100, NULL);
        int s, r;
        socketpair_nb(&s, &r);
        install_body_notes(file);
        reader_t rd = {.keep = 1};
        done_rec_t d;
        sf_region_t reg = {file, NULL, off, count};
        struct iovec hv, tv;
        sf_options_t o;
        opts_with(&o, &hv, HEAD, &tv, "\r\ntail");
        o.flags = flags[i];
        assert_int_equal(transfer_collect(s, r, &reg, &o, &rd, &d), 0);
        assert_int_equal(d.status, 0);
        assert_true(d.body_sent == count);
        assert_true(wire_matches(rd.buf, rd.len, HEAD, off, count, "\r\ntail"));
        assert_int_equal(__atomic_load_n(&g_body_on_loop, __ATOMIC_SEQ_CST), 0);
        assert_true(__atomic_load_n(&g_body_off_loop, __ATOMIC_SEQ_CST) >= 3);
        /* The first chunk is read in; a thread reads the next ones as it sends
         * them, unless the socket filled right at a chunk's end. */
        assert_true(seam_fetch_calls() >= 1 && seam_fetch_calls() <= 3);
        if (flags[i] & SF_NO_SENDFILE) assert_int_equal(seam.sendfile.calls, 0);
        else assert_true(seam.sendfile.bytes == count);
        seam_uninstall();
        reader_free(&rd);
        close(s);
        close(r);
        close(file);
        assert_int_equal(count_open_fds(), fds_before);
    }
}

/* The first cold chunk is read in by a disk thread, which asks the kernel
 * for the next 4 MiB too; the thread then sends the whole region by itself
 * (a socket that never fills: sendfile is sunk), reading the chunks after
 * the first as it sends them: one read-in, no wake-up of the loop between
 * chunks, every sendfile off the loop, the region covered end to end. */
static void test_first_chunk_read_then_streamed(void **state) {
    (void)state;
    const uint64_t off = 1000, count = 9 * MiB + 5, chunk = SF_DEFAULT_MAX_CHUNK;
    int file = make_pattern_file(off + count + 3000, NULL);
    int s, r;
    socketpair_nb(&s, &r);
    install_body_notes(file);
    g_sink_fd = s;
    done_rec_t d;
    reader_t rd = {.keep = 1};
    sf_region_t reg = {file, NULL, off, count};
    assert_int_equal(transfer_collect(s, r, &reg, NULL, &rd, &d), 0);
    assert_int_equal(d.status, 0);
    assert_true(d.body_sent == count);
    assert_int_equal(rd.len, 0); /* all sunk */
    pthread_mutex_lock(&g_mu);
    int n = g_n_fetches;
    struct fetch_rec first = g_fetches[0];
    pthread_mutex_unlock(&g_mu);
    assert_int_equal(n, 1);
    assert_true(first.off == off && first.len == chunk && first.ahead == 2 * chunk);
    assert_int_equal(__atomic_load_n(&g_body_on_loop, __ATOMIC_SEQ_CST), 0);
    uint64_t at = off;
    for (int i = 0; i < seam.sendfile.logged; i++) {
        assert_true(seam.sendfile.log[i].off == at);
        assert_true(seam.sendfile.log[i].count <= chunk); /* no further than one chunk per call */
        at += (uint64_t)seam.sendfile.log[i].ret;
    }
    assert_true(at == off + count);
    assert_true(seam.sendfile.calls >= 5); /* 2 + 2 + 2 + 2 + 1 MiB + 5 */
    seam_uninstall();
    reader_free(&rd);
    close(s);
    close(r);
    close(file);
}

/* sf_cancel while a disk thread is in the middle of sending: cancel returns
 * only after that send did (the caller may write to the socket right after),
 * no done, and no byte leaves for this transfer afterwards. */
static void *open_send_gate_later(void *arg) {
    (void)arg;
    usleep(50 * 1000); /* only lets a cancel that does not wait be caught; never a failure by itself */
    send_gate_open();
    return NULL;
}

static void test_cancel_while_thread_sends(void **state) {
    (void)state;
    static const unsigned flags[] = {SF_NO_SENDFILE, 0};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        int fds_before = count_open_fds();
        struct event_base *base = event_base_new();
        xfer_t x;
        xfer_open(&x, 'X');
        install_body_notes(x.file);
        start_held_at_send(&x, base, flags[i]);
        pthread_t opener;
        assert_int_equal(pthread_create(&opener, NULL, open_send_gate_later, NULL), 0);
        assert_int_equal(sf_cancel(x.t), 0);
        /* The thread's send was over before sf_cancel returned. */
        assert_int_equal(__atomic_load_n(&g_send_released, __ATOMIC_SEQ_CST), 1);
        int calls = __atomic_load_n(&g_body_off_loop, __ATOMIC_SEQ_CST);
        pthread_join(opener, NULL);
        for (int k = 0; k < 5; k++) event_base_loop(base, EVLOOP_NONBLOCK);
        wait_disk_idle();
        assert_int_equal(__atomic_load_n(&g_body_off_loop, __ATOMIC_SEQ_CST), calls); /* nothing after */
        assert_int_equal(x.done.calls, 0);
        assert_int_equal(__atomic_load_n(&g_body_on_loop, __ATOMIC_SEQ_CST), 0);
        xfer_abandon(&x, base, fds_before);
    }
}

/* The peer goes away while a disk thread sends: the transfer ends with the
 * socket's error (EPIPE or ECONNRESET), reported on the loop; no SIGPIPE
 * (the process would die of it), on both body methods. */
static void test_peer_gone_while_thread_sends(void **state) {
    (void)state;
    static const unsigned flags[] = {SF_NO_SENDFILE, 0};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        struct event_base *base = event_base_new();
        xfer_t x;
        memset(&x, 0, sizeof x);
        x.tag = 'P';
        x.file = make_pattern_file(8 * MiB, NULL);
        socketpair_nb(&x.sender, &x.receiver);
        done_rec_init(&x.done, -1);
        install_body_notes(x.file);
        sf_region_t reg = {x.file, NULL, 0, 8 * MiB};
        sf_options_t o = {.struct_size = sizeof o, .flags = flags[i]};
        assert_int_equal(sf_send_async(base, x.sender, &reg, &o, on_done, &x, &x.t), 0);
        /* Nobody reads: the first hand-over fills the socket, then the peer closes. */
        for (int k = 0; k < GUARD_SECONDS * 1000; k++) {
            event_base_loop(base, EVLOOP_NONBLOCK);
            if (__atomic_load_n(&g_body_off_loop, __ATOMIC_SEQ_CST) >= 1 && evsf_disk_pending() == 0) break;
            usleep(1000);
        }
        for (int k = 0; k < 5; k++) event_base_loop(base, EVLOOP_NONBLOCK);
        assert_int_equal(x.done.calls, 0);
        close(x.receiver);
        assert_true(run_until(base, &x.done.calls));
        assert_true(x.done.status == -EPIPE || x.done.status == -ECONNRESET);
        assert_int_equal(__atomic_load_n(&g_body_on_loop, __ATOMIC_SEQ_CST), 0);
        assert_true(__atomic_load_n(&g_body_off_loop, __ATOMIC_SEQ_CST) >= 2);
        close(x.sender);
        close(x.file);
        event_base_free(base);
        seam_uninstall();
    }
}

/* SF_DISK_INLINE: no probe, no disk thread. */
static void test_disk_inline(void **state) {
    (void)state;
    struct event_base *base = event_base_new();
    xfer_t x;
    xfer_open(&x, 'I');
    install(-2);
    assert_int_equal(xfer_start(&x, base, SF_DISK_INLINE), 0);
    assert_true(run_until(base, &x.done.calls));
    xfer_finish(&x, 0);
    assert_int_equal(seam.resident.calls, 0);
    assert_int_equal(seam_fetch_calls(), 0);
    event_base_free(base);
    seam_uninstall();
}

/* The probe failing (ENOSYS is remembered: that runs last) never fails a
 * transfer: it is sent inline. */
static void test_probe_fails(void **state) {
    (void)state;
    static const int errs[] = {EBADF, EINVAL, EOPNOTSUPP, EFAULT, ENOSYS};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        struct event_base *base = event_base_new();
        xfer_t x;
        xfer_open(&x, 'P');
        install(-2);
        seam.resident.fault.err = errs[i];
        seam.resident.fault.first = 1;
        seam.resident.fault.every = 1;
        assert_int_equal(xfer_start(&x, base, 0), 0);
        assert_true(run_until(base, &x.done.calls));
        xfer_finish(&x, 0);
        assert_true(seam.resident.injected >= 1);
        assert_int_equal(seam_fetch_calls(), 0);
        event_base_free(base);
        seam_uninstall();
    }
    /* After ENOSYS the probe is not asked again in this process. */
    struct event_base *base = event_base_new();
    xfer_t x;
    xfer_open(&x, 'P');
    install(-2);
    assert_int_equal(xfer_start(&x, base, 0), 0);
    assert_true(run_until(base, &x.done.calls));
    xfer_finish(&x, 0);
    assert_int_equal(seam.resident.calls, 0);
    event_base_free(base);
    seam_uninstall();
}

/* Sends all `count` bytes of `file` over a fresh socketpair with `flags`
 * (no head or tail) and checks the status and every byte; the seam's
 * counters and log stay for the caller. */
static void send_whole_file(int file, uint64_t count, unsigned flags) {
    int s, r;
    socketpair_nb(&s, &r);
    reader_t rd = {.keep = 1};
    done_rec_t d;
    sf_region_t reg = {file, NULL, 0, count};
    sf_options_t o = {.struct_size = sizeof o, .flags = flags};
    assert_int_equal(transfer_collect(s, r, &reg, &o, &rd, &d), 0);
    assert_int_equal(d.status, 0);
    assert_true(wire_matches(rd.buf, rd.len, NULL, 0, count, NULL));
    reader_free(&rd);
    close(s);
    close(r);
}

/* A real cold file: written, flushed, evicted with POSIX_FADV_DONTNEED; the
 * real probe (cachestat or mincore; on the copy path the kernel's refusal
 * of a nowait read) must send it to a disk thread.  Skipped when the kernel
 * keeps the pages anyway. */
static void real_cold_file_case(unsigned flags) {
    char path[4096];
    int fd = make_pattern_file(8 * MiB, path);
    assert_int_equal(fsync(fd), 0);
    assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    seam_install();
    seam.real_nowait = 1;
    int cold = seam_real_resident(fd, 0, 8 * MiB) == 0;
    if (!cold) {
        seam_uninstall();
        close(fd);
        skip();
    }
    send_whole_file(fd, 8 * MiB, flags);
    if (flags & SF_NO_SENDFILE) {
        assert_int_equal(seam.resident.calls, 0); /* the nowait read was the probe */
        /* The loop never waited for the disk: each of its reads was a nowait
         * one, until one was refused and a disk thread took over.  (A refused
         * read starts the kernel's readahead; a loop slow enough -- valgrind
         * -- finds every page there on its next read and is never refused:
         * no disk thread then, and still no wait.) */
        int refused = 0;
        for (int i = 0; i < seam.pread.logged; i++) {
            const seam_call_t *e = &seam.pread.log[i];
            if (e->op == 1 && e->ret < 0) refused++;
            if (!refused) assert_int_equal(e->op, 1);
        }
        assert_true(refused == 0 || seam_fetch_calls() >= 1);
    } else {
        assert_true(seam_fetch_calls() >= 1);
    }
    close(fd);
    seam_uninstall();
}

static void test_real_cold_file(void **state) {
    (void)state;
    real_cold_file_case(0);
}

static void test_real_cold_file_copy_path(void **state) {
    (void)state;
    real_cold_file_case(SF_NO_SENDFILE); /* with seam.real_nowait */
}

/* The copy path's read is its own probe (a nowait pread): no resident()
 * call; the bytes before the first page not in memory go out from the loop,
 * the rest from a disk thread. */
static uint64_t g_cold_from;

static int cold_from_hook(int fd, uint64_t off, uint64_t len, int *ret) {
    (void)len;
    if (fd != g_cold_fd || off < g_cold_from) return 0;
    *ret = 0;
    return 1;
}

static void test_copy_read_is_the_probe(void **state) {
    (void)state;
    const uint64_t count = 3 * MiB;
    int file = make_pattern_file(count, NULL);
    install_body_notes(file);
    g_cold_from = 1 * MiB; /* a multiple of SF_COPY_BUFFER_SIZE: the loop's reads stop there */
    seam.resident_hook = cold_from_hook;
    send_whole_file(file, count, SF_NO_SENDFILE);
    assert_int_equal(seam.resident.calls, 0);
    assert_true(__atomic_load_n(&g_body_on_loop, __ATOMIC_SEQ_CST) >= 4); /* 1 MiB in 256 KiB reads */
    assert_true(__atomic_load_n(&g_body_off_loop, __ATOMIC_SEQ_CST) >= 1);
    assert_true(seam_fetch_calls() >= 1);
    /* Every read on the loop was below the cold offset; the first one at it was refused. */
    int refused = 0;
    for (int i = 0; i < seam.pread.logged; i++) {
        if (seam.pread.log[i].ret < 0) {
            assert_int_equal(seam.pread.log[i].err, EAGAIN);
            assert_true(seam.pread.log[i].off >= g_cold_from);
            refused++;
        }
    }
    assert_true(refused >= 1);
    close(file);
    seam_uninstall();
}

/* A file system that refuses nowait reads (tmpfs: EOPNOTSUPP; kernels before
 * 4.14: EINVAL): the copy path asks resident() instead, for the rest of the
 * transfer, and a cold file still goes to a disk thread. */
static void test_copy_path_without_nowait(void **state) {
    (void)state;
    static const int errs[] = {EOPNOTSUPP, EINVAL};
    for (size_t i = 0; i < 2; i++) {
        for (int cold = 0; cold < 2; cold++) {
            const uint64_t count = 1 * MiB;
            int file = make_pattern_file(count, NULL);
            install(cold ? file : -1);
            seam.pread.fault = (seam_fault_t){.err = errs[i], .first = 1, .times = 1};
            send_whole_file(file, count, SF_NO_SENDFILE);
            assert_int_equal(seam.pread.injected, 1);
            assert_true(seam.resident.calls >= 1);
            if (cold) assert_true(seam_fetch_calls() >= 1);
            else assert_int_equal(seam_fetch_calls(), 0);
            close(file);
            seam_uninstall();
        }
    }
}

/* After fork() the child has none of the parent's disk threads: its first
 * cold chunk starts its own, and the transfer completes. */
#if defined(__SANITIZE_THREAD__)
#define EVSF_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EVSF_TSAN 1
#endif
#endif

static void test_fork_child(void **state) {
    (void)state;
#ifdef EVSF_TSAN
    skip(); /* ThreadSanitizer cannot start threads in the child of a multi-threaded fork */
#endif
    /* Under memcheck the child's exit reports what the parent's threads left
     * in it (their stacks, "possibly lost") and exits 99: tests/memcheck.sh
     * says so with EVSF_MEMCHECK; the plain and sanitizer builds run it. */
    if (getenv("EVSF_MEMCHECK") != NULL) skip();
    assert_true(evsf_disk_threads() >= 1); /* the parent's, from the tests above */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int code = 0;
        if (evsf_disk_threads() != 0) code |= 1;
        int s, r;
        socketpair_nb(&s, &r);
        int fd = make_pattern_file(REGION, NULL);
        install(-2);
        done_rec_t d;
        reader_t rd = {.keep = 1};
        sf_region_t reg = {fd, NULL, 0, REGION};
        if (transfer_collect(s, r, &reg, NULL, &rd, &d) != 0 || d.status != 0) code |= 2;
        if (!wire_matches(rd.buf, rd.len, NULL, 0, REGION, NULL)) code |= 4;
        if (seam_fetch_calls() < 1 || evsf_disk_threads() < 1) code |= 8;
        reader_free(&rd);
        close(s);
        close(r);
        close(fd);
        files_cleanup();
        _exit(code);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* fork() while a disk thread is in the middle of a send: the child has no
 * such thread, and its copy of that transfer stopped mid-bookkeeping, so
 * there it ends with -ECANCELED (no hang, no byte from the child); the
 * parent's transfer goes on and completes whole. */
static void test_fork_during_thread_send(void **state) {
    (void)state;
#ifdef EVSF_TSAN
    skip();
#endif
    if (getenv("EVSF_MEMCHECK") != NULL) skip(); /* as test_fork_child */
    struct event_base *base = event_base_new();
    xfer_t x;
    xfer_open(&x, 'F');
    install_body_notes(x.file);
    start_held_at_send(&x, base, 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int code = 0;
        x.done.shut_fd = -1; /* the socket is the parent's too */
        if (event_reinit(base) != 0) code |= 1;
        if (!run_until(base, &x.done.calls)) code |= 2;
        if (x.done.status != -ECANCELED) code |= 4;
        _exit(code);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    send_gate_open();
    assert_true(run_until(base, &x.done.calls));
    xfer_finish(&x, 0);
    event_base_free(base);
    seam_uninstall();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_pool_full, teardown),
        cmocka_unit_test_teardown(test_transfers_take_turns, teardown),
        cmocka_unit_test_teardown(test_cold_does_not_block_loop, teardown),
        cmocka_unit_test_teardown(test_cancel_in_flight, teardown),
        cmocka_unit_test_teardown(test_truncated_while_cold, teardown),
        cmocka_unit_test_teardown(test_step_source_poll, teardown),
        cmocka_unit_test_teardown(test_worker_cold, teardown),
        cmocka_unit_test_teardown(test_step_write_after_thread_found_full, teardown),
        cmocka_unit_test_teardown(test_cold_sent_off_loop, teardown),
        cmocka_unit_test_teardown(test_first_chunk_read_then_streamed, teardown),
        cmocka_unit_test_teardown(test_cancel_while_thread_sends, teardown),
        cmocka_unit_test_teardown(test_peer_gone_while_thread_sends, teardown),
        cmocka_unit_test_teardown(test_disk_inline, teardown),
        cmocka_unit_test_teardown(test_real_cold_file, teardown),
        cmocka_unit_test_teardown(test_real_cold_file_copy_path, teardown),
        cmocka_unit_test_teardown(test_copy_read_is_the_probe, teardown),
        cmocka_unit_test_teardown(test_copy_path_without_nowait, teardown),
        cmocka_unit_test_teardown(test_fork_child, teardown),
        cmocka_unit_test_teardown(test_fork_during_thread_send, teardown),
        cmocka_unit_test_teardown(test_probe_fails, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
