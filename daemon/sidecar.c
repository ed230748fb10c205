/* Relay sidecars over docker_request: one entry per wanted (target, port,
 * proto), each with at most one request in flight; every reply moves the
 * entry on through advance(), which compares what is wanted with what exists
 * (the container made, the dest it was made for) and sends the next request.
 * Errors the engine sends are hostile text: printable() before they go into
 * a problem or a log line. */
#include "sidecar.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "container.h"
#include "docker_json.h"
#include "json.h"
#include "labels.h"
#include "log.h"
#include "util.h"

#define CLOSE_DEADLINE_MS 3000
#define PROBLEM_MAX 640

typedef struct sc_entry sc_entry;
struct sc_entry {
    sidecar_manager *m;
    sc_entry *next;
    char target[65];
    uint16_t port;
    uint8_t proto;
    char dest[300];
    char name[96];             /* loophole-relay-<target12>-<port>-<tcp|udp> */
    char shown[PRINTABLE_BUF]; /* the target's name, for log lines */
    bool wanted;
    bool invalid;        /* the want cannot be used: FAILED until it changes */
    char have_id[65];    /* the container made for it, "" none */
    char have_dest[300]; /* the dest it was made for */
    bool recreate;       /* what exists is stale (stopped, half made): remove it */
    bool busy;           /* a request in flight, or waiting for the pull */
    bool waiting_pull;
    bool pulled;         /* this round pulled the image already */
    bool conflict_tried; /* this round removed a leftover of the same name */
    int state;
    char problem[PROBLEM_MAX];
};

struct sidecar_manager {
    docker_client *dc;
    char *image;
    char *owner;
    void (*changed)(void *ud);
    void *ud;
    sc_entry *entries;
    struct sc_req *orphans; /* leftovers being removed (OP_ORPHAN in flight) */
    int inflight;
    bool pulling;
    bool dirty; /* a state changed since changed() last ran */
    bool closing;
    bool deadline_passed;
    bool close_cb_done;
    uv_timer_t deadline;
    void (*close_cb)(void *arg);
    void *close_arg;
};

enum op { OP_CREATE, OP_START, OP_REMOVE, OP_REMOVE_NAME, OP_ORPHAN, OP_LIST, OP_PULL };

typedef struct sc_req {
    sidecar_manager *m;
    sc_entry *e; /* NULL for list, pull and leftovers */
    enum op op;
    char dest[300];             /* OP_CREATE: the dest it creates for */
    char name[128];             /* OP_ORPHAN: the leftover's name */
    struct sc_req *next_orphan; /* OP_ORPHAN: in m->orphans */
} sc_req;

static void advance(sc_entry *e);
static void maybe_finish(sidecar_manager *m);

static const char *proto_name(uint8_t proto)
{
    return proto == CTR_UDP ? "udp" : "tcp";
}

static void set_state(sc_entry *e, int state, const char *problem)
{
    bool same = e->state == state && strcmp(e->problem, problem ? problem : "") == 0;
    e->state = state;
    strlcpy_(e->problem, problem ? problem : "", sizeof(e->problem));
    /* Told once a reply has been dealt with (notify): the callee may well
     * call sidecar_apply, which must not run in the middle of this. */
    if (!same)
        e->m->dirty = true;
}

static void notify(sidecar_manager *m)
{
    if (m->dirty && !m->closing && m->changed) {
        m->dirty = false;
        m->changed(m->ud);
    }
}

static void on_reply(void *ud, int err, int status, const char *body, size_t len);

/* Sends one request for e (or for the manager when e is NULL). 0, or the
 * error of docker_request (then nothing is in flight). *out (when given) is
 * the request until its reply. */
static int send_req_r(sidecar_manager *m, sc_entry *e, enum op op, const char *method,
                      const char *path, const char *body, sc_req **out)
{
    sc_req *r = xcalloc(1, sizeof(*r));
    r->m = m;
    r->e = e;
    r->op = op;
    if (e != NULL)
        strlcpy_(r->dest, e->dest, sizeof(r->dest));
    int err = docker_request(m->dc, method, path, body, on_reply, r);
    if (err < 0) {
        free(r);
        return err;
    }
    m->inflight++;
    if (e != NULL)
        e->busy = true;
    if (out)
        *out = r;
    return 0;
}

