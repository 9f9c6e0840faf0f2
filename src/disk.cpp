// disk.cpp -- the disk threads behind DiskRead (see disk.hpp).  Plain
// pthread primitives with static initialisers: nothing to construct at
// load, nothing destroyed at exit while a detached thread may still wait.
#include "disk.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <new>

#include "alloc.hpp"
#include "platform.hpp"
#include "syscalls.h"

namespace evsf {

struct DiskPool {
    static constexpr int kMaxThreads = 4;

    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    DiskRead *head = nullptr, *tail = nullptr;
    DiskRead *in_hand[kMaxThreads] = {};  // what each thread is reading (re-queued in a fork child)
    int queued = 0;
    int threads = 0;  // started
    int idle = 0;     // waiting for work
    int max_threads = kMaxThreads;
    int max_queue = 1024;
    pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

    void push_front(DiskRead *r) {
        r->next_ = head;
        head = r;
        if (tail == nullptr) tail = r;
        queued++;
    }
    void push_back(DiskRead *r) {
        r->next_ = nullptr;
        if (tail) tail->next_ = r; else head = r;
        tail = r;
        queued++;
    }
    DiskRead *pop() {
        DiskRead *r = head;
        head = r->next_;
        if (head == nullptr) tail = nullptr;
        r->next_ = nullptr;
        queued--;
        return r;
    }
    bool start_thread();  // under mu
    void after_fork_in_child();
    static void *run(void *slot) noexcept;
};

namespace {

DiskPool g_pool;

void atfork_prepare() { pthread_mutex_lock(&g_pool.mu); }
void atfork_parent() { pthread_mutex_unlock(&g_pool.mu); }
void atfork_child() { g_pool.after_fork_in_child(); }

void register_atfork() { pthread_atfork(atfork_prepare, atfork_parent, atfork_child); }

}  // namespace

// The child has none of the parent's threads: what they held is queued
// again, and the child's first need starts new ones -- except a send that
// was in progress: the child's copy of that transfer stopped somewhere in
// the middle of a syscall's bookkeeping, so it ends there (-ECANCELED).
void DiskPool::after_fork_in_child() {
    pthread_mutex_init(&mu, nullptr);
    pthread_cond_init(&cv, nullptr);
    for (DiskRead *&r : in_hand) {
        if (r && r->stage_.load(std::memory_order_relaxed) == DiskRead::kThen) {
            r->result_ = -ECANCELED;
            r->stage_.store(DiskRead::kOver, std::memory_order_relaxed);
            r->done_.store(true, std::memory_order_relaxed);
            platform_notify(r->efd_);
            r->unref();
        } else if (r) {
            push_front(r);
        }
        r = nullptr;
    }
    threads = 0;
    idle = 0;
    if (queued > 0) start_thread();
}

bool DiskPool::start_thread() {
    pthread_once(&atfork_once, register_atfork);
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0) return false;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    // The new thread inherits this mask: every signal blocked from its
    // first instruction (signals are the application's business).
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pthread_t tid;
    intptr_t slot = threads;
    bool ok = pthread_create(&tid, &attr, run, reinterpret_cast<void *>(slot)) == 0;
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    pthread_attr_destroy(&attr);
    if (ok) threads++;
    return ok;
}

void *DiskPool::run(void *slot_arg) noexcept {
    int slot = static_cast<int>(reinterpret_cast<intptr_t>(slot_arg));
    DiskPool &p = g_pool;
    pthread_mutex_lock(&p.mu);
    for (;;) {
        while (p.head == nullptr) {
            p.idle++;
            pthread_cond_wait(&p.cv, &p.mu);
            p.idle--;
        }
        DiskRead *r = p.pop();
        p.in_hand[slot] = r;
        pthread_mutex_unlock(&p.mu);
        if (r->work()) {  // more to do: go on with it, unless others wait (then take turns)
            pthread_mutex_lock(&p.mu);
            p.in_hand[slot] = nullptr;
            p.push_back(r);
            continue;
        }
        // Flag first, then the wake-up: a reactor woken by the write always
        // finds the flag (an edge-triggered one gets no second chance).
        r->done_.store(true, std::memory_order_release);
        platform_notify(r->efd_);
        pthread_mutex_lock(&p.mu);
        p.in_hand[slot] = nullptr;
        pthread_mutex_unlock(&p.mu);
        r->unref();  // the last thing: from here on the transfer owns r alone
        pthread_mutex_lock(&p.mu);
    }
    return nullptr;
}

