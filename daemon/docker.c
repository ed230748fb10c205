/* The Docker engine client's I/O: HTTP/1.1 requests over the engine's unix
 * socket (one connection per request, plus the long-lived event stream), the
 * connect/sync/event state machine and the reconnect backoff. Decoding lives
 * in docker_json.c, socket discovery in docker_discover.c. */
#include "docker.h"
#include "docker_discover.h"
#include "docker_json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include <http_parser.h>

#include "labels.h"
#include "log.h"
#include "util.h"

#define REQ_TIMEOUT_MS 10000
/* docker_request: the longest silence allowed. An image pull streams its
 * progress, so an idle timer (restarted on every read) bounds a hung engine
 * without cutting a slow pull short. */
#define USER_IDLE_MS 60000
#define BODY_MAX (16u * 1024 * 1024)
#define BACKOFF_MIN_MS 250
/* A session synced at least this long resets the backoff when it ends. */
#define STABLE_SESSION_MS 10000
#define BACKOFF_MAX_MS 10000
/* Inspects in flight at once during a sync. */
#define SYNC_WINDOW 8
/* Events queued while syncing or while one event is being inspected. Beyond
 * this the client has lost track and resyncs from scratch. */
#define QUEUE_MAX 10000

typedef struct dreq dreq;
typedef void (*dreq_done_fn)(dreq *r, int err);

enum req_kind {
    REQ_PING,
    REQ_VERSION,
    REQ_INFO,
    REQ_EVENTS,
    REQ_LIST,
    REQ_SYNC_INSPECT,
    REQ_EVENT_INSPECT,
    REQ_SYNC_IMAGE,  /* a synced container's image labels */
    REQ_EVENT_IMAGE, /* an updated container's image labels */
    REQ_USER,        /* docker_request */
};

/* One HTTP request on its own connection. Freed when both its handles have
 * closed; `finished` guards the single completion. */
struct dreq {
    docker_client *d;
    dreq *prev, *next;
    enum req_kind kind;
    unsigned gen;
    char *path;
    char id[65];         /* inspects: the container */
    container *ctr;      /* image fetches: the container waiting for its image's labels */
    docker_reply_fn ucb; /* REQ_USER */
    void *uud;
    uv_pipe_t pipe;
    uv_connect_t conn;
    uv_write_t wr;
    uv_timer_t timer;
    int refs; /* open handles (pipe, timer); freed at zero */
    bool connected;
    bool finished;
    bool stream; /* events: the body goes to the splitter, no timeout after headers */
    http_parser parser;
    int status;
    bool headers_done;
    bool complete;
    char hdr_field[32];
    size_t hdr_field_len;
    bool hdr_field_trunc;
    bool last_was_value;
    bool cur_is_api;
    char api_hdr[16];
    size_t api_hdr_len;
    buf reqbuf;
    buf body;
};

enum state { ST_IDLE, ST_CONNECTING, ST_SYNCING, ST_SYNCED, ST_WAITING };

struct docker_client {
    uv_loop_t *loop;
    char *host;
    char *user;
    docker_callbacks cbs;
    docker_status st;
    enum state state;
    unsigned gen;
    uv_timer_t retry;
    int64_t backoff_ms;
    int64_t synced_at; /* Unix ms of the last completed sync */
    bool outage_reported;
    bool closing;
    void (*close_cb)(void *arg);
    void *close_arg;
    int refs; /* requests not yet freed, plus the retry timer; freed at zero */
    dreq *reqs;

    char **cands;
    size_t ncands, cand;
    char ping_api[16];
    dreq *events;
    docker_splitter split;

    char **ids;
    size_t nids, next_id, inspecting;
    container **found;
    size_t nfound;

    docker_event *queue;
    size_t qhead, qlen, qcap;
    bool event_busy;
    /* Undecodable or overlong event lines: a broken engine must not flood
     * the log with one line per event. */
    log_limit bad_event_log;
    /* Events whose container id is not a hex id: dropped, said at this rate. */
    log_limit bad_id_log;
};