static int send_req(sidecar_manager *m, sc_entry *e, enum op op, const char *method,
                    const char *path, const char *body)
{
    return send_req_r(m, e, op, method, path, body, NULL);
}

/* A leftover of this name is being removed: a create now would conflict
 * with the removal in progress (HTTP 409 twice over, the conflict path
 * gives up), so the entry waits for the removal's reply. */
static bool orphan_pending(const sidecar_manager *m, const char *name)
{
    for (const sc_req *r = m->orphans; r != NULL; r = r->next_orphan)
        if (strcmp(r->name, name) == 0)
            return true;
    return false;
}

/* The engine's message in an error reply, printable, or "HTTP <status>". */
static void engine_message(int err, int status, const char *body, size_t len, char *out, size_t cap)
{
    char msg[300];
    if (err < 0)
        snprintf(out, cap, "%s", err_str(err));
    else if (body != NULL && docker_decode_message(body, len, msg, sizeof(msg)) == 0 && msg[0])
        printable(msg, strlen(msg), out, cap);
    else
        snprintf(out, cap, "HTTP %d", status);
}

/* Percent-encodes s for a query parameter. */
static void query_escape(buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~')
            buf_append(b, s, 1);
        else
            buf_appendf(b, "%%%02X", c);
    }
}

/* socat's -t (seconds a half-closed TCP relay waits for the other side) and
 * -T (seconds an idle UDP relay child lives), as text for the command. */
#define SIDECAR_TCP_HALF_CLOSE_S "7200"
#define SIDECAR_UDP_IDLE_S "60"

/* The Engine API's create body. The whole command is ours (socat from the
 * image's PATH, overriding any entrypoint), so any image with socat works;
 * NetworkMode container:<id> puts it in the target's namespace, where
 * 127.0.0.1 is the target's loopback. */
static char *create_body(const sidecar_manager *m, const sc_entry *e)
{
    char listen[96], connect[320], port_label[16], mode[80];
    snprintf(listen, sizeof(listen), "%s-LISTEN:%u,bind=127.0.0.1,fork,reuseaddr",
             e->proto == CTR_UDP ? "UDP" : "TCP", (unsigned)e->port);
    snprintf(connect, sizeof(connect), "%s:%s", e->proto == CTR_UDP ? "UDP" : "TCP", e->dest);
    snprintf(port_label, sizeof(port_label), "%u/%s", (unsigned)e->port, proto_name(e->proto));
    snprintf(mode, sizeof(mode), "container:%s", e->target);
    yajl_gen g = json_gen_new(false);
    if (g == NULL)
        return NULL;
    int rc = yajl_gen_map_open(g) != yajl_gen_status_ok;
    rc |= json_kv_str(g, "Image", m->image);
    rc |= json_gen_str(g, "Entrypoint");
    rc |= yajl_gen_array_open(g) != yajl_gen_status_ok;
    rc |= json_gen_str(g, "socat");
    rc |= yajl_gen_array_close(g) != yajl_gen_status_ok;
    rc |= json_gen_str(g, "Cmd");
    rc |= yajl_gen_array_open(g) != yajl_gen_status_ok;
    /* TCP: socat's default -t 0.5 ends a connection half a second after one
     * side's EOF, cutting a reply sent later (half-close); UDP: without -T
     * every client's forked child stays for good. */
    rc |= json_gen_str(g, e->proto == CTR_UDP ? "-T" : "-t");
    rc |= json_gen_str(g, e->proto == CTR_UDP ? SIDECAR_UDP_IDLE_S : SIDECAR_TCP_HALF_CLOSE_S);
    rc |= json_gen_str(g, listen);
    rc |= json_gen_str(g, connect);
    rc |= yajl_gen_array_close(g) != yajl_gen_status_ok;
    rc |= json_gen_str(g, "Labels");
    rc |= yajl_gen_map_open(g) != yajl_gen_status_ok;
    rc |= json_kv_str(g, LABEL_SIDECAR, e->target);
    rc |= json_kv_str(g, LABEL_SIDECAR ".port", port_label);
    rc |= json_kv_str(g, SIDECAR_OWNER_LABEL, m->owner);
    rc |= yajl_gen_map_close(g) != yajl_gen_status_ok;
    rc |= json_gen_str(g, "HostConfig");
    rc |= yajl_gen_map_open(g) != yajl_gen_status_ok;
    rc |= json_kv_str(g, "NetworkMode", mode);
    rc |= json_kv_bool(g, "AutoRemove", false);
    rc |= json_gen_str(g, "RestartPolicy");
    rc |= yajl_gen_map_open(g) != yajl_gen_status_ok;
    rc |= json_kv_str(g, "Name", "no");
    rc |= yajl_gen_map_close(g) != yajl_gen_status_ok;
    rc |= yajl_gen_map_close(g) != yajl_gen_status_ok;
    rc |= yajl_gen_map_close(g) != yajl_gen_status_ok;
    char *out = NULL;
    size_t len;
    if (rc != 0 || json_gen_take(g, false, &out, &len) < 0)
        out = NULL;
    yajl_gen_free(g);
    return out;
}

