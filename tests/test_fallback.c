/* test_fallback.c -- when sendfile is refused, when syscalls are
 * interrupted or short, and sources that are not plain files: the copy path
 * (pread/read + send) must carry on at the right offset, without re-sending
 * the head and without reading past the region.  (ENOSYS, which is
 * remembered process-wide, lives in test_enosys.c.) */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "evsendfile.h"
#include "harness.h"
#include "seam.h"

#define HEAD "HTTP/1.1 200 OK\r\nContent-Length: whatever\r\n\r\n"
#define TAIL "\r\n--end--\r\n"

static int teardown(void **state) {
    (void)state;
    seam_uninstall();
    files_cleanup();
    return 0;
}

/* Sends region (off, count) of `fd` with HEAD/TAIL over a 4 KiB socketpair
 * and checks the wire image.  Returns the done record. */
static done_rec_t send_checked(int fd, uint64_t off, uint64_t count, unsigned flags) {
    int s, r;
    socketpair_nb(&s, &r);
    small_buffers(s, r, 4096);
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    o.flags = flags;
    sf_region_t reg = {fd, NULL, off, count};
    reader_t rd = {.chunk = 2000, .keep = 1};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, &o, &rd, &d), 0);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.body_sent, count);
    assert_true(wire_matches(rd.buf, rd.len, HEAD, off, count, TAIL));
    reader_free(&rd);
    close(s);
    close(r);
    return d;
}

/* Every pread stayed inside [off, off+count), the first at `first_off`; each
 * starts where the bytes sent so far end, so none is skipped -- a read the
 * socket did not take in full is read again from where it stopped (the copy
 * path keeps no buffer between steps) -- and together they reach the end. */
static void assert_preads_within(uint64_t off, uint64_t count, uint64_t first_off) {
    assert_true(seam.pread.calls >= 1);
    assert_int_equal(seam.pread.logged, seam.pread.calls);
    assert_int_equal(seam.pread.log[0].off, first_off);
    uint64_t reached = first_off;
    for (int i = 0; i < seam.pread.logged; i++) {
        const seam_call_t *c = &seam.pread.log[i];
        assert_true(c->off >= off);
        assert_true(c->off + c->count <= off + count);
        assert_true(c->count <= SF_COPY_BUFFER_SIZE);
        assert_true(c->off <= reached);  /* no gap */
        if (c->ret > 0 && c->off + (uint64_t)c->ret > reached) reached = c->off + (uint64_t)c->ret;
    }
    assert_int_equal(reached, off + count);
}

static void test_fallback_on_first_call(void **state) {
    (void)state;
    const int errs[] = {EINVAL, EOPNOTSUPP, EPERM, EOVERFLOW, ESOCKTNOSUPPORT, EAFNOSUPPORT};
    int fd = make_pattern_file(1 * MiB + 3, NULL);
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        seam_install();
        seam.sendfile.fault = (seam_fault_t){.err = errs[i], .first = 1};
        send_checked(fd, 1001, 700001, 0);
        assert_int_equal(seam.sendfile.injected, 1);
        assert_int_equal(seam.sendfile.calls, 1); /* not retried within the transfer */
        assert_preads_within(1001, 700001, 1001);
    }
    close(fd);
}

/* sendfile moves some bytes, then refuses: the copy path starts exactly
 * where sendfile stopped. */
static void test_fallback_after_bytes_sent(void **state) {
    (void)state;
    const int errs[] = {EINVAL, EOVERFLOW, EPERM};
    int fd = make_pattern_file(2 * MiB + 17, NULL);
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        seam_install();
        seam.sendfile.fault = (seam_fault_t){.err = errs[i], .first = 4, .cap = 50000};
        send_checked(fd, 333, 1 * MiB + 1, 0);
        assert_int_equal(seam.sendfile.injected, 1);
        assert_true(seam.sendfile.bytes > 0);
        assert_true(seam.sendfile.bytes < 1 * MiB + 1);
        assert_preads_within(333, 1 * MiB + 1, 333 + seam.sendfile.bytes);
    }
    close(fd);
}

/* An errno that is not "sendfile refuses this source" is a real failure. */
static void test_sendfile_real_error_fails(void **state) {
    (void)state;
    int fd = make_pattern_file(1 * MiB, NULL);
    seam_install();
    /* capped calls: one sendfile could otherwise move the whole MiB at once */
    seam.sendfile.fault = (seam_fault_t){.err = EIO, .first = 2, .cap = 64 * KiB};
    int s, r;
    socketpair_nb(&s, &r);
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    reader_t rd = {0};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, NULL, &rd, &d), 0);
    assert_int_equal(d.status, -EIO);
    assert_int_equal(seam.sendfile.injected, 1);
    assert_int_equal(d.body_sent, seam.sendfile.bytes);
    assert_int_equal(rd.total, seam.sendfile.bytes);
    assert_int_equal(seam.pread.calls, 0);
    close(s);
    close(r);
    close(fd);
}