static void outage(docker_client *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pump_events(docker_client *d);
static void start_attempt(docker_client *d);

/* ---- requests ---- */

static void maybe_free_client(docker_client *d)
{
    if (d->refs > 0)
        return;
    void (*cb)(void *) = d->close_cb;
    void *arg = d->close_arg;
    /* A user callback may have closed the client from inside the splitter,
     * which then went on buffering. */
    docker_splitter_free(&d->split);
    free(d->host);
    free(d->user);
    free(d);
    if (cb)
        cb(arg);
}

static void req_handle_closed(uv_handle_t *h)
{
    dreq *r = h->data;
    LH_REQUIRE(r->refs > 0);
    if (--r->refs > 0)
        return;
    docker_client *d = r->d;
    if (r->prev)
        r->prev->next = r->next;
    else
        d->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    free(r->path);
    container_free(r->ctr);
    buf_free(&r->reqbuf);
    buf_free(&r->body);
    free(r);
    LH_REQUIRE(d->refs > 0);
    d->refs--;
    if (d->closing)
        maybe_free_client(d);
}

static dreq_done_fn done_fn(enum req_kind k);

/* Completes a request once: closes its handles and, unless the client moved
 * on (new generation or closing), reports to the state machine. A
 * docker_request's callback runs in every case: it was promised exactly one
 * call. The body stays valid until the handles have closed. */
static void req_finish(dreq *r, int err)
{
    if (r->finished)
        return;
    r->finished = true;
    uv_close((uv_handle_t *)&r->pipe, req_handle_closed);
    uv_close((uv_handle_t *)&r->timer, req_handle_closed);
    docker_client *d = r->d;
    if (r->kind == REQ_USER) {
        docker_reply_fn cb = r->ucb;
        r->ucb = NULL;
        if (cb)
            cb(r->uud, err, err < 0 ? 0 : r->status, err < 0 ? NULL : r->body.data,
               err < 0 ? 0 : r->body.len);
        return;
    }
    if (!d->closing && r->gen == d->gen)
        done_fn(r->kind)(r, err);
}

/* Ends a request without reporting it. */
static void req_abort(dreq *r)
{
    if (r->finished)
        return;
    r->gen = r->d->gen - 1; /* never current: req_finish stays quiet */
    req_finish(r, -ECANCELED);
}

/* A new session ends the old one's requests; docker_request's live on
 * their own connections until they end or the client closes. */
static void abort_all(docker_client *d)
{
    for (dreq *r = d->reqs; r != NULL; r = r->next)
        if (r->kind != REQ_USER || d->closing)
            req_abort(r);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    dreq *r = p->data;
    if (r->last_was_value) {
        r->last_was_value = false;
        r->hdr_field_len = 0;
        r->hdr_field_trunc = false;
    }
    if (r->hdr_field_len + len >= sizeof(r->hdr_field)) {
        r->hdr_field_trunc = true;
        return 0;
    }
    memcpy(r->hdr_field + r->hdr_field_len, at, len);
    r->hdr_field_len += len;
    r->hdr_field[r->hdr_field_len] = '\0';
    return 0;
}

/* Only Api-Version matters; a value may arrive in several pieces. */
static int on_header_value(http_parser *p, const char *at, size_t len)
{
    dreq *r = p->data;
    if (!r->last_was_value) {
        r->last_was_value = true;
        r->cur_is_api = !r->hdr_field_trunc && strcasecmp(r->hdr_field, "Api-Version") == 0;
        if (r->cur_is_api)
            r->api_hdr_len = 0;
    }
    if (!r->cur_is_api)
        return 0;
    if (r->api_hdr_len + len >= sizeof(r->api_hdr))
        len = sizeof(r->api_hdr) - 1 - r->api_hdr_len;
    memcpy(r->api_hdr + r->api_hdr_len, at, len);
    r->api_hdr_len += len;
    r->api_hdr[r->api_hdr_len] = '\0';
    return 0;
}

static void events_headers(dreq *r);
static void req_timeout(uv_timer_t *t);

static int on_headers_complete(http_parser *p)
{
    dreq *r = p->data;
    r->status = (int)p->status_code;
    r->headers_done = true;
    if (r->stream) {
        uv_timer_stop(&r->timer);
        if (r->gen == r->d->gen && !r->d->closing)
            events_headers(r);
    }
    return r->finished ? -1 : 0;
}

static void on_event_line(void *ud, const char *line, size_t len);

static int on_body(http_parser *p, const char *at, size_t len)
{
    dreq *r = p->data;
    if (r->finished)
        return -1;
    if (r->stream) {
        docker_client *d = r->d;
        if (docker_splitter_feed(&d->split, at, len, on_event_line, d) == -EMSGSIZE && !d->closing)
            log_limited(&d->bad_event_log, LOG_WARN, "docker", 0,
                        "dropped an event longer than 1 MiB");
        return r->finished ? -1 : 0;
    }
    if (r->body.len + len > BODY_MAX) {
        req_finish(r, -EMSGSIZE);
        return -1;
    }
    buf_append(&r->body, at, len);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    dreq *r = p->data;
    r->complete = true;
    /* For the event stream the end of the message is the end of the stream:
     * the engine went away. */
    req_finish(r, r->stream ? -ECONNRESET : 0);
    return -1;
}

static const http_parser_settings parser_settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void req_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    static char slab[65536]; /* one loop, one thread: consumed before the next read */
    b->base = slab;
    b->len = sizeof(slab);
}

