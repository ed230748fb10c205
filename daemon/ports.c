/* The port table; see ports.h. */
#include "ports.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "container.h"
#include "log.h"
#include "util.h"

struct ports_table {
    ports_backend be;
    ports_callbacks cbs;
    port_entry **v; /* heap entries, in no order */
    size_t n;
    /* An open-addressing index over v by key: slot = index in v + 1, 0 is
     * empty; at most half full. A container may publish thousands of ports
     * (-p 10000-20000), and every apply, `ls` and event looks each one up. */
    size_t *slots;
    size_t nslots;
};

static const char *proto_name(int proto)
{
    return proto == CTR_UDP ? "udp" : "tcp";
}

/* Forward and web listeners are bound by the table; the reverse direction's
 * sockets are made elsewhere (in a container's namespace, on a gateway) and
 * only ever come as a want's fd. */
static bool table_binds(int role)
{
    return role == PORT_ROLE_FORWARD || role == PORT_ROLE_WEB;
}

/* "127.0.0.2:5432/tcp"; for the reverse roles where the socket is. */
static void format_where(const port_key *k, uint32_t addr, char *out, size_t cap)
{
    char ip[16];
    ip4_format(addr, ip);
    const char *proto = proto_name(k->proto);
    if (k->role == PORT_ROLE_HOST)
        snprintf(out, cap, "127.0.0.1:%u/%s", k->port, proto);
    else if (k->role == PORT_ROLE_HOST6)
        snprintf(out, cap, "[::1]:%u/%s", k->port, proto);
    else if (k->role == PORT_ROLE_RELAY)
        snprintf(out, cap, "relay of %u/%s on %s", k->port, proto, ip);
    else
        snprintf(out, cap, "%s:%u/%s", ip, k->port, proto);
}

static bool same_key(const port_key *a, const port_key *b)
{
    return a->role == b->role && a->proto == b->proto && a->port == b->port &&
           strcmp(a->id, b->id) == 0;
}

static size_t key_hash(const port_key *k)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = k->id; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ ((uint64_t)k->role << 24 | (uint64_t)k->proto << 16 | k->port)) * 1099511628211ULL;
    return (size_t)(h ^ (h >> 29));
}

static void index_put(ports_table *t, size_t i)
{
    size_t mask = t->nslots - 1;
    size_t s = key_hash(&t->v[i]->key) & mask;
    while (t->slots[s])
        s = (s + 1) & mask;
    t->slots[s] = i + 1;
}

static void index_rebuild(ports_table *t)
{
    size_t want = 16;
    while (want < 2 * (t->n + 1))
        want *= 2;
    if (want != t->nslots) {
        free(t->slots);
        t->slots = xcalloc(want, sizeof(size_t));
        t->nslots = want;
    } else {
        memset(t->slots, 0, want * sizeof(size_t));
    }
    for (size_t i = 0; i < t->n; i++)
        index_put(t, i);
}

static port_entry *find(const ports_table *t, const port_key *k)
{
    if (t->nslots == 0)
        return NULL;
    size_t mask = t->nslots - 1;
    for (size_t s = key_hash(k) & mask; t->slots[s]; s = (s + 1) & mask)
        if (same_key(&t->v[t->slots[s] - 1]->key, k))
            return t->v[t->slots[s] - 1];
    return NULL;
}

static bool same_target(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return memcmp(a, b, sizeof(struct sockaddr_in)) == 0;
    return memcmp(a, b, sizeof(struct sockaddr_in6)) == 0;
}

ports_table *ports_new(const ports_backend *be, const ports_callbacks *cbs)
{
    ports_table *t = xcalloc(1, sizeof(*t));
    t->be = *be;
    if (cbs)
        t->cbs = *cbs;
    return t;
}

static void close_listener(ports_table *t, port_entry *e)
{
    if (e->listener) {
        t->be.close(t->be.ud, e->listener);
        e->listener = NULL;
    }
}

void ports_close_all(ports_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        close_listener(t, t->v[i]);
}

void ports_free(ports_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n; i++) {
        close_listener(t, t->v[i]);
        free(t->v[i]);
    }
    free(t->v);
    free(t->slots);
    if (t->be.free_ud)
        t->be.free_ud(t->be.ud);
    free(t);
}

/* ---- Kafka hooks of a TCP listener ---- */

