/* Unit tests for the address allocator. */
#include "alloc.h"
#include "util.h"

#include "test.h"

#include <errno.h>

#define IP(a, b, c, d) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (d))

TEST(parse_range_good)
{
    uint32_t f = 0, l = 0;
    CHECK_INT(alloc_parse_range("127.0.0.2-127.0.0.254", &f, &l), 0);
    CHECK_INT(f, IP(127, 0, 0, 2));
    CHECK_INT(l, IP(127, 0, 0, 254));
    CHECK_INT(alloc_parse_range("127.0.0.5-127.0.0.5", &f, &l), 0);
    CHECK_INT(f, l);
    CHECK_INT(alloc_parse_range("127.0.0.0-127.255.255.255", &f, &l), 0);
    CHECK_INT(f, IP(127, 0, 0, 0));
    CHECK_INT(l, IP(127, 255, 255, 255));
    CHECK_INT(alloc_parse_range("127.1.0.10-127.2.0.1", &f, &l), 0);
    CHECK_INT(f, IP(127, 1, 0, 10));
}

TEST(parse_range_bad)
{
    static const char *bad[] = {
        "",
        "-",
        "127.0.0.2",
        "127.0.0.2-",
        "-127.0.0.2",
        "127.0.0.254-127.0.0.2", /* first > last */
        "10.0.0.1-10.0.0.9",     /* not loopback */
        "127.0.0.2-128.0.0.1",   /* end outside 127/8 */
        "126.255.255.255-127.0.0.3",
        " 127.0.0.2-127.0.0.254",
        "127.0.0.2 -127.0.0.254",
        "127.0.0.2- 127.0.0.254",
        "127.0.0.2-127.0.0.254 ",
        "127.0.0.2-127.0.0.254\n",
        "127.0.0.2-127.0.0.254x",
        "127.0.0.2-127.0.0.254-127.0.0.255",
        "127.0.0.2--127.0.0.254",
        "127.0.0.256-127.0.0.257",
        "127.1-127.2",
        "127.0.0.-127.0.0.9",
        "127.0.0.0x2-127.0.0.9",
        "127.0.0.2/24",
        "abc-def",
        "127.000000000.0.2-127.0.0.9",
        "127.0.0.02-127.0.0.9", /* leading zero: octal to some parsers */
        "127.0.0.2\t-127.0.0.9",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        uint32_t f = 7, l = 7;
        int rc = alloc_parse_range(bad[i], &f, &l);
        if (rc != -EINVAL)
            fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
        CHECK_INT(rc, -EINVAL);
        CHECK_INT(f, 7); /* outputs untouched on failure */
    }
    uint32_t f, l;
    CHECK_INT(alloc_parse_range(NULL, &f, &l), -EINVAL);
}

TEST(lowest_free_and_localhost)
{
    alloc_pool p;
    /* A pool starting at 127.0.0.0 still never hands out 127.0.0.1. */
    alloc_init(&p, IP(127, 0, 0, 0), IP(127, 0, 0, 254));
    uint32_t a;
    CHECK_INT(alloc_acquire(&p, "a", 1, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 0));
    CHECK_INT(alloc_acquire(&p, "b", 1, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 2));
    CHECK_INT(alloc_acquire(&p, "c", 1, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 3));
    /* Re-acquiring an active key is idempotent. */
    CHECK_INT(alloc_acquire(&p, "b", 2, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 2));
    CHECK_INT(alloc_used(&p), 3);
    alloc_free(&p);

    alloc_init(&p, IP(127, 0, 0, 2), IP(127, 0, 0, 254));
    alloc_reserve(&p, IP(127, 0, 0, 3));
    CHECK_INT(alloc_acquire(&p, "x", 1, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 2));
    CHECK_INT(alloc_acquire(&p, "y", 1, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 4)); /* .3 is reserved */
    /* A gap left by a reclaimed or never-used address is filled first. */
    alloc_block(&p, IP(127, 0, 0, 5));
    CHECK_INT(alloc_acquire(&p, "z", 1, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 6)); /* .5 is blocked */
    alloc_unblock(&p, IP(127, 0, 0, 5));
    CHECK_INT(alloc_acquire(&p, "w", 1, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 5));
    alloc_free(&p);
}

