/* The control server on a real unix socket in a libuv loop, with a fake
 * provider. The loop runs on the main thread; each scenario is a blocking
 * client on a second thread that asks the loop thread to do things (publish,
 * change the peer override, shut down) through a uv_async. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <http_parser.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "control.h"
#include "http.h"
#include "log.h"
#include "test.h"

/* For SDKs without MSG_NOSIGNAL (macOS 12's has it): the setup ignores SIGPIPE anyway. */
#if !defined(__linux__) && !defined(MSG_NOSIGNAL)
#define MSG_NOSIGNAL 0
#endif

typedef struct fixture fixture;
typedef void (*loop_fn)(fixture *f, void *arg);

struct fixture {
    uv_loop_t loop;
    uv_async_t async;
    control_server *srv;
    char path[108];
    void (*scenario)(fixture *f);
    /* a call handed to the loop thread */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    loop_fn call;
    void *call_arg;
    bool call_done;
    /* what the fake provider saw and answers */
    int resolver_calls;
    bool last_install;
    int resolver_rc;
    bool closed;
    /* host ports: what the fake provider saw */
    int lease_adds, lease_removes, lease_rc;
    bool lease_created;
    char lease_body[256], lease_name[128];
    int hp_adds, hp_removes;
    char hp_body[256];
    char hp_port[16], hp_proto[16];
    int hp_rc;
    bool docker_known;
    uid_t docker_uid;
    gid_t docker_gid;
    mode_t docker_mode;
};

/* ---- fake provider ---- */

static void gen_str(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void prov_status(void *ud, yajl_gen g)
{
    (void)ud;
    yajl_gen_map_open(g);
    gen_str(g, "version");
    gen_str(g, "test");
    gen_str(g, "uptime_s");
    yajl_gen_integer(g, 5);
    yajl_gen_map_close(g);
}

static void gen_web(yajl_gen g)
{
    yajl_gen_map_open(g);
    gen_str(g, "name");
    gen_str(g, "web.loop.test");
    gen_str(g, "ip");
    gen_str(g, "127.0.0.2");
    yajl_gen_map_close(g);
}

static void prov_containers(void *ud, yajl_gen g)
{
    (void)ud;
    yajl_gen_array_open(g);
    gen_web(g);
    yajl_gen_array_close(g);
}

static int prov_container(void *ud, const char *key, yajl_gen g)
{
    (void)ud;
    if (strcmp(key, "web.loop.test") != 0 && strcmp(key, "web") != 0)
        return -ENOENT;
    gen_web(g);
    return 0;
}

static int prov_resolver(void *ud, bool install, char *err, size_t errlen)
{
    fixture *f = ud;
    f->resolver_calls++;
    f->last_install = install;
    if (f->resolver_rc == -EIO)
        snprintf(err, errlen, "the disk is on fire");
    return f->resolver_rc;
}

static int prov_host_ports(void *ud, const char *key, yajl_gen g)
{
    (void)ud;
    if (strcmp(key, "web") != 0)
        return -ENOENT;
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);
    return 0;
}

static int prov_host_port_add(void *ud, const char *key, const char *body, size_t len, yajl_gen g,
                              char *err, size_t errlen)
{
    fixture *f = ud;
    if (strcmp(key, "web") != 0)
        return -ENOENT;
    f->hp_adds++;
    snprintf(f->hp_body, sizeof(f->hp_body), "%.*s", (int)len, body);
    if (f->hp_rc < 0) {
        snprintf(err, errlen, "fake refusal %d", f->hp_rc);
        return f->hp_rc;
    }
    yajl_gen_map_open(g);
    gen_str(g, "port");
    yajl_gen_integer(g, 8000);
    yajl_gen_map_close(g);
    return 0;
}

static int prov_host_port_remove(void *ud, const char *key, const char *port, const char *proto,
                                 char *err, size_t errlen)
{
    fixture *f = ud;
    if (strcmp(key, "web") != 0)
        return -ENOENT;
    f->hp_removes++;
    snprintf(f->hp_port, sizeof(f->hp_port), "%s", port ? port : "");
    snprintf(f->hp_proto, sizeof(f->hp_proto), "%s", proto ? proto : "");
    if (f->hp_rc < 0) {
        snprintf(err, errlen, "fake refusal %d", f->hp_rc);
        return f->hp_rc;
    }
    return 0;
}

static void prov_leases(void *ud, yajl_gen g)
{
    (void)ud;
    yajl_gen_array_open(g);
    yajl_gen_array_close(g);
}

static int prov_lease(void *ud, const char *name, yajl_gen g)
{
    (void)ud;
    if (strcmp(name, "vm") != 0)
        return -ENOENT;
    yajl_gen_map_open(g);
    gen_str(g, "name");
    gen_str(g, "vm");
    yajl_gen_map_close(g);
    return 0;
}

static int prov_lease_add(void *ud, const char *body, size_t len, yajl_gen g, bool *created,
                          char *err, size_t errlen)
{
    fixture *f = ud;
    f->lease_adds++;
    snprintf(f->lease_body, sizeof(f->lease_body), "%.*s", (int)len, body);
    if (f->lease_rc < 0) {
        snprintf(err, errlen, "fake refusal %d", f->lease_rc);
        return f->lease_rc;
    }
    *created = f->lease_created;
    yajl_gen_map_open(g);
    gen_str(g, "ip");
    gen_str(g, "127.0.0.9");
    yajl_gen_map_close(g);
    return 0;
}

static int prov_lease_remove(void *ud, const char *name, char *err, size_t errlen)
{
    fixture *f = ud;
    (void)err;
    (void)errlen;
    f->lease_removes++;
    snprintf(f->lease_name, sizeof(f->lease_name), "%s", name);
    return strcmp(name, "vm") == 0 ? 0 : -ENOENT;
}

static int prov_docker_socket(void *ud, uid_t *uid, gid_t *gid, mode_t *mode)
{
    fixture *f = ud;
    if (!f->docker_known)
        return -ENOENT;
    *uid = f->docker_uid;
    *gid = f->docker_gid;
    *mode = f->docker_mode;
    return 0;
}

/* ---- loop-thread plumbing ---- */

