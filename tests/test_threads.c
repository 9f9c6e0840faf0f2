/* test_threads.c -- four threads, each with its own event_base, moving
 * transfers at the same time (sendfile, copy, small, library-opened path)
 * from one shared file.  Meant to run under ThreadSanitizer as well. */
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

#define NTHREADS 4
#define HEAD "HTTP/1.1 200 OK\r\n\r\n"
#define TAIL "\r\n0\r\n\r\n"

static const uint64_t kFileSize = 6 * MiB + 5;
static int g_fd;
static char g_path[4096];

struct plan {
    uint64_t off, count;
    unsigned flags;
    int by_path;
};

/* What one thread saw; checked by the main thread after join (cmocka
 * asserts are not for other threads). */
struct worker_result {
    int index;
    int submit_rc[4];
    int status[4];
    uint64_t sent[4];
    int wire_ok[4];
    int done_calls[4];
};

struct recv_side {
    int fd, eof;
    uint8_t *buf;
    size_t len, cap;
};

static void on_readable(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    struct recv_side *rs = arg;
    for (;;) {
        if (rs->cap - rs->len < 65536) {
            rs->cap = rs->cap ? rs->cap * 2 : 1 << 20;
            rs->buf = realloc(rs->buf, rs->cap);
            if (rs->buf == NULL) abort();
        }
        ssize_t n = read(fd, rs->buf + rs->len, rs->cap - rs->len);
        if (n > 0) {
            rs->len += (size_t)n;
            continue;
        }
        if (n == 0) rs->eof = 1;
        return;
    }
}

static void *thread_main(void *arg) {
    struct worker_result *res = arg;
    const int i = res->index;
    const struct plan plans[4] = {
        {(uint64_t)i * 1000 + 1, 3 * MiB + (uint64_t)i, 0, 0},           /* sendfile */
        {(uint64_t)i * 77, 2 * MiB + 1, SF_NO_SENDFILE, 0},              /* copy */
        {(uint64_t)i * 5000 + 3, 5000, 0, 0},                            /* small */
        {(uint64_t)i * 333, kFileSize - (uint64_t)i * 333, 0, 1},         /* path, to EOF */
    };
    struct event_base *base = event_base_new();
    for (int k = 0; k < 4; k++) {
        int s, r;
        socketpair_nb(&s, &r);
        set_nonblocking(r, 1);
        small_buffers(s, r, 8192 * (i + 1));
        struct recv_side rs = {r, 0, NULL, 0, 0};
        struct event *rev = event_new(base, r, EV_READ | EV_PERSIST, on_readable, &rs);
        event_add(rev, NULL);
        struct iovec hv, tv;
        sf_options_t o;
        opts_with(&o, &hv, HEAD, &tv, TAIL);
        o.flags = plans[k].flags;
        o.max_chunk = 128 * KiB;
        sf_region_t reg = {plans[k].by_path ? -1 : g_fd, plans[k].by_path ? g_path : NULL, plans[k].off,
                           plans[k].count};
        done_rec_t d;
        done_rec_init(&d, s);
        res->submit_rc[k] = sf_send_async(base, s, &reg, &o, record_done, &d, NULL);
        if (res->submit_rc[k] == 0) run_until(base, &rs.eof);
        res->done_calls[k] = d.calls;
        res->status[k] = d.status;
        res->sent[k] = d.body_sent;
        res->wire_ok[k] = wire_matches(rs.buf, rs.len, HEAD, plans[k].off, plans[k].count, TAIL);
        event_free(rev);
        free(rs.buf);
        close(s);
        close(r);
    }
    event_base_free(base);
    return NULL;
}

static void test_four_threads_four_bases(void **state) {
    (void)state;
    g_fd = make_pattern_file(kFileSize, g_path);
    int fds_before = count_open_fds();
    pthread_t th[NTHREADS];
    struct worker_result res[NTHREADS];
    memset(res, 0, sizeof res);
    for (int i = 0; i < NTHREADS; i++) {
        res[i].index = i;
        assert_int_equal(pthread_create(&th[i], NULL, thread_main, &res[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < NTHREADS; i++) {
        for (int k = 0; k < 4; k++) {
            if (res[i].submit_rc[k] != 0 || res[i].done_calls[k] != 1 || res[i].status[k] != 0 ||
                !res[i].wire_ok[k])
                fail_msg("thread %d transfer %d: rc %d, done %d, status %d (%s), wire %d", i, k,
                         res[i].submit_rc[k], res[i].done_calls[k], res[i].status[k],
                         sf_err_name(res[i].status[k]), res[i].wire_ok[k]);
        }
    }
    assert_int_equal(count_open_fds(), fds_before);
    close(g_fd);
    files_cleanup();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_four_threads_four_bases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
