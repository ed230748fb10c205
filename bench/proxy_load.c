/* bench/proxy_load.c: the load client and server of bench/proxy (built by it:
 * cc -O2 -o proxy_load bench/proxy_load.c).
 *
 *   proxy_load source PORT
 *       A server (run in a container): every accepted connection gets an
 *       endless stream of bytes, as fast as it takes them (one epoll thread).
 *   proxy_load fan HOST PORT N SECS
 *       Opens N connections to a source server, waits until all are connected,
 *       then counts for SECS seconds the bytes each one receives. Prints
 *       "conns= gbps= jain= min_share= max_share= zero= setup_ms=": total
 *       throughput, Jain's fairness index over the per-connection bytes
 *       ((sum x)^2 / (n sum x^2): 1.0 when all got the same), the smallest and
 *       largest connection's bytes relative to the mean, and how many got none.
 *   proxy_load seq HOST PORT N CAP_SECS
 *       N sequential short connections to a redis server: connect, send PING
 *       and QUIT, read +PONG +OK and the server's close, close. The server
 *       closes first, so every hop's TIME_WAIT sits on its listening side,
 *       with a client address of its own: no proxy's upstream runs out of
 *       ephemeral ports on account of the benchmark. When HOST is in 127/8 every connection's
 * socket is bound to its own source address (127.200.0.1, 127.200.0.2, ... with
 *       IP_BIND_ADDRESS_NO_PORT), so neither the client's ephemeral ports nor
 *       its TIME_WAIT sockets set the limit. Stops after CAP_SECS. Prints
 *       "done= failed= secs= rate= max_ms= p99_ms= first_rate= last_rate=
 *       stall_at=": the connections that completed, those that failed (2 s
 *       timeout each), the rate, the longest connection (the largest gap
 *       between two completions), the rate over the first and the last tenth,
 *       and the index of the longest connection.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static struct sockaddr_in addr_of(const char *host, const char *port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(port));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "proxy_load: not an IPv4 address: %s\n", host);
        exit(2);
    }
    return sa;
}

static _Noreturn void run_source(const char *port)
{
    static char buf[65536];
    struct sockaddr_in sa = addr_of("0.0.0.0", port);
    int one = 1, ls, ep;
    memset(buf, 'x', sizeof buf);
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (ls < 0)
        die("socket");
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 4096) < 0)
        die("bind/listen");
    ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    fprintf(stderr, "source listening on %s\n", port);
    for (;;) {
        struct epoll_event evs[256];
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct epoll_event cev = {.events = EPOLLOUT | EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                close(fd);
                continue;
            }
            if (evs[i].events & EPOLLIN) {
                char sink[4096];
                ssize_t r = read(fd, sink, sizeof sink);
                if (r == 0 || (r < 0 && errno != EAGAIN)) {
                    close(fd);
                    continue;
                }
            }
            /* One write per wake-up, so that every ready connection gets a turn. */
            if (evs[i].events & EPOLLOUT) {
                ssize_t w = write(fd, buf, sizeof buf);
                if (w < 0 && errno != EAGAIN)
                    close(fd);
            }
        }
    }
}

