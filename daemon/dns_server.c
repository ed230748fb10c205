/* The DNS server: a UDP socket and a TCP listener on one address, answering
 * from a dns_zone. The hot path (UDP) reads a batch of datagrams with one
 * recvmmsg(2) (libuv's UV_UDP_RECVMMSG), builds the answers into fixed
 * slots and sends the batch with one sendmmsg(2) (Linux; elsewhere one
 * uv_udp_try_send each), so a query costs no allocation and a fraction of a
 * system call each way. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sendmmsg */
#endif
#include "dns_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* libuv reads a batch with recvmmsg(2) when the buffer holds at least two
 * 64 KiB slots, one datagram per slot, at most 20 (UV__MMSG_MAXWIDTH).
 * Only the first page of a slot is ever written by a DNS query, so the
 * untouched rest costs address space, not memory. */
#define DNS_UDP_BATCH 20
#define DNS_UDP_MAX (DNS_UDP_BATCH * 65536)
#define DNS_UDP_ANSWER_MAX 4096 /* beyond any answer we build; TC past it */
#define DNS_TCP_MSG_MAX 65535
/* Limits on DNS over TCP, so that slow or silent clients cannot keep the
 * DNS_TCP_MAX_CLIENTS slots for themselves:
 * - idle: a connection must send the first byte of a message (its 2-byte
 *   length prefix) within DNS_TCP_IDLE_MS of opening and of the previous
 *   answer;
 * - message: from that first byte, the whole message must arrive within
 *   DNS_TCP_MESSAGE_MS. Reads of part of a message do not extend this
 *   deadline (as the control server does for requests), so a client
 *   trickling a byte at a time holds a slot for at most idle + message
 *   (20 s), not for ever.
 * A connection that misses either deadline is closed, with a debug line;
 * so is one whose reading is paused (it does not read its answers) until
 * the deadline running when it paused. A client that keeps completing
 * messages and reading the answers is never cut.
 * Both are settable through dns_server_options, for tests. */
#define DNS_TCP_IDLE_MS 10000
#define DNS_TCP_MESSAGE_MS 10000
#define DNS_TCP_MAX_CLIENTS 64
#define DNS_TCP_HIGH_WATER (256 * 1024) /* stop reading a client that does not read */
#define DNS_PORT_TRIES 16
/* The UDP socket's receive buffer: room for a few thousand queries, so that
 * a burst arriving while the loop is busy or descheduled (a loaded machine)
 * waits instead of being dropped. Best effort: the kernel caps it at
 * net.core.rmem_max. */
#define DNS_UDP_RCVBUF (1024 * 1024)
/* Queued UDP answers (only when the socket refuses a direct send): past this
 * an answer is dropped, as the kernel would, and the client retries. */
#define DNS_UDP_QUEUE_MAX (1024 * 1024)

struct dns_tcp_client {
    uv_tcp_t tcp;
    uv_timer_t timer;
    dns_server *server;
    struct dns_tcp_client *next, *prev;
    uint8_t *rx;
    size_t rx_len, rx_cap;
    int refs; /* open handles (tcp, timer); freed at zero */
    bool closing;
    bool paused;
    /* The timer is a message's deadline (its first byte has arrived), not
     * the idle wait before one. */
    bool in_message;
};

struct dns_write {
    uv_write_t req;
    struct dns_tcp_client *client;
    uint8_t data[];
};

struct dns_udp_send {
    uv_udp_send_t req;
    uint8_t data[];
};

struct dns_server {
    uv_loop_t *loop;
    dns_zone *zone;
    uv_udp_t udp;
    uv_tcp_t tcp;
    struct dns_tcp_client *clients;
    int nclients;
    int refs; /* udp + tcp listener + clients not yet freed; freed at zero */
    bool closing;
    unsigned tcp_idle_ms, tcp_message_ms;
    void (*close_cb)(void *arg);
    void *close_arg;
    /* A client can provoke both (a flood of unanswerable sends, EMFILE). */
    log_limit send_log;
    log_limit accept_log;
    /* The batch of received datagrams is answered into tx slots and sent
     * once the batch ends (or a slot set fills), before the next read. */
    uint8_t rx[DNS_UDP_MAX];
    uint8_t tx[DNS_UDP_BATCH][DNS_UDP_ANSWER_MAX];
    size_t tx_len[DNS_UDP_BATCH];
    struct sockaddr_storage tx_to[DNS_UDP_BATCH];
    unsigned ntx;
    uint8_t tcp_tx[2 + DNS_TCP_MSG_MAX];
};

