/* What netns.c (the maker: queue, worker thread, delivery) asks of the
 * platform files netns_linux.c and netns_darwin.c. */
#ifndef LOOPHOLE_NETNS_INT_H
#define LOOPHOLE_NETNS_INT_H

#include <stdbool.h>
#include <sys/types.h>

#include "netns.h"

/* Serves one request on a worker thread, which it may leave in another
 * network namespace (the thread exits after its batch). r arrives with
 * r->req set, fd4 = fd6 = -1, err 0 and msg "". */
void netns_make(netns_result *r);

/* The test's cgroup check, or NULL for the real one. */
bool (*netns_cgroup_hook(void))(pid_t pid, const char *id);

#endif