TEST(linux_reserved)
{
    alloc_pool p;
    alloc_init(&p, IP(127, 0, 0, 52), IP(127, 0, 0, 55));
    alloc_reserve(&p, IP(127, 0, 0, 53));
    alloc_reserve(&p, IP(127, 0, 0, 54));
    alloc_reserve(&p, IP(127, 0, 0, 54)); /* twice: counted once */
    CHECK_INT(alloc_size(&p), 2);
    uint32_t a;
    CHECK_INT(alloc_acquire(&p, "a", 1, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 52));
    CHECK_INT(alloc_acquire(&p, "b", 1, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 55));
    CHECK_INT(alloc_acquire(&p, "c", 1, &a), -ENOSPC);
    alloc_free(&p);
}

TEST(stability)
{
    alloc_pool p;
    alloc_init(&p, IP(127, 0, 0, 2), IP(127, 0, 0, 254));
    uint32_t a, b, c;
    CHECK_INT(alloc_acquire(&p, "name:pg", 100, &a), 0);
    CHECK_INT(alloc_acquire(&p, "name:redis", 100, &b), 0);
    alloc_release(&p, "name:pg", 200);
    const alloc_lease *l = alloc_find(&p, "name:pg");
    REQUIRE(l != NULL);
    CHECK(!l->active);
    CHECK_INT(l->stopped_at, 200);
    CHECK_INT(alloc_used(&p), 1);
    /* A new key does not take the released address while the pool has room. */
    CHECK_INT(alloc_acquire(&p, "name:kafka", 300, &c), 0);
    CHECK(c != a);
    CHECK_INT(c, IP(127, 0, 0, 4));
    /* The released key comes back to its old address. */
    uint32_t again;
    CHECK_INT(alloc_acquire(&p, "name:pg", 400, &again), 0);
    CHECK_INT(again, a);
    l = alloc_find(&p, "name:pg");
    REQUIRE(l != NULL);
    CHECK(l->active);
    CHECK_INT(l->stopped_at, 0);
    /* Releasing unknown keys is harmless. */
    alloc_release(&p, "nope", 500);
    CHECK(alloc_find(&p, "nope") == NULL);
    CHECK_INT(alloc_used(&p), 3);
    alloc_free(&p);
}

TEST(reclaim_and_exhaustion)
{
    alloc_pool p;
    alloc_init(&p, IP(127, 0, 0, 2), IP(127, 0, 0, 4));
    CHECK_INT(alloc_size(&p), 3);
    uint32_t a;
    CHECK_INT(alloc_acquire(&p, "a", 1, &a), 0);
    CHECK_INT(alloc_acquire(&p, "b", 1, &a), 0);
    CHECK_INT(alloc_acquire(&p, "c", 1, &a), 0);
    CHECK_INT(alloc_used(&p), 3);
    a = 0;
    CHECK_INT(alloc_acquire(&p, "d", 2, &a), -ENOSPC);
    CHECK(alloc_find(&p, "d") == NULL);

    /* Stop b, then c later, then a at the same time as c: b stopped longest
     * ago, so b's address goes to the new key and b is forgotten. */
    alloc_release(&p, "b", 10);
    alloc_release(&p, "c", 20);
    alloc_release(&p, "a", 20);
    CHECK_INT(alloc_used(&p), 0);
    CHECK_INT(alloc_acquire(&p, "d", 30, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 3));
    CHECK(alloc_find(&p, "b") == NULL);
    /* Tie between a (.2) and c (.4) at 20: the lowest address goes. */
    CHECK_INT(alloc_acquire(&p, "e", 31, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 2));
    CHECK(alloc_find(&p, "a") == NULL);
    REQUIRE(alloc_find(&p, "c") != NULL);
    /* The survivor still gets its own address back. */
    CHECK_INT(alloc_acquire(&p, "c", 32, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 4));
    CHECK_INT(alloc_used(&p), 3);
    CHECK_INT(alloc_acquire(&p, "f", 33, &a), -ENOSPC);
    /* After a release the pool works again. */
    alloc_release(&p, "e", 40);
    CHECK_INT(alloc_acquire(&p, "f", 41, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 2));
    alloc_free(&p);
}

