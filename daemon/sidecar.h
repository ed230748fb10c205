/* Relay sidecars: the reverse direction (a container reaches the host's
 * localhost:PORT at its own localhost:PORT) on engines whose network
 * namespaces the daemon cannot enter (Docker Desktop, OrbStack, Colima,
 * rootless engines, --host-ports-mode sidecar). For each wanted port one
 * small container joins the target's network namespace
 * (NetworkMode container:<id>) and runs socat from 127.0.0.1:CPORT to a
 * destination the caller chose: the engine's host alias
 * (host.docker.internal:PORT) or a listener of the daemon's own on the
 * network's gateway.
 *
 * The manager makes the set of sidecars match the wants it was last given,
 * through docker_request (all asynchronous), pulls the relay image on first
 * use, removes its leftovers after a crash (every sidecar carries the label
 * loophole.sidecar=<target id>) and removes what it made at shutdown. */
#ifndef LOOPHOLE_SIDECAR_H
#define LOOPHOLE_SIDECAR_H

#include <stddef.h>
#include <stdint.h>

#include "docker.h"
#include "labels.h"

typedef struct sidecar_manager sidecar_manager;

typedef struct sidecar_want {
    char target[65];         /* container id whose network namespace it joins */
    const char *target_name; /* for log lines; may be NULL; not kept */
    uint16_t port;           /* CPORT inside */
    uint8_t proto;           /* CTR_TCP/CTR_UDP */
    char dest[300]; /* where socat connects: "host.docker.internal:8000", "172.17.0.1:40123" */
} sidecar_want;

enum { SIDECAR_PENDING, SIDECAR_RUNNING, SIDECAR_FAILED };

/* Every sidecar is named SIDECAR_NAME_PREFIX... and labelled LABEL_SIDECAR
 * (its target) and SIDECAR_OWNER_LABEL (owner: this daemon's instance, kept
 * in its state directory): leftovers are removed only when all three say
 * they are this daemon's, so neither an image's own labels nor a second
 * daemon on the engine can make it remove a container that is not its. */
#define SIDECAR_NAME_PREFIX LABEL_SIDECAR_NAME_PREFIX
#define SIDECAR_OWNER_LABEL "loophole.sidecar.owner"

/* changed(ud) runs from the loop (never from inside a sidecar_* call)
 * whenever a sidecar's state changes. image is --sidecar-image; owner a
 * short token of letters and digits. */
sidecar_manager *sidecar_new(docker_client *dc, const char *image, const char *owner,
                             void (*changed)(void *ud), void *ud);
/* Makes the set of sidecars match w[0..n) (asynchronously): new wants are
 * created and started, sidecars no longer wanted or whose dest changed are
 * removed (and re-created for the new dest). A want that cannot be used (a
 * target that is not a container id, a dest that is not host:port) is
 * FAILED at once. */
void sidecar_apply(sidecar_manager *m, const sidecar_want *w, size_t n);
/* SIDECAR_* of the wanted sidecar, with *problem a sentence when FAILED
 * (valid until the next sidecar_* call) and NULL otherwise; -ENOENT when
 * no such want was applied. */
int sidecar_state(const sidecar_manager *m, const char *target, uint16_t port, uint8_t proto,
                  const char **problem);
/* Running sidecars. */
size_t sidecar_count(const sidecar_manager *m);
/* A container stopped or went away (the Docker client's gone report): when
 * it is one of the running sidecars, which the manager did not remove
 * itself, its relay is FAILED with a problem (socat exits at once when its
 * port is taken inside the target) until the next connect or a new dest. */
void sidecar_container_gone(sidecar_manager *m, const char *id);
/* Call after each (re)connect of the engine: removes labelled sidecars the
 * manager does not own (a crashed daemon's) or that stopped, retries failed
 * ones, and creates what is wanted. */
void sidecar_engine_connected(sidecar_manager *m);
/* Removes every sidecar it made (DELETE ?force=1), waiting at most 3 s for
 * the engine, then runs cb; its one timer is closed by then. Requests still
 * in flight at the deadline end when the Docker client closes (which must
 * come after); the manager frees itself once they have. */
void sidecar_close(sidecar_manager *m, void (*cb)(void *arg), void *arg);

#endif
