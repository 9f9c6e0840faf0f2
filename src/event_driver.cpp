// event_driver.cpp -- a Job driven by libevent.  The first step runs in
// begin() (at submit); a job that finished there is reported through
// event_active() on the next loop turn.  Otherwise one persistent EV_WRITE event per transfer:
// EAGAIN simply waits for it, a used-up max_chunk budget
// returns to the loop (the level-triggered event fires again after other
// ready events were served), and its timeout is the idle timeout.  The
// write event lives in the Transfer's own allocation (event_assign).
#include "event_driver.hpp"

#include <event2/event.h>

#include <cerrno>
#include <cstdlib>
#include <new>
#include <utility>

namespace evsf {

int Transfer::create(struct event_base *base, std::unique_ptr<Job> job, sf_done_cb done, void *arg,
                     Transfer **out) noexcept {
    static_assert(sizeof(Transfer) % alignof(struct timeval) == 0 && sizeof(Transfer) % alignof(void *) == 0,
                  "struct event follows Transfer in the same allocation");
    void *mem = alloc_bytes(sizeof(Transfer) + event_get_struct_event_size());
    if (mem == nullptr) return -ENOMEM;
    Transfer *raw = new (mem) Transfer();
    if (event_assign(raw->write_ev(), base, job->sock(), EV_WRITE | EV_PERSIST, on_ready, raw) != 0) {
        std::free(mem);  // nothing in *raw owns anything yet
        return -EINVAL;  // only a bad base gets here; Job::create checked the fd
    }
    raw->done_ = done;
    raw->arg_ = arg;
    raw->job_ = std::move(job);
    *out = raw;
    return 0;
}

void Transfer::begin() noexcept {
    begun_ = true;
    int r = job_->step();
    if (r == SF_STEP_WRITE || r == SF_STEP_YIELD) {
        wait_for(Armed::Write);
        // event_add failed: bytes may be out already, so this is no longer a
        // synchronous error (those promise nothing was sent); done reports it.
        if (armed_ == Armed::None) r = -ENOMEM;
    }
    if (r == SF_STEP_DONE || r < 0) {
        early_ = true;
        early_status_ = r;
        event_active(write_ev(), EV_WRITE, 0);  // done from the loop's next turn
    } else if (r == SF_STEP_READ || r == SF_STEP_SOURCE) {
        event_active(write_ev(), EV_WRITE, 0);  // on_ready steps again and arms the read event
    }
}

int Transfer::start(struct event_base *base, std::unique_ptr<Job> job, sf_done_cb done, void *arg,
                    Transfer **out) noexcept {
    Transfer *t = nullptr;
    int err = create(base, std::move(job), done, arg, &t);
    if (err != 0) return err;
    t->begin();
    *out = t;
    return 0;
}

Transfer::~Transfer() {
    // Never begun (a worker transfer cancelled before its thread took it):
    // the base never saw the event, and may be running on another thread.
    if (begun_) event_del(write_ev());  // also takes it off the active list
    event_debug_unassign(write_ev());
    if (read_ev_) event_free(read_ev_);
}

struct event *Transfer::event_of(Armed which) {
    switch (which) {
    case Armed::Write: return write_ev();
    case Armed::Read: return read_ev_;
    default: return nullptr;
    }
}

void Transfer::wait_for(Armed which, bool timed) noexcept {
    if (armed_ == which) return;  // still pending: its persist timer restarts by itself
    if (armed_ != Armed::None) event_del(event_of(armed_));
    armed_ = Armed::None;
    struct timeval tv;
    const struct timeval *timeout = nullptr;
    if (uint32_t ms = timed ? job_->idle_timeout_ms() : 0) {
        tv.tv_sec = static_cast<time_t>(ms / 1000);
        tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
        timeout = &tv;
    }
    if (event_add(event_of(which), timeout) == 0) armed_ = which;
}

void Transfer::on_ready(evutil_socket_t, short what, void *self) noexcept {
    Transfer *t = static_cast<Transfer *>(self);
    if (t->early_) {
        t->complete(t->early_status_);
        return;
    }
    if (what & EV_TIMEOUT) {
        // Bytes still leave the send queue: a slow reader, not a dead one.
        // The persistent event's timer has restarted by itself.
        if (t->armed_ == Armed::Write && t->job_->idle_progressed()) return;
        t->complete(SF_ETIMEDOUT);
        return;
    }
    int r = t->job_->step();
    switch (r) {
    case SF_STEP_WRITE:
    case SF_STEP_YIELD:
        t->wait_for(Armed::Write);
        break;
    case SF_STEP_READ:    // a pipe source has no data
    case SF_STEP_SOURCE:  // the disk threads are reading a cold chunk in (no idle timer: not the peer's fault)
        // One read event per transfer: a pipe's fd, or the wake-up fd of a
        // regular file's disk reads -- never both.
        if (t->read_ev_ == nullptr) {
            t->read_ev_ = event_new(event_get_base(t->write_ev()), t->job_->wait_fd(),
                                    EV_READ | EV_PERSIST, on_ready, t);
            if (t->read_ev_ == nullptr) {
                t->complete(-ENOMEM);
                return;
            }
        }
        t->wait_for(Armed::Read, r == SF_STEP_READ);
        break;
    default:
        t->complete(r);
        return;
    }
    if (t->armed_ == Armed::None) t->complete(-ENOMEM);  // event_add failed: never hang silently
}

void Transfer::complete(int status) noexcept {
    if (armed_ != Armed::None) event_del(event_of(armed_));
    armed_ = Armed::None;
    job_->release();  // uncorked, library fd closed: after done, the socket is the caller's alone
    in_done_ = true;
    done_(reinterpret_cast<sf_transfer_t *>(this), status, job_->body_sent(), arg_);
    delete this;
}

namespace {

// Collects up to kBatch distinct transfers whose events are on a base.
struct Batch {
    static constexpr int kBatch = 64;
    Transfer *found[kBatch];
    int n = 0;
    void (*ours)(evutil_socket_t, short, void *);
};

int collect(const struct event_base *, const struct event *ev, void *arg) {
    Batch *b = static_cast<Batch *>(arg);
    if (event_get_callback(ev) != b->ours) return 0;
    Transfer *t = static_cast<Transfer *>(event_get_callback_arg(ev));
    for (int i = 0; i < b->n; i++)
        if (b->found[i] == t) return 0;  // its other event (a pipe source's EV_READ)
    b->found[b->n++] = t;
    return b->n == Batch::kBatch;  // full: stop, cancel these, look again
}

}  // namespace

int Transfer::cancel_all(struct event_base *base) noexcept {
    // libevent forbids removing events while it walks them: collect a batch,
    // then cancel it, until a walk finds none.
    int cancelled = 0;
    for (;;) {
        Batch b;
        b.ours = on_ready;
        event_base_foreach_event(base, collect, &b);
        int skipped = 0;
        for (int i = 0; i < b.n; i++) {
            if (b.found[i]->cancel() == 0) cancelled++;
            else skipped++;  // in its own done: it is released when done returns
        }
        if (b.n == skipped) return cancelled;
    }
}

int Transfer::cancel() noexcept {
    if (in_done_) return -EALREADY;
    delete this;  // event_free removes the events, ~Job closes the fd and uncorks
    return 0;
}

}  // namespace evsf
