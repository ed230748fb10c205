/* The DNS server against real sockets: UDP and TCP clients in the same loop
 * send queries built with ldns to a server on 127.0.0.1 (ephemeral port). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

/* Only the ldns headers used, none that includes OpenSSL's (see dns.c). */
#include <ldns/common.h>
#include <ldns/error.h>
#include <ldns/buffer.h>
#include <ldns/rdata.h>
#include <ldns/rr.h>
#include <ldns/rbtree.h>
#include <ldns/packet.h>
#include <ldns/host2wire.h>
#include <ldns/wire2host.h>
#include <uv.h>

#include "dns.h"
#include "dns_server.h"
#include "test.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static size_t build_query(const char *name, ldns_rr_type type, uint16_t id, uint8_t **wire)
{
    ldns_pkt *p = NULL;
    if (ldns_pkt_query_new_frm_str(&p, name, type, LDNS_RR_CLASS_IN, LDNS_RD) != LDNS_STATUS_OK)
        return 0;
    ldns_pkt_set_id(p, id);
    size_t len = 0;
    if (ldns_pkt2wire(wire, p, &len) != LDNS_STATUS_OK)
        len = 0;
    ldns_pkt_free(p);
    return len;
}

/* What one answer said: rcode, id, and the first A record's address. */
struct seen {
    int rcode;
    int id;
    int ancount;
    uint32_t addr;
};

static struct seen parse_answer(const uint8_t *wire, size_t len)
{
    struct seen s = {-1, -1, -1, 0};
    ldns_pkt *p = NULL;
    if (ldns_wire2pkt(&p, wire, len) != LDNS_STATUS_OK)
        return s;
    s.rcode = ldns_pkt_get_rcode(p);
    s.id = ldns_pkt_id(p);
    s.ancount = ldns_pkt_ancount(p);
    if (s.ancount > 0) {
        const ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(p), 0);
        if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_A) {
            uint32_t v;
            memcpy(&v, ldns_rdf_data(ldns_rr_rdf(rr, 0)), 4);
            s.addr = ntohl(v);
        }
    }
    ldns_pkt_free(p);
    return s;
}

static void close_cb_flag(void *arg)
{
    *(int *)arg += 1;
}

static dns_zone *make_zone(void)
{
    dns_zone *z = dns_zone_new("loop.test", 5);
    if (z == NULL)
        return NULL;
    dns_record recs[] = {{"web.myapp.loop.test", IP(127, 0, 0, 2)},
                         {"db.myapp.loop.test", IP(127, 0, 0, 3)}};
    if (dns_zone_set(z, recs, 2) != 0) {
        dns_zone_free(z);
        return NULL;
    }
    return z;
}

/* A watchdog so a lost packet fails the test instead of hanging it. */
struct watchdog {
    uv_timer_t timer;
    bool fired;
    void (*on_fire)(void *);
    void *arg;
};

static void watchdog_fire(uv_timer_t *t)
{
    struct watchdog *w = t->data;
    w->fired = true;
    w->on_fire(w->arg);
}

static void watchdog_start(uv_loop_t *loop, struct watchdog *w, void (*fn)(void *), void *arg)
{
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    w->fired = false;
    w->on_fire = fn;
    w->arg = arg;
    uv_timer_start(&w->timer, watchdog_fire, 5000, 0);
}

/* ---- UDP ---- */

struct udp_test {
    uv_loop_t *loop;
    uv_udp_t client;
    struct sockaddr_storage server_addr;
    dns_server *server;
    dns_zone *zone;
    struct watchdog wd;
    int step;
    struct seen seen[4];
    int closed;
    uint8_t rxbuf[4096];
};

static void udp_finish(void *arg)
{
    struct udp_test *t = arg;
    if (!uv_is_closing((uv_handle_t *)&t->client))
        uv_close((uv_handle_t *)&t->client, NULL);
    if (!uv_is_closing((uv_handle_t *)&t->wd.timer))
        uv_close((uv_handle_t *)&t->wd.timer, NULL);
    dns_server_close(t->server, close_cb_flag, &t->closed);
}

static void udp_send_query(struct udp_test *t, const char *name, uint16_t id)
{
    uint8_t *q = NULL;
    size_t len = build_query(name, LDNS_RR_TYPE_A, id, &q);
    uv_buf_t b = uv_buf_init((char *)q, (unsigned)len);
    /* try_send: the query is tiny and the socket buffer empty. */
    int r = uv_udp_try_send(&t->client, &b, 1, (struct sockaddr *)&t->server_addr);
    CHECK_INT(r, (int)len);
    free(q);
}

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct udp_test *t = h->data;
    (void)suggested;
    *b = uv_buf_init((char *)t->rxbuf, sizeof(t->rxbuf));
}

