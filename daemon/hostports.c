/* The reverse direction's policy; see hostports.h. */
#include "hostports.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "docker_json.h"
#include "fsutil.h"
#include "json.h"
#include "labels.h"
#include "log.h"
#include "netns.h"
#include "platform.h"
#include "sidecar.h"
#include "util.h"

#define MOD "hostports"

/* What became of a request for sockets inside a container. */
enum { HPS_ASKED = 0, HPS_READY, HPS_USED, HPS_FAILED };

/* The sockets netns.c made (or is making) for one host port of one
 * container process; kept until the port table took them, and the outcome
 * remembered for as long as the container process wants that port. */
struct hp_sock {
    char id[65];
    int pid;
    uint16_t port;
    uint8_t proto;
    int state;
    int fd4, fd6;
    int err;
    char msg[200];
    bool seen; /* scratch for hp_plan */
};

static const char *proto_name(int proto)
{
    return proto == CTR_UDP ? "udp" : "tcp";
}

/* ---- The sockets inside containers ---- */

static hp_sock *sock_find(daemon_ctx *d, const char *id, int pid, uint16_t port, uint8_t proto)
{
    for (size_t i = 0; i < d->nhps; i++) {
        hp_sock *s = d->hps[i];
        if (s->pid == pid && s->port == port && s->proto == proto && strcmp(s->id, id) == 0)
            return s;
    }
    return NULL;
}

static const hp_sock *sock_find_c(const daemon_ctx *d, const char *id, int pid, uint16_t port,
                                  uint8_t proto)
{
    return sock_find((daemon_ctx *)d, id, pid, port, proto);
}

static void sock_close_fds(hp_sock *s)
{
    if (s->fd4 >= 0)
        close(s->fd4);
    if (s->fd6 >= 0)
        close(s->fd6);
    s->fd4 = s->fd6 = -1;
}

/* Whether a netns failure means "cannot enter this container here" (auto
 * mode then uses a sidecar), rather than a fault of the port itself. */
static bool cannot_enter(int err)
{
    /* Not -EEXIST (the daemon's own namespace): a sidecar there would bind
     * the host's own 127.0.0.1:CPORT, maybe the very port it should reach. */
    return err == -ESRCH || err == -ENOENT || err == -EPERM || err == -EACCES || err == -ENOTSUP;
}

static void on_netns_result(void *ud, netns_result *r)
{
    daemon_ctx *d = ud;
    hp_sock *s = sock_find(d, r->req.id, r->req.pid, r->req.port, r->req.proto);
    if (s == NULL || s->state != HPS_ASKED || d->stopping) {
        /* Nobody wants it any more (the container stopped meanwhile). */
        if (r->fd4 >= 0)
            close(r->fd4);
        if (r->fd6 >= 0)
            close(r->fd6);
        return;
    }
    s->fd4 = r->fd4;
    s->fd6 = r->fd6;
    s->err = r->err;
    if (r->err == 0 && r->fd4 >= 0) {
        s->state = HPS_READY;
    } else {
        s->state = HPS_FAILED;
        if (s->err == 0)
            s->err = -EIO;
        snprintf(s->msg, sizeof(s->msg), "%s",
                 r->msg[0] ? r->msg : "could not make the socket inside the container");
        sock_close_fds(s);
        log_warn(MOD, "%.12s port %u/%s: %s", s->id, s->port, proto_name(s->proto), s->msg);
    }
    daemon_apply(d);
}

static hp_sock *sock_ask(daemon_ctx *d, const reg_entry *e, const reg_hostport *h)
{
    /* Heap cells: a want's problem may point at s->msg until ports_apply. */
    hp_sock *s = xcalloc(1, sizeof(*s));
    d->hps = xrealloc(d->hps, (d->nhps + 1) * sizeof(*d->hps));
    d->hps[d->nhps++] = s;
    snprintf(s->id, sizeof(s->id), "%s", e->c->id);
    s->pid = e->c->pid;
    s->port = h->spec.port;
    s->proto = h->spec.proto;
    s->fd4 = s->fd6 = -1;
    s->state = HPS_ASKED;
    netns_request req;
    memset(&req, 0, sizeof(req));
    snprintf(req.id, sizeof(req.id), "%s", e->c->id);
    req.pid = e->c->pid;
    req.port = h->spec.port;
    req.proto = h->spec.proto;
    int rc = d->netns ? netns_open(d->netns, &req) : -ENOTSUP;
    if (rc < 0) {
        s->state = HPS_FAILED;
        s->err = rc;
        snprintf(s->msg, sizeof(s->msg), "cannot ask for a socket inside the container: %s",
                 err_str(rc));
    }
    return s;
}

