#include "registry.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "labels.h"
#include "log.h"
#include "platform.h"
#include "util.h"

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void entry_free(reg_entry *e)
{
    free(e->ports);
    free(e->hostports);
    free(e->bound_ips);
    container_free(e->c);
    names_result_free(&e->names);
    free(e->lease_key);
    free_strv(e->owned, e->nowned);
    free_strv(e->conflicts, e->nconflicts);
    free(e);
}

void reg_init(registry *r, const char *domain, uint32_t first, uint32_t last)
{
    memset(r, 0, sizeof(*r));
    r->domain = xstrdup(domain);
    alloc_init(&r->pool, first, last);
    r->share_wildcard = platform_shares_wildcard_ports();
    r->serve_exposed = true;
    r->forward = REG_FORWARD_AUTO;
}

void reg_free(registry *r)
{
    for (size_t i = 0; i < r->n; i++)
        entry_free(r->entries[i]);
    free(r->entries);
    free(r->blocks);
    free(r->reach);
    free_strv(r->owner_names, r->nowners);
    free_strv(r->owner_ids, r->nowners);
    for (size_t i = 0; i < r->nexposures; i++)
        free(r->exposures[i].key);
    free(r->exposures);
    for (size_t i = 0; i < r->nleases; i++) {
        free(r->leases[i].name);
        free(r->leases[i].dns);
    }
    free(r->leases);
    alloc_free(&r->pool);
    free(r->domain);
    memset(r, 0, sizeof(*r));
}

/* A network direct forwarding can use: an IPv4 address, and a name that
 * fits reg_port.network. */
static bool usable_net(const ctr_net *n)
{
    return n->name && n->ip && n->ip[0] && strlen(n->name) < REG_NETWORK_MAX &&
           strlen(n->ip) < sizeof(((reg_port *)0)->target_ip);
}

static bool has_ipv4(const container *c)
{
    for (size_t i = 0; i < c->nnets; i++)
        if (usable_net(&c->nets[i]))
            return true;
    return false;
}

/* Why e gets no address for want of ports (static text), or NULL: it
 * publishes one, or has an address of its own and exposes one (with --serve
 * exposed) or names one in loophole.ports. A container with no address of
 * its own (host network, network_mode container:X, none) cannot be reached
 * on an exposed port, and the pool is small. */
static const char *ineligible(const registry *r, const reg_entry *e)
{
    bool exposed = false;
    for (size_t i = 0; i < e->nports; i++) {
        const reg_port *p = &e->ports[i];
        if (p->host_port != 0)
            return NULL;
        if ((p->proto == CTR_TCP || p->proto == CTR_UDP) && (r->serve_exposed || p->labelled))
            exposed = true;
    }
    if (exposed && has_ipv4(e->c))
        return NULL;
    if (exposed)
        return "publishes no ports and has no IPv4 address of its own";
    return r->serve_exposed ? "has no ports" : "publishes no ports";
}

static int cmp_started(const void *a, const void *b)
{
    const reg_entry *x = *(reg_entry *const *)a, *y = *(reg_entry *const *)b;
    if (x->c->started_at != y->c->started_at)
        return x->c->started_at < y->c->started_at ? -1 : 1;
    return strcmp(x->c->id, y->c->id);
}

static bool served(const reg_entry *e)
{
    return e->skipped == NULL && e->has_addr;
}

bool reg_served(const reg_entry *e)
{
    return served(e);
}

static void refresh_hostports(registry *r);
static void set_bound_ips(reg_entry *e);
static int entry_kind(const registry *r, const reg_entry *e);
static void settle_shared(registry *r);
static bool *exposures_leased(const registry *r);
static void drop_reclaimed(registry *r, bool *had);

/* Whether another entry than e holds an address under e's lease key (the
 * containers of a project in project mode share one). */
static bool key_shared(const registry *r, const reg_entry *e)
{
    for (size_t i = 0; i < r->n; i++) {
        const reg_entry *o = r->entries[i];
        if (o != e && o->has_addr && o->addr_kind == e->addr_kind && o->lease_key &&
            strcmp(o->lease_key, e->lease_key) == 0)
            return true;
    }
    return false;
}

static void release(registry *r, reg_entry *e, int64_t now)
{
    if (e->has_addr && e->lease_key) {
        char ip[16];
        /* A bound address is no lease; a project's lease stays active
         * while another of its containers runs. */
        if (e->addr_kind != REG_ADDR_BOUND && !key_shared(r, e))
            alloc_release(&r->pool, e->lease_key, now);
        log_info("registry", "%s: released %s", e->c->name, ip4_format(e->addr, ip));
    }
    e->has_addr = false;
}

/* A lease key must be unique among live containers; two containers could
 * only share one through a rename race, so the later one gets a suffix. */
static char *unique_key(registry *r, reg_entry *self, const char *key)
{
    for (size_t i = 0; i < r->n; i++) {
        reg_entry *o = r->entries[i];
        if (o != self && o->lease_key && strcmp(o->lease_key, key) == 0 && o->has_addr) {
            size_t n = strlen(key) + 16;
            char *k = xmalloc(n);
            snprintf(k, n, "%s#%.12s", key, self->c->id);
            return k;
        }
    }
    return xstrdup(key);
}

/* What a claim is, in the order claims win: a name derived from the
 * container itself (its container or compose replica name), its compose
 * service alias (lowest replica wins, no conflict among the replicas), its
 * project's name (in project mode; no conflict among the project's
 * containers), and last a name from its loophole.names label. Anyone who
 * starts a container sets its labels (an image's LABEL too), so a label
 * never takes a name another container derives, however old the label's
 * holder is. */
enum { CLAIM_DIRECT = 0, CLAIM_SERVICE, CLAIM_PROJECT, CLAIM_LABEL };

typedef struct claim {
    const char *name;
    reg_entry *e;
    int kind;   /* CLAIM_* */
    bool alias; /* kind != CLAIM_DIRECT */
} claim;

static int cmp_claim(const void *a, const void *b)
{
    const claim *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    if (x->kind == CLAIM_SERVICE && x->e->names.replica != y->e->names.replica)
        return x->e->names.replica < y->e->names.replica ? -1 : 1;
    return cmp_started(&x->e, &y->e);
}

static bool same_project(const reg_entry *a, const reg_entry *b)
{
    return a->addr_kind == REG_ADDR_PROJECT && b->addr_kind == REG_ADDR_PROJECT &&
           a->names.project_key && b->names.project_key &&
           strcmp(a->names.project_key, b->names.project_key) == 0 && a->names.project &&
           b->names.project && strcmp(a->names.project, b->names.project) == 0;
}

static const reg_lease *lease_by_dns(const registry *r, const char *dns)
{
    for (size_t i = 0; i < r->nleases; i++)
        if (strcmp(r->leases[i].dns, dns) == 0)
            return &r->leases[i];
    return NULL;
}

static const char *owner_of(const registry *r, const char *name)
{
    for (size_t i = 0; i < r->nowners; i++)
        if (strcmp(r->owner_names[i], name) == 0)
            return r->owner_ids[i];
    return NULL;
}

