/* The reachability prober (daemon/reach.c) against sockets of the test's
 * own on 127.0.0.1: a bound socket that does not listen (refused), a
 * listener whose accepts are counted (connected), and a listener with a
 * full accept queue, on which Linux drops SYNs (a connect that hangs). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <uv.h>

#include "reach.h"
#include "test.h"

typedef struct seen {
    int calls;
    int state;
    char network[REACH_NAME_MAX];
    reach_prober *close_from_cb; /* closes this prober on the first call */
} seen;

static void on_changed(void *ud, const char *network, int state)
{
    seen *s = ud;
    s->calls++;
    s->state = state;
    snprintf(s->network, sizeof(s->network), "%s", network);
    if (s->close_from_cb != NULL) {
        reach_close(s->close_from_cb);
        s->close_from_cb = NULL;
    }
}

/* A TCP socket bound to 127.0.0.1 on a port of the kernel's choice, listening
 * with backlog when backlog >= 0; non-blocking. Returns the fd, *port set. */
static int loopback_socket(int backlog, uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        (backlog >= 0 && listen(fd, backlog) != 0) ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Accepts (and closes) every connection queued on fd. When want > 0, waits
 * up to a second for the connections a finished probe made: the client's
 * last ACK may still be on its way through loopback. */
static int accepts(int fd, int want)
{
    int n = 0;
    for (;;) {
        int c = accept(fd, NULL, NULL);
        if (c >= 0) {
            close(c);
            n++;
            continue;
        }
        if (n >= want)
            return n;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 1000) <= 0)
            return n;
    }
}

/* A non-blocking connect to 127.0.0.1:port; *done is whether it completed
 * within wait_ms. Returns the fd. */
static int dial(uint16_t port, int wait_ms, bool *done)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(port);
    int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    *done = r == 0;
    if (r != 0 && errno == EINPROGRESS) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        *done = poll(&pfd, 1, wait_ms) == 1;
    }
    return fd;
}

static void run_idle(uv_loop_t *loop, reach_prober *p)
{
    while (reach_pending(p) > 0)
        uv_run(loop, UV_RUN_ONCE);
}

static int close_all(uv_loop_t *loop, reach_prober *p)
{
    reach_close(p);
    uv_run(loop, UV_RUN_DEFAULT);
    return uv_loop_close(loop);
}

TEST(classify)
{
    CHECK_INT(reach_classify(0), REACH_OK);
    CHECK_INT(reach_classify(UV_ECONNREFUSED), REACH_OK);
    CHECK_INT(reach_classify(UV_ETIMEDOUT), REACH_UNREACHABLE);
    CHECK_INT(reach_classify(UV_EHOSTUNREACH), REACH_UNREACHABLE);
    CHECK_INT(reach_classify(UV_ENETUNREACH), REACH_UNREACHABLE);
    CHECK_INT(reach_classify(UV_EACCES), REACH_UNREACHABLE);
    CHECK_INT(reach_classify(UV_EPERM), REACH_UNREACHABLE);
    CHECK_INT(reach_classify(UV_ECONNRESET), REACH_UNREACHABLE);
    CHECK_INT(reach_classify(UV_EINVAL), REACH_UNREACHABLE);
    CHECK_INT(REACH_UNKNOWN, 0);
    CHECK_INT(REACH_OK, 1);
    CHECK_INT(REACH_UNREACHABLE, 2);
}

TEST(new_refuses_null)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    reach_prober *p = NULL;
    seen s = {0};
    CHECK_INT(reach_new(NULL, 0, on_changed, &s, &p), -EINVAL);
    CHECK_INT(reach_new(&loop, 0, NULL, &s, &p), -EINVAL);
    CHECK_INT(reach_new(&loop, 0, on_changed, &s, NULL), -EINVAL);
    CHECK(p == NULL);
    reach_close(NULL);
    CHECK_INT(reach_state(NULL, "x"), REACH_UNKNOWN);
    CHECK_INT(uv_loop_close(&loop), 0);
}

