/* Proxy tests with real sockets on 127.0.0.1: the proxy runs in the test's
 * libuv loop on the main thread; clients and upstream servers are helper
 * threads with blocking sockets (with receive timeouts, so a bug fails a
 * test instead of hanging it). Each TCP test runs with splice on and off. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "platform.h"
#include "proxy.h"
/* For the first-bytes slot itself (test_first_bytes_limit). */
#include "proxy_int.h"
#include "test.h"

#define BOUND (2 * (PROXY_HIGH_WATERMARK + PROXY_READ_SIZE))

/* Whether asking for splice really splices: splice(2) is Linux-only, and
 * elsewhere (macOS) every connection stays on the read/write path, which
 * the splice variants of the tests then check instead. */
#ifdef __linux__
#define HAVE_SPLICE 1
#else
#define HAVE_SPLICE 0
#endif

/* For SDKs without MSG_NOSIGNAL (macOS 12's has it): the setup ignores SIGPIPE anyway. */
#if !defined(__linux__) && !defined(MSG_NOSIGNAL)
#define MSG_NOSIGNAL 0
#endif

/* ---- blocking socket helpers (helper threads) ---- */

static void addr4(struct sockaddr_in *a, const char *ip, uint16_t port)
{
    memset(a, 0, sizeof(*a));
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, ip, &a->sin_addr);
}

static void set_timeouts(int fd, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int listen_tcp(const char *ip, uint16_t *port, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    struct sockaddr_in a;
    addr4(&a, ip, *port);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, backlog) < 0) {
        close(fd);
        return -1;
    }
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

/* [::1]:port */
static void addr6(struct sockaddr_in6 *a, uint16_t port)
{
    memset(a, 0, sizeof(*a));
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    a->sin6_addr = in6addr_loopback;
}

static socklen_t sa_size(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static uint16_t sa_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* 127.0.0.1:port or [::1]:port. */
static struct sockaddr_storage loopback(int family, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET6)
        addr6((struct sockaddr_in6 *)&ss, port);
    else
        addr4((struct sockaddr_in *)&ss, "127.0.0.1", port);
    return ss;
}

/* A socket of type bound to the family's loopback address, port 0 (IPv6
 * only, for [::1]). -1 when that cannot be done. */
