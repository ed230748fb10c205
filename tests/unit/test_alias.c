/* Alias modes, and on Linux the rtnetlink backend for real: as root, a child
 * process moves into its own network namespace (so the host's lo is never
 * touched), brings lo up there and adds and removes an address. Without root
 * (or off Linux) that test skips; the pure ones run everywhere. */
#ifdef __linux__
#define _GNU_SOURCE /* unshare(2) */
#endif

#include "alias.h"
#include "test.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#endif

#define ADDR(a, b, c, d)                                                                           \
    (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

TEST(modes)
{
    CHECK_INT(alias_parse_mode("auto"), ALIAS_AUTO);
    CHECK_INT(alias_parse_mode("off"), ALIAS_OFF);
    CHECK_INT(alias_parse_mode("netlink"), ALIAS_NETLINK);
    CHECK_INT(alias_parse_mode(""), -1);
    CHECK_INT(alias_parse_mode("Auto"), -1);
    CHECK_INT(alias_parse_mode("netlink "), -1);
    CHECK_INT(alias_parse_mode(NULL), -1);
    CHECK_STR(alias_mode_name(ALIAS_AUTO), "auto");
    CHECK_STR(alias_mode_name(ALIAS_OFF), "off");
    CHECK_STR(alias_mode_name(ALIAS_NETLINK), "netlink");
    CHECK_STR(alias_mode_name((alias_mode)42), "unknown");
    for (int m = ALIAS_AUTO; m <= ALIAS_NETLINK; m++)
        CHECK_INT(alias_parse_mode(alias_mode_name((alias_mode)m)), m);
}

TEST(active)
{
    CHECK(!alias_active(ALIAS_OFF));
#ifdef __APPLE__
    /* Only 127.0.0.1 is routed on lo0: every other address needs an alias. */
    CHECK(alias_active(ALIAS_AUTO));
    CHECK(!alias_active(ALIAS_NETLINK));
    /* getifaddrs needs no root: lo0 always carries 127.0.0.1. */
    CHECK_INT(alias_present(ADDR(127, 0, 0, 1)), 1);
#else
    /* All of 127/8 is local on Linux already; netlink is an opt-in. */
    CHECK(!alias_active(ALIAS_AUTO));
    CHECK(alias_active(ALIAS_NETLINK));
#endif
}

/* A fake loopback interface for alias_set: which addresses are on it, and
 * what the set asked for. The platform calls take no user data. */
static struct {
    uint32_t on[16];
    size_t n;
    int adds, dels;
    uint32_t deleted[16];
    size_t ndeleted;
    bool del_fails;
} fake;

static bool fake_has(uint32_t a)
{
    for (size_t i = 0; i < fake.n; i++)
        if (fake.on[i] == a)
            return true;
    return false;
}

static int fake_add(uint32_t a, int *existed)
{
    fake.adds++;
    *existed = fake_has(a);
    if (!*existed && fake.n < 16)
        fake.on[fake.n++] = a;
    return 0;
}

static int fake_del(uint32_t a)
{
    fake.dels++;
    if (fake.del_fails)
        return -EBUSY;
    if (fake.ndeleted < 16)
        fake.deleted[fake.ndeleted++] = a;
    for (size_t i = 0; i < fake.n; i++)
        if (fake.on[i] == a)
            fake.on[i] = fake.on[--fake.n];
    return 0;
}

static int fake_present(uint32_t a)
{
    for (size_t i = 0; i < fake.n; i++)
        if (fake.on[i] == a)
            return 1;
    return 0;
}

static void fake_set(alias_set *s)
{
    memset(&fake, 0, sizeof(fake));
    alias_set_init(s, ALIAS_OFF);
    s->active = true; /* as on macOS, where every address needs one */
    s->add = fake_add;
    s->del = fake_del;
    s->present = fake_present;
}

/* After a reboot the recorded aliases are gone: they are not taken for
 * present, so the first sync adds the wanted ones again (a lease's). */
TEST(set_leftovers_after_reboot)
{
    alias_set s;
    fake_set(&s);
    const uint32_t lease = ADDR(127, 0, 0, 9), old = ADDR(127, 0, 0, 10);
    const uint32_t left[] = {lease, old};
    alias_set_remove_leftovers(&s, left, 2);
    CHECK_INT(s.n, 0);
    CHECK_INT(alias_set_sync(&s, &lease, 1), 1);
    CHECK(fake_has(lease));
    CHECK(!fake_has(old));
    CHECK_INT(fake.dels, 0);
    alias_set_free(&s);
}

/* An alias the person made (127.0.0.5 here) is used but never recorded, so
 * neither a stop nor the next start's leftover cleanup removes it. */
TEST(set_keeps_foreign_aliases)
{
    alias_set s;
    fake_set(&s);
    const uint32_t mine = ADDR(127, 0, 0, 4), theirs = ADDR(127, 0, 0, 5);
    fake.on[fake.n++] = theirs;

    const uint32_t want[] = {mine, theirs};
    alias_set_sync(&s, want, 2);
    CHECK(fake_has(mine));
    CHECK(fake_has(theirs));
    /* Only what we added is ours (the state file saves s.addrs). */
    CHECK_INT(s.n, 1);
    CHECK_INT(s.addrs[0], mine);

    /* Again: ours is known; theirs is asked about again, still not ours. */
    alias_set_sync(&s, want, 2);
    CHECK_INT(s.n, 1);
    CHECK_INT(fake.adds, 3);
    CHECK_INT(fake.dels, 0);

    /* Stop: only ours goes. */
    alias_set_sync(&s, NULL, 0);
    CHECK_INT(s.n, 0);
    CHECK_INT(fake.dels, 1);
    CHECK_INT(fake.deleted[0], mine);
    CHECK(!fake_has(mine));
    CHECK(fake_has(theirs));
    CHECK_INT(s.nforeign, 0);
    alias_set_free(&s);
}

/* Someone else's alias that disappears while wanted is added by us, and from
 * then on ours to remove. */
TEST(set_adopts_vanished_alias)
{
    alias_set s;
    fake_set(&s);
    const uint32_t a = ADDR(127, 0, 0, 9);
    fake.on[fake.n++] = a;
    alias_set_sync(&s, &a, 1);
    CHECK_INT(s.n, 0);
    CHECK_INT(s.nforeign, 1);

    fake.n = 0; /* the person ran ifconfig lo0 -alias */
    alias_set_sync(&s, &a, 1);
    CHECK(fake_has(a));
    CHECK_INT(s.n, 1);
    CHECK_INT(s.nforeign, 0);
    alias_set_sync(&s, NULL, 0);
    CHECK(!fake_has(a));
    CHECK_INT(fake.dels, 1);
    alias_set_free(&s);
}

/* A killed daemon's aliases (from the state file) are ours: with the set
 * active they join it, so the first sync keeps the wanted one instead of
 * removing and adding it, and removes the other; and they stay ours, so one
 * the person's interface still has is not taken for the person's. */
TEST(set_leftovers_active)
{
    alias_set s;
    fake_set(&s);
    const uint32_t keep = ADDR(127, 0, 0, 2), gone = ADDR(127, 0, 0, 3);
    fake.on[fake.n++] = keep;
    fake.on[fake.n++] = gone;
    const uint32_t left[] = {keep, gone};
    alias_set_remove_leftovers(&s, left, 2);
    CHECK_INT(fake.dels, 0);
    CHECK_INT(s.n, 2);
    CHECK_INT(alias_set_sync(&s, &keep, 1), 0);
    CHECK_INT(fake.adds, 0);
    CHECK_INT(fake.dels, 1);
    CHECK_INT(fake.deleted[0], gone);
    CHECK_INT(s.n, 1);
    CHECK_INT(s.nforeign, 0);
    /* At stop it goes too: it was ours. */
    alias_set_sync(&s, NULL, 0);
    CHECK(!fake_has(keep));
    alias_set_free(&s);
}

/* Inactive (the mode changed since the crash): leftovers are removed at
 * once; one that cannot be stays recorded to be tried at the next start. */
TEST(set_leftovers_inactive)
{
    alias_set s;
    fake_set(&s);
    s.active = false;
    const uint32_t a = ADDR(127, 0, 0, 2), b = ADDR(127, 0, 0, 3);
    fake.on[fake.n++] = a;
    alias_set_remove_leftovers(&s, &a, 1);
    CHECK(!fake_has(a));
    CHECK_INT(s.n, 0);
    fake.on[fake.n++] = b;
    fake.del_fails = true;
    alias_set_remove_leftovers(&s, &b, 1);
    CHECK(fake_has(b));
    CHECK_INT(s.n, 1);
    CHECK_INT(s.addrs[0], b);
    alias_set_free(&s);
}

/* Inactive (Linux auto, off): nothing is asked or recorded. */
TEST(set_inactive)
{
    alias_set s;
    fake_set(&s);
    s.active = false;
    const uint32_t a = ADDR(127, 0, 0, 9);
    alias_set_sync(&s, &a, 1);
    alias_set_sync(&s, NULL, 0);
    CHECK_INT(fake.adds, 0);
    CHECK_INT(fake.dels, 0);
    CHECK_INT(s.n, 0);
    alias_set_free(&s);
}

#ifdef __linux__
/* An independent view of lo's addresses (glibc's getifaddrs), so the test
 * does not only trust alias_present to check alias_add. */
static int lo_has(uint32_t addr)
{
    struct ifaddrs *list;
    if (getifaddrs(&list) < 0)
        return -errno;
    int found = 0;
    for (struct ifaddrs *i = list; i != NULL; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
            strcmp(i->ifa_name, "lo") != 0)
            continue;
        struct sockaddr_in sin;
        memcpy(&sin, i->ifa_addr, sizeof(sin));
        if (sin.sin_addr.s_addr == htonl(addr))
            found = 1;
    }
    freeifaddrs(list);
    return found;
}

