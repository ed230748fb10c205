/* doctor's portable pieces: the alias check's matcher over a getifaddrs(3)
 * list, built here by hand, the host ports check over /v1/status, the
 * unreachable ports check over /v1/containers, and the bind error check
 * (issue 14): its matcher over Docker's error texts and its scan against a
 * fake engine on a unix socket. */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "ls.h"
#include "test.h"

typedef struct fake_if {
    struct ifaddrs ifa;
    struct sockaddr_in sin;
} fake_if;

/* Links n entries into a list: name, family (AF_INET, AF_INET6 or 0 for no
 * address) and the IPv4 address. */
static void fake_list(fake_if *v, size_t n, const char *const *names, const int *families,
                      const char *const *ips)
{
    memset(v, 0, n * sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i].ifa.ifa_name = (char *)names[i];
        v[i].ifa.ifa_next = i + 1 < n ? &v[i + 1].ifa : NULL;
        if (families[i] == 0)
            continue;
        v[i].sin.sin_family = (sa_family_t)families[i];
        inet_pton(AF_INET, ips[i], &v[i].sin.sin_addr);
        v[i].ifa.ifa_addr = (struct sockaddr *)&v[i].sin;
    }
}

TEST(alias_on_lo0_only)
{
    const char *names[] = {"en0", "lo0", "lo0", "lo0", "lo0", "utun3"};
    const int fams[] = {AF_INET, 0, AF_INET6, AF_INET, AF_INET, AF_INET};
    const char *ips[] = {"127.0.0.5", "", "127.0.0.8", "127.0.0.1", "127.0.0.3", "127.0.0.9"};
    fake_if v[6];
    fake_list(v, 6, names, fams, ips);
    const struct ifaddrs *list = &v[0].ifa;
    CHECK(doctor_if_has_addr(list, "lo0", "127.0.0.1"));
    CHECK(doctor_if_has_addr(list, "lo0", "127.0.0.3"));
    /* On another interface only: not an alias the daemon's address routes by. */
    CHECK(!doctor_if_has_addr(list, "lo0", "127.0.0.9"));
    CHECK(!doctor_if_has_addr(list, "lo0", "127.0.0.5"));
    CHECK(doctor_if_has_addr(list, "utun3", "127.0.0.9"));
    /* An entry of another family is not an IPv4 address, whatever its bytes. */
    CHECK(!doctor_if_has_addr(list, "lo0", "127.0.0.8"));
    CHECK(!doctor_if_has_addr(list, "lo0", "127.0.0.4"));
    CHECK(!doctor_if_has_addr(list, "lo0", "not an address"));
    CHECK(!doctor_if_has_addr(list, "lo0", NULL));
    CHECK(!doctor_if_has_addr(NULL, "lo0", "127.0.0.1"));
    /* The name is matched whole. */
    CHECK(!doctor_if_has_addr(list, "lo", "127.0.0.1"));
}

static enum doctor_result host_ports(const char *status, bool linux_host, char *detail, char *fix)
{
    yajl_val st = NULL;
    if (status)
        (void)cli_parse_json(status, strlen(status), &st, NULL, 0);
    enum doctor_result r = doctor_host_ports(st, linux_host, detail, 600, fix, 400);
    json_free(st);
    return r;
}

