/* test_bufferevent.c -- sf_bufferevent_send over real sockets and real
 * libevent bufferevents: exact bytes (0 B to a 4.5 GiB sparse file), bytes
 * queued in the bufferevent going first, the bufferevent put back exactly
 * (callbacks, enabled events, timeouts) with input that arrived meanwhile
 * delivered, pipelined requests across a file response, a peer leaving
 * mid-body, a slow reader, a file truncated mid-body, sf_cancel and
 * bufferevent_free during the transfer, every refused kind of bufferevent,
 * and fd counts back at their baseline. */
#include <errno.h>
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
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#ifdef EVSF_TEST_OPENSSL
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#endif

#include "evsendfile.h"
#include "harness.h"

#define HEAD "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"
#define TAIL "\r\n--end\r\n"

static int teardown(void **state) {
    (void)state;
    files_cleanup();
    return 0;
}

/* ------------------------------------------------ a user's bufferevent */

typedef struct user {
    struct event_base *base;
    struct bufferevent *bev;
    int sock, peer;
    int reads, writes, events;
    short last_event;
    char in[256];
    size_t in_len;
    /* filled by user_done */
    done_rec_t d;
    int reads_at_done, events_at_done;
    int cancel_in_done; /* sf_cancel's answer from inside done */
    sf_transfer_t *handle;
    uint64_t progress_in_done;
    int free_in_done;
} user_t;

static void user_read(struct bufferevent *bev, void *arg) {
    user_t *u = arg;
    u->reads++;
    u->in_len += evbuffer_remove(bufferevent_get_input(bev), u->in + u->in_len, sizeof u->in - 1 - u->in_len);
}
static void user_write(struct bufferevent *bev, void *arg) {
    (void)bev;
    ((user_t *)arg)->writes++;
}
static void user_event(struct bufferevent *bev, short what, void *arg) {
    (void)bev;
    user_t *u = arg;
    u->events++;
    u->last_event = what;
}

static void user_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    user_t *u = arg;
    u->d.calls++;
    u->d.status = status;
    u->d.body_sent = sent;
    u->reads_at_done = u->reads;
    u->events_at_done = u->events;
    u->cancel_in_done = sf_cancel(t);
    u->progress_in_done = sf_transfer_body_sent(t);
    if (u->free_in_done) {
        bufferevent_free(u->bev);
        u->bev = NULL;
    }
}

/* A TCP pair; the sending end is wrapped in a bufferevent whose callbacks
 * are the user's, with `enabled` events on. */
static void user_open(user_t *u, int bev_opts, short enabled) {
    memset(u, 0, sizeof *u);
    done_rec_init(&u->d, -1);
    u->base = event_base_new();
    assert_non_null(u->base);
    tcp_pair(&u->sock, &u->peer);
    u->bev = bufferevent_socket_new(u->base, u->sock, bev_opts);
    assert_non_null(u->bev);
    bufferevent_setcb(u->bev, user_read, user_write, user_event, u);
    bufferevent_disable(u->bev, EV_READ | EV_WRITE);
    if (enabled) bufferevent_enable(u->bev, enabled);
}

/* The bufferevent is the user's again: same callbacks, same events. */
static void assert_restored(user_t *u, short enabled) {
    bufferevent_data_cb r, w;
    bufferevent_event_cb e;
    void *arg;
    bufferevent_getcb(u->bev, &r, &w, &e, &arg);
    assert_ptr_equal(r, user_read);
    assert_ptr_equal(w, user_write);
    assert_ptr_equal(e, user_event);
    assert_ptr_equal(arg, u);
    assert_int_equal(bufferevent_get_enabled(u->bev), enabled);
}

static void user_close(user_t *u) {
    if (u->bev) bufferevent_free(u->bev); /* BEV_OPT_CLOSE_ON_FREE closes u->sock */
    u->bev = NULL;
    event_base_loop(u->base, EVLOOP_NONBLOCK); /* libevent finalizes freed bufferevents from the loop */
    event_base_free(u->base);
    if (u->peer >= 0) close(u->peer);
}

