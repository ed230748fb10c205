/* The DNS answer builder. Every resource record the zone can answer with is
 * built once with ldns when the zone is set and kept in wire form, its owner
 * name replaced by a compression pointer to the question (offset 12). A query
 * is then parsed by hand (header, question, EDNS0 OPT), looked up in a hash
 * table of lowercase wire names, and answered by copying the question as the
 * client wrote it plus the cached sections: no allocation per query. */
#include "dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Only the ldns headers used: <ldns/ldns.h> also includes the DNSSEC ones,
 * which include OpenSSL's, and ldns's pkg-config file does not say where
 * those are (Homebrew keeps OpenSSL keg-only). host2wire.h uses rbtree.h's
 * type without including it. */
#include <ldns/common.h>
#include <ldns/error.h>
#include <ldns/buffer.h>
#include <ldns/rdata.h>
#include <ldns/rr.h>
#include <ldns/rbtree.h>
#include <ldns/packet.h>
#include <ldns/host2wire.h>

#include "util.h"

#define DNS_HDR_LEN 12
#define DNS_NAME_MAX 255
#define DNS_EDNS_PAYLOAD 1232
#define DNS_OPT_LEN 11
#define DNS_A_RR_LEN 16

enum {
    T_A = 1,
    T_NS = 2,
    T_SOA = 6,
    T_PTR = 12,
    T_OPT = 41,
    T_ANY = 255,
};

enum {
    RC_NOERROR = 0,
    RC_FORMERR = 1,
    RC_NXDOMAIN = 3,
    RC_NOTIMP = 4,
    RC_REFUSED = 5,
};

/* One name of the zone: a record, the apex, an empty non-terminal (an
 * ancestor of a record between it and the apex) or the synthetic NS host. */
struct dns_entry {
    bool used;
    bool has_addr;
    uint8_t len; /* wire length including the root label */
    uint32_t hash;
    uint32_t addr;
    uint8_t an[DNS_A_RR_LEN]; /* the A record, owner compressed to offset 12 */
    uint8_t name[DNS_NAME_MAX];
};

struct dns_ptr {
    bool used;
    uint32_t addr;
    uint16_t rrlen;
    uint8_t *rr; /* the PTR record, owner compressed to offset 12 */
};

/* Everything one dns_zone_set produces; swapped in whole so a refused set
 * leaves the old one untouched. */
struct dns_data {
    struct dns_entry *slots;
    size_t mask;
    struct dns_ptr *ptrs;
    size_t pmask;
    uint8_t soa_auth[DNS_NAME_MAX + 64]; /* SOA with its full owner name */
    size_t soa_auth_len;
    uint8_t apex_an[2 * (DNS_NAME_MAX + 64)]; /* SOA then NS, owners compressed */
    size_t soa_an_len;                        /* the SOA alone: apex_an[0..soa_an_len) */
    size_t apex_an_len;                       /* SOA + NS */
};

struct dns_zone {
    uint8_t dwire[DNS_NAME_MAX]; /* the domain, lowercase wire form */
    size_t dlen;
    uint32_t ttl;
    uint32_t serial;
    struct dns_data *data;
};

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint8_t lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

