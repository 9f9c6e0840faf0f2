/* test_job.c -- the stepping API (sf_job_*) driven by a hand-written
 * poll() loop, as a foreign event loop would: file and pipe sources,
 * SF_STEP_WRITE / READ / YIELD, repeated final answers, freeing mid-way. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

#define HEAD "HTTP/1.1 206 Partial Content\r\n\r\n"
#define TAIL "\r\n--boundary--\r\n"

static int teardown(void **state) {
    (void)state;
    files_cleanup();
    return 0;
}

struct sink {
    uint8_t *buf;
    size_t len, cap;
};

static void sink_read(struct sink *k, int fd) {
    for (;;) {
        if (k->cap - k->len < 65536) {
            k->cap = k->cap ? k->cap * 2 : 1 << 20;
            k->buf = realloc(k->buf, k->cap);
            assert_non_null(k->buf);
        }
        ssize_t n = read(fd, k->buf + k->len, k->cap - k->len);
        if (n <= 0) return;
        k->len += (size_t)n;
    }
}

struct steps {
    int write, read, yield;
};

/* Steps `job` to its end with poll(): waits for the socket after WRITE,
 * for the source after READ, steps again at once after YIELD.  Meanwhile
 * drains `peer` into *k and, when pipe_w >= 0, feeds the pipe with
 * `feed` pattern bytes then closes it.  Returns the final step result. */
static int drive(sf_job_t *job, int sock, int peer, struct sink *k, int pipe_w, uint64_t feed,
                 struct steps *st) {
    uint64_t fed = 0;
    int want = SF_STEP_WRITE;
    time_t deadline = time(NULL) + GUARD_SECONDS;
    for (;;) {
        struct pollfd p[3] = {{peer, POLLIN, 0}, {-1, 0, 0}, {-1, 0, 0}};
        if (want == SF_STEP_WRITE) p[1] = (struct pollfd){sock, POLLOUT, 0};
        if (want == SF_STEP_READ) p[1] = (struct pollfd){sf_job_source_fd(job), POLLIN, 0};
        if (pipe_w >= 0) p[2] = (struct pollfd){pipe_w, POLLOUT, 0};
        assert_true(time(NULL) < deadline);
        if (want != SF_STEP_YIELD) assert_true(poll(p, 3, 1000) >= 0);
        if (p[0].revents & POLLIN) sink_read(k, peer);
        if (pipe_w >= 0 && (p[2].revents & POLLOUT)) {
            uint8_t b[5000];
            size_t n = feed - fed < sizeof b ? (size_t)(feed - fed) : sizeof b;
            pattern_fill(b, fed, n);
            ssize_t w = write(pipe_w, b, n);
            if (w > 0) fed += (uint64_t)w;
            if (fed == feed) {
                close(pipe_w);
                pipe_w = -1;
            }
        }
        if (want == SF_STEP_YIELD || (p[1].revents & (POLLOUT | POLLIN | POLLHUP | POLLERR))) {
            int r = sf_job_step(job);
            if (r <= 0) return r;
            want = r;
            st->write += r == SF_STEP_WRITE;
            st->read += r == SF_STEP_READ;
            st->yield += r == SF_STEP_YIELD;
        }
    }
}

static void test_job_file_poll_loop(void **state) {
    (void)state;
    const uint64_t off = 4099, count = 1 * MiB + 3;
    int fd = make_pattern_file(2 * MiB, NULL);
    int s, r;
    socketpair_nb(&s, &r);
    set_nonblocking(r, 1);
    small_buffers(s, r, 4096);
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    o.max_chunk = 256 * KiB;
    sf_region_t reg = {fd, NULL, off, count};
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(s, &reg, &o, &job), 0);
    char b;
    assert_int_equal(recv(r, &b, 1, MSG_DONTWAIT), -1); /* sf_job_new writes nothing */
    assert_int_equal(sf_job_source_fd(job), fd);
    struct sink k = {0};
    struct steps st = {0};
    assert_int_equal(drive(job, s, r, &k, -1, 0, &st), SF_STEP_DONE);
    assert_true(st.write >= 10);
    assert_int_equal(sf_job_body_sent(job), count);
    assert_int_equal(sf_job_step(job), SF_STEP_DONE); /* repeats its final answer */
    assert_int_equal(sf_job_step(job), SF_STEP_DONE);
    sink_read(&k, r);
    assert_true(wire_matches(k.buf, k.len, HEAD, off, count, TAIL));
    sf_job_free(job);
    free(k.buf);
    close(s);
    close(r);
    close(fd);
}

