/* Where the brokers a Kafka response advertises go: the broker mapping
 * over the registry, for the proxy's Kafka rewriter. Pure (no libuv, no
 * logging, no globals): the port reconciler wraps it in proxy hooks.
 *
 * For an advertised broker (host, port), in order:
 *   1. host names a known served container (container name, hostname,
 *      network alias, compose service name, DNS name, container IP or its
 *      loophole address) and port is one of its TCP container ports or
 *      published host ports with a live loophole listener (or a shared
 *      port; ctx->live says which listeners are live): that container's
 *      loophole address and container port. The
 *      container the connection goes to wins when several match (replicas);
 *   2. host is localhost, 127.0.0.1 or ::1 (a broker describing itself) and
 *      port is a container port of the container the connection goes to:
 *      that container's address and that port; or port is some container's
 *      published host port: that container's address and container port;
 *   3. the response names only one broker: the connection's own listen
 *      address and port;
 *   4. otherwise it is kept. */
#ifndef LOOPHOLE_KAFKA_MAP_H
#define LOOPHOLE_KAFKA_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "registry.h"

enum {
    KAFKA_MAP_KEEP = 0,      /* rule 4 */
    KAFKA_MAP_CONTAINER = 1, /* rule 1 */
    KAFKA_MAP_LOCAL = 2,     /* rule 2, a port of this connection's container */
    KAFKA_MAP_PUBLISHED = 3, /* rule 2, some container's published host port */
    KAFKA_MAP_SINGLE = 4,    /* rule 3 */
};

typedef struct kafka_map_ctx {
    const char *entry_id; /* full id of the container the connection goes to (NULL: none) */
    uint32_t listen_addr; /* the connection's listen address, host order */
    uint16_t listen_port;
    int nodes; /* distinct brokers the response names (kafka_resp_nodes) */
    /* Whether the REG_PORT_PROXY port of container id has a listener (the
     * port table knows); NULL: every such port counts as live. */
    bool (*live)(void *ud, const char *id, uint16_t port);
    void *live_ud;
} kafka_map_ctx;

/* Maps one broker; host is not NUL-terminated (any length). Returns the rule
 * that applied (KAFKA_MAP_*), with *addr (host order) and *port set unless it
 * is KAFKA_MAP_KEEP. */
int kafka_map_broker(const registry *r, const kafka_map_ctx *ctx, const char *host, size_t host_len,
                     int32_t port, uint32_t *addr, uint16_t *new_port);

#endif
