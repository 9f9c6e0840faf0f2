/* conn.c -- one client connection: read a request head, answer it with
 * sf_send_async, and go on with the next (pipelined) request from the done
 * callback.
 *
 * States:  READ    waiting for (the rest of) a request head; a timer runs:
 *                  the header timeout from a request's first byte, the
 *                  keep-alive timeout while idle between requests.
 *          SEND    a transfer is in flight; the library applies the send
 *                  idle timeout.  We keep reading pipelined requests into
 *                  the buffer meanwhile (and stop only when it is full), so
 *                  the read event is not re-armed for every response.
 *          LINGER  the response is out and the connection is closing:
 *                  its FIN left with the last byte (SF_SHUT_WR, when the
 *                  connection was known to end before the last send) or
 *                  leaves now (shutdown(SHUT_WR)); discard what the client still sends
 *                  until it closes, so unread input cannot turn our close
 *                  into a RST that destroys the response on its way.
 * Any transfer error (peer gone, SF_ETRUNCATED, timeout) closes at once:
 * after a short body the stream is out of step with the headers we sent. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/util.h>

#include "httpd.h"
#include "request.h"
#include "respond.h"

#define LINGER_MS 2000
#define LINGER_MAX_BYTES (256 * 1024)

enum state { C_READ, C_SEND, C_LINGER };

struct conn {
    struct worker  *w;
    struct conn    *prev, *next;
    int             fd;
    enum state      state;
    int             keep_alive;
    int             header_timer; /* the header timeout is running for this request */
    int             served;       /* responses finished on this connection */
    int             reading;      /* rev is added */
    int             peer_eof;     /* the client half-closed: answer what is buffered, then close */
    int             method_flags; /* sf_peer_flags' answer, asked at the first large body; -1 before */
    int             shut_wr;      /* the last response was sent with SF_SHUT_WR: the FIN is out */
    struct event   *rev;          /* readable */
    struct event   *timer;
    sf_transfer_t  *xfer;         /* in flight, for sf_cancel */
    uint64_t        lingered;
    struct response resp;
    char            peer[64];
    size_t          in_len;
    char           *in;           /* CONN_IN_CAP bytes while a request is arriving, else NULL:
                                   * an idle connection costs no buffer */
};

static void on_readable(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static void on_sent(sf_transfer_t *t, int status, uint64_t body_sent, void *arg);
static void process(struct conn *c);

struct response *conn_response(struct conn *c) { return &c->resp; }
struct worker *conn_worker(struct conn *c) { return c->w; }
struct conn *conn_next(struct conn *c) { return c->next; }
void conn_set_keep_alive(struct conn *c, int on) { c->keep_alive = on; }
int conn_keep_alive(const struct conn *c) { return c->keep_alive && !c->w->stopping; }

static void want_read(struct conn *c, int on) {
    if (on == c->reading) return;
    if (on) event_add(c->rev, NULL);
    else event_del(c->rev);
    c->reading = on;
}

static void arm_timer(struct conn *c, unsigned ms) {
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(c->timer, &tv);
}

int conn_new(struct worker *w, int fd, const struct sockaddr *sa, int salen) {
    struct conn *c = calloc(1, sizeof *c);
    if (c == NULL) return -ENOMEM;
    c->w = w;
    c->fd = fd;
    c->resp.fd = -1;
    c->method_flags = -1;
    c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->timer = evtimer_new(w->base, on_timer, c);
    if (c->rev == NULL || c->timer == NULL) {
        if (c->rev) event_free(c->rev);
        if (c->timer) event_free(c->timer);
        free(c);
        return -ENOMEM;
    }
    if (g_cfg.access_log) {
        char host[INET6_ADDRSTRLEN] = "?";
        const void *a = sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                                  : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
        evutil_inet_ntop(sa->sa_family, a, host, sizeof host);
        snprintf(c->peer, sizeof c->peer, "%s", host);
    }
    (void)salen;
    /* Responses are written whole (one writev, or corked by the library):
     * Nagle would only delay the last segment of each. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    c->next = w->conns;
    if (w->conns) w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    c->state = C_READ;
    want_read(c, 1);
    c->header_timer = 1; /* a new connection must send its first request in time */
    arm_timer(c, g_cfg.header_timeout_ms);
    return 0;
}

void conn_close(struct conn *c) {
    struct worker *w = c->w;
    if (c->xfer) sf_cancel(c->xfer); /* never from on_sent: xfer is NULL there */
    response_release(&c->resp);
    worker_give_in(w, c->in);
    event_free(c->rev);
    event_free(c->timer);
    close(c->fd);
    if (c->prev) c->prev->next = c->next;
    else w->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c);
    worker_conn_gone(w);
}

static void linger(struct conn *c) {
    if (c->w->stopping || (!c->shut_wr && shutdown(c->fd, SHUT_WR) != 0)) {
        conn_close(c);
        return;
    }
    c->state = C_LINGER;
    want_read(c, 1);
    arm_timer(c, LINGER_MS);
}

void conn_stop(struct conn *c) {
    if (c->state != C_SEND) conn_close(c); /* a send finishes first; conn_keep_alive() now says no */
}

