/* syscalls.h -- the fault-injection seam.
 *
 * Every system call the engine makes on the socket or the source goes through
 * this table.  It points at the real calls; tests (which link the static
 * library) swap entries to make sendfile fail with EINVAL, return short, hit
 * EINTR, and so on.  Not exported from the shared library. */
#ifndef EVSENDFILE_SYSCALLS_H
#define EVSENDFILE_SYSCALLS_H

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct evsf_syscalls {
    /* Linux shape: returns bytes sent and advances *offset, or -1 and errno. */
    ssize_t (*sendfile)(int out_fd, int in_fd, off_t *offset, size_t count);
    ssize_t (*pread)(int fd, void *buf, size_t count, off_t offset);
    ssize_t (*read)(int fd, void *buf, size_t count);
    ssize_t (*sendmsg)(int fd, const struct msghdr *msg, int flags);
} evsf_syscalls_t;

/* The live table.  Tests assign entries and restore them with
 * evsf_syscalls_reset(). */
extern evsf_syscalls_t evsf_sys;
void evsf_syscalls_reset(void);

#ifdef __cplusplus
}
#endif

#endif
