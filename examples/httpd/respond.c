/* respond.c -- static files: lookup, conditional requests, ranges, headers.
 *
 * Every response, even an error or a 304, goes out through conn_send(), i.e.
 * sf_send_async() with the status line and headers as the transfer's `head`.
 * A response without a body uses a zero-length region: of the file itself
 * when one is open, otherwise of g_cfg.empty_fd (an empty memfd).  A
 * zero-length region costs one writev of the head; no special case needed. */
#include "respond.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mime.h"
#include "path.h"
#include "range.h"

/* ----------------------------------------------------------- helpers */

struct head {
    char   b[REQUEST_LINE_MAX + 1024]; /* a Location header can carry a whole request target */
    size_t n;
    int    overflow; /* something did not fit: such a head is never sent */
};

static void add(struct head *h, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(h->b + h->n, sizeof h->b - h->n, fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= sizeof h->b - h->n) h->overflow = 1; /* h->n stays: nothing half-added */
    else h->n += (size_t)r;
}

/* The hot path (every 200 head) appends with these instead of printf:
 * vsnprintf cost 5,000 instructions per response, 40 % of the server's
 * user-space work at 1 KiB (callgrind, bench/RESULTS.md).  Like add(): a
 * piece that does not fit marks the head, which is then never sent. */
static void put(struct head *h, const char *s, size_t n) {
    if (n > sizeof h->b - h->n) h->overflow = 1;
    else {
        memcpy(h->b + h->n, s, n);
        h->n += n;
    }
}

static void put_s(struct head *h, const char *s) { put(h, s, strlen(s)); }

/* v in decimal (base 10) or lower-case hex (16) at the end of d[20]; returns its first digit. */
static char *digits_of(uint64_t v, unsigned base, char d[20]) {
    char *p = d + 20;
    do {
        *--p = "0123456789abcdef"[v % base];
        v /= base;
    } while (v != 0);
    return p;
}

static void put_u64(struct head *h, uint64_t v) {
    char d[20];
    char *p = digits_of(v, 10, d);
    put(h, p, (size_t)(d + 20 - p));
}

/* v in lower-case hex at out (at most 16 bytes, no NUL); returns the end. */
static char *hex_to(char *out, uint64_t v) {
    char d[20];
    char *p = digits_of(v, 16, d);
    size_t n = (size_t)(d + 20 - p);
    memcpy(out, p, n);
    return out + n;
}

static const char *reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Internal Server Error";
    }
}

void http_date(time_t t, char out[64]) {
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 64, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static int month_of(const char *p) { /* 0..11, or -1 */
    static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int m = 0; m < 12; m++)
        if (strncasecmp(p, names + 3 * m, 3) == 0) return m;
    return -1;
}

/* Is [p, p+n) a day name: "Sun" (full: "Sunday")? */
static int is_day(const char *p, size_t n, int full) {
    static const char *const names[7] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                         "Saturday"};
    for (int d = 0; d < 7; d++)
        if ((full ? strlen(names[d]) : 3) == n && strncasecmp(p, names[d], n) == 0) return 1;
    return 0;
}

/* n decimal digits at p, or -1. */
static int digits(const char *p, int n) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* "hh:mm:ss" into tm; 0 or -1. */
static int clock_of(const char *p, struct tm *tm) {
    if (p[2] != ':' || p[5] != ':') return -1;
    tm->tm_hour = digits(p, 2);
    tm->tm_min = digits(p + 3, 2);
    tm->tm_sec = digits(p + 6, 2);
    return tm->tm_hour < 0 || tm->tm_hour > 23 || tm->tm_min < 0 || tm->tm_min > 59 || tm->tm_sec < 0 ||
                   tm->tm_sec > 60 ? -1 : 0;
}

/* An HTTP-date in any of its three forms (RFC 9110 5.6.7), exactly:
 *   IMF-fixdate  "Sun, 06 Nov 1994 08:49:37 GMT"
 *   RFC 850      "Sunday, 06-Nov-94 08:49:37 GMT"
 *   asctime      "Sun Nov  6 08:49:37 1994"
 * The day name is not checked against the date.  -1 if it is none of them. */
