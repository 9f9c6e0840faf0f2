/* test_evhttp.c -- sf_evhttp_send_file behind a real evhttp server, with a
 * raw-socket client thread: exact bytes (0 B to a 4.5 GiB sparse file),
 * headers (Content-Length set, the caller's kept, no chunked framing), HEAD,
 * three pipelined requests on one keep-alive connection with the file in the
 * middle, a client leaving mid-body, a slow reader, a file truncated
 * mid-body (the connection closes), evhttp_free mid-body, a missing file
 * (synchronous error, the caller answers 404), SF_SHUT_WR refused the same
 * way, a bufferevent the engine refuses (evhttp's own path), and fd counts
 * back at their baseline. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "evsendfile_evhttp.h"
#include "harness.h"

static int teardown(void **state) {
    (void)state;
    files_cleanup();
    return 0;
}

/* ------------------------------------------------------------- server */

typedef struct server {
    struct event_base *base;
    struct evhttp *http;
    int port;
    int file_fd;
    int started; /* handler ran sf_evhttp_send_file */
    int dones, last_status;
    uint64_t last_sent;
    int client_done; /* set from the loop when the client thread ends */
} server_t;

static void server_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    (void)t;
    server_t *s = arg;
    s->dones++;
    s->last_status = status;
    s->last_sent = sent;
}

static void handler(struct evhttp_request *req, void *arg) {
    server_t *s = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (strcmp(path, "/small") == 0) {
        struct evbuffer *b = evbuffer_new();
        evbuffer_add(b, "small\n", 6);
        evhttp_send_reply(req, 200, "OK", b);
        evbuffer_free(b);
        return;
    }
    sf_region_t reg = {s->file_fd, NULL, 0, SF_COUNT_TO_EOF};
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (strcmp(path, "/missing") == 0) {
        reg = (sf_region_t){-1, "/nonexistent/evsf", 0, SF_COUNT_TO_EOF};
    } else if (strcmp(path, "/shut") != 0) {
        evhttp_add_header(h, "X-Kept", "yes");
        evhttp_add_header(h, "Content-Length", "999"); /* replaced */
    }
    sf_options_t o;
    sf_options_init(&o);
    o.idle_timeout_ms = 30000;
    if (strcmp(path, "/shut") == 0) o.flags = SF_SHUT_WR; /* refused: evhttp owns the connection's end */
    int rc = sf_evhttp_send_file(req, 200, "OK", &reg, &o, server_done, s);
    if (rc == 0) {
        s->started = 1;
    } else {
        s->last_status = rc; /* nothing was sent, req is as it was: the caller answers */
        struct evbuffer *b = evbuffer_new();
        evbuffer_add(b, "gone\n", 5);
        evhttp_send_reply(req, 404, "Not Found", b);
        evbuffer_free(b);
    }
}

static void server_open(server_t *s, int file_fd) {
    memset(s, 0, sizeof *s);
    s->file_fd = file_fd;
    s->base = event_base_new();
    s->http = evhttp_new(s->base);
    assert_non_null(s->http);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(s->http, handler, s);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    assert_non_null(bs);
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &len), 0);
    s->port = ntohs(sin.sin_port);
}

static void server_close(server_t *s) {
    if (s->http) evhttp_free(s->http);
    event_base_loop(s->base, EVLOOP_NONBLOCK); /* finalizes freed bufferevents */
    event_base_free(s->base);
}

/* ------------------------------------------------------------- client */

typedef struct client {
    int fd;
    const char *request;
    size_t keep_max;      /* bytes kept in buf (the rest only counted) */
    unsigned pace_us;     /* pause between reads */
    uint64_t close_after; /* close after this many bytes (0 = read to EOF) */
    int no_send;          /* the request was written already */
    int wake;             /* write end of a pipe the server loop watches */
    uint8_t *buf;
    size_t len;
    uint64_t total;
    pthread_t thread;
} client_t;

