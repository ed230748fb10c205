/* Unit tests of the DNS answer builder: queries are built and answers parsed
 * with ldns, malformed packets are built by hand. */
#include <arpa/inet.h>
#include <ctype.h>
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

#include "dns.h"
#include "test.h"

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif
#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static dns_zone *make_zone(uint32_t ttl)
{
    dns_zone *z = dns_zone_new("loop.test", ttl);
    if (z == NULL)
        return NULL;
    dns_record recs[] = {
        {"web.myapp.loop.test", IP(127, 0, 0, 2)},
        {"db.myapp.loop.test", IP(127, 0, 0, 3)},
        {"api.web.myapp.loop.test", IP(127, 0, 0, 4)},
        {"alias.loop.test", IP(127, 0, 0, 2)}, /* second name of .2: not its PTR */
    };
    if (dns_zone_set(z, recs, ARRAY_SIZE(recs)) != 0) {
        dns_zone_free(z);
        return NULL;
    }
    return z;
}

/* Builds a query with ldns; edns_size 0 means no OPT. Returns its wire
 * length (0 on failure), the bytes in *wire (free them). */
static size_t build_query(const char *name, ldns_rr_type type, uint16_t id, uint16_t edns_size,
                          uint8_t edns_version, bool do_bit, uint8_t **wire)
{
    ldns_pkt *p = NULL;
    if (ldns_pkt_query_new_frm_str(&p, name, type, LDNS_RR_CLASS_IN, LDNS_RD) != LDNS_STATUS_OK)
        return 0;
    ldns_pkt_set_id(p, id);
    if (edns_size) {
        ldns_pkt_set_edns_udp_size(p, edns_size);
        ldns_pkt_set_edns_version(p, edns_version);
        ldns_pkt_set_edns_do(p, do_bit);
        /* ldns only writes an OPT when it sees a reason to: a size does. */
    }
    size_t len = 0;
    if (ldns_pkt2wire(wire, p, &len) != LDNS_STATUS_OK)
        len = 0;
    ldns_pkt_free(p);
    return len;
}

struct reply {
    uint8_t wire[65535];
    size_t len;
    ldns_pkt *pkt;
};

/* Asks the zone and parses the answer; r->pkt is NULL when no answer. */
static void ask_full(dns_zone *z, const char *name, ldns_rr_type type, uint16_t edns_size,
                     uint8_t edns_version, bool do_bit, size_t max_udp, struct reply *r)
{
    uint8_t *q = NULL;
    r->pkt = NULL;
    r->len = 0;
    size_t qlen = build_query(name, type, 0x1234, edns_size, edns_version, do_bit, &q);
    if (qlen == 0)
        return;
    r->len = dns_answer(z, q, qlen, r->wire, sizeof(r->wire), max_udp);
    if (r->len > 0 && ldns_wire2pkt(&r->pkt, r->wire, r->len) != LDNS_STATUS_OK)
        r->pkt = NULL;
    free(q);
}

static void ask(dns_zone *z, const char *name, ldns_rr_type type, struct reply *r)
{
    ask_full(z, name, type, 0, 0, false, 512, r);
}

static uint32_t rr_a(const ldns_rr *rr)
{
    const ldns_rdf *f = ldns_rr_rdf(rr, 0);
    uint32_t v;
    memcpy(&v, ldns_rdf_data(f), 4);
    return ntohl(v);
}

/* The owner (or rdata) name as text without the trailing dot, decoded from
 * its wire form here: ldns_rdf2str lives in host2str.h, which needs the
 * DNSSEC headers and so OpenSSL's. A byte that is not a plain label
 * character is written \DDD, as ldns does. */
static const char *dname_text(const ldns_rdf *f, char *buf, size_t cap)
{
    const uint8_t *d = ldns_rdf_data(f);
    size_t len = ldns_rdf_size(f), i = 0, o = 0;
    buf[0] = '\0';
    while (i < len && d[i] != 0 && i + 1 + d[i] <= len) {
        size_t l = d[i++];
        if (o > 0 && o + 1 < cap)
            buf[o++] = '.';
        for (size_t k = 0; k < l && o + 5 < cap; k++, i++) {
            unsigned char c = d[i];
            if (isalnum(c) || c == '-' || c == '_' || c == '*')
                buf[o++] = (char)c;
            else
                o += (size_t)snprintf(buf + o, cap - o, "\\%03u", c);
        }
        buf[o] = '\0';
    }
    return buf;
}

