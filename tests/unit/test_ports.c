/* The port table against a fake backend: the plan diff (open, keep,
 * retarget, reopen on a new address, drop), results for held ports, problems
 * for the rest, Kafka hooks and their callbacks, the reverse direction's
 * roles (kept without a socket, replaced by a new one), the dialer and the
 * local address; and a little of the real backend. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <string.h>

#include "container.h"
#include "fake_ports.h"
#include "log.h"
#include "ports.h"
#include "test.h"

static uint32_t ip(const char *s)
{
    uint32_t a = 0;
    ip4_parse(s, &a);
    return a;
}

static port_want want(const char *id, uint16_t port, int proto, const char *addr,
                      uint16_t target_port)
{
    port_want w;
    memset(&w, 0, sizeof(w));
    snprintf(w.key.id, sizeof(w.key.id), "%s", id);
    w.key.role = PORT_ROLE_FORWARD;
    w.key.port = port;
    w.key.proto = (uint8_t)proto;
    w.name = id;
    w.addr = ip(addr);
    struct sockaddr_in *t = (struct sockaddr_in *)&w.target;
    t->sin_family = AF_INET;
    t->sin_port = htons(target_port);
    t->sin_addr.s_addr = htonl(0x7f000001);
    w.kafka = PROXY_KAFKA_OFF;
    w.fd = -1;
    return w;
}

static uint16_t target_port(const fake_listener *l)
{
    return ntohs(((const struct sockaddr_in *)&l->target)->sin_port);
}

TEST(diff)
{
    fake_backend f;
    ports_backend be;
    fake_backend_init(&f, &be);
    ports_table *t = ports_new(&be, NULL);
    port_want w[3] = {want("a", 80, CTR_TCP, "127.0.0.2", 32768),
                      want("a", 53, CTR_UDP, "127.0.0.2", 32769),
                      want("b", 80, CTR_TCP, "127.0.0.3", 32770)};
    port_result *res;
    size_t nres;
    ports_apply(t, w, 3, &res, &nres);
    CHECK_INT(nres, 0);
    CHECK(res == NULL);
    CHECK_INT(f.nopen, 3);
    CHECK_INT(f.listens, 3);
    /* The same plan again changes nothing. */
    ports_apply(t, w, 3, &res, &nres);
    CHECK_INT(f.listens, 3);
    CHECK_INT(f.closes, 0);
    CHECK_INT(f.retargets, 0);
    /* A new mapped port retargets the open listener; a new address reopens it. */
    w[0] = want("a", 80, CTR_TCP, "127.0.0.2", 40000);
    w[2] = want("b", 80, CTR_TCP, "127.0.0.9", 32770);
    ports_apply(t, w, 3, &res, &nres);
    CHECK_INT(f.retargets, 1);
    fake_listener *l = fake_find(&f, ip("127.0.0.2"), 80);
    REQUIRE(l != NULL);
    CHECK_INT(target_port(l), 40000);
    CHECK(fake_find(&f, ip("127.0.0.3"), 80) == NULL);
    CHECK(fake_find(&f, ip("127.0.0.9"), 80) != NULL);
    CHECK(strstr(f.log, "close 127.0.0.3:80;listen 127.0.0.9:80;") != NULL);
    /* Lookups by key: UDP and TCP 80 of "a" are different entries. */
    const port_entry *e = ports_find(t, "a", PORT_ROLE_FORWARD, 53, CTR_UDP);
    REQUIRE(e != NULL);
    CHECK(e->listener != NULL);
    CHECK(ports_find(t, "a", PORT_ROLE_FORWARD, 53, CTR_TCP) == NULL);
    CHECK(ports_find(t, "a", PORT_ROLE_HOST, 80, CTR_TCP) == NULL);
    /* Stats come from the backend; totals add them up. */
    l->stats.conns_active = 4;
    l->stats.bytes_in = 10;
    proxy_stats st;
    ports_stats(t, ports_find(t, "a", PORT_ROLE_FORWARD, 80, CTR_TCP), &st);
    CHECK_INT(st.bytes_in, 10);
    size_t listeners;
    uint64_t active;
    ports_totals(t, &listeners, &active);
    CHECK_INT(listeners, 3);
    CHECK_INT(active, 4);
    /* Dropped from the plan: closed, and gone from the table. */
    ports_apply(t, w, 1, &res, &nres);
    CHECK_INT(f.nopen, 1);
    CHECK(ports_find(t, "b", PORT_ROLE_FORWARD, 80, CTR_TCP) == NULL);
    ports_free(t);
    CHECK_INT(f.nopen, 0);
}