static int run_fan(const char *host, const char *port, int nconn, double secs)
{
    struct sockaddr_in sa = addr_of(host, port);
    int *fds = calloc((size_t)nconn, sizeof *fds);
    uint64_t *got = calloc((size_t)nconn, sizeof *got);
    static char buf[262144];
    int ep = epoll_create1(0), connected = 0;
    double t0 = now_s();
    if (!fds || !got)
        die("calloc");
    raise_nofile();
    for (int i = 0; i < nconn; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fds[i] < 0)
            die("socket");
        if (connect(fds[i], (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
            die("connect");
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    /* Connected: writable once; bytes before the window do not count. */
    char *isup = calloc((size_t)nconn, 1);
    while (connected < nconn && now_s() - t0 < 20) {
        struct epoll_event evs[512];
        int n = epoll_wait(ep, evs, 512, 100);
        for (int k = 0; k < n; k++) {
            int i = (int)evs[k].data.u32;
            if (evs[k].events & (EPOLLERR | EPOLLHUP)) {
                fprintf(stderr, "proxy_load: connection %d failed\n", i);
                return 1;
            }
            if (!isup[i] && (evs[k].events & EPOLLOUT)) {
                isup[i] = 1;
                connected++;
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
                epoll_ctl(ep, EPOLL_CTL_MOD, fds[i], &ev);
            }
            if (evs[k].events & EPOLLIN)
                while (read(fds[i], buf, sizeof buf) > 0)
                    ;
        }
    }
    if (connected < nconn) {
        fprintf(stderr, "proxy_load: only %d of %d connected in 20 s\n", connected, nconn);
        return 1;
    }
    double setup_ms = (now_s() - t0) * 1000, start = now_s(), end = start + secs;
    while (now_s() < end) {
        struct epoll_event evs[512];
        int n = epoll_wait(ep, evs, 512, 50);
        for (int k = 0; k < n; k++) {
            int i = (int)evs[k].data.u32;
            ssize_t r = read(fds[i], buf, sizeof buf);
            if (r > 0)
                got[i] += (uint64_t)r;
            else if (r == 0 || errno != EAGAIN) {
                fprintf(stderr, "proxy_load: connection %d closed\n", i);
                return 1;
            }
        }
    }
    double el = now_s() - start, sum = 0, sum2 = 0, mn = 1e300, mx = 0;
    int zero = 0;
    for (int i = 0; i < nconn; i++) {
        double x = (double)got[i];
        sum += x;
        sum2 += x * x;
        mn = x < mn ? x : mn;
        mx = x > mx ? x : mx;
        zero += got[i] == 0;
        close(fds[i]);
    }
    double mean = sum / nconn;
    printf("conns=%d gbps=%.3f jain=%.4f min_share=%.3f max_share=%.3f zero=%d setup_ms=%.0f\n",
           nconn, sum * 8 / el / 1e9, sum2 > 0 ? sum * sum / (nconn * sum2) : 0,
           mean > 0 ? mn / mean : 0, mean > 0 ? mx / mean : 0, zero, setup_ms);
    return 0;
}

/* One short connection; 0 when PONG came back. */
static int one_ping(const struct sockaddr_in *sa, int bind_src, uint32_t src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1, rc = -1;
    char in[16];
    size_t have = 0;
    struct pollfd p = {.fd = fd};
    if (fd < 0)
        return -1;
    if (bind_src) {
        struct sockaddr_in la = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(src)};
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&la, sizeof la) < 0)
            goto out;
    }
    if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0 && errno != EINPROGRESS)
        goto out;
    p.events = POLLOUT;
    if (poll(&p, 1, 2000) != 1 || (p.revents & (POLLERR | POLLHUP)))
        goto out;
    if (write(fd, "PING\r\nQUIT\r\n", 12) != 12)
        goto out;
    for (;;) { /* until the server's close */
        p.events = POLLIN;
        if (poll(&p, 1, 2000) != 1)
            goto out;
        ssize_t r = read(fd, in + have, sizeof in - have);
        if (r < 0 || (r > 0 && have + (size_t)r >= sizeof in))
            goto out;
        if (r == 0)
            break;
        have += (size_t)r;
    }
    rc = have == 12 && memcmp(in, "+PONG\r\n+OK\r\n", 12) == 0 ? 0 : -1;
out:
    close(fd);
    return rc;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int run_seq(const char *host, const char *port, int n, double cap)
{
    struct sockaddr_in sa = addr_of(host, port);
    int bind_src = (ntohl(sa.sin_addr.s_addr) >> 24) == 127, done = 0, failed = 0, stall_at = -1;
    double *dur = calloc((size_t)n, sizeof *dur), t0 = now_s(), maxd = 0, first_end = 0,
           last_start = 0;
    int tenth = n / 10 > 0 ? n / 10 : 1;
    if (!dur)
        die("calloc");
    for (int i = 0; i < n && now_s() - t0 < cap; i++) {
        /* 127.200.0.1 onwards: 254 hosts per /24, never .0 or .255. */
        uint32_t src = (127u << 24) | ((200u + (uint32_t)i / (254 * 256)) << 16) |
                       (((uint32_t)i / 254 % 256) << 8) | (1 + (uint32_t)i % 254);
        double a = now_s();
        if (i == n - tenth)
            last_start = a;
        if (one_ping(&sa, bind_src, src) == 0)
            done++;
        else
            failed++;
        double d = now_s() - a;
        dur[i] = d;
        if (d > maxd) {
            maxd = d;
            stall_at = i;
        }
        if (i == tenth - 1)
            first_end = now_s();
    }
    double el = now_s() - t0;
    int ran = done + failed;
    qsort(dur, (size_t)ran, sizeof *dur, cmp_d);
    printf("done=%d failed=%d secs=%.2f rate=%.0f max_ms=%.1f p99_ms=%.2f first_rate=%.0f "
           "last_rate=%.0f stall_at=%d\n",
           done, failed, el, ran / el, maxd * 1000, ran ? dur[(int)(ran * 0.99)] * 1000 : 0,
           first_end > t0 ? tenth / (first_end - t0) : 0,
           ran == n && last_start > 0 ? tenth / (now_s() - last_start) : 0, stall_at);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "source") == 0)
        run_source(argv[2]);
    if (argc == 6 && strcmp(argv[1], "fan") == 0)
        return run_fan(argv[2], argv[3], atoi(argv[4]), atof(argv[5]));
    if (argc == 6 && strcmp(argv[1], "seq") == 0)
        return run_seq(argv[2], argv[3], atoi(argv[4]), atof(argv[5]));
    fprintf(stderr,
            "usage: proxy_load source PORT | fan HOST PORT N SECS | seq HOST PORT N CAP_SECS\n");
    return 2;
}
