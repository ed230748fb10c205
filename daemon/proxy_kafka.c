/* Kafka on a TCP listener: the first-bytes classifier that recognises a
 * Kafka client (kafka_sniff) and the protocol handler that runs kafka.h's
 * request tracker and response rewriter on the relay. See proxy.h for the
 * model (proxy_set_kafka) and proxy_int.h for the hook. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "proxy_int.h"
#include "util.h"

#define MOD PROXY_MOD
/* kafka_sniff decides with at most this many bytes. */
#define KAFKA_SNIFF_BYTES 14

/* ---- the classifier ---- */

/* The first client bytes, kept for sniffing. The relay forwards them while
 * the sniffer is undecided; the handler feeds them to the tracker once it
 * starts, so that the tracker sees every byte from the first. */
typedef struct sniff_state {
    uint8_t head[KAFKA_SNIFF_BYTES];
    size_t n;      /* bytes in head */
    size_t before; /* of those, the ones of earlier chunks (forwarded already) */
} sniff_state;

static int sniff_client(void **state, const char *data, size_t len)
{
    sniff_state *s = *state;
    if (!s)
        s = *state = xcalloc(1, sizeof(*s));
    s->before = s->n;
    size_t take = len < KAFKA_SNIFF_BYTES - s->n ? len : KAFKA_SNIFF_BYTES - s->n;
    memcpy(s->head + s->n, data, take);
    s->n += take;
    int r = kafka_sniff(s->head, s->n);
    if (r == KAFKA_MAYBE && s->n < KAFKA_SNIFF_BYTES)
        return PROXY_CLASS_NEED_MORE;
    return r == KAFKA_YES ? PROXY_CLASS_KAFKA : PROXY_CLASS_PLAIN;
}

/* A server that speaks first is not a Kafka broker. */
static int sniff_server(void **state, const char *data, size_t len)
{
    (void)state;
    (void)data;
    (void)len;
    return PROXY_CLASS_PLAIN;
}

static void sniff_free(void *state)
{
    free(state);
}

const proxy_classifier proxy_kafka_sniff_classifier = {NULL, sniff_client, sniff_server,
                                                       sniff_free};

/* The loophole.kafka=<ports> label: Kafka from the first byte. */
static int force_accepted(void **state)
{
    (void)state;
    return PROXY_CLASS_KAFKA;
}

const proxy_classifier proxy_kafka_force_classifier = {force_accepted, NULL, NULL, NULL};

/* ---- the handler ---- */

/* A Kafka connection: the tracker/rewriter and what was last accounted of it. */
typedef struct kconn {
    kafka_conn *kc;
    size_t held;        /* response bytes held by kc, counted in l->buffered */
    uint64_t errors;    /* kafka_conn_errors() last logged */
    uint64_t rewritten; /* kafka_stats.rewritten last added to the listener's */
} kconn;

static int map_tramp(void *ud, int32_t node_id, const char *host, size_t host_len, int32_t port,
                     char *new_host, size_t cap, int32_t *new_port)
{
    proxy_conn *c = ud;
    kconn *k = c->hstate;
    proxy_listener *l = c->l;
    /* The listener's current hooks: hooks replaced since this connection
     * started apply to its later responses too. */
    if (!l->kafka.hooks.map)
        return 0;
    return l->kafka.hooks.map(l->kafka.hooks.ud, l, kafka_resp_nodes(k->kc), node_id, host,
                              host_len, port, new_host, cap, new_port);
}

static void emit(void *ud, const uint8_t *p, size_t n)
{
    /* A failed write closed the connection: the rest is dropped with it. */
    proxy_conn_write(ud, PROXY_TO_CLIENT, (const char *)p, n);
}

/* One line per listener and minute, so a broken peer cannot flood the log. */
static void klog(proxy_conn *c, const char *what, const char *detail)
{
    proxy_listener *l = c->l;
    log_limited(&l->kafka.log, LOG_WARN, MOD, 0, "kafka: %s%s%s", what, detail[0] ? ": " : "",
                detail);
}

/* Brings the listener's view of the tracker up to date: held bytes count as
 * buffered, new rewrites are counted, a new problem is logged once. */
