/* TCP connections: accepting, the read/write relay (half-close, backpressure,
 * resets), classification by first bytes (see proxy_int.h) and the switch to
 * the splice relay (splice_linux.c) once a connection is plain. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* accept4 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "proxy_int.h"
#include "util.h"

#define MOD PROXY_MOD
#define ACCEPT_PAUSE_MS 100
#define ACCEPT_BATCH 64

static uint64_t spliced_now;
static uint64_t spliced_total;

/* One write request; data follows the struct. Before the upstream connect
 * completes, requests wait on proxy_conn.preq (linked through next). */
typedef struct proxy_wreq {
    uv_write_t req;
    proxy_side *dst;
    struct proxy_wreq *next;
    size_t len;
    char data[];
} wreq;

typedef proxy_conn conn;
typedef proxy_side side;

static const proxy_handler *const handlers[PROXY_CLASS_COUNT] = {
    [PROXY_CLASS_KAFKA] = &proxy_kafka_handler,
};

const proxy_handler *proxy_handler_for(int klass)
{
    if (klass < 0 || klass >= PROXY_CLASS_COUNT)
        return NULL;
    return handlers[klass];
}

uint64_t proxy_spliced_connections(void)
{
    return spliced_now;
}

uint64_t proxy_spliced_total(void)
{
    return spliced_total;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *rb);
static void maybe_splice(conn *c);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *rb)
{
    (void)suggested;
    (void)h;
    *rb = uv_buf_init(proxy_scratch(), PROXY_READ_SIZE);
}

static void free_cstate(conn *c)
{
    if (c->cstate && c->cls->free_state)
        c->cls->free_state(c->cstate);
    c->cstate = NULL;
}

static void conn_free(conn *c)
{
    proxy_listener *l = c->l;
    while (c->preq) {
        wreq *w = c->preq;
        c->preq = w->next;
        l->buffered -= w->len;
        free(w);
    }
    if (c->h)
        c->h->free(c);
    free_cstate(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    l->st.conns_active--;
    proxy_count(-2, -1);
    free(c);
    proxy_listener_unref(l);
}

static void conn_unref(conn *c)
{
    LH_REQUIRE(c->refs > 0);
    if (--c->refs == 0)
        conn_free(c);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void on_splice_closed(void *arg)
{
    proxy_count(-4, 0); /* its pipes */
    conn_unref(arg);
}

static void side_close(side *s, bool reset)
{
    uv_os_fd_t fd;
    /* An RST instead of a FIN: SO_LINGER with a zero timeout, then close.
     * Done by hand rather than uv_tcp_close_reset, which refuses handles
     * with a shutdown in progress. */
    if (reset && uv_fileno((uv_handle_t *)&s->tcp, &fd) == 0) {
        struct linger lg = {1, 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    uv_close((uv_handle_t *)&s->tcp, on_conn_handle_closed);
}

/* Closes both sides, with RST when reset (an error on either side is passed
 * on as an error), otherwise with FIN. Idempotent. */
static void conn_close(conn *c, bool reset)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->sp) {
        /* The poll handles stop before the sockets are closed. */
        splice_close(c->sp, on_splice_closed);
        c->sp = NULL;
        spliced_now--;
    }
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    side_close(&c->cli, reset);
    /* Closing for a redial already: its callback drops the reference. */
    if (!c->redialing)
        side_close(&c->up, reset);
}

static void check_done(conn *c)
{
    if (c->cli.eof && c->up.eof && c->cli.shut_done && c->up.shut_done)
        conn_close(c, false);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    side *s = container_of(req, side, sreq);
    conn *c = s->c;
    if (status == UV_ECANCELED || c->closing)
        return;
    if (status < 0) {
        conn_close(c, true);
        return;
    }
    s->shut_done = true;
    check_done(c);
}

/* src sent FIN: pass it on to its peer once the peer's queue is written. */
static void propagate_eof(conn *c, side *src)
{
    side *dst = src->peer;
    if (dst == &c->up && !c->connected)
        return; /* on_connect passes it on */
    if (dst->shut_sent)
        return;
    dst->shut_sent = true;
    int err = uv_shutdown(&dst->sreq, (uv_stream_t *)&dst->tcp, on_shutdown);
    if (err) {
        conn_close(c, true);
        return;
    }
}

static void on_write(uv_write_t *req, int status)
{
    wreq *w = container_of(req, wreq, req);
    side *dst = w->dst;
    conn *c = dst->c;
    side *src = dst->peer;
    dst->pending -= w->len;
    dst->nwrites--;
    c->l->buffered -= w->len;
    free(w);
    if (status == UV_ECANCELED || c->closing)
        return;
    if (status < 0) {
        conn_close(c, true);
        return;
    }
    if (src->paused && dst->pending <= PROXY_HIGH_WATERMARK / 2) {
        src->paused = false;
        if (!src->eof && !c->sp)
            uv_read_start((uv_stream_t *)&src->tcp, on_alloc, on_read);
    }
    maybe_splice(c);
}

static int submit(side *dst, wreq *w)
{
    dst->nwrites++;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    int err = uv_write(&w->req, (uv_stream_t *)&dst->tcp, &b, 1, on_write);
    if (err) {
        dst->nwrites--;
        dst->pending -= w->len;
        dst->c->l->buffered -= w->len;
        free(w);
    }
    return err;
}

/* Forwards bytes read from src. Whatever the peer's socket takes at once
 * costs nothing; the rest is copied into a request, and reading from src
 * pauses while more than the watermark waits. */
static void relay(conn *c, side *src, const char *data, size_t len)
{
    side *dst = src->peer;
    bool queued = dst == &c->up && !c->connected;
    if (!queued && dst->nwrites == 0) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write((uv_stream_t *)&dst->tcp, &b, 1);
        if (n >= 0 && (size_t)n == len)
            return;
        if (n < 0 && n != UV_EAGAIN) {
            conn_close(c, true);
            return;
        }
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        }
    }
    wreq *w = xmalloc(sizeof(*w) + len);
    memcpy(w->data, data, len);
    w->dst = dst;
    w->next = NULL;
    w->len = len;
    dst->pending += len;
    c->l->buffered += len;
    if (queued) {
        *c->preq_tail = w;
        c->preq_tail = &w->next;
    } else if (submit(dst, w) != 0) {
        conn_close(c, true);
        return;
    }
    if (dst->pending > PROXY_HIGH_WATERMARK && !src->paused) {
        src->paused = true;
        uv_read_stop((uv_stream_t *)&src->tcp);
    }
}