TEST(refused_is_reachable)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    uint16_t port;
    int fd = loopback_socket(-1, &port); /* bound, not listening: refused */
    REQUIRE(fd >= 0);
    seen s = {0};
    reach_prober *p;
    REQUIRE(reach_new(&loop, 200, on_changed, &s, &p) == 0);

    reach_probe(p, "bridge", "127.0.0.1", port);
    CHECK_INT(reach_pending(p), 1);
    CHECK_INT(s.calls, 0); /* never from inside reach_probe */
    CHECK_INT(reach_state(p, "bridge"), REACH_UNKNOWN);
    run_idle(&loop, p);
    CHECK_INT(s.calls, 1);
    CHECK_INT(s.state, REACH_OK);
    CHECK_STR(s.network, "bridge");
    CHECK_INT(reach_state(p, "bridge"), REACH_OK);
    CHECK_INT(reach_state(p, "other"), REACH_UNKNOWN);

    CHECK_INT(close_all(&loop, p), 0);
    close(fd);
}

TEST(listening_is_reachable_and_cached)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    uint16_t port;
    int fd = loopback_socket(16, &port);
    REQUIRE(fd >= 0);
    seen s = {0};
    reach_prober *p;
    REQUIRE(reach_new(&loop, 0, on_changed, &s, &p) == 0);

    reach_probe(p, "app_default", "127.0.0.1", port);
    run_idle(&loop, p);
    CHECK_INT(s.calls, 1);
    CHECK_INT(s.state, REACH_OK);
    CHECK_INT(accepts(fd, 1), 1);

    /* Cached: no second connect, no call. */
    reach_probe(p, "app_default", "127.0.0.1", port);
    CHECK_INT(reach_pending(p), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_INT(accepts(fd, 0), 0);
    CHECK_INT(s.calls, 1);

    /* Forgotten: UNKNOWN without a call, and the next probe connects and
     * reports the result as a change from UNKNOWN. */
    reach_forget(p, "app_default");
    CHECK_INT(reach_state(p, "app_default"), REACH_UNKNOWN);
    CHECK_INT(s.calls, 1);
    reach_forget(p, "never_seen");
    reach_probe(p, "app_default", "127.0.0.1", port);
    CHECK_INT(reach_pending(p), 1);
    run_idle(&loop, p);
    CHECK_INT(accepts(fd, 1), 1);
    CHECK_INT(s.calls, 2);
    CHECK_INT(s.state, REACH_OK);

    CHECK_INT(close_all(&loop, p), 0);
    close(fd);
}

/* A listener with backlog 0 holds one connection in its accept queue; with
 * that taken, Linux drops further SYNs (net.ipv4.tcp_abort_on_overflow=0),
 * so a connect hangs until its SYN is retransmitted a second later. Returns
 * the listener, *filler the connection that fills its queue, or -1 with a
 * reason when this kernel does not behave so. */
static int hanging_listener(uint16_t *port, int *filler, const char **why)
{
    int fd = loopback_socket(0, port);
    if (fd < 0) {
        *why = "no loopback listener";
        return -1;
    }
    bool done;
    *filler = dial(*port, 1000, &done);
    if (*filler < 0 || !done) {
        *why = "the first connection to a backlog-0 listener did not complete";
        goto fail;
    }
    int check = dial(*port, 300, &done);
    if (check >= 0)
        close(check);
    if (check < 0 || done) {
        *why = "this kernel completes connects to a listener with a full accept queue";
        goto fail;
    }
    return fd;
fail:
    if (*filler >= 0)
        close(*filler);
    close(fd);
    return -1;
}

TEST(timeout_is_unreachable_then_rechecked)
{
    uint16_t port;
    int filler = -1;
    const char *why = NULL;
    int fd = hanging_listener(&port, &filler, &why);
    if (fd < 0)
        TEST_SKIP("%s", why);
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    seen s = {0};
    reach_prober *p;
    REQUIRE(reach_new(&loop, 200, on_changed, &s, &p) == 0);
    reach_set_intervals(p, 0, 50, 100);

    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    reach_probe(p, "slow", "127.0.0.1", port);
    run_idle(&loop, p);
    uv_update_time(&loop);
    CHECK(uv_now(&loop) - t0 >= 190);
    CHECK_INT(s.calls, 1);
    CHECK_INT(s.state, REACH_UNREACHABLE);
    CHECK_INT(reach_state(p, "slow"), REACH_UNREACHABLE);

    /* Empty the queue: the next re-check (planned by the prober itself)
     * connects, and the state turns OK with one more call. */
    CHECK_INT(accepts(fd, 1), 1);
    close(filler);
    while (s.calls < 2)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT(s.calls, 2);
    CHECK_INT(s.state, REACH_OK);
    CHECK_INT(reach_state(p, "slow"), REACH_OK);
    /* Reachable: no re-check planned, the loop runs dry. */
    CHECK_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    CHECK_INT(s.calls, 2);

    CHECK_INT(close_all(&loop, p), 0);
    close(fd);
}

