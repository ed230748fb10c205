/* The descriptor limit: launchd starts daemons with a soft RLIMIT_NOFILE of
 * 256 and systemd with 1024, which a proxy with a few hundred connections
 * (two descriptors each) runs out of. The daemon raises its soft limit to
 * the hard limit at start, on every platform, capped where the system
 * refuses more (platform_nofile_cap: OPEN_MAX on macOS). Limits are uint64_t
 * with FDLIMIT_INFINITY for RLIM_INFINITY, so the decision is a pure
 * function the tests call. */
#ifndef LOOPHOLE_FDLIMIT_H
#define LOOPHOLE_FDLIMIT_H

#include <stdint.h>

#define FDLIMIT_INFINITY UINT64_MAX

/* The soft limit to ask for: the hard limit, at most cap (0: no cap), and
 * never less than soft (a limit someone raised already is kept). Pure. */
uint64_t fdlimit_target(uint64_t soft, uint64_t hard, uint64_t cap);

/* Raises this process's soft RLIMIT_NOFILE to fdlimit_target(soft, hard,
 * platform_nofile_cap()). *before and *after (either may be NULL) get the
 * soft limit before and after; on failure *after equals *before. 0 or
 * -errno from getrlimit/setrlimit. */
int fdlimit_raise(uint64_t *before, uint64_t *after);

#endif
