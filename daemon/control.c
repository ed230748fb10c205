/* The control API server: one request per connection (Connection: close),
 * parsed with http-parser under hard limits, answered from the provider. A
 * /v1/events request turns the connection into a line stream that stays open
 * until the client leaves. */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "platform.h"
#include "protocol.h"
#include "util.h"

#define MOD "control"
/* After a response, how long we keep draining what the client still sends
 * before closing (see client_finish). */
#define LINGER_MS 2000
/* At most this many connections are accepted per turn of the loop. libuv
 * accepts for as long as the backlog holds connections, and users who
 * reconnect as fast as the caps close their connections keep it full: the
 * loop would stay in the accept callback and DNS, Docker and the proxies
 * would starve. Past the budget the listener waits for the next turn. */
#define ACCEPTS_PER_TURN 32
/* Room in the backlog for every connection the caps are closing to come
 * back without refusing other users' connects (a full unix socket backlog
 * refuses with EAGAIN); the kernel caps it at somaxconn. */
#define LISTEN_BACKLOG 4096

enum client_state {
    ST_READING, /* waiting for a complete request; counts as idle for eviction */
    ST_LINGER,  /* answered; draining input until EOF */
    ST_EVENTS,  /* a /v1/events stream */
};

typedef struct control_client client;

struct control_server {
    uv_loop_t *loop;
    uv_pipe_t listener;
    control_provider prov;
    char *path; /* set only when we bound the socket and must unlink it */
    gid_t admin_gid;
    bool have_admin_gid;
    char *admin_group;
    unsigned max_clients;
    unsigned max_per_uid; /* a quarter of max_clients, at least 1 */
    unsigned idle_ms;
    client *head, *tail; /* live clients, oldest first */
    unsigned nclients;   /* live clients (not closing), for the cap */
    /* The listener until it is closed, plus every client until it is freed;
     * the server is freed when this reaches zero after control_close. */
    unsigned refs;
    bool override_on;
    peercred override;
    bool closing;
    log_limit accept_log; /* any local user can provoke accept errors */
    /* Accepts this turn of the loop (turn_ms is uv_now's value for it), and
     * the timer that resumes accepting on the next turn after the budget
     * ran out (initialised on first use, then counted in refs). */
    unsigned turn_accepts;
    uint64_t turn_ms;
    uv_timer_t resume;
    bool resume_on;
    void (*close_cb)(void *arg);
    void *close_arg;
};

struct control_client {
    control_server *srv;
    uv_pipe_t pipe;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    http_parser parser;
    peercred cred;
    bool cred_ok;
    enum client_state state;
    bool headers_done;
    bool message_done;
    bool header_too_large;
    bool body_too_large;
    size_t header_bytes; /* counted in the parser callbacks */
    size_t raw_bytes;    /* everything received before the headers completed */
    buf url;
    buf body;
    int refs; /* open handles (pipe, timer); freed at zero */
    bool closing;
    client *prev, *next;
};

typedef struct write_req {
    uv_write_t req;
    size_t len;
    char data[];
} write_req;

static void server_maybe_finish(control_server *s);

/* ---- permissions ---- */

bool control_allowed(const peercred *c, gid_t admin_gid, bool have_admin_gid)
{
    if (c->uid == 0)
        return true;
    if (!have_admin_gid)
        return false;
    if (c->gid == admin_gid)
        return true;
    for (int i = 0; i < c->ngroups && i < PEERCRED_MAX_GROUPS; i++)
        if (c->groups[i] == admin_gid)
            return true;
    return false;
}

bool control_docker_allowed(const peercred *c, uid_t sock_uid, gid_t sock_gid, mode_t mode)
{
    if (c->uid == sock_uid && (mode & 0600) == 0600)
        return true;
    if ((mode & 0060) != 0060)
        return false;
    if (c->gid == sock_gid)
        return true;
    for (int i = 0; i < c->ngroups && i < PEERCRED_MAX_GROUPS; i++)
        if (c->groups[i] == sock_gid)
            return true;
    return false;
}

void control_set_peer_override(control_server *s, const peercred *cred)
{
    s->override_on = cred != NULL;
    if (cred)
        s->override = *cred;
}

unsigned control_client_count(const control_server *s)
{
    return s->nclients;
}

/* ---- client lifetime ---- */

static void client_unlink(client *c)
{
    control_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        s->tail = c->prev;
    c->prev = c->next = NULL;
}

static void on_client_handle_closed(uv_handle_t *h)
{
    client *c = h->data;
    LH_REQUIRE(c->refs > 0);
    if (--c->refs > 0)
        return;
    control_server *s = c->srv;
    buf_free(&c->url);
    buf_free(&c->body);
    free(c);
    LH_REQUIRE(s->refs > 0);
    s->refs--;
    server_maybe_finish(s);
}

/* Idempotent. Pending writes are cancelled by libuv before the close
 * callbacks run, so nothing fires on freed memory. */
static void client_close(client *c)
{
    if (c->closing)
        return;
    c->closing = true;
    control_server *s = c->srv;
    client_unlink(c);
    s->nclients--;
    uv_read_stop((uv_stream_t *)&c->pipe);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_client_handle_closed);
    uv_close((uv_handle_t *)&c->pipe, on_client_handle_closed);
}

static void on_timer(uv_timer_t *t)
{
    client *c = t->data;
    if (c->state == ST_READING)
        log_debug(MOD, "closing a client that sent no complete request in time");
    client_close(c);
}