static uint32_t name_hash(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Dotted text to lowercase wire form. strict: a host name of the zone
 * (letters, digits, '-' and '_'); otherwise any byte but '.' is allowed,
 * because lookups only need to find what is there. */
static int text_to_wire(const char *s, uint8_t *out, size_t *outlen, bool strict)
{
    size_t n = 0, slen = strlen(s);
    if (slen > 0 && s[slen - 1] == '.')
        slen--;
    if (slen == 0)
        return -EINVAL;
    size_t i = 0;
    while (i <= slen) {
        size_t start = i;
        while (i < slen && s[i] != '.')
            i++;
        size_t l = i - start;
        if (l == 0 || l > 63 || n + 1 + l + 1 > DNS_NAME_MAX)
            return -EINVAL;
        out[n++] = (uint8_t)l;
        for (size_t k = start; k < i; k++) {
            uint8_t c = lower((uint8_t)s[k]);
            if (strict &&
                !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
                return -EINVAL;
            out[n++] = c;
        }
        i++; /* skip the dot (or step past the end) */
    }
    out[n++] = 0;
    *outlen = n;
    return 0;
}

/* Offset in name (lowercase wire, len bytes) where the suffix equal to the
 * zone's domain starts, or -1 when the name is not inside the domain. */
static long apex_offset(const dns_zone *z, const uint8_t *name, size_t len)
{
    if (len < z->dlen)
        return -1;
    size_t off = 0;
    while (len - off > z->dlen)
        off += (size_t)name[off] + 1;
    if (len - off != z->dlen || memcmp(name + off, z->dwire, z->dlen) != 0)
        return -1;
    return (long)off;
}

static struct dns_entry *table_find(const struct dns_data *d, const uint8_t *name, size_t len,
                                    uint32_t h)
{
    for (size_t i = h & d->mask;; i = (i + 1) & d->mask) {
        struct dns_entry *e = &d->slots[i];
        if (!e->used)
            return NULL;
        if (e->hash == h && e->len == len && memcmp(e->name, name, len) == 0)
            return e;
    }
}

/* Returns the entry of name, inserting an empty one when absent. The table
 * is sized beforehand so it never fills. */
static struct dns_entry *table_get(struct dns_data *d, const uint8_t *name, size_t len)
{
    uint32_t h = name_hash(name, len);
    size_t i = h & d->mask;
    for (;; i = (i + 1) & d->mask) {
        struct dns_entry *e = &d->slots[i];
        if (!e->used)
            break;
        if (e->hash == h && e->len == len && memcmp(e->name, name, len) == 0)
            return e;
    }
    struct dns_entry *e = &d->slots[i];
    e->used = true;
    e->hash = h;
    e->len = (uint8_t)len;
    memcpy(e->name, name, len);
    return e;
}

static struct dns_ptr *ptr_find(const struct dns_data *d, uint32_t addr)
{
    for (size_t i = (addr * 2654435761u) & d->pmask;; i = (i + 1) & d->pmask) {
        struct dns_ptr *p = &d->ptrs[i];
        if (!p->used || p->addr == addr)
            return p;
    }
}

static void data_free(struct dns_data *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i <= d->pmask; i++)
        free(d->ptrs[i].rr);
    free(d->ptrs);
    free(d->slots);
    free(d);
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n)
        p <<= 1;
    return p;
}

/* ldns helpers: build an RR, serialise it, and replace its owner name by a
 * pointer to the question when compress is set. Returns the length written
 * or 0 on failure. */
static ldns_rdf *wire_dname(const uint8_t *wire, size_t len)
{
    return ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, len, wire);
}

static size_t rr_to_wire(ldns_rr *rr, bool compress, uint8_t *out, size_t cap)
{
    size_t n = 0;
    ldns_buffer *b = ldns_buffer_new(512);
    if (b == NULL)
        return 0;
    if (ldns_rr2buffer_wire(b, rr, LDNS_SECTION_ANSWER) == LDNS_STATUS_OK) {
        const uint8_t *p = ldns_buffer_begin(b);
        size_t len = ldns_buffer_position(b);
        size_t skip = compress ? ldns_rdf_size(ldns_rr_owner(rr)) : 0;
        size_t need = len - skip + (compress ? 2 : 0);
        if (skip <= len && need <= cap) {
            if (compress) {
                out[0] = 0xc0;
                out[1] = DNS_HDR_LEN;
                n = 2;
            }
            memcpy(out + n, p + skip, len - skip);
            n += len - skip;
        }
    }
    ldns_buffer_free(b);
    ldns_rr_free(rr);
    return n;
}

static ldns_rr *rr_new(const uint8_t *owner, size_t olen, ldns_rr_type type, uint32_t ttl)
{
    ldns_rr *rr = ldns_rr_new();
    if (rr == NULL)
        return NULL;
    ldns_rr_set_owner(rr, wire_dname(owner, olen));
    ldns_rr_set_type(rr, type);
    ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(rr, ttl);
    return rr;
}

