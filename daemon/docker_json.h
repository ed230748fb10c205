/* Pure decoders of the Docker engine API (inspect, list, events, /version
 * replies), API version negotiation and the event-stream line splitter.
 * No libuv, no logging, no globals: the unit tests and the fuzzers use them
 * alone. Every document goes through common/json's bounded parser. */
#ifndef LOOPHOLE_DOCKER_JSON_H
#define LOOPHOLE_DOCKER_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "container.h"

/* The newest API version this client speaks. */
#define DOCKER_CLIENT_API_MAX "1.47"

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
 * old status/id fields. 0, or -EINVAL when it does not decode, or -EBADMSG
 * when it does but an id the client would send (a container event's id, a
 * network event's Attributes.container) is not a hex id of 1 to 64 digits,
 * as lists and inspects are checked: then ev->id holds that id, cut to 64
 * bytes, for a log line through printable() and nothing else. */
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

/* ---- The reverse direction's requests (image labels, engine facts,
 * relay sidecars). ---- */

/* Frees an array of labels (each key and value, then the array); NULL is fine. */
void ctr_labels_free(ctr_label *v, size_t n);
/* Decodes GET /images/{id}/json into the image's own Config.Labels (a null
 * or missing Config or Labels is no labels: 0 with *n 0). 0 or -EINVAL. */
int docker_decode_image_labels(const char *json, size_t len, ctr_label **labels, size_t *n,
                               char *err, size_t errlen);

typedef struct docker_info {
    char os[128]; /* OperatingSystem: "Docker Desktop", "OrbStack", "Debian GNU/Linux 12 (bookworm)"
                   */
    char name[128]; /* Name: the engine host's name ("colima", "lima-docker", ...) */
    bool rootless;  /* SecurityOptions has "name=rootless" */
} docker_info;
/* Decodes GET /info. Missing members are ""; overlong ones are cut. 0 or -EINVAL. */
int docker_decode_info(const char *json, size_t len, docker_info *out, char *err, size_t errlen);

/* Decodes the POST /containers/create reply {"Id": "...", "Warnings": []}. 0 or -EINVAL. */
int docker_decode_created(const char *json, size_t len, char id[65], char *err, size_t errlen);

/* The "message" of an engine's error reply ({"message": "No such image: x"}) into msg; 0, or
 * -EINVAL with msg "" when the body is not such an object. The text is the engine's: hostile. */
int docker_decode_message(const char *json, size_t len, char *msg, size_t msglen);

/* Reads the progress stream of POST /images/create (one JSON object a line; a
 * failed pull ends in {"error": "...", "errorDetail": {...}} with HTTP 200).
 * 0 when no line reports an error, else -EIO with the first error's text in
 * msg. Lines that do not decode are skipped. */
int docker_decode_pull(const char *text, size_t len, char *msg, size_t msglen);

/* One entry of GET /containers/json?all=1: the id, the first name without its
 * leading '/' ("" when none or too long) and State ("running", "exited", ...). */
typedef struct docker_listed {
    char id[65];
    char name[128];
    char state[16];
} docker_listed;
/* Decodes a list reply with names and states; free *out with free(). 0 or -EINVAL. */
int docker_decode_listed(const char *json, size_t len, docker_listed **out, size_t *n, char *err,
                         size_t errlen);

/* What kind of engine this is, which decides how a container reaches the host. */
enum {
    DOCKER_ENGINE_UNKNOWN = 0,
    DOCKER_ENGINE_NATIVE,   /* a rootful engine on this Linux host */
    DOCKER_ENGINE_DESKTOP,  /* Docker Desktop (macOS, Windows, Linux): a VM */
    DOCKER_ENGINE_ORBSTACK, /* OrbStack (macOS): a VM */
    DOCKER_ENGINE_COLIMA,   /* Colima: a Lima VM */
    DOCKER_ENGINE_LIMA,     /* a plain Lima VM */
    DOCKER_ENGINE_ROOTLESS, /* rootless Docker: its own user namespace */
    DOCKER_ENGINE_PODMAN,   /* Podman's Docker-compatible API */
};
/* From /info (NULL: unknown) and the endpoint in use ("unix:///..."). */
int docker_engine_kind(const docker_info *i, const char *endpoint);
/* The name that reaches the host's loopback from inside a container of that
 * engine ("host.docker.internal", "host.lima.internal",
 * "host.containers.internal"), or NULL when there is none (native, rootless,
 * unknown: the daemon then relays through the network's gateway). */
const char *docker_engine_host_alias(int kind);
/* "native", "docker-desktop", "orbstack", "colima", "lima", "rootless", "podman", "unknown". */
const char *docker_engine_name(int kind);

#endif
