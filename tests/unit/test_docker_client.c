/* The Docker client against a tiny fake engine on a unix socket, in the same
 * loop: discovery by --docker-host, /_ping + /version negotiation, the event
 * subscription before the listing, a sync, an event split across writes,
 * the stream ending, and the reconnect that syncs again. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "docker.h"
#include "docker_json.h"
#include "fake_engine.h"
#include "labels.h"
#include "test.h"
#include "util.h"

#define WEB_ID "d5a16442f260a51a8c826b9f7fed2da7774f328f46c1976374235844f8d5d3fd"
#define PLAIN_ID "aa2001b6dec73586b190b4ea7e407797dcf68cf4f0088ae495dcf44ae8db1350"
#define PAUSED_ID "4ac0e5e3124089c30655ae03eaae7104ee7c0404ade0b715c65748cefdfe0764"
#define EVENTS_PATH "/v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%2C%22network%22%5D%7D"

static char *load(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/docker/%s", FIXTURES_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    buf b = {0};
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        buf_append(&b, tmp, n);
    fclose(f);
    *len = b.len;
    return b.data;
}

/* ---- the fake engine ---- */

typedef struct fake fake;
typedef struct fconn {
    uv_pipe_t h;
    fake *f;
    buf in;
    bool answered;
    struct fconn *next;
} fconn;

struct fake {
    uv_loop_t *loop;
    uv_pipe_t server;
    char path[256];
    fconn *conns;
    fconn *events;
    int fail_pings;
    int pings, lists, plain_inspects, events_subs;
    bool send_events; /* round 1: send events after the listing */
    /* After the first sync, the socket's path moves to keep_path (the event
     * stream stays up) and a start event follows (hide_socket). */
    bool hide_socket;
    char keep_path[256];
    int bad_requests; /* wrong Host, unversioned API paths, ... */
    bool listed_before_events;
};

static void fconn_closed(uv_handle_t *h)
{
    fconn *c = h->data;
    fake *f = c->f;
    for (fconn **p = &f->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    buf_free(&c->in);
    free(c);
}

static void fconn_close(fconn *c)
{
    if (c->f->events == c)
        c->f->events = NULL;
    if (!uv_is_closing((uv_handle_t *)&c->h))
        uv_close((uv_handle_t *)&c->h, fconn_closed);
}

typedef struct fwrite_req {
    uv_write_t w;
    bool close_after;
    char data[];
} fwrite_req;

static void fwritten(uv_write_t *w, int status)
{
    (void)status;
    fwrite_req *r = (fwrite_req *)w;
    fconn *c = w->data;
    if (r->close_after)
        fconn_close(c);
    free(r);
}

static void fsend(fconn *c, const char *data, size_t len, bool close_after)
{
    if (uv_is_closing((uv_handle_t *)&c->h))
        return;
    fwrite_req *r = xmalloc(sizeof(*r) + len);
    memcpy(r->data, data, len);
    r->close_after = close_after;
    r->w.data = c;
    uv_buf_t b = uv_buf_init(r->data, (unsigned)len);
    if (uv_write(&r->w, (uv_stream_t *)&c->h, &b, 1, fwritten) < 0) {
        free(r);
        fconn_close(c);
    }
}

static void respond(fconn *c, int status, const char *body, size_t len)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     status, status == 200 ? "OK" : "Not Found", len);
    buf b = {0};
    buf_append(&b, head, (size_t)n);
    buf_append(&b, body, len);
    fsend(c, b.data, b.len, true);
    buf_free(&b);
}

static void respond_file(fconn *c, const char *name)
{
    size_t len;
    char *data = load(name, &len);
    if (data == NULL) {
        respond(c, 500, "{}", 2);
        return;
    }
    respond(c, 200, data, len);
    free(data);
}

static void send_chunk(fconn *c, const char *data, size_t len)
{
    char head[32];
    int n = snprintf(head, sizeof(head), "%zx\r\n", len);
    buf b = {0};
    buf_append(&b, head, (size_t)n);
    buf_append(&b, data, len);
    buf_append(&b, "\r\n", 2);
    fsend(c, b.data, b.len, false);
    buf_free(&b);
}

/* After the first listing: plain starts and paused dies. The start event is
 * cut in the middle across two writes (two chunks); the second chunk also
 * carries the whole die event. */