int dns_parse_listen(const char *s, struct sockaddr_storage *addr)
{
    if (s == NULL || addr == NULL)
        return -EINVAL;
    char host[64];
    const char *port;
    bool v6 = false;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host))
            return -EINVAL;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        port = end + 2;
        v6 = true;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL || strchr(s, ':') != colon || (size_t)(colon - s) >= sizeof(host))
            return -EINVAL;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = colon + 1;
    }
    if (port[0] == '\0' || strlen(port) > 5)
        return -EINVAL;
    unsigned long p = 0;
    for (const char *c = port; *c; c++) {
        if (*c < '0' || *c > '9')
            return -EINVAL;
        p = p * 10 + (unsigned long)(*c - '0');
    }
    if (p == 0 || p > 65535)
        return -EINVAL;
    memset(addr, 0, sizeof(*addr));
    if (v6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
            return -EINVAL;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)p);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
            return -EINVAL;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)p);
    }
    return 0;
}

static void server_maybe_done(dns_server *s)
{
    if (s->closing && s->refs == 0) {
        void (*cb)(void *) = s->close_cb;
        void *arg = s->close_arg;
        free(s);
        if (cb != NULL)
            cb(arg);
    }
}

/* ---- UDP ---- */

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    dns_server *s = container_of((uv_udp_t *)h, dns_server, udp);
    b->base = (char *)s->rx;
    b->len = sizeof(s->rx);
}

static void udp_sent(uv_udp_send_t *req, int status)
{
    (void)status; /* UV_ECANCELED at close; other errors are the client's loss */
    free(container_of(req, struct dns_udp_send, req));
}

static socklen_t sockaddr_len(const struct sockaddr *a)
{
    return a->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* Sends one answer through libuv: directly when the socket takes it, else a
 * queued copy (the socket buffer is full), unless the queue is at its bound
 * already, where it is dropped as the kernel would and the client retries. */
static void udp_send_one(dns_server *s, const uint8_t *data, size_t len, const struct sockaddr *to)
{
    uv_buf_t out = uv_buf_init((char *)data, (unsigned)len);
    int r = uv_udp_try_send(&s->udp, &out, 1, to);
    if (r >= 0)
        return;
    if (r == UV_EAGAIN || r == UV_ENOSYS) {
        if (uv_udp_get_send_queue_size(&s->udp) + len > DNS_UDP_QUEUE_MAX) {
            r = UV_ENOBUFS;
        } else {
            struct dns_udp_send *req = xmalloc(sizeof(*req) + len);
            memcpy(req->data, data, len);
            out = uv_buf_init((char *)req->data, (unsigned)len);
            r = uv_udp_send(&req->req, &s->udp, &out, 1, to, udp_sent);
            if (r == 0)
                return;
            free(req);
        }
    }
    log_limited(&s->send_log, LOG_WARN, "dns", r, "udp send failed");
}

/* Sends the answers collected so far: one sendmmsg for the lot on Linux
 * while nothing is queued in libuv; what it does not take (a full socket
 * buffer, an error on one answer) goes one at a time through udp_send_one. */
static void udp_flush(dns_server *s)
{
    unsigned n = s->ntx, done = 0;
    s->ntx = 0;
#ifdef __linux__
    uv_os_fd_t fd;
    if (n > 1 && uv_udp_get_send_queue_count(&s->udp) == 0 &&
        uv_fileno((uv_handle_t *)&s->udp, &fd) == 0) {
        struct mmsghdr msgs[DNS_UDP_BATCH];
        struct iovec iov[DNS_UDP_BATCH];
        memset(msgs, 0, sizeof(msgs[0]) * n);
        for (unsigned i = 0; i < n; i++) {
            iov[i].iov_base = s->tx[i];
            iov[i].iov_len = s->tx_len[i];
            msgs[i].msg_hdr.msg_name = &s->tx_to[i];
            msgs[i].msg_hdr.msg_namelen = sockaddr_len((struct sockaddr *)&s->tx_to[i]);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int r;
        do
            r = sendmmsg(fd, msgs, n, MSG_DONTWAIT);
        while (r < 0 && errno == EINTR);
        if (r > 0)
            done = (unsigned)r;
    }
#endif
    for (unsigned i = done; i < n; i++)
        udp_send_one(s, s->tx[i], s->tx_len[i], (struct sockaddr *)&s->tx_to[i]);
}

static void udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *b, const struct sockaddr *from,
                     unsigned flags)
{
    dns_server *s = container_of(h, dns_server, udp);
    if (nread < 0) {
        log_debug_err("dns", (int)nread, "udp receive");
        udp_flush(s);
        return;
    }
    /* The end of a recvmmsg batch (UV_UDP_MMSG_FREE) or of the datagrams
     * waiting (nothing read): send what the batch produced. */
    if (from == NULL) {
        udp_flush(s);
        return;
    }
    if (nread == 0 || (flags & UV_UDP_PARTIAL))
        return;
    unsigned i = s->ntx;
    size_t len = dns_answer(s->zone, (const uint8_t *)b->base, (size_t)nread, s->tx[i],
                            sizeof(s->tx[i]), 512);
    if (len > 0) {
        s->tx_len[i] = len;
        memcpy(&s->tx_to[i], from, sockaddr_len(from));
        s->ntx++;
    }
    /* A datagram read alone (no recvmmsg) gets no end-of-batch call. */
    if (s->ntx == DNS_UDP_BATCH || !(flags & UV_UDP_MMSG_CHUNK))
        udp_flush(s);
}

/* ---- TCP ---- */

static void client_handle_closed(uv_handle_t *h)
{
    struct dns_tcp_client *c = h->data;
    LH_REQUIRE(c->refs > 0);
    if (--c->refs > 0)
        return;
    dns_server *s = c->server;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->nclients--;
    LH_REQUIRE(s->refs > 0);
    s->refs--;
    free(c->rx);
    free(c);
    server_maybe_done(s);
}

static void client_close(struct dns_tcp_client *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, client_handle_closed);
    uv_close((uv_handle_t *)&c->timer, client_handle_closed);
}

