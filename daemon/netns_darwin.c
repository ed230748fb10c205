/* macOS: no network namespaces. The maker still works (netns.c), so the
 * daemon's code is the same on both systems, but every request fails and
 * the daemon uses relay sidecars instead. */
#include <errno.h>
#include <stdio.h>

#include "netns.h"
#include "netns_int.h"
#include "util.h"

#define NO_NETNS "network namespaces are Linux's; on macOS loophole uses relay sidecars"

void netns_make(netns_result *r)
{
    r->err = -ENOTSUP;
    snprintf(r->msg, sizeof(r->msg), "%s", NO_NETNS);
}

int netns_probe(char *why, size_t len)
{
    set_err(why, len, "%s", NO_NETNS);
    return -ENOTSUP;
}
