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