int conn_send(struct conn *c, const char *head, size_t head_len, int fd, uint64_t fd_size, uint64_t off,
              uint64_t count, const char *tail, size_t tail_len) {
    struct iovec hv = {(void *)head, head_len}, tv = {(void *)tail, tail_len};
    sf_options_t o;
    sf_options_init(&o);
    o.head = &hv;
    o.head_count = head_len ? 1 : 0;
    o.tail = &tv;
    o.tail_count = tail_len ? 1 : 0;
    o.idle_timeout_ms = g_cfg.send_timeout_ms;
    /* Both fds are ours: the listener made the socket non-blocking, path_open
     * opened the file O_RDONLY (three syscalls spared per response), and
     * respond() has fstat'ed it (one more). */
    o.flags = SF_TRUSTED | SF_KNOWN_SIZE;
    o.file_size = fd_size;
    if (g_cfg.no_sendfile) o.flags |= SF_NO_SENDFILE;
    if (g_cfg.force_sendfile) o.flags |= SF_FORCE_SENDFILE;
    if (g_cfg.disk_inline) o.flags |= SF_DISK_INLINE;
    /* The response ends the connection: its FIN leaves right behind the last
     * byte, not a loop turn later from on_sent (then linger only reads). */
    if (!conn_keep_alive(c) && !respond_has_next_part(&c->resp)) {
        o.flags |= SF_SHUT_WR;
        c->shut_wr = 1;
    }
    /* The body's method depends on the client (the copy path to one on this
     * host): asked once per connection, not by every large response. */
    if (count > SF_SMALL_BODY_MAX) {
        if (c->method_flags < 0) {
            int f = sf_peer_flags(c->fd, o.flags);
            c->method_flags = f < 0 ? 0 : f & (int)(SF_NO_SENDFILE | SF_FORCE_SENDFILE); /* error: each send decides */
        }
        o.flags |= (unsigned)c->method_flags;
    }
    sf_region_t region = {fd, NULL, off, count};
    int r = sf_send_async(c->w->base, c->fd, &region, &o, on_sent, c, &c->xfer);
    if (r < 0) {
        c->xfer = NULL;
        return r; /* nothing was sent: the caller closes */
    }
    c->state = C_SEND;
    want_read(c, c->in_len < CONN_IN_CAP && !c->peer_eof);
    evtimer_del(c->timer);
    return 0;
}

static void log_response(struct conn *c, int status) {
    if (!g_cfg.access_log) return;
    printf("%s \"%s\" %d %llu%s%s\n", c->peer, c->resp.log, c->resp.status,
           (unsigned long long)c->resp.body_sent, status ? " " : "", status ? sf_err_name(status) : "");
    fflush(stdout);
}

static void on_sent(sf_transfer_t *t, int status, uint64_t body_sent, void *arg) {
    struct conn *c = arg;
    (void)t;
    c->xfer = NULL;
    c->resp.body_sent += body_sent;
    if (status < 0) { /* SF_ETRUNCATED, EPIPE, SF_ETIMEDOUT...: the stream cannot go on */
        log_response(c, status);
        conn_close(c);
        return;
    }
    int r = respond_next_part(c);
    if (r > 0) return;
    log_response(c, r);
    response_release(&c->resp);
    c->served++;
    if (r < 0) {
        conn_close(c);
    } else if (!conn_keep_alive(c)) {
        linger(c);
    } else {
        c->state = C_READ;
        process(c); /* a pipelined request may already be in the buffer */
    }
}

/* Parses and answers what the buffer holds; otherwise waits for more. */
static void process(struct conn *c) {
    struct request req;
    int st = PARSE_AGAIN;
    if (c->in_len > 0) {
        st = request_parse(c->in, c->in_len, c->in_len == CONN_IN_CAP, &req);
    } else {
        worker_give_in(c->w, c->in); /* all consumed: give the buffer back while idle */
        c->in = NULL;
    }
    if (st == PARSE_AGAIN) {
        if (c->peer_eof) { /* no more bytes will come */
            conn_close(c);
            return;
        }
        want_read(c, 1);
        int partial = 0;
        for (size_t i = 0; i < c->in_len && !partial; i++) partial = c->in[i] != '\r' && c->in[i] != '\n';
        if (partial && !c->header_timer) { /* slowloris: the whole head within header_timeout */
            c->header_timer = 1;
            arm_timer(c, g_cfg.header_timeout_ms);
        } else if (!partial && !c->header_timer && !evtimer_pending(c->timer, NULL)) {
            /* idle: empty lines are allowed before a request, but must not
             * restart the clock, or a CRLF now and then holds us forever */
            arm_timer(c, c->served ? g_cfg.keepalive_timeout_ms : g_cfg.header_timeout_ms);
        }
        return;
    }
    c->header_timer = 0;
    int r;
    if (st != PARSE_OK) {
        c->in_len = 0;
        r = respond_error(c, st);
    } else {
        r = respond(c, &req);
        memmove(c->in, c->in + req.head_len, c->in_len - req.head_len);
        c->in_len -= req.head_len;
    }
    if (r < 0) conn_close(c);
}

static void on_readable(evutil_socket_t fd, short what, void *arg) {
    struct conn *c = arg;
    (void)what;
    if (c->state == C_LINGER) {
        char scratch[4096];
        ssize_t n = recv(fd, scratch, sizeof scratch, 0);
        if (n > 0 && (c->lingered += (uint64_t)n) < LINGER_MAX_BYTES) return;
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        conn_close(c);
        return;
    }
    if (c->in_len == CONN_IN_CAP) { /* only while sending: resume when a request is consumed */
        want_read(c, 0);
        return;
    }
    if (c->in == NULL && (c->in = worker_take_in(c->w)) == NULL) {
        conn_close(c);
        return;
    }
    ssize_t n = recv(fd, c->in + c->in_len, CONN_IN_CAP - c->in_len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n == 0 && c->state == C_SEND) { /* half-close: finish the answers first */
        c->peer_eof = 1;
        want_read(c, 0);
        return;
    }
    if (n <= 0) { /* EOF or reset: whatever was half-read is dropped */
        conn_close(c);
        return;
    }
    c->in_len += (size_t)n;
    if (c->state == C_READ) process(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    conn_close(arg); /* header timeout, keep-alive timeout or linger timeout */
}