static void *client_main(void *arg) {
    client_t *c = arg;
    if (!c->no_send) {
        size_t n = strlen(c->request);
        if (write(c->fd, c->request, n) != (ssize_t)n) abort();
    }
    static __thread uint8_t tmp[1 << 16];
    for (;;) {
        size_t want = sizeof tmp;
        if (c->pace_us) want = 4096;
        if (c->close_after && c->close_after - c->total < want) want = (size_t)(c->close_after - c->total);
        ssize_t n = read(c->fd, tmp, want);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        size_t keep = c->len < c->keep_max ? c->keep_max - c->len : 0;
        if (keep > (size_t)n) keep = (size_t)n;
        memcpy(c->buf + c->len, tmp, keep);
        c->len += keep;
        c->total += (uint64_t)n;
        if (c->close_after && c->total >= c->close_after) break;
        if (c->pace_us) {
            struct timespec ts = {0, (long)c->pace_us * 1000};
            nanosleep(&ts, NULL); /* the slow peer is the scenario, not a wait */
        }
    }
    close(c->fd);
    c->fd = -1;
    if (write(c->wake, "x", 1) != 1) abort();
    return NULL;
}

static void on_client_done(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    char x;
    if (read(fd, &x, 1) == 1) ((server_t *)arg)->client_done = 1;
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    return fd;
}

/* Runs the server until the client thread has read to EOF (or closed). */
static void client_run(server_t *s, client_t *c) {
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    c->wake = p[1];
    if (c->fd <= 0) c->fd = connect_to(s->port);
    if (c->keep_max == 0) c->keep_max = 16 * MiB;
    c->buf = malloc(c->keep_max);
    struct event *ev = event_new(s->base, p[0], EV_READ, on_client_done, s);
    event_add(ev, NULL);
    s->client_done = 0;
    pthread_create(&c->thread, NULL, client_main, c);
    run_until(s->base, &s->client_done);
    pthread_join(c->thread, NULL);
    event_free(ev);
    close(p[0]);
    close(p[1]);
}

/* One response at buf[*pos]: its status, Content-Length (-1: none) and
 * header block; *pos moves past the body (or to the end of what is kept). */
typedef struct response {
    int status;
    long long length;
    char head[2048];
    const uint8_t *body;
    size_t body_len; /* what is kept of it */
} response_t;

static int parse_response(const client_t *c, size_t *pos, response_t *r) {
    const char *start = (const char *)c->buf + *pos;
    size_t avail = c->len - *pos;
    const char *end = memmem(start, avail, "\r\n\r\n", 4);
    if (end == NULL) return 0;
    size_t hlen = (size_t)(end - start) + 4;
    if (hlen >= sizeof r->head) return 0;
    memcpy(r->head, start, hlen);
    r->head[hlen] = '\0';
    r->status = atoi(r->head + 9);
    r->length = -1;
    const char *cl = strcasestr(r->head, "\r\nContent-Length:");
    if (cl) r->length = atoll(cl + 17);
    r->body = (const uint8_t *)start + hlen;
    size_t body = r->length > 0 ? (size_t)r->length : 0;
    r->body_len = avail - hlen < body ? avail - hlen : body;
    *pos += hlen + r->body_len;
    return 1;
}

static int count_headers(const char *head, const char *name) {
    int n = 0;
    for (const char *p = head; (p = strcasestr(p, name)) != NULL; p++) n++;
    return n;
}

#define GET_CLOSE(path) "GET " path " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\n\r\n"

/* ---------------------------------------------------------------- tests */

