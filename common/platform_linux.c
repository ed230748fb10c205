/* Linux's answers to platform.h. */
#include "platform.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

const char *platform_name(void)
{
    return "linux";
}

const char *platform_control_socket(void)
{
    return LH_CONTROL_SOCKET_LINUX;
}

const char *platform_state_dir(void)
{
    return "/var/lib/loophole";
}

const char *platform_admin_group(void)
{
    return "sudo";
}

const char *platform_start_hint(void)
{
    return "sudo systemctl start loophole";
}

bool platform_shares_wildcard_ports(void)
{
    /* The kernel routes all of 127.0.0.0/8 to lo, so Docker's 0.0.0.0
     * listener already answers on every loophole address. */
    return true;
}

bool platform_udp_reuseaddr(void)
{
    /* SO_REUSEADDR on a Linux UDP socket allows a second bind of the same
     * address and port: exactly the conflict the proxy must see. */
    return false;
}

uint64_t platform_nofile_cap(void)
{
    return 0;
}

bool platform_has_netlink(void)
{
    return true;
}

bool platform_has_netns(void)
{
    return true;
}

size_t platform_reserved_addresses(const uint32_t **out)
{
    /* systemd-resolved's stub listeners (127.0.0.53, 127.0.0.54). */
    static const uint32_t reserved[] = {0x7f000035u, 0x7f000036u};
    *out = reserved;
    return sizeof(reserved) / sizeof(reserved[0]);
}

/* /proc/net/{tcp,udp}{,6}: "  0: 00000000:1F90 00000000:0000 0A ..." (local
 * address and port in hex, state 0A = LISTEN for TCP; UDP sockets are state
 * 07 and count when bound to the wildcard). */
static bool wildcard_in(const char *path, uint16_t port, bool tcp)
{
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        /* "sl: local remote st ...": the second and fourth fields. */
        char *save = NULL;
        char *sl = strtok_r(line, " \t", &save);
        char *local = sl ? strtok_r(NULL, " \t", &save) : NULL;
        char *remote = local ? strtok_r(NULL, " \t", &save) : NULL;
        char *st = remote ? strtok_r(NULL, " \t", &save) : NULL;
        char *colon = local ? strrchr(local, ':') : NULL;
        if (st == NULL || colon == NULL)
            continue;
        unsigned long p = strtoul(colon + 1, NULL, 16);
        unsigned long state = strtoul(st, NULL, 16);
        *colon = '\0';
        bool any = strspn(local, "0") == strlen(local);
        found = any && p == port && (tcp ? state == 0x0A : true);
    }
    fclose(f);
    return found;
}

bool platform_wildcard_listener(uint16_t port, int proto)
{
    bool tcp = proto == 0;
    return wildcard_in(tcp ? "/proc/net/tcp" : "/proc/net/udp", port, tcp) ||
           wildcard_in(tcp ? "/proc/net/tcp6" : "/proc/net/udp6", port, tcp);
}