static void send_round1_events(fake *f)
{
    const char *start =
        "{\"status\":\"start\",\"id\":\"" PLAIN_ID "\",\"Type\":\"container\",\"Action\":\"start\","
        "\"Actor\":{\"ID\":\"" PLAIN_ID "\",\"Attributes\":{\"name\":\"fx-plain\"}},"
        "\"scope\":\"local\",\"time\":1,\"timeNano\":1}\n";
    const char *die = "{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":\"" PAUSED_ID
                      "\",\"Attributes\":{\"exitCode\":\"0\"}}}\n";
    size_t half = strlen(start) / 2;
    send_chunk(f->events, start, half);
    buf b = {0};
    buf_append(&b, start + half, strlen(start) - half);
    buf_append(
        &b, "{\"Type\":\"container\",\"Action\":\"kill\",\"Actor\":{\"ID\":\"" PAUSED_ID "\"}}\n",
        strlen("{\"Type\":\"container\",\"Action\":\"kill\",\"Actor\":{\"ID\":\"" PAUSED_ID
               "\"}}\n"));
    buf_append(&b, die, strlen(die));
    send_chunk(f->events, b.data, b.len);
    buf_free(&b);
}

static void end_event_stream(fake *f)
{
    if (f->events == NULL)
        return;
    fsend(f->events, "0\r\n\r\n", 5, true);
    f->events = NULL;
}

static void hide_socket(fake *f)
{
    f->hide_socket = false;
    if (f->events == NULL || rename(f->path, f->keep_path) != 0) {
        f->bad_requests++;
        return;
    }
    const char *start =
        "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"" PLAIN_ID "\"}}\n";
    send_chunk(f->events, start, strlen(start));
}

static void handle_request(fconn *c, const char *req)
{
    fake *f = c->f;
    char path[512];
    if (sscanf(req, "GET %511s HTTP/1.1\r\n", path) != 1) {
        f->bad_requests++;
        respond(c, 400, "{}", 2);
        return;
    }
    if (strstr(req, "\r\nHost: localhost\r\n") == NULL)
        f->bad_requests++;
    if (strcmp(path, "/_ping") == 0) {
        f->pings++;
        if (f->fail_pings > 0) {
            f->fail_pings--;
            fconn_close(c);
            return;
        }
        const char *pong = "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 2\r\n\r\nOK";
        fsend(c, pong, strlen(pong), true);
    } else if (strcmp(path, "/version") == 0) {
        respond_file(c, "version.json");
    } else if (strcmp(path, "/v1.41/info") == 0) {
        const char *info = "{\"OperatingSystem\":\"Docker Desktop\",\"Name\":\"docker-desktop\","
                           "\"SecurityOptions\":[\"name=seccomp,profile=unconfined\"]}";
        respond(c, 200, info, strlen(info));
    } else if (strcmp(path, EVENTS_PATH) == 0) {
        f->events_subs++;
        f->events = c;
        const char *h = "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n";
        fsend(c, h, strlen(h), false);
    } else if (strcmp(path, "/v1.41/containers/json") == 0) {
        f->lists++;
        if (f->events == NULL)
            f->listed_before_events = true;
        respond_file(c, "list.json");
        if (f->send_events && f->events) {
            f->send_events = false;
            send_round1_events(f);
        }
    } else if (strcmp(path, "/v1.41/containers/" WEB_ID "/json") == 0) {
        respond_file(c, "inspect_web.json");
    } else if (strcmp(path, "/v1.41/containers/" PAUSED_ID "/json") == 0) {
        respond_file(c, "inspect_paused.json");
    } else if (strcmp(path, "/v1.41/containers/" PLAIN_ID "/json") == 0) {
        /* Vanished between list and inspect the first time. */
        if (f->plain_inspects++ == 0)
            respond(c, 404, "{\"message\":\"No such container\"}", 31);
        else
            respond_file(c, "inspect_plain.json");
    } else {
        f->bad_requests++;
        fprintf(stderr, "fake engine: unexpected path %s\n", path);
        respond(c, 404, "{}", 2);
    }
}

static void falloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    (void)h;
    b->base = xmalloc(s);
    b->len = s;
}

static void fread_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    fconn *c = s->data;
    if (n < 0) {
        fconn_close(c);
    } else if (n > 0 && !c->answered) {
        buf_append(&c->in, b->base, (size_t)n);
        if (strstr(c->in.data, "\r\n\r\n") != NULL) {
            c->answered = true;
            handle_request(c, c->in.data);
        }
    }
    free(b->base);
}

