/* fuzz_request.c -- request_parse (examples/httpd/request.c) on arbitrary bytes.
 *
 * Input: one byte of options (bit 0: the buffer is full), then the bytes the
 * client sent.  Checked besides memory safety:
 *  - the result is PARSE_OK, PARSE_AGAIN or one of the statuses 400/414/431/505;
 *  - on PARSE_OK every slice lies inside the head, the head ends with LF, the
 *    method is a token, the target starts with '/' and has no space or
 *    control byte, header values carry no control byte and no outer blanks;
 *  - an independent reading of the head agrees: a target not starting with
 *    '/' was "http(s)://authority..." and Host is that authority, the target
 *    its path (or "/"); a "close" token on any Connection line, however
 *    many there are, means no keep-alive; every If-None-Match line is kept;
 *  - the parser is a function of the bytes seen: parsing only the head gives
 *    the same request, and every shorter prefix says PARSE_AGAIN or the very
 *    verdict the whole buffer got (more bytes never change a verdict);
 *  - a full buffer never answers PARSE_AGAIN. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "input.h"
#include "request.h"

static int known_status(int st) {
    return st == PARSE_OK || st == PARSE_AGAIN || st == 400 || st == 414 || st == 431 || st == 505;
}

static void check_slice(struct slice s, const char *buf, size_t head_len, const char *what) {
    if (s.p == NULL) {
        FUZZ_CHECK(s.n == 0, "%s: absent but n=%zu", what, s.n);
        return;
    }
    FUZZ_CHECK(s.p >= buf && s.p + s.n <= buf + head_len, "%s outside the head", what);
}

static void check_value(struct slice s, const char *buf, size_t head_len, const char *what) {
    check_slice(s, buf, head_len, what);
    for (size_t i = 0; i < s.n; i++)
        FUZZ_CHECK((unsigned char)s.p[i] >= 0x20 || s.p[i] == '\t', "%s has byte 0x%02x", what,
                   (unsigned char)s.p[i]);
    if (s.n > 0) {
        FUZZ_CHECK(s.p[0] != ' ' && s.p[0] != '\t', "%s starts with a blank", what);
        FUZZ_CHECK(s.p[s.n - 1] != ' ' && s.p[s.n - 1] != '\t', "%s ends with a blank", what);
    }
}

static void check_ok(const struct request *r, const char *buf, size_t len) {
    FUZZ_CHECK(r->head_len > 0 && r->head_len <= len, "head_len %zu of %zu", r->head_len, len);
    FUZZ_CHECK(buf[r->head_len - 1] == '\n', "head does not end with LF");
    check_slice(r->method, buf, r->head_len, "method");
    if (!(r->target.n == 1 && r->target.p[0] == '/')) /* else maybe the static "/" */
        check_slice(r->target, buf, r->head_len, "target");
    FUZZ_CHECK(r->method.n > 0 && r->target.n > 0, "empty method or target");
    for (size_t i = 0; i < r->method.n; i++)
        FUZZ_CHECK(r->method.p[i] > 0x20 && r->method.p[i] < 0x7f && r->method.p[i] != ':',
                   "method byte 0x%02x", (unsigned char)r->method.p[i]);
    FUZZ_CHECK(r->target.p[0] == '/', "target not origin-form");
    for (size_t i = 0; i < r->target.n; i++)
        FUZZ_CHECK((unsigned char)r->target.p[i] > 0x20 && (unsigned char)r->target.p[i] < 0x7f,
                   "target byte 0x%02x", (unsigned char)r->target.p[i]);
    FUZZ_CHECK(r->minor >= 0 && r->minor <= 9, "minor %d", r->minor);
    FUZZ_CHECK(r->keep_alive == 0 || r->keep_alive == 1, "keep_alive %d", r->keep_alive);
    FUZZ_CHECK(r->has_body == 0 || r->has_body == 1, "has_body %d", r->has_body);
    FUZZ_CHECK(r->minor == 0 || r->host.p != NULL, "HTTP/1.%d without Host", r->minor);
    check_value(r->host, buf, r->head_len, "host");
    check_value(r->range, buf, r->head_len, "range");
    check_value(r->if_modified_since, buf, r->head_len, "if-modified-since");
    FUZZ_CHECK(r->if_none_match_lines >= 0 && r->if_none_match_lines <= REQUEST_LIST_LINES, "%d lines",
               r->if_none_match_lines);
    for (int i = 0; i < r->if_none_match_lines; i++)
        check_value(r->if_none_match[i], buf, r->head_len, "if-none-match");
    for (int i = r->if_none_match_lines; i < REQUEST_LIST_LINES; i++)
        FUZZ_CHECK(r->if_none_match[i].p == NULL, "if-none-match slot %d set", i);
    check_value(r->if_range, buf, r->head_len, "if-range");
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int prefix_ci(const char *p, size_t n, const char *lit) {
    size_t l = strlen(lit);
    if (n < l) return 0;
    for (size_t i = 0; i < l; i++)
        if (lower((unsigned char)p[i]) != lit[i]) return 0;
    return 1;
}