static void test_job_pipe_poll_loop(void **state) {
    (void)state;
    const uint64_t feed = 600001;
    int p[2];
    assert_int_equal(pipe(p), 0);
    set_nonblocking(p[0], 1);
    set_nonblocking(p[1], 1);
    int s, r;
    socketpair_nb(&s, &r);
    set_nonblocking(r, 1);
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    sf_region_t reg = {p[0], NULL, 0, SF_COUNT_TO_EOF};
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(s, &reg, &o, &job), 0);
    assert_int_equal(sf_job_source_fd(job), p[0]);
    /* The pipe is empty: the first step sends the head and asks to wait. */
    assert_int_equal(sf_job_step(job), SF_STEP_READ);
    struct sink k = {0};
    struct steps st = {0};
    assert_int_equal(drive(job, s, r, &k, p[1], feed, &st), SF_STEP_DONE);
    assert_int_equal(sf_job_body_sent(job), feed);
    sink_read(&k, r);
    assert_true(wire_matches(k.buf, k.len, HEAD, 0, feed, TAIL));
    sf_job_free(job);
    free(k.buf);
    close(p[0]);
    close(s);
    close(r);
}

/* Each step moves exactly max_chunk bytes and yields, on both paths. */
static void yield_case(unsigned flags) {
    const uint64_t chunk = 32 * KiB;
    int fd = make_pattern_file(1 * MiB, NULL);
    int s, r;
    socketpair_nb(&s, &r);
    set_nonblocking(r, 1);
    sf_options_t o;
    sf_options_init(&o);
    o.max_chunk = chunk;
    o.flags = flags;
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(s, &reg, &o, &job), 0);
    struct sink k = {0};
    for (uint64_t i = 1; i <= 4; i++) {
        assert_int_equal(sf_job_step(job), SF_STEP_YIELD);
        assert_int_equal(sf_job_body_sent(job), i * chunk);
        sink_read(&k, r); /* room for the next chunk */
    }
    assert_true(wire_matches(k.buf, k.len, NULL, 0, 4 * chunk, NULL));
    sf_job_free(job);
    free(k.buf);
    close(s);
    close(r);
    close(fd);
}

static void test_job_yields_after_max_chunk_sendfile(void **state) {
    (void)state;
    yield_case(0);
}

static void test_job_yields_after_max_chunk_copy(void **state) {
    (void)state;
    yield_case(SF_NO_SENDFILE);
}

static void test_job_error_repeats(void **state) {
    (void)state;
    int fd = make_pattern_file(1 * MiB, NULL);
    int s, r;
    socketpair_nb(&s, &r);
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(s, &reg, NULL, &job), 0);
    close(r);
    assert_int_equal(sf_job_step(job), -EPIPE);
    assert_int_equal(sf_job_step(job), -EPIPE);
    assert_int_equal(sf_job_body_sent(job), 0);
    sf_job_free(job);
    close(s);
    close(fd);
}

/* Freed mid-transfer: library fd closed, the cork it set (a tail follows
 * the body) taken off. */
static void test_job_free_midway(void **state) {
    (void)state;
    char path[4096];
    close(make_pattern_file(4 * MiB, path));
    int before = count_open_fds();
    int s, r;
    tcp_pair(&s, &r);
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    sf_region_t reg = {-1, path, 0, SF_COUNT_TO_EOF};
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(s, &reg, &o, &job), 0);
    assert_true(sf_job_source_fd(job) >= 0);
    int r1 = sf_job_step(job);
    assert_true(r1 == SF_STEP_WRITE || r1 == SF_STEP_YIELD);
    assert_int_equal(tcp_cork_is_on(s), 1);
    sf_job_free(job);
    assert_int_equal(tcp_cork_is_on(s), 0);
    close(s);
    close(r);
    assert_int_equal(count_open_fds(), before);
}

static void test_job_null_handles(void **state) {
    (void)state;
    assert_int_equal(sf_job_step(NULL), -EINVAL);
    assert_int_equal(sf_job_body_sent(NULL), 0);
    assert_int_equal(sf_job_source_fd(NULL), -1);
    sf_job_free(NULL);
}

/* count 0 from a pipe: head and tail only, the pipe is never read. */
static void test_job_pipe_count_zero(void **state) {
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(write(p[1], "xyz", 3), 3);
    int s, r;
    socketpair_nb(&s, &r);
    set_nonblocking(r, 1);
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    sf_region_t reg = {p[0], NULL, 0, 0};
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(s, &reg, &o, &job), 0);
    assert_int_equal(sf_job_step(job), SF_STEP_DONE);
    struct sink k = {0};
    sink_read(&k, r);
    assert_true(wire_matches(k.buf, k.len, HEAD, 0, 0, TAIL));
    char b[8];
    assert_int_equal(read(p[0], b, sizeof b), 3); /* untouched */
    sf_job_free(job);
    free(k.buf);
    int fds[] = {p[0], p[1], s, r};
    for (int i = 0; i < 4; i++) close(fds[i]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_job_file_poll_loop, teardown),
        cmocka_unit_test_teardown(test_job_pipe_poll_loop, teardown),
        cmocka_unit_test_teardown(test_job_yields_after_max_chunk_sendfile, teardown),
        cmocka_unit_test_teardown(test_job_yields_after_max_chunk_copy, teardown),
        cmocka_unit_test_teardown(test_job_error_repeats, teardown),
        cmocka_unit_test_teardown(test_job_free_midway, teardown),
        cmocka_unit_test_teardown(test_job_pipe_count_zero, teardown),
        cmocka_unit_test_teardown(test_job_null_handles, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