static size_t build_a(const uint8_t *owner, size_t olen, uint32_t addr, uint32_t ttl, uint8_t *out)
{
    ldns_rr *rr = rr_new(owner, olen, LDNS_RR_TYPE_A, ttl);
    if (rr == NULL)
        return 0;
    uint32_t nbo = htonl(addr);
    ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4, &nbo));
    return rr_to_wire(rr, true, out, DNS_A_RR_LEN);
}

static size_t build_soa(const dns_zone *z, uint32_t serial, bool compress, uint8_t *out, size_t cap)
{
    uint8_t mname[DNS_NAME_MAX + 16], rname[DNS_NAME_MAX + 16];
    /* "ns." and "hostmaster." in front of the domain; both fit because the
     * domain was checked to leave room for them. */
    mname[0] = 2;
    memcpy(mname + 1, "ns", 2);
    memcpy(mname + 3, z->dwire, z->dlen);
    rname[0] = 10;
    memcpy(rname + 1, "hostmaster", 10);
    memcpy(rname + 11, z->dwire, z->dlen);
    ldns_rr *rr = rr_new(z->dwire, z->dlen, LDNS_RR_TYPE_SOA, z->ttl);
    if (rr == NULL)
        return 0;
    ldns_rr_push_rdf(rr, wire_dname(mname, z->dlen + 3));
    ldns_rr_push_rdf(rr, wire_dname(rname, z->dlen + 11));
    ldns_rr_push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32, serial));
    ldns_rr_push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, 3600));
    ldns_rr_push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, 600));
    ldns_rr_push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, 86400));
    /* The minimum is the negative-caching TTL (RFC 2308): as short as the
     * positive one, so a new container's name is not cached away. */
    ldns_rr_push_rdf(rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, z->ttl));
    return rr_to_wire(rr, compress, out, cap);
}

static size_t build_ns(const dns_zone *z, uint8_t *out, size_t cap)
{
    uint8_t target[DNS_NAME_MAX + 16];
    target[0] = 2;
    memcpy(target + 1, "ns", 2);
    memcpy(target + 3, z->dwire, z->dlen);
    ldns_rr *rr = rr_new(z->dwire, z->dlen, LDNS_RR_TYPE_NS, z->ttl);
    if (rr == NULL)
        return 0;
    ldns_rr_push_rdf(rr, wire_dname(target, z->dlen + 3));
    return rr_to_wire(rr, true, out, cap);
}

/* d.c.b.a.in-addr.arpa in wire form. */
static size_t reverse_wire(uint32_t addr, uint8_t *out)
{
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        unsigned v = (addr >> (8 * i)) & 0xff;
        char tmp[4];
        int l = 0;
        if (v >= 100)
            tmp[l++] = (char)('0' + v / 100);
        if (v >= 10)
            tmp[l++] = (char)('0' + v / 10 % 10);
        tmp[l++] = (char)('0' + v % 10);
        out[n++] = (uint8_t)l;
        memcpy(out + n, tmp, (size_t)l);
        n += (size_t)l;
    }
    static const uint8_t arpa[] = "\7in-addr\4arpa";
    memcpy(out + n, arpa, sizeof(arpa)); /* includes the root label */
    return n + sizeof(arpa);
}

static size_t build_ptr(uint32_t addr, const uint8_t *target, size_t tlen, uint32_t ttl,
                        uint8_t *out, size_t cap)
{
    uint8_t owner[32];
    size_t olen = reverse_wire(addr, owner);
    ldns_rr *rr = rr_new(owner, olen, LDNS_RR_TYPE_PTR, ttl);
    if (rr == NULL)
        return 0;
    ldns_rr_push_rdf(rr, wire_dname(target, tlen));
    return rr_to_wire(rr, true, out, cap);
}

