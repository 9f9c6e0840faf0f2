/* range.h -- "Range: bytes=..." parsing and multipart/byteranges framing. */
#ifndef RANGE_H
#define RANGE_H

#include <stddef.h>
#include <stdint.h>

#define MAX_RANGES 16     /* after merging; more and the header is ignored (200) */
#define MAX_RANGE_SPECS 64 /* specs read before merging; more and the header is ignored */

struct byte_range {
    uint64_t first, last; /* inclusive, last < size */
};

#define RANGE_IGNORE 0          /* absent, malformed or too many: send the whole file */
#define RANGE_UNSATISFIABLE (-1) /* 416 */

/* Parses the value of a Range header for a representation of `size` bytes.
 * Returns the number of ranges written to out (sorted, overlapping and
 * adjacent ones merged, each clamped to the file), RANGE_IGNORE or
 * RANGE_UNSATISFIABLE.  A 0-byte file ignores Range. */
int range_parse(const char *value, size_t len, uint64_t size, struct byte_range *out);

/* The header in front of part i of a multipart/byteranges body
 * (a CRLF before every part but the first).  Returns its length. */
size_t range_part_header(char *buf, size_t cap, const char *boundary, const char *ctype,
                         const struct byte_range *r, uint64_t size, int i);
/* The closing delimiter after the last part. */
size_t range_closing(char *buf, size_t cap, const char *boundary);
/* The Content-Length of the whole multipart body. */
uint64_t range_multipart_length(const struct byte_range *r, int n, const char *boundary,
                                const char *ctype, uint64_t size);

#endif