void proxy_conn_write(proxy_conn *c, int to, const char *data, size_t len)
{
    if (c->closing || len == 0)
        return;
    /* relay() takes the side the bytes came from. */
    relay(c, to == PROXY_TO_SERVER ? &c->cli : &c->up, data, len);
}

void proxy_conn_plain(proxy_conn *c)
{
    c->h = NULL;
    c->hstate = NULL;
    c->klass = PROXY_CLASS_PLAIN;
}

/* Records the decision of the connection's classifier. A protocol with a
 * handler takes the connection over; anything else is forwarded as is. */
static void decide(conn *c, int klass)
{
    const proxy_handler *h = proxy_handler_for(klass);
    if (klass != PROXY_CLASS_NEED_MORE && !h)
        klass = PROXY_CLASS_PLAIN;
    c->klass = klass;
    if (h) {
        c->h = h;
        h->start(c, c->cstate);
    }
    if (klass != PROXY_CLASS_NEED_MORE)
        free_cstate(c);
}

/* Shows one chunk to the classifier, before it is forwarded (so that the
 * chosen handler can own it). */
static void classify(conn *c, side *src, const char *data, size_t len)
{
    const proxy_classifier *k = c->cls;
    if (!k) {
        c->klass = PROXY_CLASS_PLAIN;
        return;
    }
    int r = PROXY_CLASS_NEED_MORE;
    if (src == &c->cli) {
        r = k->client_bytes ? k->client_bytes(&c->cstate, data, len) : PROXY_CLASS_PLAIN;
        c->classified_bytes += len;
    } else if (k->server_bytes) {
        r = k->server_bytes(&c->cstate, data, len);
    }
    if (r == PROXY_CLASS_NEED_MORE && c->classified_bytes >= PROXY_CLASSIFY_LIMIT)
        r = PROXY_CLASS_PLAIN;
    decide(c, r);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *rb)
{
    side *src = container_of((uv_tcp_t *)stream, side, tcp);
    conn *c = src->c;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        if (nread == UV_EOF) {
            /* What the handler holds for the client (a response cut short
             * by the server's FIN) still reaches it, before the FIN. */
            if (src == &c->up && c->h && c->h->server_eof) {
                c->h->server_eof(c);
                if (c->closing)
                    return;
            }
            src->eof = true;
            propagate_eof(c, src);
            check_done(c);
        } else {
            /* A reset (or any error) on one side resets the other. */
            conn_close(c, true);
        }
        return;
    }
    size_t n = (size_t)nread;
    c->last = uv_now(c->l->loop);
    if (src == &c->cli)
        c->l->st.bytes_in += n;
    else
        c->l->st.bytes_out += n;
    if (c->klass == PROXY_CLASS_NEED_MORE) {
        classify(c, src, rb->base, n);
        if (c->closing)
            return;
    }
    if (c->h) {
        if (src == &c->cli)
            c->h->client_bytes(c, rb->base, n);
        else
            c->h->server_bytes(c, rb->base, n);
    } else {
        relay(c, src, rb->base, n);
    }
    if (c->closing)
        return;
    maybe_splice(c);
}