/* ---- Modes ---- */

/* Whether any netns request of the container failed in a way that means
 * the daemon cannot enter it. */
static bool netns_refused(const daemon_ctx *d, const reg_entry *e)
{
    for (size_t i = 0; i < d->nhps; i++) {
        const hp_sock *s = d->hps[i];
        if (s->state == HPS_FAILED && s->pid == e->c->pid && strcmp(s->id, e->c->id) == 0 &&
            cannot_enter(s->err))
            return true;
    }
    return false;
}

int hp_mode(const daemon_ctx *d, const reg_entry *e)
{
    if (e->nhostports == 0 || e->c == NULL || !e->c->running)
        return HP_MODE_NONE;
    switch (d->cfg.host_ports) {
    case CONFIG_HOST_PORTS_NETNS:
        return HP_MODE_NETNS;
    case CONFIG_HOST_PORTS_SIDECAR:
        return HP_MODE_SIDECAR;
    default:
        break;
    }
    if (!d->netns_ok || e->c->pid <= 0 || netns_refused(d, e))
        return HP_MODE_SIDECAR;
    return HP_MODE_NETNS;
}

/* The container whose namespace e joins ("container:<id or name>"), when
 * the registry knows it. */
static const reg_entry *joined(const daemon_ctx *d, const reg_entry *e)
{
    const char *nm = e->c->network_mode;
    if (nm == NULL || strncmp(nm, "container:", 10) != 0 || nm[10] == '\0')
        return NULL;
    const reg_entry *o = reg_find((registry *)&d->reg, nm + 10);
    return o == e ? NULL : o;
}

/* A container that joins another's namespace, where that one wants the
 * same host port, is served by that one's listener. */
static const reg_entry *served_by(const daemon_ctx *d, const reg_entry *e, const reg_hostport *h)
{
    const reg_entry *o = joined(d, e);
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < o->nhostports; i++)
        if (o->hostports[i].spec.port == h->spec.port &&
            o->hostports[i].spec.proto == h->spec.proto && o->hostports[i].problem[0] == '\0')
            return o;
    return NULL;
}

/* ---- Relays for sidecars ---- */

/* Where the daemon's relay listener for e's sidecars is, and what the
 * sidecar dials to reach it: the engine's host alias (the listener on the
 * host's 127.0.0.1) or the gateway of the container's first network with
 * one (the listener on that gateway address). 0, or -ENOENT with why. */
static int relay_place(const daemon_ctx *d, const reg_entry *e, uint32_t *listen_addr, char *host,
                       size_t hostcap, bool *filter, char *why, size_t whylen)
{
    docker_status ds;
    memset(&ds, 0, sizeof(ds));
    if (d->docker)
        docker_client_status(d->docker, &ds);
    const char *alias = docker_engine_host_alias(ds.engine_kind);
    /* Podman on this very machine (no VM): host.containers.internal is a
     * host address that is not loopback, so relay through the gateway. */
    if (ds.engine_kind == DOCKER_ENGINE_PODMAN && platform_has_netns())
        alias = NULL;
    if (alias) {
        *listen_addr = 0x7f000001u;
        snprintf(host, hostcap, "%s", alias);
        *filter = false;
        return 0;
    }
    for (size_t i = 0; i < e->c->nnets; i++) {
        const ctr_net *n = &e->c->nets[i];
        struct in_addr a;
        if (n->gateway && n->gateway[0] && n->ip && n->ip[0] &&
            inet_pton(AF_INET, n->gateway, &a) == 1) {
            *listen_addr = ntohl(a.s_addr);
            snprintf(host, hostcap, "%s", n->gateway);
            *filter = true;
            return 0;
        }
    }
    const char *nm = e->c->network_mode ? e->c->network_mode : "";
    char shown[PRINTABLE_BUF];
    printable(nm, strlen(nm), shown, sizeof(shown));
    snprintf(why, whylen,
             "the container has no network with a gateway for its relay sidecar to reach the "
             "daemon%s%.80s%s",
             nm[0] ? " (network mode " : "", nm[0] ? shown : "", nm[0] ? ")" : "");
    return -ENOENT;
}

/* A TCP or UDP socket bound on addr with a port the kernel picks (TCP:
 * listening). -1 with why on failure. */
static int relay_socket(uint32_t addr, uint8_t proto, char *why, size_t whylen)
{
    int fd = socket(AF_INET, proto == CTR_UDP ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (fd < 0) {
        snprintf(why, whylen, "cannot make a relay socket: %s", err_str(-errno));
        return -1;
    }
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(addr);
    char ip[16];
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        (proto != CTR_UDP && listen(fd, SOMAXCONN) < 0)) {
        int e = -errno;
        close(fd);
        snprintf(why, whylen, "cannot listen on %s for the relay sidecar: %s", ip4_format(addr, ip),
                 err_str(e));
        return -1;
    }
    return fd;
}

