// job.cpp -- the transfer engine.  Every byte the library writes is written
// here, through the syscall seam (syscalls.h), in this order: head, region,
// tail.  The engine never blocks on the socket: it returns SF_STEP_WRITE.
#include "job.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>

#include "peer.hpp"
#include "platform.hpp"
#include "socket_claims.hpp"
#include "syscalls.h"

namespace evsf {

namespace {

std::atomic<bool> g_sendfile_enosys{false};
std::atomic<bool> g_resident_enosys{false};  // the kernel cannot tell residency: always send inline
// Most bytes one probe asks about and one disk-thread read brings in.
constexpr uint64_t kDiskChunk = SF_DEFAULT_MAX_CHUNK;
// How far past a chunk it reads in (a cold transfer's first) the disk thread
// asks the kernel to read ahead, so the sends that follow find the next
// chunks on their way.  When every chunk was read in, it took one cold
// download from 1.1 to 1.9 GB/s (8 MiB measured the same); it is page cache
// a slow reader's transfer holds before it needs it.
constexpr uint64_t kFetchAhead = 2 * kDiskChunk;
// hand_over_chunk(): the disk threads cannot take the chunk, send it here.
constexpr int kSendHere = INT_MAX;
// read_source() with nowait: the next byte is not in the page cache, or the
// file system cannot say so (a nowait read there is refused).
constexpr int kNotResident = INT_MAX - 1;
constexpr int kCannotTell = INT_MAX - 2;

// The first published sf_options_t ends after `flags`.
constexpr size_t kOptionsV1Size = offsetof(sf_options_t, flags) + sizeof(unsigned);


// sendfile refused this source/socket pair: keep going with pread + send.
bool is_fallback_errno(int err) {
    switch (err) {
    case EINVAL: case ENOSYS: case EOPNOTSUPP: case EPERM: case EOVERFLOW:
    case ESOCKTNOSUPPORT: case EAFNOSUPPORT:
        return true;
    default:
        return false;
    }
}

int iovecs_size(const struct iovec *iov, int n, size_t &total) {
    if (n < 0 || (n > 0 && iov == nullptr)) return -EINVAL;
    total = 0;
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len > 0 && iov[i].iov_base == nullptr) return -EINVAL;
        total += iov[i].iov_len;
        if (total < iov[i].iov_len) return -EINVAL;  // overflow
    }
    return 0;
}

void copy_iovecs(const struct iovec *iov, int n, char *out) {
    for (int i = 0; i < n; i++) {
        if (iov[i].iov_len > 0) std::memcpy(out, iov[i].iov_base, iov[i].iov_len);
        out += iov[i].iov_len;
    }
}

// A non-blocking stream socket?  One syscall less for TCP: IPPROTO_TCP
// already means a stream.
int verify_socket(int sock, bool &is_tcp) {
    int fl = evsf_sys.fcntl(sock, F_GETFL, 0);
    if (fl < 0) return -errno;
    int proto = 0;
    socklen_t len = sizeof proto;
    if (evsf_sys.getsockopt(sock, SOL_SOCKET, SO_PROTOCOL, &proto, &len) != 0) return -errno;
    is_tcp = proto == IPPROTO_TCP;
    if (!is_tcp) {
        int type = 0;
        socklen_t tl = sizeof type;
        if (evsf_sys.getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &tl) != 0) return -errno;
        if (type != SOCK_STREAM) return -EPROTOTYPE;
    }
    return fl & O_NONBLOCK ? 0 : SF_EBLOCKING;
}

// SF_TRUSTED skips verify_socket and takes the socket for TCP: MSG_MORE and
// a cork that fails are harmless on any other stream socket.
int check_socket(int sock, unsigned flags, bool &is_tcp) {
    if (flags & SF_TRUSTED) {
        if (sock < 0) return -EBADF;  // free to check: no fd is negative
        is_tcp = true;
    } else if (int err = verify_socket(sock, is_tcp)) {
        return err;
    }
    if ((flags & SF_TLS) && !platform_ktls_tx_active(sock)) return SF_ENOKTLS;
    return 0;
}

