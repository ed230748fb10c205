/* loophole doctor: a series of checks, each a pass/fail line with a fix.
 * Later checks use the daemon's status and container list, so when the
 * daemon is unreachable the rest is skipped. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "log.h"
#include "protocol.h"
#include "ls.h"
#include "output.h"
#include "util.h"

enum result {
    CHK_OK = DOCTOR_OK,
    CHK_WARN = DOCTOR_WARN,
    CHK_FAIL = DOCTOR_FAIL,
    CHK_SKIP = DOCTOR_SKIP
};

typedef struct doctor {
    bool color;
    int failures;
} doctor;

static void report(doctor *d, enum result r, const char *what, const char *detail, const char *fix)
{
    static const char *const label[] = {"ok", "warn", "FAIL", "skip"};
    static const char *const style[] = {OUT_GREEN, OUT_YELLOW, OUT_RED, OUT_DIM};
    if (d->color)
        printf("%s%-5s%s %s", style[r], label[r], OUT_RESET, what);
    else
        printf("%-5s %s", label[r], what);
    if (detail && detail[0])
        printf(": %s", detail);
    printf("\n");
    if (fix && fix[0] && (r == CHK_FAIL || r == CHK_WARN))
        printf("      fix: %s\n", fix);
    if (r == CHK_FAIL)
        d->failures++;
}

/* Runs argv (argv[0] an absolute path: no PATH search, no shell, a fixed
 * environment) with stdout captured into out (stderr discarded), at most
 * timeout_ms. Returns the exit status, 127 when it cannot be run, or -errno. */