static void udp_client_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *b,
                            const struct sockaddr *from, unsigned flags)
{
    struct udp_test *t = h->data;
    (void)flags;
    if (nread <= 0 || from == NULL)
        return;
    t->seen[t->step++] = parse_answer((const uint8_t *)b->base, (size_t)nread);
    switch (t->step) {
    case 1:
        udp_send_query(t, "example.com", 2);
        break;
    case 2: {
        /* The zone changes under the running server. */
        dns_record recs[] = {{"new.loop.test", IP(127, 0, 0, 7)}};
        CHECK_INT(dns_zone_set(t->zone, recs, 1), 0);
        udp_send_query(t, "api.new.loop.test", 3);
        break;
    }
    case 3:
        udp_send_query(t, "web.myapp.loop.test", 4);
        break;
    default:
        udp_finish(t);
        break;
    }
}

TEST(udp)
{
    static struct udp_test t;
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    t.loop = &loop;
    t.zone = make_zone();
    REQUIRE(t.zone != NULL);
    struct sockaddr_in any;
    uv_ip4_addr("127.0.0.1", 0, &any);
    REQUIRE(dns_server_start(&loop, (struct sockaddr *)&any, t.zone, &t.server) == 0);
    REQUIRE(dns_server_address(t.server, &t.server_addr) == 0);
    CHECK(((struct sockaddr_in *)&t.server_addr)->sin_port != 0);

    uv_udp_init(&loop, &t.client);
    t.client.data = &t;
    REQUIRE(uv_udp_bind(&t.client, (struct sockaddr *)&any, 0) == 0);
    REQUIRE(uv_udp_recv_start(&t.client, udp_alloc, udp_client_recv) == 0);
    watchdog_start(&loop, &t.wd, udp_finish, &t);
    udp_send_query(&t, "web.myapp.loop.test", 1);
    uv_run(&loop, UV_RUN_DEFAULT);

    CHECK(!t.wd.fired);
    CHECK_INT(t.step, 4);
    CHECK_INT(t.seen[0].id, 1);
    CHECK_INT(t.seen[0].rcode, LDNS_RCODE_NOERROR);
    CHECK_INT(t.seen[0].addr, IP(127, 0, 0, 2));
    CHECK_INT(t.seen[1].id, 2);
    CHECK_INT(t.seen[1].rcode, LDNS_RCODE_REFUSED);
    CHECK_INT(t.seen[2].id, 3);
    CHECK_INT(t.seen[2].addr, IP(127, 0, 0, 7));
    CHECK_INT(t.seen[3].id, 4);
    CHECK_INT(t.seen[3].rcode, LDNS_RCODE_NXDOMAIN);
    CHECK_INT(t.closed, 1);
    CHECK_INT(uv_loop_close(&loop), 0);
    dns_zone_free(t.zone);
}

/* Many queries from several clients, all waiting before the server reads:
 * they arrive in recvmmsg batches (of at most 20) mixing the clients, and
 * the batch's answers go out together (sendmmsg). Every client must get an
 * answer for each of its queries, its own ids only, with the right address;
 * a datagram that is itself a response, amid the batch, gets none. */
#define BATCH_CLIENTS 3
#define BATCH_QUERIES 45

struct batch_client {
    uv_udp_t udp;
    struct batch_test *t;
    int index;
    int got;
    bool seen[BATCH_QUERIES];
    int wrong; /* an id not ours, a duplicate, or a wrong answer */
    uint8_t rxbuf[4096];
};

struct batch_test {
    struct batch_client c[BATCH_CLIENTS];
    struct sockaddr_storage server_addr;
    dns_server *server;
    struct watchdog wd;
    int total;
    int closed;
};

static void batch_finish(void *arg)
{
    struct batch_test *t = arg;
    for (int i = 0; i < BATCH_CLIENTS; i++)
        if (!uv_is_closing((uv_handle_t *)&t->c[i].udp))
            uv_close((uv_handle_t *)&t->c[i].udp, NULL);
    if (!uv_is_closing((uv_handle_t *)&t->wd.timer))
        uv_close((uv_handle_t *)&t->wd.timer, NULL);
    dns_server_close(t->server, close_cb_flag, &t->closed);
}

static void batch_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct batch_client *c = h->data;
    (void)suggested;
    *b = uv_buf_init((char *)c->rxbuf, sizeof(c->rxbuf));
}

static void batch_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *b, const struct sockaddr *from,
                       unsigned flags)
{
    struct batch_client *c = h->data;
    (void)flags;
    if (nread <= 0 || from == NULL)
        return;
    struct seen s = parse_answer((const uint8_t *)b->base, (size_t)nread);
    int q = s.id - c->index * 1000;
    if (q < 0 || q >= BATCH_QUERIES || c->seen[q]) {
        c->wrong++;
    } else {
        c->seen[q] = true;
        c->got++;
        /* Even queries ask for web, odd ones for an unknown name. */
        if (q % 2 == 0 ? s.rcode != LDNS_RCODE_NOERROR || s.addr != IP(127, 0, 0, 2)
                       : s.rcode != LDNS_RCODE_NXDOMAIN)
            c->wrong++;
    }
    if (++c->t->total == BATCH_CLIENTS * BATCH_QUERIES)
        batch_finish(c->t);
}

