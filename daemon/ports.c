/* The port reconciler: one proxy listener per published TCP/UDP port of each
 * served container, on the container's address and original port. */
#include <string.h>

#include "daemon.h"
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
