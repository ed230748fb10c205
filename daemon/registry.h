/* The registry: the one truth about containers, their names, their addresses
 * and the ports they want served. The Docker client reports what it saw
 * (sync, update, gone); the registry decides (eligibility, leases, name
 * owners, conflicts, which ports get a listener and where it forwards) and
 * the daemon applies that plan through the I/O modules (aliases, port table,
 * DNS zone, state file, events), so a resync after a Docker restart runs the
 * same code as a single event. What the I/O modules could not do (an address
 * held by another program, Kafka seen on a port) comes back through
 * reg_port_held and reg_port_kafka_seen, and the registry decides again.
 * No libuv and no I/O objects here. */
#ifndef LOOPHOLE_REGISTRY_H
#define LOOPHOLE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "container.h"
#include "labels.h"
#include "names.h"

struct sockaddr_storage;

/* What the registry wants for a port: nothing (not served, SCTP, an
 * unusable binding, or an exposed-only port waiting for its network's
 * probe), a loophole listener on the container's address that forwards to
 * Docker's mapped port (mapped) or to the container's own address (direct),
 * nothing because Docker's own listener already answers there (shared), or
 * nothing because no path reaches it (unreachable: the problem says how to
 * fix it). */
enum {
    REG_PORT_NONE = 0,
    REG_PORT_MAPPED,
    REG_PORT_SHARED,
    REG_PORT_DIRECT,
    REG_PORT_UNREACHABLE,
    /* Docker publishes it on a loopback address of its own (-p
     * 127.0.0.16:5432:5432): that binding answers, no loophole listener. */
    REG_PORT_BOUND
};
/* The old name of REG_PORT_MAPPED, for the transition. */
#define REG_PORT_PROXY REG_PORT_MAPPED

/* --forward: direct when the container's network is reachable, else mapped
 * (auto); always direct; always mapped (the behaviour before direct). */
enum { REG_FORWARD_AUTO = 0, REG_FORWARD_DIRECT, REG_FORWARD_MAPPED };

/* Whether the daemon reaches a container network (by name): not probed yet,
 * a connect answered (refused counts), or it timed out or was unreachable. */
enum { REG_REACH_UNKNOWN = 0, REG_REACH_OK, REG_REACH_UNREACHABLE };

/* How an entry got its address: its own lease (per container), the lease
 * of its compose project (shared by the project's containers in project
 * mode), or an address it publishes on itself (bound). */
enum { REG_ADDR_CONTAINER = 0, REG_ADDR_PROJECT, REG_ADDR_BOUND };

/* --address-per: one address per container (default) or per compose project. */
enum { REG_ADDRESS_PER_CONTAINER = 0, REG_ADDRESS_PER_PROJECT };

/* Lease keys of named leases are this prefix and the name; container keys
 * ("compose:", "name:", "id:", "project:") never start with it. */
#define REG_LEASE_KEY_PREFIX "lease:"

/* Network names longer than this are never used for direct forwarding. */
#define REG_NETWORK_MAX 128

/* How many addresses a container may walk in one apply when other programs
 * hold its ports. */
#define REG_MAX_MOVES 8
/* How long an address a container moved away from stays out of the pool. */
#define REG_BLOCK_MS (10 * 60 * 1000)

/* One exposed port of a container, once per (port, proto): Docker lists a port
 * published on 0.0.0.0 and :: twice; the IPv4 binding is preferred. The
 * ports of the loophole.ports label are added as exposed ports. */
typedef struct reg_port {
    uint16_t port;      /* container port */
    uint8_t proto;      /* CTR_TCP or CTR_UDP (SCTP ports are listed, never proxied) */
    uint16_t host_port; /* 0 when not published */
    char host_ip[46];   /* the binding used: "0.0.0.0", "::", "127.0.0.1", ... */
    bool ipv6_only;     /* only an IPv6 binding exists */
    bool labelled;      /* named by the loophole.ports label */
    int plan;           /* REG_PORT_* */
    /* For REG_PORT_DIRECT: the network used and the container's IPv4
     * address on it ("" otherwise). */
    char network[REG_NETWORK_MAX];
    char target_ip[16];
    int kafka_mode; /* LABEL_KAFKA_* from the loophole.kafka label (TCP) */
    bool kafka;     /* carries Kafka: forced by the label or seen by the proxy */
    bool held;      /* problem says another program holds it (cleared each apply) */
    /* Another container sharing the address has this port (its problem
     * says which); kept to log the clash once. */
    bool clashed;
    /* Why a port is not served, or what is wrong with how it is (a direct
     * port whose probe failed, a loophole.network naming another network);
     * "" when nothing is. */
    char problem[240];
} reg_port;