static void spin(struct event_base *base, int turns) {
    for (int i = 0; i < turns; i++) event_base_loop(base, EVLOOP_NONBLOCK);
}

static int has_bytes(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) == 1;
}

/* One whole transfer on a user's bufferevent, collected by a reader thread. */
static void send_collect(user_t *u, const sf_region_t *reg, const sf_options_t *o, reader_t *rd) {
    rd->fd = u->peer;
    reader_start(rd);
    assert_int_equal(sf_bufferevent_send(u->bev, reg, o, user_done, u, &u->handle), 0);
    assert_true(run_until(u->base, &u->d.calls));
    shutdown(u->sock, SHUT_WR);
    reader_join(rd);
}

/* ------------------------------------------------------------ exact bytes */

static void test_exact_bytes(void **state) {
    (void)state;
    const uint64_t sizes[] = {0, 1, 4096, SF_SMALL_BODY_MAX, SF_SMALL_BODY_MAX + 1, 3 * MiB + 5};
    int before = quiet_fd_count();
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        int fd = make_pattern_file(sizes[i], NULL);
        for (int with_head = 0; with_head < 2; with_head++) {
            user_t u;
            user_open(&u, BEV_OPT_CLOSE_ON_FREE, EV_READ);
            struct iovec h, t;
            sf_options_t o;
            opts_with(&o, &h, with_head ? HEAD : NULL, &t, with_head ? TAIL : NULL);
            sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
            reader_t rd = {.keep = 1};
            send_collect(&u, &reg, &o, &rd);
            assert_int_equal(u.d.calls, 1);
            assert_int_equal(u.d.status, 0);
            assert_int_equal(u.d.body_sent, sizes[i]);
            assert_int_equal(u.cancel_in_done, -EALREADY);
            assert_int_equal(u.progress_in_done, 0); /* the handle is finished: nothing in flight */
            assert_true(wire_matches(rd.buf, rd.len, with_head ? HEAD : NULL, 0, sizes[i], with_head ? TAIL : NULL));
            assert_restored(&u, EV_READ);
            assert_int_equal(u.reads + u.writes + u.events, 0);
            reader_free(&rd);
            user_close(&u);
        }
        close(fd);
    }
    assert_int_equal(settled_fd_count(before), before);
}

/* The whole 4.5 GiB sparse file (counted), and a patterned window across
 * the 4 GiB mark checked byte by byte. */
static void test_sparse_4_5_gib(void **state) {
    (void)state;
    const uint64_t four = 4 * GiB, size = four + GiB / 2;
    const uint64_t lo = four - 1 * MiB - 3, hi = four + 1 * MiB + 7;
    int before = quiet_fd_count();
    int fd = make_sparse_file(size, NULL);
    write_pattern_at(fd, lo, (size_t)(hi - lo));

    user_t u;
    user_open(&u, BEV_OPT_CLOSE_ON_FREE, EV_READ);
    sf_region_t whole = {fd, NULL, 0, SF_COUNT_TO_EOF};
    reader_t rd = {.chunk = 1 << 20};
    send_collect(&u, &whole, NULL, &rd);
    assert_int_equal(u.d.status, 0);
    assert_int_equal(u.d.body_sent, size);
    assert_int_equal(rd.total, size);
    assert_restored(&u, EV_READ);
    user_close(&u);

    const uint64_t off = four - 3 * MiB - 5, count = 6 * MiB + 11;
    user_open(&u, BEV_OPT_CLOSE_ON_FREE, EV_READ);
    sf_region_t window = {fd, NULL, off, count};
    reader_t rd2 = {.keep = 1};
    send_collect(&u, &window, NULL, &rd2);
    assert_int_equal(u.d.status, 0);
    assert_int_equal(rd2.len, count);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t at = off + i;
        uint8_t want = (at >= lo && at < hi) ? pattern_byte(at) : 0;
        if (rd2.buf[i] != want) fail_msg("byte at file offset %llu: got %u want %u", (unsigned long long)at,
                                         rd2.buf[i], want);
    }
    reader_free(&rd2);
    user_close(&u);
    close(fd);
    assert_int_equal(settled_fd_count(before), before);
}

