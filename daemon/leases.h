/* Named leases for other tools (loophole lease add/rm/ls): the control
 * API's provider functions and the lease JSON, over the registry's named
 * leases (registry.c) and the allocator's pinned leases (alloc.c). */
#ifndef LOOPHOLE_LEASES_H
#define LOOPHOLE_LEASES_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_gen.h>

#include "registry.h"

struct daemon_ctx;

/* {"name", "dns", "ip", "created_at" (Unix ms), "alias": true|false|null
 * (null: this platform and --alias add none), "containers": [names of the
 * containers bound to its address]}. */
void leases_view(const struct daemon_ctx *d, const reg_lease *l, yajl_gen g);

/* The control_provider functions (ud: the daemon_ctx). */
void leases_prov_list(void *ud, yajl_gen g);
int leases_prov_get(void *ud, const char *name, yajl_gen g);
int leases_prov_add(void *ud, const char *body, size_t len, yajl_gen g, bool *created, char *err,
                    size_t errlen);
int leases_prov_remove(void *ud, const char *name, char *err, size_t errlen);

#endif
