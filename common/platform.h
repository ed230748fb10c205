/* Platform facts that portable code asks about, behind one small interface
 * with one file per platform (platform_linux.c, platform_darwin.c), like
 * alias_*, resolver_* and peercred_*. Portable files say
 * platform_shares_wildcard_ports() instead of #ifdef __linux__. The
 * answers are constants: no I/O, no globals. Zero-copy relaying has its own
 * seam, splice_available() in daemon/splice.h. */
#ifndef LOOPHOLE_PLATFORM_H
#define LOOPHOLE_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "linux" or "macos" (the /v1/status "platform" field). */
const char *platform_name(void);

/* Defaults that differ by platform (see config.h for the others). */
const char *platform_control_socket(void); /* protocol.h's LH_CONTROL_SOCKET_* */
const char *platform_state_dir(void);      /* /var/lib/loophole, /var/db/loophole */
const char *platform_admin_group(void);    /* sudo, admin */
/* How the person starts the service, for the client's hints. */
const char *platform_start_hint(void);

/* Docker's own listener for a port published on a wildcard host address
 * answers on every 127.x address (Linux: all of 127.0.0.0/8 is local), so
 * such a port needs no loophole listener: "shared". */
bool platform_shares_wildcard_ports(void);

/* Whether the proxy's UDP sockets get SO_REUSEADDR before bind. BSD bind
 * rules (macOS) refuse 127.0.0.x:P while another socket holds *:P, say
 * Docker Desktop's *:53/udp, unless the new socket has SO_REUSEADDR; with it
 * only an exact match conflicts. Linux needs no such thing (Docker's
 * wildcard port is shared there), and its SO_REUSEADDR on UDP would let two
 * sockets bind the very same address and port: so false on Linux. (Not
 * libuv's UV_UDP_REUSEADDR, which is SO_REUSEPORT on macOS and so allows
 * exact duplicates too.) */
bool platform_udp_reuseaddr(void);

/* The highest soft RLIMIT_NOFILE setrlimit accepts here, 0 for "up to the
 * hard limit". macOS: OPEN_MAX (10240), since setrlimit(2) refuses a soft
 * limit above it with EINVAL even when the hard limit is RLIM_INFINITY (its
 * man page: use min(OPEN_MAX, rlim_max)). Linux: 0 (the hard limit is
 * already at most fs.nr_open). */
uint64_t platform_nofile_cap(void);

/* Whether --alias netlink (rtnetlink) exists here. */
bool platform_has_netlink(void);

/* Whether network namespaces exist here (--host-ports-mode netns). */
bool platform_has_netns(void);

/* Whether some socket listens on the wildcard address (0.0.0.0 or ::) on
 * port/proto (proto 0 TCP, 1 UDP), which makes every 127.x address's port
 * taken. false when it cannot be told (macOS: no /proc). */
bool platform_wildcard_listener(uint16_t port, int proto);

/* Loopback addresses the pool must never hand out (host byte order), e.g.
 * systemd-resolved's stub listeners 127.0.0.53 and 127.0.0.54 on Linux.
 * Returns how many; *out points at static storage. */
size_t platform_reserved_addresses(const uint32_t **out);

#endif
