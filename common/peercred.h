/* Peer credentials of a connected unix socket, behind one small interface
 * with one file per platform (SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS). */
#ifndef LOOPHOLE_PEERCRED_H
#define LOOPHOLE_PEERCRED_H

#include <stdbool.h>
#include <sys/types.h>

#define PEERCRED_MAX_GROUPS 64

typedef struct peercred {
    uid_t uid;
    gid_t gid;
    /* Supplementary groups; -1 while not looked up yet (Linux reads them
     * lazily from the group database, macOS gets them with the credentials). */
    int ngroups;
    gid_t groups[PEERCRED_MAX_GROUPS];
    /* The kernel's list was as long as it can be (macOS's xucred carries 16
     * groups), so the person may be in more: peercred_load_groups asks the
     * user database. */
    bool truncated;
} peercred;

/* Reads the credentials of the process at the other end of fd.
 * Returns 0 or -errno. */
int peercred_get(int fd, peercred *out);

/* Fills c->groups from the user database when peercred_needs_lookup(c)
 * (getgrouplist of the uid's user name; may consult NSS or Open Directory,
 * so call it only when a decision needs it). Returns 0 or -errno; on error
 * c keeps the kernel's groups (none on Linux: primary group only). */
int peercred_load_groups(peercred *c);

/* Portable helpers (peercred.c), exposed for tests. */

/* Takes the kernel's groups[0..n) into c (at most PEERCRED_MAX_GROUPS) and
 * sets c->truncated when n reaches kernel_max, the most the kernel passes
 * (0: no such limit). */
void peercred_set_kernel_groups(peercred *c, const gid_t *groups, int n, int kernel_max);
/* Adds the user database's groups[0..n) to c's (each once, at most
 * PEERCRED_MAX_GROUPS in all) and clears c->truncated. */
void peercred_add_groups(peercred *c, const gid_t *groups, int n);
/* Whether the groups must come from the user database: not looked up yet
 * (Linux), or the kernel's list was full (macOS). */
bool peercred_needs_lookup(const peercred *c);

#endif
