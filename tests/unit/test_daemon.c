/* The daemon's policy (daemon.c, view.c) with a fake port table: moves after
 * EADDRINUSE and their order against the aliases, giving up after the move
 * limit, shared ports, the problems list, the Kafka flag and the /v1/events
 * added/changed/removed diff. The registry, the DNS zone, the alias set and
 * the state file are the real ones. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_gen.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "daemon.h"
#include "fake_ports.h"
#include "hostports.h"
#include "leases.h"
#include "labels.h"
#include "kafka_map.h"
#include "log.h"
#include "state.h"
#include "test.h"

static uint32_t ip(const char *s)
{
    uint32_t a = 0;
    ip4_parse(s, &a);
    return a;
}

typedef struct env {
    daemon_ctx d;
    fake_backend f;
    char dir[64];
    char events[16][16]; /* event types in order */
    char *event_json[16];
    size_t nevents;
} env;

static env *current; /* for the fake alias calls, which take no user data */

static int fake_alias_add(uint32_t a, int *existed)
{
    *existed = 0;
    fake_note(&current->f, "alias+", a, 0);
    return 0;
}

static int fake_alias_del(uint32_t a)
{
    fake_note(&current->f, "alias-", a, 0);
    return 0;
}

/* Leftovers from a state file are taken as still on the interface. */
static int fake_alias_present(uint32_t a)
{
    (void)a;
    return 1;
}

static void on_publish(void *ud, const char *type, const char *json)
{
    env *x = ud;
    if (x->nevents == ARRAY_SIZE(x->events))
        return;
    snprintf(x->events[x->nevents], sizeof(x->events[0]), "%s", type);
    x->event_json[x->nevents++] = xstrdup(json);
}

static bool no_wildcard_listener(uint16_t port, int proto)
{
    (void)port;
    (void)proto;
    return false;
}

static void env_init(env *x, const char *first, const char *last)
{
    memset(x, 0, sizeof(*x));
    current = x;
    snprintf(x->dir, sizeof(x->dir), "/tmp/loophole-test-daemon-XXXXXX");
    if (mkdtemp(x->dir) == NULL)
        abort();
    x->d.cfg.state_dir = x->dir;
    x->d.cfg.domain = "loop.test";
    x->d.cfg.dns_listen = "127.0.0.1:15353";
    x->d.cfg.resolver = "off";
    x->d.rkind = RESOLVER_NONE;
    reg_init(&x->d.reg, "loop.test", ip(first), ip(last));
    x->d.reg.share_wildcard = true;
    alias_set_init(&x->d.aliases, ALIAS_OFF);
    x->d.aliases.active = true; /* as on macOS, where every address needs one */
    x->d.aliases.add = fake_alias_add;
    x->d.aliases.del = fake_alias_del;
    x->d.aliases.present = fake_alias_present;
    ports_backend be;
    fake_backend_init(&x->f, &be);
    daemon_ports_init(&x->d, &be);
    x->d.zone = dns_zone_new("loop.test", 5);
    x->d.publish = on_publish;
    x->d.publish_ud = x;
    x->d.wildcard_listener = no_wildcard_listener;
}

static void env_clear_events(env *x)
{
    for (size_t i = 0; i < x->nevents; i++)
        free(x->event_json[i]);
    x->nevents = 0;
}

static void env_free(env *x)
{
    ports_free(x->d.ports);
    hp_free(&x->d);
    CHECK_INT(x->f.nopen, 0);
    reg_free(&x->d.reg);
    view_free(&x->d);
    alias_set_free(&x->d.aliases);
    free(x->d.pending_aliases);
    dns_zone_free(x->d.zone);
    free(x->d.last_state);
    env_clear_events(x);
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", x->dir, STATE_FILE);
    unlink(path);
    rmdir(x->dir);
}

static void add_port(container *c, uint16_t port, int proto, const char *host_ip,
                     uint16_t host_port)
{
    c->ports = xrealloc(c->ports, (c->nports + 1) * sizeof(ctr_port));
    ctr_port *p = &c->ports[c->nports++];
    memset(p, 0, sizeof(*p));
    p->port = port;
    p->proto = proto;
    p->host_port = host_port;
    snprintf(p->host_ip, sizeof(p->host_ip), "%s", host_ip);
}

static container *mk(const char *id, const char *name, int64_t started)
{
    container *c = container_new();
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->name = xstrdup(name);
    c->running = true;
    c->started_at = started;
    return c;
}

static void add_label(container *c, const char *k, const char *v)
{
    c->labels = xrealloc(c->labels, (c->nlabels + 1) * sizeof(ctr_label));
    c->labels[c->nlabels].key = xstrdup(k);
    c->labels[c->nlabels].value = xstrdup(v);
    c->nlabels++;
}

/* The JSON of one container as `loophole ls --json` shows it, or of status. */
static char *json_of(env *x, const char *key)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (key)
        view_container(&x->d, reg_find(&x->d.reg, key), g);
    else
        view_status(&x->d, g);
    const unsigned char *out;
    size_t len;
    yajl_gen_get_buf(g, &out, &len);
    char *s = xstrndup((const char *)out, len);
    yajl_gen_free(g);
    return s;
}

static bool json_has(env *x, const char *key, const char *needle)
{
    char *s = json_of(x, key);
    bool ok = strstr(s, needle) != NULL;
    if (!ok)
        fprintf(stderr, "  %s not in %s\n", needle, s);
    free(s);
    return ok;
}

static uint32_t zone_addr(env *x, const char *name)
{
    uint32_t a = 0;
    dns_zone_lookup(x->d.zone, name, &a);
    return a;
}