TEST(udp_batch)
{
    static struct batch_test t;
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    dns_zone *z = make_zone();
    REQUIRE(z != NULL);
    struct sockaddr_in any;
    uv_ip4_addr("127.0.0.1", 0, &any);
    REQUIRE(dns_server_start(&loop, (struct sockaddr *)&any, z, &t.server) == 0);
    REQUIRE(dns_server_address(t.server, &t.server_addr) == 0);
    for (int i = 0; i < BATCH_CLIENTS; i++) {
        struct batch_client *c = &t.c[i];
        c->t = &t;
        c->index = i;
        uv_udp_init(&loop, &c->udp);
        c->udp.data = c;
        REQUIRE(uv_udp_bind(&c->udp, (struct sockaddr *)&any, 0) == 0);
        REQUIRE(uv_udp_recv_start(&c->udp, batch_alloc, batch_recv) == 0);
    }
    /* Interleaved, so that every batch the server reads mixes the clients. */
    for (int q = 0; q < BATCH_QUERIES; q++) {
        for (int i = 0; i < BATCH_CLIENTS; i++) {
            uint8_t *w = NULL;
            size_t len = build_query(q % 2 == 0 ? "web.myapp.loop.test" : "nope.loop.test",
                                     LDNS_RR_TYPE_A, (uint16_t)(i * 1000 + q), &w);
            REQUIRE(len > 0);
            uv_buf_t b = uv_buf_init((char *)w, (unsigned)len);
            CHECK_INT(uv_udp_try_send(&t.c[i].udp, &b, 1, (struct sockaddr *)&t.server_addr),
                      (int)len);
            if (q == 10 && i == 1) {
                w[2] |= 0x80; /* a response: dropped, not answered */
                w[0] = 0x77;
                CHECK_INT(uv_udp_try_send(&t.c[i].udp, &b, 1, (struct sockaddr *)&t.server_addr),
                          (int)len);
            }
            free(w);
        }
    }
    watchdog_start(&loop, &t.wd, batch_finish, &t);
    uv_run(&loop, UV_RUN_DEFAULT);

    CHECK(!t.wd.fired);
    CHECK_INT(t.total, BATCH_CLIENTS * BATCH_QUERIES);
    for (int i = 0; i < BATCH_CLIENTS; i++) {
        CHECK_INT(t.c[i].got, BATCH_QUERIES);
        CHECK_INT(t.c[i].wrong, 0);
    }
    CHECK_INT(t.closed, 1);
    CHECK_INT(uv_loop_close(&loop), 0);
    dns_zone_free(z);
}

/* ---- TCP ---- */

struct tcp_test {
    uv_loop_t *loop;
    dns_server *server;
    struct sockaddr_storage server_addr;
    uv_tcp_t client;
    uv_connect_t connect;
    uv_write_t writes[2];
    uint8_t out[1024];
    size_t outlen;
    uint8_t in[4096];
    size_t inlen;
    struct seen seen[4];
    int nseen;
    int want;
    bool eof;
    int closed;
    struct watchdog wd;
};

static void tcp_finish(void *arg)
{
    struct tcp_test *t = arg;
    if (!uv_is_closing((uv_handle_t *)&t->client))
        uv_close((uv_handle_t *)&t->client, NULL);
    if (!uv_is_closing((uv_handle_t *)&t->wd.timer))
        uv_close((uv_handle_t *)&t->wd.timer, NULL);
    dns_server_close(t->server, close_cb_flag, &t->closed);
}

static void tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct tcp_test *t = h->data;
    (void)suggested;
    *b = uv_buf_init((char *)t->in + t->inlen, (unsigned)(sizeof(t->in) - t->inlen));
}

static void tcp_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct tcp_test *t = st->data;
    (void)b;
    if (nread < 0) {
        t->eof = nread == UV_EOF;
        tcp_finish(t);
        return;
    }
    t->inlen += (size_t)nread;
    while (t->inlen >= 2) {
        size_t len = (size_t)t->in[0] << 8 | t->in[1];
        if (t->inlen < 2 + len)
            break;
        if (t->nseen < 4)
            t->seen[t->nseen++] = parse_answer(t->in + 2, len);
        memmove(t->in, t->in + 2 + len, t->inlen - 2 - len);
        t->inlen -= 2 + len;
    }
    if (t->want > 0 && t->nseen >= t->want)
        tcp_finish(t);
}

static void tcp_written(uv_write_t *req, int status)
{
    (void)req;
    CHECK_INT(status, 0);
}

