/* The JSON the control API serves, in the shapes DESIGN.md fixes (fields may
 * be added, never renamed), and the /v1/events change feed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_gen.h>

#include "daemon.h"
#include "util.h"

static void str(yajl_gen g, const char *s)
{
    if (s == NULL)
        yajl_gen_null(g);
    else
        yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void key(yajl_gen g, const char *k)
{
    str(g, k);
}

static void num(yajl_gen g, long long v)
{
    yajl_gen_integer(g, v);
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

static void time_str(yajl_gen g, int64_t ms)
{
    char b[32];
    if (ms <= 0)
        yajl_gen_null(g);
    else
        str(g, format_time(ms, b, sizeof(b)));
}

/* A port's mode joins the plan (registry) and the listener (port table). */
static const char *mode_name(const reg_port *p, const port_entry *pe)
{
    if (p->plan == REG_PORT_SHARED)
        return "shared";
    if (p->plan == REG_PORT_PROXY && pe && pe->listener)
        return "proxy";
    return "none";
}

static const port_entry *port_of(const daemon_ctx *d, const reg_entry *e, const reg_port *p)
{
    if (d->ports == NULL || p->plan != REG_PORT_PROXY || !reg_served(e))
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
    key(g, "name");
    const char *primary = e->nowned ? e->owned[0] : NULL;
    for (size_t i = 0; i < e->nowned; i++)
        if (e->names.nnames && strcmp(e->owned[i], e->names.names[0]) == 0)
            primary = e->owned[i];
    str(g, primary);
    key(g, "names");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < e->nowned; i++)
        str(g, e->owned[i]);
    yajl_gen_array_close(g);
    key(g, "ip");
    str(g, served ? ip4_format(e->addr, ip) : NULL);
    key(g, "container");
    str(g, e->c->name);
    key(g, "id");
    str(g, e->c->id);
    key(g, "project");
    str(g, e->names.project);
    key(g, "service");
    str(g, e->names.service);
    key(g, "replica");
    if (e->names.replica)
        num(g, e->names.replica);
    else
        yajl_gen_null(g);
    key(g, "ports");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < e->nports; i++) {
        const reg_port *p = &e->ports[i];
        const port_entry *pe = port_of(d, e, p);
        proxy_stats st = {0};
        if (pe)
            ports_stats(d->ports, pe, &st);
        yajl_gen_map_open(g);
        key(g, "port");
        num(g, p->port);
        key(g, "host_port");
        if (p->host_port)
            num(g, p->host_port);
        else
            yajl_gen_null(g);
        key(g, "host_ip");
        str(g, p->host_port ? p->host_ip : NULL);
        key(g, "proto");
        str(g, proto_name(p->proto));
        key(g, "mode");
        str(g, served ? mode_name(p, pe) : "none");
        key(g, "kafka");
        yajl_gen_bool(g, p->kafka);
        key(g, "connections");
        yajl_gen_map_open(g);
        key(g, "active");
        num(g, (long long)st.conns_active);
        key(g, "total");
        num(g, (long long)st.conns_total);
        yajl_gen_map_close(g);
        key(g, "bytes");
        yajl_gen_map_open(g);
        key(g, "in");
        num(g, (long long)st.bytes_in);
        key(g, "out");
        num(g, (long long)st.bytes_out);
        yajl_gen_map_close(g);
        key(g, "problem");
        str(g, problem_of(p, pe));
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    key(g, "conflicts");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < e->nconflicts; i++)
        str(g, e->conflicts[i]);
    yajl_gen_array_close(g);
    key(g, "skipped");
    str(g, e->skipped);
    key(g, "state");
    str(g, e->c->paused ? "paused" : e->c->running ? "running" : "stopped");
    key(g, "image");
    str(g, e->c->image);
    key(g, "started_at");
    time_str(g, e->c->started_at);
    key(g, "moves");
    num(g, e->moves);
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
    key(g, "version");
    str(g, LOOPHOLE_VERSION);
    key(g, "uptime_s");
    num(g, (now_ms() - d->started_ms) / 1000);
    key(g, "platform");
#ifdef __APPLE__
    str(g, "macos");
#else
    str(g, "linux");
