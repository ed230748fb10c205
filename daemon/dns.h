/* The DNS answer builder: authoritative for one domain. Pure (ldns, no libuv,
 * no logging, no globals). Each name's answer is built with ldns once, when
 * the zone is set, and kept in wire form; a query only looks the name up and
 * re-stamps the id, flags and question. */
#ifndef LOOPHOLE_DNS_H
#define LOOPHOLE_DNS_H

#include <stddef.h>
#include <stdint.h>

typedef struct dns_zone dns_zone;

typedef struct dns_record {
    const char *name; /* fully qualified, lowercase, no trailing dot, inside the domain */
    uint32_t addr;    /* IPv4, host order */
} dns_record;

/* domain: e.g. "loop.test"; ttl: seconds for A/PTR answers and the SOA. */
dns_zone *dns_zone_new(const char *domain, uint32_t ttl);
void dns_zone_free(dns_zone *z);

/* Replaces every record. The first record naming an address is the target of
 * that address's PTR record. Returns 0 or -EINVAL (a name outside the domain
 * or not a valid DNS name: the whole set is refused, the old one kept). */
int dns_zone_set(dns_zone *z, const dns_record *recs, size_t n);

/* Looks a name up the way queries are answered: exact match, else the nearest
 * enclosing name that is a record ("api.web.myapp.loop.test" -> the record of
 * "web.myapp.loop.test"). Case-insensitive, trailing dot optional. Returns 1
 * with *addr set, 0 when not found. */
int dns_zone_lookup(const dns_zone *z, const char *name, uint32_t *addr);

/* Answers one query (wire format, UDP or TCP payload without the TCP length
 * prefix). Writes the response into out and returns its length, or 0 when the
 * query is to be dropped (too short to hold a header, or itself a response).
 * Rules: QTYPE A of a known name -> the A record (TTL as set); known name with
 * another type -> NOERROR, no answer, SOA in authority; unknown name in the
 * zone -> NXDOMAIN + SOA; SOA/NS at the apex; PTR for in-addr.arpa names of
 * zone addresses (other reverse names -> REFUSED unless in the zone); names
 * outside the zone -> REFUSED; malformed question, QDCOUNT != 1, opcode other
 * than QUERY -> FORMERR/NOTIMP; EDNS0 OPT in the query -> OPT in the answer
 * (payload size 1232), bad EDNS version -> BADVERS. A UDP answer longer than
 * the client's limit (512, or its EDNS size) is truncated with TC set.
 * max_udp is 0 for TCP (no limit but cap). */
size_t dns_answer(dns_zone *z, const uint8_t *q, size_t qlen, uint8_t *out, size_t cap,
                  size_t max_udp_default);

#endif
