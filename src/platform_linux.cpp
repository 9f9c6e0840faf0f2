// platform_linux.cpp -- platform.hpp for Linux, the one kernel this library
// is built and tested on (CMakeLists.txt picks this file; another kernel
// needs a platform_<name>.cpp of its own).
#include "platform.hpp"

#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
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
#include <sys/eventfd.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <fcntl.h>

#include <atomic>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

namespace evsf {

ssize_t platform_sendfile(int out_fd, int in_fd, off_t *offset, size_t count) {
    return ::sendfile(out_fd, in_fd, offset, count);
}

int platform_outq(int sock, int *bytes) { return ::ioctl(sock, SIOCOUTQ, bytes); }

int platform_writable(int sock) {
    struct pollfd p = {sock, POLLOUT, 0};
    int n = ::poll(&p, 1, 0);
    return n < 0 ? -1 : n > 0;  // POLLOUT, or an error / hang-up the next send will report
}

bool platform_has_sendfile() { return true; }

namespace {

// <linux/mman.h> of older kernel headers lacks these (glibc has no wrapper).
#ifndef SYS_cachestat
#define SYS_cachestat 451
#endif
struct CachestatRange {
    uint64_t off, len;
};
struct Cachestat {
    uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};
std::atomic<bool> g_no_cachestat{false};

uint64_t page_size() {
    static const uint64_t size = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
    return size;
}

int resident_by_mincore(int fd, uint64_t first_page, uint64_t pages) {
    uint64_t pg = page_size();
    size_t maplen = static_cast<size_t>(pages * pg);
    void *p = mmap(nullptr, maplen, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(first_page * pg));
    if (p == MAP_FAILED) return -1;
    unsigned char vec[256];
    int result = 1;
    for (uint64_t done = 0; done < pages && result == 1;) {
        uint64_t n = std::min<uint64_t>(pages - done, sizeof vec);
        if (mincore(static_cast<char *>(p) + done * pg, static_cast<size_t>(n * pg), vec) != 0) {
            result = -1;
            break;
        }
        for (uint64_t i = 0; i < n; i++)
            if (!(vec[i] & 1)) result = 0;
        done += n;
    }
    int saved = errno;
    munmap(p, maplen);
    errno = saved;
    return result;
}

}  // namespace

ssize_t platform_pread(int fd, void *buf, size_t count, off_t offset, int nowait) {
    if (!nowait) return ::pread(fd, buf, count, offset);
    struct iovec v = {buf, count};
    return ::preadv2(fd, &v, 1, offset, RWF_NOWAIT);
}

int platform_resident(int fd, uint64_t off, uint64_t len) {
    if (len == 0) return 1;
    uint64_t pg = page_size();
    uint64_t first = off / pg, pages = (off + len + pg - 1) / pg - first;
    if (!g_no_cachestat.load(std::memory_order_relaxed)) {
        CachestatRange range = {first * pg, pages * pg};
        Cachestat cs = {};
        if (syscall(SYS_cachestat, fd, &range, &cs, 0) == 0) return cs.nr_cache >= pages ? 1 : 0;
        if (errno != ENOSYS) return -1;
        g_no_cachestat.store(true, std::memory_order_relaxed);
    }
    return resident_by_mincore(fd, first, pages);
}

int platform_fetch(int fd, uint64_t off, uint64_t len, uint64_t ahead) {
    uint64_t pg = page_size();
    uint64_t start = off / pg * pg;
    size_t maplen = static_cast<size_t>(off + len - start);
    int rc = 0;
    // Ask for the whole range (and what comes after) at once, so the disk
    // sees one large request instead of one readahead window per fault.
    int saved = errno;
    posix_fadvise(fd, static_cast<off_t>(off), static_cast<off_t>(len + ahead), POSIX_FADV_WILLNEED);
    errno = saved;
    void *p = mmap(nullptr, maplen, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, static_cast<off_t>(start));
    if (p != MAP_FAILED) {
        munmap(p, maplen);
    } else {
        char scratch[64 * 1024];
        for (uint64_t at = off, end = off + len; at < end;) {
            ssize_t n = ::pread(fd, scratch, static_cast<size_t>(std::min<uint64_t>(end - at, sizeof scratch)),
                                static_cast<off_t>(at));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                rc = n < 0 ? -1 : 0;
                break;
            }
            at += static_cast<uint64_t>(n);
        }
    }
    return rc;
}

int platform_notifier_new() { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

void platform_notify(int fd) {
    uint64_t one = 1;
    while (write(fd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

void platform_drain(int fd) {
    uint64_t n;
    while (read(fd, &n, sizeof n) < 0 && errno == EINTR) {
    }
}

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
