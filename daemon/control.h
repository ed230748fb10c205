/* The control API: HTTP/1.1 + JSON over a unix socket (http-parser, yajl).
 * Routes (one table in control.c; see "routing" below): GET /v1/status,
 * GET /v1/containers, GET /v1/containers/{name or id}, GET and POST
 * /v1/containers/{name}/host-ports, DELETE .../host-ports/{port}[/udp],
 * POST and DELETE /v1/resolver, GET and POST /v1/leases, GET and DELETE
 * /v1/leases/{name}, GET /v1/events (one JSON object per line,
 * never cut by idle timeouts). Reads for everyone; changes only for uid 0 or
 * members of the admin group, and a container's exposures also for users of
 * the Docker engine's socket (peer credentials on every connection). The data comes from the
 * daemon through control_provider, so this module knows HTTP, limits and
 * permissions, not the registry. */
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
    /* A container's host ports (the reverse direction): writes the JSON
     * array into g; 0 or -ENOENT (no such container). */
    int (*host_ports)(void *ud, const char *key, yajl_gen g);
    /* Adds a run-time exposure from the request body (JSON: {"spec": ...}
     * or {"port", "target", "proto"}); writes the exposure object into g.
     * 0 (201); -ENOENT no container (404); -EINVAL bad body or spec (400);
     * -EEXIST the port is taken (409); err says why for all but 0. */
    int (*host_port_add)(void *ud, const char *key, const char *body, size_t len, yajl_gen g,
                         char *err, size_t errlen);
    /* Removes the exposure of port ("8000") and proto ("tcp", "udp"; NULL:
     * tcp). 0 (204); -ENOENT no container or no such exposure (404);
     * -EPERM a label's entry (409); -EINVAL a bad port or proto (400). */
    int (*host_port_remove)(void *ud, const char *key, const char *port, const char *proto,
                            char *err, size_t errlen);
    /* The Docker engine's socket on this machine, for CONTROL_ROUTE_DOCKER:
     * its owner, group and mode. 0, or -ENOENT when unknown (then only the
     * admin rule applies). */
    int (*docker_socket)(void *ud, uid_t *uid, gid_t *gid, mode_t *mode);
    /* Named leases (loophole lease): writes the /v1/leases array into g. */
    void (*leases)(void *ud, yajl_gen g);
    /* Writes one lease object; 0, or -ENOENT when there is no such lease. */
    int (*lease)(void *ud, const char *name, yajl_gen g);
    /* Leases an address from the request body ({"name": ..., "ip": ...});
     * writes the lease object into g and sets *created (201) or not (200:
     * it existed). -EINVAL and -EDOM (400), -EEXIST, -EBUSY, -EADDRINUSE and
     * -ENOSPC (409), anything else (500); err says why for all but 0. */
    int (*lease_add)(void *ud, const char *body, size_t len, yajl_gen g, bool *created, char *err,
                     size_t errlen);
    /* Ends a lease: 0 (204), -ENOENT (404), anything else (500, err). */
    int (*lease_remove)(void *ud, const char *name, char *err, size_t errlen);
} control_provider;

typedef struct control_options {
    const char *path;         /* socket path (bound by us unless inherited_fd >= 0) */
    int inherited_fd;         /* a listening socket from systemd/launchd, or -1 */
    const char *admin_group;  /* "sudo", "admin", ... */
    unsigned max_clients;     /* 0: CONTROL_DEFAULT_MAX_CLIENTS */
    unsigned idle_timeout_ms; /* 0: CONTROL_DEFAULT_IDLE_MS; never applied to /v1/events */
    /* The caller holds the state directory's lock, so no daemon sharing our
     * state is alive: a socket file at path that refuses connections is a
     * crashed daemon's and may be replaced. false: it is left alone
     * (-EADDRINUSE), since a refused connect does not prove nobody listens
     * (macOS refuses when the listen backlog is full). */
    bool replace_stale;
} control_options;

/* Binds the socket (stale file from a crashed daemon replaced when
 * replace_stale; a live daemon on it -> -EADDRINUSE with nothing touched; a file there that is not
 * a socket -> -EEXIST, left alone), mode 0666, and serves. Returns 0 or -errno / libuv error; a
 * failure is not logged here but by the caller, once. */
int control_start(uv_loop_t *loop, const control_options *opts, const control_provider *prov,
                  control_server **out);
/* Sends {"type": type, "container": <container_json>} plus "\n" to every
 * /v1/events client. container_json is a complete JSON object. */
void control_publish(control_server *s, const char *type, const char *container_json);
/* Closes the listener and every client; unlinks the socket file it bound
 * (not an inherited one); cb runs when all is closed. */
void control_close(control_server *s, void (*cb)(void *arg), void *arg);

/* Limits (exposed for tests and the man page, which test_config checks). */
#define CONTROL_DEFAULT_MAX_CLIENTS 64 /* control_options.max_clients 0 */
/* One uid may hold at most max_clients / CONTROL_UID_SHARE connections (16
 * of the default 64), but never fewer than CONTROL_UID_MIN (or max_clients
 * when that is smaller); past it, its own oldest idle one is closed. */
