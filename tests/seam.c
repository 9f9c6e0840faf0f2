/* seam.c -- see seam.h. */
#include "seam.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/uio.h>

seam_t seam;
static evsf_syscalls_t g_real;

/* The bookkeeping is under one lock: a cold transfer's body is sent by a
 * disk thread (while its loop thread may run other transfers), and a test
 * may read seam_bytes_moved() meanwhile.  Hooks and real calls run outside it. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

/* Counts the call; 1 when this call number gets the fault (counted too). */
static int enter(seam_channel_t *c) {
    pthread_mutex_lock(&g_mu);
    c->calls++;
    const seam_fault_t *f = &c->fault;
    int inject = f->err != 0 && c->calls >= f->first && !(f->times && c->injected >= f->times) &&
                 !(f->every && (c->calls - f->first) % f->every != 0);
    if (inject) c->injected++;
    pthread_mutex_unlock(&g_mu);
    return inject;
}

static size_t capped(seam_channel_t *c, size_t count) {
    pthread_mutex_lock(&g_mu);
    if (c->fault.cap && count > c->fault.cap) {
        c->capped++;
        count = c->fault.cap;
    }
    pthread_mutex_unlock(&g_mu);
    return count;
}

static int cork_state(int fd) {
    int on = 0;
    socklen_t len = sizeof on;
    if (getsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, &len) != 0) return -1;
    return on != 0;
}

static ssize_t record(seam_channel_t *c, int fd, uint64_t off, size_t count, ssize_t ret, int err,
                      int corked, int level, int op) {
    pthread_mutex_lock(&g_mu);
    if (ret < 0 && (err == EAGAIN || err == EWOULDBLOCK)) c->eagain++;
    if (ret > 0) c->bytes += (uint64_t)ret;
    if (c->logged < SEAM_LOG_MAX) {
        seam_call_t *e = &c->log[c->logged++];
        e->fd = fd;
        e->off = off;
        e->count = count;
        e->ret = ret;
        e->err = ret < 0 ? err : 0;
        e->corked = corked;
        e->level = level;
        e->op = op;
    }
    pthread_mutex_unlock(&g_mu);
    errno = err;
    return ret;
}

static ssize_t finish(seam_channel_t *c, int fd, uint64_t off, size_t count, ssize_t ret, int err,
                      int corked) {
    return record(c, fd, off, count, ret, err, corked, 0, 0);
}

/* The set-up / clean-up calls: an int result, no byte count. */
#define SEAM_INT_CALL(chan, fd, level, op, real_call)                                  \
    do {                                                                             \
        seam_channel_t *c_ = &seam.chan;                                             \
        if (enter(c_)) {                                                             \
            return (int)record(c_, (fd), 0, 0, -1, c_->fault.err, -1, (level), (op)); \
        }                                                                            \
        int r_ = (real_call);                                                        \
        return (int)record(c_, (fd), 0, 0, r_, r_ < 0 ? errno : 0, -1, (level), (op)); \
    } while (0)

static int w_open(const char *path, int flags, mode_t mode) {
    SEAM_INT_CALL(open, -1, 0, flags, g_real.open(path, flags, mode));
}

/* Linux releases the fd whatever close returns: so does an injected error. */
static int w_close(int fd) {
    seam_channel_t *c = &seam.close;
    int inject = enter(c);
    int r = g_real.close(fd);
    int err = r < 0 ? errno : 0;
    if (inject) {
        r = -1;
        err = c->fault.err;
    }
    return (int)record(c, fd, 0, 0, r, err, -1, 0, 0);
}

static int w_fstat(int fd, struct stat *st) { SEAM_INT_CALL(fstat, fd, 0, 0, g_real.fstat(fd, st)); }

static int w_fstatfs(int fd, struct statfs *st) {
    SEAM_INT_CALL(fstatfs, fd, 0, 0, g_real.fstatfs(fd, st));
}

static int w_fcntl(int fd, int cmd, int arg) { SEAM_INT_CALL(fcntl, fd, 0, cmd, g_real.fcntl(fd, cmd, arg)); }

static int w_getsockopt(int fd, int level, int name, void *value, socklen_t *len) {
    SEAM_INT_CALL(getsockopt, fd, level, name, g_real.getsockopt(fd, level, name, value, len));
}

static int w_setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
    SEAM_INT_CALL(setsockopt, fd, level, name, g_real.setsockopt(fd, level, name, value, len));
}

static int w_getsockname(int fd, struct sockaddr *addr, socklen_t *len) {
    SEAM_INT_CALL(getsockname, fd, 0, 0, g_real.getsockname(fd, addr, len));
}

/* An injected fault makes the allocation fail (NULL); `err` is only the
 * switch.  Not logged: there are many, and they carry no fd. */
static void *w_alloc(size_t size) {
    seam_channel_t *c = &seam.alloc;
    if (enter(c)) {
        errno = ENOMEM;
        return NULL;
    }
    return g_real.alloc(size);
}

