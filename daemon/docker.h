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
} docker_status;

int docker_client_new(uv_loop_t *loop, const docker_options *opts, const docker_callbacks *cbs,
                      docker_client **out);
void docker_client_start(docker_client *d);
void docker_client_status(const docker_client *d, docker_status *st);
/* Closes every handle and frees the client; cb runs after. */
void docker_client_close(docker_client *d, void (*cb)(void *arg), void *arg);

#endif
