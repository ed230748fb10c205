/* Loopback aliases on macOS: only 127.0.0.1 is routed on lo0, so every other
 * 127.x address needs an alias. This is what "ifconfig lo0 alias A up" does
 * underneath (SIOCAIFADDR with a /32 mask), as in launchd's loopback_setup().
 * Root only; aliases do not survive a reboot. */
/* ifaliasreq, sin_len and getifaddrs are Darwin extensions that a strict
 * _POSIX_C_SOURCE hides; CMake defines this too on Apple. */
#ifndef _DARWIN_C_SOURCE
#define _DARWIN_C_SOURCE
#endif

#include "alias.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/sockio.h>
#include <unistd.h>

#define LOOPBACK_IF "lo0"

bool alias_active(alias_mode m)
{
    /* netlink is a Linux mechanism; config validation refuses it here. */
    return m == ALIAS_AUTO;
}

static struct sockaddr_in sin_of(uint32_t addr)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    /* BSD sockaddrs carry their length; the kernel rejects a zero sin_len. */
    sin.sin_len = sizeof(sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(addr);
    return sin;
}

int alias_present(uint32_t addr)
{
    struct ifaddrs *list;
    if (getifaddrs(&list) < 0)
        return -errno;
    int found = 0;
    for (struct ifaddrs *i = list; i != NULL && !found; i = i->ifa_next) {
        if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
            strcmp(i->ifa_name, LOOPBACK_IF) != 0)
            continue;
        struct sockaddr_in sin;
        memcpy(&sin, i->ifa_addr, sizeof(sin));
        found = sin.sin_addr.s_addr == htonl(addr);
    }
    freeifaddrs(list);
    return found;
}

int alias_add(uint32_t addr, int *existed)
{
    if (existed)
        *existed = 0;
    /* SIOCAIFADDR on an address that is already there does not fail: xnu
     * replaces its mask (in.c, inctl_ifaddr), which would change an alias
     * the person made. So ask first, leave an existing one alone, and tell
     * the caller it was there before. */
    int present = alias_present(addr);
    if (present < 0)
        return present;
    if (present) {
        if (existed)
            *existed = 1;
        return 0;
    }

    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0)
        return -errno;
    struct ifaliasreq ifra;
    memset(&ifra, 0, sizeof(ifra));
    strncpy(ifra.ifra_name, LOOPBACK_IF, sizeof(ifra.ifra_name) - 1);
    struct sockaddr_in a = sin_of(addr);
    struct sockaddr_in mask = sin_of(0xffffffffu);
    memcpy(&ifra.ifra_addr, &a, sizeof(a));
    memcpy(&ifra.ifra_mask, &mask, sizeof(mask));
    /* ifra_broadaddr stays zero: lo0 is not a broadcast interface. */
    /* No EEXIST to handle: xnu never answers SIOCAIFADDR with it (see above). */
    int rc = 0;
    if (ioctl(s, SIOCAIFADDR, &ifra) < 0)
        rc = -errno;
    close(s);
    return rc;
}

int alias_del(uint32_t addr)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strncpy(ifr.ifr_name, LOOPBACK_IF, sizeof(ifr.ifr_name) - 1);
    struct sockaddr_in a = sin_of(addr);
    memcpy(&ifr.ifr_addr, &a, sizeof(a));
    int rc = 0;
    if (ioctl(s, SIOCDIFADDR, &ifr) < 0) {
        rc = -errno;
        if (rc == -EADDRNOTAVAIL)
            rc = 0; /* already gone */
    }
    close(s);
    return rc;
}
