/* test_errors.c -- everything that is refused or goes wrong: every
 * synchronous error of the header (done never runs, no fd leaks, nothing
 * written), a file that shrinks while it is sent, read errors, the error
 * names and texts, sf_can_use and the version. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/tls.h>
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

#define HEAD "HTTP/1.1 200 OK\r\nContent-Length: 4194304\r\n\r\n"
#define TAIL "TAIL-MUST-NOT-ARRIVE"

static int teardown(void **state) {
    (void)state;
    seam_uninstall();
    files_cleanup();
    return 0;
}

/* ------------------------------------------------- synchronous errors */

struct bad_case {
    const char *what;
    int sock;
    sf_region_t region;
    const sf_options_t *opts;
    int want;
};

static int g_worker_done_calls;
static void count_worker_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    (void)t, (void)status, (void)sent, (void)arg;
    __atomic_add_fetch(&g_worker_done_calls, 1, __ATOMIC_SEQ_CST);
}

/* The same refusal from all three entry points; nothing leaks, nothing is
 * written to `peer`'s socket, done never runs. */
static void expect_refused(const struct bad_case *c, struct event_base *base, sf_worker_t *w, int peer) {
    int before = count_open_fds();
    done_rec_t d;
    done_rec_init(&d, -1);
    sf_transfer_t *t = NULL;
    int rc = sf_send_async(base, c->sock, &c->region, c->opts, record_done, &d, &t);
    if (rc != c->want) fail_msg("%s: sf_send_async returned %d (%s), want %d (%s)", c->what, rc,
                                sf_err_name(rc), c->want, sf_err_name(c->want));
    assert_null(t);
    sf_job_t *job = NULL;
    rc = sf_job_new(c->sock, &c->region, c->opts, &job);
    if (rc != c->want) fail_msg("%s: sf_job_new returned %d, want %d", c->what, rc, c->want);
    assert_null(job);
    uint64_t ticket = 0;
    rc = sf_worker_submit(w, c->sock, &c->region, c->opts, count_worker_done, NULL, &ticket);
    if (rc != c->want) fail_msg("%s: sf_worker_submit returned %d, want %d", c->what, rc, c->want);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(d.calls, 0);
    if (count_open_fds() != before) fail_msg("%s: fd count %d -> %d", c->what, before, count_open_fds());
    if (peer >= 0) {
        char b;
        assert_int_equal(recv(peer, &b, 1, MSG_DONTWAIT), -1);
        assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    }
}