TEST(restore)
{
    alloc_pool p;
    alloc_init(&p, IP(127, 0, 0, 2), IP(127, 0, 0, 10));
    alloc_reserve(&p, IP(127, 0, 0, 9));
    CHECK_INT(alloc_restore(&p, "a", IP(127, 0, 0, 5), 1000), 0);
    CHECK_INT(alloc_restore(&p, "b", IP(127, 0, 0, 2), 0), 0);
    CHECK_INT(alloc_restore(&p, "a", IP(127, 0, 0, 6), 1), -EINVAL);  /* duplicate key */
    CHECK_INT(alloc_restore(&p, "c", IP(127, 0, 0, 5), 1), -EINVAL);  /* duplicate address */
    CHECK_INT(alloc_restore(&p, "d", IP(127, 0, 0, 11), 1), -EINVAL); /* outside the pool */
    CHECK_INT(alloc_restore(&p, "e", IP(127, 0, 0, 1), 1), -EINVAL);  /* localhost */
    CHECK_INT(alloc_restore(&p, "f", IP(127, 0, 0, 9), 1), -EINVAL);  /* reserved */
    CHECK_INT(alloc_restore(&p, "", IP(127, 0, 0, 7), 1), -EINVAL);   /* empty key */
    CHECK_INT(alloc_restore(&p, NULL, IP(127, 0, 0, 7), 1), -EINVAL); /* no key */
    CHECK_INT(alloc_restore(&p, "g", IP(127, 0, 0, 7), -5), -EINVAL); /* bad time */
    CHECK_INT(p.nleases, 2);
    CHECK_INT(alloc_used(&p), 0); /* restored leases are inactive */
    const alloc_lease *l = alloc_find(&p, "a");
    REQUIRE(l != NULL);
    CHECK(!l->active);
    CHECK_INT(l->stopped_at, 1000);
    CHECK(alloc_find(&p, "c") == NULL);

    /* New keys go around restored addresses; restored keys get theirs. */
    uint32_t a;
    CHECK_INT(alloc_acquire(&p, "new", 2000, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 3));
    CHECK_INT(alloc_acquire(&p, "a", 2000, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 5));
    alloc_free(&p);
}

TEST(move)
{
    alloc_pool p;
    alloc_init(&p, IP(127, 0, 0, 2), IP(127, 0, 0, 5));
    uint32_t a, b;
    CHECK_INT(alloc_acquire(&p, "a", 1, &a), 0);
    CHECK_INT(alloc_acquire(&p, "b", 1, &b), 0);
    CHECK_INT(a, IP(127, 0, 0, 2));
    /* Something else holds a port on .2: a moves to the lowest free one. */
    CHECK_INT(alloc_move(&p, "a", 2, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 4));
    const alloc_lease *l = alloc_find(&p, "a");
    REQUIRE(l != NULL);
    CHECK_INT(l->addr, IP(127, 0, 0, 4));
    CHECK(l->active);
    /* .2 is blocked now, so a new key skips it. */
    uint32_t c;
    CHECK_INT(alloc_acquire(&p, "c", 3, &c), 0);
    CHECK_INT(c, IP(127, 0, 0, 5));
    /* Nothing free and nothing inactive: the move fails, the lease stays. */
    CHECK_INT(alloc_move(&p, "a", 4, &a), -ENOSPC);
    l = alloc_find(&p, "a");
    REQUIRE(l != NULL);
    CHECK_INT(l->addr, IP(127, 0, 0, 4));
    /* A move may reclaim an inactive lease. .4 is blocked by the failed move,
     * so unblock it to check that exactly one address changes hands. */
    alloc_unblock(&p, IP(127, 0, 0, 4));
    alloc_release(&p, "b", 5);
    CHECK_INT(alloc_move(&p, "c", 6, &c), 0);
    CHECK_INT(c, IP(127, 0, 0, 3));
    CHECK(alloc_find(&p, "b") == NULL);
    CHECK_INT(alloc_move(&p, "unknown", 7, &c), -ENOENT);
    CHECK_INT(alloc_used(&p), 2);
    alloc_free(&p);
}