static void req_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    dreq *r = s->data;
    if (r->finished)
        return;
    if (nread == UV_EOF) {
        /* Tells http-parser that a close-delimited body has ended. */
        http_parser_execute(&r->parser, &parser_settings, NULL, 0);
        if (!r->finished)
            req_finish(r, -ECONNRESET);
        return;
    }
    if (nread < 0) {
        req_finish(r, (int)nread);
        return;
    }
    if (r->kind == REQ_USER)
        uv_timer_start(&r->timer, req_timeout, USER_IDLE_MS, 0);
    size_t n = http_parser_execute(&r->parser, &parser_settings, b->base, (size_t)nread);
    if (r->finished)
        return;
    if (n != (size_t)nread || HTTP_PARSER_ERRNO(&r->parser) != HPE_OK)
        req_finish(r, -EPROTO);
}

static void req_written(uv_write_t *w, int status)
{
    dreq *r = w->data;
    if (status < 0 && !r->finished)
        req_finish(r, status);
}

static void req_connected(uv_connect_t *c, int status)
{
    dreq *r = c->data;
    if (r->finished)
        return;
    if (status < 0) {
        req_finish(r, status);
        return;
    }
    r->connected = true;
    uv_buf_t b = uv_buf_init(r->reqbuf.data, (unsigned)r->reqbuf.len);
    int e = uv_write(&r->wr, (uv_stream_t *)&r->pipe, &b, 1, req_written);
    if (e == 0)
        e = uv_read_start((uv_stream_t *)&r->pipe, req_alloc, req_read);
    if (e < 0)
        req_finish(r, e);
}

static void req_timeout(uv_timer_t *t)
{
    dreq *r = t->data;
    req_finish(r, -ETIMEDOUT);
}

/* Starts method path on the socket, with an optional JSON body. Fails
 * synchronously only when the socket path cannot be used at all. */
static int req_start_full(docker_client *d, const char *sock, enum req_kind kind,
                          const char *method, const char *path, const char *body, dreq **out)
{
    struct sockaddr_un sun;
    /* libuv silently truncates a long path; refuse it instead. */
    if (strlen(sock) >= sizeof(sun.sun_path))
        return -ENAMETOOLONG;
    dreq *r = xcalloc(1, sizeof(*r));
    r->d = d;
    r->kind = kind;
    r->gen = d->gen;
    r->path = xstrdup(path);
    r->stream = kind == REQ_EVENTS;
    uv_pipe_init(d->loop, &r->pipe, 0);
    uv_timer_init(d->loop, &r->timer);
    r->refs = 2;
    r->pipe.data = r->timer.data = r->conn.data = r->wr.data = r;
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->parser.data = r;
    buf_appendf(&r->reqbuf,
                "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: loophole\r\n"
                "Accept: application/json\r\nConnection: close\r\n",
                method, path);
    if (body != NULL)
        buf_appendf(&r->reqbuf, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                    strlen(body), body);
    else if (strcmp(method, "GET") != 0)
        buf_appendf(&r->reqbuf, "Content-Length: 0\r\n\r\n");
    else
        buf_appendf(&r->reqbuf, "\r\n");
    r->next = d->reqs;
    if (d->reqs)
        d->reqs->prev = r;
    d->reqs = r;
    d->refs++;
    uv_timer_start(&r->timer, req_timeout, kind == REQ_USER ? USER_IDLE_MS : REQ_TIMEOUT_MS, 0);
    uv_pipe_connect(&r->conn, &r->pipe, sock, req_connected);
    if (out)
        *out = r;
    return 0;
}

static int req_start(docker_client *d, const char *sock, enum req_kind kind, const char *path,
                     dreq **out)
{
    return req_start_full(d, sock, kind, "GET", path, NULL, out);
}

/* ---- the state machine ---- */

static void set_connected(docker_client *d, bool c)
{
    if (d->st.connected != c) {
        d->st.connected = c;
        d->st.since = now_ms();
    }
}

