/* The JSON the control API serves, in the shapes DESIGN.md fixes (fields may
 * be added, never renamed), and the /v1/events change feed. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_gen.h>

#include "daemon.h"
#include "fdlimit.h"
#include "hostports.h"
#include "json.h"
#include "reach.h"
#include "platform.h"
#include "splice.h"
#include "state.h"
#include "protocol.h"
#include "util.h"

/* "172.17.0.3:5432" or "[::1]:5432". */
static void sa_format(const struct sockaddr *sa, char *out, size_t cap)
{
    char ip[64] = "";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        uv_ip4_name(a, ip, sizeof(ip));
        snprintf(out, cap, "%s:%u", ip, ntohs(a->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(a, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%u", ip, ntohs(a->sin6_port));
    }
}

/* "key": [strings]. */
static void kv_strv(yajl_gen g, const char *key, char *const *v, size_t n)
{
    json_gen_str(g, key);
    yajl_gen_array_open(g);
    for (size_t i = 0; i < n; i++)
        json_gen_str(g, v[i]);
    yajl_gen_array_close(g);
}

/* "key": v, or null when v is 0 (not set). */
static void kv_int_or_null(yajl_gen g, const char *key, long long v)
{
    if (v)
        json_kv_int(g, key, v);
    else
        json_kv_null(g, key);
}

/* Unix ms as RFC 3339 UTC ("2024-01-02T03:04:05Z"); b needs 32 bytes. */
static const char *format_time(int64_t ms, char *b, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(b, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return b;
}

/* "key": RFC 3339 time, or null for none. */
static void kv_time(yajl_gen g, const char *key, int64_t ms)
{
    char b[32];
    json_kv_str(g, key, ms > 0 ? format_time(ms, b, sizeof(b)) : NULL);
}

/* A port's mode joins the plan (registry) and the listener (port table). */
static bool listened(const reg_port *p)
{
    return p->plan == REG_PORT_MAPPED || p->plan == REG_PORT_DIRECT;
}

static const char *mode_name(const reg_port *p, const port_entry *pe)
{
    if (p->plan == REG_PORT_SHARED)
        return "shared";
    if (p->plan == REG_PORT_UNREACHABLE)
        return "unreachable";
    if (p->plan == REG_PORT_BOUND)
        return "bound";
    if (listened(p) && pe && pe->listener)
        return p->plan == REG_PORT_DIRECT ? "direct" : "mapped";
    return "none";
}

static const port_entry *port_of(const daemon_ctx *d, const reg_entry *e, const reg_port *p)
{
    if (d->ports == NULL || !listened(p) || !reg_served(e))
        return NULL;
    return ports_find(d->ports, e->c->id, PORT_ROLE_FORWARD, p->port, p->proto);
}

/* Why a published port is not served: the registry's reason first, then the
 * port table's. */
static const char *problem_of(const reg_port *p, const port_entry *pe)
{
    if (p->problem[0])
        return p->problem;
    if (pe && pe->problem[0])
        return pe->problem;
    return NULL;
}

static const char *proto_name(int proto)
{
    return proto == CTR_UDP ? "udp" : proto == CTR_SCTP ? "sctp" : "tcp";
}

void view_container(daemon_ctx *d, const reg_entry *e, yajl_gen g)
{
    char ip[16];
    bool served = e->skipped == NULL && e->has_addr;
    yajl_gen_map_open(g);
    const char *primary = e->nowned ? e->owned[0] : NULL;
    for (size_t i = 0; i < e->nowned; i++)
        if (e->names.nnames && strcmp(e->owned[i], e->names.names[0]) == 0)
            primary = e->owned[i];
    json_kv_str(g, "name", primary);
    kv_strv(g, "names", e->owned, e->nowned);
    json_kv_str(g, "ip", served ? ip4_format(e->addr, ip) : NULL);
    json_kv_str(g, "address",
                !served                            ? NULL
                : e->addr_kind == REG_ADDR_BOUND   ? "bound"
                : e->addr_kind == REG_ADDR_PROJECT ? "project"
                                                   : "container");
    json_gen_str(g, "bound_ips");
    yajl_gen_array_open(g);
    for (size_t i = 0; served && i < e->nbound; i++)
        json_gen_str(g, ip4_format(e->bound_ips[i], ip));
    yajl_gen_array_close(g);
    json_kv_str(g, "container", e->c->name);
    json_kv_str(g, "id", e->c->id);
    json_kv_str(g, "project", e->names.project);
    json_kv_str(g, "service", e->names.service);
    kv_int_or_null(g, "replica", e->names.replica);
    json_gen_str(g, "ports");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < e->nports; i++) {
        const reg_port *p = &e->ports[i];
        const port_entry *pe = port_of(d, e, p);
        proxy_stats st = {0};
        if (pe)
            ports_stats(d->ports, pe, &st);
        yajl_gen_map_open(g);
        json_kv_int(g, "port", p->port);
        kv_int_or_null(g, "host_port", p->host_port);
        json_kv_str(g, "host_ip", p->host_port ? p->host_ip : NULL);
        json_kv_str(g, "proto", proto_name(p->proto));
        const char *mode = served ? mode_name(p, pe) : "none";
        json_kv_str(g, "mode", mode);
        /* Only a port loophole proxies is rewritten, so only it is "kafka". */
        bool proxied = strcmp(mode, "direct") == 0 || strcmp(mode, "mapped") == 0;
        json_kv_bool(g, "kafka", p->kafka && proxied);
        struct sockaddr_storage ts;
        char tgt[64] = "";
        if ((listened(p) || p->plan == REG_PORT_BOUND) && reg_port_target(p, &ts) == 0)
            sa_format((const struct sockaddr *)&ts, tgt, sizeof(tgt));
        json_kv_str(g, "target", tgt[0] ? tgt : NULL);
        json_kv_str(g, "network", p->plan == REG_PORT_DIRECT && p->network[0] ? p->network : NULL);
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
        json_kv_str(g, "problem", problem_of(p, pe));
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    json_gen_str(g, "host_ports");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < e->nhostports; i++)
        hp_view_port(d, e, &e->hostports[i], g);
    yajl_gen_array_close(g);
    json_kv_str(g, "host_ports_problem", e->hostports_problem[0] ? e->hostports_problem : NULL);
    kv_strv(g, "conflicts", e->conflicts, e->nconflicts);
    json_kv_str(g, "skipped", e->skipped);
    json_kv_str(g, "state", e->c->paused ? "paused" : e->c->running ? "running" : "stopped");
    json_kv_str(g, "image", e->c->image);
    kv_time(g, "started_at", e->c->started_at);
    json_kv_int(g, "moves", e->moves);
    yajl_gen_map_close(g);
}

static int cmp_entry_name(const void *a, const void *b)
{
    const reg_entry *x = *(reg_entry *const *)a, *y = *(reg_entry *const *)b;
    const char *nx = x->nowned ? x->owned[0] : x->c->name;
    const char *ny = y->nowned ? y->owned[0] : y->c->name;
    return strcmp(nx, ny);
}

void view_containers(daemon_ctx *d, yajl_gen g)
{
    reg_entry **v = xcalloc(d->reg.n, sizeof(reg_entry *));
    if (d->reg.n) {
        memcpy(v, d->reg.entries, d->reg.n * sizeof(reg_entry *));
        qsort(v, d->reg.n, sizeof(reg_entry *), cmp_entry_name);
    }
    yajl_gen_array_open(g);
    for (size_t i = 0; i < d->reg.n; i++)
        view_container(d, v[i], g);
    yajl_gen_array_close(g);
    free(v);
}

void view_status(daemon_ctx *d, yajl_gen g)
{
    char a[16];
    docker_status ds;
    memset(&ds, 0, sizeof(ds));
    if (d->docker)
        docker_client_status(d->docker, &ds);
    size_t served = 0, listeners = 0;
    uint64_t active = 0;
    for (size_t i = 0; i < d->reg.n; i++)
        if (reg_served(d->reg.entries[i]))
            served++;
    if (d->ports)
        ports_totals(d->ports, &listeners, &active);
    yajl_gen_map_open(g);
    json_kv_str(g, "version", LOOPHOLE_VERSION);
    json_kv_int(g, "uptime_s", (now_ms() - d->started_ms) / 1000);
    json_kv_str(g, "platform", platform_name());
    json_gen_str(g, "docker");
    yajl_gen_map_open(g);
    json_kv_str(g, "endpoint", ds.endpoint[0] ? ds.endpoint : NULL);
    json_kv_bool(g, "connected", ds.connected);
    json_kv_str(g, "api_version", ds.api_version[0] ? ds.api_version : NULL);
    kv_time(g, "since", ds.since);
    json_kv_str(g, "last_error", ds.last_error[0] ? ds.last_error : NULL);
    yajl_gen_map_close(g);

    json_gen_str(g, "dns");
    yajl_gen_map_open(g);
    json_kv_str(g, "listen", d->cfg.dns_listen);
    json_kv_str(g, "domain", d->cfg.domain);
    json_kv_int(g, "ttl", d->cfg.dns_ttl);
    yajl_gen_map_close(g);

    char path[1024] = "";
    bool installed = false, correct = false;
    if (d->rkind != RESOLVER_NONE) {
        resolver_path(&d->rcfg, d->rkind, path, sizeof(path));
        resolver_check(&d->rcfg, d->rkind, &installed, &correct);
    }
    json_gen_str(g, "resolver");
    yajl_gen_map_open(g);
    json_kv_str(g, "path", path[0] ? path : NULL);
    json_kv_bool(g, "installed", installed);
    json_kv_bool(g, "correct", correct);
    json_kv_str(g, "mode", d->cfg.resolver);
    json_kv_str(g, "kind", resolver_kind_name(d->rkind));
    json_kv_bool(g, "uninstalled_by_request", d->resolver_uninstalled);
    yajl_gen_map_close(g);

    json_gen_str(g, "alias");
    yajl_gen_map_open(g);
    json_kv_str(g, "mode", alias_mode_name(d->alias));
    json_kv_bool(g, "active", alias_active(d->alias));
    json_kv_int(g, "count", (long long)d->aliases.n);
    yajl_gen_map_close(g);

    /* Used: distinct pool addresses in use (containers' and named leases,
     * and addresses containers publish on themselves). */
    size_t size = alloc_size(&d->reg.pool), used = alloc_in_use(&d->reg.pool);
    json_gen_str(g, "pool");
    yajl_gen_map_open(g);
    json_kv_str(g, "first", ip4_format(d->reg.pool.first, a));
    json_kv_str(g, "last", ip4_format(d->reg.pool.last, a));
    json_kv_int(g, "used", (long long)used);
    json_kv_int(g, "free", (long long)(size > used ? size - used : 0));
    json_kv_int(g, "leases", (long long)d->reg.pool.nleases);
    yajl_gen_map_close(g);

    size_t nnamed = 0;
    reg_leases(&d->reg, &nnamed);
    json_kv_int(g, "leases", (long long)nnamed);
    json_kv_int(g, "containers", (long long)served);
    json_kv_int(g, "containers_seen", (long long)d->reg.n);
    json_kv_int(g, "listeners", (long long)listeners);
    json_kv_int(g, "connections", (long long)active);
    /* The proxies' caps and what they turned away (issue 15). */
    proxy_totals pt;
    proxy_get_totals(&pt);
    json_gen_str(g, "limits");
    yajl_gen_map_open(g);
    if (d->nofile == FDLIMIT_INFINITY)
        json_kv_null(g, "descriptors");
    else
        json_kv_int(g, "descriptors", (long long)d->nofile);
    json_kv_int(g, "reserve", (long long)d->caps.reserve);
    json_kv_int(g, "proxy_fds", (long long)pt.fds);
    json_kv_int(g, "proxy_fd_budget", (long long)d->limits.fd_budget);
    json_kv_int(g, "conns", (long long)pt.conns);
    json_kv_int(g, "max_conns", (long long)d->limits.max_conns);
    json_kv_int(g, "max_conns_per_port", (long long)d->popts.max_conns);
    json_kv_int(g, "udp_max_sessions", (long long)d->popts.udp_max_sessions);
    json_kv_int(g, "tcp_idle_s", (long long)d->popts.tcp_idle_s);
    json_kv_int(g, "capped", (long long)pt.capped);
    json_kv_int(g, "idle_closed", (long long)pt.idle_closed);
    yajl_gen_map_close(g);
    /* splice(2) is Linux-only; macOS relays with read/write. */
    json_kv_bool(g, "splice", d->popts.splice && splice_available());

    json_gen_str(g, "forwarding");
    yajl_gen_map_open(g);
    json_kv_str(g, "serve", d->cfg.serve);
    json_kv_str(g, "forward", d->cfg.forward);
    json_gen_str(g, "networks");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < d->nnets; i++) {
        yajl_gen_map_open(g);
        json_kv_str(g, "name", d->nets[i].name);
        if (d->nets[i].state == REACH_UNKNOWN)
            json_kv_null(g, "reachable");
        else
            json_kv_bool(g, "reachable", d->nets[i].state == REACH_OK);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);

    size_t hl = 0, hw = 0, hs = 0;
    hp_totals(d, &hl, &hw, &hs);
    json_gen_str(g, "host_ports");
    yajl_gen_map_open(g);
    json_kv_str(g, "mode", d->cfg.host_ports_mode);
    json_gen_str(g, "netns");
    yajl_gen_map_open(g);
    json_kv_bool(g, "available", d->netns_ok);
    json_kv_str(g, "reason", d->netns_ok ? NULL : d->netns_why);
    yajl_gen_map_close(g);
    json_kv_str(g, "sidecar_image", d->cfg.sidecar_image);
    json_kv_int(g, "listeners", (long long)hl);
    json_kv_int(g, "exposures", (long long)hw);
    json_kv_int(g, "sidecars", (long long)hs);
    yajl_gen_map_close(g);

    json_gen_str(g, "problems");
    yajl_gen_array_open(g);
    char msg[1400];
    if (!ds.connected) {
        char since[32] = "start";
        if (ds.since > 0)
            format_time(ds.since, since, sizeof(since));
        snprintf(msg, sizeof(msg), "Docker unreachable since %s%s%s", since,
                 ds.last_error[0] ? ": " : "", ds.last_error);
        json_gen_str(g, msg);
    }
    if (d->state_failures) {
        snprintf(msg, sizeof(msg),
                 "cannot save the state to %s/%s: %s (%llu failed attempts; retrying every %u s, "
                 "free some space there)",
                 d->cfg.state_dir, STATE_FILE, err_str(d->state_err), d->state_failures,
                 DAEMON_STATE_RETRY_MS / 1000);
        json_gen_str(g, msg);
    }
    if (d->reg.exhausted) {
        snprintf(msg, sizeof(msg),
                 "address pool exhausted: %u running container(s) have no address (widen --pool)",
                 d->reg.exhausted);
        json_gen_str(g, msg);
    }
    if (d->resolver_on && d->rkind != RESOLVER_NONE && !d->resolver_uninstalled && !correct) {
        snprintf(msg, sizeof(msg), "resolver file %s is %s", path,
                 installed ? "not loophole's current content" : "missing");
        json_gen_str(g, msg);
    }
    if (d->resolver_on && d->rkind == RESOLVER_NONE) {
        snprintf(msg, sizeof(msg),
                 "no systemd-resolved or NetworkManager dnsmasq: *.%s resolves only through %s",
                 d->cfg.domain, d->cfg.dns_listen);
        json_gen_str(g, msg);
    }
    for (size_t i = 0; i < d->reg.n; i++) {
        const reg_entry *e = d->reg.entries[i];
        for (size_t j = 0; j < e->nports; j++) {
            const char *pr = problem_of(&e->ports[j], port_of(d, e, &e->ports[j]));
            if (pr) {
                snprintf(msg, sizeof(msg), "%s: %s", e->c->name, pr);
                json_gen_str(g, msg);
            }
        }
        if (e->hostports_problem[0]) {
            snprintf(msg, sizeof(msg), "%s: %s", e->c->name, e->hostports_problem);
            json_gen_str(g, msg);
        }
        for (size_t j = 0; j < e->nhostports; j++) {
            const char *pr = hp_problem(d, e, &e->hostports[j]);
            if (pr) {
                snprintf(msg, sizeof(msg), "%s: host port %u: %s", e->c->name,
                         e->hostports[j].spec.port, pr);
                json_gen_str(g, msg);
            }
        }
        for (size_t j = 0; j < e->nconflicts; j++) {
            snprintf(msg, sizeof(msg), "%s: name %s is held by another container", e->c->name,
                     e->conflicts[j]);
            json_gen_str(g, msg);
        }
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
}

/* ---- /v1/events ---- */

static char *entry_json(daemon_ctx *d, const reg_entry *e)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    view_container(d, e, g);
    char *s = NULL;
    size_t len;
    if (json_gen_take(g, false, &s, &len) < 0)
        s = xstrdup("{}");
    yajl_gen_free(g);
    return s;
}

void view_publish_changes(daemon_ctx *d)
{
    bool *seen = xcalloc(d->npub + 1, sizeof(bool));
    for (size_t i = 0; i < d->reg.n; i++) {
        const reg_entry *e = d->reg.entries[i];
        char *json = entry_json(d, e);
        size_t k = d->npub;
        for (size_t j = 0; j < d->npub; j++)
            if (strcmp(d->pub[j].id, e->c->id) == 0)
                k = j;
        if (k == d->npub) {
            if (d->publish)
                d->publish(d->publish_ud, "added", json);
            d->pub = xrealloc(d->pub, (d->npub + 1) * sizeof(published));
            snprintf(d->pub[d->npub].id, sizeof(d->pub[d->npub].id), "%s", e->c->id);
            d->pub[d->npub].json = json;
            d->npub++;
            seen = xrealloc(seen, (d->npub + 1) * sizeof(bool));
            seen[k] = true;
            continue;
        }
        seen[k] = true;
        if (strcmp(d->pub[k].json, json) != 0) {
            if (d->publish)
                d->publish(d->publish_ud, "changed", json);
            free(d->pub[k].json);
            d->pub[k].json = json;
        } else {
            free(json);
        }
    }
    for (size_t j = 0; j < d->npub;) {
        if (seen[j]) {
            j++;
            continue;
        }
        if (d->publish)
            d->publish(d->publish_ud, "removed", d->pub[j].json);
        free(d->pub[j].json);
        d->pub[j] = d->pub[--d->npub];
        seen[j] = seen[d->npub];
    }
    free(seen);
}

void view_free(daemon_ctx *d)
{
    for (size_t i = 0; i < d->npub; i++)
        free(d->pub[i].json);
    free(d->pub);
    d->pub = NULL;
    d->npub = 0;
}
