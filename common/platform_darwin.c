/* macOS's answers to platform.h. */
/* OPEN_MAX is hidden by a strict _POSIX_C_SOURCE; CMake defines this too. */
#ifndef _DARWIN_C_SOURCE
#define _DARWIN_C_SOURCE
#endif

#include "platform.h"

#include <limits.h>

#include "protocol.h"

const char *platform_name(void)
{
    return "macos";
}

const char *platform_control_socket(void)
{
    return LH_CONTROL_SOCKET_DARWIN;
}

const char *platform_state_dir(void)
{
    return "/var/db/loophole";
}

const char *platform_admin_group(void)
{
    return "admin";
}

const char *platform_start_hint(void)
{
    return "sudo brew services start loophole";
}

bool platform_shares_wildcard_ports(void)
{
    /* Only 127.0.0.1 is routed on lo0 and Docker Desktop forwards from the
     * host side: a wildcard port does not answer on our aliases. */
    return false;
}

bool platform_udp_reuseaddr(void)
{
    /* in_pcbbind: without SO_REUSEADDR a specific bind conflicts with a
     * wildcard one on the same port (Docker Desktop's *:53/udp); with it,
     * only an exact address-and-port match does. */
    return true;
}

uint64_t platform_nofile_cap(void)
{
    /* setrlimit(2): a soft RLIMIT_NOFILE above OPEN_MAX is EINVAL. */
    return OPEN_MAX;
}

bool platform_has_netlink(void)
{
    return false;
}

bool platform_has_netns(void)
{
    return false;
}

size_t platform_reserved_addresses(const uint32_t **out)
{
    *out = NULL;
    return 0;
}

bool platform_wildcard_listener(uint16_t port, int proto)
{
    (void)port;
    (void)proto;
    return false;
}