/* Bytes the user queued in the bufferevent go first, even when the user
 * had EV_WRITE disabled and the queue takes many writes; then head, body,
 * tail.  The bufferevent comes back with EV_WRITE still disabled. */
static void test_queued_output_goes_first(void **state) {
    (void)state;
    const size_t queued = 700 * 1000;
    uint8_t *q = malloc(queued);
    assert_non_null(q);
    for (size_t i = 0; i < queued; i++) q[i] = (uint8_t)('a' + i % 26);
    const uint64_t size = 2 * MiB + 3;
    int before = quiet_fd_count();
    int fd = make_pattern_file(size, NULL);

    user_t u;
    user_open(&u, BEV_OPT_CLOSE_ON_FREE, EV_READ);
    small_buffers(u.sock, u.peer, 32 * 1024);
    assert_int_equal(bufferevent_write(u.bev, q, queued), 0);
    struct iovec h, t;
    sf_options_t o;
    opts_with(&o, &h, HEAD, &t, TAIL);
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    reader_t rd = {.keep = 1, .pace_us = 100, .chunk = 16 * 1024};
    send_collect(&u, &reg, &o, &rd);
    assert_int_equal(u.d.status, 0);
    assert_int_equal(u.d.body_sent, size);
    assert_true(rd.len > queued);
    assert_memory_equal(rd.buf, q, queued);
    assert_true(wire_matches(rd.buf + queued, rd.len - queued, HEAD, 0, size, TAIL));
    assert_restored(&u, EV_READ);
    assert_int_equal(evbuffer_get_length(bufferevent_get_output(u.bev)), 0);
    reader_free(&rd);
    user_close(&u);
    close(fd);
    free(q);
    assert_int_equal(settled_fd_count(before), before);
}

/* Nothing of the user's runs while the engine owns the socket: input sent
 * during the transfer is read only after done (and then delivered), a read
 * timeout does not fire during it and works again after it. */
static void test_input_meanwhile_and_timeouts(void **state) {
    (void)state;
    const uint64_t size = 4 * MiB;
    int fd = make_pattern_file(size, NULL);
    user_t u;
    user_open(&u, BEV_OPT_CLOSE_ON_FREE, EV_READ);
    small_buffers(u.sock, u.peer, 32 * 1024);
    struct timeval rto = {0, 30 * 1000};
    bufferevent_set_timeouts(u.bev, &rto, NULL);
    assert_int_equal(write(u.peer, "NEXT", 4), 4); /* arrives before and during the transfer */
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    reader_t rd = {.pace_us = 2000, .chunk = 32 * 1024, .fd = u.peer};
    reader_start(&rd);
    assert_int_equal(sf_bufferevent_send(u.bev, &reg, NULL, user_done, &u, NULL), 0);
    assert_true(run_until(u.base, &u.d.calls));
    assert_int_equal(u.d.status, 0);
    assert_int_equal(u.reads_at_done, 0);
    assert_int_equal(u.events_at_done, 0);
    assert_restored(&u, EV_READ);
    /* Then the input that waited is delivered... */
    while (u.in_len < 4 && run_until(u.base, &u.reads)) {
    }
    assert_int_equal(u.in_len, 4);
    assert_memory_equal(u.in, "NEXT", 4);
    /* ...and the read timeout is armed again. */
    assert_true(run_until(u.base, &u.events));
    assert_int_equal(u.last_event, BEV_EVENT_TIMEOUT | BEV_EVENT_READING);
    shutdown(u.sock, SHUT_WR);
    reader_join(&rd);
    assert_int_equal(rd.total, size);
    user_close(&u);
    close(fd);
}

