/* loopholed: life. Parses the configuration, starts the control API, the DNS
 * server, the resolver entry and the Docker client on one libuv loop, wires
 * Docker's reports to the daemon's policy (daemon.c), and shuts everything
 * down again. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <yajl/yajl_gen.h>

#include "daemon.h"
#include "fdlimit.h"
#include "hostports.h"
#include "leases.h"
#include "reach.h"
#include "fsutil.h"
#include "log.h"
#include "platform.h"
#include "protocol.h"
#include "service.h"
#include "state.h"
#include "util.h"

/* ---- Docker callbacks ---- */

static void on_docker_connected(void *ud, const char *endpoint, const char *api)
{
    log_info("docker", "connected to %s (API %s)", endpoint, api);
    hp_engine_connected(ud);
}

static void on_docker_disconnected(void *ud, const char *reason)
{
    (void)ud;
    /* docker.c has logged the outage already; this is for the debug trail. */
    log_debug("docker", "engine unreachable: %s", reason);
}

/* ---- Resolver ---- */

static void on_reload_exit(uv_process_t *p, int64_t status, int sig)
{
    if (status != 0 || sig != 0)
        log_warn("resolver", "reload command exited with status %lld (signal %d)",
                 (long long)status, sig);
    uv_close((uv_handle_t *)p, (uv_close_cb)free);
}

static void reload_resolver(daemon_ctx *d)
{
    /* Under a test root the system is never touched. */
    if (d->cfg.resolver_root && d->cfg.resolver_root[0])
        return;
    const char *const *argv = resolver_reload_argv(d->rkind);
    if (argv == NULL)
        return;
    uv_process_t *p = xcalloc(1, sizeof(*p));
    uv_process_options_t o = {0};
    o.file = argv[0];
    o.args = (char **)argv;
    o.exit_cb = on_reload_exit;
    int rc = uv_spawn(d->loop, p, &o);
    if (rc < 0) {
        log_warn_err("resolver", rc, "cannot run %s", argv[0]);
        free(p);
    }
}

static void resolver_setup(daemon_ctx *d)
{
    if (!d->resolver_on) {
        log_info("resolver", "--resolver off: not touching the system resolver");
        return;
    }
    if (d->rkind == RESOLVER_NONE) {
        log_warn("resolver",
                 "neither systemd-resolved nor NetworkManager's dnsmasq runs here: "
                 "*.%s resolves only by asking %s:%u directly (dig @%s -p %u)",
                 d->cfg.domain, d->rcfg.dns_ip, d->rcfg.dns_port, d->rcfg.dns_ip, d->rcfg.dns_port);
        return;
    }
    char path[1024] = "";
    resolver_path(&d->rcfg, d->rkind, path, sizeof(path));
    if (d->resolver_uninstalled) {
        log_info("resolver", "%s was uninstalled by request; leaving it out", path);
        return;
    }
    bool changed = false;
    int rc = resolver_install(&d->rcfg, d->rkind, &changed);
    if (rc < 0) {
        log_error_err("resolver", rc, "cannot write %s", path);
        return;
    }
    log_info("resolver", "%s %s", path, changed ? "installed" : "already correct");
    if (changed)
        reload_resolver(d);
}

static void resolver_teardown(daemon_ctx *d)
{
    if (!d->resolver_on || d->rkind == RESOLVER_NONE)
        return;
    bool changed = false;
    int rc = resolver_uninstall(&d->rcfg, d->rkind, &changed);
    char path[1024] = "";
    resolver_path(&d->rcfg, d->rkind, path, sizeof(path));
    if (rc < 0)
        log_warn_err("resolver", rc, "cannot remove %s", path);
    else if (changed) {
        log_info("resolver", "removed %s", path);
        reload_resolver(d);
    }
}

/* ---- Control API ---- */

static void prov_status(void *ud, yajl_gen g)
{
    view_status(ud, g);
}

static void prov_containers(void *ud, yajl_gen g)
{
    view_containers(ud, g);
}

static int prov_container(void *ud, const char *key, yajl_gen g)
{
    daemon_ctx *d = ud;
    reg_entry *e = reg_find(&d->reg, key);
    if (e == NULL)
        return -ENOENT;
    view_container(d, e, g);
    return 0;
}

