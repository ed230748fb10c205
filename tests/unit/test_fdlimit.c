/* The descriptor limit: the pure choice of what soft limit to ask for, and
 * fdlimit_raise on this process (a soft limit lowered first, so there is
 * something to raise without root). */
#include "fdlimit.h"
#include "platform.h"
#include "test.h"

#include <sys/resource.h>

TEST(target)
{
    /* launchd's 256 with macOS's usual unlimited hard limit: OPEN_MAX. */
    CHECK_INT(fdlimit_target(256, FDLIMIT_INFINITY, 10240), 10240);
    /* A plist's HardResourceLimits below the cap: the hard limit. */
    CHECK_INT(fdlimit_target(256, 4096, 10240), 4096);
    CHECK_INT(fdlimit_target(256, 65536, 10240), 10240);
    /* systemd: soft 1024, hard 524288, no cap on Linux. */
    CHECK_INT(fdlimit_target(1024, 524288, 0), 524288);
    /* Already there, or raised further by someone: never lowered. */
    CHECK_INT(fdlimit_target(524288, 524288, 0), 524288);
    CHECK_INT(fdlimit_target(20000, 10240, 10240), 20000);
    CHECK_INT(fdlimit_target(FDLIMIT_INFINITY, FDLIMIT_INFINITY, 0), FDLIMIT_INFINITY);
    /* No cap and an infinite hard limit: no number to ask for, keep soft. */
    CHECK_INT(fdlimit_target(1024, FDLIMIT_INFINITY, 0), 1024);
    CHECK_INT(fdlimit_target(0, 0, 0), 0);
}

TEST(platform_cap)
{
#ifdef __APPLE__
    CHECK(platform_nofile_cap() > 0);
#else
    CHECK_INT(platform_nofile_cap(), 0);
#endif
}

TEST(raise)
{
    struct rlimit rl;
    REQUIRE(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 64)
        TEST_SKIP("hard descriptor limit below 64: nothing to lower and raise");
    uint64_t hard = rl.rlim_max == RLIM_INFINITY ? FDLIMIT_INFINITY : (uint64_t)rl.rlim_max;
    rl.rlim_cur = 32;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &rl) == 0);

    uint64_t before = 0, after = 0;
    CHECK_INT(fdlimit_raise(&before, &after), 0);
    CHECK_INT(before, 32);
    uint64_t want = fdlimit_target(32, hard, platform_nofile_cap());
    CHECK_INT(after, want);
    CHECK(after > 32);
    REQUIRE(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    CHECK_INT((uint64_t)rl.rlim_cur, want);

    /* A second call has nothing left to do. */
    CHECK_INT(fdlimit_raise(&before, &after), 0);
    CHECK_INT(before, want);
    CHECK_INT(after, want);
    CHECK_INT(fdlimit_raise(NULL, NULL), 0);
}
