/* The model behind `loophole ls`: the /v1/containers array decoded into
 * structs, sorted, and printed as a table. Parsing and formatting are pure
 * (unit-tested); cmd_ls does the I/O. */
#ifndef LOOPHOLE_LS_H
#define LOOPHOLE_LS_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

typedef struct ls_port {
    long port;
    long host_port; /* -1: none */
    char proto[8];  /* "tcp" or "udp" */
    /* "direct", "mapped", "shared", "bound" (Docker itself publishes it on
     * a loopback address, issue 14), "unreachable", "none" or what a newer
     * daemon sends; an older daemon's "proxy" (and a missing mode) is read
     * as "mapped". */
    char mode[16];
    bool kafka;
    char *target;  /* "172.17.0.3:5432", "127.0.0.1:49312", bound "127.0.0.16:5432"; or NULL */
    char *network; /* the network direct forwarding uses; NULL when absent */
    char *problem; /* NULL or a sentence */
} ls_port;

/* One entry of a container's host_ports: the container's CPORT reaches
 * target on the person's side (issue 12). */
typedef struct ls_hostport {
    long port;     /* CPORT, inside the container */
    char proto[8]; /* "tcp" or "udp" */
    char *target;  /* "localhost:8000", "127.0.0.5:8000", "[::1]:8000", "pg.x.loop.test:5432" */
    char *source;  /* "label" or "api"; NULL when absent */
    char *mode;    /* "netns" or "sidecar"; NULL: not served */
    char *problem; /* NULL or a sentence */
    long active, total;
} ls_hostport;

typedef struct ls_entry {
    char *name; /* primary DNS name, NULL when it has none */
    char *ip;   /* NULL: no address (pool exhausted) */
    char *container;
    char *id;
    char *skipped; /* NULL or the reason */
    char **conflicts;
    size_t nconflicts;
    ls_port *ports;
    size_t nports;
    ls_hostport *hports;
    size_t nhports;
    char *hports_problem; /* host_ports_problem: NULL or a sentence */
    char *project;        /* the compose project, or NULL */
    /* "address" (issue 14): "container", "project" (one address for the
     * compose project), "bound" (the address Docker publishes on), or NULL
     * from an older daemon. */
    char *address;
    char **bound_ips; /* the loopback addresses Docker publishes the ports on */
    size_t nbound;
} ls_entry;

typedef struct ls_list {
    ls_entry *v;
    size_t n;
} ls_list;

/* Decodes a /v1/containers array (unknown fields ignored, missing ones
 * empty). Returns 0 or -EINVAL with a reason in err. */
int ls_parse(const char *json, size_t len, ls_list *out, char *err, size_t errlen);
/* Compose projects first, by project name, then the containers of no
 * project; within each, by DNS name, then container name, entries without
 * a name last. */
void ls_sort(ls_list *l);
void ls_list_free(ls_list *l);

/* "5432" (direct), "5432→49312" (mapped, to Docker's host port),
 * "53/udp→49000", "5432 (shared)", "5432 (bound to 127.0.0.16:5432)",
 * "9092→49200 (kafka)", "9092 (kafka)", "8080 (unreachable)", "80 (not
 * published)", "80 (not served) !" (a problem keeps it from being served),
 * with " !" when a served port has a problem. The table
 * writes a bound port whose target is the row's own address and port as
 * "5432 (bound)". */
void ls_format_port(const ls_port *p, char *dst, size_t cap);
/* "8000←host:8000" (the target "localhost:PORT" is the person's machine),
 * "53/udp←host:53", "5432←pg.billing.loop.test:5432", with " !" when the
 * entry has a problem. */
void ls_format_host_port(const ls_hostport *h, char *dst, size_t cap);
/* Whether a port is listed without -a: served (direct, mapped, shared,
 * bound) or unreachable (listed so its problem shows). */
bool ls_port_listed(const ls_port *p);
/* Whether the entry shows without -a: not skipped, and a port is listed or
 * it asks for host ports (a container that only calls back has no port of
 * its own). */
bool ls_visible(const ls_entry *e);
/* Renders the table (DNS NAME, IP, PORTS, HOST PORTS when some row has
 * any, CONTAINER and, when some row needs it, NOTE) in the order of the
 * list (ls_sort groups compose projects), footnotes for conflicts, port
 * problems (an unreachable port, a held address) and host port problems
 * ("! ..."), and notes ("* ...", marked by " *" after the IP) for a
 * project's shared address and for the other loopback addresses Docker
 * publishes a container's ports on; or a one-line hint when empty. */
void ls_format(const ls_list *l, bool all, bool color, buf *out);

#endif
