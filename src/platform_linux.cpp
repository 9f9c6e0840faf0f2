// platform_linux.cpp -- platform.hpp for Linux, the one kernel this library
// is built and tested on (CMakeLists.txt picks this file; another kernel
// needs a platform_<name>.cpp of its own).
#include "platform.hpp"

#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "syscalls.h"

#include <linux/magic.h>
#include <linux/sockios.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace evsf {

ssize_t platform_sendfile(int out_fd, int in_fd, off_t *offset, size_t count) {
    return ::sendfile(out_fd, in_fd, offset, count);
}

int platform_outq(int sock, int *bytes) { return ::ioctl(sock, SIOCOUTQ, bytes); }

bool platform_has_sendfile() { return true; }

// /proc, /sys and the pseudo filesystems mounted under /sys (cgroup,
// debugfs, tracefs, ...) report sizes of 0 or 4096 whatever the content.
// They all sit on anonymous devices (major 0): a file on a block device
// needs no fstatfs, which saves a syscall per response for most servers.
bool platform_size_is_unreliable(int fd, const struct stat &st) {
    if (major(st.st_dev) != 0) return false;
    struct statfs fs;
    if (evsf_sys.fstatfs(fd, &fs) != 0) return false;  // unknown: trust the size
    switch (static_cast<unsigned long>(fs.f_type)) {
    case PROC_SUPER_MAGIC: case SYSFS_MAGIC: case CGROUP_SUPER_MAGIC: case CGROUP2_SUPER_MAGIC:
    case DEBUGFS_MAGIC: case TRACEFS_MAGIC: case SECURITYFS_MAGIC: case PSTOREFS_MAGIC:
    case EFIVARFS_MAGIC: case BPF_FS_MAGIC:
        return true;
    default:
        return false;
    }
}

bool platform_ktls_tx_active(int sock) {
    char ulp[16] = {0};
    socklen_t len = sizeof ulp - 1;
    if (evsf_sys.getsockopt(sock, IPPROTO_TCP, TCP_ULP, ulp, &len) != 0 || std::strcmp(ulp, "tls") != 0)
        return false;
    // The ULP is attached; TX is active only once TLS_TX crypto info is set.
    unsigned char info[64];
    len = sizeof info;
    return evsf_sys.getsockopt(sock, SOL_TLS, TLS_TX, info, &len) == 0;
}

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

}  // namespace evsf