TEST(move_is_reclaim_safe)
{
    /* The moving lease must not reclaim itself, and must survive the array
     * compaction when another lease is reclaimed. */
    alloc_pool p;
    alloc_init(&p, IP(127, 0, 0, 2), IP(127, 0, 0, 4));
    uint32_t a;
    CHECK_INT(alloc_acquire(&p, "x", 1, &a), 0);
    CHECK_INT(alloc_acquire(&p, "y", 1, &a), 0);
    CHECK_INT(alloc_acquire(&p, "z", 1, &a), 0); /* last in the array */
    alloc_release(&p, "x", 2);                   /* first in the array */
    alloc_release(&p, "z", 3);
    CHECK_INT(alloc_move(&p, "z", 4, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 2)); /* x's address */
    CHECK(alloc_find(&p, "x") == NULL);
    const alloc_lease *l = alloc_find(&p, "z");
    REQUIRE(l != NULL);
    CHECK_INT(l->addr, IP(127, 0, 0, 2));
    CHECK(l->active);
    l = alloc_find(&p, "y");
    REQUIRE(l != NULL);
    CHECK_INT(l->addr, IP(127, 0, 0, 3));
    CHECK_INT(p.nleases, 2);
    alloc_free(&p);
}

TEST(counts)
{
    alloc_pool p;
    alloc_init(&p, IP(127, 0, 0, 2), IP(127, 0, 0, 254));
    CHECK_INT(alloc_size(&p), 253);
    CHECK_INT(alloc_used(&p), 0);
    alloc_reserve(&p, IP(127, 0, 0, 53));
    alloc_reserve(&p, IP(127, 0, 0, 54));
    alloc_reserve(&p, IP(127, 1, 0, 1)); /* outside: not counted */
    CHECK_INT(alloc_size(&p), 251);
    uint32_t a;
    CHECK_INT(alloc_acquire(&p, "a", 1, &a), 0);
    CHECK_INT(alloc_acquire(&p, "b", 1, &a), 0);
    CHECK_INT(alloc_used(&p), 2);
    alloc_release(&p, "a", 2);
    CHECK_INT(alloc_used(&p), 1);
    alloc_free(&p);

    /* 127.0.0.1 inside the pool is not counted. */
    alloc_init(&p, IP(127, 0, 0, 1), IP(127, 0, 0, 1));
    CHECK_INT(alloc_size(&p), 0);
    CHECK_INT(alloc_acquire(&p, "a", 1, &a), -ENOSPC);
    alloc_free(&p);
}

TEST(fill_whole_pool)
{
    /* Every address of the default pool once, in order, with no repeats. */
    alloc_pool p;
    alloc_init(&p, IP(127, 0, 0, 2), IP(127, 0, 0, 254));
    alloc_reserve(&p, IP(127, 0, 0, 53));
    alloc_reserve(&p, IP(127, 0, 0, 54));
    uint32_t prev = 0;
    size_t n = alloc_size(&p);
    for (size_t i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%zu", i);
        uint32_t a;
        REQUIRE(alloc_acquire(&p, key, 1, &a) == 0);
        CHECK(a > prev);
        CHECK(a != IP(127, 0, 0, 53) && a != IP(127, 0, 0, 54));
        prev = a;
    }
    CHECK_INT(prev, IP(127, 0, 0, 254));
    uint32_t a;
    CHECK_INT(alloc_acquire(&p, "one-more", 1, &a), -ENOSPC);
    CHECK_INT(alloc_used(&p), 251);
    alloc_free(&p);
}

TEST(big_pool)
{
    /* A whole /8 must neither allocate per address nor wrap at the top. */
    alloc_pool p;
    alloc_init(&p, IP(127, 255, 255, 254), IP(127, 255, 255, 255));
    uint32_t a;
    CHECK_INT(alloc_acquire(&p, "a", 1, &a), 0);
    CHECK_INT(a, IP(127, 255, 255, 254));
    CHECK_INT(alloc_acquire(&p, "b", 1, &a), 0);
    CHECK_INT(a, IP(127, 255, 255, 255));
    CHECK_INT(alloc_acquire(&p, "c", 1, &a), -ENOSPC);
    alloc_free(&p);

    alloc_init(&p, IP(127, 0, 0, 0), IP(127, 255, 255, 255));
    CHECK_INT(alloc_size(&p), (1u << 24) - 1);
    CHECK_INT(alloc_acquire(&p, "a", 1, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 0));
    CHECK_INT(alloc_acquire(&p, "b", 1, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 2));
    alloc_free(&p);
}

