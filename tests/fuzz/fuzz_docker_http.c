/* libFuzzer driver: the Docker engine client's HTTP response framing and its
 * state machine (daemon/docker.c): http-parser on every reply (status line,
 * headers, Api-Version, Content-Length and chunked bodies, close-delimited
 * bodies), the event stream through docker_splitter (line cap), the body
 * cap, and the ping -> version -> events -> list -> inspect sequence with
 * events queued during a sync. A fake engine on a unix socket, on the same
 * libuv loop as a real docker_client, answers each request with raw bytes
 * from the input.
 *
 * Input: byte 0 is flags, the rest is cut at "\n%%\n" into raw responses:
 *   events, list, inspect, ping, version
 * (one inspect answer serves every inspect). A missing piece gets a valid
 * default (ping 200 with Api-Version 1.43, version 1.43/1.12, an open
 * chunked event stream, an empty list, inspect 404); a piece may be empty
 * (the engine closes without a byte).
 *   flags bit 0   close the event stream after its bytes (else it stays open)
 *   flags bit 1   write each response's first 4 KiB in pieces of (flags >> 4) + 1
 *                 bytes
 * "@BIG@" in a piece becomes 1 MiB + 1 bytes of "x" (over the event line
 * cap; the first 17 in a piece expand, which passes the 16 MiB body cap).
 * Checked on every input: nothing crashes or leaks; every container handed
 * over (sync, update) is running and has an id; the client closes cleanly
 * and its close callback runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker.h"
#include "fuzz_common.h"
#include "util.h"

#define SEP "\n%%\n"
#define BIG "@BIG@"
#define BIG_LEN (1024 * 1024 + 1)
#define BIG_MAX 17 /* per piece: just past the 16 MiB body cap */

enum { P_EVENTS, P_LIST, P_INSPECT, P_PING, P_VERSION, P_N };

static const char *const defaults[P_N] = {
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]",
    "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    "HTTP/1.1 200 OK\r\nApi-Version: 1.43\r\nContent-Type: text/plain\r\nContent-Length: "
    "2\r\n\r\nOK",
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 45\r\n\r\n"
    "{\"ApiVersion\":\"1.43\",\"MinAPIVersion\":\"1.12\"}",
};

static uv_loop_t loop;
static uv_pipe_t listener;
static char sock_path[64];
static char host[80];
static buf piece[P_N];
static unsigned flags;
static unsigned activity;

typedef struct econn {
    uv_pipe_t pipe;
    buf req;
    bool answered;
    bool keep_open;
    size_t pending_writes;
    struct econn *next;
} econn;

static econn *conns;

/* ---- the fake engine ---- */

static void e_closed(uv_handle_t *h)
{
    econn *e = h->data;
    for (econn **pp = &conns; *pp; pp = &(*pp)->next)
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    buf_free(&e->req);
    free(e);
    activity++;
}

static void e_close(econn *e)
{
    if (!uv_is_closing((uv_handle_t *)&e->pipe))
        uv_close((uv_handle_t *)&e->pipe, e_closed);
}

typedef struct ewrite {
    uv_write_t w;
    econn *e;
} ewrite;

static void e_written(uv_write_t *w, int status)
{
    (void)status;
    ewrite *ew = container_of(w, ewrite, w);
    econn *e = ew->e;
    free(ew);
    activity++;
    if (--e->pending_writes == 0 && !e->keep_open)
        e_close(e);
}

static void e_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    static char slab[4096];
    *b = uv_buf_init(slab, sizeof(slab));
}

static int pick(const char *path)
{
    if (strcmp(path, "/_ping") == 0)
        return P_PING;
    if (strcmp(path, "/version") == 0)
        return P_VERSION;
    if (strstr(path, "/events"))
        return P_EVENTS;
    size_t n = strlen(path);
    if (n >= 16 && strcmp(path + n - 16, "/containers/json") == 0)
        return P_LIST;
    return P_INSPECT;
}

static void answer(econn *e)
{
    e->answered = true;
    /* "GET <path> HTTP/1.1\r\n..." from docker.c's req_start. */
    char path[512] = "";
    const char *sp = memchr(e->req.data, ' ', e->req.len);
    if (sp) {
        const char *end = memchr(sp + 1, ' ', e->req.len - (size_t)(sp + 1 - e->req.data));
        size_t n = end ? (size_t)(end - sp - 1) : 0;
        if (n < sizeof(path)) {
            memcpy(path, sp + 1, n);
            path[n] = '\0';
        }
    }
    int k = pick(path);
    e->keep_open = k == P_EVENTS && !(flags & 1);
    const buf *b = &piece[k];
    size_t step = (flags & 2) ? (flags >> 4) + 1 : b->len;
    if (b->len == 0) {
        if (!e->keep_open)
            e_close(e);
        return;
    }
    for (size_t off = 0, n; off < b->len; off += n) {
        /* Pieces for the first 4 KiB only: a 1 MiB body in 1-byte writes
         * would cost a million write requests. */
        n = off < 4096 ? step : b->len - off;
        if (n > b->len - off)
            n = b->len - off;
        ewrite *ew = xcalloc(1, sizeof(*ew));
        ew->e = e;
        uv_buf_t ub = uv_buf_init(b->data + off, (unsigned)n);
        e->pending_writes++;
        if (uv_write(&ew->w, (uv_stream_t *)&e->pipe, &ub, 1, e_written) < 0) {
            e->pending_writes--;
            free(ew);
            e_close(e);
            return;
        }
    }
}