static void tcp_connected(uv_connect_t *req, int status)
{
    struct tcp_test *t = req->data;
    CHECK_INT(status, 0);
    if (status != 0) {
        tcp_finish(t);
        return;
    }
    uv_read_start((uv_stream_t *)&t->client, tcp_alloc, tcp_read);
    /* Two writes that split a message in its middle: framing must not care
     * where the segments end. */
    size_t cut = t->outlen > 20 ? 20 : t->outlen / 2;
    uv_buf_t b1 = uv_buf_init((char *)t->out, (unsigned)cut);
    uv_buf_t b2 = uv_buf_init((char *)t->out + cut, (unsigned)(t->outlen - cut));
    uv_write(&t->writes[0], (uv_stream_t *)&t->client, &b1, 1, tcp_written);
    uv_write(&t->writes[1], (uv_stream_t *)&t->client, &b2, 1, tcp_written);
}

static void append_frame(struct tcp_test *t, const char *name, uint16_t id)
{
    uint8_t *q = NULL;
    size_t len = build_query(name, LDNS_RR_TYPE_A, id, &q);
    t->out[t->outlen++] = (uint8_t)(len >> 8);
    t->out[t->outlen++] = (uint8_t)len;
    memcpy(t->out + t->outlen, q, len);
    t->outlen += len;
    free(q);
}

static void tcp_run(struct tcp_test *t, uv_loop_t *loop, dns_zone *zone)
{
    struct sockaddr_in any;
    uv_ip4_addr("127.0.0.1", 0, &any);
    t->loop = loop;
    if (dns_server_start(loop, (struct sockaddr *)&any, zone, &t->server) != 0 ||
        dns_server_address(t->server, &t->server_addr) != 0) {
        CHECK(!"server start");
        return;
    }
    uv_tcp_init(loop, &t->client);
    t->client.data = t;
    t->connect.data = t;
    uv_tcp_connect(&t->connect, &t->client, (struct sockaddr *)&t->server_addr, tcp_connected);
    watchdog_start(loop, &t->wd, tcp_finish, t);
    uv_run(loop, UV_RUN_DEFAULT);
}

TEST(tcp_pipelined)
{
    static struct tcp_test t;
    memset(&t, 0, sizeof(t));
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    dns_zone *z = make_zone();
    REQUIRE(z != NULL);
    append_frame(&t, "web.myapp.loop.test", 11);
    append_frame(&t, "x.db.myapp.loop.test", 12);
    append_frame(&t, "nope.loop.test", 13);
    t.want = 3;
    tcp_run(&t, &loop, z);
    CHECK(!t.wd.fired);
    CHECK_INT(t.nseen, 3);
    CHECK_INT(t.seen[0].id, 11);
    CHECK_INT(t.seen[0].addr, IP(127, 0, 0, 2));
    CHECK_INT(t.seen[1].id, 12);
    CHECK_INT(t.seen[1].addr, IP(127, 0, 0, 3));
    CHECK_INT(t.seen[2].id, 13);
    CHECK_INT(t.seen[2].rcode, LDNS_RCODE_NXDOMAIN);
    CHECK_INT(t.closed, 1);
    CHECK_INT(uv_loop_close(&loop), 0);
    dns_zone_free(z);
}

/* A message that is not a query (here a response) ends the connection after
 * the queries before it were answered. */
TEST(tcp_garbage)
{
    static struct tcp_test t;
    memset(&t, 0, sizeof(t));
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    dns_zone *z = make_zone();
    REQUIRE(z != NULL);
    append_frame(&t, "web.myapp.loop.test", 21);
    size_t at = t.outlen;
    append_frame(&t, "web.myapp.loop.test", 22);
    t.out[at + 2 + 2] |= 0x80; /* QR */
    t.want = 0;                /* wait for the server to close */
    tcp_run(&t, &loop, z);
    CHECK(!t.wd.fired);
    CHECK(t.eof);
    CHECK_INT(t.nseen, 1);
    CHECK_INT(t.seen[0].id, 21);
    CHECK_INT(t.closed, 1);
    CHECK_INT(uv_loop_close(&loop), 0);
    dns_zone_free(z);
}

/* ---- many pipelined queries on one connection ---- */

#define NBULK 20000

struct bulk_test {
    dns_server *server;
    uv_tcp_t client;
    uv_connect_t connect;
    uv_write_t write;
    uint8_t *out;
    size_t outlen;
    uint8_t in[8192];
    size_t inlen;
    int answered;
    int in_order;
    int closed;
    struct watchdog wd;
};

static void bulk_finish(void *arg)
{
    struct bulk_test *t = arg;
    if (!uv_is_closing((uv_handle_t *)&t->client))
        uv_close((uv_handle_t *)&t->client, NULL);
    if (!uv_is_closing((uv_handle_t *)&t->wd.timer))
        uv_close((uv_handle_t *)&t->wd.timer, NULL);
    dns_server_close(t->server, close_cb_flag, &t->closed);
}

static void bulk_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct bulk_test *t = h->data;
    (void)suggested;
    *b = uv_buf_init((char *)t->in + t->inlen, (unsigned)(sizeof(t->in) - t->inlen));
}

