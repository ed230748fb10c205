/* The broker mapping of the Kafka rewriter over a real registry. */
#include <stdint.h>
#include <string.h>

#include "kafka_map.h"
#include "test.h"
#include "util.h"

#define POOL_FIRST 0x7f004d02u /* 127.0.77.2 */
#define POOL_LAST 0x7f004d20u

static void add_label(container *c, const char *k, const char *v)
{
    c->labels = xrealloc(c->labels, (c->nlabels + 1) * sizeof(ctr_label));
    c->labels[c->nlabels].key = xstrdup(k);
    c->labels[c->nlabels].value = xstrdup(v);
    c->nlabels++;
}

static void add_port(container *c, uint16_t port, uint16_t host_port)
{
    c->ports = xrealloc(c->ports, (c->nports + 1) * sizeof(ctr_port));
    ctr_port *p = &c->ports[c->nports++];
    memset(p, 0, sizeof(*p));
    p->port = port;
    p->proto = CTR_TCP;
    if (host_port) {
        snprintf(p->host_ip, sizeof(p->host_ip), "0.0.0.0");
        p->host_port = host_port;
    }
}

static container *mk(const char *id, const char *name, const char *hostname, const char *ip,
                     const char *alias, int64_t started)
{
    container *c = container_new();
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->name = xstrdup(name);
    c->hostname = xstrdup(hostname);
    c->running = true;
    c->started_at = started;
    c->nets = xcalloc(1, sizeof(ctr_net));
    c->nnets = 1;
    c->nets[0].name = xstrdup("net");
    c->nets[0].ip = xstrdup(ip);
    if (alias) {
        c->nets[0].aliases = xcalloc(1, sizeof(char *));
        c->nets[0].aliases[0] = xstrdup(alias);
        c->nets[0].naliases = 1;
    }
    return c;
}

#define ID_A "aaaaaaaaaaaa0000000000000000000000000000000000000000000000000000"
#define ID_B "bbbbbbbbbbbb0000000000000000000000000000000000000000000000000000"
#define ID_C "cccccccccccc0000000000000000000000000000000000000000000000000000"
#define ID_D "dddddddddddd0000000000000000000000000000000000000000000000000000"

/* The port table's answer: every planned listener is open but C's 2181. */
static bool live(void *ud, const char *id, uint16_t port)
{
    (void)ud;
    return !(strcmp(id, ID_C) == 0 && port == 2181);
}

typedef struct fixture {
    registry r;
    reg_entry *a, *b, *c, *d;
} fixture;

/* A: ka / hka / 172.18.0.5 alias broker-a, 9092->32001 and 9094->32002
 *    proxied, 9095 exposed only.
 * B: kb / 172.18.0.6, 9092->32003 proxied, 29092->29092 shared.
 * C: compose service zk of project p, 2181->32009 without a listener.
 * D: kd / hkd, 9092->32004 proxied; A and D both carry the network alias
 *    "dup" (as replicas of one service would). */
static void fixture_init(fixture *f)
{
    reg_init(&f->r, "loop.test", POOL_FIRST, POOL_LAST);
    f->r.share_wildcard = true; /* 29092->29092 is shared, as on Linux */
    container *a = mk(ID_A, "ka", "hka", "172.18.0.5", "broker-a", 1);
    add_port(a, 9092, 32001);
    add_port(a, 9094, 32002);
    add_port(a, 9095, 0);
    container *b = mk(ID_B, "kb", "hkb", "172.18.0.6", NULL, 2);
    add_port(b, 9092, 32003);
    add_port(b, 29092, 29092);
    container *c = mk(ID_C, "p-zk-1", "hzk", "172.18.0.7", NULL, 3);
    add_label(c, "com.docker.compose.project", "p");
    add_label(c, "com.docker.compose.service", "zk");
    add_label(c, "com.docker.compose.container-number", "1");
    add_port(c, 2181, 32009);
    add_port(c, 2182, 32010);
    container *d = mk(ID_D, "kd", "hkd", "172.18.0.8", "dup", 4);
    add_port(d, 9092, 32004);
    /* A second alias on A's network for the replica case. */
    a->nets[0].aliases = xrealloc(a->nets[0].aliases, 2 * sizeof(char *));
    a->nets[0].aliases[1] = xstrdup("dup");
    a->nets[0].naliases = 2;
    reg_update(&f->r, a, 1);
    reg_update(&f->r, b, 2);
    reg_update(&f->r, c, 3);
    reg_update(&f->r, d, 4);
    f->a = reg_find(&f->r, ID_A);
    f->b = reg_find(&f->r, ID_B);
    f->c = reg_find(&f->r, ID_C);
    f->d = reg_find(&f->r, ID_D);
    /* The registry's plan, which the mapping reads. */
    CHECK_INT(f->a->ports[0].plan, REG_PORT_PROXY);
    CHECK_INT(f->a->ports[2].plan, REG_PORT_NONE);
    CHECK_INT(f->b->ports[1].plan, REG_PORT_SHARED);
}

