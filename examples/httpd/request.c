/* request.c -- a strict HTTP/1.x request-head parser (RFC 9112).
 * Stateless: called again from the start whenever more bytes arrive. */
#include "request.h"

#include <string.h>
#include <strings.h>

int slice_is(struct slice s, const char *lit) {
    return s.p != NULL && strlen(lit) == s.n && strncasecmp(s.p, lit, s.n) == 0;
}

static int is_tchar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Next line [*p, eol) without its CRLF (or bare LF); NULL if none complete. */
static const char *next_line(const char *p, const char *end, const char **next) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL) return NULL;
    *next = nl + 1;
    return (nl > p && nl[-1] == '\r') ? nl - 1 : nl;
}

/* Does a comma-separated token list contain `token`? */
static int list_has(struct slice v, const char *token) {
    size_t tl = strlen(token);
    const char *p = v.p, *end = v.p + v.n;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) p++;
        const char *s = p;
        while (p < end && *p != ',') p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0) return 1;
    }
    return 0;
}

/* absolute-form (RFC 9112 3.2.2): "http://authority/path?query" is served as
 * its origin-form "/path?query"; the authority takes the place of Host. */
static int absolute_form(struct slice *target, struct slice *authority) {
    const char *p = target->p, *end = p + target->n;
    size_t skip = 0;
    if (target->n > 7 && strncasecmp(p, "http://", 7) == 0) skip = 7;
    else if (target->n > 8 && strncasecmp(p, "https://", 8) == 0) skip = 8;
    if (skip == 0) return 400; /* no other form is for an origin server */
    const char *a = p + skip, *q = a;
    while (q < end && *q != '/' && *q != '?' && *q != '#') q++;
    if (q == a || memchr(a, '@', (size_t)(q - a)) != NULL) return 400; /* no host; userinfo (RFC 9110 4.2.4) */
    *authority = (struct slice){a, (size_t)(q - a)};
    if (q < end && *q == '/') *target = (struct slice){q, (size_t)(end - q)};
    else *target = (struct slice){"/", 1}; /* an empty path is "/" */
    return 0;
}

static int parse_request_line(const char *p, const char *eol, struct request *req, struct slice *authority) {
    const char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    if (sp1 == NULL || sp1 == p) return 400;
    const char *t = sp1 + 1;
    const char *sp2 = memchr(t, ' ', (size_t)(eol - t));
    if (sp2 == NULL || sp2 == t) return 400;
    for (const char *q = p; q < sp1; q++)
        if (!is_tchar((unsigned char)*q)) return 400;
    for (const char *q = t; q < sp2; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f) return 400;
    req->method = (struct slice){p, (size_t)(sp1 - p)};
    req->target = (struct slice){t, (size_t)(sp2 - t)};
    if (*t != '/' && absolute_form(&req->target, authority) != 0) return 400;
    const char *v = sp2 + 1;
    size_t vl = (size_t)(eol - v);
    if (vl != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
        v[7] < '0' || v[7] > '9')
        return 400;
    if (v[5] != '1') return 505;
    req->minor = v[7] - '0';
    return 0;
}

/* Stores a header we care about; a repeated singleton is an error. */
static int keep(struct slice *dst, struct slice val) {
    if (dst->p != NULL) return 400;
    *dst = val;
    return 0;
}

int request_parse(const char *buf, size_t len, int full, struct request *req) {
    const char *p = buf, *end = buf + len, *next;
    struct slice authority = {NULL, 0}, content_length = {NULL, 0};
    int conn_close = 0, conn_keep_alive = 0; /* some Connection line lists the option */
    memset(req, 0, sizeof *req);

    while (p < end && (*p == '\r' || *p == '\n')) p++; /* stray CRLFs between requests */
    const char *eol = next_line(p, end, &next);
    if (eol == NULL) {
        /* A CR at the end may be the start of the CRLF: it does not count
         * against the limit, or the verdict would depend on where the
         * client's bytes were split. */
        size_t have = (size_t)(end - p);
        if (have > 0 && end[-1] == '\r') have--;
        if (have > REQUEST_LINE_MAX || full) return 414;
        return PARSE_AGAIN;
    }
    if ((size_t)(eol - p) > REQUEST_LINE_MAX) return 414;
    int st = parse_request_line(p, eol, req, &authority);
    if (st != 0) return st;

    int nheaders = 0;
    for (p = next;; p = next) {
        eol = next_line(p, end, &next);
        if (eol == NULL) return full ? 431 : PARSE_AGAIN;
        if (eol == p) break; /* the blank line */
        if (++nheaders > REQUEST_HEADERS_MAX) return 431;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL || colon == p) return 400; /* also catches obs-fold lines */
        for (const char *q = p; q < colon; q++)
            if (!is_tchar((unsigned char)*q)) return 400;
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t')) v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        for (const char *q = v; q < ve; q++)
            if ((unsigned char)*q < 0x20 && *q != '\t') return 400; /* CR, NUL, ... */
        struct slice name = {p, (size_t)(colon - p)}, val = {v, (size_t)(ve - v)};
        if (slice_is(name, "host")) st = keep(&req->host, val);
        else if (slice_is(name, "range")) st = keep(&req->range, val);
        else if (slice_is(name, "if-modified-since")) st = keep(&req->if_modified_since, val);
        else if (slice_is(name, "if-none-match")) {
            if (req->if_none_match_lines == REQUEST_LIST_LINES) return 400;
            req->if_none_match[req->if_none_match_lines++] = val; /* lines of one list */
        }
        else if (slice_is(name, "if-range")) st = keep(&req->if_range, val);
        else if (slice_is(name, "content-length")) st = keep(&content_length, val);
        else if (slice_is(name, "transfer-encoding")) req->has_body = 1;
        else if (slice_is(name, "connection")) { /* lines of one list: a close anywhere wins */
            conn_close |= list_has(val, "close");
            conn_keep_alive |= list_has(val, "keep-alive");
        }
        if (st != 0) return st;
    }
    req->head_len = (size_t)(next - buf);

    if (req->minor >= 1 && req->host.p == NULL) return 400; /* required even beside an authority */
    if (authority.p != NULL) req->host = authority;
    if (content_length.p != NULL) {
        if (content_length.n == 0 || content_length.n > 18) return 400;
        for (size_t i = 0; i < content_length.n; i++)
            if (content_length.p[i] < '0' || content_length.p[i] > '9') return 400;
        for (size_t i = 0; i < content_length.n; i++)
            if (content_length.p[i] != '0') req->has_body = 1;
    }
    req->keep_alive = conn_close ? 0 : conn_keep_alive ? 1 : req->minor >= 1;
    return PARSE_OK;
}
