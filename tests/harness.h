/* harness.h -- what every test file needs: sockets, patterned and sparse
 * files, a reader thread that drains (and keeps) what arrives, fd counting,
 * and a bounded way to run an event_base until a condition holds.
 *
 * Nothing here calls cmocka asserts from a thread other than the test's. */
#ifndef EVSF_TEST_HARNESS_H
#define EVSF_TEST_HARNESS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "evsendfile.h"

struct event_base;

#define KiB (1024ull)
#define MiB (1024ull * 1024ull)
#define GiB (1024ull * 1024ull * 1024ull)

/* A timeout a test gives the library, in ms, times $EVSF_TEST_TIME_SCALE
 * (default 1).  tests/memcheck.sh sets 4: valgrind runs one thread at a
 * time, so on a loaded machine a test's reader thread can sit still for
 * longer than a timeout meant for a live peer. */
uint32_t test_ms(uint32_t ms);

/* Generous guard for every wait: a hang becomes a failure, not a stuck CI. */
#define GUARD_SECONDS 60

/* ---- content: byte at file offset `off` (no short period, so an offset
 * error shows up as a mismatch) */
uint8_t pattern_byte(uint64_t off);
void pattern_fill(uint8_t *buf, uint64_t off, size_t len);
/* Index of the first byte of buf that is not pattern(off + i), or -1. */
long pattern_mismatch(const uint8_t *buf, uint64_t off, size_t len);

/* ---- files (created in $TMPDIR or /tmp, unlinked by files_cleanup) */
/* A regular file of `size` patterned bytes; returns an O_RDWR fd, and its
 * path in path_out (PATH_MAX bytes) when not NULL. */
int make_pattern_file(uint64_t size, char *path_out);
/* A sparse file of `size` bytes (holes read as zeros). */
int make_sparse_file(uint64_t size, char *path_out);
/* Writes pattern(off..off+len) at `off` of fd. */
void write_pattern_at(int fd, uint64_t off, size_t len);
/* Unlinks every file made above (registered automatically). */
void files_cleanup(void);

/* ---- sockets (the sending end is always non-blocking) */
void socketpair_nb(int *sender, int *receiver);
void tcp_pair(int *sender, int *receiver);
void tcp6_pair(int *sender, int *receiver); /* ::1 */
void set_nonblocking(int fd, int on);
/* Shrinks the sender's send buffer and the receiver's receive buffer. */
void small_buffers(int sender, int receiver, int bytes);
int tcp_cork_is_on(int sock);

/* ---- fds */
int count_open_fds(void);
/* count_open_fds() once it equals `want`, or after 5 s whatever it is: a
 * cancelled transfer whose chunk a disk thread is still reading closes that
 * thread's descriptors (its duplicate of the file, its wake-up fd) when the
 * read ends, not when sf_cancel returns. */
int settled_fd_count(int want);
/* count_open_fds() once it has held still for 200 ms (at most 5 s): a
 * baseline free of an earlier test's disk read-in still in flight. */
int quiet_fd_count(void);

/* ---- a reader thread on a (blocking) receiving socket: reads until EOF */
typedef struct reader {
    int fd;
    size_t chunk;         /* bytes asked per read(); default 64 KiB */
    unsigned pace_us;     /* pause between reads: the slow-reader scenarios */
    uint64_t close_after; /* close the socket after this many bytes (0 = never) */
    int keep;             /* keep the bytes in buf (else only count them) */
    /* results, valid after reader_join */
    uint8_t *buf;
    size_t len, cap;
    uint64_t total;
    int read_errno; /* errno of a failing read, 0 at clean EOF */
    pthread_t thread;
} reader_t;

/* Starts a thread with the settings already in *r (fd, chunk, ...). */
void reader_start(reader_t *r);
void reader_join(reader_t *r);
void reader_free(reader_t *r);

/* ---- a region's expected wire image: head, pattern bytes, tail */
/* Returns 1 when got[0..len) == head + pattern(off..off+count) + tail. */
int wire_matches(const uint8_t *got, size_t len, const char *head, uint64_t off, uint64_t count,
                 const char *tail);

/* ---- done callbacks */
typedef struct done_rec {
    int calls;
    int status;
    uint64_t body_sent;
    int shut_fd; /* when >= 0, shutdown(SHUT_WR) it in done so the reader sees EOF */
} done_rec_t;

void done_rec_init(done_rec_t *d, int shut_fd);
void record_done(sf_transfer_t *t, int status, uint64_t body_sent, void *arg);

/* Runs `base` until *flag != 0 (or GUARD_SECONDS pass).  Returns *flag. */
int run_until(struct event_base *base, const int *flag);

/* One whole transfer on a fresh event_base: starts a reader thread on
 * `receiver` (settings already in *r, r->fd is set here), submits, runs the
 * base until done, shuts the sender's write side so the reader sees EOF,
 * joins the reader.  Fills *d.  Returns sf_send_async's result. */
int transfer_collect(int sender, int receiver, const sf_region_t *region, const sf_options_t *opts,
                     reader_t *r, done_rec_t *d);

/* sf_options_t with head/tail given as C strings (NULL = none). */
void opts_with(sf_options_t *o, struct iovec *head_iov, const char *head, struct iovec *tail_iov,
               const char *tail);

#endif
