/* The registry: eligibility, leases, name owners, conflicts, service aliases,
 * exhaustion and resync, from containers built in memory. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

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
    CHECK_STR(q->skipped, "publishes no ports and has no IPv4 address of its own");
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

/* ---- The reverse direction ---- */

/* A container whose image labels were read (and carry nothing of ours). */
static container *mk_hp(const char *id, const char *name, int publish, const char *hostports)
{
    container *c = mk(id, name, 1, publish);
    if (hostports)
        add_label(c, "loophole.host-ports", hostports);
    c->image_labels_known = true;
    return c;
}

static label_hostport hp(const char *spec)
{
    label_hostport h;
    char err[200];
    if (label_host_port_spec(spec, strlen(spec), "loop.test", &h, err, sizeof(err)) != 0)
        fprintf(stderr, "bad spec in test: %s\n", err);
    return h;
}

TEST(sidecars_ignored)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    container *s1 = mk("5151", "loophole-relay-web", 1, 1);
    add_label(s1, "loophole.sidecar", "aaaa");
    reg_update(&r, s1, 1);
    CHECK_INT(r.n, 0);
    CHECK(reg_find(&r, "loophole-relay-web") == NULL);
    container *s2 = mk("5252", "loophole-relay-db", 1, 1);
    add_label(s2, "loophole.sidecar", "bbbb");
    container *cs[3] = {mk("aaaa", "web", 1, 1), s2, mk("bbbb", "db", 2, 0)};
    reg_sync(&r, cs, 3, 2);
    CHECK_INT(r.n, 2);
    CHECK(reg_find(&r, "5252") == NULL);
    CHECK_INT(lookup(&r, "loophole-relay-db.loop.test"), 0);
    CHECK(reg_find(&r, "web") != NULL);
    /* The label alone (an image can carry it) does not hide a container. */
    container *img = mk("5353", "shop", 1, 1);
    add_label(img, "loophole.sidecar", "aaaa");
    reg_update(&r, img, 3);
    CHECK(reg_find(&r, "shop") != NULL);
    reg_free(&r);
}

TEST(host_ports_from_label)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    /* No published ports: no address, but host ports all the same. */
    reg_update(&r, mk_hp("aaaa", "app", 0, "8000, 15432:5432,5432:pg.billing.loop.test:5432/udp"),
               1);
    reg_entry *e = reg_find(&r, "app");
    REQUIRE(e != NULL);
    CHECK(!e->has_addr);
    CHECK_STR(e->skipped, "publishes no ports and has no IPv4 address of its own");
    CHECK_STR(e->hostports_problem, "");
    REQUIRE(e->nhostports == 3);
    CHECK_INT(e->hostports[0].spec.port, 8000);
    CHECK_INT(e->hostports[0].source, REG_HP_LABEL);
    CHECK_STR(e->hostports[0].problem, "");
    CHECK_INT(e->hostports[1].spec.port, 15432);
    CHECK_INT(e->hostports[1].spec.target_port, 5432);
    CHECK_STR(e->hostports[2].spec.host, "pg.billing.loop.test");
    CHECK_INT(e->hostports[2].spec.proto, CTR_UDP);
    /* Stopped: none. */
    container *c = mk_hp("aaaa", "app", 0, "8000");
    c->running = false;
    reg_update(&r, c, 2);
    e = reg_find(&r, "app");
    REQUIRE(e != NULL);
    CHECK_INT(e->nhostports, 0);
    /* Turned off by loophole.enable: none either. */
    c = mk_hp("aaaa", "app", 0, "8000");
    add_label(c, "loophole.enable", "false");
    reg_update(&r, c, 3);
    CHECK_INT(reg_find(&r, "app")->nhostports, 0);
    /* An image label with another value does not stop the runner's. */
    c = mk_hp("aaaa", "app", 0, "8000");
    c->image_labels = xcalloc(1, sizeof(ctr_label));
    c->image_labels[0] = (ctr_label){xstrdup("loophole.host-ports"), xstrdup("9000")};
    c->nimage_labels = 1;
    reg_update(&r, c, 4);
    e = reg_find(&r, "app");
    CHECK_INT(e->nhostports, 1);
    CHECK_STR(e->hostports_problem, "");
    reg_free(&r);
}

TEST(host_ports_problems)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    /* Bad entries: the good ones stay, the first reason and a count. */
    reg_update(&r, mk_hp("aaaa", "a", 1, "x,8000,99999,9000:example.com:1"), 1);
    reg_entry *e = reg_find(&r, "a");
    REQUIRE(e != NULL);
    CHECK_INT(e->nhostports, 1);
    CHECK_STR(e->hostports_problem,
              "host port spec \"x\": CPORT must be a port number 1-65535 (and 2 more)");
    /* The image's own label is ignored whole; exposures are unaffected. */
    container *c = mk_hp("bbbb", "b", 1, "8000");
    c->image_labels = xcalloc(1, sizeof(ctr_label));
    c->image_labels[0] = (ctr_label){xstrdup("loophole.host-ports"), xstrdup("8000")};
    c->nimage_labels = 1;
    reg_update(&r, c, 2);
    e = reg_find(&r, "b");
    CHECK_INT(e->nhostports, 0);
    CHECK(strstr(e->hostports_problem, "the image sets loophole.host-ports itself") != NULL);
    label_hostport h = hp("8000");
    char err[200];
    CHECK_INT(reg_expose(&r, e, &h, err, sizeof(err)), 0); /* the ignored label takes nothing */
    REQUIRE(e->nhostports == 1);
    CHECK_INT(e->hostports[0].source, REG_HP_API);
    CHECK_STR(e->hostports[0].problem, "");
    /* Image labels unknown: the label is not served. */
    c = mk_hp("cccc", "c", 1, "8000");
    c->image_labels_known = false;
    reg_update(&r, c, 3);
    e = reg_find(&r, "c");
    CHECK_INT(e->nhostports, 0);
    CHECK(strstr(e->hostports_problem, "cannot check whether the image sets") != NULL);
    /* No label: no problem, whatever is known of the image. */
    c = mk_hp("dddd", "d", 1, NULL);
    c->image_labels_known = false;
    reg_update(&r, c, 4);
    CHECK_STR(reg_find(&r, "d")->hostports_problem, "");
    /* The host's network: every host port gets a problem; "none" is fine. */
    c = mk_hp("eeee", "e", 0, "8000,9000/udp");
    c->network_mode = xstrdup("host");
    reg_update(&r, c, 5);
    e = reg_find(&r, "e");
    REQUIRE(e->nhostports == 2);
    CHECK_STR(e->hostports[0].problem,
              "the container uses the host's network: its localhost is the host's already");
    CHECK_STR(e->hostports[1].problem, e->hostports[0].problem);
    c = mk_hp("eeee", "e", 0, "8000");
    c->network_mode = xstrdup("none");
    reg_update(&r, c, 6);
    e = reg_find(&r, "e");
    REQUIRE(e->nhostports == 1);
    CHECK_STR(e->hostports[0].problem, "");
    reg_free(&r);
}

