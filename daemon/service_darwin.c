/* launchd integration: launchd has no readiness protocol (a LaunchDaemon is
 * "running" once exec'ed), and it hands over the sockets of the plist's
 * Sockets dictionary through launch_activate_socket(3). */
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <launch.h>
#include <stdlib.h>
#include <unistd.h>

int service_notify(const char *state)
{
    (void)state;
    return 0;
}

int service_notify_ready(void)
{
    return 0;
}

int service_notify_stopping(void)
{
    return 0;
}

int service_listen_fd(const char *name, int *fd)
{
    int *fds = NULL;
    size_t cnt = 0;
    int err = launch_activate_socket(name, &fds, &cnt);
    /* ESRCH: not started by launchd (by hand, or Homebrew's generated plist,
     * which has no Sockets entry); ENOENT: the plist has no socket of that
     * name. Either way the daemon binds the socket itself. */
    if (err == ESRCH || err == ENOENT)
        return -ENOENT;
    /* Other codes are not documented for "not activated", yet a sandbox
     * (brew test) or a future launchd may return them when there is simply
     * no socket for us: binding our own then beats refusing to start. Only
     * EALREADY (the socket was taken already) says a passed socket is lost. */
    if (err == EALREADY)
        return -err;
    if (err != 0)
        return -ENOENT;
    if (fds == NULL || cnt == 0) {
        free(fds);
        return -ENOENT;
    }
    /* A unix SockPathName yields one descriptor; close any extra so none
     * leaks (launchd would create several only for a host name). */
    for (size_t i = 1; i < cnt; i++)
        close(fds[i]);
    int f = fds[0];
    free(fds);
    int flags = fcntl(f, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC))
        (void)fcntl(f, F_SETFD, flags | FD_CLOEXEC);
    int rc = service_check_listener(f);
    if (rc < 0) {
        close(f);
        return rc;
    }
    *fd = f;
    return 0;
}
