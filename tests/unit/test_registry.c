/* The registry: eligibility, leases, name owners, conflicts, service aliases,
 * exhaustion and resync, from containers built in memory. */
#include <string.h>

#include "log.h"
#include "registry.h"
#include "test.h"
#include "util.h"

static uint32_t ip(const char *s)
{
    uint32_t a = 0;
    ip4_parse(s, &a);
    return a;
}

static void add_label(container *c, const char *k, const char *v)
{
    c->labels = xrealloc(c->labels, (c->nlabels + 1) * sizeof(ctr_label));
    c->labels[c->nlabels].key = xstrdup(k);
    c->labels[c->nlabels].value = xstrdup(v);
    c->nlabels++;
}

static container *mk(const char *id, const char *name, int64_t started, int publish)
{
    container *c = container_new();
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->name = xstrdup(name);
    c->running = true;
    c->started_at = started;
    c->nports = 1;
    c->ports = xcalloc(1, sizeof(ctr_port));
    c->ports[0].port = 80;
    c->ports[0].proto = CTR_TCP;
    if (publish) {
        snprintf(c->ports[0].host_ip, sizeof(c->ports[0].host_ip), "0.0.0.0");
        c->ports[0].host_port = 32768;
    }
    return c;
}

static container *mk_compose(const char *id, const char *project, const char *service, int n,
                             int64_t started)
{
    char name[128], num[16];
    snprintf(name, sizeof(name), "%s-%s-%d", project, service, n);
    snprintf(num, sizeof(num), "%d", n);
    container *c = mk(id, name, started, 1);
    add_label(c, "com.docker.compose.project", project);
    add_label(c, "com.docker.compose.service", service);
    add_label(c, "com.docker.compose.container-number", num);
    return c;
}

static uint32_t lookup(registry *r, const char *name)
{
    size_t n;
    reg_record *recs = reg_records(r, &n);
    uint32_t a = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(recs[i].name, name) == 0)
            a = recs[i].addr;
    free(recs);
    return a;
}

TEST(basic_and_eligibility)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    reg_update(&r, mk("aaaa", "pg", 1000, 1), 1);
    reg_update(&r, mk("bbbb", "quiet", 1001, 0), 1);
    CHECK_INT(lookup(&r, "pg.loop.test"), ip("127.0.0.2"));
    CHECK_INT(lookup(&r, "quiet.loop.test"), 0);
    reg_entry *q = reg_find(&r, "quiet");
    REQUIRE(q != NULL);
    CHECK_STR(q->skipped, "publishes no ports");
    CHECK(!q->has_addr);
    CHECK(reg_find(&r, "pg") == reg_find(&r, "pg.loop.test"));
    CHECK(reg_find(&r, "aaaa") != NULL);
    CHECK(reg_find(&r, "nope") == NULL);
    /* Removed: the name goes, the lease stays for the next start. */
    CHECK(reg_remove(&r, "aaaa", 2));
    CHECK_INT(lookup(&r, "pg.loop.test"), 0);
    reg_update(&r, mk("cccc", "other", 1002, 1), 3);
    CHECK_INT(lookup(&r, "other.loop.test"), ip("127.0.0.3"));
    reg_update(&r, mk("dddd", "pg", 1003, 1), 4);
    CHECK_INT(lookup(&r, "pg.loop.test"), ip("127.0.0.2"));
    CHECK(!reg_remove(&r, "zzzz", 5));
    reg_free(&r);
}

TEST(conflict_first_started_wins)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    container *a = mk("aaaa", "one", 2000, 1);
    add_label(a, "loophole.names", "shared");
    container *b = mk("bbbb", "two", 1000, 1);
    add_label(b, "loophole.names", "shared");
    reg_update(&r, a, 1);
    reg_update(&r, b, 2);
    /* "one" held it first and keeps it while it runs. */
    reg_entry *ea = reg_find(&r, "one"), *eb = reg_find(&r, "two");
    REQUIRE(ea && eb);
    CHECK_INT(lookup(&r, "shared.loop.test"), ea->addr);
    CHECK_INT(eb->nconflicts, 1);
    CHECK_STR(eb->nconflicts ? eb->conflicts[0] : NULL, "shared.loop.test");
    CHECK_INT(lookup(&r, "two.loop.test"), eb->addr);
    /* After a daemon restart (fresh registry, same set), the earlier start wins. */
    registry r2;
    reg_init(&r2, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    container *cs[2] = {container_dup(ea->c), container_dup(eb->c)};
    reg_sync(&r2, cs, 2, 5);
    CHECK_INT(lookup(&r2, "shared.loop.test"), reg_find(&r2, "two")->addr);
    CHECK_INT(reg_find(&r2, "one")->nconflicts, 1);
    reg_free(&r2);
    /* The holder goes: the other takes the name, conflict cleared. */
    reg_remove(&r, "aaaa", 6);
    CHECK_INT(lookup(&r, "shared.loop.test"), eb->addr);
    CHECK_INT(eb->nconflicts, 0);
    reg_free(&r);
}