TEST(expose_and_unexpose)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    reg_update(&r, mk_hp("aaaa", "web", 1, "8000"), 1);
    reg_entry *e = reg_find(&r, "web");
    REQUIRE(e != NULL);
    char err[200];
    label_hostport h = hp("8000:9000");
    CHECK_INT(reg_expose(&r, e, &h, err, sizeof(err)), -EEXIST);
    CHECK_STR(err, "port 8000/tcp is taken by the container's loophole.host-ports label");
    h = hp("8000/udp"); /* another protocol is another port */
    CHECK_INT(reg_expose(&r, e, &h, err, sizeof(err)), 0);
    h = hp("15432:5432");
    CHECK_INT(reg_expose(&r, e, &h, err, sizeof(err)), 0);
    h = hp("15432:127.0.0.1:5433");
    CHECK_INT(reg_expose(&r, e, &h, err, sizeof(err)), -EEXIST);
    CHECK_STR(err, "port 15432/tcp is exposed already (to localhost:5432)");
    h.port = 0;
    CHECK_INT(reg_expose(&r, e, &h, err, sizeof(err)), -EINVAL);
    /* Label entries first, then exposures in the order they were made. */
    REQUIRE(e->nhostports == 3);
    CHECK_INT(e->hostports[0].source, REG_HP_LABEL);
    CHECK_INT(e->hostports[1].source, REG_HP_API);
    CHECK_INT(e->hostports[1].spec.proto, CTR_UDP);
    CHECK_INT(e->hostports[2].spec.port, 15432);
    size_t n;
    const reg_exposure *x = reg_exposures(&r, &n);
    REQUIRE(n == 2);
    CHECK_STR(x[0].key, "name:web");
    CHECK_INT(x[1].spec.target_port, 5432);
    /* Removing: a label entry cannot go this way, a missing one is ENOENT. */
    CHECK_INT(reg_unexpose(&r, e, 8000, CTR_TCP), -EPERM);
    CHECK_INT(reg_unexpose(&r, e, 9999, CTR_TCP), -ENOENT);
    CHECK_INT(reg_unexpose(&r, e, 8000, CTR_UDP), 0);
    CHECK_INT(reg_unexpose(&r, e, 8000, CTR_UDP), -ENOENT);
    REQUIRE(e->nhostports == 2);
    CHECK_INT(e->hostports[1].spec.port, 15432);
    /* A cap per container. */
    for (int i = 0; i < REG_EXPOSURES_MAX - 1; i++) {
        h = hp("1");
        h.port = (uint16_t)(20000 + i);
        CHECK_INT(reg_expose(&r, e, &h, err, sizeof(err)), 0);
    }
    h.port = 30000;
    CHECK_INT(reg_expose(&r, e, &h, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "at most 64") != NULL);
    reg_free(&r);
}

/* Exposures are the lease key's: a restart (new id, same name) or a compose
 * recreation keeps them; another container does not see them. */
TEST(exposures_follow_the_lease_key)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    reg_update(&r, mk_hp("aaaa", "web", 1, NULL), 1);
    container *c = mk_compose("c1", "shop", "api", 1, 1);
    c->image_labels_known = true;
    reg_update(&r, c, 1);
    char err[200];
    label_hostport h = hp("8000");
    CHECK_INT(reg_expose(&r, reg_find(&r, "web"), &h, err, sizeof(err)), 0);
    h = hp("9000");
    CHECK_INT(reg_expose(&r, reg_find(&r, "c1"), &h, err, sizeof(err)), 0);
    CHECK_INT(reg_find(&r, "web")->nhostports, 1);
    CHECK_INT(reg_find(&r, "c1")->nhostports, 1);
    reg_remove(&r, "aaaa", 2);
    reg_remove(&r, "c1", 2);
    reg_update(&r, mk_hp("bbbb", "web", 1, NULL), 3);
    c = mk_compose("c2", "shop", "api", 1, 3);
    c->image_labels_known = true;
    reg_update(&r, c, 3);
    reg_entry *w = reg_find(&r, "bbbb"), *a = reg_find(&r, "c2");
    REQUIRE(w && a);
    REQUIRE(w->nhostports == 1);
    CHECK_INT(w->hostports[0].spec.port, 8000);
    CHECK_INT(w->hostports[0].source, REG_HP_API);
    REQUIRE(a->nhostports == 1);
    CHECK_INT(a->hostports[0].spec.port, 9000);
    /* Recreated with a label naming an exposed port: the label's entry is
     * served, the exposure is listed with a problem and may be removed. */
    reg_remove(&r, "bbbb", 4);
    reg_update(&r, mk_hp("cccc", "web", 1, "8000:8001"), 5);
    w = reg_find(&r, "web");
    REQUIRE(w != NULL && w->nhostports == 2);
    CHECK_INT(w->hostports[0].source, REG_HP_LABEL);
    CHECK_STR(w->hostports[0].problem, "");
    CHECK_STR(w->hostports[1].problem,
              "port 8000/tcp is taken by the container's loophole.host-ports label");
    CHECK_INT(reg_unexpose(&r, w, 8000, CTR_TCP), 0);
    CHECK_INT(w->nhostports, 1);
    CHECK_INT(reg_unexpose(&r, w, 8000, CTR_TCP), -EPERM);
    reg_free(&r);
}

/* When another container reclaims a stopped key's address lease, that key's
 * exposures go too; a key without a lease (no published ports) keeps them. */
TEST(exposures_dropped_with_reclaimed_lease)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.2"));
    reg_update(&r, mk_hp("aaaa", "old", 1, NULL), 1);
    reg_update(&r, mk_hp("qqqq", "quiet", 0, NULL), 1);
    char err[200];
    label_hostport h = hp("8000");
    CHECK_INT(reg_expose(&r, reg_find(&r, "old"), &h, err, sizeof(err)), 0);
    CHECK_INT(reg_expose(&r, reg_find(&r, "quiet"), &h, err, sizeof(err)), 0);
    size_t n;
    reg_exposures(&r, &n);
    CHECK_INT(n, 2);
    reg_remove(&r, "aaaa", 2); /* "name:old" keeps its inactive lease */
    reg_remove(&r, "qqqq", 2);
    reg_exposures(&r, &n);
    CHECK_INT(n, 2);
    reg_update(&r, mk_hp("bbbb", "new", 1, NULL), 3); /* the only address: reclaimed */
    CHECK_INT(lookup(&r, "new.loop.test"), ip("127.0.0.2"));
    CHECK(alloc_find(&r.pool, "name:old") == NULL);
    const reg_exposure *x = reg_exposures(&r, &n);
    REQUIRE(n == 1);
    CHECK_STR(x[0].key, "name:quiet");
    reg_update(&r, mk_hp("cccc", "old", 1, NULL), 4); /* back, but without them */
    CHECK_INT(reg_find(&r, "old")->nhostports, 0);
    reg_free(&r);
}

TEST(restore_exposures)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    label_hostport h = hp("8000:[::1]:8000");
    reg_restore_exposure(&r, "name:web", &h);
    reg_restore_exposure(&r, "name:web", &h); /* a duplicate */
    h.proto = CTR_UDP;
    reg_restore_exposure(&r, "name:web", &h);
    h.port = 0;
    reg_restore_exposure(&r, "name:web", &h); /* no port */
    reg_restore_exposure(&r, "", &h);
    size_t n;
    reg_exposures(&r, &n);
    CHECK_INT(n, 2);
    reg_update(&r, mk_hp("aaaa", "web", 0, NULL), 1);
    reg_entry *e = reg_find(&r, "web");
    REQUIRE(e != NULL && e->nhostports == 2);
    CHECK_STR(e->hostports[0].spec.host, "::1");
    reg_free(&r);
}

TEST(resolve_name)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    container *c = mk("aaaa", "pg", 1, 1);
    add_label(c, "loophole.names", "db.billing");
    reg_update(&r, c, 1);
    reg_update(&r, mk("bbbb", "quiet", 2, 0), 1);
    uint32_t a = 0;
    CHECK_INT(reg_resolve_name(&r, "pg.loop.test", &a), 0);
    CHECK_INT(a, ip("127.0.0.2"));
    a = 0;
    CHECK_INT(reg_resolve_name(&r, "DB.Billing.loop.test.", &a), 0);
    CHECK_INT(a, ip("127.0.0.2"));
    a = 0;
    CHECK_INT(reg_resolve_name(&r, "db.billing", &a), 0);
    CHECK_INT(a, ip("127.0.0.2"));
    CHECK_INT(reg_resolve_name(&r, "pg", &a), 0);
    CHECK_INT(reg_resolve_name(&r, "aaaa", &a), -ENOENT);            /* ids are no DNS names */
    CHECK_INT(reg_resolve_name(&r, "quiet.loop.test", &a), -ENOENT); /* not served */
    CHECK_INT(reg_resolve_name(&r, "billing.loop.test", &a), -ENOENT);
    CHECK_INT(reg_resolve_name(&r, "", &a), -ENOENT);
    CHECK_INT(reg_resolve_name(&r, ".", &a), -ENOENT);
    reg_free(&r);
}

