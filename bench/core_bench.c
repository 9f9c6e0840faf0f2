/* core_bench.c -- evsendfile against the lean loops it must match, in one run.
 *
 * Part 1, large file over loopback TCP (page-cache warm):
 *   evsendfile      sf_send_async, default max_chunk
 *   evsf-chunk-256K sf_send_async, max_chunk 256 KiB   (tunes SF_DEFAULT_MAX_CHUNK)
 *   evsf-chunk-16M  sf_send_async, max_chunk 16 MiB
 *   evsf-copy       sf_send_async with SF_NO_SENDFILE (the fallback path)
 *   evsf+head(cork) sf_send_async with a 59-byte head: TCP_CORK around it (the default)
 *   evsf+head-nocork the same with SF_NO_CORK (head goes with MSG_MORE only)
 *   lean-sendfile   bare poll() + sendfile(2 MiB) loop: "the limit"
 *   blocking-copy   blocking 128 KiB pread + write loop
 * Part 2, many small responses (head + body) back to back over one TCP
 * connection, raw methods: read+writev in one call vs send(MSG_MORE)+sendfile.
 * That crossover is what SF_SMALL_BODY_MAX is tuned from.
 *
 * Contenders are interleaved round by round; medians and ratios are printed.
 * Usage: core_bench [--rounds N] [--size-mib N] [--dir DIR]
 */
#define _GNU_SOURCE
#include <evsendfile.h>
#include <event2/event.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double thread_cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

/* A connected loopback TCP pair: *snd (non-blocking) -> *rcv. */
static void tcp_pair(int *snd, int *rcv) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) ||
        getsockname(l, (struct sockaddr *)&a, &len))
        die("listen");
    *snd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(*snd, (struct sockaddr *)&a, sizeof a)) die("connect");
    *rcv = accept(l, NULL, NULL);
    if (*rcv < 0) die("accept");
    close(l);
}

struct drain {
    int fd;
    unsigned long long got;
};

static void *drain_thread(void *arg) {
    struct drain *d = arg;
    static __thread char buf[1 << 20];
    ssize_t n;
    while ((n = read(d->fd, buf, sizeof buf)) > 0) d->got += (unsigned long long)n;
    return NULL;
}

/* ------------------------------------------------------------ contenders */

struct result {
    double seconds, cpu;
};

static void on_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    (void)t;
    (void)sent;
    *(int *)arg = status;
}

static void run_evsf(int sock, int fd, uint64_t size, uint64_t max_chunk, unsigned flags, int with_head) {
    struct event_base *base = event_base_new();
    sf_region_t r = {fd, NULL, 0, size};
    sf_options_t o;
    sf_options_init(&o);
    o.max_chunk = max_chunk;
    o.flags = flags;
    static char hdr[] = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n";
    struct iovec hv = {hdr, sizeof hdr - 1};
    if (with_head) {
        o.head = &hv;
        o.head_count = 1;
    }
    int status = 1;
    fcntl(sock, F_SETFL, O_NONBLOCK);
    if (sf_send_async(base, sock, &r, &o, on_done, &status, NULL) != 0) die("sf_send_async");
    event_base_dispatch(base);
    if (status != 0) {
        fprintf(stderr, "transfer failed: %s\n", sf_strerror(status));
        exit(1);
    }
    event_base_free(base);
}

static void run_lean(int sock, int fd, uint64_t size) {
    fcntl(sock, F_SETFL, O_NONBLOCK);
    off_t off = 0;
    while ((uint64_t)off < size) {
        size_t ask = size - off < (2u << 20) ? (size_t)(size - off) : (2u << 20);
        ssize_t n = sendfile(sock, fd, &off, ask);
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {sock, POLLOUT, 0};
            poll(&p, 1, -1);
        } else if (n <= 0) {
            die("sendfile");
        }
    }
}

static void run_blocking_copy(int sock, int fd, uint64_t size) {
    static char buf[128 * 1024];
    uint64_t off = 0;
    while (off < size) {
        ssize_t n = pread(fd, buf, sizeof buf, (off_t)off);
        if (n <= 0) die("pread");
        for (ssize_t w = 0; w < n;) {
            ssize_t k = write(sock, buf + w, (size_t)(n - w));
            if (k <= 0) die("write");
            w += k;
        }
        off += (uint64_t)n;
    }
}

enum { EVSF, EVSF_256K, EVSF_16M, EVSF_COPY, EVSF_HEAD, EVSF_HEAD_NOCORK, LEAN, BLOCKING, N_LARGE };
static const char *large_names[N_LARGE] = {"evsendfile", "evsf-chunk-256K", "evsf-chunk-16M",
                                           "evsf-copy", "evsf+head(cork)", "evsf+head-nocork",
                                           "lean-sendfile", "blocking-copy"};

static struct result large_round(int which, int fd, uint64_t size) {
    int snd, rcv;
    tcp_pair(&snd, &rcv);
    struct drain d = {rcv, 0};
    pthread_t th;
    pthread_create(&th, NULL, drain_thread, &d);
    double c0 = thread_cpu(), t0 = now();
    switch (which) {
    case EVSF: run_evsf(snd, fd, size, 0, 0, 0); break;
    case EVSF_256K: run_evsf(snd, fd, size, 256 * 1024, 0, 0); break;
    case EVSF_16M: run_evsf(snd, fd, size, 16u << 20, 0, 0); break;
    case EVSF_COPY: run_evsf(snd, fd, size, 0, SF_NO_SENDFILE, 0); break;
    case EVSF_HEAD: run_evsf(snd, fd, size, 0, 0, 1); break;
    case EVSF_HEAD_NOCORK: run_evsf(snd, fd, size, 0, SF_NO_CORK, 1); break;
    case LEAN: run_lean(snd, fd, size); break;
    case BLOCKING: run_blocking_copy(snd, fd, size); break;
    }
    shutdown(snd, SHUT_WR);
    pthread_join(th, NULL);
    struct result r = {now() - t0, thread_cpu() - c0};
    uint64_t expect = size + (which == EVSF_HEAD || which == EVSF_HEAD_NOCORK ? 59 : 0);
    if (d.got != expect) {
        fprintf(stderr, "%s: received %llu of %llu\n", large_names[which], d.got, (unsigned long long)size);
        exit(1);
    }
    close(snd);
    close(rcv);
    return r;
}

