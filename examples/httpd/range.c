/* range.c -- byte ranges (RFC 9110 section 14) and their multipart framing. */
#include "range.h"

#include <stdio.h>
#include <stdlib.h>

static int is_ows(char c) { return c == ' ' || c == '\t'; }

/* Reads decimal digits at *p; saturates at UINT64_MAX.  0 if none. */
static int read_number(const char **p, const char *end, uint64_t *out) {
    const char *s = *p;
    uint64_t v = 0;
    while (*p < end && **p >= '0' && **p <= '9') {
        unsigned d = (unsigned)(**p - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
        (*p)++;
    }
    *out = v;
    return *p > s;
}

static int by_first(const void *a, const void *b) {
    const struct byte_range *x = a, *y = b;
    return x->first < y->first ? -1 : x->first > y->first;
}

int range_parse(const char *value, size_t len, uint64_t size, struct byte_range *out) {
    const char *p = value, *end = value + len;
    struct byte_range spec[MAX_RANGE_SPECS];
    int nspec = 0, seen = 0; /* seen: well-formed specs, satisfiable or not */

    if (size == 0) return RANGE_IGNORE;
    while (p < end && is_ows(*p)) p++;
    if (end - p < 6 || (p[0] | 0x20) != 'b' || (p[1] | 0x20) != 'y' || (p[2] | 0x20) != 't' ||
        (p[3] | 0x20) != 'e' || (p[4] | 0x20) != 's' || p[5] != '=')
        return RANGE_IGNORE; /* another unit, or garbage */
    p += 6;

    for (;;) {
        while (p < end && (is_ows(*p) || *p == ',')) p++; /* empty list elements are allowed */
        if (p == end) break;
        uint64_t a, b;
        int have_a = read_number(&p, end, &a);
        if (p == end || *p != '-') return RANGE_IGNORE;
        p++;
        int have_b = read_number(&p, end, &b);
        while (p < end && is_ows(*p)) p++;
        if (p < end && *p != ',') return RANGE_IGNORE;
        if (!have_a && !have_b) return RANGE_IGNORE;
        if (have_a && have_b && b < a) return RANGE_IGNORE; /* invalid spec: ignore the header */
        if (nspec == MAX_RANGE_SPECS) return RANGE_IGNORE;    /* range-DoS guard */
        seen = 1;

        struct byte_range r;
        if (!have_a) { /* suffix: the last b bytes */
            if (b == 0) continue;
            r.first = b >= size ? 0 : size - b;
            r.last = size - 1;
        } else {
            if (a >= size) continue; /* unsatisfiable on its own */
            r.first = a;
            r.last = (!have_b || b >= size) ? size - 1 : b;
        }
        spec[nspec++] = r;
    }
    /* RFC 9110 range-set = 1#range-spec: empty list elements alone are no
     * range-set (ignore the header); only real specs that all miss are 416. */
    if (nspec == 0) return seen ? RANGE_UNSATISFIABLE : RANGE_IGNORE;

    qsort(spec, (size_t)nspec, sizeof spec[0], by_first);
    int n = 0;
    for (int i = 0; i < nspec; i++) {
        if (n > 0 && spec[i].first <= out[n - 1].last + 1) { /* overlaps or touches: merge */
            if (spec[i].last > out[n - 1].last) out[n - 1].last = spec[i].last;
            continue;
        }
        if (n == MAX_RANGES) return RANGE_IGNORE;
        out[n++] = spec[i];
    }
    return n;
}

size_t range_part_header(char *buf, size_t cap, const char *boundary, const char *ctype,
                         const struct byte_range *r, uint64_t size, int i) {
    int n = snprintf(buf, cap, "%s--%s\r\nContent-Type: %s\r\nContent-Range: bytes %llu-%llu/%llu\r\n\r\n",
                     i ? "\r\n" : "", boundary, ctype, (unsigned long long)r->first,
                     (unsigned long long)r->last, (unsigned long long)size);
    return n < 0 ? 0 : (size_t)n;
}

size_t range_closing(char *buf, size_t cap, const char *boundary) {
    int n = snprintf(buf, cap, "\r\n--%s--\r\n", boundary);
    return n < 0 ? 0 : (size_t)n;
}

uint64_t range_multipart_length(const struct byte_range *r, int n, const char *boundary,
                                const char *ctype, uint64_t size) {
    char tmp[512];
    uint64_t total = range_closing(tmp, sizeof tmp, boundary);
    for (int i = 0; i < n; i++)
        total += range_part_header(tmp, sizeof tmp, boundary, ctype, &r[i], size, i) +
                 (r[i].last - r[i].first + 1);
    return total;
}