static bool contains(char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static void push(char ***v, size_t *n, const char *s)
{
    *v = xrealloc(*v, (*n + 1) * sizeof(char *));
    (*v)[(*n)++] = xstrdup(s);
}

static bool same_service(const reg_entry *a, const reg_entry *b)
{
    return a->names.project && b->names.project && a->names.service && b->names.service &&
           strcmp(a->names.project, b->names.project) == 0 &&
           strcmp(a->names.service, b->names.service) == 0;
}

static void assign_names(registry *r)
{
    /* ns.<domain> is the DNS server's own name (the zone's NS record). */
    char ns_name[NAMES_NAME_MAX + 8];
    snprintf(ns_name, sizeof(ns_name), "ns.%s", r->domain);
    size_t nclaims = 0, cap = 0;
    claim *claims = NULL;
    for (size_t i = 0; i < r->n; i++) {
        reg_entry *e = r->entries[i];
        if (!served(e))
            continue;
        for (size_t j = 0; j <= e->names.nnames + 1; j++) {
            const char *name = j < e->names.nnames                ? e->names.names[j]
                               : j == e->names.nnames             ? e->names.service_alias
                               : e->addr_kind == REG_ADDR_PROJECT ? e->names.project_name
                                                                  : NULL;
            if (name == NULL)
                continue;
            if (nclaims == cap) {
                cap = cap ? cap * 2 : 64;
                claims = xrealloc(claims, cap * sizeof(claim));
            }
            int kind = j < e->names.nderived  ? CLAIM_DIRECT
                       : j < e->names.nnames  ? CLAIM_LABEL
                       : j == e->names.nnames ? CLAIM_SERVICE
                                              : CLAIM_PROJECT;
            claims[nclaims++] =
                (claim){name, e, kind, kind == CLAIM_SERVICE || kind == CLAIM_PROJECT};
        }
    }
    if (nclaims)
        qsort(claims, nclaims, sizeof(claim), cmp_claim);

    char **new_owner_names = NULL, **new_owner_ids = NULL;
    size_t nnew = 0;
    /* Fresh owned/conflict lists, keeping the old conflicts to log only news. */
    char ***prev_conf = xcalloc(r->n, sizeof(char **));
    size_t *prev_nconf = xcalloc(r->n, sizeof(size_t));
    for (size_t i = 0; i < r->n; i++) {
        reg_entry *e = r->entries[i];
        free_strv(e->owned, e->nowned);
        e->owned = NULL;
        e->nowned = 0;
        prev_conf[i] = e->conflicts;
        prev_nconf[i] = e->nconflicts;
        e->conflicts = NULL;
        e->nconflicts = 0;
    }
    for (size_t i = 0; i < nclaims;) {
        size_t j = i;
        while (j < nclaims && strcmp(claims[j].name, claims[i].name) == 0)
            j++;
        /* A named lease's name is the lease's: every container claiming it
         * does without. */
        if (lease_by_dns(r, claims[i].name) || strcmp(claims[i].name, ns_name) == 0) {
            for (size_t k = i; k < j; k++) {
                reg_entry *l = claims[k].e;
                if (!contains(l->conflicts, l->nconflicts, claims[k].name))
                    push(&l->conflicts, &l->nconflicts, claims[k].name);
            }
            i = j;
            continue;
        }
        /* The holder keeps a name while it still claims it the best way
         * anyone claims it (derived, or by label when nobody derives it);
         * else the first in order (derived, alias, label; earliest start,
         * lowest id). */
        size_t win = i;
        const char *holder = owner_of(r, claims[i].name);
        if (holder && !claims[i].alias)
            for (size_t k = i; k < j && claims[k].kind == claims[i].kind; k++)
                if (strcmp(claims[k].e->c->id, holder) == 0)
                    win = k;
        reg_entry *w = claims[win].e;
        push(&w->owned, &w->nowned, claims[win].name);
        new_owner_names = xrealloc(new_owner_names, (nnew + 1) * sizeof(char *));
        new_owner_ids = xrealloc(new_owner_ids, (nnew + 1) * sizeof(char *));
        new_owner_names[nnew] = xstrdup(claims[win].name);
        new_owner_ids[nnew] = xstrdup(w->c->id);
        nnew++;
        for (size_t k = i; k < j; k++) {
            reg_entry *l = claims[k].e;
            if (k == win || l == w)
                continue;
            if (claims[k].kind == CLAIM_SERVICE && same_service(l, w))
                continue;
            if (claims[k].kind == CLAIM_PROJECT && same_project(l, w))
                continue;
            if (!contains(l->conflicts, l->nconflicts, claims[k].name))
                push(&l->conflicts, &l->nconflicts, claims[k].name);
        }
        i = j;
    }
    for (size_t i = 0; i < r->n; i++) {
        reg_entry *e = r->entries[i];
        for (size_t k = 0; k < e->nconflicts; k++)
            if (!contains(prev_conf[i], prev_nconf[i], e->conflicts[k])) {
                const char *id = owner_of(r, e->conflicts[k]);
                const reg_entry *o = NULL;
                for (size_t m = 0; m < nnew; m++)
                    if (strcmp(new_owner_names[m], e->conflicts[k]) == 0)
                        id = new_owner_ids[m];
                o = id ? reg_find(r, id) : NULL;
                if (strcmp(e->conflicts[k], ns_name) == 0)
                    log_warn("registry",
                             "name conflict: %s is the DNS server's own name, so %s does "
                             "without it",
                             e->conflicts[k], e->c->name);
                else if (lease_by_dns(r, e->conflicts[k]))
                    log_warn("registry",
                             "name conflict: %s is a named lease's (loophole lease ls), so %s "
                             "does without it",
                             e->conflicts[k], e->c->name);
                else
                    log_warn("registry", "name conflict: %s is held by %s, so %s does without it",
                             e->conflicts[k], o ? o->c->name : "another container", e->c->name);
            }
        free_strv(prev_conf[i], prev_nconf[i]);
    }
    free(prev_conf);
    free(prev_nconf);
    free_strv(r->owner_names, r->nowners);
    free_strv(r->owner_ids, r->nowners);
    r->owner_names = new_owner_names;
    r->owner_ids = new_owner_ids;
    r->nowners = nnew;
    free(claims);
}

static void recompute(registry *r, int64_t now)
{
    if (r->n)
        qsort(r->entries, r->n, sizeof(reg_entry *), cmp_started);
    /* Let go of addresses first, so a container that stopped frees its
     * address for one that is waiting in the same pass. */
    for (size_t i = 0; i < r->n; i++) {
        reg_entry *e = r->entries[i];
        e->skipped = NULL;
        if (e->names.skipped)
            e->skipped = e->names.skipped;
        else if (!e->c->running)
            e->skipped = "not running";
        else
            e->skipped = ineligible(r, e);
        if (e->skipped)
            release(r, e, now);
    }
    /* How each gets its address; the addresses containers publish on
     * themselves are nobody else's. */
    uint32_t *taken = NULL;
    size_t ntaken = 0;
    for (size_t i = 0; i < r->n; i++) {
        reg_entry *e = r->entries[i];
        /* Served or not, Docker binds them. */
        set_bound_ips(e);
        taken = xrealloc(taken, (ntaken + e->nbound + 1) * sizeof(uint32_t));
        for (size_t k = 0; k < e->nbound; k++)
            taken[ntaken++] = e->bound_ips[k];
        if (e->skipped)
            continue;
        int kind = entry_kind(r, e);
        if (e->has_addr && kind != e->addr_kind)
            release(r, e, now);
        e->addr_kind = kind;
    }
    alloc_set_taken(&r->pool, taken, ntaken);
    free(taken);
    for (size_t i = 0; i < r->n; i++) {
        reg_entry *e = r->entries[i];
        if (e->skipped || e->addr_kind != REG_ADDR_BOUND)
            continue;
        char ip[16];
        if (!e->has_addr || e->addr != e->bound_ips[0])
            log_info("registry", "%s -> %s (%s publishes on it itself)",
                     e->names.nnames ? e->names.names[0] : e->c->name,
                     ip4_format(e->bound_ips[0], ip), e->c->name);
        e->has_addr = true;
        e->addr = e->bound_ips[0];
        if (e->lease_key == NULL || strcmp(e->lease_key, e->names.lease_key) != 0) {
            free(e->lease_key);
            e->lease_key = xstrdup(e->names.lease_key);
        }
    }
    /* A container loophole placed on an address another container now
     * publishes on moves (its names follow). */
    for (size_t i = 0; i < r->n; i++) {
        reg_entry *e = r->entries[i];
        if (e->skipped || !e->has_addr || e->addr_kind == REG_ADDR_BOUND ||
            !alloc_is_taken(&r->pool, e->addr))
            continue;
        uint32_t addr, old = e->addr;
        bool *had = exposures_leased(r);
        int arc = alloc_acquire(&r->pool, e->lease_key, now, &addr);
        drop_reclaimed(r, had);
        char a[16], b[16];
        for (size_t k = 0; k < r->n; k++) {
            reg_entry *o = r->entries[k];
            if (o->has_addr && o->addr_kind == e->addr_kind && o->addr == old &&
                strcmp(o->lease_key, e->lease_key) == 0) {
                if (arc == 0)
                    o->addr = addr;
                else
                    o->has_addr = false; /* tried again below, and reported there */
            }
        }
        if (arc < 0)
            alloc_release(&r->pool, e->lease_key, now); /* its address is not its own any more */
        if (arc == 0)
            log_warn("registry", "a container publishes on %s itself: moving %s to %s",
                     ip4_format(old, a), e->c->name, ip4_format(addr, b));
    }
    r->exhausted = 0;
    for (size_t i = 0; i < r->n; i++) {
        reg_entry *e = r->entries[i];
        if (e->skipped || e->has_addr)
            continue;
        free(e->lease_key);
        /* A project's containers share its key on purpose. */
        e->lease_key = e->addr_kind == REG_ADDR_PROJECT ? xstrdup(e->names.project_key)
                                                        : unique_key(r, e, e->names.lease_key);
        uint32_t addr;
        char ip[16];
        /* A new key may reclaim a stopped container's lease: its exposures
         * go with it (see drop_reclaimed). */
        bool *had = exposures_leased(r);
        int arc = alloc_acquire(&r->pool, e->lease_key, now, &addr);
        drop_reclaimed(r, had);
        if (arc < 0) {
            r->exhausted++;
            e->skipped = "address pool exhausted";
            if (!e->logged_exhausted) {
                char a[16], b[16];
                log_error("registry",
                          "address pool %s-%s is exhausted: %s gets no address until "
                          "another container stops (widen it with --pool)",
                          ip4_format(r->pool.first, a), ip4_format(r->pool.last, b), e->c->name);
                e->logged_exhausted = true;
            }
            continue;
        }
        e->logged_exhausted = false;
        e->has_addr = true;
        e->addr = addr;
        log_info("registry", "%s -> %s (%s)", e->names.nnames ? e->names.names[0] : e->c->name,
                 ip4_format(addr, ip), e->c->name);
    }
    assign_names(r);
    settle_shared(r);
    refresh_hostports(r);
}

static reg_entry *find_id(registry *r, const char *id, size_t *idx)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->entries[i]->c->id, id) == 0) {
            if (idx)
                *idx = i;
            return r->entries[i];
        }
    return NULL;
}

static bool is_v6(const char *ip)
{
    return strchr(ip, ':') != NULL;
}

static bool wildcard(const char *ip)
{
    return ip[0] == '\0' || strcmp(ip, "0.0.0.0") == 0 || strcmp(ip, "::") == 0;
}

int reg_port_target(const reg_port *p, struct sockaddr_storage *out)
{
    const char *ip = p->host_ip;
    uint16_t port = p->host_port;
    if (p->plan == REG_PORT_DIRECT) {
        ip = p->target_ip;
        port = p->port;
    } else if (wildcard(ip)) {
        ip = p->ipv6_only ? "::1" : "127.0.0.1";
    }
    memset(out, 0, sizeof(*out));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        return inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1 ? 0 : -EINVAL;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)out;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    return inet_pton(AF_INET, ip, &s4->sin_addr) == 1 ? 0 : -EINVAL;
}

