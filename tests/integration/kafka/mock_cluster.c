/* A librdkafka mock cluster on predictable ports, for test_kafka.sh.
 *
 *   mock_cluster BROKERS FIRST-PORT [TOPIC PARTITIONS]
 *
 * librdkafka 2.0.x's mock brokers bind 127.0.0.1 on a kernel-chosen port and
 * advertise exactly what they bound. This program interposes bind() (the
 * executable's definition wins over libc's for librdkafka's calls): a TCP
 * socket bound to 127.0.0.1:0 gets FIRST-PORT, FIRST-PORT+1, ... instead, in
 * broker order, so broker n advertises 127.0.0.1:FIRST-PORT+n-1, the way
 * real broker images advertise localhost:<container port>. Prints the
 * bootstrap list and "ready", then serves until killed.
 *
 * With MOCK_CLUSTER_ADVERTISE=IPv4 in the environment (bench/workloads), the
 * brokers listen on every address instead and advertise IPv4:port (the
 * listening socket's getsockname() reports IPv4), so clients reach them at
 * the container's own address with no relay in front. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static int next_port;
static struct in_addr advertise; /* INADDR_ANY: not set */
static int listeners[16];
static int nlisteners;

int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    static int (*real_bind)(int, const struct sockaddr *, socklen_t);
    if (!real_bind)
        real_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    int type = 0;
    socklen_t tl = sizeof(type);
    if (next_port > 0 && sa && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in) &&
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM) {
        struct sockaddr_in sin;
        memcpy(&sin, sa, sizeof(sin));
        if (sin.sin_port == 0 && sin.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
            int on = 1;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
            sin.sin_port = htons((uint16_t)next_port++);
            if (advertise.s_addr != INADDR_ANY) {
                sin.sin_addr.s_addr = htonl(INADDR_ANY);
                if (nlisteners < (int)(sizeof(listeners) / sizeof(listeners[0])))
                    listeners[nlisteners++] = fd;
            }
            return real_bind(fd, (const struct sockaddr *)&sin, sizeof(sin));
        }
    }
    return real_bind(fd, sa, len);
}

int getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
    static int (*real_getsockname)(int, struct sockaddr *, socklen_t *);
    if (!real_getsockname)
        real_getsockname =
            (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "getsockname");
    int r = real_getsockname(fd, sa, len);
    if (r == 0 && sa->sa_family == AF_INET && *len >= sizeof(struct sockaddr_in))
        for (int i = 0; i < nlisteners; i++)
            if (listeners[i] == fd)
                ((struct sockaddr_in *)sa)->sin_addr = advertise;
    return r;
}

int main(int argc, char **argv)
{
    if (argc != 3 && argc != 5) {
        fprintf(stderr, "usage: mock_cluster BROKERS FIRST-PORT [TOPIC PARTITIONS]\n");
        return 2;
    }
    int brokers = atoi(argv[1]);
    next_port = atoi(argv[2]);
    const char *adv = getenv("MOCK_CLUSTER_ADVERTISE");
    if (adv && adv[0] && inet_pton(AF_INET, adv, &advertise) != 1) {
        fprintf(stderr, "mock_cluster: MOCK_CLUSTER_ADVERTISE=%s is no IPv4 address\n", adv);
        return 2;
    }
    if (brokers < 1 || brokers > 16 || next_port < 1 || next_port > 65535 - brokers) {
        fprintf(stderr, "mock_cluster: bad arguments\n");
        return 2;
    }
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* No bootstrap.servers on purpose: keep librdkafka's warning about it quiet. */
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "mock_cluster: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "mock_cluster: cannot create the mock cluster\n");
        return 1;
    }
    next_port = 0;
    if (argc == 5 &&
        rd_kafka_mock_topic_create(mc, argv[3], atoi(argv[4]), brokers < 3 ? brokers : 3)) {
        fprintf(stderr, "mock_cluster: cannot create topic %s\n", argv[3]);
        return 1;
    }
    printf("%s\nready\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    int sig;
    sigwait(&set, &sig);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