TEST(host_ports_check)
{
    char detail[600], fix[400];
    const char *off = "{\"host_ports\":{\"mode\":\"auto\",\"netns\":{\"available\":false,"
                      "\"reason\":\"setns was refused (EPERM)\"},\"sidecar_image\":"
                      "\"alpine/socat\",\"listeners\":0,\"exposures\":1,\"sidecars\":1}}";
    /* Linux, netns closed: a warning that quotes the reason and says how to
     * open it (the unit's settings) or to choose sidecars on purpose. */
    CHECK_INT(host_ports(off, true, detail, fix), DOCTOR_WARN);
    CHECK(strstr(detail, "setns was refused (EPERM)") != NULL);
    CHECK(strstr(detail, "relay sidecars (alpine/socat)") != NULL);
    CHECK(strstr(fix, "RestrictNamespaces=net") != NULL);
    CHECK(strstr(fix, "CAP_SYS_ADMIN") != NULL);
    CHECK(strstr(fix, "CAP_SYS_PTRACE") != NULL);
    CHECK(strstr(fix, "--host-ports-mode sidecar") != NULL);

    /* Forced to netns with no way in: nothing is served, a failure. */
    const char *forced = "{\"host_ports\":{\"mode\":\"netns\",\"netns\":{\"available\":false,"
                         "\"reason\":null}}}";
    CHECK_INT(host_ports(forced, true, detail, fix), DOCTOR_FAIL);
    CHECK(strstr(detail, "no reason given") != NULL);
    CHECK(strstr(fix, "CAP_SYS_ADMIN") != NULL);

    /* macOS: sidecars are the way, whatever netns says. */
    CHECK_INT(host_ports(off, false, detail, fix), DOCTOR_OK);
    CHECK_STR(detail, "macOS uses relay sidecars (alpine/socat)");
    CHECK_STR(fix, "");

    const char *on = "{\"host_ports\":{\"mode\":\"auto\",\"netns\":{\"available\":true,"
                     "\"reason\":null}}}";
    CHECK_INT(host_ports(on, true, detail, fix), DOCTOR_OK);
    CHECK(strstr(detail, "network namespaces") != NULL);
    CHECK_STR(fix, "");
    const char *side = "{\"host_ports\":{\"mode\":\"sidecar\",\"netns\":{\"available\":false},"
                       "\"sidecar_image\":\"loophole-test/socat:1\"}}";
    CHECK_INT(host_ports(side, true, detail, fix), DOCTOR_OK);
    CHECK(strstr(detail, "loophole-test/socat:1") != NULL);

    /* An older daemon, a status that did not parse, a field of the wrong type. */
    CHECK_INT(host_ports("{\"version\":\"0.1\"}", true, detail, fix), DOCTOR_SKIP);
    CHECK_INT(host_ports(NULL, true, detail, fix), DOCTOR_SKIP);
    CHECK_INT(host_ports("{\"host_ports\":{\"netns\":{\"available\":\"no\"}}}", true, detail, fix),
              DOCTOR_SKIP);
}

/* What doctor_unreachable says about the first container of a
 * /v1/containers answer. */
static enum doctor_result unreachable(const char *json, const char *forward, bool macos, char *what,
                                      char *detail, char *fix)
{
    ls_list l;
    char err[256];
    if (ls_parse(json, strlen(json), &l, err, sizeof(err)) < 0 || l.n == 0)
        return DOCTOR_SKIP;
    enum doctor_result r =
        doctor_unreachable(&l.v[0], forward, macos, what, 400, detail, 1200, fix, 600);
    ls_list_free(&l);
    return r;
}