/* A reachable network whose re-probe times out once is probed again after
 * REACH_CONFIRM_MS before it counts as unreachable: one changed() call, at
 * the second failure, not at the first. */
TEST(reachable_needs_two_failures)
{
    uint16_t port;
    int filler = -1;
    const char *why = NULL;
    int fd = hanging_listener(&port, &filler, &why);
    if (fd < 0)
        TEST_SKIP("%s", why);
    uint16_t refused;
    int rfd = loopback_socket(-1, &refused);
    REQUIRE(rfd >= 0);
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    seen s = {0};
    reach_prober *p;
    REQUIRE(reach_new(&loop, 200, on_changed, &s, &p) == 0);
    reach_set_intervals(p, 1, 50, 100);
    reach_probe(p, "busy", "127.0.0.1", refused);
    while (s.calls < 1)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK_INT(s.state, REACH_OK);
    /* The target now hangs (a full accept queue). */
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    reach_failure_at(p, "busy", "127.0.0.1", port);
    while (s.calls < 2)
        uv_run(&loop, UV_RUN_ONCE);
    uv_update_time(&loop);
    CHECK_INT(s.state, REACH_UNREACHABLE);
    /* two timeouts and the confirmation's wait */
    CHECK(uv_now(&loop) - t0 >= 2 * 190 + REACH_CONFIRM_MS - 10);
    CHECK_INT(close_all(&loop, p), 0);
    close(filler);
    close(fd);
    close(rfd);
}

TEST(close_with_probe_in_flight)
{
    uint16_t port;
    int filler = -1;
    const char *why = NULL;
    int fd = hanging_listener(&port, &filler, &why);
    if (fd < 0)
        TEST_SKIP("%s", why);
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    seen s = {0};
    reach_prober *p;
    REQUIRE(reach_new(&loop, 5000, on_changed, &s, &p) == 0);
    reach_probe(p, "slow", "127.0.0.1", port);
    uv_run(&loop, UV_RUN_NOWAIT); /* the connect is really under way */
    CHECK_INT(reach_pending(p), 1);
    CHECK_INT(close_all(&loop, p), 0);
    CHECK_INT(s.calls, 0);
    close(filler);
    close(fd);
}

TEST(close_from_changed)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    uint16_t port;
    int fd = loopback_socket(-1, &port);
    REQUIRE(fd >= 0);
    seen s = {0};
    reach_prober *p;
    REQUIRE(reach_new(&loop, 0, on_changed, &s, &p) == 0);
    s.close_from_cb = p;
    reach_probe(p, "a", "127.0.0.1", port);
    reach_probe(p, "b", "127.0.0.1", port);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(s.calls, 1); /* b's result came after the close: dropped */
    CHECK_INT(uv_loop_close(&loop), 0);
    close(fd);
}

TEST(failure_reprobes_rate_limited)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    uint16_t port;
    int fd = loopback_socket(16, &port);
    REQUIRE(fd >= 0);
    seen s = {0};
    reach_prober *p;
    REQUIRE(reach_new(&loop, 0, on_changed, &s, &p) == 0);

    reach_failure(p, "unknown"); /* never probed: nothing to do */
    CHECK_INT(reach_pending(p), 0);

    reach_probe(p, "net", "127.0.0.1", port);
    run_idle(&loop, p);
    CHECK_INT(accepts(fd, 1), 1);
    CHECK_INT(s.calls, 1);

    /* The first failure re-probes at once; the state stays OK meanwhile
     * and the same result is no change. */
    reach_failure(p, "net");
    CHECK_INT(reach_pending(p), 1);
    CHECK_INT(reach_state(p, "net"), REACH_OK);
    reach_failure(p, "net"); /* while it runs: nothing more */
    CHECK_INT(reach_pending(p), 1);
    run_idle(&loop, p);
    CHECK_INT(accepts(fd, 1), 1);
    CHECK_INT(s.calls, 1);

    /* Within REACH_REPROBE_MIN_MS: no probe now. */
    reach_failure(p, "net");
    reach_failure(p, "net");
    CHECK_INT(reach_pending(p), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_INT(reach_pending(p), 0);
    CHECK_INT(accepts(fd, 0), 0);

    CHECK_INT(close_all(&loop, p), 0);
    close(fd);
}

