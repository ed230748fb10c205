/* The DNS server: UDP and TCP on one address, answers from a dns_zone. */
#ifndef LOOPHOLE_DNS_SERVER_H
#define LOOPHOLE_DNS_SERVER_H

#include <uv.h>

#include "dns.h"

typedef struct dns_server dns_server;

/* Parses "127.0.0.1:15353" (or "[::1]:53") into addr. 0 or -EINVAL. */
int dns_parse_listen(const char *s, struct sockaddr_storage *addr);

/* Binds UDP and TCP on addr and serves answers from zone (which the caller
 * keeps updating with dns_zone_set and frees after the server is closed).
 * Returns 0, or a negative libuv error (e.g. UV_EADDRINUSE) with nothing
 * left open. */
int dns_server_start(uv_loop_t *loop, const struct sockaddr *addr, dns_zone *zone,
                     dns_server **out);

/* TCP time limits; 0 in a field takes its default. The daemon uses the
 * defaults; tests shorten them. */
typedef struct dns_server_options {
    /* How long a connection may wait for the first byte of a message: from
     * the connection's start and after each answer (default 10000). */
    unsigned tcp_idle_ms;
    /* How long a message may take to arrive whole, counted from its first
     * byte and not extended by partial reads (default 10000). */
    unsigned tcp_message_ms;
} dns_server_options;

/* dns_server_start with options (NULL: the defaults). */
int dns_server_start_opts(uv_loop_t *loop, const struct sockaddr *addr, dns_zone *zone,
                          const dns_server_options *opts, dns_server **out);
/* The bound address (useful after asking for port 0, which picks one port
 * free for both UDP and TCP). 0 or a negative libuv error. */
int dns_server_address(const dns_server *s, struct sockaddr_storage *addr);
/* Closes every handle (listeners and TCP clients); cb runs once all are
 * closed and the server is freed. */
void dns_server_close(dns_server *s, void (*cb)(void *arg), void *arg);

#endif