static void check_soa_authority(const ldns_pkt *p, uint32_t ttl)
{
    char buf[300];
    CHECK_INT(ldns_pkt_ancount(p), 0);
    CHECK_INT(ldns_pkt_nscount(p), 1);
    if (ldns_pkt_nscount(p) != 1)
        return;
    const ldns_rr *soa = ldns_rr_list_rr(ldns_pkt_authority(p), 0);
    CHECK_INT(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
    CHECK_STR(dname_text(ldns_rr_owner(soa), buf, sizeof(buf)), "loop.test");
    CHECK_INT(ldns_rr_ttl(soa), ttl);
    CHECK_INT(ldns_rdf2native_int32(ldns_rr_rdf(soa, 6)), ttl); /* minimum */
}

TEST(a_record)
{
    dns_zone *z = make_zone(5);
    REQUIRE(z != NULL);
    static struct reply r;
    char buf[300];
    ask(z, "web.myapp.loop.test", LDNS_RR_TYPE_A, &r);
    REQUIRE(r.pkt != NULL);
    CHECK_INT(ldns_pkt_id(r.pkt), 0x1234);
    CHECK(ldns_pkt_qr(r.pkt));
    CHECK(ldns_pkt_aa(r.pkt));
    CHECK(ldns_pkt_rd(r.pkt));
    CHECK(!ldns_pkt_ra(r.pkt));
    CHECK(!ldns_pkt_tc(r.pkt));
    CHECK_INT(ldns_pkt_get_rcode(r.pkt), LDNS_RCODE_NOERROR);
    CHECK_INT(ldns_pkt_qdcount(r.pkt), 1);
    REQUIRE(ldns_pkt_ancount(r.pkt) == 1);
    const ldns_rr *a = ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0);
    CHECK_INT(ldns_rr_get_type(a), LDNS_RR_TYPE_A);
    CHECK_INT(ldns_rr_get_class(a), LDNS_RR_CLASS_IN);
    CHECK_INT(ldns_rr_ttl(a), 5);
    CHECK_INT(rr_a(a), IP(127, 0, 0, 2));
    CHECK_STR(dname_text(ldns_rr_owner(a), buf, sizeof(buf)), "web.myapp.loop.test");
    CHECK_INT(ldns_pkt_arcount(r.pkt), 0);
    ldns_pkt_free(r.pkt);

    /* ANY at a record answers its A record. */
    ask(z, "db.myapp.loop.test", LDNS_RR_TYPE_ANY, &r);
    REQUIRE(r.pkt != NULL);
    REQUIRE(ldns_pkt_ancount(r.pkt) == 1);
    CHECK_INT(rr_a(ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0)), IP(127, 0, 0, 3));
    ldns_pkt_free(r.pkt);
    dns_zone_free(z);
}

TEST(nodata)
{
    dns_zone *z = make_zone(5);
    REQUIRE(z != NULL);
    static struct reply r;
    ldns_rr_type types[] = {LDNS_RR_TYPE_AAAA, LDNS_RR_TYPE_MX, LDNS_RR_TYPE_TXT,
                            LDNS_RR_TYPE_HTTPS};
    for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
        ask(z, "web.myapp.loop.test", types[i], &r);
        REQUIRE(r.pkt != NULL);
        CHECK_INT(ldns_pkt_get_rcode(r.pkt), LDNS_RCODE_NOERROR);
        CHECK(ldns_pkt_aa(r.pkt));
        check_soa_authority(r.pkt, 5);
        ldns_pkt_free(r.pkt);
    }
    dns_zone_free(z);
}

TEST(nxdomain)
{
    dns_zone *z = make_zone(5);
    REQUIRE(z != NULL);
    static struct reply r;
    const char *names[] = {"nope.loop.test", "x.db2.myapp.loop.test", "other.myapp.loop.test"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        ask(z, names[i], LDNS_RR_TYPE_A, &r);
        REQUIRE(r.pkt != NULL);
        CHECK_INT(ldns_pkt_get_rcode(r.pkt), LDNS_RCODE_NXDOMAIN);
        CHECK(ldns_pkt_aa(r.pkt));
        check_soa_authority(r.pkt, 5);
        ldns_pkt_free(r.pkt);
    }
    /* An empty non-terminal exists: NODATA, not NXDOMAIN. */
    ask(z, "myapp.loop.test", LDNS_RR_TYPE_A, &r);
    REQUIRE(r.pkt != NULL);
    CHECK_INT(ldns_pkt_get_rcode(r.pkt), LDNS_RCODE_NOERROR);
    check_soa_authority(r.pkt, 5);
    ldns_pkt_free(r.pkt);
    dns_zone_free(z);
}

