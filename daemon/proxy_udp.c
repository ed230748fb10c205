/* UDP: one socket on the listener's address; a session with its own
 * connected upstream socket per client address (where the listener's dialer
 * says, when it has one); idle sessions expire. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "log.h"
#include "proxy_int.h"
#include "util.h"

#define MOD PROXY_MOD

typedef struct proxy_usess {
    uv_udp_t up;
    proxy_listener *l;
    struct proxy_usess *hnext;
    struct sockaddr_storage peer;
    uint64_t last; /* uv_now of the last datagram either way */
} usess;

static uint64_t addr_hash(const struct sockaddr *sa)
{
    const unsigned char *p;
    size_t n;
    uint16_t port;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        p = s6->sin6_addr.s6_addr;
        n = 16;
        port = s6->sin6_port;
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        p = (const unsigned char *)&s4->sin_addr;
        n = 4;
        port = s4->sin_port;
    }
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    h = (h ^ (port & 0xff)) * 1099511628211ULL;
    h = (h ^ (port >> 8)) * 1099511628211ULL;
    return h;
}

static bool addr_eq(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

static usess **sess_slot(proxy_listener *l, const struct sockaddr *sa)
{
    usess **pp = &l->buckets[addr_hash(sa) & (l->nbuckets - 1)];
    while (*pp && !addr_eq((const struct sockaddr *)&(*pp)->peer, sa))
        pp = &(*pp)->hnext;
    return pp;
}

static void on_sess_closed(uv_handle_t *h)
{
    usess *s = h->data;
    proxy_listener *l = s->l;
    proxy_count(-1, -1);
    free(s);
    proxy_listener_unref(l);
}

static void sess_close(usess *s)
{
    proxy_listener *l = s->l;
    usess **pp = sess_slot(l, (const struct sockaddr *)&s->peer);
    if (*pp == s)
        *pp = s->hnext;
    l->nsessions--;
    l->st.conns_active--;
    uv_close((uv_handle_t *)&s->up, on_sess_closed);
}

static void on_client_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *rb)
{
    (void)suggested;
    (void)h;
    *rb = uv_buf_init(proxy_scratch(), PROXY_READ_SIZE);
}

static void on_sess_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *rb)
{
    (void)suggested;
    (void)h;
    *rb = uv_buf_init(proxy_scratch(), PROXY_READ_SIZE);
}

static void on_udp_upstream(uv_udp_t *h, ssize_t nread, const uv_buf_t *rb,
                            const struct sockaddr *addr, unsigned flags)
{
    usess *s = h->data;
    proxy_listener *l = s->l;
    /* Errors here are ICMP reports (ECONNREFUSED while the container's
     * server is not up): the session stays until it idles out. */
    if (nread < 0 || (nread == 0 && addr == NULL) || l->closing)
        return;
    if (flags & UV_UDP_PARTIAL) {
        l->st.dropped++;
        return;
    }
    s->last = uv_now(l->loop);
    l->st.bytes_out += (uint64_t)nread;
    uv_buf_t b = uv_buf_init(rb->base, (unsigned)nread);
    if (uv_udp_try_send(&l->udp, &b, 1, (const struct sockaddr *)&s->peer) < 0)
        l->st.dropped++;
}

static void on_sweep(uv_timer_t *t);

/* to: the session's upstream, of either family (the socket is made by
 * uv_udp_connect for to's family). */
static usess *sess_new(proxy_listener *l, const struct sockaddr *peer, const struct sockaddr *to)
{
    usess *s = xcalloc(1, sizeof(*s));
    s->l = l;
    proxy_sa_copy(&s->peer, peer);
    uv_udp_init(l->loop, &s->up);
    s->up.data = s;
    l->refs++;
    l->st.conns_total++;
    l->st.conns_active++;
    l->nsessions++;
    proxy_count(1, 1);
    usess **pp = sess_slot(l, peer);
    *pp = s;
    int err = uv_udp_connect(&s->up, to);
    if (err == 0)
        err = uv_udp_recv_start(&s->up, on_sess_alloc, on_udp_upstream);
    if (err) {
        log_debug_err(MOD, err, "udp session");
        sess_close(s);
        return NULL;
    }
    if (!l->sweeping) {
        uint64_t every = (uint64_t)l->opts.udp_idle_s * 1000 / 4;
        if (every < 50)
            every = 50;
        if (every > 5000)
            every = 5000;
        uv_timer_start(&l->timer, on_sweep, every, every);
        l->sweeping = true;
    }
    return s;
}

static void on_sweep(uv_timer_t *t)
{
    proxy_listener *l = t->data;
    uint64_t now = uv_now(l->loop);
    uint64_t idle = (uint64_t)l->opts.udp_idle_s * 1000;
    for (size_t i = 0; i < l->nbuckets; i++) {
        usess *s = l->buckets[i];
        while (s) {
            usess *next = s->hnext;
            if (now - s->last >= idle)
                sess_close(s);
            s = next;
        }
    }
    if (l->nsessions == 0) {
        uv_timer_stop(&l->timer);
        l->sweeping = false;
    }
}

static void on_udp_client(uv_udp_t *h, ssize_t nread, const uv_buf_t *rb,
                          const struct sockaddr *addr, unsigned flags)
{
    proxy_listener *l = h->data;
    if (nread < 0 || addr == NULL || l->closing)
        return;
    if (flags & UV_UDP_PARTIAL) {
        l->st.dropped++;
        return;
    }
    if (addr->sa_family != l->local.ss_family)
        return;
    usess *s = *sess_slot(l, addr);
    if (!s) {
        bool here = l->nsessions >= l->opts.udp_max_sessions;
        if (here || !proxy_room(1, 1)) {
            l->st.dropped++;
            proxy_count_capped(l);
            log_limited(&l->cap_log, LOG_WARN, MOD, 0,
                        "udp: %zu sessions here, at %s; dropping datagrams from new clients "
                        "(see --udp-max-sessions, --max-conns)",
                        l->nsessions,
                        here ? "this port's session cap"
                             : "the connection cap or descriptor budget of all proxies");
            return;
        }
        /* The dialer is asked once per session, not per datagram. */
        struct sockaddr_storage to;
        int rc = proxy_next_upstream(l, 0, addr, &to);
        if (rc != 0) {
            if (rc == -EPERM)
                l->st.refused++;
            l->st.dropped++;
            return;
        }
        s = sess_new(l, addr, (const struct sockaddr *)&to);
        if (!s) {
            l->st.dropped++;
            return;
        }
    }
    s->last = uv_now(l->loop);
    l->st.bytes_in += (uint64_t)nread;
    uv_buf_t b = uv_buf_init(rb->base, (unsigned)nread);
    if (uv_udp_try_send(&s->up, &b, 1, NULL) < 0)
        l->st.dropped++;
}

int proxy_udp_start(proxy_listener *l)
{
    /* At most 1024 buckets (8 KiB): the derived session cap can be tens of
     * thousands, and most UDP ports see a handful of clients. */
    size_t nb = 16;
    while (nb < l->opts.udp_max_sessions / 2 && nb < 1024)
        nb *= 2;
    l->buckets = xcalloc(nb, sizeof(*l->buckets));
    l->nbuckets = nb;
    return uv_udp_recv_start(&l->udp, on_client_udp_alloc, on_udp_client);
}

void proxy_udp_close_all(proxy_listener *l)
{
    for (size_t i = 0; i < l->nbuckets; i++) {
        usess *s = l->buckets[i];
        while (s) {
            usess *next = s->hnext;
            sess_close(s);
            s = next;
        }
    }
}