static int prov_resolver(void *ud, bool install, char *err, size_t errlen)
{
    daemon_ctx *d = ud;
    if (!d->resolver_on) {
        snprintf(err, errlen,
                 "the daemon runs with --resolver off, so it never touches the "
                 "system resolver");
        return -ENOTSUP;
    }
    if (d->rkind == RESOLVER_NONE) {
        snprintf(err, errlen,
                 "this system runs neither systemd-resolved nor NetworkManager's dnsmasq, so "
                 "there is no resolver entry to %s",
                 install ? "install" : "remove");
        return -ENOTSUP;
    }
    char path[1024] = "";
    resolver_path(&d->rcfg, d->rkind, path, sizeof(path));
    bool changed = false;
    int rc = install ? resolver_install(&d->rcfg, d->rkind, &changed)
                     : resolver_uninstall(&d->rcfg, d->rkind, &changed);
    if (rc < 0) {
        snprintf(err, errlen, "cannot %s %s: %s", install ? "write" : "remove", path, err_str(rc));
        return rc;
    }
    /* Remembered, so a restart does not undo what the person asked for. */
    d->resolver_uninstalled = !install;
    daemon_save_state(d);
    log_info("resolver", "%s %s on request", path, install ? "installed" : "removed");
    if (changed)
        reload_resolver(d);
    return 0;
}

static void publish_event(void *ud, const char *type, const char *json)
{
    daemon_ctx *d = ud;
    if (d->control)
        control_publish(d->control, type, json);
}

/* ---- Life ---- */

static void on_reprobe(uv_timer_t *t)
{
    daemon_reprobe(t->data);
}

static void close_docker(void *arg)
{
    daemon_ctx *d = arg;
    if (d->docker) {
        docker_client_close(d->docker, NULL, NULL);
        d->docker = NULL;
    }
}

/* Closes the control server, the listeners, the relay sidecars, the Docker
 * client and the DNS server (whichever exist); shared by shutdown and a
 * failed start. */
static void close_services(daemon_ctx *d)
{
    if (d->control) {
        control_close(d->control, NULL, NULL);
        d->control = NULL;
    }
    if (d->ports)
        ports_close_all(d->ports);
    if (d->reach) {
        reach_close(d->reach);
        d->reach = NULL;
        uv_close((uv_handle_t *)&d->reprobe, NULL);
    }
    /* The relay sidecars are removed through the Docker client, which
     * closes after them. */
    hp_stop(d, close_docker, d);
    if (d->dns) {
        dns_server_close(d->dns, NULL, NULL);
        d->dns = NULL;
    }
}

