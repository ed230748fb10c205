/* Kafka sniffer, request tracker and response rewriter. See kafka.h for how a
 * proxy drives it; the wire facts come from the Apache Kafka message schemas
 * (clients/src/main/resources/common/message/ JSON files). */
#include "kafka.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum {
    API_PRODUCE = 0,
    API_FETCH = 1,
    API_METADATA = 3,
    API_FIND_COORDINATOR = 10,
    API_SASL_HANDSHAKE = 17,
    API_API_VERSIONS = 18,
    API_DESCRIBE_CLUSTER = 60,
};

/* Bytes of each request kept to read its header and, for Produce, acks. A
 * client_id or transactional_id longer than this only costs the acks=0
 * shortcut; pop-until-match still copes. */
#define REQ_CAPTURE 512

typedef struct entry {
    int32_t corr;
    int16_t key;
    int16_t ver;
} entry;

enum { REQ_SIZE, REQ_BODY, REQ_BROKEN };
enum { RESP_HDR, RESP_PASS, RESP_HOLD, RESP_BROKEN };

struct kafka_conn {
    kafka_map_fn map;
    void *map_ud;
    size_t hold_max;

    /* Pending requests, a ring that grows up to KAFKA_INFLIGHT_MAX. */
    entry *fifo;
    size_t fifo_cap, fifo_head, fifo_len;

    /* Request direction. */
    int req_state;
    uint8_t req_hdr[4];
    size_t req_hdr_len;
    size_t req_left; /* body bytes still to come */
    size_t req_cap_len, req_cap_want;
    bool sasl_raw_next; /* after SaslHandshake v0 the next frame is a raw token */
    uint8_t req_cap[REQ_CAPTURE];

    /* Response direction. */
    int resp_state;
    uint8_t resp_hdr[8];
    size_t resp_hdr_len;
    size_t resp_left;
    uint8_t *hold;
    size_t hold_len, hold_want, hold_cap;
    int16_t cur_key, cur_ver;
    int cur_nodes;

    kafka_stats st;
    char last_error[160];
};

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static bool is_name_char(uint8_t b)
{
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b == '_';
}

/* ---- sniffing ---------------------------------------------------------- */

int kafka_sniff(const uint8_t *p, size_t n)
{
    if (n == 0)
        return KAFKA_MAYBE;
    /* A size above 100 MiB has a first byte above 6: this rejects TLS (16 03),
     * every text protocol (HTTP methods, Redis inline and RESP, SSH, ...) on
     * the first byte, without waiting for more. */
    if (p[0] > (KAFKA_MAX_FRAME >> 24))
        return KAFKA_NO;
    if (n < 4)
        return KAFKA_MAYBE;
    int32_t size = (int32_t)be32(p);
    /* Header v1 alone is 10 bytes; the SSLRequest and GSSENCRequest of
     * PostgreSQL are 8. */
    if (size < 10 || size > KAFKA_MAX_FRAME)
        return KAFKA_NO;
    if (n >= 5 && p[4] != 0) /* api_key < 256 (PostgreSQL CancelRequest: 1234) */
        return KAFKA_NO;
    if (n < 6)
        return KAFKA_MAYBE;
    if (be16(p + 4) > 100)
        return KAFKA_NO;
    if (n >= 7 && p[6] != 0)
        return KAFKA_NO;
    if (n < 8)
        return KAFKA_MAYBE;
    if (be16(p + 6) > 30)
        return KAFKA_NO;
    if (n >= 9 && (p[8] & 0x80)) /* a first request never has a negative correlation id */
        return KAFKA_NO;
    if (n < 12)
        return KAFKA_MAYBE;
    /* A PostgreSQL StartupMessage (len | 00 03 00 00 | "user\0...") reads as
     * Metadata v0; its correlation id would be a parameter name. Clients
     * count correlation ids up from 0, so four letters (>= 0x41414141) in
     * the first request of a connection are not Kafka. */
    if (is_name_char(p[8]) && is_name_char(p[9]) && is_name_char(p[10]) && is_name_char(p[11]))
        return KAFKA_NO;
    if (n < 14)
        return KAFKA_MAYBE;
    int16_t clen = (int16_t)be16(p + 12);
    if (clen < -1 || (clen >= 0 && clen > size - 10))
        return KAFKA_NO;
    return KAFKA_YES;
}

