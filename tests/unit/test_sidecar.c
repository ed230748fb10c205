/* The relay sidecar manager against a fake engine (tests/unit/fake_engine.h)
 * through a real docker_client: the exact create body, start, removal when
 * unwanted or when the dest changes, the pull of a missing image (once for
 * several sidecars), a failed pull's problem, leftovers removed after a
 * (simulated) crash, and close removing everything with every handle
 * closed. Each test is driven by the manager's own callbacks and the fake
 * engine's requests; nothing sleeps. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "container.h"
#include "docker.h"
#include "fake_engine.h"
#include "json.h"
#include "sidecar.h"
#include "test.h"
#include "util.h"

#define T1 "d5a16442f260a51a8c826b9f7fed2da7774f328f46c1976374235844f8d5d3fd"
#define T2 "aa2001b6dec73586b190b4ea7e407797dcf68cf4f0088ae495dcf44ae8db1350"
#define LIST_PATH                                                                                  \
    "/v1.41/containers/"                                                                           \
    "json?all=1&filters=%7B%22label%22%3A%5B%22loophole.sidecar.owner%3Dt0ken%22%5D%7D"

/* ---- a small engine: containers by name, one image, pulls ---- */

typedef struct ectr {
    char id[65];
    char name[96];
    bool running;
} ectr;

typedef struct world world;
struct world {
    fake_engine fe;
    uv_loop_t loop;
    docker_client *d;
    sidecar_manager *m;
    ectr ctrs[16];
    int nctrs;
    int next_id;
    bool have_image;
    bool pull_fails;
    int creates, starts, deletes, pulls, lists, bad;
    char pull_path[256];
    yajl_val body[8]; /* create bodies, in order */
    char create_path[8][160];
    int changes;
    int step;
    /* The test's script: runs on connect, on each change and after each
     * DELETE the engine answered. */
    void (*on_connected)(world *w);
    void (*on_changed)(world *w);
    void (*on_deleted)(world *w);
    bool closed, dclosed;
    /* A removal that takes a while (the engine stopping the container): the
     * first DELETE is answered by a timer; the name stays in use meanwhile. */
    bool hold_deletes;
    fe_conn *held;
    char held_id[128];
    uv_timer_t held_timer;
    void (*on_held)(world *w);
};

static ectr *find_ctr(world *w, const char *id_or_name)
{
    for (int i = 0; i < w->nctrs; i++)
        if (strcmp(w->ctrs[i].id, id_or_name) == 0 || strcmp(w->ctrs[i].name, id_or_name) == 0)
            return &w->ctrs[i];
    return NULL;
}

static void add_ctr(world *w, const char *id, const char *name, bool running)
{
    ectr *c = &w->ctrs[w->nctrs++];
    snprintf(c->id, sizeof(c->id), "%s", id);
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->running = running;
}

static void held_fired(uv_timer_t *t)
{
    world *w = t->data;
    ectr *e = find_ctr(w, w->held_id);
    if (e)
        *e = w->ctrs[--w->nctrs];
    fe_respond(w->held, 204, NULL);
    w->held = NULL;
    if (w->on_deleted)
        w->on_deleted(w);
}