static void reset_session(docker_client *d)
{
    d->gen++;
    abort_all(d);
    d->events = NULL;
    docker_splitter_free(&d->split);
    docker_free_ids(d->ids, d->nids);
    d->ids = NULL;
    d->nids = d->next_id = d->inspecting = 0;
    for (size_t i = 0; i < d->nfound; i++)
        container_free(d->found[i]);
    free(d->found);
    d->found = NULL;
    d->nfound = 0;
    free(d->queue);
    d->queue = NULL;
    d->qhead = d->qlen = d->qcap = 0;
    d->event_busy = false;
    docker_free_ids(d->cands, d->ncands);
    d->cands = NULL;
    d->ncands = d->cand = 0;
}

static void retry_fired(uv_timer_t *t)
{
    docker_client *d = t->data;
    start_attempt(d);
}

/* The engine is unreachable or went away: report once, retry later. */
static void outage(docker_client *d, const char *fmt, ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    /* A session that stayed synced a while earns a quick retry; an engine
     * that accepts, syncs and drops us at once keeps backing off instead of
     * being hammered four times a second. */
    if (d->state == ST_SYNCED && now_ms() - d->synced_at >= STABLE_SESSION_MS)
        d->backoff_ms = BACKOFF_MIN_MS;
    reset_session(d);
    strlcpy_(d->st.last_error, reason, sizeof(d->st.last_error));
    set_connected(d, false);
    d->state = ST_WAITING;
    uv_timer_start(&d->retry, retry_fired, (uint64_t)d->backoff_ms, 0);
    d->backoff_ms = d->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : d->backoff_ms * 2;
    if (d->outage_reported) {
        log_debug("docker", "still no engine: %s", reason);
        return;
    }
    d->outage_reported = true;
    log_warn("docker", "%s; retrying", reason);
    if (d->cbs.disconnected)
        d->cbs.disconnected(d->cbs.ud, reason);
}

static void try_candidate(docker_client *d)
{
    while (d->cand < d->ncands) {
        const char *sock = d->cands[d->cand];
        if (req_start(d, sock, REQ_PING, "/_ping", NULL) == 0)
            return;
        log_debug("docker", "skipping %s: path too long", sock);
        d->cand++;
    }
    if (d->ncands == 1)
        outage(d, "no Docker engine answers on unix://%s", d->cands[0]);
    else
        outage(d, "no Docker engine answers on any of %zu sockets", d->ncands);
}

static void start_attempt(docker_client *d)
{
    reset_session(d);
    d->state = ST_CONNECTING;
    /* Re-discover every time: Docker Desktop, Colima and friends move their
     * sockets around as they start and stop. */
    docker_person person;
    int r = docker_find_person(d->user, &person);
    if (r < 0)
        log_debug("docker", "user %s not found", d->user ? d->user : "");
    docker_discover_input in = {
        .host_flag = d->host,
        .docker_host = getenv("DOCKER_HOST"),
        .person = &person,
        .colima_home = getenv("COLIMA_HOME"),
        .root = "",
    };
    char err[256] = "";
    r = docker_discover(&in, &d->cands, &d->ncands, err, sizeof(err));
    if (r < 0) {
        outage(d, "%s", err);
        return;
    }
    d->cand = 0;
    try_candidate(d);
}

static const char *cur_sock(const docker_client *d)
{
    return d->cands[d->cand];
}

static void ping_done(dreq *r, int err)
{
    docker_client *d = r->d;
    if (err < 0 || r->status != 200) {
        log_debug("docker", "unix://%s: %s", cur_sock(d),
                  err < 0 ? err_str(err) : "ping not answered with 200");
        d->cand++;
        try_candidate(d);
        return;
    }
    strlcpy_(d->ping_api, r->api_hdr, sizeof(d->ping_api));
    req_start(d, cur_sock(d), REQ_VERSION, "/version", NULL);
}

static void start_list(docker_client *d);

static void version_done(dreq *r, int err)
{
    docker_client *d = r->d;
    char api[16] = "", min[16] = "";
    if (err < 0) {
        outage(d, "GET /version on unix://%s: %s", cur_sock(d), err_str(err));
        return;
    }
    if (r->status == 200)
        docker_decode_version(r->body.data, r->body.len, api, sizeof(api), min, sizeof(min));
    /* /_ping's header is the server's maximum; /version's ApiVersion is the
     * same on Docker and the fallback for engines without the header. */
    const char *max = d->ping_api[0] ? d->ping_api : api;
    char use[16];
    int e = docker_negotiate(max, min, use, sizeof(use));
    if (e == -ENOTSUP) {
        outage(d, "engine at unix://%s needs API >= %s, loophole speaks up to %s", cur_sock(d), min,
               DOCKER_CLIENT_API_MAX);
        return;
    }
    if (e < 0) {
        outage(d, "engine at unix://%s reports no usable API version", cur_sock(d));
        return;
    }
    snprintf(d->st.endpoint, sizeof(d->st.endpoint), "unix://%s", cur_sock(d));
    strlcpy_(d->st.api_version, use, sizeof(d->st.api_version));
    strlcpy_(d->st.socket_path, cur_sock(d), sizeof(d->st.socket_path));
    log_info("docker", "using %s, API %s (server max %s, min %s)", d->st.endpoint, use, max,
             min[0] ? min : "?");
    char path[64];
    snprintf(path, sizeof(path), "/v%s/info", use);
    req_start(d, cur_sock(d), REQ_INFO, path, NULL);
}