static void splice_bytes(void *arg, int dir, size_t n)
{
    conn *c = arg;
    c->last = uv_now(c->l->loop);
    if (dir == 0)
        c->l->st.bytes_in += n;
    else
        c->l->st.bytes_out += n;
}

static void splice_finished(void *arg, int status)
{
    conn_close(arg, status != 0);
}

static const splice_cbs splice_callbacks = {splice_bytes, splice_finished};

static void on_splice_retry(uv_timer_t *t)
{
    maybe_splice(t->data);
}

/* Hands a plain connection to the splice relay once nothing of it is left
 * in user space and no half-close is under way. */
static void maybe_splice(conn *c)
{
    if (c->sp || c->closing || c->splice_failed || !c->connected || c->klass != PROXY_CLASS_PLAIN ||
        !c->l->opts.splice || !splice_available())
        return;
    if (c->cli.eof || c->up.eof || c->cli.shut_sent || c->up.shut_sent)
        return;
    if (c->cli.nwrites || c->up.nwrites || c->cli.pending || c->up.pending)
        return;
    /* The pipes would pass the proxies' descriptor budget: read/write
     * serves as well, a little slower (asked again on the next bytes). */
    if (!proxy_room(4, 0))
        return;
    uv_os_fd_t fa, fb;
    if (uv_fileno((uv_handle_t *)&c->cli.tcp, &fa) || uv_fileno((uv_handle_t *)&c->up.tcp, &fb)) {
        c->splice_failed = true;
        return;
    }
    /* With reads stopped and no writes queued libuv no longer watches the
     * fds, so the relay's uv_poll handles may take them (see splice.h). */
    uv_read_stop((uv_stream_t *)&c->cli.tcp);
    uv_read_stop((uv_stream_t *)&c->up.tcp);
    int err = splice_start(c->l->loop, fa, fb, &splice_callbacks, c, &c->sp);
    if (err) {
        c->sp = NULL;
        if (err == UV_EEXIST && !c->splice_retried) {
            /* Called from on_write: libuv still watches the written fd for
             * writability until its write callbacks return, so the poll
             * handle cannot have it yet. Try once more on the next loop
             * iteration (the dial timer is free once connected). */
            c->splice_retried = true;
            uv_timer_start(&c->timer, on_splice_retry, 0, 0);
        } else {
            /* Out of fds for the pipes, most likely: stay on read/write. */
            log_debug_err(MOD, err, "splice unavailable for a connection");
            c->splice_failed = true;
        }
        uv_read_start((uv_stream_t *)&c->cli.tcp, on_alloc, on_read);
        uv_read_start((uv_stream_t *)&c->up.tcp, on_alloc, on_read);
        return;
    }
    c->refs++;
    proxy_count(4, 0);
    spliced_now++;
    spliced_total++;
}

static void on_connect(uv_connect_t *req, int status);
static void on_dial_timeout(uv_timer_t *t);
static void pause_accepting(proxy_listener *l, int err);

/* Connects the upstream handle to where the dialer's current attempt said;
 * the dial timeout runs per attempt. Returns 0 or the libuv error of
 * uv_tcp_connect (the caller closes the connection). */
static int dial(conn *c, const struct sockaddr *to)
{
    proxy_listener *l = c->l;
    int err = uv_tcp_connect(&c->creq, &c->up.tcp, to, on_connect);
    if (err) {
        if (err == UV_EMFILE || err == UV_ENFILE)
            pause_accepting(l, err);
        else
            log_debug_err(MOD, err, "upstream connect");
        return err;
    }
    uv_timer_start(&c->timer, on_dial_timeout, l->opts.dial_timeout_ms, 0);
    return 0;
}

/* The old upstream socket is gone: a fresh handle (the next address may be
 * of the other family) dials the dialer's next answer. */
