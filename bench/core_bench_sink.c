/* core_bench_sink.c -- the receiving side of the benchmark, in a process of
 * its own: accepts loopback TCP connections, drains them with epoll, counts
 * and discards the bytes (recv with MSG_TRUNC: the kernel does not copy
 * them; or, per command, read into a buffer as a real client would), and reports per-connection totals back through a pipe, so a
 * contender cannot look fast by sending less. */
#define _GNU_SOURCE
#include "core_bench.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void read_full(int fd, void *p, size_t n) {
    for (size_t got = 0; got < n;) {
        ssize_t k = read(fd, (char *)p + got, n - got);
        if (k == 0) _exit(0); /* the other side is gone */
        if (k < 0) {
            if (errno == EINTR) continue;
            die("pipe read");
        }
        got += (size_t)k;
    }
}

/* Reads everything the socket has now.  >0 bytes, 0 at EOF, -1 for "later". */
static long long drain_some(int fd, uint64_t *bytes, int read_copy) {
    static char scratch[256 * 1024];
    static int no_trunc; /* MSG_TRUNC without a buffer refused: copy into scratch */
    for (;;) {
        ssize_t n = no_trunc || read_copy ? recv(fd, scratch, sizeof scratch, MSG_DONTWAIT)
                             : recv(fd, NULL, 1 << 30, MSG_TRUNC | MSG_DONTWAIT);
        if (n > 0) {
            *bytes += (uint64_t)n;
            continue;
        }
        if (n == 0) return 0;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
        if (!no_trunc && (errno == EFAULT || errno == EINVAL)) {
            no_trunc = 1;
            continue;
        }
        return 0; /* reset: count it as ended with what arrived */
    }
}

static void sink_main(int listen_fd, int cmd_r, int rep_w) {
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    struct epoll_event le = {.events = EPOLLIN, .data.fd = listen_fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &le)) die("epoll_ctl listen");
    int max_fd = 1 << 16;
    uint64_t *bytes = calloc((size_t)max_fd, sizeof *bytes);
    struct epoll_event evs[256];
    for (;;) {
        struct sink_cmd cmd;
        read_full(cmd_r, &cmd, sizeof cmd);
        struct sink_report rep = {0, 0, 0, UINT64_MAX, 0};
        while (rep.conns < cmd.conns) {
            int n = epoll_wait(ep, evs, 256, -1);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) die("epoll_wait");
            for (int i = 0; i < n; i++) {
                int fd = evs[i].data.fd;
                if (fd == listen_fd) {
                    int c;
                    while ((c = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                        if (c >= max_fd) die("sink: fd too large");
                        bytes[c] = 0;
                        struct epoll_event ce = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
                        if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce)) die("epoll_ctl conn");
                    }
                    continue;
                }
                if (drain_some(fd, &bytes[fd], cmd.read_copy) < 0) continue;
                uint64_t b = bytes[fd];
                close(fd); /* also leaves the epoll set */
                rep.conns++;
                rep.sum += b;
                if (b < rep.min) rep.min = b;
                if (b > rep.max) rep.max = b;
                if (cmd.unit && b % cmd.unit) rep.not_a_multiple++;
            }
        }
        if (write(rep_w, &rep, sizeof rep) != sizeof rep) _exit(0);
    }
}

void sink_start(struct sink *s) {
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 65535)) die("sink listen");
    fcntl(l, F_SETFL, O_NONBLOCK); /* accept4 loop ends on EAGAIN */
    int cmd[2], rep[2];
    if (pipe2(cmd, O_CLOEXEC) || pipe2(rep, O_CLOEXEC)) die("pipe");
    fflush(NULL); /* the child must not write the parent's buffered output again */
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        close(cmd[1]);
        close(rep[0]);
        sink_main(l, cmd[0], rep[1]);
        _exit(0);
    }
    close(cmd[0]);
    close(rep[1]);
    s->pid = pid;
    s->listen_fd = l;
    s->cmd_w = cmd[1];
    s->rep_r = rep[0];
}

void sink_stop(struct sink *s) {
    close(s->cmd_w); /* the sink exits on EOF */
    close(s->rep_r);
    close(s->listen_fd);
    waitpid(s->pid, NULL, 0);
}

void sink_expect(struct sink *s, const struct sink_cmd *cmd, int *fds) {
    int n = cmd->conns;
    if (write(s->cmd_w, cmd, sizeof *cmd) != sizeof *cmd) die("sink command");
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    if (getsockname(s->listen_fd, (struct sockaddr *)&a, &len)) die("getsockname");
    int one = 1;
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) die("socket");
        if (connect(fd, (struct sockaddr *)&a, sizeof a)) die("connect");
        /* what a server does with its connections; the library corks around head + body */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, O_NONBLOCK);
        fds[i] = fd;
    }
}

void sink_wait(struct sink *s, struct sink_report *r) {
    for (size_t got = 0; got < sizeof *r;) {
        ssize_t k = read(s->rep_r, (char *)r + got, sizeof *r - got);
        if (k <= 0) {
            if (k < 0 && errno == EINTR) continue;
            die("sink report");
        }
        got += (size_t)k;
    }
}