static int lo_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "lo");
    int rc = 0;
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
        rc = -errno;
    } else {
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
            rc = -errno;
    }
    close(s);
    return rc;
}

/* Runs in the child, inside its own network namespace. */
static void netlink_in_namespace(void)
{
    REQUIRE(lo_up() == 0);
    const uint32_t a = ADDR(127, 0, 0, 7);
    int existed = -1;

    /* Up, lo has 127.0.0.1/8 but not 127.0.0.7 as an address of its own. */
    CHECK_INT(alias_present(ADDR(127, 0, 0, 1)), 1);
    CHECK_INT(alias_present(a), 0);

    CHECK_INT(alias_add(a, &existed), 0);
    CHECK_INT(existed, 0);
    CHECK_INT(alias_present(a), 1);
    CHECK_INT(lo_has(a), 1);

    CHECK_INT(alias_add(a, &existed), 0);
    CHECK_INT(existed, 1);
    CHECK_INT(alias_add(a, NULL), 0);

    /* The /32 is distinct from lo's 127.0.0.1/8 and leaves it alone. */
    CHECK_INT(alias_del(ADDR(127, 0, 0, 1)), 0);
    CHECK_INT(alias_present(ADDR(127, 0, 0, 1)), 1);

    CHECK_INT(alias_del(a), 0);
    CHECK_INT(alias_present(a), 0);
    CHECK_INT(lo_has(a), 0);
    CHECK_INT(alias_del(a), 0);

    /* Several at once, removed in another order. */
    for (uint32_t i = 2; i < 6; i++)
        CHECK_INT(alias_add(ADDR(127, 0, 0, 100 + i), NULL), 0);
    for (uint32_t i = 2; i < 6; i++)
        CHECK_INT(alias_present(ADDR(127, 0, 0, 100 + i)), 1);
    for (uint32_t i = 6; i-- > 2;)
        CHECK_INT(alias_del(ADDR(127, 0, 0, 100 + i)), 0);
    for (uint32_t i = 2; i < 6; i++)
        CHECK_INT(lo_has(ADDR(127, 0, 0, 100 + i)), 0);
}

TEST(netlink)
{
    if (geteuid() != 0)
        TEST_SKIP("needs root (a private network namespace)");
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (unshare(CLONE_NEWNET) < 0) {
            /* A container without CAP_SYS_ADMIN: never fall back to the
             * host's namespace. */
            fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
            _exit(77);
        }
        netlink_in_namespace();
        fprintf(stderr, "netlink part: %d checks, %d failed, in a private network namespace\n",
                test_checks, test_failures);
        fflush(NULL);
        _exit(test_failures == 0 ? 0 : 1);
    }
    int status;
    pid_t w;
    do {
        w = waitpid(pid, &status, 0);
    } while (w < 0 && errno == EINTR);
    REQUIRE(w == pid);
    REQUIRE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        TEST_SKIP("no private network namespace (unshare(CLONE_NEWNET) needs CAP_SYS_ADMIN)");
    CHECK_INT(WEXITSTATUS(status), 0);
}
#else
TEST(netlink)
{
    TEST_SKIP("the rtnetlink alias backend is Linux only");
}
#endif