/* Where a host port came from: the container's loophole.host-ports label or
 * a run-time exposure (loophole expose, the control API). */
enum { REG_HP_LABEL = 0, REG_HP_API = 1 };

/* One host port a running container wants: its localhost:spec.port reaches
 * spec's target. An entry with a problem is not to be served (the problem
 * says why). */
typedef struct reg_hostport {
    label_hostport spec;
    int source;        /* REG_HP_LABEL or REG_HP_API */
    char problem[160]; /* "" when it is to be served */
} reg_hostport;

/* A run-time exposure, kept under a lease key (names.lease_key) rather than a
 * container id, so it outlives restarts and compose recreations. */
typedef struct reg_exposure {
    char *key;
    label_hostport spec;
} reg_exposure;

/* A named lease (loophole lease add): an address of the pool for another
 * tool, with a DNS name, never reclaimed. */
typedef struct reg_lease {
    char *name; /* sanitised as one DNS label */
    char *dns;  /* "<name>.<domain>" */
    uint32_t addr;
    int64_t created_at; /* Unix ms */
} reg_lease;

typedef struct reg_entry {
    container *c;
    names_result names;
    /* The key its lease is under: names.lease_key (made unique), or
     * names.project_key in project mode (shared), or names.lease_key
     * without any lease when bound. */
    char *lease_key;
    int addr_kind; /* REG_ADDR_*, decided at every recompute */
    bool has_addr;
    uint32_t addr; /* host order, when has_addr */
    /* Every loopback address (not 127.0.0.1) it publishes on while it
     * runs, served or not, in port order: the first is the one a bound
     * entry (REG_ADDR_BOUND) has as addr. */
    uint32_t *bound_ips;
    size_t nbound;
    char **owned; /* names it holds (names[] it won, plus the service alias) */
    size_t nowned;
    char **conflicts; /* names it wanted that another container holds */
    size_t nconflicts;
    const char *skipped; /* why it gets no address: NULL when it is served (static text) */
    reg_port *ports;     /* every exposed port, deduplicated */
    size_t nports;
    unsigned moves;       /* address moves because another program held a port */
    unsigned apply_moves; /* moves in the current apply (reg_apply_begin resets) */
    unsigned moved_round; /* the decide round of the last move */
    /* Used its moves (or found no free address) while a port stayed held: it
     * stays where it is, and later applies only retry there (no walking the
     * pool, no cutting its served ports' connections, one log line), until an
     * apply finds none of its ports held. */
    bool settled;
    unsigned settled_moves;
    int64_t seen_at; /* Unix ms the registry first saw it (for ordering) */
    bool logged_exhausted;
    /* The host ports it wants (the reverse direction): for every running
     * entry that is not disabled by loophole.enable, whether or not it has
     * an address. Label entries first, in the label's order, then the
     * exposures of its lease key in the order they were made. Recomputed at
     * every change of the container or of the exposures. */
    reg_hostport *hostports;
    size_t nhostports;
    /* A problem with the label as a whole (bad entries, a label the image
     * carries, image labels unknown); "" when none. */
    char hostports_problem[200];
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
    /* Whether a port published on a wildcard address with the container's
     * own port number is REG_PORT_SHARED: true on Linux, where Docker's
     * listener answers on every 127.x address (reg_init sets it). */
    bool share_wildcard;
    /* --serve: whether a port a container exposes but does not publish
     * makes it eligible and is served (true by default, reg_init). The
     * loophole.ports label counts either way. */
    bool serve_exposed;
    int forward; /* --forward: REG_FORWARD_* (AUTO by default) */
    /* What reg_set_reachability was told, per network name. */
    struct reg_reach {
        char network[REG_NETWORK_MAX];
        int state;
    } * reach;
    size_t nreach;
    unsigned round;   /* decide round counter (reg_decide_round) */
    bool final_round; /* the current round moves nothing */
    /* Addresses alloc_move blocked, and when (for reg_apply_begin). */
    struct reg_block {
        uint32_t addr;
        int64_t at;
    } * blocks;
    size_t nblocks;
    /* Run-time exposures, in the order they were made. */
    reg_exposure *exposures;
    size_t nexposures;
    int address_per; /* --address-per: REG_ADDRESS_PER_* (container by default) */
    /* Named leases, in the order they were made. */
    reg_lease *leases;
    size_t nleases;
} registry;