TEST(refusals)
{
    fake_backend f;
    ports_backend be;
    fake_backend_init(&f, &be);
    f.held[f.nheld].addr = ip("127.0.0.2");
    f.held[f.nheld++].port = 5432;
    f.eacces_port = 80;
    ports_table *t = ports_new(&be, NULL);
    port_want w[3] = {want("a", 5432, CTR_TCP, "127.0.0.2", 32768),
                      want("a", 80, CTR_TCP, "127.0.0.2", 32769),
                      want("a", 6379, CTR_TCP, "127.0.0.2", 32770)};
    port_result *res;
    size_t nres;
    ports_apply(t, w, 3, &res, &nres);
    REQUIRE(nres == 2);
    CHECK_INT(res[0].err, UV_EADDRINUSE);
    CHECK_STR(res[0].where, "127.0.0.2:5432/tcp");
    CHECK_INT(res[1].err, UV_EACCES);
    free(res);
    /* A held port is the registry's to explain; any other failure is the
     * table's own problem, in words. */
    const port_entry *held = ports_find(t, "a", PORT_ROLE_FORWARD, 5432, CTR_TCP);
    const port_entry *priv = ports_find(t, "a", PORT_ROLE_FORWARD, 80, CTR_TCP);
    REQUIRE(held != NULL && priv != NULL);
    CHECK(held->listener == NULL);
    CHECK_STR(held->problem, "");
    CHECK(strstr(priv->problem, "below 1024") != NULL);
    CHECK(ports_find(t, "a", PORT_ROLE_FORWARD, 6379, CTR_TCP)->listener != NULL);
    /* Every apply tries again: once free, the port opens and the problem goes. */
    f.nheld = 0;
    f.eacces_port = 0;
    ports_apply(t, w, 3, &res, &nres);
    CHECK_INT(nres, 0);
    CHECK(held->listener != NULL);
    CHECK_STR(priv->problem, "");
    ports_free(t);
}

typedef struct seen {
    int kafka_seen;
    char last_id[65];
} seen;

static void on_seen(void *ud, const port_key *k)
{
    seen *s = ud;
    s->kafka_seen++;
    snprintf(s->last_id, sizeof(s->last_id), "%s", k->id);
}

static int on_map(void *ud, const port_key *k, uint32_t listen_addr, uint16_t listen_port,
                  int nodes, const char *host, size_t host_len, int32_t port, uint32_t *addr,
                  uint16_t *new_port)
{
    (void)ud, (void)k, (void)nodes, (void)port;
    if (host_len == 6 && memcmp(host, "broker", 6) == 0) {
        *addr = listen_addr;
        *new_port = listen_port;
        return 1;
    }
    return 0;
}