/* ---------------------------------------------- pipelining across a file */

typedef struct proto {
    user_t u;
    int file;
    uint64_t size;
    int busy, quit, shut;
} proto_t;

static void proto_serve(proto_t *p);

static void proto_write(struct bufferevent *bev, void *arg) {
    proto_t *p = arg;
    if (p->quit && !p->shut && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        shutdown(p->u.sock, SHUT_WR);
        p->shut = 1;
    }
}

static void proto_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    (void)t;
    proto_t *p = arg;
    p->u.d.calls++;
    p->u.d.status = status;
    p->u.d.body_sent = sent;
    p->busy = 0;
    proto_serve(p); /* requests that were already read wait for us */
}

/* Line protocol: "A" -> "alpha\n", "F" -> the file (head "file:"), "B" ->
 * "beta\n", "Q" -> shut the write side.  Answers in order, one at a time. */
static void proto_serve(proto_t *p) {
    struct evbuffer *in = bufferevent_get_input(p->u.bev);
    char *line;
    while (!p->busy && (line = evbuffer_readln(in, NULL, EVBUFFER_EOL_LF)) != NULL) {
        if (strcmp(line, "A") == 0) {
            bufferevent_write(p->u.bev, "alpha\n", 6);
        } else if (strcmp(line, "B") == 0) {
            bufferevent_write(p->u.bev, "beta\n", 5);
        } else if (strcmp(line, "Q") == 0) {
            p->quit = 1;
            proto_write(p->u.bev, p);
        } else if (strcmp(line, "F") == 0) {
            static struct iovec head = {"file:", 5};
            sf_options_t o;
            sf_options_init(&o);
            o.head = &head;
            o.head_count = 1;
            sf_region_t reg = {p->file, NULL, 0, SF_COUNT_TO_EOF};
            p->busy = 1;
            int rc = sf_bufferevent_send(p->u.bev, &reg, &o, proto_done, p, NULL);
            if (rc != 0) fail_msg("sf_bufferevent_send: %s", sf_err_text(rc));
        }
        free(line);
    }
}

static void proto_read(struct bufferevent *bev, void *arg) {
    (void)bev;
    proto_serve(arg);
}

static void pipelined(int split) {
    proto_t p;
    memset(&p, 0, sizeof p);
    p.size = 3 * MiB + 1;
    int before = quiet_fd_count();
    p.file = make_pattern_file(p.size, NULL);
    user_open(&p.u, BEV_OPT_CLOSE_ON_FREE, 0);
    bufferevent_setcb(p.u.bev, proto_read, proto_write, NULL, &p);
    bufferevent_enable(p.u.bev, EV_READ | EV_WRITE);
    small_buffers(p.u.sock, p.u.peer, 64 * 1024);
    reader_t rd = {.keep = 1, .fd = p.u.peer, .pace_us = 50};
    reader_start(&rd);
    if (!split) {
        assert_int_equal(write(p.u.peer, "A\nF\nB\nQ\n", 8), 8); /* all three at once */
    } else {
        assert_int_equal(write(p.u.peer, "A\nF\n", 4), 4);
        assert_true(run_until(p.u.base, &p.busy)); /* the file is on its way... */
        assert_int_equal(write(p.u.peer, "B\nQ\n", 4), 4); /* ...when the next requests arrive */
    }
    assert_true(run_until(p.u.base, &p.shut));
    reader_join(&rd); /* EOF: "Q" was served after everything else */
    assert_int_equal(p.u.d.status, 0);
    const size_t a = 6, fh = 5, b = 5;
    assert_int_equal(rd.len, a + fh + p.size + b);
    assert_memory_equal(rd.buf, "alpha\nfile:", a + fh);
    assert_int_equal(pattern_mismatch(rd.buf + a + fh, 0, (size_t)p.size), -1);
    assert_memory_equal(rd.buf + a + fh + p.size, "beta\n", b);
    reader_free(&rd);
    user_close(&p.u);
    close(p.file);
    assert_int_equal(settled_fd_count(before), before);
}

