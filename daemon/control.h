/* The control API: HTTP/1.1 + JSON over a unix socket (http-parser, yajl).
 * Routes: GET /v1/status, GET /v1/containers, GET /v1/containers/{name or id},
 * POST and DELETE /v1/resolver, GET /v1/events (one JSON object per line,
 * never cut by idle timeouts). Reads for everyone; changes only for uid 0 or
 * members of the admin group (peer credentials on every connection). The
 * data comes from the daemon through control_provider, so this module knows
 * HTTP, limits and permissions, not the registry. */
#ifndef LOOPHOLE_CONTROL_H
#define LOOPHOLE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>
#include <yajl/yajl_gen.h>

#include "peercred.h"

typedef struct control_server control_server;

typedef struct control_provider {
    void *ud;
    /* Writes the /v1/status object into g. */
    void (*status)(void *ud, yajl_gen g);
    /* Writes the /v1/containers array into g. */
    void (*containers)(void *ud, yajl_gen g);
    /* Writes one container object for key (see DESIGN.md: any DNS name with or
     * without the domain, the container name, or an id prefix of >= 12 hex
     * digits); returns 0, or -ENOENT when there is no such container. */
    int (*container)(void *ud, const char *key, yajl_gen g);
    /* Installs (install=true) or removes the system resolver entry. Returns 0;
     * -ENOTSUP when the daemon runs with --resolver off (-> 409); another
     * -errno on failure (-> 500) with a one-sentence reason in err. */
    int (*resolver)(void *ud, bool install, char *err, size_t errlen);
} control_provider;

typedef struct control_options {
    const char *path;         /* socket path (bound by us unless inherited_fd >= 0) */
    int inherited_fd;         /* a listening socket from systemd/launchd, or -1 */
    const char *admin_group;  /* "sudo", "admin", ... */
    unsigned max_clients;     /* default 64 */
    unsigned idle_timeout_ms; /* default 10000; never applied to /v1/events streams */
} control_options;

/* Binds the socket (stale file from a crashed daemon replaced; a live daemon
 * on it -> -EADDRINUSE with nothing touched), mode 0666, and serves. Returns 0
 * or -errno / libuv error. */
int control_start(uv_loop_t *loop, const control_options *opts, const control_provider *prov,
                  control_server **out);
/* Sends {"type": type, "container": <container_json>} plus "\n" to every
 * /v1/events client. container_json is a complete JSON object. */
void control_publish(control_server *s, const char *type, const char *container_json);
/* Closes the listener and every client; unlinks the socket file it bound
 * (not an inherited one); cb runs when all is closed. */
void control_close(control_server *s, void (*cb)(void *arg), void *arg);

/* Limits (exposed for tests and the man page). */
#define CONTROL_MAX_HEADER 16384        /* request line + headers */
#define CONTROL_MAX_BODY 65536          /* request body */
#define CONTROL_MAX_EVENT_QUEUE 1048576 /* unsent bytes before an events client is dropped */

/* The permission rule, pure: uid 0, or admin_gid (when have_admin_gid) is the
 * peer's gid or one of its groups. */
bool control_allowed(const peercred *c, gid_t admin_gid, bool have_admin_gid);

/* Testing: when cred is not NULL, every later connection gets these
 * credentials instead of the kernel's (copied). NULL restores the real ones. */
void control_set_peer_override(control_server *s, const peercred *cred);

/* Number of connected clients (testing and status). */
unsigned control_client_count(const control_server *s);

#endif
