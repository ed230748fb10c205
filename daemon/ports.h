/* The port table: every listener the daemon holds, keyed by (container,
 * role, port, proto), with its mode, target, problem, Kafka flag and
 * counters. The registry's plan says which listeners should exist
 * (ports_apply takes it as a list of port_want); the table opens, retargets
 * and closes listeners to match and reports back what it could not do (a port
 * another program holds) for the registry to decide on. Nothing here calls up:
 * what the table needs from its owner (the Kafka broker mapping, news of
 * Kafka seen on a port) comes through the callbacks given to ports_new.
 *
 * How a listener is made is the backend's business: ports_proxy_backend()
 * makes real proxy listeners (proxy.h) on the loop; the unit tests use a fake
 * one to test the policy around it. */
#ifndef LOOPHOLE_PORTS_H
#define LOOPHOLE_PORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "proxy.h"

/* What a listener is for. Forward: the host reaches a container's port on
 * the container's loophole address. Host and host6: the reverse direction, a
 * socket inside the container's network namespace on 127.0.0.1:port and
 * [::1]:port (always given as a want's fd; key.port is the container port).
 * Relay: the reverse direction through a sidecar on an engine the daemon
 * cannot enter: a socket on the container network's gateway address, on a
 * port the kernel picked (given as fd), that the sidecar's socat dials.
 * (Web, :80/:443, comes with a later issue.) Only forward and web listeners
 * are bound by the table itself. */
enum {
    PORT_ROLE_FORWARD = 0,
    PORT_ROLE_HOST = 1,
    PORT_ROLE_WEB = 2,
    PORT_ROLE_HOST6 = 3,
    PORT_ROLE_RELAY = 4,
};

typedef struct port_key {
    char id[65];   /* the container's full id */
    uint8_t role;  /* PORT_ROLE_* */
    uint8_t proto; /* CTR_TCP or CTR_UDP */
    uint16_t port; /* the container port */
} port_key;

/* One line of the plan. */
typedef struct port_want {
    port_key key;
    const char *name; /* the container's name, for log lines */
    uint32_t addr;    /* listen address (host order), with key.port */
    struct sockaddr_storage target;
    int kafka; /* PROXY_KAFKA_OFF, _SNIFF or _FORCE (TCP) */
    /* -1: the table binds addr:key.port itself (forward, web) or keeps the
     * listener it has (host, host6, relay); else a socket bound elsewhere
     * (e.g. inside a container's network namespace) that the table takes
     * over, also when it fails. A forward or web entry that already listens
     * at that address closes it unused; a host, host6 or relay entry closes
     * its listener and listens on the new socket instead (its maker makes
     * one only when the old one is gone: a restarted container has a new
     * namespace under the same id). */
    int fd;
    /* Roles the table does not bind itself (host, host6, relay) with fd -1
     * and no listener yet: the entry stays, without a listener, with this
     * problem ("" or NULL: none, e.g. while the socket is being made). */
    const char *problem;
    /* Each connection asks ports_callbacks.dial where to go (and target is
     * unused, may be left zero); false: every connection goes to target.
     * Changing it on a listener installs or removes the dialer. */
    bool dial;
} port_want;

typedef struct port_entry {
    port_key key;
    char name[128];
    uint32_t addr;
    struct sockaddr_storage target;
    int kafka;         /* the Kafka mode the listener was made with */
    bool dial;         /* connections ask ports_callbacks.dial */
    void *listener;    /* the backend's handle; NULL while not listening */
    char problem[160]; /* why it has no listener (other than a held port) */
    bool wanted;       /* scratch for ports_apply */
} port_entry;

/* A want the table could not satisfy: err is a libuv error; UV_EADDRINUSE
 * means another program holds addr:key.port. where is "127.0.0.2:5432/tcp". */
typedef struct port_result {
    port_key key;
    uint32_t addr;
    int err;
    char where[40];
} port_result;

