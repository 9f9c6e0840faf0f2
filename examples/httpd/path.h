/* path.h -- from a request target to an open file, never leaving the root. */
#ifndef PATH_H
#define PATH_H

#include <stddef.h>

/* Decodes the path of `target` (up to '?' or '#') into `out` as a relative
 * path ("." for the root), without "." segments or repeated slashes.
 * Returns 0, or an HTTP status: 400 (bad %-escape, NUL, a ".." segment),
 * 404 (a dotfile while they are not served), 414 (too long for out). */
int path_from_target(const char *target, size_t len, int allow_dotfiles, char *out, size_t cap,
                     int *trailing_slash);

/* Opens `rel` beneath the root (O_RDONLY | O_NONBLOCK, so a FIFO cannot
 * block the loop).  openat2(RESOLVE_BENEATH) when the kernel has it; else
 * openat + a check of the opened fd's real path against the root.
 * Returns the fd or -errno (-EXDEV: it resolved outside the root). */
int path_open(const char *rel);

/* Probes openat2 once (env EVSENDFILE_HTTPD_NO_OPENAT2=1 forces the
 * fallback).  Call after g_cfg.root_fd is set.  Returns 1 if openat2 is used. */
int path_init(void);

#endif
