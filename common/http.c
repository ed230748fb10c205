#include "http.h"

#include <errno.h>
#include <http_parser.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "protocol.h"

#ifdef MSG_NOSIGNAL
#define SEND_FLAGS MSG_NOSIGNAL
#else
#define SEND_FLAGS 0
#endif

typedef struct session {
    httpc_response *out;
    httpc_line_cb cb;
    void *ud;
    buf line;
    int cb_rc;
    bool done;
    bool too_big;
} session;

int httpc_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strlcpy_(sa.sun_path, path, sizeof(sa.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
#ifdef SO_NOSIGPIPE
    /* A closed daemon must not kill us with SIGPIPE. send() passes
     * MSG_NOSIGNAL where the headers define it (Linux, and macOS's SDK for
     * POSIX 2008 builds like this one); the BSD socket option covers the
     * rest: older SDKs and any write that is not our send(). */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, SEND_FLAGS);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    session *s = p->data;
    s->out->status = (int)p->status_code;
    return 0;
}

static int emit_lines(session *s)
{
    size_t start = 0;
    for (size_t i = 0; i < s->line.len; i++) {
        if (s->line.data[i] != '\n')
            continue;
        size_t len = i - start;
        if (len > 0 && s->line.data[i - 1] == '\r')
            len--;
        s->line.data[start + len] = '\0';
        if (len > 0) {
            int rc = s->cb(s->ud, s->line.data + start, len);
            if (rc != 0) {
                s->cb_rc = rc;
                return rc;
            }
        }
        start = i + 1;
    }
    buf_consume(&s->line, start);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    session *s = p->data;
    buf *b = s->cb && s->out->status == 200 ? &s->line : &s->out->body;
    if (b->len + len > HTTPC_MAX_BODY) {
        s->too_big = true;
        return 1;
    }
    buf_append(b, at, len);
    if (b == &s->line)
        return emit_lines(s) ? 1 : 0;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    session *s = p->data;
    s->done = true;
    return 0;
}

static const http_parser_settings settings = {
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static int exchange(const char *sock, const char *method, const char *target, const char *body,
                    size_t body_len, int timeout_ms, httpc_line_cb cb, void *ud,
                    httpc_response *out)
{
    memset(out, 0, sizeof(*out));
    int fd = httpc_connect(sock);
    if (fd < 0)
        return fd;
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: loophole\r\nUser-Agent: %s\r\n"
                     "%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
                     method, target, LH_HTTP_PRODUCT,
                     body ? "Content-Type: application/json\r\n" : "", body ? body_len : 0);
    if (n < 0 || (size_t)n >= sizeof(req)) {
        close(fd);
        return -ENAMETOOLONG;
    }
    int rc = send_all(fd, req, (size_t)n);
    if (rc == 0 && body && body_len)
        rc = send_all(fd, body, body_len);

    session s = {.out = out, .cb = cb, .ud = ud};
    http_parser parser;
    http_parser_init(&parser, HTTP_RESPONSE);
    parser.data = &s;
    char data[16384];
    while (rc == 0 && !s.done) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, timeout_ms > 0 ? timeout_ms : -1);
        if (pr < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        if (pr == 0) {
            rc = -ETIMEDOUT;
            break;
        }
        ssize_t r = read(fd, data, sizeof(data));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        /* r == 0 tells the parser the stream ended (a body delimited by
         * the close, like the events stream, completes here). */
        size_t used = http_parser_execute(&parser, &settings, data, (size_t)r);
        if (s.cb_rc) {
            rc = s.cb_rc;
            break;
        }
        if (s.too_big) {
            rc = -EFBIG;
            break;
        }
        if (HTTP_PARSER_ERRNO(&parser) != HPE_OK || used != (size_t)r) {
            rc = -EPROTO;
            break;
        }
        if (r == 0) {
            if (!s.done)
                rc = out->status ? 0 : -EPROTO;
            break;
        }
    }
    close(fd);
    buf_free(&s.line);
    return rc;
}

int httpc_request(const char *sock, const char *method, const char *target, int timeout_ms,
                  httpc_response *out)
{
    return exchange(sock, method, target, NULL, 0, timeout_ms, NULL, NULL, out);
}

int httpc_request_body(const char *sock, const char *method, const char *target, const char *body,
                       size_t len, int timeout_ms, httpc_response *out)
{
    return exchange(sock, method, target, body, len, timeout_ms, NULL, NULL, out);
}

int httpc_stream_lines(const char *sock, const char *target, httpc_line_cb cb, void *ud,
                       httpc_response *out)
{
    return exchange(sock, "GET", target, NULL, 0, 0, cb, ud, out);
}

void httpc_response_free(httpc_response *r)
{
    buf_free(&r->body);
    r->status = 0;
}
