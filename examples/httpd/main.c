/* main.c -- evsendfile-httpd: options, listening sockets, threads, signals.
 *
 *   evsendfile-httpd [--listen ADDR:PORT] [--threads N] [--no-sendfile] [--force-sendfile]
 *                    [--access-log] [ROOT]
 *
 * Each of the N threads gets its own listening socket bound to the same
 * address with SO_REUSEPORT (the kernel spreads connections) and its own
 * event_base.  The main thread only waits for SIGINT/SIGTERM, then asks every
 * worker to stop through a pipe and joins them. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <event2/util.h>

#include "httpd.h"
#include "path.h"

struct config g_cfg;

static void usage(FILE *out) {
    fprintf(out,
        "usage: evsendfile-httpd [options] [ROOT]\n"
        "Serves the files under ROOT (default: the current directory) over HTTP/1.1.\n"
        "\n"
        "  --listen ADDR:PORT      address to listen on (default 127.0.0.1:8080; [::1]:8080 for IPv6;\n"
        "                          port 0 picks a free port, printed at start)\n"
        "  --threads N             N event loops on SO_REUSEPORT sockets (default 1)\n"
        "  --no-sendfile           copy with pread+send instead of sendfile (for comparisons)\n"
        "  --force-sendfile        sendfile to clients on this host too (they get the faster copy path\n"
        "                          by default, see the library's SF_FORCE_SENDFILE)\n"
        "  --disk-inline           read cold files on the loop thread (SF_DISK_INLINE; for comparisons)\n"
        "  --access-log            one line per response on stdout\n"
        "  --dotfiles              also serve names that start with '.'\n"
        "  --max-conns N           open connections per thread (default 10000); more are closed\n"
        "  --header-timeout MS     a request head must arrive within MS (default 10000)\n"
        "  --keepalive-timeout MS  idle keep-alive connections close after MS (default 15000)\n"
        "  --send-timeout MS       a response that makes no progress for MS is cut (default 60000)\n"
        "  --stop-timeout MS       on SIGINT/SIGTERM, let sends finish for up to MS (default 10000)\n"
        "  --help                  this text\n"
        "\n"
        "Environment: EVSENDFILE_NO_SENDFILE=1 is --no-sendfile; EVSENDFILE_HTTPD_NO_OPENAT2=1 uses the\n"
        "openat+/proc check instead of openat2(RESOLVE_BENEATH) to confine lookups to ROOT.\n");
}

static unsigned parse_uint(const char *opt, const char *v, unsigned long max) {
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || end == v || *end || n > max || v[0] == '-') {
        fprintf(stderr, "evsendfile-httpd: %s: bad number '%s'\n", opt, v);
        exit(2);
    }
    return (unsigned)n;
}

/* "127.0.0.1:8080", "[::1]:8080", "localhost" is not accepted (no DNS).
 * Port 0 is allowed (libevent's parser refuses it). */
static int parse_listen(const char *text, struct sockaddr_storage *ss, int *len) {
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof host) return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535) return -1;
    memset(ss, 0, sizeof *ss);
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1) return -1;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        *len = sizeof *a;
        return 0;
    }
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return -1;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    *len = sizeof *a;
    return 0;
}

/* Creates one listening socket; *ss gets the real port when it was 0. */
static int listen_on(struct sockaddr_storage *ss, int len, int reuseport, const char *text) {
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
            fprintf(stderr, "evsendfile-httpd: SO_REUSEPORT: %s (try --threads 1)\n", strerror(errno));
            exit(1);
        }
    }
    if (fd < 0 || bind(fd, (struct sockaddr *)ss, (socklen_t)len) != 0 || listen(fd, 4096) != 0) {
        fprintf(stderr, "evsendfile-httpd: cannot listen on %s: %s\n", text, strerror(errno));
        exit(1);
    }
    socklen_t sl = (socklen_t)len;
    getsockname(fd, (struct sockaddr *)ss, &sl);
    return fd;
}

/* A zero-length regular file: the region of every body-less response. */
static int make_empty_fd(void) {
#ifdef MFD_CLOEXEC
    int fd = memfd_create("evsendfile-httpd-empty", MFD_CLOEXEC);
    if (fd >= 0) return fd;
#endif
    char tmpl[] = "/tmp/evsendfile-httpd-XXXXXX";
    int t = mkstemp(tmpl);
    if (t >= 0) unlink(tmpl);
    return t;
}

/* Every connection costs an fd, and each response holds its file open until
 * its done callback: the usual soft limit (1024) would stop the server far
 * below --max-conns.  Take what the hard limit allows, as most servers do. */
