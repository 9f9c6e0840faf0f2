// bufferevent_driver.cpp -- sf_bufferevent_send.
//
// The engine (Job, driven by sf_job_start) owns the bufferevent's socket for
// the length of the transfer.  Meanwhile the bufferevent is parked: the
// user's callbacks are saved and ours installed, EV_READ is disabled (input
// waits in the kernel, and is read when EV_READ comes back), and EV_WRITE is
// disabled once the bytes already in its output buffer have been written by
// libevent itself.  Before `done` runs, callbacks and enabled events are put
// back exactly; watermarks and timeouts are never touched (a re-enabled event
// re-arms its timeout).
//
// bufferevent_free during the transfer: libevent clears the callbacks at
// once and frees the buffers later, from the loop, after closing the socket
// (BEV_OPT_CLOSE_ON_FREE).  The transfer notices either: its own callbacks
// gone (checked before the bufferevent is touched again), or the sentinel --
// an empty reference chain at the end of the input buffer, whose cleanup
// libevent calls when it frees that buffer -- whichever comes first.  Both
// end the transfer without touching the bufferevent; `done` gets -ECANCELED.
// When the transfer ends normally the sentinel is orphaned; libevent frees it
// with the next bytes read (or with the buffer) and it then frees itself.
#include "bufferevent_driver.hpp"

#include <dlfcn.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <new>
#include <atomic>
#include <unordered_set>
#include <vector>

#include "alloc.hpp"
#include "job.hpp"
#include "platform.hpp"

