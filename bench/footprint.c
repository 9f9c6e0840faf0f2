/* footprint.c -- what an in-flight transfer costs the sender's process.
 *
 * For each N (default 1,000 and 10,000): N loopback TCP connections to a
 * sink in a forked process, N sf_send_async transfers of a 1 GiB file (sparse,
 * so it costs no disk) with a 200-byte head.
 *
 *  (a) Heap per in-flight transfer.  The sink does not read yet, so every
 *      transfer stays in flight once the (small) socket buffers are full.
 *      This binary replaces malloc & co. with counting wrappers around glibc's
 *      own allocator and attributes each call to the shared object that made
 *      it (the library's C++ `new` goes through libstdc++; libevent calls
 *      malloc itself).  mallinfo2() gives the same window's heap growth with
 *      malloc's chunk headers included.
 *  (b) Flat RSS.  Then the sink reads (and discards) every connection for
 *      --seconds while this process samples its VmRSS once a second: with
 *      no buffering on the sendfile path it must not grow.
 * Finally every transfer is cancelled and the heap must return to where it
 * was before (no leak).
 * The transfers use SF_FORCE_SENDFILE: what a remote peer costs.  The sink
 * is on loopback, where the library would otherwise take the copy path;
 * --copy measures that one: its SF_COPY_BUFFER_SIZE buffer is one per
 * thread, not per transfer, allocated by a warm-up transfer before the
 * window (it was one per in-flight transfer: 266,736 B each).
 *
 * Usage: footprint [--conns 1000,10000] [--seconds 15] [--dir DIR] [--check] [--copy]
 * --check: exit 1 when a goal is missed (<= 256 heap bytes per transfer
 * beyond libevent's event and the head copy; RSS growth <= 4 MiB; no leak).
 */
#define _GNU_SOURCE
#include <evsendfile.h>
#include <event2/event.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HEAD_LEN 200
#define FILE_SIZE (1ull << 30)
#define SOCKBUF 16384
#define GOAL_HEAP_BYTES 256
#define GOAL_RSS_GROWTH_KIB 4096

/* ------------------------------------------------ the counting allocator */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

enum owner { OWN_EVSF, OWN_LIBEVENT, OWN_OTHER, OWN_COUNT };
static const char *const owner_name[OWN_COUNT] = {"evsendfile", "libevent", "other"};

struct range { uintptr_t lo, hi; };
static struct range ranges[OWN_COUNT][4]; /* text segments per owner */

struct tally {
    long long net[OWN_COUNT];   /* usable bytes allocated minus freed, by caller */
    long long calls[OWN_COUNT]; /* allocations, by caller */
};
static struct tally tally;

#define LOG_MAX 16
static int logging;                /* record each allocation (one sf_send_async) */
static int copy_path;              /* --copy: the library's choice for the loopback sink (copy path) */
static struct { size_t req, usable; int owner; } alog[LOG_MAX];
static int alog_n;

static int owner_of(uintptr_t pc) {
    for (int o = 0; o < OWN_OTHER; o++)
        for (int i = 0; i < 4 && ranges[o][i].hi; i++)
            if (pc >= ranges[o][i].lo && pc < ranges[o][i].hi) return o;
    return OWN_OTHER;
}

static void note_alloc(void *p, size_t req, void *caller) {
    if (p == NULL) return;
    int o = owner_of((uintptr_t)caller);
    size_t u = malloc_usable_size(p);
    tally.net[o] += (long long)u;
    tally.calls[o]++;
    if (logging && alog_n < LOG_MAX) {
        alog[alog_n].req = req;
        alog[alog_n].usable = u;
        alog[alog_n].owner = o;
        alog_n++;
    }
}

static void note_free(void *p, void *caller) {
    if (p != NULL) tally.net[owner_of((uintptr_t)caller)] -= (long long)malloc_usable_size(p);
}

