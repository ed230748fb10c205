/* The control API's protocol facts, shared by the daemon (which serves them)
 * and the client (which asks): where the socket is by default, the route
 * paths, and the version both put in their HTTP headers and --version.
 * DESIGN.md holds the JSON shapes. */
#ifndef LOOPHOLE_PROTOCOL_H
#define LOOPHOLE_PROTOCOL_H

/* The release, from CMake's project(VERSION); "dev" in a build without it. */
#ifndef LOOPHOLE_VERSION
#define LOOPHOLE_VERSION "dev"
#endif
/* Server: and User-Agent: */
#define LH_HTTP_PRODUCT "loophole/" LOOPHOLE_VERSION

/* The control socket's default path per platform (launchd and systemd units
 * name the same). platform_control_socket() picks the one for this build. */
#define LH_CONTROL_SOCKET_DARWIN "/var/run/loophole.sock"
#define LH_CONTROL_SOCKET_LINUX "/run/loophole.sock"

/* Routes (the daemon's table in control.c; the client's requests). */
#define LH_API_PREFIX "/v1"
#define LH_API_STATUS LH_API_PREFIX "/status"
#define LH_API_CONTAINERS LH_API_PREFIX "/containers"
#define LH_API_CONTAINER LH_API_CONTAINERS "/{name}"                 /* a route pattern */
#define LH_API_HOST_PORTS_SEGMENT "/host-ports"                      /* after a container's path */
#define LH_API_HOST_PORTS LH_API_CONTAINER LH_API_HOST_PORTS_SEGMENT /* a route pattern */
#define LH_API_HOST_PORT LH_API_HOST_PORTS "/{port}"                 /* a route pattern */
#define LH_API_HOST_PORT_PROTO LH_API_HOST_PORT "/{proto}"           /* a route pattern */
#define LH_API_RESOLVER LH_API_PREFIX "/resolver"
#define LH_API_EVENTS LH_API_PREFIX "/events"
#define LH_API_LEASES LH_API_PREFIX "/leases"
#define LH_API_LEASE LH_API_LEASES "/{name}" /* a route pattern */

#endif
