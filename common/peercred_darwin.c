/* macOS: LOCAL_PEERCRED returns a struct xucred with the uid and the groups
 * (cr_groups[0] is the effective gid). It carries at most NGROUPS (16)
 * groups, so for a person in more the user database is asked, once a
 * decision needs it (peercred_load_groups). */
/* SOL_LOCAL, LOCAL_PEERCRED and struct xucred's u_int are Darwin extensions
 * that a strict _POSIX_C_SOURCE hides; CMake defines this too on Apple. */
#ifndef _DARWIN_C_SOURCE
#define _DARWIN_C_SOURCE
#endif

#include "peercred.h"

#include <errno.h>
#include <pwd.h>
#include <sys/param.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/ucred.h>
#include <sys/un.h>
#include <unistd.h>

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
    /* cr_groups has NGROUPS (16) entries: a list that fills it may be cut. */
    int kernel_max = (int)(sizeof(xu.cr_groups) / sizeof(xu.cr_groups[0]));
    peercred_set_kernel_groups(out, xu.cr_groups, xu.cr_ngroups, kernel_max);
    return 0;
}

int peercred_load_groups(peercred *c)
{
    if (!peercred_needs_lookup(c))
        return 0;
    if (c->ngroups < 0)
        c->ngroups = 0;
    char stack[4096];
    struct passwd pw, *res = NULL;
    int rc = getpwuid_r(c->uid, &pw, stack, sizeof(stack), &res);
    if (rc != 0)
        return -rc; /* the kernel's 16 groups stay */
    if (res == NULL)
        return -ENOENT;
    /* macOS declares getgrouplist with int groups. A user in more groups
     * than fit gets the first ones (-1 with n the full count). */
    int groups[PEERCRED_MAX_GROUPS];
    int n = PEERCRED_MAX_GROUPS;
    if (getgrouplist(pw.pw_name, (int)c->gid, groups, &n) < 0 || n > PEERCRED_MAX_GROUPS)
        n = PEERCRED_MAX_GROUPS;
    gid_t g[PEERCRED_MAX_GROUPS];
    for (int i = 0; i < n; i++)
        g[i] = (gid_t)groups[i];
    /* Added to the kernel's 16, which stay: the database completes them. */
    peercred_add_groups(c, g, n < 0 ? 0 : n);
    return 0;
}
