/* The port reconciler: one proxy listener per published TCP/UDP port of each
 * served container, on the container's address and original port. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "kafka_map.h"
#include "log.h"
#include "util.h"

/* How many addresses a container may walk when other programs hold its ports. */
#define MAX_MOVES 8

static bool wildcard(const char *ip)
{
    return ip[0] == '\0' || strcmp(ip, "0.0.0.0") == 0 || strcmp(ip, "::") == 0;
}

/* Where Docker's mapped port answers: a wildcard binding is dialled on
 * loopback (::1 when only an IPv6 binding exists); a specific one as given. */
static int upstream_addr(const reg_port *p, struct sockaddr_storage *ss)
{
    const char *ip = p->host_ip;
    if (wildcard(ip))
        ip = p->ipv6_only ? "::1" : "127.0.0.1";
    if (strchr(ip, ':'))
        return uv_ip6_addr(ip, p->host_port, (struct sockaddr_in6 *)ss);
    return uv_ip4_addr(ip, p->host_port, (struct sockaddr_in *)ss);
}

/* ---- Kafka hooks of a TCP listener ---- */

/* Brokers left unchanged are logged once each (per listener), remembered by
 * a hash of host and port. */
#define KAFKA_LOGGED_MAX 32

typedef struct kafka_ud {
    daemon_ctx *d;
    char id[65];   /* the container's full id: looked up at map time, since the
                    * registry's entries move as it changes */
    uint16_t port; /* container port */
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
    kafka_ud *k = ud;
    struct sockaddr_storage ss;
    kafka_map_ctx ctx = {k->id, 0, 0, nodes};
    if (proxy_local_addr(l, &ss) == 0 && ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
        ctx.listen_addr = ntohl(sin->sin_addr.s_addr);
        ctx.listen_port = ntohs(sin->sin_port);
    }
    uint32_t addr;
    uint16_t p;
    int rule = kafka_map_broker(&k->d->reg, &ctx, host, host_len, port, &addr, &p);
    /* The host comes from the network: log a printable copy only. */
    char shown[201];
    size_t sl = host_len < sizeof(shown) - 1 ? host_len : sizeof(shown) - 1;
    for (size_t i = 0; i < sl; i++)
        shown[i] = host[i] >= 0x20 && host[i] < 0x7f ? host[i] : '?';
    shown[sl] = '\0';
    if (rule == KAFKA_MAP_KEEP) {
        uint64_t h = broker_hash(host, host_len, port);
        for (size_t i = 0; i < k->nlogged; i++)
            if (k->logged[i] == h)
                return 0;
        if (k->nlogged < KAFKA_LOGGED_MAX) {
            k->logged[k->nlogged++] = h;
            log_warn("kafka",
                     "port %u of %.12s: broker %d at %s:%d is no container loophole "
                     "serves; clients are told its address unchanged",
                     k->port, k->id, node_id, shown, port);
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
    log_debug("kafka", "broker %d %s:%d -> %s:%u (%s)", node_id, shown, port, ip, p, why[rule]);
    return 1;
}

static reg_port *kafka_port(kafka_ud *k)
{
    reg_entry *e = reg_find(&k->d->reg, k->id);
    for (size_t i = 0; e && i < e->nports; i++)
        if (e->ports[i].port == k->port && e->ports[i].proto == CTR_TCP)
            return &e->ports[i];
    return NULL;
}

static void kafka_hook_detected(void *ud, proxy_listener *l)
{
    (void)l;
    kafka_ud *k = ud;
    reg_port *p = kafka_port(k);
    if (p && !p->kafka) {
        p->kafka = true;
        log_info("kafka", "port %u of %.12s carries Kafka: broker addresses are rewritten", k->port,
                 k->id);
        /* /v1/events watchers see the port's kafka flag change. */
        view_publish_changes(k->d);
    }
}

/* Gives a new TCP listener its Kafka hooks, by the container's label. */
static void kafka_attach(daemon_ctx *d, reg_entry *e, reg_port *p)
{
    int bad = 0;
    int mode = kafka_map_label_mode(e->c, p->port, &bad);
    if (bad)
        log_warn("kafka",
                 "%s: label loophole.kafka=\"%s\" has entries that are not ports "
                 "(want \"off\" or a list like \"9092,9093\")",
                 e->c->name, container_label(e->c, "loophole.kafka"));
    if (mode == KAFKA_MAP_MODE_OFF)
        return;
    kafka_ud *k = xcalloc(1, sizeof(*k));
    k->d = d;
    snprintf(k->id, sizeof(k->id), "%s", e->c->id);
    k->port = p->port;
    proxy_kafka h = {mode == KAFKA_MAP_MODE_FORCE ? PROXY_KAFKA_FORCE : PROXY_KAFKA_SNIFF,
                     kafka_hook_map, kafka_hook_detected, free, k};
    proxy_set_kafka(p->listener, &h);
    if (mode == KAFKA_MAP_MODE_FORCE)
        p->kafka = true;
}

static void close_listener(reg_port *p)
{
    if (p->listener) {
        proxy_close(p->listener, NULL, NULL);
        p->listener = NULL;
    }
    p->mode = REG_PORT_NONE;
}

static void set_problem(reg_entry *e, reg_port *p, const char *msg)
{
    if (strcmp(p->problem, msg) != 0 && msg[0])
        log_warn("proxy", "%s: %s", e->c->name, msg);
    snprintf(p->problem, sizeof(p->problem), "%s", msg);
}

static const char *proto_name(int proto)
{
    return proto == CTR_UDP ? "udp" : "tcp";
}

/* Brings one entry's listeners in line. Returns 1 when the entry must move
 * (a port on its address is held by another program), else 0. */
static int reconcile_entry(daemon_ctx *d, reg_entry *e, char *held, size_t heldlen)
{
    char ip[16], msg[160];
    for (size_t i = 0; i < e->nports; i++) {
        reg_port *p = &e->ports[i];
        if (p->host_port == 0 || (p->proto != CTR_TCP && p->proto != CTR_UDP)) {
            close_listener(p);
            p->problem[0] = '\0';
            continue;
        }
#ifdef __linux__
        /* -p 5432:5432 on a wildcard address: Docker's own listener already
         * answers on every 127.x address, and binding a specific address
         * would fail with EADDRINUSE on all of them. */
        if (p->host_port == p->port && wildcard(p->host_ip)) {
            close_listener(p);
            p->mode = REG_PORT_SHARED;
            p->problem[0] = '\0';
            continue;
        }
#endif
        if (p->listener && p->listener_addr != e->addr)
            close_listener(p);
        struct sockaddr_storage up;
        if (upstream_addr(p, &up) < 0) {
            snprintf(msg, sizeof(msg), "port %u/%s: Docker's host address \"%s\" is not usable",
                     p->port, proto_name(p->proto), p->host_ip);
            set_problem(e, p, msg);
            continue;
        }
        if (p->listener) {
            proxy_set_upstream(p->listener, (struct sockaddr *)&up);
            continue;
        }
        struct sockaddr_in la;
        uv_ip4_addr(ip4_format(e->addr, ip), p->port, &la);
        int rc = proxy_listen(d->loop, &d->popts, p->proto == CTR_UDP ? PROXY_UDP : PROXY_TCP,
                              (struct sockaddr *)&la, (struct sockaddr *)&up, &p->listener);
        if (rc == 0) {
            if (p->proto == CTR_TCP)
                kafka_attach(d, e, p);
            p->mode = REG_PORT_PROXY;
            p->listener_addr = e->addr;
            p->problem[0] = '\0';
            log_debug("proxy", "%s:%u/%s -> %s port %u", ip, p->port, proto_name(p->proto),
                      p->host_ip[0] ? p->host_ip : "*", p->host_port);
            continue;
        }
        p->listener = NULL;
        p->mode = REG_PORT_NONE;
        if (rc == UV_EADDRINUSE) {
            snprintf(held, heldlen, "%s:%u/%s", ip, p->port, proto_name(p->proto));
            return 1;
        }
        if (rc == UV_EACCES)
            snprintf(msg, sizeof(msg),
                     "%s:%u/%s: ports below 1024 need root or CAP_NET_BIND_SERVICE", ip, p->port,
                     proto_name(p->proto));
        else
            snprintf(msg, sizeof(msg), "cannot listen on %s:%u/%s: %s", ip, p->port,
                     proto_name(p->proto), uv_strerror(rc));
        set_problem(e, p, msg);
    }
    return 0;
}

bool ports_reconcile(daemon_ctx *d)
{
    bool moved = false;
    ports_close_dropped(d);
    for (size_t i = 0; i < d->reg.n; i++) {
        reg_entry *e = d->reg.entries[i];
        if (e->skipped || !e->has_addr) {
            for (size_t j = 0; j < e->nports; j++)
                close_listener(&e->ports[j]);
            continue;
        }
        char held[80];
        for (int tries = 0;; tries++) {
            if (!reconcile_entry(d, e, held, sizeof(held)))
                break;
            char from[16], to[16];
            ip4_format(e->addr, from);
            for (size_t j = 0; j < e->nports; j++)
                close_listener(&e->ports[j]);
            if (tries >= MAX_MOVES || reg_move(&d->reg, e, now_ms()) < 0) {
                char msg[160];
                snprintf(msg, sizeof(msg),
                         "%s is held by another program and no other address was free "
                         "after %d moves",
                         held, tries);
                for (size_t j = 0; j < e->nports; j++)
                    if (e->ports[j].host_port && e->ports[j].mode == REG_PORT_NONE)
                        set_problem(e, &e->ports[j], msg);
                break;
            }
            moved = true;
            e->moves++;
            log_warn("proxy", "%s is held by another program: moving %s from %s to %s", held,
                     e->c->name, from, ip4_format(e->addr, to));
            /* On macOS the new address needs its lo0 alias before we bind. */
            daemon_apply_aliases(d);
        }
    }
    return moved;
}

void ports_close_dropped(daemon_ctx *d)
{
    for (size_t i = 0; i < d->reg.ndropped; i++)
        proxy_close(d->reg.dropped[i], NULL, NULL);
    d->reg.ndropped = 0;
}

void ports_close_all(daemon_ctx *d)
{
    ports_close_dropped(d);
    for (size_t i = 0; i < d->reg.n; i++)
        for (size_t j = 0; j < d->reg.entries[i]->nports; j++)
            close_listener(&d->reg.entries[i]->ports[j]);
}
