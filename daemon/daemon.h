/* The daemon's context and its policy (daemon.c): Docker reports go to the
 * registry, and daemon_apply() carries the registry's plan out through the
 * I/O modules (aliases, port table, DNS zone, state file, events), handing
 * what they could not do back to the registry to decide again. main.c owns
 * life (start, signals, shutdown, the resolver entry, the control API's
 * provider); view.c renders the JSON of the control API. */
#ifndef LOOPHOLE_DAEMON_H
#define LOOPHOLE_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "alias.h"
#include "config.h"
#include "control.h"
#include "dns.h"
#include "dns_server.h"
#include "docker.h"
#include "log.h"
#include "ports.h"
#include "proxy.h"
#include "registry.h"
#include "resolver.h"

/* The lock file in the state directory: one daemon per state directory,
 * held (flock LOCK_EX) for the daemon's life. */
#define DAEMON_LOCK_FILE "loopholed.lock"
/* Container networks whose reachability the status shows. */
#define DAEMON_MAX_NETWORKS 64
/* How often a failed state save (a full or read-only state directory) is
 * tried again, until one succeeds. */
#define DAEMON_STATE_RETRY_MS 5000
/* How often every known network is probed again. */
#define DAEMON_REPROBE_MS 30000

typedef struct hp_sock hp_sock;

typedef struct published {
    char id[65];
    char *json;
} published;

typedef struct daemon_ctx {
    uv_loop_t *loop;
    config cfg;
    registry reg;
    dns_zone *zone;
    dns_server *dns;
    docker_client *docker;
    control_server *control;
    proxy_options popts;
    uint64_t nofile;     /* the descriptor limit after raising it (FDLIMIT_INFINITY: none) */
    proxy_caps caps;     /* derived from nofile */
    proxy_limits limits; /* in force: caps.limits with --max-conns */
    ports_table *ports;
    uv_signal_t sigterm, sigint, sighup;
    alias_mode alias;
    alias_set aliases; /* addresses we added to the loopback interface */
    bool resolver_on;  /* --resolver auto */
    bool resolver_uninstalled;
    resolver_kind rkind;
    resolver_config rcfg;
    char dns_ip[64];
    char *last_state; /* the state JSON last written, to skip identical writes */
    /* After a failed save: a timer that saves again every
     * DAEMON_STATE_RETRY_MS until a save succeeds (started on the first
     * failure, closed by the last save at shutdown), and one rate-limited
     * error line for all the failures. */
    uv_timer_t state_retry;
    bool state_retry_on;               /* state_retry is initialised and not closed */
    unsigned long long state_failures; /* failed saves since the last good one */
    int state_err;                     /* the last failure's -errno (for status) */
    log_limit state_log;
    published *pub; /* the container JSON last sent to /v1/events clients */
    size_t npub;
    /* Where /v1/events lines go (type "added", "changed" or "removed");
     * NULL: nowhere. */
    void (*publish)(void *ud, const char *type, const char *json);
    void *publish_ud;
    /* The reverse direction (hostports.c). */
    struct netns_maker *netns;
    struct sidecar_manager *sidecars;
    struct hp_sock **hps; /* sockets asked of netns, and what became of them */
    size_t nhps;
    bool netns_ok;        /* netns_probe: the netns path can work here */
    char netns_why[256];  /* why not, when !netns_ok */
    char instance_id[17]; /* this daemon's token (state dir), on its relay sidecars */
    /* Whether a socket listens on *:port (NULL: platform_wildcard_listener;
     * the unit tests put in their own, so the machine's listeners do not
     * matter). */
    bool (*wildcard_listener)(uint16_t port, int proto);
    /* Container networks' reachability (reach.c), as last reported. */
    struct reach_prober *reach;
    uv_timer_t reprobe;
    struct {
        char name[128];
        int state; /* REACH_* */
    } nets[DAEMON_MAX_NETWORKS];
    size_t nnets;
    int64_t started_ms;
    bool owns_system; /* past the control socket check: aliases, resolver, state are ours */
    int lock_fd;      /* <state_dir>/DAEMON_LOCK_FILE, flock'ed for life; -1 before */
    int sock_lock_fd; /* <control socket>.lock when we bind the socket ourselves; -1 else */
    bool stopping;
    /* Docker has reported its containers once. Until then the aliases the
     * last run left (other than named leases', which the state file
     * explains) stay: one may be a running container's, unknown yet. */
    bool docker_synced;
    uint32_t *pending_aliases;
    size_t npending;
    int exit_code;
} daemon_ctx;

/* daemon.c */
/* Creates the port table over backend be, wired to the registry. */
void daemon_ports_init(daemon_ctx *d, const ports_backend *be);
/* Applies the registry to the world, in an order that never shows a name
 * before its listeners. */
void daemon_apply(daemon_ctx *d);
/* What the Docker client reports (the docker_callbacks contract). */
void daemon_docker_sync(void *ud, container **cs, size_t n);
void daemon_docker_update(void *ud, container *c);
void daemon_docker_gone(void *ud, const char *id);
/* The state file: leases, aliases, the resolver choice. Written when it
 * changed, and always once stopping (the file may have been damaged behind
 * the daemon's back since the last write; it is read only at start). A
 * failed write is logged (rate-limited) and retried by a timer until one
 * succeeds; the save made while stopping closes that timer. */
void daemon_save_state(daemon_ctx *d);
/* The prober's changed() callback; and probing every known network again. */
void daemon_reach_changed(void *ud, const char *network, int state);
void daemon_reprobe(daemon_ctx *d);
void daemon_load_state(daemon_ctx *d);

/* view.c: the JSON shapes of DESIGN.md. */
void view_container(daemon_ctx *d, const reg_entry *e, yajl_gen g);
void view_containers(daemon_ctx *d, yajl_gen g);
void view_status(daemon_ctx *d, yajl_gen g);
/* Publishes added/changed/removed events for what changed since last time. */
void view_publish_changes(daemon_ctx *d);
void view_free(daemon_ctx *d);

#endif
