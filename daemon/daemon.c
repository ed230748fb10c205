/* The daemon's policy: Docker's reports into the registry, the registry's
 * plan out through the I/O modules, and what they could not do back to the
 * registry. Data flows one way; the I/O modules never call up. */
#include "daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostports.h"
#include "kafka_map.h"
#include "reach.h"
#include "labels.h"
#include "log.h"
#include "platform.h"
#include "state.h"
#include "util.h"

/* How many times one apply hands the port table's report back to the
 * registry: a container moves at most REG_MAX_MOVES times, so one more round
 * sees the last move through; in the last round nothing moves any more. */
#define APPLY_ROUNDS (REG_MAX_MOVES + 2)

/* ---- State ---- */

static void on_state_retry(uv_timer_t *t)
{
    daemon_ctx *d = container_of(t, daemon_ctx, state_retry);
    /* A start that failed stops without the last save: close here, or the
     * repeating timer would keep the loop running. */
    if (d->stopping) {
        uv_close((uv_handle_t *)&d->state_retry, NULL);
        d->state_retry_on = false;
        return;
    }
    daemon_save_state(d);
}

/* A full disk or a read-only directory is logged once a minute, however
 * often the state changes, and the state is written again as soon as
 * there is room, without waiting for the next change. */
static void state_save_failed(daemon_ctx *d, int rc)
{
    d->state_failures++;
    d->state_err = rc;
    log_limited(&d->state_log, LOG_ERROR, "state", rc, "cannot write %s/%s (retrying every %u s)",
                d->cfg.state_dir, STATE_FILE, DAEMON_STATE_RETRY_MS / 1000);
    if (d->stopping || d->loop == NULL)
        return;
    if (!d->state_retry_on) {
        if (uv_timer_init(d->loop, &d->state_retry) != 0)
            return;
        d->state_retry_on = true;
    }
    if (!uv_is_active((uv_handle_t *)&d->state_retry))
        uv_timer_start(&d->state_retry, on_state_retry, DAEMON_STATE_RETRY_MS,
                       DAEMON_STATE_RETRY_MS);
}

void daemon_save_state(daemon_ctx *d)
{
    state_data s = {0};
    s.leases = xcalloc(d->reg.pool.nleases + 1, sizeof(state_lease));
    for (size_t i = 0; i < d->reg.pool.nleases; i++) {
        const alloc_lease *l = &d->reg.pool.leases[i];
        if (l->pinned)
            continue; /* a named lease: saved with its name below */
        s.leases[s.nleases].key = l->key;
        s.leases[s.nleases].addr = l->addr;
        s.leases[s.nleases].stopped_at = l->active ? 0 : l->stopped_at;
        s.nleases++;
    }
    size_t nnamed = 0;
    const reg_lease *named = reg_leases(&d->reg, &nnamed);
    s.named = xcalloc(nnamed + 1, sizeof(state_named));
    s.nnamed = nnamed;
    for (size_t i = 0; i < nnamed; i++)
        s.named[i] = (state_named){named[i].name, named[i].addr, named[i].created_at};
    size_t nexp = 0;
    const reg_exposure *exp = reg_exposures(&d->reg, &nexp);
    s.exposures = xcalloc(nexp ? nexp : 1, sizeof(state_exposure));
    s.nexposures = nexp;
    char(*targets)[300] = xcalloc(nexp ? nexp : 1, sizeof(*targets));
    for (size_t i = 0; i < nexp; i++) {
        label_host_port_target(&exp[i].spec, targets[i], sizeof(targets[i]));
        s.exposures[i].key = exp[i].key;
        s.exposures[i].port = exp[i].spec.port;
        s.exposures[i].proto = exp[i].spec.proto;
        s.exposures[i].target = targets[i];
    }
    s.aliases = d->aliases.addrs;
    s.naliases = d->aliases.n;
    s.resolver_uninstalled = d->resolver_uninstalled;
    char *json = NULL;
    size_t len = 0;
    if (state_encode(&s, &json, &len) == 0) {
        if (d->stopping || d->last_state == NULL || strcmp(d->last_state, json) != 0) {
            int rc = state_save(d->cfg.state_dir, &s);
            if (rc < 0) {
                state_save_failed(d, rc);
                free(json);
            } else {
                if (d->state_failures)
                    log_info("state", "wrote %s/%s again after %llu failed attempts",
                             d->cfg.state_dir, STATE_FILE, d->state_failures);
                d->state_failures = 0;
                if (d->state_retry_on)
                    uv_timer_stop(&d->state_retry);
                free(d->last_state);
                d->last_state = json;
            }
        } else {
            /* What the file holds already (a failed change was undone). */
            d->state_failures = 0;
            if (d->state_retry_on)
                uv_timer_stop(&d->state_retry);
            free(json);
        }
    }
    /* The save made while stopping is the last: nothing retries after it. */
    if (d->stopping && d->state_retry_on) {
        uv_close((uv_handle_t *)&d->state_retry, NULL);
        d->state_retry_on = false;
    }
    free(s.leases);
    free(s.named);
    free(s.exposures);
    free(targets);
}