static void client_deadline(uv_timer_t *t)
{
    struct dns_tcp_client *c = t->data;
    if (c->paused)
        log_debug("dns", "closing a TCP client that does not read its answers");
    else if (c->in_message)
        log_debug("dns", "closing a TCP client: no whole message within %u ms of its first byte",
                  c->server->tcp_message_ms);
    else
        log_debug("dns", "closing a TCP client: idle for %u ms", c->server->tcp_idle_ms);
    client_close(c);
}

static void client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct dns_tcp_client *c = h->data;
    /* Everything complete is consumed after each read, so the buffer never
     * holds more than one partial message: 2 + 65535 bytes at most. */
    if (c->rx_len == c->rx_cap && c->rx_cap < 2 + DNS_TCP_MSG_MAX) {
        size_t cap = c->rx_cap ? c->rx_cap * 4 : 1024;
        if (cap > 2 + DNS_TCP_MSG_MAX)
            cap = 2 + DNS_TCP_MSG_MAX;
        c->rx = xrealloc(c->rx, cap);
        c->rx_cap = cap;
    }
    b->base = (char *)c->rx + c->rx_len;
    b->len = c->rx_cap - c->rx_len;
}

static void client_resume(struct dns_tcp_client *c);

static void client_written(uv_write_t *req, int status)
{
    struct dns_write *w = container_of(req, struct dns_write, req);
    struct dns_tcp_client *c = w->client;
    free(w);
    if (c->closing)
        return;
    if (status < 0) {
        client_close(c);
        return;
    }
    if (c->paused && c->tcp.write_queue_size < DNS_TCP_HIGH_WATER / 2) {
        c->paused = false;
        client_resume(c);
    }
}

static bool client_send(struct dns_tcp_client *c, const uint8_t *msg, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)msg, (unsigned)len);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    size_t done = r > 0 ? (size_t)r : 0;
    if (r < 0 && r != UV_EAGAIN)
        return false;
    if (done == len)
        return true;
    struct dns_write *w = xmalloc(sizeof(*w) + len - done);
    w->client = c;
    memcpy(w->data, msg + done, len - done);
    b = uv_buf_init((char *)w->data, (unsigned)(len - done));
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, client_written) != 0) {
        free(w);
        return false;
    }
    return true;
}

