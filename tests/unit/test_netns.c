/* The netns maker: the pure cgroup check, results through the loop, and (as
 * root, on Linux) real sockets made in a network namespace that a forked
 * child creates with unshare(CLONE_NEWNET). The child is not a container,
 * so those tests replace the cgroup check with one that passes. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#ifdef __linux__
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#include "container.h"
#include "netns.h"
#include "test.h"

#define ID_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ID_B "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

static bool names(const char *text, const char *id)
{
    return netns_cgroup_names(text, strlen(text), id);
}

TEST(cgroup_shapes)
{
    /* cgroup v2 with the systemd driver, and with cgroupfs. */
    CHECK(names("0::/system.slice/docker-" ID_A ".scope\n", ID_A));
    CHECK(names("0::/docker/" ID_A "\n", ID_A));
    /* A process in a sub-cgroup of the scope. */
    CHECK(names("0::/system.slice/docker-" ID_A ".scope/init\n", ID_A));
    /* cgroup v1: many lines, the id on some. */
    CHECK(names("12:pids:/docker/" ID_A "\n11:cpuset:/docker/" ID_A "\n1:name=systemd:/docker/" ID_A
                "\n",
                ID_A));
    CHECK(names("3:cpu,cpuacct:/\n2:memory:/docker/" ID_A "\n", ID_A));
    /* Kubernetes with containerd, the cgroupfs and the systemd shapes. */
    CHECK(names("0::/kubepods/burstable/pod1234-5678/" ID_A "\n", ID_A));
    CHECK(names("0::/kubepods.slice/kubepods-besteffort.slice/cri-containerd-" ID_A ".scope\n",
                ID_A));
    CHECK(names("0::/k8s.io/" ID_A, ID_A)); /* no final newline */
    CHECK(names("0::/machine.slice/libpod-" ID_A ".scope\n", ID_A));
    /* A bare path, no hierarchy fields. */
    CHECK(names("docker/" ID_A "\n", ID_A));
    CHECK(names(ID_A, ID_A));
}