void *malloc(size_t n) {
    void *p = __libc_malloc(n);
    note_alloc(p, n, __builtin_return_address(0));
    return p;
}

void *calloc(size_t a, size_t b) {
    void *p = __libc_calloc(a, b);
    note_alloc(p, a * b, __builtin_return_address(0));
    return p;
}

void *realloc(void *old, size_t n) {
    void *caller = __builtin_return_address(0);
    note_free(old, caller);
    void *p = __libc_realloc(old, n);
    if (p == NULL && old != NULL && n != 0) {
        tally.net[owner_of((uintptr_t)caller)] += (long long)malloc_usable_size(old); /* old kept */
        return NULL;
    }
    note_alloc(p, n, caller);
    return p;
}

void free(void *p) {
    note_free(p, __builtin_return_address(0));
    __libc_free(p);
}

void *memalign(size_t align, size_t n) {
    void *p = __libc_memalign(align, n);
    note_alloc(p, n, __builtin_return_address(0));
    return p;
}

void *aligned_alloc(size_t align, size_t n) {
    void *p = __libc_memalign(align, n);
    note_alloc(p, n, __builtin_return_address(0));
    return p;
}

int posix_memalign(void **out, size_t align, size_t n) {
    void *p = __libc_memalign(align, n);
    if (p == NULL) return ENOMEM;
    note_alloc(p, n, __builtin_return_address(0));
    *out = p;
    return 0;
}

/* Executable segments of the objects whose allocations we attribute. */
static int find_ranges(struct dl_phdr_info *info, size_t size, void *unused) {
    (void)size;
    (void)unused;
    int o;
    if (strstr(info->dlpi_name, "libevsendfile") || strstr(info->dlpi_name, "libstdc++"))
        o = OWN_EVSF;
    else if (strstr(info->dlpi_name, "libevent"))
        o = OWN_LIBEVENT;
    else
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        for (int k = 0; k < 4; k++)
            if (ranges[o][k].hi == 0) {
                ranges[o][k].lo = info->dlpi_addr + ph->p_vaddr;
                ranges[o][k].hi = ranges[o][k].lo + ph->p_memsz;
                break;
            }
    }
    return 0;
}

/* ------------------------------------------------------------ helpers */

static void die(const char *what) {
    fprintf(stderr, "footprint: %s: %s\n", what, strerror(errno));
    exit(2);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss_kib(void) {
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    char *p = strstr(buf, "VmRSS:");
    return p ? strtol(p + 6, NULL, 10) : -1;
}

static long long heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return (long long)(mi.uordblks + mi.hblkhd);
}

/* ---------------------------------------------------------------- sink */

/* Accepts `n` connections; reads nothing until the control pipe says 'D',
 * then reads and discards everything until the control pipe closes. */
static void sink(int lfd, int ctl, int n, int seconds) {
    alarm((unsigned)seconds + 300); /* never outlive a sender that died before connecting */
    int *fds = calloc((size_t)n, sizeof *fds);
    for (int i = 0; i < n; i++)
        if ((fds[i] = accept(lfd, NULL, NULL)) < 0) _exit(3);
    char c;
    if (read(ctl, &c, 1) != 1) _exit(0);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    ev.data.fd = ctl;
    epoll_ctl(ep, EPOLL_CTL_ADD, ctl, &ev);
    for (int i = 0; i < n; i++) {
        fcntl(fds[i], F_SETFL, O_NONBLOCK);
        ev.data.fd = fds[i];
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    static char buf[1 << 16];
    struct epoll_event evs[256];
    for (;;) {
        int k = epoll_wait(ep, evs, 256, 60000);
        if (k <= 0) _exit(4); /* a minute of nothing: the sender is gone */
        for (int i = 0; i < k; i++) {
            if (evs[i].data.fd == ctl) _exit(0);
            ssize_t r = read(evs[i].data.fd, buf, sizeof buf);
            if (r == 0) epoll_ctl(ep, EPOLL_CTL_DEL, evs[i].data.fd, NULL);
        }
    }
}

/* ---------------------------------------------------------- the sender */

static int completed;
static void on_done(sf_transfer_t *t, int status, uint64_t sent, void *arg) {
    (void)t, (void)status, (void)sent;
    *(char *)arg = 1;
    completed++;
}

struct rss_probe {
    struct event_base *base;
    int seconds, taken;
    long kib[128];
};

static void on_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    struct rss_probe *p = arg;
    p->kib[p->taken++] = rss_kib();
    if (p->taken > p->seconds) event_base_loopbreak(p->base);
}

