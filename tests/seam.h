/* seam.h -- recording and fault-injecting wrappers around the library's
 * syscall table (evsf_sys, src/syscalls.h).
 *
 * seam_install() zeroes the record and routes every engine syscall through
 * the wrappers below, which call the real functions unless a fault says
 * otherwise.  Counters tell a test that its fault really fired.
 *
 * Channels: sendfile, pread, read, sendmsg (the engine's only write/writev:
 * head, small bodies, copy buffers, tail), and the set-up / clean-up calls
 * open, close, fstat, fstatfs, fcntl (F_GETFL/F_SETFL), getsockopt,
 * setsockopt (TCP_CORK), getsockname, getpeername, outq, writable, shutdown, and alloc (the library's heap).  An injected error on close still
 * closes the fd (Linux frees it whatever close returns).  `cap` only means
 * something for sendfile, pread, read and sendmsg.
 * Counters and logs are kept under a lock: a cold transfer's body is sent by
 * a library disk thread (while the loop thread may run other transfers).
 * Read them once the transfers are done (or through seam_bytes_moved());
 * install, uninstall and set faults or hooks while no transfer runs. */
#ifndef EVSF_TEST_SEAM_H
#define EVSF_TEST_SEAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "syscalls.h"

/* Injects `err` on call numbers first, first+every, ... (1-based), at most
 * `times` times (0 = no limit).  `cap` > 0 passes at most cap bytes to the
 * real call, so it returns short.  err == 0 and cap == 0: no fault. */
typedef struct seam_fault {
    int err;
    int first;
    int every; /* 0 = only `first` (and following calls while times allows) */
    int times;
    size_t cap;
} seam_fault_t;

#define SEAM_LOG_MAX 8192

typedef struct seam_call {
    int fd;        /* out fd (sendfile, sendmsg) or source fd (pread, read) */
    uint64_t off;  /* file offset (sendfile, pread) */
    size_t count;  /* bytes asked */
    ssize_t ret;   /* what the wrapper returned */
    int err;       /* errno when ret < 0 */
    int corked;    /* sendfile / sendmsg: TCP_CORK on out fd at call time (-1 = not TCP) */
    int level;     /* getsockopt / setsockopt: level */
    int op;        /* fcntl: cmd; getsockopt / setsockopt: option name; open, sendmsg: flags;
                    * pread: 1 for a nowait read (the copy path's probe), else 0 */
} seam_call_t;

typedef struct seam_channel {
    seam_fault_t fault;
    int calls;     /* all calls */
    int injected;  /* calls that got fault.err */
    int capped;    /* calls whose count was cut by fault.cap */
    int eagain;    /* real calls that returned EAGAIN */
    uint64_t bytes;  /* bytes the wrapper reported moved */
    seam_call_t log[SEAM_LOG_MAX];
    int logged;
} seam_channel_t;

typedef struct seam {
    seam_channel_t sendfile, pread, read, sendmsg;
    seam_channel_t open, close, fstat, fstatfs, fcntl, getsockopt, setsockopt, getsockname;
    seam_channel_t alloc; /* every library heap allocation: a fault makes it return NULL */
    seam_channel_t getpeername, outq;
    seam_channel_t writable; /* poll(POLLOUT) before a cold transfer is handed over again */
    seam_channel_t shutdown; /* SF_SHUT_WR, after the last byte (how in the log's `level`) */
    /* resident: the loop thread's page-cache probe, logged (fd, off, count).
     * fetch: runs on the library's disk threads -- only its counters
     * `calls`, `injected` and `bytes` are kept (atomically; read them with
     * seam_fetch_calls()), nothing is logged, `cap` means nothing. */
    seam_channel_t resident, fetch;
    /* Optional: runs before the real sendfile / pread; returning 1 means
     * "handled": the wrapper returns *ret (errno already set). */
    int (*sendfile_hook)(int out_fd, int in_fd, off_t *off, size_t count, ssize_t *ret);
    int (*pread_hook)(int fd, void *buf, size_t count, off_t off, ssize_t *ret);
    /* Optional: runs instead of the real getpeername when set (a test makes
     * the peer look remote); returns what getpeername would, errno set. */
    int (*getpeername_hook)(int fd, struct sockaddr *addr, socklen_t *len);
    /* Optional, before the real probe: returning 1 means "handled", the
     * wrapper returns *ret (1 resident, 0 cold; errno set if -1).  The copy
     * path's nowait preads ask it too: "cold" makes them fail with EAGAIN
     * (they are logged on the pread channel), so one hook makes a file cold
     * for both paths. */
    int (*resident_hook)(int fd, uint64_t off, uint64_t len, int *ret);
    /* 0 (the default): the copy path's nowait preads of files resident_hook
     * does not call cold read as plain preads, on any file system; 1: they
     * reach the kernel as preadv2(RWF_NOWAIT) (a test of real eviction). */
    int real_nowait;
    /* Optional, on a disk thread, before the real fetch (which still runs
     * unless it returns 1): block, sleep, truncate the file... */
    int (*fetch_hook)(int fd, uint64_t off, uint64_t len, uint64_t ahead);
} seam_t;

extern seam_t seam;

void seam_install(void);
/* Fetches started / finished so far (safe from any thread). */
int seam_fetch_calls(void);
int seam_fetch_returned(void);
/* Bytes sendfile, sendmsg and pread reported moved so far (any thread). */
uint64_t seam_bytes_moved(void);
/* The real probe (after seam_install). */
int seam_real_resident(int fd, uint64_t off, uint64_t len);
void seam_uninstall(void);

#endif