static void test_synchronous_errors(void **state) {
    (void)state;
    char path[PATH_MAX], wo_path[PATH_MAX];
    int fd = make_pattern_file(100000, path);
    int wo_fd = make_pattern_file(10, wo_path);
    close(wo_fd);
    wo_fd = open(wo_path, O_WRONLY | O_CLOEXEC);
    int s, r;
    socketpair_nb(&s, &r);
    int ts, tr;
    tcp_pair(&ts, &tr);
    /* An fd number nothing here will reuse (the lowest free one would be). */
    const int closed_fd = 999;
    assert_int_equal(fcntl(closed_fd, F_GETFD), -1);
    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int bs, br;
    socketpair_nb(&bs, &br);
    set_nonblocking(bs, 0);
    int dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int path_fd = open(path, O_PATH | O_CLOEXEC);
    int p[2];
    assert_int_equal(pipe(p), 0);
    int sock_src, sock_src_peer;
    socketpair_nb(&sock_src, &sock_src_peer);
    struct iovec iov_null_base = {NULL, 5};
    sf_options_t o_small, o_neg_head, o_neg_tail, o_null_head, o_null_tail, o_bad_iov, o_tls, o_zero;
    sf_options_init(&o_small);
    o_small.struct_size = 8;
    sf_options_init(&o_zero);
    o_zero.struct_size = 0;
    sf_options_init(&o_neg_head);
    o_neg_head.head_count = -1;
    sf_options_init(&o_neg_tail);
    o_neg_tail.tail_count = -2;
    sf_options_init(&o_null_head);
    o_null_head.head_count = 1;
    sf_options_init(&o_null_tail);
    o_null_tail.tail_count = 3;
    sf_options_init(&o_bad_iov);
    o_bad_iov.head = &iov_null_base;
    o_bad_iov.head_count = 1;
    sf_options_init(&o_tls);
    o_tls.flags = SF_TLS;
    const sf_region_t ok = {fd, NULL, 0, SF_COUNT_TO_EOF};

    const struct bad_case cases[] = {
        {"struct_size 8", s, ok, &o_small, -EINVAL},
        {"struct_size 0", s, ok, &o_zero, -EINVAL},
        {"head_count < 0", s, ok, &o_neg_head, -EINVAL},
        {"tail_count < 0", s, ok, &o_neg_tail, -EINVAL},
        {"NULL head with count", s, ok, &o_null_head, -EINVAL},
        {"NULL tail with count", s, ok, &o_null_tail, -EINVAL},
        {"iovec with NULL base", s, ok, &o_bad_iov, -EINVAL},
        {"fd -1, path NULL", s, {-1, NULL, 0, 10}, NULL, -EINVAL},
        {"fd -7", s, {-7, path, 0, 10}, NULL, -EINVAL},
        {"closed socket", closed_fd, ok, NULL, -EBADF},
        {"negative socket", -1, ok, NULL, -EBADF},
        {"not a socket", fd, ok, NULL, -ENOTSOCK},
        {"UDP socket", udp, ok, NULL, -EPROTOTYPE},
        {"blocking socket", bs, ok, NULL, SF_EBLOCKING},
        {"SF_TLS on plain TCP", ts, ok, &o_tls, SF_ENOKTLS},
        {"SF_TLS on a socketpair", s, ok, &o_tls, SF_ENOKTLS},
        {"directory fd", s, {dir, NULL, 0, SF_COUNT_TO_EOF}, NULL, -EISDIR},
        {"directory path", s, {-1, "/tmp", 0, SF_COUNT_TO_EOF}, NULL, -EISDIR},
        {"socket as source", s, {sock_src, NULL, 0, 10}, NULL, -EINVAL},
        {"write-only fd", s, {wo_fd, NULL, 0, 1}, NULL, -EBADF},
        {"pipe write end", s, {p[1], NULL, 0, 1}, NULL, -EBADF},
        {"closed source fd", s, {closed_fd, NULL, 0, 1}, NULL, -EBADF},
        {"O_PATH fd (not open for reading)", s, {path_fd, NULL, 0, 1}, NULL, -EBADF},
        {"offset beyond end", s, {fd, NULL, 100001, SF_COUNT_TO_EOF}, NULL, -ERANGE},
        {"offset beyond end, count 0", s, {fd, NULL, 100001, 0}, NULL, -ERANGE},
        {"count past end", s, {fd, NULL, 0, 100001}, NULL, -ERANGE},
        {"offset+count past end", s, {fd, NULL, 99999, 2}, NULL, -ERANGE},
        {"offset+count wraps", s, {fd, NULL, 2, UINT64_MAX - 1}, NULL, -ERANGE},
        {"huge offset", s, {fd, NULL, UINT64_MAX - 5, 1}, NULL, -ERANGE},
        {"count past end, by path", s, {-1, path, 5, 100000}, NULL, -ERANGE},
        {"pipe with offset", s, {p[0], NULL, 1, 10}, NULL, -ESPIPE},
        {"char device with offset", s, {-1, "/dev/zero", 3, 10}, NULL, -ESPIPE},
        {"missing path", s, {-1, "/nonexistent/evsf/x", 0, 1}, NULL, -ENOENT},
    };

    struct event_base *base = event_base_new();
    sf_worker_t *w = NULL;
    assert_int_equal(sf_worker_new(&w), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_refused(&cases[i], base, w, cases[i].sock == s ? r : -1);

    /* NULL arguments */
    done_rec_t d;
    done_rec_init(&d, -1);
    assert_int_equal(sf_send_async(NULL, s, &ok, NULL, record_done, &d, NULL), -EINVAL);
    assert_int_equal(sf_send_async(base, s, NULL, NULL, record_done, &d, NULL), -EINVAL);
    assert_int_equal(sf_send_async(base, s, &ok, NULL, NULL, &d, NULL), -EINVAL);
    assert_int_equal(sf_job_new(s, NULL, NULL, &(sf_job_t *){NULL}), -EINVAL);
    assert_int_equal(sf_job_new(s, &ok, NULL, NULL), -EINVAL);
    assert_int_equal(sf_worker_submit(NULL, s, &ok, NULL, count_worker_done, NULL, NULL), -EINVAL);
    assert_int_equal(sf_worker_submit(w, s, NULL, NULL, count_worker_done, NULL, NULL), -EINVAL);
    assert_int_equal(sf_worker_submit(w, s, &ok, NULL, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(sf_cancel(NULL), -EINVAL);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(d.calls, 0);

    /* The valid edge cases next to the refused ones are accepted. */
    const sf_region_t at_end = {fd, NULL, 100000, 0}, to_end = {fd, NULL, 99999, 1};
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(s, &at_end, NULL, &job), 0);
    sf_job_free(job);
    assert_int_equal(sf_job_new(s, &to_end, NULL, &job), 0);
    sf_job_free(job);
    unsigned char big_opts[sizeof(sf_options_t) + 32];
    memset(big_opts, 0, sizeof big_opts);
    sf_options_t grown;
    sf_options_init(&grown);
    grown.struct_size = sizeof big_opts; /* a newer caller's larger struct */
    memcpy(big_opts, &grown, sizeof grown);
    assert_int_equal(sf_job_new(s, &ok, (const sf_options_t *)(void *)big_opts, &job), 0);
    sf_job_free(job);

    sf_worker_free(w);
    assert_int_equal(__atomic_load_n(&g_worker_done_calls, __ATOMIC_SEQ_CST), 0);
    event_base_free(base);
    int fds[] = {fd, wo_fd, s, r, ts, tr, udp, bs, br, dir, path_fd, p[0], p[1], sock_src, sock_src_peer};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) close(fds[i]);
}

/* ----------------------------------------------- file shrinks mid-way */

static int g_trunc_fd;
static uint64_t g_trunc_after, g_trunc_to;
static int g_truncated;

static void maybe_truncate(uint64_t moved) {
    if (!g_truncated && moved >= g_trunc_after) {
        assert_int_equal(ftruncate(g_trunc_fd, (off_t)g_trunc_to), 0);
        g_truncated = 1;
    }
}

static int trunc_sendfile_hook(int out, int in, off_t *off, size_t count, ssize_t *ret) {
    (void)out, (void)in, (void)off, (void)count, (void)ret;
    maybe_truncate(seam.sendfile.bytes);
    return 0; /* the real call follows */
}

static int trunc_pread_hook(int fd, void *buf, size_t count, off_t off, ssize_t *ret) {
    (void)fd, (void)buf, (void)count, (void)off, (void)ret;
    maybe_truncate(seam.pread.bytes);
    return 0;
}

static int count_zero_returns(const seam_channel_t *c) {
    int n = 0;
    for (int i = 0; i < c->logged; i++) n += c->log[i].ret == 0;
    return n;
}

/* The file shrinks to `to` after `after` region bytes: SF_ETRUNCATED, the
 * true body_sent, exactly those bytes on the wire, no tail, and a single
 * 0 return (no looping on it). */
static void shrink_case(unsigned flags, uint64_t after, uint64_t to) {
    const uint64_t size = 4 * MiB, off = 1000;
    int fd = make_pattern_file(size, NULL);
    g_trunc_fd = fd;
    g_trunc_after = after;
    g_trunc_to = to;
    g_truncated = 0;
    seam_install();
    seam.sendfile_hook = trunc_sendfile_hook;
    seam.pread_hook = trunc_pread_hook;
    /* Small steps, so no single call runs from below `after` past `to`
     * (with a reader draining, one AF_UNIX sendfile can move megabytes). */
    seam.sendfile.fault.cap = 64 * KiB;
    int s, r;
    socketpair_nb(&s, &r);
    small_buffers(s, r, 65536);
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    o.flags = flags;
    sf_region_t reg = {fd, NULL, off, SF_COUNT_TO_EOF};
    reader_t rd = {.keep = 1};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, &o, &rd, &d), 0);
    assert_true(g_truncated);
    assert_int_equal(d.status, SF_ETRUNCATED);
    uint64_t want = to > off ? to - off : 0;
    if (want < after) want = (flags & SF_NO_SENDFILE) ? seam.pread.bytes : seam.sendfile.bytes;
    assert_int_equal(d.body_sent, want);
    assert_true(wire_matches(rd.buf, rd.len, HEAD, off, want, NULL));
    const seam_channel_t *c = (flags & SF_NO_SENDFILE) ? &seam.pread : &seam.sendfile;
    assert_int_equal(count_zero_returns(c), 1);
    assert_true(c->calls < 2000);
    reader_free(&rd);
    close(s);
    close(r);
    close(fd);
    seam_uninstall();
}

