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
    // Arms the first EV_WRITE; the job runs from the loop, never from here.
    static int start(struct event_base *base, std::unique_ptr<Job> job, sf_done_cb done, void *arg,
                     Transfer **out);
    // See sf_cancel.
    int cancel();
    uint64_t body_sent() const { return job_->body_sent(); }
    ~Transfer();
    // Allocated with room for trailing bytes (see create/start): plain delete frees it.
    static void operator delete(void *p) noexcept { ::operator delete(p); }

private:
    // One allocation per transfer: this object, then libevent's struct event
    // for EV_WRITE (sized at run time, event_get_struct_event_size(), and set
    // up with event_assign), so a libevent upgrade cannot break the layout.
    enum class Armed : uint8_t { None, Write, Read };
    Transfer() = default;
    static void on_ready(evutil_socket_t fd, short what, void *self);
    struct event *write_ev() { return reinterpret_cast<struct event *>(reinterpret_cast<char *>(this) + sizeof *this); }
    struct event *event_of(Armed which);
    void wait_for(Armed which);
    void complete(int status);

    std::unique_ptr<Job> job_;
    struct event *read_ev_ = nullptr;  // only for pipe sources that said SF_STEP_READ
    sf_done_cb done_ = nullptr;
    void *arg_ = nullptr;
    int early_status_ = 0;
    Armed armed_ = Armed::None;
    bool in_done_ = false;
    bool early_ = false;  // finished inside start(): on_ready only reports it
};

}  // namespace evsf
