/* The proxy listener: socket setup, options, stats, closing. See proxy.h
 * for the model and proxy_int.h for how the files share the work: TCP in
 * proxy_tcp.c, UDP in proxy_udp.c, Kafka in proxy_kafka.c. */
#include "proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "platform.h"
#include "proxy_int.h"
#include "util.h"

/* Process-wide: one loop, so plain counters (see proxy_limits). */
static proxy_limits limits;
static proxy_totals totals;

char *proxy_scratch(void)
{
    static _Thread_local char scratch[PROXY_READ_SIZE];
    return scratch;
}

void proxy_caps_derive(uint64_t nofile, proxy_caps *out)
{
    memset(out, 0, sizeof(*out));
    out->nofile = nofile;
    if (nofile == 0) {
        out->udp_max_sessions = CONFIG_DEFAULT_UDP_MAX_SESSIONS;
        return;
    }
    uint64_t reserve = nofile / 4;
    if (reserve < PROXY_RESERVE_MIN)
        reserve = PROXY_RESERVE_MIN;
    if (reserve > 2048)
        reserve = 2048;
    if (reserve > nofile)
        reserve = nofile;
    out->reserve = reserve;
    /* At least 1: 0 would mean no limit (listeners still open; every
     * connection is turned away). */
    out->limits.fd_budget = nofile > reserve ? nofile - reserve : 1;
    uint64_t total = out->limits.fd_budget / 6;
    if (total == 0)
        total = 1; /* still a cap: 0 would mean none */
    out->limits.max_conns = total;
    uint64_t per = total / 4;
    uint64_t floor = total < 64 ? total : 64;
    if (per < floor)
        per = floor;
    if (per > UINT_MAX)
        per = UINT_MAX;
    out->max_conns_per_port = (unsigned)per;
    out->udp_max_sessions = (unsigned)per;
}

void proxy_set_limits(const proxy_limits *lim)
{
    if (lim)
        limits = *lim;
    else
        memset(&limits, 0, sizeof(limits));
}

void proxy_get_totals(proxy_totals *t)
{
    *t = totals;
}

bool proxy_room(unsigned fds, unsigned conns)
{
    if (limits.fd_budget && totals.fds + fds > limits.fd_budget)
        return false;
    return !(limits.max_conns && conns && totals.conns + conns > limits.max_conns);
}

void proxy_count(int fds, int conns)
{
    LH_REQUIRE(fds >= 0 || totals.fds >= (uint64_t)-fds);
    LH_REQUIRE(conns >= 0 || totals.conns >= (uint64_t)-conns);
    totals.fds += (uint64_t)(int64_t)fds;
    totals.conns += (uint64_t)(int64_t)conns;
}

void proxy_count_capped(proxy_listener *l)
{
    l->st.capped++;
    totals.capped++;
}

void proxy_count_idle_closed(proxy_listener *l)
{
    l->st.idle_closed++;
    totals.idle_closed++;
}

void proxy_options_default(proxy_options *o)
{
    memset(o, 0, sizeof(*o));
    o->dial_timeout_ms = CONFIG_DEFAULT_DIAL_TIMEOUT_MS;
    o->udp_idle_s = CONFIG_DEFAULT_UDP_IDLE_S;
    o->udp_max_sessions = CONFIG_DEFAULT_UDP_MAX_SESSIONS;
    o->tcp_idle_s = CONFIG_DEFAULT_TCP_IDLE_S;
    o->splice = true;
}