static struct dns_data *data_build(dns_zone *z, const dns_record *recs, size_t n, uint32_t serial)
{
    uint8_t(*wires)[DNS_NAME_MAX] = n ? xmalloc(n * sizeof(*wires)) : NULL;
    size_t *lens = n ? xmalloc(n * sizeof(*lens)) : NULL;
    struct dns_data *d = NULL;
    size_t bound = 2; /* the apex and ns.<domain> */
    for (size_t i = 0; i < n; i++) {
        if (recs[i].name == NULL || text_to_wire(recs[i].name, wires[i], &lens[i], true) < 0)
            goto fail;
        long ao = apex_offset(z, wires[i], lens[i]);
        if (ao <= 0) /* outside the domain, or the apex itself */
            goto fail;
        for (size_t off = 0; off < (size_t)ao; off += (size_t)wires[i][off] + 1)
            bound++;
    }

    d = xcalloc(1, sizeof(*d));
    size_t cap = pow2_at_least(bound * 2);
    d->slots = xcalloc(cap, sizeof(*d->slots));
    d->mask = cap - 1;
    size_t pcap = pow2_at_least(n * 2);
    d->ptrs = xcalloc(pcap, sizeof(*d->ptrs));
    d->pmask = pcap - 1;

    /* Records first: the first one of a name wins. */
    for (size_t i = 0; i < n; i++) {
        struct dns_entry *e = table_get(d, wires[i], lens[i]);
        if (e->has_addr)
            continue;
        e->has_addr = true;
        e->addr = recs[i].addr;
        if (build_a(wires[i], lens[i], e->addr, z->ttl, e->an) != DNS_A_RR_LEN)
            goto fail;
    }
    /* Empty non-terminals exist (NODATA rather than NXDOMAIN), but do not
     * answer by themselves: lookups continue past them to a record above. */
    for (size_t i = 0; i < n; i++) {
        long ao = apex_offset(z, wires[i], lens[i]);
        for (size_t off = (size_t)wires[i][0] + 1; off < (size_t)ao;
             off += (size_t)wires[i][off] + 1)
            table_get(d, wires[i] + off, lens[i] - off);
    }
    table_get(d, z->dwire, z->dlen);
    /* The apex NS target answers 127.0.0.1 unless a record claims the name:
     * the listen address is not known here and any loopback address answers
     * the same way for a resolver that already found us. */
    uint8_t ns[DNS_NAME_MAX + 16];
    ns[0] = 2;
    memcpy(ns + 1, "ns", 2);
    memcpy(ns + 3, z->dwire, z->dlen);
    struct dns_entry *nse = table_get(d, ns, z->dlen + 3);
    if (!nse->has_addr) {
        nse->has_addr = true;
        nse->addr = 0x7f000001;
        if (build_a(ns, z->dlen + 3, nse->addr, z->ttl, nse->an) != DNS_A_RR_LEN)
            goto fail;
    }

    for (size_t i = 0; i < n; i++) {
        struct dns_ptr *p = ptr_find(d, recs[i].addr);
        if (p->used)
            continue;
        uint8_t tmp[DNS_NAME_MAX + 64];
        size_t len = build_ptr(recs[i].addr, wires[i], lens[i], z->ttl, tmp, sizeof(tmp));
        if (len == 0)
            goto fail;
        p->used = true;
        p->addr = recs[i].addr;
        p->rr = xmalloc(len);
        p->rrlen = (uint16_t)len;
        memcpy(p->rr, tmp, len);
    }

    d->soa_auth_len = build_soa(z, serial, false, d->soa_auth, sizeof(d->soa_auth));
    d->soa_an_len = build_soa(z, serial, true, d->apex_an, sizeof(d->apex_an));
    if (d->soa_auth_len == 0 || d->soa_an_len == 0)
        goto fail;
    size_t nslen = build_ns(z, d->apex_an + d->soa_an_len, sizeof(d->apex_an) - d->soa_an_len);
    if (nslen == 0)
        goto fail;
    d->apex_an_len = d->soa_an_len + nslen;
    free(wires);
    free(lens);
    return d;
fail:
    data_free(d);
    free(wires);
    free(lens);
    return NULL;
}

