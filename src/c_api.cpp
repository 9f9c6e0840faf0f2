// c_api.cpp -- the C ABI boundary.  Every exported function lives here; each
// one converts handles and keeps C++ exceptions from crossing into C.
#include <cerrno>
#include <cstring>
#include <memory>
#include <new>

#include "bufferevent_driver.hpp"
#include "errors.hpp"
#include "event_driver.hpp"
#include "evsendfile.h"
#include "job.hpp"
#include "platform.hpp"
#include "worker.hpp"

using evsf::BevSend;
using evsf::Job;
using evsf::Transfer;
using evsf::Worker;

namespace {

Job *job_of(sf_job_t *j) { return reinterpret_cast<Job *>(j); }
const Job *job_of(const sf_job_t *j) { return reinterpret_cast<const Job *>(j); }
Transfer *transfer_of(sf_transfer_t *t) { return reinterpret_cast<Transfer *>(t); }
const Transfer *transfer_of(const sf_transfer_t *t) { return reinterpret_cast<const Transfer *>(t); }
Worker *worker_of(sf_worker_t *w) { return reinterpret_cast<Worker *>(w); }

// Runs `f`; any exception becomes -ENOMEM (the only thing the STL throws here).
template <typename F>
int guarded(F &&f) noexcept {
    try {
        return f();
    } catch (const std::bad_alloc &) {
        return -ENOMEM;
    } catch (...) {
        return -EIO;
    }
}

}  // namespace

extern "C" {

unsigned sf_version(void) { return (SF_VERSION_MAJOR << 16) | (SF_VERSION_MINOR << 8) | SF_VERSION_PATCH; }

#define SF_STR2(x) #x
#define SF_STR(x) SF_STR2(x)
const char *sf_version_text(void) {
    return SF_STR(SF_VERSION_MAJOR) "." SF_STR(SF_VERSION_MINOR) "." SF_STR(SF_VERSION_PATCH);
}

const char *sf_err_text(int err) { return evsf::error_text(err); }

const char *sf_err_name(int err) { return evsf::error_name(err); }

void sf_options_init(sf_options_t *opts) {
    if (opts == nullptr) return;
    std::memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->max_chunk = SF_DEFAULT_MAX_CHUNK;
}

int sf_can_use(int sock, unsigned flags) { return Job::can_use(sock, flags); }

int sf_peer_flags(int sock, unsigned flags) { return Job::peer_flags(sock, flags); }

int sf_job_new(int sock, const sf_region_t *region, const sf_options_t *opts, sf_job_t **out) {
    if (out == nullptr) return -EINVAL;
    return guarded([&] {
        std::unique_ptr<Job> job;
        int err = Job::create(sock, region, opts, job);
        if (err == 0) *out = reinterpret_cast<sf_job_t *>(job.release());
        return err;
    });
}

int sf_job_step(sf_job_t *job) {
    if (job == nullptr) return -EINVAL;
    return guarded([&] { return job_of(job)->step(); });
}

uint64_t sf_job_body_sent(const sf_job_t *job) { return job ? job_of(job)->body_sent() : 0; }

int sf_job_progressed(sf_job_t *job) { return job && job_of(job)->idle_progressed() ? 1 : 0; }

int sf_job_source_fd(const sf_job_t *job) { return job ? job_of(job)->source_fd() : -1; }

int sf_job_wait_fd(const sf_job_t *job) { return job ? job_of(job)->wait_fd() : -1; }

void sf_job_free(sf_job_t *job) { delete job_of(job); }

int sf_send_async(struct event_base *base, int sock, const sf_region_t *region, const sf_options_t *opts,
                  sf_done_cb done, void *arg, sf_transfer_t **out) {
    if (base == nullptr || region == nullptr || done == nullptr) return -EINVAL;
    sf_job_t *job = nullptr;
    int err = sf_job_new(sock, region, opts, &job);
    return err != 0 ? err : sf_job_start(job, base, done, arg, out);
}

int sf_job_start(sf_job_t *job, struct event_base *base, sf_done_cb done, void *arg, sf_transfer_t **out) {
    std::unique_ptr<Job> owned(job_of(job));  // ours from here on, whatever happens
    if (job == nullptr || base == nullptr || done == nullptr) return -EINVAL;
    return guarded([&] {
        Transfer *t = nullptr;
        int err = Transfer::start(base, std::move(owned), done, arg, &t);
        if (err == 0 && out != nullptr) *out = reinterpret_cast<sf_transfer_t *>(t);
        return err;
    });
}

int sf_cancel(sf_transfer_t *t) {
    if (t == nullptr) return -EINVAL;
    return guarded([&] {
        if (BevSend *b = BevSend::lookup(t)) return b->cancel();
        return transfer_of(t)->cancel();
    });
}

int sf_cancel_all(struct event_base *base) {
    if (base == nullptr) return -EINVAL;
    // Bufferevent transfers first: each puts its bufferevent back and
    // cancels its own engine transfer, which the sweep below must not orphan.
    return guarded([&] { return BevSend::cancel_all(base) + Transfer::cancel_all(base); });
}

uint64_t sf_transfer_body_sent(const sf_transfer_t *t) {
    if (t == nullptr) return 0;
    if (const BevSend *b = BevSend::lookup(t)) return b->body_sent();
    return transfer_of(t)->body_sent();
}

int sf_bufferevent_send(struct bufferevent *bev, const sf_region_t *region, const sf_options_t *opts,
                        sf_done_cb done, void *arg, sf_transfer_t **out) {
    return guarded([&] {
        BevSend *b = nullptr;
        int err = BevSend::start(bev, region, opts, done, arg, &b);
        if (err == 0 && out != nullptr) *out = reinterpret_cast<sf_transfer_t *>(b);
        return err;
    });
}

int sf_worker_new(sf_worker_t **out) {
    if (out == nullptr) return -EINVAL;
    return guarded([&] {
        Worker *w = nullptr;
        int err = Worker::create(&w);
        if (err == 0) *out = reinterpret_cast<sf_worker_t *>(w);
        return err;
    });
}

int sf_worker_submit(sf_worker_t *w, int sock, const sf_region_t *region, const sf_options_t *opts,
                     sf_done_cb done, void *arg, uint64_t *ticket) {
    if (w == nullptr || region == nullptr || done == nullptr) return -EINVAL;
    sf_job_t *job = nullptr;
    int err = sf_job_new(sock, region, opts, &job);
    return err != 0 ? err : sf_worker_submit_job(w, job, done, arg, ticket);
}

int sf_worker_submit_job(sf_worker_t *w, sf_job_t *job, sf_done_cb done, void *arg, uint64_t *ticket) {
    std::unique_ptr<Job> owned(job_of(job));  // ours from here on, whatever happens
    if (w == nullptr || job == nullptr || done == nullptr) return -EINVAL;
    return guarded([&] { return worker_of(w)->submit(std::move(owned), done, arg, ticket); });
}

int sf_worker_cancel(sf_worker_t *w, uint64_t ticket) {
    if (w == nullptr) return -EINVAL;
    return guarded([&] { return worker_of(w)->cancel(ticket); });
}

void sf_worker_free(sf_worker_t *w) {
    guarded([&] {
        delete worker_of(w);
        return 0;
    });
}

}  // extern "C"
