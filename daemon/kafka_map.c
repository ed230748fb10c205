/* Broker address mapping for the Kafka rewriter; see kafka_map.h. */
#include "kafka_map.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

/* Names longer than a DNS name are nobody's. */
#define HOST_MAX 253

/* Reachable at the container's loophole address on its container port:
 * proxied, direct or mapped (the port table has a listener), or shared (Docker's own listener
 * answers on every 127.x address). */
static bool port_live(const kafka_map_ctx *ctx, const reg_entry *e, const reg_port *p)
{
    if (p->proto != CTR_TCP)
        return false;
    if (p->plan == REG_PORT_SHARED)
        return p->host_port != 0;
    /* Direct ports need no published port: the listener dials the
     * container's own address. */
    return (p->plan == REG_PORT_MAPPED || p->plan == REG_PORT_DIRECT) &&
           (ctx->live == NULL || ctx->live(ctx->live_ud, e->c->id, p->port));
}

static bool served(const reg_entry *e)
{
    return e->has_addr && !e->skipped;
}

static bool same(const char *a, const char *host)
{
    return a && a[0] && strcasecmp(a, host) == 0;
}

/* Whether host (NUL-terminated, lowercase-insensitive, no trailing dot) names e. */
static bool names_entry(const reg_entry *e, const char *host, bool is_ip, uint32_t ip)
{
    const container *c = e->c;
    if (is_ip) {
        if (ip == e->addr)
            return true;
        for (size_t i = 0; i < c->nnets; i++) {
            uint32_t a;
            if (c->nets[i].ip && ip4_parse(c->nets[i].ip, &a) == 0 && a == ip)
                return true;
        }
        return false;
    }
    if (same(c->name, host) || same(c->hostname, host) || same(e->names.service, host) ||
        same(e->names.service_alias, host))
        return true;
    /* Docker's default hostname is the id's first 12 digits. */
    if (strlen(host) >= 12 && strncasecmp(c->id, host, strlen(host)) == 0)
        return true;
    for (size_t i = 0; i < c->nnets; i++)
        for (size_t j = 0; j < c->nets[i].naliases; j++)
            if (same(c->nets[i].aliases[j], host))
                return true;
    for (size_t i = 0; i < e->nowned; i++)
        if (same(e->owned[i], host))
            return true;
    return false;
}

/* The container port of e that (host) port reaches: a live container port
 * equal to port, else a live port published on port; 0 when none. */
static uint16_t entry_port(const kafka_map_ctx *ctx, const reg_entry *e, int32_t port,
                           bool container_ports, bool host_ports)
{
    for (size_t i = 0; container_ports && i < e->nports; i++)
        if (port_live(ctx, e, &e->ports[i]) && e->ports[i].port == port)
            return e->ports[i].port;
    for (size_t i = 0; host_ports && i < e->nports; i++)
        if (port_live(ctx, e, &e->ports[i]) && e->ports[i].host_port == port)
            return e->ports[i].port;
    return 0;
}

static const reg_entry *find_id(const registry *r, const char *id)
{
    for (size_t i = 0; id && i < r->n; i++)
        if (strcmp(r->entries[i]->c->id, id) == 0)
            return r->entries[i];
    return NULL;
}

int kafka_map_broker(const registry *r, const kafka_map_ctx *ctx, const char *host, size_t host_len,
                     int32_t port, uint32_t *addr, uint16_t *new_port)
{
    const reg_entry *self = find_id(r, ctx->entry_id);
    if (self && !served(self))
        self = NULL;
    char h[HOST_MAX + 1];
    while (host_len > 0 && host[host_len - 1] == '.')
        host_len--;
    if (port > 0 && port <= 65535 && host_len > 0 && host_len <= HOST_MAX &&
        !memchr(host, '\0', host_len)) {
        memcpy(h, host, host_len);
        h[host_len] = '\0';
        uint32_t ip = 0;
        bool is_ip = ip4_parse(h, &ip) == 0;
        bool local = strcasecmp(h, "localhost") == 0 || strcmp(h, "::1") == 0 ||
                     strcmp(h, "[::1]") == 0 || (is_ip && ip == 0x7f000001);

        /* Rule 1: the connection's own container first, then any. */
        if (!local) {
            if (self && names_entry(self, h, is_ip, ip)) {
                uint16_t p = entry_port(ctx, self, port, true, true);
                if (p) {
                    *addr = self->addr;
                    *new_port = p;
                    return KAFKA_MAP_CONTAINER;
                }
            }
            for (size_t i = 0; i < r->n; i++) {
                const reg_entry *e = r->entries[i];
                if (e == self || !served(e) || !names_entry(e, h, is_ip, ip))
                    continue;
                uint16_t p = entry_port(ctx, e, port, true, true);
                if (p) {
                    *addr = e->addr;
                    *new_port = p;
                    return KAFKA_MAP_CONTAINER;
                }
            }
        } else {
            /* Rule 2: a broker describing itself by a container port. */
            uint16_t p = self ? entry_port(ctx, self, port, true, false) : 0;
            if (p) {
                *addr = self->addr;
                *new_port = p;
                return KAFKA_MAP_LOCAL;
            }
            /* ...or by a published host port (advertised for host access). */
            p = self ? entry_port(ctx, self, port, false, true) : 0;
            if (p) {
                *addr = self->addr;
                *new_port = p;
                return KAFKA_MAP_PUBLISHED;
            }
            for (size_t i = 0; i < r->n; i++) {
                const reg_entry *e = r->entries[i];
                if (e == self || !served(e))
                    continue;
                p = entry_port(ctx, e, port, false, true);
                if (p) {
                    *addr = e->addr;
                    *new_port = p;
                    return KAFKA_MAP_PUBLISHED;
                }
            }
        }
    }
    /* Rule 3: a single broker can only be the one we are talking to. */
    if (ctx->nodes == 1 && ctx->listen_addr != 0 && ctx->listen_port != 0) {
        *addr = ctx->listen_addr;
        *new_port = ctx->listen_port;
        return KAFKA_MAP_SINGLE;
    }
    return KAFKA_MAP_KEEP;
}