dns_zone *dns_zone_new(const char *domain, uint32_t ttl)
{
    if (domain == NULL)
        return NULL;
    dns_zone *z = xcalloc(1, sizeof(*z));
    /* Leave room for "hostmaster." in front of the domain in the SOA. */
    if (text_to_wire(domain, z->dwire, &z->dlen, true) < 0 || z->dlen + 11 > DNS_NAME_MAX) {
        free(z);
        return NULL;
    }
    z->ttl = ttl;
    z->serial = 1;
    z->data = data_build(z, NULL, 0, z->serial);
    if (z->data == NULL) {
        free(z);
        return NULL;
    }
    return z;
}

void dns_zone_free(dns_zone *z)
{
    if (z == NULL)
        return;
    data_free(z->data);
    free(z);
}

int dns_zone_set(dns_zone *z, const dns_record *recs, size_t n)
{
    if (n > 0 && recs == NULL)
        return -EINVAL;
    struct dns_data *d = data_build(z, recs, n, z->serial + 1);
    if (d == NULL)
        return -EINVAL;
    data_free(z->data);
    z->data = d;
    z->serial++;
    return 0;
}

enum lookup_kind { LK_NXDOMAIN, LK_NODATA, LK_APEX, LK_ADDR };

/* The nearest enclosing name that has an address, or what the name is when
 * none does. name is lowercase wire form inside the zone; apex is the offset
 * of the domain in it. */
static enum lookup_kind zone_resolve(const struct dns_data *d, const uint8_t *name, size_t len,
                                     size_t apex, const struct dns_entry **out)
{
    if (apex == 0)
        return LK_APEX;
    const struct dns_entry *exact = table_find(d, name, len, name_hash(name, len));
    if (exact != NULL && exact->has_addr) {
        *out = exact;
        return LK_ADDR;
    }
    for (size_t off = (size_t)name[0] + 1; off < apex; off += (size_t)name[off] + 1) {
        const struct dns_entry *e =
            table_find(d, name + off, len - off, name_hash(name + off, len - off));
        if (e != NULL && e->has_addr) {
            *out = e;
            return LK_ADDR;
        }
    }
    return exact != NULL ? LK_NODATA : LK_NXDOMAIN;
}

int dns_zone_lookup(const dns_zone *z, const char *name, uint32_t *addr)
{
    uint8_t wire[DNS_NAME_MAX];
    size_t len;
    if (name == NULL || text_to_wire(name, wire, &len, false) < 0)
        return 0;
    long apex = apex_offset(z, wire, len);
    if (apex < 0)
        return 0;
    const struct dns_entry *e = NULL;
    if (zone_resolve(z->data, wire, len, (size_t)apex, &e) != LK_ADDR)
        return 0;
    if (addr != NULL)
        *addr = e->addr;
    return 1;
}

/* The address of a d.c.b.a.in-addr.arpa name, when it is exactly that. */
static bool reverse_addr(const uint8_t *name, size_t len, uint32_t *addr)
{
    static const uint8_t arpa[] = "\7in-addr\4arpa";
    uint32_t a = 0;
    size_t off = 0;
    for (int i = 0; i < 4; i++) {
        size_t l = name[off];
        if (l == 0 || l > 3 || (l > 1 && name[off + 1] == '0'))
            return false;
        unsigned v = 0;
        for (size_t k = 1; k <= l; k++) {
            uint8_t c = name[off + k];
            if (c < '0' || c > '9')
                return false;
            v = v * 10 + (unsigned)(c - '0');
        }
        if (v > 255)
            return false;
        a |= (uint32_t)v << (8 * i);
        off += l + 1;
    }
    if (len - off != sizeof(arpa) || memcmp(name + off, arpa, sizeof(arpa)) != 0)
        return false;
    *addr = a;
    return true;
}

