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
    char mode[16];  /* "proxy", "shared" or "none" */
    bool kafka;
} ls_port;

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
} ls_entry;

typedef struct ls_list {
    ls_entry *v;
    size_t n;
} ls_list;

/* Decodes a /v1/containers array (unknown fields ignored, missing ones
 * empty). Returns 0 or -EINVAL with a reason in err. */
int ls_parse(const char *json, size_t len, ls_list *out, char *err, size_t errlen);
/* By DNS name, then container name; entries without a name last. */
void ls_sort(ls_list *l);
void ls_list_free(ls_list *l);

/* "5432→49312", "53/udp→49000", "5432 (shared)", "9092→49200 (kafka)",
 * "80 (not published)". */
void ls_format_port(const ls_port *p, char *dst, size_t cap);
/* Whether the entry shows without -a: not skipped and a port is served. */
bool ls_visible(const ls_entry *e);
/* Renders the table (DNS NAME, IP, PORTS, CONTAINER and, when some row
 * needs it, NOTE), conflict footnotes, or a one-line hint when empty. */
void ls_format(const ls_list *l, bool all, bool color, buf *out);

#endif
