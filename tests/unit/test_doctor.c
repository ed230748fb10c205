/* doctor's portable pieces: the alias check's matcher over a getifaddrs(3)
 * list, built here by hand. */
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
