/* fuzz_range.c -- range_parse and the multipart framing (examples/httpd/range.c).
 *
 * Input: a byte choosing the file size (a small one, or any 64-bit size),
 * then the Range header value.  Checked besides memory safety:
 *  - the result is RANGE_UNSATISFIABLE, RANGE_IGNORE or 1..MAX_RANGES ranges,
 *    each first <= last < size, sorted, neither overlapping nor touching;
 *  - for small files, an independent model (split on commas, trim, check
 *    each spec, mark the bytes in a bitmap) agrees on ignore / 416 / which
 *    bytes are covered;
 *  - range_multipart_length equals the length of the framing the server
 *    actually writes (part headers + closing + the bytes), and every part
 *    header names its range. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "input.h"
#include "range.h"

#define MODEL_MAX_SIZE 2048

/* ---- the model: RFC 9110 14.1.1 read literally, on a bitmap */

static int trim(const char **s, const char **e) {
    while (*s < *e && (**s == ' ' || **s == '\t')) (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t')) (*e)--;
    return *e > *s;
}

/* -1 when not all digits; saturates like any sane parser must. */
static int digits(const char *s, const char *e, uint64_t *v) {
    *v = 0;
    if (s == e) return 0;
    for (; s < e; s++) {
        if (*s < '0' || *s > '9') return -1;
        uint64_t d = (uint64_t)(*s - '0');
        *v = *v > (UINT64_MAX - d) / 10 ? UINT64_MAX : *v * 10 + d;
    }
    return 1;
}

/* Returns RANGE_IGNORE, RANGE_UNSATISFIABLE or 1 (bytes marked in map);
 * *nspec counts the satisfiable specs. */
static int model(const char *v, size_t len, uint64_t size, uint8_t *map, int *nspec) {
    const char *s = v, *end = v + len;
    *nspec = 0;
    memset(map, 0, (size_t)size);
    while (s < end && (*s == ' ' || *s == '\t')) s++;
    if (end - s < 6 || strncasecmp(s, "bytes", 5) != 0 || s[5] != '=') return RANGE_IGNORE;
    s += 6;
    int any = 0, seen = 0;
    while (s <= end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        const char *e = comma ? comma : end;
        const char *a = s, *b = e;
        s = e + 1;
        if (!trim(&a, &b)) {
            if (!comma) break;
            continue; /* empty list element */
        }
        const char *dash = memchr(a, '-', (size_t)(b - a));
        if (dash == NULL) return RANGE_IGNORE;
        uint64_t first, last;
        int hf = digits(a, dash, &first), hl = digits(dash + 1, b, &last);
        if (hf < 0 || hl < 0 || (!hf && !hl)) return RANGE_IGNORE;
        if (hf && hl && last < first) return RANGE_IGNORE;
        if (*nspec == MAX_RANGE_SPECS) return RANGE_IGNORE; /* the DoS guard counts before skipping */
        seen = 1;
        if (!hf) {
            if (last == 0) goto next;
            first = last >= size ? 0 : size - last;
            last = size - 1;
        } else {
            if (first >= size) goto next;
            if (!hl || last >= size) last = size - 1;
        }
        ++*nspec;
        for (uint64_t i = first; i <= last; i++) map[i] = 1;
        any = 1;
    next:
        if (!comma) break;
    }
    return any ? 1 : seen ? RANGE_UNSATISFIABLE : RANGE_IGNORE; /* 1#range-spec: no spec, no header */
}

/* ---- the checks */

static void check_framing(const struct byte_range *r, int n, uint64_t size, const char *boundary,
                          const char *ctype) {
    static char buf[4096];
    uint64_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t hn = range_part_header(buf, sizeof buf, boundary, ctype, &r[i], size, i);
        FUZZ_CHECK(hn < sizeof buf && strlen(buf) == hn, "part header %d: length %zu", i, hn);
        char want[128];
        snprintf(want, sizeof want, "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n\r\n",
                 r[i].first, r[i].last, size);
        FUZZ_CHECK(hn >= strlen(want) && strcmp(buf + hn - strlen(want), want) == 0,
                   "part header %d does not end with %s", i, want);
        FUZZ_CHECK((i == 0) == (strncmp(buf, "\r\n", 2) != 0), "part %d: CRLF before it is wrong", i);
        total += hn + (r[i].last - r[i].first + 1);
    }
    size_t cn = range_closing(buf, sizeof buf, boundary);
    FUZZ_CHECK(cn < sizeof buf && strlen(buf) == cn, "closing length %zu", cn);
    total += cn;
    uint64_t said = range_multipart_length(r, n, boundary, ctype, size);
    FUZZ_CHECK(said == total, "Content-Length %" PRIu64 " but the body is %" PRIu64, said, total);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size_in) {
    input_t in = {data, size_in};
    uint8_t how = take_u8(&in);
    uint64_t size;
    switch (how & 3) {
    case 0: size = take_u8(&in); break;
    case 1: size = take_u16(&in) % MODEL_MAX_SIZE; break;
    case 2: size = UINT64_MAX - take_u8(&in); break;
    default: size = take_u64(&in); break;
    }
    /* The rest is the header value; an exact-size copy so overreads show. */
    size_t len = in.left;
    char *value = malloc(len ? len : 1);
    if (value == NULL) return 0;
    memcpy(value, in.p, len);

    struct byte_range out[MAX_RANGES + 1];
    memset(out, 0xa5, sizeof out);
    int n = range_parse(value, len, size, out);
    FUZZ_CHECK(n >= RANGE_UNSATISFIABLE && n <= MAX_RANGES, "returned %d", n);
    if (size == 0) FUZZ_CHECK(n == RANGE_IGNORE, "a 0-byte file ignores Range, got %d", n);
    for (int i = 0; i < n; i++) {
        FUZZ_CHECK(out[i].first <= out[i].last && out[i].last < size,
                   "range %d: %" PRIu64 "-%" PRIu64 " of %" PRIu64, i, out[i].first, out[i].last, size);
        if (i > 0)
            FUZZ_CHECK(out[i].first > out[i - 1].last + 1, "ranges %d and %d overlap or touch", i - 1, i);
    }

    if (size > 0 && size <= MODEL_MAX_SIZE) {
        static uint8_t want[MODEL_MAX_SIZE], got[MODEL_MAX_SIZE];
        int nspec;
        int m = model(value, len, size, want, &nspec);
        if (m == 1) {
            memset(got, 0, (size_t)size);
            for (int i = 0; i < n; i++)
                for (uint64_t b = out[i].first; b <= out[i].last; b++) got[b] = 1;
            /* More than MAX_RANGES after merging: ignored, the whole file goes. */
            FUZZ_CHECK(n > 0 ? memcmp(want, got, (size_t)size) == 0 : n == RANGE_IGNORE,
                       "bytes covered differ from the model (n=%d)", n);
        } else {
            FUZZ_CHECK(n == m, "model says %d, range_parse %d", m, n);
        }
    }

    if (n > 0) {
        /* The server's boundary is 32 hex digits and ctype comes from mime.c;
         * take both from the input too, bounded like the server's. */
        char boundary[41], ctype[64];
        snprintf(boundary, sizeof boundary, "%016" PRIx64 "%016" PRIx64, (uint64_t)how * 0x9e3779b97f4a7c15u,
                 size);
        size_t cl = len < sizeof ctype - 1 ? len : sizeof ctype - 1;
        for (size_t i = 0; i < cl; i++) ctype[i] = (char)(value[i] < 0x21 || value[i] > 0x7e ? 'x' : value[i]);
        ctype[cl] = '\0';
        check_framing(out, n, size, boundary, ctype);
    }
    free(value);
    return 0;
}
