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

private:
    Transfer() = default;
    static void on_ready(evutil_socket_t fd, short what, void *self);
    void wait_for(struct event *ev);
    void complete(int status);

    std::unique_ptr<Job> job_;
    struct event *write_ev_ = nullptr;
    struct event *read_ev_ = nullptr;  // only for pipe sources that said SF_STEP_READ
    struct event *armed_ = nullptr;
    sf_done_cb done_ = nullptr;
    void *arg_ = nullptr;
    bool in_done_ = false;
    bool early_ = false;  // finished inside start(): on_ready only reports it
    int early_status_ = 0;
};

}  // namespace evsf
