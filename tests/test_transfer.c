/* test_transfer.c -- bytes on the wire: whole files and arbitrary regions
 * over socketpairs and loopback TCP with a slow reader, a sparse file
 * crossing 4 GiB, the per-call sendfile size, head/body/tail order, the
 * one-writev small path, and TCP_CORK. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <cmocka.h>
#include <event2/event.h>

#include "evsendfile.h"
#include "harness.h"
#include "seam.h"

#define HEAD "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n"
#define TAIL "\r\n0\r\n\r\n"

static int teardown(void **state) {
    (void)state;
    seam_uninstall();
    files_cleanup();
    return 0;
}

/* Sends region [off, off+count) of a patterned file of `size` bytes and
 * checks every byte; returns the done record. */
static done_rec_t send_region(int tcp, int fd, uint64_t off, uint64_t count, int small_bufs,
                              size_t read_chunk) {
    int s, r;
    if (tcp) tcp_pair(&s, &r);
    else socketpair_nb(&s, &r);
    /* TCP below ~16 KiB hits 200 ms silly-window stalls on loopback with
     * or without this library; a socketpair can go down to 4 KiB. */
    if (small_bufs) small_buffers(s, r, tcp ? 16384 : 4096);
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    if (tcp) o.flags |= SF_FORCE_SENDFILE; /* a loopback peer takes the copy path (test_peer.c) */
    sf_region_t reg = {fd, NULL, off, count};
    reader_t rd = {.chunk = read_chunk, .keep = 1};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, &o, &rd, &d), 0);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, 0);
    assert_true(wire_matches(rd.buf, rd.len, HEAD, off, d.body_sent, TAIL));
    reader_free(&rd);
    close(s);
    close(r);
    return d;
}

/* A 3 MiB file through a 4 KiB socket buffer to a reader taking 1000 bytes
 * at a time: the engine must survive many EAGAINs and lose nothing. */
static void test_whole_file_slow_reader_socketpair(void **state) {
    (void)state;
    const uint64_t size = 3 * MiB + 4321;
    int fd = make_pattern_file(size, NULL);
    seam_install();
    done_rec_t d = send_region(0, fd, 0, SF_COUNT_TO_EOF, 1, 1000);
    assert_int_equal(d.body_sent, size);
    assert_true(seam.sendfile.eagain >= 1);   /* the slow reader really pushed back */
    assert_true(seam.sendfile.calls >= 10);
    assert_int_equal(seam.sendfile.bytes, size);
    close(fd);
}

static void test_whole_file_slow_reader_tcp(void **state) {
    (void)state;
    const uint64_t size = 3 * MiB + 77;
    int fd = make_pattern_file(size, NULL);
    seam_install();
    done_rec_t d = send_region(1, fd, 0, SF_COUNT_TO_EOF, 1, 1000);
    assert_int_equal(d.body_sent, size);
    assert_true(seam.sendfile.eagain >= 1);
    close(fd);
}

struct span {
    uint64_t off, count;
};

static void check_offsets(int tcp) {
    const uint64_t S = 1 * MiB + 333;
    const struct span spans[] = {
        {0, 0}, {0, 1}, {1, 1}, {4095, 4097}, {12345, SF_SMALL_BODY_MAX},
        {12345, SF_SMALL_BODY_MAX + 1}, {777, SF_COUNT_TO_EOF}, {S, 0}, {S, SF_COUNT_TO_EOF},
        {S - 1, 1}, {S - 1, SF_COUNT_TO_EOF}, {100001, 300001}, {0, SF_COUNT_TO_EOF},
    };
    int fd = make_pattern_file(S, NULL);
    for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++) {
        uint64_t want = spans[i].count == SF_COUNT_TO_EOF ? S - spans[i].off : spans[i].count;
        done_rec_t d = send_region(tcp, fd, spans[i].off, spans[i].count, 1, 3000);
        assert_int_equal(d.body_sent, want);
    }
    close(fd);
}

static void test_offsets_socketpair(void **state) {
    (void)state;
    check_offsets(0);
}