static void test_sendfile_eintr_and_short(void **state) {
    (void)state;
    int fd = make_pattern_file(1 * MiB + 5, NULL);
    seam_install();
    seam.sendfile.fault = (seam_fault_t){.err = EINTR, .first = 2, .every = 3, .cap = 7777};
    send_checked(fd, 5, 1 * MiB, 0);
    assert_true(seam.sendfile.injected >= 3);
    assert_true(seam.sendfile.capped >= 3);
    assert_int_equal(seam.sendfile.bytes, 1 * MiB);
    assert_int_equal(seam.pread.calls, 0);
    close(fd);
}

static void test_pread_eintr_and_short(void **state) {
    (void)state;
    int fd = make_pattern_file(1 * MiB + 5, NULL);
    seam_install();
    seam.pread.fault = (seam_fault_t){.err = EINTR, .first = 1, .every = 2, .cap = 5000};
    send_checked(fd, 7, 1 * MiB - 2, SF_NO_SENDFILE);
    assert_true(seam.pread.injected >= 3);
    assert_true(seam.pread.capped >= 3);
    assert_int_equal(seam.sendfile.calls, 0);
    /* the log holds the injected EINTR calls too: check bounds on all */
    for (int i = 0; i < seam.pread.logged; i++) {
        assert_true(seam.pread.log[i].off >= 7);
        assert_true(seam.pread.log[i].off + seam.pread.log[i].count <= 7 + 1 * MiB - 2);
    }
    close(fd);
}

/* Short and interrupted sendmsg on every path: head+body+tail must still
 * arrive exactly once, in order. */
