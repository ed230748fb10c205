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

#endif