static void account(proxy_conn *c)
{
    kconn *k = c->hstate;
    proxy_listener *l = c->l;
    size_t held = kafka_resp_held(k->kc);
    l->buffered = l->buffered - k->held + held;
    k->held = held;
    kafka_stats st;
    kafka_conn_stats(k->kc, &st);
    l->st.kafka_rewritten += st.rewritten - k->rewritten;
    k->rewritten = st.rewritten;
    uint64_t errs = kafka_conn_errors(k->kc);
    if (errs != k->errors) {
        k->errors = errs;
        klog(c, "a response was passed through unchanged", kafka_last_error(k->kc));
    }
}

static void kconn_free(proxy_conn *c)
{
    kconn *k = c->hstate;
    c->l->buffered -= k->held;
    kafka_conn_free(k->kc);
    free(k);
    c->hstate = NULL;
}

/* Gives up on Kafka for this connection: held bytes go out unchanged and in
 * order, then it is forwarded plainly (and may switch to splice). */
static void stop(proxy_conn *c, const char *why)
{
    kconn *k = c->hstate;
    if (why)
        klog(c, why, "forwarding the connection unchanged");
    kafka_resp_release(k->kc, emit, c);
    account(c);
    kconn_free(c);
    proxy_conn_plain(c);
}

static void track(proxy_conn *c, const uint8_t *p, size_t n)
{
    kconn *k = c->hstate;
    if (n > 0 && kafka_req_feed(k->kc, p, n) < 0)
        stop(c, "request framing broken");
}

static void on_start(proxy_conn *c, void *cstate)
{
    proxy_listener *l = c->l;
    kconn *k = xcalloc(1, sizeof(*k));
    k->kc = kafka_conn_new(map_tramp, c);
    c->hstate = k;
    l->st.kafka_conns++;
    if (!l->kafka.seen) {
        l->kafka.seen = true;
        if (l->kafka.hooks.detected)
            l->kafka.hooks.detected(l->kafka.hooks.ud, l);
    }
    /* The sniffed bytes of earlier chunks were forwarded already; the
     * tracker still has to see them, first. (Only the sniffer leaves them:
     * the forced classifier decides before any byte.) */
    sniff_state *s = c->cls == &proxy_kafka_sniff_classifier ? cstate : NULL;
    if (s)
        track(c, s->head, s->before);
}

/* Every client byte is forwarded at once and tracked (never held). */
static void on_client_bytes(proxy_conn *c, const char *data, size_t len)
{
    proxy_conn_write(c, PROXY_TO_SERVER, data, len);
    if (!c->closing)
        track(c, (const uint8_t *)data, len);
}

/* Broker bytes go through the rewriter, which emits them in order. */
static void on_server_bytes(proxy_conn *c, const char *data, size_t len)
{
    kconn *k = c->hstate;
    int rc = kafka_resp_feed(k->kc, (const uint8_t *)data, len, emit, c);
    account(c);
    if (rc < 0)
        stop(c, "response framing broken");
}

/* A response cut short by the broker's FIN still reaches the client. */
static void on_server_eof(proxy_conn *c)
{
    stop(c, NULL);
}

const proxy_handler proxy_kafka_handler = {on_start, on_client_bytes, on_server_bytes,
                                           on_server_eof, kconn_free};

/* ---- the listener's hooks ---- */

void proxy_kafka_release(proxy_listener *l)
{
    if (l->kafka.hooks.free_ud)
        l->kafka.hooks.free_ud(l->kafka.hooks.ud);
    memset(&l->kafka.hooks, 0, sizeof(l->kafka.hooks));
}

void proxy_set_kafka(proxy_listener *l, const proxy_kafka *h)
{
    if (l->proto != PROXY_TCP) {
        if (h && h->free_ud)
            h->free_ud(h->ud);
        return;
    }
    proxy_kafka_release(l);
    const proxy_classifier *cls = NULL;
    if (h && h->mode == PROXY_KAFKA_SNIFF)
        cls = &proxy_kafka_sniff_classifier;
    else if (h && h->mode == PROXY_KAFKA_FORCE)
        cls = &proxy_kafka_force_classifier;
    if (cls)
        l->kafka.hooks = *h;
    else if (h && h->free_ud)
        h->free_ud(h->ud);
    l->kafka.seen = false;
    /* Kafka off empties the slot only if Kafka held it. */
    if (cls || l->first_bytes == &proxy_kafka_sniff_classifier ||
        l->first_bytes == &proxy_kafka_force_classifier)
        proxy_set_first_bytes(l, cls);
}
