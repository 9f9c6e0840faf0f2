"""The C declarations this binding uses, and finding libevsendfile.so.2.

cffi in ABI mode: nothing is compiled at install time.  The declarations
below mirror include/evsendfile.h (only the parts the binding calls).
"""

from __future__ import annotations

import ctypes.util
import os
from typing import Any

import cffi

SONAME = "libevsendfile.so.2"
ENV_VAR = "EVSENDFILE_LIBRARY"
ABI_MAJOR = 2

ffi = cffi.FFI()
ffi.cdef(
    """
    struct iovec { void *iov_base; size_t iov_len; };

    unsigned sf_version(void);
    const char *sf_version_text(void);
    const char *sf_err_text(int err);
    const char *sf_err_name(int err);

    typedef struct sf_region {
        int         fd;
        const char *path;
        uint64_t    offset;
        uint64_t    count;
    } sf_region_t;

    typedef struct sf_options {
        size_t              struct_size;
        const struct iovec *head;
        int                 head_count;
        const struct iovec *tail;
        int                 tail_count;
        uint64_t            max_chunk;
        uint32_t            idle_timeout_ms;
        unsigned            flags;
        uint64_t            file_size;
    } sf_options_t;

    void sf_options_init(sf_options_t *opts);
    int sf_can_use(int sock, unsigned flags);
    int sf_peer_flags(int sock, unsigned flags);

    typedef struct sf_transfer sf_transfer_t;
    typedef void (*sf_done_cb)(sf_transfer_t *t, int status, uint64_t body_sent, void *arg);

    typedef struct sf_job sf_job_t;
    int sf_job_new(int sock, const sf_region_t *region, const sf_options_t *opts, sf_job_t **out);
    int sf_job_step(sf_job_t *job);
    uint64_t sf_job_body_sent(const sf_job_t *job);
    int sf_job_source_fd(const sf_job_t *job);
    int sf_job_wait_fd(const sf_job_t *job);
    void sf_job_free(sf_job_t *job);

    struct event_base;  /* sf_job_start: for a caller that runs its own libevent base */
    int sf_job_start(sf_job_t *job, struct event_base *base, sf_done_cb done, void *arg,
                     sf_transfer_t **out);

    typedef struct sf_worker sf_worker_t;
    int sf_worker_new(sf_worker_t **out);
    int sf_worker_submit_job(sf_worker_t *w, sf_job_t *job, sf_done_cb done, void *arg,
                             uint64_t *ticket);
    int sf_worker_cancel(sf_worker_t *w, uint64_t ticket);
    void sf_worker_free(sf_worker_t *w);
    """
)

# Constants of evsendfile.h (cffi ABI mode does not read #defines).
SF_ETRUNCATED = -30001
SF_ETIMEDOUT = -30002
SF_EBLOCKING = -30003
SF_ENOKTLS = -30004
SF_COUNT_TO_EOF = 2**64 - 1
SF_STEP_DONE = 0
SF_STEP_WRITE = 1
SF_STEP_READ = 2
SF_STEP_YIELD = 3
SF_STEP_SOURCE = 4
SF_NO_SENDFILE = 0x1
SF_TLS = 0x2
SF_NO_CORK = 0x4
SF_TRUSTED = 0x8
SF_FORCE_SENDFILE = 0x10
SF_DISK_INLINE = 0x20
SF_KNOWN_SIZE = 0x40
SF_SHUT_WR = 0x80


loaded_from = ""  # which candidate was loaded, for diagnostics


class LibraryNotFoundError(ImportError):
    """libevsendfile.so.2 could not be loaded; the message lists every attempt."""


def _candidates() -> list[tuple[str, str]]:
    """(how it was found, what to pass to dlopen), in search order: the
    environment variable overrides the copy a wheel bundles."""
    here = os.path.dirname(os.path.abspath(__file__))
    found = [(f"${ENV_VAR}", os.environ.get(ENV_VAR, ""))]
    found.append(("next to the package", os.path.join(here, SONAME)))
    found.append(("standard library paths", SONAME))
    by_ldconfig = ctypes.util.find_library("evsendfile")
    if by_ldconfig and by_ldconfig != SONAME:
        found.append(("ldconfig cache", by_ldconfig))
    return found


def load_library() -> Any:
    """dlopen the library; raise LibraryNotFoundError naming every attempt.
    A set $EVSENDFILE_LIBRARY that does not load is an error: nothing else is
    tried then (a typo must not silently select another copy)."""
    global loaded_from
    tried: list[str] = []
    for how, what in _candidates():
        problem = _try(what)
        if not isinstance(problem, str):
            loaded_from = f"{what} ({how})"
            return problem
        tried.append(f"  {how}: {what + ': ' if what else ''}{problem}")
        if how == f"${ENV_VAR}" and what:
            tried.append(f"  (nothing else tried: {ENV_VAR} is set)")
            break
    raise LibraryNotFoundError(
        f"evsendfile: cannot load {SONAME}. Tried, in order:\n"
        + "\n".join(tried)
        + f"\nBuild the C library and set {ENV_VAR}=/path/to/{SONAME}, "
        "install it into a standard library path, or install the wheel that bundles it."
    )


def _try(what: str) -> Any:
    """The loaded library, or why not (a str)."""
    if not what:
        return "not set"
    if os.sep in what and not os.path.exists(what):
        return "no such file"
    try:
        lib = ffi.dlopen(what)
    except OSError as e:
        return str(e)
    major = lib.sf_version() >> 16
    if major != ABI_MAJOR:
        return f"ABI major {major}, need {ABI_MAJOR}"
    return lib


lib = load_library()
