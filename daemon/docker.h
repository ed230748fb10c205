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
 * again. */
#ifndef LOOPHOLE_DOCKER_H
#define LOOPHOLE_DOCKER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "container.h"

/* The newest API version this client speaks. */
#define DOCKER_CLIENT_API_MAX "1.47"

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

/* ---- Pure helpers, exposed for the unit tests (docker_json.c). ---- */

/* Decodes a GET /containers/{id}/json reply. 0, or -EINVAL with a reason. */
int docker_decode_inspect(const char *json, size_t len, container **out, char *err, size_t errlen);
/* Decodes a GET /containers/json reply into the ids. 0 or -EINVAL. */
int docker_decode_list(const char *json, size_t len, char ***ids, size_t *n, char *err,
                       size_t errlen);
void docker_free_ids(char **ids, size_t n);

typedef struct docker_event {
    char action[32]; /* "start", "die", ... (an Action of "exec_start: sh" is cut at ':') */
    char id[65];
    char type[16]; /* "container", "network", ... */
    /* Network events (connect, disconnect): the container concerned, from
     * Actor.Attributes.container; "" otherwise. */
    char container[65];
} docker_event;
/* Decodes one event object. Uses Type/Action/Actor.ID, falling back to the
 * old status/id fields. 0 or -EINVAL. */
int docker_decode_event(const char *json, size_t len, docker_event *ev);

/* Decodes /version: ApiVersion and MinAPIVersion ("" when missing). */
int docker_decode_version(const char *json, size_t len, char *api, size_t apilen, char *min,
                          size_t minlen);
/* Compares "1.41" with "1.44": <0, 0, >0. */
int docker_version_cmp(const char *a, const char *b);
/* The version to use: min(client max, server max), or -ENOTSUP (with out
 * empty) when that is below the server's minimum. server_min may be "". */
int docker_negotiate(const char *server_max, const char *server_min, char *out, size_t outlen);

/* Splits a byte stream into newline-separated JSON objects, whatever the
 * chunk boundaries. Feed it bytes; it calls cb for each complete line
 * (without the newline, blank lines skipped). A line longer than 1 MiB is
 * dropped with -EMSGSIZE returned once. */
typedef struct docker_splitter {
    char *buf;
    size_t len, cap;
    bool overflow;
} docker_splitter;
int docker_splitter_feed(docker_splitter *s, const char *data, size_t len,
                         void (*cb)(void *ud, const char *line, size_t len), void *ud);
void docker_splitter_free(docker_splitter *s);

/* ---- Socket discovery (docker_discover.c). ---- */

typedef struct docker_person {
    int known; /* 0 when there is no person */
    unsigned uid;
    char home[512];
    char name[64];
} docker_person;

/* Who the Docker socket belongs to. On macOS the owner of /dev/console; on
 * Linux the user config key (by name), else SUDO_UID, else none. */
int docker_find_person(const char *user_cfg, docker_person *p);

typedef struct docker_discover_input {
    const char *host_flag;   /* --docker-host or NULL */
    const char *docker_host; /* $DOCKER_HOST or NULL */
    const docker_person *person;
    const char *colima_home; /* $COLIMA_HOME or NULL */
    const char *root;        /* prefix for absolute system paths, "" normally (tests) */
} docker_discover_input;

/* Ordered candidate socket paths (no "unix://"), duplicates removed:
 * --docker-host alone when given; else DOCKER_HOST; the person's current
 * docker context (config.json currentContext, found by scanning
 * ~/.docker/contexts/meta/ * /meta.json for that Name, Endpoints.docker.Host);
 * /var/run/docker.sock; ~/.docker/run/docker.sock; ~/.docker/desktop/docker.sock;
 * $COLIMA_HOME/default/docker.sock or ~/.colima/default/docker.sock;
 * ~/.orbstack/run/docker.sock; ~/.rd/docker.sock; /run/podman/podman.sock;
 * /run/user/<uid>/podman/podman.sock; /run/user/<uid>/docker.sock.
 * A tcp:// or ssh:// (or any non-unix) endpoint in the flag or DOCKER_HOST
 * gives -EPROTONOSUPPORT and a clear message in err. */
int docker_discover(const docker_discover_input *in, char ***paths, size_t *n, char *err,
                    size_t errlen);

#endif