static time_t parse_http_date(struct slice s) {
    char b[40];
    struct tm tm;
    if (s.p == NULL || s.n < 24 || s.n >= sizeof b) return -1;
    memcpy(b, s.p, s.n);
    b[s.n] = '\0'; /* every field below is checked before the next is read: no overrun */
    memset(&tm, 0, sizeof tm);
    const char *comma = memchr(b, ',', s.n);
    if (s.n == 29 && comma == b + 3) { /* IMF-fixdate */
        if (!is_day(b, 3, 0) || b[4] != ' ' || b[7] != ' ' || b[11] != ' ' || b[16] != ' ' ||
            strcmp(b + 25, " GMT") != 0)
            return -1;
        tm.tm_mday = digits(b + 5, 2);
        tm.tm_mon = month_of(b + 8);
        tm.tm_year = digits(b + 12, 4) - 1900;
        if (tm.tm_year < -1900 || clock_of(b + 17, &tm) != 0) return -1;
    } else if (comma != NULL && comma >= b + 6 && b + s.n - comma == 24) { /* RFC 850 */
        const char *d = comma + 1;
        if (!is_day(b, (size_t)(comma - b), 1) || d[0] != ' ' || d[3] != '-' || d[7] != '-' || d[10] != ' ' ||
            strcmp(d + 19, " GMT") != 0)
            return -1;
        tm.tm_mday = digits(d + 1, 2);
        tm.tm_mon = month_of(d + 4);
        int yy = digits(d + 8, 2);
        if (yy < 0 || clock_of(d + 11, &tm) != 0) return -1;
        /* Two digits: the year within 50 years from now with those digits;
         * one more than 50 years ahead is the one a century before. */
        struct tm now;
        time_t t = time(NULL);
        gmtime_r(&t, &now);
        int year = (now.tm_year + 1900) / 100 * 100 + yy;
        if (year > now.tm_year + 1900 + 50) year -= 100;
        else if (year <= now.tm_year + 1900 - 50) year += 100;
        tm.tm_year = year - 1900;
    } else if (s.n == 24 && comma == NULL) { /* asctime */
        if (!is_day(b, 3, 0) || b[3] != ' ' || b[7] != ' ' || b[10] != ' ' || b[19] != ' ') return -1;
        tm.tm_mon = month_of(b + 4);
        tm.tm_mday = b[8] == ' ' ? digits(b + 9, 1) : digits(b + 8, 2);
        tm.tm_year = digits(b + 20, 4) - 1900;
        if (tm.tm_year < -1900 || clock_of(b + 11, &tm) != 0) return -1;
    } else {
        return -1;
    }
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = tm.tm_year + 1900;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (tm.tm_mon < 0 || tm.tm_mday < 1 || tm.tm_mday > mdays[tm.tm_mon] ||
        (tm.tm_mon == 1 && tm.tm_mday == 29 && !leap))
        return -1;
    return timegm(&tm);
}

/* The status line, Server, Date and Connection. */
static void start_head(struct head *h, struct conn *c, int status, int minor) {
    h->n = 0;
    h->overflow = 0;
    put_s(h, "HTTP/1.1 ");
    put_u64(h, (uint64_t)status);
    put_s(h, " ");
    put_s(h, reason(status));
    put_s(h, "\r\nServer: evsendfile-httpd\r\nDate: ");
    put_s(h, worker_date(conn_worker(c)));
    put_s(h, "\r\n");
    if (!conn_keep_alive(c)) put_s(h, "Connection: close\r\n");
    else if (minor == 0) put_s(h, "Connection: keep-alive\r\n");
    conn_response(c)->status = status;
}