TEST(move_after_eaddrinuse)
{
    env x;
    env_init(&x, "127.0.0.2", "127.0.0.20");
    /* Another program holds 127.0.0.2:5432 (only that address). */
    x.f.held[0].addr = ip("127.0.0.2");
    x.f.held[0].port = 5432;
    x.f.nheld = 1;
    container *c = mk("aaaa", "pg", 1000);
    add_port(c, 5432, CTR_TCP, "0.0.0.0", 32768);
    add_port(c, 8080, CTR_TCP, "127.0.0.1", 32769);
    daemon_docker_update(&x.d, c);
    reg_entry *e = reg_find(&x.d.reg, "pg");
    REQUIRE(e != NULL);
    CHECK_INT(e->addr, ip("127.0.0.3"));
    CHECK_INT(e->moves, 1);
    CHECK(fake_find(&x.f, ip("127.0.0.3"), 5432) != NULL);
    CHECK(fake_find(&x.f, ip("127.0.0.3"), 8080) != NULL);
    CHECK(fake_find(&x.f, ip("127.0.0.2"), 8080) == NULL);
    /* The new address got its alias before anything bound it, and the old
     * one went away; DNS points at the new address only once it listens. */
    const char *alias3 = strstr(x.f.log, "alias+ 127.0.0.3");
    const char *listen3 = strstr(x.f.log, "listen 127.0.0.3:5432");
    CHECK(alias3 != NULL && listen3 != NULL && alias3 < listen3);
    CHECK(strstr(x.f.log, "alias- 127.0.0.2") != NULL);
    CHECK_INT(zone_addr(&x, "pg.loop.test"), ip("127.0.0.3"));
    CHECK(json_has(&x, "pg", "\"ip\":\"127.0.0.3\""));
    CHECK(json_has(&x, "pg", "\"moves\":1"));
    CHECK(json_has(&x, "pg", "\"mode\":\"mapped\""));
    CHECK(json_has(&x, NULL, "\"problems\":[\"Docker unreachable since start\"]}"));
    /* Watchers saw it once, at its final address. */
    REQUIRE(x.nevents == 1);
    CHECK_STR(x.events[0], "added");
    CHECK(strstr(x.event_json[0], "\"ip\":\"127.0.0.3\"") != NULL);
    /* The lease moved with it: the state file says .3. */
    state_data s = {0};
    char err[256];
    REQUIRE(state_load(x.dir, &s, err, sizeof(err)) == 0);
    REQUIRE(s.nleases == 1);
    CHECK_INT(s.leases[0].addr, ip("127.0.0.3"));
    CHECK_INT(s.naliases, 1);
    state_data_free(&s);
    /* Applying again (any Docker event) keeps it where it is. */
    unsigned listens = x.f.listens;
    daemon_apply(&x.d);
    CHECK_INT(x.f.listens, listens);
    CHECK_INT(e->moves, 1);
    env_free(&x);
}

TEST(held_everywhere)
{
    env x;
    env_init(&x, "127.0.0.2", "127.0.0.40");
    x.f.held[0].addr = 0; /* on every address */
    x.f.held[0].port = 5432;
    x.f.nheld = 1;
    container *c = mk("aaaa", "pg", 1000);
    add_port(c, 5432, CTR_TCP, "0.0.0.0", 32768);
    add_port(c, 6379, CTR_TCP, "0.0.0.0", 32769);
    daemon_docker_update(&x.d, c);
    reg_entry *e = reg_find(&x.d.reg, "pg");
    REQUIRE(e != NULL);
    CHECK_INT(e->moves, REG_MAX_MOVES);
    CHECK_INT(e->addr, ip("127.0.0.2") + REG_MAX_MOVES);
    /* Its other port is served where it ended up; the held one says why. */
    CHECK(fake_find(&x.f, e->addr, 6379) != NULL);
    CHECK(json_has(&x, "pg",
                   "is held by another program and no other address was free after 8 moves"));
    CHECK(json_has(&x, NULL, "\"pg: 127.0.0.10:5432/tcp is held by another program"));
    /* Another container's start tries pg again where it is: no walking the
     * pool, no closing its served port (which would cut its connections). */
    unsigned closes = x.f.closes;
    size_t blocked = x.d.reg.pool.nblocked;
    uint32_t at = e->addr;
    container *o = mk("bbbb", "other", 2000);
    add_port(o, 80, CTR_TCP, "0.0.0.0", 32770);
    daemon_docker_update(&x.d, o);
    e = reg_find(&x.d.reg, "pg");
    CHECK_INT(e->moves, REG_MAX_MOVES);
    CHECK_INT(e->addr, at);
    CHECK_INT(x.f.closes, closes);
    CHECK_INT(x.d.reg.pool.nblocked, blocked);
    CHECK(json_has(&x, "pg", "no other address was free after 8 moves"));
    /* Once the other program lets go, the port opens there and the problem
     * goes with it. */
    x.f.nheld = 0;
    daemon_apply(&x.d);
    CHECK(fake_find(&x.f, at, 5432) != NULL);
    CHECK_INT(e->moves, REG_MAX_MOVES);
    CHECK(!e->settled);
    CHECK(json_has(&x, NULL, "\"problems\":[\"Docker unreachable since start\"]}"));
    /* The addresses it walked away from come back to the pool after a
     * while, so the pool does not shrink by one per move for good. */
    CHECK_INT(x.d.reg.pool.nblocked, REG_MAX_MOVES);
    reg_apply_begin(&x.d.reg, now_ms() + REG_BLOCK_MS / 2);
    CHECK_INT(x.d.reg.pool.nblocked, REG_MAX_MOVES);
    reg_apply_begin(&x.d.reg, now_ms() + REG_BLOCK_MS);
    CHECK_INT(x.d.reg.pool.nblocked, 0);
    CHECK_INT(x.d.reg.nblocks, 0);
    env_free(&x);
}

