/* mime.c -- a small built-in extension table (no /etc/mime.types lookup). */
#include "mime.h"

#include <string.h>
#include <strings.h>

static const struct {
    const char *ext, *type;
} k_types[] = {
    {"html", "text/html; charset=utf-8"},  {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"}, {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},  {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},              {"png", "image/png"},
    {"jpg", "image/jpeg"},                 {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},                  {"webp", "image/webp"},
    {"avif", "image/avif"},                {"ico", "image/x-icon"},
    {"pdf", "application/pdf"},            {"wasm", "application/wasm"},
    {"zip", "application/zip"},            {"gz", "application/gzip"},
    {"tar", "application/x-tar"},          {"mp4", "video/mp4"},
    {"webm", "video/webm"},                {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},                  {"woff", "font/woff"},
    {"woff2", "font/woff2"},               {"ttf", "font/ttf"},
};

const char *mime_type(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (dot != NULL && dot[1] != '\0') {
        for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
            if (strcasecmp(dot + 1, k_types[i].ext) == 0) return k_types[i].type;
    }
    return "application/octet-stream";
}