static bool engine(fake_engine *f, fe_conn *c, const char *method, const char *path,
                   const char *body)
{
    world *w = f->ud;
    char arg[128];
    if (strcmp(method, "POST") == 0 &&
        sscanf(path, "/v1.41/containers/create?name=%127s", arg) == 1) {
        int k = w->creates++;
        if (k < 8) {
            snprintf(w->create_path[k], sizeof(w->create_path[k]), "%s", path);
            json_parse(body, strlen(body), 1 << 20, 16, &w->body[k], NULL, 0);
        }
        if (!strstr(path, "name=loophole-relay-") ||
            strstr(c->in.data, "Content-Type: "
                               "application/json\r\n") == NULL)
            w->bad++;
        if (!w->have_image) {
            fe_respond(c, 404, "{\"message\":\"No such image: alpine/socat:latest\"}");
        } else if (find_ctr(w, arg) != NULL) {
            fe_respond(c, 409, "{\"message\":\"Conflict. The container name is already in use\"}");
        } else {
            char id[65], reply[128];
            snprintf(id, sizeof(id), "%064d", ++w->next_id);
            add_ctr(w, id, arg, false);
            snprintf(reply, sizeof(reply), "{\"Id\":\"%s\",\"Warnings\":[]}", id);
            fe_respond(c, 201, reply);
        }
        return true;
    }
    if (strcmp(method, "POST") == 0 &&
        sscanf(path, "/v1.41/containers/%64[0-9a-f]/start", arg) == 1) {
        w->starts++;
        ectr *e = find_ctr(w, arg);
        if (e)
            e->running = true;
        fe_respond(c, e ? 204 : 404, e ? NULL : "{\"message\":\"No such container\"}");
        return true;
    }
    if (strcmp(method, "DELETE") == 0 && sscanf(path, "/v1.41/containers/%127[^?]", arg) == 1) {
        w->deletes++;
        if (strstr(path, "?force=1") == NULL)
            w->bad++;
        if (w->held != NULL) {
            fe_respond(c, 409, "{\"message\":\"removal of container is already in progress\"}");
            return true;
        }
        if (w->hold_deletes && find_ctr(w, arg) != NULL) {
            w->hold_deletes = false;
            w->held = c;
            snprintf(w->held_id, sizeof(w->held_id), "%s", arg);
            uv_timer_start(&w->held_timer, held_fired, 100, 0);
            if (w->on_held)
                w->on_held(w);
            return true;
        }
        ectr *e = find_ctr(w, arg);
        if (e) {
            *e = w->ctrs[--w->nctrs];
            fe_respond(c, 204, NULL);
        } else {
            fe_respond(c, 404, "{\"message\":\"No such container\"}");
        }
        if (w->on_deleted)
            w->on_deleted(w);
        return true;
    }
    if (strcmp(method, "POST") == 0 && strncmp(path, "/v1.41/images/create?", 21) == 0) {
        w->pulls++;
        snprintf(w->pull_path, sizeof(w->pull_path), "%s", path);
        if (w->pull_fails) {
            /* A failed pull is HTTP 200 with an error line; \u0007 checks
             * that the engine's text is made printable. */
            fe_respond(c, 200,
                       "{\"status\":\"Pulling from alpine/socat\"}\r\n"
                       "{\"errorDetail\":{\"message\":\"denied\"},\"error\":\"pull access denied "
                       "for alpine/socat\\u0007\"}\r\n");
        } else {
            w->have_image = true;
            fe_respond(c, 200,
                       "{\"status\":\"Pulling from alpine/socat\"}\n{\"status\":\"Downloaded "
                       "newer image for alpine/socat:latest\"}\n");
        }
        return true;
    }
    if (strcmp(method, "GET") == 0 && strcmp(path, LIST_PATH) == 0) {
        w->lists++;
        buf b = {0};
        buf_appendf(&b, "[");
        for (int i = 0; i < w->nctrs; i++)
            buf_appendf(&b,
                        "%s{\"Id\":\"%s\",\"Names\":[\"/%s\"],\"State\":\"%s\",\"Labels\":{"
                        "\"loophole.sidecar\":\"x\"}}",
                        i ? "," : "", w->ctrs[i].id, w->ctrs[i].name,
                        w->ctrs[i].running ? "running" : "created");
        buf_appendf(&b, "]");
        fe_respond(c, 200, b.data);
        buf_free(&b);
        return true;
    }
    if ((strstr(path, "/containers/") && strcmp(path, "/v1.41/containers/json") != 0) ||
        strstr(path, "/images/")) {
        w->bad++;
        fprintf(stderr, "fake engine: unexpected %s %s\n", method, path);
    }
    return false;
}

static void dc_closed(void *arg)
{
    ((world *)arg)->dclosed = true;
}

static void sc_closed(void *arg)
{
    world *w = arg;
    w->closed = true;
    uv_close((uv_handle_t *)&w->held_timer, NULL);
    docker_client_close(w->d, dc_closed, w);
    fe_stop(&w->fe);
}