static void fconnection(uv_stream_t *server, int status)
{
    fake *f = server->data;
    if (status < 0)
        return;
    fconn *c = xcalloc(1, sizeof(*c));
    c->f = f;
    uv_pipe_init(f->loop, &c->h, 0);
    c->h.data = c;
    c->next = f->conns;
    f->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->h) == 0)
        uv_read_start((uv_stream_t *)&c->h, falloc, fread_cb);
    else
        fconn_close(c);
}

static int fake_start(fake *f, uv_loop_t *loop, const char *path)
{
    memset(f, 0, sizeof(*f));
    f->loop = loop;
    snprintf(f->path, sizeof(f->path), "%s", path);
    uv_pipe_init(loop, &f->server, 0);
    f->server.data = f;
    unlink(path);
    int r = uv_pipe_bind(&f->server, path);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&f->server, 16, fconnection);
    return r;
}

static void fake_stop(fake *f)
{
    if (!uv_is_closing((uv_handle_t *)&f->server))
        uv_close((uv_handle_t *)&f->server, NULL);
    for (fconn *c = f->conns; c; c = c->next)
        fconn_close(c);
    unlink(f->path);
}

/* ---- the observer ---- */

typedef struct obs {
    fake *f;
    docker_client *d;
    int connected, disconnected, syncs, updates, gones, closed;
    size_t sync_n[4];
    char sync_names[4][128];
    char update_name[64];
    char gone_id[65];
    char endpoint[256], api[16], reason[256];
    int order_errors;
    int stop_after_syncs;
    bool end_stream_on_gone;
    bool close_on_disconnect;
    bool restore_socket; /* on disconnected: the hidden socket's path back */
    uv_timer_t *guard;   /* closed with the client */
    docker_status st_at_sync;
} obs;

static void on_closed(void *arg)
{
    obs *o = arg;
    o->closed++;
}

static void cb_connected(void *ud, const char *endpoint, const char *api)
{
    obs *o = ud;
    o->connected++;
    snprintf(o->endpoint, sizeof(o->endpoint), "%s", endpoint);
    snprintf(o->api, sizeof(o->api), "%s", api);
}

static void cb_disconnected(void *ud, const char *reason)
{
    obs *o = ud;
    o->disconnected++;
    snprintf(o->reason, sizeof(o->reason), "%s", reason);
    if (o->restore_socket && rename(o->f->keep_path, o->f->path) != 0)
        o->order_errors++;
    if (o->close_on_disconnect) {
        docker_client_status(o->d, &o->st_at_sync);
        docker_client_close(o->d, on_closed, o);
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(container *const *)a)->name, (*(container *const *)b)->name);
}

static void cb_sync(void *ud, container **ctrs, size_t n)
{
    obs *o = ud;
    if (o->connected != o->syncs + 1)
        o->order_errors++;
    if (o->syncs < 4) {
        o->sync_n[o->syncs] = n;
        qsort(ctrs, n, sizeof(*ctrs), by_name);
        for (size_t i = 0; i < n; i++) {
            strncat(o->sync_names[o->syncs], ctrs[i]->name,
                    sizeof(o->sync_names[0]) - strlen(o->sync_names[o->syncs]) - 2);
            strcat(o->sync_names[o->syncs], " ");
        }
    }
    for (size_t i = 0; i < n; i++)
        container_free(ctrs[i]);
    o->syncs++;
    if (o->syncs == 1 && o->f->hide_socket)
        hide_socket(o->f);
    docker_client_status(o->d, &o->st_at_sync);
    if (o->syncs == o->stop_after_syncs) {
        docker_client_close(o->d, on_closed, o);
        fake_stop(o->f);
        if (o->guard)
            uv_close((uv_handle_t *)o->guard, NULL);
    }
}

static void cb_update(void *ud, container *c)
{
    obs *o = ud;
    o->updates++;
    snprintf(o->update_name, sizeof(o->update_name), "%s", c->name);
    if (o->gones != 0)
        o->order_errors++;
    container_free(c);
}

static void cb_gone(void *ud, const char *id)
{
    obs *o = ud;
    o->gones++;
    snprintf(o->gone_id, sizeof(o->gone_id), "%s", id);
    if (o->end_stream_on_gone)
        end_event_stream(o->f);
}

static const docker_callbacks callbacks = {NULL,    cb_connected, cb_disconnected,
                                           cb_sync, cb_update,    cb_gone};

static char tmpdir[128];

