/* Loopback aliases, behind one interface with one file per platform:
 * alias_darwin.c (SIOCAIFADDR/SIOCDIFADDR on lo0) and alias_linux.c (rtnetlink
 * RTM_NEWADDR/RTM_DELADDR on lo). Addresses in host byte order. */
#ifndef LOOPHOLE_ALIAS_H
#define LOOPHOLE_ALIAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum alias_mode { ALIAS_AUTO = 0, ALIAS_OFF, ALIAS_NETLINK } alias_mode;

/* "auto", "off", "netlink" -> mode; -1 otherwise. */
int alias_parse_mode(const char *s);
const char *alias_mode_name(alias_mode m);

/* Whether this mode adds addresses on this platform: auto is true on macOS
 * (only 127.0.0.1 is routed there) and false on Linux (all of 127/8 is local);
 * netlink is true on Linux and refused on macOS; off is false. */
bool alias_active(alias_mode m);

/* Adds addr/32 to the loopback interface. 0 when added or already there
 * (*existed set to 1 then, when existed is non-NULL), else -errno. */
int alias_add(uint32_t addr, int *existed);
/* Removes it. 0 when removed or already gone, else -errno. */
int alias_del(uint32_t addr);
/* 1 when addr is configured on the loopback interface, 0 if not, -errno. */
int alias_present(uint32_t addr);

/* ---- The set of aliases the daemon added (portable, alias.c) ---- */

typedef struct alias_set {
    bool active;     /* alias_active(mode) at init; false: every call is a no-op */
    uint32_t *addrs; /* addresses we added to the loopback interface */
    size_t n;
    /* Wanted addresses that were on the interface before we asked (someone
     * else's alias): used, never recorded, never removed. Only so that the
     * log says it once. */
    uint32_t *foreign;
    size_t nforeign;
    /* The platform calls (alias_add, alias_del); tests replace them. */
    int (*add)(uint32_t addr, int *existed);
    int (*del)(uint32_t addr);
    int (*present)(uint32_t addr); /* alias_present; NULL: not asked */
} alias_set;

void alias_set_init(alias_set *s, alias_mode m);
/* Makes the set exactly want[0..n): removes what is no longer wanted, adds
 * what is missing. Only addresses the add call really added are recorded
 * (and so removed later, or after a crash as leftovers): one that existed
 * already belongs to whoever made it and is left alone, and is asked about
 * again at the next sync (if it disappears, we add it and it becomes ours).
 * Failures are logged; an alias that cannot be removed stays in the set (and
 * so in the state file) to be tried again. */
/* Returns how many addresses it added (the caller saves them in the state
 * file before binding anything on them). */
size_t alias_set_sync(alias_set *s, const uint32_t *want, size_t n);
/* Addresses a crashed run left behind (from the state file) are ours: with
 * the set active they join it (unless they are gone from the interface, a
 * reboot: then the next sync adds the wanted ones again), so the next sync keeps the wanted ones
 * and removes the rest; inactive, they are removed now. One that cannot be removed stays in the set
 * (and the state file) to be tried again. */
void alias_set_remove_leftovers(alias_set *s, const uint32_t *v, size_t n);
/* Whether addr is on the loopback interface as far as the set knows:
 * added by us, or someone else's alias that we use. */
bool alias_set_has(const alias_set *s, uint32_t addr);
void alias_set_free(alias_set *s);

#endif
