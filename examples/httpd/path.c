/* path.c -- root confinement.
 *
 * Two layers: the URL path is decoded and normalised first (".." refused
 * outright, so no lexical trick reaches the filesystem), then the open itself
 * is confined, which is what stops symlinks that point outside the root. */
#include "path.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#if defined(__linux__) && __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#endif

#include "httpd.h"

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int path_from_target(const char *target, size_t len, int allow_dotfiles, char *out, size_t cap,
                     int *trailing_slash) {
    size_t n = 0;   /* bytes in out */
    size_t seg = 0; /* where the current segment starts in out */
    *trailing_slash = 0;
    if (cap < 2) return 414;
    for (size_t i = 0; i <= len; i++) {
        int end = i == len || target[i] == '?' || target[i] == '#';
        char c = end ? '/' : target[i];
        if (c == '%') {
            int hi = i + 2 < len ? hexval(target[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(target[i + 2]) : -1;
            if (lo < 0) return 400;
            c = (char)(hi * 16 + lo);
            i += 2;
            /* A decoded '/' is a separator like any other: "%2e%2e%2f" is "../". */
        }
        if (c == '\0') return 400; /* raw or decoded: it would cut the path short */
        if (c == '/') {
            size_t sl = n - seg;
            if (sl == 0) {
                /* empty segment: "//" or the leading slash */
            } else if (sl == 1 && out[seg] == '.') {
                n = seg; /* "." */
            } else if (sl == 2 && out[seg] == '.' && out[seg + 1] == '.') {
                return 400; /* never climb, not even inside the root */
            } else {
                if (out[seg] == '.' && !allow_dotfiles) return 404;
                if (n + 1 >= cap) return 414;
                out[n++] = '/';
            }
            seg = n;
            if (end) {
                *trailing_slash = i > 0 && (target[i - 1] == '/');
                break;
            }
            continue;
        }
        if (n + 1 >= cap) return 414;
        out[n++] = c;
    }
    if (n > 0 && out[n - 1] == '/') n--; /* drop the separator we added after the last segment */
    if (n == 0) out[n++] = '.';
    out[n] = '\0';
    return 0;
}

#ifdef SYS_openat2
static int open_beneath(const char *rel) {
#ifdef RESOLVE_BENEATH
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, g_cfg.root_fd, rel, &how, sizeof how);
#else
    (void)rel;
    errno = ENOSYS;
    return -1;
#endif
}
#endif

/* The fallback: open, then ask the kernel where the fd really is. */
static int open_checked(const char *rel) {
    int fd = openat(g_cfg.root_fd, rel, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return -errno;
    char link[64], real[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof real - 1);
    size_t rl = strlen(g_cfg.root_real);
    int inside = 0;
    if (n > 0) {
        real[n] = '\0';
        if (strcmp(g_cfg.root_real, "/") == 0)
            inside = 1;
        else
            inside = strncmp(real, g_cfg.root_real, rl) == 0 && (real[rl] == '\0' || real[rl] == '/');
    }
    if (!inside) { /* or we cannot tell: fail closed */
        close(fd);
        return -EXDEV;
    }
    return fd;
}

static int g_use_openat2; /* decided once by path_init, before any thread starts */

int path_init(void) {
    g_use_openat2 = 0; /* decided afresh on every call (the fuzz target switches) */
#ifdef SYS_openat2
    const char *v = getenv("EVSENDFILE_HTTPD_NO_OPENAT2"); /* lets the tests cover the fallback */
    if (v == NULL || v[0] != '1') {
        int fd = open_beneath(".");
        if (fd >= 0) {
            close(fd);
            g_use_openat2 = 1;
        }
    }
#endif
    return g_use_openat2;
}

int path_open(const char *rel) {
#ifdef SYS_openat2
    if (g_use_openat2) {
        int fd = open_beneath(rel);
        if (fd >= 0) return fd;
        if (errno != EPERM) return -errno; /* EPERM: a seccomp filter may refuse the call */
    }
#endif
    return open_checked(rel);
}
