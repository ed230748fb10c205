/* Shared by the loophole subcommands: the connection to the daemon and the
 * mapping of failures to one-line messages. */
#ifndef LOOPHOLE_CLIENT_H
#define LOOPHOLE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"
#include "json.h"

/* Exit statuses (documented in loophole(1)). */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef struct cli_ctx {
    const char *sock; /* control socket path */
} cli_ctx;

/* /run/loophole.sock on Linux, /var/run/loophole.sock on macOS. */
const char *cli_default_socket(void);
/* The command that starts the daemon on this platform. */
const char *cli_start_hint(void);

/* One line (no "loophole: " prefix, no newline) for a failure to talk to the
 * daemon at all (err is a -errno from httpc_*). */
void cli_conn_message(int err, const char *sock, char *out, size_t cap);
/* One line for a non-2xx answer: status and the {"error": ...} body.
 * command names the subcommand, for advice such as "run sudo loophole ...". */
void cli_error_message(int status, const char *body, const char *command, char *out, size_t cap);

/* Does one request; on any failure prints "loophole: <message>" to stderr
 * and returns CLI_FAIL, else CLI_OK with the 2xx answer in resp. */
int cli_call(const cli_ctx *ctx, const char *method, const char *target, const char *command,
             httpc_response *resp);
/* The same with a JSON request body (NULL: none). */
int cli_call_body(const cli_ctx *ctx, const char *method, const char *target, const char *body,
                  const char *command, httpc_response *resp);

/* Parses a daemon answer under the client's limits (HTTPC_MAX_BODY,
 * JSON_MAX_DEPTH): a daemon of another version, or something else listening
 * on the socket, must not be able to crash the command with a deep, huge,
 * comment-wrapped or NUL-carrying body. 0 with *out (json_free it) or -errno
 * with a reason in err (may be NULL). */
int cli_parse_json(const char *body, size_t len, yajl_val *out, char *err, size_t errlen);

/* Formats a /v1/status object as aligned "key: value" lines (pure).
 * Returns 0 or -EINVAL when json is not an object. */
int status_format(const char *json, size_t len, bool color, buf *out);

int cmd_ls(const cli_ctx *ctx, int argc, char **argv);
int cmd_status(const cli_ctx *ctx, int argc, char **argv);
int cmd_resolve_install(const cli_ctx *ctx, int argc, char **argv);
int cmd_resolve_uninstall(const cli_ctx *ctx, int argc, char **argv);
int cmd_doctor(const cli_ctx *ctx, int argc, char **argv);
int cmd_expose(const cli_ctx *ctx, int argc, char **argv);
int cmd_unexpose(const cli_ctx *ctx, int argc, char **argv);
int cmd_lease(const cli_ctx *ctx, int argc, char **argv);

/* Percent-encodes s for one path segment (everything but A-Z a-z 0-9 - . _ ~). */
void cli_path_escape(const char *s, buf *out);
/* "8000", "8000/tcp" or "53/udp" (unexpose's arguments): 0 or -EINVAL. */
int hostports_parse_cport(const char *arg, long *port, bool *udp);
/* The line for one exposure the daemon made (its 201 body), e.g.
 * "web.myapp: 8000 -> localhost:8000 (tcp)", and a second line when the
 * exposure is not served yet. 0 or -EINVAL when json is not an object. */
int hostports_format_made(const char *container, const char *json, size_t len, buf *out);

/* ---- loophole lease (issue 14): named addresses for what is not a container ---- */

enum lease_op { LEASE_HELP, LEASE_ADD, LEASE_RM, LEASE_LS };

typedef struct lease_args {
    enum lease_op op;
    const char *name; /* add, rm: the NAME argument as given */
    const char *addr; /* add --addr: a dotted quad, or NULL */
    bool json;        /* ls --json */
} lease_args;

/* The three usage lines of loophole lease, each ending in a newline. */
extern const char lease_usage[];
/* Parses argv of "lease ..." (argv[0] is "lease"): CLI_OK with *out, or
 * CLI_USAGE with one line in err ("lease add needs a NAME", "lease add:
 * unknown option \"-x\"", "lease add: --addr needs an address", ...) (pure). */