TEST(unreachable_ports)
{
    char what[400], detail[1200], fix[600];
    const char *one = "[{\"name\":\"web.app.loop.test\",\"container\":\"app-web-1\","
                      "\"ports\":[{\"port\":80,\"host_port\":49100,\"mode\":\"mapped\"},"
                      "{\"port\":8080,\"proto\":\"tcp\",\"mode\":\"unreachable\","
                      "\"network\":\"bridge\",\"problem\":\"172.17.0.4:8080 did not answer "
                      "within 250 ms and 8080 is not published\"}]}]";
    /* Linux: the daemon's problem, the port and network, and the fixes:
     * publish it, or make the network reachable. */
    CHECK_INT(unreachable(one, "auto", false, what, detail, fix), DOCTOR_WARN);
    CHECK_STR(what, "web.app.loop.test reachable from the daemon");
    CHECK_STR(detail, "port 8080 on network bridge: 172.17.0.4:8080 did not answer within 250 ms "
                      "and 8080 is not published");
    CHECK(strstr(fix, "docker run -p 8080") != NULL);
    CHECK(strstr(fix, "rootless") != NULL);
    CHECK(strstr(fix, "docker-mac-net-connect") == NULL);
    /* macOS: an L3 route into the VM, and OrbStack needs none. */
    CHECK_INT(unreachable(one, "auto", true, what, detail, fix), DOCTOR_WARN);
    CHECK(strstr(fix, "docker run -p 8080") != NULL);
    CHECK(strstr(fix, "docker-mac-net-connect") != NULL);
    CHECK(strstr(fix, "OrbStack") != NULL);
    /* --forward direct never falls back: publishing alone does not help. */
    CHECK_INT(unreachable(one, "direct", true, what, detail, fix), DOCTOR_WARN);
    CHECK(strstr(fix, "--forward auto") != NULL);

    /* Several ports, no problem text from the daemon, no DNS name. */
    const char *two = "[{\"name\":null,\"container\":\"api\",\"ports\":["
                      "{\"port\":3000,\"mode\":\"unreachable\"},{\"port\":53,\"proto\":\"udp\","
                      "\"mode\":\"unreachable\",\"problem\":null}]}]";
    CHECK_INT(unreachable(two, NULL, false, what, detail, fix), DOCTOR_WARN);
    CHECK_STR(what, "api reachable from the daemon");
    CHECK(strncmp(detail, "ports 3000, 53/udp: ", 20) == 0);
    CHECK(strstr(detail, "not published") != NULL);
    CHECK(strstr(fix, "docker run -p 3000") != NULL);

    /* Nothing unreachable: ok, and nothing written. An older daemon's
     * "proxy" is mapped, not unreachable. */
    const char *fine = "[{\"name\":\"pg.loop.test\",\"ports\":[{\"port\":5432,\"mode\":"
                       "\"direct\"},{\"port\":1,\"mode\":\"proxy\"},{\"port\":2,\"mode\":"
                       "\"shared\"},{\"port\":3,\"mode\":\"none\"}]}]";
    CHECK_INT(unreachable(fine, "auto", false, what, detail, fix), DOCTOR_OK);
    CHECK_STR(what, "");
    CHECK_STR(detail, "");
    CHECK_STR(fix, "");
    CHECK_INT(unreachable("[{\"ports\":[]}]", "auto", true, what, detail, fix), DOCTOR_OK);
}

/* ---- Docker could not bind a loopback address (issue 14) ---- */

static const char *bind_addr(const char *text)
{
    static char a[16];
    strlcpy_(a, "untouched", sizeof(a));
    return doctor_bind_error(text, a, sizeof(a)) == 1 ? a : NULL;
}

