/* A tiny fake Docker engine on a unix socket, in the test's own loop, for
 * tests of modules that talk to the engine through docker_client
 * (test_sidecar.c, the docker_request tests of test_docker_client.c).
 *
 * It answers /_ping, /version (API 1.41), /v1.41/info (fe->info, or a
 * native engine's), the event stream (headers, then kept open) and
 * /v1.41/containers/json ("[]") itself; every other request, and those too
 * when the test's handler takes them first, goes to fe->handle, which
 * answers with fe_respond(). Each request is recorded as "METHOD path\n" in
 * fe->log. One request per connection, as the client sends them. */
#ifndef LOOPHOLE_FAKE_ENGINE_H
#define LOOPHOLE_FAKE_ENGINE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "util.h"

typedef struct fake_engine fake_engine;
typedef struct fe_conn {
    uv_pipe_t h;
    fake_engine *f;
    buf in;
    bool answered;
    struct fe_conn *next;
} fe_conn;

struct fake_engine {
    uv_loop_t *loop;
    uv_pipe_t server;
    char path[256];
    fe_conn *conns;
    fe_conn *events;
    /* Returns true when it answered (or kept) the request. body is
     * NUL-terminated. */
    bool (*handle)(fake_engine *f, fe_conn *c, const char *method, const char *path,
                   const char *body);
    void *ud;
    const char *info; /* the /info body; NULL: a native engine */
    int requests;
    buf log;
};

static void fe_conn_closed(uv_handle_t *h)
{
    fe_conn *c = h->data;
    for (fe_conn **p = &c->f->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    buf_free(&c->in);
    free(c);
}

static void fe_close(fe_conn *c)
{
    if (c->f->events == c)
        c->f->events = NULL;
    if (!uv_is_closing((uv_handle_t *)&c->h))
        uv_close((uv_handle_t *)&c->h, fe_conn_closed);
}

typedef struct fe_write {
    uv_write_t w;
    bool close_after;
    char data[];
} fe_write;

static void fe_written(uv_write_t *w, int status)
{
    (void)status;
    fe_write *r = (fe_write *)w;
    if (r->close_after)
        fe_close(w->data);
    free(r);
}

static void fe_send(fe_conn *c, const char *data, size_t len, bool close_after)
{
    if (uv_is_closing((uv_handle_t *)&c->h))
        return;
    fe_write *r = xmalloc(sizeof(*r) + len);
    memcpy(r->data, data, len);
    r->close_after = close_after;
    r->w.data = c;
    uv_buf_t b = uv_buf_init(r->data, (unsigned)len);
    if (uv_write(&r->w, (uv_stream_t *)&c->h, &b, 1, fe_written) < 0) {
        free(r);
        fe_close(c);
    }
}

/* A whole reply with Content-Length; the connection closes after it. */
static void fe_respond(fe_conn *c, int status, const char *body)
{
    buf b = {0};
    size_t len = body ? strlen(body) : 0;
    buf_appendf(&b,
                "HTTP/1.1 %d X\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
                "Content-Length: %zu\r\n\r\n",
                status, len);
    if (len)
        buf_append(&b, body, len);
    fe_send(c, b.data, b.len, true);
    buf_free(&b);
}

/* One line of the event stream (a JSON object; the newline is added), as
 * one chunk. Nothing happens before the client has subscribed. */
static inline void fe_send_event(fake_engine *f, const char *json)
{
    if (f->events == NULL)
        return;
    buf b = {0};
    buf_appendf(&b, "%zx\r\n%s\n\r\n", strlen(json) + 1, json);
    fe_send(f->events, b.data, b.len, false);
    buf_free(&b);
}

static void fe_request(fe_conn *c, const char *req, const char *body)
{
    fake_engine *f = c->f;
    char method[16], path[1024];
    f->requests++;
    if (sscanf(req, "%15s %1023s HTTP/1.1\r\n", method, path) != 2) {
        fe_respond(c, 400, "{\"message\":\"bad request\"}");
        return;
    }
    buf_appendf(&f->log, "%s %s\n", method, path);
    if (f->handle && f->handle(f, c, method, path, body))
        return;
    if (strcmp(path, "/_ping") == 0) {
        fe_respond(c, 200, "OK");
    } else if (strcmp(path, "/version") == 0) {
        fe_respond(c, 200, "{\"ApiVersion\":\"1.41\",\"MinAPIVersion\":\"1.12\"}");
    } else if (strcmp(path, "/v1.41/info") == 0) {
        fe_respond(c, 200,
                   f->info ? f->info
                           : "{\"OperatingSystem\":\"Debian GNU/Linux 12 (bookworm)\","
                             "\"Name\":\"box\",\"SecurityOptions\":[\"name=seccomp,profile="
                             "builtin\"]}");
    } else if (strncmp(path, "/v1.41/events?", 14) == 0) {
        f->events = c;
        const char *h = "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n";
        fe_send(c, h, strlen(h), false);
    } else if (strcmp(path, "/v1.41/containers/json") == 0) {
        fe_respond(c, 200, "[]");
    } else {
        fe_respond(c, 404, "{\"message\":\"page not found\"}");
    }
}

static void fe_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)h;
    b->base = xmalloc(s);
    b->len = s;
}

/* Waits for the headers and then for Content-Length bytes of body. */
static void fe_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    fe_conn *c = s->data;
    if (n < 0) {
        fe_close(c);
    } else if (n > 0 && !c->answered) {
        buf_append(&c->in, b->base, (size_t)n);
        buf_append(&c->in, "", 1); /* a terminator, dropped again below */
        c->in.len--;
        const char *end = strstr(c->in.data, "\r\n\r\n");
        if (end != NULL) {
            size_t want = 0;
            const char *cl = strstr(c->in.data, "Content-Length: ");
            if (cl != NULL && cl < end)
                want = strtoul(cl + 16, NULL, 10);
            size_t have = c->in.len - (size_t)(end + 4 - c->in.data);
            if (have >= want) {
                c->answered = true;
                fe_request(c, c->in.data, end + 4);
            }
        }
    }
    free(b->base);
}

static void fe_connection(uv_stream_t *server, int status)
{
    fake_engine *f = server->data;
    if (status < 0)
        return;
    fe_conn *c = xcalloc(1, sizeof(*c));
    c->f = f;
    uv_pipe_init(f->loop, &c->h, 0);
    c->h.data = c;
    c->next = f->conns;
    f->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->h) == 0)
        uv_read_start((uv_stream_t *)&c->h, fe_alloc, fe_read);
    else
        fe_close(c);
}

static int fe_start(fake_engine *f, uv_loop_t *loop, const char *path)
{
    memset(f, 0, sizeof(*f));
    f->loop = loop;
    snprintf(f->path, sizeof(f->path), "%s", path);
    uv_pipe_init(loop, &f->server, 0);
    f->server.data = f;
    unlink(path);
    int r = uv_pipe_bind(&f->server, path);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&f->server, 16, fe_connection);
    return r;
}

/* Closes the server and every connection (the log stays until fe_free). */
static void fe_stop(fake_engine *f)
{
    if (!uv_is_closing((uv_handle_t *)&f->server))
        uv_close((uv_handle_t *)&f->server, NULL);
    for (fe_conn *c = f->conns; c; c = c->next)
        fe_close(c);
    unlink(f->path);
}

static void fe_free(fake_engine *f)
{
    buf_free(&f->log);
}

#endif