static void on_write(uv_write_t *req, int status)
{
    write_req *w = container_of(req, write_req, req);
    client *c = req->data;
    if (status < 0 && status != UV_ECANCELED && !c->closing) {
        log_debug_err(MOD, status, "write to client");
        client_close(c);
    }
    free(w);
}

static int client_write(client *c, const char *data, size_t len)
{
    write_req *w = xmalloc(sizeof(*w) + len);
    memcpy(w->data, data, len);
    w->len = len;
    w->req.data = c;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, on_write);
    if (rc < 0) {
        free(w);
        client_close(c);
    }
    return rc;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)req;
    (void)status;
}

/* After the response: half-close our side and keep reading (discarding)
 * until the client closes or LINGER_MS pass. Closing at once while unread
 * request bytes sit in our receive queue would make the kernel report a
 * reset to the client, which could then lose the response (e.g. a 431 for
 * an oversized header it is still sending). */
static void client_finish(client *c)
{
    if (c->closing)
        return;
    c->state = ST_LINGER;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->pipe, on_shutdown) < 0) {
        client_close(c);
        return;
    }
    unsigned ms = c->srv->idle_ms < LINGER_MS ? c->srv->idle_ms : LINGER_MS;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ---- responses ---- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

static void respond(client *c, int status, const char *extra_headers, const char *body, size_t len)
{
    buf b = {0};
    if (status == 204) {
        /* No body at all: a 204 ends at its headers. */
        buf_appendf(&b, "HTTP/1.1 204 %s\r\nServer: %s\r\nConnection: close\r\n%s\r\n",
                    reason(status), LH_HTTP_PRODUCT, extra_headers ? extra_headers : "");
    } else {
        buf_appendf(&b,
                    "HTTP/1.1 %d %s\r\nServer: %s\r\nContent-Type: application/json\r\n"
                    "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
                    status, reason(status), LH_HTTP_PRODUCT, len + 1,
                    extra_headers ? extra_headers : "");
        buf_append(&b, body, len);
        buf_append(&b, "\n", 1); /* so curl output ends the line */
    }
    int rc = client_write(c, b.data, b.len);
    buf_free(&b);
    if (rc == 0)
        client_finish(c);
}

static void respond_gen(client *c, int status, yajl_gen g)
{
    const unsigned char *out;
    size_t len;
    if (yajl_gen_get_buf(g, &out, &len) != yajl_gen_status_ok || len == 0) {
        static const char err[] = "{\"error\":\"the daemon produced no data\"}";
        respond(c, 500, NULL, err, sizeof(err) - 1);
        return;
    }
    respond(c, status, NULL, (const char *)out, len);
}

static void respond_error(client *c, int status, const char *extra_headers, const char *msg)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"error", 5);
    yajl_gen_string(g, (const unsigned char *)msg, strlen(msg));
    yajl_gen_map_close(g);
    const unsigned char *out;
    size_t len;
    yajl_gen_get_buf(g, &out, &len);
    respond(c, status, extra_headers, (const char *)out, len);
    yajl_gen_free(g);
}

/* ---- routing: the pure matcher ---- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes a path segment into out; rejects '/', NUL and bad escapes. */
static int decode_segment(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -EINVAL;
            int hi = hexval(in[i + 1]), lo = hexval(in[i + 2]);
            if (hi < 0 || lo < 0)
                return -EINVAL;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (ch == '\0' || ch == '/')
            return -EINVAL;
        if (o + 1 >= cap)
            return -ENAMETOOLONG;
        out[o++] = ch;
    }
    out[o] = '\0';
    return o > 0 ? 0 : -EINVAL;
}

/* The part of a request target that routing looks at: up to '?' or '#',
 * without one trailing '/'. */
static size_t route_path_len(const char *target)
{
    size_t n = strcspn(target, "?#");
    if (n > 1 && target[n - 1] == '/')
        n--;
    return n;
}

/* Matches path[0..plen) against pat, segment by segment. With out == NULL
 * only the shape is checked (literal segments equal, a {param} segment
 * non-empty); with out, the {params} are decoded too, which can fail with
 * -EINVAL or -ENAMETOOLONG. Returns 0 or -ENOENT. */
static int pattern_match(const char *pat, const char *path, size_t plen, control_params *out)
{
    const char *p = pat, *s = path, *end = path + plen;
    int np = 0;
    if (out)
        out->n = 0;
    for (;;) {
        if (*p != '/' || s >= end || *s != '/')
            return -ENOENT;
        p++;
        s++;
        const char *pe = p + strcspn(p, "/");
        const char *se = memchr(s, '/', (size_t)(end - s));
        if (!se)
            se = end;
        size_t pn = (size_t)(pe - p), sn = (size_t)(se - s);
        if (pn >= 2 && p[0] == '{' && p[pn - 1] == '}') {
            if (sn == 0 || np >= CONTROL_MAX_PARAMS)
                return -ENOENT;
            if (out) {
                int rc = decode_segment(s, sn, out->v[np].value, sizeof(out->v[np].value));
                if (rc < 0)
                    return rc;
                out->v[np].name = p + 1;
                out->v[np].name_len = pn - 2;
                out->n = np + 1;
            }
            np++;
        } else if (pn != sn || memcmp(p, s, pn) != 0) {
            return -ENOENT;
        }
        p = pe;
        s = se;
        if (*p == '\0' && s == end)
            return 0;
        if (*p == '\0' || s == end)
            return -ENOENT;
    }
}