TEST(pool_too_small_to_move)
{
    env x;
    env_init(&x, "127.0.0.2", "127.0.0.2");
    x.f.held[0].port = 80;
    x.f.nheld = 1;
    container *c = mk("aaaa", "web", 1000);
    add_port(c, 80, CTR_TCP, "0.0.0.0", 32768);
    daemon_docker_update(&x.d, c);
    reg_entry *e = reg_find(&x.d.reg, "web");
    REQUIRE(e != NULL);
    CHECK_INT(e->moves, 0);
    CHECK_INT(e->addr, ip("127.0.0.2"));
    CHECK(json_has(&x, "web",
                   "127.0.0.2:80/tcp is held by another program and no other address "
                   "was free after 0 moves"));
    env_free(&x);
}

TEST(shared_ports)
{
    env x;
    env_init(&x, "127.0.0.2", "127.0.0.20");
    container *c = mk("aaaa", "pg", 1000);
    add_port(c, 5432, CTR_TCP, "0.0.0.0", 5432);   /* shared: Docker answers on 127/8 */
    add_port(c, 6379, CTR_TCP, "127.0.0.1", 6379); /* a specific address: proxied */
    add_port(c, 9000, CTR_TCP, "", 0);             /* exposed only */
    daemon_docker_update(&x.d, c);
    CHECK(fake_find(&x.f, ip("127.0.0.2"), 5432) == NULL);
    CHECK(fake_find(&x.f, ip("127.0.0.2"), 6379) != NULL);
    CHECK_INT(x.f.nopen, 1);
    CHECK(json_has(&x, "pg",
                   "{\"port\":5432,\"host_port\":5432,\"host_ip\":\"0.0.0.0\","
                   "\"proto\":\"tcp\",\"mode\":\"shared\""));
    CHECK(json_has(&x, "pg",
                   "{\"port\":6379,\"host_port\":6379,\"host_ip\":\"127.0.0.1\","
                   "\"proto\":\"tcp\",\"mode\":\"mapped\""));
    /* Exposed only, and no address of its own to go to directly. */
    CHECK(json_has(&x, "pg",
                   "{\"port\":9000,\"host_port\":null,\"host_ip\":null,"
                   "\"proto\":\"tcp\",\"mode\":\"unreachable\""));
    CHECK(json_has(&x, NULL, "\"listeners\":1"));
    env_free(&x);
    /* Where Docker's listener does not cover 127/8 (macOS), it is proxied. */
    env_init(&x, "127.0.0.2", "127.0.0.20");
    x.d.reg.share_wildcard = false;
    c = mk("aaaa", "pg", 1000);
    add_port(c, 5432, CTR_TCP, "0.0.0.0", 5432);
    daemon_docker_update(&x.d, c);
    CHECK(fake_find(&x.f, ip("127.0.0.2"), 5432) != NULL);
    CHECK(json_has(&x, "pg", "\"mode\":\"mapped\""));
    env_free(&x);
}

TEST(problems_list)
{
    env x;
    env_init(&x, "127.0.0.2", "127.0.0.20");
    x.f.eacces_port = 80;
    container *a = mk("aaaa", "web", 1000);
    add_port(a, 80, CTR_TCP, "0.0.0.0", 32768);
    add_port(a, 81, CTR_TCP, "not-an-ip", 32769);
    add_label(a, "loophole.names", "shared-name");
    daemon_docker_update(&x.d, a);
    container *b = mk("bbbb", "other", 2000);
    add_port(b, 82, CTR_TCP, "0.0.0.0", 32770);
    add_label(b, "loophole.names", "shared-name");
    daemon_docker_update(&x.d, b);
    char *st = json_of(&x, NULL);
    CHECK(strstr(st, "\"web: 127.0.0.2:80/tcp: ports below 1024 need root or "
                     "CAP_NET_BIND_SERVICE\"") != NULL);
    CHECK(strstr(st, "\"web: port 81/tcp: Docker's host address \\\"not-an-ip\\\" is not "
                     "usable\"") != NULL);
    CHECK(strstr(st, "\"other: name shared-name.loop.test is held by another container\"") != NULL);
    free(st);
    CHECK(json_has(&x, "web", "\"problem\":\"127.0.0.2:80/tcp: ports below 1024"));
    /* Fixed: the problem goes at the next apply. */
    x.f.eacces_port = 0;
    daemon_apply(&x.d);
    st = json_of(&x, NULL);
    CHECK(strstr(st, "below 1024") == NULL);
    CHECK(strstr(st, "not-an-ip") != NULL);
    free(st);
    env_free(&x);
}