static const char *proto_name(int proto)
{
    return proto == CTR_UDP ? "udp" : "tcp";
}

int reg_reachability(const registry *r, const char *network)
{
    for (size_t i = 0; network && i < r->nreach; i++)
        if (strcmp(r->reach[i].network, network) == 0)
            return r->reach[i].state;
    return REG_REACH_UNKNOWN;
}

/* Whether network a comes before b in the fixed order direct forwarding
 * tries: the engine's default bridge, then the others sorted by name. */
static bool net_before(const ctr_net *a, const ctr_net *b)
{
    bool ab = strcmp(a->name, "bridge") == 0, bb = strcmp(b->name, "bridge") == 0;
    if (ab != bb)
        return ab;
    return strcmp(a->name, b->name) < 0;
}

/* The network direct forwarding uses for c: the one loophole.network names,
 * when c has an address on it (even when it is unreachable: the person
 * chose it); else the first in the fixed order that is known to be
 * reachable, else the first not known to be unreachable, else the first in
 * that order (unreachable). NULL when c has
 * no IPv4 address. problem gets a loophole.network that names no network
 * of c ("" when none). */
static const ctr_net *choose_net(const registry *r, const container *c, char *problem, size_t plen)
{
    problem[0] = '\0';
    const char *want = container_label(c, LABEL_NETWORK);
    if (want && want[0]) {
        for (size_t i = 0; i < c->nnets; i++)
            if (usable_net(&c->nets[i]) && strcmp(c->nets[i].name, want) == 0)
                return &c->nets[i];
        char shown[PRINTABLE_BUF];
        snprintf(problem, plen,
                 "loophole.network names \"%s\", which the container is not on (or has no IPv4 "
                 "address on)",
                 printable(want, strnlen(want, LABEL_VALUE_MAX), shown, sizeof(shown)));
    }
    /* Pass 0: the first known to be reachable (a network just connected is
     * not preferred before its probe answered, so open connections keep
     * their listener); 1: the first not known to be unreachable; 2: any. */
    for (int pass = 0; pass < 3; pass++) {
        const ctr_net *best = NULL;
        for (size_t i = 0; i < c->nnets; i++) {
            const ctr_net *n = &c->nets[i];
            int st = reg_reachability(r, n->name);
            if (!usable_net(n) || (pass == 0 && st != REG_REACH_OK) ||
                (pass == 1 && st == REG_REACH_UNREACHABLE))
                continue;
            if (best == NULL || net_before(n, best))
                best = n;
        }
        if (best)
            return best;
    }
    return NULL;
}

/* A loopback address a port is published on that is the container's own:
 * 127/8 but not 127.0.0.1 (which is everyone's). */
static bool own_loopback(const reg_port *p, uint32_t *addr)
{
    uint32_t a;
    if (p->host_port == 0 || is_v6(p->host_ip) || ip4_parse(p->host_ip, &a) != 0)
        return false;
    if ((a & 0xff000000u) != 0x7f000000u || a == 0x7f000001u)
        return false;
    *addr = a;
    return true;
}

/* The address a container publishing on loopback addresses of its own is
 * bound to: the first such, in port order (0 when none). */
static uint32_t first_bound(const reg_port *ports, size_t n)
{
    uint32_t a;
    for (size_t i = 0; i < n; i++)
        if (own_loopback(&ports[i], &a))
            return a;
    return 0;
}

/* What the registry wants for p, on network net (choose_net's; netproblem
 * its problem), with the reason when it cannot be served or what is wrong
 * with how it is. bound: the address the container is bound to (0: none). */
static void plan_port(const registry *r, const container *c, const ctr_net *net,
                      const char *netproblem, uint32_t bound, reg_port *p)
{
    p->problem[0] = '\0';
    p->plan = REG_PORT_NONE;
    p->network[0] = '\0';
    p->target_ip[0] = '\0';
    bool published = p->host_port != 0;
    if (p->proto != CTR_TCP && p->proto != CTR_UDP)
        return;
    if (!published && !r->serve_exposed && !p->labelled)
        return; /* --serve published: an exposed port is only listed */
    if (p->proto == CTR_TCP)
        p->kafka_mode = label_kafka_mode(container_label(c, LABEL_KAFKA), p->port, NULL);
    /* -p 5432:5432 on a wildcard address: Docker's own listener already
     * answers on every 127.x address, and binding a specific address would
     * fail with EADDRINUSE on all of them. So in every forwarding mode. */
    if (published && r->share_wildcard && p->host_port == p->port && wildcard(p->host_ip)) {
        p->plan = REG_PORT_SHARED;
        return;
    }
    /* -p 127.0.0.16:5432:5432: Docker answers there itself. A port there
     * under another host port gets a listener on its own number as usual;
     * one on another address of its own is listed where it is. */
    uint32_t own;
    if (own_loopback(p, &own) && (own != bound || p->host_port == p->port)) {
        p->plan = REG_PORT_BOUND;
        if (own != bound) {
            char a[16], b[16];
            snprintf(p->problem, sizeof(p->problem),
                     "port %u/%s is published on %s, not on the container's address %s (it takes "
                     "the first it publishes on): reach it at %s:%u",
                     p->port, proto_name(p->proto), ip4_format(own, a), ip4_format(bound, b), a,
                     p->host_port);
        }
        return;
    }
    unsigned port = p->port;
    const char *pn = proto_name(p->proto);
    /* "-p 8080" or "-p 8080/udp", as the person would type it. */
    const char *flag = p->proto == CTR_UDP ? "/udp" : "";
    int state = net ? reg_reachability(r, net->name) : REG_REACH_UNREACHABLE;
    int plan;
    if (r->forward == REG_FORWARD_MAPPED) {
        plan = published ? REG_PORT_MAPPED : REG_PORT_UNREACHABLE;
        if (!published)
            snprintf(p->problem, sizeof(p->problem),
                     "port %u/%s is not published, and --forward mapped serves only published "
                     "ports: publish it (-p %u%s) or run loopholed with --forward auto",
                     port, pn, port, flag);
    } else if (net == NULL) {
        plan = published ? REG_PORT_MAPPED : REG_PORT_UNREACHABLE;
        if (!published)
            snprintf(p->problem, sizeof(p->problem),
                     "port %u/%s is not published and the container has no IPv4 address of its "
                     "own: publish it (-p %u%s)",
                     port, pn, port, flag);
    } else if (r->forward == REG_FORWARD_DIRECT) {
        plan = REG_PORT_DIRECT;
        char shown[PRINTABLE_BUF];
        if (state == REG_REACH_UNREACHABLE)
            snprintf(p->problem, sizeof(p->problem),
                     "port %u/%s goes to %s on network %s (--forward direct), but the probe of "
                     "that network from the host failed",
                     port, pn, net->ip,
                     printable(net->name, strlen(net->name), shown, sizeof(shown)));
    } else if (state == REG_REACH_OK ||
               (!published && p->proto == CTR_UDP && state != REG_REACH_UNREACHABLE)) {
        /* UDP cannot be probed (nothing answers a datagram for sure); a
         * network's state comes from a TCP probe. Until one answered, an
         * exposed-only UDP port is served direct, optimistically: it has no
         * other path, and a failed probe turns it unreachable. */
        plan = REG_PORT_DIRECT;
    } else if (published) {
        plan = REG_PORT_MAPPED; /* unknown or unreachable: Docker's mapped port, as always */
    } else if (state == REG_REACH_UNREACHABLE) {
        plan = REG_PORT_UNREACHABLE;
        snprintf(p->problem, sizeof(p->problem),
                 "port %u/%s is not published and the container's network is not reachable from "
                 "the host: publish it (-p %u%s) or route container networks to the host (e.g. "
                 "docker-mac-net-connect)",
                 port, pn, port, flag);
    } else {
        plan = REG_PORT_NONE; /* waiting for the probe of its network */
    }
    if (plan == REG_PORT_MAPPED) {
        struct sockaddr_storage ss;
        p->plan = plan;
        if (reg_port_target(p, &ss) < 0) {
            char shown[64];
            snprintf(p->problem, sizeof(p->problem),
                     "port %u/%s: Docker's host address \"%s\" is not usable", port, pn,
                     printable(p->host_ip, strlen(p->host_ip), shown, sizeof(shown)));
            plan = REG_PORT_NONE;
        }
    }
    if (plan == REG_PORT_DIRECT) {
        snprintf(p->network, sizeof(p->network), "%s", net->name);
        snprintf(p->target_ip, sizeof(p->target_ip), "%s", net->ip);
    }
    p->plan = plan;
    if (p->problem[0] == '\0' && netproblem[0])
        snprintf(p->problem, sizeof(p->problem), "%s", netproblem);
}

/* Plans every port of e (of container c) again, without logging. */
static void plan_ports(const registry *r, const container *c, reg_port *ports, size_t n)
{
    char netproblem[sizeof(((reg_port *)0)->problem)];
    const ctr_net *net = choose_net(r, c, netproblem, sizeof(netproblem));
    uint32_t bound = first_bound(ports, n);
    for (size_t j = 0; j < n; j++)
        plan_port(r, c, net, netproblem, bound, &ports[j]);
}

/* e->bound_ips: the loopback addresses of its own a running container
 * publishes on (Docker binds them whether loophole serves it or not). */