static void test_shrink_during_sendfile(void **state) {
    (void)state;
    shrink_case(0, 1 * MiB, 2 * MiB + 7);
}

static void test_shrink_below_sent_during_sendfile(void **state) {
    (void)state;
    shrink_case(0, 1 * MiB, 0);
}

static void test_shrink_during_copy(void **state) {
    (void)state;
    shrink_case(SF_NO_SENDFILE, 1 * MiB, 3 * MiB + 1);
}

/* Small path: the file shrinks between submit and its one read (the seam
 * truncates it right before the first pread, wherever that runs). */
static void test_shrink_small_body(void **state) {
    (void)state;
    int fd = make_pattern_file(10000, NULL);
    g_trunc_fd = fd;
    g_trunc_after = 0;
    g_trunc_to = 5000;
    g_truncated = 0;
    seam_install();
    seam.pread_hook = trunc_pread_hook;
    int s, r;
    socketpair_nb(&s, &r);
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    sf_region_t reg = {fd, NULL, 100, 8000};
    struct event_base *base = event_base_new();
    done_rec_t d;
    done_rec_init(&d, s);
    assert_int_equal(sf_send_async(base, s, &reg, &o, record_done, &d, NULL), 0);
    reader_t rd = {.fd = r, .keep = 1};
    reader_start(&rd);
    assert_true(run_until(base, &d.calls));
    reader_join(&rd);
    seam_uninstall();
    assert_int_equal(g_truncated, 1);
    assert_int_equal(d.status, SF_ETRUNCATED);
    assert_int_equal(d.body_sent, 4900);
    assert_true(wire_matches(rd.buf, rd.len, HEAD, 100, 4900, NULL));
    reader_free(&rd);
    event_base_free(base);
    close(s);
    close(r);
    close(fd);
}