bool cork_already_on(int sock) {
    int on = 0;
    socklen_t len = sizeof on;
    return evsf_sys.getsockopt(sock, IPPROTO_TCP, TCP_CORK, &on, &len) == 0 && on != 0;
}

// This thread's copy buffer (SF_COPY_BUFFER_SIZE bytes, made on first use,
// freed when the thread exits), or nullptr when it cannot be allocated.  The
// copy path and the small path use it within one step; nothing in it
// outlives the step.
static_assert(SF_SMALL_BODY_MAX <= SF_COPY_BUFFER_SIZE, "a small body fits the thread buffer");
char *thread_buffer() noexcept {
    thread_local Bytes t_buf;
    if (!t_buf) t_buf = alloc_buffer(SF_COPY_BUFFER_SIZE);
    return t_buf.get();
}

}  // namespace

int normalize_options(const sf_options_t *in, sf_options_t &out) noexcept {
    std::memset(&out, 0, sizeof out);
    if (in == nullptr) {
        out.struct_size = sizeof out;
        return 0;
    }
    if (in->struct_size < kOptionsV1Size) return -EINVAL;
    std::memcpy(&out, in, std::min(in->struct_size, sizeof out));
    out.struct_size = sizeof out;
    return 0;
}

// EVSENDFILE_NO_SENDFILE is read once, when the library is loaded (a
// getenv per transfer cost a scan of the environment each time).
const bool g_env_no_sendfile = [] {
    const char *v = std::getenv("EVSENDFILE_NO_SENDFILE");
    return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}();

bool Job::sendfile_allowed(unsigned flags) noexcept {
    if ((flags & SF_NO_SENDFILE) || g_env_no_sendfile) return false;
    return !g_sendfile_enosys.load(std::memory_order_relaxed);
}

int Job::can_use(int sock, unsigned flags) noexcept {
    bool is_tcp = false;
    int err = check_socket(sock, flags & ~SF_TRUSTED, is_tcp);
    if (err == -EBADF) return err;
    if (err != 0) return 0;  // not a socket, not a stream, blocking, no kTLS
    sockaddr_storage peer;
    socklen_t len = sizeof peer;
    if (evsf_sys.getpeername(sock, reinterpret_cast<sockaddr *>(&peer), &len) != 0) return 0;
    return sendfile_allowed(flags) && platform_has_sendfile() ? 1 : 0;
}

int Job::peer_flags(int sock, unsigned flags) noexcept {
    if (!sendfile_allowed(flags)) return static_cast<int>(flags | SF_NO_SENDFILE);
    BodyMethod m;
    if (int err = ask_peer(sock, flags, m)) return err;
    return static_cast<int>(flags | (m == BodyMethod::Copy ? SF_NO_SENDFILE : SF_FORCE_SENDFILE));
}