TEST(apex)
{
    dns_zone *z = make_zone(5);
    REQUIRE(z != NULL);
    static struct reply r;
    char buf[300];

    ask(z, "loop.test", LDNS_RR_TYPE_SOA, &r);
    REQUIRE(r.pkt != NULL);
    CHECK(ldns_pkt_aa(r.pkt));
    REQUIRE(ldns_pkt_ancount(r.pkt) == 1);
    const ldns_rr *soa = ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0);
    CHECK_INT(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
    CHECK_STR(dname_text(ldns_rr_owner(soa), buf, sizeof(buf)), "loop.test");
    CHECK_STR(dname_text(ldns_rr_rdf(soa, 0), buf, sizeof(buf)), "ns.loop.test");
    CHECK_STR(dname_text(ldns_rr_rdf(soa, 1), buf, sizeof(buf)), "hostmaster.loop.test");
    uint32_t serial = ldns_rdf2native_int32(ldns_rr_rdf(soa, 2));
    ldns_pkt_free(r.pkt);

    ask(z, "LOOP.test.", LDNS_RR_TYPE_NS, &r);
    REQUIRE(r.pkt != NULL);
    REQUIRE(ldns_pkt_ancount(r.pkt) == 1);
    const ldns_rr *ns = ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0);
    CHECK_INT(ldns_rr_get_type(ns), LDNS_RR_TYPE_NS);
    CHECK_STR(dname_text(ldns_rr_rdf(ns, 0), buf, sizeof(buf)), "ns.loop.test");
    ldns_pkt_free(r.pkt);

    ask(z, "loop.test", LDNS_RR_TYPE_ANY, &r);
    REQUIRE(r.pkt != NULL);
    CHECK_INT(ldns_pkt_ancount(r.pkt), 2);
    ldns_pkt_free(r.pkt);

    ask(z, "ns.loop.test", LDNS_RR_TYPE_A, &r);
    REQUIRE(r.pkt != NULL);
    REQUIRE(ldns_pkt_ancount(r.pkt) == 1);
    CHECK_INT(rr_a(ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0)), IP(127, 0, 0, 1));
    ldns_pkt_free(r.pkt);

    /* The apex has no address. */
    ask(z, "loop.test", LDNS_RR_TYPE_A, &r);
    REQUIRE(r.pkt != NULL);
    CHECK_INT(ldns_pkt_get_rcode(r.pkt), LDNS_RCODE_NOERROR);
    check_soa_authority(r.pkt, 5);
    ldns_pkt_free(r.pkt);

    /* A record named ns.<domain> takes precedence over the default. */
    dns_record recs[] = {{"ns.loop.test", IP(127, 0, 0, 9)}};
    REQUIRE(dns_zone_set(z, recs, 1) == 0);
    uint32_t addr = 0;
    CHECK_INT(dns_zone_lookup(z, "ns.loop.test", &addr), 1);
    CHECK_INT(addr, IP(127, 0, 0, 9));
    /* Every set bumps the serial. */
    ask(z, "loop.test", LDNS_RR_TYPE_SOA, &r);
    REQUIRE(r.pkt != NULL);
    REQUIRE(ldns_pkt_ancount(r.pkt) == 1);
    soa = ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0);
    CHECK(ldns_rdf2native_int32(ldns_rr_rdf(soa, 2)) == serial + 1);
    ldns_pkt_free(r.pkt);
    dns_zone_free(z);
}

TEST(ptr)
{
    dns_zone *z = make_zone(5);
    REQUIRE(z != NULL);
    static struct reply r;
    char buf[300];
    ask(z, "2.0.0.127.in-addr.arpa", LDNS_RR_TYPE_PTR, &r);
    REQUIRE(r.pkt != NULL);
    CHECK_INT(ldns_pkt_get_rcode(r.pkt), LDNS_RCODE_NOERROR);
    CHECK(ldns_pkt_aa(r.pkt));
    REQUIRE(ldns_pkt_ancount(r.pkt) == 1);
    const ldns_rr *ptr = ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0);
    CHECK_INT(ldns_rr_get_type(ptr), LDNS_RR_TYPE_PTR);
    CHECK_INT(ldns_rr_ttl(ptr), 5);
    CHECK_STR(dname_text(ldns_rr_owner(ptr), buf, sizeof(buf)), "2.0.0.127.in-addr.arpa");
    CHECK_STR(dname_text(ldns_rr_rdf(ptr, 0), buf, sizeof(buf)), "web.myapp.loop.test");
    ldns_pkt_free(r.pkt);

    ask(z, "4.0.0.127.IN-ADDR.ARPA", LDNS_RR_TYPE_PTR, &r);
    REQUIRE(r.pkt != NULL);
    REQUIRE(ldns_pkt_ancount(r.pkt) == 1);
    ptr = ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0);
    CHECK_STR(dname_text(ldns_rr_rdf(ptr, 0), buf, sizeof(buf)), "api.web.myapp.loop.test");
    ldns_pkt_free(r.pkt);

    /* Reverse names of addresses we do not hold belong to someone else. */
    const char *others[] = {"9.0.0.127.in-addr.arpa", "1.0.0.127.in-addr.arpa",
                            "0.0.127.in-addr.arpa", "02.0.0.127.in-addr.arpa",
                            "x.2.0.0.127.in-addr.arpa"};
    for (size_t i = 0; i < ARRAY_SIZE(others); i++) {
        ask(z, others[i], LDNS_RR_TYPE_PTR, &r);
        REQUIRE(r.pkt != NULL);
        CHECK_INT(ldns_pkt_get_rcode(r.pkt), LDNS_RCODE_REFUSED);
        CHECK_INT(ldns_pkt_ancount(r.pkt), 0);
        ldns_pkt_free(r.pkt);
    }
    dns_zone_free(z);
}