/* What kind of engine this is decides how containers reach the host; an
 * engine that will not say is still usable for everything else. */
static void info_done(dreq *r, int err)
{
    docker_client *d = r->d;
    docker_info info;
    char why[160] = "";
    bool ok = err == 0 && r->status == 200 &&
              docker_decode_info(r->body.data, r->body.len, &info, why, sizeof(why)) == 0;
    if (!ok) {
        char shown[2 * sizeof(why)];
        log_info("docker", "GET /info on %s failed (%s); the engine's kind is unknown",
                 d->st.endpoint,
                 err < 0  ? err_str(err)
                 : why[0] ? printable(why, strlen(why), shown, sizeof(shown))
                          : "unexpected HTTP status");
    }
    strlcpy_(d->st.os, ok ? info.os : "", sizeof(d->st.os));
    d->st.rootless = ok && info.rootless;
    d->st.engine_kind = docker_engine_kind(ok ? &info : NULL, d->st.endpoint);
    if (ok) {
        char shown[2 * sizeof(info.os)];
        log_info("docker", "engine: %s (%s%s)", docker_engine_name(d->st.engine_kind),
                 printable(info.os, strlen(info.os), shown, sizeof(shown)),
                 info.rootless ? ", rootless" : "");
    }
    const char *use = d->st.api_version;
    /* Subscribe first, list second, so nothing that starts in between is
     * missed. Filter: {"type":["container","network"]}: a network connected
     * to a running container changes its aliases and addresses. */
    char path[160];
    snprintf(path, sizeof(path),
             "/v%s/events?filters=%%7B%%22type%%22%%3A%%5B%%22container%%22%%2C%%22network%%22%%5D"
             "%%7D",
             use);
    req_start(d, cur_sock(d), REQ_EVENTS, path, &d->events);
}

/* Events response headers arrived (from inside http-parser). */
static void events_headers(dreq *r)
{
    docker_client *d = r->d;
    if (r->status != 200) {
        outage(d, "GET /events on %s: HTTP %d", d->st.endpoint, r->status);
        return;
    }
    d->state = ST_SYNCING;
    d->outage_reported = false;
    set_connected(d, true);
    d->st.last_error[0] = '\0';
    if (d->cbs.connected)
        d->cbs.connected(d->cbs.ud, d->st.endpoint, d->st.api_version);
    if (d->closing || r->gen != d->gen)
        return;
    start_list(d);
}

static void events_done(dreq *r, int err)
{
    docker_client *d = r->d;
    d->events = NULL;
    if (r->headers_done && r->status != 200)
        return; /* already reported from events_headers */
    outage(d, "Docker event stream from %s ended (%s)", d->st.endpoint,
           err == -ECONNRESET ? "connection closed" : err_str(err));
}

static void start_list(docker_client *d)
{
    char path[64];
    snprintf(path, sizeof(path), "/v%s/containers/json", d->st.api_version);
    req_start(d, cur_sock(d), REQ_LIST, path, NULL);
}

static void inspect(docker_client *d, enum req_kind kind, const char *id)
{
    char path[128];
    snprintf(path, sizeof(path), "/v%s/containers/%s/json", d->st.api_version, id);
    dreq *r;
    if (req_start(d, cur_sock(d), kind, path, &r) == 0)
        strlcpy_(r->id, id, sizeof(r->id));
}

static void sync_finish(docker_client *d)
{
    container **found = d->found;
    size_t n = d->nfound;
    d->found = NULL;
    d->nfound = 0;
    docker_free_ids(d->ids, d->nids);
    d->ids = NULL;
    d->nids = d->next_id = 0;
    d->state = ST_SYNCED;
    d->synced_at = now_ms();
    log_info("docker", "synced %zu running containers", n);
    if (d->cbs.sync) {
        d->cbs.sync(d->cbs.ud, found, n);
    } else {
        for (size_t i = 0; i < n; i++)
            container_free(found[i]);
    }
    free(found);
    if (!d->closing && d->state == ST_SYNCED)
        pump_events(d);
}