TEST(bind_error_texts)
{
    /* The State.Error of a container whose start failed, in the forms
     * Docker gives it. moby's port mapper, before 27 through docker-proxy
     * ("Error starting userland proxy: listen tcp4 ADDR:PORT: bind: ..."),
     * from 27 "failed to bind host port for HOSTIP:HOSTPORT:CIP:CPORT/PROTO",
     * from 28 "failed to bind host port HOSTIP:HOSTPORT/PROTO"; Linux spells
     * EADDRNOTAVAIL "cannot assign requested address". Docker Desktop binds
     * on the Mac ("Ports are not available: exposing port TCP ADDR:PORT ->
     * ...: listen tcp4 ADDR:PORT: bind: can't assign requested address",
     * Go's text for the BSD errno). */
    CHECK_STR(bind_addr("driver failed programming external connectivity on endpoint pg "
                        "(3f1c0a9e2b7d): Error starting userland proxy: listen tcp4 "
                        "127.0.0.16:5432: bind: cannot assign requested address"),
              "127.0.0.16");
    CHECK_STR(bind_addr("Ports are not available: exposing port TCP 127.0.0.16:5432 -> "
                        "0.0.0.0:0: listen tcp4 127.0.0.16:5432: bind: can't assign requested "
                        "address"),
              "127.0.0.16");
    CHECK_STR(bind_addr("failed to set up container networking: driver failed programming "
                        "external connectivity on endpoint pg (f8a30e4fb223afda): failed to bind "
                        "host port for 127.0.0.17:5432:172.17.0.2:5432/tcp: cannot assign "
                        "requested address"),
              "127.0.0.17");
    CHECK_STR(bind_addr("failed to bind host port 127.0.0.18:5432/tcp: cannot assign requested "
                        "address"),
              "127.0.0.18");
    CHECK_STR(bind_addr("listen udp4 127.0.43.101:53: bind: Can't assign requested address"),
              "127.0.43.101");
    CHECK_STR(bind_addr("listen tcp 127.1.2.3:80: bind: Cannot assign requested address"),
              "127.1.2.3");
    /* 127.0.0.1 is always there: the first other loopback address counts. */
    CHECK_STR(bind_addr("exposing port TCP 127.0.0.1:80 and 127.0.0.20:80: bind: cannot assign "
                        "requested address"),
              "127.0.0.20");

    /* Other errors, other addresses. */
    CHECK(bind_addr("listen tcp4 127.0.0.16:5432: bind: address already in use") == NULL);
    CHECK(bind_addr("Bind for 0.0.0.0:8080 failed: port is already allocated") == NULL);
    CHECK(bind_addr("listen tcp4 127.0.0.1:5432: bind: can't assign requested address") == NULL);
    CHECK(bind_addr("listen tcp4 192.168.5.5:80: bind: cannot assign requested address") == NULL);
    CHECK(bind_addr("listen tcp4 127.0.0.256:1: bind: cannot assign requested address") == NULL);
    CHECK(bind_addr("listen tcp4 1127.0.0.16:1: bind: cannot assign requested address") == NULL);
    CHECK(bind_addr("listen tcp4 127.0.0.16.5:1: bind: cannot assign requested address") == NULL);
    CHECK(bind_addr("listen tcp4 127.0.0:1: bind: cannot assign requested address") == NULL);
    CHECK(bind_addr("listen tcp4 127.0.0.0016:1: bind: cannot assign requested address") == NULL);
    CHECK(bind_addr("bind: cannot assign requested address") == NULL);
    CHECK(bind_addr("") == NULL);
    CHECK(bind_addr(NULL) == NULL);
    /* An address that does not fit is not cut short. */
    char small[10] = "untouched";
    CHECK_INT(doctor_bind_error("listen tcp4 127.0.0.160:1: bind: cannot assign requested address",
                                small, sizeof(small)),
              0);
    CHECK_STR(small, "untouched");
}

/* A fake Docker engine: answers each request on its socket with what
 * engine_answer says, until killed. */
typedef struct engine {
    char dir[32];
    char sock[64];
    pid_t pid;
} engine;

/* n "created" containers "c0".."c{n-1}"; c0 failed on 127.0.0.16, c1 on
 * something else, c2 has a name the engine should never send; the rest
 * have no error. One id is not an id at all. */
static size_t engine_created;

static void engine_answer(const char *target, buf *body, int *status)
{
    static const char list[] =
        "/containers/json?all=1&filters=%7B%22status%22%3A%5B%22created%22%5D%7D";
    *status = 200;
    if (strcmp(target, list) == 0) {
        buf_appendf(body, "[{\"Id\":\"../../info\",\"State\":\"created\"}");
        for (size_t i = 0; i < engine_created; i++)
            buf_appendf(body, ",{\"Id\":\"%064zx\",\"Names\":[\"/c%zu\"],\"State\":\"created\"}",
                        i + 1, i);
        buf_appendf(body, "]");
        return;
    }
    /* /containers/<64 hex digits>/json */
    const char *hex = target + 12;
    unsigned long long id = 0;
    if (strncmp(target, "/containers/", 12) == 0 && strspn(hex, "0123456789abcdef") == 64 &&
        strcmp(hex + 64, "/json") == 0)
        id = strtoull(hex, NULL, 16);
    if (id >= 1 && id <= engine_created) {
        const char *err = id == 1   ? "Ports are not available: exposing port TCP 127.0.0.16:5432 "
                                      "-> 0.0.0.0:0: listen tcp4 127.0.0.16:5432: bind: can't "
                                      "assign requested address"
                          : id == 2 ? "OCI runtime create failed: no such file"
                          : id == 3 ? "failed to bind host port 127.0.0.17:80/tcp: cannot assign "
                                      "requested address"
                                    : "";
        const char *name = id == 3 ? "/we\\u001b[31mird" : "";
        char nm[32];
        snprintf(nm, sizeof(nm), "/c%llu", id - 1);
        buf_appendf(body,
                    "{\"Id\":\"%064llx\",\"Name\":\"%s\",\"State\":{\"Status\":"
                    "\"created\",\"Error\":\"%s\"}}",
                    id, name[0] ? name : nm, err);
        return;
    }
    *status = 404;
    buf_appendf(body, "{\"message\":\"page not found\"}");
}

