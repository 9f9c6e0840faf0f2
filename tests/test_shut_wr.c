/* test_shut_wr.c -- SF_SHUT_WR: after a transfer's last byte the library
 * shuts the socket's write side down itself, so the peer reads the whole
 * response and then EOF before done has run (done comes from the loop's next
 * turn).  Small bodies, the copy path and sendfile (with a tail: the cork
 * is released first), the stepping API; a failed transfer is not shut; a
 * failing shutdown is the status; the bufferevent integration refuses the
 * flag.  Over loopback TCP, with real files; faults through the seam. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "evsendfile.h"
#include "harness.h"
#include "seam.h"

#define HEAD "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
#define TAIL "\r\n0\r\n\r\n"
#define SMALL 4000

static int teardown(void **state) {
    (void)state;
    seam_uninstall();
    files_cleanup();
    return 0;
}

/* Reads what is already queued on non-blocking `r`: returns the bytes
 * (*len of them) and sets *eof when the stream ended, without waiting. */
static uint8_t *read_queued(int r, size_t *len, int *eof) {
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    *len = 0;
    *eof = 0;
    for (;;) {
        ssize_t n = recv(r, buf + *len, cap - *len, MSG_DONTWAIT);
        if (n > 0) {
            *len += (size_t)n;
            assert_true(*len < cap);
            continue;
        }
        if (n == 0) *eof = 1;
        else assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
        return buf;
    }
}

/* A small response: HEAD and SMALL bytes from `off` of a file of `file_len`
 * bytes, submitted with `flags` (SF_KNOWN_SIZE claims off + SMALL) on a fresh
 * loopback TCP pair.  The loop has not run: done has not either. */
typedef struct small {
    int s, r, fd;
    struct event_base *base;
    done_rec_t d;
} small_t;

static void small_start(small_t *x, uint64_t file_len, uint64_t off, unsigned flags) {
    tcp_pair(&x->s, &x->r);
    x->fd = make_pattern_file(file_len, NULL);
    struct iovec hv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, NULL, NULL);
    o.flags = flags;
    if (flags & SF_KNOWN_SIZE) o.file_size = off + SMALL;
    sf_region_t reg = {x->fd, NULL, off, SMALL};
    x->base = event_base_new();
    assert_non_null(x->base);
    done_rec_init(&x->d, -1);
    assert_int_equal(sf_send_async(x->base, x->s, &reg, &o, record_done, &x->d, NULL), 0);
}

static void small_end(small_t *x) {
    event_base_free(x->base);
    close(x->fd);
    close(x->s);
    close(x->r);
}

/* With or without the flag: what the peer has before the loop ran (so
 * before done). */
static void small_response(unsigned flags, int expect_eof) {
    small_t x;
    small_start(&x, SMALL + 7, 7, flags);
    assert_int_equal(x.d.calls, 0);  // done never runs inside the call

    size_t len = 0;
    int eof = 0;
    uint8_t *got = read_queued(x.r, &len, &eof);
    assert_true(wire_matches(got, len, HEAD, 7, SMALL, NULL));
    assert_int_equal(eof, expect_eof);
    free(got);

    assert_true(run_until(x.base, &x.d.calls));
    assert_int_equal(x.d.calls, 1);
    assert_int_equal(x.d.status, 0);
    assert_int_equal(x.d.body_sent, SMALL);
    small_end(&x);
}

static void test_small_response_ends_before_done(void **state) {
    (void)state;
    small_response(SF_SHUT_WR, 1);
}

/* The control: without the flag the stream stays open until the caller
 * ends it (the test above fails with the flag ignored). */
static void test_without_the_flag_the_stream_stays_open(void **state) {
    (void)state;
    small_response(0, 0);
}

static int g_shutdowns_at_done = -1;
static void done_counting_shutdowns(sf_transfer_t *t, int status, uint64_t body_sent, void *arg) {
    g_shutdowns_at_done = seam.shutdown.calls;
    record_done(t, status, body_sent, arg);
}

/* A large body (copy path, or sendfile with SF_FORCE_SENDFILE) with a tail
 * through a reader thread: the reader gets every byte and then EOF, which
 * only the library gave (done here does not shut; a missing EOF ends the
 * reader's read with its receive timeout instead of hanging the test). */
static void large_response(unsigned flags) {
    const uint64_t count = 3 * MiB + 11;
    int s, r;
    tcp_pair(&s, &r);
    struct timeval tv = {test_ms(20000) / 1000, 0};
    assert_int_equal(setsockopt(r, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    int fd = make_pattern_file(count + 5, NULL);
    struct iovec hv, tlv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tlv, TAIL);
    o.flags = flags | SF_SHUT_WR;
    sf_region_t reg = {fd, NULL, 5, count};
    struct event_base *base = event_base_new();
    assert_non_null(base);
    reader_t rd = {.fd = r, .keep = 1};
    reader_start(&rd);
    seam_install();
    done_rec_t d;
    done_rec_init(&d, -1);
    g_shutdowns_at_done = -1;
    assert_int_equal(sf_send_async(base, s, &reg, &o, done_counting_shutdowns, &d, NULL), 0);
    assert_true(run_until(base, &d.calls));
    reader_join(&rd);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.body_sent, count);
    assert_int_equal(g_shutdowns_at_done, 1);  // before done, once
    assert_int_equal(seam.shutdown.log[0].fd, s);
    assert_int_equal(seam.shutdown.log[0].level, SHUT_WR);
    assert_int_equal(rd.read_errno, 0);  // EOF, not the receive timeout
    assert_true(wire_matches(rd.buf, rd.len, HEAD, 5, count, TAIL));
    if (flags & SF_FORCE_SENDFILE) assert_true(seam.sendfile.calls > 0);
    else assert_int_equal(seam.sendfile.calls, 0);
    assert_int_equal(tcp_cork_is_on(s), 0);
    seam_uninstall();
    reader_free(&rd);
    event_base_free(base);
    close(fd);
    close(s);
    close(r);
}