/* ---- Planning ---- */

static port_want *want_push(port_want **v, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *v = xrealloc(*v, *cap * sizeof(**v));
    }
    port_want *w = &(*v)[(*n)++];
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    return w;
}

static port_want *want_key_push(port_want **v, size_t *n, size_t *cap, const reg_entry *e,
                                const reg_hostport *h, int role)
{
    port_want *w = want_push(v, n, cap);
    snprintf(w->key.id, sizeof(w->key.id), "%s", e->c->id);
    w->key.role = (uint8_t)role;
    w->key.proto = h->spec.proto;
    w->key.port = h->spec.port;
    w->name = e->c->name;
    w->kafka = PROXY_KAFKA_OFF;
    w->dial = true;
    return w;
}

static void plan_netns(daemon_ctx *d, const reg_entry *e, const reg_hostport *h, port_want **v,
                       size_t *n, size_t *cap)
{
    const port_entry *p4 =
        ports_find(d->ports, e->c->id, PORT_ROLE_HOST, h->spec.port, h->spec.proto);
    const port_entry *p6 =
        ports_find(d->ports, e->c->id, PORT_ROLE_HOST6, h->spec.port, h->spec.proto);
    hp_sock *s =
        e->c->pid > 0 ? sock_find(d, e->c->id, e->c->pid, h->spec.port, h->spec.proto) : NULL;
    if (s)
        s->seen = true;
    /* A listener is the current process's only when its socket came from
     * a cell of this pid: after a resync the same container may have a new
     * process (an engine restart), whose namespace needs new sockets; the
     * old listener stays until they come (a new fd replaces it). */
    if (p4 && p4->listener && s && s->state != HPS_READY) {
        if (s->state == HPS_FAILED)
            return; /* the old namespace's listener goes; the cell says why */
        want_key_push(v, n, cap, e, h, PORT_ROLE_HOST);
        if (p6 && p6->listener)
            want_key_push(v, n, cap, e, h, PORT_ROLE_HOST6);
        return;
    }
    port_want *w = want_key_push(v, n, cap, e, h, PORT_ROLE_HOST);
    if (e->c->pid <= 0) {
        w->problem = "Docker reports no process for the container, so there is no network "
                     "namespace to listen in";
        return;
    }
    if (d->cfg.host_ports == CONFIG_HOST_PORTS_NETNS && !d->netns_ok) {
        w->problem = d->netns_why;
        return;
    }
    if (s == NULL) {
        s = sock_ask(d, e, h);
        s->seen = true;
    }
    switch (s->state) {
    case HPS_ASKED:
        w->problem = NULL; /* being made */
        if (p6 && p6->listener)
            want_key_push(v, n, cap, e, h, PORT_ROLE_HOST6); /* (w not used after) */
        break;
    case HPS_READY:
        w->fd = s->fd4;
        s->fd4 = -1;
        if (s->fd6 >= 0) {
            /* (w is not used after this push, which may move the array.) */
            port_want *w6 = want_key_push(v, n, cap, e, h, PORT_ROLE_HOST6);
            w6->fd = s->fd6;
            s->fd6 = -1;
        }
        s->state = HPS_USED;
        break;
    case HPS_USED:
        /* The table took the socket but could not serve it: its problem,
         * copied (the table writes the entry's own problem from this). */
        snprintf(s->msg, sizeof(s->msg), "%s",
                 p4 && p4->problem[0] ? p4->problem : "the listener inside the container failed");
        w->problem = s->msg;
        break;
    default:
        w->problem = s->msg;
        break;
    }
}

/* A relay listener per host port of a sidecar-mode container; the sidecars
 * follow in hp_after_apply, once the listeners' ports are known. */
