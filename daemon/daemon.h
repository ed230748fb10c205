/* The daemon's context, shared by main.c (life, Docker callbacks, resolver,
 * aliases, state), ports.c (listeners) and view.c (JSON for the control API). */
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
#include "proxy.h"
#include "registry.h"
#include "resolver.h"

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
    uv_signal_t sigterm, sigint, sighup;
    alias_mode alias;
    uint32_t *aliases; /* addresses we added to the loopback interface */
    size_t naliases;
    bool resolver_on; /* --resolver auto */
    bool resolver_uninstalled;
    resolver_kind rkind;
    resolver_config rcfg;
    char dns_ip[64];
    char *last_state; /* the state JSON last written, to skip identical writes */
    published *pub;   /* the container JSON last sent to /v1/events clients */
    size_t npub;
    int64_t started_ms;
    bool owns_system; /* past the control socket check: aliases, resolver, state are ours */
    bool stopping;
    int exit_code;
} daemon_ctx;

/* main.c */
void daemon_apply_aliases(daemon_ctx *d);

/* ports.c: opens, moves and closes listeners to match the registry. Returns
 * true when a container moved to another address. */
bool ports_reconcile(daemon_ctx *d);
/* Closes the listeners the registry dropped. */
void ports_close_dropped(daemon_ctx *d);
/* Closes every listener (shutdown). */
void ports_close_all(daemon_ctx *d);

/* view.c: the JSON shapes of DESIGN.md. */
void view_container(daemon_ctx *d, const reg_entry *e, yajl_gen g);
void view_containers(daemon_ctx *d, yajl_gen g);
void view_status(daemon_ctx *d, yajl_gen g);
/* Publishes added/changed/removed events for what changed since last time. */
void view_publish_changes(daemon_ctx *d);
void view_free(daemon_ctx *d);

#endif