static void test_pipelined_requests_across_a_file(void **state) {
    (void)state;
    pipelined(0);
}

static void test_request_arriving_during_the_file(void **state) {
    (void)state;
    pipelined(1);
}

/* ------------------------------------------------------ peers and files */

static void test_peer_leaves_mid_body(void **state) {
    (void)state;
    const uint64_t size = 64 * MiB;
    int fd = make_pattern_file(size, NULL);
    int before = quiet_fd_count();
    user_t u;
    user_open(&u, BEV_OPT_CLOSE_ON_FREE, EV_READ | EV_WRITE);
    small_buffers(u.sock, u.peer, 64 * 1024);
    reader_t rd = {.close_after = 300 * 1000};
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    send_collect(&u, &reg, NULL, &rd);
    u.peer = -1; /* the reader closed it */
    assert_int_equal(u.d.calls, 1);
    assert_true(u.d.status == -EPIPE || u.d.status == -ECONNRESET);
    assert_true(u.d.body_sent < size);
    assert_restored(&u, EV_READ | EV_WRITE);
    user_close(&u);
    close(fd);
    assert_int_equal(count_open_fds(), before - 1); /* the file made after `before` is closed too */
}

static void test_slow_reader(void **state) {
    (void)state;
    const uint64_t size = 2 * MiB + 77;
    int fd = make_pattern_file(size, NULL);
    user_t u;
    user_open(&u, BEV_OPT_CLOSE_ON_FREE, EV_READ);
    small_buffers(u.sock, u.peer, 16 * 1024);
    struct iovec h, t;
    sf_options_t o;
    opts_with(&o, &h, HEAD, &t, TAIL);
    o.idle_timeout_ms = 30000;
    sf_region_t reg = {fd, NULL, 100, SF_COUNT_TO_EOF};
    reader_t rd = {.keep = 1, .chunk = 4096, .pace_us = 300};
    send_collect(&u, &reg, &o, &rd);
    assert_int_equal(u.d.status, 0);
    assert_true(wire_matches(rd.buf, rd.len, HEAD, 100, size - 100, TAIL));
    reader_free(&rd);
    user_close(&u);
    close(fd);
}

/* The file shrinks while the peer is not reading: SF_ETRUNCATED, and
 * body_sent is what the peer got. */
static void test_truncated_mid_body(void **state) {
    (void)state;
    const uint64_t size = 8 * MiB, cut = 4 * MiB;
    int fd = make_pattern_file(size, NULL);
    user_t u;
    user_open(&u, BEV_OPT_CLOSE_ON_FREE, EV_READ);
    small_buffers(u.sock, u.peer, 64 * 1024);
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    assert_int_equal(sf_bufferevent_send(u.bev, &reg, NULL, user_done, &u, &u.handle), 0);
    spin(u.base, 20);
    assert_int_equal(u.d.calls, 0);
    uint64_t sent = sf_transfer_body_sent(u.handle);
    assert_true(sent > 0 && sent < cut);
    assert_int_equal(ftruncate(fd, (off_t)cut), 0);
    reader_t rd = {.fd = u.peer};
    reader_start(&rd);
    assert_true(run_until(u.base, &u.d.calls));
    assert_int_equal(u.d.status, SF_ETRUNCATED);
    assert_int_equal(u.d.body_sent, cut);
    assert_restored(&u, EV_READ);
    shutdown(u.sock, SHUT_WR);
    reader_join(&rd);
    assert_int_equal(rd.total, cut);
    user_close(&u);
    close(fd);
}

/* ------------------------------------------------- cancel and free mid-way */

/* sf_cancel while the engine runs, and while queued bytes still flush:
 * done never runs, the bufferevent is back at once (EV_WRITE as the user
 * had it, the unflushed bytes still queued), the fds are released. */