static void bulk_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct bulk_test *t = st->data;
    (void)b;
    if (nread < 0) {
        bulk_finish(t);
        return;
    }
    t->inlen += (size_t)nread;
    size_t off = 0;
    while (t->inlen - off >= 2) {
        size_t len = (size_t)t->in[off] << 8 | t->in[off + 1];
        if (t->inlen - off - 2 < len)
            break;
        /* Answers come back in the order of the queries. */
        int id = len >= 12 ? t->in[off + 2] << 8 | t->in[off + 3] : -1;
        t->in_order += id == (t->answered & 0xffff);
        t->answered++;
        off += 2 + len;
    }
    memmove(t->in, t->in + off, t->inlen - off);
    t->inlen -= off;
    if (t->answered == NBULK)
        bulk_finish(t);
}

static void bulk_connected(uv_connect_t *req, int status)
{
    struct bulk_test *t = req->data;
    CHECK_INT(status, 0);
    if (status != 0) {
        bulk_finish(t);
        return;
    }
    uv_read_start((uv_stream_t *)&t->client, bulk_alloc, bulk_read);
    uv_buf_t b = uv_buf_init((char *)t->out, (unsigned)t->outlen);
    uv_write(&t->write, (uv_stream_t *)&t->client, &b, 1, tcp_written);
}

TEST(tcp_bulk)
{
    static struct bulk_test t;
    memset(&t, 0, sizeof(t));
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    dns_zone *z = make_zone();
    REQUIRE(z != NULL);
    uint8_t *q = NULL;
    size_t qlen = build_query("x.web.myapp.loop.test", LDNS_RR_TYPE_A, 0, &q);
    REQUIRE(qlen > 12);
    t.out = malloc(NBULK * (qlen + 2));
    REQUIRE(t.out != NULL);
    for (int i = 0; i < NBULK; i++) {
        uint8_t *p = t.out + t.outlen;
        p[0] = (uint8_t)(qlen >> 8);
        p[1] = (uint8_t)qlen;
        memcpy(p + 2, q, qlen);
        p[2] = (uint8_t)(i >> 8);
        p[3] = (uint8_t)i;
        t.outlen += qlen + 2;
    }
    free(q);
    struct sockaddr_in any;
    uv_ip4_addr("127.0.0.1", 0, &any);
    struct sockaddr_storage addr;
    REQUIRE(dns_server_start(&loop, (struct sockaddr *)&any, z, &t.server) == 0);
    REQUIRE(dns_server_address(t.server, &addr) == 0);
    uv_tcp_init(&loop, &t.client);
    t.client.data = &t;
    t.connect.data = &t;
    uv_tcp_connect(&t.connect, &t.client, (struct sockaddr *)&addr, bulk_connected);
    watchdog_start(&loop, &t.wd, bulk_finish, &t);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(!t.wd.fired);
    CHECK_INT(t.answered, NBULK);
    CHECK_INT(t.in_order, NBULK);
    CHECK_INT(t.closed, 1);
    CHECK_INT(uv_loop_close(&loop), 0);
    free(t.out);
    dns_zone_free(z);
}

/* ---- the TCP client cap ---- */

#define NCONN 65

struct cap_test {
    dns_server *server;
    uv_tcp_t conns[NCONN];
    uv_connect_t reqs[NCONN];
    int connected;
    int eofs;
    int closed;
    bool done;
    struct watchdog wd;
    char buf[64];
};

static void cap_finish(void *arg)
{
    struct cap_test *t = arg;
    if (t->done)
        return;
    t->done = true;
    for (int i = 0; i < NCONN; i++)
        if (!uv_is_closing((uv_handle_t *)&t->conns[i]))
            uv_close((uv_handle_t *)&t->conns[i], NULL);
    uv_close((uv_handle_t *)&t->wd.timer, NULL);
    dns_server_close(t->server, close_cb_flag, &t->closed);
}

static void cap_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct cap_test *t = h->data;
    (void)suggested;
    *b = uv_buf_init(t->buf, sizeof(t->buf));
}

static void cap_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct cap_test *t = st->data;
    (void)b;
    if (nread < 0) {
        t->eofs++;
        /* Every connection was accepted by now (the server closes only the
         * one over the cap): finish once all are connected. */
        if (t->connected == NCONN)
            cap_finish(t);
    }
}

static void cap_connected(uv_connect_t *req, int status)
{
    struct cap_test *t = req->handle->data;
    CHECK_INT(status, 0);
    t->connected++;
    uv_read_start(req->handle, cap_alloc, cap_read);
    if (t->connected == NCONN && t->eofs > 0)
        cap_finish(t);
}