static void changed(void *ud)
{
    world *w = ud;
    w->changes++;
    if (w->on_changed && !w->closed)
        w->on_changed(w);
}

static void connected(void *ud, const char *endpoint, const char *api)
{
    (void)endpoint;
    (void)api;
    world *w = ud;
    if (w->on_connected)
        w->on_connected(w);
}

static void sync_cb(void *ud, container **ctrs, size_t n)
{
    (void)ud;
    for (size_t i = 0; i < n; i++)
        container_free(ctrs[i]);
}

static char tmpdir[128];

static int world_start(world *w)
{
    char sock[256], host[300];
    uv_loop_init(&w->loop);
    snprintf(sock, sizeof(sock), "%s/engine.sock", tmpdir);
    snprintf(host, sizeof(host), "unix://%s", sock);
    if (fe_start(&w->fe, &w->loop, sock) != 0)
        return -1;
    w->fe.handle = engine;
    w->fe.ud = w;
    w->fe.info = "{\"OperatingSystem\":\"Docker Desktop\",\"Name\":\"docker-desktop\"}";
    w->have_image = true;
    uv_timer_init(&w->loop, &w->held_timer);
    w->held_timer.data = w;
    docker_callbacks cbs = {w, connected, NULL, sync_cb, NULL, NULL};
    docker_options opts = {host, NULL};
    if (docker_client_new(&w->loop, &opts, &cbs, &w->d) != 0)
        return -1;
    w->m = sidecar_new(w->d, "alpine/socat", "t0ken", changed, w);
    docker_client_start(w->d);
    return 0;
}

static void world_free(world *w)
{
    for (int i = 0; i < 8; i++)
        json_free(w->body[i]);
    fe_free(&w->fe);
}

static sidecar_want want(const char *target, uint16_t port, uint8_t proto, const char *dest)
{
    sidecar_want s;
    memset(&s, 0, sizeof(s));
    snprintf(s.target, sizeof(s.target), "%s", target);
    s.target_name = "web";
    s.port = port;
    s.proto = proto;
    snprintf(s.dest, sizeof(s.dest), "%s", dest);
    return s;
}

static const char *cmd_at(yajl_val body, size_t i)
{
    return json_str(json_at(json_member(body, "Cmd"), i), NULL);
}

/* ---- create, start, a new dest, removal when unwanted ---- */

static void lifecycle_connected(world *w)
{
    sidecar_want s = want(T1, 8000, CTR_TCP, "host.docker.internal:8000");
    sidecar_apply(w->m, &s, 1);
    sidecar_engine_connected(w->m);
}

static void lifecycle_changed(world *w)
{
    int st = sidecar_state(w->m, T1, 8000, CTR_TCP, NULL);
    if (w->step == 0 && st == SIDECAR_RUNNING) {
        w->step = 1;
        CHECK_INT(sidecar_count(w->m), 1);
        sidecar_want s = want(T1, 8000, CTR_TCP, "host.docker.internal:9000");
        sidecar_apply(w->m, &s, 1);
    } else if (w->step == 1 && st == SIDECAR_RUNNING) {
        w->step = 2;
        sidecar_apply(w->m, NULL, 0);
        CHECK_INT(sidecar_state(w->m, T1, 8000, CTR_TCP, NULL), -ENOENT);
    }
}

static void lifecycle_deleted(world *w)
{
    if (w->step == 2)
        sidecar_close(w->m, sc_closed, w);
}