TEST(kafka_flag)
{
    env x;
    env_init(&x, "127.0.0.2", "127.0.0.20");
    container *c = mk("kkkk", "kafka", 1000);
    add_port(c, 9092, CTR_TCP, "0.0.0.0", 32768);
    add_port(c, 9093, CTR_TCP, "0.0.0.0", 32769);
    add_label(c, "loophole.kafka", "9093");
    daemon_docker_update(&x.d, c);
    fake_listener *sniff = fake_find(&x.f, ip("127.0.0.2"), 9092);
    fake_listener *forced = fake_find(&x.f, ip("127.0.0.2"), 9093);
    REQUIRE(sniff != NULL && forced != NULL);
    CHECK_INT(sniff->kafka.mode, PROXY_KAFKA_SNIFF);
    CHECK_INT(forced->kafka.mode, PROXY_KAFKA_FORCE);
    CHECK(json_has(&x, "kafka",
                   "{\"port\":9092,\"host_port\":32768,\"host_ip\":\"0.0.0.0\","
                   "\"proto\":\"tcp\",\"mode\":\"mapped\",\"kafka\":false"));
    CHECK(json_has(&x, "kafka",
                   "\"port\":9093,\"host_port\":32769,\"host_ip\":\"0.0.0.0\","
                   "\"proto\":\"tcp\",\"mode\":\"mapped\",\"kafka\":true"));
    env_clear_events(&x);
    /* The proxy sees Kafka on 9092: the registry flags it and watchers hear. */
    sniff->kafka.detected(sniff->kafka.ud, NULL);
    REQUIRE(x.nevents == 1);
    CHECK_STR(x.events[0], "changed");
    CHECK(strstr(x.event_json[0], "\"port\":9092,\"host_port\":32768,\"host_ip\":\"0.0.0.0\","
                                  "\"proto\":\"tcp\",\"mode\":\"mapped\",\"kafka\":true") != NULL);
    /* The broker mapping goes through the registry: the container's own port. */
    char nh[64] = "";
    int32_t np = 0;
    CHECK_INT(sniff->kafka.map(sniff->kafka.ud, NULL, 2, 1, "kafka", 5, 9093, nh, sizeof(nh), &np),
              1);
    CHECK_STR(nh, "127.0.0.2");
    CHECK_INT(np, 9093);
    /* The flag outlives a Docker update of the same container. */
    container *c2 = mk("kkkk", "kafka", 1000);
    add_port(c2, 9092, CTR_TCP, "0.0.0.0", 32768);
    add_port(c2, 9093, CTR_TCP, "0.0.0.0", 32769);
    add_label(c2, "loophole.kafka", "9093");
    daemon_docker_update(&x.d, c2);
    CHECK(json_has(&x, "kafka",
                   "\"port\":9092,\"host_port\":32768,\"host_ip\":\"0.0.0.0\","
                   "\"proto\":\"tcp\",\"mode\":\"mapped\",\"kafka\":true"));
    /* A move reopens every listener at the new address with its hooks: 9093
     * changes mode (reopened), finds its port held and moves the container. */
    x.f.held[0].addr = ip("127.0.0.2");
    x.f.held[0].port = 9093;
    x.f.nheld = 1;
    env_clear_events(&x);
    container *c4 = mk("kkkk", "kafka", 1000);
    add_port(c4, 9092, CTR_TCP, "0.0.0.0", 32768);
    add_port(c4, 9093, CTR_TCP, "0.0.0.0", 32769);
    add_label(c4, "loophole.kafka", "9092");
    daemon_docker_update(&x.d, c4);
    reg_entry *e = reg_find(&x.d.reg, "kafka");
    REQUIRE(e != NULL);
    CHECK_INT(e->addr, ip("127.0.0.3"));
    REQUIRE(fake_find(&x.f, ip("127.0.0.3"), 9092) != NULL);
    REQUIRE(fake_find(&x.f, ip("127.0.0.3"), 9093) != NULL);
    CHECK_INT(fake_find(&x.f, ip("127.0.0.3"), 9092)->kafka.mode, PROXY_KAFKA_FORCE);
    CHECK_INT(fake_find(&x.f, ip("127.0.0.3"), 9093)->kafka.mode, PROXY_KAFKA_SNIFF);
    REQUIRE(x.nevents == 1);
    CHECK_STR(x.events[0], "changed");
    CHECK(strstr(x.event_json[0], "\"ip\":\"127.0.0.3\"") != NULL);
    x.f.nheld = 0;
    /* A shared port is Docker's listener: loophole rewrites nothing there,
     * so it is not shown as Kafka even when the label asks. */
    container *c5 = mk("kkkk", "kafka", 1000);
    add_port(c5, 9093, CTR_TCP, "0.0.0.0", 9093);
    add_label(c5, "loophole.kafka", "9093");
    daemon_docker_update(&x.d, c5);
    CHECK(json_has(&x, "kafka", "\"mode\":\"shared\",\"kafka\":false"));
    /* "off" turns it off, listener and flag. */
    container *c3 = mk("kkkk", "kafka", 1000);
    add_port(c3, 9092, CTR_TCP, "0.0.0.0", 32768);
    add_label(c3, "loophole.kafka", "off");
    daemon_docker_update(&x.d, c3);
    REQUIRE(fake_find(&x.f, ip("127.0.0.3"), 9092) != NULL);
    CHECK_INT(fake_find(&x.f, ip("127.0.0.3"), 9092)->kafka.mode, PROXY_KAFKA_OFF);
    CHECK(json_has(&x, "kafka", "\"kafka\":false"));
    env_free(&x);
}

