/* Kafka sniffer, request tracker and response rewriter, against byte vectors
 * built from the Apache Kafka message schemas. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kafka.h"
#include "test.h"
#include "util.h"

/* ---- byte builders ----------------------------------------------------- */

static void w8(buf *b, int v)
{
    uint8_t x = (uint8_t)v;
    buf_append(b, &x, 1);
}

static void w16(buf *b, int v)
{
    w8(b, (v >> 8) & 0xff);
    w8(b, v & 0xff);
}

static void w32(buf *b, int32_t v)
{
    uint32_t u = (uint32_t)v;
    for (int s = 24; s >= 0; s -= 8)
        w8(b, (int)((u >> s) & 0xff));
}

static void w64(buf *b, int64_t v)
{
    w32(b, (int32_t)((uint64_t)v >> 32));
    w32(b, (int32_t)(uint32_t)v);
}

static void wuv(buf *b, uint32_t v)
{
    while (v >= 0x80) {
        w8(b, (int)((v & 0x7f) | 0x80));
        v >>= 7;
    }
    w8(b, (int)v);
}

/* NULL is the null string. */
static void wstr(buf *b, bool compact, const char *s)
{
    if (compact)
        wuv(b, s ? (uint32_t)strlen(s) + 1 : 0);
    else
        w16(b, s ? (int)strlen(s) : -1);
    if (s)
        buf_append(b, s, strlen(s));
}

static void warr(buf *b, bool compact, int n)
{
    if (compact)
        wuv(b, (uint32_t)(n + 1));
    else
        w32(b, n);
}

static void wuuid(buf *b, int seed)
{
    for (int i = 0; i < 16; i++)
        w8(b, seed + i);
}

static void wtags0(buf *b)
{
    w8(b, 0);
}

/* A TAG_BUFFER with one field we do not know, to check it is kept. */
static void wtags_unknown(buf *b, int tag)
{
    wuv(b, 1);
    wuv(b, (uint32_t)tag);
    wuv(b, 3);
    buf_append(b, "x\0y", 3);
}

static void wbuf(buf *b, const buf *src)
{
    buf_append(b, src->data, src->len);
}

/* Response: size, correlation id, TAG_BUFFER when flexible, body. */
static void resp_frame(buf *out, int32_t corr, bool flex, const buf *body)
{
    w32(out, (int32_t)(4 + (flex ? 1 : 0) + body->len));
    w32(out, corr);
    if (flex)
        wtags0(out);
    wbuf(out, body);
}

static bool req_flexible(int key, int ver)
{
    switch (key) {
    case 0:
        return ver >= 9;
    case 1:
        return ver >= 12;
    case 3:
        return ver >= 9;
    case 10:
        return ver >= 3;
    case 18:
        return ver >= 3;
    case 60:
        return true;
    default:
        return false;
    }
}

/* Request with header v1/v2; Produce gets acks, other APIs a token body. */
static void req_frame(buf *out, int key, int ver, int32_t corr, const char *client_id, int acks)
{
    buf b = {0};
    bool flex = req_flexible(key, ver);
    w16(&b, key);
    w16(&b, ver);
    w32(&b, corr);
    wstr(&b, false, client_id);
    if (flex)
        wtags0(&b);
    if (key == 0) {
        if (ver >= 3)
            wstr(&b, flex, NULL); /* transactional_id */
        w16(&b, acks);
        w32(&b, 30000);
        warr(&b, flex, 0);
        if (flex)
            wtags0(&b);
    } else {
        warr(&b, flex, 0);
        if (flex)
            wtags0(&b);
    }
    w32(out, (int32_t)b.len);
    wbuf(out, &b);
    buf_free(&b);
}

/* ---- driving ----------------------------------------------------------- */

typedef struct mapper {
    int calls;
    int keep; /* return 0 for every broker */
    int nodes_seen;
    int key_seen;
} mapper;

/* The callback's user data. */
typedef struct ctx {
    kafka_conn *c;
    mapper m;
} ctx;

static int map_fn(void *ud, int32_t node_id, const char *host, size_t host_len, int32_t port,
                  char *new_host, size_t cap, int32_t *new_port)
{
    ctx *x = ud;
    mapper *m = &x->m;
    (void)host;
    (void)port;
    m->calls++;
    m->nodes_seen = kafka_resp_nodes(x->c);
    m->key_seen = kafka_resp_api_key(x->c);
    if (m->keep || host_len == 0)
        return 0;
    snprintf(new_host, cap, "127.0.0.%d", 10 + (int)node_id);
    *new_port = 9000 + node_id;
    return 1;
}

static void ctx_init(ctx *x)
{
    memset(x, 0, sizeof(*x));
    x->c = kafka_conn_new(map_fn, x);
}

static void emit_buf(void *ud, const uint8_t *p, size_t n)
{
    buf_append(ud, p, n);
}

static void expect(kafka_conn *c, int key, int ver, int32_t corr)
{
    buf r = {0};
    req_frame(&r, key, ver, corr, "kcat", 1);
    kafka_req_feed(c, (const uint8_t *)r.data, r.len);
    buf_free(&r);
}

/* Feeds a request then its response; returns the output. */
static buf roundtrip(ctx *x, int key, int ver, int32_t corr, const buf *resp)
{
    buf out = {0};
    expect(x->c, key, ver, corr);
    kafka_resp_feed(x->c, (const uint8_t *)resp->data, resp->len, emit_buf, &out);
    return out;
}

