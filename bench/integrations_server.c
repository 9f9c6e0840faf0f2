/* integrations_server.c -- the servers bench/integrations_bench.py drives
 * with wrk: the same files over HTTP/1.1 keep-alive, five ways.
 *   evhttp-stock   evhttp, body by evbuffer_add_file + evhttp_send_reply
 *   evhttp-sf      evhttp, sf_evhttp_send_file
 *   bev-addfile    a bufferevent server, headers + evbuffer_add_file on the output
 *   bev-mmap       the same with EVBUF_FS_DISABLE_SENDFILE (libevent maps the file)
 *   bev-sf         a bufferevent server, sf_bufferevent_send (headers as opts->head)
 * Every request opens and fstat's its file (all five alike).
 *   integrations_server MODE ROOT PORT */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <evsendfile_evhttp.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *mode, *root;

static int open_file(const char *uri_path, uint64_t *size) {
    char path[4096];
    if (strstr(uri_path, "..")) return -1;
    snprintf(path, sizeof path, "%s/%s", root, uri_path + strspn(uri_path, "/"));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

/* ---------------------------------------------------------------- evhttp */

static void close_fd(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    (void)t, (void)status, (void)sent;
    close((int)(intptr_t)arg);
}

static void on_http(struct evhttp_request *req, void *arg) {
    (void)arg;
    uint64_t size;
    int fd = open_file(evhttp_request_get_uri(req), &size);
    if (fd < 0) {
        evhttp_send_error(req, 404, NULL);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/octet-stream");
    if (strcmp(mode, "evhttp-sf") == 0) {
        sf_options_t o;
        sf_options_init(&o);
        o.flags = SF_TRUSTED;
        sf_region_t reg = {fd, NULL, 0, size};
        if (sf_evhttp_send_file(req, 200, "OK", &reg, &o, close_fd, (void *)(intptr_t)fd) != 0) {
            close(fd);
            evhttp_send_error(req, 500, NULL);
        }
        return;
    }
    struct evbuffer *body = evbuffer_new();
    evbuffer_add_file(body, fd, 0, (ev_off_t)size); /* takes fd */
    evhttp_send_reply(req, 200, "OK", body);
    evbuffer_free(body);
}

/* ----------------------------------------------------------- bufferevent */

typedef struct conn {
    struct bufferevent *bev;
    int fd;        /* bev-sf: the file in flight */
    int busy;
    char head[160];
    struct iovec iov;
} conn_t;

static void serve(conn_t *c);

static void conn_free(conn_t *c) {
    bufferevent_free(c->bev);
    free(c);
}

static void on_sent(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    (void)t, (void)sent;
    conn_t *c = arg;
    close(c->fd);
    c->busy = 0;
    if (status < 0) {
        if (status != -ECANCELED) conn_free(c);
        return;
    }
    serve(c); /* requests read meanwhile */
}

static void serve(conn_t *c) {
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (!c->busy) {
        struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        if (end.pos < 0) return;
        char line[512];
        size_t n = evbuffer_copyout(in, line, sizeof line - 1 < (size_t)end.pos ? sizeof line - 1 : (size_t)end.pos);
        line[n] = '\0';
        evbuffer_drain(in, (size_t)end.pos + 4);
        char *sp = strchr(line, ' '), *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
        if (!sp2) {
            conn_free(c);
            return;
        }
        *sp2 = '\0';
        uint64_t size;
        int fd = open_file(sp + 1, &size);
        if (fd < 0) {
            conn_free(c);
            return;
        }
        int hl = snprintf(c->head, sizeof c->head,
                          "HTTP/1.1 200 OK\r\nContent-Length: %llu\r\nContent-Type: application/octet-stream\r\n\r\n",
                          (unsigned long long)size);
        struct evbuffer *out = bufferevent_get_output(c->bev);
        if (strcmp(mode, "bev-sf") == 0) {
            c->iov.iov_base = c->head;
            c->iov.iov_len = (size_t)hl;
            sf_options_t o;
            sf_options_init(&o);
            o.head = &c->iov;
            o.head_count = 1;
            o.flags = SF_TRUSTED;
            sf_region_t reg = {fd, NULL, 0, size};
            c->fd = fd;
            c->busy = 1;
            if (sf_bufferevent_send(c->bev, &reg, &o, on_sent, c, NULL) != 0) {
                close(fd);
                conn_free(c);
                return;
            }
        } else {
            evbuffer_add(out, c->head, (size_t)hl);
            if (strcmp(mode, "bev-mmap") == 0) {
                struct evbuffer_file_segment *seg =
                    evbuffer_file_segment_new(fd, 0, (ev_off_t)size, EVBUF_FS_CLOSE_ON_FREE | EVBUF_FS_DISABLE_SENDFILE);
                evbuffer_add_file_segment(out, seg, 0, (ev_off_t)size);
                evbuffer_file_segment_free(seg);
            } else {
                evbuffer_add_file(out, fd, 0, (ev_off_t)size);
            }
        }
    }
}

static void on_read(struct bufferevent *bev, void *arg) {
    (void)bev;
    serve(arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg) {
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) conn_free(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg) {
    (void)l, (void)sa, (void)len, (void)arg;
    conn_t *c = calloc(1, sizeof *c);
    c->bev = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    /* bev-sf never writes through the bufferevent: reading is all it enables. */
    bufferevent_enable(c->bev, strcmp(mode, "bev-sf") == 0 ? EV_READ : EV_READ | EV_WRITE);
}

static void on_signal(evutil_socket_t sig, short what, void *base) {
    (void)sig, (void)what;
    event_base_loopexit(base, NULL);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODE ROOT PORT\n", argv[0]);
        return 2;
    }
    mode = argv[1];
    root = argv[2];
    int port = atoi(argv[3]);
    signal(SIGPIPE, SIG_IGN); /* evbuffer's own writes (the stock modes) */
    struct event_base *base = event_base_new();
    struct evhttp *http = NULL;
    struct evconnlistener *l = NULL;
    if (strncmp(mode, "evhttp", 6) == 0) {
        http = evhttp_new(base);
        evhttp_set_gencb(http, on_http, NULL);
        if (evhttp_bind_socket(http, "127.0.0.1", (ev_uint16_t)port) != 0) return 1;
    } else {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        l = evconnlistener_new_bind(base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 512,
                                    (struct sockaddr *)&sin, sizeof sin);
        if (!l) return 1;
    }
    struct event *term = evsignal_new(base, SIGTERM, on_signal, base);
    event_add(term, NULL);
    event_base_dispatch(base);
    event_free(term);
    if (http) evhttp_free(http);
    if (l) evconnlistener_free(l);
    event_base_free(base);
    return 0;
}
