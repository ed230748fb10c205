/* Linux's answers to platform.h. */
#include "platform.h"

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
