/* libFuzzer driver: the control API's request path end to end: HTTP framing
 * and limits (http-parser under CONTROL_MAX_HEADER/BODY), routing (the route
 * table, %-decoding of {params}), permissions and the answers. The real
 * server (control_start) runs on a libuv loop with a fake provider; a client
 * on the same loop connects over the unix socket and sends the fuzz input.
 *
 * Input: byte 0 picks the peer and the provider's answers:
 *   bits 0-1  peer: root; uid 1000 whose primary gid is the admin group;
 *             uid 1000 with the admin group among its groups; uid 1000, not
 *             an admin
 *   bits 2-3  resolver result: 0, -ENOTSUP, -EIO with a reason, -EIO bare
 *   bit 4     send the request in two writes (cut at byte 1's value)
 * then the client's bytes. Checked on every input: every answer is one
 * well-formed HTTP/1.1 response with a known status and an exact
 * Content-Length, whose body is JSON (an {"error": "..."} object for
 * errors); an admin route never answers 200 to a peer that is not allowed;
 * no handle, client or byte is leaked (the loop closes cleanly at exit). */
#include <errno.h>
#include <grp.h>
#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "control.h"
#include "fuzz_common.h"
#include "json.h"
#include "util.h"

static uv_loop_t loop;
static control_server *srv;
static char sock_path[64];
static unsigned flags;

/* ---- the fake provider ---- */

/* Whether the peer of this input may change things (byte 0, bits 0-1). */
static bool allowed_peer_flags(void)
{
    return (flags & 3) != 3;
}

static void p_status(void *ud, yajl_gen g)
{
    (void)ud;
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"version", 7);
    yajl_gen_string(g, (const unsigned char *)"0.1.0", 5);
    yajl_gen_map_close(g);
}

static void p_containers(void *ud, yajl_gen g)
{
    (void)ud;
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);
}

static int p_container(void *ud, const char *key, yajl_gen g)
{
    (void)ud;
    if (key[0] == 'x')
        return -EIO;
    if (strcmp(key, "web") != 0)
        return -ENOENT;
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"name", 4);
    yajl_gen_string(g, (const unsigned char *)key, strlen(key));
    yajl_gen_map_close(g);
    return 0;
}

static int p_resolver(void *ud, bool install, char *err, size_t errlen)
{
    (void)ud;
    (void)install;
    switch ((flags >> 2) & 3) {
    case 0:
        return 0;
    case 1:
        return -ENOTSUP;
    case 2:
        snprintf(err, errlen, "the resolver file is read-only");
        return -EIO;
    default:
        return -EIO;
    }
}

/* Host ports of "web": a body naming "8000" adds (201), "taken" is 409,
 * anything else 400; port 8000 removes (204), 7000 is a label's (409). The
 * Docker socket: root's, group 0, 0660 (so the admin-group peers may, the
 * plain uid 1000 may not). */
static int p_host_ports(void *ud, const char *key, yajl_gen g)
{
    (void)ud;
    if (strcmp(key, "web") != 0)
        return -ENOENT;
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);
    return 0;
}

/* Leases: "vm" exists; adding one whose body names "full" is 409, else 201;
 * only peers that may change things ever get here. */
static void p_leases(void *ud, yajl_gen g)
{
    (void)ud;
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);
}

static int p_lease(void *ud, const char *name, yajl_gen g)
{
    (void)ud;
    if (strcmp(name, "vm") != 0)
        return -ENOENT;
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"name", 4);
    yajl_gen_string(g, (const unsigned char *)"vm", 2);
    yajl_gen_map_close(g);
    return 0;
}

static int p_lease_remove(void *ud, const char *name, char *err, size_t errlen)
{
    (void)ud;
    (void)err;
    (void)errlen;
    if (!allowed_peer_flags()) {
        fprintf(stderr, "fuzz_control: a lease removed for a peer that may not\n");
        abort();
    }
    return strcmp(name, "vm") == 0 ? 0 : -ENOENT;
}

/* Whether body[0..len) contains the C string w (C11 has no such search). */
static bool has(const char *body, size_t len, const char *w)
{
    size_t n = strlen(w);
    for (size_t k = 0; k + n <= len; k++)
        if (memcmp(body + k, w, n) == 0)
            return true;
    return false;
}

static int p_host_port_add(void *ud, const char *key, const char *body, size_t len, yajl_gen g,
                           char *err, size_t errlen)
{
    (void)ud;
    if (strcmp(key, "web") != 0)
        return -ENOENT;
    if (!allowed_peer_flags()) {
        fprintf(stderr, "fuzz_control: a host port added for a peer that may not\n");
        abort();
    }
    if (has(body, len, "taken")) {
        snprintf(err, errlen, "port 8000/tcp is taken by the label");
        return -EEXIST;
    }
    if (!has(body, len, "8000")) {
        snprintf(err, errlen, "host port spec: not a port");
        return -EINVAL;
    }
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"port", 4);
    yajl_gen_integer(g, 8000);
    yajl_gen_map_close(g);
    return 0;
}