static void test_offsets_tcp(void **state) {
    (void)state;
    check_offsets(1);
}

/* region.fd == -1: the library opens the path, and closes it before done. */
static void test_path_region_closes_its_fd(void **state) {
    (void)state;
    char path[4096];
    int fd = make_pattern_file(2 * MiB + 5, path);
    close(fd);
    int before = count_open_fds();
    int s, r;
    socketpair_nb(&s, &r);
    sf_region_t reg = {-1, path, 1000, SF_COUNT_TO_EOF};
    reader_t rd = {.keep = 1};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, NULL, &rd, &d), 0);
    assert_int_equal(d.status, 0);
    assert_true(wire_matches(rd.buf, rd.len, NULL, 1000, 2 * MiB + 5 - 1000, NULL));
    reader_free(&rd);
    close(s);
    close(r);
    assert_int_equal(count_open_fds(), before);
}

/* A 4.5 GiB sparse file, patterned only around the 4 GiB mark; a region
 * that starts below 4 GiB and ends above it.  Every byte is checked, and
 * every sendfile call asked for no more than what remained and no more than
 * 0x7ffff000, from exactly where the previous call stopped. */
static void test_sparse_region_crossing_4g(void **state) {
    (void)state;
    const uint64_t four = 4 * GiB;
    const uint64_t mark_lo = four - 1 * MiB - 3, mark_hi = four + 1 * MiB + 7;
    int fd = make_sparse_file(four + GiB / 2, NULL);
    write_pattern_at(fd, mark_lo, (size_t)(mark_hi - mark_lo));
    const uint64_t off = four - 3 * MiB - 5, count = 6 * MiB + 11;

    seam_install();
    int s, r;
    socketpair_nb(&s, &r);
    sf_region_t reg = {fd, NULL, off, count};
    reader_t rd = {.keep = 1};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, NULL, &rd, &d), 0);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.body_sent, count);
    assert_int_equal(rd.len, count);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t at = off + i;
        uint8_t want = (at >= mark_lo && at < mark_hi) ? pattern_byte(at) : 0;
        if (rd.buf[i] != want) fail_msg("byte at file offset %llu: got %u want %u",
                                         (unsigned long long)at, rd.buf[i], want);
    }
    reader_free(&rd);
    close(s);
    close(r);

    uint64_t expect_off = off;
    int above_4g = 0, asked_exact_rest = 0;
    assert_true(seam.sendfile.calls > 0);
    assert_true(seam.sendfile.logged == seam.sendfile.calls);
    for (int i = 0; i < seam.sendfile.logged; i++) {
        const seam_call_t *c = &seam.sendfile.log[i];
        uint64_t rest = off + count - c->off;
        assert_int_equal(c->off, expect_off);
        assert_true(c->count <= rest);
        assert_true(c->count <= 0x7ffff000u);
        assert_true(c->count > 0);
        if (c->count == rest) asked_exact_rest = 1;
        if (c->off > four) above_4g = 1;
        if (c->ret > 0) expect_off += (uint64_t)c->ret;
    }
    assert_int_equal(expect_off, off + count);
    assert_true(above_4g);
    assert_true(asked_exact_rest);

    /* The small path (one pread + one writev) across the mark, and the copy path. */
    const unsigned flags[] = {0, SF_NO_SENDFILE};
    const uint64_t counts[] = {1000, 3 * 65536 + 1};
    for (int k = 0; k < 2; k++) {
        seam_install();
        socketpair_nb(&s, &r);
        sf_options_t o;
        sf_options_init(&o);
        o.flags = flags[k];
        sf_region_t small = {fd, NULL, four - 500, counts[k]};
        reader_t rd2 = {.keep = 1};
        assert_int_equal(transfer_collect(s, r, &small, &o, &rd2, &d), 0);
        assert_int_equal(d.status, 0);
        assert_true(wire_matches(rd2.buf, rd2.len, NULL, four - 500, counts[k], NULL));
        assert_int_equal(seam.sendfile.calls, 0);
        assert_int_equal(seam.pread.log[0].off, four - 500);
        reader_free(&rd2);
        close(s);
        close(r);
    }
    close(fd);
}

