// platform.cpp -- the only file that knows which kernel it runs on.
#include "platform.hpp"

#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "syscalls.h"

#if defined(__linux__)
#include <linux/sockios.h>
#include <linux/tls.h>
#include <sys/ioctl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#elif defined(__FreeBSD__) || defined(__APPLE__)
#include <sys/uio.h>
#endif

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace evsf {

ssize_t platform_sendfile(int out_fd, int in_fd, off_t *offset, size_t count) {
#if defined(__linux__)
    return ::sendfile(out_fd, in_fd, offset, count);
#elif defined(__FreeBSD__)
    // FreeBSD: sbytes is valid even on EAGAIN/EBUSY/EINTR; nbytes == 0 means
    // "to EOF", so never pass 0.
    if (count == 0) return 0;
    off_t sbytes = 0;
    int rc = ::sendfile(in_fd, out_fd, *offset, count, nullptr, &sbytes, 0);
    if (rc == 0 || sbytes > 0) {
        *offset += sbytes;
        return static_cast<ssize_t>(sbytes);
    }
    return -1;
#elif defined(__APPLE__)
    // macOS: len is in/out; no headers/trailers passed here (the engine
    // writes head and tail itself), so len is file bytes only.
    off_t len = static_cast<off_t>(count);
    int rc = ::sendfile(in_fd, out_fd, *offset, &len, nullptr, 0);
    if (rc == 0 || len > 0) {
        *offset += len;
        return static_cast<ssize_t>(len);
    }
    return -1;
#else
    (void)out_fd; (void)in_fd; (void)offset; (void)count;
    errno = ENOSYS;
    return -1;
#endif
}

int platform_outq(int sock, int *bytes) {
#if defined(__linux__)
    return ::ioctl(sock, SIOCOUTQ, bytes);
#else
    (void)sock;
    (void)bytes;
    errno = ENOTTY;
    return -1;
#endif
}

bool platform_has_sendfile() {
#if defined(__linux__) || defined(__FreeBSD__) || defined(__APPLE__)
    return true;
#else
    return false;
#endif
}

bool platform_ktls_tx_active(int sock) {
#if defined(__linux__)
    char ulp[16] = {0};
    socklen_t len = sizeof ulp - 1;
    if (evsf_sys.getsockopt(sock, IPPROTO_TCP, TCP_ULP, ulp, &len) != 0 || std::strcmp(ulp, "tls") != 0)
        return false;
    // The ULP is attached; TX is active only once TLS_TX crypto info is set.
    unsigned char info[64];
    len = sizeof info;
    return evsf_sys.getsockopt(sock, SOL_TLS, TLS_TX, info, &len) == 0;
#else
    (void)sock;
    return false;
#endif
}

#if defined(__linux__)
// Linux sendfile has no MSG_NOSIGNAL: block SIGPIPE in this thread, and if
// our call produced one (EPIPE) that was not pending before, consume it.
SigpipeGuard::SigpipeGuard() {
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    if (pthread_sigmask(SIG_BLOCK, &pipe_set, &old_) != 0) return;
    restore_mask_ = !sigismember(&old_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    pending_before_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
}

SigpipeGuard::~SigpipeGuard() {
    if (raised_ && !pending_before_) {  // consumes nothing if none is pending
        sigset_t pipe_set;
        sigemptyset(&pipe_set);
        sigaddset(&pipe_set, SIGPIPE);
        const struct timespec zero = {0, 0};
        int saved = errno;
        while (sigtimedwait(&pipe_set, nullptr, &zero) == -1 && errno == EINTR) {
        }
        errno = saved;
    }
    if (restore_mask_) pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}
#else
// The BSDs and macOS: SO_NOSIGPIPE is set on the socket by the engine.
SigpipeGuard::SigpipeGuard() {}
SigpipeGuard::~SigpipeGuard() {}
#endif

}  // namespace evsf