/* A header-only reply for queries whose question cannot be trusted. */
static size_t error_reply(const uint8_t *q, uint8_t *out, size_t cap, int rcode)
{
    if (cap < DNS_HDR_LEN)
        return 0;
    memset(out, 0, DNS_HDR_LEN);
    out[0] = q[0];
    out[1] = q[1];
    out[2] = (uint8_t)(0x80 | (q[2] & 0x79)); /* QR, opcode and RD as asked */
    out[3] = (uint8_t)rcode;
    return DNS_HDR_LEN;
}

struct edns {
    bool present;
    bool do_bit;
    uint8_t version;
    uint16_t size;
};

/* Walks the additional section for an OPT record. Returns false when the
 * section is malformed or holds two OPTs (FORMERR, RFC 6891). */
static bool parse_additional(const uint8_t *q, size_t qlen, size_t off, unsigned count,
                             struct edns *e)
{
    for (unsigned i = 0; i < count; i++) {
        size_t owner = off;
        /* Compression is fine here (e.g. a TSIG owner); names are skipped,
         * never followed. */
        for (;;) {
            if (off >= qlen)
                return false;
            uint8_t l = q[off];
            if ((l & 0xc0) == 0xc0) {
                off += 2;
                break;
            }
            if (l & 0xc0)
                return false;
            off += (size_t)l + 1;
            if (l == 0)
                break;
        }
        if (off + 10 > qlen)
            return false;
        uint16_t type = rd16(q + off), rdlen = rd16(q + off + 8);
        if (off + 10 + rdlen > qlen)
            return false;
        if (type == T_OPT) {
            if (e->present || q[owner] != 0)
                return false;
            e->present = true;
            e->size = rd16(q + off + 2);
            e->version = q[off + 5];
            e->do_bit = (q[off + 6] & 0x80) != 0;
        }
        off += 10 + (size_t)rdlen;
    }
    return true;
}