/* With a budget larger than 2 GiB, one sendfile call must still ask for at
 * most 0x7ffff000 bytes.  The real call is capped at 64 KiB (short returns
 * are legal), so nothing like 2 GiB actually moves. */
static void test_sendfile_call_clamped(void **state) {
    (void)state;
    const uint64_t size = 4 * GiB + GiB / 2;
    int fd = make_sparse_file(size, NULL);
    seam_install();
    seam.sendfile.fault.cap = 64 * KiB;
    int s, r;
    socketpair_nb(&s, &r);
    sf_options_t o;
    sf_options_init(&o);
    o.max_chunk = 8 * GiB;
    o.flags = SF_DISK_INLINE; /* a sparse file's holes are not in the page cache: no disk threads here */
    sf_region_t reg = {fd, NULL, 100, SF_COUNT_TO_EOF};
    sf_job_t *job = NULL;
    assert_int_equal(sf_job_new(s, &reg, &o, &job), 0);
    assert_int_equal(sf_job_step(job), SF_STEP_WRITE); /* nobody reads: the buffer fills */
    assert_true(seam.sendfile.calls >= 2);
    assert_int_equal(seam.sendfile.log[0].count, 0x7ffff000u);
    uint64_t sent = 0;
    for (int i = 0; i < seam.sendfile.logged; i++) {
        const seam_call_t *c = &seam.sendfile.log[i];
        assert_int_equal(c->off, 100 + sent);
        assert_true(c->count <= 0x7ffff000u);
        if (c->ret > 0) sent += (uint64_t)c->ret;
    }
    assert_int_equal(sf_job_body_sent(job), sent);
    sf_job_free(job);
    close(s);
    close(r);
    close(fd);
}

/* A small body goes with head and tail in ONE sendmsg (one writev), after
 * one pread of exactly the region; sendfile is not used. */
static void check_small_one_write(uint64_t count) {
    const uint64_t size = 64 * KiB;
    int fd = make_pattern_file(size, NULL);
    seam_install();
    int s, r;
    tcp_pair(&s, &r);
    struct iovec head[2] = {{(void *)"HTTP/1.1 200 OK\r\n", 17}, {(void *)"X: y\r\n\r\n", 8}};
    struct iovec tv;
    sf_options_t o;
    opts_with(&o, NULL, NULL, &tv, TAIL);
    o.head = head;
    o.head_count = 2;
    sf_region_t reg = {fd, NULL, 5, count};
    reader_t rd = {.keep = 1};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, &o, &rd, &d), 0);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.body_sent, count);
    assert_true(wire_matches(rd.buf, rd.len, "HTTP/1.1 200 OK\r\nX: y\r\n\r\n", 5, count, TAIL));
    assert_int_equal(seam.sendfile.calls, 0);
    assert_int_equal(seam.sendmsg.calls, 1);
    assert_int_equal(seam.sendmsg.log[0].count, 25 + count + strlen(TAIL));
    assert_int_equal(seam.sendmsg.log[0].ret, (ssize_t)(25 + count + strlen(TAIL)));
    assert_int_equal(seam.pread.calls, 1);
    assert_int_equal(seam.pread.log[0].off, 5);
    assert_int_equal(seam.pread.log[0].count, count);
    reader_free(&rd);
    close(s);
    close(r);
    close(fd);
    seam_uninstall();
}

static void test_small_body_one_sendmsg(void **state) {
    (void)state;
    check_small_one_write(1000);
    check_small_one_write(SF_SMALL_BODY_MAX);
}

/* One byte more than SF_SMALL_BODY_MAX takes the sendfile path. */
static void test_just_over_small_uses_sendfile(void **state) {
    (void)state;
    int fd = make_pattern_file(64 * KiB, NULL);
    seam_install();
    send_region(1, fd, 3, SF_SMALL_BODY_MAX + 1, 0, 0);
    assert_true(seam.sendfile.calls >= 1);
    assert_int_equal(seam.sendfile.bytes, SF_SMALL_BODY_MAX + 1);
    close(fd);
}

