/* method_probe.c -- why the copy path beats sendfile to a same-host peer.
 *
 * One sender (this process, one thread, the library's stepping API on
 * poll(2)) sends a page-cache-warm file again and again to one receiver (a
 * forked process that read()s every byte into a buffer, as a proxy or wrk
 * does), over loopback TCP or a Unix socket, once with sendfile
 * (SF_FORCE_SENDFILE) and once with the copy path (SF_NO_SENDFILE).  Cells
 * are interleaved round by round (order rotated); per cell it reports GB/s,
 * sender and receiver CPU seconds per GB (getrusage, the receiver's own),
 * their voluntary context switches per GB, run-queue wait per GB
 * (/proc/self/schedstat), and for TCP the average bytes per segment
 * (TCP_INFO bytes_sent / segs_out on the sender, bytes_received / segs_in
 * on the receiver).  Medians over the rounds.
 *
 * Usage: method_probe [--size BYTES] [--total-mib N] [--rounds N] [--rbuf BYTES]
 *                     [--only tcp-sendfile|tcp-copy|unix-sendfile|unix-copy] [--dir DIR]
 *                     [--file EXISTING_FILE] [--nodelay 0|1 (default 1, as servers set)]
 * For syscall counts run one cell under strace -c -f; for kernel profiles
 * under perf record -a -g (see bench/RESULTS.md, "Sendfile or copy").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evsendfile.h"

#ifndef SF_FORCE_SENDFILE
#define SF_FORCE_SENDFILE 0u /* before the per-peer rule: sendfile was the default */
#endif

typedef struct report {
    double cpu;              /* user + system seconds */
    double vcsw;             /* voluntary context switches */
    double wait;             /* run-queue wait, seconds (schedstat) */
    double bytes, segs;      /* TCP_INFO: bytes and segments (0 for Unix) */
} report_t;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void self_usage(report_t *r) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    r->vcsw = (double)ru.ru_nvcsw;
    unsigned long long run = 0, wait = 0;
    FILE *f = fopen("/proc/self/schedstat", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &run, &wait) != 2) wait = 0;
        fclose(f);
    }
    r->wait = wait / 1e9;
}

static void sub(report_t *a, const report_t *b) {
    a->cpu -= b->cpu;
    a->vcsw -= b->vcsw;
    a->wait -= b->wait;
}

static void tcp_counts(int s, int sender, report_t *r) {
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    r->bytes = r->segs = 0;
    if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return;
    r->bytes = sender ? (double)ti.tcpi_bytes_sent : (double)ti.tcpi_bytes_received;
    r->segs = sender ? ti.tcpi_segs_out : ti.tcpi_segs_in;
}

/* The receiver: read everything, then report its own costs. */
static void receiver(int lfd, int is_tcp, uint64_t total, size_t rbuf, int report_fd) {
    int s = accept(lfd, NULL, NULL);
    if (s < 0) die("accept");
    char *buf = malloc(rbuf);
    report_t before, after;
    self_usage(&before);
    uint64_t got = 0;
    while (got < total) {
        ssize_t n = read(s, buf, rbuf);
        if (n <= 0) die("read");
        got += (uint64_t)n;
    }
    self_usage(&after);
    sub(&after, &before);
    if (is_tcp) tcp_counts(s, 0, &after);
    else after.bytes = after.segs = 0;
    if (write(report_fd, &after, sizeof after) != sizeof after) die("write report");
    _exit(0);
}

static int listener(int is_tcp, char *path, size_t path_len, struct sockaddr_storage *addr, socklen_t *alen) {
    int l;
    if (is_tcp) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        l = socket(AF_INET, SOCK_STREAM, 0);
        if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0) die("bind");
        *alen = sizeof a;
        getsockname(l, (struct sockaddr *)addr, alen);
    } else {
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(path, path_len, "/tmp/method_probe.%d.sock", (int)getpid());
        unlink(path);
        snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
        l = socket(AF_UNIX, SOCK_STREAM, 0);
        if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0) die("bind");
        memcpy(addr, &a, sizeof a);
        *alen = sizeof a;
    }
    if (listen(l, 4) != 0) die("listen");
    return l;
}