/* Answers every complete message in the buffer (pipelined queries). */
static void client_process(struct dns_tcp_client *c)
{
    dns_server *s = c->server;
    size_t off = 0;
    while (!c->closing && !c->paused && c->rx_len - off >= 2) {
        size_t mlen = (size_t)c->rx[off] << 8 | c->rx[off + 1];
        if (c->rx_len - off - 2 < mlen)
            break;
        size_t len = dns_answer(s->zone, c->rx + off + 2, mlen, s->tcp_tx + 2, DNS_TCP_MSG_MAX, 0);
        off += 2 + mlen;
        if (len == 0) {
            /* Not a query we can answer: a stream client sending it is
             * broken, and it would wait forever for a reply. */
            client_close(c);
            return;
        }
        s->tcp_tx[0] = (uint8_t)(len >> 8);
        s->tcp_tx[1] = (uint8_t)len;
        if (!client_send(c, s->tcp_tx, len + 2)) {
            client_close(c);
            return;
        }
        if (c->tcp.write_queue_size > DNS_TCP_HIGH_WATER) {
            c->paused = true;
            uv_read_stop((uv_stream_t *)&c->tcp);
        }
    }
    memmove(c->rx, c->rx + off, c->rx_len - off);
    c->rx_len -= off;
    if (c->closing)
        return;
    /* The deadlines (see DNS_TCP_MESSAGE_MS). After an answer, what is left
     * is the start of the next message, which arrived in this read: its
     * deadline starts now; with nothing left the idle wait starts again.
     * Without an answer, a first byte starts a message's deadline, and
     * further bytes of the same message leave it running. */
    if (off > 0 || (c->rx_len > 0 && !c->in_message)) {
        c->in_message = c->rx_len > 0;
        uv_timer_start(&c->timer, client_deadline,
                       c->in_message ? s->tcp_message_ms : s->tcp_idle_ms, 0);
    }
}

static void client_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct dns_tcp_client *c = st->data;
    (void)b;
    if (nread < 0) {
        client_close(c);
        return;
    }
    if (nread == 0)
        return;
    c->rx_len += (size_t)nread;
    client_process(c);
}

/* Reads again after a pause; messages that arrived before it may be waiting
 * in the buffer already. */
static void client_resume(struct dns_tcp_client *c)
{
    uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read);
    client_process(c);
}

static void on_connection(uv_stream_t *listener, int status)
{
    dns_server *s = container_of((uv_tcp_t *)listener, dns_server, tcp);
    if (status < 0) {
        log_limited(&s->accept_log, LOG_WARN, "dns", status, "tcp accept failed");
        return;
    }
    struct dns_tcp_client *c = xcalloc(1, sizeof(*c));
    c->server = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->refs = 2;
    c->next = s->clients;
    if (s->clients != NULL)
        s->clients->prev = c;
    s->clients = c;
    s->nclients++;
    s->refs++;
    /* Accept even when full: an unaccepted connection stalls the listener. */
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || s->nclients > DNS_TCP_MAX_CLIENTS) {
        client_close(c);
        return;
    }
    /* Pipelined queries get one answer each, written back to back: with
     * Nagle on, every answer after the first waits for the client's delayed
     * ACK (40 ms on Linux). */
    uv_tcp_nodelay(&c->tcp, 1);
    uv_timer_start(&c->timer, client_deadline, s->tcp_idle_ms, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, client_alloc, client_read) != 0)
        client_close(c);
}

/* ---- start and close ---- */

static int bound_socket(const struct sockaddr *addr, int type)
{
#ifdef __linux__
    int fd = socket(addr->sa_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
#else
    /* macOS has neither SOCK_CLOEXEC nor SOCK_NONBLOCK: set both with fcntl
     * (nothing else runs here, so there is no exec to race with). */
    int fd = socket(addr->sa_family, type, 0);
    if (fd < 0)
        return -errno;
    int fl = fcntl(fd, F_GETFL);
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 || fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        goto fail;
#endif
    int one = 1;
    /* TCP: rebind right after a restart despite TIME_WAIT connections. */
    if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto fail;
    int rcvbuf = DNS_UDP_RCVBUF;
    if (type == SOCK_DGRAM)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (addr->sa_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        goto fail;
    socklen_t alen =
        addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, addr, alen) < 0)
        goto fail;
    if (type == SOCK_STREAM && listen(fd, 128) < 0)
        goto fail;
    return fd;
fail:;
    int err = -errno;
    close(fd);
    return err;
}

/* Binds both sockets before any libuv handle exists, so a failure leaves
 * nothing behind in the loop. Port 0 picks one port free for both. */
