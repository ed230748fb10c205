/* The portable half of service activation: parsing of the variables systemd
 * sets, the NOTIFY_SOCKET address, and the check that an inherited descriptor
 * is what we expect. No I/O beyond getsockopt/getsockname on a given fd. */
#include "service.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A decimal number without sign, spaces or trailing bytes, up to max. */
static int parse_decimal(const char *s, long long max, long long *out)
{
    if (s == NULL || *s == '\0')
        return -ENOENT;
    long long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -EINVAL;
        v = v * 10 + (*p - '0');
        if (v > max)
            return -EINVAL;
    }
    *out = v;
    return 0;
}

int service_parse_listen_env(const char *pid, const char *fds, pid_t self, int *count)
{
    long long p, n;
    int rc = parse_decimal(pid, INT_MAX, &p);
    if (rc < 0)
        return rc;
    if ((rc = parse_decimal(fds, INT_MAX - 3, &n)) < 0)
        return rc;
    /* pid 0 is nobody: a variable left over from some other launcher. */
    if (p == 0)
        return -EINVAL;
    /* The variables were meant for a parent or a sibling that exec'ed us
     * without clearing them: not ours. */
    if (p != (long long)self)
        return -ENOENT;
    if (n == 0)
        return -ENOENT;
    *count = (int)n;
    return 0;
}

int service_find_fdname(const char *names, int count, const char *name)
{
    if (names == NULL || name == NULL || *name == '\0')
        return -ENOENT;
    size_t nl = strlen(name);
    const char *p = names;
    for (int i = 0; i < count; i++) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == nl && memcmp(p, name, nl) == 0)
            return i;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return -ENOENT;
}

int service_notify_addr(const char *env, struct sockaddr_un *sa, socklen_t *len)
{
    if (env == NULL || *env == '\0')
        return -ENOENT;
    if (env[0] != '/' && env[0] != '@')
        return -EAFNOSUPPORT;
    size_t n = strlen(env);
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (env[0] == '@') {
        /* Abstract namespace: a leading NUL, and the name is exactly the
         * bytes counted by the address length (no terminating NUL). */
        if (n > sizeof(sa->sun_path))
            return -ENAMETOOLONG;
        memcpy(sa->sun_path + 1, env + 1, n - 1);
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        return 0;
    }
    if (n >= sizeof(sa->sun_path))
        return -ENAMETOOLONG;
    memcpy(sa->sun_path, env, n);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

int service_check_listener(int fd)
{
    int type = 0;
    socklen_t tl = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
        return -errno; /* ENOTSOCK for a file, EBADF for nothing */
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
        return -errno;
    if (ss.ss_family != AF_UNIX)
        return -EAFNOSUPPORT;
    if (type != SOCK_STREAM)
        return -EPROTOTYPE;
    int listening = 0;
    socklen_t ll = sizeof(listening);
    int rc = getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) < 0 ? -errno : 0;
    return service_listening_verdict(rc, listening);
}

int service_listening_verdict(int rc, int listening)
{
    /* xnu's headers define SO_ACCEPTCONN, yet its getsockopt does not
     * implement it (ENOPROTOOPT), so on macOS whether a launchd socket
     * listens cannot be asked. Nothing is lost by passing it: launchd made it
     * listen, and uv_listen() calls listen() again anyway, which makes a
     * bound socket listen and only resizes the queue of one that does. */
    if (rc == -ENOPROTOOPT)
        return 0;
    if (rc < 0)
        return rc;
    return listening ? 0 : -EINVAL;
}
