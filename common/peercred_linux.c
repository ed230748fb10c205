/* Linux: SO_PEERCRED gives uid, gid and pid of the connecting process, and
 * SO_PEERGROUPS (Linux 4.13) its real supplementary groups at connect time;
 * without it the groups come from the user database. */
#define _GNU_SOURCE 1
#include "peercred.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int peercred_get(int fd, peercred *out)
{
    struct ucred uc;
    socklen_t len = sizeof(uc);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
        return -errno;
    if (len != sizeof(uc))
        return -EINVAL;
    out->uid = uc.uid;
    out->gid = uc.gid;
    out->ngroups = -1;
    out->truncated = false;
#ifdef SO_PEERGROUPS
    /* The kernel's list is the truth (a `newgrp` or `setpriv --groups` the
     * user database does not know); ERANGE (more groups than fit) or an old
     * kernel leave the lookup to peercred_load_groups. */
    gid_t groups[PEERCRED_MAX_GROUPS];
    socklen_t glen = sizeof(groups);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) == 0)
        peercred_set_kernel_groups(out, groups, (int)(glen / sizeof(gid_t)), 0);
#endif
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
        return -rc;
    if (res == NULL)
        return -ENOENT; /* a uid without a user name has no supplementary groups */
    gid_t groups[PEERCRED_MAX_GROUPS];
    int n = PEERCRED_MAX_GROUPS;
    /* A user in more groups than fit gets the first ones: -1 with n updated
     * means truncated, which we accept rather than allocate per request. */
    if (getgrouplist(pw.pw_name, c->gid, groups, &n) < 0 || n > PEERCRED_MAX_GROUPS)
        n = PEERCRED_MAX_GROUPS;
    peercred_add_groups(c, groups, n < 0 ? 0 : n);
    return 0;
}