static void shutdown_daemon(daemon_ctx *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    service_notify_stopping();
    log_info("loopholed", "shutting down");
    close_services(d);
    /* The aliases of named leases and of containers bound to their own
     * address stay, so their holders keep working across a restart (a
     * launchctl kickstart); only lease rm removes a lease's. */
    size_t nkeep = 0;
    uint32_t *keep = reg_kept_addresses(&d->reg, &nkeep);
    alias_set_sync(&d->aliases, keep, nkeep);
    if (d->aliases.n)
        log_info("alias", "leaving %zu loopback aliases of leases and bound containers in place",
                 d->aliases.n);
    free(keep);
    resolver_teardown(d);
    daemon_save_state(d);
    uv_signal_t *sigs[] = {&d->sigterm, &d->sigint, &d->sighup};
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
        if (uv_is_active((uv_handle_t *)sigs[i]))
            uv_close((uv_handle_t *)sigs[i], NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    daemon_ctx *d = h->data;
    if (signum == SIGHUP) {
        log_info("loopholed", "SIGHUP: nothing to reload; restart to apply config changes");
        return;
    }
    shutdown_daemon(d);
}

/* launchd's 256 descriptors (systemd's 1024) last for about a hundred
 * proxied connections: ask for the hard limit, and say once what we got. */
static uint64_t raise_fd_limit(void)
{
    uint64_t before = 0, after = 0;
    int rc = fdlimit_raise(&before, &after);
    if (rc < 0)
        log_warn_err("loopholed", rc, "cannot raise the descriptor limit above %llu",
                     (unsigned long long)before);
    else if (after == FDLIMIT_INFINITY)
        log_info("loopholed", "descriptor limit: unlimited");
    else if (after != before)
        log_info("loopholed", "descriptor limit raised from %llu to %llu",
                 (unsigned long long)before, (unsigned long long)after);
    else
        log_info("loopholed", "descriptor limit: %llu", (unsigned long long)after);
    return rc < 0 ? before : after;
}

/* The proxies' caps: what --max-conns, --max-conns-per-port and
 * --udp-max-sessions say, and for "auto" what the descriptor limit allows
 * (proxy_caps_derive), with a reserve for the daemon's own work. */
static void set_proxy_caps(daemon_ctx *d, uint64_t nofile)
{
    proxy_caps_derive(nofile == FDLIMIT_INFINITY ? 0 : nofile, &d->caps);
    d->limits = d->caps.limits;
    if (d->cfg.max_conns != CONFIG_AUTO)
        d->limits.max_conns = d->cfg.max_conns;
    d->popts.max_conns = d->cfg.max_conns_per_port == CONFIG_AUTO ? d->caps.max_conns_per_port
                                                                  : d->cfg.max_conns_per_port;
    d->popts.udp_max_sessions =
        d->cfg.udp_max_sessions == CONFIG_AUTO ? d->caps.udp_max_sessions : d->cfg.udp_max_sessions;
    d->popts.tcp_idle_s = d->cfg.tcp_idle_s;
    proxy_set_limits(&d->limits);
    /* 0 is "no cap" for these. */
    log_info("loopholed",
             "proxy caps: %llu connections in all, %u a port, %u UDP sessions a port; "
             "%llu descriptors for proxies, %llu kept for the daemon (0: no cap)",
             (unsigned long long)d->limits.max_conns, d->popts.max_conns, d->popts.udp_max_sessions,
             (unsigned long long)d->limits.fd_budget, (unsigned long long)d->caps.reserve);
}

/* One daemon per state directory: the lock is taken before anything else,
 * so a second daemon stops before it touches the first one's control
 * socket, aliases, resolver entry or state. It also tells a dead daemon's
 * socket file from a live one's, which a refused connect cannot do on macOS
 * (a full listen backlog refuses too). The kernel drops the lock however
 * the daemon ends, SIGKILL included. The file holds the pid, for the
 * message a second daemon prints. */
static int lock_state_dir(daemon_ctx *d)
{
    const char *dir = d->cfg.state_dir;
    int rc = fs_mkdir_p(dir, 0755);
    if (rc < 0) {
        log_error_err("loopholed", rc, "cannot create the state directory %s", dir);
        return rc;
    }
    /* The leases, the lock and the instance id live here: a directory
     * another user may write would let them rewrite what root reads. */
    char why[PATH_MAX + 200];
    rc = fs_check_dir(dir, "state directory", geteuid(), false, why, sizeof(why));
    if (rc < 0) {
        log_error("loopholed", "%s: not starting", why);
        return rc;
    }
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, DAEMON_LOCK_FILE) >= (int)sizeof(path)) {
        log_error("loopholed", "the state directory path %s is too long", dir);
        return -ENAMETOOLONG;
    }
    rc = fs_lock(path, &d->lock_fd);
    if (rc == -EWOULDBLOCK) {
        char *pid = NULL;
        size_t n = 0;
        char who[48] = "";
        if (fs_read_small(path, 32, FS_NOFOLLOW, 0, &pid, &n, NULL, 0) == 0) {
            long v = strtol(pid, NULL, 10);
            if (v > 0)
                snprintf(who, sizeof(who), " (pid %ld)", v);
        }
        free(pid);
        log_error("loopholed",
                  "another loopholed%s is running with the state directory %s (it holds %s): "
                  "not starting",
                  who, dir, path);
        return rc;
    }
    if (rc < 0) {
        log_error_err("loopholed", rc, "cannot lock %s", path);
        return rc;
    }
    /* Written over the old pid, then cut to length: a second daemon reading
     * meanwhile sees one pid or the other, never an empty file. */
    char line[32];
    int len = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
    if (pwrite(d->lock_fd, line, (size_t)len, 0) != len || ftruncate(d->lock_fd, len) < 0)
        log_debug("loopholed", "cannot write the pid to %s (the lock is held anyway)", path);
    return 0;
}

/* A daemon binding the control socket itself also locks "<socket>.lock"
 * beside it: two daemons with different state directories but one socket
 * path must not take each other's live socket for a stale one (on macOS a
 * full listen backlog refuses a connect). Returns whether a stale socket may
 * be replaced; -EWOULDBLOCK when another daemon holds the socket. */
static int lock_socket(daemon_ctx *d, bool *replace)
{
    *replace = false;
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s.lock", d->cfg.control_socket) >= (int)sizeof(path))
        return 0;
    int rc = fs_lock(path, &d->sock_lock_fd);
    if (rc == -EWOULDBLOCK) {
        log_error("control",
                  "another loopholed is serving the control socket %s (it holds %s): "
                  "not starting",
                  d->cfg.control_socket, path);
        return rc;
    }
    if (rc < 0) {
        /* Without the lock a live daemon's socket cannot be told from a
         * dead one's: a socket file there is then left alone. */
        log_warn_err("control", rc, "cannot lock %s; a stale socket there will not be replaced",
                     path);
        return 0;
    }
    *replace = true;
    return 0;
}

