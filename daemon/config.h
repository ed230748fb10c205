/* loopholed's settings: flags, and the same keys in an optional JSON config
 * file ({"domain": "loop.test", "pool": "127.0.0.2-127.0.0.254"}). Flags win
 * over the file. Parsing is pure; the file is read once at start with
 * fs_read_small (bounded, non-blocking, regular files only). */
#ifndef LOOPHOLE_CONFIG_H
#define LOOPHOLE_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alias.h"
#include "log.h"

#ifndef LOOPHOLE_SYSCONFDIR
#define LOOPHOLE_SYSCONFDIR "/etc"
#endif

typedef enum config_resolver { CONFIG_RESOLVER_AUTO = 0, CONFIG_RESOLVER_OFF } config_resolver;

/* How the reverse direction makes its listeners inside containers: auto
 * (netns where the daemon can enter the container's network namespace, else
 * a relay sidecar), netns only, or sidecars only. */
typedef enum config_host_ports {
    CONFIG_HOST_PORTS_AUTO = 0,
    CONFIG_HOST_PORTS_NETNS,
    CONFIG_HOST_PORTS_SIDECAR
} config_host_ports;

/* Which containers get an address (--serve) and where connections go
 * (--forward): see loopholed(8). */
typedef enum config_serve { CONFIG_SERVE_EXPOSED = 0, CONFIG_SERVE_PUBLISHED } config_serve;
typedef enum config_forward {
    CONFIG_FORWARD_AUTO = 0,
    CONFIG_FORWARD_DIRECT,
    CONFIG_FORWARD_MAPPED
} config_forward;

/* One address per container or per compose project (--address-per). */
typedef enum config_address_per {
    CONFIG_ADDRESS_PER_CONTAINER = 0,
    CONFIG_ADDRESS_PER_PROJECT
} config_address_per;

typedef struct config {
    char *config_file;
    char *control_socket;
    char *state_dir;
    char *dns_listen;
    char *domain;
    unsigned dns_ttl;
    char *pool;
    uint32_t pool_first, pool_last;
    char *docker_host;
    char *user;
    char *resolver;      /* "auto" or "off", as given (for display; see resolver_mode) */
    char *resolver_root; /* testing: prefix for resolver paths; never reloads the system */
    char *alias;         /* "auto", "off", "netlink", as given (see alias_mode) */
    unsigned dial_timeout_ms;
    unsigned udp_idle_s;
    unsigned udp_max_sessions;   /* CONFIG_AUTO: derived from the descriptor limit */
    unsigned max_conns;          /* all proxies; 0: no cap; CONFIG_AUTO: derived */
    unsigned max_conns_per_port; /* one listener; 0: no cap; CONFIG_AUTO: derived */
    unsigned tcp_idle_s;         /* 0: never */
    char *admin_group;
    char *serve;           /* "exposed" or "published", as given (see serve_mode) */
    char *forward;         /* "auto", "direct", "mapped", as given (see forward_mode) */
    char *host_ports_mode; /* "auto", "netns", "sidecar", as given (see host_ports) */
    char *address_per;     /* "container" or "project", as given (see address_per_mode) */
    char *sidecar_image;   /* the relay image for sidecar mode */
    char *log_level;       /* as given (see level) */
    /* The string settings above parsed once, by config_load: code decides
     * on these, never by comparing the strings again. */
    config_resolver resolver_mode;
    alias_mode alias_mode;
    config_host_ports host_ports;
    config_serve serve_mode;
    config_forward forward_mode;
    config_address_per address_per_mode;
    enum log_level level;
} config;

/* ---- defaults: the one home of each ----
 * config.c's defaults and --help take every value from here, and a unit
 * test (test_config) checks that loopholed(8) and loophole.conf(5) state
 * them. The ones that differ by platform (control socket, state directory,
 * admin group) come from common/platform.h. */
#define CONFIG_DEFAULT_DNS_LISTEN "127.0.0.1:15353"
#define CONFIG_DEFAULT_DOMAIN "loop.test"
#define CONFIG_DEFAULT_DNS_TTL 5 /* seconds */
#define CONFIG_DEFAULT_POOL "127.0.0.2-127.0.0.254"
#define CONFIG_DEFAULT_RESOLVER "auto"
#define CONFIG_DEFAULT_ALIAS "auto"
#define CONFIG_DEFAULT_DIAL_TIMEOUT_MS 5000
#define CONFIG_DEFAULT_UDP_IDLE_S 60
#define CONFIG_DEFAULT_UDP_MAX_SESSIONS 1024 /* the proxy's own, without a derived one */
#define CONFIG_DEFAULT_TCP_IDLE_S 7200
/* A number setting given as "auto" (the default of the caps, which
 * loopholed derives from its descriptor limit: proxy_caps_derive). */
#define CONFIG_AUTO UINT_MAX
#define CONFIG_DEFAULT_LOG_LEVEL "info"
#define CONFIG_DEFAULT_SERVE "exposed"
#define CONFIG_DEFAULT_FORWARD "auto"
#define CONFIG_DEFAULT_ADDRESS_PER "container"
#define CONFIG_DEFAULT_HOST_PORTS_MODE "auto"
#define CONFIG_DEFAULT_SIDECAR_IMAGE "alpine/socat"

/* The default of a key ("dns_ttl", "pool") as the config holds it and
 * --help and the man pages show it; NULL for a key without one (docker_host
 * and user: discovery; resolver_root; config_file). */
const char *config_default(const char *key);

enum { CONFIG_OK = 0, CONFIG_EXIT = 1 };

/* Fills c with defaults, reads the config file (the --config flag's, which
 * must exist, or the default one when present), then applies the flags.
 * Returns CONFIG_OK; CONFIG_EXIT after printing --help or --version to out;
 * or -EINVAL with a one-line message naming the flag or key in err. */
int config_load(config *c, int argc, char **argv, char *err, size_t errlen);
/* Applies a JSON config document (one flat object of flag keys) to c;
 * origin names it in messages ("config /etc/..."). config_load calls it for
 * the file; the unit tests call it directly to feed documents no file holds.
 * Returns 0 or -EINVAL with a one-line message in err. */
int config_apply_json(config *c, const char *json, size_t len, const char *origin, char *err,
                      size_t errlen);
void config_free(config *c);

#endif