static void test_copy_path_ends_after_the_last_byte(void **state) {
    (void)state;
    large_response(0);
}

static void test_sendfile_path_ends_after_the_tail(void **state) {
    (void)state;
    large_response(SF_FORCE_SENDFILE);
}

/* The stepping API: the step that says SF_STEP_DONE has shut the socket. */
static void test_stepping_api_shuts_at_done(void **state) {
    (void)state;
    int s, r;
    tcp_pair(&s, &r);
    int fd = make_pattern_file(SMALL, NULL);
    struct iovec hv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, NULL, NULL);
    o.flags = SF_SHUT_WR;
    sf_region_t reg = {fd, NULL, 0, SMALL};
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(s, &reg, &o, &job), 0);
    size_t len = 0;
    int eof = 0;
    uint8_t *got = read_queued(r, &len, &eof);
    assert_int_equal(len + (size_t)eof, 0);  // nothing before the first step
    free(got);
    assert_int_equal(sf_job_step(job), SF_STEP_DONE);
    got = read_queued(r, &len, &eof);
    assert_true(wire_matches(got, len, HEAD, 0, SMALL, NULL));
    assert_int_equal(eof, 1);
    free(got);
    assert_int_equal(sf_job_step(job), SF_STEP_DONE);  // asked again: the same, no second shutdown
    sf_job_free(job);
    close(fd);
    close(s);
    close(r);
}

/* A transfer that fails is not shut: the caller decides (a reset, a
 * close).  The file is one byte shorter than the size handed in. */
static void test_a_failed_transfer_is_not_shut(void **state) {
    (void)state;
    seam_install();
    small_t x;
    small_start(&x, SMALL - 1, 0, SF_SHUT_WR | SF_KNOWN_SIZE);
    assert_true(run_until(x.base, &x.d.calls));
    assert_int_equal(x.d.status, SF_ETRUNCATED);
    assert_int_equal(x.d.body_sent, SMALL - 1);
    assert_int_equal(seam.shutdown.calls, 0);
    size_t len = 0;
    int eof = 0;
    free(read_queued(x.r, &len, &eof));
    assert_int_equal(eof, 0);
    small_end(&x);
}

/* The bytes went out but the shutdown failed (the peer reset the
 * connection in between): that is the status, body_sent counts the bytes. */
static void test_a_failing_shutdown_is_the_status(void **state) {
    (void)state;
    seam_install();
    seam.shutdown.fault.err = ENOTCONN;
    seam.shutdown.fault.first = 1;
    seam.shutdown.fault.times = 1;
    small_t x;
    small_start(&x, SMALL, 0, SF_SHUT_WR);
    assert_true(run_until(x.base, &x.d.calls));
    assert_int_equal(seam.shutdown.injected, 1);
    assert_int_equal(x.d.status, -ENOTCONN);
    assert_int_equal(x.d.body_sent, SMALL);
    small_end(&x);
}

static void never_done(sf_transfer_t *t, int status, uint64_t body_sent, void *arg) {
    (void)t, (void)status, (void)body_sent, (void)arg;
    fail_msg("done of a refused transfer");
}

/* A bufferevent owns the end of its stream (its own output may follow). */
static void test_bufferevent_refuses_the_flag(void **state) {
    (void)state;
    int s, r;
    tcp_pair(&s, &r);
    int fd = make_pattern_file(SMALL, NULL);
    struct event_base *base = event_base_new();
    assert_non_null(base);
    struct bufferevent *bev = bufferevent_socket_new(base, s, 0);
    assert_non_null(bev);
    sf_options_t o;
    sf_options_init(&o);
    o.flags = SF_SHUT_WR;
    sf_region_t reg = {fd, NULL, 0, SMALL};
    assert_int_equal(sf_bufferevent_send(bev, &reg, &o, never_done, NULL, NULL), -EINVAL);
    bufferevent_free(bev);
    event_base_free(base);
    close(fd);
    close(s);
    close(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_small_response_ends_before_done, teardown),
        cmocka_unit_test_teardown(test_without_the_flag_the_stream_stays_open, teardown),
        cmocka_unit_test_teardown(test_copy_path_ends_after_the_last_byte, teardown),
        cmocka_unit_test_teardown(test_sendfile_path_ends_after_the_tail, teardown),
        cmocka_unit_test_teardown(test_stepping_api_shuts_at_done, teardown),
        cmocka_unit_test_teardown(test_a_failed_transfer_is_not_shut, teardown),
        cmocka_unit_test_teardown(test_a_failing_shutdown_is_the_status, teardown),
        cmocka_unit_test_teardown(test_bufferevent_refuses_the_flag, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