static int bind_pair(const struct sockaddr *addr, int *ufd, int *tfd)
{
    if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
        return UV_EAFNOSUPPORT;
    struct sockaddr_storage a;
    memcpy(&a, addr,
           addr->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    uint16_t *port = a.ss_family == AF_INET ? &((struct sockaddr_in *)&a)->sin_port
                                            : &((struct sockaddr_in6 *)&a)->sin6_port;
    bool ephemeral = *port == 0;
    int err = 0;
    for (int i = 0; i < (ephemeral ? DNS_PORT_TRIES : 1); i++) {
        if (ephemeral)
            *port = 0;
        *ufd = bound_socket((struct sockaddr *)&a, SOCK_DGRAM);
        if (*ufd < 0)
            return *ufd;
        if (ephemeral) {
            struct sockaddr_storage got;
            memset(&got, 0, sizeof(got));
            socklen_t glen = sizeof(got);
            if (getsockname(*ufd, (struct sockaddr *)&got, &glen) < 0) {
                err = -errno;
                close(*ufd);
                return err;
            }
            *port = got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                             : ((struct sockaddr_in6 *)&got)->sin6_port;
        }
        *tfd = bound_socket((struct sockaddr *)&a, SOCK_STREAM);
        if (*tfd >= 0)
            return 0;
        err = *tfd;
        close(*ufd);
        if (err != UV_EADDRINUSE)
            break;
    }
    return err;
}

int dns_server_start(uv_loop_t *loop, const struct sockaddr *addr, dns_zone *zone, dns_server **out)
{
    return dns_server_start_opts(loop, addr, zone, NULL, out);
}

int dns_server_start_opts(uv_loop_t *loop, const struct sockaddr *addr, dns_zone *zone,
                          const dns_server_options *opts, dns_server **out)
{
    int ufd = -1, tfd = -1;
    int r = bind_pair(addr, &ufd, &tfd);
    if (r < 0)
        return r;
    dns_server *s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->zone = zone;
    s->tcp_idle_ms = opts != NULL && opts->tcp_idle_ms ? opts->tcp_idle_ms : DNS_TCP_IDLE_MS;
    s->tcp_message_ms =
        opts != NULL && opts->tcp_message_ms ? opts->tcp_message_ms : DNS_TCP_MESSAGE_MS;
    /* Handles are initialised only once nothing can fail but the opens,
     * which on an fd we just created fail only on programming errors. */
    uv_udp_init_ex(loop, &s->udp, AF_UNSPEC | UV_UDP_RECVMMSG);
    uv_tcp_init(loop, &s->tcp);
    s->refs = 2;
    if ((r = uv_udp_open(&s->udp, ufd)) != 0 || (r = uv_tcp_open(&s->tcp, tfd)) != 0 ||
        (r = uv_udp_recv_start(&s->udp, udp_alloc, udp_recv)) != 0 ||
        (r = uv_listen((uv_stream_t *)&s->tcp, 128, on_connection)) != 0) {
        /* uv_close closes an fd a handle owns; close the others here. */
        if (uv_fileno((uv_handle_t *)&s->udp, &(uv_os_fd_t){0}) != 0)
            close(ufd);
        if (uv_fileno((uv_handle_t *)&s->tcp, &(uv_os_fd_t){0}) != 0)
            close(tfd);
        dns_server_close(s, NULL, NULL);
        return r;
    }
    *out = s;
    return 0;
}

int dns_server_address(const dns_server *s, struct sockaddr_storage *addr)
{
    int len = sizeof(*addr);
    return uv_udp_getsockname(&s->udp, (struct sockaddr *)addr, &len);
}

static void listener_closed(uv_handle_t *h)
{
    dns_server *s = h->data;
    LH_REQUIRE(s->refs > 0);
    s->refs--;
    server_maybe_done(s);
}

void dns_server_close(dns_server *s, void (*cb)(void *arg), void *arg)
{
    if (s == NULL || s->closing)
        return;
    s->closing = true;
    s->close_cb = cb;
    s->close_arg = arg;
    s->udp.data = s;
    s->tcp.data = s;
    uv_udp_recv_stop(&s->udp);
    uv_close((uv_handle_t *)&s->udp, listener_closed);
    uv_close((uv_handle_t *)&s->tcp, listener_closed);
    for (struct dns_tcp_client *c = s->clients; c != NULL; c = c->next)
        client_close(c);
}