static void plan_sidecar(daemon_ctx *d, reg_entry *e, const reg_hostport *h, port_want **v,
                         size_t *n, size_t *cap)
{
    const port_entry *pr =
        ports_find(d->ports, e->c->id, PORT_ROLE_RELAY, h->spec.port, h->spec.proto);
    uint32_t addr = 0;
    char host[256];
    bool filter = false;
    port_want *w = want_key_push(v, n, cap, e, h, PORT_ROLE_RELAY);
    /* A cell (pid -1) keeps the relay's problem text alive until the
     * table has copied it. */
    hp_sock *note = sock_find(d, e->c->id, -1, h->spec.port, h->spec.proto);
    if (note == NULL) {
        note = xcalloc(1, sizeof(*note));
        snprintf(note->id, sizeof(note->id), "%s", e->c->id);
        note->pid = -1;
        note->port = h->spec.port;
        note->proto = h->spec.proto;
        note->fd4 = note->fd6 = -1;
        note->state = HPS_USED;
        d->hps = xrealloc(d->hps, (d->nhps + 1) * sizeof(*d->hps));
        d->hps[d->nhps++] = note;
    }
    note->seen = true;
    int rc = relay_place(d, e, &addr, host, sizeof(host), &filter, note->msg, sizeof(note->msg));
    if (rc < 0) {
        w->problem = note->msg;
        return;
    }
    w->addr = addr;
    if (pr && pr->listener && pr->addr == addr)
        return;
    int fd = relay_socket(addr, h->spec.proto, note->msg, sizeof(note->msg));
    if (fd < 0) {
        w->problem = note->msg;
        return;
    }
    w->fd = fd;
}

void hp_plan(daemon_ctx *d, port_want **v, size_t *n, size_t *cap)
{
    for (size_t i = 0; i < d->nhps; i++)
        d->hps[i]->seen = false;
    if (!d->stopping) {
        for (size_t i = 0; i < d->reg.n; i++) {
            reg_entry *e = d->reg.entries[i];
            int mode = hp_mode(d, e);
            if (mode == HP_MODE_NONE)
                continue;
            /* What netns said about this process stays known (auto mode's
             * choice of sidecars rests on it). */
            for (size_t j = 0; j < d->nhps; j++)
                if (d->hps[j]->pid == e->c->pid && strcmp(d->hps[j]->id, e->c->id) == 0)
                    d->hps[j]->seen = true;
            for (size_t j = 0; j < e->nhostports; j++) {
                const reg_hostport *h = &e->hostports[j];
                if (h->problem[0] || served_by(d, e, h))
                    continue;
                if (mode == HP_MODE_NETNS)
                    plan_netns(d, e, h, v, n, cap);
                else
                    plan_sidecar(d, e, h, v, n, cap);
            }
        }
    }
    /* Outcomes nobody asked about this time belong to stopped processes. */
    size_t k = 0;
    for (size_t i = 0; i < d->nhps; i++) {
        hp_sock *s = d->hps[i];
        if (s->seen || s->state == HPS_ASKED) {
            /* An answer on its way is dropped when it arrives unwanted. */
            if (!s->seen && s->state == HPS_ASKED && d->stopping)
                s->state = HPS_FAILED;
            d->hps[k++] = s;
            continue;
        }
        sock_close_fds(s);
        free(s);
    }
    d->nhps = k;
}

void hp_after_apply(daemon_ctx *d)
{
    if (d->sidecars == NULL)
        return;
    sidecar_want *sw = NULL;
    size_t nsw = 0;
    if (!d->stopping) {
        for (size_t i = 0; i < d->reg.n; i++) {
            reg_entry *e = d->reg.entries[i];
            if (hp_mode(d, e) != HP_MODE_SIDECAR)
                continue;
            uint32_t addr;
            char host[256], why[64];
            bool filter;
            if (relay_place(d, e, &addr, host, sizeof(host), &filter, why, sizeof(why)) < 0)
                continue;
            for (size_t j = 0; j < e->nhostports; j++) {
                const reg_hostport *h = &e->hostports[j];
                const port_entry *pr =
                    ports_find(d->ports, e->c->id, PORT_ROLE_RELAY, h->spec.port, h->spec.proto);
                struct sockaddr_storage la;
                if (pr == NULL || pr->listener == NULL || ports_local_addr(d->ports, pr, &la) < 0 ||
                    la.ss_family != AF_INET)
                    continue;
                sw = xrealloc(sw, (nsw + 1) * sizeof(*sw));
                sidecar_want *x = &sw[nsw++];
                memset(x, 0, sizeof(*x));
                snprintf(x->target, sizeof(x->target), "%s", e->c->id);
                x->target_name = e->c->name;
                x->port = h->spec.port;
                x->proto = h->spec.proto;
                snprintf(x->dest, sizeof(x->dest), "%s:%u", host,
                         ntohs(((struct sockaddr_in *)&la)->sin_port));
            }
        }
    }
    sidecar_apply(d->sidecars, sw, nsw);
    free(sw);
}

/* ---- Where a connection goes ---- */

static const reg_hostport *hostport_of(const reg_entry *e, uint16_t port, uint8_t proto)
{
    for (size_t i = 0; i < e->nhostports; i++)
        if (e->hostports[i].spec.port == port && e->hostports[i].spec.proto == proto)
            return &e->hostports[i];
    return NULL;
}