static socklen_t sa_len(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static bool sa_ok(const struct sockaddr *sa)
{
    return sa && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
}

void proxy_sa_copy(struct sockaddr_storage *dst, const struct sockaddr *src)
{
    memset(dst, 0, sizeof(*dst));
    memcpy(dst, src, sa_len(src));
}

void proxy_listener_unref(proxy_listener *l)
{
    LH_REQUIRE(l->refs > 0);
    if (--l->refs > 0)
        return;
    void (*cb)(void *) = l->close_cb;
    void *arg = l->close_arg;
    if (l->counted)
        proxy_count(-1, 0);
    proxy_kafka_release(l);
    if (l->dialer.free_ud)
        l->dialer.free_ud(l->dialer.ud);
    free(l->buckets);
    free(l);
    if (cb)
        cb(arg);
}

static void on_listener_handle_closed(uv_handle_t *h)
{
    proxy_listener_unref(h->data);
}

void proxy_set_first_bytes(proxy_listener *l, const proxy_classifier *cls)
{
    if (l->proto == PROXY_TCP)
        l->first_bytes = cls;
}

/* ---- sockets ---- */

/* The fd's address, after checking that it is an IPv4 or IPv6 socket of the
 * wanted type with an address of its own (a port). */
static int check_socket(int fd, int type, struct sockaddr_storage *local)
{
    int got = 0;
    socklen_t len = sizeof(got);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &got, &len) < 0)
        return -errno;
    if (got != type)
        return UV_EINVAL;
    memset(local, 0, sizeof(*local));
    len = sizeof(*local);
    if (getsockname(fd, (struct sockaddr *)local, &len) < 0)
        return -errno;
    if (local->ss_family == AF_INET && ((struct sockaddr_in *)local)->sin_port != 0)
        return 0;
    if (local->ss_family == AF_INET6 && ((struct sockaddr_in6 *)local)->sin6_port != 0)
        return 0;
    return UV_EINVAL; /* not IP, or not bound */
}

/* What every listening socket gets, whoever made it: close-on-exec (the
 * daemon starts no programs, but a library might) and non-blocking, which
 * the accept loop and libuv rely on. */