namespace evsf {

struct Sentinel {
    BevSend *owner;
};

namespace {

// Handles given out on this thread (transfers belong to their base's thread).
using HandleSet = std::unordered_set<const void *, std::hash<const void *>, std::equal_to<const void *>,
                                     SeamAllocator<const void *>>;
thread_local HandleSet t_handles;
// Entries in all threads' t_handles.  While it is 0 -- a program that never
// calls sf_bufferevent_send -- sf_cancel & co. never touch the thread_local
// (whose first use makes glibc allocate its destructor's record).
std::atomic<long> g_handles{0};

void handles_insert(const void *h) {
    t_handles.insert(h);  // may throw: the caller catches
    g_handles.fetch_add(1, std::memory_order_relaxed);
}

void handles_erase(const void *h) {
    if (g_handles.load(std::memory_order_relaxed) != 0 && t_handles.erase(h) != 0)
        g_handles.fetch_sub(1, std::memory_order_relaxed);
}

// libevent_openssl's bufferevent_openssl_get_ssl, when the process has it:
// the core library does not link libevent_openssl, and this is the public way
// to tell an OpenSSL bufferevent from a plain socket one.
using GetSsl = void *(*)(struct bufferevent *);
bool is_openssl(struct bufferevent *bev) {
    static const GetSsl get_ssl = reinterpret_cast<GetSsl>(dlsym(RTLD_DEFAULT, "bufferevent_openssl_get_ssl"));
    return get_ssl != nullptr && get_ssl(bev) != nullptr;
}

bool rate_limited(struct bufferevent *bev) {
    return bufferevent_get_write_limit(bev) != EV_SSIZE_MAX || bufferevent_get_read_limit(bev) != EV_SSIZE_MAX ||
           bufferevent_get_max_to_write(bev) < bufferevent_get_max_single_write(bev);  // a group's share
}

}  // namespace

BevSend *BevSend::lookup(const sf_transfer_t *t) {
    if (g_handles.load(std::memory_order_relaxed) == 0 || t_handles.empty()) return nullptr;  // the common case
    auto it = t_handles.find(t);
    return it == t_handles.end() ? nullptr : static_cast<BevSend *>(const_cast<void *>(*it));
}

int BevSend::start(struct bufferevent *bev, const sf_region_t *region, const sf_options_t *opts,
                   sf_done_cb done, void *arg, BevSend **out) {
    if (bev == nullptr || region == nullptr || done == nullptr) return -EINVAL;
    // Bytes that do not go straight to a socket (pairs, filters) or must be
    // paced (rate limits) cannot bypass the bufferevent.
    if (bufferevent_pair_get_partner(bev) != nullptr || bufferevent_get_underlying(bev) != nullptr ||
        rate_limited(bev))
        return -EOPNOTSUPP;
    int fd = bufferevent_getfd(bev);
    if (fd < 0) return -EBADF;
    sf_options_t o;
    int err = normalize_options(opts, o);
    if (err != 0) return err;
    if (o.flags & SF_SHUT_WR) return -EINVAL;  // the bufferevent owns the stream's end
    if (is_openssl(bev)) {
        if (!platform_ktls_tx_active(fd)) return SF_ENOKTLS;
        o.flags |= SF_TLS;  // kernel TLS encrypts what the engine writes
    }
    sf_job_t *job = nullptr;
    err = sf_job_new(fd, region, &o, &job);
    if (err != 0) return err;

    void *mem = alloc_bytes(sizeof(BevSend));
    BevSend *b = mem != nullptr ? new (mem) BevSend() : nullptr;
    if (b == nullptr) {
        sf_job_free(job);
        return -ENOMEM;
    }
    b->bev_ = bev;
    b->job_ = job;
    b->done_ = done;
    b->arg_ = arg;
    err = b->park();
    if (err == 0 && evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        err = b->start_engine();  // nothing to flush: the engine starts now
    } else if (err == 0) {
        bufferevent_enable(bev, EV_WRITE);  // libevent writes what is queued; on_written goes on
    }
    if (err != 0) {
        b->restore();
        delete b;
        return err;
    }
    *out = b;
    return 0;
}

BevSend::~BevSend() {
    drop_engine();
    orphan_sentinel();
    handles_erase(this);
}

void BevSend::orphan_sentinel() {
    if (sentinel_ != nullptr) sentinel_->owner = nullptr;  // libevent frees it later
    sentinel_ = nullptr;
}

void BevSend::drop_engine() {
    if (transfer_ != nullptr) sf_cancel(transfer_);
    transfer_ = nullptr;
    sf_job_free(job_);
    job_ = nullptr;
}

int BevSend::park() {
    try {
        handles_insert(this);
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    }
    void *mem = alloc_bytes(sizeof(Sentinel));
    if (mem == nullptr) return -ENOMEM;
    sentinel_ = new (mem) Sentinel{this};
    static const char nothing = 0;
    struct evbuffer *in = bufferevent_get_input(bev_);
    if (evbuffer_add_reference(in, &nothing, 0, on_sentinel_freed, sentinel_) != 0) {
        // A socket bufferevent freezes its input's end; libevent's own reader
        // thaws it the same way around each read.
        evbuffer_unfreeze(in, 0);
        int rc = evbuffer_add_reference(in, &nothing, 0, on_sentinel_freed, sentinel_);
        evbuffer_freeze(in, 0);
        if (rc != 0) {  // not added: libevent never calls the cleanup
            std::free(sentinel_);
            sentinel_ = nullptr;
            return -ENOMEM;
        }
    }
    bufferevent_getcb(bev_, &readcb_, &writecb_, &eventcb_, &cbarg_);
    enabled_ = bufferevent_get_enabled(bev_);
    bufferevent_setcb(bev_, nullptr, on_written, on_event, this);
    bufferevent_disable(bev_, EV_READ);
    parked_ = true;
    return 0;
}

bool BevSend::bev_alive() const {
    void *cbarg = nullptr;
    bufferevent_event_cb eventcb = nullptr;
    bufferevent_getcb(bev_, nullptr, nullptr, &eventcb, &cbarg);
    return eventcb == on_event && cbarg == this;
}

void BevSend::restore() {
    if (!parked_ || !bev_alive()) return;  // not parked, or freed by the user
    parked_ = false;
    bufferevent_setcb(bev_, readcb_, writecb_, eventcb_, cbarg_);
    short extra = static_cast<short>(bufferevent_get_enabled(bev_) & ~enabled_);
    if (extra != 0) bufferevent_disable(bev_, extra);
    if (enabled_ != 0) bufferevent_enable(bev_, enabled_);
}

int BevSend::start_engine() {
    bufferevent_disable(bev_, EV_WRITE);
    sf_job_t *job = job_;
    job_ = nullptr;  // sf_job_start takes it in every case
    return sf_job_start(job, bufferevent_get_base(bev_), on_done, this, &transfer_);
}

void BevSend::finish(int status, uint64_t body_sent) {
    drop_engine();
    if (parked_ && bev_alive()) {
        restore();
    } else {
        status = -ECANCELED;  // the user freed bev: it must not be touched again
    }
    orphan_sentinel();  // from here on nothing libevent frees can reach this object
    in_done_ = true;
    done_(reinterpret_cast<sf_transfer_t *>(this), status, body_sent, arg_);
    delete this;
}

int BevSend::cancel() {
    if (in_done_) return -EALREADY;
    drop_engine();
    restore();
    delete this;
    return 0;
}

int BevSend::cancel_all(struct event_base *base) {
    if (g_handles.load(std::memory_order_relaxed) == 0) return 0;
    std::vector<BevSend *, SeamAllocator<BevSend *>> mine;  // may throw: sf_cancel_all's guard
    for (const void *h : t_handles) {
        BevSend *b = static_cast<BevSend *>(const_cast<void *>(h));
        if (!b->in_done_ && bufferevent_get_base(b->bev_) == base) mine.push_back(b);
    }
    for (BevSend *b : mine) b->cancel();
    return static_cast<int>(mine.size());
}

uint64_t BevSend::body_sent() const { return transfer_ != nullptr ? sf_transfer_body_sent(transfer_) : 0; }

void BevSend::on_written(struct bufferevent *bev, void *self) {
    BevSend *b = static_cast<BevSend *>(self);
    if (b->job_ == nullptr || evbuffer_get_length(bufferevent_get_output(bev)) != 0) return;
    int err = b->start_engine();
    if (err != 0) b->finish(err, 0);
}

void BevSend::on_event(struct bufferevent *, short what, void *self) {
    BevSend *b = static_cast<BevSend *>(self);
    if (b->job_ == nullptr) return;  // only the flush of queued bytes reports through here
    int status = -EIO;
    if (what & BEV_EVENT_TIMEOUT) {
        status = SF_ETIMEDOUT;
    } else if (what & BEV_EVENT_ERROR) {
        int e = EVUTIL_SOCKET_ERROR();
        status = e > 0 ? -e : -EIO;
    } else if (what & BEV_EVENT_EOF) {
        status = -EPIPE;
    }
    b->finish(status, 0);
}

void BevSend::on_done(sf_transfer_t *, int status, uint64_t body_sent, void *self) {
    BevSend *b = static_cast<BevSend *>(self);
    b->transfer_ = nullptr;  // the driver frees it when this returns
    b->finish(status, body_sent);
}

void BevSend::on_sentinel_freed(const void *, size_t, void *sentinel) {
    Sentinel *s = static_cast<Sentinel *>(sentinel);
    BevSend *b = s->owner;
    std::free(s);
    if (b == nullptr) return;
    b->sentinel_ = nullptr;
    // Freed with the bufferevent (the socket may be closed already): end the
    // transfer without touching either.  Otherwise somebody drained the
    // input mid-transfer; the transfer goes on.
    void *cbarg = nullptr;
    bufferevent_getcb(b->bev_, nullptr, nullptr, nullptr, &cbarg);
    if (cbarg != b) {
        b->parked_ = false;
        b->finish(-ECANCELED, b->body_sent());
    }
}

}  // namespace evsf
