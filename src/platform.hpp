// platform.hpp -- what differs between kernels: the sendfile call shape,
// keeping SIGPIPE away, and asking whether kernel TLS transmit is active.
// Linux is built and tested; the BSD/macOS shapes live in platform.cpp only.
#pragma once

#include <sys/types.h>

#include <csignal>
#include <cstddef>

namespace evsf {

// Largest count one sendfile call may ask for (Linux moves at most this).
constexpr size_t kMaxPerSyscall = 0x7ffff000;

// The native sendfile, adapted to Linux's shape: returns bytes sent (and
// advances *offset by them) or -1 with errno.  On the BSDs bytes sent before
// EAGAIN/EINTR are reported as a short success, never lost.
ssize_t platform_sendfile(int out_fd, int in_fd, off_t *offset, size_t count);

// False where platform_sendfile always fails with ENOSYS.
bool platform_has_sendfile();

// Bytes still in the socket's send queue (not yet acknowledged by a TCP
// peer, not yet read by a Unix-socket peer): 0 and *bytes, or -1 with errno.
int platform_outq(int sock, int *bytes);

// True when kernel TLS transmit offload is active on the socket.
bool platform_ktls_tx_active(int sock);

// While alive, a SIGPIPE raised by this thread's sendfile calls is neither
// delivered nor left pending.  The thread's mask and the process's
// disposition are restored/untouched.  Held around the sendfile calls of
// one step (three syscalls per step, not per call):
// everything else the engine writes uses MSG_NOSIGNAL.
class SigpipeGuard {
public:
    SigpipeGuard();
    ~SigpipeGuard();
    SigpipeGuard(const SigpipeGuard &) = delete;
    SigpipeGuard &operator=(const SigpipeGuard &) = delete;
    // Tell the guard that the call may have raised SIGPIPE: it failed with
    // EPIPE, or it returned short -- Linux sendfile that moved some bytes
    // before the peer vanished returns that count, yet raised SIGPIPE.
    void may_have_raised() { raised_ = true; }

private:
    sigset_t old_{};
    bool restore_mask_ = false;
    bool pending_before_ = false;
    bool raised_ = false;
};

}  // namespace evsf
