/* doctor's portable pieces: the alias check's matcher over a getifaddrs(3)
 * list, built here by hand, the host ports check over /v1/status, and the
 * unreachable ports check over /v1/containers. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

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
