// source.hpp -- opening and checking what a region reads from.
#pragma once

#include <cstdint>

#include "evsendfile.h"

namespace evsf {

// How the bytes of a source can be read.
enum class SourceKind {
    Regular,       // a regular file with a trustworthy size: sendfile or pread
    SeekableStream,  // /proc, /sys: pread from the offset until EOF, size is a lie
    Pipe,          // pipe, FIFO, character device: read() until EOF
};

// An opened, validated source.  Closes the fd on destruction when the
// library opened it.  Movable, not copyable.
class Source {
public:
    Source() = default;
    ~Source() { close(); }
    Source(Source &&other) noexcept;
    Source &operator=(Source &&other) noexcept;
    Source(const Source &) = delete;
    Source &operator=(const Source &) = delete;

    // Validates `region` (see evsendfile.h for the rules) and, on success,
    // fills *this.  `count` becomes the exact number of region bytes, or
    // SF_COUNT_TO_EOF for a stream whose length is only known at EOF.
    // Returns 0 or a negative error; on error nothing stays open.
    // check_fd false (SF_TRUSTED): a caller-owned fd is not asked whether it
    // is open for reading.  known_size (SF_KNOWN_SIZE): the caller's fstat
    // says region.fd is a regular file of *known_size bytes; no fstat here.
    int open(const sf_region_t &region, bool check_fd = true, const uint64_t *known_size = nullptr);

    // Closes a library-opened fd now (idempotent).
    void close();

    int fd() const { return fd_; }
    SourceKind kind() const { return kind_; }
    uint64_t offset() const { return offset_; }
    uint64_t count() const { return count_; }

private:
    int fd_ = -1;
    bool owned_ = false;
    SourceKind kind_ = SourceKind::Regular;
    uint64_t offset_ = 0;
    uint64_t count_ = 0;
};

}  // namespace evsf
