// errors.cpp -- names and descriptions of every status the library returns.
#include "errors.hpp"

#include <cerrno>
#include <cstring>

#include "evsendfile.h"

namespace evsf {

namespace {

struct Entry {
    int code;
    const char *name;
    const char *text;
};

// Library codes first, then the errno values the library is documented to
// return; other errno values still get strerror's text.
constexpr Entry kTable[] = {
    {0, "OK", "success"},
    {SF_ETRUNCATED, "SF_ETRUNCATED", "file ended before the region did (truncated while sending)"},
    {SF_ETIMEDOUT, "SF_ETIMEDOUT", "no progress within the idle timeout"},
    {SF_EBLOCKING, "SF_EBLOCKING", "socket is in blocking mode (set O_NONBLOCK)"},
    {SF_ENOKTLS, "SF_ENOKTLS", "TLS socket without kernel TLS transmit: sendfile cannot be used"},
    {-EPIPE, "EPIPE", "broken pipe (peer closed the connection)"},
    {-ECONNRESET, "ECONNRESET", "connection reset by peer"},
    {-EINVAL, "EINVAL", "invalid argument"},
    {-EBADF, "EBADF", "bad file descriptor (closed, or not open for reading)"},
    {-ENOTSOCK, "ENOTSOCK", "not a socket"},
    {-EPROTOTYPE, "EPROTOTYPE", "not a stream socket"},
    {-EISDIR, "EISDIR", "is a directory"},
    {-ERANGE, "ERANGE", "region lies beyond the end of the file"},
    {-ESPIPE, "ESPIPE", "offset given for a pipe"},
    {-ENOENT, "ENOENT", "no such file or directory"},
    {-EACCES, "EACCES", "permission denied"},
    {-ENOMEM, "ENOMEM", "out of memory"},
    {-EALREADY, "EALREADY", "the transfer has already completed"},
    {-EAGAIN, "EAGAIN", "resource temporarily unavailable"},
    {-EIO, "EIO", "input/output error"},
    {-ENOSYS, "ENOSYS", "function not implemented"},
};

const Entry *find(int err) {
    for (const Entry &e : kTable)
        if (e.code == err) return &e;
    return nullptr;
}

}  // namespace

// glibc names and describes every errno it knows with static strings, and
// NULL otherwise (strerror would format "Unknown error N" into a per-thread
// buffer: not static, and allocated).
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
#define EVSF_HAVE_ERRNO_NP 1
#endif

const char *error_text(int err) {
    if (const Entry *e = find(err)) return e->text;
    const char *text = nullptr;
    if (err < 0 && err > -4096) {
#ifdef EVSF_HAVE_ERRNO_NP
        text = strerrordesc_np(-err);
#else
        text = std::strerror(-err);
#endif
    }
    return text ? text : "unknown error";
}

const char *error_name(int err) {
    if (const Entry *e = find(err)) return e->name;
    // Any other errno a syscall hands back (ENOBUFS, ENOTCONN, ...) by its
    // own name; glibc returns NULL for values it does not know.
    const char *name = nullptr;
#ifdef EVSF_HAVE_ERRNO_NP
    if (err < 0 && err > -4096) name = strerrorname_np(-err);
#endif
    return name ? name : "UNKNOWN";
}

}  // namespace evsf
