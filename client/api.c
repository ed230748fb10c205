#include <errno.h>
#include <http_parser.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "platform.h"
#include "protocol.h"
#include "util.h"

#ifdef MSG_NOSIGNAL
#define SEND_FLAGS MSG_NOSIGNAL
#else
#define SEND_FLAGS 0
#endif

#define REQUEST_TIMEOUT_MS 10000

int cli_parse_json(const char *body, size_t len, yajl_val *out, char *err, size_t errlen)
{
    return json_parse(body, len, HTTPC_MAX_BODY, JSON_MAX_DEPTH, out, err, errlen);
}

const char *cli_default_socket(void)
{
    return platform_control_socket();
}

const char *cli_start_hint(void)
{
    return platform_start_hint();
}

void cli_conn_message(int err, const char *sock, char *out, size_t cap)
{
    switch (err) {
    case -ENOENT:
    case -ECONNREFUSED:
        snprintf(out, cap, "the daemon is not running (start it with: %s)", cli_start_hint());
        break;
    case -EACCES:
    case -EPERM:
        snprintf(out, cap, "cannot connect to %s: permission denied", sock);
        break;
    case -ETIMEDOUT:
        snprintf(out, cap, "the daemon did not answer within %d seconds",
                 REQUEST_TIMEOUT_MS / 1000);
        break;
    case -EPROTO:
    case -ECONNRESET:
    case -EPIPE:
        snprintf(out, cap, "%s did not answer like a loophole daemon", sock);
        break;
    case -ENAMETOOLONG:
        snprintf(out, cap, "the socket path %s is too long", sock);
        break;
    default:
        snprintf(out, cap, "cannot talk to the daemon at %s: %s", sock, err_str(err));
    }
}

/* The "error" string of a {"error": "..."} body, copied into dst; "" when absent. */
static void error_text(const char *body, char *dst, size_t cap)
{
    dst[0] = '\0';
    if (!body || !body[0])
        return;
    yajl_val root;
    if (cli_parse_json(body, strlen(body), &root, NULL, 0) < 0)
        return;
    const char *e = json_str(root, "error", NULL);
    if (e)
        strlcpy_(dst, e, cap);
    json_free(root);
}

void cli_error_message(int status, const char *body, const char *command, char *out, size_t cap)
{
    char err[512];
    error_text(body, err, sizeof(err));
    bool resolver = command && strncmp(command, "resolve-", 8) == 0;
    /* expose and unexpose pass the person's spec on: a 400 is about it. */
    bool spec = command && (strcmp(command, "expose") == 0 || strcmp(command, "unexpose") == 0);
    switch (status) {
    case 403:
        if (resolver)
            snprintf(out, cap, "changing the resolver needs root: run sudo loophole %s", command);
        else
            snprintf(out, cap, "permission denied%s%s", err[0] ? ": " : "", err);
        break;
    case 404:
    case 409:
        snprintf(out, cap, "%s", err[0] ? err : (status == 404 ? "not found" : "conflict"));
        break;
    case 400:
        if (spec && err[0]) {
            snprintf(out, cap, "%s", err);
            break;
        }
        /* fall through */
    case 405:
    case 413:
    case 431:
        /* Our own requests are well-formed: a different daemon version. */
        snprintf(out, cap, "the daemon rejected the request (HTTP %d%s%s); is it another version?",
                 status, err[0] ? ": " : "", err);
        break;
    case 500:
        snprintf(out, cap, "the daemon failed: %s", err[0] ? err : "internal error");
        break;
    default:
        snprintf(out, cap, "unexpected answer from the daemon (HTTP %d%s%s)", status,
                 err[0] ? ": " : "", err);
    }
}

int cli_call(const cli_ctx *ctx, const char *method, const char *target, const char *command,
             httpc_response *resp)
{
    char msg[1024];
    int rc = httpc_request(ctx->sock, method, target, REQUEST_TIMEOUT_MS, resp);
    if (rc < 0) {
        cli_conn_message(rc, ctx->sock, msg, sizeof(msg));
        fprintf(stderr, "loophole: %s\n", msg);
        httpc_response_free(resp);
        return CLI_FAIL;
    }
    if (resp->status < 200 || resp->status > 299) {
        cli_error_message(resp->status, resp->body.data, command, msg, sizeof(msg));
        fprintf(stderr, "loophole: %s\n", msg);
        httpc_response_free(resp);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* ---- requests with a JSON body ----
 * common/http.c sends every request with "Content-Length: 0". Until it
 * gains a body parameter, the one request of the client that carries a body
 * (POST .../host-ports) is sent here: one request, Connection: close, the
 * answer read whole and parsed with http-parser like httpc_request does. */

typedef struct body_session {
    httpc_response *out;
    bool done, too_big;
} body_session;

static int body_on_headers(http_parser *p)
{
    body_session *s = p->data;
    s->out->status = (int)p->status_code;
    return 0;
}

static int body_on_body(http_parser *p, const char *at, size_t len)
{
    body_session *s = p->data;
    if (s->out->body.len + len > HTTPC_MAX_BODY) {
        s->too_big = true;
        return 1;
    }
    buf_append(&s->out->body, at, len);
    return 0;
}

static int body_on_complete(http_parser *p)
{
    body_session *s = p->data;
    s->done = true;
    return 0;
}

static const http_parser_settings body_settings = {
    .on_headers_complete = body_on_headers,
    .on_body = body_on_body,
    .on_message_complete = body_on_complete,
};

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

int cli_request_body(const char *sock, const char *method, const char *target, const char *body,
                     size_t len, int timeout_ms, httpc_response *out)
{
    memset(out, 0, sizeof(*out));
    int fd = httpc_connect(sock);
    if (fd < 0)
        return fd;
    char head[1024];
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: loophole\r\nUser-Agent: %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     method, target, LH_HTTP_PRODUCT, len);
    if (n < 0 || (size_t)n >= sizeof(head)) {
        close(fd);
        return -ENAMETOOLONG;
    }
    int rc = send_all(fd, head, (size_t)n);
    if (rc == 0)
        rc = send_all(fd, body, len);
    body_session s = {.out = out};
    http_parser parser;
    http_parser_init(&parser, HTTP_RESPONSE);
    parser.data = &s;
    char data[16384];
    while (rc == 0 && !s.done) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, timeout_ms > 0 ? timeout_ms : -1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            rc = pr == 0 ? -ETIMEDOUT : -errno;
            break;
        }
        ssize_t r = read(fd, data, sizeof(data));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            break;
        }
        size_t used = http_parser_execute(&parser, &body_settings, data, (size_t)r);
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
    if (rc < 0)
        httpc_response_free(out);
    return rc;
}
