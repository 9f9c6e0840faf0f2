// socket_claims.cpp -- see socket_claims.hpp.
#include "socket_claims.hpp"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <new>

#include "alloc.hpp"

namespace evsf {

namespace {

constexpr int kPageBits = 12;
constexpr int kPages = 1 << 10;  // 4M descriptors
struct Page {
    std::atomic<unsigned char> busy[1 << kPageBits];
};
std::atomic<Page *> g_pages[kPages];

std::atomic<unsigned char> *slot(int fd, bool create) noexcept {
    if (fd < 0 || (fd >> kPageBits) >= kPages) return nullptr;
    std::atomic<Page *> &p = g_pages[fd >> kPageBits];
    Page *page = p.load(std::memory_order_acquire);
    if (page == nullptr && create) {
        void *mem = alloc_bytes(sizeof(Page));
        if (mem == nullptr) return nullptr;
        Page *fresh = new (mem) Page;
        for (auto &b : fresh->busy) b.store(0, std::memory_order_relaxed);
        if (p.compare_exchange_strong(page, fresh, std::memory_order_acq_rel)) {
            page = fresh;
        } else {
            std::free(mem);  // another thread made it first: `page` holds theirs
        }
    }
    return page ? &page->busy[fd & ((1 << kPageBits) - 1)] : nullptr;
}

}  // namespace

int claim_socket(int fd) noexcept {
    if (fd < 0 || (fd >> kPageBits) >= kPages) return 0;
    std::atomic<unsigned char> *s = slot(fd, true);
    if (s == nullptr) return -ENOMEM;
    return s->exchange(1, std::memory_order_acq_rel) ? -EBUSY : 0;
}

void release_socket(int fd) noexcept {
    if (std::atomic<unsigned char> *s = slot(fd, false)) s->store(0, std::memory_order_release);
}

}  // namespace evsf