static bool same(const buf *a, const buf *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static const char *const orig_hosts[3] = {"localhost", "kafka-2.example.internal", "10.0.0.3"};
static const int32_t orig_ports[3] = {9092, 9093, 19094};
static const char *const new_hosts[3] = {"127.0.0.11", "127.0.0.12", "127.0.0.13"};
static const int32_t new_ports[3] = {9001, 9002, 9003};

/* ---- sniffing ---------------------------------------------------------- */

static void postgres_startup(buf *b, int minor, const char *const *params)
{
    buf body = {0};
    w16(&body, 3);
    w16(&body, minor);
    for (int i = 0; params[i]; i++)
        buf_append(&body, params[i], strlen(params[i]) + 1);
    w8(&body, 0);
    w32(b, (int32_t)(body.len + 4)); /* PostgreSQL lengths count themselves */
    wbuf(b, &body);
    buf_free(&body);
}

TEST(sniff)
{
    static const char *const pg1[] = {"user", "alice", "database", "shop", NULL};
    static const char *const pg2[] = {"user",
                                      "a",
                                      "database",
                                      "d",
                                      "application_name",
                                      "psql-with-a-rather-long-application-name-to-make-it-big",
                                      "client_encoding",
                                      "UTF8",
                                      "options",
                                      "-c search_path=public,other,another,and_more",
                                      NULL};
    static const char *const pg3[] = {"database", "x", "user", "postgres", NULL};
    static const char *const pg4[] = {"_pq_.protocol", "x", "user", "u", NULL};
    struct {
        const char *name;
        buf b;
        int want;
    } t[24];
    size_t nt = 0;
    memset(t, 0, sizeof(t));

    t[nt].name = "postgres startup";
    postgres_startup(&t[nt].b, 0, pg1);
    t[nt++].want = KAFKA_NO;
    t[nt].name = "postgres startup, long, user a";
    postgres_startup(&t[nt].b, 0, pg2);
    t[nt++].want = KAFKA_NO;
    t[nt].name = "postgres startup, database first";
    postgres_startup(&t[nt].b, 0, pg3);
    t[nt++].want = KAFKA_NO;
    t[nt].name = "postgres startup 3.2";
    postgres_startup(&t[nt].b, 2, pg4);
    t[nt++].want = KAFKA_NO;
    t[nt].name = "postgres SSLRequest";
    buf_append(&t[nt].b, "\x00\x00\x00\x08\x04\xd2\x16\x2f", 8);
    t[nt++].want = KAFKA_NO;
    t[nt].name = "postgres CancelRequest";
    buf_append(&t[nt].b, "\x00\x00\x00\x10\x04\xd2\x16\x2e\x00\x00\x00\x01\x00\x00\x00\x02", 16);
    t[nt++].want = KAFKA_NO;
    t[nt].name = "TLS ClientHello";
    buf_append(&t[nt].b, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xaa\xbb\xcc", 14);
    t[nt++].want = KAFKA_NO;
    t[nt].name = "HTTP GET";
    buf_append(&t[nt].b, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    t[nt++].want = KAFKA_NO;
    t[nt].name = "HTTP POST";
    buf_append(&t[nt].b, "POST /x HTTP/1.1\r\n", 18);
    t[nt++].want = KAFKA_NO;
    t[nt].name = "redis inline PING";
    buf_append(&t[nt].b, "PING\r\n", 6);
    t[nt++].want = KAFKA_NO;
    t[nt].name = "redis RESP";
    buf_append(&t[nt].b, "*1\r\n$4\r\nPING\r\n", 14);
    t[nt++].want = KAFKA_NO;

    /* kcat / librdkafka's first request: ApiVersions v3 with its software
     * name and version (header v2, flexible body). */
    t[nt].name = "ApiVersions v3 (kcat)";
    {
        buf b = {0};
        w16(&b, 18);
        w16(&b, 3);
        w32(&b, 1);
        wstr(&b, false, "rdkafka");
        wtags0(&b);
        wstr(&b, true, "librdkafka");
        wstr(&b, true, "2.0.2");
        wtags0(&b);
        w32(&t[nt].b, (int32_t)b.len);
        wbuf(&t[nt].b, &b);
        buf_free(&b);
    }
    t[nt++].want = KAFKA_YES;
    t[nt].name = "Metadata v0";
    {
        buf b = {0};
        w16(&b, 3);
        w16(&b, 0);
        w32(&b, 0);
        wstr(&b, false, "rdkafka");
        warr(&b, false, 1);
        wstr(&b, false, "topic");
        w32(&t[nt].b, (int32_t)b.len);
        wbuf(&t[nt].b, &b);
        buf_free(&b);
    }
    t[nt++].want = KAFKA_YES;
    t[nt].name = "ApiVersions v0, null client id";
    req_frame(&t[nt].b, 18, 0, 0, NULL, 1);
    t[nt++].want = KAFKA_YES;
    t[nt].name = "SaslHandshake v1";
    req_frame(&t[nt].b, 17, 1, 7, "consumer-grp-1", 1);
    t[nt++].want = KAFKA_YES;
    t[nt].name = "client id longer than the frame";
    buf_append(&t[nt].b, "\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x01\x00\x40", 14);
    t[nt++].want = KAFKA_NO;

    for (size_t i = 0; i < nt; i++) {
        const uint8_t *p = (const uint8_t *)t[i].b.data;
        int got = kafka_sniff(p, t[i].b.len);
        if (got != t[i].want)
            fprintf(stderr, "sniff %s: got %d want %d\n", t[i].name, got, t[i].want);
        CHECK_INT(got, t[i].want);
        /* Never more than 14 bytes: the verdict is final there. */
        if (t[i].b.len >= 14)
            CHECK_INT(kafka_sniff(p, 14), t[i].want);
        /* A NO never turns into YES with more bytes, and MAYBE only below 14. */
        bool said_no = false;
        for (size_t k = 0; k <= t[i].b.len && k <= 14; k++) {
            int v = kafka_sniff(p, k);
            if (v == KAFKA_MAYBE)
                CHECK(k < 14);
            if (said_no)
                CHECK_INT(v, KAFKA_NO);
            said_no = said_no || v == KAFKA_NO;
        }
        buf_free(&t[i].b);
    }
    /* The text protocols are refused on their first byte. */
    CHECK_INT(kafka_sniff((const uint8_t *)"P", 1), KAFKA_NO);
    CHECK_INT(kafka_sniff((const uint8_t *)"\x16\x03", 2), KAFKA_NO);
    CHECK_INT(kafka_sniff((const uint8_t *)"*", 1), KAFKA_NO);
    CHECK_INT(kafka_sniff((const uint8_t *)"", 0), KAFKA_MAYBE);
    CHECK_INT(kafka_sniff((const uint8_t *)"\x00\x00", 2), KAFKA_MAYBE);
}

/* ---- Metadata ---------------------------------------------------------- */

static void metadata_body(buf *b, int v, const char *const *hosts, const int32_t *ports)
{
    bool f = v >= 9;
    if (v >= 3)
        w32(b, 0x11223344); /* ThrottleTimeMs */
    warr(b, f, 3);
    for (int i = 0; i < 3; i++) {
        w32(b, i + 1);
        wstr(b, f, hosts[i]);
        w32(b, ports[i]);
        if (v >= 1)
            wstr(b, f, i == 1 ? "rack-b" : NULL);
        if (f) {
            if (i == 0)
                wtags_unknown(b, 9);
            else
                wtags0(b);
        }
    }
    if (v >= 2)
        wstr(b, f, v % 2 ? "cluster-xyz" : NULL); /* ClusterId, sometimes null */
    if (v >= 1)
        w32(b, 2); /* ControllerId */
    warr(b, f, 1); /* Topics */
    w16(b, 0);
    wstr(b, f, "orders");
    if (v >= 10)
        wuuid(b, 0x40);
    if (v >= 1)
        w8(b, 0); /* IsInternal */
    warr(b, f, 1);
    w16(b, 0);
    w32(b, 0);
    w32(b, 2); /* leader */
    if (v >= 7)
        w32(b, 17);
    warr(b, f, 1);
    w32(b, 2);
    warr(b, f, 1);
    w32(b, 2);
    if (v >= 5)
        warr(b, f, 0);
    if (f)
        wtags0(b);
    if (v >= 8)
        w32(b, -2147483648); /* TopicAuthorizedOperations */
    if (f)
        wtags0(b);
    if (v >= 8 && v <= 10)
        w32(b, 0x0badcafe); /* ClusterAuthorizedOperations */
    if (v >= 13)
        w16(b, 0);
    if (f)
        wtags_unknown(b, 3);
}

TEST(metadata_all_versions)
{
    for (int v = 0; v <= 13; v++) {
        buf b1 = {0}, b2 = {0}, in = {0}, want = {0};
        metadata_body(&b1, v, orig_hosts, orig_ports);
        metadata_body(&b2, v, new_hosts, new_ports);
        resp_frame(&in, 1000 + v, v >= 9, &b1);
        resp_frame(&want, 1000 + v, v >= 9, &b2);
        ctx x;
        ctx_init(&x);
        buf out = roundtrip(&x, 3, v, 1000 + v, &in);
        if (!same(&out, &want))
            fprintf(stderr, "metadata v%d differs (%zu vs %zu bytes)\n", v, out.len, want.len);
        CHECK(same(&out, &want));
        CHECK_INT(x.m.calls, 3);
        CHECK_INT(x.m.nodes_seen, 3);
        CHECK_INT(x.m.key_seen, 3);
        CHECK_INT(kafka_conn_errors(x.c), 0);
        CHECK_INT(kafka_pending(x.c), 0);
        kafka_stats st;
        kafka_conn_stats(x.c, &st);
        CHECK_INT(st.rewritten, 1);
        kafka_conn_free(x.c);
        buf_free(&b1);
        buf_free(&b2);
        buf_free(&in);
        buf_free(&want);
        buf_free(&out);
    }
}

/* A map that keeps everything gives back the input byte for byte. */
TEST(metadata_keep)
{
    buf b = {0}, in = {0};
    metadata_body(&b, 12, orig_hosts, orig_ports);
    resp_frame(&in, 5, true, &b);
    ctx x;
    ctx_init(&x);
    x.m.keep = 1;
    buf out = roundtrip(&x, 3, 12, 5, &in);
    CHECK(same(&out, &in));
    CHECK_INT(x.m.calls, 3);
    kafka_conn_free(x.c);
    buf_free(&b);
    buf_free(&in);
    buf_free(&out);
}

/* ---- FindCoordinator --------------------------------------------------- */

/* host "-" stands for a null host. */
static void fc_body(buf *b, int v, const char *host, int32_t port, int16_t err, int32_t node,
                    const char *host2, int32_t port2)
{
    bool f = v >= 3;
    if (v >= 1)
        w32(b, 0);
    if (v >= 4) {
        warr(b, true, 2);
        wstr(b, true, "group-a");
        w32(b, node);
        wstr(b, true, strcmp(host, "-") ? host : NULL);
        w32(b, port);
        w16(b, err);
        wstr(b, true, err ? "coordinator not available" : NULL);
        wtags0(b);
        wstr(b, true, "group-b");
        w32(b, 3);
        wstr(b, true, host2);
        w32(b, port2);
        w16(b, 0);
        wstr(b, true, NULL);
        wtags_unknown(b, 1);
        wtags0(b);
        return;
    }
    w16(b, err);
    if (v >= 1)
        wstr(b, f, err ? "coordinator not available" : NULL);
    w32(b, node);
    wstr(b, f, strcmp(host, "-") ? host : NULL);
    w32(b, port);
    if (f)
        wtags_unknown(b, 4);
}

TEST(find_coordinator)
{
    for (int v = 0; v <= 6; v++) {
        /* A good answer is rewritten. */
        buf b1 = {0}, b2 = {0}, in = {0}, want = {0};
        fc_body(&b1, v, "kafka-2.example.internal", 9093, 0, 2, "10.0.0.3", 19094);
        fc_body(&b2, v, "127.0.0.12", 9002, 0, 2, "127.0.0.13", 9003);
        resp_frame(&in, 77, v >= 3, &b1);
        resp_frame(&want, 77, v >= 3, &b2);
        ctx x;
        ctx_init(&x);
        buf out = roundtrip(&x, 10, v, 77, &in);
        if (!same(&out, &want))
            fprintf(stderr, "find_coordinator v%d differs\n", v);
        CHECK(same(&out, &want));
        CHECK_INT(x.m.calls, v >= 4 ? 2 : 1);
        CHECK_INT(x.m.nodes_seen, v >= 4 ? 2 : 1);
        kafka_conn_free(x.c);
        buf_free(&b1);
        buf_free(&b2);
        buf_free(&in);
        buf_free(&want);
        buf_free(&out);

        /* Error answers: Java's (-1, "", -1) and the mock's null host are
         * left alone; on v4+ only the good coordinator is rewritten. */
        const char *errhosts[2] = {"", "-"};
        for (int k = 0; k < 2; k++) {
            buf e1 = {0}, e2 = {0}, ein = {0}, ewant = {0};
            fc_body(&e1, v, errhosts[k], -1, 15, -1, "10.0.0.3", 19094);
            fc_body(&e2, v, errhosts[k], -1, 15, -1, "127.0.0.13", 9003);
            resp_frame(&ein, 78, v >= 3, &e1);
            resp_frame(&ewant, 78, v >= 3, v >= 4 ? &e2 : &e1);
            ctx y;
            ctx_init(&y);
            buf eout = roundtrip(&y, 10, v, 78, &ein);
            CHECK(same(&eout, &ewant));
            CHECK_INT(y.m.calls, v >= 4 ? 1 : 0);
            CHECK_INT(kafka_conn_errors(y.c), 0);
            kafka_conn_free(y.c);
            buf_free(&e1);
            buf_free(&e2);
            buf_free(&ein);
            buf_free(&ewant);
            buf_free(&eout);
        }
    }
}

/* ---- DescribeCluster --------------------------------------------------- */

static void dc_body(buf *b, int v, const char *const *hosts, const int32_t *ports)
{
    w32(b, 0);
    w16(b, 0);
    wstr(b, true, NULL);
    if (v >= 1)
        w8(b, 1); /* EndpointType: brokers */
    wstr(b, true, "cluster-xyz");
    w32(b, 1);
    warr(b, true, 3);
    for (int i = 0; i < 3; i++) {
        w32(b, i + 1);
        wstr(b, true, hosts[i]);
        w32(b, ports[i]);
        wstr(b, true, i == 2 ? "rack-c" : NULL);
        if (v >= 2)
            w8(b, i == 1);
        if (i == 2)
            wtags_unknown(b, 0);
        else
            wtags0(b);
    }
    w32(b, 0x7fff);
    wtags0(b);
}

TEST(describe_cluster)
{
    for (int v = 0; v <= 2; v++) {
        buf b1 = {0}, b2 = {0}, in = {0}, want = {0};
        dc_body(&b1, v, orig_hosts, orig_ports);
        dc_body(&b2, v, new_hosts, new_ports);
        resp_frame(&in, 9, true, &b1);
        resp_frame(&want, 9, true, &b2);
        ctx x;
        ctx_init(&x);
        buf out = roundtrip(&x, 60, v, 9, &in);
        CHECK(same(&out, &want));
        CHECK_INT(x.m.calls, 3);
        kafka_conn_free(x.c);
        buf_free(&b1);
        buf_free(&b2);
        buf_free(&in);
        buf_free(&want);
        buf_free(&out);
    }
}

/* ---- Produce / Fetch NodeEndpoints ------------------------------------- */

static void node_endpoints_tags(buf *b, bool with, const char *const *hosts, const int32_t *ports)
{
    if (!with) {
        wtags_unknown(b, 5);
        return;
    }
    buf ne = {0};
    warr(&ne, true, 2);
    for (int i = 1; i < 3; i++) {
        w32(&ne, i + 1);
        wstr(&ne, true, hosts[i]);
        w32(&ne, ports[i]);
        wstr(&ne, true, i == 2 ? "rack-c" : NULL);
        wtags0(&ne);
    }
    wuv(b, 2);
    wuv(b, 0); /* NodeEndpoints */
    wuv(b, (uint32_t)ne.len);
    wbuf(b, &ne);
    wuv(b, 7); /* something newer we do not know */
    wuv(b, 2);
    buf_append(b, "zz", 2);
    buf_free(&ne);
}

static void produce_body(buf *b, int v, bool with, const char *const *hosts, const int32_t *ports)
{
    warr(b, true, 1);
    if (v >= 13)
        wuuid(b, 0x20);
    else
        wstr(b, true, "orders");
    warr(b, true, 1);
    w32(b, 0);
    w16(b, 6); /* NOT_LEADER_OR_FOLLOWER */
    w64(b, -1);
    w64(b, -1);
    w64(b, -1);
    warr(b, true, 1); /* RecordErrors */
    w32(b, 0);
    wstr(b, true, NULL);
    wtags0(b);
    wstr(b, true, "not the leader");
    wuv(b, 1); /* CurrentLeader, tag 0 of the partition */
    wuv(b, 0);
    wuv(b, 9);
    w32(b, 3);
    w32(b, 5);
    wtags0(b); /* its own TAG_BUFFER */
    wtags0(b);
    w32(b, 0); /* ThrottleTimeMs */
    node_endpoints_tags(b, with, hosts, ports);
}

static void fetch_body(buf *b, bool with, const char *const *hosts, const int32_t *ports)
{
    w32(b, 0);
    w16(b, 0);
    w32(b, 0x5e55);
    warr(b, true, 1);
    wuuid(b, 0x30);
    warr(b, true, 2);
    /* A partition with records and no aborted transactions. */
    w32(b, 0);
    w16(b, 0);
    w64(b, 100);
    w64(b, 100);
    w64(b, 0);
    wuv(b, 0); /* AbortedTransactions: null */
    w32(b, -1);
    const char rec[] = "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10some-record-bytes";
    wuv(b, (uint32_t)sizeof(rec)); /* length + 1 */
    buf_append(b, rec, sizeof(rec) - 1);
    wtags0(b);
    /* A partition that moved, with an aborted transaction and null records. */
    w32(b, 1);
    w16(b, 6);
    w64(b, -1);
    w64(b, -1);
    w64(b, -1);
    warr(b, true, 1);
    w64(b, 4242);
    w64(b, 17);
    wtags0(b);
    w32(b, -1);
    wuv(b, 0);
    wuv(b, 1); /* CurrentLeader is tag 1 in Fetch */
    wuv(b, 1);
    wuv(b, 9);
    w32(b, 3);
    w32(b, 5);
    wtags0(b);
    wtags0(b);
    node_endpoints_tags(b, with, hosts, ports);
}

TEST(produce_fetch)
{
    for (int api = 0; api <= 1; api++) {
        int lo = api == 0 ? 10 : 16, hi = api == 0 ? 13 : 18;
        for (int v = lo; v <= hi; v++) {
            for (int with = 0; with <= 1; with++) {
                buf b1 = {0}, b2 = {0}, in = {0}, want = {0};
                if (api == 0) {
                    produce_body(&b1, v, with, orig_hosts, orig_ports);
                    produce_body(&b2, v, with, new_hosts, new_ports);
                } else {
                    fetch_body(&b1, with, orig_hosts, orig_ports);
                    fetch_body(&b2, with, new_hosts, new_ports);
                }
                resp_frame(&in, 300 + v, true, &b1);
                resp_frame(&want, 300 + v, true, &b2);
                ctx x;
                ctx_init(&x);
                buf out = roundtrip(&x, api, v, 300 + v, &in);
                if (!same(&out, &want))
                    fprintf(stderr, "api %d v%d with=%d differs\n", api, v, with);
                CHECK(same(&out, &want));
                CHECK_INT(x.m.calls, with ? 2 : 0);
                CHECK_INT(kafka_conn_errors(x.c), 0);
                kafka_conn_free(x.c);
                buf_free(&b1);
                buf_free(&b2);
                buf_free(&in);
                buf_free(&want);
                buf_free(&out);
            }
        }
    }
    /* Older versions are not even held: Produce v9 passes as it comes. */
    buf b = {0}, in = {0};
    produce_body(&b, 9, true, orig_hosts, orig_ports);
    resp_frame(&in, 1, true, &b);
    ctx x;
    ctx_init(&x);
    expect(x.c, 0, 9, 1);
    buf out = {0};
    kafka_resp_feed(x.c, (const uint8_t *)in.data, 20, emit_buf, &out);
    CHECK_INT(out.len, 20);
    CHECK_INT(kafka_resp_held(x.c), 0);
    kafka_resp_feed(x.c, (const uint8_t *)in.data + 20, in.len - 20, emit_buf, &out);
    CHECK(same(&out, &in));
    CHECK_INT(x.m.calls, 0);
    kafka_conn_free(x.c);
    buf_free(&b);
    buf_free(&in);
    buf_free(&out);
}

/* ---- correlation FIFO -------------------------------------------------- */

TEST(fifo_pipelining)
{
    ctx x;
    ctx_init(&x);
    buf req = {0};
    char long_id[600];
    memset(long_id, 'c', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    req_frame(&req, 18, 3, 1, "kcat", 1); /* ApiVersions */
    req_frame(&req, 3, 12, 2, "kcat", 1); /* Metadata */
    req_frame(&req, 0, 9, 3, "kcat", 0);  /* acks=0: seen, not recorded */
    req_frame(&req, 0, 7, 4, long_id, 0); /* acks=0 past the capture: recorded */
    req_frame(&req, 1, 11, 5, "kcat", 1); /* Fetch, nothing to rewrite */
    req_frame(&req, 3, 1, 6, "kcat", 1);  /* Metadata */
    req_frame(&req, 10, 2, 7, "kcat", 1); /* FindCoordinator */
    CHECK_INT(kafka_req_feed(x.c, (const uint8_t *)req.data, req.len), 0);
    CHECK_INT(kafka_pending(x.c), 6);
    kafka_stats st;
    kafka_conn_stats(x.c, &st);
    CHECK_INT(st.acks0, 1);

    /* Responses in order; the one for corr 4 never comes. */
    buf in = {0}, want = {0}, b = {0}, bw = {0};
    buf av = {0};
    w16(&av, 0);
    warr(&av, true, 0);
    w32(&av, 0);
    wtags0(&av);
    resp_frame(&in, 1, false, &av); /* ApiVersions: header v0 */
    resp_frame(&want, 1, false, &av);
    metadata_body(&b, 12, orig_hosts, orig_ports);
    metadata_body(&bw, 12, new_hosts, new_ports);
    resp_frame(&in, 2, true, &b);
    resp_frame(&want, 2, true, &bw);
    buf fb = {0};
    w32(&fb, 0);
    w16(&fb, 0);
    w32(&fb, 0);
    warr(&fb, false, 0);
    resp_frame(&in, 5, false, &fb);
    resp_frame(&want, 5, false, &fb);
    buf m1 = {0}, m1w = {0};
    metadata_body(&m1, 1, orig_hosts, orig_ports);
    metadata_body(&m1w, 1, new_hosts, new_ports);
    resp_frame(&in, 6, false, &m1);
    resp_frame(&want, 6, false, &m1w);
    buf f1 = {0}, f1w = {0};
    fc_body(&f1, 2, "localhost", 9092, 0, 1, NULL, 0);
    fc_body(&f1w, 2, "127.0.0.11", 9001, 0, 1, NULL, 0);
    resp_frame(&in, 7, false, &f1);
    resp_frame(&want, 7, false, &f1w);

    buf out = {0};
    CHECK_INT(kafka_resp_feed(x.c, (const uint8_t *)in.data, in.len, emit_buf, &out), 0);
    CHECK(same(&out, &want));
    CHECK_INT(kafka_pending(x.c), 0);
    kafka_conn_stats(x.c, &st);
    CHECK_INT(st.skipped, 1);
    CHECK_INT(st.rewritten, 3);
    CHECK_INT(st.unmatched, 0);

    /* An id nobody asked for passes through and leaves the FIFO alone. */
    expect(x.c, 3, 12, 50);
    buf stray = {0}, sout = {0};
    resp_frame(&stray, 49, true, &b);
    kafka_resp_feed(x.c, (const uint8_t *)stray.data, stray.len, emit_buf, &sout);
    CHECK(same(&sout, &stray));
    CHECK_INT(kafka_pending(x.c), 1);

    kafka_conn_free(x.c);
    buf *all[] = {&req, &in, &want, &b, &bw, &av, &fb, &m1, &m1w, &f1, &f1w, &out, &stray, &sout};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++)
        buf_free(all[i]);
}

/* The FIFO stays bounded when acks=0 requests we cannot recognise pile up. */
TEST(fifo_bound)
{
    ctx x;
    ctx_init(&x);
    buf req = {0};
    for (int i = 0; i < KAFKA_INFLIGHT_MAX + 10; i++) {
        req.len = 0;
        req_frame(&req, 0, 3, i, NULL, 1);
        kafka_req_feed(x.c, (const uint8_t *)req.data, req.len);
    }
    CHECK_INT(kafka_pending(x.c), KAFKA_INFLIGHT_MAX);
    kafka_stats st;
    kafka_conn_stats(x.c, &st);
    CHECK_INT(st.dropped, 10);
    kafka_conn_free(x.c);
    buf_free(&req);
}

/* ---- SASL, zero-length frames, broken framing -------------------------- */

TEST(sasl_v0)
{
    ctx x;
    ctx_init(&x);
    buf s = {0};
    req_frame(&s, 17, 0, 1, "kcat", 1); /* SaslHandshake v0 */
    /* A raw PLAIN token that happens to read like a Metadata v0 header. */
    w32(&s, 14);
    buf_append(&s, "\x00\x03\x00\x00\x00\x00\x00\x63\x00u\x00pw\x00", 14);
    w32(&s, 0);                        /* a zero-length frame */
    req_frame(&s, 3, 1, 2, "kcat", 1); /* back to requests */
    CHECK_INT(kafka_req_feed(x.c, (const uint8_t *)s.data, s.len), 0);
    CHECK_INT(kafka_pending(x.c), 2);

    /* Handshake response, raw token response (no correlation id), then a
     * rewritten Metadata. */
    buf in = {0}, want = {0}, hb = {0}, b = {0}, bw = {0};
    w16(&hb, 0);
    warr(&hb, false, 1);
    wstr(&hb, false, "PLAIN");
    resp_frame(&in, 1, false, &hb);
    w32(&in, 0); /* empty server token */
    wbuf(&want, &in);
    metadata_body(&b, 1, orig_hosts, orig_ports);
    metadata_body(&bw, 1, new_hosts, new_ports);
    resp_frame(&in, 2, false, &b);
    resp_frame(&want, 2, false, &bw);
    buf out = {0};
    kafka_resp_feed(x.c, (const uint8_t *)in.data, in.len, emit_buf, &out);
    CHECK(same(&out, &want));
    CHECK_INT(kafka_pending(x.c), 0);
    kafka_conn_free(x.c);
    buf *all[] = {&s, &in, &want, &hb, &b, &bw, &out};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++)
        buf_free(all[i]);
}

TEST(broken_framing)
{
    ctx x;
    ctx_init(&x);
    const uint8_t huge[] = {0x16, 0x03, 0x01, 0x00, 0x10};
    CHECK_INT(kafka_req_feed(x.c, huge, sizeof(huge)), -EPROTO);
    CHECK_INT(kafka_req_feed(x.c, huge, 1), -EPROTO);
    CHECK(kafka_conn_errors(x.c) == 1);
    CHECK(strlen(kafka_last_error(x.c)) > 0);

    /* A negative response size: everything passes through, from then on. */
    const uint8_t neg[] = {0xff, 0xff, 0xff, 0xf0, 1, 2, 3};
    buf out = {0};
    CHECK_INT(kafka_resp_feed(x.c, neg, sizeof(neg), emit_buf, &out), -EPROTO);
    CHECK_INT(kafka_resp_feed(x.c, neg, 3, emit_buf, &out), -EPROTO);
    CHECK_INT(out.len, sizeof(neg) + 3);
    CHECK(memcmp(out.data, neg, sizeof(neg)) == 0);
    kafka_conn_free(x.c);
    buf_free(&out);

    /* A negative request size is broken too. */
    ctx y;
    ctx_init(&y);
    CHECK_INT(kafka_req_feed(y.c, neg, 4), -EPROTO);
    kafka_conn_free(y.c);
}

TEST(malformed)
{
    /* Claims 5 brokers, has 3: passed through unchanged, one error. */
    buf b = {0}, in = {0};
    metadata_body(&b, 1, orig_hosts, orig_ports);
    b.data[3] = 5;
    resp_frame(&in, 8, false, &b);
    ctx x;
    ctx_init(&x);
    buf out = roundtrip(&x, 3, 1, 8, &in);
    CHECK(same(&out, &in));
    CHECK_INT(kafka_conn_errors(x.c), 1);
    CHECK(strstr(kafka_last_error(x.c), "malformed") != NULL);
    CHECK_INT(x.m.calls, 0);
    kafka_conn_free(x.c);

    /* A Produce cut short inside its top-level TAG_BUFFER. */
    buf p = {0}, pin = {0};
    produce_body(&p, 10, true, orig_hosts, orig_ports);
    p.len -= 3;
    resp_frame(&pin, 9, true, &p);
    ctx y;
    ctx_init(&y);
    buf pout = roundtrip(&y, 0, 10, 9, &pin);
    CHECK(same(&pout, &pin));
    CHECK_INT(kafka_conn_errors(y.c), 1);
    kafka_conn_free(y.c);
    buf *all[] = {&b, &in, &out, &p, &pin, &pout};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++)
        buf_free(all[i]);
}

/* ---- chunking ---------------------------------------------------------- */

TEST(split_everywhere)
{
    /* A request stream and a response stream, each cut at every byte. */
    buf req = {0};
    req_frame(&req, 18, 3, 1, "kcat", 1);
    req_frame(&req, 3, 9, 2, "kcat", 1);
    req_frame(&req, 0, 9, 3, "kcat", 0);
    req_frame(&req, 1, 16, 4, "kcat", 1);
    req_frame(&req, 60, 1, 5, "kcat", 1);

    buf in = {0}, want = {0}, t = {0};
    w16(&t, 0);
    warr(&t, false, 0);
    resp_frame(&in, 1, false, &t);
    resp_frame(&want, 1, false, &t);
    t.len = 0;
    metadata_body(&t, 9, orig_hosts, orig_ports);
    resp_frame(&in, 2, true, &t);
    t.len = 0;
    metadata_body(&t, 9, new_hosts, new_ports);
    resp_frame(&want, 2, true, &t);
    t.len = 0;
    fetch_body(&t, true, orig_hosts, orig_ports);
    resp_frame(&in, 4, true, &t);
    t.len = 0;
    fetch_body(&t, true, new_hosts, new_ports);
    resp_frame(&want, 4, true, &t);
    t.len = 0;
    dc_body(&t, 1, orig_hosts, orig_ports);
    resp_frame(&in, 5, true, &t);
    t.len = 0;
    dc_body(&t, 1, new_hosts, new_ports);
    resp_frame(&want, 5, true, &t);

    int bad = 0;
    for (size_t cut = 0; cut <= req.len; cut++) {
        ctx x;
        ctx_init(&x);
        kafka_req_feed(x.c, (const uint8_t *)req.data, cut);
        kafka_req_feed(x.c, (const uint8_t *)req.data + cut, req.len - cut);
        if (kafka_pending(x.c) != 4)
            bad++;
        buf out = {0};
        kafka_resp_feed(x.c, (const uint8_t *)in.data, in.len, emit_buf, &out);
        if (!same(&out, &want))
            bad++;
        kafka_conn_free(x.c);
        buf_free(&out);
    }
    CHECK_INT(bad, 0);
    for (size_t cut = 0; cut <= in.len; cut++) {
        ctx x;
        ctx_init(&x);
        kafka_req_feed(x.c, (const uint8_t *)req.data, req.len);
        buf out = {0};
        kafka_resp_feed(x.c, (const uint8_t *)in.data, cut, emit_buf, &out);
        kafka_resp_feed(x.c, (const uint8_t *)in.data + cut, in.len - cut, emit_buf, &out);
        if (!same(&out, &want))
            bad++;
        kafka_conn_free(x.c);
        buf_free(&out);
    }
    CHECK_INT(bad, 0);
    /* One byte at a time, both ways. */
    ctx x;
    ctx_init(&x);
    for (size_t i = 0; i < req.len; i++)
        kafka_req_feed(x.c, (const uint8_t *)req.data + i, 1);
    buf out = {0};
    for (size_t i = 0; i < in.len; i++)
        kafka_resp_feed(x.c, (const uint8_t *)in.data + i, 1, emit_buf, &out);
    CHECK(same(&out, &want));
    CHECK_INT(kafka_pending(x.c), 0);
    kafka_conn_free(x.c);
    buf *all[] = {&req, &in, &want, &t, &out};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++)
        buf_free(all[i]);
}

