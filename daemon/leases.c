/* Named leases for other tools: a VM or sandbox launcher asks for an
 * address with a name instead of running ifconfig itself. The registry
 * decides (registry.c, reg_lease_*); this file parses the requests, applies
 * the change (the alias must exist before the answer says the address) and
 * renders the JSON. */
#include "leases.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "json.h"
#include "log.h"
#include "util.h"

void leases_view(const daemon_ctx *d, const reg_lease *l, yajl_gen g)
{
    char ip[16];
    yajl_gen_map_open(g);
    json_kv_str(g, "name", l->name);
    json_kv_str(g, "dns", l->dns);
    json_kv_str(g, "ip", ip4_format(l->addr, ip));
    json_kv_int(g, "created_at", (long long)l->created_at);
    if (d->aliases.active)
        json_kv_bool(g, "alias", alias_set_has(&d->aliases, l->addr));
    else
        json_kv_null(g, "alias");
    json_gen_str(g, "containers");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < d->reg.n; i++) {
        const reg_entry *e = d->reg.entries[i];
        if (reg_served(e) && e->addr == l->addr)
            json_gen_str(g, e->c->name ? e->c->name : e->c->id);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
}

static int cmp_addr(const void *a, const void *b)
{
    const reg_lease *x = *(const reg_lease *const *)a, *y = *(const reg_lease *const *)b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

void leases_prov_list(void *ud, yajl_gen g)
{
    daemon_ctx *d = ud;
    size_t n = 0;
    const reg_lease *v = reg_leases(&d->reg, &n);
    const reg_lease **sorted = xcalloc(n + 1, sizeof(*sorted));
    for (size_t i = 0; i < n; i++)
        sorted[i] = &v[i];
    if (n > 1)
        qsort(sorted, n, sizeof(*sorted), cmp_addr);
    yajl_gen_array_open(g);
    for (size_t i = 0; i < n; i++)
        leases_view(d, sorted[i], g);
    yajl_gen_array_close(g);
    free(sorted);
}

int leases_prov_get(void *ud, const char *name, yajl_gen g)
{
    daemon_ctx *d = ud;
    const reg_lease *l = reg_lease_find(&d->reg, name);
    if (l == NULL)
        return -ENOENT;
    leases_view(d, l, g);
    return 0;
}

/* {"name": "sb1"} or {"name": "sb1", "ip": "127.0.0.9"} ("addr" is taken
 * for "ip" too). */
static int parse_body(const daemon_ctx *d, const char *body, size_t len, char *name, size_t namecap,
                      uint32_t *want, char *err, size_t errlen)
{
    yajl_val v = NULL;
    char jerr[160] = "";
    *want = 0;
    if (len == 0) {
        set_err(err, errlen,
                "the request needs a JSON body: {\"name\": \"sandbox-1\"} or {\"name\": "
                "\"sandbox-1\", \"ip\": \"127.0.0.9\"}");
        return -EINVAL;
    }
    if (json_parse(body, len, 4096, 4, &v, jerr, sizeof(jerr)) < 0 || !YAJL_IS_OBJECT(v)) {
        set_err(err, errlen, "the request body is not a JSON object%s%s", jerr[0] ? ": " : "",
                jerr);
        json_free(v);
        return -EINVAL;
    }
    const char *n = NULL, *ip = NULL, *addr = NULL;
    int rc = 0;
    if (json_opt_str(v, "name", &n) < 0 || json_opt_str(v, "ip", &ip) < 0 ||
        json_opt_str(v, "addr", &addr) < 0) {
        set_err(err, errlen, "\"name\" and \"ip\" must be strings");
        rc = -EINVAL;
    } else if (n == NULL || n[0] == '\0') {
        set_err(err, errlen, "the request needs a \"name\"");
        rc = -EINVAL;
    } else if (strlen(n) >= namecap) {
        set_err(err, errlen, "the name is longer than a DNS name may be");
        rc = -EINVAL;
    } else {
        snprintf(name, namecap, "%s", n);
        if (ip == NULL)
            ip = addr;
        if (ip && ip[0]) {
            uint32_t a;
            char shown[PRINTABLE_BUF];
            char f[16], l[16];
            if (strchr(ip, '.') == NULL || ip4_parse(ip, &a) != 0) {
                set_err(err, errlen, "\"%s\" is not an IPv4 address",
                        printable(ip, strnlen(ip, 64), shown, sizeof(shown)));
                rc = -EINVAL;
            } else if ((a & 0xff000000u) != 0x7f000000u) {
                /* 0 would mean "any": never let 0.0.0.0 through as that. */
                set_err(err, errlen, "%s is outside the address pool %s-%s",
                        printable(ip, strnlen(ip, 64), shown, sizeof(shown)),
                        ip4_format(d->reg.pool.first, f), ip4_format(d->reg.pool.last, l));
                rc = -EDOM;
            } else {
                *want = a;
            }
        }
    }
    json_free(v);
    return rc;
}

int leases_prov_add(void *ud, const char *body, size_t len, yajl_gen g, bool *created, char *err,
                    size_t errlen)
{
    daemon_ctx *d = ud;
    char name[300];
    uint32_t want = 0;
    int rc = parse_body(d, body, len, name, sizeof(name), &want, err, errlen);
    if (rc < 0)
        return rc;
    const reg_lease *l = NULL;
    rc = reg_lease_add(&d->reg, name, want, now_ms(), &l, created, err, errlen);
    if (rc < 0)
        return rc;
    char label[64], ip[16];
    snprintf(label, sizeof(label), "%s", l->name);
    uint32_t addr = l->addr;
    ip4_format(addr, ip);
    if (*created)
        daemon_apply(d); /* the registry has logged it */
    /* The answer promises the address works: its alias must be there. An
     * existing lease whose alias went away (removed by hand) is added
     * again by the apply. */
    if (d->aliases.active && !alias_set_has(&d->aliases, addr)) {
        daemon_apply(d);
        if (!alias_set_has(&d->aliases, addr)) {
            if (*created)
                set_err(err, errlen,
                        "cannot add %s to the loopback interface (the daemon's log says why); "
                        "the lease is not kept",
                        ip);
            else
                set_err(err, errlen,
                        "lease %s exists, but %s cannot be put back on the loopback interface "
                        "(the daemon's log says why)",
                        label, ip);
            if (*created) {
                uint32_t gone;
                reg_lease_remove(&d->reg, label, now_ms(), &gone);
                daemon_apply(d);
            }
            *created = false;
            return -EIO;
        }
    }
    l = reg_lease_find(&d->reg, label);
    if (l == NULL) {
        set_err(err, errlen, "the lease went away while it was made");
        return -EIO;
    }
    leases_view(d, l, g);
    return 0;
}

int leases_prov_remove(void *ud, const char *name, char *err, size_t errlen)
{
    daemon_ctx *d = ud;
    uint32_t addr = 0;
    int rc = reg_lease_remove(&d->reg, name, now_ms(), &addr);
    if (rc < 0) {
        if (rc != -ENOENT)
            set_err(err, errlen, "removing the lease failed: %s", strerror(-rc));
        return rc;
    }
    /* The apply removes its alias (unless a container is bound there). */
    daemon_apply(d);
    return 0;
}
