/* The proxies: one listener per published port on the container's own
 * address and original port, forwarding to Docker's mapped host port.
 *
 * TCP: a connection dials upstream at once (nothing waits for client bytes),
 * relays with read/write until the listener's one first-bytes classifier has
 * decided what it is (today Kafka, installed by proxy_set_kafka; without one
 * every connection is plain at its first bytes, either way); Kafka
 * connections stay on read/write with their responses rewritten, others on
 * Linux switch to splice(2) through a pipe per direction (splice_linux.c), driven
 * by uv_poll on the fds. Half-close is propagated both ways; an upstream
 * refusal or reset becomes an RST to the client; memory per connection is
 * bounded (reading stops while the peer's write queue is above the
 * watermark). UDP: one socket on the address, a session with its own upstream
 * socket per client address, idle sessions expire. */
#ifndef LOOPHOLE_PROXY_H
#define LOOPHOLE_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "kafka.h"

/* Reading from one side pauses while the other side's pending writes exceed
 * this many bytes, so a connection never holds much more than
 * 2 * (PROXY_HIGH_WATERMARK + PROXY_READ_SIZE) in user space (a Kafka
 * connection may hold KAFKA_HOLD_MAX more: one incomplete response). */
#define PROXY_READ_SIZE (64 * 1024)
#define PROXY_HIGH_WATERMARK (256 * 1024)

enum { PROXY_TCP = 0, PROXY_UDP = 1 };

typedef struct proxy_stats {
    uint64_t conns_total;
    uint64_t conns_active;    /* UDP: live sessions */
    uint64_t bytes_in;        /* client -> container */
    uint64_t bytes_out;       /* container -> client */
    uint64_t accept_pauses;   /* TCP: times accepting paused on EMFILE/ENFILE */
    uint64_t dropped;         /* UDP: datagrams dropped (session cap, send failures) */
    uint64_t kafka_conns;     /* TCP: connections handled as Kafka */
    uint64_t kafka_rewritten; /* TCP: Kafka responses re-encoded with new broker addresses */
    uint64_t refused;         /* clients refused by the dialer (proxy_dialer: -EPERM) */
    uint64_t capped;          /* new clients turned away at a cap (TCP: connections accepted
                               * and closed at once, checked before the dialer is asked; UDP:
                               * datagrams of new clients dropped, also in dropped) */
    uint64_t idle_closed;     /* TCP: connections closed by the idle timeout */
} proxy_stats;

typedef struct proxy_options {
    unsigned dial_timeout_ms;  /* default 5000 */
    unsigned udp_idle_s;       /* default 60 */
    unsigned udp_max_sessions; /* default 1024 */
    unsigned max_conns;        /* TCP: open connections of this listener (0: no cap) */
    unsigned tcp_idle_s;       /* TCP: close connections idle this long (0: never) */
    bool splice;               /* use the Linux splice path once classified (default true) */
} proxy_options;

/* What every listener of the process shares (one loop, so plain counters):
 * the caps that keep a flood on the proxies from taking the descriptors the
 * daemon's own work needs (Docker, DNS, control, state saves). Each proxy
 * descriptor is counted: a listening socket 1, a TCP connection 2 (client
 * and upstream), 4 more while spliced (two pipes), a UDP session 1. A new
 * TCP connection that would pass max_conns or fd_budget is accepted and
 * closed at once (counted in proxy_stats.capped), a new UDP client dropped;
 * a connection that would pass fd_budget by splicing stays on read/write.
 * Listeners are never refused: they serve containers, and they are few. */
typedef struct proxy_limits {
    uint64_t fd_budget; /* descriptors all proxies may hold together (0: no limit) */
    uint64_t max_conns; /* TCP connections + UDP sessions, all listeners (0: no cap) */
} proxy_limits;

/* The least descriptors kept for the daemon's own work: its 64 control
 * clients, 64 DNS-over-TCP clients, and 64 for Docker, state saves, netns
 * helpers and whatever else. */
#define PROXY_RESERVE_MIN 192
/* The defaults loopholed derives from its descriptor limit (loopholed(8)
 * states them): reserve = nofile / 4, at least PROXY_RESERVE_MIN and at most
 * 2048, for the daemon itself; fd_budget = nofile - reserve; max_conns = fd_budget /
 * 6 (every connection could splice); per port a quarter of that, at least
 * min(64, max_conns); UDP sessions per port as many. nofile 0 (unlimited):
 * no caps. */
