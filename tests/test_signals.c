/* test_signals.c -- a peer that goes away yields -EPIPE / -ECONNRESET and
 * never a SIGPIPE, whatever the process's disposition; the thread's signal
 * mask, the pending set and the disposition are left as they were found. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "evsendfile.h"
#include "harness.h"
#include "seam.h"

static int teardown(void **state) {
    (void)state;
    seam_uninstall();
    files_cleanup();
    signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    return 0;
}

static int same_mask(const sigset_t *a, const sigset_t *b) {
    for (int s = 1; s < SIGRTMAX; s++)
        if (sigismember(a, s) != sigismember(b, s)) return 0;
    return 1;
}

static int sigpipe_pending(void) {
    sigset_t p;
    sigemptyset(&p);
    sigpending(&p);
    return sigismember(&p, SIGPIPE);
}

static void consume_sigpipe(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    const struct timespec zero = {0, 0};
    while (sigtimedwait(&set, NULL, &zero) == SIGPIPE) {
    }
}

/* Control experiment: on this kernel a plain sendfile to a socket whose
 * peer is gone DOES raise SIGPIPE -- so the tests below could fail. */
static void assert_kernel_raises_sigpipe(void) {
    int fd = make_pattern_file(4096, NULL);
    int s, r;
    socketpair_nb(&s, &r);
    close(r);
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    off_t off = 0;
    errno = 0;
    assert_int_equal(sendfile(s, fd, &off, 100), -1);
    assert_int_equal(errno, EPIPE);
    assert_true(sigpipe_pending());
    consume_sigpipe();
    assert_false(sigpipe_pending());
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(s);
    close(fd);
}

static volatile sig_atomic_t g_handler_runs;
static void on_sigpipe(int sig) {
    (void)sig;
    g_handler_runs++;
}

/* A peer that reads a little and closes.  Checks mask, pending set and
 * disposition around the transfer; returns the status. */
static int transfer_to_vanishing_peer(int tcp, unsigned flags, uint64_t size, uint64_t peer_reads) {
    int fd = make_pattern_file(size, NULL);
    int s, r;
    if (tcp) tcp_pair(&s, &r);
    else socketpair_nb(&s, &r);
    small_buffers(s, r, tcp ? 16384 : 4096);
    sf_options_t o;
    sf_options_init(&o);
    o.flags = flags;
    struct iovec head = {(void *)"HEAD\r\n", 6};
    o.head = &head;
    o.head_count = 1;
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};

    sigset_t mask_before, mask_after;
    pthread_sigmask(SIG_BLOCK, NULL, &mask_before);
    int pending_before = sigpipe_pending();
    struct sigaction act_before, act_after;
    sigaction(SIGPIPE, NULL, &act_before);

    reader_t rd = {.close_after = peer_reads};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, &o, &rd, &d), 0);
    assert_int_equal(d.calls, 1);
    assert_true(d.body_sent < size);

    pthread_sigmask(SIG_BLOCK, NULL, &mask_after);
    assert_true(same_mask(&mask_before, &mask_after));
    assert_int_equal(sigpipe_pending(), pending_before);
    sigaction(SIGPIPE, NULL, &act_after);
    assert_true(act_after.sa_handler == act_before.sa_handler);
    close(s);
    close(fd);
    return d.status;
}

static void test_sendfile_epipe_default_disposition(void **state) {
    (void)state;
    assert_kernel_raises_sigpipe();
    signal(SIGPIPE, SIG_DFL);
    seam_install();
    int st = transfer_to_vanishing_peer(0, 0, 8 * MiB, 100 * KiB);
    assert_int_equal(st, -EPIPE);
    /* the failing call really was sendfile (the one without MSG_NOSIGNAL) */
    const seam_call_t *last = &seam.sendfile.log[seam.sendfile.logged - 1];
    assert_int_equal(last->ret, -1);
    assert_int_equal(last->err, EPIPE);
}

static void test_tcp_peer_gone_default_disposition(void **state) {
    (void)state;
    signal(SIGPIPE, SIG_DFL);
    seam_install();
    int st = transfer_to_vanishing_peer(1, SF_FORCE_SENDFILE, 8 * MiB, 100 * KiB);
    assert_true(st == -EPIPE || st == -ECONNRESET);
    assert_true(seam.sendfile.calls >= 1);
}

/* A handler counts deliveries: there must be none, and it stays installed. */
static void test_handler_never_runs(void **state) {
    (void)state;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigpipe;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
    g_handler_runs = 0;
    assert_int_equal(transfer_to_vanishing_peer(0, 0, 8 * MiB, 64 * KiB), -EPIPE);
    assert_int_equal(transfer_to_vanishing_peer(1, 0, 8 * MiB, 64 * KiB) < 0, 1);
    assert_int_equal(g_handler_runs, 0);
}

static void test_ignored_disposition_kept(void **state) {
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(transfer_to_vanishing_peer(0, 0, 8 * MiB, 64 * KiB), -EPIPE);
    struct sigaction now;
    sigaction(SIGPIPE, NULL, &now);
    assert_true(now.sa_handler == SIG_IGN);
}