TEST(sync_event_reconnect)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char sock[256], host[300];
    snprintf(sock, sizeof(sock), "%s/docker.sock", tmpdir);
    snprintf(host, sizeof(host), "unix://%s", sock);
    fake f;
    REQUIRE(fake_start(&f, &loop, sock) == 0);
    f.send_events = true;
    obs o;
    memset(&o, 0, sizeof(o));
    o.f = &f;
    o.stop_after_syncs = 2;
    o.end_stream_on_gone = true;
    docker_callbacks cbs = callbacks;
    cbs.ud = &o;
    docker_options opts = {host, NULL};
    REQUIRE(docker_client_new(&loop, &opts, &cbs, &o.d) == 0);
    docker_client_start(o.d);
    uv_run(&loop, UV_RUN_DEFAULT);

    CHECK_INT(o.closed, 1);
    CHECK_INT(o.connected, 2);
    CHECK_STR(o.endpoint, host);
    CHECK_STR(o.api, "1.41");
    CHECK_INT(o.syncs, 2);
    /* Round 1: plain vanished (404) between list and inspect. */
    CHECK_INT(o.sync_n[0], 2);
    CHECK_STR(o.sync_names[0], "fx-paused fx-web ");
    CHECK_INT(o.sync_n[1], 3);
    CHECK_STR(o.sync_names[1], "fx-paused fx-plain fx-web ");
    /* The start event, split across writes, gave an update; kill was
     * ignored; die gave gone, in that order. */
    CHECK_INT(o.updates, 1);
    CHECK_STR(o.update_name, "fx-plain");
    CHECK_INT(o.gones, 1);
    CHECK_STR(o.gone_id, PAUSED_ID);
    CHECK_INT(o.order_errors, 0);
    /* The stream ended: one disconnected, then a full resync. */
    CHECK_INT(o.disconnected, 1);
    CHECK(strstr(o.reason, "event stream") != NULL);
    CHECK_INT(f.events_subs, 2);
    CHECK_INT(f.lists, 2);
    CHECK(!f.listed_before_events);
    CHECK_INT(f.bad_requests, 0);
    CHECK(o.st_at_sync.connected);
    CHECK_STR(o.st_at_sync.endpoint, host);
    CHECK_STR(o.st_at_sync.api_version, "1.41");
    /* GET /info: the engine's kind, and the socket for permission checks. */
    CHECK_STR(o.st_at_sync.os, "Docker Desktop");
    CHECK_INT(o.st_at_sync.engine_kind, DOCKER_ENGINE_DESKTOP);
    CHECK(!o.st_at_sync.rootless);
    CHECK_STR(o.st_at_sync.socket_path, sock);
    CHECK(uv_loop_close(&loop) == 0);
}

/* The engine's socket deleted while the event stream stays up: the inspect
 * after a start event cannot connect. That is an outage (reported, then a
 * full resync once the socket is back), not a lost update for as long as the
 * stream lasts. A guard timer ends a client that never notices. */
static void guard_fired(uv_timer_t *t)
{
    obs *o = t->data;
    o->order_errors += 100;
    uv_close((uv_handle_t *)t, NULL);
    o->guard = NULL;
    docker_client_close(o->d, on_closed, o);
    fake_stop(o->f);
}

TEST(socket_deleted_under_the_stream)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char sock[256];
    snprintf(sock, sizeof(sock), "%s/docker5.sock", tmpdir);
    fake f;
    REQUIRE(fake_start(&f, &loop, sock) == 0);
    f.hide_socket = true;
    snprintf(f.keep_path, sizeof(f.keep_path), "%s/docker5.keep", tmpdir);
    obs o;
    memset(&o, 0, sizeof(o));
    o.f = &f;
    o.stop_after_syncs = 2;
    o.restore_socket = true;
    uv_timer_t guard;
    uv_timer_init(&loop, &guard);
    guard.data = &o;
    o.guard = &guard;
    uv_timer_start(&guard, guard_fired, 10000, 0);
    docker_callbacks cbs = callbacks;
    cbs.ud = &o;
    docker_options opts = {sock, NULL};
    REQUIRE(docker_client_new(&loop, &opts, &cbs, &o.d) == 0);
    docker_client_start(o.d);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(o.order_errors, 0); /* >= 100: the guard had to end it */
    CHECK_INT(o.closed, 1);
    CHECK_INT(o.disconnected, 1);
    CHECK(strstr(o.reason, "after an event") != NULL);
    CHECK_INT(o.connected, 2);
    CHECK_INT(o.syncs, 2);
    CHECK_INT(o.sync_n[0], 2); /* plain vanished between list and inspect */
    CHECK_INT(o.sync_n[1], 3); /* the resync has the container started meanwhile */
    CHECK_INT(f.events_subs, 2);
    CHECK_INT(f.bad_requests, 0);
    CHECK(uv_loop_close(&loop) == 0);
}