TEST(kafka_hooks)
{
    fake_backend f;
    ports_backend be;
    fake_backend_init(&f, &be);
    seen s = {0};
    ports_callbacks cbs = {&s, on_map, on_seen, NULL};
    ports_table *t = ports_new(&be, &cbs);
    port_want w[3] = {want("k", 9092, CTR_TCP, "127.0.0.5", 32768),
                      want("k", 9093, CTR_TCP, "127.0.0.5", 32769),
                      want("k", 53, CTR_UDP, "127.0.0.5", 32770)};
    w[0].kafka = PROXY_KAFKA_SNIFF;
    w[1].kafka = PROXY_KAFKA_FORCE;
    w[2].kafka = PROXY_KAFKA_SNIFF; /* never on UDP */
    port_result *res;
    size_t nres;
    ports_apply(t, w, 3, &res, &nres);
    fake_listener *l = fake_find(&f, ip("127.0.0.5"), 9092);
    REQUIRE(l != NULL);
    CHECK_INT(l->kafka.mode, PROXY_KAFKA_SNIFF);
    CHECK_INT(fake_find(&f, ip("127.0.0.5"), 53)->kafka.mode, PROXY_KAFKA_OFF);
    CHECK_INT(fake_find(&f, ip("127.0.0.5"), 9093)->kafka.mode, PROXY_KAFKA_FORCE);
    /* The map hook goes through the owner's callback with the listener's address. */
    char nh[64] = "";
    int32_t np = 0;
    CHECK_INT(l->kafka.map(l->kafka.ud, NULL, 1, 1, "broker", 6, 9092, nh, sizeof(nh), &np), 1);
    CHECK_STR(nh, "127.0.0.5");
    CHECK_INT(np, 9092);
    CHECK_INT(l->kafka.map(l->kafka.ud, NULL, 2, 1, "b\x1b[2Jx", 6, 9092, nh, sizeof(nh), &np), 0);
    /* Detection (once per listener, from the proxy) reaches the owner. */
    l->kafka.detected(l->kafka.ud, NULL);
    CHECK_INT(s.kafka_seen, 1);
    CHECK_STR(s.last_id, "k");
    /* Turning Kafka off (a new label) reopens the listener without hooks. */
    w[0].kafka = PROXY_KAFKA_OFF;
    ports_apply(t, w, 3, &res, &nres);
    CHECK_INT(fake_find(&f, ip("127.0.0.5"), 9092)->kafka.mode, PROXY_KAFKA_OFF);
    ports_free(t);
    CHECK_INT(f.nopen, 0);
}

/* A socket bound elsewhere reaches the backend, and a want with one always
 * makes a fresh listener from it. */
TEST(fd_handover)
{
    fake_backend f;
    ports_backend be;
    fake_backend_init(&f, &be);
    ports_table *t = ports_new(&be, NULL);
    port_want w = want("h", 8000, CTR_TCP, "127.0.0.1", 8000);
    w.fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(w.fd >= 0);
    port_result *res;
    size_t nres;
    ports_apply(t, &w, 1, &res, &nres);
    CHECK_INT(nres, 0);
    CHECK_INT(f.last_fd, w.fd);
    CHECK_INT(f.nopen, 1);
    /* The next plan hands a fresh socket: the listener carries over and the
     * socket is closed unused. */
    int fd2 = socket(AF_INET, SOCK_STREAM, 0);
    w.fd = fd2;
    ports_apply(t, &w, 1, &res, &nres);
    CHECK_INT(f.listens, 1);
    CHECK_INT(f.closes, 0);
    CHECK(fcntl(fd2, F_GETFD) == -1);
    ports_free(t);
    CHECK_INT(f.nopen, 0);
}

/* A port that moves from one container to another in one plan: the old
 * entry is dropped before the new one binds, so the new one does not find
 * its address taken (by ourselves). */
TEST(drop_before_bind)
{
    fake_backend f;
    ports_backend be;
    fake_backend_init(&f, &be);
    ports_table *t = ports_new(&be, NULL);
    port_want a = want("a", 80, CTR_TCP, "127.0.0.2", 32768);
    port_want b = want("b", 80, CTR_TCP, "127.0.0.2", 32769);
    port_result *res;
    size_t nres;
    ports_apply(t, &a, 1, &res, &nres);
    CHECK_INT(f.nopen, 1);
    /* The fake refuses a second listener on one address and port. */
    port_want both[2] = {a, b};
    ports_apply(t, both, 2, &res, &nres);
    REQUIRE(nres == 1);
    CHECK_STR(res[0].key.id, "b");
    free(res);
    ports_apply(t, &b, 1, &res, &nres);
    CHECK_INT(nres, 0);
    CHECK(ports_find(t, "a", PORT_ROLE_FORWARD, 80, CTR_TCP) == NULL);
    CHECK(ports_find(t, "b", PORT_ROLE_FORWARD, 80, CTR_TCP)->listener != NULL);
    CHECK(strstr(f.log, "close 127.0.0.2:80;listen 127.0.0.2:80;") != NULL);
    ports_free(t);
}