/* ---- the hold cap ------------------------------------------------------ */

typedef struct counting {
    buf b;
    size_t calls;
} counting;

static void emit_count(void *ud, const uint8_t *p, size_t n)
{
    counting *k = ud;
    k->calls++;
    buf_append(&k->b, p, n);
}

TEST(oversized_streams)
{
    /* A Fetch v16 with 2 MiB of records and NodeEndpoints: too big to hold,
     * so it streams through unchanged as it arrives. */
    buf b = {0}, in = {0};
    w32(&b, 0);
    w16(&b, 0);
    w32(&b, 0);
    warr(&b, true, 1);
    wuuid(&b, 1);
    warr(&b, true, 1);
    w32(&b, 0);
    w16(&b, 0);
    w64(&b, 1);
    w64(&b, 1);
    w64(&b, 0);
    wuv(&b, 0);
    w32(&b, -1);
    size_t big = 2 * 1024 * 1024;
    wuv(&b, (uint32_t)big + 1);
    size_t at = b.len;
    for (size_t i = 0; i < big; i++)
        w8(&b, (int)(i * 7));
    CHECK(b.len == at + big);
    wtags0(&b);
    wtags0(&b);
    node_endpoints_tags(&b, true, orig_hosts, orig_ports);
    resp_frame(&in, 42, true, &b);

    ctx x;
    ctx_init(&x);
    expect(x.c, 1, 16, 42);
    counting k = {{0}, 0};
    size_t max_held = 0;
    for (size_t off = 0; off < in.len; off += 65536) {
        size_t n = in.len - off < 65536 ? in.len - off : 65536;
        kafka_resp_feed(x.c, (const uint8_t *)in.data + off, n, emit_count, &k);
        if (kafka_resp_held(x.c) > max_held)
            max_held = kafka_resp_held(x.c);
        /* Everything fed so far is out already. */
        if (k.b.len != off + n)
            break;
    }
    CHECK(same(&k.b, &in));
    CHECK(max_held < 8);
    CHECK_INT(x.m.calls, 0);
    kafka_stats st;
    kafka_conn_stats(x.c, &st);
    CHECK_INT(st.oversized, 1);
    CHECK_INT(st.held, 0);
    kafka_conn_free(x.c);

    /* A lowered cap applies to Metadata too. */
    buf m = {0}, min = {0};
    metadata_body(&m, 4, orig_hosts, orig_ports);
    resp_frame(&min, 3, false, &m);
    ctx y;
    ctx_init(&y);
    kafka_conn_set_hold_max(y.c, 64);
    buf out = roundtrip(&y, 3, 4, 3, &min);
    CHECK(same(&out, &min));
    CHECK_INT(y.m.calls, 0);
    kafka_conn_free(y.c);
    buf *all[] = {&b, &in, &k.b, &m, &min, &out};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++)
        buf_free(all[i]);
}