TEST(create_start_dest_change_remove)
{
    world w;
    memset(&w, 0, sizeof(w));
    REQUIRE(world_start(&w) == 0);
    w.on_connected = lifecycle_connected;
    w.on_changed = lifecycle_changed;
    w.on_deleted = lifecycle_deleted;
    uv_run(&w.loop, UV_RUN_DEFAULT);

    CHECK(w.closed && w.dclosed);
    CHECK_INT(w.step, 2);
    CHECK_INT(w.bad, 0);
    CHECK_INT(w.creates, 2);
    CHECK_INT(w.starts, 2);
    CHECK_INT(w.deletes, 2); /* the old dest's, then the unwanted one */
    CHECK_INT(w.nctrs, 0);
    CHECK_INT(w.pulls, 0);
    CHECK_INT(w.lists, 1);
    CHECK_STR(w.create_path[0],
              "/v1.41/containers/create?name=loophole-relay-d5a16442f260-8000-tcp");
    yajl_val b = w.body[0];
    REQUIRE(b != NULL);
    CHECK_STR(json_str(b, "Image", NULL), "alpine/socat");
    CHECK_INT(json_len(json_member(b, "Entrypoint")), 1);
    CHECK_STR(json_str(json_at(json_member(b, "Entrypoint"), 0), NULL), "socat");
    CHECK_INT(json_len(json_member(b, "Cmd")), 4);
    CHECK_STR(cmd_at(b, 0), "-t");
    CHECK_STR(cmd_at(b, 1), "7200");
    CHECK_STR(cmd_at(b, 2), "TCP-LISTEN:8000,bind=127.0.0.1,fork,reuseaddr");
    CHECK_STR(cmd_at(b, 3), "TCP:host.docker.internal:8000");
    CHECK_STR(json_str(b, "Labels", "loophole.sidecar", NULL), T1);
    CHECK_STR(json_str(b, "Labels", "loophole.sidecar.port", NULL), "8000/tcp");
    CHECK_STR(json_str(b, "Labels", "loophole.sidecar.owner", NULL), "t0ken");
    CHECK_STR(json_str(b, "HostConfig", "NetworkMode", NULL), "container:" T1);
    bool ar = true;
    CHECK(json_bool(b, &ar, "HostConfig", "AutoRemove", NULL) == 0 && !ar);
    CHECK_STR(json_str(b, "HostConfig", "RestartPolicy", "Name", NULL), "no");
    CHECK_STR(cmd_at(w.body[1], 3), "TCP:host.docker.internal:9000");
    world_free(&w);
    CHECK(uv_loop_close(&w.loop) == 0);
}

/* ---- a missing image is pulled once, then both sidecars are made ---- */

static void two_wants(world *w)
{
    sidecar_want s[2] = {want(T1, 8000, CTR_TCP, "host.docker.internal:8000"),
                         want(T2, 5353, CTR_UDP, "host.docker.internal:5353")};
    sidecar_apply(w->m, s, 2);
    sidecar_engine_connected(w->m);
}

static void close_when_both_settled(world *w)
{
    int a = sidecar_state(w->m, T1, 8000, CTR_TCP, NULL);
    int b = sidecar_state(w->m, T2, 5353, CTR_UDP, NULL);
    if (a != SIDECAR_PENDING && b != SIDECAR_PENDING && w->step == 0) {
        w->step = 1;
        /* What the tests look at after the run. */
        CHECK_INT(sidecar_count(w->m), w->pull_fails ? 0 : 2);
        const char *p = NULL;
        CHECK_INT(sidecar_state(w->m, T1, 8000, CTR_TCP, &p),
                  w->pull_fails ? SIDECAR_FAILED : SIDECAR_RUNNING);
        if (w->pull_fails) {
            REQUIRE(p != NULL);
            CHECK(strstr(p, "cannot pull the relay image alpine/socat: pull access denied for "
                            "alpine/socat\\x07; fetch it with docker pull alpine/socat or set "
                            "--sidecar-image") != NULL);
            CHECK(strchr(p, '\a') == NULL);
        } else {
            CHECK(p == NULL);
        }
        sidecar_close(w->m, sc_closed, w);
    }
}