#define CONTROL_UID_SHARE 4
#define CONTROL_UID_MIN 4
#define CONTROL_DEFAULT_IDLE_MS 10000   /* control_options.idle_timeout_ms 0 */
#define CONTROL_MAX_HEADER 16384        /* request line + headers */
#define CONTROL_MAX_BODY 65536          /* request body */
#define CONTROL_MAX_EVENT_QUEUE 1048576 /* unsent bytes before an events client is dropped */

/* The permission rule, pure: uid 0, or admin_gid (when have_admin_gid) is the
 * peer's gid or one of its groups. */
bool control_allowed(const peercred *c, gid_t admin_gid, bool have_admin_gid);
/* Whether the peer may use the Docker engine's socket (uid, gid, mode):
 * its owner (with owner read+write), or in its group (gid or one of its
 * groups) with group read+write. Pure. */
bool control_docker_allowed(const peercred *c, uid_t sock_uid, gid_t sock_gid, mode_t mode);

/* Whether the directory of the socket path, symlinks resolved, is safe
 * for a root daemon's socket: owned by root or self, and not writable by
 * others unless sticky. 0, or -errno with one sentence in why. Pure but for
 * realpath and stat. */
int control_check_socket_dir(const char *path, uid_t self, char *why, size_t whylen);

/* Testing: when cred is not NULL, every later connection gets these
 * credentials instead of the kernel's (copied). NULL restores the real ones. */
void control_set_peer_override(control_server *s, const peercred *cred);

/* Clients connected and not closing (the fuzz driver checks that every
 * connection is let go). */
unsigned control_client_count(const control_server *s);

/* ---- routing ----
 * Requests are routed through a table of {methods, pattern, flags, handler,
 * ...} rows. A pattern is literal segments and {param} segments, e.g.
 * "/v1/containers/{name}/host-ports/{port}". A {param} matches one non-empty
 * segment (never a "/"); its value is percent-decoded, must not decode to NUL
 * or "/", and is capped at CONTROL_MAX_PARAM - 1 bytes. Literal segments are
 * compared byte for byte, undecoded. The query (after '?' or '#') is ignored
 * and one trailing "/" is dropped ("/v1/containers/" lists like
 * "/v1/containers"). The matcher below is pure, for tests and fuzzing. */

/* Methods, as bits of control_route.methods. */
#define CONTROL_GET 0x01u
#define CONTROL_HEAD 0x02u
#define CONTROL_POST 0x04u
#define CONTROL_PUT 0x08u
#define CONTROL_PATCH 0x10u
#define CONTROL_DELETE 0x20u

/* control_route.flags: the route changes things, so only root and the admin
 * group may call it (checked once, before the handler runs). */
#define CONTROL_ROUTE_ADMIN 0x01u
/* The route changes one container's own exposures: root, the admin group,
 * and anyone who may use the Docker engine's socket (control_docker_allowed:
 * they can do far more through Docker already). */
#define CONTROL_ROUTE_DOCKER 0x02u

#define CONTROL_MAX_PARAMS 4
#define CONTROL_MAX_PARAM 512 /* a decoded {param} value, NUL included */

typedef struct control_params {
    int n;
    struct {
        const char *name; /* points into the pattern, not terminated */
        size_t name_len;
        char value[CONTROL_MAX_PARAM];
    } v[CONTROL_MAX_PARAMS];
} control_params;

/* The value of {name}, or NULL. */
const char *control_param(const control_params *p, const char *name);

/* A request being answered (opaque: the handlers live in control.c). */
typedef struct control_client control_client;
typedef void (*control_handler)(control_client *c, const control_params *p);

typedef struct control_route {
    unsigned methods;        /* CONTROL_GET | ... */
    const char *pattern;     /* "/v1/containers/{name}" */
    unsigned flags;          /* CONTROL_ROUTE_ADMIN */
    control_handler handler; /* NULL only in tests of the matcher */
    /* Optional (NULL): the thing the route is about, for error sentences:
     * "no <what> matches that name or id" (a {param} that cannot be one) and
     * "changing the <what> needs root ..." (an admin route refused). */
    const char *what;
    /* Optional (NULL): what the method does, shown after it in 405 answers:
     * "this path only answers POST (install) and DELETE (remove)". */
    const char *note;
} control_route;

/* The CONTROL_* bit of an http-parser method (enum http_method), or 0. */
unsigned control_method_bit(int http_method);

/* Finds the row for method (a CONTROL_* bit) and path (the request target,
 * NUL-terminated) in table[0..n). Always sets *allow to the methods of every
 * row whose pattern matches the path (for the Allow header) and *route to the
 * row's index or -1. Returns
 *   0             found; its {params} decoded into params
 *   -ENOENT       no pattern matches the path (404)
 *   -ENOTSUP      a pattern matches but not for this method (405, *allow)
 *   -EINVAL       found, but a {param} has a bad %-escape or decodes to NUL
 *                 or "/" (*route is set: 404 through its what)
 *   -ENAMETOOLONG found, but a {param} is too long (same as -EINVAL)
 * A pattern with more than CONTROL_MAX_PARAMS params never matches. */
int control_route_match(const control_route *table, size_t n, unsigned method, const char *path,
                        control_params *params, unsigned *allow, int *route);

/* Writes "GET, POST" (the methods in mask, in bit order) into out. */
void control_methods_str(unsigned mask, char *out, size_t cap);

#endif