static int map(fixture *f, const char *self, int nodes, const char *host, int32_t port,
               uint32_t *addr, uint16_t *np)
{
    kafka_map_ctx ctx = {self, 0x7f004d63u, 19092, nodes, live, NULL};
    *addr = 0;
    *np = 0;
    return kafka_map_broker(&f->r, &ctx, host, strlen(host), port, addr, np);
}

TEST(container_names)
{
    fixture f;
    fixture_init(&f);
    REQUIRE(f.a && f.b && f.c && f.d);
    REQUIRE(f.a->has_addr && f.b->has_addr && f.c->has_addr && f.d->has_addr);
    CHECK(f.a->addr != f.b->addr);
    uint32_t a;
    uint16_t p;
    /* Name, case and trailing dot, hostname, alias, IP, DNS name. */
    CHECK_INT(map(&f, ID_B, 3, "ka", 9092, &a, &p), KAFKA_MAP_CONTAINER);
    CHECK_INT(a, f.a->addr);
    CHECK_INT(p, 9092);
    CHECK_INT(map(&f, ID_B, 3, "KA.", 9094, &a, &p), KAFKA_MAP_CONTAINER);
    CHECK_INT(a, f.a->addr);
    CHECK_INT(p, 9094);
    CHECK_INT(map(&f, NULL, 3, "hka", 32001, &a, &p), KAFKA_MAP_CONTAINER);
    CHECK_INT(a, f.a->addr);
    CHECK_INT(p, 9092); /* a published host port becomes the container port */
    CHECK_INT(map(&f, NULL, 3, "broker-a", 9094, &a, &p), KAFKA_MAP_CONTAINER);
    CHECK_INT(a, f.a->addr);
    CHECK_INT(map(&f, ID_A, 3, "172.18.0.6", 9092, &a, &p), KAFKA_MAP_CONTAINER);
    CHECK_INT(a, f.b->addr);
    CHECK_INT(map(&f, ID_A, 3, "kb.loop.test", 9092, &a, &p), KAFKA_MAP_CONTAINER);
    CHECK_INT(a, f.b->addr);
    char ip[16];
    CHECK_INT(map(&f, ID_A, 3, ip4_format(f.b->addr, ip), 9092, &a, &p), KAFKA_MAP_CONTAINER);
    CHECK_INT(a, f.b->addr);
    /* Docker's default hostname: the id's first 12 digits. */
    CHECK_INT(map(&f, ID_A, 3, "bbbbbbbbbbbb", 9092, &a, &p), KAFKA_MAP_CONTAINER);
    CHECK_INT(a, f.b->addr);
    /* Compose service name; 2181 has no listener, 2182 has one. */
    CHECK_INT(map(&f, ID_A, 3, "zk", 2181, &a, &p), KAFKA_MAP_KEEP);
    CHECK_INT(map(&f, ID_A, 3, "zk", 2182, &a, &p), KAFKA_MAP_CONTAINER);
    CHECK_INT(a, f.c->addr);
    /* Known container, port it does not serve: kept with several brokers,
     * the listen address with one. */
    CHECK_INT(map(&f, ID_A, 2, "ka", 9095, &a, &p), KAFKA_MAP_KEEP);
    CHECK_INT(map(&f, ID_A, 1, "ka", 9095, &a, &p), KAFKA_MAP_SINGLE);
    CHECK_INT(a, 0x7f004d63u);
    CHECK_INT(p, 19092);
    /* Replicas sharing an alias: the connection's own container wins. */
    CHECK_INT(map(&f, ID_D, 2, "dup", 9092, &a, &p), KAFKA_MAP_CONTAINER);
    CHECK_INT(a, f.d->addr);
    CHECK_INT(map(&f, ID_A, 2, "dup", 9092, &a, &p), KAFKA_MAP_CONTAINER);
    CHECK_INT(a, f.a->addr);
    reg_free(&f.r);
}

