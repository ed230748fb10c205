/* Name derivation: which DNS names a container wants. A pure module (no
 * libuv, no logging, no globals). Conflicts between containers are settled by
 * the registry; this module only says what one container asks for. */
#ifndef LOOPHOLE_NAMES_H
#define LOOPHOLE_NAMES_H

#include <stddef.h>

#include "container.h"

#define NAMES_LABEL_MAX 63
#define NAMES_NAME_MAX 253
/* At most this many names are taken from one "loophole.names" label; the rest
 * are ignored, so one label cannot flood the DNS table. */
#define NAMES_EXTRA_MAX 64

typedef struct names_result {
    /* Fully qualified names, lowercase, without a trailing dot, without
     * duplicates. names[0] is the primary name. For compose containers
     * ("com.docker.compose.project/.service/.container-number" labels):
     * "<service>-<n>.<project>.<domain>" first, then "<container name>.<domain>";
     * otherwise "<container name>.<domain>". Then every entry of the
     * "loophole.names" label (comma separated; each made of valid labels,
     * "<x>.<domain>" appended unless it already ends in ".<domain>").
     * Names longer than 253 bytes are dropped. A "loophole.names" entry equal
     * to service_alias is left out (the alias already covers it). Compose
     * one-off containers ("com.docker.compose.oneoff=True") count as
     * non-compose, as do containers whose project or service has no valid
     * character. */
    char **names;
    size_t nnames;
    /* names[0..nderived) are derived from the container itself (compose
     * replica name, container name); the rest come from its loophole.names
     * label. */
    size_t nderived;
    /* Compose only: "<service>.<project>.<domain>", which the registry gives to
     * the lowest-numbered running replica; NULL otherwise. Not in names[]. */
    char *service_alias;
    int replica;   /* compose container-number (1 when the label is missing), 0 when not compose */
    char *project; /* compose project as given in the label, or NULL */
    /* Compose only: "<project>.<domain>", the project's name (the registry
     * gives it to a project sharing one address); NULL otherwise. */
    char *project_name;
    /* Compose only: "project:<project as given, bytes other than
     * [A-Za-z0-9._-] %XX-escaped>", the lease key of the project's shared
     * address; NULL otherwise. */
    char *project_key;
    char *service; /* compose service as given in the label, or NULL */
    /* Lease key: "compose:<project>/<service>/<n>" (project and service
     * sanitised as labels) or "name:<container name>" ("id:<id>" when the
     * container has no name); stable across restarts of the same service
     * replica / container name. Set even when skipped. */
    char *lease_key;
    /* Non-NULL when the container is to be skipped ("disabled by label
     * loophole.enable=<value>" for false/0/no/off in any case, or "no valid
     * DNS name"); names is then empty and service_alias NULL. */
    char *skipped;
} names_result;

/* Turns any string into one valid DNS label (RFC 1123): lowercased, every
 * character outside [a-z0-9-] becomes '-', runs of '-' are kept, leading and
 * trailing '-' removed, cut to 63 bytes (and re-trimmed). A multi-byte UTF-8
 * character becomes a single '-'. Writes a NUL
 * terminated label into out (cap >= 64). Returns its length, or -EINVAL when
 * nothing valid is left. */
int names_sanitize_label(const char *in, char *out, size_t cap);

/* Sanitises a dotted name label by label (empty labels, and labels with no
 * valid character, dropped). Returns the length, or -EINVAL when empty or
 * longer than 253 bytes, -ENOSPC when it does not fit in cap. */
int names_sanitize_name(const char *in, char *out, size_t cap);

/* Derives the names of c under domain (e.g. "loop.test", already lowercase,
 * no trailing dot). Always fills *out (free with names_result_free); returns 0,
 * or -EINVAL when the container was skipped (out->skipped says why). */
int names_derive(const container *c, const char *domain, names_result *out);

void names_result_free(names_result *r);

/* True when name equals domain or ends in ".<domain>" (case-insensitive; one
 * trailing dot on either is ignored, as DNS questions carry one). */
int names_in_domain(const char *name, const char *domain);

#endif