/* A short text/plain response (no body for HEAD, 304). */
static int send_simple(struct conn *c, int status, int minor, const char *extra) {
    struct response *rs = conn_response(c);
    struct head h;
    char body[80];
    int bl = snprintf(body, sizeof body, "%d %s\n", status, reason(status));
    response_release(rs); /* the file, if any, is not needed for this answer */
    start_head(&h, c, status, minor);
    if (extra) add(&h, "%s", extra);
    if (status != 304) add(&h, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n", bl);
    add(&h, "\r\n");
    if (status != 304 && !rs->head_only) add(&h, "%s", body);
    if (h.overflow) return -1; /* a cut head would desynchronise the stream: close instead */
    return conn_send(c, h.b, h.n, g_cfg.empty_fd, 0, 0, 0, NULL, 0);
}

int respond_error(struct conn *c, int status) {
    struct response *rs = conn_response(c);
    response_release(rs);
    rs->head_only = 0;
    snprintf(rs->log, sizeof rs->log, "-");
    conn_set_keep_alive(c, 0);
    return send_simple(c, status, 1, NULL);
}

static int status_for_errno(int err) {
    switch (err) {
    case ENOENT: case ENOTDIR: case ENAMETOOLONG: return 404;
    case EACCES: case EPERM: case EXDEV: case ELOOP: return 403;
    case EMFILE: case ENFILE: return 503;
    default: return 500;
    }
}

/* ---------------------------------------------------- validators */

/* One If-None-Match line: a list of entity tags or "*"; weak comparison. */
static int etag_listed(struct slice v, const char *etag) {
    const char *p = v.p, *end = v.p + v.n;
    size_t el = strlen(etag);
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) p++;
        if (p < end && *p == '*') return 1;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/') p += 2;
        const char *s = p;
        if (p < end && *p == '"') {
            p++;
            while (p < end && *p != '"') p++;
            if (p < end) p++;
        }
        if ((size_t)(p - s) == el && memcmp(s, etag, el) == 0) return 1;
        while (p < end && *p != ',') p++;
    }
    return 0;
}

/* If-Range: the Range applies only while the validator still matches
 * (strong comparison for an entity tag, exact time for a date). */
static int if_range_holds(struct slice v, const char *etag, time_t mtime) {
    if (v.p == NULL) return 1;
    if (v.n > 0 && (v.p[0] == '"' || (v.n > 1 && v.p[0] == 'W' && v.p[1] == '/')))  /* not "Wed, ..." */
        return v.n == strlen(etag) && memcmp(v.p, etag, v.n) == 0;
    return parse_http_date(v) == mtime;
}

/* ---------------------------------------------------- the file */

static int is_method(struct slice m, const char *name) {
    return m.n == strlen(name) && memcmp(m.p, name, m.n) == 0; /* methods are case-sensitive */
}

/* A directory without its trailing slash: redirect, so relative links work.
 * The Location is built from the normalised path `rel`, %-encoding every byte
 * outside RFC 3986's pchar: it starts with exactly one '/' and has no '\\'
 * (which browsers read as '/'), so it can never name another host, whatever
 * "//host", "/%2F/host" or "/\\host" the request said.  The query is kept. */
static int redirect_to_dir(struct conn *c, const struct request *req, const char *rel) {
    static const char hex[] = "0123456789ABCDEF";
    char loc[sizeof "Location: /" + 3 * PATH_MAX + REQUEST_LINE_MAX + 8];
    size_t n = (size_t)snprintf(loc, sizeof loc, "Location: /");
    for (const char *p = strcmp(rel, ".") == 0 ? "" : rel; *p != '\0'; p++) {
        unsigned char b = (unsigned char)*p;
        if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') ||
            strchr("-._~!$&'()*+,;=:@/", b) != NULL) {
            loc[n++] = (char)b;
        } else {
            loc[n++] = '%';
            loc[n++] = hex[b >> 4];
            loc[n++] = hex[b & 15];
        }
    }
    if (n > sizeof "Location: /" - 1) loc[n++] = '/';
    size_t pl = 0; /* the query (and a fragment) follow as they came */
    while (pl < req->target.n && req->target.p[pl] != '?' && req->target.p[pl] != '#') pl++;
    snprintf(loc + n, sizeof loc - n, "%.*s\r\n", (int)(req->target.n - pl), req->target.p + pl);
    return send_simple(c, 301, req->minor, loc);
}

#define OPEN_REDIRECTED (-1) /* a 301 is on its way */
#define OPEN_FAILED (-2)     /* sending the 301 failed: close */