/* The size is read once, at submit: a file that grows meanwhile still
 * yields exactly the region it had (no more bytes than the header promised). */
static int g_grow_fd, g_grown;
static int grow_hook(int out, int in, off_t *off, size_t count, ssize_t *ret) {
    (void)out, (void)in, (void)off, (void)count, (void)ret;
    if (!g_grown && seam.sendfile.bytes >= 256 * KiB) {
        write_pattern_at(g_grow_fd, 1 * MiB, 1 * MiB);
        g_grown = 1;
    }
    return 0;
}

static void test_growing_file_sends_size_at_submit(void **state) {
    (void)state;
    int fd = make_pattern_file(1 * MiB, NULL);
    g_grow_fd = fd;
    g_grown = 0;
    seam_install();
    seam.sendfile_hook = grow_hook;
    seam.sendfile.fault.cap = 64 * KiB; /* several calls, so the hook gets its turn */
    int s, r;
    socketpair_nb(&s, &r);
    small_buffers(s, r, 65536);
    sf_region_t reg = {fd, NULL, 100, SF_COUNT_TO_EOF};
    reader_t rd = {.keep = 1};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, NULL, &rd, &d), 0);
    assert_true(g_grown);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.body_sent, 1 * MiB - 100);
    assert_true(wire_matches(rd.buf, rd.len, NULL, 100, 1 * MiB - 100, NULL));
    reader_free(&rd);
    close(s);
    close(r);
    close(fd);
}

