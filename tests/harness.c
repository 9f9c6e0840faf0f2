/* harness.c -- shared test plumbing (see harness.h). */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Harness failures are test-setup failures: say where and stop. */
static void die(const char *what) {
    fprintf(stderr, "test harness: %s: %s\n", what, strerror(errno));
    abort();
}

/* ------------------------------------------------------------ content */

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint8_t pattern_byte(uint64_t off) { return (uint8_t)(mix64(off >> 3) >> ((off & 7) * 8)); }

void pattern_fill(uint8_t *buf, uint64_t off, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint64_t word = mix64((off + i) >> 3);
        for (unsigned b = (unsigned)((off + i) & 7); b < 8 && i < len; b++, i++)
            buf[i] = (uint8_t)(word >> (b * 8));
    }
}

long pattern_mismatch(const uint8_t *buf, uint64_t off, size_t len) {
    uint8_t tmp[4096];
    for (size_t done = 0; done < len;) {
        size_t n = len - done < sizeof tmp ? len - done : sizeof tmp;
        pattern_fill(tmp, off + done, n);
        if (memcmp(tmp, buf + done, n) != 0) {
            for (size_t i = 0; i < n; i++)
                if (tmp[i] != buf[done + i]) return (long)(done + i);
        }
        done += n;
    }
    return -1;
}

/* -------------------------------------------------------------- files */

#define MAX_FILES 64
static char g_paths[MAX_FILES][PATH_MAX];
static int g_npaths;

static int make_file(char *path_out) {
    const char *dir = getenv("TMPDIR");
    if (dir == NULL || dir[0] == '\0') dir = "/tmp";
    if (g_npaths == MAX_FILES) {
        errno = EMFILE;
        die("too many test files");
    }
    char *p = g_paths[g_npaths];
    snprintf(p, PATH_MAX, "%s/evsf-test-XXXXXX", dir);
    int fd = mkstemp(p);
    if (fd < 0) die("mkstemp");
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) die("FD_CLOEXEC");
    if (path_out == NULL) {
        unlink(p); /* nobody needs the name: nothing is left behind, even on a crash */
        return fd;
    }
    g_npaths++;
    snprintf(path_out, PATH_MAX, "%s", p);
    return fd;
}

void write_pattern_at(int fd, uint64_t off, size_t len) {
    uint8_t buf[64 * 1024];
    while (len > 0) {
        size_t n = len < sizeof buf ? len : sizeof buf;
        pattern_fill(buf, off, n);
        ssize_t w = pwrite(fd, buf, n, (off_t)off);
        if (w <= 0) die("pwrite");
        off += (uint64_t)w;
        len -= (size_t)w;
    }
}

int make_pattern_file(uint64_t size, char *path_out) {
    int fd = make_file(path_out);
    write_pattern_at(fd, 0, (size_t)size);
    return fd;
}

int make_sparse_file(uint64_t size, char *path_out) {
    int fd = make_file(path_out);
    if (ftruncate(fd, (off_t)size) != 0) die("ftruncate");
    return fd;
}

void files_cleanup(void) {
    for (int i = 0; i < g_npaths; i++) unlink(g_paths[i]);
    g_npaths = 0;
}

/* ------------------------------------------------------------ sockets */

void set_nonblocking(int fd, int on) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) die("F_GETFL");
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    if (fcntl(fd, F_SETFL, fl) != 0) die("F_SETFL");
}

void socketpair_nb(int *sender, int *receiver) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
    set_nonblocking(sv[0], 1);
    *sender = sv[0];
    *receiver = sv[1];
}