static void e_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    econn *e = st->data;
    activity++;
    if (n < 0) {
        if (e->pending_writes == 0)
            e_close(e);
        uv_read_stop(st);
        return;
    }
    if (e->answered)
        return;
    buf_append(&e->req, b->base, (size_t)n);
    buf_append(&e->req, "", 1);
    e->req.len--;
    if (strstr(e->req.data, "\r\n\r\n"))
        answer(e);
}

static void e_connection(uv_stream_t *ls, int status)
{
    activity++;
    if (status < 0)
        return;
    econn *e = xcalloc(1, sizeof(*e));
    uv_pipe_init(&loop, &e->pipe, 0);
    e->pipe.data = e;
    e->next = conns;
    conns = e;
    if (uv_accept(ls, (uv_stream_t *)&e->pipe) < 0 ||
        uv_read_start((uv_stream_t *)&e->pipe, e_alloc, e_read) < 0)
        e_close(e);
}

/* ---- the client's callbacks ---- */

static void check_container(const container *c)
{
    if (c == NULL || !c->running || c->id[0] == '\0') {
        fprintf(stderr, "fuzz_docker_http: a container handed over is not running or has no id\n");
        abort();
    }
}

static void cb_connected(void *ud, const char *endpoint, const char *api)
{
    (void)ud;
    activity++;
    if (strcmp(endpoint, host) != 0 || api[0] == '\0')
        abort();
}

static void cb_disconnected(void *ud, const char *reason)
{
    (void)ud;
    (void)reason;
    activity++;
}

static void cb_sync(void *ud, container **ctrs, size_t n)
{
    (void)ud;
    activity++;
    for (size_t i = 0; i < n; i++) {
        check_container(ctrs[i]);
        container_free(ctrs[i]);
    }
}

static void cb_update(void *ud, container *c)
{
    (void)ud;
    activity++;
    check_container(c);
    container_free(c);
}

static void cb_gone(void *ud, const char *id)
{
    (void)ud;
    (void)id;
    activity++;
}

static void closed_cb(void *arg)
{
    *(bool *)arg = true;
}

/* ---- driving ---- */

static void settle(const bool *stop)
{
    for (int quiet = 0, turns = 0; quiet < 4 && turns < 20000 && !(stop && *stop); turns++) {
        unsigned before = activity;
        uv_run(&loop, UV_RUN_NOWAIT);
        quiet = activity == before ? quiet + 1 : 0;
    }
}

static void start(void)
{
    fuzz_quiet();
    uv_loop_init(&loop);
    char dir[] = "/tmp/loophole-fuzz-docker-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    snprintf(sock_path, sizeof(sock_path), "%s/docker.sock", dir);
    snprintf(host, sizeof(host), "unix://%s", sock_path);
    uv_pipe_init(&loop, &listener, 0);
    if (uv_pipe_bind(&listener, sock_path) != 0 ||
        uv_listen((uv_stream_t *)&listener, 128, e_connection) != 0)
        abort();
}

/* Copies a piece, expanding every BIG marker. */
static void set_piece(buf *b, const uint8_t *p, size_t n)
{
    b->len = 0;
    int bigs = 0;
    for (size_t i = 0; i < n;) {
        if (bigs < BIG_MAX && n - i >= strlen(BIG) && memcmp(p + i, BIG, strlen(BIG)) == 0) {
            bigs++;
            static char *big;
            if (!big) {
                big = xmalloc(BIG_LEN);
                memset(big, 'x', BIG_LEN);
            }
            buf_append(b, big, BIG_LEN);
            i += strlen(BIG);
        } else {
            buf_append(b, p + i, 1);
            i++;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sock_path[0] == '\0')
        start();
    if (size < 1)
        return 0;
    flags = data[0];
    fuzz_cut cut = fuzz_cut_init(data + 1, size - 1, SEP, strlen(SEP));
    int k = 0;
    const uint8_t *p;
    size_t n;
    for (; k < P_N && fuzz_next(&cut, &p, &n); k++)
        set_piece(&piece[k], p, n);
    for (; k < P_N; k++)
        set_piece(&piece[k], (const uint8_t *)defaults[k], strlen(defaults[k]));

    docker_options o = {.host = host, .user = NULL};
    docker_callbacks cbs = {NULL, cb_connected, cb_disconnected, cb_sync, cb_update, cb_gone};
    docker_client *d;
    if (docker_client_new(&loop, &o, &cbs, &d) != 0)
        abort();
    docker_client_start(d);
    settle(NULL);

    bool closed = false;
    docker_client_close(d, closed_cb, &closed);
    for (econn *e = conns; e; e = e->next)
        e_close(e);
    settle(&closed);
    while (conns)
        uv_run(&loop, UV_RUN_NOWAIT);
    if (!closed) {
        fprintf(stderr, "fuzz_docker_http: the client's close callback never ran\n");
        abort();
    }
    return 0;
}