/* Thousands of ports (-p 10000-14999) go through the index. */
TEST(many_ports)
{
    fake_backend f;
    ports_backend be;
    fake_backend_init(&f, &be);
    f.unlimited = true;
    ports_table *t = ports_new(&be, NULL);
    size_t n = 5000;
    port_want *w = xcalloc(n, sizeof(*w));
    for (size_t i = 0; i < n; i++)
        w[i] = want(i % 2 ? "a" : "b", (uint16_t)(10000 + i), CTR_TCP, "127.0.0.2", 32768);
    port_result *res;
    size_t nres;
    ports_apply(t, w, n, &res, &nres);
    CHECK_INT(nres, 0);
    CHECK_INT(f.listens, n);
    ports_apply(t, w, n, &res, &nres);
    CHECK_INT(f.listens, n);
    for (size_t i = 0; i < n; i += 499)
        CHECK(ports_find(t, i % 2 ? "a" : "b", PORT_ROLE_FORWARD, (uint16_t)(10000 + i), CTR_TCP) !=
              NULL);
    CHECK(ports_find(t, "a", PORT_ROLE_FORWARD, 10000, CTR_TCP) == NULL);
    /* Half go: the rest are still found. */
    ports_apply(t, w, n / 2, &res, &nres);
    CHECK_INT(f.closes, n - n / 2);
    CHECK(ports_find(t, "b", PORT_ROLE_FORWARD, 10000, CTR_TCP) != NULL);
    CHECK(ports_find(t, "a", PORT_ROLE_FORWARD, (uint16_t)(10000 + n - 1), CTR_TCP) == NULL);
    free(w);
    ports_free(t);
}

/* The real backend: proxy listeners on a loop, one bound by the table and
 * one from a socket bound elsewhere; a client connects to each; everything
 * closes and the loop closes clean. */
/* ---- The reverse direction: roles the table never binds ---- */

static port_want host_want(const char *id, int role, uint16_t port, int fd, const char *problem)
{
    port_want w = want(id, port, CTR_TCP, "127.0.0.1", port);
    w.key.role = (uint8_t)role;
    w.fd = fd;
    w.problem = problem;
    return w;
}

