/* The reverse direction's policy (hostports.c): a container reaches the
 * person's localhost:PORT (or another container by its loophole name) at its
 * own localhost:PORT. The registry says which host ports each running
 * container wants (its loophole.host-ports label and run-time exposures);
 * this decides, per container, how the listening sockets are made and hands
 * them to the port table like any other listener, so both directions share
 * one relay:
 *   netns    the daemon binds 127.0.0.1:CPORT (and [::1]:CPORT) inside the
 *            container's network namespace on a helper thread (netns.h) and
 *            serves the sockets on the loop (Linux, a rootful native engine);
 *   sidecar  a relay container sharing the container's namespace (sidecar.h)
 *            runs socat from 127.0.0.1:CPORT to a relay listener of the
 *            daemon: on the container network's gateway (native engines,
 *            accepting only that container's addresses) or on the host's
 *            127.0.0.1 through the engine's host alias (host.docker.internal,
 *            host.lima.internal).
 * Each connection asks where to go when it arrives (hp_dial): the host's
 * 127.0.0.1:PORT and then [::1]:PORT, a loopback address, or a loophole name
 * resolved by the registry then, so it follows the target's address. */
#ifndef LOOPHOLE_HOSTPORTS_H
#define LOOPHOLE_HOSTPORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <yajl/yajl_gen.h>

#include "ports.h"
#include "registry.h"

struct daemon_ctx;

enum { HP_MODE_NONE = 0, HP_MODE_NETNS, HP_MODE_SIDECAR };

/* Starts the netns maker and the sidecar manager (after the Docker client
 * exists) and probes whether the netns path can work here. */
void hp_start(struct daemon_ctx *d);
/* Shutdown: closes the netns maker; removes the sidecars, then cb (the
 * Docker client must stay open until cb runs). */
void hp_stop(struct daemon_ctx *d, void (*cb)(void *arg), void *arg);
/* Frees what is left after the loop ended. */
void hp_free(struct daemon_ctx *d);
/* The engine (re)connected: sidecar leftovers are cleaned. */
void hp_engine_connected(struct daemon_ctx *d);
/* A container stopped or went away (relay sidecars are not in the registry,
 * so this is how one that exited on its own is noticed). */
void hp_container_gone(struct daemon_ctx *d, const char *id);

/* Appends the port table wants of every host port (roles host, host6 and
 * relay) to *v (n used, cap allocated), asking for sockets that do not
 * exist yet; the daemon passes them to ports_apply with the forward wants. */
void hp_plan(struct daemon_ctx *d, port_want **v, size_t *n, size_t *cap);
/* After ports_apply: the sidecars follow the relay listeners that exist. */
void hp_after_apply(struct daemon_ctx *d);

/* ports_callbacks.dial for the reverse direction's listeners. */
int hp_dial(struct daemon_ctx *d, const port_key *k, unsigned attempt, const struct sockaddr *peer,
            struct sockaddr_storage *out);

/* The mode a container's host ports use (HP_MODE_*). */
int hp_mode(const struct daemon_ctx *d, const reg_entry *e);
/* One host port as JSON (the shape of DESIGN.md's host_ports entries). */
void hp_view_port(const struct daemon_ctx *d, const reg_entry *e, const reg_hostport *h,
                  yajl_gen g);
/* Totals for /v1/status: reverse listeners open, host ports wanted, sidecars running. */
void hp_totals(const struct daemon_ctx *d, size_t *listeners, size_t *wanted, size_t *sidecars);
/* The problem of one host port, or NULL (for the status list). */
const char *hp_problem(const struct daemon_ctx *d, const reg_entry *e, const reg_hostport *h);

/* The control API's provider functions (control.h's contract). */
int hp_prov_list(void *ud, const char *key, yajl_gen g);
int hp_prov_add(void *ud, const char *key, const char *body, size_t len, yajl_gen g, char *err,
                size_t errlen);
int hp_prov_remove(void *ud, const char *key, const char *port, const char *proto, char *err,
                   size_t errlen);
int hp_prov_docker_socket(void *ud, uid_t *uid, gid_t *gid, mode_t *mode);

#endif
