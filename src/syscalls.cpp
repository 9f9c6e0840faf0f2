// syscalls.cpp -- the real calls behind the fault-injection seam.
#include "syscalls.h"

#include <unistd.h>

#include "platform.hpp"

namespace {

const evsf_syscalls_t kReal = {evsf::platform_sendfile, ::pread, ::read, ::sendmsg};

}  // namespace

extern "C" {
evsf_syscalls_t evsf_sys = kReal;
void evsf_syscalls_reset(void) { evsf_sys = kReal; }
}
