/*
 * evsendfile_evhttp.h -- file responses for libevent's evhttp server, with
 * the body sent by evsendfile.  A separate library (libevsendfile_evhttp,
 * pkg-config evsendfile-evhttp) so that the core library never links
 * libevent_extra.  Everything in evsendfile.h's conventions holds here.
 */
#ifndef EVSENDFILE_EVHTTP_H
#define EVSENDFILE_EVHTTP_H

#include "evsendfile.h"

#ifdef __cplusplus
extern "C" {
#endif

struct evhttp_request;

/*
 * Answers `req` with status `code` / `reason` (NULL: evhttp's standard
 * phrase) and the bytes of `region` as the body.  Call it where you would
 * call evhttp_send_reply (from the request callback or later, on the
 * thread of the evhttp's base).
 *
 * Headers: Content-Length is set to the region's length (a Content-Length
 * or Transfer-Encoding you added is replaced); every other output header you
 * set stays.  The status line and headers are written by evhttp
 * (evhttp_send_reply_start: with Content-Length set there is no chunked
 * framing), the body by sf_bufferevent_send on the connection's socket, and
 * the request is then finished with evhttp_send_reply_end, so keep-alive,
 * pipelined requests and "Connection: close" go on as evhttp decides.
 * A HEAD request gets the head only (with the same Content-Length).
 *
 * `region`: a regular file (the length must be known before the head goes):
 * fd, or path (opened here, closed after the body).  opts may be NULL; its
 * head and tail must be empty (the Content-Length would not count them);
 * idle_timeout_ms and flags apply to the body.
 *
 * Returns 0, or a negative error with nothing sent and req untouched (reply
 * to it yourself, e.g. 404 or 416):
 *   -EINVAL   NULL req or region, opts with head or tail or SF_SHUT_WR, not a regular file
 *   -ENOTCONN req has no connection
 *   -ERANGE, -ENOENT, -EACCES, -EISDIR, -EBADF ...  as for sf_send_async
 *
 * After 0, `done` (may be NULL) runs exactly once, from the loop, before the
 * request is finished: req is still valid inside it, and `t` is NULL for a
 * HEAD request.  status < 0 means the body broke off (the peer left,
 * SF_ETRUNCATED, SF_ETIMEDOUT ...): the connection is then closed after done
 * returns, never left as a desynchronised keep-alive.  -ECANCELED: evhttp
 * freed the connection meanwhile (evhttp_free, evhttp_connection_free), and
 * req with it -- do not touch req then.
 *
 * Connections whose bufferevent sf_bufferevent_send refuses (TLS or filters
 * set up with evhttp_set_bevcb, rate limits) are answered through evhttp's
 * own path (evbuffer_add_file, no zero-copy); done then runs with status 0
 * once the body is queued.
 */
SF_EXTERN int sf_evhttp_send_file(struct evhttp_request *req, int code, const char *reason,
                                  const sf_region_t *region, const sf_options_t *opts /* may be NULL */,
                                  sf_done_cb done /* may be NULL */, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* EVSENDFILE_EVHTTP_H */