static void sa4(struct sockaddr_storage *out, uint32_t addr, uint16_t port)
{
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    memset(out, 0, sizeof(*out));
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    a->sin_addr.s_addr = htonl(addr);
}

static void sa6_loopback(struct sockaddr_storage *out, uint16_t port)
{
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)out;
    memset(out, 0, sizeof(*out));
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    a->sin6_addr = in6addr_loopback;
}

/* Whether peer is one of the container's own addresses (a relay on a
 * gateway serves only that container's sidecar). */
static bool peer_is_container(const reg_entry *e, const struct sockaddr *peer)
{
    if (peer == NULL || peer->sa_family != AF_INET)
        return false;
    const struct sockaddr_in *p = (const struct sockaddr_in *)peer;
    for (size_t i = 0; i < e->c->nnets; i++) {
        struct in_addr a;
        if (e->c->nets[i].ip && inet_pton(AF_INET, e->c->nets[i].ip, &a) == 1 &&
            a.s_addr == p->sin_addr.s_addr)
            return true;
    }
    return false;
}

int hp_dial(daemon_ctx *d, const port_key *k, unsigned attempt, const struct sockaddr *peer,
            struct sockaddr_storage *out)
{
    reg_entry *e = reg_find(&d->reg, k->id);
    if (e == NULL)
        return -ENOENT;
    const reg_hostport *h = hostport_of(e, k->port, k->proto);
    if (h == NULL) {
        /* A joined container's listener serves those who share it. */
        return -ENOENT;
    }
    if (k->role == PORT_ROLE_RELAY) {
        uint32_t addr;
        char host[256], why[64];
        bool filter = false;
        if (relay_place(d, e, &addr, host, sizeof(host), &filter, why, sizeof(why)) < 0)
            return -ENOENT;
        if (filter && !peer_is_container(e, peer))
            return -EPERM;
    }
    const label_hostport *t = &h->spec;
    if (t->host[0] == '\0') {
        /* The host's localhost: 127.0.0.1, then ::1 when refused (Node and
         * Vite dev servers often listen on ::1 only). UDP has no refusal
         * to go by: 127.0.0.1 only. */
        if (attempt == 0) {
            sa4(out, 0x7f000001u, t->target_port);
            return 0;
        }
        if (attempt == 1 && k->proto == CTR_TCP) {
            sa6_loopback(out, t->target_port);
            return 0;
        }
        return -ENOENT;
    }
    if (attempt > 0)
        return -ENOENT;
    struct in_addr a4;
    if (inet_pton(AF_INET, t->host, &a4) == 1) {
        sa4(out, ntohl(a4.s_addr), t->target_port);
        return 0;
    }
    if (strcmp(t->host, "::1") == 0) {
        sa6_loopback(out, t->target_port);
        return 0;
    }
    uint32_t addr;
    if (reg_resolve_name(&d->reg, t->host, &addr) == 0) {
        sa4(out, addr, t->target_port);
        return 0;
    }
    log_debug(MOD, "%s: host port %u: no container is named %s now", e->c->name, k->port, t->host);
    return -ENOENT;
}

/* ---- What people see ---- */

static void stats_add(proxy_stats *a, const proxy_stats *b)
{
    a->conns_active += b->conns_active;
    a->conns_total += b->conns_total;
    a->bytes_in += b->bytes_in;
    a->capped += b->capped;
    a->idle_closed += b->idle_closed;
    a->bytes_out += b->bytes_out;
}

static void port_stats(const daemon_ctx *d, const reg_entry *e, const reg_hostport *h,
                       proxy_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (d->ports == NULL)
        return;
    static const int roles[] = {PORT_ROLE_HOST, PORT_ROLE_HOST6, PORT_ROLE_RELAY};
    for (size_t i = 0; i < ARRAY_SIZE(roles); i++) {
        const port_entry *pe =
            ports_find(d->ports, e->c->id, roles[i], h->spec.port, h->spec.proto);
        if (pe && pe->listener) {
            proxy_stats one;
            ports_stats(d->ports, pe, &one);
            stats_add(st, &one);
        }
    }
}