static void on_redial_closed(uv_handle_t *h)
{
    conn *c = h->data;
    c->redialing = false;
    if (c->closing) {
        conn_unref(c);
        return;
    }
    uv_tcp_init(c->l->loop, &c->up.tcp);
    c->up.tcp.data = c;
    struct sockaddr_storage to;
    int rc = proxy_next_upstream(c->l, c->attempt, (const struct sockaddr *)&c->peer, &to);
    if (rc == -EPERM)
        c->l->st.refused++;
    if (rc != 0 || dial(c, (const struct sockaddr *)&to) != 0)
        conn_close(c, rc != -EPERM);
}

/* The upstream refused: with a dialer, ask for the next attempt; the
 * client's early bytes stay queued for whichever upstream connects. True
 * when a redial is under way. */
static bool redial(conn *c)
{
    if (!c->l->dialer.next)
        return false;
    c->attempt++;
    c->redialing = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->up.tcp, on_redial_closed);
    return true;
}

static void on_connect(uv_connect_t *req, int status)
{
    conn *c = container_of(req, conn, creq);
    if (status == UV_ECANCELED || c->closing)
        return;
    if (status == UV_ECONNREFUSED && redial(c))
        return;
    if (status < 0) {
        /* Refused or unreachable: the client sees a reset, as it would
         * connecting to the container directly. */
        log_debug_err(MOD, status, "upstream connect failed");
        conn_close(c, true);
        return;
    }
    c->connected = true;
    uv_timer_stop(&c->timer);
    uv_tcp_nodelay(&c->up.tcp, 1);
    wreq *w = c->preq;
    c->preq = NULL;
    c->preq_tail = &c->preq;
    while (w) {
        wreq *next = w->next;
        if (submit(&c->up, w) != 0) {
            while (next) {
                w = next;
                next = w->next;
                c->up.pending -= w->len;
                c->l->buffered -= w->len;
                free(w);
            }
            conn_close(c, true);
            return;
        }
        w = next;
    }
    if (c->cli.eof)
        propagate_eof(c, &c->cli);
    if (c->closing)
        return;
    int err = uv_read_start((uv_stream_t *)&c->up.tcp, on_alloc, on_read);
    if (err) {
        conn_close(c, true);
        return;
    }
    maybe_splice(c);
}

/* Per attempt: each redial starts it again. */
static void on_dial_timeout(uv_timer_t *t)
{
    conn *c = t->data;
    log_debug(MOD, "upstream connect timed out");
    conn_close(c, false);
}

static void on_accept_resume(uv_timer_t *t);
static void on_accept_ready(uv_poll_t *h, int status, int events);

/* err: the negative errno that stopped accepting. */
static void pause_accepting(proxy_listener *l, int err)
{
    l->st.accept_pauses++;
    log_limited(&l->emfile_log, LOG_WARN, MOD, 0,
                "accept: %s; pausing new connections for %d ms (existing ones continue)",
                err_str(err), ACCEPT_PAUSE_MS);
    uv_poll_stop(&l->lpoll);
    uv_timer_start(&l->timer, on_accept_resume, ACCEPT_PAUSE_MS, 0);
}

/* A client the dialer has no upstream for, or refuses: never a
 * connection of its own. */
static void conn_refuse(proxy_listener *l, int fd, int why)
{
    if (why == -EPERM) {
        l->st.refused++;
    } else {
        /* As for an upstream refusal: a reset, counted as a connection. */
        struct linger lg = {1, 0};
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        l->st.conns_total++;
    }
    close(fd);
}

static void on_idle_sweep(uv_timer_t *t);

/* At a cap: the client is accepted and closed at once with a reset (it
 * fails fast, and no TIME_WAIT stays here), counted, and said once a
 * minute. True when fd was closed so. */