/* Opens the file for rel (index.html for a directory).  fd, OPEN_*, or -status. */
static int open_file(struct conn *c, const struct request *req, char *rel, size_t cap, int slash,
                     struct stat *st) {
    int fd = path_open(rel);
    if (fd < 0) return -status_for_errno(-fd);
    if (fstat(fd, st) != 0) {
        close(fd);
        return -500;
    }
    if (S_ISDIR(st->st_mode)) {
        close(fd);
        if (!slash) return redirect_to_dir(c, req, rel) < 0 ? OPEN_FAILED : OPEN_REDIRECTED;
        size_t n = strlen(rel);
        if (strcmp(rel, ".") == 0) n = 0;
        if (n + sizeof "/index.html" > cap) return -414;
        memcpy(rel + n, n ? "/index.html" : "index.html", n ? sizeof "/index.html" : sizeof "index.html");
        fd = path_open(rel);
        if (fd < 0) return -status_for_errno(-fd); /* no directory listings */
        if (fstat(fd, st) != 0) {
            close(fd);
            return -500;
        }
    }
    if (!S_ISREG(st->st_mode)) { /* FIFOs, devices, sockets, a directory named index.html */
        close(fd);
        return -403;
    }
    return fd;
}

static void new_boundary(char *out, size_t cap) {
    static _Thread_local uint64_t x;
    if (x == 0) x = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&x ^ 0x9e3779b97f4a7c15ull;
    x ^= x << 13; /* xorshift64: unpredictable enough not to appear in a file by chance */
    x ^= x >> 7;
    x ^= x << 17;
    snprintf(out, cap, "evsf%016llx", (unsigned long long)x);
}

