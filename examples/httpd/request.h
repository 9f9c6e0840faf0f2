/* request.h -- parsing an HTTP/1.x request head (no body support: a static
 * file server refuses request bodies with 413). */
#ifndef REQUEST_H
#define REQUEST_H

#include <stddef.h>
#include <stdint.h>

#define REQUEST_LINE_MAX 4096 /* 414 beyond it */
#define REQUEST_HEADERS_MAX 100
#define REQUEST_LIST_LINES 8 /* field lines kept of one list header (400 beyond) */

struct slice {
    const char *p; /* NULL when absent */
    size_t      n;
};

struct request {
    struct slice method;
    struct slice target;     /* origin-form: an absolute-form target's path and query,
                              * or "/" (static) when its path is empty */
    int          minor;      /* HTTP/1.<minor> */
    int          keep_alive; /* from version + every Connection line */
    int          has_body;   /* Content-Length > 0 or Transfer-Encoding */
    struct slice host;       /* an absolute-form target's authority, else the Host header */
    struct slice range, if_modified_since, if_range;
    struct slice if_none_match[REQUEST_LIST_LINES]; /* its field lines, in order: one list */
    int          if_none_match_lines;
    size_t       head_len;   /* bytes of the head, including the blank line */
};

#define PARSE_OK 0
#define PARSE_AGAIN 1 /* need more bytes */
/* Otherwise the HTTP status to answer (400, 414, 431, 505) before closing. */

/* Parses the head at the start of buf[0..len); `full` says the buffer can
 * grow no more (then an incomplete head is 414 or 431). */
int request_parse(const char *buf, size_t len, int full, struct request *req);

/* Case-insensitive comparison of a slice with a NUL-terminated string. */
int slice_is(struct slice s, const char *lit);

#endif