static int p_host_port_remove(void *ud, const char *key, const char *port, const char *proto,
                              char *err, size_t errlen)
{
    (void)ud;
    (void)proto;
    if (strcmp(key, "web") != 0)
        return -ENOENT;
    if (!allowed_peer_flags())
        abort();
    if (strcmp(port, "7000") == 0) {
        snprintf(err, errlen, "port 7000/tcp comes from the label");
        return -EPERM;
    }
    if (strcmp(port, "8000") != 0) {
        snprintf(err, errlen, "no exposure of port %s", "that");
        return -ENOENT;
    }
    return 0;
}

static int p_lease_add(void *ud, const char *body, size_t len, yajl_gen g, bool *created, char *err,
                       size_t errlen)
{
    (void)ud;
    if (!allowed_peer_flags()) {
        fprintf(stderr, "fuzz_control: a lease added for a peer that may not\n");
        abort();
    }
    if (has(body, len, "full")) {
        snprintf(err, errlen, "the address pool is full");
        return -ENOSPC;
    }
    *created = true;
    yajl_gen_map_open(g);
    yajl_gen_string(g, (const unsigned char *)"ip", 2);
    yajl_gen_string(g, (const unsigned char *)"127.0.0.9", 9);
    yajl_gen_map_close(g);
    return 0;
}

static int p_docker_socket(void *ud, uid_t *uid, gid_t *gid, mode_t *mode)
{
    (void)ud;
    *uid = 0;
    *gid = 0;
    *mode = S_IFSOCK | 0660;
    return 0;
}

/* ---- the client ---- */

typedef struct fclient {
    uv_pipe_t pipe;
    uv_connect_t conn;
    uv_write_t wr[2];
    uv_shutdown_t sh;
    buf in;
    bool eof;
    bool closed;
    unsigned activity;
} fclient;

static void c_closed(uv_handle_t *h)
{
    fclient *c = h->data;
    c->closed = true;
}

static void c_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    fclient *c = st->data;
    c->activity++;
    if (n < 0) {
        c->eof = true;
        uv_read_stop(st);
        return;
    }
    buf_append(&c->in, b->base, (size_t)n);
}

static void c_written(uv_write_t *w, int status)
{
    (void)status;
    fclient *c = w->data;
    c->activity++;
}

static void c_shut(uv_shutdown_t *s, int status)
{
    (void)status;
    fclient *c = s->data;
    c->activity++;
}

static void c_connected(uv_connect_t *r, int status)
{
    fclient *c = r->data;
    c->activity++;
    if (status < 0) {
        fprintf(stderr, "fuzz_control: connect: %s\n", uv_strerror(status));
        abort();
    }
    uv_read_start((uv_stream_t *)&c->pipe, fuzz_slab_alloc, c_read);
}

/* Runs the loop until nothing happened on the client for a few turns (the
 * server and the client share the loop, so a reply is one or two turns
 * away) or until stop is true. */
static void settle(fclient *c, bool *stop)
{
    for (int quiet = 0, turns = 0; quiet < 4 && turns < 10000 && !*stop; turns++) {
        unsigned before = c->activity;
        uv_run(&loop, UV_RUN_NOWAIT);
        quiet = c->activity == before ? quiet + 1 : 0;
    }
}

/* ---- the checks ---- */

typedef struct resp {
    int status;
    unsigned long long clen;
    bool have_clen;
    buf body;
    bool complete;
    bool ndjson;
    bool in_ctype;
} resp;

static int r_field(http_parser *p, const char *at, size_t len)
{
    resp *r = p->data;
    r->in_ctype = len == 12 && strncasecmp(at, "Content-Type", 12) == 0;
    return 0;
}

static int r_value(http_parser *p, const char *at, size_t len)
{
    resp *r = p->data;
    if (r->in_ctype && len == 20 && memcmp(at, "application/x-ndjson", 20) == 0)
        r->ndjson = true;
    return 0;
}

static int r_headers(http_parser *p)
{
    resp *r = p->data;
    r->status = (int)p->status_code;
    r->have_clen = p->content_length != ULLONG_MAX;
    r->clen = p->content_length;
    return 0;
}

static int r_body(http_parser *p, const char *at, size_t len)
{
    resp *r = p->data;
    buf_append(&r->body, at, len);
    return 0;
}

static int r_done(http_parser *p)
{
    resp *r = p->data;
    r->complete = true;
    return 0;
}

static const http_parser_settings rsettings = {
    .on_header_field = r_field,
    .on_header_value = r_value,
    .on_headers_complete = r_headers,
    .on_body = r_body,
    .on_message_complete = r_done,
};

static bool allowed_peer(void)
{
    return allowed_peer_flags();
}

