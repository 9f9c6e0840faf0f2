/* fuzz_path.c -- request target to open file (examples/httpd/path.c).
 *
 * A temporary tree is made once: root/ with files, a dotfile, a FIFO and
 * symlinks that lead inside, outside (.., /etc, a sibling file) and in a
 * loop; outside.txt sits next to root/.  Input: an options byte (bit 0:
 * serve dotfiles; bit 1: the openat fallback instead of openat2; bits 2-7: a
 * small output capacity) then the target.  Checked besides memory safety:
 *  - path_from_target agrees with an independent decoder (decode %XX, split
 *    on '/', drop empty and "." segments, refuse "..", NUL, dotfiles): the
 *    same verdict (ok or not) and the same relative path;
 *  - the relative path is clean: no leading or trailing '/', no empty, "."
 *    or ".." segment, and it fits the capacity it was given;
 *  - whatever path_open opens lies beneath the root (the kernel's own
 *    /proc/self/fd link of the opened fd), and no fd is left open. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpd.h"
#include "input.h"
#include "path.h"

struct config g_cfg; /* path.c reads root_fd and root_real from it */

static char g_tmp[512];

/* g_tmp/rel, in a static buffer (one at a time). */
static const char *at(const char *rel) {
    static char p[PATH_MAX];
    int n = snprintf(p, sizeof p, "%s/%s", g_tmp, rel);
    FUZZ_CHECK(n > 0 && (size_t)n < sizeof p, "path too long");
    return p;
}