/* The engine refuses the first two pings: one disconnected for the whole
 * outage, then connected once the engine answers. */
TEST(outage_reported_once)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char sock[256];
    snprintf(sock, sizeof(sock), "%s/docker2.sock", tmpdir);
    fake f;
    REQUIRE(fake_start(&f, &loop, sock) == 0);
    f.fail_pings = 2;
    obs o;
    memset(&o, 0, sizeof(o));
    o.f = &f;
    o.stop_after_syncs = 1;
    docker_callbacks cbs = callbacks;
    cbs.ud = &o;
    docker_options opts = {sock, NULL}; /* a bare path works too */
    REQUIRE(docker_client_new(&loop, &opts, &cbs, &o.d) == 0);
    docker_client_start(o.d);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(o.closed, 1);
    CHECK_INT(f.pings, 3);
    CHECK_INT(o.disconnected, 1);
    CHECK(strstr(o.reason, "no Docker engine answers") != NULL);
    CHECK_INT(o.connected, 1);
    CHECK_INT(o.syncs, 1);
    CHECK_INT(o.sync_n[0], 2);
    CHECK(uv_loop_close(&loop) == 0);
}

/* Closing with requests in flight runs no user callback and leaks nothing;
 * a tcp:// host is refused with a clear reason and retried, not fatal. */
TEST(close_in_flight)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char sock[256];
    snprintf(sock, sizeof(sock), "%s/docker3.sock", tmpdir);
    fake f;
    REQUIRE(fake_start(&f, &loop, sock) == 0);
    obs o;
    memset(&o, 0, sizeof(o));
    o.f = &f;
    docker_callbacks cbs = callbacks;
    cbs.ud = &o;
    docker_options opts = {sock, NULL};
    REQUIRE(docker_client_new(&loop, &opts, &cbs, &o.d) == 0);
    docker_client_start(o.d);
    docker_client_close(o.d, on_closed, &o);
    fake_stop(&f);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(o.closed, 1);
    CHECK_INT(o.connected + o.disconnected + o.syncs, 0);
    CHECK(uv_loop_close(&loop) == 0);

    uv_loop_init(&loop);
    memset(&o, 0, sizeof(o));
    docker_options tcp = {"tcp://127.0.0.1:2375", NULL};
    REQUIRE(docker_client_new(&loop, &tcp, &cbs, &o.d) == 0);
    o.close_on_disconnect = true;
    docker_client_start(o.d);
    /* start never calls back synchronously. */
    CHECK_INT(o.disconnected, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(o.closed, 1);
    CHECK_INT(o.disconnected, 1);
    CHECK(strstr(o.reason, "only speaks to Docker over a unix socket") != NULL);
    CHECK(!o.st_at_sync.connected);
    CHECK(strstr(o.st_at_sync.last_error, "tcp://") != NULL);
    CHECK(uv_loop_close(&loop) == 0);
}

/* ---- image labels of containers asking for host ports; docker_request ---- */

#define HP_ID "1111111111111111111111111111111111111111111111111111111111111111"
#define HP2_ID "2222222222222222222222222222222222222222222222222222222222222222"
#define IMG_OK "sha256:aaaa"
#define IMG_BAD "sha256:bbbb"

typedef struct hp_world {
    fake_engine fe;
    docker_client *d;
    int syncs, updates, image_gets, closed;
    /* What the sync saw of each container. */
    bool known[2];
    char image_label[2][64];
    size_t nimage[2];
    bool update_known;
    char update_label[64];
    /* docker_request */
    int replies, cancelled, status;
    char reply_body[128];
    int enotconn;
} hp_world;

/* container_image_label lives in container.c (another change); the test
 * reads the array itself. */
static const char *image_label(const container *c, const char *key)
{
    for (size_t i = 0; c->image_labels_known && i < c->nimage_labels; i++)
        if (strcmp(c->image_labels[i].key, key) == 0)
            return c->image_labels[i].value;
    return NULL;
}