TEST(events_diff)
{
    env x;
    env_init(&x, "127.0.0.2", "127.0.0.20");
    container *c = mk("aaaa", "pg", 1000);
    add_port(c, 5432, CTR_TCP, "0.0.0.0", 32768);
    daemon_docker_update(&x.d, c);
    REQUIRE(x.nevents == 1);
    CHECK_STR(x.events[0], "added");
    CHECK(strstr(x.event_json[0], "\"name\":\"pg.loop.test\"") != NULL);
    /* Nothing changed: nothing sent, nothing reopened, also for a Docker
     * update that says the same. */
    daemon_apply(&x.d);
    CHECK_INT(x.nevents, 1);
    c = mk("aaaa", "pg", 1000);
    add_port(c, 5432, CTR_TCP, "0.0.0.0", 32768);
    daemon_docker_update(&x.d, c);
    CHECK_INT(x.nevents, 1);
    CHECK_INT(x.f.listens, 1);
    CHECK_INT(x.f.closes, 0);
    /* A new mapped port: changed, and the listener retargeted, not reopened. */
    c = mk("aaaa", "pg", 1000);
    add_port(c, 5432, CTR_TCP, "0.0.0.0", 40000);
    unsigned listens = x.f.listens;
    daemon_docker_update(&x.d, c);
    REQUIRE(x.nevents == 2);
    CHECK_STR(x.events[1], "changed");
    CHECK(strstr(x.event_json[1], "\"host_port\":40000") != NULL);
    CHECK_INT(x.f.listens, listens);
    CHECK_INT(x.f.retargets, 1);
    /* A second container: added; the first unchanged. */
    container *b = mk("bbbb", "redis", 2000);
    add_port(b, 6379, CTR_TCP, "0.0.0.0", 32770);
    daemon_docker_update(&x.d, b);
    REQUIRE(x.nevents == 3);
    CHECK_STR(x.events[2], "added");
    CHECK(strstr(x.event_json[2], "redis") != NULL);
    /* Gone: removed, with its last shape, and its listener closed. */
    daemon_docker_gone(&x.d, "aaaa");
    REQUIRE(x.nevents == 4);
    CHECK_STR(x.events[3], "removed");
    CHECK(strstr(x.event_json[3], "\"name\":\"pg.loop.test\"") != NULL);
    CHECK(fake_find(&x.f, ip("127.0.0.2"), 5432) == NULL);
    CHECK_INT(zone_addr(&x, "pg.loop.test"), 0);
    /* A resync without it changes nothing more; one without redis removes it. */
    container *b2 = mk("bbbb", "redis", 2000);
    add_port(b2, 6379, CTR_TCP, "0.0.0.0", 32770);
    container *cs[] = {b2};
    daemon_docker_sync(&x.d, cs, 1);
    CHECK_INT(x.nevents, 4);
    daemon_docker_sync(&x.d, NULL, 0);
    REQUIRE(x.nevents == 5);
    CHECK_STR(x.events[4], "removed");
    CHECK_INT(x.f.nopen, 0);
    env_free(&x);
}

/* ---- The reverse direction (hostports.c) ---- */

static container *mk_hp(const char *id, const char *name, const char *host_ports)
{
    container *c = mk(id, name, 1000);
    c->pid = 4242;
    if (host_ports)
        add_label(c, LABEL_HOST_PORTS, host_ports);
    c->image_labels_known = true; /* the image carries no such label */
    return c;
}

static void add_net(container *c, const char *ip_s, const char *gw)
{
    c->nets = xrealloc(c->nets, (c->nnets + 1) * sizeof(ctr_net));
    ctr_net *n = &c->nets[c->nnets++];
    memset(n, 0, sizeof(*n));
    n->name = xstrdup("bridge");
    n->ip = xstrdup(ip_s);
    n->gateway = xstrdup(gw);
}

static port_key hp_key(const char *id, int role, int proto, uint16_t port)
{
    port_key k;
    memset(&k, 0, sizeof(k));
    snprintf(k.id, sizeof(k.id), "%s", id);
    k.role = (uint8_t)role;
    k.proto = (uint8_t)proto;
    k.port = port;
    return k;
}

/* "127.0.0.1:8000" or "[::1]:8000" of a dial answer, or "-ENOENT"/"-EPERM". */
static const char *dial_str(env *x, const port_key *k, unsigned attempt, const char *peer_ip,
                            char *out, size_t cap)
{
    struct sockaddr_in peer;
    memset(&peer, 0, sizeof(peer));
    peer.sin_family = AF_INET;
    inet_pton(AF_INET, peer_ip ? peer_ip : "127.0.0.1", &peer.sin_addr);
    struct sockaddr_storage ss;
    int rc = hp_dial(&x->d, k, attempt, (struct sockaddr *)&peer, &ss);
    if (rc == -ENOENT)
        return "-ENOENT";
    if (rc == -EPERM)
        return "-EPERM";
    if (rc < 0)
        return "error";
    char ip[64];
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        snprintf(out, cap, "%s:%u", ip, ntohs(a->sin_port));
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%u", ip, ntohs(a->sin6_port));
    }
    return out;
}

#define ID_APP "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
#define ID_WEB "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"

/* Where each connection goes: the host's 127.0.0.1 then [::1] (TCP only), a
 * loopback address as given, a name resolved when the connection comes
 * (so it follows the other container, and is refused while nobody has it). */
