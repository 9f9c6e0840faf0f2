// worker.cpp -- the library-owned loop thread behind sf_worker_*.
#include "worker.hpp"

#include <event2/event.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <new>
#include <system_error>
#include <utility>

#include "event_driver.hpp"

namespace evsf {

struct Worker::Live {
    Worker *worker;
    uint64_t id;
    sf_done_cb done;
    void *arg;
    Transfer *transfer;
};

int Worker::create(Worker **out) {
    std::unique_ptr<Worker> w(new (std::nothrow) Worker());
    if (!w) return -ENOMEM;
    if (pipe(w->wake_fds_) != 0) return -errno;  // pipe2 is not on macOS
    for (int fd : w->wake_fds_) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
            return -errno;
    }
    w->base_ = event_base_new();
    if (!w->base_) return -ENOMEM;
    w->wake_ev_ = event_new(w->base_, w->wake_fds_[0], EV_READ | EV_PERSIST, on_wake, w.get());
    if (!w->wake_ev_ || event_add(w->wake_ev_, nullptr) != 0) return -ENOMEM;
    try {
        w->thread_ = std::thread([p = w.get()] { p->run(); });
    } catch (const std::system_error &e) {
        return e.code().value() > 0 ? -e.code().value() : -EAGAIN;
    }
    *out = w.release();
    return 0;
}

Worker::~Worker() {
    if (thread_.joinable()) {
        {
            std::lock_guard<std::mutex> lock(mu_);
            callable_.clear();  // from now on no done callback runs
            queue_.push_back(Command(Command::Stop));
        }
        wake();
        thread_.join();
    }
    if (wake_ev_) event_free(wake_ev_);
    if (base_) event_base_free(base_);
    for (int fd : wake_fds_)
        if (fd >= 0) close(fd);
}

void Worker::run() {
    // Signals are the application's business: let its own threads take them.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY);
}

void Worker::wake() {
    char b = 1;
    while (write(wake_fds_[1], &b, 1) < 0 && errno == EINTR) {
    }
    // EAGAIN: the pipe is full of wake-ups already, which is just as good.
}

int Worker::submit(std::unique_ptr<Job> job, sf_done_cb done, void *arg, uint64_t *ticket) {
    uint64_t id;
    {
        std::lock_guard<std::mutex> lock(mu_);
        id = next_id_++;
        callable_.insert(id);
        Command cmd(Command::Start);
        cmd.id = id;
        cmd.job = std::move(job);
        cmd.done = done;
        cmd.arg = arg;
        queue_.push_back(std::move(cmd));
    }
    if (ticket) *ticket = id;
    wake();
    return 0;
}

int Worker::cancel(uint64_t ticket) {
    std::unique_ptr<Job> unstarted;
    bool handled = false;
    {
        std::unique_lock<std::mutex> lock(mu_);
        if (callable_.erase(ticket) == 0) return -EALREADY;
        for (auto it = queue_.begin(); it != queue_.end(); ++it) {
            if (it->kind == Command::Start && it->id == ticket) {
                unstarted = std::move(it->job);  // never touched the socket
                queue_.erase(it);
                break;
            }
        }
        if (!unstarted && !on_worker_thread()) {
            Command cmd(Command::Cancel);
            cmd.id = ticket;
            cmd.handled = &handled;
            queue_.push_back(std::move(cmd));
            wake();
            handled_cv_.wait(lock, [&] { return handled; });
            return 0;
        }
    }
    if (!unstarted) cancel_live(ticket);  // we are the worker thread
    return 0;  // `unstarted` closes its fd here
}

void Worker::on_wake(evutil_socket_t fd, short, void *self) {
    Worker *w = static_cast<Worker *>(self);
    char drain[64];
    while (read(fd, drain, sizeof drain) > 0) {
    }
    for (;;) {
        Command cmd(Command::Stop);
        {
            std::lock_guard<std::mutex> lock(w->mu_);
            if (w->queue_.empty()) break;
            cmd = std::move(w->queue_.front());
            w->queue_.pop_front();
        }
        switch (cmd.kind) {
        case Command::Start:
            w->start_transfer(cmd);
            break;
        case Command::Cancel: {
            w->cancel_live(cmd.id);
            std::lock_guard<std::mutex> lock(w->mu_);
            *cmd.handled = true;
            w->handled_cv_.notify_all();
            break;
        }
        case Command::Stop:
            while (!w->live_.empty()) w->cancel_live(w->live_.begin()->first);
            event_base_loopbreak(w->base_);
            return;
        }
    }
}

void Worker::start_transfer(Command &cmd) {
    Live *live = new (std::nothrow) Live{this, cmd.id, cmd.done, cmd.arg, nullptr};
    int err = live ? Transfer::start(base_, std::move(cmd.job), on_done, live, &live->transfer)
                   : -ENOMEM;
    if (err == 0) {
        live_[cmd.id] = live;
        return;
    }
    // Could not even arm an event: report it like any asynchronous failure.
    delete live;
    bool call;
    {
        std::lock_guard<std::mutex> lock(mu_);
        call = callable_.erase(cmd.id) != 0;
    }
    if (call) cmd.done(nullptr, err, 0, cmd.arg);
}

void Worker::cancel_live(uint64_t id) {
    auto it = live_.find(id);
    if (it == live_.end()) return;  // finished meanwhile; its done was suppressed
    Live *live = it->second;
    live_.erase(it);
    live->transfer->cancel();
    delete live;
}

void Worker::on_done(sf_transfer_t *t, int status, uint64_t body_sent, void *arg) {
    Live *live = static_cast<Live *>(arg);
    Worker *w = live->worker;
    w->live_.erase(live->id);
    bool call;
    {
        std::lock_guard<std::mutex> lock(w->mu_);
        call = w->callable_.erase(live->id) != 0;
    }
    if (call) live->done(t, status, body_sent, live->arg);
    delete live;
}

}  // namespace evsf