/* ---- lifecycle --------------------------------------------------------- */

kafka_conn *kafka_conn_new(kafka_map_fn map, void *ud)
{
    kafka_conn *c = xcalloc(1, sizeof(*c));
    c->map = map;
    c->map_ud = ud;
    c->hold_max = KAFKA_HOLD_MAX;
    c->req_state = REQ_SIZE;
    c->resp_state = RESP_HDR;
    c->cur_key = -1;
    c->cur_ver = -1;
    return c;
}

void kafka_conn_free(kafka_conn *c)
{
    if (c == NULL)
        return;
    free(c->fifo);
    free(c->hold);
    free(c);
}

void kafka_conn_set_hold_max(kafka_conn *c, size_t max)
{
    c->hold_max = max ? max : KAFKA_HOLD_MAX;
}

static void set_error(kafka_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_error(kafka_conn *c, const char *fmt, ...)
{
    va_list ap;
    c->st.errors++;
    va_start(ap, fmt);
    vsnprintf(c->last_error, sizeof(c->last_error), fmt, ap);
    va_end(ap);
}

/* ---- the pending-request FIFO ------------------------------------------ */

static void fifo_push(kafka_conn *c, int32_t corr, int16_t key, int16_t ver)
{
    if (c->fifo_len == KAFKA_INFLIGHT_MAX) {
        /* Most likely acks=0 requests we could not recognise; dropping the
         * oldest only costs a rewrite if its response does come. */
        c->fifo_head = (c->fifo_head + 1) % c->fifo_cap;
        c->fifo_len--;
        c->st.dropped++;
    }
    if (c->fifo_len == c->fifo_cap) {
        size_t ncap = c->fifo_cap ? c->fifo_cap * 2 : 16;
        if (ncap > KAFKA_INFLIGHT_MAX)
            ncap = KAFKA_INFLIGHT_MAX;
        entry *n = xmalloc(ncap * sizeof(*n));
        for (size_t i = 0; i < c->fifo_len; i++)
            n[i] = c->fifo[(c->fifo_head + i) % c->fifo_cap];
        free(c->fifo);
        c->fifo = n;
        c->fifo_cap = ncap;
        c->fifo_head = 0;
    }
    entry *e = &c->fifo[(c->fifo_head + c->fifo_len) % c->fifo_cap];
    e->corr = corr;
    e->key = key;
    e->ver = ver;
    c->fifo_len++;
    c->st.requests++;
}

/* Finds corr among the pending requests. Responses come in request order, so
 * entries before it never get one (Produce acks=0) and are dropped. An
 * unknown id (e.g. a raw SASL token) leaves the FIFO alone. */
static bool fifo_match(kafka_conn *c, int32_t corr, entry *out)
{
    for (size_t i = 0; i < c->fifo_len; i++) {
        entry *e = &c->fifo[(c->fifo_head + i) % c->fifo_cap];
        if (e->corr != corr)
            continue;
        *out = *e;
        c->st.skipped += i;
        c->fifo_head = (c->fifo_head + i + 1) % c->fifo_cap;
        c->fifo_len -= i + 1;
        return true;
    }
    return false;
}

size_t kafka_pending(const kafka_conn *c)
{
    return c->fifo_len;
}

/* ---- a bounds-checked reader ------------------------------------------- */

typedef struct rd {
    const uint8_t *p;
    size_t n, off;
    bool bad;
} rd;

static bool rd_has(rd *r, size_t k)
{
    if (r->bad || r->n - r->off < k) {
        r->bad = true;
        return false;
    }
    return true;
}

static void rd_skip(rd *r, size_t k)
{
    if (rd_has(r, k))
        r->off += k;
}

static int16_t rd_i16(rd *r)
{
    if (!rd_has(r, 2))
        return 0;
    int16_t v = (int16_t)be16(r->p + r->off);
    r->off += 2;
    return v;
}

static int32_t rd_i32(rd *r)
{
    if (!rd_has(r, 4))
        return 0;
    int32_t v = (int32_t)be32(r->p + r->off);
    r->off += 4;
    return v;
}

/* Unsigned varint of at most 32 bits (5 bytes). */
static uint32_t rd_uvarint(rd *r)
{
    uint32_t v = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (!rd_has(r, 1))
            return 0;
        uint8_t b = r->p[r->off++];
        if (shift == 28 && (b & 0xf0)) {
            r->bad = true;
            return 0;
        }
        v |= (uint32_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = true;
    return 0;
}

/* A string of either encoding; *len is -1 for null. */
static void rd_str(rd *r, bool compact, const uint8_t **s, long *len)
{
    long l;
    if (compact)
        l = (long)rd_uvarint(r) - 1;
    else
        l = rd_i16(r);
    if (r->bad || l < -1) {
        r->bad = true;
        return;
    }
    *len = l;
    *s = NULL;
    if (l > 0 && rd_has(r, (size_t)l)) {
        *s = r->p + r->off;
        r->off += (size_t)l;
    }
}

static void rd_skip_str(rd *r, bool compact)
{
    const uint8_t *s;
    long l;
    rd_str(r, compact, &s, &l);
}

/* Array count, -1 for null. Each element takes at least one byte, so a count
 * beyond the remaining bytes is malformed (and never drives a long loop). */
static long rd_array(rd *r, bool compact)
{
    long cnt = compact ? (long)rd_uvarint(r) - 1 : (long)rd_i32(r);
    if (r->bad || cnt < -1 || (cnt > 0 && (size_t)cnt > r->n - r->off)) {
        r->bad = true;
        return 0;
    }
    return cnt;
}

static void rd_tags(rd *r)
{
    uint32_t cnt = rd_uvarint(r);
    for (uint32_t i = 0; i < cnt && !r->bad; i++) {
        rd_uvarint(r);
        rd_skip(r, rd_uvarint(r));
    }
}

static size_t uvarint_len(uint32_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t put_uvarint(uint8_t *p, uint32_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* ---- the request direction --------------------------------------------- */

/* acks of a Produce request from its captured head, or 1 when it cannot be
 * read (too long a client id): the response side copes with either. */
static int produce_acks(const uint8_t *p, size_t n, int16_t ver)
{
    rd r = {p, n, 8, false};
    rd_skip_str(&r, false); /* client_id: an int16 length even in header v2 */
    bool flex = ver >= 9;
    if (flex)
        rd_tags(&r);
    if (ver >= 3)
        rd_skip_str(&r, flex); /* transactional_id */
    int16_t acks = rd_i16(&r);
    return r.bad ? 1 : acks;
}

static void req_frame_head(kafka_conn *c)
{
    if (c->sasl_raw_next) {
        c->sasl_raw_next = false;
        return;
    }
    if (c->req_cap_len < 8)
        return;
    int16_t key = (int16_t)be16(c->req_cap);
    int16_t ver = (int16_t)be16(c->req_cap + 2);
    int32_t corr = (int32_t)be32(c->req_cap + 4);
    /* Not a request header (e.g. a later raw SASL token): nothing to expect. */
    if (key < 0 || key > 255 || ver < 0 || ver > 127)
        return;
    if (key == API_SASL_HANDSHAKE && ver == 0)
        c->sasl_raw_next = true;
    if (key == API_PRODUCE && produce_acks(c->req_cap, c->req_cap_len, ver) == 0) {
        c->st.acks0++;
        return;
    }
    fifo_push(c, corr, key, ver);
}

int kafka_req_feed(kafka_conn *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (c->req_state == REQ_BROKEN)
            return -EPROTO;
        if (c->req_state == REQ_SIZE) {
            size_t take = 4 - c->req_hdr_len;
            if (take > n)
                take = n;
            memcpy(c->req_hdr + c->req_hdr_len, p, take);
            c->req_hdr_len += take;
            p += take;
            n -= take;
            if (c->req_hdr_len < 4)
                break;
            c->req_hdr_len = 0;
            int32_t size = (int32_t)be32(c->req_hdr);
            if (size < 0 || size > KAFKA_MAX_FRAME) {
                c->req_state = REQ_BROKEN;
                set_error(c, "request frame size %d out of range", (int)size);
                return -EPROTO;
            }
            if (size == 0) { /* legal (SASL); nothing to record */
                if (c->sasl_raw_next)
                    c->sasl_raw_next = false;
                continue;
            }
            c->req_left = (size_t)size;
            c->req_cap_len = 0;
            c->req_cap_want = c->req_left < REQ_CAPTURE ? c->req_left : REQ_CAPTURE;
            c->req_state = REQ_BODY;
            continue;
        }
        size_t take;
        if (c->req_cap_len < c->req_cap_want) {
            take = c->req_cap_want - c->req_cap_len;
            if (take > n)
                take = n;
            memcpy(c->req_cap + c->req_cap_len, p, take);
            c->req_cap_len += take;
            if (c->req_cap_len == c->req_cap_want)
                req_frame_head(c);
        } else {
            take = c->req_left < n ? c->req_left : n;
        }
        p += take;
        n -= take;
        c->req_left -= take;
        if (c->req_left == 0)
            c->req_state = REQ_SIZE;
    }
    return c->req_state == REQ_BROKEN ? -EPROTO : 0;
}

/* ---- response rewriting ------------------------------------------------ */

/* Whether a response may name brokers, and so is worth holding. */
static bool rewritable(int key, int ver)
{
    switch (key) {
    case API_METADATA:
        return ver >= 0 && ver <= 13;
    case API_FIND_COORDINATOR:
        return ver >= 0 && ver <= 6;
    case API_DESCRIBE_CLUSTER:
        return ver >= 0 && ver <= 2;
    case API_PRODUCE: /* NodeEndpoints (KIP-951) */
        return ver >= 10 && ver <= 13;
    case API_FETCH:
        return ver >= 16 && ver <= 18;
    default:
        return false;
    }
}

/* Response header v1 (with a TAG_BUFFER) for flexible versions. */
static bool flexible(int key, int ver)
{
    switch (key) {
    case API_PRODUCE:
        return ver >= 9;
    case API_FETCH:
        return ver >= 12;
    case API_METADATA:
        return ver >= 9;
    case API_FIND_COORDINATOR:
        return ver >= 3;
    case API_DESCRIBE_CLUSTER:
        return true;
    default:
        return false;
    }
}

/* One broker address in a held frame. */
typedef struct site {
    size_t host_off; /* where the host's length prefix starts */
    size_t port_off; /* the 4-byte port right after the host */
    bool compact;
    int32_t node_id;
    const uint8_t *host;
    long host_len;
    int32_t port;
    bool rewrite;
    size_t new_off; /* into the arena */
    size_t new_len;
    int32_t new_port;
} site;

typedef struct rw {
    site *v;
    size_t n, cap;
    bool overflow;
    /* The NodeEndpoints tagged field: its size varint covers [reg_start, reg_end). */
    bool has_region;
    size_t reg_varint_off, reg_varint_len, reg_start, reg_end;
} rw;

static void add_host_port(rd *r, rw *w, bool compact, int32_t node_id)
{
    site s = {0};
    s.host_off = r->off;
    s.compact = compact;
    s.node_id = node_id;
    /* Nullable on read: librdkafka's mock sends a null coordinator host. */
    rd_str(r, compact, &s.host, &s.host_len);
    s.port_off = r->off;
    s.port = rd_i32(r);
    if (r->bad)
        return;
    if (w->n == KAFKA_SITES_MAX) {
        w->overflow = true;
        r->bad = true;
        return;
    }
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 8;
        w->v = xrealloc(w->v, w->cap * sizeof(*w->v));
    }
    w->v[w->n++] = s;
}

/* NodeId, Host, Port, then Rack / IsFenced / TAG_BUFFER as the version has. */
static void parse_broker(rd *r, rw *w, bool compact, bool rack, bool fenced)
{
    int32_t node = rd_i32(r);
    add_host_port(r, w, compact, node);
    if (rack)
        rd_skip_str(r, compact);
    if (fenced)
        rd_skip(r, 1);
    if (compact)
        rd_tags(r);
}

static void parse_brokers(rd *r, rw *w, bool compact, bool rack, bool fenced)
{
    long cnt = rd_array(r, compact);
    for (long i = 0; i < cnt && !r->bad; i++)
        parse_broker(r, w, compact, rack, fenced);
}

static void parse_metadata(rd *r, rw *w, int ver)
{
    bool flex = ver >= 9;
    if (ver >= 3)
        rd_skip(r, 4); /* ThrottleTimeMs */
    /* The brokers come first; the rest of the body is copied verbatim. */
    parse_brokers(r, w, flex, ver >= 1, false);
}

static void parse_find_coordinator(rd *r, rw *w, int ver)
{
    bool flex = ver >= 3;
    if (ver >= 1)
        rd_skip(r, 4); /* ThrottleTimeMs */
    if (ver >= 4) {
        long cnt = rd_array(r, true);
        for (long i = 0; i < cnt && !r->bad; i++) {
            rd_skip_str(r, true); /* Key */
            int32_t node = rd_i32(r);
            add_host_port(r, w, true, node);
            rd_skip(r, 2);        /* ErrorCode */
            rd_skip_str(r, true); /* ErrorMessage */
            rd_tags(r);
        }
        rd_tags(r);
        return;
    }
    rd_skip(r, 2); /* ErrorCode */
    if (ver >= 1)
        rd_skip_str(r, flex); /* ErrorMessage */
    int32_t node = rd_i32(r);
    add_host_port(r, w, flex, node);
    if (flex)
        rd_tags(r);
}

static void parse_describe_cluster(rd *r, rw *w, int ver)
{
    rd_skip(r, 4 + 2);    /* ThrottleTimeMs, ErrorCode */
    rd_skip_str(r, true); /* ErrorMessage */
    if (ver >= 1)
        rd_skip(r, 1);    /* EndpointType */
    rd_skip_str(r, true); /* ClusterId */
    rd_skip(r, 4);        /* ControllerId */
    parse_brokers(r, w, true, true, ver >= 2);
}

/* The top-level TAG_BUFFER of Produce/Fetch; tag 0 is NodeEndpoints. */
static void parse_top_tags(rd *r, rw *w)
{
    uint32_t cnt = rd_uvarint(r);
    for (uint32_t i = 0; i < cnt && !r->bad; i++) {
        uint32_t tag = rd_uvarint(r);
        size_t varint_off = r->off;
        uint32_t size = rd_uvarint(r);
        if (r->bad || !rd_has(r, size))
            return;
        if (tag == 0 && !w->has_region) {
            rd sub = {r->p, r->off + size, r->off, false};
            parse_brokers(&sub, w, true, true, false);
            if (sub.bad || sub.off != sub.n) {
                r->bad = true;
                return;
            }
            w->has_region = true;
            w->reg_varint_off = varint_off;
            w->reg_varint_len = r->off - varint_off;
            w->reg_start = r->off;
            w->reg_end = r->off + size;
        }
        r->off += size;
    }
}

static void parse_produce(rd *r, rw *w, int ver)
{
    long topics = rd_array(r, true);
    for (long t = 0; t < topics && !r->bad; t++) {
        if (ver >= 13)
            rd_skip(r, 16); /* TopicId */
        else
            rd_skip_str(r, true); /* Name */
        long parts = rd_array(r, true);
        for (long i = 0; i < parts && !r->bad; i++) {
            /* Index, ErrorCode, BaseOffset, LogAppendTimeMs, LogStartOffset */
            rd_skip(r, 4 + 2 + 8 + 8 + 8);
            long errs = rd_array(r, true);
            for (long e = 0; e < errs && !r->bad; e++) {
                rd_skip(r, 4);        /* BatchIndex */
                rd_skip_str(r, true); /* BatchIndexErrorMessage */
                rd_tags(r);
            }
            rd_skip_str(r, true); /* ErrorMessage */
            rd_tags(r);           /* CurrentLeader is tag 0 here */
        }
        rd_tags(r);
    }
    rd_skip(r, 4); /* ThrottleTimeMs */
    parse_top_tags(r, w);
    if (r->off != r->n)
        r->bad = true;
}

static void parse_fetch(rd *r, rw *w, int ver)
{
    (void)ver;             /* v16-18 share one layout */
    rd_skip(r, 4 + 2 + 4); /* ThrottleTimeMs, ErrorCode, SessionId */
    long topics = rd_array(r, true);
    for (long t = 0; t < topics && !r->bad; t++) {
        rd_skip(r, 16); /* TopicId */
        long parts = rd_array(r, true);
        for (long i = 0; i < parts && !r->bad; i++) {
            /* PartitionIndex, ErrorCode, HighWatermark, LastStableOffset, LogStartOffset */
            rd_skip(r, 4 + 2 + 8 + 8 + 8);
            long aborted = rd_array(r, true);
            for (long a = 0; a < aborted && !r->bad; a++) {
                rd_skip(r, 8 + 8); /* ProducerId, FirstOffset */
                rd_tags(r);
            }
            rd_skip(r, 4); /* PreferredReadReplica */
            uint32_t rec = rd_uvarint(r);
            if (rec > 0)
                rd_skip(r, rec - 1); /* Records */
            rd_tags(r);
        }
        rd_tags(r);
    }
    parse_top_tags(r, w);
    if (r->off != r->n)
        r->bad = true;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Distinct node ids with a usable address (a non-empty host and a port > 0),
 * for the callback's policy (one broker -> this connection's own address).
 * Sorts a copy of the ids, so n log n; n <= KAFKA_SITES_MAX because
 * add_host_port() refuses a response that names more, so the result is at
 * most KAFKA_SITES_MAX too. It used to compare every site with every earlier
 * one: 8-9 ms of loop time (-O2) for a 4096-broker Metadata response. */
static int count_nodes(const site *v, size_t n)
{
    int32_t small[32];
    int32_t *ids = n <= sizeof(small) / sizeof(small[0]) ? small : xmalloc(n * sizeof(*ids));
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i].host_len > 0 && v[i].port > 0)
            ids[k++] = v[i].node_id;
    qsort(ids, k, sizeof(*ids), cmp_i32);
    int nodes = 0;
    for (size_t i = 0; i < k; i++)
        nodes += i == 0 || ids[i] != ids[i - 1];
    if (ids != small)
        free(ids);
    return nodes;
}

