/* Parsers of the loophole.* labels a container carries. Label values are
 * hostile input (anyone who can start a container sets them): they are parsed
 * here by pure functions (no libuv, no logging, no globals) with length caps,
 * a bad value is reported to the caller (a problem on that one container,
 * never a stop), and a caller that logs one does so through printable().
 * New labels get their parser here. (The compose and naming labels are
 * names.c's: they become DNS names.) */
#ifndef LOOPHOLE_LABELS_H
#define LOOPHOLE_LABELS_H

#include <stdint.h>

#define LABEL_KAFKA "loophole.kafka"
/* The reverse direction: "8000,15432:5432,5432:pg.billing.loop.test:5432/tcp". */
#define LABEL_HOST_PORTS "loophole.host-ports"
/* Carried by the daemon's relay sidecars (value: the target container's id):
 * the registry ignores such containers, the daemon removes its leftovers. */
#define LABEL_SIDECAR "loophole.sidecar"

/* The longest label value any parser here reads; longer ones are bad whole. */
#define LABEL_VALUE_MAX 512

/* Kafka handling a container asks for on one of its TCP ports, from the
 * loophole.kafka label value v (NULL: no label): "off" (also
 * false/no/0/none/disabled, any case) -> LABEL_KAFKA_OFF; a comma-separated
 * list of ports ("9092,9093", "9092/tcp") naming this port ->
 * LABEL_KAFKA_FORCE; no label, or a list without it -> LABEL_KAFKA_SNIFF.
 * Unparsable list entries are ignored and *bad (when given) is set; a value
 * longer than LABEL_VALUE_MAX is bad whole (SNIFF). */
enum { LABEL_KAFKA_OFF = 0, LABEL_KAFKA_SNIFF = 1, LABEL_KAFKA_FORCE = 2 };
int label_kafka_mode(const char *v, uint16_t port, int *bad);

#endif