static void tcp_pair_family(int family, int *sender, int *receiver) {
    int ls = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0) die("socket");
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t alen;
    if (family == AF_INET6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_addr = in6addr_loopback;
        alen = sizeof *a6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        alen = sizeof *a4;
    }
    if (bind(ls, (struct sockaddr *)&ss, alen) != 0) die("bind");
    if (listen(ls, 1) != 0) die("listen");
    if (getsockname(ls, (struct sockaddr *)&ss, &alen) != 0) die("getsockname");
    int c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0) die("socket");
    if (connect(c, (struct sockaddr *)&ss, alen) != 0) die("connect");
    int s = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    if (s < 0) die("accept");
    close(ls);
    set_nonblocking(s, 1);
    *sender = s;
    *receiver = c;
}

void tcp_pair(int *sender, int *receiver) { tcp_pair_family(AF_INET, sender, receiver); }
void tcp6_pair(int *sender, int *receiver) { tcp_pair_family(AF_INET6, sender, receiver); }

void small_buffers(int sender, int receiver, int bytes) {
    if (setsockopt(sender, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes) != 0) die("SO_SNDBUF");
    if (setsockopt(receiver, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes) != 0) die("SO_RCVBUF");
}

int tcp_cork_is_on(int sock) {
    int on = -1;
    socklen_t len = sizeof on;
    if (getsockopt(sock, IPPROTO_TCP, TCP_CORK, &on, &len) != 0) return -1;
    return on != 0;
}

/* ----------------------------------------------------------------- fds */

int count_open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) die("opendir /proc/self/fd");
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

int quiet_fd_count(void) {
    /* Stable for 200 ms (at most 5 s): an earlier test's read-in ends in
     * milliseconds, and its descriptors close with it. */
    int n = count_open_fds(), same = 0;
    for (int i = 0; i < 500 && same < 20; i++) {
        struct timespec t = {0, 10 * 1000 * 1000};
        nanosleep(&t, NULL);
        int m = count_open_fds();
        same = m == n ? same + 1 : 0;
        n = m;
    }
    return n;
}

int settled_fd_count(int want) {
    int n = count_open_fds();
    for (int i = 0; i < 500 && n != want; i++) {
        struct timespec t = {0, 10 * 1000 * 1000};
        nanosleep(&t, NULL);
        n = count_open_fds();
    }
    if (n != want) {  /* say which, for the failure that follows */
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            char path[300], target[256];
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
            ssize_t len = readlink(path, target, sizeof target - 1);
            target[len > 0 ? len : 0] = '\0';
            fprintf(stderr, "open fd %s -> %s\n", e->d_name, target);
        }
        if (d != NULL) closedir(d);
    }
    return n;
}

/* -------------------------------------------------------------- reader */