static int run_capture(char *const argv[], buf *out, int timeout_ms)
{
    int p[2];
    if (pipe(p) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return -e;
    }
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        int dn = open("/dev/null", O_WRONLY);
        if (dn >= 0)
            dup2(dn, STDERR_FILENO);
        close(p[0]);
        close(p[1]);
        char *const env[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", NULL};
        execve(argv[0], argv, env);
        _exit(127);
    }
    close(p[1]);
    char chunk[4096];
    for (;;) {
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0) {
            kill(pid, SIGKILL);
            break;
        }
        ssize_t n = read(p[0], chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (out->len < 1024 * 1024)
            buf_append(out, chunk, (size_t)n);
    }
    close(p[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static const char *jstr(yajl_val root, const char *a, const char *b)
{
    return json_str(root, a, b, NULL);
}

static int jbool(yajl_val root, const char *a, const char *b)
{
    bool v;
    return json_bool(root, &v, a, b, NULL) == 0 ? v : -1;
}

static void check_system_resolver(doctor *d, const char *domain)
{
    char what[300];
    snprintf(what, sizeof(what), "the system resolver routes %s", domain);
    char needle[300];
    buf out = {0};
#ifdef __APPLE__
    char *const argv[] = {"/usr/sbin/scutil", "--dns", NULL};
    const char *tool = "scutil --dns";
    snprintf(needle, sizeof(needle), ": %s\n", domain);
    char fix[400];
    snprintf(fix, sizeof(fix), "check /etc/resolver/%s (sudo loophole resolve-install)", domain);
#else
    char *const argv[] = {"/usr/bin/resolvectl", "status", NULL};
    const char *tool = "resolvectl status";
    snprintf(needle, sizeof(needle), "~%s", domain);
    const char *fix = "sudo loophole resolve-install, and make sure systemd-resolved runs "
                      "(systemctl status systemd-resolved)";
#endif
    int rc = run_capture(argv, &out, 5000);
    char detail[400];
    if (rc == 127 || rc < 0) {
        snprintf(detail, sizeof(detail), "%s is not available here", tool);
        report(d, CHK_WARN, what, detail, fix);
    } else if (rc != 0) {
        snprintf(detail, sizeof(detail), "%s failed (exit status %d)", tool, rc);
        report(d, CHK_WARN, what, detail, fix);
    } else if (out.data && strstr(out.data, needle)) {
        snprintf(detail, sizeof(detail), "listed by %s", tool);
        report(d, CHK_OK, what, detail, NULL);
    } else {
        snprintf(detail, sizeof(detail), "%s does not list it", tool);
        report(d, CHK_FAIL, what, detail, fix);
    }
    buf_free(&out);
}

static void check_getaddrinfo(doctor *d, const ls_list *l)
{
    const ls_entry *e = NULL;
    for (size_t i = 0; i < l->n && !e; i++)
        if (l->v[i].name && l->v[i].ip && ls_visible(&l->v[i]))
            e = &l->v[i];
    if (!e) {
        report(d, CHK_SKIP, "a container name resolves", "no container with an address to try",
               NULL);
        return;
    }
    char what[400], detail[400];
    snprintf(what, sizeof(what), "%s resolves through the system resolver", e->name);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(e->name, NULL, &hints, &res);
    if (rc != 0) {
        snprintf(detail, sizeof(detail), "%s", gai_strerror(rc));
        report(d, CHK_FAIL, what, detail, "fix the resolver checks above first");
        return;
    }
    char got[INET_ADDRSTRLEN] = "";
    bool match = false;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)a->ai_addr;
        inet_ntop(AF_INET, &sin->sin_addr, got, sizeof(got));
        if (strcmp(got, e->ip) == 0)
            match = true;
    }
    freeaddrinfo(res);
    if (match) {
        snprintf(detail, sizeof(detail), "%s", e->ip);
        report(d, CHK_OK, what, detail, NULL);
    } else {
        snprintf(detail, sizeof(detail), "got %s, expected %s", got, e->ip);
        report(d, CHK_FAIL, what, detail,
               "another resolver answers for the domain: check the resolver entry");
    }
}

bool doctor_if_has_addr(const struct ifaddrs *list, const char *ifname, const char *ip)
{
    struct in_addr want;
    if (ip == NULL || ifname == NULL || inet_pton(AF_INET, ip, &want) != 1)
        return false;
    for (const struct ifaddrs *a = list; a != NULL; a = a->ifa_next) {
        if (a->ifa_addr == NULL || a->ifa_addr->sa_family != AF_INET || a->ifa_name == NULL ||
            strcmp(a->ifa_name, ifname) != 0)
            continue;
        struct sockaddr_in sin;
        memcpy(&sin, a->ifa_addr, sizeof(sin));
        if (sin.sin_addr.s_addr == want.s_addr)
            return true;
    }
    return false;
}

#ifdef __APPLE__
/* The daemon's aliases are on lo0 (alias_darwin.c): the same address on
 * another interface (a VPN's utun, a bridge) does not route to it. */
static void check_aliases(doctor *d, const ls_list *l)
{
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) < 0) {
        report(d, CHK_WARN, "loopback aliases present", err_str(-errno), NULL);
        return;
    }
    int missing = 0, total = 0;
    for (size_t i = 0; i < l->n; i++) {
        const char *ip = l->v[i].ip;
        if (!ip || !ls_visible(&l->v[i]))
            continue;
        total++;
        if (!doctor_if_has_addr(ifs, "lo0", ip)) {
            char what[128];
            snprintf(what, sizeof(what), "alias %s on lo0", ip);
            report(d, CHK_FAIL, what, "missing",
                   "restart the daemon: sudo brew services restart loophole");
            missing++;
        }
    }
    freeifaddrs(ifs);
    if (!missing) {
        char detail[64];
        snprintf(detail, sizeof(detail), "%d", total);
        report(d, total ? CHK_OK : CHK_SKIP, "loopback aliases present", detail, NULL);
    }
}
#endif

enum doctor_result doctor_host_ports(yajl_val st, bool linux_host, char *detail, size_t dcap,
                                     char *fix, size_t fcap)
{
    fix[0] = '\0';
    yajl_val hp = json_member(st, "host_ports");
    if (!YAJL_IS_OBJECT(hp)) {
        snprintf(detail, dcap, "the daemon does not report host ports (an older version?)");
        return DOCTOR_SKIP;
    }
    const char *mode = json_str(hp, "mode", NULL);
    const char *image = json_str(hp, "sidecar_image", NULL);
    if (!image)
        image = "the relay image";
    if (!linux_host) {
        /* Docker runs in a VM here: its namespaces are not the daemon's to
         * enter, so every host port goes through a sidecar. */
        snprintf(detail, dcap, "macOS uses relay sidecars (%s)", image);
        return DOCTOR_OK;
    }
    if (mode && strcmp(mode, "sidecar") == 0) {
        snprintf(detail, dcap, "relay sidecars (%s), as --host-ports-mode sidecar asks", image);
        return DOCTOR_OK;
    }
    bool avail;
    if (json_bool(hp, &avail, "netns", "available", NULL) < 0) {
        snprintf(detail, dcap, "the daemon does not say whether it can enter containers");
        return DOCTOR_SKIP;
    }
    if (avail) {
        snprintf(detail, dcap, "listeners inside the containers' network namespaces");
        return DOCTOR_OK;
    }
    const char *reason = json_str(hp, "netns", "reason", NULL);
    bool forced = mode && strcmp(mode, "netns") == 0;
    if (forced)
        snprintf(detail, dcap,
                 "the daemon cannot enter containers (%s) and --host-ports-mode "
                 "netns leaves no other way",
                 reason ? reason : "no reason given");
    else
        snprintf(detail, dcap,
                 "the daemon cannot enter containers (%s), so it falls back to "
                 "relay sidecars (%s)",
                 reason ? reason : "no reason given", image);
    snprintf(fix, fcap,
             "when Docker runs natively here, run the daemon with RestrictNamespaces=net and "
             "CAP_SYS_ADMIN CAP_SYS_PTRACE in "
             "CapabilityBoundingSet= (the packaged loophole.service has them), or use "
             "--host-ports-mode sidecar");
    return forced ? DOCTOR_FAIL : DOCTOR_WARN;
}