typedef struct proxy_caps {
    uint64_t nofile, reserve;
    proxy_limits limits;
    unsigned max_conns_per_port;
    unsigned udp_max_sessions;
} proxy_caps;
void proxy_caps_derive(uint64_t nofile, proxy_caps *out);

/* Installs the process-wide limits (copied; NULL: none) for connections
 * and sessions made from now on. */
void proxy_set_limits(const proxy_limits *lim);
typedef struct proxy_totals {
    uint64_t fds;         /* descriptors the proxies hold now (as counted above) */
    uint64_t conns;       /* TCP connections + UDP sessions open now */
    uint64_t capped;      /* new clients turned away at a cap, since start */
    uint64_t idle_closed; /* connections closed by an idle timeout, since start */
} proxy_totals;
void proxy_get_totals(proxy_totals *t);

typedef struct proxy_listener proxy_listener;

/* Kafka on a TCP listener (see kafka.h). SNIFF: a connection whose first
 * client bytes look like a Kafka request (kafka_sniff) and whose server did
 * not speak first is Kafka; FORCE: every connection is Kafka from its first
 * byte (the loophole.kafka=<ports> label). A Kafka connection stays on
 * read/write: every client byte is tracked (never held), every server byte
 * goes through the response rewriter, which holds at most KAFKA_HOLD_MAX of
 * one incomplete rewritable response (counted in proxy_buffered). When the
 * framing breaks the connection falls back to plain forwarding, logged once. */
enum { PROXY_KAFKA_OFF = 0, PROXY_KAFKA_SNIFF = 1, PROXY_KAFKA_FORCE = 2 };

typedef struct proxy_kafka {
    int mode; /* PROXY_KAFKA_OFF, _SNIFF or _FORCE */
    /* Maps one advertised broker for a connection of listener l, with the
     * contract of kafka_map_fn; nodes is kafka_resp_nodes() of the response
     * (distinct brokers it names). NULL: nothing is rewritten. */
    int (*map)(void *ud, proxy_listener *l, int nodes, int32_t node_id, const char *host,
               size_t host_len, int32_t port, char *new_host, size_t cap, int32_t *new_port);
    /* The first Kafka connection of the listener was seen (may be NULL). */
    void (*detected)(void *ud, proxy_listener *l);
    /* Releases ud when the listener is freed or the hooks are replaced (may be NULL). */
    void (*free_ud)(void *ud);
    void *ud;
} proxy_kafka;

void proxy_options_default(proxy_options *o);

/* Binds proto on listen_addr and forwards to upstream (the socket is made
 * here, then set up as by proxy_listen_fd). Returns 0, or a negative libuv
 * error with nothing left open: UV_EADDRINUSE (someone else holds that
 * address and port), UV_EACCES (a port below 1024 without the privilege),
 * UV_EADDRNOTAVAIL, UV_EINVAL (not an IPv4/IPv6 address, or a bad proto). */
int proxy_listen(uv_loop_t *loop, const proxy_options *opts, int proto,
                 const struct sockaddr *listen_addr, const struct sockaddr *upstream,
                 proxy_listener **out);
/* The same with a socket made elsewhere (e.g. inside a container's network
 * namespace): fd is an IPv4 or IPv6 socket of proto's type (TCP: stream,
 * UDP: datagram) that is bound to its address and port; a TCP socket may or
 * may not listen yet (listen(2) is called here either way, with SOMAXCONN).
 * The listener takes fd over whatever the result: on success proxy_close
 * closes it; on any error it is closed before this returns (except fd < 0:
 * UV_EBADF). Here it is made non-blocking and close-on-exec; no other option
 * is touched. Errors: UV_EINVAL (bad proto or upstream, another socket type,
 * not IP, not bound: port 0), -errno of the failing fcntl, getsockopt,
 * getsockname or listen (UV_EADDRINUSE when another socket listens on that
 * address), or a libuv error (UV_EEXIST: the loop watches fd already). *out
 * is set only on success; proxy_local_addr reports the fd's own address. */
int proxy_listen_fd(uv_loop_t *loop, const proxy_options *opts, int proto, int fd,
                    const struct sockaddr *upstream, proxy_listener **out);
/* Sets the Kafka hooks of a TCP listener for connections accepted from now
 * on (h copied; NULL or mode OFF: no Kafka handling). With Kafka on, the
 * Kafka classifier fills the listener's first-bytes slot (SNIFF: by the first
 * bytes; FORCE: at accept); with it off the slot is emptied. The previous
 * hooks' ud is released; the listener owns h->ud from this call on (also
 * when it is not used). No effect on UDP listeners. */