static int engine_start(engine *e)
{
    memset(e, 0, sizeof(*e));
    strlcpy_(e->dir, "/tmp/lh-engine-XXXXXX", sizeof(e->dir));
    if (!mkdtemp(e->dir))
        return -1;
    snprintf(e->sock, sizeof(e->sock), "%s/docker.sock", e->dir);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strlcpy_(sa.sun_path, e->sock, sizeof(sa.sun_path));
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 8) != 0)
        return -1;
    e->pid = fork();
    if (e->pid < 0)
        return -1;
    if (e->pid == 0) {
        for (;;) {
            int c = accept(lfd, NULL, NULL);
            if (c < 0)
                _exit(1);
            char req[4096];
            size_t n = 0;
            while (n < sizeof(req) - 1) {
                ssize_t r = read(c, req + n, sizeof(req) - 1 - n);
                if (r <= 0)
                    break;
                n += (size_t)r;
                req[n] = '\0';
                if (strstr(req, "\r\n\r\n"))
                    break;
            }
            req[n] = '\0';
            char target[1024] = "";
            const char *sp = strchr(req, ' ');
            const char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
            if (sp && sp2 && strncmp(req, "GET ", 4) == 0 &&
                (size_t)(sp2 - sp - 1) < sizeof(target))
                memcpy(target, sp + 1, (size_t)(sp2 - sp - 1));
            buf body = {0};
            int status;
            engine_answer(target, &body, &status);
            char head[256];
            int hl = snprintf(head, sizeof(head),
                              "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                              status, body.len);
            (void)!write(c, head, (size_t)hl);
            (void)!write(c, body.data, body.len);
            buf_free(&body);
            close(c);
        }
    }
    close(lfd);
    return 0;
}

static void engine_stop(engine *e)
{
    kill(e->pid, SIGKILL);
    waitpid(e->pid, NULL, 0);
    unlink(e->sock);
    rmdir(e->dir);
}

TEST(bind_error_scan)
{
    engine e;
    engine_created = 5;
    REQUIRE(engine_start(&e) == 0);
    doctor_bind_hit hits[DOCTOR_BIND_MAX];
    size_t checked = 99;
    int n = doctor_bind_scan(e.sock, hits, ARRAY_SIZE(hits), &checked);
    /* The id that is no id is never asked for; every other container is. */
    CHECK_INT(checked, 5);
    REQUIRE(n == 2);
    CHECK_STR(hits[0].container, "c0");
    CHECK_STR(hits[0].addr, "127.0.0.16");
    /* A name the engine should never send: the short id instead. */
    CHECK_STR(hits[1].container, "000000000000");
    CHECK_STR(hits[1].addr, "127.0.0.17");
    /* No more hits than room for them. */
    n = doctor_bind_scan(e.sock, hits, 1, &checked);
    CHECK_INT(n, 1);
    CHECK_INT(checked, 5);
    engine_stop(&e);

    /* At most DOCTOR_BIND_MAX inspections, however many were created. */
    engine_created = DOCTOR_BIND_MAX + 5;
    REQUIRE(engine_start(&e) == 0);
    n = doctor_bind_scan(e.sock, hits, ARRAY_SIZE(hits), &checked);
    CHECK_INT(checked, DOCTOR_BIND_MAX);
    CHECK_INT(n, 2);
    engine_stop(&e);

    /* Nothing created: no hits. */
    engine_created = 0;
    REQUIRE(engine_start(&e) == 0);
    CHECK_INT(doctor_bind_scan(e.sock, hits, ARRAY_SIZE(hits), &checked), 0);
    CHECK_INT(checked, 0);
    engine_stop(&e);

    /* No engine there: an error, which the check keeps to itself. */
    CHECK_INT(doctor_bind_scan("/nonexistent/docker.sock", hits, ARRAY_SIZE(hits), &checked),
              -ENOENT);
}
