/* Kafka: a pure sniffer, request tracker and response rewriter for a
 * byte-stream proxy (no libuv, no logging, no globals).
 *
 * The proxy never waits for this module: client bytes are forwarded unchanged
 * as they arrive (the tracker only parses frame boundaries), and broker bytes
 * go out through an emit callback, held back only while a response that may
 * carry broker addresses (Metadata, FindCoordinator, DescribeCluster, and
 * Produce v10+ / Fetch v16+ with KIP-951 NodeEndpoints) is still incomplete and
 * no larger than the hold cap. Everything else passes byte for byte.
 *
 * Per connection:
 *   1. While forwarding client bytes, keep a copy of the first 14 and call
 *      kafka_sniff() on them. KAFKA_MAYBE: keep forwarding, ask again with
 *      more bytes; if the server speaks first (or the client stops short of
 *      14 bytes and the server answers), it is not Kafka.
 *   2. KAFKA_YES: c = kafka_conn_new(map, ud) and feed every client byte from
 *      the first one (including the ones already forwarded) to
 *      kafka_req_feed() before or as it is written upstream.
 *   3. Every broker byte goes through kafka_resp_feed(); write what emit is
 *      given, in the order given (pointers are valid only during the call).
 *   4. kafka_req_feed() < 0 (framing broke, e.g. a size > 100 MiB): the
 *      connection is not Kafka after all: call kafka_resp_release() (it emits
 *      held bytes unchanged), kafka_conn_free(), and forward plainly.
 *      kafka_resp_feed() < 0: it already passed everything through unchanged
 *      and keeps doing so; the proxy may do the same as above.
 *   5. kafka_conn_errors() changed: log kafka_last_error() once (a malformed
 *      response was passed through unchanged; the connection goes on). */
#ifndef LOOPHOLE_KAFKA_H
#define LOOPHOLE_KAFKA_H

#include <stddef.h>
#include <stdint.h>

enum { KAFKA_NO = 0, KAFKA_YES = 1, KAFKA_MAYBE = 2 };

/* Largest request frame the tracker accepts before it calls the stream broken. */
#define KAFKA_MAX_FRAME (100 * 1024 * 1024)
/* Responses that may need rewriting are held only up to this size (frame
 * including its size field); larger ones stream through unchanged. */
#define KAFKA_HOLD_MAX (1024 * 1024)
/* Requests remembered while waiting for their responses; beyond this the
 * oldest entry is dropped (its response then passes through unrewritten). */
#define KAFKA_INFLIGHT_MAX 65536
/* Broker addresses one held response may name. One that names more is not
 * rewritten at all: it passes through byte for byte, the map callback is not
 * called for any of its brokers, and it counts as an error ("too many brokers",
 * kafka_conn_errors()). This bounds the work and memory a response costs: the
 * site table, and counting distinct node ids (n log n). */
#define KAFKA_SITES_MAX 4096
/* Capacity of the new_host buffer handed to the map callback. */
#define KAFKA_HOST_MAX 256

/* Looks at the first n client bytes (size i32, api_key i16, api_version i16,
 * correlation_id i32, client_id length i16). Decides with at most 14 bytes:
 * KAFKA_MAYBE only while n < 14. */
int kafka_sniff(const uint8_t *p, size_t n);

/* Maps one advertised broker. host is not NUL-terminated. Return 1 after
 * writing a NUL-terminated host (shorter than cap) into new_host and a port
 * into *new_port to rewrite it, 0 to keep it. Never called for a null or empty
 * host or a port <= 0 (error replies). */
typedef int (*kafka_map_fn)(void *ud, int32_t node_id, const char *host, size_t host_len,
                            int32_t port, char *new_host, size_t cap, int32_t *new_port);

/* Receives output bytes of the response direction, in order. */
typedef void (*kafka_emit_fn)(void *ud, const uint8_t *p, size_t n);

typedef struct kafka_conn kafka_conn;

typedef struct kafka_stats {
    uint64_t requests;       /* request frames recorded */
    uint64_t acks0;          /* Produce acks=0 requests (no response expected) */
    uint64_t responses;      /* response frames seen */
    uint64_t unmatched;      /* responses whose correlation id was not pending */
    uint64_t skipped;        /* pending entries skipped over (acks=0 we could not see) */
    uint64_t dropped;        /* entries dropped because KAFKA_INFLIGHT_MAX was reached */
    uint64_t held;           /* responses held for parsing */
    uint64_t oversized;      /* rewritable responses streamed because they were too big */
    uint64_t rewritten;      /* responses re-encoded with at least one new address */
    uint64_t errors;         /* malformed held responses passed through unchanged */
    uint64_t bytes_held_max; /* largest frame held */
} kafka_stats;

/* map may be NULL (nothing is rewritten, framing is still tracked). */
kafka_conn *kafka_conn_new(kafka_map_fn map, void *ud);
void kafka_conn_free(kafka_conn *c);
/* Changes the hold cap (bytes, whole frame); 0 means KAFKA_HOLD_MAX. */
void kafka_conn_set_hold_max(kafka_conn *c, size_t max);

/* Client -> broker bytes, any chunking. Returns 0, or -EPROTO once the
 * framing is broken (negative or oversized frame size); sticky. */
int kafka_req_feed(kafka_conn *c, const uint8_t *p, size_t n);

/* Broker -> client bytes, any chunking; output goes to emit. Returns 0, or
 * -EPROTO once the response framing is broken (negative size): everything,
 * including that call's bytes, was emitted unchanged and later calls pass
 * through. */
int kafka_resp_feed(kafka_conn *c, const uint8_t *p, size_t n, kafka_emit_fn emit, void *ud);

/* Bytes of an incomplete response currently held back. */
size_t kafka_resp_held(const kafka_conn *c);
/* Emits any held bytes unchanged and switches the response direction to
 * plain pass-through for good (before falling back to plain forwarding). */
void kafka_resp_release(kafka_conn *c, kafka_emit_fn emit, void *ud);

/* Valid inside the map callback: the api key of the response being
 * rewritten (the unit tests check it) and how many distinct node ids with a
 * usable address it names (the proxy's mapping policy). */
int kafka_resp_api_key(const kafka_conn *c);
int kafka_resp_nodes(const kafka_conn *c);

/* Requests still waiting for a response. */
size_t kafka_pending(const kafka_conn *c);
void kafka_conn_stats(const kafka_conn *c, kafka_stats *st);
/* Count of problems so far and a one-line description of the last ("" if
 * none), for the proxy to log once when the count changes. */
uint64_t kafka_conn_errors(const kafka_conn *c);
const char *kafka_last_error(const kafka_conn *c);

#endif