static void sync_more(docker_client *d)
{
    unsigned gen = d->gen;
    while (d->next_id < d->nids && d->inspecting < SYNC_WINDOW && gen == d->gen) {
        d->inspecting++;
        inspect(d, REQ_SYNC_INSPECT, d->ids[d->next_id++]);
    }
    if (gen == d->gen && d->next_id == d->nids && d->inspecting == 0)
        sync_finish(d);
}

static void list_done(dreq *r, int err)
{
    docker_client *d = r->d;
    char why[160] = "";
    if (err == 0 && r->status == 200 &&
        docker_decode_list(r->body.data, r->body.len, &d->ids, &d->nids, why, sizeof(why)) == 0) {
        d->found = xcalloc(d->nids, sizeof(container *));
        sync_more(d);
        return;
    }
    if (why[0] == '\0')
        snprintf(why, sizeof(why), "%s", err < 0 ? err_str(err) : "unexpected HTTP status");
    outage(d, "listing containers on %s failed: %s (HTTP %d)", d->st.endpoint, why, r->status);
}

/* Decodes an inspect reply: 1 with *out, 0 when the container is gone (404),
 * <0 when the reply is unusable. */
static int inspect_result(dreq *r, int err, container **out)
{
    *out = NULL;
    if (err == -EMSGSIZE) {
        /* One container's reply (its labels, say) beyond BODY_MAX: that
         * container is skipped, the engine is fine. */
        log_warn("docker", "inspect %.12s: the reply is larger than %u MiB; skipping it", r->id,
                 BODY_MAX >> 20);
        return -EINVAL;
    }
    if (err < 0)
        return err;
    if (r->status == 404)
        return 0;
    if (r->status != 200) {
        log_warn("docker", "inspect %.12s: HTTP %d", r->id, r->status);
        return -EPROTO;
    }
    char why[160], shown[2 * sizeof(why)];
    if (docker_decode_inspect(r->body.data, r->body.len, out, why, sizeof(why)) < 0) {
        /* The reason quotes keys from the reply (label names, network
         * names): printable only. */
        log_warn("docker", "inspect %.12s: %s", r->id,
                 printable(why, strlen(why), shown, sizeof(shown)));
        return -EINVAL;
    }
    return 1;
}

/* An image id fit to go into a path: "sha256:<hex>" or a bare hex id. */
static bool path_safe_image(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == ':' || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A container that asks for host ports must have its image's own labels
 * known (a label the image carries grants nothing): starts GET
 * /images/<id>/json holding the container, or returns false when there is
 * nothing to fetch and c can be reported at once. */
static bool fetch_image_labels(docker_client *d, enum req_kind kind, container *c)
{
    if (container_label(c, LABEL_HOST_PORTS) == NULL)
        return false;
    if (!path_safe_image(c->image_id)) {
        log_debug("docker", "%.12s: no usable image id; its image's labels are unknown", c->id);
        return false;
    }
    char path[200];
    snprintf(path, sizeof(path), "/v%s/images/%s/json", d->st.api_version, c->image_id);
    dreq *r;
    if (req_start(d, cur_sock(d), kind, path, &r) < 0)
        return false;
    strlcpy_(r->id, c->id, sizeof(r->id));
    r->ctr = c;
    return true;
}

/* The container held by an image fetch, with its image's labels attached
 * when the reply decodes; reported either way. */
static container *image_result(dreq *r, int err)
{
    container *c = r->ctr;
    r->ctr = NULL;
    char why[160] = "";
    if (err == 0 && r->status == 200 &&
        docker_decode_image_labels(r->body.data, r->body.len, &c->image_labels, &c->nimage_labels,
                                   why, sizeof(why)) == 0) {
        c->image_labels_known = true;
        return c;
    }
    char shown[2 * sizeof(why)];
    log_debug("docker", "%.12s: cannot read its image's labels (%s)", c->id,
              err < 0  ? err_str(err)
              : why[0] ? printable(why, strlen(why), shown, sizeof(shown))
                       : "unexpected HTTP status");
    return c;
}

static void sync_add(docker_client *d, container *c)
{
    d->inspecting--;
    d->found[d->nfound++] = c;
    sync_more(d);
}

static void sync_inspect_done(dreq *r, int err)
{
    docker_client *d = r->d;
    container *c;
    int res = inspect_result(r, err, &c);
    if (res < 0 && res != -EINVAL && res != -EPROTO) {
        d->inspecting--;
        outage(d, "inspecting containers on %s failed: %s", d->st.endpoint, err_str(res));
        return;
    }
    /* A container that stopped or vanished between list and inspect is
     * simply not running; one undecodable container must not block the rest. */
    if (c != NULL && c->running) {
        if (!fetch_image_labels(d, REQ_SYNC_IMAGE, c))
            sync_add(d, c);
        return;
    }
    container_free(c);
    d->inspecting--;
    sync_more(d);
}

static void sync_image_done(dreq *r, int err)
{
    sync_add(r->d, image_result(r, err));
}

static void report_update(docker_client *d, container *c)
{
    if (d->cbs.update)
        d->cbs.update(d->cbs.ud, c);
    else
        container_free(c);
}

static void event_image_done(dreq *r, int err)
{
    docker_client *d = r->d;
    d->event_busy = false;
    report_update(d, image_result(r, err));
    if (!d->closing && r->gen == d->gen)
        pump_events(d);
}

static void event_inspect_done(dreq *r, int err)
{
    docker_client *d = r->d;
    container *c;
    int res = inspect_result(r, err, &c);
    d->event_busy = false;
    if (res < 0 && res != -EINVAL && res != -EPROTO) {
        /* The engine cannot be reached although its event stream is still
         * up: its socket was deleted or replaced, or it hangs. The update
         * would be lost and the registry stay stale for as long as the
         * stream lasts, so start over and resync once it answers. */
        outage(d, "inspecting %.12s after an event on %s failed: %s", r->id, d->st.endpoint,
               err_str(res));
        return;
    }
    if (res < 0) {
        /* A bad reply for one container only loses that update. */
        log_warn("docker", "inspect %.12s after an event failed: %s", r->id,
                 res == -EINVAL ? "bad reply" : err_str(res));
    } else if (c != NULL && c->running) {
        /* The queue stays held until the image's labels are in. */
        if (fetch_image_labels(d, REQ_EVENT_IMAGE, c)) {
            d->event_busy = true;
            return;
        }
        report_update(d, c);
    } else {
        container_free(c);
        if (d->cbs.gone)
            d->cbs.gone(d->cbs.ud, r->id);
    }
    if (!d->closing && r->gen == d->gen)
        pump_events(d);
}

static bool action_is(const char *a, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(a, *set) == 0)
            return true;
    return false;
}

