// worker.cpp -- the library-owned loop thread behind sf_worker_*.
#include "worker.hpp"

#include <event2/event.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <new>
#include <system_error>
#include <utility>

#include "event_driver.hpp"
#include "platform.hpp"

namespace evsf {

struct Worker::Live {
    Worker *worker;
    uint64_t id;
    sf_done_cb done;
    void *arg;
    Transfer *transfer;       // created at submit; null once it completed or was cancelled
    Live *next = nullptr;     // in starts_, then in running_
    Live *prev = nullptr;     // in running_
    Live *next_cancel = nullptr;
    bool *handled = nullptr;  // set (under mu_) when a waiting cancel may return
    bool begun = false;       // guarded by mu_
};

int Worker::create(Worker **out) noexcept {
    void *mem = alloc_bytes(sizeof(Worker));
    if (mem == nullptr) return -ENOMEM;
    std::unique_ptr<Worker> w(new (mem) Worker());
    if ((w->wake_fd_ = platform_notifier_new()) < 0) return -errno;
    w->base_ = event_base_new();
    if (!w->base_) return -ENOMEM;
    w->wake_ev_ = event_new(w->base_, w->wake_fd_, EV_READ | EV_PERSIST, on_wake, w.get());
    if (!w->wake_ev_ || event_add(w->wake_ev_, nullptr) != 0) return -ENOMEM;
    try {
        w->thread_ = std::thread([p = w.get()] { p->run(); });
    } catch (const std::system_error &e) {
        return e.code().value() > 0 ? -e.code().value() : -EAGAIN;
    } catch (...) {
        return -ENOMEM;
    }
    *out = w.release();
    return 0;
}

Worker::~Worker() {
    if (thread_.joinable()) {
        {
            std::lock_guard<std::mutex> lock(mu_);
            callable_.clear();  // from now on no done callback runs
            stop_ = true;
        }
        wake();
        thread_.join();
    }
    if (wake_ev_) event_free(wake_ev_);
    if (base_) event_base_free(base_);
    if (wake_fd_ >= 0) close(wake_fd_);
}

void Worker::run() noexcept {
    // Signals are the application's business: let its own threads take them.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
}

void Worker::wake() noexcept { platform_notify(wake_fd_); }

int Worker::submit(std::unique_ptr<Job> job, sf_done_cb done, void *arg, uint64_t *ticket) {
    void *mem = alloc_bytes(sizeof(Live));
    if (mem == nullptr) return -ENOMEM;
    Live *live = new (mem) Live{this, 0, done, arg, nullptr};
    int err = Transfer::create(base_, std::move(job), on_done, live, &live->transfer);
    if (err != 0) {
        std::free(live);
        return err;
    }
    {
        std::unique_lock<std::mutex> lock(mu_);
        try {
            live->id = next_id_;
            callable_.emplace(live->id, live);  // the only allocation under the lock
        } catch (...) {
            lock.unlock();
            live->transfer->cancel();  // never begun: frees the job, closes a library fd
            std::free(live);
            throw;
        }
        next_id_++;
        if (starts_tail_) starts_tail_->next = live; else starts_ = live;
        starts_tail_ = live;
    }
    if (ticket) *ticket = live->id;
    wake();
    return 0;
}

int Worker::cancel(uint64_t ticket) noexcept {
    std::unique_lock<std::mutex> lock(mu_);
    auto it = callable_.find(ticket);
    if (it == callable_.end()) return -EALREADY;  // done ran, runs, or was cancelled
    Live *live = it->second;
    callable_.erase(it);
    if (!live->begun) {  // still in starts_: it never touched the socket
        Live **p = &starts_;
        Live *before = nullptr;
        while (*p != live) {
            before = *p;
            p = &(*p)->next;
        }
        *p = live->next;
        if (starts_tail_ == live) starts_tail_ = before;
        lock.unlock();
        live->transfer->cancel();
        std::free(live);
        return 0;
    }
    if (on_worker_thread()) {  // from a done callback or another callback of ours
        lock.unlock();
        finish_cancel(live);
        return 0;
    }
    bool handled = false;
    live->handled = &handled;
    live->next_cancel = cancels_;
    cancels_ = live;
    lock.unlock();
    wake();
    lock.lock();
    handled_cv_.wait(lock, [&] { return handled; });
    return 0;
}

// Worker thread: cancel a begun transfer (if it has not completed meanwhile)
// and free its record.
void Worker::finish_cancel(Live *live) noexcept {
    if (live->transfer) {
        unlink_running(live);
        live->transfer->cancel();
    }
    std::free(live);
}

void Worker::unlink_running(Live *live) noexcept {
    if (live->prev) live->prev->next = live->next; else running_ = live->next;
    if (live->next) live->next->prev = live->prev;
    live->next = live->prev = nullptr;
}

void Worker::on_wake(evutil_socket_t fd, short, void *self) noexcept {
    Worker *w = static_cast<Worker *>(self);
    platform_drain(fd);
    Live *starts, *cancels;
    bool stop;
    {
        std::lock_guard<std::mutex> lock(w->mu_);
        starts = w->starts_;
        w->starts_ = w->starts_tail_ = nullptr;
        for (Live *l = starts; l; l = l->next) l->begun = true;
        cancels = w->cancels_;
        w->cancels_ = nullptr;
        stop = w->stop_;
    }
    while (starts) {
        Live *live = starts;
        starts = live->next;
        live->next = w->running_;
        live->prev = nullptr;
        if (w->running_) w->running_->prev = live;
        w->running_ = live;
        if (stop) {
            w->finish_cancel(live);
        } else {
            live->transfer->begin();  // done, if any, runs on a later loop turn
        }
    }
    while (cancels) {
        Live *live = cancels;
        cancels = live->next_cancel;
        bool *handled = live->handled;
        w->finish_cancel(live);
        std::lock_guard<std::mutex> lock(w->mu_);
        *handled = true;
        w->handled_cv_.notify_all();
    }
    if (stop) {
        while (w->running_) w->finish_cancel(w->running_);
        event_base_loopbreak(w->base_);
    }
}

void Worker::on_done(sf_transfer_t *t, int status, uint64_t body_sent, void *arg) noexcept {
    Live *live = static_cast<Live *>(arg);
    Worker *w = live->worker;
    w->unlink_running(live);
    bool call;
    {
        std::lock_guard<std::mutex> lock(w->mu_);
        call = w->callable_.erase(live->id) != 0;
        // Cancelled from another thread meanwhile: that cancel still holds
        // `live` (in cancels_) and frees it; the transfer is gone after this.
        live->transfer = nullptr;
        if (!call && live->handled) return;
    }
    if (call) live->done(t, status, body_sent, live->arg);
    std::free(live);
}

}  // namespace evsf
