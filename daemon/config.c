#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alias.h"
#include "alloc.h"
#include "dns_server.h"
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "names.h"
#include "platform.h"
#include "protocol.h"
#include "util.h"

#define DEFAULT_CONFIG LOOPHOLE_SYSCONFDIR "/loophole/loophole.json"
/* A config file is a few hundred bytes; this is far beyond any real one. */
#define CONFIG_MAX_SIZE (1u << 20)

enum opt_type { OPT_STR, OPT_UINT };

typedef struct opt {
    const char *name;
    enum opt_type type;
    size_t off;
    unsigned min, max; /* OPT_UINT bounds */
    bool autok;        /* OPT_UINT: "auto" is CONFIG_AUTO */
    const char *help;
    const char *def;             /* the default, as text; or NULL */
    const char *(*def_fn)(void); /* or the platform's default */
} opt;

#define STR_(x) #x
#define STR(x) STR_(x)
#define S(field, def, help)                                                                        \
    {                                                                                              \
#field, OPT_STR, offsetof(config, field), 0, 0, false, help, def, NULL                     \
    }
#define P(field, def_fn, help)                                                                     \
    {                                                                                              \
#field, OPT_STR, offsetof(config, field), 0, 0, false, help, NULL, def_fn                  \
    }
#define U(field, lo, hi, def, help)                                                                \
    {                                                                                              \
#field, OPT_UINT, offsetof(config, field), lo, hi, false, help, STR(def), NULL             \
    }
#define A(field, lo, hi, help)                                                                     \
    {                                                                                              \
#field, OPT_UINT, offsetof(config, field), lo, hi, true, help, "auto", NULL                \
    }

/* Flag names use '-' where the field uses '_'. --help appends
 * "(default X)" from def or def_fn. */
static const opt opts[] = {
    S(config_file, NULL, "JSON config file (default " DEFAULT_CONFIG ")"),
    P(control_socket, platform_control_socket, "control API socket"),
    P(state_dir, platform_state_dir, "state directory"),
    S(dns_listen, CONFIG_DEFAULT_DNS_LISTEN, "DNS server address"),
    S(domain, CONFIG_DEFAULT_DOMAIN, "DNS domain"),
    U(dns_ttl, 0, 3600, CONFIG_DEFAULT_DNS_TTL, "TTL of answers in seconds"),
    S(pool, CONFIG_DEFAULT_POOL, "address pool FIRST-LAST"),
    S(docker_host, NULL, "Docker engine, unix:///path (default: discovery)"),
    S(user, NULL, "whose Docker context and home to use (default: SUDO_UID)"),
    S(resolver, CONFIG_DEFAULT_RESOLVER, "auto|off: install the system resolver entry"),
    S(resolver_root, NULL, "prefix for resolver files; never reloads the system (testing)"),
    S(alias, CONFIG_DEFAULT_ALIAS, "auto|off|netlink: loopback aliases"),
    U(dial_timeout_ms, 1, 600000, CONFIG_DEFAULT_DIAL_TIMEOUT_MS, "upstream dial timeout in ms"),
    U(udp_idle_s, 1, 86400, CONFIG_DEFAULT_UDP_IDLE_S, "idle UDP session expiry in seconds"),
    A(udp_max_sessions, 1, 1000000, "UDP sessions per port (auto: from the descriptor limit)"),
    A(max_conns, 0, 10000000,
      "TCP connections and UDP sessions in all (0: no cap; auto: from the descriptor limit)"),
    A(max_conns_per_port, 0, 10000000,
      "TCP connections per port (0: no cap; auto: from the descriptor limit)"),
    U(tcp_idle_s, 0, 2592000, CONFIG_DEFAULT_TCP_IDLE_S,
      "close proxied TCP connections idle this many seconds (0: never)"),
    P(admin_group, platform_admin_group, "group allowed to change settings"),
    S(serve, CONFIG_DEFAULT_SERVE, "exposed|published: which containers get an address"),
    S(forward, CONFIG_DEFAULT_FORWARD,
      "auto|direct|mapped: to the container's own address or Docker's mapped port"),
    S(address_per, CONFIG_DEFAULT_ADDRESS_PER,
      "container|project: one address per container or per compose project"),
    S(host_ports_mode, CONFIG_DEFAULT_HOST_PORTS_MODE,
      "auto|netns|sidecar: how host ports are made inside containers"),
    S(sidecar_image, CONFIG_DEFAULT_SIDECAR_IMAGE, "relay image with socat for sidecar mode"),
    S(log_level, CONFIG_DEFAULT_LOG_LEVEL, "error|warn|info|debug"),
};

static const char *opt_default(const opt *o)
{
    return o->def_fn ? o->def_fn() : o->def;
}

