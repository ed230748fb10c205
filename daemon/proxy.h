/* The proxies: one listener per published port on the container's own
 * address and original port, forwarding to Docker's mapped host port.
 *
 * TCP: a connection dials upstream at once (nothing waits for client bytes),
 * relays with read/write until its first bytes are classified (Kafka through
 * proxy_set_kafka, anything else through proxy_classifier); Kafka connections
 * stay on read/write with their responses rewritten, others on Linux switch
 * to splice(2) through a pipe per direction (splice_linux.c), driven
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
} proxy_stats;

/* Classification of a TCP connection by its first bytes. Bytes are forwarded
 * while classification is pending (a detector never delays traffic); once a
 * connection is PLAIN it may switch to splice, KAFKA stays on read/write. */
enum proxy_class { PROXY_CLASS_NEED_MORE = 0, PROXY_CLASS_PLAIN = 1, PROXY_CLASS_KAFKA = 2 };

struct proxy_classifier {
    void *arg;
    /* Called with each chunk of client bytes, in order, until it returns
     * something other than PROXY_CLASS_NEED_MORE. *state is a per-connection
     * slot (NULL at first) for the classifier's own use. Connections still
     * undecided after 64 KiB of client bytes become PLAIN. */
    int (*client_bytes)(void *arg, void **state, const char *data, size_t len);
    /* Same for server bytes (server-first protocols); NULL: server bytes do
     * not decide anything. */
    int (*server_bytes)(void *arg, void **state, const char *data, size_t len);
    /* Releases *state when the connection ends (may be NULL). */
    void (*free_state)(void *arg, void *state);
};
typedef struct proxy_classifier proxy_classifier;

typedef struct proxy_options {
    unsigned dial_timeout_ms;  /* default 5000 */
    unsigned udp_idle_s;       /* default 60 */
    unsigned udp_max_sessions; /* default 1024 */
    bool splice;               /* use the Linux splice path once classified (default true) */
    /* Classification hook (NULL: every connection is plain and may switch to
     * splice after the first client bytes, or at once for server-first
     * protocols once the server spoke). Not used by listeners with Kafka
     * hooks (proxy_set_kafka), whose Kafka detection takes its place. */
    const struct proxy_classifier *classifier;
} proxy_options;

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

/* Binds proto on listen_addr and forwards to upstream. Returns 0, or a
 * negative libuv error with nothing left open: UV_EADDRINUSE (someone else
 * holds that address and port), UV_EACCES (a port below 1024 without the
 * privilege), UV_EADDRNOTAVAIL. */
int proxy_listen(uv_loop_t *loop, const proxy_options *opts, int proto,
                 const struct sockaddr *listen_addr, const struct sockaddr *upstream,
                 proxy_listener **out);
/* Sets the Kafka hooks of a TCP listener for connections accepted from now
 * on (h copied; NULL or mode OFF: no Kafka handling, the options' classifier
 * applies). With Kafka on, the Kafka detection replaces opts.classifier. The
 * previous hooks' ud is released; the listener owns h->ud from this call on (also
 * when it is not used). No effect on UDP listeners. */
void proxy_set_kafka(proxy_listener *l, const proxy_kafka *h);
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
