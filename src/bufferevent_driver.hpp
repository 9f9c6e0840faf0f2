// bufferevent_driver.hpp -- sf_bufferevent_send: a Job on a bufferevent's
// socket, with the bufferevent parked (callbacks saved, events disabled)
// while the engine owns the socket, and restored before `done` runs.
// Only libevent's public API is used.
#pragma once

#include <cstdint>
#include <cstdlib>

#include "evsendfile.h"

struct bufferevent;
struct event_base;
struct evbuffer;

namespace evsf {

struct Sentinel;

class BevSend {
public:
    // See sf_bufferevent_send in evsendfile.h.
    static int start(struct bufferevent *bev, const sf_region_t *region, const sf_options_t *opts,
                     sf_done_cb done, void *arg, BevSend **out);
    // The BevSend behind a handle sf_bufferevent_send gave out, or nullptr
    // (then the handle is an sf_send_async transfer).  Same thread as start.
    static BevSend *lookup(const sf_transfer_t *t);
    int cancel();
    // Cancels this thread's bufferevent transfers on `base` (sf_cancel_all).
    static int cancel_all(struct event_base *base);
    uint64_t body_sent() const;

    // Allocated through the seam (alloc.hpp): plain delete frees it.
    static void operator delete(void *p) noexcept { std::free(p); }

private:
    BevSend() = default;
    ~BevSend();
    bool bev_alive() const;  // false once the user called bufferevent_free
    int park();
    void restore();
    int start_engine();
    void finish(int status, uint64_t body_sent);
    void drop_engine();
    void orphan_sentinel();
    static void on_written(struct bufferevent *bev, void *self);
    static void on_event(struct bufferevent *bev, short what, void *self);
    static void on_done(sf_transfer_t *t, int status, uint64_t body_sent, void *self);
    static void on_sentinel_freed(const void *data, size_t len, void *sentinel);

    struct bufferevent *bev_ = nullptr;
    sf_job_t *job_ = nullptr;            // before the engine starts
    sf_transfer_t *transfer_ = nullptr;  // while the engine runs
    Sentinel *sentinel_ = nullptr;       // notices bufferevent_free (see the .cpp)
    sf_done_cb done_ = nullptr;
    void *arg_ = nullptr;
    // The user's bufferevent state, put back before done runs.
    void (*readcb_)(struct bufferevent *, void *) = nullptr;
    void (*writecb_)(struct bufferevent *, void *) = nullptr;
    void (*eventcb_)(struct bufferevent *, short, void *) = nullptr;
    void *cbarg_ = nullptr;
    short enabled_ = 0;
    bool in_done_ = false;
    bool parked_ = false;  // our callbacks are installed and the events parked
};

}  // namespace evsf
