/* Linux: the sockets are made inside the container's network namespace by
 * a worker thread that enters it with setns(2) (netns.c runs the thread). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "container.h"
#include "fsutil.h"
#include "netns.h"
#include "netns_int.h"
#include "util.h"

/* /proc/<pid>/cgroup is a few lines; a process in many v1 hierarchies with
 * deep paths stays well under this. */
#define CGROUP_CAP (64 * 1024)

/* Capability numbers (linux/capability.h), without needing libcap. */
#define CAP_SYS_PTRACE_BIT 19
#define CAP_SYS_ADMIN_BIT 21

static const char *proto_name(uint8_t proto)
{
    return proto == CTR_UDP ? "udp" : "tcp";
}

static void fail(netns_result *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(netns_result *r, int err, const char *fmt, ...)
{
    r->err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
}

/* The first 12 characters of the id, the way Docker shows it, made safe to
 * print (the id came from the engine). */
static const char *id12(const char *id, char *out, size_t cap)
{
    return printable(id, strnlen(id, 12), out, cap);
}

static bool real_cgroup_check(pid_t pid, const char *id)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
    char *text = NULL;
    size_t len = 0;
    if (fs_read_small(path, CGROUP_CAP, 0, 0, &text, &len, NULL, 0) < 0)
        return false;
    bool ok = netns_cgroup_names(text, len, id);
    free(text);
    return ok;
}

static int ns_stat(const char *path, struct stat *st)
{
    return stat(path, st) < 0 ? -errno : 0;
}

/* One socket of family af bound to the loopback address on port inside the
 * current namespace: the fd, or -errno. */
