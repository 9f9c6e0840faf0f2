/* mime.c -- a small built-in extension table (no /etc/mime.types lookup). */
#include "mime.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TYPE "application/octet-stream"

struct mime {
    const char *ext, *type;
};

/* Sorted by extension (strcmp order), for bsearch: a linear scan with
 * strcasecmp cost 1,500 instructions per response for an unknown extension,
 * an eighth of the server's user-space work at 1 KiB (bench/RESULTS.md). */
static const struct mime k_types[] = {
    {"avif", "image/avif"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/x-icon"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"md", "text/markdown; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"ogg", "audio/ogg"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"webm", "video/webm"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xml", "application/xml"},
    {"zip", "application/zip"},
};

static int by_ext(const void *key, const void *elem) {
    return strcmp((const char *)key, ((const struct mime *)elem)->ext);
}

const char *mime_type(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    char ext[8]; /* longer than any in the table: unknown */
    size_t n = dot ? strlen(dot + 1) : 0;
    if (n == 0 || n >= sizeof ext) return DEFAULT_TYPE;
    for (size_t i = 0; i < n; i++) ext[i] = (char)tolower((unsigned char)dot[1 + i]);
    ext[n] = '\0';
    const struct mime *m = bsearch(ext, k_types, sizeof k_types / sizeof k_types[0], sizeof k_types[0], by_ext);
    return m ? m->type : DEFAULT_TYPE;
}