static int start(daemon_ctx *d)
{
    int rc;
    d->alias = d->cfg.alias_mode;
    alias_set_init(&d->aliases, d->alias);
    d->resolver_on = d->cfg.resolver_mode == CONFIG_RESOLVER_AUTO;

    if ((rc = lock_state_dir(d)) < 0)
        return rc;

    /* Then the control socket: a second daemon with another state directory
     * but this socket must stop here, before it touches the first one's
     * aliases or resolver entry. A stale socket file is replaced only while
     * we hold the socket's own lock (lock_socket). */
    int cfd = -1;
    rc = service_listen_fd(SERVICE_CONTROL_SOCKET_NAME, &cfd);
    if (rc < 0 && rc != -ENOENT) {
        log_error_err("service", rc,
                      "the control socket passed by the service manager is unusable");
        return rc;
    }
    bool replace = false;
    if (cfd >= 0)
        log_info("control", "using the control socket passed by the service manager");
    else if ((rc = lock_socket(d, &replace)) < 0)
        return rc;
    control_options copts = {.path = d->cfg.control_socket,
                             .inherited_fd = cfd,
                             .admin_group = d->cfg.admin_group,
                             .max_clients = CONTROL_DEFAULT_MAX_CLIENTS,
                             .idle_timeout_ms = CONTROL_DEFAULT_IDLE_MS,
                             .replace_stale = replace};
    control_provider prov = {d,
                             prov_status,
                             prov_containers,
                             prov_container,
                             prov_resolver,
                             hp_prov_list,
                             hp_prov_add,
                             hp_prov_remove,
                             hp_prov_docker_socket,
                             leases_prov_list,
                             leases_prov_get,
                             leases_prov_add,
                             leases_prov_remove};
    rc = control_start(d->loop, &copts, &prov, &d->control);
    if (rc < 0) {
        /* control_start says nothing on failure: this is the one line. */
        if (cfd >= 0)
            log_error_err("control", rc, "cannot listen on the inherited control socket");
        else if (rc == -EADDRINUSE)
            log_error("control", "another loopholed is already running on %s",
                      d->cfg.control_socket);
        else if (rc == -EEXIST)
            log_error("control", "%s exists and is not a socket: not touching it",
                      d->cfg.control_socket);
        else
            log_error_err("control", rc, "cannot listen on %s", d->cfg.control_socket);
        return rc;
    }

    d->owns_system = true;
    proxy_options_default(&d->popts);
    d->popts.dial_timeout_ms = d->cfg.dial_timeout_ms;
    d->popts.udp_idle_s = d->cfg.udp_idle_s;
    set_proxy_caps(d, d->nofile);
    ports_backend be;
    ports_proxy_backend(d->loop, &d->popts, &be);
    daemon_ports_init(d, &be);

    reg_init(&d->reg, d->cfg.domain, d->cfg.pool_first, d->cfg.pool_last);
    /* Addresses other programs own (systemd-resolved's stub listeners). */
    const uint32_t *reserved;
    size_t nreserved = platform_reserved_addresses(&reserved);
    for (size_t i = 0; i < nreserved; i++)
        alloc_reserve(&d->reg.pool, reserved[i]);
    daemon_load_state(d);

    struct sockaddr_storage ss;
    dns_parse_listen(d->cfg.dns_listen, &ss);
    d->zone = dns_zone_new(d->cfg.domain, d->cfg.dns_ttl);
    if (d->zone == NULL) {
        log_error("dns", "cannot create the zone for %s", d->cfg.domain);
        return -EINVAL;
    }
    rc = dns_server_start(d->loop, (struct sockaddr *)&ss, d->zone, &d->dns);
    if (rc < 0) {
        log_error("dns", "cannot listen on %s: %s%s", d->cfg.dns_listen, err_str(rc),
                  rc == UV_EADDRINUSE ? " (another loopholed or DNS server holds it?)" : "");
        return rc;
    }
    log_info("dns", "serving %s on %s (udp+tcp)", d->cfg.domain, d->cfg.dns_listen);

    /* The resolver entry points at the DNS listen address. */
    if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, d->dns_ip, sizeof(d->dns_ip));
    else
        uv_ip6_name((struct sockaddr_in6 *)&ss, d->dns_ip, sizeof(d->dns_ip));
    d->rcfg.root = d->cfg.resolver_root ? d->cfg.resolver_root : "";
    d->rcfg.domain = d->cfg.domain;
    d->rcfg.dns_ip = d->dns_ip;
    d->rcfg.dns_port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                               : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    d->rkind = resolver_detect(&d->rcfg);
    resolver_setup(d);

    docker_options dopts = {d->cfg.docker_host, d->cfg.user};
    docker_callbacks cbs = {d,
                            on_docker_connected,
                            on_docker_disconnected,
                            daemon_docker_sync,
                            daemon_docker_update,
                            daemon_docker_gone};
    rc = docker_client_new(d->loop, &dopts, &cbs, &d->docker);
    if (rc < 0) {
        log_error_err("docker", rc, "cannot set up the Docker client");
        return rc;
    }
    rc = reach_new(d->loop, 0, daemon_reach_changed, d, &d->reach);
    if (rc < 0) {
        log_error_err("reach", rc, "cannot set up the reachability prober");
        return rc;
    }
    uv_timer_init(d->loop, &d->reprobe);
    d->reprobe.data = d;
    uv_timer_start(&d->reprobe, on_reprobe, DAEMON_REPROBE_MS, DAEMON_REPROBE_MS);
    d->reg.serve_exposed = d->cfg.serve_mode == CONFIG_SERVE_EXPOSED;
    d->reg.forward = d->cfg.forward_mode == CONFIG_FORWARD_DIRECT   ? REG_FORWARD_DIRECT
                     : d->cfg.forward_mode == CONFIG_FORWARD_MAPPED ? REG_FORWARD_MAPPED
                                                                    : REG_FORWARD_AUTO;
    d->reg.address_per = d->cfg.address_per_mode == CONFIG_ADDRESS_PER_PROJECT
                             ? REG_ADDRESS_PER_PROJECT
                             : REG_ADDRESS_PER_CONTAINER;
    hp_start(d);
    /* Named leases are served (alias, name) before Docker answers, and
     * even when it never does. */
    daemon_apply(d);
    docker_client_start(d->docker);

    uv_signal_t *sigs[] = {&d->sigterm, &d->sigint, &d->sighup};
    int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
        uv_signal_init(d->loop, sigs[i]);
        sigs[i]->data = d;
        uv_signal_start(sigs[i], on_signal, nums[i]);
    }
    daemon_save_state(d);
    rc = service_notify_ready();
    if (rc < 0)
        log_warn_err("service", rc, "cannot tell the service manager we are ready");
    log_info("loopholed", "%s ready: pool %s, aliases %s, state in %s", LOOPHOLE_VERSION,
             d->cfg.pool, alias_mode_name(d->alias), d->cfg.state_dir);
    return 0;
}