/* A read error of the source is the transfer's status. */
static void test_read_error_is_reported(void **state) {
    (void)state;
    int fd = make_pattern_file(2 * MiB, NULL);
    seam_install();
    seam.pread.fault = (seam_fault_t){.err = EIO, .first = 3};
    int s, r;
    socketpair_nb(&s, &r);
    sf_options_t o;
    sf_options_init(&o);
    o.flags = SF_NO_SENDFILE;
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    reader_t rd = {.keep = 1};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, &o, &rd, &d), 0);
    assert_int_equal(d.status, -EIO);
    assert_int_equal(seam.pread.injected, 1);
    /* What the two good reads got onto the socket, exactly. */
    assert_true(d.body_sent > 0 && d.body_sent <= 2 * SF_COPY_BUFFER_SIZE);
    assert_true(wire_matches(rd.buf, rd.len, NULL, 0, d.body_sent, NULL));
    reader_free(&rd);
    close(s);
    close(r);
    close(fd);
}

/* ------------------------------------------------------ names, texts */

static void test_error_names_and_texts(void **state) {
    (void)state;
    const struct {
        int code;
        const char *name;
    } lib[] = {{SF_ETRUNCATED, "SF_ETRUNCATED"}, {SF_ETIMEDOUT, "SF_ETIMEDOUT"},
               {SF_EBLOCKING, "SF_EBLOCKING"}, {SF_ENOKTLS, "SF_ENOKTLS"}};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(sf_err_name(lib[i].code), lib[i].name);
        const char *t = sf_err_text(lib[i].code);
        assert_non_null(t);
        assert_true(strlen(t) > 5);
        assert_string_not_equal(t, "unknown error");
        for (size_t j = 0; j < i; j++) assert_string_not_equal(t, sf_err_text(lib[j].code));
        assert_true(lib[i].code < -4095); /* collides with no errno */
    }
    const struct {
        int code;
        const char *name;
    } errs[] = {{-EPIPE, "EPIPE"},     {-ECONNRESET, "ECONNRESET"}, {-EINVAL, "EINVAL"},
                {-EBADF, "EBADF"},     {-ENOTSOCK, "ENOTSOCK"},     {-EPROTOTYPE, "EPROTOTYPE"},
                {-EISDIR, "EISDIR"},   {-ERANGE, "ERANGE"},         {-ESPIPE, "ESPIPE"},
                {-ENOENT, "ENOENT"},   {-EACCES, "EACCES"},         {-ENOMEM, "ENOMEM"},
                {-EALREADY, "EALREADY"}, {-EIO, "EIO"},            {-EAGAIN, "EAGAIN"}};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        assert_string_equal(sf_err_name(errs[i].code), errs[i].name);
        assert_string_not_equal(sf_err_text(errs[i].code), "unknown error");
    }
    assert_string_equal(sf_err_name(0), "OK");
    /* errno values outside the table still get a text; junk gets a fallback */
    assert_string_equal(sf_err_text(-EHOSTUNREACH), strerror(EHOSTUNREACH));
    /* every errno done can report has its symbolic name, table or not */
    assert_string_equal(sf_err_name(-EHOSTUNREACH), "EHOSTUNREACH");
    assert_string_equal(sf_err_name(-ENOBUFS), "ENOBUFS");
    assert_string_equal(sf_err_name(-EOPNOTSUPP), "EOPNOTSUPP");
    assert_string_equal(sf_err_name(-ENOTCONN), "ENOTCONN");
    const int junk[] = {12345, -29999, -30005, -4000, INT_MIN, INT_MAX, 1};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        assert_non_null(sf_err_text(junk[i]));
        assert_string_equal(sf_err_name(junk[i]), "UNKNOWN");
    }
    /* static text, never a per-thread "Unknown error N" buffer (memcheck
     * counts that one as an allocation) */
    assert_string_equal(sf_err_text(-4000), "unknown error");
}