static void hp_inspect(fe_conn *c, const char *id, const char *image)
{
    char body[1024];
    snprintf(body, sizeof(body),
             "{\"Id\":\"%s\",\"Name\":\"/hp-%.4s\",\"Image\":\"%s\","
             "\"State\":{\"Running\":true,\"Paused\":false,\"Pid\":42},"
             "\"Config\":{\"Image\":\"web:1\",\"Labels\":{\"loophole.host-ports\":\"8000\"}},"
             "\"NetworkSettings\":{\"Networks\":{}}}",
             id, id, image);
    fe_respond(c, 200, body);
}

static bool hp_engine(fake_engine *f, fe_conn *c, const char *method, const char *path,
                      const char *body)
{
    hp_world *w = f->ud;
    if (strcmp(path, "/v1.41/containers/json") == 0) {
        fe_respond(c, 200, "[{\"Id\":\"" HP_ID "\"},{\"Id\":\"" HP2_ID "\"}]");
    } else if (strcmp(path, "/v1.41/containers/" HP_ID "/json") == 0) {
        hp_inspect(c, HP_ID, IMG_OK);
    } else if (strcmp(path, "/v1.41/containers/" HP2_ID "/json") == 0) {
        hp_inspect(c, HP2_ID, IMG_BAD);
    } else if (strcmp(path, "/v1.41/images/" IMG_OK "/json") == 0) {
        w->image_gets++;
        fe_respond(c, 200,
                   "{\"Id\":\"" IMG_OK "\",\"Config\":{\"Labels\":{\"org.x\":\"1\","
                   "\"loophole.host-ports\":\"22\"}}}");
    } else if (strcmp(path, "/v1.41/images/" IMG_BAD "/json") == 0) {
        w->image_gets++;
        fe_respond(c, 500, "{\"message\":\"boom\"}");
    } else if (strcmp(method, "POST") == 0 && strcmp(path, "/v1.41/echo?x=1") == 0) {
        char reply[256];
        snprintf(reply, sizeof(reply), "{\"got\":%s}", body);
        fe_respond(c, 201, reply);
    } else if (strcmp(path, "/v1.41/hang") == 0) {
        /* Never answered: the client's close cancels it. */
    } else {
        return false;
    }
    return true;
}

static void hp_closed(void *arg)
{
    ((hp_world *)arg)->closed++;
}

static void hp_reply(void *ud, int err, int status, const char *body, size_t len)
{
    hp_world *w = ud;
    if (err == UV_ECANCELED) {
        w->cancelled++;
        return;
    }
    w->replies++;
    w->status = status;
    snprintf(w->reply_body, sizeof(w->reply_body), "%.*s", (int)len, body ? body : "");
    /* The echo came back: send one that hangs, then close with it in flight. */
    CHECK_INT(docker_request(w->d, "GET", "/hang", NULL, hp_reply, w), 0);
    CHECK_INT(docker_request(w->d, "GET", "no-slash", NULL, hp_reply, w), -EINVAL);
    fe_send_event(&w->fe,
                  "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"" HP_ID "\"}}");
}

static void hp_sync(void *ud, container **ctrs, size_t n)
{
    hp_world *w = ud;
    w->syncs++;
    for (size_t i = 0; i < n; i++) {
        int k = strcmp(ctrs[i]->id, HP_ID) == 0 ? 0 : 1;
        w->known[k] = ctrs[i]->image_labels_known;
        w->nimage[k] = ctrs[i]->nimage_labels;
        const char *v = image_label(ctrs[i], LABEL_HOST_PORTS);
        snprintf(w->image_label[k], sizeof(w->image_label[k]), "%s", v ? v : "");
        /* container_free does not free image labels yet (container.c). */
        ctr_labels_free(ctrs[i]->image_labels, ctrs[i]->nimage_labels);
        ctrs[i]->image_labels = NULL;
        ctrs[i]->nimage_labels = 0;
        container_free(ctrs[i]);
    }
    CHECK_INT(docker_request(w->d, "POST", "/echo?x=1", "{\"a\":1}", hp_reply, w), 0);
}

static void hp_update(void *ud, container *c)
{
    hp_world *w = ud;
    w->updates++;
    w->update_known = c->image_labels_known;
    const char *v = image_label(c, LABEL_HOST_PORTS);
    snprintf(w->update_label, sizeof(w->update_label), "%s", v ? v : "");
    ctr_labels_free(c->image_labels, c->nimage_labels);
    c->image_labels = NULL;
    c->nimage_labels = 0;
    container_free(c);
    docker_client_close(w->d, hp_closed, w);
    fe_stop(&w->fe);
}

