/* syscalls.h -- the fault-injection seam.
 *
 * Every system call the engine makes on the socket or the source goes through
 * this table: the transfer calls (sendfile, pread, read, sendmsg -- sendmsg is
 * the engine's only write/writev) and the set-up and clean-up calls (open,
 * close, fstat, fstatfs, fcntl, getsockopt, setsockopt, getsockname,
 * shutdown), and
 * the library's heap allocations (alloc).  It
 * points at the real calls; the test build of the engine (EVSF_FAULT_SEAM,
 * the evsendfile_testing library, never installed) lets tests swap entries
 * to make sendfile fail with EINVAL, return short, hit EINTR, make open fail
 * with EMFILE, an allocation fail, and so on.  Not exported from the shared
 * library, and read-only there.
 *
 * Fields are only ever appended, so code built against an older table keeps
 * compiling. */
#ifndef EVSENDFILE_SYSCALLS_H
#define EVSENDFILE_SYSCALLS_H

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct statfs; /* <sys/vfs.h>, Linux */

typedef struct evsf_syscalls {
    /* Linux shape: returns bytes sent and advances *offset, or -1 and errno. */
    ssize_t (*sendfile)(int out_fd, int in_fd, off_t *offset, size_t count);
    /* nowait != 0 (the copy path's first read of bytes that may be cold,
     * job.cpp): only bytes already in the page cache, never waiting for the
     * disk -- a short count stops before the first page that is not there,
     * -1/EAGAIN when that is the first one; -1/EOPNOTSUPP where the file
     * system cannot tell (tmpfs), -1/EINVAL on kernels before 4.14
     * (preadv2 RWF_NOWAIT on Linux). */
    ssize_t (*pread)(int fd, void *buf, size_t count, off_t offset, int nowait);
    ssize_t (*read)(int fd, void *buf, size_t count);
    ssize_t (*sendmsg)(int fd, const struct msghdr *msg, int flags);
    /* Opening and checking the source (source.cpp). */
    int (*open)(const char *path, int flags, mode_t mode);
    int (*close)(int fd);
    int (*fstat)(int fd, struct stat *st);
    int (*fstatfs)(int fd, struct statfs *st); /* -1/ENOSYS where there is none */
    /* Only the int-argument commands the engine uses: F_GETFL, F_SETFL. */
    int (*fcntl)(int fd, int cmd, int arg);
    /* The socket: SO_PROTOCOL, SO_TYPE, TCP_CORK, TCP_ULP, TLS_TX (job.cpp, platform_linux.cpp). */
    int (*getsockopt)(int fd, int level, int name, void *value, socklen_t *len);
    int (*setsockopt)(int fd, int level, int name, const void *value, socklen_t len);
    int (*getsockname)(int fd, struct sockaddr *addr, socklen_t *len);
    /* Every heap allocation of the engine, the drivers and the worker
     * (malloc's contract; freed with free()).  Tests make it return NULL. */
    void *(*alloc)(size_t size);
    /* sf_can_use: is the socket connected?  peer.cpp: is the peer on this host? */
    int (*getpeername)(int fd, struct sockaddr *addr, socklen_t *len);
    /* Bytes in the socket's send queue (SIOCOUTQ on Linux): the idle
     * timeout's measure of progress.  -1/ENOTTY where there is none. */
    int (*outq)(int fd, int *bytes);
    /* Are the pages of [off, off + len) of the file in the page cache?
     * 1 all of them, 0 not all, -1 with errno (ENOSYS: the kernel cannot
     * tell; cachestat(2), Linux >= 6.5, else mincore on a mapping).  Asked
     * on the loop thread before each sendfile of a regular file, and before
     * a copy read where pread's nowait cannot tell (disk.hpp); must never
     * block on the disk. */
    int (*resident)(int fd, uint64_t off, uint64_t len);
    /* Brings [off, off + len) into the page cache, blocking until it is
     * there, and starts reading the `ahead` bytes after it without waiting
     * for them.  Runs on the library's disk threads only, never on a loop
     * thread (tests' wrappers must be thread-safe).  0, or -1 with errno. */
    int (*fetch)(int fd, uint64_t off, uint64_t len, uint64_t ahead);
    /* Has the socket room for more bytes now (poll POLLOUT, no wait)?  1 yes,
     * 0 no, -1 with errno.  Asked before a cold transfer whose disk thread
     * found the socket full is handed over again (job.cpp). */
    int (*writable)(int sock);
    /* SF_SHUT_WR: the write side, after a transfer's last byte (job.cpp). */
    int (*shutdown)(int sock, int how);
} evsf_syscalls_t;

#ifdef EVSF_FAULT_SEAM
/* The test build of the engine (the evsendfile_testing library that tests/
 * link): a writable table.  Tests assign entries and restore them with
 * evsf_syscalls_reset(). */
extern evsf_syscalls_t evsf_sys;
void evsf_syscalls_reset(void);
/* The disk threads' limits (disk.hpp), for tests of a full pool: at most
 * `threads` threads (1..4) and `queue` waiting reads (>= 0); -1 keeps a
 * value.  Counts what is running: evsf_disk_threads() threads started. */
void evsf_disk_limits(int threads, int queue);
int evsf_disk_threads(void);
/* Chunks the disk threads hold, queued or being read (also a cancelled
 * transfer's: it ends on its own).  A test waits for 0 before it swaps table
 * entries, which those threads read. */
int evsf_disk_pending(void);
#else
/* The shipped libraries: the same table, const, so it lives in read-only
 * memory after relocation (no writable function pointers to overwrite).
 * What it costs is one indirect call per syscall (bench/RESULTS.md). */
extern const evsf_syscalls_t evsf_sys;
#endif

#ifdef __cplusplus
}
#endif

#endif