TEST(failure_within_interval_probes_at_its_end)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    uint16_t port;
    int fd = loopback_socket(16, &port);
    REQUIRE(fd >= 0);
    seen s = {0};
    reach_prober *p;
    REQUIRE(reach_new(&loop, 0, on_changed, &s, &p) == 0);
    reach_set_intervals(p, 150, 0, 0);

    reach_probe(p, "net", "127.0.0.1", port);
    run_idle(&loop, p);
    CHECK_INT(accepts(fd, 1), 1);

    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    reach_failure(p, "net");
    run_idle(&loop, p);
    CHECK_INT(accepts(fd, 1), 1);
    reach_failure(p, "net");
    reach_failure(p, "net");
    CHECK_INT(reach_pending(p), 0);
    /* One planned re-probe, then nothing: the loop runs dry. */
    CHECK_INT(uv_run(&loop, UV_RUN_DEFAULT), 0);
    uv_update_time(&loop);
    CHECK(uv_now(&loop) - t0 >= 140);
    CHECK_INT(accepts(fd, 1), 1);
    CHECK_INT(accepts(fd, 0), 0);
    CHECK_INT(s.calls, 1);

    CHECK_INT(close_all(&loop, p), 0);
    close(fd);
}

TEST(failure_at_probes_the_given_address)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    uint16_t refused, port;
    int rfd = loopback_socket(-1, &refused);
    int fd = loopback_socket(16, &port);
    REQUIRE(rfd >= 0 && fd >= 0);
    seen s = {0};
    reach_prober *p;
    REQUIRE(reach_new(&loop, 0, on_changed, &s, &p) == 0);

    reach_probe(p, "net", "127.0.0.1", refused);
    run_idle(&loop, p);
    CHECK_INT(reach_state(p, "net"), REACH_OK);
    reach_failure_at(p, "net", "127.0.0.1", port);
    CHECK_INT(reach_pending(p), 1);
    run_idle(&loop, p);
    CHECK_INT(accepts(fd, 1), 1);
    CHECK_INT(s.calls, 1);

    CHECK_INT(close_all(&loop, p), 0);
    close(fd);
    close(rfd);
}

TEST(bad_input_ignored)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    uint16_t port;
    int fd = loopback_socket(-1, &port);
    REQUIRE(fd >= 0);
    seen s = {0};
    reach_prober *p;
    REQUIRE(reach_new(&loop, 0, on_changed, &s, &p) == 0);
    char long_name[REACH_NAME_MAX + 10];
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';

    reach_probe(p, long_name, "127.0.0.1", port);
    reach_probe(p, "", "127.0.0.1", port);
    reach_probe(p, NULL, "127.0.0.1", port);
    reach_probe(p, "net\n\x1b[31m", "not an address", port);
    reach_probe(p, "net", "127.0.0.1", 0);
    reach_probe(p, "net", "::1", port);
    reach_probe(p, "net", NULL, port);
    reach_failure_at(p, "net", "1.2.3", port);
    CHECK_INT(reach_pending(p), 0);
    CHECK_INT(reach_state(p, long_name), REACH_UNKNOWN);
    CHECK_INT(reach_state(p, "net"), REACH_UNKNOWN);
    reach_failure(p, "net");
    CHECK_INT(reach_pending(p), 0);

    CHECK_INT(close_all(&loop, p), 0);
    CHECK_INT(s.calls, 0);
    close(fd);
}

TEST(oldest_network_dropped)
{
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    uint16_t port;
    int fd = loopback_socket(-1, &port);
    REQUIRE(fd >= 0);
    seen s = {0};
    reach_prober *p;
    REQUIRE(reach_new(&loop, 0, on_changed, &s, &p) == 0);
    char name[32];
    for (int i = 0; i <= REACH_MAX_NETWORKS; i++) {
        snprintf(name, sizeof(name), "net%d", i);
        reach_probe(p, name, "127.0.0.1", port);
    }
    /* net0's probe was cancelled when net256 came. */
    CHECK_INT(reach_pending(p), REACH_MAX_NETWORKS);
    run_idle(&loop, p);
    CHECK_INT(s.calls, REACH_MAX_NETWORKS);
    CHECK_INT(reach_state(p, "net0"), REACH_UNKNOWN);
    CHECK_INT(reach_state(p, "net1"), REACH_OK);
    snprintf(name, sizeof(name), "net%d", REACH_MAX_NETWORKS);
    CHECK_INT(reach_state(p, name), REACH_OK);

    CHECK_INT(close_all(&loop, p), 0);
    close(fd);
}
