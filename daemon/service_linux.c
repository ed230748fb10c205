/* systemd integration without libsystemd: the sd_notify datagram and
 * LISTEN_FDS socket activation, both tiny, documented, stable protocols
 * (sd_notify(3), sd_listen_fds(3)). */
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Descriptors passed by socket activation start here (SD_LISTEN_FDS_START). */
#define LISTEN_FDS_START 3

int service_notify(const char *state)
{
    struct sockaddr_un sa;
    socklen_t sl;
    int rc = service_notify_addr(getenv("NOTIFY_SOCKET"), &sa, &sl);
    if (rc == -ENOENT)
        return 0; /* not started by systemd as Type=notify: nobody to tell */
    if (rc < 0)
        return rc;
    int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    size_t n = strlen(state);
    ssize_t sent;
    do {
        sent = sendto(s, state, n, MSG_NOSIGNAL, (struct sockaddr *)&sa, sl);
    } while (sent < 0 && errno == EINTR);
    rc = sent < 0 ? -errno : (size_t)sent == n ? 0 : -EMSGSIZE;
    close(s);
    return rc;
}

int service_notify_ready(void)
{
    return service_notify("READY=1");
}

int service_notify_stopping(void)
{
    return service_notify("STOPPING=1");
}

int service_listen_fd(const char *name, int *fd)
{
    const char *pid = getenv("LISTEN_PID");
    const char *fds = getenv("LISTEN_FDS");
    const char *names = getenv("LISTEN_FDNAMES");
    if (pid == NULL && fds == NULL)
        return -ENOENT;
    int count = 0;
    int rc = service_parse_listen_env(pid, fds, getpid(), &count);
    int idx = rc == 0 ? service_find_fdname(names, count, name) : -ENOENT;
    /* Our children (the resolver reload) must neither see the variables
     * nor inherit the descriptors. getenv's pointers die here, so names
     * was used above. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (rc < 0)
        return rc;
    for (int i = 0; i < count; i++) {
        int f = LISTEN_FDS_START + i;
        int flags = fcntl(f, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC))
            (void)fcntl(f, F_SETFD, flags | FD_CLOEXEC);
    }
    /* A unit without FileDescriptorName= (or an older launcher) names
     * nothing: the control socket is then the first descriptor. */
    int f = LISTEN_FDS_START + (idx >= 0 ? idx : 0);
    if ((rc = service_check_listener(f)) < 0)
        return rc;
    *fd = f;
    return 0;
}
