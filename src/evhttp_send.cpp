// evhttp_send.cpp -- libevsendfile_evhttp: sf_evhttp_send_file.  Uses only
// the public APIs of libevent (evhttp, bufferevent) and of libevsendfile.
//
// evhttp writes the status line and headers (evhttp_send_reply_start, with
// Content-Length set so there is no chunked framing), sf_bufferevent_send
// the body on the connection's socket (it flushes the head first and parks
// the connection's bufferevent meanwhile), and evhttp_send_reply_end
// finishes the request, so evhttp's keep-alive and pipelining go on.
#include "evsendfile_evhttp.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cinttypes>
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

namespace {

struct Reply {
    struct evhttp_request *req;
    sf_done_cb done;
    void *arg;
    int own_fd;       // opened here from region->path, else -1
    int fallback_fd;  // >= 0: the body goes through evhttp (evbuffer_add_file owns it)
    bool head_only;
    uint64_t offset, count;
};

void finish(Reply *r, sf_transfer_t *t, int status, uint64_t body_sent) {
    struct evhttp_request *req = r->req;
    if (r->done != nullptr) r->done(t, status, body_sent, r->arg);
    if (r->own_fd >= 0) close(r->own_fd);
    if (status == -ECANCELED) {  // evhttp freed the connection (evhttp_free): req is gone
        delete r;
        return;
    }
    // A body that broke off: the peer was promised more bytes, so the
    // connection must not carry another response.  evhttp closes it when the
    // request ends with "Connection: close" among the output headers.
    if (status < 0) {
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_remove_header(h, "Connection");
        evhttp_add_header(h, "Connection", "close");
    }
    delete r;
    evhttp_send_reply_end(req);
}

void on_body_done(sf_transfer_t *t, int status, uint64_t body_sent, void *arg) {
    finish(static_cast<Reply *>(arg), t, status, body_sent);
}

// HEAD, and connections whose bufferevent sf_bufferevent_send refused: one
// loop turn later (done never runs from inside sf_evhttp_send_file).
void on_later(evutil_socket_t, short, void *arg) {
    Reply *r = static_cast<Reply *>(arg);
    uint64_t queued = 0;
    if (r->fallback_fd >= 0) {
        struct evbuffer *body = evbuffer_new();
        if (body != nullptr && evbuffer_add_file(body, r->fallback_fd, static_cast<ev_off_t>(r->offset),
                                                 static_cast<ev_off_t>(r->count)) == 0) {
            queued = r->count;
            evhttp_send_reply_chunk(r->req, body);
        } else {
            close(r->fallback_fd);
        }
        if (body != nullptr) evbuffer_free(body);
    }
    finish(r, nullptr, r->head_only || queued == r->count ? 0 : -ENOMEM, queued);
}

// The region's length, from the very fd that will be read, and the file's size.
int region_length(int fd, const sf_region_t *region, uint64_t *count, uint64_t *size_out) {
    struct stat st;
    if (fstat(fd, &st) != 0) return -errno;
    if (S_ISDIR(st.st_mode)) return -EISDIR;
    if (!S_ISREG(st.st_mode)) return -EINVAL;
    uint64_t size = *size_out = static_cast<uint64_t>(st.st_size);
    if (region->offset > size) return -ERANGE;
    if (region->count == SF_COUNT_TO_EOF) {
        *count = size - region->offset;
    } else {
        if (region->count > size - region->offset) return -ERANGE;
        *count = region->count;
    }
    return 0;
}

int send_file(struct evhttp_request *req, int code, const char *reason, const sf_region_t *region,
              const sf_options_t *opts, sf_done_cb done, void *arg) {
    if (req == nullptr || region == nullptr) return -EINVAL;
    if (opts != nullptr && (opts->struct_size < offsetof(sf_options_t, flags) + sizeof opts->flags ||
                            opts->head_count != 0 || opts->tail_count != 0 || (opts->flags & SF_SHUT_WR)))
        return -EINVAL;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon == nullptr) return -ENOTCONN;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);

    int fd = region->fd, own_fd = -1;
    if (fd < 0) {
        if (region->path == nullptr) return -EINVAL;
        fd = own_fd = open(region->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return -errno;
    }
    uint64_t count = 0, size = 0;
    int err = region_length(fd, region, &count, &size);
    Reply *r = err == 0 ? new (std::nothrow) Reply{req, done, arg, own_fd, -1, false, region->offset, count} : nullptr;
    if (r == nullptr) {
        if (own_fd >= 0) close(own_fd);
        return err != 0 ? err : -ENOMEM;
    }

    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    char len[24];
    snprintf(len, sizeof len, "%" PRIu64, count);
    evhttp_remove_header(headers, "Transfer-Encoding");
    evhttp_remove_header(headers, "Content-Length");
    evhttp_add_header(headers, "Content-Length", len);
    struct evbuffer *out = bufferevent_get_output(bev);
    bool took_head = evbuffer_get_length(out) == 0;
    evhttp_send_reply_start(req, code, reason);  // the head, into bev's output buffer
    r->head_only = evhttp_request_get_command(req) == EVHTTP_REQ_HEAD;
    if (!r->head_only) {
        // The head leaves with the body (one writev for a small body, MSG_MORE
        // before sendfile otherwise), not in a write of its own: a lone head
        // then body is the Nagle + delayed-ACK stall (40 ms per response).
        std::string head;
        sf_options_t o;
        sf_options_init(&o);
        if (opts != nullptr) std::memcpy(&o, opts, std::min(opts->struct_size, sizeof o));
        o.struct_size = sizeof o;
        o.flags |= SF_KNOWN_SIZE;  // fstat'ed above: the engine need not ask again
        o.file_size = size;
        struct iovec iov;
        if (took_head) {
            head.resize(evbuffer_get_length(out));
            evbuffer_unfreeze(out, 1);  // a socket bufferevent freezes its output's start
            evbuffer_remove(out, &head[0], head.size());
            evbuffer_freeze(out, 1);
            iov = {&head[0], head.size()};
            o.head = &iov;
            o.head_count = 1;
        }
        sf_region_t body = {fd, nullptr, region->offset, count};
        if (sf_bufferevent_send(bev, &body, &o, on_body_done, r, nullptr) == 0) return 0;
        // Refused (TLS, a filter, a rate limit): evhttp sends the body itself.
        if (took_head) evbuffer_add(out, head.data(), head.size());
        r->fallback_fd = own_fd >= 0 ? own_fd : fcntl(fd, F_DUPFD_CLOEXEC, 0);
        r->own_fd = -1;
    }
    struct timeval now = {0, 0};
    if (event_base_once(bufferevent_get_base(bev), -1, EV_TIMEOUT, on_later, r, &now) != 0) {
        on_later(-1, 0, r);  // cannot defer: finish now rather than never
    }
    return 0;
}

}  // namespace

extern "C" int sf_evhttp_send_file(struct evhttp_request *req, int code, const char *reason,
                                   const sf_region_t *region, const sf_options_t *opts, sf_done_cb done,
                                   void *arg) {
    try {
        return send_file(req, code, reason, region, opts, done, arg);
    } catch (...) {
        return -ENOMEM;
    }
}