const char *hp_problem(const daemon_ctx *d, const reg_entry *e, const reg_hostport *h)
{
    if (h->problem[0])
        return h->problem;
    int mode = hp_mode(d, e);
    if (mode == HP_MODE_NONE || served_by(d, e, h))
        return NULL;
    int role = mode == HP_MODE_NETNS ? PORT_ROLE_HOST : PORT_ROLE_RELAY;
    const port_entry *pe =
        d->ports ? ports_find(d->ports, e->c->id, role, h->spec.port, h->spec.proto) : NULL;
    if (pe && pe->listener == NULL && pe->problem[0])
        return pe->problem;
    if (mode == HP_MODE_NETNS) {
        const hp_sock *s = sock_find_c(d, e->c->id, e->c->pid, h->spec.port, h->spec.proto);
        if (s && s->state == HPS_FAILED)
            return s->msg;
        return NULL;
    }
    if (d->sidecars && pe && pe->listener) {
        const char *why = NULL;
        if (sidecar_state(d->sidecars, e->c->id, h->spec.port, h->spec.proto, &why) ==
            SIDECAR_FAILED)
            return why ? why : "the relay sidecar failed";
    }
    return NULL;
}

void hp_view_port(const daemon_ctx *d, const reg_entry *e, const reg_hostport *h, yajl_gen g)
{
    char target[300];
    label_host_port_target(&h->spec, target, sizeof(target));
    proxy_stats st;
    port_stats(d, e, h, &st);
    int mode = hp_mode(d, e);
    const reg_entry *via = served_by(d, e, h);
    yajl_gen_map_open(g);
    json_kv_int(g, "port", h->spec.port);
    json_kv_str(g, "proto", proto_name(h->spec.proto));
    json_kv_str(g, "target", target);
    json_kv_str(g, "source", h->source == REG_HP_API ? "api" : "label");
    json_kv_str(g, "mode",
                h->problem[0]             ? NULL
                : mode == HP_MODE_NETNS   ? "netns"
                : mode == HP_MODE_SIDECAR ? "sidecar"
                                          : NULL);
    json_kv_str(g, "shared_with", via ? via->c->name : NULL);
    json_gen_str(g, "connections");
    yajl_gen_map_open(g);
    json_kv_int(g, "active", (long long)st.conns_active);
    json_kv_int(g, "total", (long long)st.conns_total);
    json_kv_int(g, "capped", (long long)st.capped);
    json_kv_int(g, "idle_closed", (long long)st.idle_closed);
    yajl_gen_map_close(g);
    json_gen_str(g, "bytes");
    yajl_gen_map_open(g);
    json_kv_int(g, "in", (long long)st.bytes_in);
    json_kv_int(g, "out", (long long)st.bytes_out);
    yajl_gen_map_close(g);
    json_kv_str(g, "problem", hp_problem(d, e, h));
    yajl_gen_map_close(g);
}

void hp_totals(const daemon_ctx *d, size_t *listeners, size_t *wanted, size_t *sidecars)
{
    *listeners = *wanted = 0;
    *sidecars = d->sidecars ? sidecar_count(d->sidecars) : 0;
    for (size_t i = 0; i < d->reg.n; i++) {
        const reg_entry *e = d->reg.entries[i];
        if (e->c == NULL || !e->c->running)
            continue;
        *wanted += e->nhostports;
        static const int roles[] = {PORT_ROLE_HOST, PORT_ROLE_HOST6, PORT_ROLE_RELAY};
        for (size_t j = 0; j < e->nhostports && d->ports; j++)
            for (size_t r = 0; r < ARRAY_SIZE(roles); r++) {
                const port_entry *pe =
                    ports_find(d->ports, e->c->id, roles[r], e->hostports[j].spec.port,
                               e->hostports[j].spec.proto);
                if (pe && pe->listener)
                    (*listeners)++;
            }
    }
}

/* ---- The control API ---- */

int hp_prov_list(void *ud, const char *key, yajl_gen g)
{
    daemon_ctx *d = ud;
    reg_entry *e = reg_find(&d->reg, key);
    if (e == NULL)
        return -ENOENT;
    yajl_gen_array_open(g);
    for (size_t i = 0; i < e->nhostports; i++)
        hp_view_port(d, e, &e->hostports[i], g);
    yajl_gen_array_close(g);
    return 0;
}

/* The request body: {"spec": "15432:5432/udp"} or {"port": 8000, "target":
 * "127.0.0.1:8000", "proto": "tcp"} (target and proto optional) -> spec. */