void reg_init(registry *r, const char *domain, uint32_t first, uint32_t last);
void reg_free(registry *r);

/* Replaces everything with the given running containers (takes ownership of
 * each). Containers not in the list are gone. Containers labelled
 * loophole.sidecar (the daemon's own relays) are ignored and freed, here and
 * in reg_update. */
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

/* The addresses in use by served containers (sorted, without duplicates,
 * malloc'd). */
uint32_t *reg_addresses(const registry *r, size_t *n);
/* The loopback aliases the machine should have: reg_addresses and every
 * named lease's (sorted, without duplicates, malloc'd). */
uint32_t *reg_alias_addresses(const registry *r, size_t *n);
/* The aliases that stay when the daemon stops, so their holders keep
 * working across a restart: named leases' and bound containers' (sorted,
 * without duplicates, malloc'd). */
uint32_t *reg_kept_addresses(const registry *r, size_t *n);

/* ---- Named leases (other tools) ---- */

/* Leases a tool for name (sanitised like a container name, then
 * "<name>.<domain>"): want 0 takes the lowest free address, else exactly
 * want. An existing lease of that name is returned as it is (*created
 * false) when want is 0 or its address. Returns 0 with *out (valid until
 * the next mutation); else err gets one sentence and:
 *   -EINVAL     the name has no valid character, is "ns", or is too long
 *   -EDOM       want is outside the pool or reserved
 *   -EEXIST     the name is leased already on another address
 *   -EBUSY      a running container derives the name (its container name,
 *               compose replica, service or project name)
 *   -EADDRINUSE want is held by another lease or a running container
 *   -ENOSPC     no address is free
 * Names a container claims through its loophole.names label, or derives
 * later, go to the lease (a conflict on the container). */
int reg_lease_add(registry *r, const char *name, uint32_t want, int64_t now, const reg_lease **out,
                  bool *created, char *err, size_t errlen);
/* Ends the lease of name (as given or sanitised, with or without the
 * domain). Returns 0 with *addr (the address it had), or -ENOENT. */
int reg_lease_remove(registry *r, const char *name, int64_t now, uint32_t *addr);
/* The lease of name (as reg_lease_remove takes it), or NULL. */
const reg_lease *reg_lease_find(const registry *r, const char *name);
/* Every named lease, in the order they were made. */
const reg_lease *reg_leases(const registry *r, size_t *n);
/* Restores a lease from the state file; one with a bad name, an address
 * outside the pool or reserved, or a clash with a known name or address
 * is dropped (-EINVAL). */
int reg_restore_lease(registry *r, const char *name, uint32_t addr, int64_t created_at);

/* Whether an entry is served (has an address and is not skipped). */
bool reg_served(const reg_entry *e);

/* Where connections to a port go: for REG_PORT_DIRECT the container's own
 * address and port (target_ip:port); else Docker's mapped port, on loopback
 * for a wildcard binding (::1 when only an IPv6 binding exists). 0, or
 * -EINVAL for an address that is no IP address. */
int reg_port_target(const reg_port *p, struct sockaddr_storage *out);

/* ---- Reachability of container networks ---- */

/* Records what a probe of network found (REG_REACH_*; UNKNOWN forgets it,
 * so the network is probed again) and plans every container's ports again.
 * Returns whether any port's plan, target or problem changed (then the
 * daemon applies). */
bool reg_set_reachability(registry *r, const char *network, int state);
/* What is known of network (REG_REACH_UNKNOWN when nothing). */
int reg_reachability(const registry *r, const char *network);