/* Large body on TCP with head and tail: TCP_CORK is on for the head and for
 * every sendfile call, and off once the transfer is done.  Without a tail
 * there is no cork: the head goes with MSG_MORE and the body joins it. */
static void cork_case_with(int v6, unsigned flags, int caller_corked, int want_corked, const char *tail) {
    const uint64_t size = 4 * MiB + 99;
    int fd = make_pattern_file(size, NULL);
    seam_install();
    int s, r;
    if (v6) tcp6_pair(&s, &r);
    else tcp_pair(&s, &r);
    small_buffers(s, r, 16384);
    if (caller_corked) {
        int one = 1;
        assert_int_equal(setsockopt(s, IPPROTO_TCP, TCP_CORK, &one, sizeof one), 0);
    }
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, tail);
    o.flags = flags | SF_FORCE_SENDFILE; /* the sendfile path, though the peer is on loopback */
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    struct event_base *base = event_base_new();
    done_rec_t d;
    done_rec_init(&d, -1);
    reader_t rd = {.fd = r, .keep = 1};
    reader_start(&rd);
    assert_int_equal(sf_send_async(base, s, &reg, &o, record_done, &d, NULL), 0);
    assert_true(run_until(base, &d.calls));
    assert_int_equal(d.status, 0);
    /* Checked before anything else touches the socket. */
    assert_int_equal(tcp_cork_is_on(s), caller_corked);
    shutdown(s, SHUT_WR);
    reader_join(&rd);
    assert_true(wire_matches(rd.buf, rd.len, HEAD, 0, size, tail));
    assert_true(seam.sendfile.calls > 1);
    for (int i = 0; i < seam.sendfile.logged; i++) assert_int_equal(seam.sendfile.log[i].corked, want_corked);
    assert_int_equal(seam.sendmsg.log[0].corked, want_corked); /* the head */
    assert_true(seam.sendmsg.log[0].op & MSG_MORE);            /* the body follows it */
    reader_free(&rd);
    event_base_free(base);
    close(s);
    close(r);
    close(fd);
    seam_uninstall();
}

static void cork_case(unsigned flags, int caller_corked, int want_corked) {
    cork_case_with(0, flags, caller_corked, want_corked, TAIL);
}

static void test_cork_during_large_transfer_ipv6(void **state) {
    (void)state;
    cork_case_with(1, 0, 0, 1, TAIL);
}

static void test_head_alone_needs_no_cork(void **state) {
    (void)state;
    cork_case_with(0, 0, 0, 0, NULL);
}

static void test_cork_during_large_transfer(void **state) {
    (void)state;
    cork_case(0, 0, 1);
}

static void test_no_cork_flag(void **state) {
    (void)state;
    cork_case(SF_NO_CORK, 0, 0);
}

/* The caller's own cork is the caller's: left on. */
static void test_caller_cork_left_alone(void **state) {
    (void)state;
    cork_case(0, 1, 1);
}

/* SF_TRUSTED: the same bytes, over TCP and a Unix socket (where MSG_MORE and
 * the cork attempt must be harmless), small and sendfile paths, without the
 * socket and file checks; an untrusted transfer of the same shape makes them. */
static void trusted_case(int tcp, uint64_t size, unsigned flags, int *checks) {
    int fd = make_pattern_file(size + 77, NULL);
    int s, r;
    if (tcp) tcp_pair(&s, &r);
    else socketpair_nb(&s, &r);
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    o.flags = flags;
    sf_region_t reg = {fd, NULL, 77, size};
    seam_install();
    reader_t rd = {.keep = 1};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, &o, &rd, &d), 0);
    *checks = seam.fcntl.calls + seam.getsockopt.calls;
    seam_uninstall();
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, 0);
    assert_true(wire_matches(rd.buf, rd.len, HEAD, 77, size, TAIL));
    reader_free(&rd);
    close(s);
    close(r);
    close(fd);
}