static void unlink_entry(sc_entry *e)
{
    sidecar_manager *m = e->m;
    for (sc_entry **p = &m->entries; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    free(e);
}

static void remove_container(sc_entry *e)
{
    char path[128];
    snprintf(path, sizeof(path), "/containers/%s?force=1", e->have_id);
    if (send_req(e->m, e, OP_REMOVE, "DELETE", path, NULL) == 0)
        return;
    /* No engine: nothing can be removed now. Closing gives up on it (the
     * next start removes leftovers); otherwise the next connect retries. */
    if (e->m->closing) {
        log_warn("sidecar", "cannot remove %s: the engine is not connected", e->name);
        e->have_id[0] = '\0';
        advance(e);
    }
}

static void create_container(sc_entry *e)
{
    sidecar_manager *m = e->m;
    char *body = create_body(m, e);
    if (body == NULL) {
        set_state(e, SIDECAR_FAILED, "the relay sidecar's settings are not valid UTF-8");
        return;
    }
    buf path = {0};
    buf_appendf(&path, "/containers/create?name=%s", e->name);
    /* Not connected: stays PENDING until sidecar_engine_connected. */
    send_req(m, e, OP_CREATE, "POST", path.data, body);
    buf_free(&path);
    free(body);
}

/* Moves e one step towards what is wanted; may free e. */
static void advance(sc_entry *e)
{
    sidecar_manager *m = e->m;
    if (e->busy)
        return;
    bool want = e->wanted && !m->closing && !e->invalid;
    if (e->have_id[0] && (!want || e->recreate || e->state == SIDECAR_FAILED ||
                          strcmp(e->have_dest, e->dest) != 0)) {
        remove_container(e);
        return;
    }
    if (!want && (!e->wanted || m->closing)) {
        unlink_entry(e); /* maybe_finish is the caller's: m must outlive this */
        return;
    }
    if (!want || e->state == SIDECAR_FAILED || e->state == SIDECAR_RUNNING)
        return;
    if (orphan_pending(m, e->name))
        return; /* advanced again when the leftover is gone */
    create_container(e);
}

static void advance_all(sidecar_manager *m)
{
    for (sc_entry *e = m->entries, *next; e != NULL; e = next) {
        next = e->next;
        advance(e);
    }
}

/* "alpine/socat" -> alpine/socat + latest; "r:5000/x:1.8" -> r:5000/x + 1.8;
 * "x@sha256:..." -> x + the digest (the Engine API takes a digest as tag). */
static void start_pull(sidecar_manager *m)
{
    if (m->pulling)
        return;
    const char *img = m->image;
    const char *at = strchr(img, '@');
    const char *slash = strrchr(img, '/');
    const char *colon = strrchr(img, ':');
    const char *sep = at ? at : (colon && (!slash || colon > slash) ? colon : NULL);
    buf path = {0}, name = {0};
    buf_append(&name, img, sep ? (size_t)(sep - img) : strlen(img));
    buf_appendf(&path, "/images/create?fromImage=");
    query_escape(&path, name.data);
    buf_appendf(&path, "&tag=");
    query_escape(&path, sep ? sep + 1 : "latest");
    char shown[PRINTABLE_BUF];
    log_info("sidecar", "pulling the relay image %s",
             printable(img, strlen(img), shown, sizeof(shown)));
    if (send_req(m, NULL, OP_PULL, "POST", path.data, NULL) == 0)
        m->pulling = true;
    buf_free(&path);
    buf_free(&name);
    if (!m->pulling) {
        /* Not connected: the waiting entries try again on the next connect. */
        for (sc_entry *e = m->entries; e; e = e->next)
            if (e->waiting_pull)
                e->waiting_pull = e->busy = false;
    }
}

static void pull_done(sidecar_manager *m, int err, int status, const char *body, size_t len)
{
    m->pulling = false;
    char why[256] = "", shown[PRINTABLE_BUF], msg[300];
    if (err == 0 && status == 200) {
        if (docker_decode_pull(body, len, msg, sizeof(msg)) < 0)
            printable(msg, strlen(msg), why, sizeof(why));
    } else {
        engine_message(err, status, body, len, why, sizeof(why));
    }
    char problem[PROBLEM_MAX];
    if (why[0]) {
        printable(m->image, strlen(m->image), shown, sizeof(shown));
        snprintf(problem, sizeof(problem),
                 "cannot pull the relay image %s: %s; fetch it with docker pull %s or set "
                 "--sidecar-image",
                 shown, why, shown);
        log_warn("sidecar", "%s", problem);
    }
    for (sc_entry *e = m->entries, *next; e != NULL; e = next) {
        next = e->next;
        if (!e->waiting_pull)
            continue;
        e->waiting_pull = e->busy = false;
        e->pulled = true;
        if (why[0])
            set_state(e, SIDECAR_FAILED, problem);
        advance(e);
    }
}

static void create_done(sc_entry *e, sc_req *r, int err, int status, const char *body, size_t len)
{
    sidecar_manager *m = e->m;
    char msg[300];
    if (err < 0) {
        /* No reply: stays PENDING, retried on the next connect (a container
         * made after all is removed there as a leftover). */
        log_warn("sidecar", "creating %s: %s", e->name, err_str(err));
        if (m->closing)
            advance(e);
        return;
    }
    if (status == 201) {
        char id[65], why[160];
        if (docker_decode_created(body, len, id, why, sizeof(why)) < 0) {
            set_state(e, SIDECAR_FAILED,
                      "the engine's reply to creating the relay sidecar has no "
                      "container id");
            return;
        }
        strlcpy_(e->have_id, id, sizeof(e->have_id));
        strlcpy_(e->have_dest, r->dest, sizeof(e->have_dest));
        e->recreate = false;
        if (m->closing || !e->wanted || strcmp(e->have_dest, e->dest) != 0) {
            advance(e);
            return;
        }
        char path[128];
        snprintf(path, sizeof(path), "/containers/%s/start", e->have_id);
        if (send_req(m, e, OP_START, "POST", path, NULL) < 0)
            e->recreate = true; /* half made: removed and made again on the next connect */
        return;
    }
    engine_message(0, status, body, len, msg, sizeof(msg));
    char raw[300] = "";
    docker_decode_message(body, len, raw, sizeof(raw));
    if (status == 404 && strncasecmp(raw, "No such image", 13) == 0 && !e->pulled) {
        e->busy = e->waiting_pull = true;
        start_pull(m);
        return;
    }
    if (status == 409 && !e->conflict_tried) {
        /* A leftover of the same name (a crashed daemon's): remove it and
         * create once more. */
        e->conflict_tried = true;
        char path[128];
        snprintf(path, sizeof(path), "/containers/%s?force=1", e->name);
        if (send_req(m, e, OP_REMOVE_NAME, "DELETE", path, NULL) == 0)
            return;
    }
    char problem[PROBLEM_MAX];
    snprintf(problem, sizeof(problem), "cannot create the relay sidecar %s: %s", e->name, msg);
    log_warn("sidecar", "%s (for %s)", problem, e->shown);
    set_state(e, SIDECAR_FAILED, problem);
}

static void start_done(sc_entry *e, int err, int status, const char *body, size_t len)
{
    if (err == 0 && (status == 204 || status == 304)) {
        log_info("sidecar", "%s relays %s port %u/%s to %s", e->name, e->shown, (unsigned)e->port,
                 proto_name(e->proto), e->have_dest);
        set_state(e, SIDECAR_RUNNING, NULL);
        advance(e); /* the want may have changed meanwhile */
        return;
    }
    if (err < 0) {
        log_warn("sidecar", "starting %s: %s", e->name, err_str(err));
        e->recreate = true;
        if (e->m->closing)
            advance(e);
        return;
    }
    char msg[300], problem[PROBLEM_MAX];
    engine_message(err, status, body, len, msg, sizeof(msg));
    snprintf(problem, sizeof(problem), "cannot start the relay sidecar %s: %s", e->name, msg);
    log_warn("sidecar", "%s (for %s)", problem, e->shown);
    set_state(e, SIDECAR_FAILED, problem);
    advance(e); /* removes the container that would not start */
}

static void remove_done(sc_entry *e, int err, int status)
{
    if (err < 0 && !e->m->closing) {
        log_warn("sidecar", "removing %s: %s", e->name, err_str(err));
        return; /* kept: retried on the next connect */
    }
    if (err == 0 && status != 204 && status != 404)
        log_warn("sidecar", "removing %s: HTTP %d", e->name, status);
    e->have_id[0] = '\0';
    e->recreate = false;
    if (e->state == SIDECAR_RUNNING)
        set_state(e, SIDECAR_PENDING, NULL);
    advance(e);
}

static sc_entry *find_id(sidecar_manager *m, const char *id)
{
    for (sc_entry *e = m->entries; e; e = e->next)
        if (e->have_id[0] && strcmp(e->have_id, id) == 0)
            return e;
    return NULL;
}

static void list_done(sidecar_manager *m, int err, int status, const char *body, size_t len)
{
    docker_listed *v = NULL;
    size_t n = 0;
    char why[160];
    if (err < 0 || status != 200 || docker_decode_listed(body, len, &v, &n, why, sizeof(why)) < 0) {
        log_warn("sidecar", "cannot list leftover relay sidecars (%s)",
                 err < 0 ? err_str(err) : "bad reply");
        advance_all(m);
        return;
    }
    for (sc_entry *e = m->entries; e; e = e->next)
        if (e->have_id[0] && !e->busy) {
            /* Not listed: gone (the engine restarted, someone removed it). */
            bool listed = false;
            for (size_t i = 0; i < n; i++)
                listed |= strcmp(v[i].id, e->have_id) == 0;
            if (!listed) {
                e->have_id[0] = '\0';
                if (e->state == SIDECAR_RUNNING)
                    set_state(e, SIDECAR_PENDING, NULL);
            }
        }
    for (size_t i = 0; i < n && !m->closing; i++) {
        sc_entry *e = find_id(m, v[i].id);
        if (e != NULL) {
            /* One being started now is not stale. */
            if (!e->busy && strcmp(v[i].state, "running") != 0)
                e->recreate = true;
            continue;
        }
        bool creating = false;
        for (sc_entry *o = m->entries; o; o = o->next)
            creating |= o->busy && strcmp(o->name, v[i].name) == 0;
        /* The list is filtered by our owner label; the name is the second
         * mark an image's labels cannot give. */
        if (creating || strncmp(v[i].name, SIDECAR_NAME_PREFIX, strlen(SIDECAR_NAME_PREFIX)) != 0)
            continue;
        char shown[PRINTABLE_BUF], path[128];
        log_info("sidecar", "removing the leftover relay sidecar %s",
                 printable(v[i].name, strlen(v[i].name), shown, sizeof(shown)));
        snprintf(path, sizeof(path), "/containers/%s?force=1", v[i].id);
        sc_req *r;
        if (send_req_r(m, NULL, OP_ORPHAN, "DELETE", path, NULL, &r) == 0) {
            strlcpy_(r->name, v[i].name, sizeof(r->name));
            r->next_orphan = m->orphans;
            m->orphans = r;
        }
    }
    free(v);
    advance_all(m);
}

static void on_reply(void *ud, int err, int status, const char *body, size_t len)
{
    sc_req *r = ud;
    sidecar_manager *m = r->m;
    sc_entry *e = r->e;
    m->inflight--;
    if (e != NULL)
        e->busy = false;
    switch (r->op) {
    case OP_CREATE:
        create_done(e, r, err, status, body, len);
        break;
    case OP_START:
        start_done(e, err, status, body, len);
        break;
    case OP_REMOVE:
        remove_done(e, err, status);
        break;
    case OP_REMOVE_NAME:
        advance(e);
        break;
    case OP_ORPHAN:
        if (err == 0 && status != 204 && status != 404)
            log_warn("sidecar", "removing a leftover relay sidecar: HTTP %d", status);
        for (sc_req **p = &m->orphans; *p; p = &(*p)->next_orphan)
            if (*p == r) {
                *p = r->next_orphan;
                break;
            }
        /* The entry of the same name (a target the killed daemon relayed
         * too) may be made now. */
        for (sc_entry *o = m->entries, *next; o != NULL; o = next) {
            next = o->next;
            if (strcmp(o->name, r->name) == 0)
                advance(o);
        }
        break;
    case OP_LIST:
        list_done(m, err, status, body, len);
        break;
    case OP_PULL:
        pull_done(m, err, status, body, len);
        break;
    }
    free(r);
    notify(m);
    maybe_finish(m);
}

/* ---- public ---- */

sidecar_manager *sidecar_new(docker_client *dc, const char *image, const char *owner,
                             void (*changed)(void *ud), void *ud)
{
    sidecar_manager *m = xcalloc(1, sizeof(*m));
    m->dc = dc;
    m->image = xstrdup(image);
    m->owner = xstrdup(owner);
    m->changed = changed;
    m->ud = ud;
    uv_timer_init(docker_client_loop(dc), &m->deadline);
    m->deadline.data = m;
    return m;
}

static bool valid_target(const char *s)
{
    size_t n = strlen(s);
    if (n != 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* host:port with nothing socat would read as an option (',') or another
 * address ('!!'): names, IPv4 and [IPv6] literals only. */
static bool valid_dest(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || colon[1] == '\0' || strlen(colon + 1) > 5)
        return false;
    for (const char *p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    for (const char *p = s; p < colon; p++) {
        char c = *p;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return false;
    }
    long port = strtol(colon + 1, NULL, 10);
    return port > 0 && port <= 65535;
}

static sc_entry *find(const sidecar_manager *m, const char *target, uint16_t port, uint8_t proto)
{
    for (sc_entry *e = m->entries; e; e = e->next)
        if (e->port == port && e->proto == proto && strcmp(e->target, target) == 0)
            return e;
    return NULL;
}

void sidecar_apply(sidecar_manager *m, const sidecar_want *w, size_t n)
{
    if (m->closing)
        return;
    for (sc_entry *e = m->entries; e; e = e->next)
        e->wanted = false;
    for (size_t i = 0; i < n; i++) {
        uint8_t proto = w[i].proto == CTR_UDP ? CTR_UDP : CTR_TCP;
        sc_entry *e = find(m, w[i].target, w[i].port, proto);
        if (e == NULL) {
            e = xcalloc(1, sizeof(*e));
            e->m = m;
            strlcpy_(e->target, w[i].target, sizeof(e->target));
            e->port = w[i].port;
            e->proto = proto;
            snprintf(e->name, sizeof(e->name), SIDECAR_NAME_PREFIX "%.12s-%u-%s", e->target,
                     (unsigned)e->port, proto_name(proto));
            e->state = SIDECAR_PENDING;
            e->next = m->entries;
            m->entries = e;
        }
        e->wanted = true;
        const char *tn = w[i].target_name ? w[i].target_name : w[i].target;
        printable(tn, strlen(tn), e->shown, sizeof(e->shown));
        if (strcmp(e->dest, w[i].dest) != 0) {
            /* A new dest is a new sidecar: what failed before may work now. */
            strlcpy_(e->dest, w[i].dest, sizeof(e->dest));
            e->pulled = e->conflict_tried = false;
            e->state = SIDECAR_PENDING;
            e->problem[0] = '\0';
        }
        e->invalid = !valid_target(e->target) || e->port == 0 || !valid_dest(e->dest) ||
                     (w[i].proto != CTR_TCP && w[i].proto != CTR_UDP);
        if (e->invalid) {
            char shown[PRINTABLE_BUF];
            e->state = SIDECAR_FAILED;
            snprintf(e->problem, sizeof(e->problem),
                     "the relay sidecar's target %s is not a container id, or its destination "
                     "%s is not host:port",
                     e->shown, printable(e->dest, strlen(e->dest), shown, sizeof(shown)));
        }
    }
    advance_all(m);
}

int sidecar_state(const sidecar_manager *m, const char *target, uint16_t port, uint8_t proto,
                  const char **problem)
{
    if (problem)
        *problem = NULL;
    sc_entry *e = find(m, target, port, proto);
    if (e == NULL || !e->wanted)
        return -ENOENT;
    if (problem && e->state == SIDECAR_FAILED)
        *problem = e->problem;
    return e->state;
}

size_t sidecar_count(const sidecar_manager *m)
{
    size_t n = 0;
    for (sc_entry *e = m->entries; e; e = e->next)
        n += e->wanted && e->state == SIDECAR_RUNNING;
    return n;
}

void sidecar_container_gone(sidecar_manager *m, const char *id)
{
    if (m->closing || id == NULL)
        return;
    sc_entry *e = find_id(m, id);
    /* Our own removals (busy) and sidecars still being made say nothing. */
    if (e == NULL || e->busy || e->state != SIDECAR_RUNNING || !e->wanted)
        return;
    char problem[PROBLEM_MAX];
    snprintf(problem, sizeof(problem),
             "the relay sidecar %s exited (is port %u/%s already in use inside the container?)",
             e->name, (unsigned)e->port, proto_name(e->proto));
    log_warn("sidecar", "%s (for %s)", problem, e->shown);
    /* FAILED until the next connect or a new dest: no create-exit loop. */
    set_state(e, SIDECAR_FAILED, problem);
    advance(e); /* removes what is left of it */
    notify(m);
}

void sidecar_engine_connected(sidecar_manager *m)
{
    if (m->closing)
        return;
    /* A new session gives what failed another chance (an image imported
     * meanwhile, an engine restarted). */
    for (sc_entry *e = m->entries; e; e = e->next) {
        e->pulled = e->conflict_tried = false;
        if (e->state == SIDECAR_FAILED && !e->invalid) {
            e->state = SIDECAR_PENDING;
            e->problem[0] = '\0';
        }
    }
    /* filters={"label":["loophole.sidecar.owner=<owner>"]} */
    buf path = {0};
    buf_appendf(&path,
                "/containers/json?all=1&filters=%%7B%%22label%%22%%3A%%5B%%22" SIDECAR_OWNER_LABEL
                "%%3D");
    query_escape(&path, m->owner);
    buf_appendf(&path, "%%22%%5D%%7D");
    int rc = send_req(m, NULL, OP_LIST, "GET", path.data, NULL);
    buf_free(&path);
    if (rc < 0)
        advance_all(m);
}

static void deadline_closed(uv_handle_t *h)
{
    sidecar_manager *m = h->data;
    m->close_cb_done = true;
    void (*cb)(void *) = m->close_cb;
    void *arg = m->close_arg;
    /* Requests still in flight end when the Docker client closes; the last
     * one frees the manager. */
    maybe_finish(m);
    if (cb)
        cb(arg);
}

static void deadline_fired(uv_timer_t *t)
{
    sidecar_manager *m = t->data;
    log_warn("sidecar", "gave up waiting for the engine to remove the relay sidecars");
    m->deadline_passed = true;
    maybe_finish(m);
}

static void maybe_finish(sidecar_manager *m)
{
    if (!m->closing)
        return;
    if (m->close_cb_done) {
        if (m->inflight == 0) {
            while (m->entries)
                unlink_entry(m->entries);
            free(m->image);
            free(m->owner);
            free(m);
        }
        return;
    }
    bool idle = m->entries == NULL && m->inflight == 0;
    if ((idle || m->deadline_passed) && !uv_is_closing((uv_handle_t *)&m->deadline))
        uv_close((uv_handle_t *)&m->deadline, deadline_closed);
}

void sidecar_close(sidecar_manager *m, void (*cb)(void *arg), void *arg)
{
    if (m->closing)
        return;
    m->closing = true;
    m->close_cb = cb;
    m->close_arg = arg;
    uv_timer_start(&m->deadline, deadline_fired, CLOSE_DEADLINE_MS, 0);
    advance_all(m);
    maybe_finish(m);
}