/* A non-blocking connect bounded by timeout_ms. Returns 0 or -errno. */
static int try_connect(const char *ip, long port, int timeout_ms)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
        return -EINVAL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    int rc = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
        } else {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int pr = poll(&pfd, 1, timeout_ms);
            if (pr == 0) {
                rc = -ETIMEDOUT;
            } else if (pr < 0) {
                rc = -errno;
            } else {
                int err = 0;
                socklen_t len = sizeof(err);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                rc = -err;
            }
        }
    }
    close(fd);
    return rc;
}

static void check_listeners(doctor *d, const ls_list *l)
{
    int total = 0, bad = 0;
    for (size_t i = 0; i < l->n; i++) {
        const ls_entry *e = &l->v[i];
        if (!e->ip || e->skipped)
            continue;
        for (size_t j = 0; j < e->nports; j++) {
            const ls_port *p = &e->ports[j];
            /* Both forward through a listener of ours on the address. */
            bool ours = strcmp(p->mode, "direct") == 0 || strcmp(p->mode, "mapped") == 0;
            if (!ours || strcmp(p->proto, "tcp") != 0)
                continue;
            total++;
            int rc = try_connect(e->ip, p->port, 2000);
            if (rc < 0) {
                char what[400];
                snprintf(what, sizeof(what), "listener %s:%ld (%s)", e->ip, p->port,
                         e->name        ? e->name
                         : e->container ? e->container
                                        : "?");
                report(d, CHK_FAIL, what, err_str(rc),
                       "see the daemon's log; another program may hold the address");
                bad++;
            }
        }
    }
    char detail[64];
    snprintf(detail, sizeof(detail), "%d of %d TCP listeners", total - bad, total);
    if (total == 0)
        report(d, CHK_SKIP, "listeners accepting", "no proxied TCP ports", NULL);
    else if (bad == 0)
        report(d, CHK_OK, "listeners accepting", detail, NULL);
}

static void port_text(const ls_port *p, char *dst, size_t cap)
{
    if (strcmp(p->proto, "tcp") == 0)
        snprintf(dst, cap, "%ld", p->port);
    else
        snprintf(dst, cap, "%ld/%s", p->port, p->proto);
}

enum doctor_result doctor_unreachable(const ls_entry *e, const char *forward, bool macos,
                                      char *what, size_t wcap, char *detail, size_t dcap, char *fix,
                                      size_t fcap)
{
    what[0] = detail[0] = fix[0] = '\0';
    buf ports = {0};
    const ls_port *first = NULL;
    const char *problem = NULL, *network = NULL;
    size_t n = 0;
    for (size_t i = 0; i < e->nports; i++) {
        const ls_port *p = &e->ports[i];
        if (strcmp(p->mode, "unreachable") != 0)
            continue;
        char pt[32];
        port_text(p, pt, sizeof(pt));
        buf_appendf(&ports, "%s%s", ports.len ? ", " : "", pt);
        if (!first)
            first = p;
        if (!problem)
            problem = p->problem;
        if (!network)
            network = p->network;
        n++;
    }
    if (!first) {
        buf_free(&ports);
        return DOCTOR_OK;
    }
    const char *who = e->name ? e->name : e->container ? e->container : "?";
    snprintf(what, wcap, "%s reachable from the daemon", who);
    char net[160] = "";
    if (network)
        snprintf(net, sizeof(net), " on network %s", network);
    if (problem)
        snprintf(detail, dcap, "port%s %s%s: %s", n == 1 ? "" : "s", ports.data, net, problem);
    else
        snprintf(detail, dcap,
                 "port%s %s%s: the container's address does not answer and %s not published",
                 n == 1 ? "" : "s", ports.data, net, n == 1 ? "the port is" : "the ports are");
    buf_free(&ports);

    char pt[32];
    port_text(first, pt, sizeof(pt));
    char publish[160];
    snprintf(publish, sizeof(publish),
             "publish the port (docker run -p %s, or \"ports:\" in compose) so it goes through "
             "Docker's mapped port",
             pt);
    if (forward && strcmp(forward, "direct") == 0)
        snprintf(fix, fcap,
                 "the daemon runs with --forward direct, which never uses mapped ports: run it "
                 "with --forward auto and %s, or make the container's network reachable from "
                 "the host",
                 publish);
    else if (macos)
        /* Docker Desktop and Colima keep container networks inside their VM. */
        snprintf(fix, fcap,
                 "%s, or install an L3 route into Docker's VM such as docker-mac-net-connect "
                 "(OrbStack routes container networks by itself)",
                 publish);
    else
        snprintf(fix, fcap,
                 "%s, or make the container's network reachable from the daemon (a rootless "
                 "engine or Docker Desktop keeps it in a namespace or VM; a firewall rule may "
                 "reject the daemon's connections)",
                 publish);
    return DOCTOR_WARN;
}

