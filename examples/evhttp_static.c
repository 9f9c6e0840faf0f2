/* evhttp_static.c -- serves a directory with libevent's evhttp, file bodies
 * sent with sf_evhttp_send_file (zero-copy sendfile).  GET and HEAD,
 * keep-alive and pipelining as evhttp does them, index.html for
 * directories, a root that ".." and symlinks cannot leave, SIGINT/SIGTERM
 * stop it.
 *   evsendfile-evhttp-static DIR [PORT]     (default port 8080, 127.0.0.1)
 * Build: cc evhttp_static.c $(pkg-config --cflags --libs evsendfile-evhttp) */
#define _GNU_SOURCE
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <evsendfile_evhttp.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int root_fd;

static const char *content_type(const char *path) {
    static const char *const types[][2] = {
        {".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
        {".txt", "text/plain; charset=utf-8"}, {".css", "text/css"},
        {".js", "text/javascript"},            {".json", "application/json"},
        {".png", "image/png"},                 {".jpg", "image/jpeg"},
        {".svg", "image/svg+xml"},             {".pdf", "application/pdf"},
    };
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof *types; i++)
        if (strcasecmp(dot, types[i][0]) == 0) return types[i][1];
    return "application/octet-stream";
}

/* Opens `rel` beneath `dir` (an fd under the root): no "..", no absolute
 * path, no symlink out.  openat2(RESOLVE_BENEATH) where the kernel has it;
 * otherwise openat, then where the fd really points must be under the root.
 * Returns an fd or -errno. */
static char root_path[4096];

static int open_beneath(int dir, const char *rel) {
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
    int fd = (int)syscall(SYS_openat2, dir, rel[0] ? rel : ".", &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS) return fd < 0 ? -errno : fd;
    fd = openat(dir, rel[0] ? rel : ".", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    char link[64], real[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof real - 1);
    size_t rl = strlen(root_path);
    if (n < 0 || (size_t)n < rl || memcmp(real, root_path, rl) != 0 || (real[rl] != '/' && (size_t)n != rl)) {
        close(fd);
        return -EXDEV; /* outside the root */
    }
    return fd;
}

static void reply_error(struct evhttp_request *req, int code, const char *reason) {
    evhttp_send_error(req, code, reason);
}

static void on_sent(sf_transfer_t *t, int status, uint64_t body_sent, void *arg) {
    (void)t;
    int fd = (int)(intptr_t)arg;
    if (status < 0 && status != -EPIPE && status != -ECONNRESET)
        fprintf(stderr, "body broke off after %llu bytes: %s\n", (unsigned long long)body_sent, sf_err_text(status));
    close(fd); /* the region's fd is ours: the library never closes it */
}

static void on_request(struct evhttp_request *req, void *arg) {
    (void)arg;
    const char *raw = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    size_t len = 0;
    char *path = evhttp_uridecode(raw ? raw : "/", 0, &len);
    if (path == NULL || strlen(path) != len) { /* a NUL inside the path */
        free(path);
        reply_error(req, 400, NULL);
        return;
    }
    int fd = open_beneath(root_fd, path + strspn(path, "/"));
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        int index = open_beneath(fd, "index.html");
        close(fd);
        fd = index;
        free(path);
        path = strdup("index.html");
    }
    if (fd < 0) {
        reply_error(req, fd == -ENOENT ? 404 : fd == -EACCES ? 403 : fd == -EXDEV ? 404 : 500, NULL);
        free(path);
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", content_type(path));
    free(path);
    sf_options_t opts;
    sf_options_init(&opts);
    opts.idle_timeout_ms = 60000;
    sf_region_t region = {fd, NULL, 0, SF_COUNT_TO_EOF};
    int rc = sf_evhttp_send_file(req, HTTP_OK, "OK", &region, &opts, on_sent, (void *)(intptr_t)fd);
    if (rc < 0) { /* nothing was sent: answer it ourselves */
        close(fd);
        evhttp_clear_headers(evhttp_request_get_output_headers(req));
        reply_error(req, rc == -EINVAL ? 403 : 500, NULL);
    }
}

static void on_signal(evutil_socket_t sig, short what, void *base) {
    (void)sig;
    (void)what;
    event_base_loopexit(base, NULL);
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s DIR [PORT]\n", argv[0]);
        return 2;
    }
    root_fd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        perror(argv[1]);
        return 1;
    }
    if (realpath(argv[1], root_path) == NULL) {
        perror(argv[1]);
        return 1;
    }
    int port = argc == 3 ? atoi(argv[2]) : 8080;
    struct event_base *base = event_base_new();
    struct evhttp *http = evhttp_new(base);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(http, on_request, NULL);
    evhttp_set_timeout(http, 30);
    if (evhttp_bind_socket(http, "127.0.0.1", (ev_uint16_t)port) != 0) {
        fprintf(stderr, "cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    printf("serving %s on http://127.0.0.1:%d/\n", argv[1], port);
    fflush(stdout);
    event_base_dispatch(base);
    event_free(sigint);
    event_free(sigterm);
    evhttp_free(http);
    event_base_free(base);
    close(root_fd);
    return 0;
}