int respond(struct conn *c, const struct request *req) {
    struct response *rs = conn_response(c);
    int get = is_method(req->method, "GET"), head = is_method(req->method, "HEAD");
    response_release(rs);
    rs->head_only = head;
    if (g_cfg.access_log)
        snprintf(rs->log, sizeof rs->log, "%.*s %.*s HTTP/1.%d", (int)req->method.n, req->method.p,
                 (int)(req->target.n > 120 ? 120 : req->target.n), req->target.p, req->minor);
    conn_set_keep_alive(c, req->keep_alive);

    /* We read no bodies: after one, the rest of the stream is not a request. */
    if (req->has_body) conn_set_keep_alive(c, 0);
    if (!get && !head) return send_simple(c, 405, req->minor, "Allow: GET, HEAD\r\n");
    if (req->has_body) return send_simple(c, 413, req->minor, NULL);

    char rel[PATH_MAX];
    int slash;
    int st = path_from_target(req->target.p, req->target.n, g_cfg.dotfiles, rel, sizeof rel, &slash);
    if (st != 0) return send_simple(c, st, req->minor, NULL);
    struct stat sb;
    int fd = open_file(c, req, rel, sizeof rel, slash, &sb);
    if (fd == OPEN_REDIRECTED) return 0;
    if (fd == OPEN_FAILED) return -1;
    if (fd < 0) return send_simple(c, -fd, req->minor, NULL);
    rs->fd = fd;
    rs->size = (uint64_t)sb.st_size;
    rs->ctype = mime_type(rel);

    /* "size-mtime", both in hex: "%llx-%llx" in quotes. */
    char etag[48], *e = etag;
    *e++ = '"';
    e = hex_to(e, rs->size);
    *e++ = '-';
    e = hex_to(e, (uint64_t)sb.st_mtim.tv_sec * 1000000000ull + (uint64_t)sb.st_mtim.tv_nsec);
    *e++ = '"';
    *e = '\0';
    size_t en = (size_t)(e - etag);
    const char *lastmod = worker_http_date(conn_worker(c), sb.st_mtime);

    /* If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2). */
    int not_modified = 0;
    if (req->if_none_match_lines > 0) {
        for (int i = 0; i < req->if_none_match_lines && !not_modified; i++)
            not_modified = etag_listed(req->if_none_match[i], etag);
    } else if (req->if_modified_since.p != NULL) {
        time_t ims = parse_http_date(req->if_modified_since);
        not_modified = ims != -1 && sb.st_mtime <= ims;
    }
    if (not_modified) {
        char validators[160];
        snprintf(validators, sizeof validators, "Last-Modified: %s\r\nETag: %s\r\n", lastmod, etag);
        return send_simple(c, 304, req->minor, validators);
    }

    int n = 0;
    if (req->range.p != NULL && if_range_holds(req->if_range, etag, sb.st_mtime))
        n = range_parse(req->range.p, req->range.n, rs->size, rs->parts);
    if (n == RANGE_UNSATISFIABLE) {
        char cr[64];
        snprintf(cr, sizeof cr, "Content-Range: bytes */%llu\r\n", (unsigned long long)rs->size);
        return send_simple(c, 416, req->minor, cr);
    }

    struct head h;
    uint64_t off = 0, count = rs->size;
    start_head(&h, c, n > 0 ? 206 : 200, req->minor);
    put_s(&h, "Last-Modified: ");
    put_s(&h, lastmod);
    put_s(&h, "\r\nETag: ");
    put(&h, etag, en);
    put_s(&h, "\r\nAccept-Ranges: bytes\r\n");
    if (n == 1) {
        off = rs->parts[0].first;
        count = rs->parts[0].last - off + 1;
        add(&h, "Content-Type: %s\r\nContent-Length: %llu\r\nContent-Range: bytes %llu-%llu/%llu\r\n\r\n",
            rs->ctype, (unsigned long long)count, (unsigned long long)off,
            (unsigned long long)rs->parts[0].last, (unsigned long long)rs->size);
    } else if (n > 1) {
        rs->nparts = n;
        new_boundary(rs->boundary, sizeof rs->boundary);
        add(&h, "Content-Type: multipart/byteranges; boundary=%s\r\nContent-Length: %llu\r\n\r\n",
            rs->boundary,
            (unsigned long long)range_multipart_length(rs->parts, n, rs->boundary, rs->ctype, rs->size));
        if (!head) { /* part 0's header rides in the same head; respond_next_part does the rest */
            size_t k = range_part_header(h.b + h.n, sizeof h.b - h.n, rs->boundary, rs->ctype, &rs->parts[0],
                                     rs->size, 0);
            if (k >= sizeof h.b - h.n) h.overflow = 1;
            else h.n += k;
            off = rs->parts[0].first;
            count = rs->parts[0].last - off + 1;
            rs->next_part = 1;
        }
    } else {
        put_s(&h, "Content-Type: ");
        put_s(&h, rs->ctype);
        put_s(&h, "\r\nContent-Length: ");
        put_u64(&h, count);
        put_s(&h, "\r\n\r\n");
    }
    if (head) off = count = 0;
    if (h.overflow) return -1;
    return conn_send(c, h.b, h.n, rs->fd, rs->size, off, count, NULL, 0);
}

int respond_has_next_part(const struct response *rs) {
    return !rs->head_only && rs->nparts >= 2 && rs->next_part < rs->nparts;
}

int respond_next_part(struct conn *c) {
    struct response *rs = conn_response(c);
    if (!respond_has_next_part(rs)) return 0;
    int i = rs->next_part++;
    char head[512], tail[64];
    size_t hn = range_part_header(head, sizeof head, rs->boundary, rs->ctype, &rs->parts[i], rs->size, i);
    size_t tn = i == rs->nparts - 1 ? range_closing(tail, sizeof tail, rs->boundary) : 0;
    if (hn >= sizeof head || tn >= sizeof tail) return -1; /* cut framing: close, never send it */
    uint64_t count = rs->parts[i].last - rs->parts[i].first + 1;
    int r = conn_send(c, head, hn, rs->fd, rs->size, rs->parts[i].first, count, tail, tn);
    return r < 0 ? r : 1;
}

void response_release(struct response *rs) {
    if (rs->fd >= 0) close(rs->fd);
    rs->fd = -1;
    rs->nparts = rs->next_part = 0;
    rs->body_sent = 0;
    rs->status = 0;
}