/* Small responses: `n` times head (200 bytes) + body of `size` bytes. */
static const char head[200] = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n";

static double small_round(int use_sendfile, int fd, size_t size, int n) {
    int snd, rcv;
    tcp_pair(&snd, &rcv);
    int one = 1;
    setsockopt(snd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct drain d = {rcv, 0};
    pthread_t th;
    pthread_create(&th, NULL, drain_thread, &d);
    char *body = malloc(size);
    double t0 = now();
    for (int i = 0; i < n; i++) {
        if (use_sendfile) {
            if (send(snd, head, sizeof head, MSG_MORE) != (ssize_t)sizeof head) die("send");
            off_t off = 0;
            while ((size_t)off < size)
                if (sendfile(snd, fd, &off, size - (size_t)off) <= 0) die("sendfile");
        } else {
            if (pread(fd, body, size, 0) != (ssize_t)size) die("pread");
            struct iovec iov[2] = {{(void *)head, sizeof head}, {body, size}};
            size_t total = sizeof head + size;
            ssize_t k = writev(snd, iov, 2);
            if (k < 0) die("writev");
            if ((size_t)k < total) { /* blocking socket: rare short write, finish it */
                size_t done = (size_t)k;
                while (done < total) {
                    const char *p = done < sizeof head ? head + done : body + (done - sizeof head);
                    size_t left = done < sizeof head ? sizeof head - done : total - done;
                    ssize_t w = write(snd, p, left);
                    if (w <= 0) die("write");
                    done += (size_t)w;
                }
            }
        }
    }
    double dt = now() - t0;
    shutdown(snd, SHUT_WR);
    pthread_join(th, NULL);
    if (d.got != (unsigned long long)n * (sizeof head + size)) die("short small transfer");
    free(body);
    close(snd);
    close(rcv);
    return n / dt;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    double tmp[64];
    memcpy(tmp, v, (size_t)n * sizeof *v);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

static int make_file(const char *dir, const char *name, uint64_t size) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) die(path);
    unlink(path);
    static char block[1 << 20];
    for (size_t i = 0; i < sizeof block; i++) block[i] = (char)(i * 131 + 7);
    for (uint64_t off = 0; off < size;) {
        size_t n = size - off < sizeof block ? (size_t)(size - off) : sizeof block;
        if (pwrite(fd, block, n, (off_t)off) != (ssize_t)n) die("pwrite");
        off += n;
    }
    return fd;
}

int main(int argc, char **argv) {
    int rounds = 5;
    uint64_t size_mib = 1024;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--size-mib")) size_mib = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
    }
    if (rounds < 1 || rounds > 64) rounds = 5;
    signal(SIGPIPE, SIG_IGN);
    uint64_t size = size_mib << 20;
    int fd = make_file(dir, "core_bench.large", size);
    printf("core_bench: %d rounds, %llu MiB file, loopback TCP, %ld cores\n", rounds,
           (unsigned long long)size_mib, sysconf(_SC_NPROCESSORS_ONLN));

    /* warm the page cache */
    large_round(BLOCKING, fd, size);

    double gbps[N_LARGE][64], cpu[N_LARGE][64];
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < N_LARGE; k++) {
            int which = (k + r) % N_LARGE; /* rotate the order every round */
            struct result res = large_round(which, fd, size);
            gbps[which][r] = size / res.seconds / 1e9;
            cpu[which][r] = res.cpu / (size / 1e9);
        }
    double lean = median(gbps[LEAN], rounds);
    printf("\n%-16s %10s %12s %14s\n", "large file", "GB/s", "CPU s/GB", "÷ lean-sendfile");
    for (int k = 0; k < N_LARGE; k++) {
        double m = median(gbps[k], rounds);
        printf("%-16s %10.2f %12.3f %14.2f\n", large_names[k], m, median(cpu[k], rounds), m / lean);
    }

    static const size_t sizes[] = {1024, 4096, 8192, 16384, 32768, 65536, 262144};
    printf("\n%-10s %16s %16s %10s\n", "body", "writev resp/s", "sendfile resp/s", "ratio");
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int sfd = make_file(dir, "core_bench.small", sizes[s]);
        int n = sizes[s] >= 65536 ? 4000 : 20000;
        double wv[64], sf[64];
        for (int r = 0; r < rounds; r++) {
            if (r % 2) {
                sf[r] = small_round(1, sfd, sizes[s], n);
                wv[r] = small_round(0, sfd, sizes[s], n);
            } else {
                wv[r] = small_round(0, sfd, sizes[s], n);
                sf[r] = small_round(1, sfd, sizes[s], n);
            }
        }
        double mw = median(wv, rounds), ms = median(sf, rounds);
        printf("%-10zu %16.0f %16.0f %10.2f\n", sizes[s], mw, ms, mw / ms);
        close(sfd);
    }
    close(fd);
    return 0;
}