int lease_parse_args(int argc, char **argv, lease_args *out, char *err, size_t cap);
/* The POST /v1/leases body, {"name": ...} with "ip" when addr is set: 0 with
 * a malloc'd string, or -EINVAL when yajl refuses the name (not UTF-8). */
int lease_request_body(const char *name, const char *addr, char **body, size_t *len);
/* The "ip" of a lease object (the 200/201 answer to POST /v1/leases),
 * copied into ip when it is a dotted quad: 0, or -EINVAL (pure). */
int lease_address(const char *json, size_t len, char *ip, size_t cap);
/* A GET /v1/leases array as the table NAME ADDRESS DNS ALIAS USED BY
 * (ALIAS yes, no or - when the daemon adds no aliases), or "no leases".
 * 0, or -EINVAL when json is not an array (pure). */
int lease_format(const char *json, size_t len, bool color, buf *out);

/* One doctor line's outcome. */
enum doctor_result { DOCTOR_OK, DOCTOR_WARN, DOCTOR_FAIL, DOCTOR_SKIP };

/* doctor's host ports check over a parsed /v1/status (st may be NULL):
 * whether the daemon can take the direct path into containers' network
 * namespaces, which exists on Linux only (linux_host). Fills detail and,
 * for WARN and FAIL, fix (pure). */
enum doctor_result doctor_host_ports(yajl_val st, bool linux_host, char *detail, size_t dcap,
                                     char *fix, size_t fcap);

struct ls_entry;
/* doctor's check of one container's unreachable ports (issue 13): WARN
 * with what ("web.myapp.loop.test reachable from the daemon"), detail (the
 * ports, their network and the daemon's problem) and fix (publish the port;
 * on macOS an L3 route such as docker-mac-net-connect; with --forward
 * direct, --forward auto), or OK with nothing written when no port is
 * unreachable (pure). forward is the status's forwarding.forward (may be
 * NULL); macos says where Docker runs in a VM. */
enum doctor_result doctor_unreachable(const struct ls_entry *e, const char *forward, bool macos,
                                      char *what, size_t wcap, char *detail, size_t dcap, char *fix,
                                      size_t fcap);

/* Whether a Docker error text (a container's State.Error) says a port
 * could not be bound because its loopback address is not on the host, as
 * moby's port mapper ("listen tcp4 127.0.0.16:5432: bind: cannot assign
 * requested address", "failed to bind host port 127.0.0.16:5432/tcp: cannot
 * assign requested address") and Docker Desktop ("Ports are not available:
 * exposing port TCP 127.0.0.16:5432 -> ...: bind: can't assign requested
 * address") put it. 1 with the address (127/8, never 127.0.0.1) in
 * addr_out, else 0 (pure). */
int doctor_bind_error(const char *docker_error, char *addr_out, size_t cap);

/* A container that Docker created but could not start for want of a
 * loopback address. */
typedef struct doctor_bind_hit {
    char container[128];
    char addr[16];
} doctor_bind_hit;

/* How many created containers doctor_bind_scan inspects at most. */
#define DOCTOR_BIND_MAX 20

/* Asks the Docker engine on the unix socket at sock for the containers in
 * state "created" and reads each one's State.Error (at most
 * DOCTOR_BIND_MAX): the number of hits written (at most cap), with how many
 * containers were inspected in *checked, or -errno when the engine could
 * not be asked (cannot connect, the list is not 200 or not an array). */
int doctor_bind_scan(const char *sock, doctor_bind_hit *hits, size_t cap, size_t *checked);

struct ifaddrs;
/* Whether ip (dotted quad) is an IPv4 address of the interface named ifname
 * in a getifaddrs(3) list (pure; doctor's lo0 alias check). */
bool doctor_if_has_addr(const struct ifaddrs *list, const char *ifname, const char *ip);

#endif
