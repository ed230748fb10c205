/* The registry: the one truth about containers, their names and their
 * addresses. The Docker client reports what it saw (sync, update, gone); the
 * registry decides (eligibility, leases, name owners, conflicts) and tells the
 * I/O modules what changed through reg_view, so a resync after a Docker
 * restart runs the same code as a single event. No libuv here: the daemon's
 * main module applies the result (DNS zone, aliases, state file, proxies). */
#ifndef LOOPHOLE_REGISTRY_H
#define LOOPHOLE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "container.h"
#include "names.h"

struct proxy_listener;

enum { REG_PORT_NONE = 0, REG_PORT_PROXY, REG_PORT_SHARED };

/* One exposed port of a container, once per (port, proto): Docker lists a port
 * published on 0.0.0.0 and :: twice; the IPv4 binding is preferred. */
typedef struct reg_port {
    uint16_t port;      /* container port */
    uint8_t proto;      /* CTR_TCP or CTR_UDP (SCTP ports are listed, never proxied) */
    uint16_t host_port; /* 0 when not published */
    char host_ip[46];   /* the binding used: "0.0.0.0", "::", "127.0.0.1", ... */
    bool ipv6_only;     /* only an IPv6 binding exists */
    int mode;           /* REG_PORT_NONE, _PROXY or _SHARED (set by the port reconciler) */
    bool kafka;
    struct proxy_listener *listener; /* owned by the daemon's port reconciler */
    uint32_t listener_addr;          /* the address it listens on */
    char problem[160];               /* why a published port has no listener */
} reg_port;

typedef struct reg_entry {
    container *c;
    names_result names;
    char *lease_key; /* the key its lease is under (names.lease_key, made unique) */
    bool has_addr;
    uint32_t addr; /* host order, when has_addr */
    char **owned;  /* names it holds (names[] it won, plus the service alias) */
    size_t nowned;
    char **conflicts; /* names it wanted that another container holds */
    size_t nconflicts;
    const char *skipped; /* why it gets no address: NULL when it is served */
    char *skipped_buf;
    reg_port *ports; /* every exposed port, deduplicated */
    size_t nports;
    unsigned moves;  /* address moves because another program held a port */
    int64_t seen_at; /* Unix ms the registry first saw it (for ordering) */
    bool logged_exhausted;
} reg_entry;

typedef struct registry {
    char *domain;
    alloc_pool pool;
    reg_entry **entries;
    size_t n;
    /* name -> owning container id, kept across recomputes so a name stays
     * with its holder while that holder runs. */
    char **owner_names;
    char **owner_ids;
    size_t nowners;
    unsigned exhausted; /* containers without an address because the pool is full */
    /* Listeners of ports or containers that went away, for the daemon to
     * close (the registry knows no libuv). */
    struct proxy_listener **dropped;
    size_t ndropped;
} registry;

void reg_init(registry *r, const char *domain, uint32_t first, uint32_t last);
void reg_free(registry *r);

/* Replaces everything with the given running containers (takes ownership of
 * each). Containers not in the list are gone. */
void reg_sync(registry *r, container **cs, size_t n, int64_t now);
/* Adds or replaces one container (takes ownership). */
void reg_update(registry *r, container *c, int64_t now);
/* Removes a container by id; returns whether it was known. */
bool reg_remove(registry *r, const char *id, int64_t now);

/* Looks an entry up by full id, id prefix (>= 12 hex digits), container name
 * or any DNS name it holds (with or without the domain). */
reg_entry *reg_find(registry *r, const char *key);

/* The DNS records the zone should hold: primary names first (so PTR points to
 * them). Returns a malloc'd array of n {name, addr}; names point into the
 * registry and stay valid until the next mutation. */
typedef struct reg_record {
    const char *name;
    uint32_t addr;
} reg_record;
reg_record *reg_records(const registry *r, size_t *n);

/* The addresses in use by served containers (sorted, malloc'd). */
uint32_t *reg_addresses(const registry *r, size_t *n);

/* Move a served container to another address (a port on its address is held
 * by another program). Returns 0 or -ENOSPC. */
int reg_move(registry *r, reg_entry *e, int64_t now);

#endif
