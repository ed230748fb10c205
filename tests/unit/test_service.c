/* Unit tests for service activation: LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES
 * parsing, the NOTIFY_SOCKET address, and, with real sockets, READY=1
 * arriving on a unix datagram socket (a path and an abstract '@' name) and a
 * listening socket passed as fd 3 to a forked child. */
#include "service.h"
#include "util.h"

#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[64];

TEST(parse_listen_env)
{
    int n = -1;
    CHECK_INT(service_parse_listen_env("4242", "1", 4242, &n), 0);
    CHECK_INT(n, 1);
    CHECK_INT(service_parse_listen_env("4242", "3", 4242, &n), 0);
    CHECK_INT(n, 3);
    n = -1;
    /* Meant for another process: not ours, not an error. */
    CHECK_INT(service_parse_listen_env("4243", "1", 4242, &n), -ENOENT);
    CHECK_INT(n, -1);
    CHECK_INT(service_parse_listen_env("4242", "0", 4242, &n), -ENOENT);
    CHECK_INT(service_parse_listen_env(NULL, "1", 4242, &n), -ENOENT);
    CHECK_INT(service_parse_listen_env("4242", NULL, 4242, &n), -ENOENT);
    CHECK_INT(service_parse_listen_env("", "1", 4242, &n), -ENOENT);
    CHECK_INT(service_parse_listen_env("4242", "", 4242, &n), -ENOENT);
    /* Garbage. */
    CHECK_INT(service_parse_listen_env("42x", "1", 42, &n), -EINVAL);
    CHECK_INT(service_parse_listen_env("4242", "one", 4242, &n), -EINVAL);
    CHECK_INT(service_parse_listen_env("4242", "-1", 4242, &n), -EINVAL);
    CHECK_INT(service_parse_listen_env("4242", " 1", 4242, &n), -EINVAL);
    CHECK_INT(service_parse_listen_env("4242", "1 ", 4242, &n), -EINVAL);
    CHECK_INT(service_parse_listen_env("+4242", "1", 4242, &n), -EINVAL);
    CHECK_INT(service_parse_listen_env("0", "1", 0, &n), -EINVAL);
    CHECK_INT(service_parse_listen_env("4242", "99999999999999999999999", 4242, &n), -EINVAL);
    CHECK_INT(service_parse_listen_env("99999999999999999999999", "1", 4242, &n), -EINVAL);
    CHECK_INT(n, -1);
}

TEST(find_fdname)
{
    CHECK_INT(service_find_fdname("Control", 1, "Control"), 0);
    CHECK_INT(service_find_fdname("dns:Control:x", 3, "Control"), 1);
    CHECK_INT(service_find_fdname("::Control", 3, "Control"), 2);
    /* Names beyond LISTEN_FDS do not count. */
    CHECK_INT(service_find_fdname("dns:Control", 1, "Control"), -ENOENT);
    CHECK_INT(service_find_fdname("Contro:Controls", 2, "Control"), -ENOENT);
    CHECK_INT(service_find_fdname("loophole.socket", 1, "Control"), -ENOENT);
    CHECK_INT(service_find_fdname(NULL, 1, "Control"), -ENOENT);
    CHECK_INT(service_find_fdname("", 1, "Control"), -ENOENT);
}

TEST(notify_addr)
{
    struct sockaddr_un sa;
    socklen_t len = 0;
    const size_t base = offsetof(struct sockaddr_un, sun_path);
    CHECK_INT(service_notify_addr("/run/systemd/notify", &sa, &len), 0);
    CHECK_INT(sa.sun_family, AF_UNIX);
    CHECK_STR(sa.sun_path, "/run/systemd/notify");
    CHECK_INT(len, base + strlen("/run/systemd/notify") + 1);

    CHECK_INT(service_notify_addr("@abstract/name", &sa, &len), 0);
    CHECK_INT(sa.sun_path[0], '\0');
    CHECK(memcmp(sa.sun_path + 1, "abstract/name", 13) == 0);
    /* The length counts the leading NUL and the name, nothing more: an
     * abstract name with a trailing NUL is a different name. */
    CHECK_INT(len, base + 1 + 13);

    CHECK_INT(service_notify_addr(NULL, &sa, &len), -ENOENT);
    CHECK_INT(service_notify_addr("", &sa, &len), -ENOENT);
    CHECK_INT(service_notify_addr("relative/path", &sa, &len), -EAFNOSUPPORT);
    CHECK_INT(service_notify_addr("vsock:2:1234", &sa, &len), -EAFNOSUPPORT);
    char longp[sizeof(sa.sun_path) + 8];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    CHECK_INT(service_notify_addr(longp, &sa, &len), -ENAMETOOLONG);
    longp[0] = '@';
    CHECK_INT(service_notify_addr(longp, &sa, &len), -ENAMETOOLONG);
    /* The longest abstract name that fits: sun_path minus the leading NUL. */
    longp[sizeof(sa.sun_path)] = '\0';
    CHECK_INT(service_notify_addr(longp, &sa, &len), 0);
    CHECK_INT(len, sizeof(sa));
}

