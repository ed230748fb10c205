/* The portable part of peer credentials: what to do with a group list the
 * kernel handed over, and when the user database must be asked instead.
 * The calls that read credentials live in peercred_linux.c and
 * peercred_darwin.c. */
#include "peercred.h"

void peercred_set_kernel_groups(peercred *c, const gid_t *groups, int n, int kernel_max)
{
    if (n < 0)
        n = 0;
    /* A list as long as the kernel can carry may have been cut there. */
    c->truncated = kernel_max > 0 && n >= kernel_max;
    if (n > PEERCRED_MAX_GROUPS)
        n = PEERCRED_MAX_GROUPS;
    for (int i = 0; i < n; i++)
        c->groups[i] = groups[i];
    c->ngroups = n;
}

void peercred_add_groups(peercred *c, const gid_t *groups, int n)
{
    if (c->ngroups < 0)
        c->ngroups = 0;
    for (int i = 0; i < n && c->ngroups < PEERCRED_MAX_GROUPS; i++) {
        bool have = false;
        for (int j = 0; j < c->ngroups && !have; j++)
            have = c->groups[j] == groups[i];
        if (!have)
            c->groups[c->ngroups++] = groups[i];
    }
    c->truncated = false;
}

bool peercred_needs_lookup(const peercred *c)
{
    return c->ngroups < 0 || c->truncated;
}