static void pace(unsigned us) {
    /* The pause IS the scenario (a slow peer), not a wait for a condition. */
    struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void *reader_main(void *arg) {
    reader_t *r = arg;
    size_t chunk = r->chunk ? r->chunk : 64 * 1024;
    uint8_t *tmp = malloc(chunk);
    if (tmp == NULL) die("malloc");
    for (;;) {
        size_t want = chunk;
        if (r->close_after && r->close_after - r->total < want) want = (size_t)(r->close_after - r->total);
        ssize_t n = read(r->fd, tmp, want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            r->read_errno = errno;
            break;
        }
        if (n == 0) break;
        if (r->keep) {
            if (r->len + (size_t)n > r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 1 << 20;
                while (cap < r->len + (size_t)n) cap *= 2;
                r->buf = realloc(r->buf, cap);
                if (r->buf == NULL) die("realloc");
                r->cap = cap;
            }
            memcpy(r->buf + r->len, tmp, (size_t)n);
            r->len += (size_t)n;
        }
        r->total += (uint64_t)n;
        if (r->close_after && r->total >= r->close_after) {
            close(r->fd);
            r->fd = -1;
            break;
        }
        if (r->pace_us) pace(r->pace_us);
    }
    free(tmp);
    return NULL;
}

void reader_start(reader_t *r) {
    set_nonblocking(r->fd, 0);
    if (pthread_create(&r->thread, NULL, reader_main, r) != 0) die("pthread_create");
}

void reader_join(reader_t *r) { pthread_join(r->thread, NULL); }

void reader_free(reader_t *r) {
    free(r->buf);
    r->buf = NULL;
    r->len = r->cap = 0;
}

/* ---------------------------------------------------------- wire image */

int wire_matches(const uint8_t *got, size_t len, const char *head, uint64_t off, uint64_t count,
                 const char *tail) {
    size_t hl = head ? strlen(head) : 0, tl = tail ? strlen(tail) : 0;
    if (len != hl + count + tl) {
        fprintf(stderr, "wire: got %zu bytes, expected %zu\n", len, (size_t)(hl + count + tl));
        return 0;
    }
    if (hl && memcmp(got, head, hl) != 0) {
        fprintf(stderr, "wire: head differs\n");
        return 0;
    }
    long bad = pattern_mismatch(got + hl, off, (size_t)count);
    if (bad >= 0) {
        fprintf(stderr, "wire: body differs at region byte %ld (file offset %llu)\n", bad,
                (unsigned long long)(off + (uint64_t)bad));
        return 0;
    }
    if (tl && memcmp(got + hl + count, tail, tl) != 0) {
        fprintf(stderr, "wire: tail differs\n");
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- done */

void done_rec_init(done_rec_t *d, int shut_fd) {
    memset(d, 0, sizeof *d);
    d->status = 1; /* never a real status */
    d->shut_fd = shut_fd;
}

void record_done(sf_transfer_t *t, int status, uint64_t body_sent, void *arg) {
    (void)t;
    done_rec_t *d = arg;
    d->calls++;
    d->status = status;
    d->body_sent = body_sent;
    if (d->shut_fd >= 0) shutdown(d->shut_fd, SHUT_WR);
}

/* ---------------------------------------------------------------- loop */

static void tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    (void)arg;
}

int run_until(struct event_base *base, const int *flag) {
    /* A periodic no-op timer keeps EVLOOP_ONCE from returning at once when
     * nothing else is pending, and lets us check the guard deadline. */
    struct event *t = event_new(base, -1, EV_PERSIST, tick, NULL);
    struct timeval tv = {0, 50 * 1000};
    event_add(t, &tv);
    time_t deadline = time(NULL) + GUARD_SECONDS;
    while (!*flag && time(NULL) < deadline) event_base_loop(base, EVLOOP_ONCE);
    event_free(t);
    if (!*flag) fprintf(stderr, "run_until: guard deadline passed\n");
    return *flag;
}

void opts_with(sf_options_t *o, struct iovec *head_iov, const char *head, struct iovec *tail_iov,
               const char *tail) {
    sf_options_init(o);
    if (head) {
        head_iov->iov_base = (void *)head;
        head_iov->iov_len = strlen(head);
        o->head = head_iov;
        o->head_count = 1;
    }
    if (tail) {
        tail_iov->iov_base = (void *)tail;
        tail_iov->iov_len = strlen(tail);
        o->tail = tail_iov;
        o->tail_count = 1;
    }
}

int transfer_collect(int sender, int receiver, const sf_region_t *region, const sf_options_t *opts,
                     reader_t *r, done_rec_t *d) {
    struct event_base *base = event_base_new();
    if (base == NULL) die("event_base_new");
    done_rec_init(d, sender);
    r->fd = receiver;
    reader_start(r);
    int rc = sf_send_async(base, sender, region, opts, record_done, d, NULL);
    if (rc != 0 || !run_until(base, &d->calls)) shutdown(sender, SHUT_RDWR); /* free the reader */
    reader_join(r);
    event_base_free(base);
    return rc;
}

uint32_t test_ms(uint32_t ms) {
    const char *v = getenv("EVSF_TEST_TIME_SCALE");
    long scale = v ? strtol(v, NULL, 10) : 1;
    return ms * (uint32_t)(scale > 1 ? scale : 1);
}