static size_t host_enc_len(bool compact, size_t len)
{
    return compact ? uvarint_len((uint32_t)len + 1) + len : 2 + len;
}

/* Parses the held frame, asks the map callback about every address and, when
 * any changes, builds the re-encoded frame into *out. Returns 1 rewritten,
 * 0 nothing to change, -E2BIG when it names more brokers than we track
 * (KAFKA_SITES_MAX), -EPROTO when it is malformed. */
static int rewrite(kafka_conn *c, const uint8_t *f, size_t flen, int key, int ver, buf *out)
{
    rd r = {f, flen, 8, false};
    rw w = {0};
    if (flexible(key, ver))
        rd_tags(&r);
    switch (key) {
    case API_METADATA:
        parse_metadata(&r, &w, ver);
        break;
    case API_FIND_COORDINATOR:
        parse_find_coordinator(&r, &w, ver);
        break;
    case API_DESCRIBE_CLUSTER:
        parse_describe_cluster(&r, &w, ver);
        break;
    case API_PRODUCE:
        parse_produce(&r, &w, ver);
        break;
    case API_FETCH:
        parse_fetch(&r, &w, ver);
        break;
    default:
        break;
    }
    if (r.bad) {
        free(w.v);
        return w.overflow ? -E2BIG : -EPROTO;
    }

    c->cur_key = (int16_t)key;
    c->cur_ver = (int16_t)ver;
    c->cur_nodes = count_nodes(w.v, w.n);

    buf arena = {0};
    bool any = false;
    for (size_t i = 0; i < w.n && c->map; i++) {
        site *s = &w.v[i];
        /* Error replies ((-1, "", -1), or a null host from librdkafka's
         * mock) name no broker: leave them alone. */
        if (s->host_len <= 0 || s->port <= 0)
            continue;
        char nh[KAFKA_HOST_MAX];
        nh[0] = '\0';
        int32_t np = s->port;
        if (c->map(c->map_ud, s->node_id, (const char *)s->host, (size_t)s->host_len, s->port, nh,
                   sizeof(nh), &np) != 1)
            continue;
        size_t nl = strnlen(nh, sizeof(nh));
        if (nl == 0 || nl == sizeof(nh) || np <= 0)
            continue;
        s->rewrite = true;
        s->new_off = arena.len;
        s->new_len = nl;
        s->new_port = np;
        buf_append(&arena, nh, nl);
        any = true;
    }
    if (!any) {
        free(w.v);
        buf_free(&arena);
        return 0;
    }

    long delta_reg = 0;
    for (size_t i = 0; i < w.n; i++) {
        site *s = &w.v[i];
        if (s->rewrite && w.has_region && s->host_off >= w.reg_start && s->host_off < w.reg_end)
            delta_reg +=
                (long)host_enc_len(s->compact, s->new_len) - (long)(s->port_off - s->host_off);
    }

    out->len = 0;
    buf_append(out, f, 4); /* size, patched below */
    size_t prev = 4;
    bool reg_done = !w.has_region;
    for (size_t i = 0; i <= w.n; i++) {
        site *s = i < w.n ? &w.v[i] : NULL;
        if (s && !s->rewrite)
            continue;
        size_t upto = s ? s->host_off : flen;
        if (!reg_done && w.reg_varint_off >= prev && w.reg_varint_off < upto) {
            uint8_t v[5];
            long nsize = (long)(w.reg_end - w.reg_start) + delta_reg;
            buf_append(out, f + prev, w.reg_varint_off - prev);
            buf_append(out, v, put_uvarint(v, (uint32_t)nsize));
            prev = w.reg_varint_off + w.reg_varint_len;
            reg_done = true;
        }
        buf_append(out, f + prev, upto - prev);
        if (!s)
            break;
        uint8_t pre[5];
        size_t pl;
        if (s->compact) {
            pl = put_uvarint(pre, (uint32_t)s->new_len + 1);
        } else {
            pre[0] = (uint8_t)(s->new_len >> 8);
            pre[1] = (uint8_t)s->new_len;
            pl = 2;
        }
        buf_append(out, pre, pl);
        buf_append(out, arena.data + s->new_off, s->new_len);
        uint8_t port[4];
        put_be32(port, (uint32_t)s->new_port);
        buf_append(out, port, 4);
        prev = s->port_off + 4;
    }
    put_be32((uint8_t *)out->data, (uint32_t)(out->len - 4));
    free(w.v);
    buf_free(&arena);
    return 1;
}

