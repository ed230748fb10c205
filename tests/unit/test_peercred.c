/* Peer credentials: the portable handling of the kernel's group list (macOS's
 * xucred carries at most 16 groups; a full list sends the admin check to the
 * user database), and the real calls on a socketpair and for this process's
 * user. */
#include "peercred.h"
#include "test.h"

#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

static bool has_group(const peercred *c, gid_t g)
{
    for (int i = 0; i < c->ngroups; i++)
        if (c->groups[i] == g)
            return true;
    return false;
}

TEST(kernel_groups)
{
    gid_t g[80];
    for (int i = 0; i < 80; i++)
        g[i] = (gid_t)(50000 + i);
    peercred c = {.ngroups = -1};

    /* Fewer than the kernel can carry: complete, no lookup. */
    peercred_set_kernel_groups(&c, g, 15, 16);
    CHECK_INT(c.ngroups, 15);
    CHECK(!c.truncated);
    CHECK(!peercred_needs_lookup(&c));
    CHECK_INT(c.groups[14], 50014);

    /* Exactly 16 of macOS's 16: maybe cut, ask the user database. */
    peercred_set_kernel_groups(&c, g, 16, 16);
    CHECK_INT(c.ngroups, 16);
    CHECK(c.truncated);
    CHECK(peercred_needs_lookup(&c));

    peercred_set_kernel_groups(&c, g, 0, 16);
    CHECK_INT(c.ngroups, 0);
    CHECK(!peercred_needs_lookup(&c));
    peercred_set_kernel_groups(&c, g, -1, 16);
    CHECK_INT(c.ngroups, 0);
    CHECK(!c.truncated);

    /* No kernel limit: never truncated; our own cap still holds. */
    peercred_set_kernel_groups(&c, g, 80, 0);
    CHECK_INT(c.ngroups, PEERCRED_MAX_GROUPS);
    CHECK(!c.truncated);

    /* Linux's lazy state. */
    peercred lazy = {.ngroups = -1};
    CHECK(peercred_needs_lookup(&lazy));
}

TEST(add_groups)
{
    gid_t k[16], db[70];
    for (int i = 0; i < 16; i++)
        k[i] = (gid_t)(100 + i);
    peercred c = {.ngroups = -1};
    peercred_set_kernel_groups(&c, k, 16, 16);
    /* The database repeats the kernel's 16 and adds the 17th, the admin
     * group the kernel could not carry. */
    for (int i = 0; i < 17; i++)
        db[i] = (gid_t)(100 + i);
    peercred_add_groups(&c, db, 17);
    CHECK_INT(c.ngroups, 17);
    CHECK(has_group(&c, 116));
    CHECK(!c.truncated);
    CHECK(!peercred_needs_lookup(&c));

    /* Capped at PEERCRED_MAX_GROUPS. */
    for (int i = 0; i < 70; i++)
        db[i] = (gid_t)(1000 + i);
    peercred_add_groups(&c, db, 70);
    CHECK_INT(c.ngroups, PEERCRED_MAX_GROUPS);

    peercred lazy = {.ngroups = -1};
    peercred_add_groups(&lazy, db, 2);
    CHECK_INT(lazy.ngroups, 2);
}

/* A full kernel list for this process's user sends peercred_load_groups to
 * the user database: the kernel's groups stay, the database's are added. */
TEST(load_groups_when_full)
{
    struct passwd *pw = getpwuid(getuid());
    if (pw == NULL)
        TEST_SKIP("this uid has no user name: no user database entry to read");
    gid_t k[16];
    for (int i = 0; i < 16; i++)
        k[i] = (gid_t)(60000 + i);
    peercred c = {.uid = getuid(), .gid = getgid(), .ngroups = -1};
    peercred_set_kernel_groups(&c, k, 16, 16);
    REQUIRE(c.truncated);
    CHECK_INT(peercred_load_groups(&c), 0);
    CHECK(!c.truncated);
    CHECK(has_group(&c, 60000));
    CHECK(has_group(&c, 60015));
    /* getgrouplist always includes the group it is given. */
    CHECK(has_group(&c, getgid()));
    int n = c.ngroups;
    /* Complete now: a second call asks nothing. */
    CHECK_INT(peercred_load_groups(&c), 0);
    CHECK_INT(c.ngroups, n);
}

TEST(get_on_socketpair)
{
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    peercred c;
    CHECK_INT(peercred_get(sv[0], &c), 0);
    CHECK_INT(c.uid, getuid());
    CHECK_INT(peercred_load_groups(&c), 0);
    CHECK(c.ngroups >= 0);
    CHECK(!peercred_needs_lookup(&c) || c.truncated);
    close(sv[0]);
    close(sv[1]);
}