int main(int argc, char **argv)
{
    daemon_ctx d;
    memset(&d, 0, sizeof(d));
    d.lock_fd = -1;
    d.sock_lock_fd = -1;
    char err[1024] = "";
    int rc = config_load(&d.cfg, argc, argv, err, sizeof(err));
    if (rc == CONFIG_EXIT) {
        config_free(&d.cfg);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "loopholed: %s\n", err);
        config_free(&d.cfg);
        return 2;
    }
    log_set_level(d.cfg.level);
    signal(SIGPIPE, SIG_IGN);
    d.nofile = raise_fd_limit();
    d.started_ms = now_ms();
    d.publish = publish_event;
    d.publish_ud = &d;
    d.loop = uv_default_loop();

    rc = start(&d);
    if (rc < 0) {
        /* Undo what start() did, without touching what belongs to another
         * daemon (start stops before anything shared when the control socket
         * is taken). */
        d.exit_code = 1;
        close_services(&d);
        if (d.owns_system)
            resolver_teardown(&d);
        d.stopping = true;
    }
    uv_run(d.loop, UV_RUN_DEFAULT);

    int lc = uv_loop_close(d.loop);
    if (lc != 0) {
        log_error_err("loopholed", lc, "event loop still had open handles at exit");
        d.exit_code = d.exit_code ? d.exit_code : 1;
    }
    if (d.zone)
        dns_zone_free(d.zone);
    ports_free(d.ports);
    hp_free(&d);
    reg_free(&d.reg);
    view_free(&d);
    alias_set_free(&d.aliases);
    free(d.pending_aliases);
    free(d.last_state);
    /* Released last, after the state was saved and the socket removed. */
    if (d.lock_fd >= 0)
        close(d.lock_fd);
    if (d.sock_lock_fd >= 0)
        close(d.sock_lock_fd);
    config_free(&d.cfg);
    if (d.exit_code == 0)
        log_info("loopholed", "stopped cleanly");
    return d.exit_code;
}