static bool at_cap(proxy_listener *l, int fd)
{
    const char *why = NULL;
    if (l->opts.max_conns && l->st.conns_active >= l->opts.max_conns)
        why = "the connection cap of this port";
    else if (!proxy_room(2, 1))
        why = "the connection cap or descriptor budget of all proxies";
    if (!why)
        return false;
    proxy_count_capped(l);
    log_limited(&l->cap_log, LOG_WARN, MOD, 0,
                "tcp: %llu connections open here, at %s; closing new connections at once "
                "(see --max-conns, --max-conns-per-port)",
                (unsigned long long)l->st.conns_active, why);
    struct linger lg = {1, 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    return true;
}

static void conn_start(proxy_listener *l, int fd, const struct sockaddr_storage *peer)
{
    if (at_cap(l, fd))
        return;
    struct sockaddr_storage to;
    int rc = proxy_next_upstream(l, 0, (const struct sockaddr *)peer, &to);
    if (rc != 0) {
        conn_refuse(l, fd, rc);
        return;
    }
    conn *c = xcalloc(1, sizeof(*c));
    c->l = l;
    c->preq_tail = &c->preq;
    c->klass = PROXY_CLASS_NEED_MORE;
    c->cls = l->first_bytes;
    c->cli.c = c->up.c = c;
    c->cli.peer = &c->up;
    c->up.peer = &c->cli;
    c->peer = *peer;
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    l->refs++;
    l->st.conns_total++;
    l->st.conns_active++;
    proxy_count(2, 1);
    c->last = uv_now(l->loop);
    if (l->opts.tcp_idle_s && !uv_is_active((uv_handle_t *)&l->idle)) {
        /* A quarter of the timeout, at most a minute: an idle connection
         * closes within 1.25 times the timeout (or a minute past it). */
        uint64_t every = (uint64_t)l->opts.tcp_idle_s * 1000 / 4;
        if (every > 60000)
            every = 60000;
        uv_timer_start(&l->idle, on_idle_sweep, every, every);
    }

    uv_tcp_init(l->loop, &c->cli.tcp);
    uv_tcp_init(l->loop, &c->up.tcp);
    uv_timer_init(l->loop, &c->timer);
    c->cli.tcp.data = c->up.tcp.data = c->timer.data = c;
    c->refs = 3;
    int err = uv_tcp_open(&c->cli.tcp, fd);
    if (err) {
        close(fd);
        conn_close(c, false);
        return;
    }
    uv_tcp_nodelay(&c->cli.tcp, 1);
    if (dial(c, (const struct sockaddr *)&to) != 0) {
        conn_close(c, true);
        return;
    }
    /* A protocol forced by configuration owns the connection from byte 0. */
    if (c->cls && c->cls->accepted)
        decide(c, c->cls->accepted(&c->cstate));
    uv_read_start((uv_stream_t *)&c->cli.tcp, on_alloc, on_read);
}

static void on_accept_resume(uv_timer_t *t)
{
    proxy_listener *l = t->data;
    if (!l->closing)
        uv_poll_start(&l->lpoll, UV_READABLE, on_accept_ready);
}

static void on_accept_ready(uv_poll_t *h, int status, int events)
{
    (void)events;
    proxy_listener *l = h->data;
    if (status < 0) {
        /* libuv has stopped the watcher: pause and watch again, rather than
         * leave the listener deaf. */
        pause_accepting(l, status);
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH && !l->closing; i++) {
        /* The client's address is the dialer's to judge. */
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        memset(&peer, 0, sizeof(peer));
#ifdef __linux__
        int fd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
        int fd = accept(l->fd, (struct sockaddr *)&peer, &plen);
        if (fd >= 0)
            (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
        if (fd < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK)
                return;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO)
                continue;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                /* Pending connections stay in the backlog and are served
                 * once descriptors are free again; meanwhile level-triggered
                 * readiness would spin, so stop watching for a while. */
                pause_accepting(l, -e);
                return;
            }
            log_debug_err(MOD, -e, "accept");
            return;
        }
        conn_start(l, fd, &peer);
        if (uv_is_active((uv_handle_t *)&l->timer))
            return; /* conn_start paused accepting */
    }
}

/* Closes the connections no byte moved on for tcp_idle_s: with a FIN when
 * nothing waits to be written, else with a reset (a client that stopped
 * reading). Stops when no connection is left; the next one starts it. */
static void on_idle_sweep(uv_timer_t *t)
{
    proxy_listener *l = t->data;
    uint64_t now = uv_now(l->loop);
    uint64_t idle = (uint64_t)l->opts.tcp_idle_s * 1000;
    bool open = false;
    for (conn *c = l->conns; c; c = c->next) {
        if (c->closing)
            continue;
        if (now - c->last < idle) {
            open = true;
            continue;
        }
        proxy_count_idle_closed(l);
        log_debug(MOD, "closing a connection idle for %llu s",
                  (unsigned long long)(now - c->last) / 1000);
        conn_close(c, c->cli.pending || c->up.pending || c->cli.nwrites || c->up.nwrites);
    }
    if (!open)
        uv_timer_stop(&l->idle);
}

void proxy_tcp_start(proxy_listener *l)
{
    uv_poll_start(&l->lpoll, UV_READABLE, on_accept_ready);
}

void proxy_tcp_close_all(proxy_listener *l)
{
    for (conn *c = l->conns; c; c = c->next)
        conn_close(c, false);
}