TEST(host_ports_image_labels_and_requests)
{
    /* The image id comes from docker_decode_inspect's top-level "Image". */
    container *probe = NULL;
    const char *j = "{\"Id\":\"" HP_ID "\",\"Name\":\"/x\",\"Image\":\"sha256:aaaa\","
                    "\"State\":{\"Running\":true}}";
    REQUIRE(docker_decode_inspect(j, strlen(j), &probe, NULL, 0) == 0);
    bool has_image_id = probe->image_id != NULL && strcmp(probe->image_id, "sha256:aaaa") == 0;
    container_free(probe);
    if (!has_image_id)
        fprintf(stderr, "note: docker_decode_inspect does not fill image_id yet: checking that "
                        "containers are reported without image labels\n");

    uv_loop_t loop;
    uv_loop_init(&loop);
    char sock[256], host[300];
    snprintf(sock, sizeof(sock), "%s/docker-hp.sock", tmpdir);
    snprintf(host, sizeof(host), "unix://%s", sock);
    hp_world w;
    memset(&w, 0, sizeof(w));
    REQUIRE(fe_start(&w.fe, &loop, sock) == 0);
    w.fe.handle = hp_engine;
    w.fe.ud = &w;
    docker_callbacks cbs = {&w, NULL, NULL, hp_sync, hp_update, NULL};
    docker_options opts = {host, NULL};
    REQUIRE(docker_client_new(&loop, &opts, &cbs, &w.d) == 0);
    CHECK_INT(docker_request(w.d, "GET", "/info", NULL, hp_reply, &w), -ENOTCONN);
    docker_client_start(w.d);
    uv_run(&loop, UV_RUN_DEFAULT);

    CHECK_INT(w.closed, 1);
    CHECK_INT(w.syncs, 1);
    /* Sync: labels attached; a failed image fetch still reports it. */
    CHECK(w.known[0] == has_image_id);
    CHECK_INT(w.nimage[0], has_image_id ? 2 : 0);
    CHECK_STR(w.image_label[0], has_image_id ? "22" : "");
    CHECK(!w.known[1]);
    CHECK_INT(w.nimage[1], 0);
    /* The event's inspect fetched the image too. */
    CHECK_INT(w.updates, 1);
    CHECK(w.update_known == has_image_id);
    CHECK_STR(w.update_label, has_image_id ? "22" : "");
    CHECK_INT(w.image_gets, has_image_id ? 3 : 0);
    /* docker_request: the versioned path, the body, the reply; the one in
     * flight at close was cancelled, exactly once. */
    CHECK_INT(w.replies, 1);
    CHECK_INT(w.status, 201);
    CHECK_STR(w.reply_body, "{\"got\":{\"a\":1}}");
    CHECK_INT(w.cancelled, 1);
    CHECK(strstr(w.fe.log.data, "POST /v1.41/echo?x=1\n") != NULL);
    CHECK(strstr(w.fe.log.data, "GET /v1.41/info\n") != NULL);
    fe_free(&w.fe);
    CHECK(uv_loop_close(&loop) == 0);
}

/* ---- hostile ids on the event stream (issue 15) ---- */

#define EV_GOOD_ID "3333333333333333333333333333333333333333333333333333333333333333"
/* A container whose inspect reply is beyond the client's 16 MiB (labels
 * can make it so): that container is skipped, the engine is not down. */
#define EV_BIG_ID "4444444444444444444444444444444444444444444444444444444444444444"

typedef struct ev_world {
    fake_engine fe;
    docker_client *d;
    int syncs, updates, gone, closed;
    char updated[65];
} ev_world;

static bool ev_engine(fake_engine *f, fe_conn *c, const char *method, const char *path,
                      const char *body)
{
    (void)f;
    (void)method;
    (void)body;
    if (strcmp(path, "/v1.41/containers/" EV_BIG_ID "/json") == 0) {
        size_t n = 17u << 20;
        char *big = xmalloc(n + 64);
        int h = snprintf(big, 64, "{\"Id\":\"%.12s\",\"Config\":{\"Labels\":{\"x\":\"", EV_BIG_ID);
        memset(big + h, 'a', n);
        strcpy(big + h + n, "\"}}}");
        fe_respond(c, 200, big);
        free(big);
        return true;
    }
    if (strcmp(path, "/v1.41/containers/" EV_GOOD_ID "/json") != 0)
        return false; /* a 404 from the fake, and in its log */
    fe_respond(c, 200,
               "{\"Id\":\"" EV_GOOD_ID "\",\"Name\":\"/ev-good\",\"Image\":\"sha256:cccc\","
               "\"State\":{\"Running\":true,\"Paused\":false,\"Pid\":42},"
               "\"Config\":{\"Image\":\"web:1\",\"Labels\":{}},"
               "\"NetworkSettings\":{\"Networks\":{}}}");
    return true;
}