static void test_exact_bytes_and_headers(void **state) {
    (void)state;
    const uint64_t sizes[] = {0, 1, SF_SMALL_BODY_MAX + 1, 3 * MiB + 5};
    int before = quiet_fd_count();
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        int fd = make_pattern_file(sizes[i], NULL);
        server_t s;
        server_open(&s, fd);
        client_t c = {.request = GET_CLOSE("/file")};
        client_run(&s, &c);
        size_t pos = 0;
        response_t r;
        assert_true(parse_response(&c, &pos, &r));
        assert_int_equal(r.status, 200);
        assert_int_equal(r.length, (long long)sizes[i]);
        assert_int_equal(count_headers(r.head, "\r\nContent-Length:"), 1);
        assert_null(strcasestr(r.head, "Transfer-Encoding"));
        assert_non_null(strstr(r.head, "\r\nX-Kept: yes\r\n"));
        assert_int_equal(r.body_len, sizes[i]);
        assert_int_equal(pattern_mismatch(r.body, 0, r.body_len), -1);
        assert_int_equal(pos, c.len); /* nothing after the body */
        assert_int_equal(s.dones, 1);
        assert_int_equal(s.last_status, 0);
        assert_int_equal(s.last_sent, sizes[i]);
        free(c.buf);
        server_close(&s);
        close(fd);
        assert_int_equal(settled_fd_count(before), before);
    }
}

static void test_sparse_4_5_gib(void **state) {
    (void)state;
    const uint64_t size = 4 * GiB + GiB / 2;
    int fd = make_sparse_file(size, NULL);
    write_pattern_at(fd, 4 * GiB - 100, 200);
    server_t s;
    server_open(&s, fd);
    client_t c = {.request = GET_CLOSE("/file"), .keep_max = 64 * KiB};
    client_run(&s, &c);
    size_t pos = 0;
    response_t r;
    assert_true(parse_response(&c, &pos, &r));
    assert_int_equal(r.length, (long long)size);
    assert_int_equal(c.total, strlen(r.head) + size);
    assert_int_equal(s.last_status, 0);
    assert_int_equal(s.last_sent, size);
    free(c.buf);
    server_close(&s);
    close(fd);
}

/* Three requests in one write on one keep-alive connection, the file in the
 * middle: three responses, in order, with exact bodies. */
static void test_pipelined_keep_alive(void **state) {
    (void)state;
    const uint64_t size = 3 * MiB + 1;
    int before = quiet_fd_count();
    int fd = make_pattern_file(size, NULL);
    server_t s;
    server_open(&s, fd);
    client_t c = {.request = GET("/small") GET("/file") GET_CLOSE("/small")};
    client_run(&s, &c);
    size_t pos = 0;
    response_t r;
    assert_true(parse_response(&c, &pos, &r));
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body, "small\n", 6);
    assert_true(parse_response(&c, &pos, &r));
    assert_int_equal(r.length, (long long)size);
    assert_int_equal(r.body_len, size);
    assert_int_equal(pattern_mismatch(r.body, 0, size), -1);
    assert_true(parse_response(&c, &pos, &r));
    assert_int_equal(r.status, 200);
    assert_memory_equal(r.body, "small\n", 6);
    assert_int_equal(pos, c.len);
    assert_int_equal(s.dones, 1);
    free(c.buf);
    server_close(&s);
    close(fd);
    assert_int_equal(settled_fd_count(before), before);
}

/* HEAD: the head with the file's Content-Length and no body; the next
 * response on the connection follows at once. */
static void test_head_then_get(void **state) {
    (void)state;
    const uint64_t size = 1 * MiB;
    int fd = make_pattern_file(size, NULL);
    server_t s;
    server_open(&s, fd);
    client_t c = {.request = "HEAD /file HTTP/1.1\r\nHost: t\r\n\r\n" GET_CLOSE("/small")};
    client_run(&s, &c);
    size_t pos = 0;
    response_t r;
    assert_true(parse_response(&c, &pos, &r));
    assert_int_equal(r.status, 200);
    assert_int_equal(r.length, (long long)size);
    pos -= r.body_len; /* HEAD: nothing follows the head */
    assert_true(parse_response(&c, &pos, &r));
    assert_memory_equal(r.body, "small\n", 6);
    assert_int_equal(pos, c.len);
    assert_int_equal(s.dones, 1);
    assert_int_equal(s.last_status, 0);
    assert_int_equal(s.last_sent, 0);
    free(c.buf);
    server_close(&s);
    close(fd);
}