static int g_nodelay = 1; /* --nodelay 0: leave Nagle on */

typedef struct cell {
    double gbps, s_cpu, r_cpu, s_vcsw, r_vcsw, s_wait, r_wait, s_seg, r_seg, sys_busy, sys_si, ksi;
} cell_t;

/* Whole machine, from /proc/stat: busy (non-idle, non-iowait) and softirq
 * seconds.  Other sessions' work lands here too: read it as an upper bound. */
static void machine(double *busy, double *softirq) {
    unsigned long long v[10] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f || fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                     &v[6], &v[7]) != 8)
        die("/proc/stat");
    fclose(f);
    double hz = (double)sysconf(_SC_CLK_TCK);
    *busy = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / hz;
    *softirq = v[6] / hz;
}

/* CPU of the ksoftirqd threads (softirq work the kernel deferred to them). */
static double ksoftirqd(void) {
    double sum = 0, hz = (double)sysconf(_SC_CLK_TCK);
    for (int pid = 2; pid < 200; pid++) {
        char p[64], comm[64];
        snprintf(p, sizeof p, "/proc/%d/stat", pid);
        FILE *f = fopen(p, "r");
        if (!f) continue;
        unsigned long long ut = 0, st = 0;
        if (fscanf(f, "%*d (%63[^)]) %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", comm, &ut, &st) == 3 &&
            strncmp(comm, "ksoftirqd", 9) == 0)
            sum += (ut + st) / hz;
        fclose(f);
    }
    return sum;
}