size_t dns_answer(dns_zone *z, const uint8_t *q, size_t qlen, uint8_t *out, size_t cap,
                  size_t max_udp_default)
{
    if (q == NULL || out == NULL || qlen < DNS_HDR_LEN)
        return 0;
    if (q[2] & 0x80) /* a response: answering it could start a loop */
        return 0;
    if (((q[2] >> 3) & 0xf) != 0)
        return error_reply(q, out, cap, RC_NOTIMP);
    if (rd16(q + 4) != 1 || rd16(q + 6) != 0 || rd16(q + 8) != 0)
        return error_reply(q, out, cap, RC_FORMERR);

    /* The question name, lowercased into name[] with its label offsets. */
    uint8_t name[DNS_NAME_MAX];
    size_t len = 0, off = DNS_HDR_LEN;
    for (;;) {
        if (off >= qlen)
            return error_reply(q, out, cap, RC_FORMERR);
        uint8_t l = q[off];
        if (l == 0) {
            name[len++] = 0;
            off++;
            break;
        }
        /* Compression pointers (and the obsolete extended label types) have
         * no place in a question: there is nothing before it to point to. */
        if (l & 0xc0)
            return error_reply(q, out, cap, RC_FORMERR);
        if (len + 1 + l + 1 > DNS_NAME_MAX || off + 1 + l > qlen)
            return error_reply(q, out, cap, RC_FORMERR);
        name[len++] = l;
        for (size_t k = 1; k <= l; k++)
            name[len++] = lower(q[off + k]);
        off += (size_t)l + 1;
    }
    if (off + 4 > qlen)
        return error_reply(q, out, cap, RC_FORMERR);
    uint16_t qtype = rd16(q + off), qclass = rd16(q + off + 2);
    off += 4;
    size_t qend = off;

    struct edns edns = {0};
    if (!parse_additional(q, qlen, off, rd16(q + 10), &edns))
        return error_reply(q, out, cap, RC_FORMERR);

    const struct dns_data *d = z->data;
    int rcode = RC_NOERROR;
    bool aa = true;
    const uint8_t *an = NULL, *ns = NULL;
    size_t anlen = 0, nslen = 0;
    unsigned ancount = 0, nscount = 0;
    long apex = apex_offset(z, name, len);
    uint32_t raddr;
    bool badvers = edns.present && edns.version != 0;

    if (badvers) {
        aa = false;
    } else if (qclass != LDNS_RR_CLASS_IN || qtype == T_OPT) {
        rcode = qtype == T_OPT ? RC_FORMERR : RC_REFUSED;
        aa = false;
    } else if (apex >= 0) {
        const struct dns_entry *e = NULL;
        enum lookup_kind k = zone_resolve(d, name, len, (size_t)apex, &e);
        if (k == LK_ADDR && (qtype == T_A || qtype == T_ANY)) {
            an = e->an;
            anlen = DNS_A_RR_LEN;
            ancount = 1;
        } else if (k == LK_APEX && qtype == T_SOA) {
            an = d->apex_an;
            anlen = d->soa_an_len;
            ancount = 1;
        } else if (k == LK_APEX && qtype == T_NS) {
            an = d->apex_an + d->soa_an_len;
            anlen = d->apex_an_len - d->soa_an_len;
            ancount = 1;
        } else if (k == LK_APEX && qtype == T_ANY) {
            an = d->apex_an;
            anlen = d->apex_an_len;
            ancount = 2;
        } else {
            if (k == LK_NXDOMAIN)
                rcode = RC_NXDOMAIN;
            ns = d->soa_auth;
            nslen = d->soa_auth_len;
            nscount = 1;
        }
    } else if (reverse_addr(name, len, &raddr) && ptr_find(d, raddr)->used) {
        /* Authoritative for the reverse names of our own addresses only;
         * any other reverse name belongs to someone else's zone. */
        const struct dns_ptr *p = ptr_find(d, raddr);
        if (qtype == T_PTR || qtype == T_ANY) {
            an = p->rr;
            anlen = p->rrlen;
            ancount = 1;
        }
    } else {
        rcode = RC_REFUSED;
        aa = false;
    }

    /* The client's limit: 512 or its EDNS size for UDP, out's size for TCP. */
    size_t limit = cap;
    if (max_udp_default != 0) {
        size_t udp = max_udp_default;
        if (edns.present)
            udp = edns.size < 512 ? 512 : edns.size;
        if (udp < limit)
            limit = udp;
    }
    size_t qsect = qend - DNS_HDR_LEN;
    size_t optlen = edns.present ? DNS_OPT_LEN : 0;
    size_t total = DNS_HDR_LEN + qsect + anlen + nslen + optlen;
    bool tc = false;
    if (total > limit) {
        tc = true;
        anlen = nslen = 0;
        ancount = nscount = 0;
        total = DNS_HDR_LEN + qsect + optlen;
        if (total > cap)
            return 0;
    }

    uint8_t *p = out;
    p[0] = q[0];
    p[1] = q[1];
    p[2] = (uint8_t)(0x80 | (aa ? 0x04 : 0) | (tc ? 0x02 : 0) | (q[2] & 0x01));
    p[3] = (uint8_t)((q[3] & 0x10) | (rcode & 0xf)); /* CD copied, RA clear */
    wr16(p + 4, 1);
    wr16(p + 6, (uint16_t)ancount);
    wr16(p + 8, (uint16_t)nscount);
    wr16(p + 10, edns.present ? 1 : 0);
    p += DNS_HDR_LEN;
    memcpy(p, q + DNS_HDR_LEN, qsect); /* the question as the client wrote it */
    p += qsect;
    if (anlen) {
        memcpy(p, an, anlen);
        p += anlen;
    }
    if (nslen) {
        memcpy(p, ns, nslen);
        p += nslen;
    }
    if (edns.present) {
        p[0] = 0; /* root owner */
        wr16(p + 1, T_OPT);
        wr16(p + 3, DNS_EDNS_PAYLOAD);
        p[5] = badvers ? 1 : 0; /* extended rcode: BADVERS is 16 = 1 << 4 */
        p[6] = 0;               /* version */
        p[7] = edns.do_bit ? 0x80 : 0;
        p[8] = 0;
        wr16(p + 9, 0);
        p += DNS_OPT_LEN;
    }
    return (size_t)(p - out);
}