// On a disk thread: the read, then `then`, again (without a read) while it
// says kMore and no other work waits for a thread.  True: more to do, but
// other work waits (the caller queues this behind it).
bool DiskRead::work() noexcept {
    int saved = errno;
    for (;;) {
        if (len_ > 0) evsf_sys.fetch(fd_, off_, len_, ahead_);  // errors: the send reports them
        len_ = 0;  // once: the transfer's `then` reads the rest itself
        int waiting = kWaiting;
        if (!stage_.compare_exchange_strong(waiting, kThen, std::memory_order_acq_rel)) break;
        result_ = then_(ctx_);
        // kWaiting again when there is more: drop() may now stop it.
        stage_.store(result_ == kMore ? kWaiting : kOver, std::memory_order_release);
        if (result_ != kMore) break;
        pthread_mutex_lock(&g_pool.mu);
        bool others = g_pool.head != nullptr;
        pthread_mutex_unlock(&g_pool.mu);
        if (others) {
            errno = saved;
            return true;
        }
    }
    errno = saved;
    return false;
}

DiskRead *DiskRead::create(int fd) noexcept {
    void *mem = alloc_bytes(sizeof(DiskRead));
    if (mem == nullptr) return nullptr;
    DiskRead *r = new (mem) DiskRead();
    int dup;
    do {
        dup = evsf_sys.fcntl(fd, F_DUPFD_CLOEXEC, 0);
    } while (dup < 0 && errno == EINTR);
    r->fd_ = dup;
    r->efd_ = dup < 0 ? -1 : platform_notifier_new();
    if (r->efd_ < 0) {
        r->unref();
        return nullptr;
    }
    return r;
}

void DiskRead::unref() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    if (fd_ >= 0) ::close(fd_);
    if (efd_ >= 0) ::close(efd_);
    this->~DiskRead();
    std::free(this);
}

bool DiskRead::submit(uint64_t off, uint64_t len, uint64_t ahead, Then then, void *ctx) noexcept {
    off_ = off;
    len_ = len;
    ahead_ = ahead;
    then_ = then;
    ctx_ = ctx;
    result_ = 0;
    done_.store(false, std::memory_order_relaxed);
    stage_.store(kWaiting, std::memory_order_relaxed);
    DiskPool &p = g_pool;
    pthread_mutex_lock(&p.mu);
    bool ok = p.queued < p.max_queue;
    if (ok && p.queued >= p.idle && p.threads < p.max_threads) p.start_thread();
    ok = ok && p.threads > 0;
    if (ok) {
        refs_.fetch_add(1, std::memory_order_relaxed);
        p.push_back(this);
        pthread_cond_signal(&p.cv);
    }
    pthread_mutex_unlock(&p.mu);
    return ok;
}

bool DiskRead::ready() noexcept {
    // Drained at every look: a wake-up that raced ahead of an earlier look
    // must not leave the fd readable (a level-triggered loop would spin).
    platform_drain(efd_);
    return done_.load(std::memory_order_acquire);
}

void DiskRead::drop() noexcept {
    // A `then` not begun never will; one running (a non-blocking send of
    // one chunk) is waited for: it uses the transfer, which is about to go.
    // After it, a thread that would go on to the next chunk finds kDropped.
    stop_.store(true, std::memory_order_relaxed);
    for (;;) {
        int stage = kWaiting;
        if (stage_.compare_exchange_strong(stage, kDropped, std::memory_order_acq_rel) || stage != kThen) break;
        sched_yield();
    }
    // A read that is over leaves its thread a few instructions from letting
    // go (notify, unref): wait for those, so this transfer's fds are closed
    // before its completion is reported.  One still reading (a cancel) is
    // not waited for: it ends on its own fd and frees everything itself.
    if (done_.load(std::memory_order_acquire))
        while (refs_.load(std::memory_order_acquire) != 1) sched_yield();
    unref();
}

}  // namespace evsf

#ifdef EVSF_FAULT_SEAM
extern "C" void evsf_disk_limits(int threads, int queue) {
    using evsf::g_pool;
    pthread_mutex_lock(&g_pool.mu);
    if (threads >= 1 && threads <= evsf::DiskPool::kMaxThreads) g_pool.max_threads = threads;
    if (queue >= 0) g_pool.max_queue = queue;
    pthread_mutex_unlock(&g_pool.mu);
}

extern "C" int evsf_disk_pending(void) {
    using evsf::g_pool;
    pthread_mutex_lock(&g_pool.mu);
    int n = g_pool.queued;
    for (evsf::DiskRead *r : g_pool.in_hand) n += r != nullptr;
    pthread_mutex_unlock(&g_pool.mu);
    return n;
}

extern "C" int evsf_disk_threads(void) {
    using evsf::g_pool;
    pthread_mutex_lock(&g_pool.mu);
    int n = g_pool.threads;
    pthread_mutex_unlock(&g_pool.mu);
    return n;
}
#endif