static void test_trusted_skips_the_checks(void **state) {
    (void)state;
    const uint64_t sizes[] = {4096, 3 * MiB};
    for (int tcp = 0; tcp < 2; tcp++) {
        for (int i = 0; i < 2; i++) {
            int checked, trusted;
            trusted_case(tcp, sizes[i], 0, &checked);
            trusted_case(tcp, sizes[i], SF_TRUSTED, &trusted);
            assert_true(checked >= 3); /* fcntl on socket and file, getsockopt */
            /* trusted: none on the small path; with a tail, the sendfile
             * path keeps the cork's own getsockopt (on a Unix socket it
             * fails, and so does the cork, harmlessly) */
            assert_int_equal(trusted, sizes[i] > SF_SMALL_BODY_MAX ? 1 : 0);
        }
    }
}

/* A broken promise is not caught up front, but fails cleanly in done. */
static void test_trusted_write_only_file_fails_in_done(void **state) {
    (void)state;
    char path[4096];
    close(make_pattern_file(4096, path));
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    int before = count_open_fds();
    int s, r;
    socketpair_nb(&s, &r);
    sf_options_t o;
    sf_options_init(&o);
    o.flags = SF_TRUSTED;
    sf_region_t reg = {fd, NULL, 0, 4096};
    reader_t rd = {.keep = 1};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, &o, &rd, &d), 0);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, -EBADF);
    assert_int_equal(d.body_sent, 0);
    assert_int_equal(rd.len, 0);
    reader_free(&rd);
    close(s);
    close(r);
    assert_int_equal(count_open_fds(), before);
    /* and a negative socket is refused without a syscall */
    struct event_base *base = event_base_new();
    assert_int_equal(sf_send_async(base, -1, &reg, &o, record_done, &d, NULL), -EBADF);
    event_base_free(base);
    close(fd);
    unlink(path);
}

/* SF_KNOWN_SIZE: the caller's size stands in for the library's fstat.  The
 * true size gives the same bytes with no fstat at all; a smaller one cuts
 * the region there (and bounds offset and count); a larger one ends in
 * SF_ETRUNCATED with what the file had; a path region is refused. */
static void known_size_case(uint64_t file_len, uint64_t claimed, uint64_t off, uint64_t count,
                            int want_status, uint64_t want_body) {
    int fd = make_pattern_file(file_len, NULL);
    int s, r;
    tcp_pair(&s, &r);
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    o.flags = SF_TRUSTED | SF_KNOWN_SIZE;
    o.file_size = claimed;
    sf_region_t reg = {fd, NULL, off, count};
    seam_install();
    reader_t rd = {.keep = 1};
    done_rec_t d;
    assert_int_equal(transfer_collect(s, r, &reg, &o, &rd, &d), 0);
    assert_int_equal(seam.fstat.calls, 0);
    seam_uninstall();
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.status, want_status);
    assert_true(d.body_sent == want_body);
    if (want_status == 0) assert_true(wire_matches(rd.buf, rd.len, HEAD, off, want_body, TAIL));
    else assert_true(wire_matches(rd.buf, rd.len, HEAD, off, want_body, NULL));
    reader_free(&rd);
    close(s);
    close(r);
    close(fd);
}

static void test_known_size_skips_fstat(void **state) {
    (void)state;
    const uint64_t sizes[] = {4096, 3 * MiB};
    for (int i = 0; i < 2; i++) {
        /* the truth: every byte, no fstat */
        known_size_case(sizes[i], sizes[i], 5, SF_COUNT_TO_EOF, 0, sizes[i] - 5);
        known_size_case(sizes[i], sizes[i], 5, 1000, 0, 1000);
        /* smaller than the file: to-EOF ends at the size given */
        known_size_case(sizes[i] + 999, sizes[i], 5, SF_COUNT_TO_EOF, 0, sizes[i] - 5);
        /* larger than the file: the file's bytes, then SF_ETRUNCATED */
        known_size_case(sizes[i], sizes[i] + 999, 5, SF_COUNT_TO_EOF, SF_ETRUNCATED, sizes[i] - 5);
    }
}