struct result {
    int n;
    double evsf_b, libevent_b, total_b, goal_b; /* per transfer */
    long rss_first, rss_last, rss_max;
    long long leak;
};


/* --copy: one copy-path transfer to the end, so this thread's copy buffer
 * (one per thread, kept) exists before the measured window opens. */
static void warm_copy_buffer(int file_fd) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv)) die("socketpair");
    sf_options_t o;
    sf_options_init(&o);
    o.flags = SF_NO_SENDFILE;
    sf_region_t reg = {.fd = file_fd, .path = NULL, .offset = 0, .count = 64 * 1024};
    sf_job_t *job = NULL;
    if (sf_job_new(sv[0], &reg, &o, &job)) die("sf_job_new");
    char sink[65536];
    int st;
    while ((st = sf_job_step(job)) > 0)
        while (read(sv[1], sink, sizeof sink) > 0) {
        }
    if (st < 0) die("warm-up transfer");
    sf_job_free(job);
    close(sv[0]);
    close(sv[1]);
}

static struct result run(int n, int seconds, int file_fd) {
    struct result res = {.n = n};
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int small = SOCKBUF;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small); /* inherited by accepted sockets */
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 4096) ||
        getsockname(lfd, (struct sockaddr *)&a, &alen))
        die("listen");
    int ctl[2];
    if (pipe(ctl)) die("pipe");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        close(ctl[1]);
        sink(lfd, ctl[0], n, seconds);
    }
    close(lfd);
    close(ctl[0]);

    int *socks = malloc((size_t)n * sizeof *socks);
    sf_transfer_t **ts = malloc((size_t)n * sizeof *ts);
    char *finished = calloc((size_t)n, 1);
    for (int i = 0; i < n; i++) {
        socks[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (socks[i] < 0) die("socket");
        setsockopt(socks[i], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        if (connect(socks[i], (struct sockaddr *)&a, sizeof a)) die("connect");
        fcntl(socks[i], F_SETFL, O_NONBLOCK);
    }

    static char head[HEAD_LEN];
    memset(head, 'h', sizeof head);
    struct iovec hv = {head, sizeof head};
    sf_options_t o;
    sf_options_init(&o);
    o.head = &hv;
    o.head_count = 1;
    o.flags = copy_path ? 0 : SF_FORCE_SENDFILE; /* loopback would pick the copy path */
    /* The file is sparse, and holes are not in the page cache: without this
     * every chunk would go through the disk threads, whose threads (and
     * their per-thread allocations) live on after the measured window. */
    o.flags |= SF_DISK_INLINE;
    sf_region_t reg = {.fd = file_fd, .path = NULL, .offset = 0, .count = FILE_SIZE};

    if (copy_path) warm_copy_buffer(file_fd);
    long long heap_pre = heap_in_use();
    memset(&tally, 0, sizeof tally);
    struct event_base *base = event_base_new();
    if (base == NULL) die("event_base_new");
    struct rss_probe probe = {.base = base, .seconds = seconds};
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, &probe);
    completed = 0;

    /* (a) the heap window: only the N submissions are inside it */
    long long heap0 = heap_in_use();
    struct tally t0 = tally;
    alog_n = 0;
    for (int i = 0; i < n; i++) {
        logging = i == 0;
        int err = sf_send_async(base, socks[i], &reg, &o, on_done, &finished[i], &ts[i]);
        if (err) {
            fprintf(stderr, "footprint: sf_send_async #%d: %s\n", i, sf_err_name(err));
            exit(2);
        }
    }
    logging = 0;
    long long grown = heap_in_use() - heap0;
    long long evsf = tally.net[OWN_EVSF] - t0.net[OWN_EVSF], lev = tally.net[OWN_LIBEVENT] - t0.net[OWN_LIBEVENT];
    size_t evsz = event_get_struct_event_size();
    res.evsf_b = (double)evsf / n;
    res.libevent_b = (double)lev / n;
    res.total_b = (double)grown / n;
    /* The goal counts everything the library allocates, malloc's headers
     * included (mallinfo2), except libevent's struct event and the head bytes
     * the caller hands over (those grow with the caller's head). */
    res.goal_b = res.total_b - (double)evsz - HEAD_LEN;

    printf("\nN = %d in-flight transfers of 1 GiB + %d-byte head (sink not reading)\n", n, HEAD_LEN);
    printf("  heap growth (mallinfo2, with chunk headers) %10lld B  = %7.1f B/transfer\n", grown,
           res.total_b);
    printf("  allocated by evsendfile (usable bytes)      %10lld B  = %7.1f B/transfer (%.2f calls)\n",
           evsf, res.evsf_b, (double)(tally.calls[OWN_EVSF] - t0.calls[OWN_EVSF]) / n);
    printf("  allocated by libevent   (usable bytes)      %10lld B  = %7.1f B/transfer (%.2f calls)\n",
           lev, res.libevent_b, (double)(tally.calls[OWN_LIBEVENT] - t0.calls[OWN_LIBEVENT]) / n);
    printf("  other                   (usable bytes)      %10lld B\n", tally.net[OWN_OTHER] - t0.net[OWN_OTHER]);
    printf("  struct event (event_get_struct_event_size): %zu B, whoever allocates it\n", evsz);
    printf("  allocations of the first sf_send_async (requested / usable B, by):\n");
    for (int i = 0; i < alog_n; i++)
        printf("    %5zu / %5zu  %s\n", alog[i].req, alog[i].usable, owner_name[alog[i].owner]);
    printf("  => beyond struct event: %.1f B/transfer with the head copy, %.1f B without (goal <= %d)\n",
           res.total_b - (double)evsz, res.goal_b, GOAL_HEAP_BYTES);

    /* (b) RSS while every transfer moves */
    if (seconds > 0) {
        struct timeval one = {1, 0};
        probe.kib[probe.taken++] = rss_kib();
        event_add(tick, &one);
        if (write(ctl[1], "D", 1) != 1) die("write ctl");
        double t0 = now();
        event_base_dispatch(base);
        double dt = now() - t0;
        uint64_t moved = 0;
        for (int i = 0; i < n; i++) moved += sf_transfer_body_sent(ts[i]);
        res.rss_first = probe.kib[0];
        res.rss_last = probe.kib[probe.taken - 1];
        res.rss_max = 0;
        printf("  VmRSS while the sink reads (KiB, 1/s):");
        for (int i = 0; i < probe.taken; i++) {
            if (probe.kib[i] > res.rss_max) res.rss_max = probe.kib[i];
            printf("%s%ld", i % 10 ? " " : "\n    ", probe.kib[i]);
        }
        printf("\n  moved %.2f GB in %.1f s (%.2f GB/s), %d of %d transfers completed\n", moved / 1e9,
               dt, moved / 1e9 / dt, completed, n);
        printf("  RSS growth: last - first %+ld KiB, max - first %+ld KiB\n",
               res.rss_last - res.rss_first, res.rss_max - res.rss_first);
    }

    /* cancel everything: the heap must be back where it was */
    for (int i = 0; i < n; i++)
        if (!finished[i]) sf_cancel(ts[i]);
    event_free(tick);
    event_base_free(base);
    for (int i = 0; i < n; i++) close(socks[i]);
    /* Exact from the counters; mallinfo2 also counts the chunks glibc keeps
     * in its per-thread cache (tcache) as in use, a few KiB at most. */
    res.leak = tally.net[OWN_EVSF] + tally.net[OWN_LIBEVENT] + tally.net[OWN_OTHER];
    printf("  after cancelling all and freeing the base: %+lld B still allocated since before the base"
           " (mallinfo2: %+lld B, tcache included)\n", res.leak, heap_in_use() - heap_pre);
    free(socks);
    free(ts);
    free(finished);
    close(ctl[1]);
    waitpid(pid, NULL, 0);
    return res;
}