static void test_client_leaves_mid_body(void **state) {
    (void)state;
    int before = quiet_fd_count();
    int fd = make_pattern_file(64 * MiB, NULL);
    server_t s;
    server_open(&s, fd);
    int open_now = count_open_fds();
    client_t c = {.request = GET("/file"), .close_after = 200 * 1000};
    client_run(&s, &c);
    assert_true(run_until(s.base, &s.dones));
    assert_true(s.last_status == -EPIPE || s.last_status == -ECONNRESET);
    assert_true(s.last_sent < 64 * MiB);
    for (int i = 0; i < 10; i++) event_base_loop(s.base, EVLOOP_NONBLOCK);
    assert_int_equal(count_open_fds(), open_now); /* the connection is closed */
    free(c.buf);
    server_close(&s);
    close(fd);
    assert_int_equal(settled_fd_count(before), before);
}

static void test_slow_reader(void **state) {
    (void)state;
    const uint64_t size = 1 * MiB + 3;
    int fd = make_pattern_file(size, NULL);
    server_t s;
    server_open(&s, fd);
    client_t c = {.request = GET_CLOSE("/file"), .pace_us = 200};
    client_run(&s, &c);
    size_t pos = 0;
    response_t r;
    assert_true(parse_response(&c, &pos, &r));
    assert_int_equal(r.body_len, size);
    assert_int_equal(pattern_mismatch(r.body, 0, size), -1);
    assert_int_equal(s.last_status, 0);
    free(c.buf);
    server_close(&s);
    close(fd);
}

/* The file shrinks mid-body on a keep-alive connection: done gets
 * SF_ETRUNCATED and the connection closes (the client sees EOF, never a
 * next response glued to a short body). */
static void test_truncated_mid_body_closes(void **state) {
    (void)state;
    const uint64_t size = 32 * MiB, cut = 16 * MiB;
    int fd = make_pattern_file(size, NULL);
    server_t s;
    server_open(&s, fd);
    client_t c = {.fd = connect_to(s.port), .no_send = 1};
    small_buffers(c.fd, c.fd, 64 * 1024);
    const char *req = GET("/file") GET("/small");
    assert_int_equal(write(c.fd, req, strlen(req)), (ssize_t)strlen(req));
    assert_true(run_until(s.base, &s.started));
    for (int i = 0; i < 20; i++) event_base_loop(s.base, EVLOOP_NONBLOCK);
    assert_int_equal(s.dones, 0);
    assert_int_equal(ftruncate(fd, (off_t)cut), 0);
    client_run(&s, &c); /* reads to EOF */
    assert_int_equal(s.dones, 1);
    assert_int_equal(s.last_status, SF_ETRUNCATED);
    assert_int_equal(s.last_sent, cut);
    size_t pos = 0;
    response_t r;
    assert_true(parse_response(&c, &pos, &r));
    assert_int_equal(r.length, (long long)size);
    assert_int_equal(c.total, strlen(r.head) + cut);
    free(c.buf);
    server_close(&s);
    close(fd);
}

/* evhttp_free while a body is on its way: done gets -ECANCELED, the client
 * sees EOF, nothing leaks. */
static void test_evhttp_free_mid_body(void **state) {
    (void)state;
    int before = quiet_fd_count();
    int fd = make_pattern_file(16 * MiB, NULL);
    server_t s;
    server_open(&s, fd);
    client_t c = {.fd = connect_to(s.port), .no_send = 1};
    small_buffers(c.fd, c.fd, 64 * 1024);
    assert_int_equal(write(c.fd, GET("/file"), strlen(GET("/file"))), (ssize_t)strlen(GET("/file")));
    assert_true(run_until(s.base, &s.started));
    for (int i = 0; i < 10; i++) event_base_loop(s.base, EVLOOP_NONBLOCK);
    evhttp_free(s.http);
    s.http = NULL;
    client_run(&s, &c);
    assert_int_equal(s.dones, 1);
    assert_int_equal(s.last_status, -ECANCELED);
    assert_true(c.total < 16 * MiB);
    free(c.buf);
    server_close(&s);
    close(fd);
    assert_int_equal(settled_fd_count(before), before);
}