static void test_known_size_bounds_and_refusals(void **state) {
    (void)state;
    char path[4096];
    int fd = make_pattern_file(100000, path);
    int s, r;
    tcp_pair(&s, &r);
    struct event_base *base = event_base_new();
    sf_options_t o;
    sf_options_init(&o);
    o.flags = SF_KNOWN_SIZE;
    o.file_size = 5000;
    done_rec_t d = {0};
    sf_region_t past_end = {fd, NULL, 5001, SF_COUNT_TO_EOF}, too_long = {fd, NULL, 10, 4991};
    assert_int_equal(sf_send_async(base, s, &past_end, &o, record_done, &d, NULL), -ERANGE);
    assert_int_equal(sf_send_async(base, s, &too_long, &o, record_done, &d, NULL), -ERANGE);
    sf_region_t by_path = {-1, path, 0, SF_COUNT_TO_EOF};
    assert_int_equal(sf_send_async(base, s, &by_path, &o, record_done, &d, NULL), -EINVAL);
    assert_int_equal(d.calls, 0);
    event_base_free(base);
    close(s);
    close(r);
    close(fd);
    unlink(path);
}

/* The copy path of a regular file writes the head with the first body bytes:
 * one sendmsg, not a head of its own; a write that takes only part of the
 * head (cap) still ends in exact bytes. */
static void test_copy_path_head_rides_with_body(void **state) {
    (void)state;
    const uint64_t size = 100 * KiB;
    for (size_t cap = 0; cap <= 5; cap += 5) {
        int fd = make_pattern_file(size + 11, NULL);
        int s, r;
        socketpair_nb(&s, &r);
        struct iovec hv, tv;
        sf_options_t o;
        opts_with(&o, &hv, HEAD, &tv, TAIL);
        o.flags = SF_NO_SENDFILE;
        sf_region_t reg = {fd, NULL, 11, size};
        seam_install();
        seam.sendmsg.fault = (seam_fault_t){.cap = cap, .first = 1, .times = 1};
        reader_t rd = {.keep = 1};
        done_rec_t d;
        assert_int_equal(transfer_collect(s, r, &reg, &o, &rd, &d), 0);
        assert_int_equal(d.status, 0);
        assert_true(wire_matches(rd.buf, rd.len, HEAD, 11, size, TAIL));
        if (cap == 0) assert_true(seam.sendmsg.log[0].count == strlen(HEAD) + seam.pread.log[0].ret);
        else assert_true(seam.sendmsg.log[1].count == strlen(HEAD) - cap + seam.pread.log[0].ret);
        seam_uninstall();
        reader_free(&rd);
        close(s);
        close(r);
        close(fd);
    }
}

/* Head and tail far larger than the socket buffer, around small and large
 * bodies: every partial write of the head / the one writev must resume at
 * the right byte. */
static char *text_of(size_t n, char base) {
    char *t = malloc(n + 1);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++) t[i] = (char)(base + (char)(i % 23));
    t[n] = '\0';
    return t;
}

static void test_large_head_and_tail(void **state) {
    (void)state;
    int fd = make_pattern_file(1 * MiB, NULL);
    char *head = text_of(300000, 'a'), *tail = text_of(200001, 'A');
    const uint64_t counts[] = {0, 10, SF_SMALL_BODY_MAX, 700000};
    for (size_t i = 0; i < 4; i++) {
        seam_install();
        int s, r;
        socketpair_nb(&s, &r);
        small_buffers(s, r, 4096);
        struct iovec hv, tv;
        sf_options_t o;
        opts_with(&o, &hv, head, &tv, tail);
        sf_region_t reg = {fd, NULL, 17, counts[i]};
        reader_t rd = {.chunk = 1500, .keep = 1};
        done_rec_t d;
        assert_int_equal(transfer_collect(s, r, &reg, &o, &rd, &d), 0);
        assert_int_equal(d.status, 0);
        assert_int_equal(d.body_sent, counts[i]);
        assert_true(wire_matches(rd.buf, rd.len, head, 17, counts[i], tail));
        assert_true(seam.sendmsg.calls >= 5); /* the head alone took several writes */
        reader_free(&rd);
        close(s);
        close(r);
    }
    free(head);
    free(tail);
    close(fd);
}