static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv) {
    const char *listen_text = "127.0.0.1:8080";
    static const struct option opts[] = {
        {"listen", required_argument, 0, 'l'},        {"threads", required_argument, 0, 't'},
        {"no-sendfile", no_argument, 0, 'n'},         {"access-log", no_argument, 0, 'a'},
        {"force-sendfile", no_argument, 0, 'F'},
        {"dotfiles", no_argument, 0, 'd'},            {"max-conns", required_argument, 0, 'm'},
        {"header-timeout", required_argument, 0, 'H'}, {"keepalive-timeout", required_argument, 0, 'K'},
        {"send-timeout", required_argument, 0, 'S'},  {"stop-timeout", required_argument, 0, 'T'},
        {"disk-inline", no_argument, 0, 'D'},         {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    g_cfg.threads = 1;
    g_cfg.max_conns = 10000;
    g_cfg.header_timeout_ms = 10000;
    g_cfg.keepalive_timeout_ms = 15000;
    g_cfg.send_timeout_ms = 60000;
    g_cfg.stop_timeout_ms = 10000;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'l': listen_text = optarg; break;
        case 't': g_cfg.threads = (int)parse_uint("--threads", optarg, 256); break;
        case 'n': g_cfg.no_sendfile = 1; break;
        case 'F': g_cfg.force_sendfile = 1; break;
        case 'D': g_cfg.disk_inline = 1; break;
        case 'a': g_cfg.access_log = 1; break;
        case 'd': g_cfg.dotfiles = 1; break;
        case 'm': g_cfg.max_conns = (int)parse_uint("--max-conns", optarg, 1000000); break;
        case 'H': g_cfg.header_timeout_ms = parse_uint("--header-timeout", optarg, 86400000); break;
        case 'K': g_cfg.keepalive_timeout_ms = parse_uint("--keepalive-timeout", optarg, 86400000); break;
        case 'S': g_cfg.send_timeout_ms = parse_uint("--send-timeout", optarg, 86400000); break;
        case 'T': g_cfg.stop_timeout_ms = parse_uint("--stop-timeout", optarg, 86400000); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (argc - optind > 1) {
        usage(stderr);
        return 2;
    }
    if (g_cfg.threads < 1) g_cfg.threads = 1;
    if (g_cfg.max_conns < 1) g_cfg.max_conns = 1;
    raise_fd_limit();
    g_cfg.root = optind < argc ? argv[optind] : ".";
    g_cfg.root_fd = open(g_cfg.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (g_cfg.root_fd < 0 || realpath(g_cfg.root, g_cfg.root_real) == NULL) {
        fprintf(stderr, "evsendfile-httpd: root %s: %s\n", g_cfg.root, strerror(errno));
        return 1;
    }
    int openat2_used = path_init();
    if ((g_cfg.empty_fd = make_empty_fd()) < 0) {
        fprintf(stderr, "evsendfile-httpd: cannot create an empty file: %s\n", strerror(errno));
        return 1;
    }

    struct sockaddr_storage ss;
    int sslen = 0;
    if (parse_listen(listen_text, &ss, &sslen) != 0) {
        fprintf(stderr, "evsendfile-httpd: --listen %s: expected ADDR:PORT\n", listen_text);
        return 2;
    }

    /* The library never raises SIGPIPE by its contract, and a server should
     * not depend on that alone: ignore it.  EVSENDFILE_HTTPD_DEFAULT_SIGPIPE=1
     * keeps the default action, so the tests can hold the library to its word. */
    const char *keep = getenv("EVSENDFILE_HTTPD_DEFAULT_SIGPIPE");
    if (keep == NULL || strcmp(keep, "1") != 0) signal(SIGPIPE, SIG_IGN);

    /* Workers inherit this mask: only the main thread takes the signals. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    struct worker *workers = calloc((size_t)g_cfg.threads, sizeof *workers);
    if (workers == NULL) return 1;
    for (int i = 0; i < g_cfg.threads; i++) {
        int fd = listen_on(&ss, sslen, g_cfg.threads > 1, listen_text); /* same port for all */
        if (worker_init(&workers[i], fd) != 0) {
            fprintf(stderr, "evsendfile-httpd: cannot set up an event loop\n");
            return 1;
        }
    }

    for (int i = 0; i < g_cfg.threads; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_run, &workers[i]) != 0) {
            fprintf(stderr, "evsendfile-httpd: cannot start thread %d\n", i);
            return 1;
        }
    }
    char host[INET6_ADDRSTRLEN] = "?";
    int port;
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        evutil_inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        evutil_inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
    }
    printf("evsendfile-httpd %s: serving %s at http://%s%s%s:%d/ (%d thread%s, %s, %s)\n",
           sf_version_text(), g_cfg.root_real, ss.ss_family == AF_INET6 ? "[" : "", host,
           ss.ss_family == AF_INET6 ? "]" : "", port, g_cfg.threads, g_cfg.threads > 1 ? "s" : "",
           g_cfg.no_sendfile      ? "copy path"
           : g_cfg.force_sendfile ? "sendfile"
                                  : "sendfile, copy path to same-host clients",
           openat2_used ? "openat2" : "openat+check");
    fflush(stdout);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    fprintf(stderr, "evsendfile-httpd: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    for (int i = 0; i < g_cfg.threads; i++) worker_request_stop(&workers[i]);
    for (int i = 0; i < g_cfg.threads; i++) {
        pthread_join(workers[i].thread, NULL);
        worker_free(&workers[i]);
    }
    free(workers);
    close(g_cfg.empty_fd);
    close(g_cfg.root_fd);
    return 0;
}