TEST(host_ports_dial)
{
    env x;
    env_init(&x, "127.0.0.2", "127.0.0.20");
    x.d.cfg.host_ports = CONFIG_HOST_PORTS_SIDECAR; /* no netns maker here */
    reg_update(&x.d.reg,
               mk_hp(ID_APP, "app",
                     "8000,15432:5432,7000:127.0.0.9:7001,6000:[::1]:6001,"
                     "5433:web.loop.test:5432,53/udp"),
               now_ms());
    container *w = mk_hp(ID_WEB, "web", NULL);
    add_port(w, 5432, CTR_TCP, "0.0.0.0", 32768);
    reg_update(&x.d.reg, w, now_ms());
    daemon_apply(&x.d);
    char b[80];
    port_key k = hp_key(ID_APP, PORT_ROLE_HOST, CTR_TCP, 8000);
    CHECK_STR(dial_str(&x, &k, 0, NULL, b, sizeof(b)), "127.0.0.1:8000");
    CHECK_STR(dial_str(&x, &k, 1, NULL, b, sizeof(b)), "[::1]:8000");
    CHECK_STR(dial_str(&x, &k, 2, NULL, b, sizeof(b)), "-ENOENT");
    k = hp_key(ID_APP, PORT_ROLE_HOST6, CTR_TCP, 15432);
    CHECK_STR(dial_str(&x, &k, 0, NULL, b, sizeof(b)), "127.0.0.1:5432");
    k = hp_key(ID_APP, PORT_ROLE_HOST, CTR_TCP, 7000);
    CHECK_STR(dial_str(&x, &k, 0, NULL, b, sizeof(b)), "127.0.0.9:7001");
    CHECK_STR(dial_str(&x, &k, 1, NULL, b, sizeof(b)), "-ENOENT");
    k = hp_key(ID_APP, PORT_ROLE_HOST, CTR_TCP, 6000);
    CHECK_STR(dial_str(&x, &k, 0, NULL, b, sizeof(b)), "[::1]:6001");
    k = hp_key(ID_APP, PORT_ROLE_HOST, CTR_UDP, 53);
    CHECK_STR(dial_str(&x, &k, 0, NULL, b, sizeof(b)), "127.0.0.1:53");
    CHECK_STR(dial_str(&x, &k, 1, NULL, b, sizeof(b)), "-ENOENT"); /* no refusal to go by */
    k = hp_key(ID_APP, PORT_ROLE_HOST, CTR_TCP, 9999);
    CHECK_STR(dial_str(&x, &k, 0, NULL, b, sizeof(b)), "-ENOENT"); /* not a host port */
    /* The name target follows web's address. */
    k = hp_key(ID_APP, PORT_ROLE_HOST, CTR_TCP, 5433);
    char want[40], ip[16];
    const reg_entry *we = reg_find(&x.d.reg, "web");
    REQUIRE(we != NULL && we->has_addr);
    snprintf(want, sizeof(want), "%s:5432", ip4_format(we->addr, ip));
    CHECK_STR(dial_str(&x, &k, 0, NULL, b, sizeof(b)), want);
    CHECK_STR(dial_str(&x, &k, 1, NULL, b, sizeof(b)), "-ENOENT");
    CHECK(reg_remove(&x.d.reg, ID_WEB, now_ms()));
    daemon_apply(&x.d);
    CHECK_STR(dial_str(&x, &k, 0, NULL, b, sizeof(b)), "-ENOENT");
    /* A container that is gone has nowhere to send anything. */
    CHECK(reg_remove(&x.d.reg, ID_APP, now_ms()));
    daemon_apply(&x.d);
    k = hp_key(ID_APP, PORT_ROLE_HOST, CTR_TCP, 8000);
    CHECK_STR(dial_str(&x, &k, 0, NULL, b, sizeof(b)), "-ENOENT");
    env_free(&x);
}

/* Sidecar mode on a native engine: a relay listener on the container
 * network's gateway (given to the table as a socket), which serves only the
 * container's own address; without a gateway, a problem that says so. */
TEST(host_ports_relay)
{
    env x;
    env_init(&x, "127.0.0.2", "127.0.0.20");
    x.d.cfg.host_ports = CONFIG_HOST_PORTS_SIDECAR;
    container *c = mk_hp(ID_APP, "app", "8000,53/udp");
    add_net(c, "127.0.0.77", "127.0.0.1"); /* a gateway this test may bind */
    reg_update(&x.d.reg, c, now_ms());
    daemon_apply(&x.d);
    const port_entry *pe = ports_find(x.d.ports, ID_APP, PORT_ROLE_RELAY, 8000, CTR_TCP);
    REQUIRE(pe != NULL);
    CHECK(pe->listener != NULL);
    CHECK(pe->dial);
    char ip[16];
    CHECK_STR(ip4_format(pe->addr, ip), "127.0.0.1");
    CHECK(ports_find(x.d.ports, ID_APP, PORT_ROLE_RELAY, 53, CTR_UDP) != NULL);
    CHECK(ports_find(x.d.ports, ID_APP, PORT_ROLE_HOST, 8000, CTR_TCP) == NULL);
    char b[80];
    port_key k = hp_key(ID_APP, PORT_ROLE_RELAY, CTR_TCP, 8000);
    CHECK_STR(dial_str(&x, &k, 0, "127.0.0.77", b, sizeof(b)), "127.0.0.1:8000");
    CHECK_STR(dial_str(&x, &k, 0, "127.0.0.78", b, sizeof(b)), "-EPERM");
    /* A second apply keeps the listener (no new socket, no cut connections). */
    size_t listens = x.f.listens;
    daemon_apply(&x.d);
    CHECK_INT(x.f.listens, listens);
    CHECK(json_has(&x, "app", "\"mode\":\"sidecar\""));
    CHECK(json_has(&x, NULL, "\"host_ports\":{\"mode\":null"));

    /* No network with a gateway (e.g. --network none): the port says why. */
    container *n = mk_hp(ID_WEB, "lonely", "9000");
    reg_update(&x.d.reg, n, now_ms());
    daemon_apply(&x.d);
    CHECK(json_has(&x, "lonely", "no network with a gateway"));
    CHECK(json_has(&x, NULL, "lonely: host port 9000: the container has no network"));
    env_free(&x);
}

/* netns mode where the daemon cannot use namespaces: each port says why;
 * --network host: the registry's problem, nothing planned. */