static int w_getpeername(int fd, struct sockaddr *addr, socklen_t *len) {
    SEAM_INT_CALL(getpeername, fd, 0, 0,
                  seam.getpeername_hook ? seam.getpeername_hook(fd, addr, len) : g_real.getpeername(fd, addr, len));
}

static int w_outq(int fd, int *bytes) { SEAM_INT_CALL(outq, fd, 0, 0, g_real.outq(fd, bytes)); }

static int w_writable(int fd) { SEAM_INT_CALL(writable, fd, 0, 0, g_real.writable(fd)); }

static int w_shutdown(int fd, int how) { SEAM_INT_CALL(shutdown, fd, how, 0, g_real.shutdown(fd, how)); }

static int w_resident(int fd, uint64_t off, uint64_t len) {
    seam_channel_t *c = &seam.resident;
    if (enter(c)) {
        return (int)finish(c, fd, off, (size_t)len, -1, c->fault.err, -1);
    }
    int ret;
    if (seam.resident_hook && seam.resident_hook(fd, off, len, &ret))
        return (int)finish(c, fd, off, (size_t)len, ret, errno, -1);
    ret = g_real.resident(fd, off, len);
    return (int)finish(c, fd, off, (size_t)len, ret, errno, -1);
}

/* On a disk thread: atomics only (the test thread reads these). */
static int g_fetch_returned;

static int w_fetch(int fd, uint64_t off, uint64_t len, uint64_t ahead) {
    seam_channel_t *c = &seam.fetch;
    int call = __atomic_add_fetch(&c->calls, 1, __ATOMIC_SEQ_CST);
    const seam_fault_t *f = &c->fault;
    int inject = f->err != 0 && call >= f->first &&
                 (!f->times || __atomic_load_n(&c->injected, __ATOMIC_SEQ_CST) < f->times) &&
                 (!f->every || (call - f->first) % f->every == 0);
    int ret;
    if (inject) {
        __atomic_add_fetch(&c->injected, 1, __ATOMIC_SEQ_CST);
        errno = f->err;
        ret = -1;
    } else if (seam.fetch_hook && seam.fetch_hook(fd, off, len, ahead)) {
        ret = 0;
    } else {
        ret = g_real.fetch(fd, off, len, ahead);
        if (ret == 0) __atomic_add_fetch(&c->bytes, len, __ATOMIC_SEQ_CST);
    }
    int err = errno;
    __atomic_add_fetch(&g_fetch_returned, 1, __ATOMIC_SEQ_CST);
    errno = err;
    return ret;
}

int seam_real_resident(int fd, uint64_t off, uint64_t len) { return g_real.resident(fd, off, len); }

uint64_t seam_bytes_moved(void) {
    pthread_mutex_lock(&g_mu);
    uint64_t n = seam.sendfile.bytes + seam.sendmsg.bytes + seam.pread.bytes;
    pthread_mutex_unlock(&g_mu);
    return n;
}

int seam_fetch_calls(void) { return __atomic_load_n(&seam.fetch.calls, __ATOMIC_SEQ_CST); }
int seam_fetch_returned(void) { return __atomic_load_n(&g_fetch_returned, __ATOMIC_SEQ_CST); }

static ssize_t w_sendfile(int out_fd, int in_fd, off_t *offset, size_t count) {
    seam_channel_t *c = &seam.sendfile;
    uint64_t off = (uint64_t)*offset;
    int corked = cork_state(out_fd);
    if (enter(c)) {
        return finish(c, out_fd, off, count, -1, c->fault.err, corked);
    }
    ssize_t ret;
    if (seam.sendfile_hook && seam.sendfile_hook(out_fd, in_fd, offset, count, &ret))
        return finish(c, out_fd, off, count, ret, errno, corked);
    ret = g_real.sendfile(out_fd, in_fd, offset, capped(c, count));
    return finish(c, out_fd, off, count, ret, errno, corked);
}

static ssize_t w_pread(int fd, void *buf, size_t count, off_t offset, int nowait) {
    seam_channel_t *c = &seam.pread;
    if (enter(c)) {
        return finish(c, fd, (uint64_t)offset, count, -1, c->fault.err, -1);
    }
    /* A nowait read of a file the test calls cold (resident_hook): refused,
     * as the kernel refuses one whose first page is not in memory -- before
     * any byte is read, so before pread_hook, which stands for the read. */
    int res = 1;
    if (nowait && seam.resident_hook && seam.resident_hook(fd, (uint64_t)offset, count, &res) && res == 0)
        return record(c, fd, (uint64_t)offset, count, -1, EAGAIN, -1, 0, 1);
    ssize_t ret;
    if (seam.pread_hook && seam.pread_hook(fd, buf, count, offset, &ret))
        return finish(c, fd, (uint64_t)offset, count, ret, errno, -1);
    /* Otherwise a nowait read reads like any other, whatever the file
     * system (tmpfs refuses RWF_NOWAIT): a test's outcome must not depend on
     * where its file lives.  seam.real_nowait asks the kernel instead. */
    ret = g_real.pread(fd, buf, capped(c, count), offset, nowait && seam.real_nowait);
    return record(c, fd, (uint64_t)offset, count, ret, errno, -1, 0, nowait != 0);
}

