/* Raising RLIMIT_NOFILE at start; see fdlimit.h. */
#include "fdlimit.h"

#include <errno.h>
#include <sys/resource.h>

#include "platform.h"

uint64_t fdlimit_target(uint64_t soft, uint64_t hard, uint64_t cap)
{
    uint64_t want = hard;
    if (cap != 0 && want > cap)
        want = cap;
    /* No cap and no hard limit: there is no number to ask for (Linux never
     * has an infinite NOFILE hard limit; its ceiling is fs.nr_open). */
    if (want == FDLIMIT_INFINITY)
        return soft;
    return want > soft ? want : soft;
}

static uint64_t from_rlim(rlim_t v)
{
    return v == RLIM_INFINITY ? FDLIMIT_INFINITY : (uint64_t)v;
}

int fdlimit_raise(uint64_t *before, uint64_t *after)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    uint64_t soft = from_rlim(rl.rlim_cur);
    uint64_t want = fdlimit_target(soft, from_rlim(rl.rlim_max), platform_nofile_cap());
    if (before)
        *before = soft;
    if (after)
        *after = soft;
    if (want == soft)
        return 0;
    /* want is below the hard limit, so it is finite and fits rlim_t. A
     * kernel whose per-process maximum is below it (macOS:
     * kern.maxfilesperproc under OPEN_MAX) refuses with EINVAL: halve and try
     * again, down to what we have. */
    int rc = -EINVAL;
    while (want > soft) {
        rl.rlim_cur = (rlim_t)want;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
            rc = 0;
            break;
        }
        rc = -errno;
        if (rc != -EINVAL)
            return rc;
        want = soft + (want - soft) / 2;
    }
    if (rc < 0)
        return rc;
    if (after)
        *after = want;
    return 0;
}
