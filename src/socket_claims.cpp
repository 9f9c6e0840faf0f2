// socket_claims.cpp -- see socket_claims.hpp.
#include "socket_claims.hpp"

#include <atomic>
#include <cerrno>

namespace evsf {

namespace {

// One byte per descriptor, in zero-initialised static storage: the kernel
// maps a page of it only when a descriptor in that page's range is first
// claimed, so the table costs 4 KiB of memory per 4,096 descriptors in use
// and no allocation (nothing to fail, nothing left at exit).
constexpr int kTracked = 1 << 20;  // Linux's default hard RLIMIT_NOFILE
std::atomic<unsigned char> g_busy[kTracked];

}  // namespace

int claim_socket(int fd) noexcept {
    if (fd < 0 || fd >= kTracked) return 0;
    return g_busy[fd].exchange(1, std::memory_order_acq_rel) ? -EBUSY : 0;
}

void release_socket(int fd) noexcept {
    if (fd >= 0 && fd < kTracked) g_busy[fd].store(0, std::memory_order_release);
}

}  // namespace evsf