static void set_bound_ips(reg_entry *e)
{
    free(e->bound_ips);
    e->bound_ips = NULL;
    e->nbound = 0;
    for (size_t i = 0; e->c->running && i < e->nports; i++) {
        uint32_t a;
        if (!own_loopback(&e->ports[i], &a))
            continue;
        bool dup = false;
        for (size_t k = 0; k < e->nbound && !dup; k++)
            dup = e->bound_ips[k] == a;
        if (dup)
            continue;
        e->bound_ips = xrealloc(e->bound_ips, (e->nbound + 1) * sizeof(uint32_t));
        e->bound_ips[e->nbound++] = a;
    }
}

/* How e gets its address (REG_ADDR_*), after set_bound_ips. */
static int entry_kind(const registry *r, const reg_entry *e)
{
    if (e->nbound)
        return REG_ADDR_BOUND;
    if (e->names.project_key == NULL)
        return REG_ADDR_CONTAINER;
    int m = label_address_mode(container_label(e->c, LABEL_ADDRESS));
    if (m == LABEL_ADDRESS_PROJECT ||
        (m != LABEL_ADDRESS_CONTAINER && r->address_per == REG_ADDRESS_PER_PROJECT))
        return REG_ADDR_PROJECT;
    return REG_ADDR_CONTAINER;
}

/* One port a served container wants answered on its address. */
typedef struct slot {
    uint32_t addr;
    uint16_t port;
    uint8_t proto;
    uint8_t pass; /* 0: Docker answers there itself (bound), 1: a listener */
    size_t order; /* the entry's place in start order */
    reg_entry *e;
    reg_port *p;
} slot;

static int cmp_slot(const void *a, const void *b)
{
    const slot *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    if (x->proto != y->proto)
        return x->proto < y->proto ? -1 : 1;
    if (x->port != y->port)
        return x->port < y->port ? -1 : 1;
    if (x->pass != y->pass)
        return x->pass < y->pass ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Containers sharing an address (a project's, or a bound one) cannot all
 * have the same port there: the one Docker binds keeps it, else the one
 * that started first; the others' port is not served and says why. */
static void settle_shared(registry *r)
{
    size_t n = 0, cap = 0;
    slot *v = NULL;
    for (size_t i = 0; i < r->n; i++) {
        reg_entry *e = r->entries[i];
        /* A port that lost a clash is planned afresh: the holder may be
         * gone. */
        bool any = false;
        for (size_t j = 0; j < e->nports; j++)
            any |= e->ports[j].clashed;
        if (any) {
            char netproblem[sizeof(((reg_port *)0)->problem)];
            const ctr_net *net = choose_net(r, e->c, netproblem, sizeof(netproblem));
            uint32_t bound = first_bound(e->ports, e->nports);
            for (size_t j = 0; j < e->nports; j++)
                if (e->ports[j].clashed)
                    plan_port(r, e->c, net, netproblem, bound, &e->ports[j]);
        }
        for (size_t j = 0; j < e->nports; j++) {
            reg_port *p = &e->ports[j];
            bool was = p->clashed;
            p->clashed = false;
            if (!served(e) || (p->plan != REG_PORT_MAPPED && p->plan != REG_PORT_DIRECT &&
                               p->plan != REG_PORT_BOUND))
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 32;
                v = xrealloc(v, cap * sizeof(slot));
            }
            v[n++] = (slot){e->addr, p->port, p->proto, p->plan == REG_PORT_BOUND ? 0 : 1, i, e, p};
            p->clashed = was; /* kept until decided below, to log only news */
        }
    }
    if (n > 1)
        qsort(v, n, sizeof(slot), cmp_slot);
    for (size_t i = 0; i < n; i++) {
        slot *x = &v[i];
        bool was = x->p->clashed;
        x->p->clashed = false;
        size_t k = i;
        while (k > 0 && v[k - 1].addr == x->addr && v[k - 1].port == x->port &&
               v[k - 1].proto == x->proto)
            k--;
        if (k == i || v[k].e == x->e)
            continue;
        char a[16];
        ip4_format(x->addr, a);
        x->p->plan = REG_PORT_NONE;
        x->p->network[0] = '\0';
        x->p->target_ip[0] = '\0';
        x->p->clashed = true;
        snprintf(x->p->problem, sizeof(x->p->problem),
                 "port %u/%s on %s is served for %s, which shares this address and has it "
                 "already",
                 x->port, proto_name(x->proto), a, v[k].e->c->name);
        if (!was)
            log_warn("registry", "%s: %s", x->e->c->name, x->p->problem);
    }
    free(v);
}

static const reg_port *find_port(const reg_port *v, size_t n, uint16_t port, uint8_t proto)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].port == port && v[i].proto == proto)
            return &v[i];
    return NULL;
}

/* Logs the problems of ports that old (nold) did not have, so a problem is
 * logged when it appears, not at every Docker update or probe. */
static void log_new_problems(const container *c, const reg_port *ports, size_t n,
                             const reg_port *old, size_t nold)
{
    for (size_t j = 0; j < n; j++) {
        const reg_port *p = &ports[j];
        const reg_port *o = find_port(old, nold, p->port, p->proto);
        if (p->problem[0] && (o == NULL || strcmp(o->problem, p->problem) != 0))
            log_warn("registry", "%s: %s", c->name, p->problem);
    }
}

/* One reg_port per (port, proto), with the ports of the loophole.ports
 * label added as exposed ones, in numeric order, carrying over the Kafka
 * flag of a port that is still there. */
static void set_ports(registry *r, reg_entry *e, const container *c)
{
    uint16_t lports[LABEL_PORTS_MAX];
    uint8_t lprotos[LABEL_PORTS_MAX];
    int nl = label_ports(container_label(c, LABEL_PORTS), lports, lprotos, LABEL_PORTS_MAX, NULL);
    reg_port *ports = xcalloc(c->nports + (size_t)nl + 1, sizeof(reg_port));
    size_t n = 0;
    for (size_t i = 0; i < c->nports; i++) {
        const ctr_port *cp = &c->ports[i];
        reg_port *p = NULL;
        for (size_t j = 0; j < n && !p; j++)
            if (ports[j].port == cp->port && ports[j].proto == cp->proto)
                p = &ports[j];
        if (p == NULL) {
            p = &ports[n++];
            p->port = cp->port;
            p->proto = cp->proto;
        } else {
            /* A second binding of the same port: take it only over none, or
             * an IPv4 one over an IPv6 one. */
            bool take = cp->host_port && (!p->host_port || (p->ipv6_only && !is_v6(cp->host_ip)));
            if (!take)
                continue;
        }
        p->host_port = cp->host_port;
        snprintf(p->host_ip, sizeof(p->host_ip), "%s", cp->host_ip);
        p->ipv6_only = cp->host_port && is_v6(cp->host_ip);
    }
    for (int i = 0; i < nl; i++) {
        reg_port *p = (reg_port *)find_port(ports, n, lports[i], lprotos[i]);
        if (p == NULL) {
            p = &ports[n++];
            p->port = lports[i];
            p->proto = lprotos[i];
        }
        p->labelled = true;
    }
    /* Numeric order, the label's ports among Docker's (insertion sort). */
    for (size_t i = 1; i < n; i++) {
        reg_port t = ports[i];
        size_t j = i;
        while (j > 0 && (ports[j - 1].port > t.port ||
                         (ports[j - 1].port == t.port && ports[j - 1].proto > t.proto))) {
            ports[j] = ports[j - 1];
            j--;
        }
        ports[j] = t;
    }
    plan_ports(r, c, ports, n);
    log_new_problems(c, ports, n, e->ports, e->nports);
    for (size_t j = 0; j < n; j++) {
        reg_port *p = &ports[j];
        const reg_port *old = find_port(e->ports, e->nports, p->port, p->proto);
        if (old) {
            p->kafka = old->kafka && p->kafka_mode != LABEL_KAFKA_OFF;
            p->clashed = old->clashed;
        }
        if (p->kafka_mode == LABEL_KAFKA_FORCE)
            p->kafka = true;
    }
    free(e->ports);
    e->ports = ports;
    e->nports = n;
}

/* A loophole.ports label with entries that are not ports is logged once per
 * value (printable only: a label can hold anything). */
static void check_ports_label(const container *old, const container *c)
{
    const char *v = container_label(c, LABEL_PORTS);
    if (v == NULL)
        return;
    const char *was = old ? container_label(old, LABEL_PORTS) : NULL;
    if (was && strcmp(was, v) == 0)
        return;
    uint16_t ports[LABEL_PORTS_MAX];
    uint8_t protos[LABEL_PORTS_MAX];
    int bad = 0;
    label_ports(v, ports, protos, LABEL_PORTS_MAX, &bad);
    if (bad) {
        char shown[PRINTABLE_BUF];
        log_warn("registry",
                 "%s: label loophole.ports=\"%s\" has %d entries that are not ports (want a list "
                 "like \"8080,9000/udp\", at most %d); the others are served",
                 c->name, printable(v, strlen(v), shown, sizeof(shown)), bad, LABEL_PORTS_MAX);
    }
}

/* Plans e's ports again (after a reachability change). A port whose plan
 * stays keeps a held problem (the port table reported it this apply).
 * Returns whether any plan, target or problem changed. */