/* The model: reads the head afresh, line by line, with none of request.c's code. */
static void check_model(const struct request *r, const char *buf) {
    const char *end = buf + r->head_len, *line = buf;
    while (*line == '\r' || *line == '\n') line++;
    const char *t = (const char *)memchr(line, ' ', (size_t)(end - line)) + 1;
    const char *te = memchr(t, ' ', (size_t)(end - t));
    if (*t != '/') {
        size_t tl = (size_t)(te - t);
        size_t skip = prefix_ci(t, tl, "http://") ? 7 : prefix_ci(t, tl, "https://") ? 8 : 0;
        FUZZ_CHECK(skip > 0, "a target that is neither origin-form nor http(s)");
        const char *a = t + skip, *ae = a;
        while (ae < te && *ae != '/' && *ae != '?' && *ae != '#') ae++;
        FUZZ_CHECK(ae > a && memchr(a, '@', (size_t)(ae - a)) == NULL, "empty authority or userinfo accepted");
        FUZZ_CHECK(r->host.p == a && r->host.n == (size_t)(ae - a), "Host is not the target's authority");
        if (ae < te && *ae == '/')
            FUZZ_CHECK(r->target.p == ae && r->target.p + r->target.n == te, "target is not the URI's path");
        else
            FUZZ_CHECK(r->target.n == 1 && r->target.p[0] == '/', "an empty path is not \"/\"");
    } else {
        FUZZ_CHECK(r->target.p == t && r->target.p + r->target.n == te, "origin-form target changed");
    }
    int closing = 0, inm = 0;
    for (line = (const char *)memchr(te, '\n', (size_t)(end - te)) + 1; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (prefix_ci(line, (size_t)(nl - line), "if-none-match:")) inm++;
        if (prefix_ci(line, (size_t)(nl - line), "connection:")) {
            /* elements between commas, without blanks around them */
            const char *ve = nl > line && nl[-1] == '\r' ? nl - 1 : nl;
            for (const char *p = line + 11; p < ve; p++) {
                const char *s = p;
                while (p < ve && *p != ',') p++;
                const char *e = p;
                while (s < e && (*s == ' ' || *s == '\t')) s++;
                while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
                if (e - s == 5 && prefix_ci(s, 5, "close")) closing = 1;
            }
        }
        line = nl + 1;
    }
    if (closing) FUZZ_CHECK(r->keep_alive == 0, "keep-alive despite a Connection: close line");
    FUZZ_CHECK(r->if_none_match_lines == inm, "%d If-None-Match lines kept of %d", r->if_none_match_lines, inm);
}

static int same_request(const struct request *a, const struct request *b) {
    return memcmp(a, b, sizeof *a) == 0; /* slices point into the same buffer */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    input_t in = {data, size};
    int full = take_u8(&in) & 1;
    /* An exact-size copy, so reading one byte too far is an ASan report. */
    size_t len = in.left;
    char *buf = malloc(len ? len : 1);
    if (buf == NULL) return 0;
    memcpy(buf, in.p, len);

    struct request req, again;
    int st = request_parse(buf, len, full, &req);
    FUZZ_CHECK(known_status(st), "status %d", st);
    if (full) FUZZ_CHECK(st != PARSE_AGAIN, "a full buffer cannot wait for more");
    if (st == PARSE_OK) {
        check_ok(&req, buf, len);
        check_model(&req, buf);
        int st2 = request_parse(buf, req.head_len, full, &again);
        FUZZ_CHECK(st2 == PARSE_OK && same_request(&req, &again), "the head alone parses differently (%d)", st2);
    }

    /* Prefixes: all of them for short inputs, a spread of them otherwise. */
    size_t step = len <= 512 ? 1 : len / 256;
    for (size_t k = 0; k < len; k += step) {
        int sk = request_parse(buf, k, 0, &again);
        FUZZ_CHECK(known_status(sk), "prefix %zu: status %d", k, sk);
        if (sk == PARSE_AGAIN) continue;
        FUZZ_CHECK(sk == st, "prefix %zu says %d, the whole buffer %d", k, sk, st);
        if (sk == PARSE_OK) FUZZ_CHECK(same_request(&req, &again), "prefix %zu parses differently", k);
    }
    free(buf);
    return 0;
}
