/* core_bench.h -- what the three parts of the library benchmark share:
 * the sink process (core_bench_sink.c), the contenders
 * (core_bench_contenders.c) and the driver that times them (core_bench.c). */
#ifndef CORE_BENCH_H
#define CORE_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------ the sink */

/* A child process that accepts loopback TCP connections, drains each to EOF
 * with epoll (the bytes are discarded) and reports what it got. */
struct sink {
    pid_t pid;
    int listen_fd; /* kept in the parent too, only for its address */
    int cmd_w;     /* parent -> sink: struct sink_cmd */
    int rep_r;     /* sink -> parent: struct sink_report */
};

struct sink_cmd {
    int conns;     /* accept this many connections, drain them all to EOF */
    uint64_t unit; /* every connection must carry a multiple of this many bytes */
    int read_copy; /* 1: read(2) into a buffer like a real client; 0: recv(MSG_TRUNC), no copy */
};

struct sink_report {
    int conns;       /* connections drained */
    int not_a_multiple; /* connections whose byte count is not a multiple of unit */
    uint64_t sum, min, max;
};

void sink_start(struct sink *s);
void sink_stop(struct sink *s);
/* Tells the sink what comes, then opens n connections to it (blocking
 * connect, TCP_NODELAY, O_NONBLOCK) into fds[]. */
void sink_expect(struct sink *s, const struct sink_cmd *cmd, int *fds);
/* Blocks until the sink has seen EOF on every connection. */
void sink_wait(struct sink *s, struct sink_report *r);

/* ------------------------------------------------------- a contender run */

/* What one contender must do: on each of n_conns connected non-blocking
 * sockets, send `per_conn[i]` transfers back to back, each one the head
 * followed by bytes [0, size) of file_fd; shutdown(SHUT_WR) each socket
 * after its last transfer (the caller closes them once the sink has all).
 * Returns 0, or -1 after printing why it failed. */
struct spec {
    int file_fd;
    uint64_t size;
    const char *head;
    size_t head_len;
    int n_conns;
    int *socks;
    const int *per_conn;
    /* knobs some contenders use */
    unsigned evsf_flags;
    uint64_t max_chunk;
    size_t buf_size;
};

struct contender {
    const char *name;
    int (*run)(const struct spec *s, long *note);
    unsigned evsf_flags;
    uint64_t max_chunk;
    size_t buf_size;
    int one_conn_only; /* a plain loop without an event loop: one connection */
};

extern const struct contender contenders[];
extern const int n_contenders;
int contender_index(const char *name);

#endif