/* ---- release ----------------------------------------------------------- */

TEST(release)
{
    buf b = {0}, in = {0};
    metadata_body(&b, 5, orig_hosts, orig_ports);
    resp_frame(&in, 3, false, &b);
    ctx x;
    ctx_init(&x);
    expect(x.c, 3, 5, 3);
    buf out = {0};
    kafka_resp_feed(x.c, (const uint8_t *)in.data, 30, emit_buf, &out);
    CHECK_INT(out.len, 0); /* held */
    CHECK_INT(kafka_resp_held(x.c), 30);
    kafka_resp_release(x.c, emit_buf, &out);
    CHECK_INT(kafka_resp_held(x.c), 0);
    kafka_resp_feed(x.c, (const uint8_t *)in.data + 30, in.len - 30, emit_buf, &out);
    CHECK(same(&out, &in));
    CHECK_INT(x.m.calls, 0);
    kafka_conn_free(x.c);
    buf_free(&b);
    buf_free(&in);
    buf_free(&out);
}

/* Pass-through frames reach emit in one call per fed chunk, not per frame. */
TEST(coalesced_emit)
{
    ctx x;
    ctx_init(&x);
    buf req = {0}, in = {0}, t = {0};
    w32(&t, 0);
    for (int i = 0; i < 10; i++) {
        req_frame(&req, 9, 5, i, "kcat", 1); /* OffsetFetch: never rewritten */
        resp_frame(&in, i, false, &t);
    }
    kafka_req_feed(x.c, (const uint8_t *)req.data, req.len);
    counting k = {{0}, 0};
    kafka_resp_feed(x.c, (const uint8_t *)in.data, in.len, emit_count, &k);
    CHECK(same(&k.b, &in));
    CHECK_INT(k.calls, 1);
    kafka_conn_free(x.c);
    buf *all[] = {&req, &in, &t, &k.b};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++)
        buf_free(all[i]);
}