/* One probe the daemon should make: a TCP connect to ip:port, a container's
 * address on network. */
typedef struct reg_probe_want {
    char network[REG_NETWORK_MAX];
    char ip[16];
    uint16_t port;
    uint8_t proto; /* CTR_TCP */
} reg_probe_want;
/* A probe target per network on which a served container has an IPv4
 * address, whatever the network's state: that container's first TCP port
 * (or port 9 when it has none: a refused connect counts as reachable). The
 * prober probes networks whose state is unknown and keeps the others'
 * targets current for its re-probes (a target that went away would make a
 * working network look unreachable). None with --forward mapped (nothing
 * would use the answer). *out is malloc'd (NULL when none); returns how
 * many. */
size_t reg_probe_wants(const registry *r, reg_probe_want **out);

/* ---- The reverse direction: host ports ---- */

/* Run-time exposures kept per lease key. */
#define REG_EXPOSURES_MAX 64

/* Adds a run-time exposure for e's lease key (names.lease_key). Returns 0;
 * -EEXIST when spec's (CPORT, proto) is taken by one of e's label entries or
 * by another exposure of the key; -EINVAL when e has no lease key, spec is no
 * TCP/UDP port, or the key has REG_EXPOSURES_MAX already. err (may be NULL)
 * gets one sentence on failure. e's host ports are recomputed. */
int reg_expose(registry *r, reg_entry *e, const label_hostport *spec, char *err, size_t errlen);
/* Removes the exposure of e's lease key on (port, proto). Returns 0,
 * -ENOENT when there is none, or -EPERM when that CPORT is one of e's label
 * entries (only recreating the container changes a label). */
int reg_unexpose(registry *r, reg_entry *e, uint16_t port, uint8_t proto);
/* Every exposure (for the state file); valid until the next mutation. */
const reg_exposure *reg_exposures(const registry *r, size_t *n);
/* Restores an exposure read from the state file; one with the same key and
 * (CPORT, proto) as a known one, or no TCP/UDP port, is ignored. */
void reg_restore_exposure(registry *r, const char *key, const label_hostport *spec);
/* The address of the served container owning DNS name name (any case, with
 * or without the domain, one trailing dot ignored): 0 with *addr (host
 * order), or -ENOENT. For the per-connection dialer of name targets. */
int reg_resolve_name(const registry *r, const char *name, uint32_t *addr);

/* ---- Decisions on what the I/O modules report ---- */

/* Starts an apply: per-apply move counts and "held" problems are reset (the
 * port table tries every port again), and addresses blocked by a move more
 * than REG_BLOCK_MS ago are usable again (the program that held a port there
 * may be gone; without this the pool would shrink by one per move, for good). */
void reg_apply_begin(registry *r, int64_t now);
/* Ends an apply: a settled entry none of whose ports is held any more may
 * move again the next time. */
void reg_apply_end(registry *r);
/* Starts one round of deciding on a port table report; in the final round
 * nothing moves (held ports only get their problem). */
void reg_decide_round(registry *r, bool final);
/* A port of container id could not be bound on its address because another
 * program holds it (where: "127.0.0.2:5432/tcp"). The registry moves the
 * container to the next free address, once per round, unless it has moved
 * REG_MAX_MOVES times in this apply or no address is free; then the port
 * gets a problem. A port that is not published never moves the container
 * (it is one of possibly many exposed ports, and a program holding it on
 * the wildcard holds it on every address): it only gets the problem.
 * Returns true when the container moved. */
bool reg_port_held(registry *r, const char *id, uint16_t port, uint8_t proto, const char *where,
                   int64_t now);
/* A port of container id could not be bound on its address because another
 * program listens on the wildcard (*:port), so it fails on every address:
 * the port gets a problem naming the holder (holder: e.g. "pid 123
 * (python3)", or NULL when unknown) and the container never moves for it.
 * Returns whether the port is known. */
bool reg_port_held_everywhere(registry *r, const char *id, uint16_t port, uint8_t proto,
                              const char *holder);
/* The proxy saw Kafka on a TCP port. Returns true when the flag changed. */
bool reg_port_kafka_seen(registry *r, const char *id, uint16_t port);

#endif