static void on_async(uv_async_t *a)
{
    fixture *f = a->data;
    pthread_mutex_lock(&f->mu);
    loop_fn fn = f->call;
    void *arg = f->call_arg;
    f->call = NULL;
    pthread_mutex_unlock(&f->mu);
    if (fn)
        fn(f, arg);
    pthread_mutex_lock(&f->mu);
    f->call_done = true;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* Runs fn on the loop thread and waits for it. */
static void loop_call(fixture *f, loop_fn fn, void *arg)
{
    pthread_mutex_lock(&f->mu);
    f->call = fn;
    f->call_arg = arg;
    f->call_done = false;
    uv_async_send(&f->async);
    while (!f->call_done)
        pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
}

static void on_server_closed(void *arg)
{
    fixture *f = arg;
    f->closed = true;
}

static void do_shutdown(fixture *f, void *arg)
{
    (void)arg;
    control_close(f->srv, on_server_closed, f);
    uv_close((uv_handle_t *)&f->async, NULL);
}

static void do_publish(fixture *f, void *arg)
{
    control_publish(f->srv, "added", arg);
}

static void do_override(fixture *f, void *arg)
{
    control_set_peer_override(f->srv, arg);
}

static void *scenario_thread(void *arg)
{
    fixture *f = arg;
    f->scenario(f);
    loop_call(f, do_shutdown, NULL);
    return NULL;
}

static void make_path(char *dst, size_t cap, const char *tag)
{
    snprintf(dst, cap, "/tmp/lh-ctl-%ld-%s.sock", (long)getpid(), tag);
}

static const control_provider provider_template = {
    .status = prov_status,
    .containers = prov_containers,
    .container = prov_container,
    .resolver = prov_resolver,
    .host_ports = prov_host_ports,
    .host_port_add = prov_host_port_add,
    .host_port_remove = prov_host_port_remove,
    .docker_socket = prov_docker_socket,
    .leases = prov_leases,
    .lease = prov_lease,
    .lease_add = prov_lease_add,
    .lease_remove = prov_lease_remove,
};

/* Starts a server with opts (path filled in unless inherited) and runs the
 * scenario against it; checks that everything closes. */
static void run_fixture(control_options opts, const char *tag, void (*scenario)(fixture *f))
{
    fixture f;
    memset(&f, 0, sizeof(f));
    make_path(f.path, sizeof(f.path), tag);
    if (opts.inherited_fd < 0) {
        if (strcmp(tag, "stale") != 0) /* that test leaves a stale file on purpose */
            unlink(f.path);
        opts.path = f.path;
    }
    f.scenario = scenario;
    pthread_mutex_init(&f.mu, NULL);
    pthread_cond_init(&f.cv, NULL);
    REQUIRE(uv_loop_init(&f.loop) == 0);
    control_provider prov = provider_template;
    prov.ud = &f;
    int rc = control_start(&f.loop, &opts, &prov, &f.srv);
    CHECK_INT(rc, 0);
    if (rc == 0) {
        struct stat st;
        if (opts.inherited_fd < 0) {
            CHECK(stat(f.path, &st) == 0 && (st.st_mode & 0777) == 0666);
        }
        uv_async_init(&f.loop, &f.async, on_async);
        f.async.data = &f;
        pthread_t th;
        pthread_create(&th, NULL, scenario_thread, &f);
        uv_run(&f.loop, UV_RUN_DEFAULT);
        pthread_join(th, NULL);
        CHECK(f.closed);
        if (opts.inherited_fd < 0) {
            CHECK(access(f.path, F_OK) < 0); /* our own socket file is removed */
        }
    }
    CHECK_INT(uv_loop_close(&f.loop), 0);
    pthread_mutex_destroy(&f.mu);
    pthread_cond_destroy(&f.cv);
}

static control_options default_opts(void)
{
    control_options o = {
        .inherited_fd = -1, .admin_group = "nonexistent-group-xyz", .replace_stale = true};
    return o;
}

/* ---- blocking raw clients (scenario thread) ---- */

static int cl_connect(const char *path)
{
    int fd = httpc_connect(path);
    if (fd >= 0) {
        /* A safety net so a broken server fails the test instead of hanging it. */
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    return fd;
}

static void cl_send(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* Reads until EOF; returns true on EOF, false on error/timeout. */
static bool cl_read_all(int fd, buf *out)
{
    char tmp[4096];
    for (;;) {
        ssize_t n = read(fd, tmp, sizeof(tmp));
        if (n == 0)
            return true;
        if (n < 0)
            return false;
        buf_append(out, tmp, (size_t)n);
    }
}

static int status_of(const buf *b)
{
    int st = 0;
    if (b->data && sscanf(b->data, "HTTP/1.1 %d", &st) == 1)
        return st;
    return 0;
}

static const char *body_of(const buf *b)
{
    const char *p = b->data ? strstr(b->data, "\r\n\r\n") : NULL;
    return p ? p + 4 : "";
}

/* One raw request; returns the status, response in out, *eof whether the
 * server closed the connection. */
static int raw(const char *path, const char *req, size_t len, buf *out, bool *eof)
{
    int fd = cl_connect(path);
    if (fd < 0)
        return fd;
    cl_send(fd, req, len);
    bool e = cl_read_all(fd, out);
    if (eof)
        *eof = e;
    close(fd);
    return status_of(out);
}

static int rawz(const char *path, const char *req, buf *out)
{
    return raw(path, req, strlen(req), out, NULL);
}

/* True when fd has neither data nor EOF pending after waiting ms. */
static bool cl_quiet(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 0;
}

/* ---- scenarios ---- */

static void sc_routes(fixture *f)
{
    httpc_response r;
    CHECK_INT(httpc_request(f->path, "GET", "/v1/status", 5000, &r), 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body.data, "{\"version\":\"test\",\"uptime_s\":5}\n");
    httpc_response_free(&r);

    CHECK_INT(httpc_request(f->path, "GET", "/v1/containers", 5000, &r), 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body.data, "[{\"name\":\"web.loop.test\",\"ip\":\"127.0.0.2\"}]\n");
    httpc_response_free(&r);

    CHECK_INT(httpc_request(f->path, "GET", "/v1/containers/", 5000, &r), 0);
    CHECK_INT(r.status, 200);
    httpc_response_free(&r);

    CHECK_INT(httpc_request(f->path, "GET", "/v1/containers/web?x=1", 5000, &r), 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body.data, "{\"name\":\"web.loop.test\",\"ip\":\"127.0.0.2\"}\n");
    httpc_response_free(&r);

    /* Percent-decoding of the key. */
    CHECK_INT(httpc_request(f->path, "GET", "/v1/containers/web%2Eloop.test", 5000, &r), 0);
    CHECK_INT(r.status, 200);
    httpc_response_free(&r);

    CHECK_INT(httpc_request(f->path, "GET", "/v1/containers/nope", 5000, &r), 0);
    CHECK_INT(r.status, 404);
    CHECK_STR(r.body.data, "{\"error\":\"no container matches \\\"nope\\\"\"}\n");
    httpc_response_free(&r);

    CHECK_INT(httpc_request(f->path, "GET", "/v1/containers/a%2Fb", 5000, &r), 0);
    CHECK_INT(r.status, 404);
    httpc_response_free(&r);

    CHECK_INT(httpc_request(f->path, "GET", "/v1/nothing", 5000, &r), 0);
    CHECK_INT(r.status, 404);
    CHECK(r.body.data && strstr(r.body.data, "\"error\""));
    httpc_response_free(&r);

    buf b = {0};
    CHECK_INT(rawz(f->path, "POST /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &b),
              405);
    CHECK(strstr(b.data, "\r\nAllow: GET\r\n") != NULL);
    CHECK(strstr(body_of(&b), "{\"error\":") == body_of(&b));
    buf_free(&b);

    CHECK_INT(rawz(f->path, "GET /v1/resolver HTTP/1.1\r\nHost: x\r\n\r\n", &b), 405);
    CHECK(strstr(b.data, "Allow: POST, DELETE") != NULL);
    buf_free(&b);

    CHECK_INT(rawz(f->path, "PUT /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &b),
              405);
    buf_free(&b);

    /* HTTP/1.0 and a pipelined second request: one answer, then close. */
    bool eof = false;
    const char *two = "GET /v1/status HTTP/1.0\r\n\r\nGET /v1/status HTTP/1.0\r\n\r\n";
    CHECK_INT(raw(f->path, two, strlen(two), &b, &eof), 200);
    CHECK(eof);
    CHECK(strstr(b.data + 4, "HTTP/1.") == NULL);
    buf_free(&b);
}

/* The exact 405 answer for method on path: status, Allow header, body. */
static void check_405(fixture *f, const char *method, const char *path, const char *allow,
                      const char *body)
{
    char req[256];
    snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", method,
             path);
    buf b = {0};
    CHECK_INT(rawz(f->path, req, &b), 405);
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "\r\nAllow: %s\r\n", allow);
    CHECK(b.data && strstr(b.data, hdr) != NULL);
    CHECK_STR(body_of(&b), body);
    buf_free(&b);
}

/* GET target: the status and, when want_body is not NULL, the exact body. */
static void check_get(fixture *f, const char *target, int want, const char *want_body)
{
    buf req = {0}, b = {0};
    buf_appendf(&req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", target);
    CHECK_INT(raw(f->path, req.data, req.len, &b, NULL), want);
    if (want_body)
        CHECK_STR(body_of(&b), want_body);
    else if (want != 200)
        CHECK(strstr(body_of(&b), "{\"error\":") == body_of(&b));
    buf_free(&req);
    buf_free(&b);
}

static void sc_route_table(fixture *f)
{
    /* Every route and method, through the real table. */
    check_get(f, "/v1/status", 200, "{\"version\":\"test\",\"uptime_s\":5}\n");
    check_get(f, "/v1/status/", 200, NULL);
    check_get(f, "/v1/status?verbose=1#x", 200, NULL);
    check_get(f, "/v1/containers", 200, NULL);
    check_get(f, "/v1/containers/web.loop.test", 200, NULL);
    check_get(f, "/v1/containers/web/", 200, NULL); /* one trailing slash is dropped */
    const char *get_only = "{\"error\":\"this path only answers GET\"}\n";
    const char *paths[] = {"/v1/status", "/v1/containers", "/v1/containers/web", "/v1/events"};
    const char *wrong[] = {"POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"};
    for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
        for (size_t j = 0; j < ARRAY_SIZE(wrong); j++) {
            if (strcmp(wrong[j], "HEAD") == 0) {
                /* A HEAD answer has no body for curl-like clients; ours still
                 * sends one, so only the status and Allow are checked. */
                buf b = {0};
                char req[128];
                snprintf(req, sizeof(req), "HEAD %s HTTP/1.1\r\n\r\n", paths[i]);
                CHECK_INT(rawz(f->path, req, &b), 405);
                CHECK(b.data && strstr(b.data, "\r\nAllow: GET\r\n") != NULL);
                buf_free(&b);
                continue;
            }
            check_405(f, wrong[j], paths[i], "GET", get_only);
        }
    const char *resolver_405 =
        "{\"error\":\"this path only answers POST (install) and DELETE (remove)\"}\n";
    check_405(f, "GET", "/v1/resolver", "POST, DELETE", resolver_405);
    check_405(f, "PUT", "/v1/resolver/", "POST, DELETE", resolver_405);
    /* The wrong method is 405 even when the {name} could not be a name. */
    check_405(f, "DELETE", "/v1/containers/%00", "GET", get_only);
    CHECK_INT(f->resolver_calls, 0);

    /* A change refused: the one admin check, with its sentence. */
    peercred user = {.uid = 1000, .gid = 1000, .ngroups = 0};
    loop_call(f, do_override, &user);
    buf b = {0};
    CHECK_INT(rawz(f->path, "POST /v1/resolver HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &b), 403);
    CHECK_STR(body_of(&b), "{\"error\":\"changing the resolver needs root or membership in the "
                           "nonexistent-group-xyz group\"}\n");
    buf_free(&b);
    CHECK_INT(f->resolver_calls, 0);
    loop_call(f, do_override, NULL);
}

static void sc_hostile_paths(fixture *f)
{
    const char *no_path = "{\"error\":\"no such path\"}\n";
    const char *no_name = "{\"error\":\"no container matches that name or id\"}\n";
    check_get(f, "/", 404, no_path);
    check_get(f, "//", 404, no_path);
    check_get(f, "///", 404, no_path);
    check_get(f, "/v1", 404, no_path);
    check_get(f, "/v1/", 404, no_path);
    check_get(f, "/v1//status", 404, no_path);
    check_get(f, "/v1/status//", 404, no_path);
    check_get(f, "/v1/containers//", 404, no_path);     /* an empty {name} is no name */
    check_get(f, "/v1/containers/web/x", 404, no_path); /* a {name} never spans a "/" */
    check_get(f, "/v1/../v1/status", 404, no_path);     /* no dot-segment games */
    check_get(f, "/v1/%73tatus", 404, no_path);         /* literals are not decoded */
    check_get(f, "/V1/STATUS", 404, no_path);
    check_get(f, "http://x/v1/status", 404, no_path);
    check_get(f, "/v1/containers/..", 404, "{\"error\":\"no container matches \\\"..\\\"\"}\n");
    check_get(f, "/v1/containers/%00", 404, no_name);
    check_get(f, "/v1/containers/a%00b", 404, no_name);
    check_get(f, "/v1/containers/a%2Fb", 404, no_name);
    check_get(f, "/v1/containers/a%2fb", 404, no_name);
    check_get(f, "/v1/containers/%", 404, no_name);
    check_get(f, "/v1/containers/%4", 404, no_name);
    check_get(f, "/v1/containers/%zz", 404, no_name);
    check_get(f, "/v1/containers/\xff\xfe", 404, NULL);

    /* Long names: 511 decoded bytes are looked up, 512 are refused. */
    buf t = {0};
    buf_appendf(&t, "/v1/containers/");
    for (int i = 0; i < CONTROL_MAX_PARAM - 1; i++)
        buf_append(&t, "a", 1);
    check_get(f, t.data, 404, NULL);
    buf body = {0};
    {
        buf req = {0};
        buf_appendf(&req, "GET %s HTTP/1.1\r\n\r\n", t.data);
        CHECK_INT(raw(f->path, req.data, req.len, &body, NULL), 404);
        CHECK(strstr(body_of(&body), "no container matches \\\"aaa") != NULL);
        buf_free(&req);
        buf_free(&body);
    }
    buf_append(&t, "a", 1);
    check_get(f, t.data, 404, no_name);
    /* The same length written as escapes: the cap is on the decoded value. */
    t.len = 0;
    buf_appendf(&t, "/v1/containers/");
    for (int i = 0; i < CONTROL_MAX_PARAM; i++)
        buf_appendf(&t, "%%61");
    check_get(f, t.data, 404, no_name);
    /* A path near the header limit, and one made of slashes. */
    t.len = 0;
    buf_appendf(&t, "/v1/");
    for (int i = 0; i < 15000; i++)
        buf_append(&t, i % 7 ? "x" : "/", 1);
    check_get(f, t.data, 404, no_path);
    t.len = 0;
    for (int i = 0; i < 15000; i++)
        buf_append(&t, "/", 1);
    check_get(f, t.data, 404, no_path);
    buf_free(&t);

    /* Still serving. */
    check_get(f, "/v1/status", 200, NULL);
}

static void sc_malformed(fixture *f)
{
    buf b = {0};
    bool eof = false;
    const char *junk = "BLAH BLAH\r\n\r\n";
    CHECK_INT(raw(f->path, junk, strlen(junk), &b, &eof), 400);
    CHECK(eof);
    CHECK(strstr(body_of(&b), "{\"error\":\"malformed HTTP request\"}") != NULL);
    buf_free(&b);

    const char bin[] = "\x00\x01\x02\xff\r\n\r\n";
    CHECK_INT(raw(f->path, bin, sizeof(bin) - 1, &b, &eof), 400);
    CHECK(eof);
    buf_free(&b);

    /* A header over 16 KiB: 431 (or 400) and close, even while the client
     * is still sending. */
    buf big = {0};
    buf_appendf(&big, "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ");
    for (int i = 0; i < 20000; i++)
        buf_append(&big, "a", 1);
    buf_appendf(&big, "\r\n\r\n");
    int st = raw(f->path, big.data, big.len, &b, &eof);
    CHECK(st == 431 || st == 400);
    CHECK(eof);
    buf_free(&b);

    /* Many small headers adding up to more than 16 KiB. */
    big.len = 0;
    buf_appendf(&big, "GET /v1/status HTTP/1.1\r\n");
    for (int i = 0; i < 1000; i++)
        buf_appendf(&big, "X-H%d: 0123456789\r\n", i);
    buf_appendf(&big, "\r\n");
    st = raw(f->path, big.data, big.len, &b, &eof);
    CHECK_INT(st, 431);
    buf_free(&b);

    /* A long URL alone. */
    big.len = 0;
    buf_appendf(&big, "GET /v1/");
    for (int i = 0; i < 17000; i++)
        buf_append(&big, "x", 1);
    buf_appendf(&big, " HTTP/1.1\r\n\r\n");
    st = raw(f->path, big.data, big.len, &b, &eof);
    CHECK(st == 431 || st == 400);
    buf_free(&b);

    /* Just under the limit is fine. */
    big.len = 0;
    buf_appendf(&big, "GET /v1/status HTTP/1.1\r\nX-Big: ");
    for (int i = 0; i < 15000; i++)
        buf_append(&big, "a", 1);
    buf_appendf(&big, "\r\n\r\n");
    CHECK_INT(raw(f->path, big.data, big.len, &b, &eof), 200);
    buf_free(&b);

    /* Body caps: declared and chunked. */
    const char *cl = "POST /v1/resolver HTTP/1.1\r\nContent-Length: 100000\r\n\r\n";
    CHECK_INT(raw(f->path, cl, strlen(cl), &b, &eof), 413);
    CHECK(eof);
    buf_free(&b);
    big.len = 0;
    buf_appendf(&big, "POST /v1/resolver HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 20; i++) {
        buf_appendf(&big, "1000\r\n");
        for (int j = 0; j < 4096; j++)
            buf_append(&big, "b", 1);
        buf_appendf(&big, "\r\n");
    }
    buf_appendf(&big, "0\r\n\r\n");
    CHECK_INT(raw(f->path, big.data, big.len, &b, &eof), 413);
    buf_free(&b);
    CHECK_INT(f->resolver_calls, 0);
    buf_free(&big);

    /* The server still answers after all that. */
    CHECK_INT(rawz(f->path, "GET /v1/status HTTP/1.1\r\n\r\n", &b), 200);
    buf_free(&b);
}

static void sc_idle_and_events(fixture *f)
{
    int silent = cl_connect(f->path);
    int ev = cl_connect(f->path);
    REQUIRE(silent >= 0 && ev >= 0);
    const char *req = "GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n";
    cl_send(ev, req, strlen(req));
    char hdr[1024];
    ssize_t n = read(ev, hdr, sizeof(hdr) - 1);
    REQUIRE(n > 0);
    hdr[n] = '\0';
    CHECK(strncmp(hdr, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(hdr, "application/x-ndjson") != NULL);
    CHECK(strstr(hdr, "Content-Length") == NULL);

    /* The silent client is cut by the idle timeout (200 ms)... */
    buf b = {0};
    CHECK(cl_read_all(silent, &b)); /* EOF, not the 5 s safety timeout */
    CHECK_INT(b.len, 0);
    close(silent);
    buf_free(&b);
    /* ...the events stream is not, well past its own would-be deadline. */
    CHECK(cl_quiet(ev, 600));

    /* Events arrive as lines; pretty-printed input is flattened. */
    loop_call(f, do_publish, "{\"name\":\n \"web.loop.test\"}");
    loop_call(f, do_publish, "{\"name\":\"db.loop.test\"}");
    buf lines = {0};
    int nl = 0;
    while (nl < 2) {
        n = read(ev, hdr, sizeof(hdr));
        if (n <= 0)
            break;
        buf_append(&lines, hdr, (size_t)n);
        for (ssize_t i = 0; i < n; i++)
            nl += hdr[i] == '\n';
    }
    CHECK_STR(lines.data, "{\"type\":\"added\",\"container\":{\"name\":  \"web.loop.test\"}}\n"
                          "{\"type\":\"added\",\"container\":{\"name\":\"db.loop.test\"}}\n");
    buf_free(&lines);

    close(ev);
}

typedef struct line_seen {
    fixture *f;
    int lines;
    char first[256];
} line_seen;

static int on_line(void *ud, const char *line, size_t len)
{
    line_seen *s = ud;
    if (s->lines == 0 && len == strlen(line))
        strlcpy_(s->first, line, sizeof(s->first));
    /* Read by the scenario thread while this one runs. */
    int n = __atomic_add_fetch(&s->lines, 1, __ATOMIC_SEQ_CST);
    return n >= 2 ? 7 : 0; /* stop after the second line */
}

typedef struct stream_arg {
    fixture *f;
    line_seen seen;
    int rc;
    httpc_response r;
} stream_arg;

static void *stream_thread(void *arg)
{
    stream_arg *a = arg;
    a->rc = httpc_stream_lines(a->f->path, "/v1/events", on_line, &a->seen, &a->r);
    return NULL;
}

static void sc_stream_client(fixture *f)
{
    stream_arg a = {.f = f};
    pthread_t th;
    pthread_create(&th, NULL, stream_thread, &a);
    /* Publish until the streaming client has seen two lines: it may connect
     * after the first publishes, which then reach nobody. The short poll is
     * only a back-off; the loop ends on the condition, not on time. */
    for (int i = 0; i < 1000; i++) {
        loop_call(f, do_publish, "{\"name\":\"x\"}");
        struct pollfd none;
        poll(&none, 0, 5);
        if (__atomic_load_n(&a.seen.lines, __ATOMIC_SEQ_CST) >= 2)
            break;
    }
    pthread_join(th, NULL);
    CHECK_INT(a.rc, 7);
    CHECK_INT(a.r.status, 200);
    CHECK_STR(a.seen.first, "{\"type\":\"added\",\"container\":{\"name\":\"x\"}}");
    httpc_response_free(&a.r);
}

static void sc_client_cap(fixture *f)
{
    int a = cl_connect(f->path);
    int b = cl_connect(f->path);
    REQUIRE(a >= 0 && b >= 0);
    buf r = {0};
    /* The third client is answered; the oldest idle one (a) makes room. */
    CHECK_INT(rawz(f->path, "GET /v1/status HTTP/1.1\r\n\r\n", &r), 200);
    buf_free(&r);
    CHECK(cl_read_all(a, &r));
    CHECK_INT(r.len, 0);
    buf_free(&r);
    CHECK(cl_quiet(b, 0)); /* b is still open: no EOF pending */
    /* b still works. */
    const char *req = "GET /v1/status HTTP/1.1\r\n\r\n";
    cl_send(b, req, strlen(req));
    CHECK(cl_read_all(b, &r));
    CHECK_INT(status_of(&r), 200);
    buf_free(&r);
    close(a);
    close(b);

    /* Event streams at the cap: the oldest is evicted as a last resort so
     * a new client is still answered. */
    int e1 = cl_connect(f->path), e2 = cl_connect(f->path);
    const char *ev = "GET /v1/events HTTP/1.1\r\n\r\n";
    cl_send(e1, ev, strlen(ev));
    char hdr[512];
    CHECK(read(e1, hdr, sizeof(hdr)) > 0);
    cl_send(e2, ev, strlen(ev));
    CHECK(read(e2, hdr, sizeof(hdr)) > 0);
    CHECK_INT(rawz(f->path, "GET /v1/status HTTP/1.1\r\n\r\n", &r), 200);
    buf_free(&r);
    CHECK(cl_read_all(e1, &r)); /* e1, the oldest, was closed */
    buf_free(&r);
    CHECK(cl_quiet(e2, 0));
    close(e1);
    close(e2);
}

/* Whether fd's connection was closed by the server (EOF, nothing sent). */
static bool closed_by_server(int fd)
{
    buf r = {0};
    bool eof = cl_read_all(fd, &r) && r.len == 0;
    buf_free(&r);
    return eof;
}

static void do_count(fixture *f, void *arg)
{
    *(unsigned *)arg = control_client_count(f->srv);
}

/* Waits (5 s at most) until the server has accepted n clients: the peer
 * override applies when a connection is accepted, not when it connects. */
static bool wait_clients(fixture *f, unsigned n)
{
    for (int i = 0; i < 2500; i++) {
        unsigned have = 0;
        loop_call(f, do_count, &have);
        if (have == n)
            return true;
        struct pollfd none;
        poll(&none, 0, 2); /* a back-off only: the loop ends on the count */
    }
    return false;
}

/* The cap per uid: a flood from one uid closes that uid's oldest idle
 * connections, not another user's; at the global ceiling the busiest uid
 * gives way. max_clients 8: 4 per uid. */
static void sc_uid_cap(fixture *f)
{
    peercred flood = {.uid = 1000, .gid = 1000}, other = {.uid = 2000, .gid = 2000},
             third = {.uid = 3000, .gid = 3000};
    int fl[5], ot[2], th[3];
    loop_call(f, do_override, &other);
    for (int i = 0; i < 2; i++)
        ot[i] = cl_connect(f->path);
    CHECK(wait_clients(f, 2));
    loop_call(f, do_override, &flood);
    for (int i = 0; i < 5; i++) {
        fl[i] = cl_connect(f->path);
        CHECK(wait_clients(f, 3 + (unsigned)(i < 4 ? i : 3)));
    }
    /* The fifth of uid 1000 closed its first; uid 2000's are untouched. */
    CHECK(closed_by_server(fl[0]));
    for (int i = 0; i < 2; i++)
        CHECK(cl_quiet(ot[i], 0));
    for (int i = 1; i < 5; i++)
        CHECK(cl_quiet(fl[i], 0));
    /* 4 + 2 open; two of uid 3000 reach 8, a third passes the ceiling: the
     * busiest uid (1000) loses its oldest. */
    loop_call(f, do_override, &third);
    for (int i = 0; i < 3; i++) {
        th[i] = cl_connect(f->path);
        CHECK(wait_clients(f, i < 2 ? 7 + (unsigned)i : 8));
    }
    CHECK(closed_by_server(fl[1]));
    for (int i = 0; i < 2; i++)
        CHECK(cl_quiet(ot[i], 0));
    for (int i = 0; i < 3; i++)
        CHECK(cl_quiet(th[i], 0));
    for (int i = 0; i < 5; i++)
        close(fl[i]);
    for (int i = 0; i < 2; i++)
        close(ot[i]);
    for (int i = 0; i < 3; i++)
        close(th[i]);
}

/* A burst past the accept budget of one loop turn (32) and past the old
 * backlog (128): every connection is accepted on a later turn and answered;
 * the server then closes with connections still waiting (the resume timer
 * is closed with it: run_fixture checks uv_loop_close). */
static void sc_accept_burst(fixture *f)
{
    enum { N = 250 };
    static int fd[N];
    const char *req = "GET /v1/status HTTP/1.1\r\nConnection: close\r\n\r\n";
    for (int i = 0; i < N; i++)
        fd[i] = cl_connect(f->path);
    for (int i = 0; i < N; i++) {
        CHECK(fd[i] >= 0);
        if (fd[i] >= 0)
            cl_send(fd[i], req, strlen(req));
    }
    for (int i = 0; i < N; i++) {
        if (fd[i] < 0)
            continue;
        buf r = {0};
        CHECK(cl_read_all(fd[i], &r));
        CHECK_INT(status_of(&r), 200);
        buf_free(&r);
        close(fd[i]);
    }
    for (int i = 0; i < 100; i++)
        fd[i] = cl_connect(f->path);
    for (int i = 0; i < 100; i++)
        if (fd[i] >= 0)
            close(fd[i]);
}

static void post_resolver(fixture *f, const char *method, int want)
{
    char req[128];
    snprintf(req, sizeof(req), "%s /v1/resolver HTTP/1.1\r\nContent-Length: 0\r\n\r\n", method);
    buf b = {0};
    CHECK_INT(rawz(f->path, req, &b), want);
    if (want != 200)
        CHECK(strstr(body_of(&b), "{\"error\":") == body_of(&b));
    buf_free(&b);
}

static gid_t admin_gid_for_test;

static void sc_resolver(fixture *f)
{
    peercred user = {.uid = 1000, .gid = 1000, .ngroups = 1, .groups = {1001}};
    loop_call(f, do_override, &user);
    post_resolver(f, "POST", 403);
    post_resolver(f, "DELETE", 403);
    CHECK_INT(f->resolver_calls, 0);
    buf b = {0};
    CHECK_INT(rawz(f->path, "GET /v1/status HTTP/1.1\r\n\r\n", &b), 200); /* reads are open */
    buf_free(&b);

    peercred root = {.uid = 0, .gid = 0, .ngroups = 0};
    loop_call(f, do_override, &root);
    post_resolver(f, "POST", 200);
    CHECK_INT(f->resolver_calls, 1);
    CHECK(f->last_install);
    post_resolver(f, "DELETE", 200);
    CHECK_INT(f->resolver_calls, 2);
    CHECK(!f->last_install);

    peercred admin = {.uid = 1000, .gid = 1000, .ngroups = 2, .groups = {1001, admin_gid_for_test}};
    loop_call(f, do_override, &admin);
    post_resolver(f, "POST", 200);
    CHECK_INT(f->resolver_calls, 3);

    f->resolver_rc = -ENOTSUP;
    post_resolver(f, "POST", 409);
    f->resolver_rc = -EIO;
    CHECK_INT(rawz(f->path, "DELETE /v1/resolver HTTP/1.1\r\n\r\n", &b), 500);
    CHECK(strstr(body_of(&b), "the disk is on fire") != NULL);
    buf_free(&b);
    f->resolver_rc = 0;
    loop_call(f, do_override, NULL);
}

static void sc_host_ports(fixture *f)
{
    buf b = {0};
    static const char add[] = "POST /v1/containers/web/host-ports HTTP/1.1\r\n"
                              "Content-Length: 15\r\n\r\n{\"spec\":\"8000\"}";
    /* Reads are open to everyone. */
    peercred user = {.uid = 1000, .gid = 1000, .ngroups = 1, .groups = {1001}};
    loop_call(f, do_override, &user);
    CHECK_INT(rawz(f->path, "GET /v1/containers/web/host-ports HTTP/1.1\r\n\r\n", &b), 200);
    CHECK(strstr(body_of(&b), "[]") != NULL);
    buf_free(&b);
    CHECK_INT(rawz(f->path, "GET /v1/containers/nope/host-ports HTTP/1.1\r\n\r\n", &b), 404);
    CHECK(strstr(body_of(&b), "no container matches") != NULL);
    buf_free(&b);

    /* Changes: a stranger, with the Docker socket unknown, is refused. */
    CHECK_INT(rawz(f->path, add, &b), 403);
    CHECK(strstr(body_of(&b), "root or membership") != NULL);
    buf_free(&b);
    /* The socket known, owned by root:1001 with mode 0660: the group may. */
    f->docker_known = true;
    f->docker_uid = 0;
    f->docker_gid = 1001;
    f->docker_mode = S_IFSOCK | 0660;
    CHECK_INT(rawz(f->path, add, &b), 201);
    CHECK_INT(f->hp_adds, 1);
    CHECK_STR(f->hp_body, "{\"spec\":\"8000\"}");
    buf_free(&b);
    /* Not in the group: refused, naming the group (by number: no such group here). */
    peercred other = {.uid = 1002, .gid = 1002, .ngroups = 1, .groups = {1003}};
    loop_call(f, do_override, &other);
    CHECK_INT(rawz(f->path, add, &b), 403);
    CHECK(strstr(body_of(&b), "Docker engine's socket") != NULL);
    buf_free(&b);
    CHECK_INT(rawz(f->path, "DELETE /v1/containers/web/host-ports/8000 HTTP/1.1\r\n\r\n", &b), 403);
    buf_free(&b);
    CHECK_INT(f->hp_adds, 1);
    CHECK_INT(f->hp_removes, 0);

    loop_call(f, do_override, &user);
    CHECK_INT(rawz(f->path, "DELETE /v1/containers/web/host-ports/8000 HTTP/1.1\r\n\r\n", &b), 204);
    /* A 204 carries no body at all. */
    CHECK(strstr(b.data ? b.data : "", "Content-Length") == NULL);
    CHECK_STR(body_of(&b), "");
    buf_free(&b);
    CHECK_STR(f->hp_port, "8000");
    CHECK_STR(f->hp_proto, "");
    CHECK_INT(rawz(f->path, "DELETE /v1/containers/web/host-ports/53/udp HTTP/1.1\r\n\r\n", &b),
              204);
    buf_free(&b);
    CHECK_STR(f->hp_port, "53");
    CHECK_STR(f->hp_proto, "udp");

    /* The provider's refusals map to their statuses, with its sentence. */
    static const struct {
        int rc, status;
    } maps[] = {{-EINVAL, 400}, {-EEXIST, 409}, {-EIO, 500}};
    for (size_t i = 0; i < ARRAY_SIZE(maps); i++) {
        f->hp_rc = maps[i].rc;
        CHECK_INT(rawz(f->path, add, &b), maps[i].status);
        CHECK(strstr(body_of(&b), "fake refusal") != NULL);
        buf_free(&b);
    }
    f->hp_rc = -EPERM;
    CHECK_INT(rawz(f->path, "DELETE /v1/containers/web/host-ports/8000 HTTP/1.1\r\n\r\n", &b), 409);
    buf_free(&b);
    f->hp_rc = -ENOENT;
    CHECK_INT(rawz(f->path, "DELETE /v1/containers/web/host-ports/9 HTTP/1.1\r\n\r\n", &b), 404);
    CHECK(strstr(body_of(&b), "fake refusal") != NULL);
    buf_free(&b);
    f->hp_rc = 0;
    CHECK_INT(rawz(f->path, "PUT /v1/containers/web/host-ports HTTP/1.1\r\n\r\n", &b), 405);
    buf_free(&b);
    loop_call(f, do_override, NULL);
}

static void sc_request_ok(fixture *f)
{
    buf b = {0};
    CHECK_INT(rawz(f->path, "GET /v1/status HTTP/1.1\r\n\r\n", &b), 200);
    buf_free(&b);
}

static void sc_stale_then_second(fixture *f)
{
    sc_request_ok(f);
    /* A second server on the live socket refuses and leaves it alone. */
    control_options o = default_opts();
    o.path = f->path;
    control_server *second = NULL;
    uv_loop_t l2;
    uv_loop_init(&l2);
    control_provider prov = provider_template;
    CHECK_INT(control_start(&l2, &o, &prov, &second), -EADDRINUSE);
    CHECK_INT(uv_loop_close(&l2), 0);
    sc_request_ok(f);
}

/* ---- tests ---- */

TEST(allowed)
{
    peercred c = {.uid = 0, .gid = 0, .ngroups = 0};
    CHECK(control_allowed(&c, 0, false)); /* root, even without an admin group */
    c.uid = 501;
    c.gid = 20;
    CHECK(!control_allowed(&c, 80, false));
    CHECK(!control_allowed(&c, 80, true));
    c.gid = 80;
    CHECK(control_allowed(&c, 80, true)); /* primary group */
    CHECK(!control_allowed(&c, 80, false));
    c.gid = 20;
    c.ngroups = 3;
    c.groups[0] = 12;
    c.groups[1] = 80;
    c.groups[2] = 33;
    CHECK(control_allowed(&c, 80, true)); /* supplementary group */
    c.ngroups = 1;
    CHECK(!control_allowed(&c, 80, true)); /* only counted groups matter */
    c.ngroups = -1;
    CHECK(!control_allowed(&c, 80, true));
}

TEST(docker_allowed)
{
    peercred c = {.uid = 1000, .gid = 1000, .ngroups = 2, .groups = {27, 999}};
    CHECK(control_docker_allowed(&c, 0, 999, S_IFSOCK | 0660));  /* the docker group */
    CHECK(!control_docker_allowed(&c, 0, 999, S_IFSOCK | 0600)); /* group without rw */
    CHECK(!control_docker_allowed(&c, 0, 998, S_IFSOCK | 0660)); /* another group */
    CHECK(control_docker_allowed(&c, 1000, 0, S_IFSOCK | 0600)); /* the owner (rootless) */
    CHECK(!control_docker_allowed(&c, 1000, 0, S_IFSOCK | 0400));
    c.gid = 999;
    c.ngroups = 0;
    CHECK(control_docker_allowed(&c, 0, 999, S_IFSOCK | 0660)); /* primary group */
    c.ngroups = -1;
    c.gid = 5;
    CHECK(!control_docker_allowed(&c, 0, 999, S_IFSOCK | 0660)); /* groups not known */
}

TEST(host_port_routes)
{
    control_options o = default_opts();
    run_fixture(o, "hostports", sc_host_ports);
}

/* /v1/leases: reads for everyone, changes for root and the admin group,
 * 201 for a new lease and 200 for an existing one, refusals mapped. */
static void sc_leases(fixture *f)
{
    buf b = {0};
    static const char add[] = "POST /v1/leases HTTP/1.1\r\n"
                              "Content-Length: 13\r\n\r\n{\"name\":\"vm\"}";
    peercred user = {.uid = 1000, .gid = 1000, .ngroups = 1, .groups = {1001}};
    loop_call(f, do_override, &user);
    CHECK_INT(rawz(f->path, "GET /v1/leases HTTP/1.1\r\n\r\n", &b), 200);
    CHECK(strncmp(body_of(&b), "[]", 2) == 0);
    buf_free(&b);
    CHECK_INT(rawz(f->path, "GET /v1/leases/vm HTTP/1.1\r\n\r\n", &b), 200);
    buf_free(&b);
    CHECK_INT(rawz(f->path, "GET /v1/leases/nope HTTP/1.1\r\n\r\n", &b), 404);
    CHECK(strstr(body_of(&b), "no lease is named") != NULL && strstr(body_of(&b), "nope") != NULL);
    buf_free(&b);
    CHECK_INT(rawz(f->path, add, &b), 403);
    CHECK(strstr(body_of(&b), "root or membership") != NULL);
    buf_free(&b);
    CHECK_INT(rawz(f->path, "DELETE /v1/leases/vm HTTP/1.1\r\n\r\n", &b), 403);
    buf_free(&b);
    CHECK_INT(f->lease_adds + f->lease_removes, 0);

    peercred root = {.uid = 0, .gid = 0, .ngroups = 0};
    loop_call(f, do_override, &root);
    f->lease_created = true;
    CHECK_INT(rawz(f->path, add, &b), 201);
    CHECK(strstr(body_of(&b), "127.0.0.9") != NULL);
    CHECK_STR(f->lease_body, "{\"name\":\"vm\"}");
    buf_free(&b);
    f->lease_created = false;
    CHECK_INT(rawz(f->path, add, &b), 200);
    buf_free(&b);
    static const struct {
        int rc, status;
    } maps[] = {{-EINVAL, 400},     {-EDOM, 400},   {-EEXIST, 409}, {-EBUSY, 409},
                {-EADDRINUSE, 409}, {-ENOSPC, 409}, {-EIO, 500}};
    for (size_t i = 0; i < ARRAY_SIZE(maps); i++) {
        f->lease_rc = maps[i].rc;
        CHECK_INT(rawz(f->path, add, &b), maps[i].status);
        CHECK(strstr(body_of(&b), "fake refusal") != NULL);
        buf_free(&b);
    }
    CHECK_INT(rawz(f->path, "DELETE /v1/leases/vm HTTP/1.1\r\n\r\n", &b), 204);
    buf_free(&b);
    CHECK_INT(rawz(f->path, "DELETE /v1/leases/n%6Fpe HTTP/1.1\r\n\r\n", &b), 404);
    CHECK_STR(f->lease_name, "nope");
    buf_free(&b);
    CHECK_INT(rawz(f->path, "PUT /v1/leases HTTP/1.1\r\n\r\n", &b), 405);
    buf_free(&b);
}

TEST(lease_routes)
{
    control_options o = default_opts();
    run_fixture(o, "leases", sc_leases);
}

TEST(routes)
{
    control_options o = default_opts();
    run_fixture(o, "routes", sc_routes);
}

TEST(route_table)
{
    control_options o = default_opts();
    run_fixture(o, "table", sc_route_table);
}

TEST(hostile_paths)
{
    /* At debug level every request path is logged: through printable(). */
    enum log_level old = log_get_level();
    log_set_level(LOG_DEBUG);
    control_options o = default_opts();
    run_fixture(o, "hostile", sc_hostile_paths);
    log_set_level(old);
}

/* ---- the pure matcher, on a table of its own ---- */

enum { R_STATUS, R_CONTAINER, R_HOST_PORT, R_HOST_PORTS, R_LEASE_GET, R_LEASE_SET, R_DEEP };

static const control_route match_table[] = {
    [R_STATUS] = {CONTROL_GET, "/v1/status", 0, NULL, NULL, NULL},
    [R_CONTAINER] = {CONTROL_GET, "/v1/containers/{name}", 0, NULL, "container", NULL},
    [R_HOST_PORT] = {CONTROL_PUT | CONTROL_DELETE, "/v1/containers/{name}/host-ports/{port}",
                     CONTROL_ROUTE_ADMIN, NULL, "container", NULL},
    [R_HOST_PORTS] = {CONTROL_GET, "/v1/containers/{name}/host-ports", 0, NULL, NULL, NULL},
    [R_LEASE_GET] = {CONTROL_GET, "/v1/leases/{name}", 0, NULL, "lease", NULL},
    [R_LEASE_SET] = {CONTROL_POST | CONTROL_DELETE, "/v1/leases/{name}", CONTROL_ROUTE_ADMIN, NULL,
                     "lease", NULL},
    [R_DEEP] = {CONTROL_GET, "/{a}/{b}/{c}/{d}/{e}", 0, NULL, NULL, NULL}, /* too many params */
};

static int match(unsigned method, const char *path, control_params *p, unsigned *allow, int *route)
{
    return control_route_match(match_table, ARRAY_SIZE(match_table), method, path, p, allow, route);
}

TEST(route_match)
{
    control_params p;
    unsigned allow;
    int route;

    CHECK_INT(match(CONTROL_GET, "/v1/status", &p, &allow, &route), 0);
    CHECK_INT(route, R_STATUS);
    CHECK_INT(p.n, 0);
    CHECK_INT(allow, CONTROL_GET);

    /* Two parameters, decoded and named. */
    CHECK_INT(match(CONTROL_PUT, "/v1/containers/web%2Eloop.test/host-ports/5432?x=/y", &p, &allow,
                    &route),
              0);
    CHECK_INT(route, R_HOST_PORT);
    CHECK_INT(p.n, 2);
    CHECK_STR(control_param(&p, "name"), "web.loop.test");
    CHECK_STR(control_param(&p, "port"), "5432");
    CHECK(control_param(&p, "nam") == NULL);
    CHECK(control_param(&p, "names") == NULL);
    CHECK(match_table[route].flags & CONTROL_ROUTE_ADMIN);
    CHECK_INT(match(CONTROL_DELETE, "/v1/containers/a/host-ports/53/", &p, &allow, &route), 0);
    CHECK_INT(route, R_HOST_PORT);
    CHECK_STR(control_param(&p, "port"), "53");

    /* Same path, wrong method: 405 with every row's methods. */
    CHECK_INT(match(CONTROL_GET, "/v1/containers/a/host-ports/53", &p, &allow, &route), -ENOTSUP);
    CHECK_INT(route, -1);
    CHECK_INT(allow, CONTROL_PUT | CONTROL_DELETE);
    char m[64];
    control_methods_str(allow, m, sizeof(m));
    CHECK_STR(m, "PUT, DELETE");
    /* Two rows on one pattern: the method picks the row; Allow is the union. */
    CHECK_INT(match(CONTROL_GET, "/v1/leases/vm1", &p, &allow, &route), 0);
    CHECK_INT(route, R_LEASE_GET);
    CHECK_INT(match(CONTROL_DELETE, "/v1/leases/vm1", &p, &allow, &route), 0);
    CHECK_INT(route, R_LEASE_SET);
    CHECK_STR(control_param(&p, "name"), "vm1");
    CHECK_INT(match(CONTROL_PUT, "/v1/leases/vm1", &p, &allow, &route), -ENOTSUP);
    CHECK_INT(allow, CONTROL_GET | CONTROL_POST | CONTROL_DELETE);
    control_methods_str(allow, m, sizeof(m));
    CHECK_STR(m, "GET, POST, DELETE");
    CHECK_INT(match(0, "/v1/status", &p, &allow, &route), -ENOTSUP); /* a method nobody knows */

    /* Segment counts must agree; a {param} is never empty and never a "/". */
    CHECK_INT(match(CONTROL_GET, "/v1/containers/a/host-ports", &p, &allow, &route), 0);
    CHECK_INT(route, R_HOST_PORTS);
    CHECK_STR(control_param(&p, "name"), "a");
    const char *none[] = {"",
                          "/",
                          "//",
                          "v1/status",
                          "/v1/status/x",
                          "/v1//status",
                          "/v1/containers",
                          "/v1/containers/",
                          "/v1/containers//",
                          "/v1/containers//host-ports/1",
                          "/v1/containers/a/host-ports//",
                          "/v1/containers/a/host-ports/1/2",
                          "/v1/containers/a/b/c",
                          "/v1/containers/a/hostports/1",
                          "/v1/status\\",
                          "?/v1/status",
                          "/a/b/c/d/e"};
    for (size_t i = 0; i < ARRAY_SIZE(none); i++) {
        int rc = match(CONTROL_GET, none[i], &p, &allow, &route);
        if (rc != -ENOENT)
            fprintf(stderr, "path \"%s\": %d\n", none[i], rc);
        CHECK_INT(rc, -ENOENT);
        CHECK_INT(allow, 0);
        CHECK_INT(route, -1);
    }

    /* Bad values for a {param}: found, but refused, and the row is named. */
    const char *bad[] = {"/v1/containers/%00", "/v1/containers/a%2Fb", "/v1/containers/%2f",
                         "/v1/containers/%",   "/v1/containers/%0",    "/v1/containers/%g0",
                         "/v1/containers/x%0g"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        CHECK_INT(match(CONTROL_GET, bad[i], &p, &allow, &route), -EINVAL);
        CHECK_INT(route, R_CONTAINER);
    }
    CHECK_INT(match(CONTROL_PUT, "/v1/containers/a/host-ports/%00", &p, &allow, &route), -EINVAL);
    CHECK_INT(route, R_HOST_PORT);
    /* ".." and friends are names like any other (there is no file system). */
    CHECK_INT(match(CONTROL_GET, "/v1/containers/..", &p, &allow, &route), 0);
    CHECK_STR(control_param(&p, "name"), "..");
    CHECK_INT(match(CONTROL_GET, "/v1/containers/%2e%2E", &p, &allow, &route), 0);
    CHECK_STR(control_param(&p, "name"), "..");

    /* Length caps, on the decoded value. */
    char path[8 * CONTROL_MAX_PARAM];
    size_t o = (size_t)snprintf(path, sizeof(path), "/v1/containers/");
    memset(path + o, 'a', CONTROL_MAX_PARAM - 1);
    path[o + CONTROL_MAX_PARAM - 1] = '\0';
    CHECK_INT(match(CONTROL_GET, path, &p, &allow, &route), 0);
    CHECK_INT(strlen(control_param(&p, "name")), CONTROL_MAX_PARAM - 1);
    strcat(path, "a");
    CHECK_INT(match(CONTROL_GET, path, &p, &allow, &route), -ENAMETOOLONG);
    CHECK_INT(route, R_CONTAINER);
    o = (size_t)snprintf(path, sizeof(path), "/v1/containers/");
    for (int i = 0; i < CONTROL_MAX_PARAM - 1; i++)
        o += (size_t)snprintf(path + o, sizeof(path) - o, "%%41");
    CHECK_INT(match(CONTROL_GET, path, &p, &allow, &route), 0);
    CHECK_INT(strlen(control_param(&p, "name")), CONTROL_MAX_PARAM - 1);

    /* A very long path of slashes and junk: no match, no crash. */
    size_t big = 1 << 20;
    char *huge = malloc(big + 1);
    REQUIRE(huge != NULL);
    for (size_t i = 0; i < big; i++)
        huge[i] = i % 3 ? '/' : 'x';
    huge[big] = '\0';
    CHECK_INT(match(CONTROL_GET, huge, &p, &allow, &route), -ENOENT);
    memset(huge, '/', big);
    CHECK_INT(match(CONTROL_GET, huge, &p, &allow, &route), -ENOENT);
    free(huge);

    /* An empty table knows nothing. */
    CHECK_INT(control_route_match(match_table, 0, CONTROL_GET, "/v1/status", &p, &allow, &route),
              -ENOENT);
}

TEST(methods)
{
    CHECK_INT(control_method_bit(HTTP_GET), CONTROL_GET);
    CHECK_INT(control_method_bit(HTTP_POST), CONTROL_POST);
    CHECK_INT(control_method_bit(HTTP_DELETE), CONTROL_DELETE);
    CHECK_INT(control_method_bit(HTTP_OPTIONS), 0);
    char m[64];
    control_methods_str(0, m, sizeof(m));
    CHECK_STR(m, "");
    control_methods_str(CONTROL_DELETE | CONTROL_GET, m, sizeof(m));
    CHECK_STR(m, "GET, DELETE");
    control_methods_str(~0u, m, sizeof(m));
    CHECK_STR(m, "GET, HEAD, POST, PUT, PATCH, DELETE");
    char small[6];
    control_methods_str(CONTROL_GET | CONTROL_POST, small, sizeof(small));
    CHECK_STR(small, "GET, "); /* truncated, terminated */
}

TEST(malformed_and_limits)
{
    control_options o = default_opts();
    run_fixture(o, "limits", sc_malformed);
}

TEST(idle_and_events)
{
    control_options o = default_opts();
    o.idle_timeout_ms = 200;
    run_fixture(o, "events", sc_idle_and_events);
}

TEST(stream_client)
{
    control_options o = default_opts();
    run_fixture(o, "stream", sc_stream_client);
}

TEST(client_cap)
{
    control_options o = default_opts();
    o.max_clients = 2;
    o.idle_timeout_ms = 30000;
    run_fixture(o, "cap", sc_client_cap);
}

TEST(uid_cap)
{
    control_options o = default_opts();
    o.max_clients = 8;
    o.idle_timeout_ms = 30000;
    run_fixture(o, "uidcap", sc_uid_cap);
}

TEST(accept_burst)
{
    control_options o = default_opts();
    o.max_clients = 1024; /* 256 per uid: no evictions (N is 250), only the budget */
    o.idle_timeout_ms = 30000;
    run_fixture(o, "burst", sc_accept_burst);
}

TEST(resolver_permissions)
{
    struct group *g = getgrgid(0);
    REQUIRE(g != NULL);
    admin_gid_for_test = 0;
    control_options o = default_opts();
    o.admin_group = g->gr_name; /* "root" on Linux, "wheel" on macOS */
    run_fixture(o, "resolver", sc_resolver);
}

/* A socket file nobody listens on at path: what a crashed daemon leaves. */
static bool make_stale_socket(char *path, size_t cap, const char *name)
{
    make_path(path, cap, name);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strlcpy_(sa.sun_path, path, sizeof(sa.sun_path));
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0)
        close(fd);
    return ok && access(path, F_OK) == 0;
}

TEST(stale_socket)
{
    char path[108];
    REQUIRE(make_stale_socket(path, sizeof(path), "stale"));
    control_options o = default_opts();
    run_fixture(o, "stale", sc_stale_then_second);
}

/* Without the state lock (replace_stale false) a socket file that refuses
 * connections is not proof of a dead daemon: it is left alone. */
TEST(stale_socket_without_lock)
{
    char path[108];
    REQUIRE(make_stale_socket(path, sizeof(path), "stale-nolock"));
    control_options o = default_opts();
    o.path = path;
    o.replace_stale = false;
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    control_provider prov = provider_template;
    control_server *s = NULL;
    CHECK_INT(control_start(&loop, &o, &prov, &s), -EADDRINUSE);
    CHECK(s == NULL);
    struct stat st;
    CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode));
    CHECK_INT(uv_loop_close(&loop), 0);
    unlink(path);
}

TEST(not_a_socket)
{
    char path[108];
    make_path(path, sizeof(path), "file");
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    close(fd);
    uv_loop_t loop;
    uv_loop_init(&loop);
    control_options o = default_opts();
    o.path = path;
    control_server *s = NULL;
    control_provider prov = provider_template;
    CHECK_INT(control_start(&loop, &o, &prov, &s), -EEXIST);
    CHECK(access(path, F_OK) == 0); /* untouched */
    unlink(path);
    CHECK_INT(uv_loop_close(&loop), 0);
}

TEST(inherited_fd)
{
    char path[108];
    make_path(path, sizeof(path), "inh");
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strlcpy_(sa.sun_path, path, sizeof(sa.sun_path));
    REQUIRE(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    REQUIRE(listen(fd, 16) == 0);
    control_options o = default_opts();
    o.inherited_fd = fd;
    run_fixture(o, "inh", sc_request_ok);
    /* Not ours to remove: systemd or launchd owns the file. */
    CHECK(access(path, F_OK) == 0);
    unlink(path);
}

TEST_SETUP()
{
    signal(SIGPIPE, SIG_IGN);
}

/* The socket's directory, symlinks resolved: root's or ours, and not
 * writable by others unless sticky. */
TEST(socket_dir_check)
{
    char base[] = "/tmp/lh-ctl-dir-XXXXXX";
    REQUIRE(mkdtemp(base) != NULL);
    char d[128], p[256], why[512];
    uid_t me = geteuid();
    snprintf(d, sizeof(d), "%s/ok", base);
    mkdir(d, 0755);
    snprintf(p, sizeof(p), "%s/s.sock", d);
    CHECK_INT(control_check_socket_dir(p, me, why, sizeof(why)), 0);
    snprintf(d, sizeof(d), "%s/open", base);
    mkdir(d, 0700);
    chmod(d, 0777);
    snprintf(p, sizeof(p), "%s/s.sock", d);
    CHECK_INT(control_check_socket_dir(p, me, why, sizeof(why)), -EPERM);
    CHECK(strstr(why, "writable by other users") != NULL);
    /* Through a symlink: the real directory is judged. */
    char link[160];
    snprintf(link, sizeof(link), "%s/link", base);
    CHECK_INT(symlink(d, link), 0);
    snprintf(p, sizeof(p), "%s/s.sock", link);
    CHECK_INT(control_check_socket_dir(p, me, why, sizeof(why)), -EPERM);
    chmod(d, 01777); /* sticky, like /tmp */
    CHECK_INT(control_check_socket_dir(p, me, why, sizeof(why)), 0);
    /* Someone else's directory. */
    CHECK_INT(control_check_socket_dir(p, me + 1, why, sizeof(why)), me == 0 ? 0 : -EPERM);
    snprintf(d, sizeof(d), "%s/ok", base);
    if (me == 0 && chown(d, 65534, 65534) == 0) {
        snprintf(p, sizeof(p), "%s/s.sock", d);
        CHECK_INT(control_check_socket_dir(p, 0, why, sizeof(why)), -EPERM);
        CHECK(strstr(why, "uid 65534") != NULL);
    }
    snprintf(p, sizeof(p), "%s/missing/s.sock", base);
    CHECK(control_check_socket_dir(p, me, why, sizeof(why)) < 0);
    CHECK_INT(unlink(link), 0);
    static const char *const sub[] = {"ok", "open"};
    for (size_t i = 0; i < ARRAY_SIZE(sub); i++) {
        snprintf(d, sizeof(d), "%s/%s", base, sub[i]);
        CHECK_INT(rmdir(d), 0);
    }
    CHECK_INT(rmdir(base), 0);
}
