// event_driver.hpp -- runs a Job on a libevent event_base.
#pragma once

#include <cstdint>
#include <memory>

#include <event2/util.h>

#include "evsendfile.h"
#include "job.hpp"

struct event;

namespace evsf {

class Transfer {
public:
    // Allocates the transfer and its event for `base`; nothing runs yet, and
    // any thread may call it.  -ENOMEM, or -EINVAL for a base libevent refuses.
    // The job is the transfer's from here on, even on error.
    static int create(struct event_base *base, std::unique_ptr<Job> job, sf_done_cb done, void *arg,
                      Transfer **out) noexcept;
    // On base's thread: runs the first step here and now (a response that
    // leaves at once never touches epoll), then waits for EV_WRITE.  `done`
    // runs from the loop, never from inside begin(); begin() cannot fail.
    void begin() noexcept;
    // create() + begin().
    static int start(struct event_base *base, std::unique_ptr<Job> job, sf_done_cb done, void *arg,
                     Transfer **out) noexcept;
    // See sf_cancel.  A transfer that was created but never begun may be
    // cancelled too (it then never touched the socket).
    int cancel() noexcept;
    // See sf_cancel_all: cancels every transfer whose events are on `base`.
    static int cancel_all(struct event_base *base) noexcept;
    uint64_t body_sent() const { return job_->body_sent(); }
    ~Transfer();
    // Allocated by create() with alloc_bytes, with libevent's event after it.
    static void operator delete(void *p) noexcept { std::free(p); }

private:
    // One allocation per transfer: this object, then libevent's struct event
    // for EV_WRITE (sized at run time, event_get_struct_event_size(), and set
    // up with event_assign), so a libevent upgrade cannot break the layout.
    enum class Armed : uint8_t { None, Write, Read };
    Transfer() = default;
    static void on_ready(evutil_socket_t fd, short what, void *self) noexcept;
    struct event *write_ev() { return reinterpret_cast<struct event *>(reinterpret_cast<char *>(this) + sizeof *this); }
    struct event *event_of(Armed which);
    void wait_for(Armed which, bool timed = true) noexcept;
    void complete(int status) noexcept;

    std::unique_ptr<Job> job_;
    struct event *read_ev_ = nullptr;  // only after SF_STEP_READ (a pipe) or SF_STEP_SOURCE (disk)
    sf_done_cb done_ = nullptr;
    void *arg_ = nullptr;
    int early_status_ = 0;
    Armed armed_ = Armed::None;
    bool in_done_ = false;
    bool early_ = false;  // finished inside begin(): on_ready only reports it
    bool begun_ = false;  // begin() ran: the event may be known to the base
};

}  // namespace evsf
