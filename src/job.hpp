// job.hpp -- the transfer engine: head, region, tail onto one socket, one
// step at a time, until the socket would block.  No event loop in here.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "alloc.hpp"
#include "disk.hpp"
#include "evsendfile.h"
#include "source.hpp"

namespace evsf {

class SigpipeGuard;

class Job {
public:
    // Validates everything (see sf_send_async in evsendfile.h); writes nothing.
    static int create(int sock, const sf_region_t *region, const sf_options_t *opts,
                      std::unique_ptr<Job> &out) noexcept;
    ~Job();
    // Allocated by create() with alloc_bytes, with room for head and tail after it.
    static void operator delete(void *p) noexcept { std::free(p); }
    Job(const Job &) = delete;
    Job &operator=(const Job &) = delete;

    // One SF_STEP_* value or a negative error.  Repeats its final answer.
    int step() noexcept;

    // Any time, also while a disk thread sends for this job (SF_STEP_SOURCE).
    uint64_t body_sent() const { return body_sent_.load(std::memory_order_relaxed); }
    int source_fd() const { return src_.fd(); }
    // The fd to wait for readability after SF_STEP_READ (the source) or
    // SF_STEP_SOURCE (the disk threads' wake-up fd).
    int wait_fd() const { return probe_ && disk_ ? disk_->wait_fd() : src_.fd(); }
    int sock() const { return sock_; }
    uint32_t idle_timeout_ms() const { return idle_timeout_ms_; }
    // For an idle timer that fired: did bytes leave the socket's send queue
    // since the last step that said SF_STEP_WRITE or YIELD (or the last call)?  A
    // reader that keeps reading slowly drains the queue without ever making
    // the socket writable again (Linux waits for a third of SO_SNDBUF).
    // Needs idle_timeout_ms: only then do steps note the queue's level.
    bool idle_progressed() noexcept;
    // Lets go of everything outside this object: uncorks the socket, lets
    // go of it, closes a library-opened source fd and the disk reads' fds.
    // A driver calls it once its events on those fds are removed, before
    // reporting completion; ~Job calls it too.  After this the job never
    // touches the socket again.
    void release() noexcept;

    // False when SF_NO_SENDFILE is in `flags`, env EVSENDFILE_NO_SENDFILE=1,
    // or sendfile was found to be ENOSYS earlier in this process.
    static bool sendfile_allowed(unsigned flags) noexcept;
    // sf_can_use: the socket checks of create(), a connected peer, and
    // sendfile_allowed().
    static int can_use(int sock, unsigned flags) noexcept;
    // sf_peer_flags: the body's method for this socket's peer, as a flag.
    static int peer_flags(int sock, unsigned flags) noexcept;

private:
    enum class Method : uint8_t { Small, Sendfile, Copy };

    Job()
        : buf_(), eof_(false), truncated_(false), is_tcp_(false), want_cork_(false), corked_(false), started_(false),
          finished_(false), probe_(false), fetching_(false), offload_(false), full_(false), no_nowait_(false), claimed_(false) {}
    // A Job and its copies of head and tail are one allocation: the head's
    // bytes, then the tail's, right after the object (see create()).
    char *head() { return reinterpret_cast<char *>(this + 1); }
    char *tail() { return head() + head_len_; }
    int run() noexcept;
    int run_small() noexcept;
    int read_small_body(char *dst, size_t &len) noexcept;
    int write_small(const char *body, size_t body_len, size_t &body_out) noexcept;
    int write_iov(struct iovec *iov, int n, int flags, size_t &written) noexcept;
    int send_pending(const char *bytes, size_t len, size_t &pos, bool more) noexcept;
    int move_body(SigpipeGuard *guard) noexcept;
    int sendfile_some(uint64_t &budget, SigpipeGuard &guard) noexcept;
    int copy_some(uint64_t &budget) noexcept;
    int copy_some_buffered(uint64_t &budget) noexcept;
    int check_disk(uint64_t ask) noexcept;
    int hand_over_chunk() noexcept;
    uint64_t next_chunk() noexcept;
    static int send_on_disk_thread(void *self) noexcept;
    int send_warm(uint64_t budget, SigpipeGuard *guard) noexcept;
    void add_sent(uint64_t n) noexcept {
        body_sent_.store(body_sent_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    int read_source(char *buf, size_t want, size_t &got, bool nowait = false) noexcept;
    bool body_complete() const noexcept;
    void set_cork(bool on) noexcept;
    void finish(int result) noexcept;

    // Ordered by size: this object is the library's whole per-transfer state
    // besides the driver (bench/footprint.c measures it).
    int sock_ = -1;
    int result_ = SF_STEP_WRITE;
    Source src_;
    size_t head_len_ = 0, tail_len_ = 0;
    size_t head_pos_ = 0, tail_pos_ = 0;
    uint64_t next_offset_ = 0;  // file offset of the next read / sendfile
    uint64_t unread_ = 0;       // region bytes not yet taken from the file (SF_COUNT_TO_EOF: unknown)
    std::atomic<uint64_t> body_sent_{0};  // one writer at a time (the loop, or the disk thread it handed over to)
    uint64_t max_chunk_ = SF_DEFAULT_MAX_CHUNK;
    // One slot, two uses that never meet (probe_ says which; bench/footprint.c
    // counts this object): the disk reads of a regular file sent in chunks
    // (created by its first cold chunk, disk.hpp), or the buffer of the small
    // path and of non-regular sources' copy path (bytes read, not yet sent).
    union {
        Bytes buf_;
        DiskRead *disk_;
    };
    size_t buf_pos_ = 0, buf_len_ = 0;
    uint32_t idle_timeout_ms_ = 0;
    int outq_mark_ = -1;        // send-queue bytes when the socket last said EAGAIN (-1: unknown)
    // Region bytes from next_offset_ on that were probed resident or fetched
    // (at most kDiskChunk): not probed again, and no read or sendfile past them.
    uint32_t warm_left_ = 0;
    Method method_ = Method::Copy;
    // Flags, packed (bench/footprint.c counts this object's size).  A disk
    // thread running send_on_disk_thread writes none of them.
    bool eof_ : 1;              // a stream source hit EOF (only legal with an unknown count)
    bool truncated_ : 1;        // the small path read fewer bytes than promised
    bool is_tcp_ : 1;
    bool want_cork_ : 1, corked_ : 1;
    bool started_ : 1;
    bool finished_ : 1;
    bool probe_ : 1;            // a regular file sent in chunks, SF_DISK_INLINE not given
    bool fetching_ : 1;         // a chunk is in the disk threads' hands: the job is theirs until ready()
    bool offload_ : 1;          // found cold: the disk threads read and send the rest of the body
    bool full_ : 1;             // a disk thread found the socket full (SF_STEP_WRITE): ask before handing over
    bool no_nowait_ : 1;        // the file refuses nowait reads: the copy path probes with resident()
    bool claimed_ : 1;          // holds the socket (socket_claims.hpp) until release()
    bool shut_wr_ : 1;          // SF_SHUT_WR: shutdown(SHUT_WR) once the last byte is out
};

// Copies user options (any struct_size >= the first version's) into a full,
// zero-filled struct.  Returns -EINVAL for an impossible struct_size.
int normalize_options(const sf_options_t *in, sf_options_t &out) noexcept;

}  // namespace evsf