void daemon_load_state(daemon_ctx *d)
{
    state_data s = {0};
    char err[512] = "";
    int rc = state_load(d->cfg.state_dir, &s, err, sizeof(err));
    if (rc == -ENOENT) {
        log_info("state", "no state in %s yet; starting fresh", d->cfg.state_dir);
        return;
    }
    if (rc < 0) {
        log_error("state", "%s; starting fresh", err);
        return;
    }
    /* Named leases first: an address both claim stays the named lease's. */
    size_t kept_named = 0;
    for (size_t i = 0; i < s.nnamed; i++) {
        char ip[16];
        if (reg_restore_lease(&d->reg, s.named[i].name, s.named[i].addr, s.named[i].created_at) ==
            0) {
            kept_named++;
            continue;
        }
        char shown[PRINTABLE_BUF];
        log_warn("state",
                 "dropping the saved lease %s on %s: its name is not valid here, or its address "
                 "is outside the pool %s or reserved",
                 printable(s.named[i].name, strlen(s.named[i].name), shown, sizeof(shown)),
                 ip4_format(s.named[i].addr, ip), d->cfg.pool);
    }
    if (s.nnamed)
        log_info("state", "restored %zu of %zu named leases", kept_named, s.nnamed);
    size_t kept = 0;
    for (size_t i = 0; i < s.nleases; i++) {
        int64_t stopped = s.leases[i].stopped_at ? s.leases[i].stopped_at : now_ms();
        if (alloc_restore(&d->reg.pool, s.leases[i].key, s.leases[i].addr, stopped) == 0)
            kept++;
    }
    log_info("state", "restored %zu of %zu leases from %s", kept, s.nleases, d->cfg.state_dir);
    for (size_t i = 0; i < s.nexposures; i++) {
        const state_exposure *x = &s.exposures[i];
        char spec[400], why[256];
        label_hostport h;
        snprintf(spec, sizeof(spec), "%u:%s/%s", x->port, x->target,
                 x->proto == CTR_UDP ? "udp" : "tcp");
        if (label_host_port_spec(spec, strlen(spec), d->cfg.domain, &h, why, sizeof(why)) == 0)
            reg_restore_exposure(&d->reg, x->key, &h);
        else
            log_warn("state", "dropping a saved host port exposure: %s", why);
    }
    if (s.nexposures)
        log_info("state", "restored %zu host port exposures", s.nexposures);
    /* Aliases a crashed run left behind, or a clean one kept for bound
     * containers and leases: kept until Docker has said which are still
     * wanted (the named leases' are wanted anyway). */
    alias_set_remove_leftovers(&d->aliases, s.aliases, s.naliases);
    free(d->pending_aliases);
    d->pending_aliases = xcalloc(s.naliases + 1, sizeof(uint32_t));
    d->npending = 0;
    size_t nnamed = 0;
    const reg_lease *named = reg_leases(&d->reg, &nnamed);
    for (size_t i = 0; i < s.naliases; i++) {
        bool leased = false;
        for (size_t k = 0; k < nnamed && !leased; k++)
            leased = named[k].addr == s.aliases[i];
        if (!leased)
            d->pending_aliases[d->npending++] = s.aliases[i];
    }
    d->resolver_uninstalled = s.resolver_uninstalled;
    state_data_free(&s);
}

/* ---- The port table's callbacks ---- */

static bool port_live(void *ud, const char *id, uint16_t port)
{
    daemon_ctx *d = ud;
    const port_entry *e = ports_find(d->ports, id, PORT_ROLE_FORWARD, port, CTR_TCP);
    return e && e->listener;
}

static int on_kafka_map(void *ud, const port_key *k, uint32_t listen_addr, uint16_t listen_port,
                        int nodes, const char *host, size_t host_len, int32_t port, uint32_t *addr,
                        uint16_t *new_port)
{
    daemon_ctx *d = ud;
    kafka_map_ctx ctx = {k->id, listen_addr, listen_port, nodes, port_live, d};
    return kafka_map_broker(&d->reg, &ctx, host, host_len, port, addr, new_port);
}

