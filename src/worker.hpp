// worker.hpp -- a libevent loop on a library-owned thread, fed through a
// locked queue and a wake-up pipe.  For callers whose own loop cannot watch
// the socket (asyncio refuses add_writer on a transport's fd).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <event2/util.h>

#include "evsendfile.h"
#include "job.hpp"

struct event;

namespace evsf {

class Transfer;

class Worker {
public:
    static int create(Worker **out);
    ~Worker();  // cancels everything (no done callbacks), joins the thread
    Worker(const Worker &) = delete;
    Worker &operator=(const Worker &) = delete;

    int submit(std::unique_ptr<Job> job, sf_done_cb done, void *arg, uint64_t *ticket);
    int cancel(uint64_t ticket);

private:
    struct Command {
        enum Kind { Start, Cancel, Stop };
        explicit Command(Kind k) : kind(k) {}
        Kind kind;
        uint64_t id = 0;
        std::unique_ptr<Job> job;   // Start
        sf_done_cb done = nullptr;  // Start
        void *arg = nullptr;        // Start
        bool *handled = nullptr;    // Cancel: set under mu_ once the worker let go
    };
    struct Live;  // a running transfer, owned by the worker thread

    Worker() = default;
    void run();
    void wake();
    static void on_wake(evutil_socket_t fd, short what, void *self);
    static void on_done(sf_transfer_t *t, int status, uint64_t body_sent, void *arg);
    void start_transfer(Command &cmd);
    void cancel_live(uint64_t id);
    bool on_worker_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

    struct event_base *base_ = nullptr;
    struct event *wake_ev_ = nullptr;
    int wake_fds_[2] = {-1, -1};
    std::thread thread_;

    std::mutex mu_;
    std::condition_variable handled_cv_;
    std::deque<Command> queue_;             // guarded by mu_
    std::unordered_set<uint64_t> callable_; // guarded by mu_: transfers whose done may still run
    uint64_t next_id_ = 1;                  // guarded by mu_

    std::unordered_map<uint64_t, Live *> live_;  // worker thread only
};

}  // namespace evsf
