/* What the proxy's files share and nothing else sees: the listener, the TCP
 * connection, and the one first-bytes hook.
 *
 *   proxy.c        the listener: socket setup (proxy_listen, proxy_listen_fd),
 *                  options, stats, closing, the public API
 *   proxy_tcp.c    TCP: accepting, the read/write relay, classification by
 *                  first bytes, the switch to splice (splice_linux.c)
 *   proxy_udp.c    UDP sessions
 *   proxy_kafka.c  Kafka: the first-bytes classifier and the protocol handler
 *                  around kafka.h's tracker and rewriter
 *
 * First bytes. A TCP listener has one classifier slot (first_bytes). Every
 * connection takes the classifier that is in the slot when it is accepted and
 * feeds it each chunk of client bytes and, for server-first protocols, of
 * server bytes, until it decides: PLAIN (forwarded as is; may switch to
 * splice) or a protocol, whose handler (proxy_handler_for) then owns every
 * byte of the connection in both directions, from the chunk that decided,
 * and stays on read/write. While a classifier says NEED_MORE the relay
 * forwards the bytes as they are, so detection never delays traffic (Kafka's
 * way); a protocol whose first bytes must not reach the server unchanged
 * decides on its first byte instead (TLS termination: a handshake record
 * starts with 0x16, and its handler keeps the ClientHello). Connections
 * still undecided after PROXY_CLASSIFY_LIMIT client bytes become PLAIN. An
 * empty slot makes every connection PLAIN at its first bytes, either way. */
#ifndef LOOPHOLE_PROXY_INT_H
#define LOOPHOLE_PROXY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "log.h"
#include "proxy.h"
#include "splice.h"

#define PROXY_MOD "proxy"
/* Undecided connections become PLAIN after this many client bytes. */
#define PROXY_CLASSIFY_LIMIT (64 * 1024)

typedef struct proxy_conn proxy_conn;

/* What a classifier decides. A protocol value indexes proxy_handler_for();
 * TLS termination will add PROXY_CLASS_TLS and its handler. */
enum proxy_class {
    PROXY_CLASS_NEED_MORE = 0, /* undecided: forward these bytes, ask again with the next */
    PROXY_CLASS_PLAIN = 1,     /* not ours: forward as is, from now on maybe by splice */
    PROXY_CLASS_KAFKA = 2,     /* proxy_kafka_handler */
    PROXY_CLASS_COUNT
};

typedef struct proxy_classifier {
    /* At accept, before any byte (may be NULL: NEED_MORE). A protocol that
     * is forced by configuration decides here. */
    int (*accepted)(void **state);
    /* Each chunk of client bytes, in order and before it is forwarded, until
     * something other than PROXY_CLASS_NEED_MORE is returned. *state is the
     * connection's slot for the classifier (NULL at first). NULL: the first
     * client bytes make the connection PLAIN. */
    int (*client_bytes)(void **state, const char *data, size_t len);
    /* The same for server bytes; NULL: server bytes decide nothing. */
    int (*server_bytes)(void **state, const char *data, size_t len);
    /* Releases a non-NULL *state: right after the decision (and the chosen
     * handler's start) or when an undecided connection ends. NULL: nothing
     * to release. */
    void (*free_state)(void *state);
} proxy_classifier;

/* A protocol handler: owns a connection's bytes once a classifier named its
 * protocol. It passes bytes on with proxy_conn_write (in the order it wants
 * them to arrive) and may give the connection back with proxy_conn_plain. */
typedef struct proxy_handler {
    /* Takes the connection over. cstate is the deciding classifier's state
     * (may be NULL; valid during the call only): Kafka's holds the client
     * bytes it sniffed, which the relay forwarded already. */
    void (*start)(proxy_conn *c, void *cstate);
    /* Bytes read from the client; from the server. */
    void (*client_bytes)(proxy_conn *c, const char *data, size_t len);
    void (*server_bytes)(proxy_conn *c, const char *data, size_t len);
    /* The server sent FIN; whatever is held for the client goes out before
     * the FIN is passed on (may be NULL). */
    void (*server_eof)(proxy_conn *c);
    /* The connection ends while handled: release c->hstate. */
    void (*free)(proxy_conn *c);
} proxy_handler;

/* NULL for PLAIN, NEED_MORE and any value without a handler. */
const proxy_handler *proxy_handler_for(int klass);

extern const proxy_classifier proxy_kafka_sniff_classifier;
extern const proxy_classifier proxy_kafka_force_classifier;
extern const proxy_handler proxy_kafka_handler;

/* One direction's socket of a TCP connection. */
typedef struct proxy_side {
    uv_tcp_t tcp;
    proxy_conn *c;
    struct proxy_side *peer;
    uv_shutdown_t sreq;
    size_t pending;   /* bytes held for writing to this side */
    unsigned nwrites; /* uv_write requests in flight to this side */
    bool eof;         /* this side sent FIN */
    bool shut_sent;   /* its peer's FIN passed on (uv_shutdown issued) */
    bool shut_done;
    bool paused; /* reading stopped: the peer's queue is above the watermark */
} proxy_side;

struct proxy_wreq;