/* ---- the response direction -------------------------------------------- */

/* Coalesces consecutive spans of the caller's input into one emit call. */
typedef struct out {
    kafka_emit_fn emit;
    void *ud;
    const uint8_t *pend;
    size_t pend_n;
} out;

static void out_flush(out *o)
{
    if (o->pend_n > 0)
        o->emit(o->ud, o->pend, o->pend_n);
    o->pend = NULL;
    o->pend_n = 0;
}

static void out_input(out *o, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    if (o->pend && o->pend + o->pend_n == p) {
        o->pend_n += n;
        return;
    }
    out_flush(o);
    o->pend = p;
    o->pend_n = n;
}

static void out_own(out *o, const void *p, size_t n)
{
    out_flush(o);
    if (n > 0)
        o->emit(o->ud, p, n);
}

static void hold_shrink(kafka_conn *c)
{
    /* Keep a small buffer for the next Metadata; give big ones back. */
    if (c->hold_cap > 64 * 1024) {
        free(c->hold);
        c->hold = NULL;
        c->hold_cap = 0;
    }
    c->hold_len = c->hold_want = 0;
}

static void resp_frame_done(kafka_conn *c, out *o)
{
    buf nb = {0};
    int rc = rewrite(c, c->hold, c->hold_len, c->cur_key, c->cur_ver, &nb);
    if (rc == 1) {
        c->st.rewritten++;
        out_own(o, nb.data, nb.len);
    } else {
        if (rc < 0)
            set_error(c, "%s response (api %d v%d, corr %d), passed through unchanged",
                      rc == -E2BIG ? "too many brokers in a" : "malformed", c->cur_key, c->cur_ver,
                      (int)(int32_t)be32(c->hold + 4));
        out_own(o, c->hold, c->hold_len);
    }
    buf_free(&nb);
    c->cur_key = c->cur_ver = -1;
    c->cur_nodes = 0;
    hold_shrink(c);
}

