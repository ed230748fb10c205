/* The state file: leases, aliases we added, and whether the person removed
 * the resolver entry. JSON with a schema version, written atomically (temp
 * file, fsync, rename). Encoding and decoding are pure; load and save do
 * blocking file I/O on a small file. */
#ifndef LOOPHOLE_STATE_H
#define LOOPHOLE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STATE_VERSION 1
#define STATE_FILE "state.json"

typedef struct state_lease {
    char *key;
    uint32_t addr;      /* host order */
    int64_t stopped_at; /* Unix ms; 0 when it was active at save time */
} state_lease;

/* A run-time host port (loophole expose), kept under its container's lease
 * key so it comes back after a restart or a compose recreation. target is
 * what label_host_port_target writes ("localhost:8000", "[::1]:8000",
 * "pg.billing.loop.test:5432"); the daemon reads it back with
 * label_host_port_spec("<port>:<target>/<proto>"). */
typedef struct state_exposure {
    char *key;
    uint16_t port; /* CPORT */
    uint8_t proto; /* CTR_TCP or CTR_UDP */
    char *target;
} state_exposure;

/* A named lease (loophole lease add): kept until removed. */
typedef struct state_named {
    char *name; /* one DNS label */
    uint32_t addr;
    int64_t created_at; /* Unix ms */
} state_named;

typedef struct state_data {
    state_lease *leases;
    size_t nleases;
    uint32_t *aliases; /* loopback aliases this daemon added and has not removed */
    size_t naliases;
    bool resolver_uninstalled;
    state_exposure *exposures;
    size_t nexposures;
    state_named *named;
    size_t nnamed;
} state_data;

/* Format:
 * {"version":1,"leases":[{"key":"name:pg","ip":"127.0.0.2","stopped_at":0}],
 *  "aliases":["127.0.0.2"],"resolver_uninstalled":false,
 *  "exposures":[{"key":"name:web","port":8000,"proto":"tcp","target":"localhost:8000"}],
 *  "named_leases":[{"name":"sandbox-1","ip":"127.0.0.3","created_at":1764770000000}]}
 * Unknown keys are ignored (forward compatibility); a missing section is
 * empty (files older than exposures have none). */
int state_encode(const state_data *s, char **out, size_t *len);
/* Returns 0, or -EINVAL with a one-line reason in err (bad JSON, wrong
 * version, wrong types, bad address). Entries with a bad address are an error,
 * not silently skipped; so are bad exposures (a key or target that is not a
 * non-empty string, a port outside 1-65535, a proto other than "tcp"/"udp")
 * and bad named leases (a name that is not a non-empty string of at most 63
 * bytes, a bad address, a negative created_at). */
int state_decode(const char *json, size_t len, state_data *out, char *err, size_t errlen);

/* Reads <dir>/state.json. Returns 0; -ENOENT when there is none (out empty);
 * or -EINVAL when it is corrupt or unreadable: it is then renamed to
 * <dir>/state.json.corrupt-<unix seconds>, err says what was wrong and where
 * it went, and out is empty, so the caller logs and starts fresh. */
int state_load(const char *dir, state_data *out, char *err, size_t errlen);
/* Writes <dir>/state.json atomically, creating dir (0755) if needed. */
int state_save(const char *dir, const state_data *s);
void state_data_free(state_data *s);

#endif