TEST(host_ports_netns_unavailable)
{
    env x;
    env_init(&x, "127.0.0.2", "127.0.0.20");
    x.d.cfg.host_ports = CONFIG_HOST_PORTS_NETNS;
    snprintf(x.d.netns_why, sizeof(x.d.netns_why), "loopholed lacks CAP_SYS_ADMIN");
    reg_update(&x.d.reg, mk_hp(ID_APP, "app", "8000"), now_ms());
    container *h = mk_hp(ID_WEB, "hostnet", "8000");
    h->network_mode = xstrdup("host");
    reg_update(&x.d.reg, h, now_ms());
    daemon_apply(&x.d);
    const port_entry *pe = ports_find(x.d.ports, ID_APP, PORT_ROLE_HOST, 8000, CTR_TCP);
    REQUIRE(pe != NULL);
    CHECK(pe->listener == NULL);
    CHECK_STR(pe->problem, "loopholed lacks CAP_SYS_ADMIN");
    CHECK(json_has(&x, "app", "\"problem\":\"loopholed lacks CAP_SYS_ADMIN\""));
    CHECK(ports_find(x.d.ports, ID_WEB, PORT_ROLE_HOST, 8000, CTR_TCP) == NULL);
    CHECK(json_has(&x, "hostnet", "its localhost is the host's already"));
    /* No pid: nothing to enter. */
    container *np = mk_hp(ID_APP, "app", "8000");
    np->pid = 0;
    reg_update(&x.d.reg, np, now_ms());
    x.d.netns_ok = true;
    daemon_apply(&x.d);
    CHECK(json_has(&x, "app", "Docker reports no process"));
    env_free(&x);
}

static int add_body(env *x, const char *key, const char *body, char *err, size_t errlen)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    int rc = hp_prov_add(&x->d, key, body, strlen(body), g, err, errlen);
    yajl_gen_free(g);
    return rc;
}

/* Run-time exposures through the control API's provider: the body forms,
 * the refusals, removal, and the state file keeping them across a restart. */
TEST(host_ports_expose)
{
    env x;
    env_init(&x, "127.0.0.2", "127.0.0.20");
    x.d.cfg.host_ports = CONFIG_HOST_PORTS_SIDECAR;
    reg_update(&x.d.reg, mk_hp(ID_APP, "app", "7000"), now_ms());
    daemon_apply(&x.d);
    char err[512];
    CHECK_INT(add_body(&x, "app", "{\"spec\": \"8000\"}", err, sizeof(err)), 0);
    CHECK_INT(add_body(&x, "app", "{\"spec\": \"8000:9000\"}", err, sizeof(err)), -EEXIST);
    CHECK_INT(add_body(&x, "app", "{\"spec\": \"7000\"}", err, sizeof(err)), -EEXIST);
    CHECK_INT(add_body(&x, "app",
                       "{\"port\": 5353, \"target\": \"127.0.0.1:53\", \"proto\": \"udp\"}", err,
                       sizeof(err)),
              0);
    CHECK_INT(add_body(&x, "app", "{\"spec\": \"8001:example.com:80\"}", err, sizeof(err)),
              -EINVAL);
    CHECK(strstr(err, "example.com") != NULL);
    CHECK_INT(add_body(&x, "app", "{\"port\": 0}", err, sizeof(err)), -EINVAL);
    CHECK_INT(add_body(&x, "app", "{\"port\": 80, \"proto\": \"sctp\"}", err, sizeof(err)),
              -EINVAL);
    CHECK_INT(add_body(&x, "app", "[1]", err, sizeof(err)), -EINVAL);
    CHECK_INT(add_body(&x, "app", "", err, sizeof(err)), -EINVAL);
    err[0] = '\0';
    CHECK_INT(add_body(&x, "nobody-here", "{\"spec\": \"1\"}", err, sizeof(err)), -ENOENT);
    CHECK(json_has(&x, "app",
                   "\"port\":8000,\"proto\":\"tcp\",\"target\":\"localhost:8000\","
                   "\"source\":\"api\""));
    CHECK(json_has(&x, "app", "\"port\":5353,\"proto\":\"udp\",\"target\":\"127.0.0.1:53\""));

    CHECK_INT(hp_prov_remove(&x.d, "app", "7000", NULL, err, sizeof(err)), -EPERM);
    CHECK(strstr(err, "label") != NULL);
    CHECK_INT(hp_prov_remove(&x.d, "app", "8000", "udp", err, sizeof(err)), -ENOENT);
    CHECK_INT(hp_prov_remove(&x.d, "app", "80x", NULL, err, sizeof(err)), -EINVAL);
    CHECK_INT(hp_prov_remove(&x.d, "app", "8000", "sctp", err, sizeof(err)), -EINVAL);
    CHECK_INT(hp_prov_remove(&x.d, "app", "5353", "udp", err, sizeof(err)), 0);
    /* A container loophole is told to leave alone gets none, and keeps none. */
    container *off = mk_hp(ID_WEB, "off", NULL);
    add_label(off, "loophole.enable", "false");
    reg_update(&x.d.reg, off, now_ms());
    CHECK_INT(add_body(&x, "off", "{\"spec\": \"8000\"}", err, sizeof(err)), -EEXIST);
    CHECK(strstr(err, "not served by loophole") != NULL);
    size_t nexp = 99;
    reg_exposures(&x.d.reg, &nexp);
    CHECK_INT(nexp, 1); /* app's 8000 only */
    CHECK(reg_remove(&x.d.reg, ID_WEB, now_ms()));

    /* The state file keeps the exposure under the container's key: a new
     * daemon on the same state gives it back to a container of that name. */
    env y;
    env_init(&y, "127.0.0.2", "127.0.0.20");
    char *dir = xstrdup(y.dir);
    rmdir(y.dir);
    snprintf(y.dir, sizeof(y.dir), "%s", x.dir);
    y.d.cfg.state_dir = y.dir;
    y.d.cfg.host_ports = CONFIG_HOST_PORTS_SIDECAR;
    daemon_load_state(&y.d);
    reg_update(&y.d.reg, mk_hp(ID_WEB, "app", NULL), now_ms()); /* recreated: a new id */
    daemon_apply(&y.d);
    CHECK(json_has(&y, "app", "\"port\":8000,\"proto\":\"tcp\",\"target\":\"localhost:8000\""));
    CHECK(!json_has(&y, "app", "5353"));
    free(dir);
    env_free(&y);
    env_free(&x);
}