/* Keep-alive: each done starts the next response on the same socket, from
 * inside the callback.  The responses arrive back to back, in order. */
struct chain {
    struct event_base *base;
    int sock, fd, left, fails;
    done_rec_t last;
};

static const struct span kChain[] = {{0, 100}, {5, 300000}, {1000, 0}, {77, SF_SMALL_BODY_MAX + 3}, {3, 9}};

static void chain_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    struct chain *c = arg;
    if (status != 0) c->fails++;
    if (c->left == 0) {
        record_done(t, status, sent, &c->last);
        return;
    }
    const struct span *sp = &kChain[5 - c->left--];
    sf_region_t reg = {c->fd, NULL, sp->off, sp->count};
    struct iovec hv, tv;
    sf_options_t o;
    opts_with(&o, &hv, HEAD, &tv, TAIL);
    if (sf_send_async(c->base, c->sock, &reg, &o, chain_done, c, NULL) != 0) c->fails++;
}

static void test_next_response_from_done(void **state) {
    (void)state;
    int fd = make_pattern_file(1 * MiB, NULL);
    int s, r;
    tcp_pair(&s, &r);
    small_buffers(s, r, 65536);
    struct chain c = {event_base_new(), s, fd, 5, 0, {0}};
    done_rec_init(&c.last, s);
    reader_t rd = {.fd = r, .keep = 1};
    reader_start(&rd);
    sf_region_t first = {fd, NULL, 0, 0};
    assert_int_equal(sf_send_async(c.base, s, &first, NULL, chain_done, &c, NULL), 0);
    assert_true(run_until(c.base, &c.last.calls));
    reader_join(&rd);
    assert_int_equal(c.fails, 0);
    size_t at = 0;
    for (int i = 0; i < 5; i++) {
        size_t n = strlen(HEAD) + kChain[i].count + strlen(TAIL);
        assert_true(at + n <= rd.len);
        assert_true(wire_matches(rd.buf + at, n, HEAD, kChain[i].off, kChain[i].count, TAIL));
        at += n;
    }
    assert_int_equal(at, rd.len);
    assert_int_equal(tcp_cork_is_on(s), 0);
    reader_free(&rd);
    event_base_free(c.base);
    close(s);
    close(r);
    close(fd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_whole_file_slow_reader_socketpair, teardown),
        cmocka_unit_test_teardown(test_whole_file_slow_reader_tcp, teardown),
        cmocka_unit_test_teardown(test_offsets_socketpair, teardown),
        cmocka_unit_test_teardown(test_offsets_tcp, teardown),
        cmocka_unit_test_teardown(test_path_region_closes_its_fd, teardown),
        cmocka_unit_test_teardown(test_sparse_region_crossing_4g, teardown),
        cmocka_unit_test_teardown(test_sendfile_call_clamped, teardown),
        cmocka_unit_test_teardown(test_small_body_one_sendmsg, teardown),
        cmocka_unit_test_teardown(test_just_over_small_uses_sendfile, teardown),
        cmocka_unit_test_teardown(test_cork_during_large_transfer, teardown),
        cmocka_unit_test_teardown(test_cork_during_large_transfer_ipv6, teardown),
        cmocka_unit_test_teardown(test_no_cork_flag, teardown),
        cmocka_unit_test_teardown(test_head_alone_needs_no_cork, teardown),
        cmocka_unit_test_teardown(test_trusted_skips_the_checks, teardown),
        cmocka_unit_test_teardown(test_trusted_write_only_file_fails_in_done, teardown),
        cmocka_unit_test_teardown(test_known_size_skips_fstat, teardown),
        cmocka_unit_test_teardown(test_copy_path_head_rides_with_body, teardown),
        cmocka_unit_test_teardown(test_known_size_bounds_and_refusals, teardown),
        cmocka_unit_test_teardown(test_caller_cork_left_alone, teardown),
        cmocka_unit_test_teardown(test_large_head_and_tail, teardown),
        cmocka_unit_test_teardown(test_next_response_from_done, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