static bool replan_entry(registry *r, reg_entry *e)
{
    if (e->nports == 0)
        return false;
    reg_port *old = xmalloc(e->nports * sizeof(reg_port));
    memcpy(old, e->ports, e->nports * sizeof(reg_port));
    plan_ports(r, e->c, e->ports, e->nports);
    bool changed = false;
    for (size_t j = 0; j < e->nports; j++) {
        reg_port *p = &e->ports[j];
        const reg_port *o = &old[j];
        bool same = p->plan == o->plan && strcmp(p->target_ip, o->target_ip) == 0 &&
                    strcmp(p->network, o->network) == 0;
        if (o->held && same) {
            p->held = true;
            memcpy(p->problem, o->problem, sizeof(p->problem));
        } else {
            p->held = false;
        }
        changed |= !same || strcmp(p->problem, o->problem) != 0;
    }
    log_new_problems(e->c, e->ports, e->nports, old, e->nports);
    free(old);
    return changed;
}

bool reg_set_reachability(registry *r, const char *network, int state)
{
    if (network == NULL || strlen(network) >= REG_NETWORK_MAX)
        return false;
    size_t i = 0;
    while (i < r->nreach && strcmp(r->reach[i].network, network) != 0)
        i++;
    if (state == REG_REACH_UNKNOWN) {
        if (i < r->nreach)
            r->reach[i] = r->reach[--r->nreach];
    } else {
        if (i == r->nreach) {
            r->reach = xrealloc(r->reach, (r->nreach + 1) * sizeof(*r->reach));
            snprintf(r->reach[i].network, sizeof(r->reach[i].network), "%s", network);
            r->nreach++;
        }
        r->reach[i].state = state;
    }
    bool changed = false;
    for (size_t k = 0; k < r->n; k++)
        changed |= replan_entry(r, r->entries[k]);
    settle_shared(r);
    return changed;
}

size_t reg_probe_wants(const registry *r, reg_probe_want **out)
{
    *out = NULL;
    if (r->forward == REG_FORWARD_MAPPED)
        return 0;
    size_t n = 0;
    reg_probe_want *v = NULL;
    for (size_t i = 0; i < r->n; i++) {
        const reg_entry *e = r->entries[i];
        if (!served(e))
            continue;
        uint16_t port = 9; /* discard: refused is an answer too */
        for (size_t j = 0; j < e->nports; j++)
            if (e->ports[j].proto == CTR_TCP) {
                port = e->ports[j].port;
                break;
            }
        for (size_t k = 0; k < e->c->nnets; k++) {
            const ctr_net *net = &e->c->nets[k];
            if (!usable_net(net))
                continue;
            bool dup = false;
            for (size_t m = 0; m < n && !dup; m++)
                dup = strcmp(v[m].network, net->name) == 0;
            if (dup)
                continue;
            v = xrealloc(v, (n + 1) * sizeof(*v));
            reg_probe_want *w = &v[n++];
            memset(w, 0, sizeof(*w));
            snprintf(w->network, sizeof(w->network), "%s", net->name);
            snprintf(w->ip, sizeof(w->ip), "%s", net->ip);
            w->port = port;
            w->proto = CTR_TCP;
        }
    }
    *out = v;
    return n;
}

/* A loophole.kafka label that is not "off" or a port list is logged once per
 * value (printable only: a label can hold anything). */
static void check_kafka_label(const container *old, const container *c)
{
    const char *v = container_label(c, LABEL_KAFKA);
    if (v == NULL)
        return;
    const char *was = old ? container_label(old, LABEL_KAFKA) : NULL;
    if (was && strcmp(was, v) == 0)
        return;
    int bad = 0;
    label_kafka_mode(v, 0, &bad);
    if (bad) {
        char shown[PRINTABLE_BUF];
        log_warn("kafka",
                 "%s: label loophole.kafka=\"%s\" has entries that are not ports "
                 "(want \"off\" or a list like \"9092,9093\")",
                 c->name, printable(v, strlen(v), shown, sizeof(shown)));
    }
}

/* A loophole.address label that is neither "project" nor "container" is
 * logged once per value. */
static void check_address_label(const container *old, const container *c)
{
    const char *v = container_label(c, LABEL_ADDRESS);
    if (v == NULL || label_address_mode(v) != LABEL_ADDRESS_BAD)
        return;
    const char *was = old ? container_label(old, LABEL_ADDRESS) : NULL;
    if (was && strcmp(was, v) == 0)
        return;
    char shown[PRINTABLE_BUF];
    log_warn("registry",
             "%s: label " LABEL_ADDRESS "=\"%s\" is neither \"project\" nor \"container\"; "
             "--address-per decides",
             c->name, printable(v, strnlen(v, LABEL_VALUE_MAX), shown, sizeof(shown)));
}

/* Whether a held lease key is key itself or unique_key's "key#<id>" form.
 * A plain prefix test would take "name:web2" for "name:web". */
static bool same_key(const char *held, const char *key)
{
    size_t n = strlen(key);
    return strncmp(held, key, n) == 0 && (held[n] == '\0' || held[n] == '#');
}

/* Installs c in e (new or existing), deriving its names. */
static void set_container(registry *r, reg_entry *e, container *c, int64_t now)
{
    names_result nr;
    names_derive(c, r->domain, &nr);
    /* A project's containers hold their project's key. */
    const char *key = e->addr_kind == REG_ADDR_PROJECT ? nr.project_key : nr.lease_key;
    if (e->c && e->has_addr && e->lease_key && (key == NULL || !same_key(e->lease_key, key)))
        release(r, e, now); /* renamed: its old lease stays with the old name */
    check_kafka_label(e->c, c);
    check_ports_label(e->c, c);
    check_address_label(e->c, c);
    set_ports(r, e, c);
    container_free(e->c);
    names_result_free(&e->names);
    e->c = c;
    e->names = nr;
}

static void upsert(registry *r, container *c, int64_t now)
{
    reg_entry *e = find_id(r, c->id, NULL);
    if (e == NULL) {
        e = xcalloc(1, sizeof(*e));
        e->seen_at = now;
        r->entries = xrealloc(r->entries, (r->n + 1) * sizeof(reg_entry *));
        r->entries[r->n++] = e;
    }
    set_container(r, e, c, now);
}

static void remove_at(registry *r, size_t i, int64_t now)
{
    reg_entry *e = r->entries[i];
    release(r, e, now);
    entry_free(e);
    r->entries[i] = r->entries[--r->n];
}

/* The daemon's own relay sidecars are not containers anyone asked loophole
 * to serve: they would get names, addresses and host ports of their own. */
/* One of the daemon's relay sidecars: labelled and named so (a label an
 * image carries does not make a container of it one). */
static bool is_sidecar(const container *c)
{
    return container_label(c, LABEL_SIDECAR) != NULL && c->name &&
           strncmp(c->name, LABEL_SIDECAR_NAME_PREFIX, strlen(LABEL_SIDECAR_NAME_PREFIX)) == 0;
}

void reg_sync(registry *r, container **cs, size_t n, int64_t now)
{
    container **keep_cs = xcalloc(n ? n : 1, sizeof(container *));
    size_t nkeep = 0;
    for (size_t j = 0; j < n; j++) {
        if (is_sidecar(cs[j]))
            container_free(cs[j]);
        else
            keep_cs[nkeep++] = cs[j];
    }
    for (size_t i = 0; i < r->n;) {
        bool keep = false;
        for (size_t j = 0; j < nkeep && !keep; j++)
            keep = strcmp(keep_cs[j]->id, r->entries[i]->c->id) == 0;
        if (keep)
            i++;
        else
            remove_at(r, i, now);
    }
    for (size_t j = 0; j < nkeep; j++)
        upsert(r, keep_cs[j], now);
    free(keep_cs);
    recompute(r, now);
}

void reg_update(registry *r, container *c, int64_t now)
{
    if (is_sidecar(c)) {
        size_t i;
        bool known = find_id(r, c->id, &i) != NULL;
        container_free(c);
        if (known) {
            remove_at(r, i, now);
            recompute(r, now);
        }
        return;
    }
    upsert(r, c, now);
    recompute(r, now);
}

bool reg_remove(registry *r, const char *id, int64_t now)
{
    size_t i;
    if (find_id(r, id, &i) == NULL)
        return false;
    remove_at(r, i, now);
    recompute(r, now);
    return true;
}

static bool is_hex(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

/* Whether DNS name n is key[0..kl) (any case), whole or without the domain
 * ("pg" for "pg.loop.test"). */
static bool name_is(const registry *r, const char *n, const char *key, size_t kl)
{
    size_t nl = strlen(n), dl = strlen(r->domain);
    return (nl == kl || (nl == kl + 1 + dl && n[kl] == '.')) && strncasecmp(n, key, kl) == 0;
}

reg_entry *reg_find(registry *r, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < r->n; i++) {
        reg_entry *e = r->entries[i];
        if (strcmp(e->c->id, key) == 0 || (e->c->name && strcmp(e->c->name, key) == 0))
            return e;
    }
    if (kl >= 12 && is_hex(key)) {
        reg_entry *found = NULL;
        for (size_t i = 0; i < r->n; i++)
            if (strncmp(r->entries[i]->c->id, key, kl) == 0) {
                if (found)
                    return NULL; /* ambiguous */
                found = r->entries[i];
            }
        if (found)
            return found;
    }
    for (size_t i = 0; i < r->n; i++) {
        reg_entry *e = r->entries[i];
        for (size_t j = 0; j < e->nowned; j++)
            if (name_is(r, e->owned[j], key, kl))
                return e;
    }
    return NULL;
}

static bool is_primary(const reg_entry *e, const char *name)
{
    return e->names.nnames && strcmp(e->names.names[0], name) == 0;
}

