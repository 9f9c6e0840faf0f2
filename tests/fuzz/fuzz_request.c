/* fuzz_request.c -- request_parse (examples/httpd/request.c) on arbitrary bytes.
 *
 * Input: one byte of options (bit 0: the buffer is full), then the bytes the
 * client sent.  Checked besides memory safety:
 *  - the result is PARSE_OK, PARSE_AGAIN or one of the statuses 400/414/431/505;
 *  - on PARSE_OK every slice lies inside the head, the head ends with LF, the
 *    method is a token, the target starts with '/' and has no space or
 *    control byte, header values carry no control byte and no outer blanks;
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
    check_value(r->if_none_match, buf, r->head_len, "if-none-match");
    check_value(r->if_range, buf, r->head_len, "if-range");
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