/* ---- counting distinct brokers ------------------------------------------ */

/* A Metadata v12 response naming n brokers with these node ids; a port <= 0
 * or an empty host makes an address that names no broker (an error reply). */
static void metadata_many(buf *in, int32_t corr, int n, const int32_t *ids, const int32_t *ports,
                          const bool *empty)
{
    buf b = {0};
    w32(&b, 0); /* ThrottleTimeMs */
    warr(&b, true, n);
    for (int i = 0; i < n; i++) {
        char h[64];
        snprintf(h, sizeof(h), "kafka-%d.example.internal", i);
        w32(&b, ids[i]);
        wstr(&b, true, empty && empty[i] ? "" : h);
        w32(&b, ports ? ports[i] : 9092);
        wstr(&b, true, NULL); /* Rack */
        wtags0(&b);
    }
    wstr(&b, true, NULL); /* ClusterId */
    w32(&b, 1);           /* ControllerId */
    warr(&b, true, 0);    /* Topics */
    wtags0(&b);
    resp_frame(in, corr, true, &b);
    buf_free(&b);
}

/* Feeds the response and checks what kafka_resp_nodes() said and how often
 * the map was asked; keep makes the map keep every broker. */
static void check_nodes(int n, const int32_t *ids, const int32_t *ports, const bool *empty,
                        bool keep, int want_nodes, int want_calls)
{
    buf in = {0};
    metadata_many(&in, 77, n, ids, ports, empty);
    ctx x;
    ctx_init(&x);
    x.m.keep = keep;
    buf out = roundtrip(&x, 3, 12, 77, &in);
    CHECK_INT(x.m.calls, want_calls);
    CHECK_INT(x.m.nodes_seen, want_nodes);
    CHECK_INT(kafka_conn_errors(x.c), 0);
    kafka_stats st;
    kafka_conn_stats(x.c, &st);
    CHECK_INT(st.rewritten, !keep && want_calls > 0);
    CHECK(same(&out, &in) == (keep || want_calls == 0));
    kafka_conn_free(x.c);
    buf_free(&in);
    buf_free(&out);
}