reg_record *reg_records(const registry *r, size_t *n)
{
    size_t total = r->nleases;
    for (size_t i = 0; i < r->n; i++)
        if (served(r->entries[i]))
            total += r->entries[i]->nowned;
    reg_record *out = xcalloc(total ? total : 1, sizeof(reg_record));
    size_t k = 0;
    /* A lease's name is the primary one of its address (a container bound
     * to it shares it). */
    for (size_t i = 0; i < r->nleases; i++)
        out[k++] = (reg_record){r->leases[i].dns, r->leases[i].addr};
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < r->n; i++) {
            const reg_entry *e = r->entries[i];
            if (!served(e))
                continue;
            for (size_t j = 0; j < e->nowned; j++)
                if (is_primary(e, e->owned[j]) == (pass == 0))
                    out[k++] = (reg_record){e->owned[j], e->addr};
        }
    *n = k;
    return out;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static size_t sort_unique(uint32_t *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(uint32_t), cmp_u32);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[k - 1])
            v[k++] = v[i];
    return k;
}

uint32_t *reg_addresses(const registry *r, size_t *n)
{
    uint32_t *out = xcalloc(r->n + 1, sizeof(uint32_t));
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++)
        if (served(r->entries[i]))
            out[k++] = r->entries[i]->addr;
    *n = sort_unique(out, k);
    return out;
}

uint32_t *reg_alias_addresses(const registry *r, size_t *n)
{
    uint32_t *out = xcalloc(r->n + r->nleases + 1, sizeof(uint32_t));
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++)
        if (served(r->entries[i]))
            out[k++] = r->entries[i]->addr;
    for (size_t i = 0; i < r->nleases; i++)
        out[k++] = r->leases[i].addr;
    *n = sort_unique(out, k);
    return out;
}

uint32_t *reg_kept_addresses(const registry *r, size_t *n)
{
    uint32_t *out = xcalloc(r->n + r->nleases + 1, sizeof(uint32_t));
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++)
        if (served(r->entries[i]) && r->entries[i]->addr_kind == REG_ADDR_BOUND)
            out[k++] = r->entries[i]->addr;
    for (size_t i = 0; i < r->nleases; i++)
        out[k++] = r->leases[i].addr;
    *n = sort_unique(out, k);
    return out;
}

/* Moves a served container to another address. Returns 0, -EINVAL when it is
 * not served, or alloc_move's -ENOSPC when no address is free. */
static int reg_move(registry *r, reg_entry *e, int64_t now)
{
    if (!served(e) || e->addr_kind == REG_ADDR_BOUND)
        return -EINVAL;
    uint32_t addr, old = e->addr;
    bool *had = exposures_leased(r);
    int rc = alloc_move(&r->pool, e->lease_key, now, &addr);
    drop_reclaimed(r, had);
    if (rc < 0)
        return rc;
    /* A project's containers move together: they share the lease. */
    for (size_t i = 0; i < r->n; i++) {
        reg_entry *o = r->entries[i];
        if (served(o) && o->addr == old && o->addr_kind == e->addr_kind &&
            strcmp(o->lease_key, e->lease_key) == 0) {
            o->addr = addr;
            o->moved_round = r->round;
        }
    }
    for (size_t i = 0; i < r->nblocks; i++)
        if (r->blocks[i].addr == old) {
            r->blocks[i].at = now;
            return 0;
        }
    r->blocks = xrealloc(r->blocks, (r->nblocks + 1) * sizeof(*r->blocks));
    r->blocks[r->nblocks++] = (struct reg_block){old, now};
    return 0;
}

void reg_apply_begin(registry *r, int64_t now)
{
    for (size_t i = 0; i < r->nblocks;) {
        if (now - r->blocks[i].at < REG_BLOCK_MS) {
            i++;
            continue;
        }
        alloc_unblock(&r->pool, r->blocks[i].addr);
        r->blocks[i] = r->blocks[--r->nblocks];
    }
    for (size_t i = 0; i < r->n; i++) {
        reg_entry *e = r->entries[i];
        e->apply_moves = 0;
        bool held = false;
        for (size_t j = 0; j < e->nports; j++) {
            held |= e->ports[j].held;
            e->ports[j].held = false;
        }
        /* Planning again puts back the problem a held one replaced. */
        if (held)
            plan_ports(r, e->c, e->ports, e->nports);
    }
    settle_shared(r);
}

void reg_decide_round(registry *r, bool final)
{
    r->round++;
    r->final_round = final;
}

bool reg_port_held(registry *r, const char *id, uint16_t port, uint8_t proto, const char *where,
                   int64_t now)
{
    reg_entry *e = find_id(r, id, NULL);
    if (e == NULL || !served(e))
        return false;
    if (e->moved_round == r->round)
        return true; /* moved already this round, for another of its ports */
    reg_port *p = NULL;
    for (size_t i = 0; i < e->nports && !p; i++)
        if (e->ports[i].port == port && e->ports[i].proto == proto)
            p = &e->ports[i];
    char from[16], to[16];
    ip4_format(e->addr, from);
    if (p && p->host_port == 0) {
        /* Exposed, not published: one of possibly many such ports, which a
         * host program listening on *:P holds on every address alike. */
        snprintf(p->problem, sizeof(p->problem),
                 "%s is held by another program (loophole moves a container only for a port it "
                 "publishes)",
                 where);
        p->held = true;
        return false;
    }
    if (p && e->addr_kind == REG_ADDR_BOUND) {
        /* Its address is the one it publishes on: it cannot move. */
        snprintf(p->problem, sizeof(p->problem),
                 "%s is held by another program (the container publishes on this address "
                 "itself, so it does not move)",
                 where);
        p->held = true;
        return false;
    }
    if (!e->settled && !r->final_round && e->apply_moves < REG_MAX_MOVES &&
        reg_move(r, e, now) == 0) {
        e->apply_moves++;
        e->moves++;
        e->moved_round = r->round;
        log_warn("registry", "%s is held by another program: moving %s from %s to %s", where,
                 e->c->name, from, ip4_format(e->addr, to));
        return true;
    }
    if (!e->settled) {
        e->settled = true;
        e->settled_moves = e->apply_moves;
        log_warn("registry",
                 "%s: %s is held by another program and no other address was free after %u "
                 "moves; it stays there and is tried again at every change",
                 e->c->name, where, e->settled_moves);
    }
    if (p) {
        snprintf(p->problem, sizeof(p->problem),
                 "%s is held by another program and no other address was free after %u moves",
                 where, e->settled_moves);
        p->held = true;
    }
    return false;
}

void reg_apply_end(registry *r)
{
    for (size_t i = 0; i < r->n; i++) {
        reg_entry *e = r->entries[i];
        bool held = false;
        for (size_t j = 0; j < e->nports; j++)
            held |= e->ports[j].held;
        if (!held)
            e->settled = false;
    }
}

bool reg_port_held_everywhere(registry *r, const char *id, uint16_t port, uint8_t proto,
                              const char *holder)
{
    reg_entry *e = find_id(r, id, NULL);
    if (e == NULL || !served(e))
        return false;
    reg_port *p = (reg_port *)find_port(e->ports, e->nports, port, proto);
    if (p == NULL)
        return false;
    char shown[64], who[sizeof(shown) + 4] = "";
    if (holder && holder[0])
        snprintf(who, sizeof(who), " (%s)",
                 printable(holder, strnlen(holder, 200), shown, sizeof(shown)));
    snprintf(p->problem, sizeof(p->problem),
             "another program on the host%s holds port %u/%s on every address (it listens on "
             "*:%u); loophole cannot serve %u for this container",
             who, port, proto_name(proto), port, port);
    p->held = true;
    return true;
}

bool reg_port_kafka_seen(registry *r, const char *id, uint16_t port)
{
    reg_entry *e = find_id(r, id, NULL);
    for (size_t i = 0; e && i < e->nports; i++) {
        reg_port *p = &e->ports[i];
        if (p->port == port && p->proto == CTR_TCP) {
            if (p->kafka)
                return false;
            p->kafka = true;
            return true;
        }
    }
    return false;
}

/* ---- The reverse direction: host ports ---- */

static const char *const PROBLEM_IMAGE_LABEL =
    "the image sets loophole.host-ports itself; host access is granted only by whoever runs "
    "the container (docker run --label ...)";
static const char *const PROBLEM_IMAGE_UNKNOWN =
    "cannot check whether the image sets loophole.host-ports (its labels could not be read); "
    "not serving the label's host ports";
static const char *const PROBLEM_HOST_NETWORK =
    "the container uses the host's network: its localhost is the host's already";

/* names.c's reason for a container turned off by loophole.enable=false. */
static bool disabled(const reg_entry *e)
{
    return e->names.skipped && strncmp(e->names.skipped, "disabled", 8) == 0;
}

/* The label entries e's container is granted into out (LABEL_HOST_PORTS_MAX
 * of them), with the label-level problem in problem ("" when none): a label
 * the image carries itself, or one whose image labels are unknown, grants
 * nothing, since host access is the runner's decision, never an image's. */