#endif
    key(g, "docker");
    yajl_gen_map_open(g);
    key(g, "endpoint");
    str(g, ds.endpoint[0] ? ds.endpoint : NULL);
    key(g, "connected");
    yajl_gen_bool(g, ds.connected);
    key(g, "api_version");
    str(g, ds.api_version[0] ? ds.api_version : NULL);
    key(g, "since");
    time_str(g, ds.since);
    key(g, "last_error");
    str(g, ds.last_error[0] ? ds.last_error : NULL);
    yajl_gen_map_close(g);

    key(g, "dns");
    yajl_gen_map_open(g);
    key(g, "listen");
    str(g, d->cfg.dns_listen);
    key(g, "domain");
    str(g, d->cfg.domain);
    key(g, "ttl");
    num(g, d->cfg.dns_ttl);
    yajl_gen_map_close(g);

    char path[1024] = "";
    bool installed = false, correct = false;
    if (d->rkind != RESOLVER_NONE) {
        resolver_path(&d->rcfg, d->rkind, path, sizeof(path));
        resolver_check(&d->rcfg, d->rkind, &installed, &correct);
    }
    key(g, "resolver");
    yajl_gen_map_open(g);
    key(g, "path");
    str(g, path[0] ? path : NULL);
    key(g, "installed");
    yajl_gen_bool(g, installed);
    key(g, "correct");
    yajl_gen_bool(g, correct);
    key(g, "mode");
    str(g, d->cfg.resolver);
    key(g, "kind");
    str(g, resolver_kind_name(d->rkind));
    key(g, "uninstalled_by_request");
    yajl_gen_bool(g, d->resolver_uninstalled);
    yajl_gen_map_close(g);

    key(g, "alias");
    yajl_gen_map_open(g);
    key(g, "mode");
    str(g, alias_mode_name(d->alias));
    key(g, "active");
    yajl_gen_bool(g, alias_active(d->alias));
    key(g, "count");
    num(g, (long long)d->aliases.n);
    yajl_gen_map_close(g);

    size_t size = alloc_size(&d->reg.pool), used = alloc_used(&d->reg.pool);
    key(g, "pool");
    yajl_gen_map_open(g);
    key(g, "first");
    str(g, ip4_format(d->reg.pool.first, a));
    key(g, "last");
    str(g, ip4_format(d->reg.pool.last, a));
    key(g, "used");
    num(g, (long long)used);
    key(g, "free");
    num(g, (long long)(size > used ? size - used : 0));
    key(g, "leases");
    num(g, (long long)d->reg.pool.nleases);
    yajl_gen_map_close(g);

    key(g, "containers");
    num(g, (long long)served);
    key(g, "containers_seen");
    num(g, (long long)d->reg.n);
    key(g, "listeners");
    num(g, (long long)listeners);
    key(g, "connections");
    num(g, (long long)active);
    key(g, "splice");
#ifdef __linux__
    yajl_gen_bool(g, d->popts.splice);
#else
    yajl_gen_bool(g, 0); /* splice(2) is Linux-only; macOS relays with read/write */
#endif

    key(g, "problems");
    yajl_gen_array_open(g);
    char msg[1400];
    if (!ds.connected) {
        char since[32] = "start";
        if (ds.since > 0)
            format_time(ds.since, since, sizeof(since));
        snprintf(msg, sizeof(msg), "Docker unreachable since %s%s%s", since,
                 ds.last_error[0] ? ": " : "", ds.last_error);
        str(g, msg);
    }
    if (d->reg.exhausted) {
        snprintf(msg, sizeof(msg),
                 "address pool exhausted: %u running container(s) have no address (widen --pool)",
                 d->reg.exhausted);
        str(g, msg);
    }
    if (d->resolver_on && d->rkind != RESOLVER_NONE && !d->resolver_uninstalled && !correct) {
        snprintf(msg, sizeof(msg), "resolver file %s is %s", path,
                 installed ? "not loophole's current content" : "missing");
        str(g, msg);
    }
    if (d->resolver_on && d->rkind == RESOLVER_NONE) {
        snprintf(msg, sizeof(msg),
                 "no systemd-resolved or NetworkManager dnsmasq: *.%s resolves only through %s",
                 d->cfg.domain, d->cfg.dns_listen);
        str(g, msg);
    }
    for (size_t i = 0; i < d->reg.n; i++) {
        const reg_entry *e = d->reg.entries[i];
        for (size_t j = 0; j < e->nports; j++) {
            const char *pr = problem_of(&e->ports[j], port_of(d, e, &e->ports[j]));
            if (pr) {
                snprintf(msg, sizeof(msg), "%s: %s", e->c->name, pr);
                str(g, msg);
            }
        }
        for (size_t j = 0; j < e->nconflicts; j++) {
            snprintf(msg, sizeof(msg), "%s: name %s is held by another container", e->c->name,
                     e->conflicts[j]);
            str(g, msg);
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
    const unsigned char *out;
    size_t len;
    yajl_gen_get_buf(g, &out, &len);
    char *s = xstrndup((const char *)out, len);
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