int main(int argc, char **argv) {
    int conns[8] = {1000, 10000}, nconns = 2, seconds = 15, check = 0;
    const char *dir = "/tmp";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--conns") && i + 1 < argc) {
            nconns = 0;
            for (char *s = argv[++i]; *s && nconns < 8; s++) {
                conns[nconns++] = (int)strtol(s, &s, 10);
                if (*s != ',') break;
            }
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = atoi(argv[++i]);
            if (seconds > 100) seconds = 100;
        } else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
            dir = argv[++i];
        } else if (!strcmp(argv[i], "--check")) {
            check = 1;
        } else if (!strcmp(argv[i], "--copy")) {
            copy_path = 1;
        } else {
            fprintf(stderr, "usage: %s [--conns 1000,10000] [--seconds 15] [--dir DIR] [--check] [--copy]\n",
                    argv[0]);
            return 2;
        }
    }
    dl_iterate_phdr(find_ranges, NULL);
    if (!ranges[OWN_EVSF][0].hi || !ranges[OWN_LIBEVENT][0].hi) {
        fprintf(stderr, "footprint: needs the shared libevsendfile, libstdc++ and libevent\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    int maxn = 0;
    for (int i = 0; i < nconns; i++) maxn = conns[i] > maxn ? conns[i] : maxn;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)maxn + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < (rlim_t)maxn + 64) {
        fprintf(stderr, "footprint: RLIMIT_NOFILE %llu is too small for %d connections\n",
                (unsigned long long)rl.rlim_cur, maxn);
        return 2;
    }

    char path[4096];
    snprintf(path, sizeof path, "%s/evsf-footprint-XXXXXX", dir);
    int ffd = mkstemp(path);
    if (ffd < 0) die("mkstemp");
    unlink(path);
    if (ftruncate(ffd, (off_t)FILE_SIZE)) die("ftruncate"); /* sparse: no disk */

    printf("footprint: evsendfile %s, libevent %s, %d-byte socket buffers, %d s of reading per N\n",
           sf_version_text(), event_get_version(), SOCKBUF, seconds);
    struct result r[8];
    for (int i = 0; i < nconns; i++) r[i] = run(conns[i], seconds, ffd);
    close(ffd);

    printf("\n%8s %12s %12s %12s %14s %12s %10s\n", "N", "evsf B/t", "libevent B/t", "heap B/t",
           "goal B/t(<=256)", "RSS growth", "leak B");
    int ok = 1;
    for (int i = 0; i < nconns; i++) {
        long growth = r[i].rss_max - r[i].rss_first;
        printf("%8d %12.1f %12.1f %12.1f %14.1f %9ld KiB %10lld\n", r[i].n, r[i].evsf_b, r[i].libevent_b,
               r[i].total_b, r[i].goal_b, growth, r[i].leak);
        if (r[i].goal_b > GOAL_HEAP_BYTES || r[i].leak != 0 || growth > GOAL_RSS_GROWTH_KIB) ok = 0;
    }
    printf("goals (<= %d B/transfer beyond struct event and head; RSS growth <= %d KiB; no leak): %s\n",
           GOAL_HEAP_BYTES, GOAL_RSS_GROWTH_KIB, ok ? "met" : "MISSED");
    return check && !ok ? 1 : 0;
}