/* The caller already blocks SIGPIPE: still blocked after, and the SIGPIPE
 * the library's sendfile caused is not left pending. */
static void test_caller_blocked_sigpipe(void **state) {
    (void)state;
    signal(SIGPIPE, SIG_DFL);
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    seam_install();
    assert_int_equal(transfer_to_vanishing_peer(0, 0, 8 * MiB, 64 * KiB), -EPIPE);
    assert_int_equal(seam.sendfile.log[seam.sendfile.logged - 1].err, EPIPE);
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, NULL, &now);
    assert_true(sigismember(&now, SIGPIPE));
    assert_false(sigpipe_pending());
}

/* A SIGPIPE the caller had pending (and blocked) before is still there
 * after: the library consumes only what it caused. */
static void test_callers_pending_sigpipe_survives(void **state) {
    (void)state;
    signal(SIGPIPE, SIG_DFL);
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    pthread_kill(pthread_self(), SIGPIPE);
    assert_true(sigpipe_pending());
    seam_install();
    assert_int_equal(transfer_to_vanishing_peer(0, 0, 8 * MiB, 64 * KiB), -EPIPE);
    assert_int_equal(seam.sendfile.log[seam.sendfile.logged - 1].err, EPIPE);
    assert_true(sigpipe_pending());
    consume_sigpipe();
}

/* Deterministic form of what the vanishing-peer tests hit by chance: Linux
 * sendfile that moved some bytes and then met a closed peer returns the
 * short count as success, with SIGPIPE already raised.  The hook plays that
 * kernel: a short real sendfile, then a thread-directed SIGPIPE.  With the
 * default disposition, a SIGPIPE left behind kills this process. */
static int g_raise_on_call, g_raised_on_call;
static int short_with_sigpipe_hook(int out, int in, off_t *off, size_t count, ssize_t *ret) {
    if (seam.sendfile.calls < g_raise_on_call || g_raised_on_call) return 0;
    *ret = sendfile(out, in, off, count > 1000 ? 1000 : count);
    if (*ret > 0) { /* the kernel raises it only when the peer is gone, after moving bytes */
        g_raised_on_call = seam.sendfile.calls;
        pthread_kill(pthread_self(), SIGPIPE);
    }
    return 1;
}

static void test_short_sendfile_with_sigpipe(void **state) {
    (void)state;
    signal(SIGPIPE, SIG_DFL);
    int fd = make_pattern_file(1 * MiB, NULL);
    seam_install();
    g_raise_on_call = 2;
    g_raised_on_call = 0;
    seam.sendfile_hook = short_with_sigpipe_hook;
    seam.sendfile.fault.cap = 64 * KiB; /* several calls, so call 2 exists */
    int s, r;
    socketpair_nb(&s, &r);
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    reader_t rd = {.keep = 1};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, NULL, &rd, &d), 0);
    assert_int_equal(d.status, 0);
    assert_true(wire_matches(rd.buf, rd.len, NULL, 0, 1 * MiB, NULL));
    assert_true(g_raised_on_call >= 2);
    assert_int_equal(seam.sendfile.log[g_raised_on_call - 1].ret, 1000);
    assert_false(sigpipe_pending());
    reader_free(&rd);
    close(s);
    close(r);
    close(fd);
}

/* The copy path and the small path (sendmsg) fail the same quiet way. */
static void test_copy_and_small_paths_epipe(void **state) {
    (void)state;
    signal(SIGPIPE, SIG_DFL);
    seam_install();
    assert_int_equal(transfer_to_vanishing_peer(0, SF_NO_SENDFILE, 8 * MiB, 64 * KiB), -EPIPE);
    assert_int_equal(seam.sendfile.calls, 0);
    assert_int_equal(seam.sendmsg.log[seam.sendmsg.logged - 1].err, EPIPE);

    /* small path: the peer is gone before the first byte */
    int fd = make_pattern_file(1000, NULL);
    int s, r;
    socketpair_nb(&s, &r);
    close(r);
    struct event_base *base = event_base_new();
    done_rec_t d;
    done_rec_init(&d, -1);
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    assert_int_equal(sf_send_async(base, s, &reg, NULL, record_done, &d, NULL), 0);
    assert_true(run_until(base, &d.calls));
    assert_int_equal(d.status, -EPIPE);
    assert_int_equal(d.body_sent, 0);
    assert_false(sigpipe_pending());
    event_base_free(base);
    close(s);
    close(fd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_sendfile_epipe_default_disposition, teardown),
        cmocka_unit_test_teardown(test_tcp_peer_gone_default_disposition, teardown),
        cmocka_unit_test_teardown(test_handler_never_runs, teardown),
        cmocka_unit_test_teardown(test_ignored_disposition_kept, teardown),
        cmocka_unit_test_teardown(test_caller_blocked_sigpipe, teardown),
        cmocka_unit_test_teardown(test_callers_pending_sigpipe_survives, teardown),
        cmocka_unit_test_teardown(test_short_sendfile_with_sigpipe, teardown),
        cmocka_unit_test_teardown(test_copy_and_small_paths_epipe, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