static ssize_t w_read(int fd, void *buf, size_t count) {
    seam_channel_t *c = &seam.read;
    if (enter(c)) {
        return finish(c, fd, 0, count, -1, c->fault.err, -1);
    }
    ssize_t ret = g_real.read(fd, buf, capped(c, count));
    return finish(c, fd, 0, count, ret, errno, -1);
}

static ssize_t w_sendmsg(int fd, const struct msghdr *msg, int flags) {
    seam_channel_t *c = &seam.sendmsg;
    size_t total = 0;
    for (size_t i = 0; i < msg->msg_iovlen; i++) total += msg->msg_iov[i].iov_len;
    int corked = cork_state(fd);
    if (enter(c)) {
        return record(c, fd, 0, total, -1, c->fault.err, corked, 0, flags);
    }
    size_t allow = capped(c, total);
    if (allow == total) {
        ssize_t ret = g_real.sendmsg(fd, msg, flags);
        return record(c, fd, 0, total, ret, errno, corked, 0, flags);
    }
    /* Same message cut to `allow` bytes: a short write the engine must resume. */
    struct iovec iov[16];
    struct msghdr m = *msg;
    size_t n = 0, left = allow;
    for (size_t i = 0; i < msg->msg_iovlen && left > 0 && n < 16; i++, n++) {
        iov[n] = msg->msg_iov[i];
        if (iov[n].iov_len > left) iov[n].iov_len = left;
        left -= iov[n].iov_len;
    }
    m.msg_iov = iov;
    m.msg_iovlen = n;
    ssize_t ret = g_real.sendmsg(fd, &m, flags);
    return record(c, fd, 0, total, ret, errno, corked, 0, flags);
}

static seam_channel_t *const g_channels[] = {
    &seam.sendfile, &seam.pread, &seam.read,    &seam.sendmsg,    &seam.open,       &seam.close,
    &seam.fstat,    &seam.fstatfs, &seam.fcntl, &seam.getsockopt, &seam.setsockopt, &seam.getsockname,
    &seam.alloc,    &seam.getpeername, &seam.outq, &seam.resident, &seam.fetch, &seam.writable,
    &seam.shutdown,
};

/* Zeroes faults, counters and hooks.  Log entries past `logged` are left as
 * they were (never meant to be read): a test that installs the seam
 * hundreds of times does not clear megabytes each time. */
static void seam_clear(void) {
    for (size_t i = 0; i < sizeof g_channels / sizeof g_channels[0]; i++) {
        memset(g_channels[i], 0, offsetof(seam_channel_t, log));
        g_channels[i]->logged = 0;
    }
    seam.sendfile_hook = NULL;
    seam.pread_hook = NULL;
    seam.getpeername_hook = NULL;
    seam.resident_hook = NULL;
    seam.real_nowait = 0;
    seam.fetch_hook = NULL;
    __atomic_store_n(&g_fetch_returned, 0, __ATOMIC_SEQ_CST);
}

/* The disk threads read the table (fetch) and the counters: let what they
 * hold finish before either changes (the pool's lock orders it for TSan). */
static void wait_disk_idle(void) {
    for (int i = 0; i < 1000 && evsf_disk_pending() != 0; i++) {
        struct timespec t = {0, 10 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
}

void seam_install(void) {
    wait_disk_idle();
    evsf_syscalls_reset();
    g_real = evsf_sys;
    seam_clear();
    evsf_sys.sendfile = w_sendfile;
    evsf_sys.pread = w_pread;
    evsf_sys.read = w_read;
    evsf_sys.sendmsg = w_sendmsg;
    evsf_sys.open = w_open;
    evsf_sys.close = w_close;
    evsf_sys.fstat = w_fstat;
    evsf_sys.fstatfs = w_fstatfs;
    evsf_sys.fcntl = w_fcntl;
    evsf_sys.getsockopt = w_getsockopt;
    evsf_sys.setsockopt = w_setsockopt;
    evsf_sys.getsockname = w_getsockname;
    evsf_sys.alloc = w_alloc;
    evsf_sys.getpeername = w_getpeername;
    evsf_sys.outq = w_outq;
    evsf_sys.writable = w_writable;
    evsf_sys.shutdown = w_shutdown;
    evsf_sys.resident = w_resident;
    evsf_sys.fetch = w_fetch;
}

void seam_uninstall(void) {
    wait_disk_idle();
    evsf_syscalls_reset();
    seam_clear();
}