int Job::create(int sock, const sf_region_t *region, const sf_options_t *user_opts,
                std::unique_ptr<Job> &out) noexcept {
    if (region == nullptr) return -EINVAL;
    sf_options_t opts;
    int err = normalize_options(user_opts, opts);
    if (err != 0) return err;

    bool is_tcp = false;
    if ((err = check_socket(sock, opts.flags, is_tcp)) != 0) return err;
    size_t head_len = 0, tail_len = 0;
    if ((err = iovecs_size(opts.head, opts.head_count, head_len)) != 0) return err;
    if ((err = iovecs_size(opts.tail, opts.tail_count, tail_len)) != 0) return err;
    if (head_len + tail_len < head_len || head_len + tail_len > SIZE_MAX - sizeof(Job)) return -EINVAL;
    // One allocation: the Job, then the head's bytes, then the tail's.
    void *mem = alloc_bytes(sizeof(Job) + head_len + tail_len);
    if (mem == nullptr) return -ENOMEM;
    std::unique_ptr<Job> job(new (mem) Job());
    job->head_len_ = head_len;
    job->tail_len_ = tail_len;
    copy_iovecs(opts.head, opts.head_count, job->head());
    copy_iovecs(opts.tail, opts.tail_count, job->tail());
    job->sock_ = sock;
    job->is_tcp_ = is_tcp;
    if ((err = claim_socket(sock)) != 0) return err;  // another job is on this socket
    job->claimed_ = true;
    if ((err = job->src_.open(*region, !(opts.flags & SF_TRUSTED),
                              opts.flags & SF_KNOWN_SIZE ? &opts.file_size : nullptr)) != 0)
        return err;

    job->next_offset_ = job->src_.offset();
    job->unread_ = job->src_.count();
    job->max_chunk_ = opts.max_chunk ? opts.max_chunk : SF_DEFAULT_MAX_CHUNK;
    job->idle_timeout_ms_ = opts.idle_timeout_ms;
    job->shut_wr_ = (opts.flags & SF_SHUT_WR) != 0;

    bool sendfile_ok = sendfile_allowed(opts.flags);
    if (job->src_.kind() != SourceKind::Regular) {
        job->method_ = Method::Copy;
    } else if (job->unread_ <= SF_SMALL_BODY_MAX) {
        job->method_ = Method::Small;
    } else {
        // Same-host TCP peers take the copy path (peer.hpp).
        job->method_ = sendfile_ok && method_for_peer(sock, opts.flags) == BodyMethod::Sendfile ? Method::Sendfile
                                                                                               : Method::Copy;
    }
    job->probe_ = job->method_ != Method::Small && job->src_.kind() == SourceKind::Regular &&
                  !(opts.flags & SF_DISK_INLINE);
    if (job->probe_) {  // the slot holds the disk reads from now on (buf_ is still empty)
        job->buf_.~Bytes();
        job->disk_ = nullptr;
    }
    // A head alone needs no cork: it goes with MSG_MORE and the first sendfile
    // bytes join it.  Only a tail must not be split from the body's end.
    job->want_cork_ = job->is_tcp_ && job->method_ != Method::Small && !(opts.flags & SF_NO_CORK) &&
                      job->tail_len_ != 0;
    out = std::move(job);
    return 0;
}

Job::~Job() {
    release();
    if (!probe_) buf_.~Bytes();
}

void Job::release() noexcept {
    // First: a disk thread sending for this job finishes (a read in flight
    // finishes on the pool's own fd, then frees it, and sends nothing).
    if (probe_ && disk_) disk_->drop();
    if (probe_) disk_ = nullptr;
    if (corked_) set_cork(false);  // push whatever the cork still holds
    fetching_ = false;
    src_.close();
    if (claimed_) release_socket(sock_);
    claimed_ = false;
}

void Job::set_cork(bool on) noexcept {
    int v = on ? 1 : 0;
    // An optimisation only: failing never fails the transfer.  Uncorking is
    // tried once: after release() the socket is the caller's (maybe closed).
    if (evsf_sys.setsockopt(sock_, IPPROTO_TCP, TCP_CORK, &v, sizeof v) == 0 || !on) corked_ = on;
}

int Job::step() noexcept {
    if (finished_) return result_;
    if (!started_) {
        started_ = true;
        if (want_cork_ && !cork_already_on(sock_)) set_cork(true);
    }
    int r = run();
    if (r <= 0) {
        finish(r);
        r = result_;  // SF_SHUT_WR's shutdown may have failed
    }
    // The send queue's level where the wait starts: after EAGAIN, and after
    // a used-up budget too (the socket may have filled on the last bytes).
    if ((r == SF_STEP_WRITE || r == SF_STEP_YIELD) && idle_timeout_ms_ != 0 &&
        evsf_sys.outq(sock_, &outq_mark_) != 0)
        outq_mark_ = -1;
    return r;
}