static void test_sendmsg_eintr_and_short(void **state) {
    (void)state;
    int fd = make_pattern_file(1 * MiB, NULL);
    const struct {
        unsigned flags;
        uint64_t count;
        size_t cap;
    } cases[] = {
        {SF_NO_SENDFILE, 300001, 3001}, /* copy path */
        {0, 300001, 7},                 /* sendfile path: head and tail cut in pieces */
        {0, 5000, 7},                   /* small path: one writev, cut */
        {0, 5000, 1000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        seam_install();
        seam.sendmsg.fault = (seam_fault_t){.err = EINTR, .first = 1, .every = 2, .cap = cases[i].cap};
        send_checked(fd, 11, cases[i].count, cases[i].flags);
        assert_true(seam.sendmsg.injected >= 2);
        assert_true(seam.sendmsg.capped >= 2);
    }
    close(fd);
}

/* ------------------------------------------------------------- pipes */

struct pipe_writer {
    int fd;
    uint64_t bytes;
    int close_after;
    pthread_t thread;
};

static void *pipe_writer_main(void *arg) {
    struct pipe_writer *w = arg;
    uint8_t buf[10000];
    uint64_t done = 0;
    while (done < w->bytes) {
        size_t n = w->bytes - done < sizeof buf ? (size_t)(w->bytes - done) : sizeof buf;
        pattern_fill(buf, done, n);
        ssize_t k = write(w->fd, buf, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        done += (uint64_t)k;
    }
    if (w->close_after) close(w->fd);
    return NULL;
}

/* A pipe source: the transfer starts on an empty non-blocking pipe (so it
 * must wait for readability), then a thread feeds `write_bytes`. */
static done_rec_t send_from_pipe(uint64_t count, uint64_t write_bytes, int close_after, reader_t *rd,
                                 int *pipe_r_out) {
    int p[2];
    assert_int_equal(pipe(p), 0);
    set_nonblocking(p[0], 1);
    int s, r;
    socketpair_nb(&s, &r);
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    sf_region_t reg = {p[0], NULL, 0, count};
    struct event_base *base = event_base_new();
    done_rec_t d;
    done_rec_init(&d, s);
    rd->fd = r;
    rd->keep = 1;
    reader_start(rd);
    assert_int_equal(sf_send_async(base, s, &reg, &o, record_done, &d, NULL), 0);
    /* Run until the engine has met the empty pipe. */
    for (int i = 0; i < 1000 && seam.read.eagain == 0; i++) event_base_loop(base, EVLOOP_ONCE);
    assert_true(seam.read.eagain >= 1);
    struct pipe_writer w = {p[1], write_bytes, close_after, 0};
    assert_int_equal(pthread_create(&w.thread, NULL, pipe_writer_main, &w), 0);
    assert_true(run_until(base, &d.calls));
    pthread_join(w.thread, NULL);
    reader_join(rd);
    if (!close_after) close(p[1]);
    event_base_free(base);
    close(s);
    close(r);
    *pipe_r_out = p[0];
    return d;
}

static void test_pipe_known_count_reads_no_more(void **state) {
    (void)state;
    seam_install();
    reader_t rd = {0};
    int pr;
    const uint64_t count = 700001;
    done_rec_t d = send_from_pipe(count, count + 100, 1, &rd, &pr);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.body_sent, count);
    assert_true(wire_matches(rd.buf, rd.len, HEAD, 0, count, TAIL));
    assert_int_equal(seam.sendfile.calls, 0);
    uint64_t asked = 0;
    for (int i = 0; i < seam.read.logged; i++) {
        assert_true(seam.read.log[i].count <= count - asked);
        if (seam.read.log[i].ret > 0) asked += (uint64_t)seam.read.log[i].ret;
    }
    /* The 100 bytes after the region are still in the pipe, untouched. */
    uint8_t rest[200];
    set_nonblocking(pr, 0);
    ssize_t n = read(pr, rest, sizeof rest);
    assert_int_equal(n, 100);
    assert_int_equal(pattern_mismatch(rest, count, 100), -1);
    close(pr);
    reader_free(&rd);
}

/* ...with read(2) on the pipe interrupted and short now and then. */
static void test_pipe_to_eof(void **state) {
    (void)state;
    seam_install();
    seam.read.fault = (seam_fault_t){.err = EINTR, .first = 2, .every = 3, .cap = 7777};
    reader_t rd = {.chunk = 3000};
    int pr;
    done_rec_t d = send_from_pipe(SF_COUNT_TO_EOF, 1 * MiB + 9, 1, &rd, &pr);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.body_sent, 1 * MiB + 9);
    assert_true(wire_matches(rd.buf, rd.len, HEAD, 0, 1 * MiB + 9, TAIL));
    assert_true(seam.read.eagain >= 1);
    assert_true(seam.read.injected >= 3);
    assert_true(seam.read.capped >= 3);
    assert_int_equal(seam.sendfile.calls, 0);
    close(pr);
    reader_free(&rd);
}

/* The pipe ends before the promised count: SF_ETRUNCATED, no tail. */
static void test_pipe_short_is_truncated(void **state) {
    (void)state;
    seam_install();
    reader_t rd = {0};
    int pr;
    done_rec_t d = send_from_pipe(500000, 499990, 1, &rd, &pr);
    assert_int_equal(d.status, SF_ETRUNCATED);
    assert_int_equal(d.body_sent, 499990);
    assert_true(wire_matches(rd.buf, rd.len, HEAD, 0, 499990, NULL));
    close(pr);
    reader_free(&rd);
}

/* /proc files report a size of 0: streamed to EOF, never empty. */
static void test_proc_file_to_eof(void **state) {
    (void)state;
    seam_install();
    int before = count_open_fds();
    int s, r;
    socketpair_nb(&s, &r);
    sf_region_t reg = {-1, "/proc/self/status", 0, SF_COUNT_TO_EOF};
    reader_t rd = {.keep = 1};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, NULL, &rd, &d), 0);
    assert_int_equal(d.status, 0);
    assert_true(rd.len > 100);
    assert_int_equal(d.body_sent, rd.len);
    assert_memory_equal(rd.buf, "Name:", 5);
    assert_non_null(memmem(rd.buf, rd.len, "\nPid:", 5));
    assert_int_equal(seam.sendfile.calls, 0);
    assert_true(seam.pread.calls >= 2); /* the last one saw EOF */
    reader_free(&rd);
    close(s);
    close(r);
    assert_int_equal(count_open_fds(), before);
}

/* A FIFO named by path: the library opens it, so the library must make its
 * reads non-blocking.  The writer sends 1000 bytes, then pauses until a
 * timer on the loop has seen the engine wait (a read that said EAGAIN).  A
 * read that blocks would hold the loop, the timer would never run, and the
 * writer would give up waiting. */
struct fifo_writer {
    char path[128];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go, gave_up;
    uint64_t total;
    pthread_t thread;
};

