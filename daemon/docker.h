/* The Docker engine client: HTTP/1.1 over the engine's unix socket with
 * http-parser, JSON with yajl, all non-blocking on the libuv loop.
 *
 * Life: discover the socket (first candidate answering /_ping), negotiate the
 * API version (/_ping's Api-Version and /version's MinAPIVersion; never a fixed
 * version), subscribe to container events, then list and inspect the running
 * containers and report them all at once (sync). Afterwards each event is
 * turned into update (inspected again) or gone. When the engine goes away the
 * client reports disconnected and retries with backoff 250 ms doubling to
 * 10 s, re-discovering the socket each time; a reconnect ends in a full sync
 * again.
 *
 * This header is the libuv client only; the pure decoders are in
 * docker_json.h and socket discovery in docker_discover.h. */
#ifndef LOOPHOLE_DOCKER_H
#define LOOPHOLE_DOCKER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "container.h"

typedef struct docker_client docker_client;

typedef struct docker_callbacks {
    void *ud;
    /* Connected to endpoint ("unix:///var/run/docker.sock") speaking api_version. */
    void (*connected)(void *ud, const char *endpoint, const char *api_version);
    /* Lost or could not reach the engine; reason is one line. Called once per
     * outage, not per retry. */
    void (*disconnected)(void *ud, const char *reason);
    /* Every running container, after each (re)connect. The callee takes
     * ownership of every container (container_free); the array is the
     * client's. */
    void (*sync)(void *ud, container **ctrs, size_t n);
    /* A container started or changed (start, unpause, pause, rename, ...):
     * the fresh inspect result. The callee takes ownership. A container that
     * is inspected but not running is reported through gone instead. */
    void (*update)(void *ud, container *c);
    /* A container stopped, died or was destroyed. */
    void (*gone)(void *ud, const char *id);
} docker_callbacks;

typedef struct docker_options {
    const char *host; /* --docker-host, or NULL for discovery */
    const char *user; /* the `user` config key, or NULL */
} docker_options;

typedef struct docker_status {
    char endpoint[256]; /* "" before the first connection */
    bool connected;
    char api_version[16];
    int64_t since; /* Unix ms of the last change of `connected` */
    char last_error[256];
    /* From GET /info after each connection ("" / UNKNOWN / false when it
     * failed): the engine's OperatingSystem, DOCKER_ENGINE_* (docker_json.h)
     * and whether it runs rootless. */
    char os[128];
    int engine_kind;
    bool rootless;
    /* The unix socket in use ("" before the first connection): whoever may
     * use it may use the engine, which the control API's permission check
     * asks for. */
    char socket_path[256];
} docker_status;

int docker_client_new(uv_loop_t *loop, const docker_options *opts, const docker_callbacks *cbs,
                      docker_client **out);
void docker_client_start(docker_client *d);
void docker_client_status(const docker_client *d, docker_status *st);
/* The loop the client runs on (for modules built over docker_request). */
uv_loop_t *docker_client_loop(const docker_client *d);
/* A reply to docker_request: err is 0 when a whole reply came (then status
 * is its HTTP status and body its bytes, valid only during the call), else a
 * libuv error (UV_ECANCELED when the client closed first). */
typedef void (*docker_reply_fn)(void *ud, int err, int status, const char *body, size_t len);
/* Sends method path (without the version prefix: "/containers/create?name=x")
 * with an optional JSON body on a new connection to the engine in use, under
 * the negotiated version (/v1.xx/...). cb runs exactly once, later; an engine
 * that goes away does not cancel it (its connection fails on its own), only
 * docker_client_close does. The request fails when no byte arrives for 60 s
 * (a pull streams progress); replies are bounded like every other.
 * -ENOTCONN (cb never called) when not connected or closing, -EINVAL for a
 * path that does not start with '/'. */
int docker_request(docker_client *d, const char *method, const char *path, const char *json_body,
                   docker_reply_fn cb, void *ud);
/* Closes every handle and frees the client; cb runs after. */
void docker_client_close(docker_client *d, void (*cb)(void *arg), void *arg);

#endif
