// worker.hpp -- a libevent loop on a library-owned thread, fed through a
// locked hand-off list and a wake-up fd (platform_notifier_new).  For
// callers whose own loop cannot watch the socket (asyncio refuses
// add_writer on a transport's fd).
//
// Everything that can fail (allocation, libevent's event set-up) happens on
// the submitting thread, inside submit(), where it is a synchronous error;
// the worker thread itself never allocates, so it cannot fail to start a
// transfer and never has to report a failure without a transfer handle.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <event2/util.h>

#include "alloc.hpp"
#include "evsendfile.h"
#include "job.hpp"

struct event;

namespace evsf {

class Transfer;

class Worker {
public:
    static int create(Worker **out) noexcept;
    ~Worker();  // cancels everything (no done callbacks), joins the thread
    // Allocated by create() with alloc_bytes.
    static void operator delete(void *p) noexcept { std::free(p); }
    Worker(const Worker &) = delete;
    Worker &operator=(const Worker &) = delete;

    // May throw std::bad_alloc (the C boundary turns it into -ENOMEM); the
    // job is freed in every case.
    int submit(std::unique_ptr<Job> job, sf_done_cb done, void *arg, uint64_t *ticket);
    int cancel(uint64_t ticket) noexcept;

private:
    // One submitted transfer.  Linked into `starts_` (waiting for the worker
    // thread), then into `running_` (worker thread only), and into
    // `cancels_` while a cancel from another thread waits for it.
    struct Live;

    Worker() = default;
    void run() noexcept;
    void wake() noexcept;
    static void on_wake(evutil_socket_t fd, short what, void *self) noexcept;
    static void on_done(sf_transfer_t *t, int status, uint64_t body_sent, void *arg) noexcept;
    void finish_cancel(Live *live) noexcept;
    void unlink_running(Live *live) noexcept;
    bool on_worker_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

    struct event_base *base_ = nullptr;
    struct event *wake_ev_ = nullptr;
    int wake_fd_ = -1;  // platform_notifier_new(): the worker's wake-up
    std::thread thread_;

    std::mutex mu_;
    std::condition_variable handled_cv_;
    using Map = std::unordered_map<uint64_t, Live *, std::hash<uint64_t>, std::equal_to<uint64_t>,
                                   SeamAllocator<std::pair<const uint64_t, Live *>>>;
    Map callable_;              // guarded by mu_: transfers whose done may still run
    Live *starts_ = nullptr;    // guarded by mu_: submitted, not yet begun (FIFO: head)
    Live *starts_tail_ = nullptr;
    Live *cancels_ = nullptr;   // guarded by mu_: running, cancelled from another thread
    bool stop_ = false;         // guarded by mu_
    uint64_t next_id_ = 1;      // guarded by mu_

    Live *running_ = nullptr;   // worker thread only: begun, done not yet run
};

}  // namespace evsf