void proxy_set_kafka(proxy_listener *l, const proxy_kafka *h);
/* Where each new connection goes, when the listener should not always dial
 * one fixed upstream (the reverse direction: 127.0.0.1:PORT then [::1]:PORT,
 * or a loophole name resolved when the connection arrives; a relay listener
 * that accepts only one container's source address). next is called on the
 * loop for every new TCP connection and UDP session with attempt 0, and, for
 * TCP only, again with attempt 1, 2, ... after each upstream refusal
 * (ECONNREFUSED); peer is the client's address. It returns 0 with *out set
 * (an IPv4 or IPv6 address), -ENOENT when there is nothing (more) to try
 * (TCP: the client gets a reset; UDP: the datagram is dropped and counted),
 * or -EPERM to refuse this client (accepted and closed at once, or the
 * datagram dropped; counted in proxy_stats.refused, a datagram also in
 * dropped); any other result, or an address that is not IPv4 or IPv6, is
 * taken as -ENOENT. A TCP client refused with -EPERM is no connection
 * (conns_total unchanged); one reset for -ENOENT is counted, as an upstream
 * refusal is. The upstream may be of either family, whatever the listener's.
 * The client's early bytes wait for whichever attempt connects; the dial
 * timeout runs per attempt. The upstream given to proxy_listen is then
 * unused. NULL d (or d->next NULL) restores the fixed upstream; connections
 * already open keep theirs. d is copied; free_ud (may be NULL) releases d->ud
 * when the listener is freed or the dialer is replaced (at once when d->next
 * is NULL). */
typedef struct proxy_dialer {
    int (*next)(void *ud, unsigned attempt, const struct sockaddr *peer,
                struct sockaddr_storage *out);
    void (*free_ud)(void *ud);
    void *ud;
} proxy_dialer;
void proxy_set_dialer(proxy_listener *l, const proxy_dialer *d);

/* The web feature's two kinds of TCP listener (issue 17).
 *
 * TLS termination: every connection accepted from now on speaks TLS to the
 * client (the handshake and records are handled here, TLS 1.2 and 1.3) and
 * plaintext to the upstream (dialled at accept as always; the plaintext waits
 * for the connect), on read/write, never splice. ctx_for picks the server
 * context during the handshake (the ClientHello's SNI name, NULL when the
 * client sent none): it returns a context that the handler takes its own
 * reference on (its certificate, key and ALPN choice), or NULL: the
 * handshake fails with an unrecognized_name alert. A client whose first byte
 * is not a TLS handshake record (plain HTTP to 443) gets a short
 * "400 this port speaks HTTPS" answer and is closed; a failed or stalled
 * handshake closes that connection; both are logged at most once a minute
 * per listener. d is copied; free_ud (may be NULL) releases ud when the
 * listener is freed or the hooks are replaced. NULL tls (or ctx_for NULL):
 * connections are plain again. No effect on UDP listeners. */
struct ssl_ctx_st;
typedef struct proxy_tls {
    struct ssl_ctx_st *(*ctx_for)(void *ud, proxy_listener *l, const char *sni);
    void (*free_ud)(void *ud);
    void *ud;
} proxy_tls;
void proxy_set_tls(proxy_listener *l, const proxy_tls *tls);

/* Redirect to HTTPS: every connection accepted from now on is answered here
 * and never dialled upstream: the request head is read (at most 8 KiB, within
 * a deadline), and the answer is "308 Permanent Redirect" to
 * https://<the request's Host without its port><the request target>
 * (a request without a usable Host gets 400). false: forwarded again. No
 * effect on UDP listeners. */
void proxy_set_redirect(proxy_listener *l, bool on);

/* Changes where new connections go (a container restarted with another host
 * port); open connections keep their upstream. */
void proxy_set_upstream(proxy_listener *l, const struct sockaddr *upstream);
/* Closes the listener and every connection or session it owns, promptly;
 * cb (may be NULL) runs once everything is closed and freed. */
void proxy_close(proxy_listener *l, void (*cb)(void *arg), void *arg);
void proxy_get_stats(const proxy_listener *l, proxy_stats *st);
/* Bytes currently held in user space by this listener's connections (tests
 * assert the memory bound with it). */
size_t proxy_buffered(const proxy_listener *l);

/* The address actually bound (useful after binding port 0). */
int proxy_local_addr(const proxy_listener *l, struct sockaddr_storage *out);

/* Process-wide: connections currently in splice mode (tests, status). */
uint64_t proxy_spliced_connections(void);
/* Process-wide: connections ever switched to splice. */
uint64_t proxy_spliced_total(void);

#endif