/* Brokers left unchanged are logged once each (per listener), remembered by
 * a hash of host and port. This is saying a thing once, not rate limiting
 * (common/log's log_limit): the same broker never gets a second line. */
#define KAFKA_LOGGED_MAX 32

typedef struct kafka_ud {
    ports_table *t;
    port_key key;
    uint32_t addr; /* the listener's address, host order */
    uint64_t logged[KAFKA_LOGGED_MAX];
    size_t nlogged;
} kafka_ud;

static uint64_t broker_hash(const char *host, size_t len, int32_t port)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)host[i]) * 1099511628211ULL;
    return (h ^ (uint32_t)port) * 1099511628211ULL;
}

static int kafka_hook_map(void *ud, proxy_listener *l, int nodes, int32_t node_id, const char *host,
                          size_t host_len, int32_t port, char *new_host, size_t cap,
                          int32_t *new_port)
{
    (void)l;
    kafka_ud *k = ud;
    if (k->t->cbs.kafka_map == NULL)
        return 0;
    uint32_t addr;
    uint16_t p;
    int rule = k->t->cbs.kafka_map(k->t->cbs.ud, &k->key, k->addr, k->key.port, nodes, host,
                                   host_len, port, &addr, &p);
    /* The host comes from the network: log a printable copy only. */
    char shown[PRINTABLE_BUF];
    printable(host, host_len, shown, sizeof(shown));
    if (rule == 0) {
        uint64_t h = broker_hash(host, host_len, port);
        for (size_t i = 0; i < k->nlogged; i++)
            if (k->logged[i] == h)
                return 0;
        if (k->nlogged < KAFKA_LOGGED_MAX) {
            k->logged[k->nlogged++] = h;
            log_warn("kafka",
                     "port %u of %.12s: broker %d at %s:%d is no container loophole "
                     "serves; clients are told its address unchanged",
                     k->key.port, k->key.id, node_id, shown, port);
        }
        return 0;
    }
    char ip[16];
    ip4_format(addr, ip);
    if (strlen(ip) >= cap)
        return 0;
    memcpy(new_host, ip, strlen(ip) + 1);
    *new_port = p;
    static const char *const why[] = {"", "a container's name or address", "its own port",
                                      "a published port", "the only broker"};
    log_debug("kafka", "broker %d %s:%d -> %s:%u (%s)", node_id, shown, port, ip, p,
              rule >= 0 && (size_t)rule < ARRAY_SIZE(why) ? why[rule] : "?");
    return 1;
}

/* The proxy calls this once per listener; the registry keeps the flag. */
static void kafka_hook_detected(void *ud, proxy_listener *l)
{
    (void)l;
    kafka_ud *k = ud;
    log_info("kafka", "port %u of %.12s carries Kafka: broker addresses are rewritten", k->key.port,
             k->key.id);
    if (k->t->cbs.kafka_seen)
        k->t->cbs.kafka_seen(k->t->cbs.ud, &k->key);
}

/* ---- The dialer of a listener whose connections ask where to go ---- */

typedef struct dial_ud {
    ports_table *t;
    port_key key;
} dial_ud;

static int dial_hook(void *ud, unsigned attempt, const struct sockaddr *peer,
                     struct sockaddr_storage *out)
{
    dial_ud *d = ud;
    if (d->t->cbs.dial == NULL)
        return -ENOENT;
    return d->t->cbs.dial(d->t->cbs.ud, &d->key, attempt, peer, out);
}

/* Installs e's dialer on its listener, or removes it (e->dial false). */
static void install_dialer(ports_table *t, port_entry *e)
{
    if (t->be.set_dialer == NULL)
        return;
    if (!e->dial) {
        t->be.set_dialer(t->be.ud, e->listener, NULL);
        return;
    }
    dial_ud *d = xcalloc(1, sizeof(*d));
    d->t = t;
    d->key = e->key;
    proxy_dialer pd = {dial_hook, free, d};
    t->be.set_dialer(t->be.ud, e->listener, &pd);
}

/* ---- Applying the plan ---- */

const port_entry *ports_find(const ports_table *t, const char *id, int role, uint16_t port,
                             int proto)
{
    port_key k;
    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "%s", id);
    k.role = (uint8_t)role;
    k.port = port;
    k.proto = (uint8_t)proto;
    return find(t, &k);
}

static void set_problem(port_entry *e, const char *msg)
{
    if (msg[0] && strcmp(e->problem, msg) != 0)
        log_warn("proxy", "%s: %s", e->name, msg);
    snprintf(e->problem, sizeof(e->problem), "%s", msg);
}