struct proxy_conn {
    proxy_listener *l;
    proxy_conn *prev, *next;
    proxy_side cli, up;
    uv_connect_t creq;
    uv_timer_t timer;                     /* the dial timeout; once connected, the splice retry */
    struct proxy_wreq *preq, **preq_tail; /* writes waiting for the upstream connect */
    splice_conn *sp;
    /* First bytes: the classifier taken at accept, its state, how many
     * client bytes it has seen, and what it decided. */
    const proxy_classifier *cls;
    void *cstate;
    size_t classified_bytes;
    int klass;
    /* The protocol handler once klass names one, and its state. */
    const proxy_handler *h;
    void *hstate;
    /* The client's address (for the dialer's later attempts) and the
     * dialer's attempt the upstream socket is connecting for. */
    struct sockaddr_storage peer;
    unsigned attempt;
    uint64_t last; /* uv_now when bytes last moved either way (the idle timeout) */
    int refs;      /* open handles (and the splice relay); freed at zero */
    bool connected;
    /* The upstream handle is closing to be made again for the dialer's next
     * attempt (its close callback reopens it, or drops its reference when
     * the connection closed meanwhile). */
    bool redialing;
    bool closing;
    bool splice_failed;
    bool splice_retried; /* splice_start said UV_EEXIST once (see maybe_splice) */
};

enum { PROXY_TO_SERVER = 0, PROXY_TO_CLIENT = 1 };

/* Passes bytes on towards PROXY_TO_SERVER or PROXY_TO_CLIENT with the
 * relay's backpressure (queued until the upstream connect completes). A
 * failed write closes the connection: check c->closing after. */
void proxy_conn_write(proxy_conn *c, int to, const char *data, size_t len);
/* A handler gives the connection back (it has released c->hstate): from now
 * on it is forwarded as is and may switch to splice. */
void proxy_conn_plain(proxy_conn *c);

/* Kafka's part of a listener (see proxy_kafka). */
typedef struct proxy_kafka_listener {
    proxy_kafka hooks; /* mode OFF: none */
    bool seen;         /* hooks.detected was called */
    log_limit log;     /* broken peers: one line a minute per listener */
} proxy_kafka_listener;

struct proxy_usess;

struct proxy_listener {
    uv_loop_t *loop;
    proxy_options opts;
    int proto;
    struct sockaddr_storage upstream; /* unused while dialer.next is set */
    struct sockaddr_storage local;
    proxy_dialer dialer; /* next NULL: every connection goes to upstream */
    int fd;              /* TCP: the listening socket (owned here) */
    uv_poll_t lpoll;     /* TCP: readiness of fd */
    uv_udp_t udp;        /* UDP: the client-facing socket */
    uv_timer_t timer;    /* TCP: accept pause; UDP: idle sweep */
    uv_timer_t idle;     /* TCP: idle sweep (runs while connections are open) */
    /* TCP: the first-bytes hook (NULL: none) and the open connections. */
    const proxy_classifier *first_bytes;
    proxy_conn *conns;
    proxy_kafka_listener kafka;
    struct proxy_usess **buckets; /* UDP: sessions by client address */
    size_t nbuckets;
    size_t nsessions;
    proxy_stats st;
    size_t buffered;
    int refs; /* own handles + connections/sessions; freed at zero */
    bool closing;
    bool sweeping;
    bool counted; /* its descriptor is in the process-wide count */
    void (*close_cb)(void *arg);
    void *close_arg;
    /* A flood of EMFILE or of clients at a cap: one line a minute each. */
    log_limit emfile_log;
    log_limit cap_log;
};

/* proxy.c */
/* Where every read of every listener goes first (one per thread: each loop
 * runs on one): alloc and read callbacks come in strict pairs on a thread,
 * and only the part the peer's socket does not take at once is copied
 * out, so idle connections hold no buffers, and a listener holds none of
 * its own (a 64 KiB buffer each was most of the daemon's memory with
 * hundreds of containers). */
char *proxy_scratch(void);
/* The process-wide count of proxy descriptors and connections (see
 * proxy_limits): whether fds more descriptors and conns more connections
 * or sessions fit under the limits, and the count itself (negative:
 * released). */
bool proxy_room(unsigned fds, unsigned conns);
void proxy_count(int fds, int conns);
/* A new client turned away at a cap (l's stats and the totals). */
void proxy_count_capped(proxy_listener *l);
void proxy_count_idle_closed(proxy_listener *l);
/* Asks the listener's dialer where a new connection or session from peer
 * goes (attempt 0, 1, ...): 0 with *out an IPv4 or IPv6 address,
 * -ENOENT (nothing to try; also for any other error or a bad address) or
 * -EPERM. Without a dialer attempt 0 is the fixed upstream and later ones
 * -ENOENT. */
int proxy_next_upstream(proxy_listener *l, unsigned attempt, const struct sockaddr *peer,
                        struct sockaddr_storage *out);
/* Fills the first-bytes slot of a TCP listener (NULL: empty) for the
 * connections accepted from now on. */
void proxy_set_first_bytes(proxy_listener *l, const proxy_classifier *cls);
void proxy_sa_copy(struct sockaddr_storage *dst, const struct sockaddr *src);
/* Drops one reference; the last frees the listener and calls its close_cb. */
void proxy_listener_unref(proxy_listener *l);
/* Makes a socket of type (SOCK_STREAM, SOCK_DGRAM) bound to sa, with the
 * options proxy_listen wants before bind (exposed for tests: uv_udp_open
 * sets reuse options of its own afterwards). 0 with *out, or -errno. */
int proxy_bind_socket(const struct sockaddr *sa, int type, int *out);

/* proxy_tcp.c: start watching the listening socket; close every connection. */
void proxy_tcp_start(proxy_listener *l);
void proxy_tcp_close_all(proxy_listener *l);

/* proxy_udp.c: start receiving on l->udp; close every session. */
int proxy_udp_start(proxy_listener *l);
void proxy_udp_close_all(proxy_listener *l);

/* proxy_kafka.c: releases the hooks' ud (the listener is being freed). */
void proxy_kafka_release(proxy_listener *l);

#endif