static void test_can_use(void **state) {
    (void)state;
    int fd = make_pattern_file(10, NULL);
    int s, r, ts, tr;
    socketpair_nb(&s, &r);
    tcp_pair(&ts, &tr);
    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const int closed = 999;
    assert_int_equal(fcntl(closed, F_GETFD), -1);
    assert_int_equal(sf_can_use(-1, 0), -EBADF);
    assert_int_equal(sf_can_use(closed, 0), -EBADF);
    assert_int_equal(sf_can_use(fd, 0), 0);
    assert_int_equal(sf_can_use(udp, 0), 0);
    assert_int_equal(sf_can_use(s, 0), 1);
    assert_int_equal(sf_can_use(ts, 0), 1);
    assert_int_equal(sf_can_use(ts, SF_NO_CORK), 1);
    assert_int_equal(sf_can_use(ts, SF_NO_SENDFILE), 0);
    assert_int_equal(sf_can_use(ts, SF_TLS), 0); /* no kTLS on a plain socket */
    /* Where sf_send_async would refuse, or the transfer could not run: 0. */
    set_nonblocking(ts, 0);
    assert_int_equal(sf_can_use(ts, 0), 0); /* blocking: SF_EBLOCKING */
    set_nonblocking(ts, 1);
    int unconnected = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_int_equal(sf_can_use(unconnected, 0), 0);
    /* The checks are the engine's own, through the seam. */
    seam_install();
    assert_int_equal(sf_can_use(ts, 0), 1);
    assert_true(seam.fcntl.calls >= 1 && seam.getpeername.calls == 1);
    seam.getpeername.fault = (seam_fault_t){.err = ENOTCONN, .first = 1};
    assert_int_equal(sf_can_use(ts, 0), 0);
    seam_uninstall();
    int fds[] = {fd, s, r, ts, tr, udp, unconnected};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) close(fds[i]);
}

static void test_version_and_options_init(void **state) {
    (void)state;
    assert_int_equal(sf_version(), (SF_VERSION_MAJOR << 16) | (SF_VERSION_MINOR << 8) | SF_VERSION_PATCH);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", SF_VERSION_MAJOR, SF_VERSION_MINOR, SF_VERSION_PATCH);
    assert_string_equal(sf_version_text(), want);
    sf_options_t o;
    memset(&o, 0xa5, sizeof o);
    sf_options_init(&o);
    assert_int_equal(o.struct_size, sizeof o);
    assert_null(o.head);
    assert_null(o.tail);
    assert_int_equal(o.head_count, 0);
    assert_int_equal(o.tail_count, 0);
    assert_int_equal(o.max_chunk, SF_DEFAULT_MAX_CHUNK);
    assert_int_equal(o.idle_timeout_ms, 0);
    assert_int_equal(o.flags, 0);
    sf_options_init(NULL); /* tolerated */
}

/* With kernel TLS transmit really active, SF_TLS is accepted and sendfile
 * is allowed.  Needs the kernel's tls module: skipped where it is absent. */
static void test_tls_with_ktls_active(void **state) {
    (void)state;
    int s, r;
    tcp_pair(&s, &r);
    if (setsockopt(s, IPPROTO_TCP, TCP_ULP, "tls", sizeof "tls") != 0) {
        close(s);
        close(r);
        skip(); /* no tls ULP in this kernel */
    }
    struct tls12_crypto_info_aes_gcm_128 ci;
    memset(&ci, 0, sizeof ci);
    ci.info.version = TLS_1_2_VERSION;
    ci.info.cipher_type = TLS_CIPHER_AES_GCM_128;
    assert_int_equal(setsockopt(s, SOL_TLS, TLS_TX, &ci, sizeof ci), 0);
    assert_int_equal(sf_can_use(s, SF_TLS), 1);
    int fd = make_pattern_file(100000, NULL);
    sf_options_t o;
    sf_options_init(&o);
    o.flags = SF_TLS;
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(s, &reg, &o, &job), 0);
    sf_job_free(job);
    close(fd);
    close(s);
    close(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_synchronous_errors, teardown),
        cmocka_unit_test_teardown(test_shrink_during_sendfile, teardown),
        cmocka_unit_test_teardown(test_shrink_below_sent_during_sendfile, teardown),
        cmocka_unit_test_teardown(test_shrink_during_copy, teardown),
        cmocka_unit_test_teardown(test_shrink_small_body, teardown),
        cmocka_unit_test_teardown(test_growing_file_sends_size_at_submit, teardown),
        cmocka_unit_test_teardown(test_read_error_is_reported, teardown),
        cmocka_unit_test_teardown(test_error_names_and_texts, teardown),
        cmocka_unit_test_teardown(test_can_use, teardown),
        cmocka_unit_test_teardown(test_tls_with_ktls_active, teardown),
        cmocka_unit_test_teardown(test_version_and_options_init, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
