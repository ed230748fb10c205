/* Parsers of the loophole.* labels a container carries. Label values are
 * hostile input (anyone who can start a container sets them): they are parsed
 * here by pure functions (no libuv, no logging, no globals) with length caps,
 * a bad value is reported to the caller (a problem on that one container,
 * never a stop), and a caller that logs one does so through printable().
 * New labels get their parser here. (The compose and naming labels are
 * names.c's: they become DNS names.) */
#ifndef LOOPHOLE_LABELS_H
#define LOOPHOLE_LABELS_H

#include <stddef.h>
#include <stdint.h>

#define LABEL_KAFKA "loophole.kafka"
/* The reverse direction: "8000,15432:5432,5432:pg.billing.loop.test:5432/tcp". */
#define LABEL_HOST_PORTS "loophole.host-ports"
/* Ports a container serves even when its image exposes none: "8080,9000/udp". */
#define LABEL_PORTS "loophole.ports"
/* The network direct forwarding uses, for a container on several. */
#define LABEL_NETWORK "loophole.network"
/* One address per compose project or per container, for this container:
 * "project" or "container" (overrides --address-per). */
#define LABEL_ADDRESS "loophole.address"
/* Carried by the daemon's relay sidecars (value: the target container's id):
 * the registry ignores such containers, the daemon removes its leftovers. */
#define LABEL_SIDECAR "loophole.sidecar"
/* ... and are named so: the label alone (an image may carry it) marks none. */
#define LABEL_SIDECAR_NAME_PREFIX "loophole-relay-"

/* The longest label value any parser here reads; longer ones are bad whole. */
#define LABEL_VALUE_MAX 512

/* loophole.address: no label (or an empty one), "project", "container" (any
 * case, blanks around ignored); anything else is LABEL_ADDRESS_BAD. */
enum {
    LABEL_ADDRESS_DEFAULT = 0,
    LABEL_ADDRESS_PROJECT,
    LABEL_ADDRESS_CONTAINER,
    LABEL_ADDRESS_BAD
};
int label_address_mode(const char *value);

/* Kafka handling a container asks for on one of its TCP ports, from the
 * loophole.kafka label value v (NULL: no label): "off" (also
 * false/no/0/none/disabled, any case) -> LABEL_KAFKA_OFF; a comma-separated
 * list of ports ("9092,9093", "9092/tcp") naming this port ->
 * LABEL_KAFKA_FORCE; no label, or a list without it -> LABEL_KAFKA_SNIFF.
 * Unparsable list entries are ignored and *bad (when given) is set; a value
 * longer than LABEL_VALUE_MAX is bad whole (SNIFF). */
enum { LABEL_KAFKA_OFF = 0, LABEL_KAFKA_SNIFF = 1, LABEL_KAFKA_FORCE = 2 };
int label_kafka_mode(const char *v, uint16_t port, int *bad);

/* ---- loophole.ports ---- */

/* At most this many entries are taken from one loophole.ports label. */
#define LABEL_PORTS_MAX 64

/* Parses the comma list v (NULL: none) of "PORT[/tcp|/udp]" entries (the
 * protocol any case, TCP by default, spaces allowed around an entry) into
 * ports[] and protos[] (CTR_TCP/CTR_UDP), at most cap of them, in the order
 * given. Returns the number of good entries. A repeated (port, proto) is
 * taken once and is not bad; empty entries are ignored; every other entry
 * that is not a port 1-65535 with tcp or udp, and every entry past cap, is
 * counted in *nbad (may be NULL). A value longer than LABEL_VALUE_MAX is bad
 * whole (returns 0, *nbad 1). */
int label_ports(const char *v, uint16_t *ports, uint8_t *protos, size_t cap, int *nbad);

/* ---- loophole.host-ports: the reverse direction ---- */

/* At most this many entries are taken from one loophole.host-ports label. */
#define LABEL_HOST_PORTS_MAX 64

/* One entry "CPORT[:[HOST:]PORT][/tcp|/udp]": the container's localhost:CPORT
 * reaches HOST:PORT on the person's machine. */
typedef struct label_hostport {
    uint16_t port; /* CPORT */
    uint8_t proto; /* CTR_TCP/CTR_UDP */
    /* "" = host loopback (127.0.0.1:PORT, then [::1]:PORT when refused);
     * else "127.0.0.5", "::1" or a lower-case name under the domain without
     * trailing dot. */
    char host[254];
    uint16_t target_port;
} label_hostport;

/* Parses one spec of len bytes (no NUL needed) under domain ("loop.test").
 * PORT defaults to CPORT, the protocol to TCP ("/tcp" or "/udp", any case).
 * HOST is empty or "localhost" (the host's loopback), an IPv4 loopback
 * literal (127.0.0.0/8, stored as a dotted quad), "::1" written "[::1]" (or
 * bare, "8000:::1:8000", since PORT never holds a colon), or a DNS name under
 * the domain (any case, stored lower case, one trailing dot dropped; never
 * the domain itself). Spaces are allowed only around the whole spec. Returns
 * 0, or -EINVAL with one sentence in err that quotes the spec through
 * printable(). */
int label_host_port_spec(const char *spec, size_t len, const char *domain, label_hostport *out,
                         char *err, size_t errlen);

/* Parses the comma list v (NULL: none) into out (at most cap entries, in the
 * order given). Returns the number of good entries; every bad one is counted
 * in *nbad (may be NULL) and the first reason is kept in err. Empty entries
 * (",,", a trailing comma) are ignored. An entry whose (CPORT, proto) an
 * earlier good one has is bad ("CPORT 8000/tcp is given twice"); entries past
 * cap are bad; a value longer than LABEL_VALUE_MAX is bad whole (returns 0,
 * *nbad 1). */
int label_host_ports(const char *v, const char *domain, label_hostport *out, size_t cap, int *nbad,
                     char *err, size_t errlen);

/* The target as the API shows it and label_host_port_spec reads it back
 * after "<CPORT>:": "localhost:8000", "127.0.0.5:8000", "[::1]:8000",
 * "pg.billing.loop.test:5432". cap >= 262 always fits. */
void label_host_port_target(const label_hostport *h, char *out, size_t cap);

#endif
