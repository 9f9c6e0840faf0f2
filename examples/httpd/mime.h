/* mime.h -- Content-Type from a file name's extension. */
#ifndef MIME_H
#define MIME_H
/* A static string; "application/octet-stream" for unknown extensions. */
const char *mime_type(const char *path);
#endif