static void on_kafka_seen(void *ud, const port_key *k)
{
    daemon_ctx *d = ud;
    /* /v1/events watchers see the port's kafka flag change. */
    if (reg_port_kafka_seen(&d->reg, k->id, k->port))
        view_publish_changes(d);
}

static int on_dial(void *ud, const port_key *k, unsigned attempt, const struct sockaddr *peer,
                   struct sockaddr_storage *out)
{
    return hp_dial(ud, k, attempt, peer, out);
}

void daemon_ports_init(daemon_ctx *d, const ports_backend *be)
{
    ports_callbacks cbs = {d, on_kafka_map, on_kafka_seen, on_dial};
    d->ports = ports_new(be, &cbs);
}

/* ---- Applying the registry ---- */

static void sync_aliases(daemon_ctx *d)
{
    size_t naddr = 0;
    uint32_t *addrs = reg_alias_addresses(&d->reg, &naddr);
    if (!d->docker_synced && d->npending) {
        /* Before Docker's first report: the last run's aliases stay. */
        addrs = xrealloc(addrs, (naddr + d->npending) * sizeof(uint32_t));
        for (size_t i = 0; i < d->npending; i++) {
            bool have = false;
            for (size_t k = 0; k < naddr && !have; k++)
                have = addrs[k] == d->pending_aliases[i];
            if (!have)
                addrs[naddr++] = d->pending_aliases[i];
        }
    }
    /* An alias we add is in the state file before anything binds it, so a
     * crash now leaves it recorded as ours, for the next start to clean. */
    if (alias_set_sync(&d->aliases, addrs, naddr) > 0)
        daemon_save_state(d);
    free(addrs);
}

static int kafka_proxy_mode(int label_mode)
{
    return label_mode == LABEL_KAFKA_OFF     ? PROXY_KAFKA_OFF
           : label_mode == LABEL_KAFKA_FORCE ? PROXY_KAFKA_FORCE
                                             : PROXY_KAFKA_SNIFF;
}

/* The listeners the registry wants: one per mapped or direct port of each
 * served container, on its address and original port. */
static port_want *plan_ports(const registry *r, size_t *n, size_t *capp)
{
    size_t cap = 0, k = 0;
    port_want *v = NULL;
    for (size_t i = 0; i < r->n; i++) {
        const reg_entry *e = r->entries[i];
        if (!reg_served(e))
            continue;
        for (size_t j = 0; j < e->nports; j++) {
            const reg_port *p = &e->ports[j];
            if (p->plan != REG_PORT_MAPPED && p->plan != REG_PORT_DIRECT)
                continue;
            if (k == cap) {
                cap = cap ? cap * 2 : 16;
                v = xrealloc(v, cap * sizeof(*v));
            }
            port_want *w = &v[k++];
            memset(w, 0, sizeof(*w));
            snprintf(w->key.id, sizeof(w->key.id), "%s", e->c->id);
            w->key.role = PORT_ROLE_FORWARD;
            w->key.proto = p->proto;
            w->key.port = p->port;
            w->name = e->c->name;
            w->addr = e->addr;
            reg_port_target(p, &w->target);
            w->kafka = p->proto == CTR_TCP ? kafka_proxy_mode(p->kafka_mode) : PROXY_KAFKA_OFF;
            w->fd = -1;
        }
    }
    *n = k;
    *capp = cap;
    return v;
}

static void load_zone(daemon_ctx *d)
{
    size_t nrec = 0;
    reg_record *recs = reg_records(&d->reg, &nrec);
    dns_record *drecs = xcalloc(nrec, sizeof(dns_record));
    for (size_t i = 0; i < nrec; i++)
        drecs[i] = (dns_record){recs[i].name, recs[i].addr};
    if (dns_zone_set(d->zone, drecs, nrec) < 0)
        log_error("dns", "could not load %zu names into the zone; keeping the old set", nrec);
    free(drecs);
    free(recs);
}

/* ---- Reachability of container networks ---- */

/* Remembers a network's state for /v1/status and the periodic re-probe. */
static void note_network(daemon_ctx *d, const char *network, int state)
{
    for (size_t i = 0; i < d->nnets; i++)
        if (strcmp(d->nets[i].name, network) == 0) {
            d->nets[i].state = state;
            return;
        }
    if (d->nnets == DAEMON_MAX_NETWORKS)
        return;
    snprintf(d->nets[d->nnets].name, sizeof(d->nets[0].name), "%s", network);
    d->nets[d->nnets++].state = state;
}