/* ---- Serving exposed ports, direct and mapped forwarding (issue 13) ---- */

static container *mk_bare(const char *id, const char *name, int64_t started)
{
    container *c = container_new();
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->name = xstrdup(name);
    c->running = true;
    c->started_at = started;
    return c;
}

static void add_port(container *c, uint16_t port, uint8_t proto, const char *hip, uint16_t hport)
{
    c->ports = xrealloc(c->ports, (c->nports + 1) * sizeof(ctr_port));
    ctr_port *p = &c->ports[c->nports++];
    memset(p, 0, sizeof(*p));
    p->port = port;
    p->proto = proto;
    snprintf(p->host_ip, sizeof(p->host_ip), "%s", hip);
    p->host_port = hport;
}

static void add_net(container *c, const char *name, const char *addr)
{
    c->nets = xrealloc(c->nets, (c->nnets + 1) * sizeof(ctr_net));
    ctr_net *n = &c->nets[c->nnets++];
    memset(n, 0, sizeof(*n));
    n->name = xstrdup(name);
    n->ip = xstrdup(addr);
    n->gateway = xstrdup("");
}

static void init(registry *r)
{
    reg_init(r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    r->share_wildcard = false; /* the same on every platform the tests run on */
}

static const reg_port *port_of(registry *r, const char *name, uint16_t port, uint8_t proto)
{
    const reg_entry *e = reg_find(r, name);
    for (size_t i = 0; e && i < e->nports; i++)
        if (e->ports[i].port == port && e->ports[i].proto == proto)
            return &e->ports[i];
    return NULL;
}

/* "a.b.c.d:port" of reg_port_target (IPv4 only). */
static const char *target_of(const reg_port *p, char *tb, size_t n)
{
    struct sockaddr_storage ss;
    if (reg_port_target(p, &ss) < 0 || ss.ss_family != AF_INET)
        return "(none)";
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
    char a[16];
    snprintf(tb, n, "%s:%u", ip4_format(ntohl(s4->sin_addr.s_addr), a), ntohs(s4->sin_port));
    return tb;
}

TEST(eligible_by_exposed_label_or_published)
{
    registry r;
    init(&r);
    container *exp = mk_bare("e1", "exposed", 1);
    add_port(exp, 8080, CTR_TCP, "", 0);
    add_net(exp, "bridge", "172.17.0.3");
    container *lab = mk_bare("e2", "labelled", 2);
    add_label(lab, "loophole.ports", "8080, 80, 9000/udp, x");
    add_port(lab, 80, CTR_TCP, "", 0);
    add_net(lab, "bridge", "172.17.0.4");
    container *none = mk_bare("e3", "portless", 3);
    add_net(none, "bridge", "172.17.0.5");
    container *hostnet = mk_bare("e4", "hostnet", 4);
    add_port(hostnet, 8080, CTR_TCP, "", 0);
    add_net(hostnet, "host", "");
    container *sctp = mk_bare("e5", "sctp", 5);
    add_port(sctp, 36412, CTR_SCTP, "", 0);
    add_net(sctp, "bridge", "172.17.0.6");
    reg_update(&r, exp, 1);
    reg_update(&r, lab, 1);
    reg_update(&r, none, 1);
    reg_update(&r, hostnet, 1);
    reg_update(&r, sctp, 1);
    CHECK(reg_served(reg_find(&r, "exposed")));
    CHECK(reg_served(reg_find(&r, "labelled")));
    CHECK_STR(reg_find(&r, "portless")->skipped, "has no ports");
    CHECK_STR(reg_find(&r, "hostnet")->skipped,
              "publishes no ports and has no IPv4 address of its own");
    CHECK_STR(reg_find(&r, "sctp")->skipped, "has no ports");
    /* The label's ports join the exposed ones, once each, in order. */
    const reg_entry *l = reg_find(&r, "labelled");
    REQUIRE(l->nports == 3);
    CHECK_INT(l->ports[0].port, 80);
    CHECK(l->ports[0].labelled);
    CHECK_INT(l->ports[1].port, 8080);
    CHECK_INT(l->ports[2].port, 9000);
    CHECK_INT(l->ports[2].proto, CTR_UDP);
    CHECK(!port_of(&r, "exposed", 8080, CTR_TCP)->labelled);
    reg_free(&r);

    /* --serve published: exposed ports neither make a container eligible
     * nor are served; the label's and published ones are. */
    init(&r);
    r.serve_exposed = false;
    exp = mk_bare("e1", "exposed", 1);
    add_port(exp, 8080, CTR_TCP, "", 0);
    add_net(exp, "bridge", "172.17.0.3");
    lab = mk_bare("e2", "labelled", 2);
    add_label(lab, "loophole.ports", "9000");
    add_port(lab, 80, CTR_TCP, "", 0);
    add_net(lab, "bridge", "172.17.0.4");
    container *pub = mk("e3", "pub", 3, 1);
    add_port(pub, 81, CTR_TCP, "", 0);
    add_net(pub, "bridge", "172.17.0.5");
    reg_update(&r, exp, 1);
    reg_update(&r, lab, 1);
    reg_update(&r, pub, 1);
    CHECK_STR(reg_find(&r, "exposed")->skipped, "publishes no ports");
    CHECK(reg_served(reg_find(&r, "labelled")));
    CHECK(reg_served(reg_find(&r, "pub")));
    CHECK(reg_set_reachability(&r, "bridge", REG_REACH_OK));
    CHECK_INT(port_of(&r, "labelled", 80, CTR_TCP)->plan, REG_PORT_NONE);
    CHECK_STR(port_of(&r, "labelled", 80, CTR_TCP)->problem, "");
    CHECK_INT(port_of(&r, "labelled", 9000, CTR_TCP)->plan, REG_PORT_DIRECT);
    CHECK_INT(port_of(&r, "pub", 80, CTR_TCP)->plan, REG_PORT_DIRECT);
    CHECK_INT(port_of(&r, "pub", 81, CTR_TCP)->plan, REG_PORT_NONE);
    reg_free(&r);
}

TEST(network_order_and_label)
{
    registry r;
    init(&r);
    container *c = mk_bare("n1", "multi", 1);
    add_port(c, 80, CTR_TCP, "0.0.0.0", 32768);
    add_net(c, "zeta", "10.0.2.2");
    add_net(c, "noaddr", "");
    add_net(c, "bridge", "172.17.0.3");
    add_net(c, "alpha", "10.0.1.2");
    container *d = container_dup(c);
    reg_update(&r, c, 1);
    /* Every network reachable: the default bridge first. */
    reg_set_reachability(&r, "zeta", REG_REACH_OK);
    reg_set_reachability(&r, "alpha", REG_REACH_OK);
    reg_set_reachability(&r, "bridge", REG_REACH_OK);
    const reg_port *p = port_of(&r, "multi", 80, CTR_TCP);
    CHECK_INT(p->plan, REG_PORT_DIRECT);
    CHECK_STR(p->network, "bridge");
    CHECK_STR(p->target_ip, "172.17.0.3");
    char tb[32];
    CHECK_STR(target_of(p, tb, sizeof(tb)), "172.17.0.3:80");
    /* The bridge unreachable: the others by name. */
    CHECK(reg_set_reachability(&r, "bridge", REG_REACH_UNREACHABLE));
    p = port_of(&r, "multi", 80, CTR_TCP);
    CHECK_STR(p->network, "alpha");
    CHECK_STR(target_of(p, tb, sizeof(tb)), "10.0.1.2:80");
    CHECK_STR(p->problem, "");
    /* loophole.network wins over the order. */
    add_label(d, "loophole.network", "zeta");
    container *bad = container_dup(d);
    reg_update(&r, d, 2);
    p = port_of(&r, "multi", 80, CTR_TCP);
    CHECK_STR(p->network, "zeta");
    CHECK_STR(p->target_ip, "10.0.2.2");
    /* ... when the container is on it; else a problem and the order. */
    free(bad->labels[bad->nlabels - 1].value);
    bad->labels[bad->nlabels - 1].value = xstrdup("noaddr");
    container *bad2 = container_dup(bad);
    reg_update(&r, bad, 3);
    p = port_of(&r, "multi", 80, CTR_TCP);
    CHECK_STR(p->network, "alpha");
    CHECK_INT(p->plan, REG_PORT_DIRECT);
    CHECK_STR(p->problem, "loophole.network names \"noaddr\", which the container is not on (or "
                          "has no IPv4 address on)");
    free(bad2->labels[bad2->nlabels - 1].value);
    bad2->labels[bad2->nlabels - 1].value = xstrdup("elsewhere\n");
    reg_update(&r, bad2, 4);
    CHECK_STR(port_of(&r, "multi", 80, CTR_TCP)->problem,
              "loophole.network names \"elsewhere\\x0a\", which the container is not on (or has no "
              "IPv4 address on)");
    reg_free(&r);
}

/* A network just connected (not probed yet) does not take over from one
 * known to be reachable until its own probe answers: the listener, and the
 * connections on it, stay. */
TEST(network_known_reachable_first)
{
    registry r;
    init(&r);
    container *c = mk_bare("n2", "web", 1);
    add_port(c, 8080, CTR_TCP, "", 0); /* exposed only */
    add_net(c, "backend", "10.0.9.2");
    container *d = container_dup(c);
    reg_update(&r, c, 1);
    reg_set_reachability(&r, "backend", REG_REACH_OK);
    CHECK_STR(port_of(&r, "web", 8080, CTR_TCP)->network, "backend");
    add_net(d, "bridge", "172.17.0.9"); /* docker network connect bridge */
    reg_update(&r, d, 2);
    const reg_port *p = port_of(&r, "web", 8080, CTR_TCP);
    CHECK_INT(p->plan, REG_PORT_DIRECT);
    CHECK_STR(p->network, "backend");
    CHECK(reg_set_reachability(&r, "bridge", REG_REACH_OK));
    p = port_of(&r, "web", 8080, CTR_TCP);
    CHECK_STR(p->network, "bridge");
    CHECK_STR(p->target_ip, "172.17.0.9");
    reg_free(&r);
}

TEST(forward_auto)
{
    registry r;
    init(&r);
    container *c = mk_bare("a1", "app", 1);
    add_port(c, 5432, CTR_TCP, "0.0.0.0", 49312);
    add_port(c, 8080, CTR_TCP, "", 0);
    add_net(c, "bridge", "172.17.0.3");
    reg_update(&r, c, 1);
    /* Nothing probed yet: published is mapped, exposed-only waits. */
    const reg_port *pub = port_of(&r, "app", 5432, CTR_TCP),
                   *exp = port_of(&r, "app", 8080, CTR_TCP);
    char tb[32];
    CHECK_INT(pub->plan, REG_PORT_MAPPED);
    CHECK_STR(pub->network, "");
    CHECK_STR(target_of(pub, tb, sizeof(tb)), "127.0.0.1:49312");
    CHECK_INT(exp->plan, REG_PORT_NONE);
    CHECK_STR(exp->problem, "");
    /* Reachable: both direct; telling the same again changes nothing. */
    CHECK(reg_set_reachability(&r, "bridge", REG_REACH_OK));
    CHECK(!reg_set_reachability(&r, "bridge", REG_REACH_OK));
    CHECK(!reg_set_reachability(&r, "other", REG_REACH_UNREACHABLE));
    CHECK_INT(reg_reachability(&r, "bridge"), REG_REACH_OK);
    CHECK_INT(reg_reachability(&r, "nope"), REG_REACH_UNKNOWN);
    pub = port_of(&r, "app", 5432, CTR_TCP);
    exp = port_of(&r, "app", 8080, CTR_TCP);
    CHECK_INT(pub->plan, REG_PORT_DIRECT);
    CHECK_STR(target_of(pub, tb, sizeof(tb)), "172.17.0.3:5432");
    CHECK_INT(exp->plan, REG_PORT_DIRECT);
    CHECK_STR(target_of(exp, tb, sizeof(tb)), "172.17.0.3:8080");
    /* Unreachable: published falls back to mapped, exposed-only is
     * unreachable with the fix in its problem. */
    CHECK(reg_set_reachability(&r, "bridge", REG_REACH_UNREACHABLE));
    pub = port_of(&r, "app", 5432, CTR_TCP);
    exp = port_of(&r, "app", 8080, CTR_TCP);
    CHECK_INT(pub->plan, REG_PORT_MAPPED);
    CHECK_STR(pub->problem, "");
    CHECK_INT(exp->plan, REG_PORT_UNREACHABLE);
    CHECK_STR(exp->problem, "port 8080/tcp is not published and the container's network is not "
                            "reachable from the host: publish it (-p 8080) or route container "
                            "networks to the host (e.g. docker-mac-net-connect)");
    CHECK(reg_served(reg_find(&r, "app"))); /* still listed, with its address */
    /* Forgotten (to be probed again): back to waiting. */
    CHECK(reg_set_reachability(&r, "bridge", REG_REACH_UNKNOWN));
    CHECK_INT(port_of(&r, "app", 8080, CTR_TCP)->plan, REG_PORT_NONE);
    CHECK_INT(port_of(&r, "app", 5432, CTR_TCP)->plan, REG_PORT_MAPPED);
    reg_free(&r);
}

TEST(forward_direct_and_mapped)
{
    registry r;
    init(&r);
    r.forward = REG_FORWARD_DIRECT;
    container *c = mk_bare("a1", "app", 1);
    add_port(c, 5432, CTR_TCP, "0.0.0.0", 49312);
    add_port(c, 8080, CTR_TCP, "", 0);
    add_net(c, "bridge", "172.17.0.3");
    container *c2 = container_dup(c);
    container *nonet = mk("a2", "nonet", 2, 1); /* published 80, no network */
    reg_update(&r, c, 1);
    reg_update(&r, nonet, 1);
    /* Direct even before a probe answered. */
    CHECK_INT(port_of(&r, "app", 5432, CTR_TCP)->plan, REG_PORT_DIRECT);
    CHECK_INT(port_of(&r, "app", 8080, CTR_TCP)->plan, REG_PORT_DIRECT);
    CHECK_STR(port_of(&r, "app", 8080, CTR_TCP)->problem, "");
    CHECK_INT(port_of(&r, "nonet", 80, CTR_TCP)->plan, REG_PORT_MAPPED);
    /* ... and after it failed, with a problem saying so. */
    CHECK(reg_set_reachability(&r, "bridge", REG_REACH_UNREACHABLE));
    const reg_port *p = port_of(&r, "app", 8080, CTR_TCP);
    CHECK_INT(p->plan, REG_PORT_DIRECT);
    CHECK_STR(p->problem, "port 8080/tcp goes to 172.17.0.3 on network bridge (--forward direct), "
                          "but the probe of that network from the host failed");
    CHECK_INT(port_of(&r, "app", 5432, CTR_TCP)->plan, REG_PORT_DIRECT);
    reg_free(&r);

    /* --forward mapped: today's behaviour, whatever the probes say. */
    init(&r);
    r.forward = REG_FORWARD_MAPPED;
    reg_update(&r, c2, 1);
    reg_set_reachability(&r, "bridge", REG_REACH_OK);
    CHECK_INT(port_of(&r, "app", 5432, CTR_TCP)->plan, REG_PORT_MAPPED);
    p = port_of(&r, "app", 8080, CTR_TCP);
    CHECK_INT(p->plan, REG_PORT_UNREACHABLE);
    CHECK_STR(p->problem, "port 8080/tcp is not published, and --forward mapped serves only "
                          "published ports: publish it (-p 8080) or run loopholed with --forward "
                          "auto");
    reg_probe_want *w;
    CHECK_INT(reg_probe_wants(&r, &w), 0);
    CHECK(w == NULL);
    reg_free(&r);
}

TEST(shared_stays_shared)
{
    static const int modes[] = {REG_FORWARD_AUTO, REG_FORWARD_DIRECT, REG_FORWARD_MAPPED};
    for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
        registry r;
        init(&r);
        r.share_wildcard = true;
        r.forward = modes[i];
        container *c = mk_bare("s1", "pg", 1);
        add_port(c, 5432, CTR_TCP, "0.0.0.0", 5432);
        add_port(c, 5433, CTR_TCP, "0.0.0.0", 15433);
        add_net(c, "bridge", "172.17.0.3");
        reg_update(&r, c, 1);
        reg_set_reachability(&r, "bridge", REG_REACH_OK);
        CHECK_INT(port_of(&r, "pg", 5432, CTR_TCP)->plan, REG_PORT_SHARED);
        CHECK_INT(port_of(&r, "pg", 5433, CTR_TCP)->plan,
                  modes[i] == REG_FORWARD_MAPPED ? REG_PORT_MAPPED : REG_PORT_DIRECT);
        reg_free(&r);
    }
}