TEST(out_of_zone)
{
    dns_zone *z = make_zone(5);
    REQUIRE(z != NULL);
    static struct reply r;
    const char *names[] = {"example.com", "test", "myloop.test", "loop.test.evil.com", "."};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        ask(z, names[i], LDNS_RR_TYPE_A, &r);
        REQUIRE(r.pkt != NULL);
        CHECK_INT(ldns_pkt_get_rcode(r.pkt), LDNS_RCODE_REFUSED);
        CHECK(!ldns_pkt_aa(r.pkt));
        CHECK(ldns_pkt_rd(r.pkt));
        CHECK_INT(ldns_pkt_ancount(r.pkt), 0);
        CHECK_INT(ldns_pkt_qdcount(r.pkt), 1);
        ldns_pkt_free(r.pkt);
    }
    dns_zone_free(z);
}

TEST(case)
{
    dns_zone *z = make_zone(5);
    REQUIRE(z != NULL);
    static struct reply r;
    uint8_t *q = NULL;
    size_t qlen = build_query("WeB.MyApp.LOOP.Test", LDNS_RR_TYPE_A, 7, 0, 0, false, &q);
    REQUIRE(qlen > 12);
    r.len = dns_answer(z, q, qlen, r.wire, sizeof(r.wire), 512);
    REQUIRE(r.len == qlen + 16);
    /* The question comes back byte for byte, case included. */
    CHECK(memcmp(r.wire + 12, q + 12, qlen - 12) == 0);
    /* The answer's owner points at the question. */
    CHECK(r.wire[qlen] == 0xc0 && r.wire[qlen + 1] == 12);
    free(q);
    REQUIRE(ldns_wire2pkt(&r.pkt, r.wire, r.len) == LDNS_STATUS_OK);
    REQUIRE(ldns_pkt_ancount(r.pkt) == 1);
    CHECK_INT(rr_a(ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0)), IP(127, 0, 0, 2));
    ldns_pkt_free(r.pkt);

    uint32_t addr = 0;
    CHECK_INT(dns_zone_lookup(z, "DB.myapp.Loop.Test.", &addr), 1);
    CHECK_INT(addr, IP(127, 0, 0, 3));
    dns_zone_free(z);
}

TEST(below)
{
    dns_zone *z = make_zone(5);
    REQUIRE(z != NULL);
    static struct reply r;
    char buf[300];
    struct {
        const char *name;
        uint32_t addr;
    } cases[] = {
        {"x.web.myapp.loop.test", IP(127, 0, 0, 2)},
        {"a.b.c.web.myapp.loop.test", IP(127, 0, 0, 2)},
        {"api.web.myapp.loop.test", IP(127, 0, 0, 4)},
        {"v1.api.web.myapp.loop.test", IP(127, 0, 0, 4)},
        {"x.db.myapp.loop.test", IP(127, 0, 0, 3)},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        ask(z, cases[i].name, LDNS_RR_TYPE_A, &r);
        REQUIRE(r.pkt != NULL);
        CHECK_INT(ldns_pkt_get_rcode(r.pkt), LDNS_RCODE_NOERROR);
        REQUIRE(ldns_pkt_ancount(r.pkt) == 1);
        const ldns_rr *a = ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0);
        CHECK_INT(rr_a(a), cases[i].addr);
        CHECK_STR(dname_text(ldns_rr_owner(a), buf, sizeof(buf)), cases[i].name);
        ldns_pkt_free(r.pkt);
        uint32_t addr = 0;
        CHECK_INT(dns_zone_lookup(z, cases[i].name, &addr), 1);
        CHECK_INT(addr, cases[i].addr);
    }
    uint32_t addr = 0;
    CHECK_INT(dns_zone_lookup(z, "myapp.loop.test", &addr), 0);
    CHECK_INT(dns_zone_lookup(z, "loop.test", &addr), 0);
    CHECK_INT(dns_zone_lookup(z, "web.myapp.loop.test.com", &addr), 0);
    CHECK_INT(dns_zone_lookup(z, "", &addr), 0);
    CHECK_INT(dns_zone_lookup(z, "a..loop.test", &addr), 0);
    dns_zone_free(z);
}