TEST(tcp_cap)
{
    static struct cap_test t;
    memset(&t, 0, sizeof(t));
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    dns_zone *z = make_zone();
    REQUIRE(z != NULL);
    struct sockaddr_in any;
    uv_ip4_addr("127.0.0.1", 0, &any);
    struct sockaddr_storage addr;
    REQUIRE(dns_server_start(&loop, (struct sockaddr *)&any, z, &t.server) == 0);
    REQUIRE(dns_server_address(t.server, &addr) == 0);
    for (int i = 0; i < NCONN; i++) {
        uv_tcp_init(&loop, &t.conns[i]);
        t.conns[i].data = &t;
        uv_tcp_connect(&t.reqs[i], &t.conns[i], (struct sockaddr *)&addr, cap_connected);
    }
    watchdog_start(&loop, &t.wd, cap_finish, &t);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(!t.wd.fired);
    CHECK_INT(t.connected, NCONN);
    CHECK_INT(t.eofs, NCONN - 64);
    CHECK_INT(t.closed, 1);
    CHECK_INT(uv_loop_close(&loop), 0);
    dns_zone_free(z);
}

/* ---- message deadlines against trickling clients ---- */

#define TRICKLE_IDLE_MS 3000   /* well past every deadline below */
#define TRICKLE_MESSAGE_MS 300 /* the deadline under test */
#define TRICKLE_EVERY_MS 20    /* one byte this often: far inside the deadline */
#define NTRICKLE 64            /* every TCP slot */

struct trickle_test;

/* A client that sends one byte of a query every TRICKLE_EVERY_MS, so no
 * read of the server ever sees the whole message. */
struct trickler {
    struct trickle_test *t;
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_timer_t tick;
    size_t sent;
    uint64_t first_ms, cut_ms;
    bool cut;
    char buf[64];
};

/* A client that sends a whole query at once and reads the answer. */
struct probe {
    struct trickle_test *t;
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    bool started, done;
    int answers;
    struct seen seen;
    int tricklers_cut; /* how many tricklers were cut when it finished */
    uint8_t in[512];
    size_t inlen;
};

struct trickle_test {
    uv_loop_t *loop;
    dns_server *server;
    struct sockaddr_storage addr;
    uint8_t frame[128];
    size_t framelen;
    struct trickler tr[NTRICKLE];
    int ntr;
    int started; /* tricklers that have sent two bytes or more */
    int ncut;
    struct probe early; /* sent while the tricklers hold slots */
    struct probe late;  /* sent once every trickler is cut (full test) */
    bool full;
    bool done;
    int closed;
    struct watchdog wd;
};

static void trickle_finish(void *arg)
{
    struct trickle_test *t = arg;
    if (t->done)
        return;
    t->done = true;
    for (int i = 0; i < t->ntr; i++) {
        if (!uv_is_closing((uv_handle_t *)&t->tr[i].tcp))
            uv_close((uv_handle_t *)&t->tr[i].tcp, NULL);
        if (!uv_is_closing((uv_handle_t *)&t->tr[i].tick))
            uv_close((uv_handle_t *)&t->tr[i].tick, NULL);
    }
    struct probe *ps[] = {&t->early, &t->late};
    for (int i = 0; i < 2; i++)
        if (ps[i]->started && !uv_is_closing((uv_handle_t *)&ps[i]->tcp))
            uv_close((uv_handle_t *)&ps[i]->tcp, NULL);
    uv_close((uv_handle_t *)&t->wd.timer, NULL);
    dns_server_close(t->server, close_cb_flag, &t->closed);
}

static void trickle_maybe_finish(struct trickle_test *t)
{
    if (t->ncut < t->ntr || !t->early.done)
        return;
    if (t->full && !t->late.done)
        return;
    trickle_finish(t);
}

static void probe_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct probe *p = h->data;
    (void)suggested;
    *b = uv_buf_init((char *)p->in + p->inlen, (unsigned)(sizeof(p->in) - p->inlen));
}

static void probe_end(struct probe *p)
{
    if (p->done)
        return;
    p->done = true;
    p->tricklers_cut = p->t->ncut;
    uv_close((uv_handle_t *)&p->tcp, NULL);
    trickle_maybe_finish(p->t);
}

static void probe_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct probe *p = st->data;
    (void)b;
    if (nread < 0) {
        probe_end(p); /* closed by the server, unanswered */
        return;
    }
    p->inlen += (size_t)nread;
    if (p->inlen >= 2) {
        size_t len = (size_t)p->in[0] << 8 | p->in[1];
        if (p->inlen >= 2 + len) {
            p->seen = parse_answer(p->in + 2, len);
            p->answers++;
            probe_end(p);
        }
    }
}

static void probe_written(uv_write_t *req, int status)
{
    (void)req;
    (void)status; /* a probe the server closes at once may see a reset */
}

