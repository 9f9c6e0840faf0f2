// disk.hpp -- keeping cold files off the event loop.  Before the engine
// sends (or reads) the next chunk of a regular file it asks the seam's
// `resident` whether the chunk's pages are in the page cache; when they are
// not, the blocking part -- reading them in -- runs on a small pool of
// library-owned threads (the seam's `fetch`), and the transfer waits for a
// wake-up fd (SF_STEP_SOURCE) instead of blocking its loop.  The thread then
// also runs the transfer's `then` (job.cpp: it sends the chunk, so the loop
// moves none of a cold transfer's bytes).
//
// The pool: at most 4 threads, started lazily by the first cold chunk of
// the process and shared by every event_base, worker and stepped job; one
// FIFO queue (at most 1024 waiting reads), and at most one read per
// transfer in it, so transfers take turns.  A full queue, or no thread to
// be had, sends inline (as without the pool: correct, only blocking).
// Threads block every signal, are detached, and live until the process
// exits (the library is linked -z nodelete, so dlclose cannot unmap code
// they run).  After fork(), the child starts its own threads when needed
// and re-queues reads that the parent's threads had in hand; a send they
// were in the middle of ends there with -ECANCELED.
#pragma once

#include <atomic>
#include <cstdint>

namespace evsf {

class DiskRead {
public:
    // For source fd `fd` (duplicated: the threads read through their own
    // fd, so the caller may close theirs at any time).  nullptr when an
    // allocation, the dup or the wake-up fd fails: read inline then.
    static DiskRead *create(int fd) noexcept;
    // Run on a disk thread after the read, unless drop() came first; what
    // it returns is result().  kMore: there is more to do -- the thread
    // runs `then` again (no read first, no wake-up of the transfer), or,
    // when other work waits for a thread, queues this behind it.
    using Then = int (*)(void *ctx) noexcept;
    static constexpr int kMore = -1000000;
    // For `then`: drop() was called and waits for it to return (soon).
    bool stopping() const { return stop_.load(std::memory_order_relaxed); }
    // Queues "bring [off, off + len) in (len 0: nothing to read), start
    // reading `ahead` bytes more, then run then(ctx)".  False when the pool
    // cannot take it (then read inline).  One at a time: only after ready()
    // said true.
    bool submit(uint64_t off, uint64_t len, uint64_t ahead, Then then, void *ctx) noexcept;
    // True once the submitted work is over (then the wake-up fd is drained).
    bool ready() noexcept;
    // What `then` returned (once ready()).
    int result() const { return result_; }
    // Readable once the submitted read is over.
    int wait_fd() const { return efd_; }
    // The transfer's reference: after this, the pool may still finish a
    // read in hand (on its own fd), then frees everything.  A `then` that
    // has not begun never runs; one that has is waited for (it may use the
    // transfer and its socket: a non-blocking send of at most one chunk).
    // Never a callback after, never a use of the caller's fds.
    void drop() noexcept;

private:
    friend struct DiskPool;
    DiskRead() = default;
    void unref() noexcept;
    bool work() noexcept;

    std::atomic<int> refs_{1};  // the transfer's; +1 while the pool holds it
    std::atomic<bool> done_{false};  // the submitted work is over (set before the wake-up fd is written)
    enum Stage : int { kWaiting, kThen, kOver, kDropped };
    std::atomic<int> stage_{kWaiting};  // kWaiting -> kThen -> kOver (or kWaiting: kMore) on the thread; kWaiting -> kDropped by drop()
    std::atomic<bool> stop_{false};  // set by drop() before it waits for a running `then`
    Then then_ = nullptr;
    void *ctx_ = nullptr;
    int result_ = 0;
    int fd_ = -1;               // our dup of the source
    int efd_ = -1;              // wake-up fd
    uint64_t off_ = 0, len_ = 0, ahead_ = 0;  // written before submit, read by the thread
    DiskRead *next_ = nullptr;  // in the pool's queue (under its lock)
};

}  // namespace evsf