/* One warning per container with an unreachable port, or one ok line that
 * counts where the served ports go. */
static void check_unreachable(doctor *d, const ls_list *l, const char *forward, bool macos)
{
    size_t warned = 0, direct = 0, mapped = 0, shared = 0, bound = 0;
    for (size_t i = 0; i < l->n; i++) {
        const ls_entry *e = &l->v[i];
        if (e->skipped)
            continue;
        for (size_t j = 0; j < e->nports; j++) {
            const char *m = e->ports[j].mode;
            direct += strcmp(m, "direct") == 0;
            mapped += strcmp(m, "mapped") == 0;
            shared += strcmp(m, "shared") == 0;
            bound += strcmp(m, "bound") == 0;
        }
        char what[400], detail[1200], fix[600];
        if (doctor_unreachable(e, forward, macos, what, sizeof(what), detail, sizeof(detail), fix,
                               sizeof(fix)) == DOCTOR_WARN) {
            report(d, CHK_WARN, what, detail, fix);
            warned++;
        }
    }
    if (warned)
        return;
    char detail[160];
    snprintf(detail, sizeof(detail), "%zu direct, %zu mapped, %zu shared", direct, mapped, shared);
    if (bound)
        snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail), ", %zu bound by Docker",
                 bound);
    report(d, CHK_OK, "container ports reachable", detail, NULL);
}

/* ---- Docker could not bind a loopback address (issue 14) ---- */

/* A dotted quad at p, not part of a longer run of digits and dots: 0 with
 * its four octets, else -EINVAL. */
static int quad_at(const char *p, unsigned o[4])
{
    for (int i = 0; i < 4; i++) {
        if (i > 0 && *p++ != '.')
            return -EINVAL;
        unsigned v = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 4) {
            v = v * 10 + (unsigned)(*p++ - '0');
            digits++;
        }
        if (digits == 0 || digits > 3 || v > 255)
            return -EINVAL;
        o[i] = v;
    }
    return (*p >= '0' && *p <= '9') || *p == '.' ? -EINVAL : 0;
}

int doctor_bind_error(const char *docker_error, char *addr_out, size_t cap)
{
    /* EADDRNOTAVAIL as Go spells it: "can't assign requested address" on
     * macOS (Docker Desktop binds there), "cannot assign requested address"
     * on Linux (moby's port mapper in a VM); with a capital where a tool
     * prints strerror(3). */
    const char *s = docker_error;
    if (!s || (!strstr(s, "an't assign requested address") &&
               !strstr(s, "annot assign requested address")))
        return 0;
    /* The address comes before the error in every form ("listen tcp4
     * 127.0.0.16:5432: bind: ...", "exposing port TCP 127.0.0.16:5432 ->
     * 0.0.0.0:0: ...", "failed to bind host port 127.0.0.16:5432/tcp: ...",
     * "... host port for 127.0.0.16:5432:172.17.0.2:5432/tcp: ..."): the
     * first loopback address other than 127.0.0.1 is the one. */
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || (p > s && ((p[-1] >= '0' && p[-1] <= '9') || p[-1] == '.')))
            continue;
        unsigned o[4];
        if (quad_at(p, o) < 0 || o[0] != 127 || (o[1] == 0 && o[2] == 0 && o[3] == 1))
            continue;
        char a[16];
        snprintf(a, sizeof(a), "%u.%u.%u.%u", o[0], o[1], o[2], o[3]);
        if (strlen(a) >= cap)
            return 0;
        strlcpy_(addr_out, a, cap);
        return 1;
    }
    return 0;
}