const char *config_default(const char *key)
{
    for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
        if (strcmp(opts[i].name, key) == 0)
            return opt_default(&opts[i]);
    return NULL;
}

static void flag_name(const opt *o, char *out, size_t cap)
{
    const char *n = strcmp(o->name, "config_file") == 0 ? "config" : o->name;
    size_t i = 0;
    for (; n[i] && i + 1 < cap; i++)
        out[i] = n[i] == '_' ? '-' : n[i];
    out[i] = '\0';
}

static const opt *find_opt(const char *name)
{
    char fn[64];
    for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
        flag_name(&opts[i], fn, sizeof(fn));
        if (strcmp(fn, name) == 0 || strcmp(opts[i].name, name) == 0)
            return &opts[i];
    }
    return NULL;
}

static int set_opt(config *c, const opt *o, const char *val, const char *origin, char *err,
                   size_t errlen)
{
    char fn[64];
    flag_name(o, fn, sizeof(fn));
    if (o->type == OPT_STR) {
        char **p = (char **)((char *)c + o->off);
        free(*p);
        *p = xstrdup(val);
        return 0;
    }
    if (o->autok && strcmp(val, "auto") == 0) {
        *(unsigned *)((char *)c + o->off) = CONFIG_AUTO;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long v = strtoul(val, &end, 10);
    if (val[0] < '0' || val[0] > '9' || *end != '\0' || errno || v < o->min || v > o->max) {
        if (origin)
            snprintf(err, errlen, "%s: \"%s\" must be a whole number from %u to %u%s, not \"%s\"",
                     origin, o->name, o->min, o->max, o->autok ? " or \"auto\"" : "", val);
        else
            snprintf(err, errlen, "--%s must be a whole number from %u to %u%s, not \"%s\"", fn,
                     o->min, o->max, o->autok ? " or \"auto\"" : "", val);
        return -EINVAL;
    }
    *(unsigned *)((char *)c + o->off) = (unsigned)v;
    return 0;
}

/* Every default goes in through set_opt, like a flag, from the table. */
static void defaults(config *c)
{
    memset(c, 0, sizeof(*c));
    char err[128];
    for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
        const char *def = opt_default(&opts[i]);
        if (def)
            LH_REQUIRE(set_opt(c, &opts[i], def, NULL, err, sizeof(err)) == 0);
    }
}

static int apply_json(config *c, const char *json, size_t len, const char *origin, char *err,
                      size_t errlen)
{
    /* The file is one flat object; the depth limit only keeps a hostile
     * file from building a deep tree before "must be a string" is said. */
    char perr[200];
    yajl_val root;
    int prc = json_parse(json, len, CONFIG_MAX_SIZE, JSON_MAX_DEPTH, &root, perr, sizeof(perr));
    if (prc == -EFBIG) {
        snprintf(err, errlen, "%s: larger than 1 MiB", origin);
        return -EINVAL;
    }
    if (prc < 0) {
        snprintf(err, errlen, "%s: not valid JSON: %s", origin, perr);
        return -EINVAL;
    }
    int rc = 0;
    if (!YAJL_IS_OBJECT(root)) {
        snprintf(err, errlen, "%s: must be a JSON object", origin);
        rc = -EINVAL;
        goto out;
    }
    for (size_t i = 0; i < root->u.object.len; i++) {
        const char *key = root->u.object.keys[i];
        yajl_val v = root->u.object.values[i];
        const opt *o = find_opt(key);
        if (o == NULL || strcmp(o->name, "config_file") == 0) {
            snprintf(err, errlen, "%s: unknown key \"%s\"", origin, key);
            rc = -EINVAL;
            goto out;
        }
        const char *val;
        if (YAJL_IS_STRING(v)) {
            val = v->u.string;
        } else if (YAJL_IS_NUMBER(v) && o->type == OPT_UINT) {
            val = v->u.number.r;
        } else {
            snprintf(err, errlen, "%s: \"%s\" must be a %s", origin, key,
                     o->type == OPT_UINT ? "number" : "string");
            rc = -EINVAL;
            goto out;
        }
        if ((rc = set_opt(c, o, val, origin, err, errlen)) < 0)
            goto out;
    }
out:
    json_free(root);
    return rc;
}

static void config_usage(void)
{
    fprintf(stdout, "usage: loopholed [--flag value ...]\n\n"
                    "Gives every Docker container that publishes ports its own loopback\n"
                    "address and a DNS name. Every flag is also a config file key with '_'\n"
                    "for '-'. See loopholed(8).\n\n");
    for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
        char fn[64];
        flag_name(&opts[i], fn, sizeof(fn));
        const char *def = opt_default(&opts[i]);
        fprintf(stdout, "  --%-20s %s%s%s%s\n", fn, opts[i].help, def ? " (default " : "",
                def ? def : "", def ? ")" : "");
    }
    fprintf(stdout, "  --%-20s %s\n  --%-20s %s\n", "help", "show this help", "version",
            "show the version");
}