bool Job::idle_progressed() noexcept {
    int now = 0;
    if (finished_ || outq_mark_ < 0 || evsf_sys.outq(sock_, &now) != 0) return false;
    bool moved = now < outq_mark_;
    outq_mark_ = now;
    return moved;
}

// The end of the transfer: done with the socket (uncorked, free for the next
// job).  The fds a loop may still be watching -- a library-opened source,
// the disk wake-up fd -- stay open until release(): the libevent driver
// calls it after removing its events, a stepping caller by sf_job_free, so
// no loop ever holds a closed (maybe already reused) fd number.
void Job::finish(int result) noexcept {
    finished_ = true;
    if (!probe_) buf_.reset();
    if (corked_) set_cork(false);  // push whatever the cork still holds
    // SF_SHUT_WR: the FIN right behind the last byte, before done runs.
    if (shut_wr_ && result == SF_STEP_DONE && evsf_sys.shutdown(sock_, SHUT_WR) != 0) result = -errno;
    result_ = result;
    if (claimed_) release_socket(sock_);
    claimed_ = false;
}

bool Job::body_complete() const noexcept { return buf_pos_ == buf_len_ && (unread_ == 0 || eof_); }

int Job::run() noexcept {
    // A disk thread has this job: nothing else here may be read until it is done.
    if (fetching_ && !disk_->ready()) return SF_STEP_SOURCE;
    if (method_ == Method::Small) return run_small();
    // The copy path of a regular file writes the head with the first body
    // bytes (copy_some): one writev, one packet, a syscall less per response.
    int r = 0;
    if (!(method_ == Method::Copy && src_.kind() == SourceKind::Regular && !body_complete()) &&
        (r = send_pending(head(), head_len_, head_pos_, true)) != 0)
        return r;
    if (method_ == Method::Sendfile && !body_complete()) {
        SigpipeGuard guard;  // one mask change per step, not per sendfile call
        r = move_body(&guard);
    } else {
        r = move_body(nullptr);
    }
    if (r != 0) return r;
    return send_pending(tail(), tail_len_, tail_pos_, false);
}

// Up to max_chunk_ body bytes.  `guard` is set while the method is Sendfile
// (it only ever changes to Copy, never back).
int Job::move_body(SigpipeGuard *guard) noexcept {
    uint64_t budget = max_chunk_;
    while (!body_complete()) {
        if (budget == 0) return SF_STEP_YIELD;
        bool sendfile = method_ == Method::Sendfile;
        if (offload_) {  // found cold: the disk threads send it, chunk by chunk
            int r = hand_over_chunk();
            if (r == 0) continue;  // a chunk went out: the next one
            if (r != kSendHere) return r;
        } else if (probe_ && warm_left_ == 0 && (sendfile || no_nowait_)) {
            // Before taking bytes from the file (each sendfile, and each copy
            // read where a nowait read cannot tell): are they in memory?
            // Else the disk threads take over.  The copy path's own read is
            // its probe elsewhere (copy_some: a nowait read costs nothing
            // more; cachestat costs ~58 ns per page, bench/RESULTS.md).
            uint64_t ask = sendfile ? std::min<uint64_t>({unread_, budget, kMaxPerSyscall})
                                    : std::min<uint64_t>(unread_, SF_COPY_BUFFER_SIZE);
            if (int r = check_disk(ask)) return r;
        }
        int r = sendfile ? sendfile_some(budget, *guard) : copy_some(budget);
        if (r != 0) return r;
    }
    return 0;
}