static int bind_loopback(int af, uint8_t proto, uint16_t port)
{
    int type = (proto == CTR_UDP ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC;
    int fd = socket(af, type, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    /* SO_REUSEADDR so a listener the daemon closed, with connections left
     * in TIME_WAIT, can be made again at once; TCP only: on UDP it would
     * let two sockets share the port. */
    if (proto != CTR_UDP && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail;
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof(ss));
    if (af == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof(*a);
    } else {
        /* V6ONLY: [::1] is its own socket; the IPv4 one is fd4. */
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
            goto fail;
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        a->sin6_addr = in6addr_loopback;
        sl = sizeof(*a);
    }
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
        goto fail;
    if (proto != CTR_UDP && listen(fd, SOMAXCONN) < 0)
        goto fail;
    return fd;
fail:;
    int e = -errno;
    close(fd);
    return e;
}

void netns_make(netns_result *r)
{
    const netns_request *q = &r->req;
    char idb[PRINTABLE_BUF];
    const char *proto = proto_name(q->proto);
    if (q->proto != CTR_TCP && q->proto != CTR_UDP) {
        fail(r, -EINVAL, "only TCP and UDP ports can be exposed inside a container");
        return;
    }
    if (q->port == 0) {
        fail(r, -EINVAL, "port 0 cannot be exposed inside a container");
        return;
    }
    if (q->pid <= 0) {
        fail(r, -ESRCH, "container %s has no process (it is not running)",
             id12(q->id, idb, sizeof(idb)));
        return;
    }
    bool (*check)(pid_t, const char *) = netns_cgroup_hook();
    if (!(check != NULL ? check : real_cgroup_check)(q->pid, q->id)) {
        char path[64];
        struct stat st;
        snprintf(path, sizeof(path), "/proc/%d", q->pid);
        if (stat(path, &st) < 0 && errno == ENOENT)
            fail(r, -ESRCH, "process %d of container %s is gone (the container stopped)", q->pid,
                 id12(q->id, idb, sizeof(idb)));
        else
            fail(r, -ESRCH,
                 "process %d is not container %s (its cgroup does not name it); the engine's "
                 "pids are not this machine's",
                 q->pid, id12(q->id, idb, sizeof(idb)));
        return;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/net", q->pid);
    int nsfd = open(path, O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) {
        int e = -errno;
        if (e == -ENOENT || e == -ESRCH)
            fail(r, -ESRCH, "process %d of container %s is gone (the container stopped)", q->pid,
                 id12(q->id, idb, sizeof(idb)));
        else if (e == -EACCES || e == -EPERM)
            fail(r, e,
                 "cannot open the network namespace of container %s: loopholed lacks "
                 "CAP_SYS_PTRACE",
                 id12(q->id, idb, sizeof(idb)));
        else
            fail(r, e, "cannot open the network namespace of container %s: %s",
                 id12(q->id, idb, sizeof(idb)), err_str(e));
        return;
    }
    struct stat theirs, ours;
    memset(&theirs, 0, sizeof(theirs));
    memset(&ours, 0, sizeof(ours));
    int rc = fstat(nsfd, &theirs) < 0 ? -errno : 0;
    if (rc == 0)
        rc = ns_stat("/proc/self/ns/net", &ours);
    if (rc < 0) {
        fail(r, rc, "cannot tell the network namespace of container %s: %s",
             id12(q->id, idb, sizeof(idb)), err_str(rc));
        close(nsfd);
        return;
    }
    r->ns_ino = (uint64_t)theirs.st_ino;
    if (theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino) {
        fail(r, -EEXIST, "the container shares the daemon's network namespace (--network host?)");
        close(nsfd);
        return;
    }
    rc = setns(nsfd, CLONE_NEWNET) < 0 ? -errno : 0;
    close(nsfd);
    if (rc == -EPERM) {
        fail(r, rc,
             "setns into the network namespace of container %s is refused: loopholed needs "
             "CAP_SYS_ADMIN, and a seccomp filter (systemd's RestrictNamespaces) must allow net",
             id12(q->id, idb, sizeof(idb)));
        return;
    }
    if (rc < 0) {
        fail(r, rc, "cannot enter the network namespace of container %s: %s",
             id12(q->id, idb, sizeof(idb)), err_str(rc));
        return;
    }
    int fd = bind_loopback(AF_INET, q->proto, q->port);
    if (fd == -EADDRINUSE) {
        fail(r, fd, "port %u/%s is already in use inside the container", q->port, proto);
        return;
    }
    if (fd == -EADDRNOTAVAIL) {
        fail(r, fd, "the container has no 127.0.0.1 (its loopback interface is down)");
        return;
    }
    if (fd < 0) {
        fail(r, fd, "cannot listen on 127.0.0.1:%u/%s inside the container: %s", q->port, proto,
             err_str(fd));
        return;
    }
    r->fd4 = fd;
    /* [::1] is a bonus: many images map localhost to ::1 first, but a
     * container without IPv6 loopback (EADDRNOTAVAIL, EAFNOSUPPORT) or with
     * the port taken on ::1 alone still has a working 127.0.0.1. */
    fd = bind_loopback(AF_INET6, q->proto, q->port);
    r->fd6 = fd >= 0 ? fd : -1;
}

/* The probe's thread: a setns() into the namespace we are already in. */
static void *probe_thread(void *arg)
{
    int *res = arg;
    int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *res = -errno;
        return NULL;
    }
    *res = setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
    close(fd);
    return NULL;
}

/* CapEff from /proc/self/status: 0 with *caps, or -errno. */
static int cap_eff(uint64_t *caps)
{
    char *text = NULL;
    size_t len = 0;
    int rc = fs_read_small("/proc/self/status", 64 * 1024, 0, 0, &text, &len, NULL, 0);
    if (rc < 0)
        return rc;
    rc = -ENOENT;
    for (char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, "CapEff:", 7) == 0) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(p + 7, &end, 16);
            if (errno == 0 && end != p + 7) {
                *caps = (uint64_t)v;
                rc = 0;
            }
            break;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    free(text);
    return rc;
}

int netns_probe(char *why, size_t len)
{
    if (why != NULL && len > 0)
        why[0] = '\0';
    uint64_t caps = 0;
    int rc = cap_eff(&caps);
    if (rc < 0) {
        set_err(why, len, "cannot read loopholed's capabilities from /proc/self/status: %s",
                err_str(rc));
        return -ENOTSUP;
    }
    bool admin = caps & (1ULL << CAP_SYS_ADMIN_BIT);
    bool ptrace = caps & (1ULL << CAP_SYS_PTRACE_BIT);
    if (!admin || !ptrace) {
        set_err(why, len,
                "loopholed lacks %s: run it as root without capability limits, or add %s to "
                "the unit",
                !admin && !ptrace ? "CAP_SYS_ADMIN (setns) and CAP_SYS_PTRACE (needed to open "
                                    "/proc/<pid>/ns/net of a container)"
                : !admin          ? "CAP_SYS_ADMIN (setns)"
                                  : "CAP_SYS_PTRACE (needed to open /proc/<pid>/ns/net of a "
                                    "container)",
                !admin && !ptrace ? "them" : "it");
        return -EPERM;
    }
    /* A thread of its own, as setns changes the calling thread; entering the
     * namespace it is already in changes nothing, but a seccomp filter
     * refuses it all the same. */
    int res = 0;
    pthread_t t;
    int e = pthread_create(&t, NULL, probe_thread, &res);
    if (e != 0) {
        set_err(why, len, "cannot start a thread to try setns: %s", err_str(-e));
        return -EPERM;
    }
    pthread_join(t, NULL);
    if (res == -EPERM) {
        set_err(why, len,
                "setns is refused (a seccomp filter: systemd's RestrictNamespaces must allow "
                "net)");
        return -EPERM;
    }
    if (res == -ENOSYS || res == -EINVAL || res == -ENOENT) {
        set_err(why, len, "this kernel cannot enter network namespaces (setns: %s)", err_str(res));
        return -ENOTSUP;
    }
    if (res < 0) {
        set_err(why, len, "setns into loopholed's own network namespace fails: %s", err_str(res));
        return -EPERM;
    }
    return 0;
}