static void ev_sync(void *ud, container **ctrs, size_t n)
{
    ev_world *w = ud;
    w->syncs++;
    for (size_t i = 0; i < n; i++)
        container_free(ctrs[i]);
    /* Hostile ids first, in every shape that reaches a request line (an
     * inspect for start, the gone callback for die, a network event's
     * container), then a good event: it alone is served. */
    static const char *const hostile[] = {
        "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"../../x\"}}",
        "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"abc def\"}}",
        "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":"
        "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}}",
        "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"zzzz\"}}",
        "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"\"}}",
        "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"a b\\r\\nX: y\"}}",
        "{\"status\":\"die\",\"id\":\"../../../containers/json\"}",
        "{\"Type\":\"network\",\"Action\":\"connect\",\"Actor\":{\"ID\":\"9f3c\","
        "\"Attributes\":{\"container\":\"../x?y\"}}}",
    };
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++)
        fe_send_event(&w->fe, hostile[i]);
    fe_send_event(&w->fe,
                  "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"" EV_BIG_ID
                  "\"}}");
    fe_send_event(&w->fe,
                  "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"" EV_GOOD_ID
                  "\"}}");
}

static void ev_closed(void *arg)
{
    ((ev_world *)arg)->closed++;
}

static void ev_update(void *ud, container *c)
{
    ev_world *w = ud;
    w->updates++;
    snprintf(w->updated, sizeof(w->updated), "%s", c->id);
    container_free(c);
    docker_client_close(w->d, ev_closed, w);
    fe_stop(&w->fe);
}

static void ev_gone(void *ud, const char *id)
{
    (void)id;
    ((ev_world *)ud)->gone++;
}

TEST(event_hostile_ids_dropped)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    char sock[256], host[300];
    snprintf(sock, sizeof(sock), "%s/docker-ev.sock", tmpdir);
    snprintf(host, sizeof(host), "unix://%s", sock);
    ev_world w;
    memset(&w, 0, sizeof(w));
    REQUIRE(fe_start(&w.fe, &loop, sock) == 0);
    w.fe.handle = ev_engine;
    w.fe.ud = &w;
    docker_callbacks cbs = {&w, NULL, NULL, ev_sync, ev_update, ev_gone};
    docker_options opts = {host, NULL};
    REQUIRE(docker_client_new(&loop, &opts, &cbs, &w.d) == 0);
    docker_client_start(w.d);
    uv_run(&loop, UV_RUN_DEFAULT);

    CHECK_INT(w.closed, 1);
    CHECK_INT(w.syncs, 1); /* the oversized inspect was no outage */
    /* The good event after the hostile ones was served... */
    CHECK_INT(w.updates, 1);
    CHECK_STR(w.updated, EV_GOOD_ID);
    /* ...and no hostile id made a request or a gone. */
    CHECK_INT(w.gone, 0);
    REQUIRE(w.fe.log.data != NULL);
    CHECK(strstr(w.fe.log.data, "GET /v1.41/containers/" EV_GOOD_ID "/json\n") != NULL);
    int inspects = 0;
    for (const char *p = w.fe.log.data; (p = strstr(p, "/containers/")) != NULL; p++)
        inspects++;
    CHECK_INT(inspects, 3); /* the listing, the oversized and the good inspect */
    CHECK(strstr(w.fe.log.data, "..") == NULL);
    CHECK(strstr(w.fe.log.data, "zzzz") == NULL);
    CHECK(strstr(w.fe.log.data, "aaaa") == NULL);
    /* Every request line the fake saw was whole (a space or CR in an id would
     * have broken one). */
    CHECK_INT(w.fe.requests, 7); /* _ping, version, info, events, list, 2 inspects */
    fe_free(&w.fe);
    CHECK(uv_loop_close(&loop) == 0);
}

TEST_SETUP()
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/loophole-dc-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

TEST_TEARDOWN()
{
    rmdir(tmpdir);
}