void daemon_reach_changed(void *ud, const char *network, int state)
{
    daemon_ctx *d = ud;
    note_network(d, network, state); /* (reach.c has logged the change) */
    if (reg_set_reachability(&d->reg, network, state))
        daemon_apply(d);
}

/* Every network a served container is on gets a current probe target: the
 * prober probes the ones not known yet and re-probes the others at these
 * targets (the prober keeps one probe per network at a time). */
static void probe_networks(daemon_ctx *d)
{
    if (d->reach == NULL)
        return;
    reg_probe_want *pw = NULL;
    size_t n = reg_probe_wants(&d->reg, &pw);
    for (size_t i = 0; i < n; i++)
        reach_probe(d->reach, pw[i].network, pw[i].ip, pw[i].port);
    free(pw);
}

/* Probes every known network again (a firewall rule or route may have
 * changed): a state that changes comes back through daemon_reach_changed. */
void daemon_reprobe(daemon_ctx *d)
{
    if (d->reach == NULL)
        return;
    for (size_t i = 0; i < d->nnets; i++)
        reach_failure(d->reach, d->nets[i].name);
}

/* Aliases first (a new address must exist before anything binds it), then
 * listeners; a port another program holds goes back to the registry, which
 * may move the container, and the round repeats (a bounded number of
 * times). Then DNS, state and events. */
void daemon_apply(daemon_ctx *d)
{
    /* Shutting down: the listeners and aliases are gone for good, even
     * while the Docker client still reports (it closes after the relay
     * sidecars are removed). */
    if (d->stopping)
        return;
    reg_apply_begin(&d->reg, now_ms());
    for (int round = 0; round < APPLY_ROUNDS; round++) {
        sync_aliases(d);
        size_t nw = 0, cap = 0, nres = 0;
        port_want *wants = plan_ports(&d->reg, &nw, &cap);
        /* The reverse direction's listeners are in the same plan: the
         * table drops what a plan does not name. */
        hp_plan(d, &wants, &nw, &cap);
        port_result *res = NULL;
        ports_apply(d->ports, wants, nw, &res, &nres);
        free(wants);
        reg_decide_round(&d->reg, round == APPLY_ROUNDS - 1);
        bool moved = false;
        /* Only a forward listener's address is the registry's to change; a
         * listener on a socket bound elsewhere has its own failures. */
        for (size_t i = 0; i < nres; i++) {
            const port_result *pr = &res[i];
            if (pr->err != UV_EADDRINUSE || pr->key.role != PORT_ROLE_FORWARD)
                continue;
            /* A program on *:P holds P on every address: moving never helps. */
            bool (*everywhere)(uint16_t, int) =
                d->wildcard_listener ? d->wildcard_listener : platform_wildcard_listener;
            if (everywhere(pr->key.port, pr->key.proto == CTR_UDP ? 1 : 0)) {
                reg_port_held_everywhere(&d->reg, pr->key.id, pr->key.port, pr->key.proto, NULL);
                continue;
            }
            if (reg_port_held(&d->reg, pr->key.id, pr->key.port, pr->key.proto, pr->where,
                              now_ms()))
                moved = true;
        }
        free(res);
        if (!moved)
            break;
    }
    reg_apply_end(&d->reg);
    hp_after_apply(d);
    probe_networks(d);
    if (d->zone)
        load_zone(d);
    daemon_save_state(d);
    view_publish_changes(d);
}

/* ---- Docker ---- */

void daemon_docker_sync(void *ud, container **cs, size_t n)
{
    daemon_ctx *d = ud;
    if (d->stopping) {
        for (size_t i = 0; i < n; i++)
            container_free(cs[i]);
        return;
    }
    reg_sync(&d->reg, cs, n, now_ms());
    d->docker_synced = true;
    free(d->pending_aliases);
    d->pending_aliases = NULL;
    d->npending = 0;
    log_info("registry", "synchronised: %zu running containers", n);
    daemon_apply(d);
}

void daemon_docker_update(void *ud, container *c)
{
    daemon_ctx *d = ud;
    if (d->stopping) {
        container_free(c);
        return;
    }
    reg_update(&d->reg, c, now_ms());
    d->docker_synced = true; /* (the client lists before it follows events) */
    daemon_apply(d);
}

void daemon_docker_gone(void *ud, const char *id)
{
    daemon_ctx *d = ud;
    if (d->stopping)
        return;
    hp_container_gone(d, id);
    if (reg_remove(&d->reg, id, now_ms()))
        daemon_apply(d);
}