TEST(pull_missing_image_then_run)
{
    world w;
    memset(&w, 0, sizeof(w));
    REQUIRE(world_start(&w) == 0);
    w.have_image = false;
    w.on_connected = two_wants;
    w.on_changed = close_when_both_settled;
    uv_run(&w.loop, UV_RUN_DEFAULT);

    CHECK(w.closed && w.dclosed);
    CHECK_INT(w.step, 1);
    CHECK_INT(w.bad, 0);
    CHECK_INT(w.pulls, 1);
    CHECK_STR(w.pull_path, "/v1.41/images/create?fromImage=alpine%2Fsocat&tag=latest");
    CHECK_INT(w.creates, 4);
    CHECK_INT(w.starts, 2);
    /* close removed both */
    CHECK_INT(w.deletes, 2);
    CHECK_INT(w.nctrs, 0);
    /* The UDP one's command. */
    bool udp_seen = false;
    for (int i = 0; i < 4; i++)
        if (cmd_at(w.body[i], 0) &&
            strcmp(cmd_at(w.body[i], 2), "UDP-LISTEN:5353,bind=127.0.0.1,fork,reuseaddr") == 0) {
            CHECK_STR(cmd_at(w.body[i], 3), "UDP:host.docker.internal:5353");
            CHECK_STR(json_str(w.body[i], "Labels", "loophole.sidecar.port", NULL), "5353/udp");
            udp_seen = true;
        }
    CHECK(udp_seen);
    world_free(&w);
    CHECK(uv_loop_close(&w.loop) == 0);
}

TEST(pull_failure_is_a_problem)
{
    world w;
    memset(&w, 0, sizeof(w));
    REQUIRE(world_start(&w) == 0);
    w.have_image = false;
    w.pull_fails = true;
    w.on_connected = two_wants;
    w.on_changed = close_when_both_settled;
    uv_run(&w.loop, UV_RUN_DEFAULT);

    CHECK(w.closed && w.dclosed);
    CHECK_INT(w.step, 1);
    CHECK_INT(w.pulls, 1); /* one pull for both */
    CHECK_INT(w.creates, 2);
    CHECK_INT(w.starts, 0);
    CHECK_INT(w.deletes, 0);
    world_free(&w);
    CHECK(uv_loop_close(&w.loop) == 0);
}

/* ---- a crashed daemon's leftovers ---- */

static void leftovers_connected(world *w)
{
    sidecar_engine_connected(w->m);
    sidecar_want s = want(T1, 8000, CTR_TCP, "172.17.0.1:40123");
    sidecar_apply(w->m, &s, 1);
}

static void leftovers_changed(world *w)
{
    /* Wait for the unrelated leftover's removal too. */
    if (w->step == 0 && sidecar_count(w->m) == 1 &&
        find_ctr(w, "loophole-relay-0123456789ab-9-udp") == NULL) {
        w->step = 1;
        sidecar_close(w->m, sc_closed, w);
    }
}

static void leftovers_deleted(world *w)
{
    leftovers_changed(w);
}

TEST(leftovers_removed_on_connect)
{
    world w;
    memset(&w, 0, sizeof(w));
    REQUIRE(world_start(&w) == 0);
    /* One with the name the want needs (a 409 on create), one nobody wants. */
    add_ctr(&w, "1111111111111111111111111111111111111111111111111111111111111111",
            "loophole-relay-d5a16442f260-8000-tcp", true);
    add_ctr(&w, "2222222222222222222222222222222222222222222222222222222222222222",
            "loophole-relay-0123456789ab-9-udp", true);
    /* Labelled, but not named as a relay: an image's label; never removed. */
    add_ctr(&w, "3333333333333333333333333333333333333333333333333333333333333333", "shop", true);
    w.on_connected = leftovers_connected;
    w.on_changed = leftovers_changed;
    w.on_deleted = leftovers_deleted;
    uv_run(&w.loop, UV_RUN_DEFAULT);

    CHECK(w.closed && w.dclosed);
    CHECK_INT(w.step, 1);
    CHECK_INT(w.bad, 0);
    CHECK_INT(w.lists, 1);
    CHECK_INT(w.creates, 2); /* 409, then made again */
    CHECK_INT(w.starts, 1);
    CHECK_INT(w.deletes, 3); /* two leftovers, then ours at close */
    CHECK_INT(w.nctrs, 1);
    CHECK(find_ctr(&w, "shop") != NULL);
    CHECK_STR(cmd_at(w.body[1], 3), "TCP:172.17.0.1:40123");
    world_free(&w);
    CHECK(uv_loop_close(&w.loop) == 0);
}