TEST(edns)
{
    dns_zone *z = make_zone(5);
    REQUIRE(z != NULL);
    static struct reply r;
    ask_full(z, "web.myapp.loop.test", LDNS_RR_TYPE_A, 4096, 0, true, 512, &r);
    REQUIRE(r.pkt != NULL);
    CHECK_INT(ldns_pkt_get_rcode(r.pkt), LDNS_RCODE_NOERROR);
    CHECK_INT(ldns_pkt_ancount(r.pkt), 1);
    CHECK_INT(r.wire[11], 1); /* ARCOUNT: the OPT */
    CHECK_INT(ldns_pkt_edns_udp_size(r.pkt), 1232);
    CHECK_INT(ldns_pkt_edns_version(r.pkt), 0);
    CHECK(ldns_pkt_edns_do(r.pkt));
    ldns_pkt_free(r.pkt);

    /* OPT on negative answers and refusals too. */
    ask_full(z, "nope.loop.test", LDNS_RR_TYPE_A, 1232, 0, false, 512, &r);
    REQUIRE(r.pkt != NULL);
    CHECK_INT(ldns_pkt_get_rcode(r.pkt), LDNS_RCODE_NXDOMAIN);
    CHECK_INT(ldns_pkt_edns_udp_size(r.pkt), 1232);
    CHECK(!ldns_pkt_edns_do(r.pkt));
    ldns_pkt_free(r.pkt);
    ask_full(z, "example.com", LDNS_RR_TYPE_A, 1232, 0, false, 512, &r);
    REQUIRE(r.pkt != NULL);
    CHECK_INT(ldns_pkt_get_rcode(r.pkt), LDNS_RCODE_REFUSED);
    CHECK_INT(r.wire[11], 1);
    ldns_pkt_free(r.pkt);

    /* EDNS version 1 is not ours: BADVERS (16), no answer. */
    ask_full(z, "web.myapp.loop.test", LDNS_RR_TYPE_A, 1232, 1, false, 512, &r);
    REQUIRE(r.len > 12);
    CHECK_INT(r.wire[3] & 0xf, 0);
    CHECK_INT(r.wire[7], 0); /* ANCOUNT */
    REQUIRE(r.pkt != NULL);
    CHECK_INT(ldns_pkt_edns_extended_rcode(r.pkt), 1);
    CHECK_INT(ldns_pkt_edns_version(r.pkt), 0);
    ldns_pkt_free(r.pkt);
    dns_zone_free(z);
}

TEST(truncation)
{
    dns_zone *z = make_zone(5);
    REQUIRE(z != NULL);
    static struct reply r;
    /* A client limit below the answer's size: TC, question only. */
    ask_full(z, "web.myapp.loop.test", LDNS_RR_TYPE_A, 0, 0, false, 40, &r);
    REQUIRE(r.pkt != NULL);
    CHECK(ldns_pkt_tc(r.pkt));
    CHECK_INT(ldns_pkt_ancount(r.pkt), 0);
    CHECK_INT(ldns_pkt_qdcount(r.pkt), 1);
    ldns_pkt_free(r.pkt);
    /* TCP (0): no limit but the buffer. */
    ask_full(z, "web.myapp.loop.test", LDNS_RR_TYPE_A, 0, 0, false, 0, &r);
    REQUIRE(r.pkt != NULL);
    CHECK(!ldns_pkt_tc(r.pkt));
    CHECK_INT(ldns_pkt_ancount(r.pkt), 1);
    ldns_pkt_free(r.pkt);
    /* A buffer too small for even the header: dropped. */
    uint8_t *q = NULL;
    size_t qlen = build_query("web.myapp.loop.test", LDNS_RR_TYPE_A, 1, 0, 0, false, &q);
    REQUIRE(qlen > 0);
    uint8_t tiny[20];
    CHECK_INT(dns_answer(z, q, qlen, tiny, sizeof(tiny), 512), 0);
    free(q);
    dns_zone_free(z);
}