TEST(udp_ports)
{
    registry r;
    init(&r);
    container *c = mk_bare("u1", "dns", 1);
    add_port(c, 53, CTR_UDP, "", 0);
    add_port(c, 54, CTR_UDP, "0.0.0.0", 30054);
    add_net(c, "bridge", "172.17.0.3");
    reg_update(&r, c, 1);
    /* Unknown network (UDP cannot be probed): published is mapped, an
     * exposed-only one is direct, optimistically. */
    CHECK_INT(port_of(&r, "dns", 53, CTR_UDP)->plan, REG_PORT_DIRECT);
    CHECK_INT(port_of(&r, "dns", 54, CTR_UDP)->plan, REG_PORT_MAPPED);
    /* The TCP probe (port 9: it has no TCP port) decides for UDP too. */
    reg_probe_want *w;
    REQUIRE(reg_probe_wants(&r, &w) == 1);
    CHECK_INT(w[0].port, 9);
    CHECK_INT(w[0].proto, CTR_TCP);
    free(w);
    CHECK(reg_set_reachability(&r, "bridge", REG_REACH_UNREACHABLE));
    CHECK_INT(port_of(&r, "dns", 53, CTR_UDP)->plan, REG_PORT_UNREACHABLE);
    CHECK(strstr(port_of(&r, "dns", 53, CTR_UDP)->problem, "publish it (-p 53/udp)") != NULL);
    CHECK_INT(port_of(&r, "dns", 54, CTR_UDP)->plan, REG_PORT_MAPPED);
    CHECK(reg_set_reachability(&r, "bridge", REG_REACH_OK));
    CHECK_INT(port_of(&r, "dns", 53, CTR_UDP)->plan, REG_PORT_DIRECT);
    CHECK_INT(port_of(&r, "dns", 54, CTR_UDP)->plan, REG_PORT_DIRECT);
    reg_free(&r);
}

