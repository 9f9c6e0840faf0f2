/* respond.h -- turning a parsed request into a response on a connection. */
#ifndef RESPOND_H
#define RESPOND_H

#include <time.h>

#include "httpd.h"
#include "request.h"

/* Starts the response to `req` on `c`.  0: a send is under way (its done
 * callback continues the connection); < 0: close the connection. */
int respond(struct conn *c, const struct request *req);

/* A short text response for a request that could not be parsed; the
 * connection closes after it.  Same return as respond(). */
int respond_error(struct conn *c, int status);

/* After a part of a multipart/byteranges body went out: starts the next
 * one.  1: started; 0: the response is complete; < 0: close. */
int respond_next_part(struct conn *c);

/* Does a part of the response still follow the send under way (or the one
 * about to start)?  0 when that send is the response's last. */
int respond_has_next_part(const struct response *rs);

/* Releases what the finished (or abandoned) response holds. */
void response_release(struct response *rs);

/* IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT". */
void http_date(time_t t, char out[64]);

#endif
