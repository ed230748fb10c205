/* Running under a service manager without its client library: readiness and
 * stop notification (systemd's sd_notify protocol: one datagram to
 * $NOTIFY_SOCKET) and socket activation (systemd's LISTEN_PID/LISTEN_FDS,
 * launchd's launch_activate_socket). One file per platform
 * (service_linux.c, service_darwin.c); the environment parsing is pure and
 * portable (service.c) so it is unit-tested everywhere.
 *
 * All functions return 0 or a negative errno value. */
#ifndef LOOPHOLE_SERVICE_H
#define LOOPHOLE_SERVICE_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* The name of the control socket in launchd's Sockets dictionary and in
 * systemd's FileDescriptorName= (LISTEN_FDNAMES). */
#define SERVICE_CONTROL_SOCKET_NAME "Control"

/* Tells the service manager the daemon is ready (READY=1): call once the DNS
 * server and the control socket are up. 0 when sent or when no manager asked
 * for it ($NOTIFY_SOCKET unset; always on macOS, where launchd has no such
 * protocol). */
int service_notify_ready(void);
/* STOPPING=1: call when shutdown begins. Same return values. */
int service_notify_stopping(void);
/* Sends any sd_notify state string, e.g. "STATUS=waiting for Docker".
 * Linux only; 0 without doing anything elsewhere or when $NOTIFY_SOCKET is
 * unset. -EAFNOSUPPORT for a NOTIFY_SOCKET that is neither a path nor '@'. */
int service_notify(const char *state);

/* The listening control socket the service manager made for us.
 * Linux: fd 3 (or the fd whose LISTEN_FDNAMES entry equals name) when
 * LISTEN_PID is our pid and LISTEN_FDS >= 1; LISTEN_PID, LISTEN_FDS and
 * LISTEN_FDNAMES are removed from the environment once looked at, and every
 * passed fd gets FD_CLOEXEC. macOS: launch_activate_socket(name).
 * Returns 0 with *fd (a listening AF_UNIX stream socket, close-on-exec; the
 * caller owns it, e.g. uv_pipe_open + uv_listen), -ENOENT when not socket
 * activated (bind the socket yourself), -EINVAL for a garbled LISTEN_FDS or
 * LISTEN_PID, -ENOTSOCK / -EAFNOSUPPORT / -EPROTOTYPE / -EINVAL (not
 * listening) when the passed descriptor is not a listening unix stream
 * socket; other errors from the platform call. */
int service_listen_fd(const char *name, int *fd);

/* Pure helpers, exposed for tests. */

/* Parses LISTEN_PID and LISTEN_FDS (either may be NULL, as from getenv).
 * 0 with *count >= 1 when the fds are meant for self; -ENOENT when a
 * variable is missing or empty, LISTEN_PID names another process or
 * LISTEN_FDS is 0; -EINVAL when either is not a decimal number in range. */
int service_parse_listen_env(const char *pid, const char *fds, pid_t self, int *count);
/* The index (0-based, fd = 3 + index) of name in a colon-separated
 * LISTEN_FDNAMES list of count entries; -ENOENT when names is NULL or has no
 * such entry among the first count. */
int service_find_fdname(const char *names, int count, const char *name);
/* Builds the address of $NOTIFY_SOCKET: an absolute path, or '@' for
 * Linux's abstract namespace (a leading NUL byte, length without a final
 * NUL). -ENOENT for NULL or "", -EAFNOSUPPORT for other forms (e.g. vsock:),
 * -ENAMETOOLONG when it does not fit sun_path. */
int service_notify_addr(const char *env, struct sockaddr_un *sa, socklen_t *len);
/* Checks that fd is a listening AF_UNIX stream socket: 0 or the errors
 * listed under service_listen_fd. On macOS, where SO_ACCEPTCONN cannot be
 * read, a bound stream socket that does not listen passes too (the caller's
 * uv_listen makes it listen). */
int service_check_listener(int fd);
/* The verdict on getsockopt(SO_ACCEPTCONN): rc is 0 or its -errno, listening
 * the value it gave. 0 when listening or when the system cannot say
 * (-ENOPROTOOPT: xnu); -EINVAL when not listening; other errors as given. */
int service_listening_verdict(int rc, int listening);

#endif
