/* doctor's portable pieces: the alias check's matcher over a getifaddrs(3)
 * list, built here by hand, and the host ports check over /v1/status. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "client.h"
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