static const char *const ACT_INSPECT[] = {"start",   "unpause", "pause",         "rename",
                                          "restart", "update",  "health_status", NULL};
/* kill is always followed by die; oom too. Podman's native event is died. */
static const char *const ACT_GONE[] = {"die", "died", "stop", "destroy", "remove", NULL};

/* Processes queued events in order; an inspect holds the queue so that a
 * later die cannot be overtaken by an earlier start's inspect. */
static void pump_events(docker_client *d)
{
    unsigned gen = d->gen;
    while (!d->closing && gen == d->gen && d->state == ST_SYNCED && !d->event_busy && d->qlen > 0) {
        docker_event ev = d->queue[d->qhead];
        d->qhead = (d->qhead + 1) % d->qcap;
        d->qlen--;
        log_debug("docker", "event %s %.12s", ev.action, ev.id);
        if (action_is(ev.action, ACT_INSPECT)) {
            d->event_busy = true;
            inspect(d, REQ_EVENT_INSPECT, ev.id);
        } else if (action_is(ev.action, ACT_GONE)) {
            if (d->cbs.gone)
                d->cbs.gone(d->cbs.ud, ev.id);
        }
    }
}

static void resync_fired(uv_timer_t *t);

static void on_event_line(void *ud, const char *line, size_t len)
{
    docker_client *d = ud;
    if (d->closing || d->events == NULL || d->state < ST_SYNCING)
        return;
    docker_event ev;
    int r = docker_decode_event(line, len, &ev);
    if (r == -EBADMSG) {
        /* Its id would go into a request line: never sent, only shown. */
        char shown[PRINTABLE_BUF];
        log_limited(&d->bad_id_log, LOG_WARN, "docker", 0,
                    "dropping a %s event whose container id \"%s\" is not a hex id",
                    strcmp(ev.type, "network") == 0 ? "network" : "container",
                    printable(ev.id, strlen(ev.id), shown, sizeof(shown)));
        return;
    }
    if (r < 0) {
        log_limited(&d->bad_event_log, LOG_WARN, "docker", 0,
                    "ignoring an undecodable event (%zu bytes)", len);
        return;
    }
    if (strcmp(ev.type, "network") == 0 && ev.container[0] &&
        (strcmp(ev.action, "connect") == 0 || strcmp(ev.action, "disconnect") == 0)) {
        /* Re-inspect the container the network was attached to or detached
         * from (a stopped one then turns into gone, which is harmless). */
        strlcpy_(ev.id, ev.container, sizeof(ev.id));
        strlcpy_(ev.type, "container", sizeof(ev.type));
        strlcpy_(ev.action, "update", sizeof(ev.action));
    }
    if (strcmp(ev.type, "container") != 0)
        return;
    if (!action_is(ev.action, ACT_INSPECT) && !action_is(ev.action, ACT_GONE))
        return;
    if (d->qlen == QUEUE_MAX) {
        log_warn("docker", "event backlog overflowed; resyncing");
        reset_session(d);
        d->state = ST_WAITING;
        uv_timer_start(&d->retry, resync_fired, 0, 0);
        return;
    }
    if (d->qlen == d->qcap) {
        size_t cap = d->qcap ? d->qcap * 2 : 16;
        docker_event *q = xcalloc(cap, sizeof(*q));
        for (size_t i = 0; i < d->qlen; i++)
            q[i] = d->queue[(d->qhead + i) % d->qcap];
        free(d->queue);
        d->queue = q;
        d->qhead = 0;
        d->qcap = cap;
    }
    d->queue[(d->qhead + d->qlen) % d->qcap] = ev;
    d->qlen++;
    if (d->state == ST_SYNCED)
        pump_events(d);
}

