// alloc.hpp -- the library's only ways to get heap memory.  All of them go
// through the seam's `alloc` (malloc's contract), so a test can fail any one
// allocation; none of them throws except SeamAllocator, whose containers
// live only on the caller's side of the C boundary (c_api.cpp's guard turns
// std::bad_alloc into -ENOMEM there).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

#include "syscalls.h"

namespace evsf {

inline void *alloc_bytes(size_t n) noexcept { return evsf_sys.alloc(n); }

struct FreeDeleter {
    void operator()(void *p) const noexcept { std::free(p); }
};
// A heap buffer of bytes: alloc_bytes + free.
using Bytes = std::unique_ptr<char[], FreeDeleter>;
inline Bytes alloc_buffer(size_t n) noexcept { return Bytes(static_cast<char *>(alloc_bytes(n))); }

// For the worker's containers (touched only on the caller's thread, under the
// C boundary's guard, where a throw becomes -ENOMEM).
template <typename T>
struct SeamAllocator {
    using value_type = T;
    SeamAllocator() = default;
    template <typename U>
    SeamAllocator(const SeamAllocator<U> &) noexcept {}
    T *allocate(size_t n) {
        if (n > SIZE_MAX / sizeof(T)) throw std::bad_alloc();
        void *p = alloc_bytes(n * sizeof(T));
        if (p == nullptr) throw std::bad_alloc();
        return static_cast<T *>(p);
    }
    void deallocate(T *p, size_t) noexcept { std::free(p); }
    template <typename U>
    bool operator==(const SeamAllocator<U> &) const noexcept { return true; }
    template <typename U>
    bool operator!=(const SeamAllocator<U> &) const noexcept { return false; }
};

}  // namespace evsf