static void test_cancel_mid_transfer(void **state) {
    (void)state;
    int fd = make_pattern_file(8 * MiB, NULL);
    int before = quiet_fd_count();
    for (int queued = 0; queued < 2; queued++) {
        user_t u;
        user_open(&u, BEV_OPT_CLOSE_ON_FREE, EV_READ);
        small_buffers(u.sock, u.peer, 32 * 1024);
        static uint8_t q[1 << 20];
        if (queued) bufferevent_write(u.bev, q, sizeof q);
        sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
        assert_int_equal(sf_bufferevent_send(u.bev, &reg, NULL, user_done, &u, &u.handle), 0);
        spin(u.base, 20);
        if (queued) {
            assert_int_equal(sf_transfer_body_sent(u.handle), 0);
            assert_true(evbuffer_get_length(bufferevent_get_output(u.bev)) > 0);
        } else {
            assert_true(sf_transfer_body_sent(u.handle) > 0);
        }
        assert_int_equal(sf_cancel(u.handle), 0);
        assert_restored(&u, EV_READ);
        spin(u.base, 20);
        assert_int_equal(u.d.calls, 0);
        user_close(&u);
        assert_int_equal(settled_fd_count(before), before);
    }
    close(fd);
}

/* sf_cancel_all on the base: the bufferevent transfer is cancelled like one
 * of sf_send_async (counted once), and its bufferevent put back. */
static void test_cancel_all_on_the_base(void **state) {
    (void)state;
    int before = quiet_fd_count();
    int fd = make_pattern_file(8 * MiB, NULL);
    user_t u;
    user_open(&u, BEV_OPT_CLOSE_ON_FREE, EV_READ);
    small_buffers(u.sock, u.peer, 32 * 1024);
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    assert_int_equal(sf_bufferevent_send(u.bev, &reg, NULL, user_done, &u, NULL), 0);
    spin(u.base, 10);
    assert_int_equal(sf_cancel_all(u.base), 1);
    assert_restored(&u, EV_READ);
    assert_int_equal(sf_cancel_all(u.base), 0);
    spin(u.base, 10);
    assert_int_equal(u.d.calls, 0);
    user_close(&u);
    close(fd);
    assert_int_equal(settled_fd_count(before), before);
}

/* bufferevent_free (BEV_OPT_CLOSE_ON_FREE) during the transfer, in either
 * phase: done runs once with -ECANCELED, the socket is closed (the peer sees
 * EOF), nothing leaks (ASan, valgrind). */
static void test_free_mid_transfer(void **state) {
    (void)state;
    int fd = make_pattern_file(8 * MiB, NULL);
    int before = quiet_fd_count();
    for (int queued = 0; queued < 2; queued++) {
        user_t u;
        user_open(&u, BEV_OPT_CLOSE_ON_FREE, EV_READ);
        int open_now = count_open_fds();
        small_buffers(u.sock, u.peer, 32 * 1024);
        static uint8_t q[1 << 20];
        if (queued) bufferevent_write(u.bev, q, sizeof q);
        sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
        assert_int_equal(sf_bufferevent_send(u.bev, &reg, NULL, user_done, &u, NULL), 0);
        spin(u.base, 20);
        bufferevent_free(u.bev);
        u.bev = NULL;
        spin(u.base, 20);
        assert_int_equal(count_open_fds(), open_now - 1); /* the socket is closed */
        reader_t rd = {.fd = u.peer};
        reader_start(&rd);
        reader_join(&rd); /* EOF */
        assert_true(rd.total < 8 * MiB + (queued ? sizeof q : 0));
        spin(u.base, 5);
        assert_int_equal(u.d.calls, 1);
        assert_int_equal(u.d.status, -ECANCELED);
        user_close(&u);
        assert_int_equal(settled_fd_count(before), before);
    }
    close(fd);
}