static void resync_fired(uv_timer_t *t)
{
    start_attempt(t->data);
}

static dreq_done_fn done_fn(enum req_kind k)
{
    switch (k) {
    case REQ_PING:
        return ping_done;
    case REQ_VERSION:
        return version_done;
    case REQ_INFO:
        return info_done;
    case REQ_EVENTS:
        return events_done;
    case REQ_LIST:
        return list_done;
    case REQ_SYNC_INSPECT:
        return sync_inspect_done;
    case REQ_EVENT_INSPECT:
        return event_inspect_done;
    case REQ_SYNC_IMAGE:
        return sync_image_done;
    case REQ_EVENT_IMAGE:
        return event_image_done;
    case REQ_USER:
        break; /* req_finish calls the user's callback itself */
    }
    return NULL;
}

/* ---- public ---- */

int docker_client_new(uv_loop_t *loop, const docker_options *opts, const docker_callbacks *cbs,
                      docker_client **out)
{
    *out = NULL;
    docker_client *d = xcalloc(1, sizeof(*d));
    d->loop = loop;
    if (opts != NULL) {
        d->host = opts->host && opts->host[0] ? xstrdup(opts->host) : NULL;
        d->user = opts->user && opts->user[0] ? xstrdup(opts->user) : NULL;
    }
    if (cbs != NULL)
        d->cbs = *cbs;
    d->backoff_ms = BACKOFF_MIN_MS;
    d->st.since = now_ms();
    int r = uv_timer_init(loop, &d->retry);
    if (r < 0) {
        free(d->host);
        free(d->user);
        free(d);
        return r;
    }
    d->retry.data = d;
    d->refs = 1;
    *out = d;
    return 0;
}

void docker_client_start(docker_client *d)
{
    if (d->state != ST_IDLE || d->closing)
        return;
    /* From the loop, so no callback runs before start returns. */
    d->state = ST_WAITING;
    uv_timer_start(&d->retry, retry_fired, 0, 0);
}

void docker_client_status(const docker_client *d, docker_status *st)
{
    *st = d->st;
}

uv_loop_t *docker_client_loop(const docker_client *d)
{
    return d->loop;
}

int docker_request(docker_client *d, const char *method, const char *path, const char *json_body,
                   docker_reply_fn cb, void *ud)
{
    if (d->closing || !d->st.connected || d->st.socket_path[0] == '\0')
        return -ENOTCONN;
    if (path == NULL || path[0] != '/')
        return -EINVAL;
    buf p = {0};
    buf_appendf(&p, "/v%s%s", d->st.api_version, path);
    dreq *r = NULL;
    int e = req_start_full(d, d->st.socket_path, REQ_USER, method, p.data, json_body, &r);
    buf_free(&p);
    if (e < 0)
        return e;
    r->ucb = cb;
    r->uud = ud;
    return 0;
}

static void retry_closed(uv_handle_t *h)
{
    docker_client *d = h->data;
    LH_REQUIRE(d->refs > 0);
    d->refs--;
    maybe_free_client(d);
}

void docker_client_close(docker_client *d, void (*cb)(void *arg), void *arg)
{
    if (d->closing)
        return;
    d->closing = true;
    d->close_cb = cb;
    d->close_arg = arg;
    reset_session(d);
    uv_close((uv_handle_t *)&d->retry, retry_closed);
}