TEST(compose_replicas)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    container *cs[3] = {mk_compose("c2", "myapp", "web", 2, 100),
                        mk_compose("c1", "myapp", "web", 1, 200),
                        mk_compose("c3", "myapp", "db", 1, 50)};
    reg_sync(&r, cs, 3, 1);
    uint32_t w1 = lookup(&r, "web-1.myapp.loop.test"), w2 = lookup(&r, "web-2.myapp.loop.test");
    CHECK(w1 != 0 && w2 != 0 && w1 != w2);
    CHECK_INT(lookup(&r, "web.myapp.loop.test"), w1);
    CHECK_INT(lookup(&r, "db.myapp.loop.test"), lookup(&r, "db-1.myapp.loop.test"));
    CHECK_INT(lookup(&r, "myapp-web-1.loop.test"), w1);
    for (size_t i = 0; i < r.n; i++)
        CHECK_INT(r.entries[i]->nconflicts, 0);
    /* Replica 1 stops: the alias moves to replica 2; it comes back with its address. */
    reg_remove(&r, "c1", 2);
    CHECK_INT(lookup(&r, "web.myapp.loop.test"), w2);
    reg_update(&r, mk_compose("c1b", "myapp", "web", 1, 300), 3);
    CHECK_INT(lookup(&r, "web-1.myapp.loop.test"), w1);
    CHECK_INT(lookup(&r, "web.myapp.loop.test"), w1);
    reg_free(&r);
}

TEST(exhaustion_and_reclaim)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.3"));
    reg_update(&r, mk("a1", "a", 1, 1), 10);
    reg_update(&r, mk("b1", "b", 2, 1), 11);
    reg_update(&r, mk("c1", "c", 3, 1), 12);
    CHECK_INT(r.exhausted, 1);
    reg_entry *c = reg_find(&r, "c");
    REQUIRE(c != NULL);
    CHECK_STR(c->skipped, "address pool exhausted");
    CHECK_INT(lookup(&r, "a.loop.test"), ip("127.0.0.2"));
    CHECK_INT(lookup(&r, "b.loop.test"), ip("127.0.0.3"));
    CHECK_INT(lookup(&r, "c.loop.test"), 0);
    /* a stops: c waits no longer, it takes the reclaimed address. */
    reg_remove(&r, "a1", 20);
    CHECK_INT(r.exhausted, 0);
    CHECK_INT(lookup(&r, "c.loop.test"), ip("127.0.0.2"));
    reg_free(&r);
}

TEST(sync_removes_and_keeps)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    container *first[2] = {mk("a1", "a", 1, 1), mk("b1", "b", 2, 1)};
    reg_sync(&r, first, 2, 1);
    uint32_t b = lookup(&r, "b.loop.test");
    container *second[2] = {mk("b1", "b", 2, 1), mk("c1", "c", 3, 1)};
    reg_sync(&r, second, 2, 2);
    CHECK_INT(r.n, 2);
    CHECK_INT(lookup(&r, "a.loop.test"), 0);
    CHECK_INT(lookup(&r, "b.loop.test"), b);
    CHECK(lookup(&r, "c.loop.test") != 0 && lookup(&r, "c.loop.test") != b);
    /* c must not take a's address while a's lease is merely inactive and free ones exist. */
    CHECK(lookup(&r, "c.loop.test") != ip("127.0.0.2"));
    size_t n;
    uint32_t *addrs = reg_addresses(&r, &n);
    CHECK_INT(n, 2);
    free(addrs);
    reg_free(&r);
}

/* A rename whose old name starts with the new one ("web2" -> "web") is a
 * rename too: the container leaves "web2"'s lease behind and takes "web"'s. */
TEST(rename_to_prefix_moves_lease)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    reg_update(&r, mk("w1", "web", 1, 1), 1);
    CHECK_INT(lookup(&r, "web.loop.test"), ip("127.0.0.2"));
    reg_remove(&r, "w1", 2); /* "name:web" stays reserved for 127.0.0.2 */
    reg_update(&r, mk("w2", "web2", 3, 1), 3);
    CHECK_INT(lookup(&r, "web2.loop.test"), ip("127.0.0.3"));
    reg_update(&r, mk("w2", "web", 3, 1), 4);
    reg_entry *e = reg_find(&r, "w2");
    REQUIRE(e != NULL);
    CHECK_STR(e->lease_key, "name:web");
    CHECK_INT(lookup(&r, "web.loop.test"), ip("127.0.0.2"));
    const alloc_lease *old = alloc_find(&r.pool, "name:web2");
    REQUIRE(old != NULL);
    CHECK(!old->active);
    reg_free(&r);
}

/* A suffixed lease key ("name:web#<id>", from a name clash) is still the
 * same name: an update that keeps the name keeps the lease. */
TEST(update_keeps_suffixed_lease)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    reg_update(&r, mk("aaaa11112222", "web", 1, 1), 1);
    reg_update(&r, mk("bbbb33334444", "web", 2, 1), 1);
    reg_entry *b = reg_find(&r, "bbbb33334444");
    REQUIRE(b != NULL);
    CHECK_STR(b->lease_key, "name:web#bbbb33334444");
    uint32_t addr = b->addr;
    reg_update(&r, mk("bbbb33334444", "web", 2, 1), 5);
    b = reg_find(&r, "bbbb33334444");
    REQUIRE(b != NULL);
    CHECK_STR(b->lease_key, "name:web#bbbb33334444");
    CHECK_INT(b->addr, addr);
    reg_free(&r);
}

TEST_SETUP()
{
    log_set_level(LOG_ERROR);
}