static int unix_socket(int type, const char *path, int backlog)
{
    int s = socket(AF_UNIX, type, 0);
    if (s < 0)
        return -1;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strlcpy_(sa.sun_path, path, sizeof(sa.sun_path));
    unlink(path);
    if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        (backlog > 0 && listen(s, backlog) < 0)) {
        close(s);
        return -1;
    }
    return s;
}

TEST(check_listener)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/l.sock", tmpdir);
    int l = unix_socket(SOCK_STREAM, path, 8);
    REQUIRE(l >= 0);
    CHECK_INT(service_check_listener(l), 0);
    close(l);

    int b = unix_socket(SOCK_STREAM, path, 0); /* bound, never listen() */
    REQUIRE(b >= 0);
#ifdef __APPLE__
    /* xnu cannot say whether a socket listens (no SO_ACCEPTCONN): a bound
     * stream socket passes, and the caller's uv_listen makes it listen. */
    CHECK_INT(service_check_listener(b), 0);
#else
    CHECK_INT(service_check_listener(b), -EINVAL);
#endif
    close(b);

    snprintf(path, sizeof(path), "%s/d.sock", tmpdir);
    int d = unix_socket(SOCK_DGRAM, path, 0);
    REQUIRE(d >= 0);
    CHECK_INT(service_check_listener(d), -EPROTOTYPE);
    close(d);

    int t = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(t >= 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(t, (struct sockaddr *)&sin, sizeof(sin)) == 0 && listen(t, 1) == 0);
    CHECK_INT(service_check_listener(t), -EAFNOSUPPORT);
    close(t);

    int p[2];
    REQUIRE(pipe(p) == 0);
    CHECK_INT(service_check_listener(p[0]), -ENOTSOCK);
    close(p[0]);
    close(p[1]);
    CHECK_INT(service_check_listener(p[0]), -EBADF);
}

TEST(listening_verdict)
{
    CHECK_INT(service_listening_verdict(0, 1), 0);
    CHECK_INT(service_listening_verdict(0, 0), -EINVAL);
    /* macOS: getsockopt(SO_ACCEPTCONN) is ENOPROTOOPT, which must not refuse
     * launchd's socket (the daemon would exit and be restarted forever). */
    CHECK_INT(service_listening_verdict(-ENOPROTOOPT, 0), 0);
    CHECK_INT(service_listening_verdict(-EBADF, 0), -EBADF);
    CHECK_INT(service_listening_verdict(-ENOTSOCK, 1), -ENOTSOCK);
}

#ifdef __linux__
/* Receives one pending datagram without waiting: sendto on a unix datagram
 * socket has queued it on the receiver by the time it returns, so there is
 * nothing to wait for. "" when none is queued. */
static void recv_now(int s, char *out, size_t cap)
{
    ssize_t n = recv(s, out, cap - 1, MSG_DONTWAIT);
    out[n > 0 ? (size_t)n : 0] = '\0';
}

TEST(notify_path)
{
    char path[128], got[64];
    snprintf(path, sizeof(path), "%s/notify.sock", tmpdir);
    int s = unix_socket(SOCK_DGRAM, path, 0);
    REQUIRE(s >= 0);
    REQUIRE(setenv("NOTIFY_SOCKET", path, 1) == 0);
    CHECK_INT(service_notify_ready(), 0);
    recv_now(s, got, sizeof(got));
    CHECK_STR(got, "READY=1");
    CHECK_INT(service_notify_stopping(), 0);
    recv_now(s, got, sizeof(got));
    CHECK_STR(got, "STOPPING=1");
    CHECK_INT(service_notify("STATUS=waiting for Docker"), 0);
    recv_now(s, got, sizeof(got));
    CHECK_STR(got, "STATUS=waiting for Docker");
    recv_now(s, got, sizeof(got));
    CHECK_STR(got, ""); /* exactly one datagram per call */
    close(s);
    unlink(path);
    /* The socket is gone: the error is reported, not swallowed. */
    CHECK(service_notify_ready() < 0);
    unsetenv("NOTIFY_SOCKET");
}

TEST(notify_abstract)
{
    char name[96], got[64];
    snprintf(name, sizeof(name), "loophole-test-notify-%ld", (long)getpid());
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    REQUIRE(s >= 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path + 1, name, strlen(name));
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
    REQUIRE(bind(s, (struct sockaddr *)&sa, len) == 0);

    char env[100];
    snprintf(env, sizeof(env), "@%s", name);
    REQUIRE(setenv("NOTIFY_SOCKET", env, 1) == 0);
    CHECK_INT(service_notify_ready(), 0);
    recv_now(s, got, sizeof(got));
    CHECK_STR(got, "READY=1");

    /* Unset: a no-op that succeeds and sends nothing. */
    unsetenv("NOTIFY_SOCKET");
    CHECK_INT(service_notify_ready(), 0);
    CHECK_INT(service_notify_stopping(), 0);
    recv_now(s, got, sizeof(got));
    CHECK_STR(got, "");

    /* A form we do not speak is an error, not a silent success. */
    REQUIRE(setenv("NOTIFY_SOCKET", "vsock:2:9", 1) == 0);
    CHECK_INT(service_notify_ready(), -EAFNOSUPPORT);
    unsetenv("NOTIFY_SOCKET");
    close(s);
}