static void check(const buf *in)
{
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "%.*s\n----\n", (int)in->len, in->data ? in->data : "");
    if (in->len == 0)
        return; /* closed without an answer: an incomplete request at EOF */
    resp r = {0};
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    p.data = &r;
    size_t used = http_parser_execute(&p, &rsettings, in->data, in->len);
    http_parser_execute(&p, &rsettings, NULL, 0); /* EOF ends an events stream */
    if (used != in->len || HTTP_PARSER_ERRNO(&p) != HPE_OK || !r.complete) {
        fprintf(stderr, "fuzz_control: the answer is not one HTTP response\n");
        abort();
    }
    static const int known[] = {200, 201, 204, 400, 403, 404, 405, 409, 413, 431, 500};
    bool ok = false;
    for (size_t i = 0; i < ARRAY_SIZE(known); i++)
        ok |= r.status == known[i];
    if (!ok)
        abort();
    if (r.ndjson) {
        /* /v1/events: close-delimited, one JSON object per line. */
        if (r.status != 200 || r.have_clen)
            abort();
        for (size_t at = 0; at < r.body.len;) {
            const char *nl = memchr(r.body.data + at, '\n', r.body.len - at);
            if (nl == NULL)
                abort();
            yajl_val v;
            size_t n = (size_t)(nl - (r.body.data + at));
            if (json_parse(r.body.data + at, n, 1u << 20, 8, &v, NULL, 0) < 0)
                abort();
            json_free(v);
            at += n + 1;
        }
    } else if (r.status == 204) {
        /* No Content: headers only. */
        if (r.body.len != 0)
            abort();
    } else {
        if (!r.have_clen || r.clen != r.body.len || r.body.len == 0 ||
            r.body.data[r.body.len - 1] != '\n')
            abort();
        yajl_val v;
        if (json_parse(r.body.data, r.body.len - 1, 1u << 20, 8, &v, NULL, 0) < 0)
            abort();
        if (r.status != 200 && r.status != 201 && !json_str(v, "error", NULL))
            abort();
        json_free(v);
    }
    /* Only the resolver routes answer {"installed": ...}. */
    if (r.status == 200 && !allowed_peer() && r.body.data &&
        strstr(r.body.data, "\"installed\"") != NULL)
        abort();
    buf_free(&r.body);
}

/* ---- setup ---- */

static void start(void)
{
    fuzz_quiet();
    uv_loop_init(&loop);
    char dir[] = "/tmp/loophole-fuzz-control-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    snprintf(sock_path, sizeof(sock_path), "%s/s", dir);
    struct group *g = getgrgid(0);
    control_options o = {
        .path = sock_path,
        .inherited_fd = -1,
        .admin_group = g ? g->gr_name : "root",
        .max_clients = 4,
        .idle_timeout_ms = 60000,
    };
    control_provider prov = {
        NULL,         p_status,        p_containers,       p_container,     p_resolver,
        p_host_ports, p_host_port_add, p_host_port_remove, p_docker_socket, p_leases,
        p_lease,      p_lease_add,     p_lease_remove};
    if (control_start(&loop, &o, &prov, &srv) < 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (srv == NULL)
        start();
    if (size < 1)
        return 0;
    flags = data[0];
    const uint8_t *req = data + 1;
    size_t req_n = size - 1;

    static const peercred peers[4] = {
        {.uid = 0, .gid = 0, .ngroups = 0},
        {.uid = 1000, .gid = 0, .ngroups = 0},
        {.uid = 1000, .gid = 1000, .ngroups = 2, .groups = {5, 0}},
        {.uid = 1000, .gid = 1000, .ngroups = 1, .groups = {100}},
    };
    control_set_peer_override(srv, &peers[flags & 3]);

    fclient c = {0};
    uv_pipe_init(&loop, &c.pipe, 0);
    c.pipe.data = c.conn.data = c.wr[0].data = c.wr[1].data = c.sh.data = &c;
    uv_pipe_connect(&c.conn, &c.pipe, sock_path, c_connected);
    size_t cut = (flags & 16) && req_n > 1 ? (size_t)req[0] % req_n : req_n;
    uv_buf_t b1 = uv_buf_init((char *)req, (unsigned)cut);
    uv_buf_t b2 = uv_buf_init((char *)req + cut, (unsigned)(req_n - cut));
    if (cut > 0)
        uv_write(&c.wr[0], (uv_stream_t *)&c.pipe, &b1, 1, c_written);
    bool never = false;
    settle(&c, &never);
    if (req_n > cut)
        uv_write(&c.wr[1], (uv_stream_t *)&c.pipe, &b2, 1, c_written);
    settle(&c, &c.eof);
    if (!c.eof) {
        /* Still open: an incomplete request, or an events stream, which
         * gets one event; then the client leaves. */
        control_publish(srv, "update", "{\"name\":\"web\",\n\"ip\":\"127.0.0.2\"}");
        settle(&c, &never);
        uv_shutdown(&c.sh, (uv_stream_t *)&c.pipe, c_shut);
        settle(&c, &c.eof);
    }
    uv_close((uv_handle_t *)&c.pipe, c_closed);
    settle(&c, &c.closed);
    if (!c.eof || !c.closed) {
        fprintf(stderr, "fuzz_control: the server did not close the connection\n");
        abort();
    }
    /* The server frees a client in its close callbacks, a turn later. */
    for (int i = 0; i < 100 && control_client_count(srv) > 0; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    if (control_client_count(srv) != 0)
        abort();
    check(&c.in);
    buf_free(&c.in);
    return 0;
}