#define DOCKER_TIMEOUT_MS 5000

/* A Docker container name (after its "/"), or NULL when it is not one:
 * the engine's answer is shown on the terminal. */
static const char *docker_name(const char *s, size_t cap)
{
    if (s && s[0] == '/')
        s++;
    if (!s || !s[0] || strlen(s) >= cap)
        return NULL;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-'))
            return NULL;
    return s;
}

int doctor_bind_scan(const char *sock, doctor_bind_hit *hits, size_t cap, size_t *checked)
{
    *checked = 0;
    /* GET /containers/json?all=1&filters={"status":["created"]}: a
     * container whose start failed on its ports stays "created". */
    httpc_response r;
    int rc = httpc_request(
        sock, "GET", "/containers/json?all=1&filters=%7B%22status%22%3A%5B%22created%22%5D%7D",
        DOCKER_TIMEOUT_MS, &r);
    yajl_val list = NULL;
    if (rc == 0 &&
        (r.status != 200 || !r.body.data ||
         cli_parse_json(r.body.data, r.body.len, &list, NULL, 0) < 0 || !YAJL_IS_ARRAY(list)))
        rc = -EPROTO;
    httpc_response_free(&r);
    if (rc < 0) {
        json_free(list);
        return rc;
    }
    size_t n = 0;
    for (size_t i = 0; i < json_len(list) && *checked < DOCTOR_BIND_MAX; i++) {
        const char *id = json_str(json_at(list, i), "Id", NULL);
        if (!id || !id[0] || strspn(id, "0123456789abcdef") != strlen(id) || strlen(id) > 64)
            continue;
        char path[128];
        snprintf(path, sizeof(path), "/containers/%s/json", id);
        yajl_val c = NULL;
        if (httpc_request(sock, "GET", path, DOCKER_TIMEOUT_MS, &r) == 0 && r.status == 200 &&
            r.body.data)
            (void)cli_parse_json(r.body.data, r.body.len, &c, NULL, 0);
        httpc_response_free(&r);
        if (!c)
            continue;
        (*checked)++;
        char addr[16];
        if (n < cap && doctor_bind_error(json_str(c, "State", "Error", NULL), addr, sizeof(addr))) {
            const char *name = docker_name(json_str(c, "Name", NULL), sizeof(hits[n].container));
            /* A name the engine should never send: the short id instead. */
            if (name)
                strlcpy_(hits[n].container, name, sizeof(hits[n].container));
            else
                snprintf(hits[n].container, sizeof(hits[n].container), "%.12s", id);
            strlcpy_(hits[n].addr, addr, sizeof(hits[n].addr));
            n++;
        }
        json_free(c);
    }
    json_free(list);
    return (int)n;
}

#ifdef __APPLE__
/* `docker run -p 127.0.0.16:5432:5432` fails on macOS unless 127.0.0.16
 * is on lo0: the container stays "created" with Docker's bind error in
 * State.Error. A named lease puts the alias there. The engine is asked
 * directly (the daemon's endpoint), when this user may use its socket. */
static void check_bind_errors(doctor *d, const char *endpoint)
{
    if (!endpoint || strncmp(endpoint, "unix://", 7) != 0) {
        log_debug("doctor", "bind errors: no unix socket endpoint to ask");
        return;
    }
    doctor_bind_hit hits[DOCTOR_BIND_MAX];
    size_t checked = 0;
    int n = doctor_bind_scan(endpoint + 7, hits, ARRAY_SIZE(hits), &checked);
    if (n < 0) {
        /* Not this user's engine (or not one at all): the check is a bonus. */
        log_debug("doctor", "bind errors: cannot ask Docker at %s: %s", endpoint, err_str(n));
        return;
    }
    for (int i = 0; i < n; i++) {
        char what[300], fix[200];
        snprintf(what, sizeof(what), "docker could not bind %s for %s", hits[i].addr,
                 hits[i].container);
        snprintf(fix, sizeof(fix),
                 "run `sudo loophole lease add NAME --addr %s` first, then "
                 "docker start %s",
                 hits[i].addr, hits[i].container);
        report(d, CHK_WARN, what, "that address is not on lo0", fix);
    }
    if (n == 0) {
        char detail[64];
        snprintf(detail, sizeof(detail), "%zu created container%s checked", checked,
                 checked == 1 ? "" : "s");
        report(d, CHK_OK, "Docker bound its loopback addresses", detail, NULL);
    }
}
#endif

