/* A small blocking HTTP/1.1 client over a unix socket, for the loophole
 * command (blocking is fine in a CLI; the daemon never uses this). Responses
 * are parsed with http-parser. */
#ifndef LOOPHOLE_HTTP_H
#define LOOPHOLE_HTTP_H

#include <stddef.h>

#include "util.h"

#define HTTPC_MAX_BODY (16 * 1024 * 1024)

typedef struct httpc_response {
    int status; /* 0 until the status line has been read */
    buf body;   /* NUL-terminated when non-empty */
} httpc_response;

/* Called for each complete line of a streamed 200 body, without the newline
 * (the data is NUL-terminated). A nonzero return stops the stream. */
typedef int (*httpc_line_cb)(void *ud, const char *line, size_t len);

/* Connects to the unix socket at path. Returns the fd, or -errno: -ENOENT or
 * -ECONNREFUSED mean nobody listens there. */
int httpc_connect(const char *path);

/* One request (no request body), the whole response read into out.
 * timeout_ms bounds every wait for the server (<= 0: none). Returns 0 or
 * -errno (-EPROTO: the answer is not HTTP, -ETIMEDOUT). */
int httpc_request(const char *sock, const char *method, const char *target, int timeout_ms,
                  httpc_response *out);

/* The same with a JSON request body of len bytes (Content-Type:
 * application/json). */
int httpc_request_body(const char *sock, const char *method, const char *target, const char *body,
                       size_t len, int timeout_ms, httpc_response *out);

/* GET target and hand every body line to cb while the status is 200 (other
 * statuses are collected into out->body). Returns when the server closes the
 * stream (0), cb returns nonzero (that value), or on -errno. */
int httpc_stream_lines(const char *sock, const char *target, httpc_line_cb cb, void *ud,
                       httpc_response *out);

void httpc_response_free(httpc_response *r);

#endif
