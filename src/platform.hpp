// platform.hpp -- what differs between kernels: the sendfile call, keeping
// SIGPIPE away, the send queue's level, kernel TLS, filesystems whose sizes
// lie.  One implementation file per kernel, chosen by CMakeLists.txt:
// platform_linux.cpp is the only one (Linux is the one platform built and
// tested); nothing else in src/ asks which kernel it runs on.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <csignal>
#include <cstddef>
#include <cstdint>

namespace evsf {

// Largest count one sendfile call may ask for (Linux moves at most this).
constexpr size_t kMaxPerSyscall = 0x7ffff000;

// The native sendfile in Linux's shape: returns bytes sent (and advances
// *offset by them) or -1 with errno.  A port whose sendfile reports bytes
// sent together with EAGAIN/EINTR (the BSDs, macOS) must return them as a
// short success here, never lose them.
ssize_t platform_sendfile(int out_fd, int in_fd, off_t *offset, size_t count);

// False where platform_sendfile always fails with ENOSYS.
bool platform_has_sendfile();

// Bytes still in the socket's send queue (not yet acknowledged by a TCP
// peer, not yet read by a Unix-socket peer): 0 and *bytes, or -1 with errno.
int platform_outq(int sock, int *bytes);
// poll(POLLOUT) without waiting: 1 writable, 0 not, -1 and errno.
int platform_writable(int sock);

// Page-cache residency of [off, off + len): 1 all pages, 0 not all, -1 and
// errno.  cachestat(2) (Linux >= 6.5, one syscall; its cost grows with the
// range: ~1.2 us for 64 KiB, ~20 us for 1 MiB here); where the kernel lacks
// it (ENOSYS, remembered) mmap + mincore + munmap (~7 us for 64 KiB, ~27 us
// for 1 MiB).  bench/RESULTS.md, "The residency probe".
int platform_resident(int fd, uint64_t off, uint64_t len);
// pread; with nowait, preadv2(RWF_NOWAIT): see the seam's pread (syscalls.h).
ssize_t platform_pread(int fd, void *buf, size_t count, off_t offset, int nowait);
// Blocks until [off, off + len) is in the page cache: WILLNEED for it (and
// for `ahead` bytes after it, not waited for), then a populated read-only
// mapping, never touched (a file truncated meanwhile cannot raise SIGBUS);
// pread into a scratch buffer where the file cannot be mapped.
int platform_fetch(int fd, uint64_t off, uint64_t len, uint64_t ahead);
// A non-blocking, close-on-exec wake-up fd (an eventfd): -1 and errno on
// failure.  notify makes it readable; drain makes it unreadable again.
int platform_notifier_new();
void platform_notify(int fd);
void platform_drain(int fd);

// True for files on pseudo filesystems (/proc, sysfs, ...) whose st_size is
// not their length: they are streamed to EOF.
bool platform_size_is_unreliable(int fd, const struct stat &st);

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