static int label_entries(const registry *r, const reg_entry *e, label_hostport *out, char *problem,
                         size_t plen)
{
    problem[0] = '\0';
    const container *c = e->c;
    const char *v = container_label(c, LABEL_HOST_PORTS);
    if (v == NULL)
        return 0;
    if (!c->image_labels_known) {
        snprintf(problem, plen, "%s", PROBLEM_IMAGE_UNKNOWN);
        return 0;
    }
    const char *iv = container_image_label(c, LABEL_HOST_PORTS);
    if (iv && strcmp(iv, v) == 0) {
        snprintf(problem, plen, "%s", PROBLEM_IMAGE_LABEL);
        return 0;
    }
    int nbad = 0;
    char why[200];
    int n = label_host_ports(v, r->domain, out, LABEL_HOST_PORTS_MAX, &nbad, why, sizeof(why));
    if (nbad > 1)
        snprintf(problem, plen, "%s (and %d more)", why, nbad - 1);
    else if (nbad == 1)
        snprintf(problem, plen, "%s", why);
    return n;
}

static bool same_port(const label_hostport *a, const label_hostport *b)
{
    return a->port == b->port && a->proto == b->proto;
}

static void set_hostports(registry *r, reg_entry *e)
{
    reg_hostport *old = e->hostports;
    size_t nold = e->nhostports;
    char old_problem[sizeof(e->hostports_problem)];
    memcpy(old_problem, e->hostports_problem, sizeof(old_problem));
    e->hostports = NULL;
    e->nhostports = 0;
    e->hostports_problem[0] = '\0';
    const container *c = e->c;
    const char *key = e->names.lease_key;
    if (c->running && !disabled(e)) {
        label_hostport *lab = xcalloc(LABEL_HOST_PORTS_MAX, sizeof(label_hostport));
        int nlab = label_entries(r, e, lab, e->hostports_problem, sizeof(e->hostports_problem));
        size_t nexp = 0;
        for (size_t i = 0; key && i < r->nexposures; i++)
            nexp += strcmp(r->exposures[i].key, key) == 0;
        e->hostports = xcalloc((size_t)nlab + nexp + 1, sizeof(reg_hostport));
        for (int i = 0; i < nlab; i++)
            e->hostports[e->nhostports++] = (reg_hostport){.spec = lab[i], .source = REG_HP_LABEL};
        for (size_t i = 0; key && i < r->nexposures; i++) {
            const reg_exposure *x = &r->exposures[i];
            if (strcmp(x->key, key) != 0)
                continue;
            reg_hostport *h = &e->hostports[e->nhostports++];
            *h = (reg_hostport){.spec = x->spec, .source = REG_HP_API};
            /* Made before the container was recreated with a label naming
             * the same port: the label's entry is the one served. */
            for (int j = 0; j < nlab; j++)
                if (same_port(&lab[j], &x->spec))
                    snprintf(h->problem, sizeof(h->problem),
                             "port %u/%s is taken by the container's loophole.host-ports label",
                             x->spec.port, proto_name(x->spec.proto));
        }
        free(lab);
        bool host_net = c->network_mode && strcmp(c->network_mode, "host") == 0;
        for (size_t i = 0; host_net && i < e->nhostports; i++)
            snprintf(e->hostports[i].problem, sizeof(e->hostports[i].problem), "%s",
                     PROBLEM_HOST_NETWORK);
    }
    /* Logged when they appear, not at every Docker update. */
    if (e->hostports_problem[0] && strcmp(old_problem, e->hostports_problem) != 0)
        log_warn("registry", "%s: label loophole.host-ports: %s", c->name, e->hostports_problem);
    for (size_t i = 0; i < e->nhostports; i++) {
        const reg_hostport *h = &e->hostports[i];
        if (!h->problem[0])
            continue;
        const reg_hostport *o = NULL;
        for (size_t j = 0; j < nold && !o; j++)
            if (same_port(&old[j].spec, &h->spec) && old[j].source == h->source)
                o = &old[j];
        if (o == NULL || strcmp(o->problem, h->problem) != 0)
            log_warn("registry", "%s: host port %u/%s: %s", c->name, h->spec.port,
                     proto_name(h->spec.proto), h->problem);
    }
    free(old);
}

static void refresh_hostports(registry *r)
{
    for (size_t i = 0; i < r->n; i++)
        set_hostports(r, r->entries[i]);
}

/* Exposures go when their key's address lease is reclaimed for another
 * container (the allocator forgets a reclaimed key). alloc.c does not say
 * which key it reclaimed, so the registry notes which exposure keys hold a
 * lease before each acquire or move and drops the exposures of keys whose
 * lease is gone after it. A key a running container still uses keeps its
 * exposures (a container without published ports has no lease to lose, but
 * an old lease of its key may still be reclaimed). */
static bool *exposures_leased(const registry *r)
{
    if (r->nexposures == 0)
        return NULL;
    bool *had = xcalloc(r->nexposures, sizeof(bool));
    for (size_t i = 0; i < r->nexposures; i++)
        had[i] = alloc_find(&r->pool, r->exposures[i].key) != NULL;
    return had;
}

static bool key_running(const registry *r, const char *key)
{
    for (size_t i = 0; i < r->n; i++) {
        const reg_entry *e = r->entries[i];
        if (e->c->running && e->names.lease_key && strcmp(e->names.lease_key, key) == 0)
            return true;
    }
    return false;
}

static void drop_reclaimed(registry *r, bool *had)
{
    if (had == NULL)
        return;
    size_t k = 0;
    for (size_t i = 0; i < r->nexposures; i++) {
        reg_exposure *x = &r->exposures[i];
        if (had[i] && alloc_find(&r->pool, x->key) == NULL && !key_running(r, x->key)) {
            char shown[PRINTABLE_BUF];
            log_info("registry",
                     "host port %u/%s of %s dropped: its address lease went to another container",
                     x->spec.port, proto_name(x->spec.proto),
                     printable(x->key, strlen(x->key), shown, sizeof(shown)));
            free(x->key);
            continue;
        }
        r->exposures[k++] = *x;
    }
    bool changed = k != r->nexposures;
    r->nexposures = k;
    free(had);
    if (changed)
        refresh_hostports(r);
}

static bool spec_ok(const label_hostport *spec)
{
    return spec->port != 0 && (spec->proto == CTR_TCP || spec->proto == CTR_UDP);
}

static reg_exposure *find_exposure(registry *r, const char *key, uint16_t port, uint8_t proto)
{
    for (size_t i = 0; i < r->nexposures; i++) {
        reg_exposure *x = &r->exposures[i];
        if (strcmp(x->key, key) == 0 && x->spec.port == port && x->spec.proto == proto)
            return x;
    }
    return NULL;
}

static void add_exposure(registry *r, const char *key, const label_hostport *spec)
{
    r->exposures = xrealloc(r->exposures, (r->nexposures + 1) * sizeof(reg_exposure));
    r->exposures[r->nexposures++] = (reg_exposure){xstrdup(key), *spec};
}

/* Whether (port, proto) is one of the entries e's label grants. */
static bool label_has(const registry *r, const reg_entry *e, uint16_t port, uint8_t proto)
{
    label_hostport *lab = xcalloc(LABEL_HOST_PORTS_MAX, sizeof(label_hostport));
    char problem[200];
    int n = label_entries(r, e, lab, problem, sizeof(problem));
    bool found = false;
    for (int i = 0; i < n && !found; i++)
        found = lab[i].port == port && lab[i].proto == proto;
    free(lab);
    return found;
}

int reg_expose(registry *r, reg_entry *e, const label_hostport *spec, char *err, size_t errlen)
{
    const char *key = e->names.lease_key;
    if (key == NULL || key[0] == '\0') {
        set_err(err, errlen, "%s has no lease key to keep a host port under",
                e->c->name ? e->c->name : e->c->id);
        return -EINVAL;
    }
    if (!spec_ok(spec)) {
        set_err(err, errlen, "a host port needs a TCP or UDP port 1-65535");
        return -EINVAL;
    }
    const char *pn = proto_name(spec->proto);
    if (label_has(r, e, spec->port, spec->proto)) {
        set_err(err, errlen, "port %u/%s is taken by the container's loophole.host-ports label",
                spec->port, pn);
        return -EEXIST;
    }
    const reg_exposure *x = find_exposure(r, key, spec->port, spec->proto);
    if (x) {
        char t[300];
        label_host_port_target(&x->spec, t, sizeof(t));
        set_err(err, errlen, "port %u/%s is exposed already (to %s)", spec->port, pn, t);
        return -EEXIST;
    }
    size_t n = 0;
    for (size_t i = 0; i < r->nexposures; i++)
        n += strcmp(r->exposures[i].key, key) == 0;
    if (n >= REG_EXPOSURES_MAX) {
        set_err(err, errlen, "a container may have at most %d run-time host ports",
                REG_EXPOSURES_MAX);
        return -EINVAL;
    }
    add_exposure(r, key, spec);
    refresh_hostports(r);
    return 0;
}

int reg_unexpose(registry *r, reg_entry *e, uint16_t port, uint8_t proto)
{
    const char *key = e->names.lease_key;
    /* An exposure shadowed by a label entry of the same port may still be
     * removed: it is the person's own, the label's entry stays. */
    reg_exposure *x = key ? find_exposure(r, key, port, proto) : NULL;
    if (x) {
        size_t i = (size_t)(x - r->exposures);
        free(x->key);
        memmove(&r->exposures[i], &r->exposures[i + 1],
                (r->nexposures - i - 1) * sizeof(reg_exposure));
        r->nexposures--;
        refresh_hostports(r);
        return 0;
    }
    if (label_has(r, e, port, proto))
        return -EPERM;
    return -ENOENT;
}

const reg_exposure *reg_exposures(const registry *r, size_t *n)
{
    *n = r->nexposures;
    return r->exposures;
}