TEST(cgroup_refusals)
{
    /* Another container. */
    CHECK(!names("0::/system.slice/docker-" ID_B ".scope\n", ID_A));
    CHECK(!names("12:pids:/docker/" ID_B "\n", ID_A));
    /* The id inside a longer run of hex digits, either side. */
    CHECK(!names("0::/docker/0" ID_A "\n", ID_A));
    CHECK(!names("0::/docker/" ID_A "0\n", ID_A));
    CHECK(!names("0::/system.slice/docker-" ID_A "0.scope\n", ID_A));
    CHECK(!names("0::/system.slice/docker-0" ID_A ".scope\n", ID_A));
    /* Not a scope, or a scope without a manager. */
    CHECK(!names("0::/system.slice/docker-" ID_A ".service\n", ID_A));
    CHECK(!names("0::/system.slice/-" ID_A ".scope\n", ID_A));
    CHECK(!names("0::/system.slice/" ID_A ".scope\n", ID_A));
    /* The id in the controllers field is not a path. */
    CHECK(!names("1:" ID_A ":/\n", ID_A));
    /* A truncated id in the text, or asked for. */
    CHECK(!names("0::/docker/0123456789ab\n", ID_A));
    CHECK(!names("0::/docker/" ID_A "\n", "0123456789ab"));
    CHECK(!names("0::/docker/0123456789ab\n", "0123456789ab"));
    /* An id that is not 64 lower-case hex digits. */
    CHECK(!names("0::/docker/0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\n",
                 "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
    CHECK(!names("0::/docker/" ID_A "\n", ID_A "0"));
    CHECK(!names("0::/docker/" ID_A "\n", ""));
    /* Empty and garbage. */
    CHECK(!names("", ID_A));
    CHECK(!netns_cgroup_names(NULL, 0, ID_A));
    CHECK(!netns_cgroup_names("0::/docker/" ID_A, 0, ID_A));
    CHECK(!names("::::\n\n\n////\n:/:/:", ID_A));
    /* Cut by len before the id ends. */
    const char *t = "0::/docker/" ID_A "\n";
    CHECK(!netns_cgroup_names(t, strlen(t) - 2, ID_A));
    CHECK(netns_cgroup_names(t, strlen(t) - 1, ID_A));
    /* A NUL inside the text is one more byte that is not '/'. */
    static const char nul[] = "0::/docker/\0" ID_A "\n";
    CHECK(!netns_cgroup_names(nul, sizeof(nul) - 1, ID_A));
}

/* ---- the maker on a loop ---- */

#define MAX_RESULTS 16

typedef struct run {
    uv_loop_t loop;
    netns_maker *m;
    int want, got;
    netns_result r[MAX_RESULTS];
    bool close_early; /* close the maker in the first done */
} run;

static void on_done(void *ud, netns_result *r)
{
    run *t = ud;
    if (t->got < MAX_RESULTS)
        t->r[t->got] = *r;
    t->got++;
    if (t->close_early || t->got == t->want) {
        netns_maker_close(t->m);
        t->m = NULL;
    }
}

static netns_request req(const char *id, int pid, uint16_t port, uint8_t proto, uint64_t tag)
{
    netns_request q;
    memset(&q, 0, sizeof(q));
    snprintf(q.id, sizeof(q.id), "%s", id);
    q.pid = pid;
    q.port = port;
    q.proto = proto;
    q.tag = tag;
    return q;
}

/* Runs n requests through one maker to their results; 0 when the loop
 * closed cleanly. */
static int run_all(run *t, const netns_request *q, int n)
{
    memset(t, 0, sizeof(*t));
    t->want = n;
    if (uv_loop_init(&t->loop) != 0 || netns_maker_new(&t->loop, on_done, t, &t->m) != 0)
        return -1;
    for (int i = 0; i < n; i++)
        if (netns_open(t->m, &q[i]) != 0)
            return -2;
    uv_run(&t->loop, UV_RUN_DEFAULT);
    return uv_loop_close(&t->loop);
}

TEST(new_and_close_idle)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    netns_maker *m = NULL;
    CHECK_INT(netns_maker_new(NULL, on_done, NULL, &m), -EINVAL);
    CHECK(m == NULL);
    REQUIRE(netns_maker_new(&loop, on_done, NULL, &m) == 0);
    CHECK_INT(netns_open(m, NULL), -EINVAL);
    netns_maker_close(m);
    netns_maker_close(NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

#ifdef __APPLE__

TEST(darwin_not_supported)
{
    netns_request q = req(ID_A, getpid(), 8000, CTR_TCP, 7);
    run t;
    CHECK_INT(run_all(&t, &q, 1), 0);
    REQUIRE(t.got == 1);
    CHECK_INT(t.r[0].err, -ENOTSUP);
    CHECK_INT(t.r[0].fd4, -1);
    CHECK_INT(t.r[0].fd6, -1);
    CHECK_INT(t.r[0].req.tag, 7);
    CHECK_STR(t.r[0].msg, "network namespaces are Linux's; on macOS loophole uses relay sidecars");
    char why[200];
    CHECK_INT(netns_probe(why, sizeof(why)), -ENOTSUP);
    CHECK_STR(why, "network namespaces are Linux's; on macOS loophole uses relay sidecars");
}

#else

/* The connection the child made is queued by the time it answers, so a
 * non-blocking accept finds it, and a bug fails instead of hanging. */
static int accept_now(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return accept(fd, NULL, NULL);
}

static void close_fds(run *t)
{
    for (int i = 0; i < t->got && i < MAX_RESULTS; i++) {
        if (t->r[i].fd4 >= 0)
            close(t->r[i].fd4);
        if (t->r[i].fd6 >= 0)
            close(t->r[i].fd6);
    }
}

/* Open descriptors, counted after a loop has been made once: libuv's first
 * uv_loop_init opens process-wide descriptors (its signal lock pipe) that
 * stay open. */
static int count_fds(void)
{
    uv_loop_t warm;
    if (uv_loop_init(&warm) != 0 || uv_loop_close(&warm) != 0)
        return -1;
    int n = 0;
    DIR *d = opendir("/dev/fd");
    if (d == NULL)
        return -1;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

TEST(not_a_container)
{
    /* The test process is no container: its cgroup names no made-up id. A
     * pid that cannot exist, and no pid at all, are the other refusals. */
    netns_request q[3] = {req(ID_A, getpid(), 8000, CTR_TCP, 1),
                          req(ID_A, 0x7ffffff0, 8000, CTR_TCP, 2), req(ID_A, 0, 8000, CTR_UDP, 3)};
    run t;
    CHECK_INT(run_all(&t, q, 3), 0);
    REQUIRE(t.got == 3);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(t.r[i].req.tag, i + 1); /* in order */
        CHECK_INT(t.r[i].err, -ESRCH);
        CHECK_INT(t.r[i].fd4, -1);
        CHECK_INT(t.r[i].fd6, -1);
    }
    char want[200];
    snprintf(want, sizeof(want),
             "process %d is not container 0123456789ab (its cgroup does not name it); the "
             "engine's pids are not this machine's",
             (int)getpid());
    CHECK_STR(t.r[0].msg, want);
    CHECK_STR(t.r[1].msg,
              "process 2147483632 of container 0123456789ab is gone (the container stopped)");
    CHECK_STR(t.r[2].msg, "container 0123456789ab has no process (it is not running)");
}

TEST(hostile_id_printed_safely)
{
    netns_request q = req("\x1b[31m\n\"x", getpid(), 8000, CTR_TCP, 1);
    run t;
    CHECK_INT(run_all(&t, &q, 1), 0);
    REQUIRE(t.got == 1);
    CHECK_INT(t.r[0].err, -ESRCH);
    CHECK(strchr(t.r[0].msg, '\x1b') == NULL);
    CHECK(strchr(t.r[0].msg, '\n') == NULL);
    CHECK(strstr(t.r[0].msg, "\\x1b[31m\\x0a\\x22x") != NULL);
}

static bool pass_check(pid_t pid, const char *id)
{
    (void)pid;
    (void)id;
    return true;
}

TEST(own_namespace)
{
    /* The cgroup check passing, the daemon's own namespace is still refused. */
    netns_set_cgroup_check_for_tests(pass_check);
    netns_request q = req(ID_A, getpid(), 8000, CTR_TCP, 1);
    run t;
    CHECK_INT(run_all(&t, &q, 1), 0);
    netns_wait_idle_for_tests();
    netns_set_cgroup_check_for_tests(NULL);
    REQUIRE(t.got == 1);
    if (t.r[0].err == -EACCES || t.r[0].err == -EPERM)
        TEST_SKIP("cannot open this process's own /proc/<pid>/ns/net here");
    CHECK_INT(t.r[0].err, -EEXIST);
    CHECK_INT(t.r[0].fd4, -1);
    CHECK(t.r[0].ns_ino != 0);
    CHECK_STR(t.r[0].msg, "the container shares the daemon's network namespace (--network host?)");
}

TEST(bad_port_and_proto)
{
    netns_set_cgroup_check_for_tests(pass_check);
    netns_request q[2] = {req(ID_A, getpid(), 0, CTR_TCP, 1), req(ID_A, getpid(), 80, CTR_SCTP, 2)};
    run t;
    CHECK_INT(run_all(&t, q, 2), 0);
    netns_wait_idle_for_tests();
    netns_set_cgroup_check_for_tests(NULL);
    REQUIRE(t.got == 2);
    CHECK_INT(t.r[0].err, -EINVAL);
    CHECK_STR(t.r[0].msg, "port 0 cannot be exposed inside a container");
    CHECK_INT(t.r[1].err, -EINVAL);
    CHECK_STR(t.r[1].msg, "only TCP and UDP ports can be exposed inside a container");
}

/* ---- a namespace of our own (root) ---- */

/* A child in a new network namespace with lo up, which does what the test
 * asks through a pipe: connect to (or send to) a loopback port there, or
 * say whether [::1] exists. */
typedef struct child {
    pid_t pid;
    int cmd, reply; /* our ends */
} child;

typedef struct cmd {
    char op; /* 't' TCP connect, 'u' UDP send, '6' is there ::1 */
    int af;
    uint16_t port;
} cmd;

static int child_do(const cmd *c)
{
    if (c->op == '6') {
        int s = socket(AF_INET6, SOCK_DGRAM, 0);
        if (s < 0)
            return errno;
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
        int rc = bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ? errno : 0;
        close(s);
        return rc;
    }
    int s = socket(c->af, c->op == 'u' ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (s < 0)
        return errno;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t sl;
    if (c->af == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(c->port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sl = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(c->port);
        a->sin6_addr = in6addr_loopback;
        sl = sizeof(*a);
    }
    int rc = 0;
    if (c->op == 'u')
        rc = sendto(s, "ping", 4, 0, (struct sockaddr *)&ss, sl) == 4 ? 0 : errno;
    else
        rc = connect(s, (struct sockaddr *)&ss, sl) == 0 ? 0 : errno;
    close(s);
    return rc;
}

static void child_main(int cmd_fd, int reply_fd)
{
    int ok = 0;
    if (unshare(CLONE_NEWNET) < 0) {
        ok = errno;
    } else {
        /* lo comes up down in a new namespace. */
        int s = socket(AF_INET, SOCK_DGRAM, 0);
        struct ifreq ifr;
        memset(&ifr, 0, sizeof(ifr));
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
        if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
            ok = errno;
        ifr.ifr_flags |= IFF_UP;
        if (ok == 0 && ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
            ok = errno;
        if (s >= 0)
            close(s);
    }
    if (write(reply_fd, &ok, sizeof(ok)) != sizeof(ok) || ok != 0)
        _exit(1);
    cmd c;
    while (read(cmd_fd, &c, sizeof(c)) == sizeof(c)) {
        int rc = child_do(&c);
        if (write(reply_fd, &rc, sizeof(rc)) != sizeof(rc))
            _exit(1);
    }
    _exit(0);
}

/* 0 with a child in its namespace; else a reason to skip in why. */
static int child_start(child *c, const char **why)
{
    *why = NULL;
    if (geteuid() != 0) {
        *why = "needs root (unshare(CLONE_NEWNET), setns)";
        return -1;
    }
    int to[2], from[2];
    if (pipe(to) < 0 || pipe(from) < 0) {
        *why = "no pipes";
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        *why = "fork failed";
        return -1;
    }
    if (pid == 0) {
        close(to[1]);
        close(from[0]);
        child_main(to[0], from[1]);
    }
    close(to[0]);
    close(from[1]);
    c->pid = pid;
    c->cmd = to[1];
    c->reply = from[0];
    int ok = -1;
    if (read(c->reply, &ok, sizeof(ok)) != sizeof(ok) || ok != 0) {
        close(c->cmd);
        close(c->reply);
        waitpid(pid, NULL, 0);
        *why = "unshare(CLONE_NEWNET) or bringing lo up fails here";
        return -1;
    }
    return 0;
}

static int child_ask(child *c, char op, int af, uint16_t port)
{
    cmd m = {op, af, port};
    int rc = -1;
    if (write(c->cmd, &m, sizeof(m)) != sizeof(m) || read(c->reply, &rc, sizeof(rc)) != sizeof(rc))
        return -1;
    return rc;
}

static void child_stop(child *c)
{
    close(c->cmd);
    close(c->reply);
    waitpid(c->pid, NULL, 0);
}

/* A port free on this namespace's 127.0.0.1 a moment ago. */
static uint16_t free_port(int type)
{
    int s = socket(AF_INET, type, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(a);
    uint16_t port = 0;
    if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(s, (struct sockaddr *)&a, &sl) == 0)
        port = ntohs(a.sin_port);
    if (s >= 0)
        close(s);
    return port;
}

static int connect_here(uint16_t port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int rc = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0 ? 0 : errno;
    close(s);
    return rc;
}

TEST(namespace_tcp_udp)
{
    child c;
    const char *why;
    if (child_start(&c, &why) != 0)
        TEST_SKIP("%s", why);
    uint16_t port = free_port(SOCK_STREAM);
    uint16_t uport = free_port(SOCK_DGRAM);
    REQUIRE(port != 0 && uport != 0);
    bool has6 = child_ask(&c, '6', AF_INET6, 0) == 0;

    netns_set_cgroup_check_for_tests(pass_check);
    netns_request q[3] = {req(ID_A, c.pid, port, CTR_TCP, 1), req(ID_A, c.pid, port, CTR_TCP, 2),
                          req(ID_A, c.pid, uport, CTR_UDP, 3)};
    run t;
    CHECK_INT(run_all(&t, q, 3), 0);
    netns_wait_idle_for_tests();
    netns_set_cgroup_check_for_tests(NULL);
    REQUIRE(t.got == 3);

    /* The first: bound in the child's namespace, not ours. */
    netns_result *r = &t.r[0];
    CHECK_INT(r->err, 0);
    CHECK_STR(r->msg, "");
    REQUIRE(r->fd4 >= 0);
    struct sockaddr_in a;
    socklen_t sl = sizeof(a);
    REQUIRE(getsockname(r->fd4, (struct sockaddr *)&a, &sl) == 0);
    CHECK_INT(a.sin_family, AF_INET);
    CHECK_INT(ntohs(a.sin_port), port);
    CHECK_INT(ntohl(a.sin_addr.s_addr), INADDR_LOOPBACK);
    CHECK(fcntl(r->fd4, F_GETFD) & FD_CLOEXEC);
    CHECK_INT(child_ask(&c, 't', AF_INET, port), 0);
    int acc = accept_now(r->fd4);
    CHECK(acc >= 0);
    if (acc >= 0)
        close(acc);
    CHECK_INT(connect_here(port), ECONNREFUSED);
    struct stat st;
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)c.pid);
    REQUIRE(stat(path, &st) == 0);
    CHECK_INT(r->ns_ino, st.st_ino);

    /* [::1] exactly when the namespace has it. */
    CHECK_INT(r->fd6 >= 0, has6);
    if (r->fd6 >= 0) {
        struct sockaddr_in6 a6;
        sl = sizeof(a6);
        REQUIRE(getsockname(r->fd6, (struct sockaddr *)&a6, &sl) == 0);
        CHECK_INT(a6.sin6_family, AF_INET6);
        CHECK_INT(ntohs(a6.sin6_port), port);
        CHECK(memcmp(&a6.sin6_addr, &in6addr_loopback, sizeof(a6.sin6_addr)) == 0);
        CHECK_INT(child_ask(&c, 't', AF_INET6, port), 0);
        acc = accept_now(r->fd6);
        CHECK(acc >= 0);
        if (acc >= 0)
            close(acc);
    }

    /* The second asked for the same port: taken inside the container. */
    CHECK_INT(t.r[1].req.tag, 2);
    CHECK_INT(t.r[1].err, -EADDRINUSE);
    CHECK_INT(t.r[1].fd4, -1);
    CHECK_INT(t.r[1].fd6, -1);
    char want[100];
    snprintf(want, sizeof(want), "port %u/tcp is already in use inside the container", port);
    CHECK_STR(t.r[1].msg, want);

    /* UDP: a datagram sent inside the namespace arrives. */
    r = &t.r[2];
    CHECK_INT(r->err, 0);
    REQUIRE(r->fd4 >= 0);
    int type = 0;
    sl = sizeof(type);
    CHECK(getsockopt(r->fd4, SOL_SOCKET, SO_TYPE, &type, &sl) == 0 && type == SOCK_DGRAM);
    CHECK_INT(child_ask(&c, 'u', AF_INET, uport), 0);
    char buf[8];
    CHECK_INT(recv(r->fd4, buf, sizeof(buf), MSG_DONTWAIT), 4);
    CHECK_INT(r->fd6 >= 0, has6);

    close_fds(&t);
    child_stop(&c);
}

TEST(namespace_gone)
{
    /* The child's namespace dies with it: a request after it is a refusal. */
    child c;
    const char *why;
    if (child_start(&c, &why) != 0)
        TEST_SKIP("%s", why);
    pid_t pid = c.pid;
    child_stop(&c);
    netns_set_cgroup_check_for_tests(pass_check);
    netns_request q = req(ID_A, pid, 8000, CTR_TCP, 1);
    run t;
    CHECK_INT(run_all(&t, &q, 1), 0);
    netns_wait_idle_for_tests();
    netns_set_cgroup_check_for_tests(NULL);
    REQUIRE(t.got == 1);
    CHECK_INT(t.r[0].err, -ESRCH);
    CHECK_INT(t.r[0].fd4, -1);
    CHECK(strstr(t.r[0].msg, "is gone") != NULL);
}

TEST(close_in_flight)
{
    /* Close the maker with requests queued and one being made: nothing is
     * delivered, the loop closes, and once the worker is done no descriptor
     * is left open. */
    child c;
    const char *why;
    bool have_child = child_start(&c, &why) == 0;
    int pid = have_child ? c.pid : getpid();
    int before = count_fds();
    REQUIRE(before > 0);
    netns_set_cgroup_check_for_tests(pass_check);
    netns_request q[4];
    for (int i = 0; i < 4; i++)
        q[i] = req(ID_A, pid, free_port(SOCK_STREAM), CTR_TCP, (uint64_t)i);
    run t;
    memset(&t, 0, sizeof(t));
    t.want = 100;
    REQUIRE(uv_loop_init(&t.loop) == 0);
    REQUIRE(netns_maker_new(&t.loop, on_done, &t, &t.m) == 0);
    for (int i = 0; i < 4; i++)
        CHECK_INT(netns_open(t.m, &q[i]), 0);
    netns_maker_close(t.m);
    CHECK_INT(netns_open(t.m, &q[0]), -EINVAL);
    t.m = NULL;
    uv_run(&t.loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&t.loop), 0);
    netns_wait_idle_for_tests();
    netns_set_cgroup_check_for_tests(NULL);
    CHECK_INT(t.got, 0);
    CHECK_INT(count_fds(), before);
    if (have_child)
        child_stop(&c);
}

TEST(close_from_done)
{
    /* done closes the maker on the first result: the rest, made or not,
     * are dropped with their sockets. */
    child c;
    const char *why;
    if (child_start(&c, &why) != 0)
        TEST_SKIP("%s", why);
    int before = count_fds();
    netns_set_cgroup_check_for_tests(pass_check);
    netns_request q[4];
    for (int i = 0; i < 4; i++)
        q[i] = req(ID_A, c.pid, free_port(SOCK_STREAM), CTR_TCP, (uint64_t)i);
    run t;
    memset(&t, 0, sizeof(t));
    t.close_early = true;
    REQUIRE(uv_loop_init(&t.loop) == 0);
    REQUIRE(netns_maker_new(&t.loop, on_done, &t, &t.m) == 0);
    for (int i = 0; i < 4; i++)
        CHECK_INT(netns_open(t.m, &q[i]), 0);
    uv_run(&t.loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&t.loop), 0);
    netns_wait_idle_for_tests();
    netns_set_cgroup_check_for_tests(NULL);
    CHECK_INT(t.got, 1);
    CHECK_INT(t.r[0].req.tag, 0);
    CHECK_INT(t.r[0].err, 0);
    CHECK(t.r[0].fd4 >= 0);
    close_fds(&t);
    CHECK_INT(count_fds(), before);
    child_stop(&c);
}

/* ---- the probe ---- */

/* Runs netns_probe in a forked child after prep(); its result and sentence. */
static int probe_in_child(bool (*prep)(void), char *why, size_t len)
{
    int p[2];
    if (pipe(p) < 0)
        return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        struct {
            int rc;
            char why[300];
        } out;
        memset(&out, 0, sizeof(out));
        out.rc = prep() ? netns_probe(out.why, sizeof(out.why)) : 1;
        ssize_t w = write(p[1], &out, sizeof(out));
        _exit(w == (ssize_t)sizeof(out) ? 0 : 1);
    }
    close(p[1]);
    struct {
        int rc;
        char why[300];
    } in;
    memset(&in, 0, sizeof(in));
    int rc = 1;
    if (read(p[0], &in, sizeof(in)) == (ssize_t)sizeof(in)) {
        rc = in.rc;
        snprintf(why, len, "%s", in.why);
    }
    close(p[0]);
    waitpid(pid, NULL, 0);
    return rc;
}

static bool become_nobody(void)
{
    /* From root to another uid without keepcaps: every capability goes. */
    return setgid(65534) == 0 && setuid(65534) == 0;
}

static bool refuse_setns(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_setns, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
           prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

TEST(probe)
{
    char why[300] = "x";
    int rc = netns_probe(why, sizeof(why));
    if (geteuid() != 0) {
        CHECK_INT(rc, -EPERM);
        CHECK(strstr(why, "CAP_SYS_ADMIN") != NULL);
        return;
    }
    if (rc != 0)
        TEST_SKIP("root here cannot use setns: %s", why);
    CHECK_STR(why, "");

    CHECK_INT(probe_in_child(become_nobody, why, sizeof(why)), -EPERM);
    CHECK_STR(why, "loopholed lacks CAP_SYS_ADMIN (setns) and CAP_SYS_PTRACE (needed to open "
                   "/proc/<pid>/ns/net of a container): run it as root without capability "
                   "limits, or add them to the unit");

    CHECK_INT(probe_in_child(refuse_setns, why, sizeof(why)), -EPERM);
    CHECK_STR(why, "setns is refused (a seccomp filter: systemd's RestrictNamespaces must allow "
                   "net)");
}

#endif