static int bound_socket(int family, int type)
{
    int fd = socket(family, type, 0);
    if (fd < 0)
        return -1;
    int on = 1;
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
    struct sockaddr_storage ss = loopback(family, 0);
    if (bind(fd, (struct sockaddr *)&ss, sa_size(&ss)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Whether [::1] can be bound here (containers and CI hosts may lack it). */
static bool have_ipv6(void)
{
    int fd = bound_socket(AF_INET6, SOCK_STREAM);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* A TCP listener on [::1] (the upstream of the cross-family cases). */
static int listen_tcp6(uint16_t *port)
{
    int fd = bound_socket(AF_INET6, SOCK_STREAM);
    if (fd < 0 || listen(fd, 64) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *port = sa_port(&ss);
    return fd;
}

static int connect_family(int family, uint16_t port)
{
    int fd = socket(family, SOCK_STREAM, 0);
    struct sockaddr_storage a = loopback(family, port);
    set_timeouts(fd, 10000);
    if (connect(fd, (struct sockaddr *)&a, sa_size(&a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int connect_tcp(uint16_t port)
{
    return connect_family(AF_INET, port);
}

static int accept_tcp(int lfd)
{
    int fd = accept(lfd, NULL, NULL);
    if (fd >= 0)
        set_timeouts(fd, 10000);
    return fd;
}

static bool write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

static bool read_exact(int fd, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = recv(fd, c, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        c += r;
        n -= (size_t)r;
    }
    return true;
}

/* Reads until EOF; returns the byte count, or -errno on error. */
static long read_to_eof(int fd, char *p, size_t cap)
{
    size_t got = 0;
    for (;;) {
        char tmp[4096];
        ssize_t r = recv(fd, tmp, sizeof(tmp), 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return (long)got;
        if (p && got + (size_t)r <= cap)
            memcpy(p + got, tmp, (size_t)r);
        got += (size_t)r;
    }
}

static void reset_close(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
}

static uint8_t pattern(uint64_t pos)
{
    return (uint8_t)((pos * 131) ^ (pos >> 11) ^ (pos >> 19));
}

/* ---- the environment: a loop with one proxy listener ---- */

typedef struct env env;
typedef void (*role_fn)(env *e);

struct env {
    uv_loop_t loop;
    proxy_listener *l;
    proxy_options opts;
    uint16_t port;    /* the proxy's */
    uint16_t up_port; /* the upstream server's */
    int up_fd;        /* upstream listening socket, -1 for none */
    uv_async_t done;
    uv_timer_t sample;
    role_fn client, server;
    pthread_t ct, st;
    size_t max_buffered;
    uint64_t max_spliced;
    proxy_stats final;
    bool closed;
    /* results written by the threads, read after they are joined */
    int client_ok, server_ok;
    long detail;
    void *arg;
    /* proxy_listen_fd instead of proxy_listen: 1 a bound socket, 2 a bound
     * and listening one (lfd: the socket handed over). */
    int from_fd;
    int lfd;
    /* The listener's family (0: AF_INET; AF_INET6: a socket bound on [::1],
     * handed over as from_fd 1), and a dialer to install (NULL: none). */
    int family;
    struct test_dialer *dialer;
};

static int connect_env(env *e)
{
    return connect_family(e->family ? e->family : AF_INET, e->port);
}

/* ---- a dialer for the tests (called on the loop thread; read after the
 * threads are joined) ---- */

typedef struct test_dialer {
    struct sockaddr_storage addrs[4]; /* attempt i's answer */
    unsigned naddrs;                  /* attempts from naddrs on: -ENOENT */
    int result;                       /* non-zero: every call's answer */
    /* Attempt 0 waits (at most 10 s) for a byte on gate[0]: the client has
     * sent its early bytes, which must then wait for the redial. */
    bool gated;
    int gate[2];
    unsigned calls, last_attempt;
    struct sockaddr_storage peer;
    int freed;
} test_dialer;

static int td_next(void *ud, unsigned attempt, const struct sockaddr *peer,
                   struct sockaddr_storage *out)
{
    test_dialer *d = ud;
    d->calls++;
    d->last_attempt = attempt;
    memcpy(&d->peer, peer,
           peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    if (attempt == 0 && d->gated) {
        struct pollfd p = {d->gate[0], POLLIN, 0};
        char c;
        if (poll(&p, 1, 10000) == 1) {
            ssize_t r = read(d->gate[0], &c, 1);
            (void)r;
        }
    }
    if (d->result)
        return d->result;
    if (attempt >= d->naddrs)
        return -ENOENT;
    *out = d->addrs[attempt];
    return 0;
}

static void td_free(void *ud)
{
    ((test_dialer *)ud)->freed++;
}

static void td_install(proxy_listener *l, test_dialer *d)
{
    proxy_dialer pd = {td_next, td_free, d};
    proxy_set_dialer(l, &pd);
}

/* A port that was just free: bind, learn the port, close. */
static uint16_t dead_port(void)
{
    uint16_t port = 0;
    int fd = listen_tcp("127.0.0.1", &port, 1);
    close(fd);
    return port;
}

static void on_proxy_closed(void *arg)
{
    env *e = arg;
    e->closed = true;
}

static void on_done(uv_async_t *a)
{
    env *e = a->data;
    proxy_get_stats(e->l, &e->final);
    proxy_close(e->l, on_proxy_closed, e);
    uv_close((uv_handle_t *)&e->done, NULL);
    uv_close((uv_handle_t *)&e->sample, NULL);
}

static void on_sample(uv_timer_t *t)
{
    env *e = t->data;
    size_t b = proxy_buffered(e->l);
    /* Atomic: a client thread may watch it (test_splice_after_queue). */
    if (b > e->max_buffered)
        __atomic_store_n(&e->max_buffered, b, __ATOMIC_RELAXED);
    if (proxy_spliced_connections() > e->max_spliced)
        e->max_spliced = proxy_spliced_connections();
}

static void *client_main(void *arg)
{
    env *e = arg;
    e->client(e);
    uv_async_send(&e->done);
    return NULL;
}

static void *server_main(void *arg)
{
    env *e = arg;
    e->server(e);
    return NULL;
}

/* Sets up the loop and a proxy from 127.0.0.1:<any> to the upstream
 * server's port (a fresh listening socket unless the test made one). */
static bool env_setup(env *e, bool splice)
{
    if (uv_loop_init(&e->loop) != 0)
        return false;
    if (e->opts.dial_timeout_ms == 0)
        proxy_options_default(&e->opts);
    e->opts.splice = splice;
    if (e->up_fd == 0) {
        e->up_port = 0;
        e->up_fd = listen_tcp("127.0.0.1", &e->up_port, 512);
    }
    if (e->up_port == 0)
        return false;
    struct sockaddr_in la, ua;
    addr4(&la, "127.0.0.1", 0);
    addr4(&ua, "127.0.0.1", e->up_port);
    if (e->family == AF_INET6) {
        e->lfd = bound_socket(AF_INET6, SOCK_STREAM);
        if (e->lfd < 0 || proxy_listen_fd(&e->loop, &e->opts, PROXY_TCP, e->lfd,
                                          (struct sockaddr *)&ua, &e->l) != 0)
            return false;
    } else if (e->from_fd) {
        /* Made here, as another module would (in a container's network
         * namespace, say), and handed over. */
        e->lfd = socket(AF_INET, SOCK_STREAM, 0);
        if (e->lfd < 0 || bind(e->lfd, (struct sockaddr *)&la, sizeof(la)) < 0)
            return false;
        if (e->from_fd == 2 && listen(e->lfd, 1) < 0)
            return false;
        if (proxy_listen_fd(&e->loop, &e->opts, PROXY_TCP, e->lfd, (struct sockaddr *)&ua, &e->l) !=
            0)
            return false;
    } else if (proxy_listen(&e->loop, &e->opts, PROXY_TCP, (struct sockaddr *)&la,
                            (struct sockaddr *)&ua, &e->l) != 0) {
        return false;
    }
    struct sockaddr_storage ss;
    proxy_local_addr(e->l, &ss);
    e->port = sa_port(&ss);
    if (e->dialer)
        td_install(e->l, e->dialer);
    uv_async_init(&e->loop, &e->done, on_done);
    e->done.data = e;
    uv_timer_init(&e->loop, &e->sample);
    e->sample.data = e;
    uv_timer_start(&e->sample, on_sample, 1, 1);
    return e->port != 0;
}

/* Runs the threads; the client thread's return closes the proxy. */
static void env_go(env *e, role_fn client, role_fn server)
{
    e->client = client;
    e->server = server;
    if (server)
        pthread_create(&e->st, NULL, server_main, e);
    pthread_create(&e->ct, NULL, client_main, e);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    pthread_join(e->ct, NULL);
    if (e->server)
        pthread_join(e->st, NULL);
    if (e->up_fd >= 0)
        close(e->up_fd);
    CHECK(e->closed);
    CHECK_INT(uv_loop_close(&e->loop), 0);
}

static void env_run(env *e, bool splice, role_fn client, role_fn server)
{
    REQUIRE(env_setup(e, splice));
    env_go(e, client, server);
}

/* ---- scenarios ---- */

static void server_echo(env *e)
{
    int fd = accept_tcp(e->up_fd);
    if (fd < 0)
        return;
    char b[65536];
    for (;;) {
        ssize_t r = recv(fd, b, sizeof(b), 0);
        if (r <= 0)
            break;
        if (!write_all(fd, b, (size_t)r))
            break;
    }
    close(fd);
    e->server_ok = 1;
}

static void client_echo(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    char small[3];
    bool ok = write_all(fd, "abc", 3) && read_exact(fd, small, 3) && memcmp(small, "abc", 3) == 0;
    static char big[100000], back[100000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)pattern(i);
    ok = ok && write_all(fd, big, sizeof(big)) && read_exact(fd, back, sizeof(back)) &&
         memcmp(big, back, sizeof(big)) == 0;
    shutdown(fd, SHUT_WR);
    ok = ok && read_to_eof(fd, NULL, 0) == 0;
    close(fd);
    e->client_ok = ok;
}

static void test_echo(bool splice)
{
    env e = {0};
    uint64_t before = proxy_spliced_total();
    env_run(&e, splice, client_echo, server_echo);
    CHECK(e.client_ok);
    CHECK(e.server_ok);
    CHECK_INT(e.final.conns_total, 1);
    CHECK_INT(e.final.bytes_in, 100003);
    CHECK_INT(e.final.bytes_out, 100003);
    CHECK_INT(proxy_spliced_total() - before, splice && HAVE_SPLICE ? 1 : 0);
}

/* Client shuts down its write side first and still receives. */
static void server_half_client(env *e)
{
    int fd = accept_tcp(e->up_fd);
    if (fd < 0)
        return;
    char b[64];
    long n = read_to_eof(fd, b, sizeof(b));
    e->server_ok = n == 7 && memcmp(b, "request", 7) == 0;
    /* Only after the client's FIN arrived does the server answer. */
    write_all(fd, "response", 8);
    close(fd);
}

static void client_half_client(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    write_all(fd, "request", 7);
    shutdown(fd, SHUT_WR);
    char b[64];
    long n = read_to_eof(fd, b, sizeof(b));
    e->client_ok = n == 8 && memcmp(b, "response", 8) == 0;
    close(fd);
}

/* Server shuts down its write side first; the client can still send. */
static void server_half_server(env *e)
{
    int fd = accept_tcp(e->up_fd);
    if (fd < 0)
        return;
    write_all(fd, "banner", 6);
    shutdown(fd, SHUT_WR);
    char b[64];
    long n = read_to_eof(fd, b, sizeof(b));
    e->server_ok = n == 9 && memcmp(b, "late data", 9) == 0;
    close(fd);
}

static void client_half_server(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    char b[64];
    long n = read_to_eof(fd, b, sizeof(b));
    bool ok = n == 6 && memcmp(b, "banner", 6) == 0;
    ok = ok && write_all(fd, "late data", 9);
    shutdown(fd, SHUT_WR);
    /* The connection ends once the server closes too. */
    ok = ok && read_to_eof(fd, NULL, 0) == 0;
    e->client_ok = ok;
    close(fd);
}

static void test_half_close(bool splice)
{
    env e = {0};
    env_run(&e, splice, client_half_client, server_half_client);
    CHECK(e.client_ok);
    CHECK(e.server_ok);
    env f = {0};
    env_run(&f, splice, client_half_server, server_half_server);
    CHECK(f.client_ok);
    CHECK(f.server_ok);
    CHECK_INT(f.final.bytes_in, 9);
    CHECK_INT(f.final.bytes_out, 6);
}

/* SMTP-style: the server speaks first, the client only listens. */
static void server_banner(env *e)
{
    int fd = accept_tcp(e->up_fd);
    if (fd < 0)
        return;
    write_all(fd, "220 ready\r\n", 11);
    char b[6];
    e->server_ok = read_exact(fd, b, 6) && memcmp(b, "QUIT\r\n", 6) == 0;
    write_all(fd, "221 bye\r\n", 9);
    close(fd);
}

static void client_banner(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    char b[64];
    bool ok = read_exact(fd, b, 11) && memcmp(b, "220 ready\r\n", 11) == 0;
    ok = ok && write_all(fd, "QUIT\r\n", 6);
    long n = read_to_eof(fd, b, sizeof(b));
    e->client_ok = ok && n == 9 && memcmp(b, "221 bye\r\n", 9) == 0;
    close(fd);
}

/* Redis inline PING: 6 bytes, then the client waits for the reply. */
static void server_ping(env *e)
{
    int fd = accept_tcp(e->up_fd);
    if (fd < 0)
        return;
    char b[6];
    for (int i = 0; i < 3; i++) {
        if (!read_exact(fd, b, 6) || memcmp(b, "PING\r\n", 6) != 0)
            break;
        write_all(fd, "+PONG\r\n", 7);
        e->server_ok++;
    }
    close(fd);
}

static void client_ping(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    for (int i = 0; i < 3; i++) {
        char b[7];
        if (!write_all(fd, "PING\r\n", 6) || !read_exact(fd, b, 7) || memcmp(b, "+PONG\r\n", 7))
            break;
        e->client_ok++;
    }
    close(fd);
}

static void test_first_bytes(bool splice)
{
    env e = {0};
    env_run(&e, splice, client_banner, server_banner);
    CHECK(e.client_ok);
    CHECK(e.server_ok);
    env f = {0};
    env_run(&f, splice, client_ping, server_ping);
    CHECK_INT(f.client_ok, 3);
    CHECK_INT(f.server_ok, 3);
}

/* Nothing listens upstream: the client sees a reset. */
static void client_refused(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    char b[16];
    ssize_t r = recv(fd, b, sizeof(b), 0);
    e->detail = r < 0 ? -errno : r;
    close(fd);
}

TEST(refused)
{
    env e = {0};
    /* A port that was just free: bind, learn the port, close. */
    e.up_port = 0;
    int fd = listen_tcp("127.0.0.1", &e.up_port, 1);
    close(fd);
    e.up_fd = -1;
    env_run(&e, true, client_refused, NULL);
    CHECK_INT(e.detail, -ECONNRESET);
    CHECK_INT(e.final.conns_total, 1);
}

/* The upstream resets mid-stream: the client sees a reset too. */
static void server_reset(env *e)
{
    int fd = accept_tcp(e->up_fd);
    if (fd < 0)
        return;
    char b[5];
    e->server_ok = read_exact(fd, b, 5) && write_all(fd, "partial", 7) && read_exact(fd, b, 3);
    reset_close(fd);
}

static void client_reset(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    char b[16];
    bool ok = write_all(fd, "hello", 5) && read_exact(fd, b, 7) && memcmp(b, "partial", 7) == 0;
    ok = ok && write_all(fd, "ack", 3);
    ssize_t r = recv(fd, b, sizeof(b), 0);
    e->detail = r < 0 ? -errno : r;
    e->client_ok = ok;
    close(fd);
}

static void test_reset(bool splice)
{
    env e = {0};
    env_run(&e, splice, client_reset, server_reset);
    CHECK(e.client_ok);
    CHECK(e.server_ok);
    CHECK_INT(e.detail, -ECONNRESET);
}

/* The client resets: the upstream sees a reset. */
static void server_sees_reset(env *e)
{
    int fd = accept_tcp(e->up_fd);
    if (fd < 0)
        return;
    char b[16];
    bool ok = read_exact(fd, b, 2) && write_all(fd, "ok", 2);
    ssize_t r = recv(fd, b, sizeof(b), 0);
    e->detail = r < 0 ? -errno : r;
    e->server_ok = ok;
    close(fd);
}

static void client_resets(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    char b[2];
    e->client_ok = write_all(fd, "hi", 2) && read_exact(fd, b, 2);
    reset_close(fd);
    /* The proxy must close before the client thread signals the end. */
    pthread_join(e->st, NULL);
    e->server = NULL;
}

static void test_client_reset(bool splice)
{
    env e = {0};
    env_run(&e, splice, client_resets, server_sees_reset);
    CHECK(e.client_ok);
    CHECK(e.server_ok);
    CHECK_INT(e.detail, -ECONNRESET);
}

/* A fast writer and a slow reader: the proxy's user-space buffer stays under
 * the bound while many megabytes flow, in both directions. */
#define SLOW_TOTAL (12 * 1024 * 1024)

static bool send_pattern(int fd, size_t total)
{
    static __thread char b[65536];
    for (size_t off = 0; off < total;) {
        size_t n = total - off < sizeof(b) ? total - off : sizeof(b);
        for (size_t i = 0; i < n; i++)
            b[i] = (char)pattern(off + i);
        if (!write_all(fd, b, n))
            return false;
        off += n;
    }
    return true;
}

/* Reads everything to EOF checking the pattern; slow readers pause
 * between reads so that buffers on the way fill up. */
static bool recv_pattern(int fd, size_t total, bool slow)
{
    static __thread char b[65536];
    size_t off = 0;
    for (;;) {
        ssize_t r = recv(fd, b, slow ? 16384 : sizeof(b), 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return false;
        if (r == 0)
            break;
        for (ssize_t i = 0; i < r; i++)
            if ((uint8_t)b[i] != pattern(off + (size_t)i))
                return false;
        off += (size_t)r;
        if (slow)
            usleep(200);
    }
    return off == total;
}

static void server_slow_reader(env *e)
{
    int fd = accept_tcp(e->up_fd);
    if (fd < 0)
        return;
    e->server_ok = recv_pattern(fd, SLOW_TOTAL, true);
    close(fd);
}

static void client_fast_writer(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    e->client_ok = send_pattern(fd, SLOW_TOTAL);
    shutdown(fd, SHUT_WR);
    e->client_ok = e->client_ok && read_to_eof(fd, NULL, 0) == 0;
    close(fd);
}

static void server_fast_writer(env *e)
{
    int fd = accept_tcp(e->up_fd);
    if (fd < 0)
        return;
    char b[4];
    e->server_ok = read_exact(fd, b, 4) && send_pattern(fd, SLOW_TOTAL);
    close(fd);
}

static void client_slow_reader(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    e->client_ok = write_all(fd, "GET!", 4) && recv_pattern(fd, SLOW_TOTAL, true);
    close(fd);
}

TEST(backpressure)
{
    env e = {0};
    env_run(&e, false, client_fast_writer, server_slow_reader);
    CHECK(e.client_ok);
    CHECK(e.server_ok);
    CHECK(e.max_buffered > 0); /* the watermark logic was exercised */
    CHECK(e.max_buffered <= BOUND);
    CHECK_INT(e.final.bytes_in, SLOW_TOTAL);
    fprintf(stderr, "  upload: max buffered %zu of bound %d\n", e.max_buffered, BOUND);

    env f = {0};
    env_run(&f, false, client_slow_reader, server_fast_writer);
    CHECK(f.client_ok);
    CHECK(f.server_ok);
    CHECK(f.max_buffered > 0);
    CHECK(f.max_buffered <= BOUND);
    CHECK_INT(f.final.bytes_out, SLOW_TOTAL);
    fprintf(stderr, "  download: max buffered %zu of bound %d\n", f.max_buffered, BOUND);

    /* With splice nothing is held in user space at all. */
    env g = {0};
    env_run(&g, true, client_slow_reader, server_fast_writer);
    CHECK(g.client_ok);
    CHECK(g.server_ok);
    CHECK(g.max_buffered <= BOUND);
    CHECK(HAVE_SPLICE ? g.max_spliced > 0 : g.max_spliced == 0);
}

/* 64 MiB each way through an echo server, checked byte by byte. */
#define LARGE_TOTAL (64 * 1024 * 1024)

static void *large_writer(void *arg)
{
    int fd = *(int *)arg;
    bool ok = send_pattern(fd, LARGE_TOTAL);
    shutdown(fd, SHUT_WR);
    return ok ? arg : NULL;
}

static void client_large(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    pthread_t w;
    pthread_create(&w, NULL, large_writer, &fd);
    bool ok = recv_pattern(fd, LARGE_TOTAL, false);
    void *wr;
    pthread_join(w, &wr);
    e->client_ok = ok && wr != NULL;
    close(fd);
}

static void test_large(bool splice)
{
    env e = {0};
    uint64_t before = proxy_spliced_total();
    env_run(&e, splice, client_large, server_echo);
    CHECK(e.client_ok);
    CHECK(e.server_ok);
    CHECK_INT(e.final.bytes_in, LARGE_TOTAL);
    CHECK_INT(e.final.bytes_out, LARGE_TOTAL);
    if (splice && HAVE_SPLICE) {
        CHECK(e.max_spliced > 0);
        CHECK_INT(proxy_spliced_total() - before, 1);
    } else {
        CHECK_INT(e.max_spliced, 0);
        CHECK_INT(proxy_spliced_total(), before);
    }
    CHECK(e.max_buffered <= BOUND);
}

/* 200 connections open at once, each echoing its own message. */
#define NCONN 200

static void *echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char b[256];
    for (;;) {
        ssize_t r = recv(fd, b, sizeof(b), 0);
        if (r <= 0 || !write_all(fd, b, (size_t)r))
            break;
    }
    close(fd);
    return NULL;
}

static void server_many(env *e)
{
    pthread_t t[NCONN];
    int n = 0;
    for (; n < NCONN; n++) {
        int fd = accept_tcp(e->up_fd);
        if (fd < 0)
            break;
        pthread_create(&t[n], NULL, echo_conn, (void *)(intptr_t)fd);
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    e->server_ok = n;
}

static void client_many(env *e)
{
    int fds[NCONN];
    int ok = 0;
    for (int i = 0; i < NCONN; i++)
        fds[i] = connect_env(e);
    for (int i = 0; i < NCONN; i++) {
        char msg[16];
        snprintf(msg, sizeof(msg), "conn %03d", i);
        if (fds[i] >= 0)
            write_all(fds[i], msg, 8);
    }
    for (int i = 0; i < NCONN; i++) {
        char msg[16], b[8];
        snprintf(msg, sizeof(msg), "conn %03d", i);
        if (fds[i] >= 0 && read_exact(fds[i], b, 8) && memcmp(b, msg, 8) == 0)
            ok++;
    }
    for (int i = 0; i < NCONN; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    e->client_ok = ok;
    /* Wait for the server side so that stats are final. */
    pthread_join(e->st, NULL);
    e->server = NULL;
}

static void test_many(bool splice)
{
    env e = {0};
    env_run(&e, splice, client_many, server_many);
    CHECK_INT(e.client_ok, NCONN);
    CHECK_INT(e.server_ok, NCONN);
    CHECK_INT(e.final.conns_total, NCONN);
}

/* proxy_close with connections open closes them and then calls back. */
#define NOPEN 5

static void server_hold(env *e)
{
    pthread_t t[NOPEN];
    int n = 0;
    for (; n < NOPEN; n++) {
        int fd = accept_tcp(e->up_fd);
        if (fd < 0)
            break;
        pthread_create(&t[n], NULL, echo_conn, (void *)(intptr_t)fd);
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    e->server_ok = n;
}

static void client_hold(env *e)
{
    int fds[NOPEN];
    int ok = 0;
    for (int i = 0; i < NOPEN; i++) {
        char b;
        fds[i] = connect_env(e);
        if (fds[i] >= 0 && write_all(fds[i], "x", 1) && read_exact(fds[i], &b, 1))
            ok++;
    }
    e->client_ok = ok;
    /* Ask the loop to close the proxy while all five are open... */
    uv_async_send(&e->done);
    /* ...and each of them must end (EOF or reset), not time out. */
    int ended = 0;
    for (int i = 0; i < NOPEN; i++) {
        if (fds[i] < 0)
            continue;
        char b[8];
        ssize_t r = recv(fds[i], b, sizeof(b), 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            ended++;
        close(fds[i]);
    }
    e->detail = ended;
}

static void test_close_open(bool splice)
{
    env e = {0};
    env_run(&e, splice, client_hold, server_hold);
    CHECK_INT(e.client_ok, NOPEN);
    CHECK_INT(e.detail, NOPEN);
    CHECK_INT(e.server_ok, NOPEN);
    CHECK_INT(e.final.conns_active, NOPEN);
}

/* The upstream never answers the SYN (its backlog is full): after the dial
 * timeout the client sees a clean close. */
static void client_dial_timeout(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    char b[8];
    ssize_t r = recv(fd, b, sizeof(b), 0);
    e->detail = r < 0 ? -errno : r;
    close(fd);
}

TEST(dial_timeout)
{
    env e = {0};
    e.up_port = 0;
    e.up_fd = listen_tcp("127.0.0.1", &e.up_port, 0);
    /* One connection fills a zero backlog; later SYNs are dropped. */
    int filler = connect_tcp(e.up_port);
    proxy_options_default(&e.opts);
    e.opts.dial_timeout_ms = 300;
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    env_run(&e, true, client_dial_timeout, NULL);
    gettimeofday(&t1, NULL);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
    CHECK_INT(e.detail, 0);
    CHECK(ms >= 250 && ms < 5000);
    close(filler);
}

/* ---- Kafka ---- */

/* Metadata v0: request with client id "t" and no topics; response with one
 * broker (node 1, host, port) and no topics. */
static size_t kafka_md_req(uint8_t *b, int32_t corr)
{
    static const uint8_t body[] = {0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 't', 0, 0, 0, 0};
    memcpy(b, "\0\0\0\x0f", 4);
    memcpy(b + 4, body, sizeof(body));
    b[8] = (uint8_t)(corr >> 24);
    b[9] = (uint8_t)(corr >> 16);
    b[10] = (uint8_t)(corr >> 8);
    b[11] = (uint8_t)corr;
    return 4 + sizeof(body);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static size_t kafka_md_resp(uint8_t *b, int32_t corr, const char *host, int32_t port)
{
    size_t hl = strlen(host), n = 4;
    put32(b + n, (uint32_t)corr);
    n += 4;
    put32(b + n, 1); /* one broker */
    n += 4;
    put32(b + n, 1); /* node id */
    n += 4;
    b[n++] = (uint8_t)(hl >> 8);
    b[n++] = (uint8_t)hl;
    memcpy(b + n, host, hl);
    n += hl;
    put32(b + n, (uint32_t)port);
    n += 4;
    put32(b + n, 0); /* no topics */
    n += 4;
    put32(b, (uint32_t)(n - 4));
    return n;
}

static int kmap_calls, kmap_nodes, kdetected, kfreed;

static int kafka_test_map(void *ud, proxy_listener *l, int nodes, int32_t node_id, const char *host,
                          size_t host_len, int32_t port, char *new_host, size_t cap,
                          int32_t *new_port)
{
    (void)ud;
    (void)l;
    (void)node_id;
    kmap_calls++;
    kmap_nodes = nodes;
    if (host_len != 9 || memcmp(host, "127.0.0.1", 9) != 0 || port != 9092)
        return 0;
    snprintf(new_host, cap, "10.1.2.3");
    *new_port = 4242;
    return 1;
}

static void kafka_test_detected(void *ud, proxy_listener *l)
{
    (void)ud;
    (void)l;
    kdetected++;
}

static void kafka_test_free(void *ud)
{
    (void)ud;
    kfreed++;
}

static void kafka_hooks(env *e, int mode)
{
    kmap_calls = kmap_nodes = kdetected = kfreed = 0;
    proxy_kafka h = {mode, kafka_test_map, kafka_test_detected, kafka_test_free, e};
    proxy_set_kafka(e->l, &h);
}

/* The broker answers two Metadata requests; the second response comes in
 * two parts, the client's go-ahead in between (e->arg: a pipe). */
static void server_kafka(env *e)
{
    int fd = accept_tcp(e->up_fd);
    if (fd < 0)
        return;
    uint8_t req[19], want[19], resp[64];
    int *pipefd = e->arg;
    bool ok = true;
    for (int32_t corr = 7; corr <= 8 && ok; corr++) {
        kafka_md_req(want, corr);
        ok = read_exact(fd, req, sizeof(req)) && memcmp(req, want, sizeof(req)) == 0;
        size_t n = kafka_md_resp(resp, corr, "127.0.0.1", 9092);
        if (corr == 7) {
            ok = ok && write_all(fd, resp, n);
        } else {
            char go;
            ok = ok && write_all(fd, resp, 10) && read(pipefd[0], &go, 1) == 1 &&
                 write_all(fd, resp + 10, n - 10);
        }
    }
    /* Not rewritable: ApiVersions-like bytes pass byte for byte. */
    ok = ok && write_all(fd, "\0\0\0\x06\0\0\0\x09zz", 10);
    e->server_ok = ok;
    read_to_eof(fd, NULL, 0);
    close(fd);
}

static void client_kafka(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    int *pipefd = e->arg;
    uint8_t req[19], want[64], got[64];
    size_t n = kafka_md_req(req, 7);
    /* The first request in two writes: forwarding must not wait for more. */
    bool ok = write_all(fd, req, 5) && write_all(fd, req + 5, n - 5);
    size_t wn = kafka_md_resp(want, 7, "10.1.2.3", 4242);
    ok = ok && read_exact(fd, got, wn) && memcmp(got, want, wn) == 0;
    e->client_ok = ok;
    kafka_md_req(req, 8);
    ok = ok && write_all(fd, req, n);
    /* The second response is incomplete upstream: nothing of it may reach
     * the client yet (it is held to be rewritten). */
    struct timeval tv = {0, 300000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t r = recv(fd, got, sizeof(got), 0);
    e->detail = r;
    set_timeouts(fd, 10000);
    ok = ok && write(pipefd[1], "g", 1) == 1;
    wn = kafka_md_resp(want, 8, "10.1.2.3", 4242);
    ok = ok && read_exact(fd, got, wn) && memcmp(got, want, wn) == 0;
    ok = ok && read_exact(fd, got, 10) && memcmp(got, "\0\0\0\x06\0\0\0\x09zz", 10) == 0;
    e->client_ok += ok;
    close(fd);
}

TEST(kafka_rewrite)
{
    env e = {0};
    int pipefd[2];
    REQUIRE(pipe(pipefd) == 0);
    e.arg = pipefd;
    uint64_t before = proxy_spliced_total();
    REQUIRE(env_setup(&e, true));
    kafka_hooks(&e, PROXY_KAFKA_SNIFF);
    env_go(&e, client_kafka, server_kafka);
    close(pipefd[0]);
    close(pipefd[1]);
    CHECK_INT(e.client_ok, 2);
    CHECK(e.server_ok);
    CHECK_INT(e.detail, -1); /* the held part did not leak out early */
    CHECK_INT(kmap_calls, 2);
    CHECK_INT(kmap_nodes, 1);
    CHECK_INT(kdetected, 1);
    CHECK_INT(kfreed, 1);
    CHECK_INT(e.final.kafka_conns, 1);
    CHECK_INT(e.final.kafka_rewritten, 2);
    CHECK_INT(e.final.bytes_in, 38);
    CHECK_INT(proxy_spliced_total(), before);
    /* The held 10 bytes were counted as buffered while held. */
    CHECK(e.max_buffered >= 10);
}

/* Not Kafka: a 6-byte inline command is decided plain by its first byte,
 * and a server that speaks first (a banner) by the server's bytes; either
 * connection then switches to splice. */
static void test_kafka_plain(bool splice)
{
    env e = {0};
    uint64_t before = proxy_spliced_total();
    REQUIRE(env_setup(&e, splice));
    kafka_hooks(&e, PROXY_KAFKA_SNIFF);
    env_go(&e, client_ping, server_ping);
    CHECK_INT(e.client_ok, 3);
    CHECK_INT(e.final.kafka_conns, 0);
    CHECK_INT(kdetected, 0);
    CHECK_INT(kfreed, 1);
    CHECK_INT(proxy_spliced_total() - before, splice && HAVE_SPLICE);
    env f = {0};
    before = proxy_spliced_total();
    REQUIRE(env_setup(&f, splice));
    kafka_hooks(&f, PROXY_KAFKA_SNIFF);
    env_go(&f, client_banner, server_banner);
    CHECK(f.client_ok);
    CHECK(f.server_ok);
    CHECK_INT(f.final.kafka_conns, 0);
    CHECK_INT(kdetected, 0);
    CHECK_INT(proxy_spliced_total() - before, splice && HAVE_SPLICE);
}

/* A Kafka request whose first bytes arrive alone (too few to decide): they
 * reach the broker before the client sends the rest, so classification never
 * delays a byte; then the connection is Kafka and stays on read/write. */
static const uint8_t api_versions_req[14] = {0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff};
static const uint8_t api_versions_resp[10] = {0, 0, 0, 6, 0, 0, 0, 1, 'o', 'k'};

static void server_kafka_split(env *e)
{
    int fd = accept_tcp(e->up_fd);
    if (fd < 0)
        return;
    int *pipefd = e->arg;
    uint8_t b[14];
    bool ok = read_exact(fd, b, 5) && memcmp(b, api_versions_req, 5) == 0;
    /* The client waits for this either way, so a failure cannot hang it. */
    ok = write(pipefd[1], ok ? "g" : "x", 1) == 1 && ok;
    ok = ok && read_exact(fd, b + 5, 9) && memcmp(b, api_versions_req, 14) == 0;
    ok = ok && write_all(fd, api_versions_resp, sizeof(api_versions_resp));
    e->server_ok = ok;
    read_to_eof(fd, NULL, 0);
    close(fd);
}

static void client_kafka_split(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    int *pipefd = e->arg;
    char go;
    uint8_t b[10];
    bool ok = write_all(fd, api_versions_req, 5) && read(pipefd[0], &go, 1) == 1 && go == 'g';
    ok = ok && write_all(fd, api_versions_req + 5, 9) && read_exact(fd, b, sizeof(b)) &&
         memcmp(b, api_versions_resp, sizeof(b)) == 0;
    e->client_ok = ok;
    close(fd);
}

static void test_kafka_first_bytes(bool splice)
{
    env e = {0};
    int pipefd[2];
    REQUIRE(pipe(pipefd) == 0);
    e.arg = pipefd;
    uint64_t before = proxy_spliced_total();
    REQUIRE(env_setup(&e, splice));
    kafka_hooks(&e, PROXY_KAFKA_SNIFF);
    env_go(&e, client_kafka_split, server_kafka_split);
    close(pipefd[0]);
    close(pipefd[1]);
    CHECK(e.client_ok);
    CHECK(e.server_ok);
    CHECK_INT(e.final.kafka_conns, 1);
    CHECK_INT(kdetected, 1);
    CHECK_INT(kfreed, 1);
    CHECK_INT(e.final.bytes_in, 14);
    CHECK_INT(e.final.bytes_out, 10);
    CHECK_INT(proxy_spliced_total(), before);
}

/* Bytes queued in user space when a connection becomes plain: once they
 * drain (the last write completing while libuv still watches the socket for
 * writability) the connection still switches to splice. Here a forced Kafka
 * connection whose broker streams a large response at a client that does
 * not read yet falls back to plain when the client's request framing breaks. */
#define QUEUED_TOTAL (8 * 1024 * 1024)

static void server_queued(env *e)
{
    int fd = accept_tcp(e->up_fd);
    if (fd < 0)
        return;
    uint8_t b[14], head[8];
    put32(head, QUEUED_TOTAL - 4);
    put32(head + 4, 1); /* the correlation id of the request */
    /* The junk is read before closing: unread bytes would make the close a
     * reset. */
    e->server_ok = read_exact(fd, b, 14) && memcmp(b, api_versions_req, 14) == 0 &&
                   write_all(fd, head, 8) && send_pattern(fd, QUEUED_TOTAL - 8) &&
                   read_exact(fd, b, 4);
    close(fd);
}

static void client_queued(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    bool ok = write_all(fd, api_versions_req, 14);
    /* Not reading until the proxy holds bytes for us (bounded wait). */
    for (int i = 0; i < 10000 && __atomic_load_n(&e->max_buffered, __ATOMIC_RELAXED) == 0; i++)
        usleep(1000);
    e->detail = __atomic_load_n(&e->max_buffered, __ATOMIC_RELAXED) > 0;
    /* A negative frame size: plain from now on, with bytes still queued
     * towards us. */
    ok = ok && write_all(fd, "\xff\xff\xff\xf0", 4);
    uint8_t head[8];
    ok = ok && read_exact(fd, head, 8);
    e->client_ok = ok && recv_pattern(fd, QUEUED_TOTAL - 8, false);
    close(fd);
}

TEST(splice_after_queue)
{
    env e = {0};
    uint64_t before = proxy_spliced_total();
    REQUIRE(env_setup(&e, true));
    kafka_hooks(&e, PROXY_KAFKA_FORCE);
    env_go(&e, client_queued, server_queued);
    CHECK(e.client_ok);
    CHECK(e.server_ok);
    CHECK_INT(e.detail, 1);
    CHECK_INT(e.final.kafka_conns, 1);
    CHECK_INT(e.final.bytes_out, QUEUED_TOTAL);
    CHECK_INT(proxy_spliced_total() - before, HAVE_SPLICE);
}

/* The slot itself: a classifier that never decides is cut off after
 * PROXY_CLASSIFY_LIMIT client bytes (no production classifier stays undecided
 * that long today: Kafka's decides within 14 bytes), the connection becomes
 * plain and switches to splice, and the classifier's state is released. */
static size_t undecided_seen;
static int undecided_calls, undecided_freed;

static int undecided_client(void **state, const char *data, size_t len)
{
    (void)data;
    if (!*state)
        *state = malloc(1);
    undecided_calls++;
    undecided_seen += len;
    return PROXY_CLASS_NEED_MORE;
}

static void undecided_free(void *state)
{
    undecided_freed++;
    free(state);
}

static const proxy_classifier undecided = {NULL, undecided_client, NULL, undecided_free};

static void test_first_bytes_limit(bool splice)
{
    env e = {0};
    undecided_seen = 0;
    undecided_calls = undecided_freed = 0;
    uint64_t before = proxy_spliced_total();
    REQUIRE(env_setup(&e, splice));
    proxy_set_first_bytes(e.l, &undecided);
    env_go(&e, client_echo, server_echo);
    CHECK(e.client_ok);
    CHECK(e.server_ok);
    CHECK(undecided_seen >= PROXY_CLASSIFY_LIMIT);
    CHECK(undecided_seen < PROXY_CLASSIFY_LIMIT + PROXY_READ_SIZE);
    CHECK(undecided_calls >= 2);
    CHECK_INT(undecided_freed, 1);
    CHECK_INT(e.final.bytes_in, 100003);
    CHECK_INT(proxy_spliced_total() - before, splice && HAVE_SPLICE);
}

static void client_fallback(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    static char out[50000], back[50000];
    memcpy(out, "\xff\xff\xff\xf0", 4);
    for (size_t i = 4; i < sizeof(out); i++)
        out[i] = (char)pattern(i);
    bool ok = write_all(fd, out, sizeof(out)) && read_exact(fd, back, sizeof(back)) &&
              memcmp(out, back, sizeof(out)) == 0;
    shutdown(fd, SHUT_WR);
    ok = ok && read_to_eof(fd, NULL, 0) == 0;
    close(fd);
    e->client_ok = ok;
}

/* Forced Kafka on a stream whose framing breaks (a negative size): it falls
 * back to plain forwarding without losing or reordering a byte. */
TEST(kafka_fallback)
{
    env e = {0};
    REQUIRE(env_setup(&e, false));
    kafka_hooks(&e, PROXY_KAFKA_FORCE);
    env_go(&e, client_fallback, server_echo);
    CHECK_INT(e.client_ok, 1);
    CHECK(e.server_ok);
    CHECK_INT(e.final.kafka_conns, 1);
    CHECK_INT(kdetected, 1);
    CHECK_INT(kmap_calls, 0);
    /* Forced on a server-first protocol: the banner and echo pass intact. */
    env f = {0};
    REQUIRE(env_setup(&f, true));
    kafka_hooks(&f, PROXY_KAFKA_FORCE);
    env_go(&f, client_banner, server_banner);
    CHECK(f.client_ok);
    CHECK(f.server_ok);
    CHECK_INT(f.final.kafka_conns, 1);
}

/* Binding an address someone else holds fails with nothing left open. */
TEST(addrinuse)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    proxy_options o;
    proxy_options_default(&o);
    uint16_t port = 0;
    int fd = listen_tcp("127.0.0.1", &port, 4);
    REQUIRE(fd >= 0);
    struct sockaddr_in la, ua;
    addr4(&la, "127.0.0.1", port);
    addr4(&ua, "127.0.0.1", 1);
    proxy_listener *l = NULL;
    CHECK_INT(
        proxy_listen(&loop, &o, PROXY_TCP, (struct sockaddr *)&la, (struct sockaddr *)&ua, &l),
        UV_EADDRINUSE);
    close(fd);

#ifdef __linux__
    /* Linux: a wildcard listener (Docker's own for -p 5432:5432) blocks every
     * specific 127.x address on that port. (BSD sockets let a specific
     * SO_REUSEADDR bind beside a wildcard one, and macOS has no 127.0.0.5
     * without an alias.) */
    port = 0;
    fd = listen_tcp("0.0.0.0", &port, 4);
    REQUIRE(fd >= 0);
    addr4(&la, "127.0.0.5", port);
    CHECK_INT(
        proxy_listen(&loop, &o, PROXY_TCP, (struct sockaddr *)&la, (struct sockaddr *)&ua, &l),
        UV_EADDRINUSE);
    close(fd);
#endif

    int ufd = socket(AF_INET, SOCK_DGRAM, 0);
    addr4(&la, "127.0.0.1", 0);
    bind(ufd, (struct sockaddr *)&la, sizeof(la));
    socklen_t len = sizeof(la);
    getsockname(ufd, (struct sockaddr *)&la, &len);
    CHECK_INT(
        proxy_listen(&loop, &o, PROXY_UDP, (struct sockaddr *)&la, (struct sockaddr *)&ua, &l),
        UV_EADDRINUSE);
    close(ufd);
    CHECK_INT(uv_run(&loop, UV_RUN_NOWAIT), 0);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* The UDP socket gets SO_REUSEADDR before bind exactly where the platform
 * asks for it (macOS, to bind beside Docker Desktop's *:53/udp), and a
 * second listener on the same address and port is still refused. The option
 * is read on proxy_bind_socket's fd: uv_udp_open sets reuse options of its
 * own after the bind (SO_REUSEADDR on Linux), so the listener's fd cannot
 * tell what the bind saw. */
TEST(udp_reuseaddr)
{
    struct sockaddr_in la, ua;
    addr4(&la, "127.0.0.1", 0);
    addr4(&ua, "127.0.0.1", 1);
    int fd = -1;
    REQUIRE(proxy_bind_socket((struct sockaddr *)&la, SOCK_DGRAM, &fd) == 0);
    int on = -1;
    socklen_t len = sizeof(on);
    REQUIRE(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, &len) == 0);
    CHECK_INT(on != 0, platform_udp_reuseaddr());
#ifdef __linux__
    /* Linux: SO_REUSEADDR on UDP would let a second socket bind the same
     * address and port. */
    CHECK(!platform_udp_reuseaddr());
#else
    CHECK(platform_udp_reuseaddr());
#endif
    /* TCP keeps it everywhere (a restart binds over TIME_WAIT). */
    int t = -1;
    REQUIRE(proxy_bind_socket((struct sockaddr *)&la, SOCK_STREAM, &t) == 0);
    on = -1;
    CHECK(getsockopt(t, SOL_SOCKET, SO_REUSEADDR, &on, &len) == 0 && on != 0);
    close(t);

    /* An exact duplicate of a proxy's UDP listener conflicts on every
     * platform (on macOS because SO_REUSEADDR is not SO_REUSEPORT). */
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    proxy_listener *l = NULL, *l2 = NULL;
    REQUIRE(proxy_listen_fd(&loop, NULL, PROXY_UDP, fd, (struct sockaddr *)&ua, &l) == 0);
    /* uv_udp_open sets a reuse option of its own after the bind; the
     * listener undoes it, so no later socket can share the exact port. */
    on = -1;
    CHECK(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, &len) == 0);
    CHECK_INT(on != 0, platform_udp_reuseaddr());
#ifdef SO_REUSEPORT
    on = -1;
    CHECK(getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, &len) == 0 && on == 0);
#endif
    struct sockaddr_storage local;
    proxy_local_addr(l, &local);
    CHECK_INT(proxy_listen(&loop, NULL, PROXY_UDP, (struct sockaddr *)&local,
                           (struct sockaddr *)&ua, &l2),
              UV_EADDRINUSE);
    proxy_close(l, NULL, NULL);
    CHECK_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* Whether fd is closed (nothing else opens descriptors meanwhile: the
 * helper threads are joined). */
static bool fd_closed(int fd)
{
    return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* A TCP socket bound elsewhere, listening or not yet, becomes a listener that
 * relays like any other; proxy_close closes the socket. */
static void test_listen_fd(bool splice)
{
    for (int mode = 1; mode <= 2; mode++) {
        env e = {0};
        e.from_fd = mode;
        uint64_t before = proxy_spliced_total();
        REQUIRE(env_setup(&e, splice));
        struct sockaddr_in a;
        socklen_t len = sizeof(a);
        REQUIRE(getsockname(e.lfd, (struct sockaddr *)&a, &len) == 0);
        CHECK_INT(ntohs(a.sin_port), e.port);
        env_go(&e, client_echo, server_echo);
        CHECK(e.client_ok);
        CHECK(e.server_ok);
        CHECK_INT(e.final.bytes_in, 100003);
        CHECK_INT(proxy_spliced_total() - before, splice && HAVE_SPLICE);
        CHECK(fd_closed(e.lfd));
    }
}

/* ---- the dialer (TCP) ---- */

/* Early bytes and the client's FIN are in the proxy's hands before the
 * first upstream refuses; they reach the second. */
static void client_early(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    bool ok = write_all(fd, "request", 7) && shutdown(fd, SHUT_WR) == 0;
    ok = ok && write(e->dialer->gate[1], "g", 1) == 1;
    char b[64];
    long n = read_to_eof(fd, b, sizeof(b));
    e->client_ok = ok && n == 8 && memcmp(b, "response", 8) == 0;
    close(fd);
}

static void test_dial_redial(bool splice)
{
    env e = {0};
    test_dialer d = {0};
    d.gated = true;
    REQUIRE(pipe(d.gate) == 0);
    d.addrs[0] = loopback(AF_INET, dead_port());
    d.naddrs = 2;
    e.dialer = &d;
    REQUIRE(env_setup(&e, splice));
    d.addrs[1] = loopback(AF_INET, e.up_port);
    set_timeouts(e.up_fd, 10000); /* a broken redial fails, not hangs */
    env_go(&e, client_early, server_half_client);
    close(d.gate[0]);
    close(d.gate[1]);
    CHECK(e.client_ok);
    CHECK(e.server_ok);
    CHECK_INT(d.calls, 2);
    CHECK_INT(d.last_attempt, 1);
    CHECK_INT(d.peer.ss_family, AF_INET);
    CHECK(sa_port(&d.peer) != 0 && sa_port(&d.peer) != e.port);
    CHECK_INT(e.final.conns_total, 1);
    CHECK_INT(e.final.bytes_in, 7);
    CHECK_INT(e.final.bytes_out, 8);
    CHECK_INT(e.final.refused, 0);
    CHECK_INT(d.freed, 1);
}

/* 2 MB each way through a redial: the server reads everything to the
 * client's FIN, then answers. */
#define DIAL_TOTAL (2 * 1024 * 1024)

static void server_dial_large(env *e)
{
    int fd = accept_tcp(e->up_fd);
    if (fd < 0)
        return;
    e->server_ok = recv_pattern(fd, DIAL_TOTAL, false) && send_pattern(fd, DIAL_TOTAL);
    close(fd);
}

static void client_dial_large(env *e)
{
    int fd = connect_env(e);
    if (fd < 0)
        return;
    bool ok = send_pattern(fd, DIAL_TOTAL) && shutdown(fd, SHUT_WR) == 0;
    e->client_ok = ok && recv_pattern(fd, DIAL_TOTAL, false);
    close(fd);
}

static void test_dial_large(bool splice)
{
    env e = {0};
    test_dialer d = {0};
    d.addrs[0] = loopback(AF_INET, dead_port());
    d.naddrs = 2;
    e.dialer = &d;
    REQUIRE(env_setup(&e, splice));
    d.addrs[1] = loopback(AF_INET, e.up_port);
    set_timeouts(e.up_fd, 10000); /* a broken redial fails, not hangs */
    env_go(&e, client_dial_large, server_dial_large);
    CHECK(e.client_ok);
    CHECK(e.server_ok);
    CHECK_INT(d.calls, 2);
    CHECK_INT(e.final.bytes_in, DIAL_TOTAL);
    CHECK_INT(e.final.bytes_out, DIAL_TOTAL);
    CHECK(e.max_buffered <= BOUND);
}

/* An IPv4 listener with an IPv6 upstream, an IPv6 one (a socket bound on
 * [::1], as inside a container) with an IPv4 upstream, by dialer and by the
 * fixed upstream. */
static void test_dial_family(bool splice)
{
    if (!have_ipv6())
        TEST_SKIP("[::1] cannot be bound here");
    env e = {0};
    test_dialer d = {0};
    e.up_fd = listen_tcp6(&e.up_port);
    REQUIRE(e.up_fd >= 0);
    d.addrs[0] = loopback(AF_INET6, e.up_port);
    d.naddrs = 1;
    e.dialer = &d;
    env_run(&e, splice, client_echo, server_echo);
    CHECK(e.client_ok);
    CHECK(e.server_ok);
    CHECK_INT(e.final.bytes_out, 100003);
    CHECK_INT(d.peer.ss_family, AF_INET);

    env f = {0};
    test_dialer g = {0};
    f.family = AF_INET6;
    f.dialer = &g;
    g.naddrs = 1;
    REQUIRE(env_setup(&f, splice));
    g.addrs[0] = loopback(AF_INET, f.up_port);
    env_go(&f, client_echo, server_echo);
    CHECK(f.client_ok);
    CHECK(f.server_ok);
    CHECK_INT(f.final.bytes_in, 100003);
    CHECK_INT(g.peer.ss_family, AF_INET6);
    CHECK(fd_closed(f.lfd));

    env h = {0};
    h.family = AF_INET6;
    env_run(&h, splice, client_echo, server_echo);
    CHECK(h.client_ok);
    CHECK(h.server_ok);
}

/* Nothing to try: at once, or after the one upstream refused. */
TEST(dial_enoent)
{
    env e = {0};
    test_dialer d = {0};
    d.result = -ENOENT;
    e.dialer = &d;
    env_run(&e, true, client_refused, NULL);
    CHECK_INT(e.detail, -ECONNRESET);
    CHECK_INT(e.final.conns_total, 1);
    CHECK_INT(e.final.refused, 0);
    CHECK_INT(d.calls, 1);
    CHECK_INT(d.freed, 1);

    env f = {0};
    test_dialer g = {0};
    g.addrs[0] = loopback(AF_INET, dead_port());
    g.naddrs = 1;
    f.dialer = &g;
    env_run(&f, false, client_refused, NULL);
    CHECK_INT(f.detail, -ECONNRESET);
    CHECK_INT(g.calls, 2);
    CHECK_INT(g.last_attempt, 1);
}

/* A refused client is closed without a byte, and counted. */
TEST(dial_eperm)
{
    env e = {0};
    test_dialer d = {0};
    d.result = -EPERM;
    e.dialer = &d;
    env_run(&e, true, client_refused, NULL);
    CHECK_INT(e.detail, 0);
    CHECK_INT(e.final.refused, 1);
    CHECK_INT(e.final.conns_total, 0);
    CHECK_INT(d.calls, 1);
}

/* The dialer's ud is released on replace, on removal, at once when there
 * is no next, not when the same ud comes again, and with the listener. */
TEST(dialer_free)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    struct sockaddr_in la, ua;
    addr4(&la, "127.0.0.1", 0);
    addr4(&ua, "127.0.0.1", 1);
    proxy_listener *l = NULL;
    REQUIRE(proxy_listen(&loop, NULL, PROXY_TCP, (struct sockaddr *)&la, (struct sockaddr *)&ua,
                         &l) == 0);
    test_dialer a = {0}, b = {0}, c = {0}, d = {0};
    td_install(l, &a);
    td_install(l, &b);
    CHECK_INT(a.freed, 1);
    proxy_set_dialer(l, NULL);
    CHECK_INT(b.freed, 1);
    proxy_dialer none = {NULL, td_free, &c};
    proxy_set_dialer(l, &none);
    CHECK_INT(c.freed, 1);
    td_install(l, &d);
    td_install(l, &d);
    CHECK_INT(d.freed, 0);
    proxy_close(l, NULL, NULL);
    CHECK_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_INT(d.freed, 1);
    CHECK_INT(a.freed + b.freed + c.freed, 3);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* Refused sockets are closed too, and nothing is left in the loop. */
TEST(listen_fd_errors)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    struct sockaddr_in la, ua;
    addr4(&la, "127.0.0.1", 0);
    addr4(&ua, "127.0.0.1", 1);
    const struct sockaddr *up = (const struct sockaddr *)&ua;
    proxy_listener *l = NULL;
    CHECK_INT(proxy_listen_fd(&loop, NULL, PROXY_TCP, -1, up, &l), UV_EBADF);

    /* A datagram socket for TCP. */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(bind(fd, (struct sockaddr *)&la, sizeof(la)) == 0);
    CHECK_INT(proxy_listen_fd(&loop, NULL, PROXY_TCP, fd, up, &l), UV_EINVAL);
    CHECK(fd_closed(fd));

    /* Not bound. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_INT(proxy_listen_fd(&loop, NULL, PROXY_TCP, fd, up, &l), UV_EINVAL);
    CHECK(fd_closed(fd));
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK_INT(proxy_listen_fd(&loop, NULL, PROXY_UDP, fd, up, &l), UV_EINVAL);
    CHECK(fd_closed(fd));

    /* No upstream. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(bind(fd, (struct sockaddr *)&la, sizeof(la)) == 0);
    CHECK_INT(proxy_listen_fd(&loop, NULL, PROXY_TCP, fd, NULL, &l), UV_EINVAL);
    CHECK(fd_closed(fd));

#ifdef __linux__
    /* Linux lets two SO_REUSEADDR sockets bind one address while neither
     * listens; the second to listen gets EADDRINUSE. */
    int on = 1;
    int a = socket(AF_INET, SOCK_STREAM, 0), b = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(a, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    setsockopt(b, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    REQUIRE(bind(a, (struct sockaddr *)&la, sizeof(la)) == 0);
    struct sockaddr_in got;
    socklen_t len = sizeof(got);
    getsockname(a, (struct sockaddr *)&got, &len);
    REQUIRE(bind(b, (struct sockaddr *)&got, sizeof(got)) == 0);
    REQUIRE(listen(a, 1) == 0);
    CHECK_INT(proxy_listen_fd(&loop, NULL, PROXY_TCP, b, up, &l), UV_EADDRINUSE);
    CHECK(fd_closed(b));
    close(a);
#endif
    CHECK(l == NULL);
    CHECK_INT(uv_run(&loop, UV_RUN_NOWAIT), 0);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* EMFILE: with every descriptor taken, the pending connection waits in the
 * backlog while accepting pauses, and is served once descriptors are free. */
static int hog[1024];
static int nhog;

static void on_release(uv_timer_t *t)
{
    for (int i = 0; i < nhog; i++)
        close(hog[i]);
    nhog = 0;
    uv_close((uv_handle_t *)t, NULL);
}

static void server_emfile(env *e)
{
    int fd = -1;
    /* This thread is out of descriptors too until the release. */
    for (int i = 0; i < 500 && fd < 0; i++) {
        fd = accept_tcp(e->up_fd);
        if (fd < 0)
            usleep(10000);
    }
    if (fd < 0)
        return;
    char b[2];
    e->server_ok = read_exact(fd, b, 2) && write_all(fd, b, 2);
    close(fd);
}

static void client_emfile(env *e)
{
    int fd = (int)e->detail;
    struct sockaddr_in a;
    addr4(&a, "127.0.0.1", e->port);
    char b[2];
    e->client_ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && write_all(fd, "hi", 2) &&
                   read_exact(fd, b, 2) && memcmp(b, "hi", 2) == 0;
    close(fd);
}

TEST(emfile)
{
    env e = {0};
    REQUIRE(env_setup(&e, true));
    /* The client's socket exists before descriptors run out; its connect
     * then completes in the kernel without needing one. */
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    set_timeouts(cfd, 10000);
    e.detail = cfd;
    /* A low limit keeps the hogging cheap; restored below. */
    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    low = old;
    low.rlim_cur = 1024;
    setrlimit(RLIMIT_NOFILE, &low);
    nhog = 0;
    while (nhog < (int)(sizeof(hog) / sizeof(hog[0]))) {
        int fd = open("/dev/null", O_RDONLY);
        if (fd < 0)
            break;
        hog[nhog++] = fd;
    }
    uv_timer_t release;
    uv_timer_init(&e.loop, &release);
    uv_timer_start(&release, on_release, 350, 0);
    int hogged = nhog;
    env_go(&e, client_emfile, server_emfile);
    setrlimit(RLIMIT_NOFILE, &old);
    fprintf(stderr, "  hogged %d fds, client %d server %d pauses %llu\n", hogged, e.client_ok,
            e.server_ok, (unsigned long long)e.final.accept_pauses);
    CHECK(e.client_ok);
    CHECK(e.server_ok);
    CHECK(e.final.accept_pauses > 0);
    CHECK_INT(e.final.conns_total, 1);
}

/* ---- UDP ---- */

typedef struct udp_env {
    uv_loop_t loop;
    proxy_listener *l;
    uv_async_t phase;
    uv_timer_t poll;
    uint16_t port, up_port;
    int up_fd;
    proxy_stats after_traffic, at_end;
    uint64_t t_traffic, t_expired;
    int replies, silent;
    bool closed;
} udp_env;

static void *udp_echo_main(void *arg)
{
    udp_env *u = arg;
    for (;;) {
        char b[2048];
        struct sockaddr_storage from;
        socklen_t fl = sizeof(from);
        ssize_t r = recvfrom(u->up_fd, b, sizeof(b), 0, (struct sockaddr *)&from, &fl);
        if (r < 0 || (r == 4 && memcmp(b, "STOP", 4) == 0))
            break;
        sendto(u->up_fd, b, (size_t)r, 0, (struct sockaddr *)&from, fl);
    }
    return NULL;
}

static void *udp_client_main(void *arg)
{
    udp_env *u = arg;
    struct sockaddr_in pa;
    addr4(&pa, "127.0.0.1", u->port);
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
        set_timeouts(fds[i], i < 2 ? 5000 : 300);
        connect(fds[i], (struct sockaddr *)&pa, sizeof(pa));
    }
    /* Two clients (the cap), three round trips each, interleaved. */
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 2; i++) {
            char msg[32], b[32];
            int n = snprintf(msg, sizeof(msg), "client %d round %d", i, round);
            send(fds[i], msg, (size_t)n, 0);
            ssize_t r = recv(fds[i], b, sizeof(b), 0);
            if (r == n && memcmp(b, msg, (size_t)n) == 0)
                u->replies++;
        }
    /* A third client is beyond the cap: its datagram is dropped. The
     * short timeout is the assertion, not synchronisation. */
    char b[32];
    send(fds[2], "third", 5, 0);
    if (recv(fds[2], b, sizeof(b), 0) < 0)
        u->silent = 1;
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    uv_async_send(&u->phase);
    return NULL;
}

static void on_udp_closed(void *arg)
{
    ((udp_env *)arg)->closed = true;
}

static void on_udp_poll(uv_timer_t *t)
{
    udp_env *u = t->data;
    proxy_stats st;
    proxy_get_stats(u->l, &st);
    if (st.conns_active != 0 && uv_now(&u->loop) - u->t_traffic < 6000)
        return;
    u->t_expired = uv_now(&u->loop);
    u->at_end = st;
    uv_close((uv_handle_t *)t, NULL);
    proxy_close(u->l, on_udp_closed, u);
}

static void on_udp_phase(uv_async_t *a)
{
    udp_env *u = a->data;
    proxy_get_stats(u->l, &u->after_traffic);
    u->t_traffic = uv_now(&u->loop);
    uv_close((uv_handle_t *)a, NULL);
    /* Poll with a deadline for the idle sessions to expire. */
    uv_timer_start(&u->poll, on_udp_poll, 20, 20);
}

TEST(udp)
{
    udp_env u = {0};
    REQUIRE(uv_loop_init(&u.loop) == 0);
    u.up_fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a;
    addr4(&a, "127.0.0.1", 0);
    bind(u.up_fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(u.up_fd, (struct sockaddr *)&a, &len);
    u.up_port = ntohs(a.sin_port);
    set_timeouts(u.up_fd, 10000);

    proxy_options o;
    proxy_options_default(&o);
    o.udp_idle_s = 1;
    o.udp_max_sessions = 2;
    struct sockaddr_in la, ua;
    addr4(&la, "127.0.0.1", 0);
    addr4(&ua, "127.0.0.1", u.up_port);
    REQUIRE(proxy_listen(&u.loop, &o, PROXY_UDP, (struct sockaddr *)&la, (struct sockaddr *)&ua,
                         &u.l) == 0);
    struct sockaddr_storage ss;
    proxy_local_addr(u.l, &ss);
    u.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    uv_async_init(&u.loop, &u.phase, on_udp_phase);
    u.phase.data = &u;
    uv_timer_init(&u.loop, &u.poll);
    u.poll.data = &u;

    pthread_t st, ct;
    pthread_create(&st, NULL, udp_echo_main, &u);
    pthread_create(&ct, NULL, udp_client_main, &u);
    uv_run(&u.loop, UV_RUN_DEFAULT);
    pthread_join(ct, NULL);
    /* Stop the echo server. */
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    sendto(s, "STOP", 4, 0, (struct sockaddr *)&ua, sizeof(ua));
    close(s);
    pthread_join(st, NULL);
    close(u.up_fd);

    CHECK_INT(u.replies, 6);
    CHECK_INT(u.silent, 1);
    CHECK_INT(u.after_traffic.conns_total, 2);
    CHECK_INT(u.after_traffic.conns_active, 2);
    CHECK(u.after_traffic.dropped >= 1);
    CHECK(u.after_traffic.bytes_in > 0);
    CHECK_INT(u.after_traffic.bytes_in, u.after_traffic.bytes_out);
    CHECK_INT(u.at_end.conns_active, 0);
    /* Expired after about a second of idleness, not at the deadline. */
    CHECK(u.t_expired - u.t_traffic < 3000);
    CHECK(u.closed);
    CHECK_INT(uv_loop_close(&u.loop), 0);
}

/* A UDP socket bound elsewhere relays datagrams both ways. */
typedef struct udp_fd_env {
    udp_env u;
    uv_async_t done;
    int ok;
} udp_fd_env;

static void *udp_fd_client_main(void *arg)
{
    udp_fd_env *f = arg;
    struct sockaddr_in pa;
    addr4(&pa, "127.0.0.1", f->u.port);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    set_timeouts(fd, 5000);
    connect(fd, (struct sockaddr *)&pa, sizeof(pa));
    char b[16];
    f->ok = send(fd, "hello", 5, 0) == 5 && recv(fd, b, sizeof(b), 0) == 5 &&
            memcmp(b, "hello", 5) == 0;
    close(fd);
    uv_async_send(&f->done);
    return NULL;
}

static void on_udp_fd_done(uv_async_t *a)
{
    udp_fd_env *f = a->data;
    proxy_get_stats(f->u.l, &f->u.at_end);
    proxy_close(f->u.l, on_udp_closed, &f->u);
    uv_close((uv_handle_t *)a, NULL);
}

TEST(listen_fd_udp)
{
    udp_fd_env f = {0};
    udp_env *u = &f.u;
    REQUIRE(uv_loop_init(&u->loop) == 0);
    struct sockaddr_in ua, la;
    addr4(&ua, "127.0.0.1", 0);
    u->up_fd = socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(bind(u->up_fd, (struct sockaddr *)&ua, sizeof(ua)) == 0);
    socklen_t len = sizeof(ua);
    getsockname(u->up_fd, (struct sockaddr *)&ua, &len);
    set_timeouts(u->up_fd, 10000);

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    addr4(&la, "127.0.0.1", 0);
    REQUIRE(bind(fd, (struct sockaddr *)&la, sizeof(la)) == 0);
    len = sizeof(la);
    getsockname(fd, (struct sockaddr *)&la, &len);
    REQUIRE(proxy_listen_fd(&u->loop, NULL, PROXY_UDP, fd, (struct sockaddr *)&ua, &u->l) == 0);
    struct sockaddr_storage ss;
    proxy_local_addr(u->l, &ss);
    u->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    CHECK_INT(u->port, ntohs(la.sin_port));
    uv_async_init(&u->loop, &f.done, on_udp_fd_done);
    f.done.data = &f;

    pthread_t st, ct;
    pthread_create(&st, NULL, udp_echo_main, u);
    pthread_create(&ct, NULL, udp_fd_client_main, &f);
    uv_run(&u->loop, UV_RUN_DEFAULT);
    pthread_join(ct, NULL);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    sendto(s, "STOP", 4, 0, (struct sockaddr *)&ua, sizeof(ua));
    close(s);
    pthread_join(st, NULL);
    close(u->up_fd);

    CHECK(f.ok);
    CHECK_INT(u->at_end.conns_total, 1);
    CHECK_INT(u->at_end.bytes_in, 5);
    CHECK_INT(u->at_end.bytes_out, 5);
    CHECK(u->closed);
    CHECK(fd_closed(fd));
    CHECK_INT(uv_loop_close(&u->loop), 0);
}

/* A UDP listener with a dialer: the first client's session goes where the
 * dialer says (asked once, not per datagram), the second is refused, the
 * third finds nothing. The listener is IPv4 or a socket bound on [::1];
 * the upstream is IPv4 either way. */
typedef struct udp_dial_env {
    udp_env u;
    uv_async_t done;
    int family;
    struct sockaddr_storage echo;
    unsigned calls;
    int ok, silent;
} udp_dial_env;

static int udp_td_next(void *ud, unsigned attempt, const struct sockaddr *peer,
                       struct sockaddr_storage *out)
{
    udp_dial_env *f = ud;
    (void)attempt;
    if (peer->sa_family != f->family)
        return -EINVAL; /* taken as -ENOENT; fails the test below */
    static const int answers[] = {0, -EPERM, -ENOENT};
    int r = f->calls < 3 ? answers[f->calls] : -ENOENT;
    f->calls++;
    if (r == 0)
        *out = f->echo;
    return r;
}

static void *udp_dial_client_main(void *arg)
{
    udp_dial_env *f = arg;
    struct sockaddr_storage pa = loopback(f->family, f->u.port);
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = socket(f->family, SOCK_DGRAM, 0);
        /* The short timeouts are the assertion (nothing comes back), not
         * synchronisation. */
        set_timeouts(fds[i], i == 0 ? 5000 : 300);
        connect(fds[i], (struct sockaddr *)&pa, sa_size(&pa));
    }
    char b[16];
    f->ok = send(fds[0], "one", 3, 0) == 3 && recv(fds[0], b, sizeof(b), 0) == 3 &&
            memcmp(b, "one", 3) == 0 && send(fds[0], "two", 3, 0) == 3 &&
            recv(fds[0], b, sizeof(b), 0) == 3 && memcmp(b, "two", 3) == 0;
    for (int i = 1; i < 3; i++) {
        send(fds[i], "x", 1, 0);
        if (recv(fds[i], b, sizeof(b), 0) < 0)
            f->silent++;
    }
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    uv_async_send(&f->done);
    return NULL;
}

static void on_udp_dial_done(uv_async_t *a)
{
    udp_dial_env *f = a->data;
    proxy_get_stats(f->u.l, &f->u.at_end);
    proxy_close(f->u.l, on_udp_closed, &f->u);
    uv_close((uv_handle_t *)a, NULL);
}

static void udp_dial_case(int family)
{
    udp_dial_env f = {0};
    udp_env *u = &f.u;
    f.family = family;
    REQUIRE(uv_loop_init(&u->loop) == 0);
    u->up_fd = bound_socket(AF_INET, SOCK_DGRAM);
    REQUIRE(u->up_fd >= 0);
    socklen_t len = sizeof(f.echo);
    getsockname(u->up_fd, (struct sockaddr *)&f.echo, &len);
    set_timeouts(u->up_fd, 10000);

    int fd = bound_socket(family, SOCK_DGRAM);
    REQUIRE(fd >= 0);
    /* The fixed upstream leads nowhere: only the dialer's answer works. */
    struct sockaddr_in nowhere;
    addr4(&nowhere, "127.0.0.1", 1);
    REQUIRE(proxy_listen_fd(&u->loop, NULL, PROXY_UDP, fd, (struct sockaddr *)&nowhere, &u->l) ==
            0);
    proxy_dialer pd = {udp_td_next, NULL, &f};
    proxy_set_dialer(u->l, &pd);
    struct sockaddr_storage ss;
    proxy_local_addr(u->l, &ss);
    CHECK_INT(ss.ss_family, family);
    u->port = sa_port(&ss);
    uv_async_init(&u->loop, &f.done, on_udp_dial_done);
    f.done.data = &f;

    pthread_t st, ct;
    pthread_create(&st, NULL, udp_echo_main, u);
    pthread_create(&ct, NULL, udp_dial_client_main, &f);
    uv_run(&u->loop, UV_RUN_DEFAULT);
    pthread_join(ct, NULL);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    sendto(s, "STOP", 4, 0, (struct sockaddr *)&f.echo, sa_size(&f.echo));
    close(s);
    pthread_join(st, NULL);
    close(u->up_fd);

    CHECK(f.ok);
    CHECK_INT(f.silent, 2);
    CHECK_INT(f.calls, 3);
    CHECK_INT(u->at_end.conns_total, 1);
    CHECK_INT(u->at_end.bytes_in, 6);
    CHECK_INT(u->at_end.bytes_out, 6);
    CHECK_INT(u->at_end.refused, 1);
    CHECK_INT(u->at_end.dropped, 2);
    CHECK(u->closed);
    CHECK(fd_closed(fd));
    CHECK_INT(uv_loop_close(&u->loop), 0);
}

TEST(udp_dial)
{
    udp_dial_case(AF_INET);
}

TEST(udp_dial_v6)
{
    if (!have_ipv6())
        TEST_SKIP("[::1] cannot be bound here");
    udp_dial_case(AF_INET6);
}

/* ---- caps and the idle timeout (issue 15) ---- */

/* Echoes every connection it accepts, each in a thread, until e->arg's
 * count of accepts (an int) is reached or accept times out. */
static void server_echo_n(env *e)
{
    int want = *(int *)e->arg;
    pthread_t t[16];
    int n = 0;
    for (; n < want && n < 16; n++) {
        int fd = accept_tcp(e->up_fd);
        if (fd < 0)
            break;
        pthread_create(&t[n], NULL, echo_conn, (void *)(intptr_t)fd);
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    e->server_ok = n;
}

/* A round trip of one byte: the connection is relayed end to end. */
static bool ping_once(int fd)
{
    char b;
    return fd >= 0 && write_all(fd, "p", 1) && read_exact(fd, &b, 1) && b == 'p';
}

/* The proxy closes a capped connection at once: EOF or a reset, never
 * an echo and never the 10 s socket timeout. */
static bool turned_away(int fd)
{
    if (fd < 0)
        return true; /* refused outright counts too */
    char b;
    (void)write_all(fd, "p", 1);
    ssize_t r = recv(fd, &b, 1, 0);
    return r == 0 || (r < 0 && (errno == ECONNRESET || errno == EPIPE));
}

/* Connects until a round trip works (the proxy frees a closed
 * connection's slot on a later loop turn), at most 5 s. */
static int connect_when_room(env *e)
{
    for (int i = 0; i < 250; i++) {
        int fd = connect_env(e);
        if (ping_once(fd))
            return fd;
        if (fd >= 0)
            close(fd);
        usleep(20 * 1000);
    }
    return -1;
}

/* Two connections fit, the third is turned away, and once one closes a
 * new one fits again. */
static void client_cap(env *e)
{
    int a = connect_env(e), b = connect_env(e);
    int ok = ping_once(a) && ping_once(b);
    int c = connect_env(e);
    ok += turned_away(c);
    if (c >= 0)
        close(c);
    close(a);
    int d = connect_when_room(e);
    ok += ping_once(d);
    if (d >= 0)
        close(d);
    close(b);
    e->client_ok = ok;
}

TEST(cap_per_port)
{
    env e = {0};
    int accepts = 3; /* a, b, d: the capped ones never dial */
    e.arg = &accepts;
    proxy_options_default(&e.opts);
    e.opts.max_conns = 2;
    env_run(&e, true, client_cap, server_echo_n);
    CHECK_INT(e.client_ok, 3);
    CHECK_INT(e.server_ok, 3);
    CHECK(e.final.capped >= 1);
    CHECK_INT(e.final.conns_total, 3);
    proxy_totals t;
    proxy_get_totals(&t);
    CHECK_INT(t.fds, 0); /* the listener and its connections all released */
    CHECK_INT(t.conns, 0);
}

/* The process-wide cap: the same with no cap on the port. */
TEST(cap_total)
{
    proxy_totals before;
    proxy_get_totals(&before);
    proxy_limits lim = {.max_conns = 2};
    proxy_set_limits(&lim);
    env e = {0};
    int accepts = 3;
    e.arg = &accepts;
    env_run(&e, true, client_cap, server_echo_n);
    proxy_set_limits(NULL);
    CHECK_INT(e.client_ok, 3);
    CHECK(e.final.capped >= 1);
    proxy_totals after;
    proxy_get_totals(&after);
    CHECK(after.capped >= before.capped + 1);
    CHECK_INT(after.conns, 0);
}

/* The descriptor budget: the listener (1) and two connections (2 each)
 * fit in 5, a third does not, and no connection may splice (4 more). */
static void client_budget(env *e)
{
    int a = connect_env(e), b = connect_env(e);
    /* Traffic first, so that a connection that could splice would. */
    int ok = ping_once(a) && ping_once(a) && ping_once(b);
    int c = connect_env(e);
    ok += turned_away(c);
    if (c >= 0)
        close(c);
    e->client_ok = ok;
    close(a);
    close(b);
}

TEST(fd_budget)
{
    proxy_totals t;
    proxy_get_totals(&t);
    proxy_limits lim = {.fd_budget = t.fds + 5};
    proxy_set_limits(&lim);
    env e = {0};
    int accepts = 2;
    e.arg = &accepts;
    env_run(&e, true, client_budget, server_echo_n);
    proxy_set_limits(NULL);
    CHECK_INT(e.client_ok, 2);
    CHECK_INT(e.server_ok, 2);
    CHECK(e.final.capped >= 1);
    CHECK_INT(e.max_spliced, 0);
    proxy_get_totals(&t);
    CHECK_INT(t.fds, 0);
    CHECK_INT(t.conns, 0);
}

/* The idle timeout (1 s): a quiet connection is closed with a FIN, one
 * with a byte each 200 ms lives on past it. With splice the busy one's
 * bytes are counted by the splice relay. */
static void client_idle(env *e)
{
    int quiet = connect_env(e), busy = connect_env(e);
    int ok = ping_once(quiet) && ping_once(busy);
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    long ms = 0;
    bool alive = true;
    while (alive && ms < 2500) {
        alive = ping_once(busy);
        usleep(200 * 1000); /* the pace of the busy connection's traffic */
        gettimeofday(&t1, NULL);
        ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
    }
    ok += alive;
    char b;
    ssize_t r = recv(quiet, &b, 1, 0); /* closed by now, or soon */
    ok += r == 0;
    close(quiet);
    close(busy);
    e->client_ok = ok;
}

static void test_idle(bool splice)
{
    env e = {0};
    int accepts = 2;
    e.arg = &accepts;
    proxy_options_default(&e.opts);
    e.opts.tcp_idle_s = 1;
    env_run(&e, splice, client_idle, server_echo_n);
    CHECK_INT(e.client_ok, 3);
    CHECK_INT(e.final.idle_closed, 1);
}

/* UDP: the process-wide cap drops a second client's datagrams and counts
 * them; the first client's session works throughout. One thread: the
 * loop is pumped, and the upstream echoes, between checks. */
static void pump(uv_loop_t *loop, int echo_fd)
{
    uv_run(loop, UV_RUN_NOWAIT);
    char b[64];
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t r = recvfrom(echo_fd, b, sizeof(b), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
    if (r > 0)
        sendto(echo_fd, b, (size_t)r, 0, (struct sockaddr *)&from, fl);
}

/* Pumps until fd has a datagram (its first byte in *got), at most 5 s. */
static bool pump_reply(uv_loop_t *loop, int echo_fd, int fd, char *got)
{
    for (int i = 0; i < 1000; i++) {
        pump(loop, echo_fd);
        if (recv(fd, got, 1, MSG_DONTWAIT) == 1)
            return true;
        usleep(5 * 1000);
    }
    return false;
}

/* Pumps until the listener has turned more than n clients' datagrams
 * away, at most 5 s. */
static bool pump_capped(uv_loop_t *loop, int echo_fd, proxy_listener *l, uint64_t n)
{
    for (int i = 0; i < 1000; i++) {
        pump(loop, echo_fd);
        proxy_stats st;
        proxy_get_stats(l, &st);
        if (st.capped > n)
            return true;
        usleep(5 * 1000);
    }
    return false;
}

TEST(udp_cap_total)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    int up = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a;
    addr4(&a, "127.0.0.1", 0);
    REQUIRE(bind(up, (struct sockaddr *)&a, sizeof(a)) == 0);
    socklen_t len = sizeof(a);
    getsockname(up, (struct sockaddr *)&a, &len);
    struct sockaddr_in la;
    addr4(&la, "127.0.0.1", 0);
    proxy_listener *l = NULL;
    REQUIRE(proxy_listen(&loop, NULL, PROXY_UDP, (struct sockaddr *)&la, (struct sockaddr *)&a,
                         &l) == 0);
    struct sockaddr_storage ss;
    proxy_local_addr(l, &ss);
    const struct sockaddr *to = (const struct sockaddr *)&ss;
    proxy_limits lim = {.max_conns = 1};
    proxy_set_limits(&lim);
    int c1 = socket(AF_INET, SOCK_DGRAM, 0), c2 = socket(AF_INET, SOCK_DGRAM, 0);
    char got = 0;
    sendto(c1, "1", 1, 0, to, sizeof(struct sockaddr_in));
    CHECK(pump_reply(&loop, up, c1, &got));
    CHECK_INT(got, '1');
    sendto(c2, "2", 1, 0, to, sizeof(struct sockaddr_in));
    CHECK(pump_capped(&loop, up, l, 0));
    got = 0;
    sendto(c1, "3", 1, 0, to, sizeof(struct sockaddr_in));
    CHECK(pump_reply(&loop, up, c1, &got));
    CHECK_INT(got, '3');
    CHECK(recv(c2, &got, 1, MSG_DONTWAIT) < 0); /* it never had a session */
    proxy_stats st;
    proxy_get_stats(l, &st);
    CHECK_INT(st.conns_active, 1);
    CHECK_INT(st.conns_total, 1);
    CHECK(st.dropped >= 1);
    proxy_set_limits(NULL);
    proxy_close(l, NULL, NULL);
    CHECK_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_INT(uv_loop_close(&loop), 0);
    proxy_totals t;
    proxy_get_totals(&t);
    CHECK_INT(t.conns, 0);
    close(c1);
    close(c2);
    close(up);
}

/* The defaults loopholed(8) states. */
TEST(caps_derive)
{
    proxy_caps c;
    proxy_caps_derive(524288, &c);
    CHECK_INT(c.reserve, 2048);
    CHECK_INT(c.limits.fd_budget, 522240);
    CHECK_INT(c.limits.max_conns, 87040);
    CHECK_INT(c.max_conns_per_port, 21760);
    CHECK_INT(c.udp_max_sessions, 21760);
    proxy_caps_derive(1024, &c);
    CHECK_INT(c.reserve, 256);
    CHECK_INT(c.limits.max_conns, 128);
    CHECK_INT(c.max_conns_per_port, 64);
    proxy_caps_derive(256, &c); /* launchd's default: the reserve's floor */
    CHECK_INT(c.reserve, PROXY_RESERVE_MIN);
    CHECK_INT(c.limits.fd_budget, 64);
    CHECK_INT(c.limits.max_conns, 10);
    CHECK_INT(c.max_conns_per_port, 10);
    proxy_caps_derive(10, &c); /* absurdly low: everything reserved, yet caps */
    CHECK_INT(c.limits.fd_budget, 1);
    CHECK_INT(c.limits.max_conns, 1);
    proxy_caps_derive(0, &c); /* no limit: no caps */
    CHECK_INT(c.limits.fd_budget, 0);
    CHECK_INT(c.limits.max_conns, 0);
    CHECK_INT(c.udp_max_sessions, 1024);
}

/* The TCP cases, each registered twice: <case>/splice asks for splice(2)
 * (which off Linux stays on the read/write path: HAVE_SPLICE), <case>/rw
 * never does. */
static const struct {
    const char *name;
    void (*fn)(bool splice);
} tcp_cases[] = {
    {"echo", test_echo},
    {"half_close", test_half_close},
    {"first_bytes", test_first_bytes},
    {"reset", test_reset},
    {"client_reset", test_client_reset},
    {"large", test_large},
    {"many", test_many},
    {"close_open", test_close_open},
    {"kafka_plain", test_kafka_plain},
    {"kafka_first_bytes", test_kafka_first_bytes},
    {"first_bytes_limit", test_first_bytes_limit},
    {"listen_fd", test_listen_fd},
    {"dial_redial", test_dial_redial},
    {"dial_large", test_dial_large},
    {"dial_family", test_dial_family},
    {"idle", test_idle},
};

static const test_mode splice_modes[] = {{"splice", true}, {"rw", false}};

TEST_TABLE(tcp_cases, splice_modes)

TEST_SETUP()
{
    signal(SIGPIPE, SIG_IGN);
    /* 200 connections with splice pipes need more than 1024 descriptors. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}