TEST(nodes_duplicates)
{
    /* A few, sorted neither way, repeated; only usable addresses count. */
    static const int32_t ids[] = {7, 2, 7, 5, 2, -1, 9, 11, 7};
    static const int32_t ports[] = {9092, 9093, 9094, 9092, 9092, -1, 9092, 0, 9092};
    static const bool empty[] = {false, false, false, false, false, false, true, false, false};
    check_nodes(9, ids, ports, empty, false, 3, 6);

    /* KAFKA_SITES_MAX addresses (the cap, still rewritten) over 64 node ids,
     * every id seen 64 times, interleaved. */
    static int32_t many[KAFKA_SITES_MAX];
    for (int i = 0; i < KAFKA_SITES_MAX; i++)
        many[i] = 1000 - i % 64;
    check_nodes(KAFKA_SITES_MAX, many, NULL, NULL, false, 64, KAFKA_SITES_MAX);

    /* One node id named by every address: still a single broker. */
    for (int i = 0; i < KAFKA_SITES_MAX; i++)
        many[i] = 3;
    check_nodes(KAFKA_SITES_MAX, many, NULL, NULL, false, 1, KAFKA_SITES_MAX);

    /* Node ids at both ends of the int32 range (the compare must not
     * overflow); kept, since the test map derives an address from the id. */
    static const int32_t ext[] = {INT32_MIN, INT32_MAX, 0, INT32_MIN, INT32_MAX, -2};
    check_nodes(6, ext, NULL, NULL, true, 4, 6);
}