/* The want for a target the crashed daemon relayed too arrives while that
 * leftover's removal is still in progress: the entry waits for it instead of
 * creating at once (a 409, a second DELETE refused, a second 409, FAILED). */
static void race_connected(world *w)
{
    sidecar_engine_connected(w->m);
}

static void race_held(world *w)
{
    sidecar_want s = want(T1, 8000, CTR_TCP, "172.17.0.1:40123");
    sidecar_apply(w->m, &s, 1);
}

static void race_changed(world *w)
{
    if (w->step != 0)
        return;
    const char *p = NULL;
    int st = sidecar_state(w->m, T1, 8000, CTR_TCP, &p);
    if (st == SIDECAR_RUNNING || st == SIDECAR_FAILED) {
        if (st == SIDECAR_FAILED)
            fprintf(stderr, "relay failed: %s\n", p ? p : "?");
        w->step = st == SIDECAR_RUNNING ? 1 : 2;
        if (w->held == NULL)
            sidecar_close(w->m, sc_closed, w);
    }
}

static void race_deleted(world *w)
{
    if (w->step == 2 && w->held == NULL && !w->closed)
        sidecar_close(w->m, sc_closed, w);
}

TEST(leftover_of_the_same_name_removed_first)
{
    world w;
    memset(&w, 0, sizeof(w));
    REQUIRE(world_start(&w) == 0);
    add_ctr(&w, "1111111111111111111111111111111111111111111111111111111111111111",
            "loophole-relay-d5a16442f260-8000-tcp", true);
    w.hold_deletes = true;
    w.on_connected = race_connected;
    w.on_held = race_held;
    w.on_changed = race_changed;
    w.on_deleted = race_deleted;
    uv_run(&w.loop, UV_RUN_DEFAULT);

    CHECK(w.closed && w.dclosed);
    CHECK_INT(w.step, 1);
    CHECK_INT(w.bad, 0);
    CHECK_INT(w.lists, 1);
    CHECK_INT(w.creates, 1); /* only once the leftover was gone */
    CHECK_INT(w.starts, 1);
    CHECK_INT(w.deletes, 2); /* the leftover, then ours at close */
    CHECK_INT(w.nctrs, 0);
    world_free(&w);
    CHECK(uv_loop_close(&w.loop) == 0);
}

/* ---- wants that cannot be used, and close without an engine ---- */

TEST(bad_wants_fail_at_once)
{
    world w;
    memset(&w, 0, sizeof(w));
    REQUIRE(world_start(&w) == 0);
    sidecar_want s[3] = {want(T1, 8000, CTR_TCP, "host.docker.internal:8000,fork"),
                         want("not-an-id", 8000, CTR_TCP, "host.docker.internal:8000"),
                         want(T2, 8000, CTR_TCP, "noport")};
    sidecar_apply(w.m, s, 3);
    for (int i = 0; i < 3; i++) {
        const char *p = NULL;
        CHECK_INT(sidecar_state(w.m, s[i].target, 8000, CTR_TCP, &p), SIDECAR_FAILED);
        CHECK(p != NULL && strstr(p, "is not a container id") != NULL);
    }
    CHECK_INT(w.changes, 0); /* never from inside a sidecar_* call */
    /* Not connected yet: close finds nothing to remove. */
    sidecar_close(w.m, sc_closed, &w);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    CHECK(w.closed && w.dclosed);
    CHECK_INT(w.creates, 0);
    world_free(&w);
    CHECK(uv_loop_close(&w.loop) == 0);
}

TEST_SETUP()
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/loophole-sc-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

TEST_TEARDOWN()
{
    char sock[256];
    snprintf(sock, sizeof(sock), "%s/engine.sock", tmpdir);
    unlink(sock);
    rmdir(tmpdir);
}