static cell_t run_cell(int is_tcp, unsigned flags, int file_fd, uint64_t size, uint64_t total, size_t rbuf) {
    char path[108] = "";
    struct sockaddr_storage addr;
    socklen_t alen;
    int l = listener(is_tcp, path, sizeof path, &addr, &alen);
    int rep[2];
    if (pipe(rep) != 0) die("pipe");
    pid_t pid = fork();
    if (pid == 0) {
        close(rep[0]);
        receiver(l, is_tcp, total, rbuf, rep[1]);
    }
    close(rep[1]);
    int s = socket(is_tcp ? AF_INET : AF_UNIX, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&addr, alen) != 0) die("connect");
    if (is_tcp && g_nodelay) {
        int one = 1;
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
    sf_options_t o;
    sf_options_init(&o);
    o.flags = flags;
    report_t before, after;
    memset(&after, 0, sizeof after);
    double busy0, si0, busy1, si1, k0 = ksoftirqd();
    machine(&busy0, &si0);
    self_usage(&before);
    double t0 = now();
    for (uint64_t sent = 0; sent < total; sent += size) {
        sf_region_t r = {file_fd, NULL, 0, size};
        sf_job_t *job;
        if (sf_job_new(s, &r, &o, &job) != 0) die("sf_job_new");
        int st;
        while ((st = sf_job_step(job)) != SF_STEP_DONE) {
            if (st < 0) {
                fprintf(stderr, "step: %s\n", sf_err_text(st));
                exit(1);
            }
            if (st == SF_STEP_WRITE) {
                struct pollfd p = {s, POLLOUT, 0};
                poll(&p, 1, -1);
            }
        }
        sf_job_free(job);
    }
    report_t mine;
    self_usage(&mine);
    sub(&mine, &before);
    after.cpu = mine.cpu;
    after.vcsw = mine.vcsw;
    after.wait = mine.wait;
    report_t theirs;
    if (read(rep[0], &theirs, sizeof theirs) != sizeof theirs) die("read report");
    double t1 = now();
    machine(&busy1, &si1);
    double k1 = ksoftirqd();
    if (is_tcp) tcp_counts(s, 1, &after);
    waitpid(pid, NULL, 0);
    close(rep[0]);
    close(s);
    close(l);
    if (path[0]) unlink(path);
    double gb = total / 1e9;
    cell_t c = {gb / (t1 - t0), after.cpu / gb, theirs.cpu / gb, after.vcsw / gb, theirs.vcsw / gb,
                after.wait / gb, theirs.wait / gb, after.segs ? after.bytes / after.segs : 0,
                theirs.segs ? theirs.bytes / theirs.segs : 0, (busy1 - busy0) / gb, (si1 - si0) / gb,
                (k1 - k0) / gb};
    return c;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
    uint64_t size = 16u << 20, total_mib = 1024;
    int rounds = 5;
    size_t rbuf = 64 * 1024;
    const char *only = NULL, *dir = "/var/tmp", *file = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--size")) size = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--total-mib")) total_mib = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rbuf")) rbuf = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--only")) only = argv[i + 1];
        else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--file")) file = argv[i + 1];
        else if (!strcmp(argv[i], "--nodelay")) g_nodelay = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
    }
    uint64_t total = total_mib << 20;
    total -= total % size;
    if (total == 0) total = size;
    char fpath[4096];
    snprintf(fpath, sizeof fpath, "%s/method_probe.%d.dat", dir, (int)getpid());
    /* --file: an existing file of at least --size bytes (keeps the writing
     * out of a profile). */
    int fd = file ? open(file, O_RDONLY) : open(fpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) die("open");
    if (!file) unlink(fpath);
    char *blk = malloc(1 << 20);
    for (uint64_t w = 0; w < size && !file; w += 1 << 20) {
        for (int k = 0; k < (1 << 20); k++) blk[k] = (char)(w + k * 7);
        size_t n = size - w < (1u << 20) ? (size_t)(size - w) : (1u << 20);
        if (write(fd, blk, n) != (ssize_t)n) die("write file");
    }
    for (uint64_t w = 0; w < size; w += 1 << 20) (void)!pread(fd, blk, 1 << 20, (off_t)w);  /* warm */

    static const struct { const char *name; int tcp; unsigned flags; } kinds[] = {
        {"tcp-sendfile", 1, SF_FORCE_SENDFILE}, {"tcp-copy", 1, SF_NO_SENDFILE},
        {"unix-sendfile", 0, SF_FORCE_SENDFILE}, {"unix-copy", 0, SF_NO_SENDFILE},
    };
    enum { K = 4 };
    cell_t res[K][64];
    if (rounds > 64) rounds = 64;
    for (int r = 0; r < rounds; r++) {
        for (int j = 0; j < K; j++) {
            int k = (j + r) % K;
            if (only && strcmp(only, kinds[k].name)) continue;
            res[k][r] = run_cell(kinds[k].tcp, kinds[k].flags, fd, size, total, rbuf);
        }
    }
    printf("size %llu B, %llu MiB per cell, receiver read() %zu B, TCP_NODELAY %d, %d rounds, medians\n",
           (unsigned long long)size, (unsigned long long)(total >> 20), rbuf, g_nodelay, rounds);
    printf("%-14s %6s %8s %8s %8s %8s %8s %8s %8s %8s %8s %8s %8s\n", "cell", "GB/s", "sndCPU/G",
           "rcvCPU/G", "sumCPU/G", "snd_vcsw", "rcv_vcsw", "rcv_wait", "B/seg_o", "B/seg_i", "allBusy", "allSirq",
           "ksirqd");
    for (int k = 0; k < K; k++) {
        if (only && strcmp(only, kinds[k].name)) continue;
        double v[12][64];
        for (int r = 0; r < rounds; r++) {
            cell_t *c = &res[k][r];
            double row[12] = {c->gbps, c->s_cpu, c->r_cpu, c->s_cpu + c->r_cpu, c->s_vcsw, c->r_vcsw,
                              c->r_wait, c->s_seg, c->r_seg, c->sys_busy, c->sys_si, c->ksi};
            for (int m = 0; m < 12; m++) v[m][r] = row[m];
        }
        printf("%-14s %6.2f %8.3f %8.3f %8.3f %8.0f %8.0f %8.3f %8.0f %8.0f %8.3f %8.3f %8.3f\n",
               kinds[k].name, median(v[0], rounds), median(v[1], rounds), median(v[2], rounds),
               median(v[3], rounds), median(v[4], rounds), median(v[5], rounds), median(v[6], rounds),
               median(v[7], rounds), median(v[8], rounds), median(v[9], rounds), median(v[10], rounds),
               median(v[11], rounds));
    }
    return 0;
}