/* 4096 distinct brokers, which is exactly KAFKA_SITES_MAX. */
TEST(nodes_4096_distinct)
{
    static int32_t ids[4096];
    CHECK_INT(KAFKA_SITES_MAX, 4096);
    for (int i = 0; i < 4096; i++)
        ids[i] = 4096 - i; /* descending, so the sort has work to do */
    check_nodes(4096, ids, NULL, NULL, false, 4096, 4096);
}

/* Over the cap the response passes through byte for byte, no broker is
 * mapped, and it counts as an error; the next response is handled again. */
TEST(nodes_over_cap)
{
    static int32_t ids[KAFKA_SITES_MAX + 1];
    for (int dup = 0; dup <= 1; dup++) {
        for (int i = 0; i <= KAFKA_SITES_MAX; i++)
            ids[i] = dup ? 1 : i + 1; /* the cap counts addresses, not node ids */
        buf in = {0};
        metadata_many(&in, 78, KAFKA_SITES_MAX + 1, ids, NULL, NULL);
        ctx x;
        ctx_init(&x);
        buf out = roundtrip(&x, 3, 12, 78, &in);
        CHECK(same(&out, &in));
        CHECK_INT(x.m.calls, 0);
        CHECK_INT(kafka_conn_errors(x.c), 1);
        CHECK(strstr(kafka_last_error(x.c), "too many brokers") != NULL);
        kafka_stats st;
        kafka_conn_stats(x.c, &st);
        CHECK_INT(st.rewritten, 0);
        CHECK_INT(kafka_pending(x.c), 0);

        buf small = {0};
        metadata_many(&small, 79, 2, ids, NULL, NULL);
        buf out2 = roundtrip(&x, 3, 12, 79, &small);
        CHECK_INT(x.m.calls, 2);
        CHECK_INT(x.m.nodes_seen, dup ? 1 : 2);
        kafka_conn_stats(x.c, &st);
        CHECK_INT(st.rewritten, 1);
        kafka_conn_free(x.c);
        buf *all[] = {&in, &out, &small, &out2};
        for (size_t i = 0; i < ARRAY_SIZE(all); i++)
            buf_free(all[i]);
    }
}