/* Freeing the bufferevent from done (the usual way to end a connection). */
static void test_free_from_done(void **state) {
    (void)state;
    int before = quiet_fd_count();
    int fd = make_pattern_file(1 * MiB, NULL);
    user_t u;
    user_open(&u, BEV_OPT_CLOSE_ON_FREE, EV_READ);
    u.free_in_done = 1;
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    reader_t rd = {.fd = u.peer};
    reader_start(&rd);
    assert_int_equal(sf_bufferevent_send(u.bev, &reg, NULL, user_done, &u, NULL), 0);
    assert_true(run_until(u.base, &u.d.calls));
    assert_int_equal(u.d.status, 0);
    reader_join(&rd); /* EOF: the free closed the socket */
    assert_int_equal(rd.total, 1 * MiB);
    user_close(&u);
    close(fd);
    assert_int_equal(settled_fd_count(before), before);
}

/* ---------------------------------------------------------- refusals */

/* A refused call leaves the bufferevent untouched and never calls done. */
static void assert_refused(user_t *u, struct bufferevent *bev, int want) {
    int fd = make_pattern_file(4096, NULL);
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    bufferevent_setcb(bev, user_read, user_write, user_event, u);
    short enabled = bufferevent_get_enabled(bev);
    int rc = sf_bufferevent_send(bev, &reg, NULL, user_done, u, NULL);
    if (rc != want) fail_msg("got %s, want %s", sf_err_name(rc), sf_err_name(want));
    bufferevent_data_cb r;
    void *arg;
    bufferevent_getcb(bev, &r, NULL, NULL, &arg);
    assert_ptr_equal(r, user_read);
    assert_ptr_equal(arg, u);
    assert_int_equal(bufferevent_get_enabled(bev), enabled);
    spin(u->base, 5);
    assert_int_equal(u->d.calls, 0);
    close(fd);
}

static void test_refused_kinds(void **state) {
    (void)state;
    int before = quiet_fd_count();
    user_t u;
    user_open(&u, BEV_OPT_CLOSE_ON_FREE, EV_READ);

    struct bufferevent *pair[2];
    assert_int_equal(bufferevent_pair_new(u.base, 0, pair), 0);
    assert_refused(&u, pair[0], -EOPNOTSUPP);
    bufferevent_free(pair[0]);
    bufferevent_free(pair[1]);

    int s2, p2;
    tcp_pair(&s2, &p2);
    struct bufferevent *under = bufferevent_socket_new(u.base, s2, BEV_OPT_CLOSE_ON_FREE);
    struct bufferevent *filter = bufferevent_filter_new(under, NULL, NULL, BEV_OPT_CLOSE_ON_FREE, NULL, NULL);
    assert_non_null(filter);
    assert_refused(&u, filter, -EOPNOTSUPP);
    bufferevent_free(filter); /* and `under`, and s2 */
    spin(u.base, 2);
    close(p2);

    struct timeval tick = {1, 0};
    struct ev_token_bucket_cfg *cfg = ev_token_bucket_cfg_new(1 << 20, 1 << 20, 1 << 20, 1 << 20, &tick);
    assert_int_equal(bufferevent_set_rate_limit(u.bev, cfg), 0);
    assert_refused(&u, u.bev, -EOPNOTSUPP);
    assert_int_equal(bufferevent_set_rate_limit(u.bev, NULL), 0);

    struct ev_token_bucket_cfg *slow = ev_token_bucket_cfg_new(1000, 1000, 1000, 1000, &tick);
    struct bufferevent_rate_limit_group *group = bufferevent_rate_limit_group_new(u.base, slow);
    assert_int_equal(bufferevent_add_to_rate_limit_group(u.bev, group), 0);
    assert_refused(&u, u.bev, -EOPNOTSUPP);
    assert_int_equal(bufferevent_remove_from_rate_limit_group(u.bev), 0);
    bufferevent_rate_limit_group_free(group);

    struct bufferevent *nofd = bufferevent_socket_new(u.base, -1, 0);
    assert_refused(&u, nofd, -EBADF);
    bufferevent_free(nofd);

    /* The same bufferevent, no longer limited, is accepted. */
    int fd = make_pattern_file(4096, NULL);
    sf_region_t reg = {fd, NULL, 0, SF_COUNT_TO_EOF};
    reader_t rd = {.fd = u.peer};
    send_collect(&u, &reg, NULL, &rd);
    assert_int_equal(u.d.status, 0);
    assert_int_equal(rd.total, 4096);
    /* Bad arguments and a bad region: synchronous, bufferevent untouched. */
    assert_int_equal(sf_bufferevent_send(NULL, &reg, NULL, user_done, &u, NULL), -EINVAL);
    assert_int_equal(sf_bufferevent_send(u.bev, NULL, NULL, user_done, &u, NULL), -EINVAL);
    assert_int_equal(sf_bufferevent_send(u.bev, &reg, NULL, NULL, &u, NULL), -EINVAL);
    sf_region_t missing = {-1, "/nonexistent/evsf", 0, SF_COUNT_TO_EOF};
    assert_int_equal(sf_bufferevent_send(u.bev, &missing, NULL, user_done, &u, NULL), -ENOENT);
    assert_restored(&u, EV_READ);
    assert_int_equal(u.d.calls, 1); /* only the transfer above */
    close(fd);
    ev_token_bucket_cfg_free(cfg);
    ev_token_bucket_cfg_free(slow);
    user_close(&u);
    assert_int_equal(settled_fd_count(before), before);
}