TEST(ttl)
{
    dns_zone *z = make_zone(3);
    REQUIRE(z != NULL);
    static struct reply r;
    ask(z, "web.myapp.loop.test", LDNS_RR_TYPE_A, &r);
    REQUIRE(r.pkt != NULL);
    REQUIRE(ldns_pkt_ancount(r.pkt) == 1);
    CHECK_INT(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(r.pkt), 0)), 3);
    ldns_pkt_free(r.pkt);
    ask(z, "nope.loop.test", LDNS_RR_TYPE_A, &r);
    REQUIRE(r.pkt != NULL);
    check_soa_authority(r.pkt, 3);
    ldns_pkt_free(r.pkt);
    dns_zone_free(z);
}

TEST(zone_set)
{
    CHECK(dns_zone_new("", 5) == NULL);
    CHECK(dns_zone_new("bad..domain", 5) == NULL);
    CHECK(dns_zone_new(NULL, 5) == NULL);
    dns_zone *z = make_zone(5);
    REQUIRE(z != NULL);
    char long_label[80];
    memset(long_label, 'a', 64);
    strcpy(long_label + 64, ".loop.test");
    const char *bad[] = {"web.example.com",    "loop.test",      "xloop.test", "a..loop.test",
                         "bad name.loop.test", "bad!.loop.test", long_label,   ".loop.test"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        dns_record recs[] = {{"fine.loop.test", IP(127, 0, 0, 8)}, {bad[i], IP(127, 0, 0, 9)}};
        CHECK_INT(dns_zone_set(z, recs, 2), -EINVAL);
    }
    dns_record nul[] = {{NULL, 1}};
    CHECK_INT(dns_zone_set(z, nul, 1), -EINVAL);
    /* The old set still answers; nothing of the refused ones leaked in. */
    uint32_t addr = 0;
    CHECK_INT(dns_zone_lookup(z, "web.myapp.loop.test", &addr), 1);
    CHECK_INT(addr, IP(127, 0, 0, 2));
    CHECK_INT(dns_zone_lookup(z, "fine.loop.test", &addr), 0);

    /* A valid set replaces everything; a trailing dot and case are fine;
     * the first record of a name wins. */
    dns_record good[] = {{"New.loop.test.", IP(127, 0, 0, 5)}, {"new.loop.test", IP(127, 0, 0, 6)}};
    CHECK_INT(dns_zone_set(z, good, 2), 0);
    CHECK_INT(dns_zone_lookup(z, "new.loop.test", &addr), 1);
    CHECK_INT(addr, IP(127, 0, 0, 5));
    CHECK_INT(dns_zone_lookup(z, "web.myapp.loop.test", &addr), 0);
    /* The empty set. */
    CHECK_INT(dns_zone_set(z, NULL, 0), 0);
    CHECK_INT(dns_zone_lookup(z, "new.loop.test", &addr), 0);
    CHECK_INT(dns_zone_lookup(z, "ns.loop.test", &addr), 1);

    /* Many records: the hash table grows and every one is found. */
    enum { N = 2000 };
    dns_record *many = calloc(N, sizeof(*many));
    char(*names)[64] = calloc(N, 64);
    REQUIRE(many != NULL && names != NULL);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], 64, "c%d.p%d.loop.test", i, i % 7);
        many[i].name = names[i];
        many[i].addr = IP(127, 0, (i >> 8) & 0xff, i & 0xff);
    }
    CHECK_INT(dns_zone_set(z, many, N), 0);
    int found = 0;
    for (int i = 0; i < N; i++)
        found += dns_zone_lookup(z, names[i], &addr) == 1 && addr == many[i].addr;
    CHECK_INT(found, N);
    free(many);
    free(names);
    dns_zone_free(z);
}

/* A hand-written query: header then raw question bytes. */
static size_t raw_query(uint8_t *buf, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ar,
                        const uint8_t *rest, size_t restlen)
{
    memset(buf, 0, 12);
    buf[0] = 0xab;
    buf[1] = 0xcd;
    buf[2] = (uint8_t)(flags >> 8);
    buf[3] = (uint8_t)flags;
    buf[5] = (uint8_t)qd;
    buf[7] = (uint8_t)an;
    buf[11] = (uint8_t)ar;
    memcpy(buf + 12, rest, restlen);
    return 12 + restlen;
}

static int rcode_of(const uint8_t *out, size_t len)
{
    return len >= 12 ? out[3] & 0xf : -1;
}