static bool fd_closed(int fd)
{
    return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* Without a socket the entry waits, with its maker's problem, asking the
 * backend nothing and reporting nothing; with one it listens, even where
 * another container's namespace has the same address and port. */
TEST(host_roles)
{
    fake_backend f;
    ports_backend be;
    fake_backend_init(&f, &be);
    ports_table *t = ports_new(&be, NULL);
    port_want w[3] = {host_want("a", PORT_ROLE_HOST, 8000, -1, "the container has no namespace"),
                      host_want("a", PORT_ROLE_HOST6, 8000, -1, NULL),
                      host_want("a", PORT_ROLE_RELAY, 8000, -1, "")};
    port_result *res;
    size_t nres;
    ports_apply(t, w, 3, &res, &nres);
    CHECK_INT(nres, 0);
    CHECK(res == NULL);
    CHECK_INT(f.listens, 0);
    const port_entry *h = ports_find(t, "a", PORT_ROLE_HOST, 8000, CTR_TCP);
    const port_entry *h6 = ports_find(t, "a", PORT_ROLE_HOST6, 8000, CTR_TCP);
    const port_entry *r = ports_find(t, "a", PORT_ROLE_RELAY, 8000, CTR_TCP);
    REQUIRE(h != NULL && h6 != NULL && r != NULL);
    CHECK(h->listener == NULL && h6->listener == NULL && r->listener == NULL);
    CHECK_STR(h->problem, "the container has no namespace");
    CHECK_STR(h6->problem, "");
    CHECK_STR(r->problem, "");
    size_t listeners;
    uint64_t active;
    ports_totals(t, &listeners, &active);
    CHECK_INT(listeners, 0);

    /* The sockets arrive: each listens; the problem goes. Container b's
     * 127.0.0.1:8000 is in its own namespace. */
    int fds[4];
    for (int i = 0; i < 4; i++)
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    port_want w2[4] = {host_want("a", PORT_ROLE_HOST, 8000, fds[0], NULL),
                       host_want("a", PORT_ROLE_HOST6, 8000, fds[1], NULL),
                       host_want("a", PORT_ROLE_RELAY, 8000, fds[2], NULL),
                       host_want("b", PORT_ROLE_HOST, 8000, fds[3], NULL)};
    ports_apply(t, w2, 4, &res, &nres);
    CHECK_INT(nres, 0);
    CHECK_INT(f.listens, 4);
    CHECK_INT(f.nopen, 4);
    CHECK(h->listener != NULL);
    CHECK_STR(h->problem, "");
    for (int i = 0; i < 4; i++)
        CHECK(fd_closed(fds[i])); /* taken over */

    /* fd -1 keeps a listener; a new socket replaces it (a new namespace). */
    void *before = h->listener;
    ports_apply(t, w, 3, &res, &nres);
    CHECK_INT(nres, 0);
    CHECK_INT(f.listens, 4);
    CHECK(h->listener == before);
    CHECK_STR(h->problem, "");
    CHECK(ports_find(t, "b", PORT_ROLE_HOST, 8000, CTR_TCP) == NULL);
    w[0].fd = socket(AF_INET, SOCK_STREAM, 0);
    ports_apply(t, w, 3, &res, &nres);
    CHECK_INT(f.listens, 5);
    CHECK_INT(f.closes, 2); /* b's, then a's old one */
    CHECK(h->listener != NULL);
    CHECK(((fake_listener *)h->listener)->from_fd);
    ports_free(t);
    CHECK_INT(f.nopen, 0);
}

/* A failed listen on a reverse socket is the table's problem, in words
 * naming where; it is still a result (the daemon only moves forward ports). */
TEST(host_refused)
{
    fake_backend f;
    ports_backend be;
    fake_backend_init(&f, &be);
    f.eacces_port = 80;
    ports_table *t = ports_new(&be, NULL);
    port_want w[2] = {host_want("a", PORT_ROLE_HOST6, 80, socket(AF_INET6, SOCK_STREAM, 0), NULL),
                      host_want("a", PORT_ROLE_RELAY, 80, socket(AF_INET, SOCK_STREAM, 0), NULL)};
    port_result *res;
    size_t nres;
    ports_apply(t, w, 2, &res, &nres);
    REQUIRE(nres == 2);
    CHECK_STR(res[0].where, "[::1]:80/tcp");
    CHECK_INT(res[0].key.role, PORT_ROLE_HOST6);
    CHECK_STR(res[1].where, "relay of 80/tcp on 127.0.0.1");
    free(res);
    const port_entry *e = ports_find(t, "a", PORT_ROLE_HOST6, 80, CTR_TCP);
    REQUIRE(e != NULL);
    CHECK(strstr(e->problem, "[::1]:80/tcp inside the container") != NULL);
    ports_free(t);
}

typedef struct dials {
    int calls;
    port_key key;
    unsigned attempt;
} dials;

static int on_dial(void *ud, const port_key *k, unsigned attempt, const struct sockaddr *peer,
                   struct sockaddr_storage *out)
{
    dials *d = ud;
    d->calls++;
    d->key = *k;
    d->attempt = attempt;
    if (peer->sa_family != AF_INET)
        return -EPERM;
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    a->sin_family = AF_INET;
    a->sin_port = htons(5432);
    a->sin_addr.s_addr = htonl(0x7f000001);
    return 0;
}

/* want.dial installs a dialer that asks ports_callbacks.dial with the
 * entry's key; turning it off removes it; without a dial callback every
 * connection is told -ENOENT. */
TEST(dial)
{
    fake_backend f;
    ports_backend be;
    fake_backend_init(&f, &be);
    dials d = {0};
    ports_callbacks cbs = {&d, NULL, NULL, on_dial};
    ports_table *t = ports_new(&be, &cbs);
    port_want w[2] = {host_want("a", PORT_ROLE_HOST, 8000, socket(AF_INET, SOCK_STREAM, 0), NULL),
                      want("a", 80, CTR_TCP, "127.0.0.2", 32768)};
    w[0].dial = true;
    memset(&w[0].target, 0, sizeof(w[0].target)); /* unused with dial */
    port_result *res;
    size_t nres;
    ports_apply(t, w, 2, &res, &nres);
    CHECK_INT(nres, 0);
    const port_entry *e = ports_find(t, "a", PORT_ROLE_HOST, 8000, CTR_TCP);
    REQUIRE(e != NULL && e->listener != NULL);
    CHECK(e->dial);
    fake_listener *l = e->listener;
    CHECK_INT(l->set_dialers, 1);
    REQUIRE(l->dialer.next != NULL);
    fake_listener *fwd = fake_find(&f, ip("127.0.0.2"), 80);
    REQUIRE(fwd != NULL);
    CHECK_INT(fwd->set_dialers, 0);

    struct sockaddr_in peer;
    memset(&peer, 0, sizeof(peer));
    peer.sin_family = AF_INET;
    struct sockaddr_storage out;
    CHECK_INT(l->dialer.next(l->dialer.ud, 1, (struct sockaddr *)&peer, &out), 0);
    CHECK_INT(d.calls, 1);
    CHECK_INT(d.attempt, 1);
    CHECK_STR(d.key.id, "a");
    CHECK_INT(d.key.role, PORT_ROLE_HOST);
    CHECK_INT(d.key.port, 8000);
    CHECK_INT(ntohs(((struct sockaddr_in *)&out)->sin_port), 5432);
    peer.sin_family = AF_INET6;
    CHECK_INT(l->dialer.next(l->dialer.ud, 0, (struct sockaddr *)&peer, &out), -EPERM);

    /* The same plan again touches nothing; dial off removes the dialer, on
     * again installs a fresh one (the old ud is released: ASan sees leaks). */
    w[0].fd = -1;
    ports_apply(t, w, 2, &res, &nres);
    CHECK(e->listener == l);
    CHECK_INT(l->set_dialers, 1);
    w[0].dial = false;
    ports_apply(t, w, 2, &res, &nres);
    CHECK(e->listener == l);
    CHECK_INT(l->set_dialers, 2);
    CHECK(l->dialer.next == NULL);
    CHECK(!e->dial);
    w[0].dial = true;
    ports_apply(t, w, 2, &res, &nres);
    CHECK_INT(l->set_dialers, 3);
    CHECK(l->dialer.next != NULL);
    ports_free(t);

    /* No dial callback: nothing to try. */
    fake_backend_init(&f, &be);
    t = ports_new(&be, NULL);
    w[0].fd = socket(AF_INET, SOCK_STREAM, 0);
    ports_apply(t, w, 1, &res, &nres);
    e = ports_find(t, "a", PORT_ROLE_HOST, 8000, CTR_TCP);
    REQUIRE(e != NULL && e->listener != NULL);
    l = e->listener;
    REQUIRE(l->dialer.next != NULL);
    peer.sin_family = AF_INET;
    CHECK_INT(l->dialer.next(l->dialer.ud, 0, (struct sockaddr *)&peer, &out), -ENOENT);
    ports_free(t);
}

TEST(local_addr)
{
    fake_backend f;
    ports_backend be;
    fake_backend_init(&f, &be);
    ports_table *t = ports_new(&be, NULL);
    port_want w[2] = {want("a", 80, CTR_TCP, "127.0.0.2", 32768),
                      host_want("a", PORT_ROLE_RELAY, 8000, -1, NULL)};
    port_result *res;
    size_t nres;
    ports_apply(t, w, 2, &res, &nres);
    struct sockaddr_storage ss;
    const port_entry *e = ports_find(t, "a", PORT_ROLE_FORWARD, 80, CTR_TCP);
    CHECK_INT(ports_local_addr(t, e, &ss), 0);
    CHECK_INT(ss.ss_family, AF_INET);
    CHECK_INT(ntohs(((struct sockaddr_in *)&ss)->sin_port), 80);
    CHECK_INT(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), ip("127.0.0.2"));
    f.local_err = -ENOTSOCK;
    CHECK_INT(ports_local_addr(t, e, &ss), -ENOTSOCK);
    CHECK_INT(ports_local_addr(t, ports_find(t, "a", PORT_ROLE_RELAY, 8000, CTR_TCP), &ss),
              -ENOENT);
    CHECK_INT(ports_local_addr(t, NULL, &ss), -ENOENT);
    ports_free(t);
}