static void probe_connected(uv_connect_t *req, int status)
{
    struct probe *p = req->data;
    CHECK_INT(status, 0);
    if (status != 0) {
        probe_end(p);
        return;
    }
    uv_read_start((uv_stream_t *)&p->tcp, probe_alloc, probe_read);
    uv_buf_t b = uv_buf_init((char *)p->t->frame, (unsigned)p->t->framelen);
    uv_write(&p->write, (uv_stream_t *)&p->tcp, &b, 1, probe_written);
}

static void probe_start(struct trickle_test *t, struct probe *p)
{
    p->t = t;
    p->started = true;
    uv_tcp_init(t->loop, &p->tcp);
    p->tcp.data = p;
    p->connect.data = p;
    uv_tcp_connect(&p->connect, &p->tcp, (struct sockaddr *)&t->addr, probe_connected);
}

static void trickler_tick(uv_timer_t *h)
{
    struct trickler *r = h->data;
    struct trickle_test *t = r->t;
    if (r->cut || r->sent + 1 >= t->framelen) {
        uv_timer_stop(h); /* never the last byte: the message stays partial */
        return;
    }
    uv_buf_t b = uv_buf_init((char *)t->frame + r->sent, 1);
    if (uv_try_write((uv_stream_t *)&r->tcp, &b, 1) != 1)
        return; /* the server has closed, or the buffer is full: try again */
    if (r->sent++ == 0)
        r->first_ms = uv_now(t->loop);
    if (r->sent == 2 && ++t->started == t->ntr)
        /* Every trickler is in the middle of a message: the probe must be
         * answered (one trickler) or refused at the cap (all slots). */
        probe_start(t, &t->early);
}

static void trickler_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct trickler *r = h->data;
    (void)suggested;
    *b = uv_buf_init(r->buf, sizeof(r->buf));
}

static void trickler_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct trickler *r = st->data;
    struct trickle_test *t = r->t;
    (void)b;
    if (nread >= 0 || r->cut)
        return; /* no answer can come: the message never completes */
    r->cut = true;
    r->cut_ms = uv_now(t->loop);
    uv_timer_stop(&r->tick);
    if (++t->ncut == t->ntr && t->full)
        probe_start(t, &t->late);
    trickle_maybe_finish(t);
}

static void trickler_connected(uv_connect_t *req, int status)
{
    struct trickler *r = req->data;
    CHECK_INT(status, 0);
    if (status != 0) {
        trickle_finish(r->t);
        return;
    }
    uv_read_start((uv_stream_t *)&r->tcp, trickler_alloc, trickler_read);
    uv_timer_start(&r->tick, trickler_tick, 0, TRICKLE_EVERY_MS);
}

static void trickle_run(struct trickle_test *t, uv_loop_t *loop, dns_zone *z, int ntr, bool full)
{
    signal(SIGPIPE, SIG_IGN); /* a trickler may write once after the cut */
    t->loop = loop;
    t->ntr = ntr;
    t->full = full;
    uint8_t *q = NULL;
    size_t qlen = build_query("a-long-label-that-takes-long-to-trickle.web.myapp.loop.test",
                              LDNS_RR_TYPE_A, 77, &q);
    REQUIRE(qlen > 12 && qlen + 2 <= sizeof(t->frame));
    t->frame[0] = (uint8_t)(qlen >> 8);
    t->frame[1] = (uint8_t)qlen;
    memcpy(t->frame + 2, q, qlen);
    t->framelen = qlen + 2;
    free(q);
    /* Trickling the message takes several times the deadline. */
    REQUIRE(t->framelen * TRICKLE_EVERY_MS > 4 * TRICKLE_MESSAGE_MS);
    struct sockaddr_in any;
    uv_ip4_addr("127.0.0.1", 0, &any);
    dns_server_options o = {.tcp_idle_ms = TRICKLE_IDLE_MS, .tcp_message_ms = TRICKLE_MESSAGE_MS};
    REQUIRE(dns_server_start_opts(loop, (struct sockaddr *)&any, z, &o, &t->server) == 0);
    REQUIRE(dns_server_address(t->server, &t->addr) == 0);
    for (int i = 0; i < ntr; i++) {
        struct trickler *r = &t->tr[i];
        r->t = t;
        uv_tcp_init(loop, &r->tcp);
        uv_timer_init(loop, &r->tick);
        r->tcp.data = r->tick.data = r->connect.data = r;
        uv_tcp_connect(&r->connect, &r->tcp, (struct sockaddr *)&t->addr, trickler_connected);
    }
    watchdog_start(loop, &t->wd, trickle_finish, t);
    uv_run(loop, UV_RUN_DEFAULT);
}

/* Each trickler was cut at its message's deadline although it kept sending:
 * not before it, and well before the idle time (had each byte restarted a
 * timer, it would never have been cut). */
