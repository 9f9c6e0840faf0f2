/* callgrind_small.c -- K small transfers, the same way every time, for an
 * instruction count under valgrind --tool=callgrind (bench/check_instructions.sh).
 *
 * Each transfer: sf_send_async of a 4 KiB file region with a 200-byte head
 * over an AF_UNIX socketpair, one non-blocking event-loop pass to deliver
 * `done`, then the peer reads exactly the 4296 bytes in this same process.
 * The socket never fills, so no run ever sees EAGAIN or waits in epoll: the
 * work per transfer is the same instructions on every run.  Setup (base,
 * file, socketpair) is the same for every K, so
 *   (instructions at 2K - instructions at K) / K
 * is the cost of one small transfer.
 *
 * Usage: callgrind_small K [DIR]   (exits non-zero if any transfer misbehaves)
 */
#define _GNU_SOURCE
#include <evsendfile.h>
#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BODY 4096
#define HEAD 200

static int done_status = 1;

static void on_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    (void)t;
    (void)arg;
    done_status = status == 0 && sent == BODY ? 0 : (status ? status : -1);
}

static void fail(const char *what, int err) {
    fprintf(stderr, "callgrind_small: %s: %s\n", what, err ? sf_err_text(err) : strerror(errno));
    exit(1);
}

int main(int argc, char **argv) {
    long k = argc > 1 ? strtol(argv[1], NULL, 10) : 1000;
    const char *dir = argc > 2 ? argv[2] : "/tmp";
    if (k < 1 || k > 10000000) {
        fprintf(stderr, "usage: %s K [DIR]\n", argv[0]);
        return 2;
    }

    char path[4096];
    snprintf(path, sizeof path, "%s/evsf-callgrind-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) fail("mkstemp", 0);
    unlink(path);
    static char body[BODY], head[HEAD], got[BODY + HEAD + 1];
    memset(body, 'b', sizeof body);
    memset(head, 'h', sizeof head);
    if (write(fd, body, sizeof body) != (ssize_t)sizeof body) fail("write file", 0);

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) fail("socketpair", 0);
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    struct event_base *base = event_base_new();
    if (base == NULL) fail("event_base_new", 0);

    struct iovec hv = {head, sizeof head};
    sf_options_t o;
    sf_options_init(&o);
    o.head = &hv;
    o.head_count = 1;
    sf_region_t reg = {.fd = fd, .path = NULL, .offset = 0, .count = BODY};

    for (long i = 0; i < k; i++) {
        done_status = 1;
        int err = sf_send_async(base, sv[0], &reg, &o, on_done, NULL, NULL);
        if (err) fail("sf_send_async", err);
        event_base_loop(base, EVLOOP_NONBLOCK);
        if (done_status != 0) fail("transfer", done_status > 0 ? -EINPROGRESS : done_status);
        size_t have = 0;
        while (have < BODY + HEAD) {
            ssize_t n = read(sv[1], got + have, sizeof got - have);
            if (n <= 0) fail("read", 0);
            have += (size_t)n;
        }
        if (have != BODY + HEAD || got[0] != 'h' || got[HEAD] != 'b') fail("bytes", 0);
    }
    event_base_free(base);
    close(sv[0]);
    close(sv[1]);
    close(fd);
    printf("callgrind_small: %ld transfers of %d + %d bytes\n", k, HEAD, BODY);
    return 0;
}