/* Called with the first 8 bytes (size, correlation id) or, for frames too
 * short to carry an id, the first 4. hdr_in points at them in the input when
 * they all arrived in this call (so they can join one emit), else NULL. */
static void resp_decide(kafka_conn *c, out *o, int32_t size, const uint8_t *hdr_in)
{
    size_t hlen = size < 4 ? 4 : 8;
    entry e;
    bool found = false;
    c->st.responses++;
    if (size >= 4) {
        found = fifo_match(c, (int32_t)be32(c->resp_hdr + 4), &e);
        if (!found)
            c->st.unmatched++;
    }
    /* ApiVersions (header v0 even when flexible) is never rewritable. */
    if (found && rewritable(e.key, e.ver)) {
        size_t total = (size_t)size + 4;
        if (total <= c->hold_max) {
            if (c->hold_cap < total) {
                free(c->hold);
                c->hold = xmalloc(total);
                c->hold_cap = total;
            }
            memcpy(c->hold, c->resp_hdr, 8);
            c->hold_len = 8;
            c->hold_want = total;
            c->cur_key = e.key;
            c->cur_ver = e.ver;
            c->st.held++;
            if (total > c->st.bytes_held_max)
                c->st.bytes_held_max = total;
            c->resp_state = RESP_HOLD;
            if (c->hold_len == c->hold_want) { /* a body-less frame */
                c->resp_state = RESP_HDR;
                resp_frame_done(c, o);
            }
            return;
        }
        c->st.oversized++;
    }
    if (hdr_in)
        out_input(o, hdr_in, hlen);
    else
        out_own(o, c->resp_hdr, hlen);
    c->resp_left = (size_t)size + 4 - hlen;
    c->resp_state = c->resp_left ? RESP_PASS : RESP_HDR;
}