TEST_SETUP()
{
    log_set_level(LOG_ERROR);
}

static int failing_alias_add(uint32_t a, int *existed)
{
    (void)a;
    *existed = 0;
    return -EPERM;
}

static char *gen_text(yajl_gen g)
{
    const unsigned char *out = NULL;
    size_t len = 0;
    yajl_gen_get_buf(g, &out, &len);
    char *s = xmalloc(len + 1);
    memcpy(s, out, len);
    s[len] = '\0';
    return s;
}

/* A lease's answer comes once its alias exists; an alias that cannot be
 * added keeps no lease; lease rm takes the alias away; the lease and its
 * name are in the state file and the zone. */
TEST(lease_alias_before_answer)
{
    env x;
    env_init(&x, "127.0.0.2", "127.0.0.20");
    static const char body[] = "{\"name\":\"sandbox-1\"}";
    char err[256] = "";
    bool created = false;
    yajl_gen g = yajl_gen_alloc(NULL);
    CHECK_INT(leases_prov_add(&x.d, body, strlen(body), g, &created, err, sizeof(err)), 0);
    CHECK(created);
    CHECK(strstr(x.f.log, "alias+ 127.0.0.2") != NULL);
    char *json = gen_text(g);
    CHECK(strstr(json, "\"ip\":\"127.0.0.2\"") != NULL);
    CHECK(strstr(json, "\"alias\":true") != NULL);
    CHECK(strstr(json, "\"dns\":\"sandbox-1.loop.test\"") != NULL);
    free(json);
    yajl_gen_free(g);
    CHECK(x.d.last_state &&
          strstr(x.d.last_state, "\"named_leases\":[{\"name\":\"sandbox-1\"") != NULL);
    /* Again: 200, the same address, nothing added twice. */
    g = yajl_gen_alloc(NULL);
    CHECK_INT(leases_prov_add(&x.d, body, strlen(body), g, &created, err, sizeof(err)), 0);
    CHECK(!created);
    yajl_gen_free(g);
    /* Bad bodies. */
    g = yajl_gen_alloc(NULL);
    static const char zero[] = "{\"name\":\"b\",\"ip\":\"0.0.0.0\"}";
    CHECK_INT(leases_prov_add(&x.d, zero, strlen(zero), g, &created, err, sizeof(err)), -EDOM);
    CHECK(strstr(err, "outside the address pool 127.0.0.2-127.0.0.20") != NULL);
    CHECK_INT(leases_prov_add(&x.d, "[]", 2, g, &created, err, sizeof(err)), -EINVAL);
    CHECK_INT(leases_prov_add(&x.d, "{}", 2, g, &created, err, sizeof(err)), -EINVAL);
    yajl_gen_free(g);
    /* An alias that cannot be added: 500, and no lease is kept. */
    x.d.aliases.add = failing_alias_add;
    static const char other[] = "{\"name\":\"vm\"}";
    g = yajl_gen_alloc(NULL);
    CHECK_INT(leases_prov_add(&x.d, other, strlen(other), g, &created, err, sizeof(err)), -EIO);
    CHECK(strstr(err, "the lease is not kept") != NULL);
    yajl_gen_free(g);
    CHECK(reg_lease_find(&x.d.reg, "vm") == NULL);
    x.d.aliases.add = fake_alias_add;
    CHECK_INT(leases_prov_remove(&x.d, "sandbox-1", err, sizeof(err)), 0);
    CHECK(strstr(x.f.log, "alias- 127.0.0.2") != NULL);
    CHECK_INT(leases_prov_remove(&x.d, "sandbox-1", err, sizeof(err)), -ENOENT);
    env_free(&x);
}

/* At start, before Docker's first report, the aliases the last run left
 * stay (one may be a running bound container's); named leases' are added
 * back; the first report settles the rest. */
TEST(aliases_kept_until_docker_reports)
{
    env x;
    env_init(&x, "127.0.0.2", "127.0.0.20");
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", x.dir, STATE_FILE);
    FILE *fp = fopen(path, "w");
    REQUIRE(fp != NULL);
    fputs("{\"version\":1,\"leases\":[],\"aliases\":[\"127.0.0.16\",\"127.0.0.9\"],"
          "\"named_leases\":[{\"name\":\"vm\",\"ip\":\"127.0.0.9\",\"created_at\":1},"
          "{\"name\":\"sb\",\"ip\":\"127.0.0.5\",\"created_at\":2}]}",
          fp);
    fclose(fp);
    daemon_load_state(&x.d);
    CHECK_INT(reg_lease_find(&x.d.reg, "vm") ? reg_lease_find(&x.d.reg, "vm")->addr : 0,
              ip("127.0.0.9"));
    daemon_apply(&x.d);
    CHECK(strstr(x.f.log, "alias+ 127.0.0.5") != NULL); /* re-added "after a reboot" */
    CHECK(strstr(x.f.log, "alias- 127.0.0.16") == NULL);
    CHECK(strstr(x.f.log, "alias- 127.0.0.9") == NULL);
    /* lease rm before Docker answers removes the lease's alias all the same. */
    char err[256];
    CHECK_INT(leases_prov_remove(&x.d, "sb", err, sizeof(err)), 0);
    CHECK(strstr(x.f.log, "alias- 127.0.0.5") != NULL);
    daemon_docker_sync(&x.d, NULL, 0);
    CHECK(strstr(x.f.log, "alias- 127.0.0.16") != NULL);
    CHECK(strstr(x.f.log, "alias- 127.0.0.9") == NULL);
    env_free(&x);
}
