/* httpd.h -- what the parts of evsendfile-httpd share.
 *
 * One process, N threads; each thread runs its own libevent loop with its
 * own listening socket (SO_REUSEPORT) and owns its connections outright:
 * nothing below is shared between threads except the read-only config. */
#ifndef HTTPD_H
#define HTTPD_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <event2/event.h>
#include <event2/listener.h>

#include <evsendfile.h>

#include "range.h"

/* ------------------------------------------------------------ config */

struct config {
    const char *root;               /* as given on the command line */
    char        root_real[PATH_MAX]; /* realpath(root), for the fallback confinement check */
    int         root_fd;            /* O_PATH-ish directory fd every lookup starts from */
    int         threads;
    int         no_sendfile;        /* --no-sendfile: SF_NO_SENDFILE on every transfer */
    int         force_sendfile;     /* --force-sendfile: SF_FORCE_SENDFILE (sendfile to same-host peers too) */
    int         disk_inline;        /* --disk-inline: SF_DISK_INLINE on every transfer */
    int         access_log;
    int         dotfiles;           /* serve names starting with '.' */
    unsigned    header_timeout_ms;  /* whole request head must arrive within this (slowloris) */
    unsigned    keepalive_timeout_ms;
    unsigned    send_timeout_ms;    /* sf_options.idle_timeout_ms */
    unsigned    stop_timeout_ms;    /* graceful stop: then cut what is still sending */
    int         max_conns;          /* per thread */
    int         empty_fd;           /* an empty regular file: the region of body-less responses */
};
extern struct config g_cfg;

/* ------------------------------------------------------------ worker.c */

struct conn;

#define WORKER_SPARE_IN 16 /* at most 16 x CONN_IN_CAP bytes kept per worker */

struct worker {
    struct event_base     *base;
    struct evconnlistener *listener;
    struct event          *stop_ev;      /* readable end of stop_pipe */
    struct event          *retry_ev;     /* re-enables accept after EMFILE */
    struct event          *drain_ev;     /* graceful stop deadline */
    int                    stop_pipe[2];
    int                    stopping;
    struct conn           *conns;        /* doubly linked list of live connections */
    int                    nconns;
    pthread_t              thread;
    time_t                 date_at;      /* cached Date: header, rebuilt once a second */
    char                   date[64];
    time_t                 mtime_at;     /* the last Last-Modified date formatted, and its text */
    char                   mtime[64];
    char                  *spare_in[WORKER_SPARE_IN]; /* request buffers of idle connections, for reuse */
    int                    n_spare_in;
};

int  worker_init(struct worker *w, int listen_fd);
/* A CONN_IN_CAP request buffer (a spare one if any), or NULL; and back.  A
 * keep-alive connection holds one only while a request is arriving: taking
 * it from the worker's spares spares a malloc/free per request. */
char *worker_take_in(struct worker *w);
void worker_give_in(struct worker *w, char *buf);
void *worker_run(void *w);
void worker_request_stop(struct worker *w); /* thread-safe: writes to the stop pipe */
void worker_free(struct worker *w);
void worker_conn_gone(struct worker *w);    /* called by conn_close */
const char *worker_date(struct worker *w);  /* "Thu, 26 Nov 2026 07:00:00 GMT" */
const char *worker_http_date(struct worker *w, time_t t); /* t formatted, remembering the last one */

/* ------------------------------------------------------------ conn.c */

#define CONN_IN_CAP 8192 /* request head limit (431 beyond it) */

/* The response being sent on a connection (respond.c fills it). */
struct response {
    int               fd;        /* file being served, or -1 */
    int               status;
    int               head_only; /* HEAD: headers, never a body */
    uint64_t          size;      /* file size */
    const char       *ctype;
    struct byte_range parts[MAX_RANGES];
    int               nparts;    /* > 1: multipart/byteranges */
    int               next_part; /* next part to send */
    char              boundary[40];
    uint64_t          body_sent;
    char              log[160];  /* "GET /path HTTP/1.1" for the access log */
};

int  conn_new(struct worker *w, int fd, const struct sockaddr *sa, int salen);
void conn_close(struct conn *c);
void conn_stop(struct conn *c); /* graceful stop: close when idle, finish a send first */
struct conn *conn_next(struct conn *c);
/* Sends head, then [off, off+count) of fd (a regular file of fd_size bytes, as
 * fstat said), then tail; done continues the conn. */
int  conn_send(struct conn *c, const char *head, size_t head_len, int fd, uint64_t fd_size, uint64_t off,
               uint64_t count, const char *tail, size_t tail_len);
struct response *conn_response(struct conn *c);
struct worker   *conn_worker(struct conn *c);
void conn_set_keep_alive(struct conn *c, int on);
int  conn_keep_alive(const struct conn *c);

#endif