static int prepare_socket(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
        return -errno;
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

int proxy_bind_socket(const struct sockaddr *sa, int type, int *out)
{
    int fd = socket(sa->sa_family, type, 0);
    if (fd < 0)
        return -errno;
    int on = 1;
    /* TCP: SO_REUSEADDR lets a restarted daemon bind over TIME_WAIT, yet a
     * live listener on the same address (or on the wildcard, on Linux) still
     * yields EADDRINUSE. UDP: only where the platform says so (macOS, to bind
     * beside Docker Desktop's wildcard socket); on Linux it would allow a
     * second bind of the same address. */
    bool reuse = type == SOCK_STREAM || platform_udp_reuseaddr();
    if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
        goto fail;
    if (sa->sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0)
        goto fail;
    if (bind(fd, sa, sa_len(sa)) < 0)
        goto fail;
    *out = fd;
    return 0;
fail:;
    int err = -errno;
    close(fd);
    return err;
}

int proxy_listen_fd(uv_loop_t *loop, const proxy_options *opts, int proto, int fd,
                    const struct sockaddr *upstream, proxy_listener **out)
{
    if (fd < 0)
        return UV_EBADF;
    struct sockaddr_storage local;
    int err = 0;
    if (!sa_ok(upstream) || (proto != PROXY_TCP && proto != PROXY_UDP))
        err = UV_EINVAL;
    if (err == 0)
        err = check_socket(fd, proto == PROXY_TCP ? SOCK_STREAM : SOCK_DGRAM, &local);
    if (err == 0)
        err = prepare_socket(fd);
    /* Listening twice is harmless: a socket that listens already keeps its
     * queue, with this backlog. */
    if (err == 0 && proto == PROXY_TCP && listen(fd, SOMAXCONN) < 0)
        err = -errno;
    if (err) {
        close(fd);
        return err;
    }

    proxy_listener *l = xcalloc(1, sizeof(*l));
    l->loop = loop;
    if (opts)
        l->opts = *opts;
    else
        proxy_options_default(&l->opts);
    if (l->opts.dial_timeout_ms == 0)
        l->opts.dial_timeout_ms = 5000;
    if (l->opts.udp_idle_s == 0)
        l->opts.udp_idle_s = 60;
    if (l->opts.udp_max_sessions == 0)
        l->opts.udp_max_sessions = 1024;
    l->proto = proto;
    proxy_sa_copy(&l->upstream, upstream);
    l->local = local;
    l->fd = -1;

    if (proto == PROXY_TCP) {
        err = uv_poll_init_socket(loop, &l->lpoll, fd);
        if (err) {
            close(fd);
            free(l);
            return err;
        }
        l->fd = fd;
        l->lpoll.data = l;
        uv_timer_init(loop, &l->timer);
        l->timer.data = l;
        uv_timer_init(loop, &l->idle);
        l->idle.data = l;
        l->refs = 3;
        proxy_tcp_start(l);
    } else {
        uv_udp_init(loop, &l->udp);
        l->udp.data = l;
        uv_timer_init(loop, &l->timer);
        l->timer.data = l;
        l->refs = 2;
        err = uv_udp_open(&l->udp, fd);
        if (err == 0) {
            /* uv_udp_open sets a reuse option of its own after our bind
             * (SO_REUSEADDR on Linux, SO_REUSEPORT on BSDs), which would let
             * a later socket with the same option bind our exact address and
             * port. Undo it, keeping only what platform_udp_reuseaddr asks. */
            int off = 0;
#ifdef SO_REUSEPORT
            (void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &off, sizeof(off));
#endif
            if (!platform_udp_reuseaddr())
                (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &off, sizeof(off));
            err = proxy_udp_start(l);
        }
        if (err) {
            /* Rare (the socket checked out above); the handles can only go
             * away asynchronously, the socket itself is closed now. */
            uv_os_fd_t ufd;
            if (uv_fileno((uv_handle_t *)&l->udp, &ufd) != 0)
                close(fd); /* uv_udp_open refused it */
            l->closing = true;
            uv_close((uv_handle_t *)&l->udp, on_listener_handle_closed);
            uv_close((uv_handle_t *)&l->timer, on_listener_handle_closed);
            return err;
        }
    }
    l->counted = true;
    proxy_count(1, 0);
    *out = l;
    return 0;
}

int proxy_listen(uv_loop_t *loop, const proxy_options *opts, int proto,
                 const struct sockaddr *listen_addr, const struct sockaddr *upstream,
                 proxy_listener **out)
{
    if (!sa_ok(listen_addr) || !sa_ok(upstream) || (proto != PROXY_TCP && proto != PROXY_UDP))
        return UV_EINVAL;
    int fd = -1;
    int err = proxy_bind_socket(listen_addr, proto == PROXY_TCP ? SOCK_STREAM : SOCK_DGRAM, &fd);
    if (err)
        return err;
    return proxy_listen_fd(loop, opts, proto, fd, upstream, out);
}

/* ---- the rest of the public API ---- */

void proxy_set_upstream(proxy_listener *l, const struct sockaddr *upstream)
{
    if (sa_ok(upstream))
        proxy_sa_copy(&l->upstream, upstream);
}

void proxy_set_dialer(proxy_listener *l, const proxy_dialer *d)
{
    proxy_dialer old = l->dialer;
    memset(&l->dialer, 0, sizeof(l->dialer));
    if (d && d->next)
        l->dialer = *d;
    else if (d && d->free_ud)
        d->free_ud(d->ud); /* owned from this call on, and unused */
    /* Installing the same ud again must not free it under the new dialer. */
    if (old.free_ud && !(d && d->next && old.ud == d->ud))
        old.free_ud(old.ud);
}

int proxy_next_upstream(proxy_listener *l, unsigned attempt, const struct sockaddr *peer,
                        struct sockaddr_storage *out)
{
    if (!l->dialer.next) {
        if (attempt > 0)
            return -ENOENT;
        *out = l->upstream;
        return 0;
    }
    memset(out, 0, sizeof(*out));
    int rc = l->dialer.next(l->dialer.ud, attempt, peer, out);
    if (rc == -EPERM)
        return rc;
    if (rc != 0 || !sa_ok((const struct sockaddr *)out))
        return -ENOENT;
    return 0;
}

void proxy_close(proxy_listener *l, void (*cb)(void *arg), void *arg)
{
    if (l->closing)
        return;
    l->closing = true;
    l->close_cb = cb;
    l->close_arg = arg;
    /* Hold a reference so the listener outlives this function even when
     * everything below closes synchronously. */
    l->refs++;
    if (l->proto == PROXY_TCP) {
        uv_close((uv_handle_t *)&l->lpoll, on_listener_handle_closed);
        uv_close((uv_handle_t *)&l->idle, on_listener_handle_closed);
        close(l->fd);
        l->fd = -1;
        proxy_tcp_close_all(l);
    } else {
        uv_close((uv_handle_t *)&l->udp, on_listener_handle_closed);
        proxy_udp_close_all(l);
    }
    uv_close((uv_handle_t *)&l->timer, on_listener_handle_closed);
    proxy_listener_unref(l);
}

void proxy_get_stats(const proxy_listener *l, proxy_stats *st)
{
    *st = l->st;
}

size_t proxy_buffered(const proxy_listener *l)
{
    return l->buffered;
}

int proxy_local_addr(const proxy_listener *l, struct sockaddr_storage *out)
{
    *out = l->local;
    return 0;
}