static void rm_tree(void) {
    char cmd[sizeof g_tmp + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
}

static void put(const char *rel, const char *text) {
    const char *p = at(rel);
    FILE *f = fopen(p, "w");
    FUZZ_CHECK(f != NULL, "create %s", p);
    fputs(text, f);
    fclose(f);
}

static void link_to(const char *target, const char *rel) {
    const char *p = at(rel);
    FUZZ_CHECK(symlink(target, p) == 0, "symlink %s", p);
}

static void make_dir(const char *rel) {
    const char *p = at(rel);
    FUZZ_CHECK(mkdir(p, 0755) == 0, "mkdir %s", p);
}

static void setup(void) {
    const char *t = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/evsf-fuzz-path-XXXXXX", t && *t ? t : "/tmp");
    FUZZ_CHECK(mkdtemp(g_tmp) != NULL, "mkdtemp");
    atexit(rm_tree);
    put("outside.txt", "secret\n");
    make_dir("root");
    make_dir("root/dir");
    make_dir("root/dir/.git");
    put("root/a.txt", "a\n");
    put("root/dir/b.txt", "b\n");
    put("root/.hidden", "h\n");
    put("root/dir/.git/config", "c\n");
    put("root/%41", "literal percent\n");
    link_to("..", "root/up");
    link_to("../..", "root/dir/up2");
    link_to("/etc", "root/abs");
    link_to("../outside.txt", "root/esc");
    link_to("dir/b.txt", "root/in");
    link_to("../a.txt", "root/dir/a");
    link_to("loop", "root/loop");
    link_to("/proc/self/cwd", "root/magic");
    FUZZ_CHECK(mkfifo(at("root/fifo"), 0644) == 0, "mkfifo");

    FUZZ_CHECK(realpath(at("root"), g_cfg.root_real) != NULL, "realpath");
    g_cfg.root = g_cfg.root_real;
    g_cfg.root_fd = open(at("root"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    FUZZ_CHECK(g_cfg.root_fd >= 0, "open root");
}

/* ---- the model */

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* 0 and the clean path in out (big enough), or -1. */
static int model(const char *t, size_t len, int dotfiles, char *out) {
    char dec[8192];
    size_t n = 0;
    for (size_t i = 0; i < len && t[i] != '?' && t[i] != '#'; i++) {
        int c = (unsigned char)t[i];
        if (c == '%') {
            if (i + 2 >= len || hexval(t[i + 1]) < 0 || hexval(t[i + 2]) < 0) return -1;
            c = hexval(t[i + 1]) * 16 + hexval(t[i + 2]);
            i += 2;
        }
        if (c == 0) return -1;
        dec[n++] = (char)c;
    }
    dec[n] = '\0';
    size_t o = 0;
    for (char *seg = dec, *slash; seg != NULL; seg = slash ? slash + 1 : NULL) {
        slash = strchr(seg, '/');
        if (slash) *slash = '\0';
        if (*seg == '\0' || strcmp(seg, ".") == 0) continue;
        if (strcmp(seg, "..") == 0) return -1;
        if (seg[0] == '.' && !dotfiles) return -1;
        if (o > 0) out[o++] = '/';
        size_t sl = strlen(seg);
        memcpy(out + o, seg, sl);
        o += sl;
    }
    if (o == 0) out[o++] = '.';
    out[o] = '\0';
    return 0;
}

static void check_clean(const char *rel, int dotfiles) {
    if (strcmp(rel, ".") == 0) return;
    size_t n = strlen(rel);
    FUZZ_CHECK(n > 0 && rel[0] != '/' && rel[n - 1] != '/', "not relative and trimmed: %s", rel);
    for (const char *s = rel;;) {
        const char *e = strchr(s, '/');
        size_t sl = e ? (size_t)(e - s) : strlen(s);
        FUZZ_CHECK(sl > 0, "empty segment in %s", rel);
        FUZZ_CHECK(!(sl == 1 && s[0] == '.') && !(sl == 2 && s[0] == '.' && s[1] == '.'),
                   "dot segment in %s", rel);
        FUZZ_CHECK(dotfiles || s[0] != '.', "dotfile in %s", rel);
        if (e == NULL) break;
        s = e + 1;
    }
}

static void check_open(const char *rel) {
    int fd = path_open(rel);
    if (fd < 0) {
        FUZZ_CHECK(fd != -EINTR, "path_open: EINTR");
        return;
    }
    char link[64], real[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof real - 1);
    FUZZ_CHECK(n > 0, "readlink %s", link);
    real[n] = '\0';
    size_t rl = strlen(g_cfg.root_real);
    FUZZ_CHECK(strncmp(real, g_cfg.root_real, rl) == 0 && (real[rl] == '\0' || real[rl] == '/'),
               "\"%s\" opened %s, outside the root %s", rel, real, g_cfg.root_real);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int mode = -1;
    if (mode < 0) setup();
    /* Counted per input: between inputs libFuzzer may open fds of its own
     * (pipes to llvm-symbolizer when it reports a new function). */
    int fds_before = count_fds();
    input_t in = {data, size};
    uint8_t opt = take_u8(&in);
    int dotfiles = opt & 1;
    int fallback = (opt >> 1) & 1;
    if (fallback != mode) {
        if (fallback) setenv("EVSENDFILE_HTTPD_NO_OPENAT2", "1", 1);
        else unsetenv("EVSENDFILE_HTTPD_NO_OPENAT2");
        int used = path_init();
        FUZZ_CHECK(!fallback || !used, "path_init used openat2 although told not to");
        mode = fallback;
    }
    size_t len = in.left > 4000 ? 4000 : in.left;
    char *target = malloc(len ? len : 1);
    if (target == NULL) return 0;
    memcpy(target, in.p, len);

    char rel[PATH_MAX], want[8192];
    int slash = -1;
    int st = path_from_target(target, len, dotfiles, rel, sizeof rel, &slash);
    FUZZ_CHECK(st == 0 || st == 400 || st == 404 || st == 414, "status %d", st);
    FUZZ_CHECK(slash == 0 || slash == 1, "trailing_slash %d", slash);
    int m = model(target, len, dotfiles, want);
    FUZZ_CHECK((st == 0) == (m == 0) || (st == 414 && m == 0 && strlen(want) + 1 >= sizeof rel),
               "path_from_target says %d, the model %d", st, m);
    if (st == 0) {
        FUZZ_CHECK(strcmp(rel, want) == 0, "decoded \"%s\", the model \"%s\"", rel, want);
        check_clean(rel, dotfiles);
        check_open(rel);
    }

    /* The same with a small buffer: never written past, and still right. */
    size_t cap = (size_t)(opt >> 2);
    char *small = malloc(cap ? cap : 1);
    if (small != NULL) {
        int st2 = path_from_target(target, len, dotfiles, small, cap, &slash);
        if (st2 == 0) {
            FUZZ_CHECK(st == 0 && strlen(small) < cap && strcmp(small, rel) == 0, "small buffer: \"%s\"", small);
        } else {
            /* path_from_target builds in place: it needs up to 2 bytes of
             * room beyond the result (a separator and a "." it then drops). */
            FUZZ_CHECK(st2 == st || (st2 == 414 && (st != 0 || strlen(rel) + 3 > cap)),
                       "small buffer (%zu): %d, large: %d", cap, st2, st);
        }
        free(small);
    }
    free(target);
    FUZZ_CHECK(count_fds() == fds_before, "fd count %d, was %d", count_fds(), fds_before);
    return 0;
}