TEST(probe_wants)
{
    registry r;
    init(&r);
    container *a = mk_bare("p1", "a", 1);
    add_port(a, 53, CTR_UDP, "", 0);
    add_port(a, 6379, CTR_TCP, "", 0);
    add_port(a, 8080, CTR_TCP, "", 0);
    add_net(a, "bridge", "172.17.0.3");
    add_net(a, "back", "10.1.0.3");
    container *b = mk_bare("p2", "b", 2);
    add_port(b, 80, CTR_TCP, "0.0.0.0", 8000);
    add_net(b, "bridge", "172.17.0.4");
    add_net(b, "front", "10.2.0.4");
    add_net(b, "none-ip", "");
    container *off = mk_bare("p3", "off", 3); /* not served: no ports */
    add_net(off, "lonely", "10.3.0.2");
    reg_update(&r, a, 1);
    reg_update(&r, b, 1);
    reg_update(&r, off, 1);
    reg_probe_want *w;
    size_t n = reg_probe_wants(&r, &w);
    REQUIRE(n == 3);
    /* One want per network, from the first served container on it, with
     * its first TCP port. */
    CHECK_STR(w[0].network, "bridge");
    CHECK_STR(w[0].ip, "172.17.0.3");
    CHECK_INT(w[0].port, 6379);
    CHECK_STR(w[1].network, "back");
    CHECK_STR(w[1].ip, "10.1.0.3");
    CHECK_STR(w[2].network, "front");
    CHECK_STR(w[2].ip, "10.2.0.4");
    CHECK_INT(w[2].port, 80);
    free(w);
    /* Known networks keep a target too (the prober re-probes them), and it
     * follows the containers: a gone one is no target. */
    reg_set_reachability(&r, "bridge", REG_REACH_OK);
    reg_set_reachability(&r, "back", REG_REACH_UNREACHABLE);
    n = reg_probe_wants(&r, &w);
    REQUIRE(n == 3);
    free(w);
    CHECK(reg_remove(&r, "p1", 2));
    n = reg_probe_wants(&r, &w);
    REQUIRE(n == 2);
    CHECK_STR(w[0].network, "bridge");
    CHECK_STR(w[0].ip, "172.17.0.4");
    CHECK_INT(w[0].port, 80);
    CHECK_STR(w[1].network, "front");
    free(w);
    /* --forward mapped uses no answer: no probes. */
    r.forward = REG_FORWARD_MAPPED;
    CHECK_INT(reg_probe_wants(&r, &w), 0);
    CHECK(w == NULL);
    reg_free(&r);
}

TEST(held_exposed_and_everywhere)
{
    registry r;
    init(&r);
    container *c = mk_bare("h1", "web", 1);
    add_label(c, "loophole.network", "missing");
    add_port(c, 8080, CTR_TCP, "", 0);
    add_port(c, 5432, CTR_TCP, "0.0.0.0", 49312);
    add_net(c, "bridge", "172.17.0.3");
    reg_update(&r, c, 1);
    reg_set_reachability(&r, "bridge", REG_REACH_OK);
    reg_entry *e = reg_find(&r, "web");
    uint32_t addr = e->addr;
    const char *netproblem = "loophole.network names \"missing\", which the container is not on "
                             "(or has no IPv4 address on)";
    CHECK_STR(port_of(&r, "web", 8080, CTR_TCP)->problem, netproblem);
    /* An exposed-only port held on the container's address never moves it. */
    reg_apply_begin(&r, 10);
    reg_decide_round(&r, false);
    CHECK(!reg_port_held(&r, "h1", 8080, CTR_TCP, "127.0.0.2:8080/tcp", 10));
    CHECK_INT(e->addr, addr);
    CHECK(port_of(&r, "web", 8080, CTR_TCP)->held);
    CHECK_STR(port_of(&r, "web", 8080, CTR_TCP)->problem,
              "127.0.0.2:8080/tcp is held by another program (loophole moves a container only "
              "for a port it publishes)");
    /* A reachability change keeps a held problem while the plan stays. */
    CHECK(!reg_set_reachability(&r, "other", REG_REACH_OK));
    CHECK(port_of(&r, "web", 8080, CTR_TCP)->held);
    /* Held on the wildcard: a problem naming the holder, never a move. */
    CHECK(reg_port_held_everywhere(&r, "h1", 5432, CTR_TCP, "pid 123 (python3)"));
    CHECK_INT(e->addr, addr);
    CHECK_STR(port_of(&r, "web", 5432, CTR_TCP)->problem,
              "another program on the host (pid 123 (python3)) holds port 5432/tcp on every "
              "address (it listens on *:5432); loophole cannot serve 5432 for this container");
    CHECK(reg_port_held_everywhere(&r, "h1", 8080, CTR_TCP, NULL));
    CHECK_STR(port_of(&r, "web", 8080, CTR_TCP)->problem,
              "another program on the host holds port 8080/tcp on every address (it listens on "
              "*:8080); loophole cannot serve 8080 for this container");
    CHECK(!reg_port_held_everywhere(&r, "h1", 9999, CTR_TCP, NULL));
    CHECK(!reg_port_held_everywhere(&r, "nope", 8080, CTR_TCP, NULL));
    reg_apply_end(&r);
    /* The next apply tries again: the planned problem is back. */
    reg_apply_begin(&r, 20);
    CHECK(!port_of(&r, "web", 8080, CTR_TCP)->held);
    CHECK_STR(port_of(&r, "web", 8080, CTR_TCP)->problem, netproblem);
    CHECK_STR(port_of(&r, "web", 5432, CTR_TCP)->problem, netproblem);
    CHECK_INT(port_of(&r, "web", 5432, CTR_TCP)->plan, REG_PORT_DIRECT);
    reg_apply_end(&r);
    /* A published port held on one address still moves the container. */
    reg_apply_begin(&r, 30);
    reg_decide_round(&r, false);
    CHECK(reg_port_held(&r, "h1", 5432, CTR_TCP, "127.0.0.2:5432/tcp", 30));
    CHECK(e->addr != addr);
    reg_apply_end(&r);
    reg_free(&r);
}