void reg_restore_exposure(registry *r, const char *key, const label_hostport *spec)
{
    if (key == NULL || key[0] == '\0' || !spec_ok(spec) ||
        find_exposure(r, key, spec->port, spec->proto))
        return;
    add_exposure(r, key, spec);
    refresh_hostports(r);
}

int reg_resolve_name(const registry *r, const char *name, uint32_t *addr)
{
    size_t kl = strlen(name);
    if (kl && name[kl - 1] == '.')
        kl--;
    if (kl == 0)
        return -ENOENT;
    for (size_t i = 0; i < r->nleases; i++)
        if (name_is(r, r->leases[i].dns, name, kl)) {
            *addr = r->leases[i].addr;
            return 0;
        }
    for (size_t i = 0; i < r->n; i++) {
        const reg_entry *e = r->entries[i];
        if (!served(e))
            continue;
        for (size_t j = 0; j < e->nowned; j++)
            if (name_is(r, e->owned[j], name, kl)) {
                *addr = e->addr;
                return 0;
            }
    }
    return -ENOENT;
}

/* ---- Named leases (other tools) ---- */

/* The label of a lease name as given ("sb1", "sb1.loop.test", "SB1."):
 * the domain dropped, then sanitised as one label. Returns its length or
 * -EINVAL. */
static int lease_label(const registry *r, const char *name, char out[NAMES_LABEL_MAX + 1])
{
    char tmp[NAMES_NAME_MAX + 2];
    size_t n = strnlen(name, sizeof(tmp));
    if (n == 0 || n >= sizeof(tmp))
        return -EINVAL;
    memcpy(tmp, name, n);
    tmp[n] = '\0';
    if (tmp[n - 1] == '.')
        tmp[--n] = '\0';
    size_t dl = strlen(r->domain);
    if (n > dl + 1 && tmp[n - dl - 1] == '.' && strcasecmp(tmp + n - dl, r->domain) == 0)
        tmp[n - dl - 1] = '\0';
    return names_sanitize_label(tmp, out, NAMES_LABEL_MAX + 1);
}

static reg_lease *lease_named(const registry *r, const char *label)
{
    for (size_t i = 0; i < r->nleases; i++)
        if (strcmp(r->leases[i].name, label) == 0)
            return &r->leases[i];
    return NULL;
}

/* The running container that derives dns (its own names, its compose
 * service alias or project name), or NULL. */
static const reg_entry *deriver(const registry *r, const char *dns)
{
    for (size_t i = 0; i < r->n; i++) {
        const reg_entry *e = r->entries[i];
        if (!e->c->running || e->names.skipped)
            continue;
        for (size_t j = 0; j < e->names.nderived; j++)
            if (strcmp(e->names.names[j], dns) == 0)
                return e;
        if ((e->names.service_alias && strcmp(e->names.service_alias, dns) == 0) ||
            (e->names.project_name && strcmp(e->names.project_name, dns) == 0))
            return e;
    }
    return NULL;
}

static reg_lease *add_lease(registry *r, const char *label, uint32_t addr, int64_t created_at)
{
    r->leases = xrealloc(r->leases, (r->nleases + 1) * sizeof(reg_lease));
    reg_lease *l = &r->leases[r->nleases++];
    size_t n = strlen(label) + strlen(r->domain) + 2;
    l->name = xstrdup(label);
    l->dns = xmalloc(n);
    snprintf(l->dns, n, "%s.%s", label, r->domain);
    l->addr = addr;
    l->created_at = created_at;
    return l;
}

static void lease_key_of(const char *label, char *key, size_t cap)
{
    snprintf(key, cap, "%s%s", REG_LEASE_KEY_PREFIX, label);
}

int reg_lease_add(registry *r, const char *name, uint32_t want, int64_t now, const reg_lease **out,
                  bool *created, char *err, size_t errlen)
{
    char label[NAMES_LABEL_MAX + 1], a[16], b[16], c[16];
    *created = false;
    *out = NULL;
    if (name == NULL || strnlen(name, NAMES_NAME_MAX + 2) > NAMES_NAME_MAX + 1) {
        set_err(err, errlen, "the lease name is longer than a DNS name may be");
        return -EINVAL;
    }
    if (lease_label(r, name, label) < 0) {
        set_err(err, errlen, "a lease name needs at least one letter or digit");
        return -EINVAL;
    }
    if (strcmp(label, "ns") == 0) {
        set_err(err, errlen, "\"ns\" is reserved: ns.%s is the name of loophole's DNS server",
                r->domain);
        return -EINVAL;
    }
    if (strlen(label) + 1 + strlen(r->domain) > NAMES_NAME_MAX) {
        set_err(err, errlen, "%s.%s is longer than a DNS name may be", label, r->domain);
        return -EINVAL;
    }
    if (want && (want < r->pool.first || want > r->pool.last)) {
        set_err(err, errlen, "%s is outside the address pool %s-%s", ip4_format(want, a),
                ip4_format(r->pool.first, b), ip4_format(r->pool.last, c));
        return -EDOM;
    }
    reg_lease *l = lease_named(r, label);
    if (l) {
        if (want && want != l->addr) {
            set_err(err, errlen,
                    "lease %s has %s already, not %s (remove it first: loophole lease rm %s)",
                    label, ip4_format(l->addr, a), ip4_format(want, b), label);
            return -EEXIST;
        }
        *out = l;
        return 0;
    }
    char dns[NAMES_NAME_MAX + 1];
    snprintf(dns, sizeof(dns), "%s.%s", label, r->domain);
    const reg_entry *d = deriver(r, dns);
    if (d) {
        set_err(err, errlen, "%s is a name of running container %s; pick another lease name", dns,
                d->c->name);
        return -EBUSY;
    }
    if (want) {
        for (size_t i = 0; i < r->n; i++) {
            const reg_entry *e = r->entries[i];
            bool on = served(e) && e->addr == want;
            /* Served or not, a running container publishing there has it. */
            for (size_t k = 0; k < e->nbound && !on; k++)
                on = e->bound_ips[k] == want;
            if (on) {
                set_err(err, errlen, "%s is in use by container %s", ip4_format(want, a),
                        e->c->name);
                return -EADDRINUSE;
            }
        }
        for (size_t i = 0; i < r->nleases; i++)
            if (r->leases[i].addr == want) {
                set_err(err, errlen, "%s is leased to %s already", ip4_format(want, a),
                        r->leases[i].name);
                return -EADDRINUSE;
            }
    }
    char key[NAMES_LABEL_MAX + 16];
    lease_key_of(label, key, sizeof(key));
    uint32_t addr = 0;
    bool *had = exposures_leased(r);
    int rc = alloc_pin(&r->pool, key, want, &addr);
    drop_reclaimed(r, had);
    if (rc == -EDOM) {
        set_err(err, errlen, "%s is reserved in the address pool %s-%s (never handed out)",
                ip4_format(want, a), ip4_format(r->pool.first, b), ip4_format(r->pool.last, c));
        return rc;
    }
    if (rc == -EADDRINUSE) {
        set_err(err, errlen, "%s is in use", ip4_format(want, a));
        return rc;
    }
    if (rc == -ENOSPC) {
        set_err(err, errlen,
                "the address pool %s-%s (%zu addresses) is full: remove a lease or stop a "
                "container, or widen it with --pool",
                ip4_format(r->pool.first, a), ip4_format(r->pool.last, b), alloc_size(&r->pool));
        return rc;
    }
    if (rc < 0) {
        set_err(err, errlen, "cannot lease %s: %s", label, strerror(-rc));
        return rc;
    }
    add_lease(r, label, addr, now);
    log_info("registry", "lease %s -> %s", dns, ip4_format(addr, a));
    recompute(r, now);
    *out = lease_named(r, label);
    *created = true;
    return 0;
}

const reg_lease *reg_lease_find(const registry *r, const char *name)
{
    char label[NAMES_LABEL_MAX + 1];
    if (name == NULL || lease_label(r, name, label) < 0)
        return NULL;
    return lease_named(r, label);
}

int reg_lease_remove(registry *r, const char *name, int64_t now, uint32_t *addr)
{
    reg_lease *l = (reg_lease *)reg_lease_find(r, name);
    if (l == NULL)
        return -ENOENT;
    char key[NAMES_LABEL_MAX + 16], a[16];
    lease_key_of(l->name, key, sizeof(key));
    alloc_forget(&r->pool, key);
    *addr = l->addr;
    log_info("registry", "lease %s (%s) removed", l->dns, ip4_format(l->addr, a));
    free(l->name);
    free(l->dns);
    size_t i = (size_t)(l - r->leases);
    memmove(&r->leases[i], &r->leases[i + 1], (r->nleases - i - 1) * sizeof(reg_lease));
    r->nleases--;
    recompute(r, now);
    return 0;
}

const reg_lease *reg_leases(const registry *r, size_t *n)
{
    *n = r->nleases;
    return r->leases;
}

int reg_restore_lease(registry *r, const char *name, uint32_t addr, int64_t created_at)
{
    char label[NAMES_LABEL_MAX + 1], key[NAMES_LABEL_MAX + 16];
    if (name == NULL || lease_label(r, name, label) < 0 || strcmp(label, name) != 0 ||
        strcmp(label, "ns") == 0 || lease_named(r, label) ||
        strlen(label) + 1 + strlen(r->domain) > NAMES_NAME_MAX)
        return -EINVAL;
    lease_key_of(label, key, sizeof(key));
    if (alloc_restore_pinned(&r->pool, key, addr) < 0)
        return -EINVAL;
    add_lease(r, label, addr, created_at);
    return 0;
}