/* Tries to open e's listener. Returns 0 or the libuv error. */
static int open_listener(ports_table *t, port_entry *e, int fd)
{
    char where[40], msg[160];
    format_where(&e->key, e->addr, where, sizeof(where));
    proxy_kafka kh, *khp = NULL;
    if (e->key.proto == CTR_TCP && e->kafka != PROXY_KAFKA_OFF) {
        kafka_ud *k = xcalloc(1, sizeof(*k));
        k->t = t;
        k->key = e->key;
        k->addr = e->addr;
        kh = (proxy_kafka){e->kafka, kafka_hook_map, kafka_hook_detected, free, k};
        khp = &kh;
    }
    void *h = NULL;
    int rc = t->be.listen(t->be.ud, e, fd, khp, &h);
    if (rc == 0) {
        e->listener = h;
        e->problem[0] = '\0';
        if (e->dial)
            install_dialer(t, e);
        log_debug("proxy", "%s listening for %s", where, e->name);
        return 0;
    }
    if (rc == UV_EADDRINUSE) {
        e->problem[0] = '\0'; /* the registry decides, and says why */
        return rc;
    }
    if (e->key.role == PORT_ROLE_HOST || e->key.role == PORT_ROLE_HOST6)
        snprintf(msg, sizeof(msg), "cannot listen on %s inside the container: %s", where,
                 err_str(rc));
    else if (e->key.role == PORT_ROLE_RELAY)
        snprintf(msg, sizeof(msg), "cannot listen for the sidecar (%s): %s", where, err_str(rc));
    else if (rc == UV_EACCES)
        snprintf(msg, sizeof(msg), "%s: ports below 1024 need root or CAP_NET_BIND_SERVICE", where);
    else
        snprintf(msg, sizeof(msg), "cannot listen on %s: %s", where, err_str(rc));
    set_problem(e, msg);
    return rc;
}

void ports_apply(ports_table *t, const port_want *wants, size_t n, port_result **results,
                 size_t *nresults)
{
    *results = NULL;
    *nresults = 0;
    for (size_t i = 0; i < t->n; i++)
        t->v[i]->wanted = false;
    for (size_t i = 0; i < n; i++) {
        port_entry *e = find(t, &wants[i].key);
        if (e)
            e->wanted = true;
    }
    /* Drop what the plan no longer has, first, so a port that moved from one
     * container to another is free before the other binds it. */
    size_t before = t->n;
    for (size_t i = 0; i < t->n;) {
        if (t->v[i]->wanted) {
            i++;
            continue;
        }
        close_listener(t, t->v[i]);
        free(t->v[i]);
        t->v[i] = t->v[--t->n];
    }
    if (t->n != before || t->nslots == 0)
        index_rebuild(t);
    for (size_t i = 0; i < n; i++) {
        const port_want *w = &wants[i];
        port_entry *e = find(t, &w->key);
        int fd = w->fd;
        bool binds = table_binds(w->key.role);
        if (e == NULL) {
            e = xcalloc(1, sizeof(*e));
            e->key = w->key;
            t->v = xrealloc(t->v, (t->n + 1) * sizeof(*t->v));
            t->v[t->n++] = e;
            if (2 * (t->n + 1) > t->nslots)
                index_rebuild(t);
            else
                index_put(t, t->n - 1);
        } else if (e->listener &&
                   (e->addr != w->addr || e->kafka != w->kafka || (!binds && fd >= 0))) {
            /* A reverse socket given again replaces the listener: its maker
             * only makes one when the old is gone (a restarted container's
             * new namespace, say). */
            close_listener(t, e);
        }
        if (e->listener && fd >= 0) {
            close(fd); /* already listening: the socket is not needed */
            fd = -1;
        }
        snprintf(e->name, sizeof(e->name), "%s", w->name ? w->name : w->key.id);
        e->addr = w->addr;
        e->kafka = w->kafka;
        if (e->listener) {
            if (!same_target(&e->target, &w->target)) {
                e->target = w->target;
                t->be.retarget(t->be.ud, e->listener, (const struct sockaddr *)&e->target);
            }
            if (e->dial != w->dial) {
                e->dial = w->dial;
                install_dialer(t, e);
            }
            continue;
        }
        e->target = w->target;
        e->dial = w->dial;
        if (!binds && fd < 0) {
            /* Nothing to listen on yet: the entry stays, with its maker's
             * problem (none while the socket is being made). */
            set_problem(e, w->problem ? w->problem : "");
            continue;
        }
        int rc = open_listener(t, e, fd);
        if (rc == 0)
            continue;
        *results = xrealloc(*results, (*nresults + 1) * sizeof(port_result));
        port_result *r = &(*results)[(*nresults)++];
        memset(r, 0, sizeof(*r));
        r->key = w->key;
        r->addr = w->addr;
        r->err = rc;
        format_where(&w->key, w->addr, r->where, sizeof(r->where));
    }
}

