/* worker.c -- one thread, one event_base, one listening socket: accepts
 * connections (up to max_conns), and stops gracefully when main asks. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd.h"
#include "respond.h"

const char *worker_date(struct worker *w) {
    time_t now = time(NULL);
    if (now != w->date_at) {
        w->date_at = now;
        http_date(now, w->date);
    }
    return w->date;
}

const char *worker_http_date(struct worker *w, time_t t) {
    if (t != w->mtime_at || w->mtime[0] == '\0') {
        w->mtime_at = t;
        http_date(t, w->mtime);
    }
    return w->mtime;
}

char *worker_take_in(struct worker *w) {
    return w->n_spare_in > 0 ? w->spare_in[--w->n_spare_in] : malloc(CONN_IN_CAP);
}

void worker_give_in(struct worker *w, char *buf) {
    if (buf == NULL) return;
    if (w->n_spare_in < WORKER_SPARE_IN) w->spare_in[w->n_spare_in++] = buf;
    else free(buf);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg) {
    struct worker *w = arg;
    (void)l;
    if (w->nconns >= g_cfg.max_conns || conn_new(w, fd, sa, salen) != 0)
        close(fd); /* over the limit: the client sees the connection closed */
}

static void on_retry(evutil_socket_t fd, short what, void *arg) {
    struct worker *w = arg;
    (void)fd;
    (void)what;
    if (w->listener && !w->stopping) evconnlistener_enable(w->listener);
}

/* accept() failed: on EMFILE/ENFILE the listening socket stays readable, so
 * pause accepting for a moment instead of spinning. */
static void on_accept_error(struct evconnlistener *l, void *arg) {
    struct worker *w = arg;
    int err = EVUTIL_SOCKET_ERROR();
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        struct timeval tv = {0, 100 * 1000};
        evconnlistener_disable(l);
        evtimer_add(w->retry_ev, &tv);
    }
}

static void on_drain_deadline(evutil_socket_t fd, short what, void *arg) {
    struct worker *w = arg;
    (void)fd;
    (void)what;
    while (w->conns) conn_close(w->conns); /* cut what is still sending */
}

static void begin_stop(struct worker *w) {
    if (w->stopping) return;
    w->stopping = 1;
    evconnlistener_free(w->listener); /* closes the listening socket */
    w->listener = NULL;
    event_del(w->stop_ev);
    evtimer_del(w->retry_ev);
    struct conn *c = w->conns;
    while (c) {
        struct conn *next = conn_next(c);
        conn_stop(c); /* idle ones close now, senders finish first */
        c = next;
    }
    if (w->nconns > 0) {
        struct timeval tv = {(time_t)(g_cfg.stop_timeout_ms / 1000),
                             (suseconds_t)((g_cfg.stop_timeout_ms % 1000) * 1000)};
        evtimer_add(w->drain_ev, &tv);
    } else {
        event_base_loopexit(w->base, NULL);
    }
}

void worker_conn_gone(struct worker *w) {
    w->nconns--;
    if (w->stopping && w->nconns == 0) {
        evtimer_del(w->drain_ev);
        event_base_loopexit(w->base, NULL);
    }
}

static void on_stop(evutil_socket_t fd, short what, void *arg) {
    char b[16];
    (void)what;
    while (read(fd, b, sizeof b) > 0) {
    }
    begin_stop(arg);
}

void worker_request_stop(struct worker *w) {
    char b = 's';
    ssize_t r;
    do r = write(w->stop_pipe[1], &b, 1);
    while (r < 0 && errno == EINTR);
}

int worker_init(struct worker *w, int listen_fd) {
    memset(w, 0, sizeof *w);
    w->stop_pipe[0] = w->stop_pipe[1] = -1;
    if ((w->base = event_base_new()) == NULL) return -ENOMEM;
    if (pipe2(w->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -errno;
    w->listener = evconnlistener_new(w->base, on_accept, w, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                     -1 /* already listening */, listen_fd);
    w->stop_ev = event_new(w->base, w->stop_pipe[0], EV_READ | EV_PERSIST, on_stop, w);
    w->retry_ev = evtimer_new(w->base, on_retry, w);
    w->drain_ev = evtimer_new(w->base, on_drain_deadline, w);
    if (!w->listener || !w->stop_ev || !w->retry_ev || !w->drain_ev) return -ENOMEM;
    evconnlistener_set_error_cb(w->listener, on_accept_error);
    event_add(w->stop_ev, NULL);
    return 0;
}

void *worker_run(void *arg) {
    struct worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

void worker_free(struct worker *w) {
    while (w->conns) conn_close(w->conns);
    if (w->listener) evconnlistener_free(w->listener);
    if (w->stop_ev) event_free(w->stop_ev);
    if (w->retry_ev) event_free(w->retry_ev);
    if (w->drain_ev) event_free(w->drain_ev);
    if (w->base) event_base_free(w->base);
    for (int i = 0; i < 2; i++)
        if (w->stop_pipe[i] >= 0) close(w->stop_pipe[i]);
    while (w->n_spare_in > 0) free(w->spare_in[--w->n_spare_in]);
}