TEST_SETUP()
{
    log_set_level(LOG_ERROR);
}

/* ---- Issue 14: named leases, bound addresses, one address per project ---- */

static container *mk_bound(const char *id, const char *name, int64_t started, const char *host_ip,
                           uint16_t port, uint16_t host_port)
{
    container *c = mk(id, name, started, 0);
    snprintf(c->ports[0].host_ip, sizeof(c->ports[0].host_ip), "%s", host_ip);
    c->ports[0].port = port;
    c->ports[0].host_port = host_port;
    return c;
}

static const reg_port *pport(const reg_entry *e, uint16_t port)
{
    for (size_t i = 0; e && i < e->nports; i++)
        if (e->ports[i].port == port)
            return &e->ports[i];
    return NULL;
}

TEST(lease_add_idempotent_and_resolves)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    reg_update(&r, mk("aaaa", "pg", 1000, 1), 1);
    const reg_lease *l = NULL;
    bool created = false;
    char err[256] = "";
    CHECK_INT(reg_lease_add(&r, "Sandbox_1", 0, 10, &l, &created, err, sizeof(err)), 0);
    REQUIRE(l != NULL);
    CHECK(created);
    CHECK_STR(l->name, "sandbox-1");
    CHECK_STR(l->dns, "sandbox-1.loop.test");
    CHECK_INT(l->addr, ip("127.0.0.3"));
    CHECK_INT(lookup(&r, "sandbox-1.loop.test"), ip("127.0.0.3"));
    uint32_t a = 0;
    CHECK_INT(reg_resolve_name(&r, "sandbox-1", &a), 0);
    CHECK_INT(a, ip("127.0.0.3"));
    /* Again, with or without the same address, or the DNS name: the same. */
    CHECK_INT(reg_lease_add(&r, "sandbox-1", 0, 11, &l, &created, err, sizeof(err)), 0);
    CHECK(!created);
    CHECK_INT(l->addr, ip("127.0.0.3"));
    CHECK_INT(reg_lease_add(&r, "sandbox-1.loop.test", ip("127.0.0.3"), 11, &l, &created, err,
                            sizeof(err)),
              0);
    CHECK(!created);
    /* Another address for an existing name: refused. */
    CHECK_INT(reg_lease_add(&r, "sandbox-1", ip("127.0.0.9"), 12, &l, &created, err, sizeof(err)),
              -EEXIST);
    CHECK(strstr(err, "127.0.0.3") != NULL);
    /* Aliases the machine should have include the lease's; they stay at stop. */
    size_t n = 0;
    uint32_t *v = reg_alias_addresses(&r, &n);
    CHECK_INT(n, 2);
    free(v);
    v = reg_kept_addresses(&r, &n);
    CHECK_INT(n, 1);
    CHECK_INT(n ? v[0] : 0, ip("127.0.0.3"));
    free(v);
    uint32_t gone = 0;
    CHECK_INT(reg_lease_remove(&r, "SANDBOX-1", 20, &gone), 0);
    CHECK_INT(gone, ip("127.0.0.3"));
    CHECK_INT(lookup(&r, "sandbox-1.loop.test"), 0);
    CHECK_INT(reg_lease_remove(&r, "sandbox-1", 21, &gone), -ENOENT);
    reg_free(&r);
}

TEST(lease_refusals)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.4"));
    reg_update(&r, mk("aaaa", "pg", 1000, 1), 1);
    const reg_lease *l = NULL;
    bool created = false;
    char err[256] = "";
    CHECK_INT(reg_lease_add(&r, "ns", 0, 2, &l, &created, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "reserved") != NULL);
    CHECK_INT(reg_lease_add(&r, "___", 0, 2, &l, &created, err, sizeof(err)), -EINVAL);
    CHECK_INT(reg_lease_add(&r, "pg", 0, 2, &l, &created, err, sizeof(err)), -EBUSY);
    CHECK(strstr(err, "running container pg") != NULL);
    CHECK_INT(reg_lease_add(&r, "x", ip("127.0.1.9"), 2, &l, &created, err, sizeof(err)), -EDOM);
    CHECK(strstr(err, "outside the address pool 127.0.0.2-127.0.0.4") != NULL);
    CHECK_INT(reg_lease_add(&r, "x", ip("127.0.0.2"), 2, &l, &created, err, sizeof(err)),
              -EADDRINUSE);
    CHECK(strstr(err, "container pg") != NULL);
    CHECK_INT(reg_lease_add(&r, "a", 0, 2, &l, &created, err, sizeof(err)), 0);
    CHECK_INT(reg_lease_add(&r, "b", ip("127.0.0.3"), 2, &l, &created, err, sizeof(err)),
              -EADDRINUSE);
    CHECK(strstr(err, "leased to a") != NULL);
    CHECK_INT(reg_lease_add(&r, "b", 0, 2, &l, &created, err, sizeof(err)), 0);
    /* Three addresses, three holders: full. */
    CHECK_INT(reg_lease_add(&r, "c", 0, 2, &l, &created, err, sizeof(err)), -ENOSPC);
    CHECK(strstr(err, "127.0.0.2-127.0.0.4 (3 addresses) is full") != NULL);
    reg_free(&r);
}

/* A lease is never reclaimed for a container, and its name beats a
 * container that derives or claims it later. */
TEST(lease_survives_flood_and_keeps_its_name)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.4"));
    const reg_lease *l = NULL;
    bool created = false;
    char err[256] = "";
    CHECK_INT(reg_lease_add(&r, "vm", 0, 1, &l, &created, err, sizeof(err)), 0);
    CHECK_INT(l->addr, ip("127.0.0.2"));
    char id[8], name[16];
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "c%03d", i);
        snprintf(name, sizeof(name), "c%d", i);
        reg_update(&r, mk(id, name, 100 + i, 1), 2 + i);
    }
    CHECK_INT(r.exhausted, 2);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        const reg_entry *e = reg_find(&r, name);
        CHECK(e && (!e->has_addr || e->addr != ip("127.0.0.2")));
    }
    /* Stop them all and start others: still not the lease's address. */
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof(id), "c%03d", i);
        reg_remove(&r, id, 20 + i);
    }
    container *vm = mk("dddd", "vm", 300, 1);
    add_label(vm, "loophole.names", "other");
    reg_update(&r, vm, 30);
    const reg_entry *e = reg_find(&r, "dddd");
    REQUIRE(e && e->has_addr);
    CHECK(e->addr != ip("127.0.0.2"));
    CHECK_INT(lookup(&r, "vm.loop.test"), ip("127.0.0.2"));
    CHECK_INT(e->nconflicts, 1);
    CHECK_STR(e->nconflicts ? e->conflicts[0] : "", "vm.loop.test");
    reg_free(&r);
}