void ports_stats(const ports_table *t, const port_entry *e, proxy_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (e && e->listener)
        t->be.stats(t->be.ud, e->listener, st);
}

int ports_local_addr(const ports_table *t, const port_entry *e, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    if (e == NULL || e->listener == NULL)
        return -ENOENT;
    if (t->be.local_addr == NULL)
        return -ENOSYS;
    return t->be.local_addr(t->be.ud, e->listener, out);
}

void ports_totals(const ports_table *t, size_t *listeners, uint64_t *active)
{
    *listeners = 0;
    *active = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i]->listener) {
            proxy_stats st;
            t->be.stats(t->be.ud, t->v[i]->listener, &st);
            (*listeners)++;
            *active += st.conns_active;
        }
}

/* ---- The proxy backend ---- */

typedef struct proxy_backend {
    uv_loop_t *loop;
    const proxy_options *opts;
} proxy_backend;

static int pb_listen(void *ud, const port_entry *e, int fd, const proxy_kafka *kafka, void **handle)
{
    proxy_backend *b = ud;
    int proto = e->key.proto == CTR_UDP ? PROXY_UDP : PROXY_TCP;
    proxy_listener *l = NULL;
    int rc;
    /* A listener whose connections ask the dialer has no target of its own;
     * the proxy still wants a fixed upstream, used only without a dialer
     * (port 0 of 127.0.0.1: refused, so such a client gets a reset). */
    struct sockaddr_in none;
    const struct sockaddr *target = (const struct sockaddr *)&e->target;
    if (e->target.ss_family != AF_INET && e->target.ss_family != AF_INET6) {
        memset(&none, 0, sizeof(none));
        none.sin_family = AF_INET;
        none.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        target = (const struct sockaddr *)&none;
    }
    if (fd >= 0) {
        rc = proxy_listen_fd(b->loop, b->opts, proto, fd, target, &l);
    } else if (!table_binds(e->key.role)) {
        rc = UV_EINVAL; /* never bound here (ports_apply does not ask) */
    } else {
        struct sockaddr_in la;
        memset(&la, 0, sizeof(la));
        la.sin_family = AF_INET;
        la.sin_port = htons(e->key.port);
        la.sin_addr.s_addr = htonl(e->addr);
        rc = proxy_listen(b->loop, b->opts, proto, (struct sockaddr *)&la, target, &l);
    }
    if (rc < 0) {
        if (kafka && kafka->free_ud)
            kafka->free_ud(kafka->ud);
        return rc;
    }
    if (kafka)
        proxy_set_kafka(l, kafka);
    *handle = l;
    return 0;
}

static void pb_retarget(void *ud, void *handle, const struct sockaddr *target)
{
    (void)ud;
    proxy_set_upstream(handle, target);
}

static void pb_close(void *ud, void *handle)
{
    (void)ud;
    proxy_close(handle, NULL, NULL);
}

static void pb_stats(void *ud, void *handle, proxy_stats *st)
{
    (void)ud;
    proxy_get_stats(handle, st);
}

static void pb_set_dialer(void *ud, void *handle, const proxy_dialer *d)
{
    (void)ud;
    proxy_set_dialer(handle, d);
}

static int pb_local_addr(void *ud, void *handle, struct sockaddr_storage *out)
{
    (void)ud;
    return proxy_local_addr(handle, out);
}

void ports_proxy_backend(uv_loop_t *loop, const proxy_options *opts, ports_backend *be)
{
    proxy_backend *b = xcalloc(1, sizeof(*b));
    b->loop = loop;
    b->opts = opts;
    *be = (ports_backend){pb_listen, pb_retarget, pb_close,      pb_stats,
                          free,      b,           pb_set_dialer, pb_local_addr};
}