TEST(malformed)
{
    dns_zone *z = make_zone(5);
    REQUIRE(z != NULL);
    uint8_t q[600], out[1024];
    size_t n;
    static const uint8_t good[] = "\3web\5myapp\4loop\4test\0\0\1\0\1";
    size_t goodlen = sizeof(good) - 1; /* the literal's own NUL is not part of it */

    /* Sanity: the hand-written query is answered. */
    n = raw_query(q, 0x0100, 1, 0, 0, good, goodlen);
    size_t len = dns_answer(z, q, n, out, sizeof(out), 512);
    CHECK_INT(rcode_of(out, len), 0);
    CHECK_INT(out[7], 1);

    /* Shorter than a header: dropped. */
    for (size_t l = 0; l < 12; l++)
        CHECK_INT(dns_answer(z, q, l, out, sizeof(out), 512), 0);
    /* A response: dropped. */
    n = raw_query(q, 0x8100, 1, 0, 0, good, goodlen);
    CHECK_INT(dns_answer(z, q, n, out, sizeof(out), 512), 0);
    /* QDCOUNT 0 and 2, and an answer section in a query: FORMERR. */
    n = raw_query(q, 0x0100, 0, 0, 0, good, goodlen);
    len = dns_answer(z, q, n, out, sizeof(out), 512);
    CHECK_INT(rcode_of(out, len), 1);
    CHECK(out[0] == 0xab && out[1] == 0xcd && (out[2] & 0x80));
    n = raw_query(q, 0x0100, 2, 0, 0, good, goodlen);
    CHECK_INT(rcode_of(out, dns_answer(z, q, n, out, sizeof(out), 512)), 1);
    n = raw_query(q, 0x0100, 1, 1, 0, good, goodlen);
    CHECK_INT(rcode_of(out, dns_answer(z, q, n, out, sizeof(out), 512)), 1);
    /* Opcode STATUS (2): NOTIMP. */
    n = raw_query(q, 0x1000, 1, 0, 0, good, goodlen);
    len = dns_answer(z, q, n, out, sizeof(out), 512);
    CHECK_INT(rcode_of(out, len), 4);
    CHECK_INT((out[2] >> 3) & 0xf, 2);
    /* Truncated question: every prefix of it is FORMERR. */
    for (size_t l = 0; l < goodlen; l++) {
        n = raw_query(q, 0x0100, 1, 0, 0, good, l);
        CHECK_INT(rcode_of(out, dns_answer(z, q, n, out, sizeof(out), 512)), 1);
    }
    /* A label running past the end. */
    static const uint8_t overflow[] = {63, 'a', 'b', 0, 0, 1, 0, 1};
    n = raw_query(q, 0x0100, 1, 0, 0, overflow, sizeof(overflow));
    CHECK_INT(rcode_of(out, dns_answer(z, q, n, out, sizeof(out), 512)), 1);
    /* A label longer than 63 (0x40: an extended label type). */
    uint8_t big[80] = {64};
    memset(big + 1, 'a', 64);
    memcpy(big + 65, "\0\0\1\0\1", 5);
    n = raw_query(q, 0x0100, 1, 0, 0, big, 70);
    CHECK_INT(rcode_of(out, dns_answer(z, q, n, out, sizeof(out), 512)), 1);
    /* A name longer than 255 bytes: 5 labels of 63. */
    uint8_t longname[400];
    size_t k = 0;
    for (int i = 0; i < 5; i++) {
        longname[k++] = 63;
        memset(longname + k, 'a', 63);
        k += 63;
    }
    memcpy(longname + k, "\0\0\1\0\1", 5);
    k += 5;
    n = raw_query(q, 0x0100, 1, 0, 0, longname, k);
    CHECK_INT(rcode_of(out, dns_answer(z, q, n, out, sizeof(out), 512)), 1);
    /* A compression pointer in the question (to itself, and to the header). */
    static const uint8_t ptr1[] = {3, 'w', 'e', 'b', 0xc0, 12, 0, 1, 0, 1};
    n = raw_query(q, 0x0100, 1, 0, 0, ptr1, sizeof(ptr1));
    CHECK_INT(rcode_of(out, dns_answer(z, q, n, out, sizeof(out), 512)), 1);
    static const uint8_t ptr2[] = {0xc0, 0, 0, 1, 0, 1};
    n = raw_query(q, 0x0100, 1, 0, 0, ptr2, sizeof(ptr2));
    CHECK_INT(rcode_of(out, dns_answer(z, q, n, out, sizeof(out), 512)), 1);
    /* ARCOUNT 1 with nothing there; two OPTs; an OPT with a non-root owner. */
    n = raw_query(q, 0x0100, 1, 0, 1, good, goodlen);
    CHECK_INT(rcode_of(out, dns_answer(z, q, n, out, sizeof(out), 512)), 1);
    uint8_t twoopt[100];
    static const uint8_t opt[] = {0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0};
    memcpy(twoopt, good, goodlen);
    memcpy(twoopt + goodlen, opt, sizeof(opt));
    memcpy(twoopt + goodlen + sizeof(opt), opt, sizeof(opt));
    n = raw_query(q, 0x0100, 1, 0, 2, twoopt, goodlen + 2 * sizeof(opt));
    CHECK_INT(rcode_of(out, dns_answer(z, q, n, out, sizeof(out), 512)), 1);
    n = raw_query(q, 0x0100, 1, 0, 1, twoopt, goodlen + sizeof(opt));
    len = dns_answer(z, q, n, out, sizeof(out), 512);
    CHECK_INT(rcode_of(out, len), 0);
    CHECK_INT(out[11], 1);
    twoopt[goodlen] = 0xc0; /* owner: a pointer, not the root */
    twoopt[goodlen + 1] = 12;
    memmove(twoopt + goodlen + 2, opt + 1, sizeof(opt) - 1);
    n = raw_query(q, 0x0100, 1, 0, 1, twoopt, goodlen + sizeof(opt) + 1);
    CHECK_INT(rcode_of(out, dns_answer(z, q, n, out, sizeof(out), 512)), 1);
    /* OPT as the question type. */
    static const uint8_t qopt[] = "\4loop\4test\0\0\51\0\1";
    n = raw_query(q, 0x0100, 1, 0, 0, qopt, sizeof(qopt) - 1);
    CHECK_INT(rcode_of(out, dns_answer(z, q, n, out, sizeof(out), 512)), 1);
    /* Class CH (version.bind and friends): REFUSED. */
    static const uint8_t chaos[] = "\4loop\4test\0\0\1\0\3";
    n = raw_query(q, 0x0100, 1, 0, 0, chaos, sizeof(chaos) - 1);
    CHECK_INT(rcode_of(out, dns_answer(z, q, n, out, sizeof(out), 512)), 5);
    dns_zone_free(z);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* Random and mutated packets: no crash (under ASan), any answer is a
 * well-formed response to the same id within the buffer. */
TEST(fuzz)
{
    dns_zone *z = make_zone(5);
    REQUIRE(z != NULL);
    uint8_t *seeds[4];
    size_t seedlen[4];
    seedlen[0] = build_query("web.myapp.loop.test", LDNS_RR_TYPE_A, 1, 0, 0, false, &seeds[0]);
    seedlen[1] =
        build_query("x.api.web.myapp.loop.test", LDNS_RR_TYPE_AAAA, 2, 1232, 0, true, &seeds[1]);
    seedlen[2] = build_query("2.0.0.127.in-addr.arpa", LDNS_RR_TYPE_PTR, 3, 0, 0, false, &seeds[2]);
    seedlen[3] = build_query("loop.test", LDNS_RR_TYPE_SOA, 4, 4096, 0, false, &seeds[3]);
    for (int i = 0; i < 4; i++)
        REQUIRE(seedlen[i] > 0);
    uint8_t q[600], out[1500];
    int bad = 0, answered = 0;
    for (int iter = 0; iter < 100000; iter++) {
        size_t n;
        if (iter % 4 == 0) {
            n = rnd() % sizeof(q);
            for (size_t i = 0; i < n; i++)
                q[i] = (uint8_t)rnd();
            q[2] &= 0x7f; /* mostly queries, so the parser is reached */
        } else {
            int s = (int)(rnd() % 4);
            n = seedlen[s];
            memcpy(q, seeds[s], n);
            int flips = 1 + (int)(rnd() % 6);
            for (int f = 0; f < flips; f++) {
                switch (rnd() % 4) {
                case 0:
                    q[rnd() % n] = (uint8_t)rnd();
                    break;
                case 1:
                    q[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
                    break;
                case 2: /* cut */
                    n = rnd() % (n + 1);
                    if (n == 0)
                        n = 1;
                    break;
                default: /* append garbage */
                    if (n + 8 < sizeof(q))
                        for (int k = 0; k < 8; k++)
                            q[n++] = (uint8_t)rnd();
                    break;
                }
            }
        }
        size_t cap = iter % 3 == 0 ? sizeof(out) : 12 + rnd() % (sizeof(out) - 12);
        size_t len = dns_answer(z, q, n, out, cap, iter % 5 == 0 ? 0 : 512);
        if (len == 0)
            continue;
        answered++;
        if (len > cap || len < 12 || !(out[2] & 0x80) || out[0] != q[0] || out[1] != q[1])
            bad++;
        else if ((out[3] & 0xf) != 1 && (out[3] & 0xf) != 4) {
            ldns_pkt *p = NULL;
            if (ldns_wire2pkt(&p, out, len) != LDNS_STATUS_OK)
                bad++;
            ldns_pkt_free(p);
        }
    }
    CHECK_INT(bad, 0);
    CHECK(answered > 1000);
    for (int i = 0; i < 4; i++)
        free(seeds[i]);
    dns_zone_free(z);
}