TEST(lease_restore)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    CHECK_INT(reg_restore_lease(&r, "vm", ip("127.0.0.9"), 5), 0);
    CHECK_INT(reg_restore_lease(&r, "vm", ip("127.0.0.10"), 5), -EINVAL); /* name taken */
    CHECK_INT(reg_restore_lease(&r, "vm2", ip("127.0.0.9"), 5), -EINVAL); /* address taken */
    CHECK_INT(reg_restore_lease(&r, "x", ip("127.0.1.9"), 5), -EINVAL);   /* outside */
    CHECK_INT(reg_restore_lease(&r, "Bad_Name", ip("127.0.0.8"), 5), -EINVAL);
    CHECK_INT(reg_restore_lease(&r, "ns", ip("127.0.0.8"), 5), -EINVAL);
    /* A container lease restored on the same address afterwards is refused. */
    CHECK(alloc_restore(&r.pool, "name:pg", ip("127.0.0.9"), 1) < 0);
    reg_update(&r, mk("aaaa", "pg", 1000, 1), 10);
    CHECK_INT(reg_find(&r, "pg")->addr, ip("127.0.0.2"));
    CHECK_INT(lookup(&r, "vm.loop.test"), ip("127.0.0.9"));
    reg_free(&r);
}

TEST(bound_address_taken_and_moves_others)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    /* pg got 127.0.0.2 first; then db publishes on 127.0.0.2 itself. */
    reg_update(&r, mk("aaaa", "pg", 1000, 1), 1);
    CHECK_INT(reg_find(&r, "pg")->addr, ip("127.0.0.2"));
    reg_update(&r, mk_bound("bbbb", "db", 1001, "127.0.0.2", 5432, 5432), 2);
    const reg_entry *db = reg_find(&r, "db"), *pg = reg_find(&r, "pg");
    REQUIRE(db && pg);
    CHECK_INT(db->addr_kind, REG_ADDR_BOUND);
    CHECK_INT(db->addr, ip("127.0.0.2"));
    CHECK_INT(pport(db, 5432)->plan, REG_PORT_BOUND);
    CHECK(pg->addr != ip("127.0.0.2"));
    CHECK_INT(lookup(&r, "db.loop.test"), ip("127.0.0.2"));
    CHECK_INT(lookup(&r, "pg.loop.test"), pg->addr);
    /* Nobody else gets it while db runs, not even pg's old lease back. */
    reg_remove(&r, "aaaa", 3);
    reg_update(&r, mk("cccc", "pg", 1002, 1), 4);
    CHECK(reg_find(&r, "pg")->addr != ip("127.0.0.2"));
    const reg_lease *l = NULL;
    bool created = false;
    char err[256] = "";
    CHECK_INT(reg_lease_add(&r, "vm", ip("127.0.0.2"), 5, &l, &created, err, sizeof(err)),
              -EADDRINUSE);
    CHECK_INT(reg_lease_add(&r, "vm", 0, 5, &l, &created, err, sizeof(err)), 0);
    CHECK(l->addr != ip("127.0.0.2"));
    /* Outside the pool works the same, and is kept at stop. */
    reg_update(&r, mk_bound("dddd", "far", 1003, "127.0.9.1", 80, 80), 6);
    CHECK_INT(reg_find(&r, "far")->addr, ip("127.0.9.1"));
    size_t n = 0;
    uint32_t *v = reg_kept_addresses(&r, &n);
    CHECK_INT(n, 3); /* db, far, and the lease */
    free(v);
    reg_free(&r);
}

TEST(bound_ports_other_address_and_other_host_port)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    container *c = mk_bound("aaaa", "multi", 1000, "127.0.0.16", 5432, 5432);
    c->ports = xrealloc(c->ports, 4 * sizeof(ctr_port));
    memset(&c->ports[1], 0, 3 * sizeof(ctr_port));
    c->ports[1] = (ctr_port){.port = 6000, .host_port = 16000, .proto = CTR_TCP};
    snprintf(c->ports[1].host_ip, sizeof(c->ports[1].host_ip), "127.0.0.16");
    c->ports[2] = (ctr_port){.port = 7000, .host_port = 7000, .proto = CTR_TCP};
    snprintf(c->ports[2].host_ip, sizeof(c->ports[2].host_ip), "127.0.0.17");
    c->ports[3] = (ctr_port){.port = 8000, .host_port = 8000, .proto = CTR_TCP};
    snprintf(c->ports[3].host_ip, sizeof(c->ports[3].host_ip), "127.0.0.1");
    c->nports = 4;
    reg_update(&r, c, 1);
    const reg_entry *e = reg_find(&r, "multi");
    REQUIRE(e && e->has_addr);
    CHECK_INT(e->addr, ip("127.0.0.16"));
    CHECK_INT(e->nbound, 2);
    CHECK_INT(pport(e, 5432)->plan, REG_PORT_BOUND);
    /* Another host port on its own address: a listener on the original port. */
    CHECK_INT(pport(e, 6000)->plan, REG_PORT_MAPPED);
    CHECK_INT(pport(e, 7000)->plan, REG_PORT_BOUND);
    CHECK(strstr(pport(e, 7000)->problem, "127.0.0.17") != NULL);
    /* 127.0.0.1 is everyone's: served as usual. */
    CHECK_INT(pport(e, 8000)->plan, REG_PORT_MAPPED);
    reg_update(&r, mk("bbbb", "next", 1001, 1), 2);
    CHECK_INT(reg_find(&r, "next")->addr, ip("127.0.0.2"));
    reg_free(&r);
}

TEST(bound_on_a_lease_shares_it)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    const reg_lease *l = NULL;
    bool created = false;
    char err[256] = "";
    CHECK_INT(reg_lease_add(&r, "sandbox", 0, 1, &l, &created, err, sizeof(err)), 0);
    uint32_t la = l->addr;
    container *c = mk_bound("aaaa", "sbx-web", 1000, "127.0.0.2", 8080, 8080);
    add_label(c, "loophole.names", "sandbox");
    reg_update(&r, c, 2);
    const reg_entry *e = reg_find(&r, "sbx-web");
    REQUIRE(e && e->has_addr);
    CHECK_INT(e->addr, la);
    CHECK_INT(lookup(&r, "sandbox.loop.test"), la);
    CHECK_INT(lookup(&r, "sbx-web.loop.test"), la);
    CHECK_INT(e->nconflicts, 1);
    /* The lease keeps its address after the container stops, and the
     * address is not handed out meanwhile. */
    reg_update(&r, mk("bbbb", "other", 1001, 1), 3);
    CHECK(reg_find(&r, "other")->addr != la);
    reg_remove(&r, "aaaa", 4);
    CHECK_INT(lookup(&r, "sandbox.loop.test"), la);
    reg_free(&r);
}

TEST(project_mode_shares_one_address)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    r.address_per = REG_ADDRESS_PER_PROJECT;
    container *web = mk_compose("aaaa", "shop", "web", 1, 1000);
    web->ports[0].port = 3000;
    container *db = mk_compose("bbbb", "shop", "db", 1, 1001);
    db->ports[0].port = 5432;
    container *solo = mk_compose("cccc", "shop", "cache", 1, 1002);
    solo->ports[0].port = 6379;
    add_label(solo, "loophole.address", "container");
    reg_update(&r, web, 1);
    reg_update(&r, db, 2);
    reg_update(&r, solo, 3);
    reg_update(&r, mk("dddd", "alone", 1003, 1), 4);
    const reg_entry *w = reg_find(&r, "aaaa"), *d = reg_find(&r, "bbbb"), *s = reg_find(&r, "cccc"),
                    *a = reg_find(&r, "alone");
    REQUIRE(w && d && s && a);
    CHECK_INT(w->addr_kind, REG_ADDR_PROJECT);
    CHECK_INT(w->addr, d->addr);
    CHECK_INT(s->addr_kind, REG_ADDR_CONTAINER);
    CHECK(s->addr != w->addr);
    CHECK(a->addr != w->addr && a->addr != s->addr);
    CHECK_INT(lookup(&r, "shop.loop.test"), w->addr);
    CHECK_INT(lookup(&r, "web.shop.loop.test"), w->addr);
    CHECK_INT(lookup(&r, "db-1.shop.loop.test"), w->addr);
    CHECK_INT(lookup(&r, "cache.shop.loop.test"), s->addr);
    CHECK_INT(pport(w, 3000)->plan, REG_PORT_MAPPED);
    CHECK_INT(pport(d, 5432)->plan, REG_PORT_MAPPED);
    CHECK_INT(w->nconflicts + d->nconflicts, 0);
    /* The project's address stays while one of them runs. */
    uint32_t pa = w->addr;
    reg_remove(&r, "aaaa", 5);
    CHECK_INT(reg_find(&r, "bbbb")->addr, pa);
    CHECK_INT(lookup(&r, "shop.loop.test"), pa);
    const alloc_lease *pl = alloc_find(&r.pool, "project:shop");
    REQUIRE(pl != NULL);
    CHECK(pl->active);
    reg_remove(&r, "bbbb", 6);
    CHECK(!alloc_find(&r.pool, "project:shop")->active);
    /* Back again: the same address (the lease key is the project). */
    reg_update(&r, mk_compose("eeee", "shop", "web", 1, 2000), 7);
    CHECK_INT(reg_find(&r, "eeee")->addr, pa);
    reg_free(&r);
}