#ifdef EVSF_TEST_OPENSSL
/* An OpenSSL bufferevent on a plain socket (no kernel TLS): SF_ENOKTLS. */
static void test_refused_openssl_without_ktls(void **state) {
    (void)state;
    int before = quiet_fd_count();
    user_t u;
    user_open(&u, BEV_OPT_CLOSE_ON_FREE, EV_READ);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    int s2, p2;
    tcp_pair(&s2, &p2);
    struct bufferevent *ssl = bufferevent_openssl_socket_new(u.base, s2, SSL_new(ctx), BUFFEREVENT_SSL_OPEN,
                                                             BEV_OPT_CLOSE_ON_FREE);
    assert_non_null(ssl);
    assert_refused(&u, ssl, SF_ENOKTLS);
    assert_false(has_bytes(p2)); /* nothing went out around OpenSSL */
    bufferevent_free(ssl);
    spin(u.base, 2);
    close(p2);
    SSL_CTX_free(ctx);
    user_close(&u);
    assert_int_equal(settled_fd_count(before), before);
}
#endif

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_exact_bytes, teardown),
        cmocka_unit_test_teardown(test_sparse_4_5_gib, teardown),
        cmocka_unit_test_teardown(test_queued_output_goes_first, teardown),
        cmocka_unit_test_teardown(test_input_meanwhile_and_timeouts, teardown),
        cmocka_unit_test_teardown(test_pipelined_requests_across_a_file, teardown),
        cmocka_unit_test_teardown(test_request_arriving_during_the_file, teardown),
        cmocka_unit_test_teardown(test_peer_leaves_mid_body, teardown),
        cmocka_unit_test_teardown(test_slow_reader, teardown),
        cmocka_unit_test_teardown(test_truncated_mid_body, teardown),
        cmocka_unit_test_teardown(test_cancel_mid_transfer, teardown),
        cmocka_unit_test_teardown(test_cancel_all_on_the_base, teardown),
        cmocka_unit_test_teardown(test_free_mid_transfer, teardown),
        cmocka_unit_test_teardown(test_free_from_done, teardown),
        cmocka_unit_test_teardown(test_refused_kinds, teardown),
#ifdef EVSF_TEST_OPENSSL
        cmocka_unit_test_teardown(test_refused_openssl_without_ktls, teardown),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
