// syscalls.cpp -- the real calls behind the fault-injection seam.
#include "syscalls.h"

#include <fcntl.h>
#include <unistd.h>
#include <sys/vfs.h>

#include <cerrno>
#include <cstdlib>

#include "platform.hpp"

namespace {

int real_open(const char *path, int flags, mode_t mode) { return ::open(path, flags, mode); }
int real_close(int fd) { return ::close(fd); }
int real_fstat(int fd, struct stat *st) { return ::fstat(fd, st); }
int real_fcntl(int fd, int cmd, int arg) { return ::fcntl(fd, cmd, arg); }

int real_fstatfs(int fd, struct statfs *st) { return ::fstatfs(fd, st); }

int real_getsockopt(int fd, int level, int name, void *value, socklen_t *len) {
    return ::getsockopt(fd, level, name, value, len);
}
int real_setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
    return ::setsockopt(fd, level, name, value, len);
}
int real_getsockname(int fd, struct sockaddr *addr, socklen_t *len) { return ::getsockname(fd, addr, len); }
int real_getpeername(int fd, struct sockaddr *addr, socklen_t *len) { return ::getpeername(fd, addr, len); }

const evsf_syscalls_t kReal = {evsf::platform_sendfile, evsf::platform_pread, ::read, ::sendmsg,
                               real_open, real_close, real_fstat, real_fstatfs, real_fcntl,
                               real_getsockopt, real_setsockopt, real_getsockname, std::malloc,
                               real_getpeername, evsf::platform_outq, evsf::platform_resident,
                               evsf::platform_fetch, evsf::platform_writable, ::shutdown};

}  // namespace

extern "C" {
#ifdef EVSF_FAULT_SEAM
evsf_syscalls_t evsf_sys = kReal;
void evsf_syscalls_reset(void) { evsf_sys = kReal; }
#else
const evsf_syscalls_t evsf_sys = kReal;
#endif
}