TEST(project_port_clash_first_started_keeps_it)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    container *a = mk_compose("aaaa", "shop", "api", 1, 1000);
    add_label(a, "loophole.address", "project");
    container *b = mk_compose("bbbb", "shop", "admin", 1, 900);
    add_label(b, "loophole.address", "project");
    reg_update(&r, a, 1);
    reg_update(&r, b, 2);
    const reg_entry *ea = reg_find(&r, "aaaa"), *eb = reg_find(&r, "bbbb");
    REQUIRE(ea && eb);
    CHECK_INT(ea->addr, eb->addr);
    /* Both want 80/tcp: admin started first (900). */
    CHECK_INT(pport(eb, 80)->plan, REG_PORT_MAPPED);
    CHECK_INT(pport(ea, 80)->plan, REG_PORT_NONE);
    CHECK(strstr(pport(ea, 80)->problem, "shop-admin-1") != NULL);
    CHECK(lookup(&r, "api-1.shop.loop.test") == ea->addr);
    /* When admin goes, api gets it. */
    reg_remove(&r, "bbbb", 3);
    CHECK_INT(pport(reg_find(&r, "aaaa"), 80)->plan, REG_PORT_MAPPED);
    CHECK_STR(pport(reg_find(&r, "aaaa"), 80)->problem, "");
    reg_free(&r);
}

/* Review regressions: a project member's update keeps the project's
 * address even with a waiting container; a container displaced with no
 * address free lets go of its lease; a skipped container's own address is
 * taken all the same. */
TEST(project_update_keeps_address)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.3"));
    r.address_per = REG_ADDRESS_PER_PROJECT;
    reg_update(&r, mk_compose("aaaa", "shop", "web", 1, 2000), 1);
    reg_update(&r, mk("bbbb", "x", 2001, 1), 2);
    reg_update(&r, mk("cccc", "waiting", 1000, 1), 3); /* started earlier, no address left */
    CHECK(!reg_find(&r, "waiting")->has_addr);
    uint32_t pa = reg_find(&r, "aaaa")->addr;
    reg_update(&r, mk_compose("aaaa", "shop", "web", 1, 2000), 4);
    CHECK(reg_find(&r, "aaaa")->has_addr);
    CHECK_INT(reg_find(&r, "aaaa")->addr, pa);
    CHECK(!reg_find(&r, "waiting")->has_addr);
    /* Two projects that sanitise alike keep two addresses. */
    reg_free(&r);
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    r.address_per = REG_ADDRESS_PER_PROJECT;
    reg_update(&r, mk_compose("dddd", "my_app", "web", 1, 100), 1);
    reg_update(&r, mk_compose("eeee", "my-app", "db", 1, 101), 2);
    CHECK(reg_find(&r, "dddd")->addr != reg_find(&r, "eeee")->addr);
    reg_free(&r);
}

TEST(displaced_without_room_releases)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.3"));
    reg_update(&r, mk("aaaa", "pg", 1000, 1), 1);
    reg_update(&r, mk("bbbb", "x", 1001, 1), 2);
    reg_update(&r, mk_bound("cccc", "db", 1002, "127.0.0.2", 5432, 5432), 3);
    CHECK(!reg_find(&r, "pg")->has_addr);
    reg_remove(&r, "aaaa", 4);
    reg_remove(&r, "cccc", 5);
    reg_update(&r, mk("dddd", "new", 1003, 1), 6);
    CHECK(reg_find(&r, "new")->has_addr);
    CHECK_INT(reg_find(&r, "new")->addr, ip("127.0.0.2"));
    reg_free(&r);
}

TEST(skipped_container_address_taken)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    container *c = mk_bound("aaaa", "off", 1000, "127.0.0.2", 5432, 5432);
    add_label(c, "loophole.enable", "false");
    reg_update(&r, c, 1);
    reg_update(&r, mk("bbbb", "web", 1001, 1), 2);
    CHECK(reg_find(&r, "web")->addr != ip("127.0.0.2"));
    const reg_lease *l = NULL;
    bool created = false;
    char err[256] = "";
    CHECK_INT(reg_lease_add(&r, "vm", ip("127.0.0.2"), 3, &l, &created, err, sizeof(err)),
              -EADDRINUSE);
    CHECK(strstr(err, "container off") != NULL);
    /* And the pool is checked before the name: outside is 400 whatever the name. */
    CHECK_INT(reg_lease_add(&r, "web", ip("10.0.0.1"), 3, &l, &created, err, sizeof(err)), -EDOM);
    reg_free(&r);
}

/* Issue 15, name hijack: a name a container derives (its container name,
 * compose replica and service names) always beats a label's claim, whoever
 * started first; nobody takes ns.<domain>. */
TEST(derived_names_beat_labels)
{
    registry r;
    reg_init(&r, "loop.test", ip("127.0.0.2"), ip("127.0.0.20"));
    /* An older container claims another project's service and replica names. */
    container *x = mk("xxxx", "intruder", 100, 1);
    add_label(x, "loophole.names", "web.shop,web-1.shop,pg,ns");
    reg_update(&r, x, 1);
    const reg_entry *ex = reg_find(&r, "intruder");
    REQUIRE(ex != NULL);
    CHECK_INT(lookup(&r, "web.shop.loop.test"), ex->addr);
    CHECK_INT(lookup(&r, "ns.loop.test"), 0);
    CHECK(ex->nconflicts == 1 && strcmp(ex->conflicts[0], "ns.loop.test") == 0);
    /* The project's container starts later and takes its own names back. */
    reg_update(&r, mk_compose("aaaa", "shop", "web", 1, 200), 2);
    reg_update(&r, mk("bbbb", "pg", 300, 1), 3);
    const reg_entry *w = reg_find(&r, "aaaa"), *pg = reg_find(&r, "bbbb");
    ex = reg_find(&r, "intruder");
    REQUIRE(w && pg && ex);
    CHECK_INT(lookup(&r, "web.shop.loop.test"), w->addr);
    CHECK_INT(lookup(&r, "web-1.shop.loop.test"), w->addr);
    CHECK_INT(lookup(&r, "pg.loop.test"), pg->addr);
    CHECK_INT(ex->nconflicts, 4);
    CHECK_INT(w->nconflicts + pg->nconflicts, 0);
    /* pg recreated (new id, started later than the intruder): still pg's. */
    reg_remove(&r, "bbbb", 4);
    CHECK_INT(lookup(&r, "pg.loop.test"), reg_find(&r, "intruder")->addr);
    reg_update(&r, mk("cccc", "pg", 400, 1), 5);
    CHECK_INT(lookup(&r, "pg.loop.test"), reg_find(&r, "cccc")->addr);
    /* A container named ns gets no ns.<domain> either. */
    reg_update(&r, mk("dddd", "ns", 500, 1), 6);
    CHECK_INT(lookup(&r, "ns.loop.test"), 0);
    reg_free(&r);
}