int kafka_resp_feed(kafka_conn *c, const uint8_t *p, size_t n, kafka_emit_fn emit, void *ud)
{
    out o = {emit, ud, NULL, 0};
    const uint8_t *hdr_start = c->resp_hdr_len == 0 ? p : NULL;
    while (n > 0) {
        switch (c->resp_state) {
        case RESP_BROKEN:
            out_input(&o, p, n);
            n = 0;
            break;
        case RESP_HDR: {
            if (c->resp_hdr_len == 0)
                hdr_start = p;
            size_t want = 4;
            if (c->resp_hdr_len >= 4 && (int32_t)be32(c->resp_hdr) >= 4)
                want = 8;
            size_t take = want - c->resp_hdr_len;
            if (take > n)
                take = n;
            memcpy(c->resp_hdr + c->resp_hdr_len, p, take);
            c->resp_hdr_len += take;
            p += take;
            n -= take;
            if (c->resp_hdr_len < 4)
                break;
            int32_t size = (int32_t)be32(c->resp_hdr);
            if (size < 0) {
                c->resp_state = RESP_BROKEN;
                set_error(c, "response frame size %d is negative, passing through", (int)size);
                if (hdr_start)
                    out_input(&o, hdr_start, c->resp_hdr_len);
                else
                    out_own(&o, c->resp_hdr, c->resp_hdr_len);
                c->resp_hdr_len = 0;
                break;
            }
            if (size >= 4 && c->resp_hdr_len < 8)
                break;
            c->resp_hdr_len = 0;
            resp_decide(c, &o, size, hdr_start);
            hdr_start = NULL;
            break;
        }
        case RESP_PASS: {
            size_t take = c->resp_left < n ? c->resp_left : n;
            out_input(&o, p, take);
            p += take;
            n -= take;
            c->resp_left -= take;
            if (c->resp_left == 0)
                c->resp_state = RESP_HDR;
            break;
        }
        case RESP_HOLD: {
            size_t take = c->hold_want - c->hold_len;
            if (take > n)
                take = n;
            memcpy(c->hold + c->hold_len, p, take);
            c->hold_len += take;
            p += take;
            n -= take;
            if (c->hold_len == c->hold_want) {
                c->resp_state = RESP_HDR;
                resp_frame_done(c, &o);
            }
            break;
        }
        }
    }
    out_flush(&o);
    return c->resp_state == RESP_BROKEN ? -EPROTO : 0;
}

size_t kafka_resp_held(const kafka_conn *c)
{
    return c->resp_state == RESP_HOLD ? c->hold_len : c->resp_hdr_len;
}

void kafka_resp_release(kafka_conn *c, kafka_emit_fn emit, void *ud)
{
    if (c->resp_state == RESP_HOLD && c->hold_len > 0)
        emit(ud, c->hold, c->hold_len);
    else if (c->resp_state != RESP_HOLD && c->resp_hdr_len > 0)
        emit(ud, c->resp_hdr, c->resp_hdr_len);
    c->resp_hdr_len = 0;
    hold_shrink(c);
    c->resp_state = RESP_BROKEN;
}

int kafka_resp_api_key(const kafka_conn *c)
{
    return c->cur_key;
}

int kafka_resp_nodes(const kafka_conn *c)
{
    return c->cur_nodes;
}

void kafka_conn_stats(const kafka_conn *c, kafka_stats *st)
{
    *st = c->st;
}

uint64_t kafka_conn_errors(const kafka_conn *c)
{
    return c->st.errors;
}

const char *kafka_last_error(const kafka_conn *c)
{
    return c->last_error;
}