static int body_spec(const daemon_ctx *d, const char *body, size_t len, label_hostport *out,
                     char *err, size_t errlen)
{
    yajl_val v = NULL;
    char jerr[160] = "";
    if (len == 0) {
        snprintf(err, errlen,
                 "the request needs a JSON body: {\"spec\": \"8000\"} or {\"port\": 8000, "
                 "\"target\": \"127.0.0.1:8000\", \"proto\": \"tcp\"}");
        return -EINVAL;
    }
    if (json_parse(body, len, 65536, 8, &v, jerr, sizeof(jerr)) < 0 || !YAJL_IS_OBJECT(v)) {
        snprintf(err, errlen, "the request body is not a JSON object%s%s", jerr[0] ? ": " : "",
                 jerr);
        json_free(v);
        return -EINVAL;
    }
    char spec[600];
    const char *sp = NULL, *target = NULL, *proto = NULL;
    long long port = 0;
    int rc = 0;
    if (json_opt_str(v, "spec", &sp) < 0 || json_opt_str(v, "target", &target) < 0 ||
        json_opt_str(v, "proto", &proto) < 0) {
        snprintf(err, errlen, "\"spec\", \"target\" and \"proto\" must be strings");
        rc = -EINVAL;
    } else if (sp) {
        snprintf(spec, sizeof(spec), "%s", sp);
    } else {
        int pr = json_int(v, &port, "port", NULL);
        if (pr < 0 || port < 1 || port > 65535) {
            snprintf(err, errlen, "\"port\" must be a port number from 1 to 65535");
            rc = -EINVAL;
        } else if (proto && strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0) {
            snprintf(err, errlen, "\"proto\" must be \"tcp\" or \"udp\"");
            rc = -EINVAL;
        } else {
            snprintf(spec, sizeof(spec), "%lld%s%.300s/%s", port, target ? ":" : "",
                     target ? target : "", proto ? proto : "tcp");
        }
    }
    json_free(v);
    if (rc < 0)
        return rc;
    return label_host_port_spec(spec, strlen(spec), d->cfg.domain, out, err, errlen);
}

int hp_prov_add(void *ud, const char *key, const char *body, size_t len, yajl_gen g, char *err,
                size_t errlen)
{
    daemon_ctx *d = ud;
    reg_entry *e = reg_find(&d->reg, key);
    if (e == NULL)
        return -ENOENT;
    label_hostport spec;
    int rc = body_spec(d, body, len, &spec, err, errlen);
    if (rc < 0)
        return rc;
    char id[65];
    snprintf(id, sizeof(id), "%s", e->c->id);
    rc = reg_expose(&d->reg, e, &spec, err, errlen);
    if (rc < 0)
        return rc;
    if (hostport_of(e, spec.port, spec.proto) == NULL) {
        /* The registry gives this container no host ports (loophole.enable
         * is off, or it is not running): nothing is kept. */
        reg_unexpose(&d->reg, e, spec.port, spec.proto);
        snprintf(err, errlen, "%s is not served by loophole (%s), so it gets no host ports",
                 e->c->name, e->skipped ? e->skipped : "not running");
        return -EEXIST;
    }
    char target[300];
    label_host_port_target(&spec, target, sizeof(target));
    log_info(MOD, "%s: exposing host %s at its port %u/%s", e->c->name, target, spec.port,
             proto_name(spec.proto));
    daemon_apply(d);
    /* The apply may have replaced the entry: look it up again. */
    e = reg_find(&d->reg, id);
    const reg_hostport *h = e ? hostport_of(e, spec.port, spec.proto) : NULL;
    if (h == NULL) {
        snprintf(err, errlen, "the exposure was recorded but the container is gone");
        return -ENOENT;
    }
    hp_view_port(d, e, h, g);
    return 0;
}

int hp_prov_remove(void *ud, const char *key, const char *port, const char *proto, char *err,
                   size_t errlen)
{
    daemon_ctx *d = ud;
    reg_entry *e = reg_find(&d->reg, key);
    if (e == NULL)
        return -ENOENT;
    char *end = NULL;
    long p = port ? strtol(port, &end, 10) : 0;
    if (port == NULL || end == port || *end != '\0' || p < 1 || p > 65535) {
        snprintf(err, errlen, "the port must be a number from 1 to 65535");
        return -EINVAL;
    }
    uint8_t pr = CTR_TCP;
    if (proto && strcmp(proto, "udp") == 0)
        pr = CTR_UDP;
    else if (proto && strcmp(proto, "tcp") != 0) {
        snprintf(err, errlen, "the protocol must be tcp or udp");
        return -EINVAL;
    }
    int rc = reg_unexpose(&d->reg, e, (uint16_t)p, pr);
    if (rc == -ENOENT) {
        snprintf(err, errlen, "%s has no run-time exposure of port %ld/%s", e->c->name, p,
                 proto_name(pr));
        return rc;
    }
    if (rc == -EPERM) {
        snprintf(err, errlen,
                 "port %ld/%s of %s comes from its loophole.host-ports label; change the label "
                 "(recreate the container) to remove it",
                 p, proto_name(pr), e->c->name);
        return rc;
    }
    if (rc < 0)
        return rc;
    log_info(MOD, "%s: host port %ld/%s unexposed", e->c->name, p, proto_name(pr));
    daemon_apply(d);
    return 0;
}