TEST(bad_keys)
{
    alloc_pool p;
    alloc_init(&p, IP(127, 0, 0, 2), IP(127, 0, 0, 9));
    uint32_t a;
    CHECK_INT(alloc_acquire(&p, "", 1, &a), -EINVAL);
    CHECK_INT(alloc_acquire(&p, NULL, 1, &a), -EINVAL);
    CHECK(alloc_find(&p, NULL) == NULL);
    CHECK_INT(alloc_used(&p), 0);
    alloc_free(&p);
}

/* Pinned (named) leases: never reclaimed, never released, exact or lowest. */
TEST(pin)
{
    alloc_pool p;
    alloc_init(&p, IP(127, 0, 0, 2), IP(127, 0, 0, 4));
    uint32_t a = 0;
    CHECK_INT(alloc_acquire(&p, "name:old", 1, &a), 0);
    alloc_release(&p, "name:old", 2);
    CHECK_INT(alloc_pin(&p, "lease:vm", 0, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 3));
    CHECK_INT(alloc_pin(&p, "lease:vm", 0, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 3));
    CHECK_INT(alloc_pin(&p, "lease:vm", IP(127, 0, 0, 4), &a), -EEXIST);
    CHECK_INT(alloc_pin(&p, "lease:x", IP(127, 0, 0, 3), &a), -EADDRINUSE);
    CHECK_INT(alloc_pin(&p, "lease:x", IP(127, 0, 0, 1), &a), -EDOM);
    CHECK_INT(alloc_pin(&p, "lease:x", IP(127, 0, 1, 1), &a), -EDOM);
    CHECK_INT(alloc_pin(&p, "name:old", 0, &a), -EINVAL); /* a container's key */
    /* An inactive container lease on the wanted address gives way. */
    CHECK_INT(alloc_pin(&p, "lease:x", IP(127, 0, 0, 2), &a), 0);
    CHECK(alloc_find(&p, "name:old") == NULL);
    alloc_release(&p, "lease:x", 3);
    CHECK(alloc_find(&p, "lease:x")->active);
    CHECK_INT(alloc_acquire(&p, "name:c1", 4, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 4));
    alloc_release(&p, "name:c1", 5);
    /* Full but for an inactive container lease: it is reclaimed, never a pinned one. */
    CHECK_INT(alloc_acquire(&p, "name:c2", 6, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 4));
    CHECK_INT(alloc_acquire(&p, "name:c3", 7, &a), -ENOSPC);
    CHECK_INT(alloc_pin(&p, "lease:y", 0, &a), -ENOSPC);
    CHECK(alloc_move(&p, "lease:vm", 8, &a) < 0);
    CHECK_INT(alloc_in_use(&p), 3);
    CHECK_INT(alloc_forget(&p, "lease:vm"), 0);
    CHECK_INT(alloc_forget(&p, "lease:vm"), -ENOENT);
    CHECK_INT(alloc_restore_pinned(&p, "lease:vm", IP(127, 0, 0, 3)), 0);
    CHECK(alloc_find(&p, "lease:vm")->pinned);
    alloc_free(&p);
}

/* Taken addresses (containers publishing on them) are handed to nobody; a
 * container lease on one gets another at its next acquire. */
TEST(taken)
{
    alloc_pool p;
    alloc_init(&p, IP(127, 0, 0, 2), IP(127, 0, 0, 10));
    uint32_t a = 0;
    CHECK_INT(alloc_acquire(&p, "name:a", 1, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 2));
    uint32_t t[] = {IP(127, 0, 0, 2), IP(127, 0, 0, 3), IP(127, 0, 9, 9)};
    alloc_set_taken(&p, t, 3);
    CHECK(alloc_is_taken(&p, IP(127, 0, 0, 3)));
    CHECK_INT(alloc_acquire(&p, "name:a", 2, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 4));
    CHECK_INT(alloc_acquire(&p, "name:b", 2, &a), 0);
    CHECK_INT(a, IP(127, 0, 0, 5));
    CHECK_INT(alloc_pin(&p, "lease:x", IP(127, 0, 0, 3), &a), -EADDRINUSE);
    CHECK_INT(alloc_in_use(&p), 4); /* a, b, and the two taken in the pool */
    alloc_set_taken(&p, NULL, 0);
    CHECK(!alloc_is_taken(&p, IP(127, 0, 0, 3)));
    CHECK_INT(alloc_in_use(&p), 2);
    alloc_free(&p);
}