TEST(proxy_backend)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    proxy_options o;
    proxy_options_default(&o);
    ports_backend be;
    ports_proxy_backend(&loop, &o, &be);
    ports_table *t = ports_new(&be, NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(0x7f000001);
    REQUIRE(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    socklen_t sl = sizeof(sin);
    REQUIRE(getsockname(fd, (struct sockaddr *)&sin, &sl) == 0);
    port_want w[2] = {want("a", 0, CTR_TCP, "127.0.0.1", 9), want("b", 0, CTR_UDP, "127.0.0.1", 9)};
    w[0].fd = fd;
    w[0].kafka = PROXY_KAFKA_SNIFF;
    port_result *res;
    size_t nres;
    ports_apply(t, w, 2, &res, &nres);
    CHECK_INT(nres, 0);
    const port_entry *e = ports_find(t, "a", PORT_ROLE_FORWARD, 0, CTR_TCP);
    REQUIRE(e != NULL && e->listener != NULL);
    CHECK(ports_find(t, "b", PORT_ROLE_FORWARD, 0, CTR_UDP)->listener != NULL);
    /* The handed-over socket listens: the kernel completes a connect. */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    close(c);
    size_t listeners;
    uint64_t active;
    ports_totals(t, &listeners, &active);
    CHECK_INT(listeners, 2);
    /* A socket that is not bound is refused, and the table says why. */
    port_want bad = want("c", 0, CTR_TCP, "127.0.0.1", 9);
    bad.fd = socket(AF_INET, SOCK_STREAM, 0);
    port_want all[3] = {w[0], w[1], bad};
    all[0].fd = -1; /* already open: kept, not reopened */
    ports_apply(t, all, 3, &res, &nres);
    REQUIRE(nres == 1);
    CHECK_STR(res[0].key.id, "c");
    free(res);
    CHECK(strstr(ports_find(t, "c", PORT_ROLE_FORWARD, 0, CTR_TCP)->problem, "cannot listen") !=
          NULL);
    CHECK(ports_find(t, "a", PORT_ROLE_FORWARD, 0, CTR_TCP)->listener == e->listener);
    /* main.c's order: close every listener, let the loop finish closing
     * (the Kafka hooks' data goes with the listeners), then free the table. */
    ports_close_all(t);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
    ports_free(t);
}

static int refuse_all(void *ud, const port_key *k, unsigned attempt, const struct sockaddr *peer,
                      struct sockaddr_storage *out)
{
    (void)k, (void)attempt, (void)out;
    dials *d = ud;
    d->calls++;
    return peer->sa_family == AF_INET ? -EPERM : 0;
}

/* The real backend with a relay socket: it listens without a target of its
 * own, reports its kernel-chosen port, and asks the dial callback. */
TEST(proxy_backend_relay)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    proxy_options o;
    proxy_options_default(&o);
    ports_backend be;
    ports_proxy_backend(&loop, &o, &be);
    dials d = {0};
    ports_callbacks cbs = {&d, NULL, NULL, refuse_all};
    ports_table *t = ports_new(&be, &cbs);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(0x7f000001);
    REQUIRE(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    socklen_t sl = sizeof(sin);
    REQUIRE(getsockname(fd, (struct sockaddr *)&sin, &sl) == 0);
    port_want w = host_want("a", PORT_ROLE_RELAY, 8000, fd, NULL);
    w.dial = true;
    memset(&w.target, 0, sizeof(w.target));
    port_result *res;
    size_t nres;
    ports_apply(t, &w, 1, &res, &nres);
    CHECK_INT(nres, 0);
    const port_entry *e = ports_find(t, "a", PORT_ROLE_RELAY, 8000, CTR_TCP);
    REQUIRE(e != NULL && e->listener != NULL);
    struct sockaddr_storage ss;
    CHECK_INT(ports_local_addr(t, e, &ss), 0);
    CHECK_INT(((struct sockaddr_in *)&ss)->sin_port, sin.sin_port);
    /* A client waits in the backlog; one loop turn accepts and refuses it. */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT(d.calls, 1);
    proxy_stats st;
    ports_stats(t, e, &st);
    CHECK_INT(st.refused, 1);
    CHECK_INT(st.conns_total, 0);
    char b;
    CHECK(recv(c, &b, 1, 0) == 0); /* closed, without a byte */
    close(c);
    ports_close_all(t);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
    ports_free(t);
}

TEST_SETUP()
{
    log_set_level(LOG_ERROR);
}