// One sendmsg of iov[0..n) with MSG_NOSIGNAL | flags, EINTR retried: 0 with
// `written` bytes, SF_STEP_WRITE when the socket is full, or -errno.  Every
// byte the engine writes to the socket goes through here.
int Job::write_iov(struct iovec *iov, int n, int flags, size_t &written) noexcept {
    struct msghdr msg = {};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    for (;;) {
        ssize_t r = evsf_sys.sendmsg(sock_, &msg, flags | MSG_NOSIGNAL);
        if (r >= 0) {
            written = static_cast<size_t>(r);
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return SF_STEP_WRITE;
        return -errno;
    }
}

// Sends bytes[pos..].  0 when all are out.
int Job::send_pending(const char *bytes, size_t len, size_t &pos, bool more) noexcept {
    int flags = more && is_tcp_ ? MSG_MORE : 0;
    while (pos < len) {
        struct iovec iov = {const_cast<char *>(bytes) + pos, len - pos};
        size_t n = 0;
        if (int r = write_iov(&iov, 1, flags, n)) return r;
        pos += n;
    }
    return 0;
}

// 0 with *got bytes (0 = EOF), SF_STEP_READ, or an error; with nowait also
// kNotResident or kCannotTell.
int Job::read_source(char *buf, size_t want, size_t &got, bool nowait) noexcept {
    for (;;) {
        ssize_t n = src_.kind() == SourceKind::Pipe
                        ? evsf_sys.read(src_.fd(), buf, want)
                        : evsf_sys.pread(src_.fd(), buf, want, static_cast<off_t>(next_offset_), nowait ? 1 : 0);
        if (n >= 0) {
            got = static_cast<size_t>(n);
            return 0;
        }
        if (errno == EINTR) continue;
        if (nowait && (errno == EAGAIN || errno == EWOULDBLOCK)) return kNotResident;
        if (nowait && (errno == EOPNOTSUPP || errno == EINVAL)) return kCannotTell;
        // Only a pipe, FIFO or device can be waited for (EV_READ): a file
        // that says EAGAIN cannot, so that is its error.
        if ((errno == EAGAIN || errno == EWOULDBLOCK) && src_.kind() == SourceKind::Pipe)
            return SF_STEP_READ;
        return -errno;
    }
}

// Reads the whole small body into `dst` (the thread's buffer); a file that
// ends early leaves truncated_ set and `len` short.
int Job::read_small_body(char *dst, size_t &len) noexcept {
    len = 0;
    while (unread_ > 0) {
        size_t n = 0;
        int r = read_source(dst + len, static_cast<size_t>(unread_), n);
        if (r != 0) return r < 0 ? r : -EIO;  // a regular file never says SF_STEP_READ
        if (n == 0) {
            truncated_ = true;  // send what exists, then report it
            unread_ = 0;
            break;
        }
        len += n;
        next_offset_ += n;
        unread_ -= n;
    }
    return 0;
}

// One writev of what is left of head, `body` and (unless the file was found
// short) tail; `body_out` is how many of the body's bytes it took.
int Job::write_small(const char *body, size_t body_len, size_t &body_out) noexcept {
    struct iovec iov[3];
    int n_iov = 0;
    if (head_pos_ < head_len_) iov[n_iov++] = {head() + head_pos_, head_len_ - head_pos_};
    if (body_len > 0) iov[n_iov++] = {const_cast<char *>(body), body_len};
    if (!truncated_ && tail_pos_ < tail_len_) iov[n_iov++] = {tail() + tail_pos_, tail_len_ - tail_pos_};
    body_out = 0;
    if (n_iov == 0) return 0;
    size_t n = 0;
    if (int r = write_iov(iov, n_iov, 0, n)) return r;
    // The bytes went in iov order: head, body, tail.
    size_t take = std::min(n, head_len_ - head_pos_);
    head_pos_ += take;
    n -= take;
    body_out = std::min(n, body_len);
    add_sent(body_out);
    tail_pos_ += n - body_out;
    return 0;
}

// Head, body and tail in one writev.  The body is read into the thread's
// buffer (no allocation per response); only bytes the socket did not take
// are copied into a buffer of the transfer's own, for the next step.
int Job::run_small() noexcept {
    size_t body = 0;
    if (!buf_ && unread_ > 0) {  // first step: the body is not read yet
        char *tb = thread_buffer();
        if (tb == nullptr) return -ENOMEM;
        size_t len = 0;
        if (int r = read_small_body(tb, len)) return r;
        int r = write_small(tb, len, body);
        if (r < 0) return r;
        if (body < len) {
            buf_ = alloc_buffer(len - body);
            if (!buf_) return -ENOMEM;
            std::memcpy(buf_.get(), tb + body, len - body);
            buf_len_ = len - body;
        }
        if (r != 0) return r;  // SF_STEP_WRITE
    }
    while (head_pos_ < head_len_ || buf_pos_ < buf_len_ || (!truncated_ && tail_pos_ < tail_len_)) {
        if (int r = write_small(buf_.get() + buf_pos_, buf_len_ - buf_pos_, body)) return r;
        buf_pos_ += body;
    }
    return truncated_ ? SF_ETRUNCATED : SF_STEP_DONE;
}

// 0: read or send the next `ask` bytes here (they are resident, or cannot
// be handed over); SF_STEP_SOURCE: found cold, the disk threads have the
// transfer from now on (offload_).  Never an error: a probe that fails only
// means the send itself runs here (and reports what the file says).
int Job::check_disk(uint64_t ask) noexcept {
    if (g_resident_enosys.load(std::memory_order_relaxed)) return 0;
    ask = std::min<uint64_t>(ask, kDiskChunk);  // the probe's cost grows with its range
    int res = evsf_sys.resident(src_.fd(), next_offset_, ask);
    if (res != 0) {
        if (res < 0 && errno == ENOSYS) g_resident_enosys.store(true, std::memory_order_relaxed);
        // Resident: not asked again for these bytes (a socket that takes a
        // few KiB per call must not cost a probe per call).
        if (res > 0) warm_left_ = static_cast<uint32_t>(ask);
        return 0;
    }
    offload_ = true;
    int r = hand_over_chunk();
    return r == kSendHere ? 0 : r;
}

// A transfer found cold: a disk thread sends its body (send_on_disk_thread,
// after reading the first chunk in), so its loop moves none of the body's
// bytes -- a request on another connection of that loop waits for no copy.
// 0 once the thread has sent the whole body; SF_STEP_SOURCE while it works;
// the thread's SF_STEP_WRITE (the socket is full: wait, then hand over
// again) or error; kSendHere when the pool cannot take it (the loop sends a
// chunk: blocking, but moving).  What is left of a chunk read in before is
// handed over without a read.
int Job::hand_over_chunk() noexcept {
    if (fetching_) {  // over: run() saw the disk read ready()
        fetching_ = false;
        int r = disk_->result();  // never kMore: the thread goes on itself
        full_ = r == SF_STEP_WRITE;
        return r;
    }
    // The loop woke us for writability -- or an edge-triggered reactor
    // (tokio) still holds the readiness from before the thread's EAGAIN, of
    // which it knows nothing.  Ask the socket: when it is still full, this
    // step says SF_STEP_WRITE having seen that itself, as the stepping API
    // promises (else the job would bounce between the thread and such a
    // loop without moving a byte).
    if (full_) {
        if (evsf_sys.writable(sock_) == 0) return SF_STEP_WRITE;
        full_ = false;  // room, or the call failed: the thread's send will tell
    }
    uint64_t len = warm_left_ == 0 ? next_chunk() : 0;
    // The thread waits for this chunk only, but asks the kernel for the next
    // ones too (readahead, not waited for); it reads the chunks after this
    // one itself, as it sends them (send_on_disk_thread).
    uint64_t ahead = len > 0 ? std::min(unread_ - len, kFetchAhead) : 0;
    if (disk_ == nullptr) disk_ = DiskRead::create(src_.fd());
    fetching_ = true;  // before the thread may look at this job (it reads flags in the same byte)
    if (disk_ != nullptr && disk_->submit(next_offset_, len, ahead, send_on_disk_thread, this)) return SF_STEP_SOURCE;
    fetching_ = false;
    return kSendHere;
}

// The next chunk of a cold transfer: its length, also set as warm_left_
// (the thread's budget: it sends no further than what it read in).
uint64_t Job::next_chunk() noexcept {
    uint64_t len = std::min({unread_, max_chunk_, kDiskChunk});
    warm_left_ = static_cast<uint32_t>(len);
    return len;
}

// DiskRead's `then`, on a disk thread: sends up to warm_left_ bytes with
// the loop's own code.  The first chunk was read in before (a cancel then
// costs no wait); after a whole chunk the thread goes on to the next
// (DiskRead::kMore) and reads it as it sends it: one read-in-then-send per
// chunk ran at 0.65x the inline speed, this at 1.0x (bench/RESULTS.md,
// "Cold files").  So the loop is woken only by a full socket, an error or
// the body's end.  Until ready() says the thread is done, nothing else
// touches this job (the loop only looks at the DiskRead; release() waits
// for this to return, and stops it between two syscalls).
int Job::send_on_disk_thread(void *self) noexcept {
    Job *job = static_cast<Job *>(self);
    int r;
    if (job->method_ != Method::Sendfile) {
        r = job->send_warm(job->warm_left_, nullptr);
    } else {
        SigpipeGuard guard;
        r = job->send_warm(job->warm_left_, &guard);
    }
    if (r != 0 || job->body_complete() || job->disk_->stopping()) return r;
    job->next_chunk();
    return DiskRead::kMore;
}

// On a disk thread: body bytes until `budget` is used up, the body is out
// or the transfer is being cancelled: 0, or the SF_STEP_* / error that
// stopped it.
int Job::send_warm(uint64_t budget, SigpipeGuard *guard) noexcept {
    while (budget > 0 && !body_complete() && !disk_->stopping()) {
        int r = method_ == Method::Sendfile ? sendfile_some(budget, *guard) : copy_some(budget);
        if (r != 0) return r;
    }
    return 0;
}

// 0 after progress (call again), SF_STEP_* to stop, or an error.
// The caller holds `guard` (SIGPIPE blocked) around it.
int Job::sendfile_some(uint64_t &budget, SigpipeGuard &guard) noexcept {
    // No further than what was probed or fetched (the probe covers at most kDiskChunk).
    uint64_t most = warm_left_ ? warm_left_ : kMaxPerSyscall;
    size_t ask = static_cast<size_t>(std::min<uint64_t>({unread_, budget, kMaxPerSyscall, most}));
    off_t off = static_cast<off_t>(next_offset_);
    ssize_t n = evsf_sys.sendfile(sock_, src_.fd(), &off, ask);
    int err = n < 0 ? errno : 0;
    if (err == EPIPE || (n >= 0 && static_cast<size_t>(n) < ask)) guard.may_have_raised();
    if (n > 0) {
        uint64_t moved = static_cast<uint64_t>(n);
        next_offset_ += moved;
        unread_ -= moved;
        add_sent(moved);
        budget -= std::min(budget, moved);
        warm_left_ -= static_cast<uint32_t>(std::min<uint64_t>(warm_left_, moved));
        return 0;
    }
    if (n == 0) return SF_ETRUNCATED;  // bytes are owed and the file has none left
    if (err == EINTR) return 0;
    if (err == EAGAIN || err == EWOULDBLOCK) return SF_STEP_WRITE;
    if (is_fallback_errno(err)) {
        if (err == ENOSYS) g_sendfile_enosys.store(true, std::memory_order_relaxed);
        method_ = Method::Copy;  // continue from next_offset_; the head is already out
        return 0;
    }
    return -err;
}

// The copy path for a regular file: read into this thread's buffer, send
// what the socket takes; bytes it did not take are read again next time
// (pread at next_offset_, from the page cache), so a transfer that waits for
// the socket holds no buffer.  10,000 slow copy-path transfers cost one
// SF_COPY_BUFFER_SIZE per thread, not 2.5 GiB.
int Job::copy_some(uint64_t &budget) noexcept {
    if (src_.kind() != SourceKind::Regular) return copy_some_buffered(budget);
    char *tb = thread_buffer();
    if (tb == nullptr) return -ENOMEM;
    // No further than what was probed or fetched (see sendfile_some).
    uint64_t most = warm_left_ ? warm_left_ : SF_COPY_BUFFER_SIZE;
    size_t want = static_cast<size_t>(std::min<uint64_t>({SF_COPY_BUFFER_SIZE, unread_, budget, most}));
    size_t got = 0;
    // On the loop, bytes not probed or fetched yet are read with nowait: the
    // read is the residency probe.  It stops short before a page that is not
    // in memory (those bytes go out, the next read finds it), and refuses
    // when the first one is not: then the disk threads take the rest
    // (move_body hands it over).  A disk thread has warm_left_ set: it waits.
    bool nowait = probe_ && warm_left_ == 0 && !no_nowait_;
    int r = read_source(tb, want, got, nowait);
    if (r == kNotResident || r == kCannotTell) {
        if (r == kNotResident) offload_ = true;
        else no_nowait_ = true;  // probed with resident() from now on
        return 0;                // nothing moved: move_body decides again
    }
    if (r == 0 && got == 0) r = SF_ETRUNCATED;  // bytes are owed and the file has none left
    if (r != 0) {  // the head goes out first all the same, as on every other path
        int h = send_pending(head(), head_len_, head_pos_, true);
        return h != 0 ? h : r;
    }
    int flags = is_tcp_ && tail_len_ != 0 ? MSG_MORE : 0;
    size_t sent = 0;
    while (sent < got) {  // what is left of the head, then the bytes read
        struct iovec iov[2];
        int n_iov = 0;
        size_t head_left = head_len_ - head_pos_;
        if (head_left > 0) iov[n_iov++] = {head() + head_pos_, head_left};
        iov[n_iov++] = {tb + sent, got - sent};
        size_t n = 0;
        if ((r = write_iov(iov, n_iov, flags, n)) != 0) break;  // full socket or error: the rest is re-read
        size_t h = std::min(n, head_left);
        head_pos_ += h;
        sent += n - h;
    }
    next_offset_ += sent;
    unread_ -= sent;
    add_sent(sent);
    budget -= std::min<uint64_t>(budget, sent);
    warm_left_ -= static_cast<uint32_t>(std::min<uint64_t>(warm_left_, sent));
    return r;
}

// Pipes, FIFOs, devices and files whose size lies cannot be read twice:
// what the socket did not take stays in the transfer's own buffer.
int Job::copy_some_buffered(uint64_t &budget) noexcept {
    if (buf_pos_ == buf_len_) {
        size_t want = SF_COPY_BUFFER_SIZE;
        if (unread_ != SF_COUNT_TO_EOF) want = static_cast<size_t>(std::min<uint64_t>(want, unread_));
        // Sized by the first read: later ones only ask for less, so a 40 KiB
        // body never holds a 256 KiB buffer.
        if (!buf_ && !(buf_ = alloc_buffer(want))) return -ENOMEM;
        size_t n = 0;
        int r = read_source(buf_.get(), want, n);
        if (r != 0) return r;
        if (n == 0) {
            if (unread_ != SF_COUNT_TO_EOF) return SF_ETRUNCATED;
            eof_ = true;
            return 0;
        }
        buf_pos_ = 0;
        buf_len_ = n;
        next_offset_ += n;
        if (unread_ != SF_COUNT_TO_EOF) unread_ -= n;
    }
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(buf_len_ - buf_pos_, budget));
    struct iovec iov = {buf_.get() + buf_pos_, chunk};
    int flags = is_tcp_ && tail_len_ != 0 ? MSG_MORE : 0;
    size_t n = 0;
    if (int r = write_iov(&iov, 1, flags, n)) return r;
    buf_pos_ += n;
    add_sent(static_cast<uint64_t>(n));
    budget -= std::min<uint64_t>(budget, static_cast<uint64_t>(n));
    return 0;
}

}  // namespace evsf
