// source.cpp -- open once, fstat that same fd, decide how to read it.
#include "source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>

#include "platform.hpp"
#include "syscalls.h"

namespace evsf {

namespace {

int check_readable(int fd) {
    int fl = evsf_sys.fcntl(fd, F_GETFL, 0);
    if (fl < 0) return -errno;
    if ((fl & O_ACCMODE) == O_WRONLY) return -EBADF;
#ifdef O_PATH
    if (fl & O_PATH) return -EBADF;  // a path handle: fstat works, read never does
#endif
    return 0;
}

// F_GETFL failing must not turn into F_SETFL(-1 | O_NONBLOCK): that would
// set every flag bit (O_APPEND, O_ASYNC, O_DIRECT...) on the fd.
int set_nonblocking(int fd) {
    int fl = evsf_sys.fcntl(fd, F_GETFL, 0);
    if (fl < 0 || evsf_sys.fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) return -errno;
    return 0;
}

}  // namespace

Source::Source(Source &&other) noexcept { *this = std::move(other); }

Source &Source::operator=(Source &&other) noexcept {
    if (this != &other) {
        close();
        fd_ = std::exchange(other.fd_, -1);
        owned_ = std::exchange(other.owned_, false);
        kind_ = other.kind_;
        offset_ = other.offset_;
        count_ = other.count_;
    }
    return *this;
}

void Source::close() {
    if (owned_ && fd_ >= 0) evsf_sys.close(fd_);  // Linux frees the fd even when close fails
    owned_ = false;
    fd_ = -1;
}

int Source::open(const sf_region_t &region, bool check_fd, const uint64_t *known_size) {
    close();
    int fd = region.fd;
    bool owned = false;
    if (fd < 0) {
        if (fd != -1 || region.path == nullptr || known_size != nullptr) return -EINVAL;
        do {
            fd = evsf_sys.open(region.path, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
        } while (fd < 0 && errno == EINTR);
        if (fd < 0) return -errno;
        owned = true;
    }
    // From here on, failing must close what we opened.
    fd_ = fd;
    owned_ = owned;

    struct stat st;
    if (known_size != nullptr) {  // the caller's fstat: a regular file of this size
        st = {};
        st.st_mode = S_IFREG;
    } else if (evsf_sys.fstat(fd, &st) != 0) {
        int err = -errno;
        close();
        return err;
    }
    int err = 0;
    if (S_ISDIR(st.st_mode)) {
        err = -EISDIR;
    } else if (S_ISSOCK(st.st_mode)) {
        err = -EINVAL;
    } else if (!owned && check_fd) {
        err = check_readable(fd);
    }
    if (err == 0 && region.offset > static_cast<uint64_t>(INT64_MAX)) err = -ERANGE;
    if (err != 0) {
        close();
        return err;
    }

    offset_ = region.offset;
    if (S_ISREG(st.st_mode) && (known_size != nullptr || !platform_size_is_unreliable(fd, st))) {
        kind_ = SourceKind::Regular;
        uint64_t size = known_size != nullptr ? *known_size : static_cast<uint64_t>(st.st_size);
        if (region.offset > size) {
            err = -ERANGE;
        } else if (region.count == SF_COUNT_TO_EOF) {
            count_ = size - region.offset;
        } else if (region.count > size - region.offset) {
            err = -ERANGE;
        } else {
            count_ = region.count;
        }
    } else if (S_ISREG(st.st_mode)) {
        kind_ = SourceKind::SeekableStream;
        count_ = region.count;
    } else {
        kind_ = SourceKind::Pipe;
        count_ = region.count;
        if (region.offset != 0) err = -ESPIPE;
        // A FIFO/device we opened ourselves is read from the event loop: a
        // blocking read would stall the whole loop until the writer writes.
        // (A caller's fd keeps the caller's flags.)
        if (err == 0 && owned) err = set_nonblocking(fd);
    }
    if (err != 0) close();
    return err;
}

}  // namespace evsf
