/* Peer credentials of a connected unix socket, behind one small interface
 * with one file per platform (SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS). */
#ifndef LOOPHOLE_PEERCRED_H
#define LOOPHOLE_PEERCRED_H

#include <sys/types.h>

#define PEERCRED_MAX_GROUPS 64

typedef struct peercred {
    uid_t uid;
    gid_t gid;
    /* Supplementary groups; -1 while not looked up yet (Linux reads them
     * lazily from the group database, macOS gets them with the credentials). */
    int ngroups;
    gid_t groups[PEERCRED_MAX_GROUPS];
} peercred;

/* Reads the credentials of the process at the other end of fd.
 * Returns 0 or -errno. */
int peercred_get(int fd, peercred *out);

/* Fills c->groups when c->ngroups < 0 (getgrouplist of the uid's user name;
 * may consult NSS, so call it only when a decision needs it). Returns 0 or
 * -errno; on error c->ngroups is 0, i.e. primary group only. */
int peercred_load_groups(peercred *c);

#endif