/* Child-side checks of service_listen_fd; the exit status is the number of
 * the first failed step (0: all passed). */
static int child_listen(const char *path, int variant)
{
    /* Kept above 3 and 4 so the dup2 calls below cannot overwrite it. */
    int l0 = unix_socket(SOCK_STREAM, path, 8);
    int l = l0 >= 0 ? fcntl(l0, F_DUPFD, 10) : -1;
    if (l < 0)
        return 10;
    close(l0);
    char pid[32];
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    int want = 3;
    switch (variant) {
    case 0: /* plain: one fd, no names */
        if (dup2(l, 3) != 3)
            return 11;
        setenv("LISTEN_FDS", "1", 1);
        break;
    case 1: { /* two fds, the control socket named second */
        char dpath[160];
        snprintf(dpath, sizeof(dpath), "%s.dgram", path);
        int d0 = unix_socket(SOCK_DGRAM, dpath, 0);
        int d = d0 >= 0 ? fcntl(d0, F_DUPFD, 10) : -1;
        if (d0 >= 0)
            close(d0);
        if (d < 0 || dup2(d, 3) != 3 || dup2(l, 4) != 4)
            return 11;
        close(d);
        setenv("LISTEN_FDS", "2", 1);
        setenv("LISTEN_FDNAMES", "other:Control", 1);
        want = 4;
        break;
    }
    case 2: /* meant for our parent */
        if (dup2(l, 3) != 3)
            return 11;
        snprintf(pid, sizeof(pid), "%ld", (long)getppid());
        setenv("LISTEN_FDS", "1", 1);
        break;
    case 3: { /* fd 3 is not a socket */
        int p[2];
        if (pipe(p) < 0 || dup2(p[0], 3) != 3)
            return 11;
        setenv("LISTEN_FDS", "1", 1);
        break;
    }
    case 4: /* garbage count */
        setenv("LISTEN_FDS", "lots", 1);
        break;
    }
    close(l);
    setenv("LISTEN_PID", pid, 1);

    int fd = -1;
    int rc = service_listen_fd(SERVICE_CONTROL_SOCKET_NAME, &fd);
    if (getenv("LISTEN_PID") || getenv("LISTEN_FDS") || getenv("LISTEN_FDNAMES"))
        return 20; /* must be cleared in every case */
    if (variant == 2)
        return rc == -ENOENT && fd == -1 ? 0 : 21;
    if (variant == 3)
        return rc == -ENOTSOCK ? 0 : 22;
    if (variant == 4)
        return rc == -EINVAL ? 0 : 23;
    if (rc != 0 || fd != want)
        return 24;
    if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
        return 25;
    /* The descriptor really is the listener at path: a client connects and
     * the connection is accepted on it. */
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    strlcpy_(sa.sun_path, path, sizeof(sa.sun_path));
    if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return 26;
    int a = accept(fd, NULL, NULL);
    if (a < 0 || write(c, "x", 1) != 1)
        return 27;
    char ch = 0;
    if (read(a, &ch, 1) != 1 || ch != 'x')
        return 28;
    close(a);
    close(c);
    close(fd);
    return 0;
}

static int run_child(int variant)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/control%d.sock", tmpdir, variant);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0)
        _exit(child_listen(path, variant));
    int st = 0;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -2;
    return WEXITSTATUS(st);
}

TEST(listen_fd)
{
    CHECK_INT(run_child(0), 0);
    CHECK_INT(run_child(1), 0);
    CHECK_INT(run_child(2), 0);
    CHECK_INT(run_child(3), 0);
    CHECK_INT(run_child(4), 0);
    /* Nothing set at all: not activated. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    int fd = -1;
    CHECK_INT(service_listen_fd(SERVICE_CONTROL_SOCKET_NAME, &fd), -ENOENT);
    CHECK_INT(fd, -1);
}
#else
/* Elsewhere (macOS) there is no systemd: a visible skip, not a silent pass. */
TEST(notify_path)
{
    TEST_SKIP("systemd's notify socket is Linux only");
}

TEST(notify_abstract)
{
    TEST_SKIP("abstract unix sockets are Linux only");
}

TEST(listen_fd)
{
    TEST_SKIP("systemd socket activation is Linux only");
}

TEST(not_activated)
{
    /* Not started by launchd: the daemon binds its own socket, and there is
     * no readiness protocol to speak. */
    int fd = -1;
    CHECK_INT(service_listen_fd(SERVICE_CONTROL_SOCKET_NAME, &fd), -ENOENT);
    CHECK_INT(fd, -1);
    CHECK_INT(service_notify_ready(), 0);
    CHECK_INT(service_notify_stopping(), 0);
}
#endif

#ifdef __linux__
TEST(not_activated)
{
    TEST_SKIP("launchd activation is macOS only");
}
#endif

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
}

TEST_SETUP()
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/loophole-service-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

TEST_TEARDOWN()
{
    remove_tmpdir();
}