TEST(localhost)
{
    fixture f;
    fixture_init(&f);
    REQUIRE(f.a && f.b);
    uint32_t a;
    uint16_t p;
    CHECK_INT(map(&f, ID_A, 3, "localhost", 9094, &a, &p), KAFKA_MAP_LOCAL);
    CHECK_INT(a, f.a->addr);
    CHECK_INT(p, 9094);
    CHECK_INT(map(&f, ID_A, 3, "127.0.0.1", 9092, &a, &p), KAFKA_MAP_LOCAL);
    CHECK_INT(a, f.a->addr);
    CHECK_INT(map(&f, ID_B, 3, "LOCALHOST", 9092, &a, &p), KAFKA_MAP_LOCAL);
    CHECK_INT(a, f.b->addr);
    /* Some container's published host port. */
    CHECK_INT(map(&f, ID_A, 3, "::1", 32003, &a, &p), KAFKA_MAP_PUBLISHED);
    CHECK_INT(a, f.b->addr);
    CHECK_INT(p, 9092);
    CHECK_INT(map(&f, ID_A, 3, "localhost", 29092, &a, &p), KAFKA_MAP_PUBLISHED);
    CHECK_INT(a, f.b->addr);
    CHECK_INT(p, 29092);
    CHECK_INT(map(&f, ID_A, 3, "localhost", 32002, &a, &p), KAFKA_MAP_PUBLISHED);
    CHECK_INT(a, f.a->addr);
    CHECK_INT(p, 9094);
    /* Exposed but not published: nothing answers there. */
    CHECK_INT(map(&f, ID_A, 3, "localhost", 9095, &a, &p), KAFKA_MAP_KEEP);
    CHECK_INT(map(&f, ID_A, 3, "127.0.0.1", 12345, &a, &p), KAFKA_MAP_KEEP);
    CHECK_INT(map(&f, ID_A, 1, "127.0.0.1", 12345, &a, &p), KAFKA_MAP_SINGLE);
    /* Without a container of its own, only published ports help. */
    CHECK_INT(map(&f, NULL, 3, "localhost", 9094, &a, &p), KAFKA_MAP_KEEP);
    CHECK_INT(map(&f, "nope", 3, "localhost", 32001, &a, &p), KAFKA_MAP_PUBLISHED);
    CHECK_INT(a, f.a->addr);
    reg_free(&f.r);
}

TEST(garbage)
{
    fixture f;
    fixture_init(&f);
    uint32_t a;
    uint16_t p;
    CHECK_INT(map(&f, ID_A, 2, "elsewhere.example", 9092, &a, &p), KAFKA_MAP_KEEP);
    CHECK_INT(map(&f, ID_A, 2, "", 9092, &a, &p), KAFKA_MAP_KEEP);
    CHECK_INT(map(&f, ID_A, 2, "ka", 0, &a, &p), KAFKA_MAP_KEEP);
    CHECK_INT(map(&f, ID_A, 2, "ka", 70000, &a, &p), KAFKA_MAP_KEEP);
    CHECK_INT(map(&f, ID_A, 2, "ka", -1, &a, &p), KAFKA_MAP_KEEP);
    /* An embedded NUL and an overlong host are nobody's. */
    kafka_map_ctx ctx = {ID_A, 0x7f004d63u, 19092, 2, live, NULL};
    CHECK_INT(kafka_map_broker(&f.r, &ctx, "ka\0x", 4, 9092, &a, &p), KAFKA_MAP_KEEP);
    char big[400];
    memset(big, 'a', sizeof(big));
    CHECK_INT(kafka_map_broker(&f.r, &ctx, big, sizeof(big), 9092, &a, &p), KAFKA_MAP_KEEP);
    /* Not NUL-terminated: only host_len bytes count. */
    CHECK_INT(kafka_map_broker(&f.r, &ctx, "kbXYZ", 2, 9092, &a, &p), KAFKA_MAP_CONTAINER);
    CHECK_INT(a, f.b->addr);
    /* A container that lost its address is nobody. */
    f.b->has_addr = false;
    CHECK_INT(map(&f, ID_A, 2, "kb", 9092, &a, &p), KAFKA_MAP_KEEP);
    f.b->has_addr = true;
    reg_free(&f.r);
}