typedef struct ports_backend {
    /* Opens a listener for e (e->addr:e->key.port, or fd when >= 0, which
     * it takes over) with the Kafka hooks kafka (NULL: none; the backend
     * owns kafka->ud from this call on, also when it fails). Returns 0 with
     * *handle set, or a negative libuv error. */
    int (*listen)(void *ud, const port_entry *e, int fd, const proxy_kafka *kafka, void **handle);
    void (*retarget)(void *ud, void *handle, const struct sockaddr *target);
    void (*close)(void *ud, void *handle);
    void (*stats)(void *ud, void *handle, proxy_stats *st);
    void (*free_ud)(void *ud); /* releases ud with the table (may be NULL) */
    void *ud;
    /* Installs a dialer on a listener (proxy_set_dialer's contract: the
     * backend owns d->ud from this call on). */
    void (*set_dialer)(void *ud, void *handle, const proxy_dialer *d);
    /* The address the listener is bound to. 0 or a negative errno. */
    int (*local_addr)(void *ud, void *handle, struct sockaddr_storage *out);
} ports_backend;

typedef struct ports_table ports_table;

typedef struct ports_callbacks {
    void *ud;
    /* Maps an advertised Kafka broker for a connection on the listener of k
     * (listening on listen_addr:listen_port); the contract of kafka_map_fn:
     * returns 1 with new_host/new_port set, or 0 to keep it. May be NULL. */
    int (*kafka_map)(void *ud, const port_key *k, uint32_t listen_addr, uint16_t listen_port,
                     int nodes, const char *host, size_t host_len, int32_t port, uint32_t *addr,
                     uint16_t *new_port);
    /* The listener of k saw its first Kafka connection (once per listener;
     * the registry keeps the flag). May be NULL. */
    void (*kafka_seen)(void *ud, const port_key *k);
    /* Where a connection on the listener of k (a want with dial set) goes:
     * proxy_dialer's next contract (0 with *out, -ENOENT, -EPERM). May be
     * NULL: such connections are reset. */
    int (*dial)(void *ud, const port_key *k, unsigned attempt, const struct sockaddr *peer,
                struct sockaddr_storage *out);
} ports_callbacks;

/* be and cbs are copied. */
ports_table *ports_new(const ports_backend *be, const ports_callbacks *cbs);
/* Closes every listener and frees the table (the backend's close runs for
 * each listener; the proxy backend finishes closing on the loop). */
void ports_free(ports_table *t);

/* Makes the table match the plan: entries not wanted are closed and dropped,
 * entries whose address changed are closed and opened again, retargeted when
 * only the target changed, and every want without a listener is tried.
 * Returns the wants that failed in a malloc'd array (*results, *nresults;
 * NULL and 0 when all succeeded); a host, host6 or relay want without an fd
 * is no failure (its entry carries want.problem). */
void ports_apply(ports_table *t, const port_want *wants, size_t n, port_result **results,
                 size_t *nresults);
/* Closes every listener (shutdown); entries stay, without listeners. */
void ports_close_all(ports_table *t);

const port_entry *ports_find(const ports_table *t, const char *id, int role, uint16_t port,
                             int proto);
/* Counters of an entry's listener (zeros without one). */
void ports_stats(const ports_table *t, const port_entry *e, proxy_stats *st);
/* The address an entry's listener is bound to (a relay's kernel-chosen
 * port). 0, -ENOENT without a listener, or the backend's error. */
int ports_local_addr(const ports_table *t, const port_entry *e, struct sockaddr_storage *out);
/* Listeners open, and their active connections. */
void ports_totals(const ports_table *t, size_t *listeners, uint64_t *active);

/* The real backend: proxy listeners on loop with opts (kept by pointer, so
 * it must outlive the table). be->ud is allocated; ports_free releases it. */
void ports_proxy_backend(uv_loop_t *loop, const proxy_options *opts, ports_backend *be);

#endif