int control_route_match(const control_route *table, size_t n, unsigned method, const char *path,
                        control_params *params, unsigned *allow, int *route)
{
    size_t plen = route_path_len(path);
    *allow = 0;
    *route = -1;
    params->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (pattern_match(table[i].pattern, path, plen, NULL) < 0)
            continue;
        *allow |= table[i].methods;
        if (*route < 0 && (table[i].methods & method))
            *route = (int)i;
    }
    if (*route < 0)
        return *allow ? -ENOTSUP : -ENOENT;
    return pattern_match(table[*route].pattern, path, plen, params);
}

const char *control_param(const control_params *p, const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < p->n; i++)
        if (p->v[i].name_len == len && memcmp(p->v[i].name, name, len) == 0)
            return p->v[i].value;
    return NULL;
}

/* In bit order: index i names the method 1u << i. */
static const char *const method_names[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};

unsigned control_method_bit(int http_method)
{
    switch (http_method) {
    case HTTP_GET:
        return CONTROL_GET;
    case HTTP_HEAD:
        return CONTROL_HEAD;
    case HTTP_POST:
        return CONTROL_POST;
    case HTTP_PUT:
        return CONTROL_PUT;
    case HTTP_PATCH:
        return CONTROL_PATCH;
    case HTTP_DELETE:
        return CONTROL_DELETE;
    default:
        return 0;
    }
}

void control_methods_str(unsigned mask, char *out, size_t cap)
{
    buf b = {0};
    for (size_t i = 0; i < ARRAY_SIZE(method_names); i++)
        if (mask & (1u << i))
            buf_appendf(&b, "%s%s", b.len ? ", " : "", method_names[i]);
    strlcpy_(out, b.data ? b.data : "", cap);
    buf_free(&b);
}

/* ---- routing: the handlers and the table ---- */

