/* macOS: LOCAL_PEERCRED returns a struct xucred with the uid and the groups
 * (cr_groups[0] is the effective gid), so no group database lookup is needed. */
/* SOL_LOCAL, LOCAL_PEERCRED and struct xucred's u_int are Darwin extensions
 * that a strict _POSIX_C_SOURCE hides; CMake defines this too on Apple. */
#ifndef _DARWIN_C_SOURCE
#define _DARWIN_C_SOURCE
#endif

#include "peercred.h"

#include <errno.h>
#include <sys/param.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/ucred.h>
#include <sys/un.h>

int peercred_get(int fd, peercred *out)
{
    struct xucred xu;
    socklen_t len = sizeof(xu);
    if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERCRED, &xu, &len) < 0)
        return -errno;
    if (len != sizeof(xu) || xu.cr_version != XUCRED_VERSION)
        return -EINVAL;
    out->uid = xu.cr_uid;
    out->gid = xu.cr_ngroups > 0 ? xu.cr_groups[0] : (gid_t)-1;
    int n = xu.cr_ngroups;
    if (n < 0)
        n = 0;
    if (n > PEERCRED_MAX_GROUPS)
        n = PEERCRED_MAX_GROUPS;
    for (int i = 0; i < n; i++)
        out->groups[i] = xu.cr_groups[i];
    out->ngroups = n;
    return 0;
}

int peercred_load_groups(peercred *c)
{
    /* peercred_get already filled the groups from the kernel. */
    if (c->ngroups < 0)
        c->ngroups = 0;
    return 0;
}