/* A request the handler's sf_evhttp_send_file refuses with `want_status`:
 * nothing is sent, the caller's own 404 goes out, and the next request is
 * answered on the same connection. */
static void caller_answers_refusal(int file_fd, const char *request, int want_status) {
    server_t s;
    server_open(&s, file_fd);
    client_t c = {.request = request};
    client_run(&s, &c);
    assert_int_equal(s.last_status, want_status);
    assert_int_equal(s.dones, 0);
    size_t pos = 0;
    response_t r;
    assert_true(parse_response(&c, &pos, &r));
    assert_int_equal(r.status, 404);
    assert_memory_equal(r.body, "gone\n", 5);
    assert_true(parse_response(&c, &pos, &r));
    assert_memory_equal(r.body, "small\n", 6);
    free(c.buf);
    server_close(&s);
}

/* A missing file: the call fails at once (-ENOENT). */
static void test_missing_file_caller_answers(void **state) {
    (void)state;
    caller_answers_refusal(-1, GET("/missing") GET_CLOSE("/small"), -ENOENT);
}

/* SF_SHUT_WR: refused at once (-EINVAL): evhttp owns the connection's end. */
static void test_shut_wr_refused(void **state) {
    (void)state;
    int fd = make_pattern_file(1000, NULL);
    caller_answers_refusal(fd, GET("/shut") GET_CLOSE("/small"), -EINVAL);
    close(fd);
}

/* A connection whose bufferevent the engine refuses (rate-limited, set up by
 * evhttp_set_bevcb): the body goes through evhttp's own path, exact. */
static struct ev_token_bucket_cfg *g_cfg;
static struct bufferevent *limited_bev(struct event_base *base, void *arg) {
    (void)arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_set_rate_limit(bev, g_cfg);
    return bev;
}

static void test_refused_bufferevent_falls_back(void **state) {
    (void)state;
    const uint64_t size = 300 * 1000;
    int before = quiet_fd_count();
    int fd = make_pattern_file(size, NULL);
    struct timeval tick = {0, 100 * 1000};
    g_cfg = ev_token_bucket_cfg_new(1 << 24, 1 << 24, 1 << 24, 1 << 24, &tick);
    server_t s;
    server_open(&s, fd);
    evhttp_set_bevcb(s.http, limited_bev, NULL);
    client_t c = {.request = GET("/file") GET_CLOSE("/small")};
    client_run(&s, &c);
    size_t pos = 0;
    response_t r;
    assert_true(parse_response(&c, &pos, &r));
    assert_int_equal(r.length, (long long)size);
    assert_int_equal(r.body_len, size);
    assert_int_equal(pattern_mismatch(r.body, 0, size), -1);
    assert_true(parse_response(&c, &pos, &r));
    assert_memory_equal(r.body, "small\n", 6);
    assert_int_equal(s.dones, 1);
    assert_int_equal(s.last_status, 0);
    free(c.buf);
    server_close(&s);
    ev_token_bucket_cfg_free(g_cfg);
    close(fd);
    assert_int_equal(settled_fd_count(before), before);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_exact_bytes_and_headers, teardown),
        cmocka_unit_test_teardown(test_sparse_4_5_gib, teardown),
        cmocka_unit_test_teardown(test_pipelined_keep_alive, teardown),
        cmocka_unit_test_teardown(test_head_then_get, teardown),
        cmocka_unit_test_teardown(test_client_leaves_mid_body, teardown),
        cmocka_unit_test_teardown(test_slow_reader, teardown),
        cmocka_unit_test_teardown(test_truncated_mid_body_closes, teardown),
        cmocka_unit_test_teardown(test_evhttp_free_mid_body, teardown),
        cmocka_unit_test_teardown(test_missing_file_caller_answers, teardown),
        cmocka_unit_test_teardown(test_shut_wr_refused, teardown),
        cmocka_unit_test_teardown(test_refused_bufferevent_falls_back, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