static void h_status(client *c, const control_params *p)
{
    (void)p;
    control_server *s = c->srv;
    if (!s->prov.status) {
        respond_error(c, 500, NULL, "the daemon has no data for this path");
        return;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    s->prov.status(s->prov.ud, g);
    respond_gen(c, 200, g);
    yajl_gen_free(g);
}

static void h_containers(client *c, const control_params *p)
{
    (void)p;
    control_server *s = c->srv;
    if (!s->prov.containers) {
        respond_error(c, 500, NULL, "the daemon has no data for this path");
        return;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    s->prov.containers(s->prov.ud, g);
    respond_gen(c, 200, g);
    yajl_gen_free(g);
}

/* 404 for a container key the provider does not know. */
static void respond_no_container(client *c, const char *key)
{
    /* The key is the client's bytes, any bytes but NUL and "/": quoted
     * raw, invalid UTF-8 would make the answer invalid JSON. */
    char shown[PRINTABLE_BUF], msg[PRINTABLE_BUF + 64];
    snprintf(msg, sizeof(msg), "no container matches \"%s\"",
             printable(key, strlen(key), shown, sizeof(shown)));
    respond_error(c, 404, NULL, msg);
}

static void h_container(client *c, const control_params *p)
{
    control_server *s = c->srv;
    const char *key = control_param(p, "name");
    if (!s->prov.container || !key) {
        respond_error(c, 500, NULL, "the daemon has no data for this path");
        return;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    int rc = s->prov.container(s->prov.ud, key, g);
    if (rc == -ENOENT) {
        respond_no_container(c, key);
    } else if (rc < 0) {
        respond_error(c, 500, NULL, "looking up the container failed");
    } else {
        respond_gen(c, 200, g);
    }
    yajl_gen_free(g);
}

/* Runs after the admin check in dispatch. */
static void resolver_change(client *c, bool install)
{
    control_server *s = c->srv;
    if (!s->prov.resolver) {
        respond_error(c, 500, NULL, "this daemon cannot change the resolver");
        return;
    }
    char err[256] = "";
    int rc = s->prov.resolver(s->prov.ud, install, err, sizeof(err));
    if (rc == -ENOTSUP) {
        respond_error(c, 409, NULL,
                      err[0] ? err
                             : "the daemon runs with --resolver off, so it leaves the system "
                               "resolver alone");
        return;
    }
    if (rc < 0) {
        if (!err[0])
            snprintf(err, sizeof(err), "changing the resolver failed: %s", err_str(rc));
        respond_error(c, 500, NULL, err);
        return;
    }
    log_info(MOD, "resolver entry %s at the request of uid %u", install ? "installed" : "removed",
             (unsigned)c->cred.uid);
    char body[64];
    int n = snprintf(body, sizeof(body), "{\"installed\":%s}", install ? "true" : "false");
    respond(c, 200, NULL, body, (size_t)n);
}

static void h_resolver_install(client *c, const control_params *p)
{
    (void)p;
    resolver_change(c, true);
}

static void h_resolver_remove(client *c, const control_params *p)
{
    (void)p;
    resolver_change(c, false);
}

static void h_host_ports(client *c, const control_params *p)
{
    control_server *s = c->srv;
    const char *key = control_param(p, "name");
    if (!s->prov.host_ports || !key) {
        respond_error(c, 500, NULL, "the daemon has no data for this path");
        return;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    int rc = s->prov.host_ports(s->prov.ud, key, g);
    if (rc == -ENOENT)
        respond_no_container(c, key);
    else if (rc < 0)
        respond_error(c, 500, NULL, "looking up the container failed");
    else
        respond_gen(c, 200, g);
    yajl_gen_free(g);
}

static void h_host_port_add(client *c, const control_params *p)
{
    control_server *s = c->srv;
    const char *key = control_param(p, "name");
    if (!s->prov.host_port_add || !key) {
        respond_error(c, 500, NULL, "this daemon cannot expose host ports");
        return;
    }
    char err[512] = "";
    yajl_gen g = yajl_gen_alloc(NULL);
    int rc = s->prov.host_port_add(s->prov.ud, key, c->body.data ? c->body.data : "", c->body.len,
                                   g, err, sizeof(err));
    if (rc == 0) {
        log_info(MOD, "host port exposed at the request of uid %u", (unsigned)c->cred.uid);
        respond_gen(c, 201, g);
    } else if (rc == -ENOENT && !err[0]) {
        respond_no_container(c, key);
    } else {
        int status = rc == -ENOENT ? 404 : rc == -EINVAL ? 400 : rc == -EEXIST ? 409 : 500;
        respond_error(c, status, NULL, err[0] ? err : "exposing the host port failed");
    }
    yajl_gen_free(g);
}

static void h_host_port_remove(client *c, const control_params *p)
{
    control_server *s = c->srv;
    const char *key = control_param(p, "name");
    if (!s->prov.host_port_remove || !key) {
        respond_error(c, 500, NULL, "this daemon cannot expose host ports");
        return;
    }
    char err[512] = "";
    int rc = s->prov.host_port_remove(s->prov.ud, key, control_param(p, "port"),
                                      control_param(p, "proto"), err, sizeof(err));
    if (rc == 0) {
        log_info(MOD, "host port removed at the request of uid %u", (unsigned)c->cred.uid);
        respond(c, 204, NULL, "", 0);
    } else if (rc == -ENOENT && !err[0]) {
        respond_no_container(c, key);
    } else {
        int status = rc == -ENOENT ? 404 : rc == -EINVAL ? 400 : rc == -EPERM ? 409 : 500;
        respond_error(c, status, NULL, err[0] ? err : "removing the host port failed");
    }
}

static void h_leases(client *c, const control_params *p)
{
    (void)p;
    control_server *s = c->srv;
    if (!s->prov.leases) {
        respond_error(c, 500, NULL, "the daemon has no data for this path");
        return;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    s->prov.leases(s->prov.ud, g);
    respond_gen(c, 200, g);
    yajl_gen_free(g);
}

static void respond_no_lease(client *c, const char *name)
{
    char shown[PRINTABLE_BUF], msg[PRINTABLE_BUF + 64];
    snprintf(msg, sizeof(msg), "no lease is named \"%s\" (loophole lease ls lists them)",
             printable(name, strlen(name), shown, sizeof(shown)));
    respond_error(c, 404, NULL, msg);
}

static void h_lease(client *c, const control_params *p)
{
    control_server *s = c->srv;
    const char *name = control_param(p, "name");
    if (!s->prov.lease || !name) {
        respond_error(c, 500, NULL, "the daemon has no data for this path");
        return;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    int rc = s->prov.lease(s->prov.ud, name, g);
    if (rc == -ENOENT)
        respond_no_lease(c, name);
    else if (rc < 0)
        respond_error(c, 500, NULL, "looking up the lease failed");
    else
        respond_gen(c, 200, g);
    yajl_gen_free(g);
}

static void h_lease_add(client *c, const control_params *p)
{
    (void)p;
    control_server *s = c->srv;
    if (!s->prov.lease_add) {
        respond_error(c, 500, NULL, "this daemon cannot lease addresses");
        return;
    }
    char err[512] = "";
    bool created = false;
    yajl_gen g = yajl_gen_alloc(NULL);
    int rc = s->prov.lease_add(s->prov.ud, c->body.data ? c->body.data : "", c->body.len, g,
                               &created, err, sizeof(err));
    if (rc == 0) {
        if (created)
            log_info(MOD, "address leased at the request of uid %u", (unsigned)c->cred.uid);
        respond_gen(c, created ? 201 : 200, g);
    } else {
        int status = rc == -EINVAL || rc == -EDOM                                          ? 400
                     : rc == -EEXIST || rc == -EBUSY || rc == -EADDRINUSE || rc == -ENOSPC ? 409
                                                                                           : 500;
        respond_error(c, status, NULL, err[0] ? err : "leasing the address failed");
    }
    yajl_gen_free(g);
}

static void h_lease_remove(client *c, const control_params *p)
{
    control_server *s = c->srv;
    const char *name = control_param(p, "name");
    if (!s->prov.lease_remove || !name) {
        respond_error(c, 500, NULL, "this daemon cannot lease addresses");
        return;
    }
    char err[512] = "";
    int rc = s->prov.lease_remove(s->prov.ud, name, err, sizeof(err));
    if (rc == 0) {
        log_info(MOD, "lease removed at the request of uid %u", (unsigned)c->cred.uid);
        respond(c, 204, NULL, "", 0);
    } else if (rc == -ENOENT) {
        respond_no_lease(c, name);
    } else {
        respond_error(c, 500, NULL, err[0] ? err : "removing the lease failed");
    }
}

static void h_events(client *c, const control_params *p)
{
    (void)p;
    static const char hdr[] =
        "HTTP/1.1 200 OK\r\nServer: " LH_HTTP_PRODUCT "\r\nContent-Type: application/x-ndjson\r\n"
        "Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
    /* The body is delimited by the connection closing: no length, and the
     * idle timer is off for good. */
    c->state = ST_EVENTS;
    uv_timer_stop(&c->timer);
    client_write(c, hdr, sizeof(hdr) - 1);
}

/* Every route of the API. Adding one is a row here plus its handler; the
 * 404/405 answers, the Allow header and the admin check follow from the
 * table. */
static const control_route routes[] = {
    /* methods, pattern, flags, handler, what (for errors), note (for 405) */
    {CONTROL_GET, LH_API_STATUS, 0, h_status, NULL, NULL},
    {CONTROL_GET, LH_API_CONTAINERS, 0, h_containers, NULL, NULL},
    {CONTROL_GET, LH_API_CONTAINER, 0, h_container, "container", NULL},
    {CONTROL_GET, LH_API_HOST_PORTS, 0, h_host_ports, "container", "list"},
    {CONTROL_POST, LH_API_HOST_PORTS, CONTROL_ROUTE_DOCKER, h_host_port_add,
     "container's host ports", "expose"},
    {CONTROL_DELETE, LH_API_HOST_PORT, CONTROL_ROUTE_DOCKER, h_host_port_remove,
     "container's host ports", "unexpose"},
    {CONTROL_DELETE, LH_API_HOST_PORT_PROTO, CONTROL_ROUTE_DOCKER, h_host_port_remove,
     "container's host ports", "unexpose"},
    {CONTROL_POST, LH_API_RESOLVER, CONTROL_ROUTE_ADMIN, h_resolver_install, "resolver", "install"},
    {CONTROL_DELETE, LH_API_RESOLVER, CONTROL_ROUTE_ADMIN, h_resolver_remove, "resolver", "remove"},
    {CONTROL_GET, LH_API_LEASES, 0, h_leases, NULL, "list"},
    {CONTROL_POST, LH_API_LEASES, CONTROL_ROUTE_ADMIN, h_lease_add, "leases", "lease an address"},
    {CONTROL_GET, LH_API_LEASE, 0, h_lease, "lease", NULL},
    {CONTROL_DELETE, LH_API_LEASE, CONTROL_ROUTE_ADMIN, h_lease_remove, "lease", "remove"},
    {CONTROL_GET, LH_API_EVENTS, 0, h_events, NULL, NULL},
};

/* 405: "Allow: POST, DELETE" and "this path only answers POST (install) and
 * DELETE (remove)", both from the rows whose pattern has this path. */
static void respond_405(client *c, const char *target, unsigned allow)
{
    char methods[64];
    control_methods_str(allow, methods, sizeof(methods));
    char hdr[96];
    snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", methods);

    const char *items[16];
    size_t n = 0;
    char notes[16][48];
    size_t plen = route_path_len(target);
    for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
        if (pattern_match(routes[i].pattern, target, plen, NULL) < 0)
            continue;
        for (size_t m = 0; m < ARRAY_SIZE(method_names) && n < ARRAY_SIZE(items); m++) {
            if (!(routes[i].methods & (1u << m)))
                continue;
            if (routes[i].note) {
                snprintf(notes[n], sizeof(notes[n]), "%s (%s)", method_names[m], routes[i].note);
                items[n] = notes[n];
            } else {
                items[n] = method_names[m];
            }
            n++;
        }
    }
    buf msg = {0};
    buf_appendf(&msg, "this path only answers");
    for (size_t i = 0; i < n; i++)
        buf_appendf(&msg, "%s%s", i == 0 ? " " : i + 1 == n ? " and " : ", ", items[i]);
    respond_error(c, 405, hdr, msg.data);
    buf_free(&msg);
}

/* The one place where changes are checked against the peer's credentials. */
static bool admin_allowed(client *c, const control_route *r)
{
    control_server *s = c->srv;
    if (!c->cred_ok) {
        respond_error(c, 403, NULL, "the daemon could not read your credentials");
        return false;
    }
    if (c->cred.uid != 0 && s->have_admin_gid)
        peercred_load_groups(&c->cred);
    if (control_allowed(&c->cred, s->admin_gid, s->have_admin_gid))
        return true;
    char msg[384];
    if (r->flags & CONTROL_ROUTE_DOCKER) {
        uid_t su;
        gid_t sg;
        mode_t sm;
        bool known = s->prov.docker_socket && s->prov.docker_socket(s->prov.ud, &su, &sg, &sm) == 0;
        if (known) {
            if (c->cred.uid != 0 && c->cred.ngroups < 0)
                peercred_load_groups(&c->cred);
            if (control_docker_allowed(&c->cred, su, sg, sm))
                return true;
            struct group gr, *gres = NULL;
            char gbuf[1024];
            const char *gname =
                getgrgid_r(sg, &gr, gbuf, sizeof(gbuf), &gres) == 0 && gres ? gres->gr_name : NULL;
            char gshown[64];
            if (gname)
                snprintf(gshown, sizeof(gshown), "%s", gname);
            else
                snprintf(gshown, sizeof(gshown), "%u", (unsigned)sg);
            snprintf(msg, sizeof(msg),
                     "changing a %s needs root, membership in the %s group, or access to the "
                     "Docker engine's socket (its owner or the %s group)",
                     r->what ? r->what : "container's host ports", s->admin_group, gshown);
        } else {
            snprintf(msg, sizeof(msg),
                     "changing a %s needs root or membership in the %s group (the Docker "
                     "engine's socket is not known, so its users cannot be told apart)",
                     r->what ? r->what : "container's host ports", s->admin_group);
        }
        respond_error(c, 403, NULL, msg);
        return false;
    }
    if (r->what)
        snprintf(msg, sizeof(msg), "changing the %s needs root or membership in the %s group",
                 r->what, s->admin_group);
    else
        snprintf(msg, sizeof(msg), "this change needs root or membership in the %s group",
                 s->admin_group);
    respond_error(c, 403, NULL, msg);
    return false;
}

static void dispatch(client *c)
{
    const char *target = c->url.data ? c->url.data : "";
    /* The target is the client's: only printable bytes reach the log. */
    char shown[PRINTABLE_BUF];
    log_debug(MOD, "%s %s (uid %d)", http_method_str((enum http_method)c->parser.method),
              printable(target, strcspn(target, "?#"), shown, sizeof(shown)),
              c->cred_ok ? (int)c->cred.uid : -1);

    control_params params;
    unsigned allow;
    int ri;
    int rc = control_route_match(routes, ARRAY_SIZE(routes), control_method_bit(c->parser.method),
                                 target, &params, &allow, &ri);
    if (rc == -ENOTSUP) {
        respond_405(c, target, allow);
        return;
    }
    if (rc == -ENOENT || ri < 0) {
        respond_error(c, 404, NULL, "no such path");
        return;
    }
    const control_route *r = &routes[ri];
    if (rc < 0) {
        /* A {param} that cannot be a name: a bad %-escape, NUL, "/", too long. */
        char msg[128];
        if (r->what)
            snprintf(msg, sizeof(msg), "no %s matches that name or id", r->what);
        else
            snprintf(msg, sizeof(msg), "no such path");
        respond_error(c, 404, NULL, msg);
        return;
    }
    if ((r->flags & (CONTROL_ROUTE_ADMIN | CONTROL_ROUTE_DOCKER)) && !admin_allowed(c, r))
        return;
    r->handler(c, &params);
}

/* ---- request parsing ---- */

static bool count_header(client *c, size_t len)
{
    c->header_bytes += len;
    if (c->header_bytes > CONTROL_MAX_HEADER) {
        c->header_too_large = true;
        return false;
    }
    return true;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    client *c = p->data;
    if (!count_header(c, len))
        return 1;
    buf_append(&c->url, at, len);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    (void)at;
    /* + 4 for ": " and CRLF, an estimate that errs towards the limit. */
    return count_header(p->data, len + 4) ? 0 : 1;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    (void)at;
    return count_header(p->data, len) ? 0 : 1;
}

static int on_headers_complete(http_parser *p)
{
    client *c = p->data;
    c->headers_done = true;
    /* content_length is ULLONG_MAX when absent (chunked or no body). */
    if (p->content_length != ULLONG_MAX && p->content_length > CONTROL_MAX_BODY) {
        c->body_too_large = true;
        http_parser_pause(p, 1);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    client *c = p->data;
    if (c->body.len + len > CONTROL_MAX_BODY) {
        c->body_too_large = true;
        return 1;
    }
    buf_append(&c->body, at, len);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    client *c = p->data;
    c->message_done = true;
    /* One request per connection: anything pipelined after it is ignored. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    /* Small reads keep a slow client from pinning much memory; the request
     * itself is bounded by the limits above. */
    static char slab[8192];
    *b = uv_buf_init(slab, sizeof(slab));
}

static void handle_request_bytes(client *c, const char *data, size_t n)
{
    if (!c->headers_done)
        c->raw_bytes += n;
    http_parser_execute(&c->parser, &settings, data, n);
    enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);

    if (c->header_too_large || (!c->headers_done && c->raw_bytes > CONTROL_MAX_HEADER)) {
        respond_error(c, 431, NULL, "the request line and headers are over 16 KiB");
    } else if (c->body_too_large) {
        respond_error(c, 413, NULL, "the request body is over 64 KiB");
    } else if (c->message_done) {
        dispatch(c);
    } else if (err != HPE_OK && err != HPE_PAUSED) {
        respond_error(c, 400, NULL, "malformed HTTP request");
    }
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    client *c = st->data;
    if (nread == 0)
        return;
    if (nread < 0) {
        /* EOF or an error; half a request cannot be answered usefully. */
        client_close(c);
        return;
    }
    if (c->state == ST_READING)
        handle_request_bytes(c, b->base, (size_t)nread);
    /* ST_LINGER and ST_EVENTS: input is drained and ignored. */
}

/* ---- accepting ---- */

/* The oldest connection that is only waiting; failing that the oldest one
 * lingering after its answer; failing that the oldest events stream, so a
 * new client is always answered. */
static uid_t uid_of(const client *c)
{
    return c->cred_ok ? c->cred.uid : (uid_t)-1;
}

/* The same among uid's connections only. */
static client *pick_victim_of(control_server *s, client *except, uid_t uid)
{
    static const enum client_state order[] = {ST_READING, ST_LINGER, ST_EVENTS};
    for (size_t i = 0; i < ARRAY_SIZE(order); i++)
        for (client *c = s->head; c; c = c->next)
            if (c != except && c->state == order[i] && uid_of(c) == uid)
                return c;
    return NULL;
}

static client *pick_victim(control_server *s, client *except)
{
    static const enum client_state order[] = {ST_READING, ST_LINGER, ST_EVENTS};
    for (size_t i = 0; i < ARRAY_SIZE(order); i++)
        for (client *c = s->head; c; c = c->next)
            if (c != except && c->state == order[i])
                return c;
    return NULL;
}

static unsigned count_of(const control_server *s, uid_t uid)
{
    unsigned n = 0;
    for (const client *c = s->head; c; c = c->next)
        n += uid_of(c) == uid;
    return n;
}

/* The uid with the most connections (ties: the first seen). */
static uid_t busiest(const control_server *s)
{
    uid_t best = (uid_t)-1;
    unsigned most = 0;
    for (const client *c = s->head; c; c = c->next) {
        unsigned n = count_of(s, uid_of(c));
        if (n > most) {
            most = n;
            best = uid_of(c);
        }
    }
    return best;
}

static void on_connection(uv_stream_t *ls, int status);

static void on_resume(uv_timer_t *t)
{
    control_server *s = t->data;
    s->turn_ms = uv_now(s->loop);
    s->turn_accepts = 0;
    /* The connection libuv holds for us: accepting it restarts the
     * listener's watcher. */
    if (!s->closing)
        on_connection((uv_stream_t *)&s->listener, 0);
}

/* Leaves the connection libuv has accepted in the listener (libuv stops
 * watching it until uv_accept) and takes it on the next turn. False when
 * no timer can be had: the caller accepts now rather than go deaf. */
static bool defer_accept(control_server *s)
{
    if (!s->resume_on) {
        if (uv_timer_init(s->loop, &s->resume) != 0)
            return false;
        s->resume.data = s;
        s->resume_on = true;
        s->refs++;
    }
    uv_timer_start(&s->resume, on_resume, 0, 0);
    return true;
}

static void on_connection(uv_stream_t *ls, int status)
{
    control_server *s = ls->data;
    if (status < 0) {
        log_limited(&s->accept_log, LOG_WARN, MOD, status, "accept on the control socket failed");
        return;
    }
    uint64_t now = uv_now(s->loop);
    if (now != s->turn_ms) {
        s->turn_ms = now;
        s->turn_accepts = 0;
    }
    if (s->turn_accepts >= ACCEPTS_PER_TURN && defer_accept(s))
        return;
    s->turn_accepts++;
    client *c = xcalloc(1, sizeof(*c));
    c->srv = s;
    uv_pipe_init(s->loop, &c->pipe, 0);
    uv_timer_init(s->loop, &c->timer);
    c->pipe.data = c->timer.data = c;
    c->refs = 2;
    s->refs++;
    c->prev = s->tail;
    if (s->tail)
        s->tail->next = c;
    else
        s->head = c;
    s->tail = c;
    s->nclients++;
    if (uv_accept(ls, (uv_stream_t *)&c->pipe) < 0) {
        client_close(c);
        return;
    }
    if (s->override_on) {
        c->cred = s->override;
        c->cred_ok = true;
    } else {
        uv_os_fd_t fd;
        c->cred_ok =
            uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 && peercred_get(fd, &c->cred) == 0;
    }
    /* One user's flood evicts that user's own connections: a uid past its
     * share gives up its oldest idle one; at the global ceiling the busiest
     * uid does. */
    uid_t uid = uid_of(c);
    if (count_of(s, uid) > s->max_per_uid) {
        client *victim = pick_victim_of(s, c, uid);
        if (victim) {
            log_debug(MOD, "uid %u has %u connections: closing its oldest idle one", (unsigned)uid,
                      s->max_per_uid);
            client_close(victim);
        }
    } else if (s->nclients > s->max_clients) {
        client *victim = pick_victim_of(s, c, busiest(s));
        if (victim == NULL)
            victim = pick_victim(s, c);
        if (victim) {
            log_debug(MOD, "client cap (%u) reached: closing the oldest idle connection",
                      s->max_clients);
            client_close(victim);
        }
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->state = ST_READING;
    /* The whole request must arrive within the idle time, however slowly it
     * trickles in: the timer is not restarted by reads. */
    uv_timer_start(&c->timer, on_timer, s->idle_ms, 0);
    if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) < 0)
        client_close(c);
}

/* ---- binding ---- */

/* A socket file may be left by a crashed daemon. A non-blocking connect()
 * tells the cases apart: accepted or backlog full (Linux: EAGAIN) -> a live
 * daemon, refuse; refused -> stale, unlink it, but only when the caller
 * holds the state lock (replace_stale): macOS also refuses a connect when a
 * live daemon's backlog is full, and a daemon sharing our state directory
 * would hold that lock. Not a socket -> refuse, it is not ours. */
static int clear_stale(const char *path, bool replace_stale)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EEXIST;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strlcpy_(sa.sun_path, path, sizeof(sa.sun_path));
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    int e = rc < 0 ? errno : 0;
    close(fd);
    if (rc == 0 || e == EINPROGRESS || e == EAGAIN)
        return -EADDRINUSE;
    if (e == ECONNREFUSED) {
        if (!replace_stale)
            return -EADDRINUSE;
        if (unlink(path) < 0 && errno != ENOENT)
            return -errno;
        log_info(MOD, "removed a stale control socket %s", path);
        return 0;
    }
    if (e == ENOENT)
        return 0;
    return -e;
}

int control_check_socket_dir(const char *path, uid_t self, char *why, size_t whylen)
{
    char dir[PATH_MAX];
    strlcpy_(dir, path, sizeof(dir));
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        strlcpy_(dir, ".", sizeof(dir));
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    return fs_check_dir(dir, "socket directory", self, true, why, whylen);
}

static int bind_socket(const char *path, bool replace_stale, int *out)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strlcpy_(sa.sun_path, path, sizeof(sa.sun_path));
    char why[PATH_MAX + 200];
    int rc = control_check_socket_dir(path, geteuid(), why, sizeof(why));
    if (rc < 0) {
        log_error(MOD, "%s", why);
        return rc;
    }
    rc = clear_stale(path, replace_stale);
    if (rc < 0)
        return rc;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    /* The mode comes from the umask at bind time (0666: reads are for
     * everyone, the peer credentials guard the changes), never from a
     * chmod() by name, which would follow a symlink planted at the path.
     * bind() itself refuses an existing name, link or not. The daemon is
     * single-threaded, so the umask switch races with nothing. */
    mode_t old = umask(0111);
    rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    int e = errno;
    umask(old);
    if (rc < 0) {
        close(fd);
        return -e;
    }
    *out = fd;
    return 0;
}

int control_start(uv_loop_t *loop, const control_options *opts, const control_provider *prov,
                  control_server **out)
{
    int fd = opts->inherited_fd;
    bool bound = false;
    if (fd < 0) {
        if (!opts->path)
            return -EINVAL;
        int rc = bind_socket(opts->path, opts->replace_stale, &fd);
        if (rc < 0)
            return rc;
        bound = true;
    }

    control_server *s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->prov = *prov;
    s->max_clients = opts->max_clients ? opts->max_clients : CONTROL_DEFAULT_MAX_CLIENTS;
    s->max_per_uid = s->max_clients / CONTROL_UID_SHARE;
    if (s->max_per_uid < CONTROL_UID_MIN)
        s->max_per_uid = s->max_clients < CONTROL_UID_MIN ? s->max_clients : CONTROL_UID_MIN;
    s->idle_ms = opts->idle_timeout_ms ? opts->idle_timeout_ms : CONTROL_DEFAULT_IDLE_MS;
    s->admin_group = xstrdup(opts->admin_group ? opts->admin_group : platform_admin_group());
    s->path = bound ? xstrdup(opts->path) : NULL;

    /* Resolved once: a group that does not exist means root only. */
    char gbuf[4096];
    struct group gr, *gres = NULL;
    if (getgrnam_r(s->admin_group, &gr, gbuf, sizeof(gbuf), &gres) == 0 && gres) {
        s->admin_gid = gres->gr_gid;
        s->have_admin_gid = true;
    } else {
        log_info(MOD, "admin group \"%s\" does not exist: only root may change the resolver",
                 s->admin_group);
    }

    uv_pipe_init(loop, &s->listener, 0);
    s->listener.data = s;
    s->refs = 1;
    int rc = uv_pipe_open(&s->listener, fd);
    if (rc < 0)
        close(fd); /* the handle did not take it over */
    else
        rc = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_connection);
    if (rc < 0) {
        /* uv_close closes the fd (also an inherited one that failed: it is
         * useless to us now). The server is freed in the close callback. */
        s->closing = true;
        if (bound) {
            unlink(s->path);
            free(s->path);
            s->path = NULL;
        }
        control_close(s, NULL, NULL);
        return rc;
    }
    if (bound)
        log_info(MOD, "control API on %s", opts->path);
    else
        log_info(MOD, "control API on an inherited socket (fd %d)", fd);
    *out = s;
    return 0;
}

/* ---- events ---- */

void control_publish(control_server *s, const char *type, const char *container_json)
{
    if (!s || s->closing)
        return;
    buf line = {0};
    yajl_gen g = yajl_gen_alloc(NULL);
    yajl_gen_string(g, (const unsigned char *)type, strlen(type));
    const unsigned char *t;
    size_t tlen;
    yajl_gen_get_buf(g, &t, &tlen);
    buf_appendf(&line, "{\"type\":%.*s,\"container\":", (int)tlen, (const char *)t);
    yajl_gen_free(g);
    size_t start = line.len;
    buf_append(&line, container_json, strlen(container_json));
    /* One object per line: a pretty-printed object's newlines become spaces
     * (inside JSON strings they are always escaped, so this is safe). */
    for (size_t i = start; i < line.len; i++)
        if (line.data[i] == '\n' || line.data[i] == '\r')
            line.data[i] = ' ';
    buf_append(&line, "}\n", 2);

    client *next;
    for (client *c = s->head; c; c = next) {
        next = c->next;
        if (c->state != ST_EVENTS)
            continue;
        /* A watcher that stopped reading is dropped rather than buffered
         * without bound. */
        if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > CONTROL_MAX_EVENT_QUEUE) {
            log_warn(MOD, "dropping an events client that does not read");
            client_close(c);
            continue;
        }
        client_write(c, line.data, line.len);
    }
    buf_free(&line);
}

/* ---- shutdown ---- */

static void server_maybe_finish(control_server *s)
{
    if (!s->closing || s->refs > 0)
        return;
    void (*cb)(void *) = s->close_cb;
    void *arg = s->close_arg;
    free(s->admin_group);
    free(s->path);
    free(s);
    if (cb)
        cb(arg);
}

static void on_resume_closed(uv_handle_t *h)
{
    control_server *s = h->data;
    LH_REQUIRE(s->refs > 0);
    s->refs--;
    server_maybe_finish(s);
}

static void on_listener_closed(uv_handle_t *h)
{
    control_server *s = h->data;
    LH_REQUIRE(s->refs > 0);
    s->refs--;
    server_maybe_finish(s);
}

void control_close(control_server *s, void (*cb)(void *arg), void *arg)
{
    if (!s)
        return;
    s->closing = true;
    s->close_cb = cb;
    s->close_arg = arg;
    if (s->path) {
        unlink(s->path);
        free(s->path);
        s->path = NULL;
    }
    while (s->head)
        client_close(s->head);
    if (s->resume_on) {
        uv_close((uv_handle_t *)&s->resume, on_resume_closed);
        s->resume_on = false;
    }
    if (!uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}