int cmd_doctor(const cli_ctx *ctx, int argc, char **argv)
{
    if (argc > 1) {
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
            printf("usage: loophole doctor\n");
            return CLI_OK;
        }
        fprintf(stderr, "loophole: doctor takes no arguments\n");
        return CLI_USAGE;
    }
    doctor d = {.color = out_use_color(STDOUT_FILENO)};
    char msg[1024];

    httpc_response r;
    int rc = httpc_request(ctx->sock, "GET", LH_API_STATUS, 10000, &r);
    if (rc < 0 || r.status != 200) {
        if (rc < 0)
            cli_conn_message(rc, ctx->sock, msg, sizeof(msg));
        else
            cli_error_message(r.status, r.body.data, "doctor", msg, sizeof(msg));
        char fix[200];
        snprintf(fix, sizeof(fix), "%s", cli_start_hint());
        report(&d, CHK_FAIL, "daemon reachable", msg, fix);
        httpc_response_free(&r);
        printf("(the other checks need the daemon)\n");
        return CLI_FAIL;
    }
    report(&d, CHK_OK, "daemon reachable", ctx->sock, NULL);
    /* A status that does not parse leaves st NULL: every check below then
     * reports what it could not find. */
    yajl_val st = NULL;
    (void)cli_parse_json(r.body.data, r.body.len, &st, NULL, 0);
    httpc_response_free(&r);

    const char *endpoint = jstr(st, "docker", "endpoint");
    if (jbool(st, "docker", "connected") == 1)
        report(&d, CHK_OK, "Docker reachable", endpoint, NULL);
    else
        report(&d, CHK_FAIL, "Docker reachable", endpoint ? endpoint : "not connected",
               "start Docker, or point the daemon at it with --docker-host");

    const char *domain = jstr(st, "dns", "domain");
    if (!domain)
        domain = "loop.test";
    const char *mode = jstr(st, "resolver", "mode");
    const char *rpath = jstr(st, "resolver", "path");
    if (mode && strcmp(mode, "off") == 0) {
        report(&d, CHK_WARN, "resolver entry", "the daemon runs with --resolver off",
               "set up the resolver entry by hand, or run the daemon with --resolver auto");
    } else if (jbool(st, "resolver", "installed") != 1) {
        report(&d, CHK_FAIL, "resolver entry present", rpath ? rpath : "not installed",
               "sudo loophole resolve-install");
    } else if (jbool(st, "resolver", "correct") != 1) {
        report(&d, CHK_FAIL, "resolver entry correct", rpath ? rpath : "wrong content",
               "sudo loophole resolve-install (rewrites it)");
    } else {
        report(&d, CHK_OK, "resolver entry present and correct", rpath, NULL);
    }

    check_system_resolver(&d, domain);

    char hdetail[600], hfix[400];
#ifdef __linux__
    bool linux_host = true;
#else
    bool linux_host = false;
#endif
    enum doctor_result hr =
        doctor_host_ports(st, linux_host, hdetail, sizeof(hdetail), hfix, sizeof(hfix));
    report(&d, (enum result)hr, "host services inside containers", hdetail, hfix);

    ls_list l = {0};
    rc = httpc_request(ctx->sock, "GET", LH_API_CONTAINERS, 10000, &r);
    char err[256];
    if (rc == 0 && r.status == 200 && r.body.data &&
        ls_parse(r.body.data, r.body.len, &l, err, sizeof(err)) == 0) {
        ls_sort(&l);
        check_getaddrinfo(&d, &l);
#ifdef __APPLE__
        check_aliases(&d, &l);
#endif
        check_listeners(&d, &l);
        check_unreachable(&d, &l, jstr(st, "forwarding", "forward"), !linux_host);
        ls_list_free(&l);
    } else {
        report(&d, CHK_FAIL, "container list", "the daemon did not return it", NULL);
    }
    httpc_response_free(&r);
#ifdef __APPLE__
    check_bind_errors(&d, endpoint);
#endif
    json_free(st);

    if (d.failures)
        printf("%d check%s failed\n", d.failures, d.failures == 1 ? "" : "s");
    else
        printf("all checks passed\n");
    return d.failures ? CLI_FAIL : CLI_OK;
}