static void *fifo_writer_main(void *arg) {
    struct fifo_writer *w = arg;
    int fd = open(w->path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    uint8_t buf[1000];
    pattern_fill(buf, 0, 1000);
    if (write(fd, buf, 1000) != 1000) abort();
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    pthread_mutex_lock(&w->mu);
    while (!w->go)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT) {
            w->gave_up = 1;
            break;
        }
    pthread_mutex_unlock(&w->mu);
    uint8_t big[8192];
    for (uint64_t off = 1000; off < w->total;) {
        size_t n = w->total - off < sizeof big ? (size_t)(w->total - off) : sizeof big;
        pattern_fill(big, off, n);
        ssize_t k = write(fd, big, n);
        if (k <= 0) break;
        off += (uint64_t)k;
    }
    close(fd);
    return NULL;
}

static void fifo_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    struct fifo_writer *w = arg;
    if (seam.read.eagain == 0 || seam.read.bytes < 1000) return;
    pthread_mutex_lock(&w->mu);
    w->go = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void test_fifo_by_path_does_not_block_loop(void **state) {
    (void)state;
    struct fifo_writer w;
    memset(&w, 0, sizeof w);
    snprintf(w.path, sizeof w.path, "/tmp/evsf-fifo-%d", (int)getpid());
    unlink(w.path);
    assert_int_equal(mkfifo(w.path, 0600), 0);
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    w.total = 300001;
    assert_int_equal(pthread_create(&w.thread, NULL, fifo_writer_main, &w), 0);
    seam_install();
    int before = count_open_fds();
    int s, r;
    socketpair_nb(&s, &r);
    struct event_base *base = event_base_new();
    struct event *tick = event_new(base, -1, EV_PERSIST, fifo_tick, &w);
    struct timeval ms = {0, 1000};
    event_add(tick, &ms);
    done_rec_t d;
    done_rec_init(&d, s);
    reader_t rd = {.fd = r, .keep = 1};
    reader_start(&rd);
    sf_region_t reg = {-1, w.path, 0, SF_COUNT_TO_EOF}; /* open() waits for the writer */
    assert_int_equal(sf_send_async(base, s, &reg, NULL, record_done, &d, NULL), 0);
    assert_true(run_until(base, &d.calls));
    pthread_join(w.thread, NULL);
    reader_join(&rd);
    assert_false(w.gave_up);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.body_sent, w.total);
    assert_true(wire_matches(rd.buf, rd.len, NULL, 0, w.total, NULL));
    event_free(tick);
    event_base_free(base);
    reader_free(&rd);
    close(s);
    close(r);
    assert_int_equal(count_open_fds(), before);
    unlink(w.path);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
}

/* Pseudo files whose st_size is not their length (sysfs reports 4096,
 * cgroup files report 0): sent to EOF, byte for byte what read(2) gives. */
static int read_all(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, cap);
    close(fd);
    return (int)n;
}

static void check_pseudo_file(const char *path) {
    char want[4096];
    int n = read_all(path, want, sizeof want);
    assert_true(n > 0 && n < (int)sizeof want);
    seam_install();
    int s, r;
    socketpair_nb(&s, &r);
    sf_region_t reg = {-1, path, 0, SF_COUNT_TO_EOF};
    reader_t rd = {.keep = 1};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, NULL, &rd, &d), 0);
    assert_int_equal(d.status, 0);
    if (rd.len != (size_t)n) fail_msg("%s: sent %zu bytes, read(2) gives %d", path, rd.len, n);
    assert_memory_equal(rd.buf, want, (size_t)n);
    assert_int_equal(seam.sendfile.calls, 0);
    reader_free(&rd);
    close(s);
    close(r);
}

static void test_sysfs_file_to_eof(void **state) {
    (void)state;
    const char *path = "/sys/kernel/mm/transparent_hugepage/enabled";
    struct stat st;
    if (stat(path, &st) != 0) skip();
    check_pseudo_file(path);
}

static void test_cgroup_file_to_eof(void **state) {
    (void)state;
    const char *candidates[] = {
        "/sys/fs/cgroup/cgroup.controllers",        /* cgroup v2 */
        "/sys/fs/cgroup/memory/memory.limit_in_bytes", /* cgroup v1 */
        "/sys/fs/cgroup/cpu/cpu.shares",
        "/sys/fs/cgroup/pids/pids.max",
    };
    char tmp[4096];
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        struct stat st;
        if (stat(candidates[i], &st) != 0 || st.st_size != 0) continue;
        if (read_all(candidates[i], tmp, sizeof tmp) <= 0) continue;
        check_pseudo_file(candidates[i]);
        return;
    }
    skip(); /* no cgroup file with a lying size here */
}