static void check_tricklers(const struct trickle_test *t)
{
    for (int i = 0; i < t->ntr; i++) {
        const struct trickler *r = &t->tr[i];
        CHECK(r->cut);
        CHECK(r->sent >= 3);
        /* Cut while it still had bytes to send, not after it ran out. */
        CHECK(r->sent + 1 < t->framelen);
        uint64_t held = r->cut_ms - r->first_ms;
        if (held < TRICKLE_MESSAGE_MS || held >= TRICKLE_IDLE_MS)
            fprintf(stderr, "trickler %d held its slot %llu ms\n", i, (unsigned long long)held);
        CHECK(held >= TRICKLE_MESSAGE_MS);
        CHECK(held < TRICKLE_IDLE_MS);
    }
}

/* One trickler is cut at the deadline; a normal client on another
 * connection is answered meanwhile. */
TEST(tcp_trickle_deadline)
{
    static struct trickle_test t;
    memset(&t, 0, sizeof(t));
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    dns_zone *z = make_zone();
    REQUIRE(z != NULL);
    trickle_run(&t, &loop, z, 1, false);
    CHECK(!t.wd.fired);
    CHECK_INT(t.ncut, 1);
    check_tricklers(&t);
    CHECK_INT(t.early.answers, 1);
    CHECK_INT(t.early.seen.id, 77);
    CHECK_INT(t.early.seen.addr, IP(127, 0, 0, 2));
    CHECK_INT(t.early.tricklers_cut, 0); /* answered while the trickler held on */
    CHECK_INT(t.closed, 1);
    CHECK_INT(uv_loop_close(&loop), 0);
    dns_zone_free(z);
}

/* Tricklers in every slot: a new client is refused while they hold them,
 * and answered once the deadlines have cut them all. */
TEST(tcp_trickle_full)
{
    static struct trickle_test t;
    memset(&t, 0, sizeof(t));
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    dns_zone *z = make_zone();
    REQUIRE(z != NULL);
    trickle_run(&t, &loop, z, NTRICKLE, true);
    CHECK(!t.wd.fired);
    CHECK_INT(t.ncut, NTRICKLE);
    check_tricklers(&t);
    CHECK_INT(t.early.answers, 0); /* the slots were full */
    CHECK(t.early.done);
    CHECK_INT(t.early.tricklers_cut, 0);
    CHECK_INT(t.late.answers, 1);
    CHECK_INT(t.late.seen.id, 77);
    CHECK_INT(t.late.seen.addr, IP(127, 0, 0, 2));
    CHECK_INT(t.closed, 1);
    CHECK_INT(uv_loop_close(&loop), 0);
    dns_zone_free(z);
}

TEST(start_errors)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    dns_zone *z = make_zone();
    REQUIRE(z != NULL);
    struct sockaddr_in any;
    uv_ip4_addr("127.0.0.1", 0, &any);
    dns_server *a = NULL, *b = NULL;
    struct sockaddr_storage addr;
    REQUIRE(dns_server_start(&loop, (struct sockaddr *)&any, z, &a) == 0);
    REQUIRE(dns_server_address(a, &addr) == 0);
    /* The same port again: in use, and nothing of the second is left. */
    CHECK_INT(dns_server_start(&loop, (struct sockaddr *)&addr, z, &b), UV_EADDRINUSE);
    int closed = 0;
    dns_server_close(a, close_cb_flag, &closed);
    CHECK_INT(closed, 0); /* only once the close callbacks ran */
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(closed, 1);
    CHECK_INT(uv_loop_close(&loop), 0);
    dns_zone_free(z);
}

TEST(parse_listen)
{
    struct sockaddr_storage ss;
    CHECK_INT(dns_parse_listen("127.0.0.1:15353", &ss), 0);
    CHECK_INT(ss.ss_family, AF_INET);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    CHECK_INT(ntohs(a4->sin_port), 15353);
    CHECK_INT(ntohl(a4->sin_addr.s_addr), IP(127, 0, 0, 1));
    CHECK_INT(dns_parse_listen("0.0.0.0:65535", &ss), 0);
    CHECK_INT(dns_parse_listen("[::1]:53", &ss), 0);
    CHECK_INT(ss.ss_family, AF_INET6);
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    CHECK_INT(ntohs(a6->sin6_port), 53);
    CHECK(IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr));
    const char *bad[] = {"127.0.0.1",
                         "127.0.0.1:",
                         "127.0.0.1:0",
                         "127.0.0.1:65536",
                         "127.0.0.1:99999999",
                         "127.0.0.1:-1",
                         "127.0.0.1:53x",
                         "127.0.0.1: 53",
                         "localhost:53",
                         ":53",
                         "::1:53",
                         "[::1]",
                         "[::1]53",
                         "[::1]:",
                         "[127.0.0.1]:53",
                         "[::1:53",
                         "",
                         "junk",
                         "1.2.3.4.5:53",
                         "127.0.0.1:+53"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = dns_parse_listen(bad[i], &ss);
        if (r != -EINVAL)
            fprintf(stderr, "accepted %s\n", bad[i]);
        CHECK_INT(r, -EINVAL);
    }
    CHECK_INT(dns_parse_listen(NULL, &ss), -EINVAL);
}