int hp_prov_docker_socket(void *ud, uid_t *uid, gid_t *gid, mode_t *mode)
{
    daemon_ctx *d = ud;
    if (d->docker == NULL)
        return -ENOENT;
    docker_status ds;
    memset(&ds, 0, sizeof(ds));
    docker_client_status(d->docker, &ds);
    struct stat st;
    if (ds.socket_path[0] == '\0' || stat(ds.socket_path, &st) < 0 || !S_ISSOCK(st.st_mode))
        return -ENOENT;
    *uid = st.st_uid;
    *gid = st.st_gid;
    *mode = st.st_mode;
    return 0;
}

/* ---- Life ---- */

static void on_sidecars_changed(void *ud)
{
    view_publish_changes(ud);
}

/* The token on this daemon's relay sidecars: 16 hex digits kept in the
 * state directory, so a restarted daemon knows its leftovers and a second
 * daemon on the same engine leaves them alone. */
#define INSTANCE_FILE "instance-id"

static bool is_token(const char *s, size_t n)
{
    if (n != 16)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static void load_instance_id(daemon_ctx *d)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", d->cfg.state_dir, INSTANCE_FILE);
    char *text = NULL;
    size_t len = 0;
    if (fs_read_small(path, 64, FS_NOFOLLOW | FS_OWNER, geteuid(), &text, &len, NULL, 0) == 0) {
        while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
            len--;
        if (is_token(text, len)) {
            memcpy(d->instance_id, text, 16);
            d->instance_id[16] = '\0';
            free(text);
            return;
        }
    }
    free(text);
    unsigned char raw[8];
    uint64_t seed = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 32);
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, raw, sizeof(raw)) : -1;
    if (fd >= 0)
        close(fd);
    for (size_t i = 0; i < sizeof(raw); i++)
        if (got != (ssize_t)sizeof(raw))
            raw[i] = (unsigned char)(seed >> (8 * i));
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(d->instance_id + 2 * i, 3, "%02x", raw[i]);
    char line[18];
    snprintf(line, sizeof(line), "%s\n", d->instance_id);
    int rc = fs_write_atomic(path, line, strlen(line), 0644);
    if (rc < 0)
        log_warn_err(MOD, rc, "cannot write %s (relay sidecars left by a crash will stay)", path);
}

void hp_start(daemon_ctx *d)
{
    d->netns_ok = netns_probe(d->netns_why, sizeof(d->netns_why)) == 0;
    if (!d->netns_ok)
        log_info(MOD, "%s", d->netns_why);
    else
        d->netns_why[0] = '\0';
    if (d->cfg.host_ports == CONFIG_HOST_PORTS_NETNS && !d->netns_ok)
        log_warn(MOD, "--host-ports-mode netns, but %s: host ports will not be served",
                 d->netns_why);
    int rc = netns_maker_new(d->loop, on_netns_result, d, &d->netns);
    if (rc < 0) {
        log_warn_err(MOD, rc, "cannot start the namespace helper");
        d->netns = NULL;
        d->netns_ok = false;
        snprintf(d->netns_why, sizeof(d->netns_why), "the namespace helper could not start");
    }
    load_instance_id(d);
    if (d->docker)
        d->sidecars =
            sidecar_new(d->docker, d->cfg.sidecar_image, d->instance_id, on_sidecars_changed, d);
}

void hp_container_gone(daemon_ctx *d, const char *id)
{
    if (d->sidecars)
        sidecar_container_gone(d->sidecars, id);
}

void hp_engine_connected(daemon_ctx *d)
{
    if (d->sidecars)
        sidecar_engine_connected(d->sidecars);
}

void hp_stop(daemon_ctx *d, void (*cb)(void *arg), void *arg)
{
    if (d->netns) {
        netns_maker_close(d->netns);
        d->netns = NULL;
    }
    for (size_t i = 0; i < d->nhps; i++) {
        sock_close_fds(d->hps[i]);
        free(d->hps[i]);
    }
    free(d->hps);
    d->hps = NULL;
    d->nhps = 0;
    if (d->sidecars) {
        sidecar_manager *m = d->sidecars;
        d->sidecars = NULL;
        sidecar_close(m, cb, arg);
        return;
    }
    if (cb)
        cb(arg);
}

void hp_free(daemon_ctx *d)
{
    for (size_t i = 0; i < d->nhps; i++) {
        sock_close_fds(d->hps[i]);
        free(d->hps[i]);
    }
    free(d->hps);
    d->hps = NULL;
    d->nhps = 0;
}