/* Character devices stream through read(2): a count from /dev/zero, and
 * /dev/null to EOF (empty, not an error). */
static void test_char_devices(void **state) {
    (void)state;
    int s, r;
    socketpair_nb(&s, &r);
    sf_region_t zero = {-1, "/dev/zero", 0, 300001};
    reader_t rd = {.keep = 1};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &zero, NULL, &rd, &d), 0);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.body_sent, 300001);
    assert_int_equal(rd.len, 300001);
    for (size_t i = 0; i < rd.len; i++) assert_int_equal(rd.buf[i], 0);
    reader_free(&rd);
    close(s);
    close(r);

    socketpair_nb(&s, &r);
    sf_region_t null = {-1, "/dev/null", 0, SF_COUNT_TO_EOF};
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    reader_t rd2 = {.keep = 1};
    assert_int_equal(transfer_collect(s, r, &null, &o, &rd2, &d), 0);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.body_sent, 0);
    assert_true(wire_matches(rd2.buf, rd2.len, HEAD, 0, 0, TAIL));
    reader_free(&rd2);
    close(s);
    close(r);
}

static void test_no_sendfile_flag(void **state) {
    (void)state;
    int fd = make_pattern_file(2 * MiB, NULL);
    int s, r;
    socketpair_nb(&s, &r);
    assert_int_equal(sf_can_use(s, 0), 1);
    assert_int_equal(sf_can_use(s, SF_NO_SENDFILE), 0);
    close(s);
    close(r);
    seam_install();
    send_checked(fd, 99, 2 * MiB - 99, SF_NO_SENDFILE);
    assert_int_equal(seam.sendfile.calls, 0);
    assert_preads_within(99, 2 * MiB - 99, 99);
    close(fd);
}

/* EVSENDFILE_NO_SENDFILE is read once, when the library loads: CTest runs
 * this test twice, as core_fallback (unset) and core_fallback_env (=1,
 * running this test only).  Changing it later changes nothing. */
static void test_env_no_sendfile(void **state) {
    (void)state;
    const char *v = getenv("EVSENDFILE_NO_SENDFILE");
    int off_at_start = v != NULL && v[0] != '\0' && strcmp(v, "0") != 0;
    int fd = make_pattern_file(2 * MiB, NULL);
    int s, r;
    socketpair_nb(&s, &r);

    /* Flip it: no effect either way. */
    assert_int_equal(setenv("EVSENDFILE_NO_SENDFILE", off_at_start ? "0" : "1", 1), 0);
    assert_int_equal(sf_can_use(s, 0), off_at_start ? 0 : 1);
    seam_install();
    send_checked(fd, 0, 2 * MiB, 0);
    if (off_at_start) {
        assert_int_equal(seam.sendfile.calls, 0);
        assert_true(seam.pread.calls >= 8);
    } else {
        assert_true(seam.sendfile.calls >= 1);
    }
    close(s);
    close(r);
    close(fd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_fallback_on_first_call, teardown),
        cmocka_unit_test_teardown(test_fallback_after_bytes_sent, teardown),
        cmocka_unit_test_teardown(test_sendfile_real_error_fails, teardown),
        cmocka_unit_test_teardown(test_sendfile_eintr_and_short, teardown),
        cmocka_unit_test_teardown(test_pread_eintr_and_short, teardown),
        cmocka_unit_test_teardown(test_sendmsg_eintr_and_short, teardown),
        cmocka_unit_test_teardown(test_pipe_known_count_reads_no_more, teardown),
        cmocka_unit_test_teardown(test_pipe_to_eof, teardown),
        cmocka_unit_test_teardown(test_pipe_short_is_truncated, teardown),
        cmocka_unit_test_teardown(test_proc_file_to_eof, teardown),
        cmocka_unit_test_teardown(test_sysfs_file_to_eof, teardown),
        cmocka_unit_test_teardown(test_cgroup_file_to_eof, teardown),
        cmocka_unit_test_teardown(test_fifo_by_path_does_not_block_loop, teardown),
        cmocka_unit_test_teardown(test_char_devices, teardown),
        cmocka_unit_test_teardown(test_no_sendfile_flag, teardown),
        cmocka_unit_test_teardown(test_env_no_sendfile, teardown),
    };
    if (getenv("EVSENDFILE_NO_SENDFILE") != NULL) cmocka_set_test_filter("test_env_no_sendfile");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