static int validate(config *c, char *err, size_t errlen)
{
    if (alloc_parse_range(c->pool, &c->pool_first, &c->pool_last) < 0) {
        snprintf(err, errlen,
                 "--pool: \"%s\" is not a range FIRST-LAST of addresses in 127.0.0.0/8", c->pool);
        return -EINVAL;
    }
    struct sockaddr_storage ss;
    if (dns_parse_listen(c->dns_listen, &ss) < 0) {
        snprintf(err, errlen, "--dns-listen: \"%s\" is not ADDR:PORT (e.g. 127.0.0.1:15353)",
                 c->dns_listen);
        return -EINVAL;
    }
    char dom[NAMES_NAME_MAX + 1];
    for (char *p = c->domain; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    size_t dl = strlen(c->domain);
    if (dl && c->domain[dl - 1] == '.')
        c->domain[dl - 1] = '\0';
    if (names_sanitize_name(c->domain, dom, sizeof(dom)) < 0 || strcmp(dom, c->domain) != 0) {
        snprintf(err, errlen, "--domain: \"%s\" is not a valid DNS name", c->domain);
        return -EINVAL;
    }
    if (strcmp(c->domain, "local") == 0 ||
        (dl > 6 && strcmp(c->domain + strlen(c->domain) - 6, ".local") == 0)) {
        snprintf(err, errlen, "--domain: \"%s\" is under .local, which belongs to mDNS", c->domain);
        return -EINVAL;
    }
    if (strcmp(c->resolver, "auto") == 0) {
        c->resolver_mode = CONFIG_RESOLVER_AUTO;
    } else if (strcmp(c->resolver, "off") == 0) {
        c->resolver_mode = CONFIG_RESOLVER_OFF;
    } else {
        snprintf(err, errlen, "--resolver: \"%s\" must be auto or off", c->resolver);
        return -EINVAL;
    }
    int am = alias_parse_mode(c->alias);
    if (am < 0) {
        snprintf(err, errlen, "--alias: \"%s\" must be auto, off or netlink", c->alias);
        return -EINVAL;
    }
    if (am == ALIAS_NETLINK && !platform_has_netlink()) {
        snprintf(err, errlen, "--alias: netlink exists only on Linux");
        return -EINVAL;
    }
    c->alias_mode = (alias_mode)am;
    if (strcmp(c->serve, "exposed") == 0) {
        c->serve_mode = CONFIG_SERVE_EXPOSED;
    } else if (strcmp(c->serve, "published") == 0) {
        c->serve_mode = CONFIG_SERVE_PUBLISHED;
    } else {
        snprintf(err, errlen, "--serve: \"%s\" must be exposed or published", c->serve);
        return -EINVAL;
    }
    if (strcmp(c->forward, "auto") == 0) {
        c->forward_mode = CONFIG_FORWARD_AUTO;
    } else if (strcmp(c->forward, "direct") == 0) {
        c->forward_mode = CONFIG_FORWARD_DIRECT;
    } else if (strcmp(c->forward, "mapped") == 0) {
        c->forward_mode = CONFIG_FORWARD_MAPPED;
    } else {
        snprintf(err, errlen, "--forward: \"%s\" must be auto, direct or mapped", c->forward);
        return -EINVAL;
    }
    if (strcmp(c->address_per, "container") == 0) {
        c->address_per_mode = CONFIG_ADDRESS_PER_CONTAINER;
    } else if (strcmp(c->address_per, "project") == 0) {
        c->address_per_mode = CONFIG_ADDRESS_PER_PROJECT;
    } else {
        snprintf(err, errlen, "--address-per: \"%s\" must be container or project", c->address_per);
        return -EINVAL;
    }
    if (strcmp(c->host_ports_mode, "auto") == 0) {
        c->host_ports = CONFIG_HOST_PORTS_AUTO;
    } else if (strcmp(c->host_ports_mode, "netns") == 0) {
        if (!platform_has_netns()) {
            snprintf(err, errlen,
                     "--host-ports-mode: netns exists only on Linux (use auto or sidecar)");
            return -EINVAL;
        }
        c->host_ports = CONFIG_HOST_PORTS_NETNS;
    } else if (strcmp(c->host_ports_mode, "sidecar") == 0) {
        c->host_ports = CONFIG_HOST_PORTS_SIDECAR;
    } else {
        snprintf(err, errlen, "--host-ports-mode: \"%s\" must be auto, netns or sidecar",
                 c->host_ports_mode);
        return -EINVAL;
    }
    if (c->sidecar_image[0] == '\0' || strlen(c->sidecar_image) > 255 ||
        strpbrk(c->sidecar_image, " \t\r\n\"\\") != NULL) {
        snprintf(err, errlen, "--sidecar-image: \"%.64s\" is not an image reference",
                 c->sidecar_image);
        return -EINVAL;
    }
    int lv = log_parse_level(c->log_level);
    if (lv < 0) {
        snprintf(err, errlen, "--log-level: \"%s\" must be error, warn, info or debug",
                 c->log_level);
        return -EINVAL;
    }
    c->level = (enum log_level)lv;
    if (c->docker_host && c->docker_host[0] != '/' && strncmp(c->docker_host, "unix://", 7) != 0) {
        snprintf(err, errlen,
                 "--docker-host: \"%s\" is not supported: loophole only talks to Docker over a "
                 "unix socket (unix:///path)",
                 c->docker_host);
        return -EINVAL;
    }
    if (c->control_socket[0] != '/' || c->state_dir[0] != '/') {
        snprintf(err, errlen, "--%s: must be an absolute path",
                 c->control_socket[0] != '/' ? "control-socket" : "state-dir");
        return -EINVAL;
    }
    return 0;
}

static int load(config *c, int argc, char **argv, char *err, size_t errlen)
{
    defaults(c);
    /* First pass: --help, --version and --config, and check every flag's
     * shape, so a typo is reported before any file is read. */
    const char *cfg_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            config_usage();
            return CONFIG_EXIT;
        }
        if (strcmp(a, "--version") == 0) {
            printf("loopholed %s\n", LOOPHOLE_VERSION);
            return CONFIG_EXIT;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument \"%s\" (see loopholed --help)", a);
            return -EINVAL;
        }
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (nl >= sizeof(name)) {
            snprintf(err, errlen, "unknown flag \"%s\" (see loopholed --help)", a);
            return -EINVAL;
        }
        memcpy(name, a + 2, nl);
        name[nl] = '\0';
        const opt *o = strchr(name, '_') ? NULL : find_opt(name);
        if (o == NULL) {
            snprintf(err, errlen, "unknown flag \"--%s\" (see loopholed --help)", name);
            return -EINVAL;
        }
        if (!eq && i + 1 >= argc) {
            snprintf(err, errlen, "--%s needs a value", name);
            return -EINVAL;
        }
        const char *val = eq ? eq + 1 : argv[++i];
        if (strcmp(o->name, "config_file") == 0)
            cfg_path = val;
    }
    const char *path = cfg_path ? cfg_path : DEFAULT_CONFIG;
    char *text = NULL, why[128];
    size_t len = 0;
    /* Symlinks are followed: configuration managers link files into /etc.
     * Non-blocking and regular files only, so a FIFO there fails the start
     * with a reason instead of hanging it. */
    int rc = fs_read_small(path, CONFIG_MAX_SIZE, 0, 0, &text, &len, why, sizeof(why));
    if (rc == -EFBIG) {
        snprintf(err, errlen, "config %s: larger than 1 MiB", path);
        return -EINVAL;
    }
    if (rc == 0) {
        char origin[PATH_MAX + 16];
        snprintf(origin, sizeof(origin), "config %s", path);
        rc = apply_json(c, text, len, origin, err, errlen);
        free(text);
        if (rc < 0)
            return rc;
        c->config_file = xstrdup(path);
    } else if (cfg_path != NULL || rc != -ENOENT) {
        snprintf(err, errlen, "--config: cannot read %s: %s", path, why);
        return -EINVAL;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i] + 2;
        const char *eq = strchr(a, '=');
        char name[64];
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        memcpy(name, a, nl);
        name[nl] = '\0';
        const char *val = eq ? eq + 1 : argv[++i];
        const opt *o = find_opt(name);
        if (strcmp(o->name, "config_file") == 0)
            continue;
        if ((rc = set_opt(c, o, val, NULL, err, errlen)) < 0)
            return rc;
    }
    return validate(c, err, errlen);
}

void config_free(config *c)
{
    for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
        if (opts[i].type == OPT_STR) {
            char **p = (char **)((char *)c + opts[i].off);
            free(*p);
            *p = NULL;
        }
}

/* The messages quote flags, keys and values as given: a line break or an
 * escape sequence in one must not break the one-line promise of config.h
 * (or forge a log line), so control bytes become '?'. */
static int one_line(int rc, char *err)
{
    if (rc < 0 && err)
        for (char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
    return rc;
}

int config_apply_json(config *c, const char *json, size_t len, const char *origin, char *err,
                      size_t errlen)
{
    return one_line(apply_json(c, json, len, origin, err, errlen), err);
}

int config_load(config *c, int argc, char **argv, char *err, size_t errlen)
{
    return one_line(load(c, argc, argv, err, errlen), err);
}
