/* TCP and UDP forwarding on libuv. See proxy.h for the model; the Linux
 * zero-copy relay lives in splice_linux.c. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* accept4 */
#endif
#include "proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "splice.h"
#include "util.h"

#define MOD "proxy"
#define ACCEPT_PAUSE_MS 100
#define ACCEPT_BATCH 64
#define CLASSIFY_LIMIT (64 * 1024)
#define LOG_EVERY_MS (60 * 1000)
/* kafka_sniff decides with at most this many bytes. */
#define KAFKA_SNIFF_BYTES 14

static uint64_t spliced_now;
static uint64_t spliced_total;

typedef struct conn conn;

/* One write request; data follows the struct. Before the upstream connect
 * completes, requests wait on conn.preq (linked through next). */
typedef struct wreq {
    uv_write_t req;
    struct side *dst;
    struct wreq *next;
    size_t len;
    char data[];
} wreq;

typedef struct side {
    uv_tcp_t tcp;
    conn *c;
    struct side *peer;
    uv_shutdown_t sreq;
    size_t pending;   /* bytes held for writing to this side */
    unsigned nwrites; /* uv_write requests in flight to this side */
    bool eof;         /* this side sent FIN */
    bool shut_sent;   /* its peer's FIN passed on (uv_shutdown issued) */
    bool shut_done;
    bool paused; /* reading stopped: the peer's queue is above the watermark */
} side;

struct conn {
    proxy_listener *l;
    conn *prev, *next;
    side cli, up;
    uv_connect_t creq;
    uv_timer_t timer;
    wreq *preq, **preq_tail;
    splice_conn *sp;
    void *cstate; /* the classifier's */
    size_t classified_bytes;
    int klass;
    /* Kafka (see proxy_kafka): the tracker/rewriter once the connection is
     * Kafka, the first client bytes kept for sniffing (they are forwarded
     * already and fed to the tracker from byte 0 once it starts), and what
     * was last accounted of it. */
    int kmode;
    kafka_conn *kc;
    uint8_t head[KAFKA_SNIFF_BYTES];
    size_t nhead;
    size_t kheld;        /* response bytes held by kc, counted in l->buffered */
    uint64_t kerrors;    /* kafka_conn_errors() last logged */
    uint64_t krewritten; /* kafka_stats.rewritten last added to the listener's */
    int handles;         /* open handles (and the splice relay); freed at zero */
    bool connected;
    bool closing;
    bool splice_failed;
    bool splice_retried; /* splice_start said UV_EEXIST once (see maybe_splice) */
};

typedef struct usess {
    uv_udp_t up;
    proxy_listener *l;
    struct usess *hnext;
    struct sockaddr_storage peer;
    uint64_t last; /* uv_now of the last datagram either way */
} usess;

struct proxy_listener {
    uv_loop_t *loop;
    proxy_options opts;
    int proto;
    struct sockaddr_storage upstream;
    struct sockaddr_storage local;
    int fd;           /* TCP: the listening socket (owned here) */
    uv_poll_t lpoll;  /* TCP: readiness of fd */
    uv_udp_t udp;     /* UDP: the client-facing socket */
    uv_timer_t timer; /* TCP: accept pause; UDP: idle sweep */
    conn *conns;
    usess **buckets;
    size_t nbuckets;
    size_t nsessions;
    proxy_stats st;
    size_t buffered;
    int refs; /* own handles + connections/sessions; freed at zero */
    bool closing;
    bool sweeping;
    void (*close_cb)(void *arg);
    void *close_arg;
    uint64_t last_emfile_log;
    uint64_t last_cap_log;
    bool emfile_logged;
    bool cap_logged;
    proxy_kafka kafka;
    bool kafka_seen; /* kafka.detected was called */
    uint64_t last_kafka_log;
    bool kafka_logged;
    /* Reads go here first: alloc and read callbacks come in strict pairs on
     * one thread, and only the part the peer's socket does not take at once
     * is copied out, so idle connections hold no buffers. */
    char scratch[PROXY_READ_SIZE];
};

void proxy_options_default(proxy_options *o)
{
    memset(o, 0, sizeof(*o));
    o->dial_timeout_ms = 5000;
    o->udp_idle_s = 60;
    o->udp_max_sessions = 1024;
    o->splice = true;
    o->classifier = NULL;
}

uint64_t proxy_spliced_connections(void)
{
    return spliced_now;
}

uint64_t proxy_spliced_total(void)
{
    return spliced_total;
}

static socklen_t sa_len(const struct sockaddr *sa)
{
    return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static void sa_copy(struct sockaddr_storage *dst, const struct sockaddr *src)
{
    memset(dst, 0, sizeof(*dst));
    memcpy(dst, src, sa_len(src));
}

/* Logs at most once a minute per listener and kind, so a flood of EMFILE or
 * capped sessions cannot flood the log. */
static bool rate_ok(proxy_listener *l, uint64_t *last, bool *logged)
{
    uint64_t now = uv_now(l->loop);
    if (*logged && now - *last < LOG_EVERY_MS)
        return false;
    *logged = true;
    *last = now;
    return true;
}

static void listener_unref(proxy_listener *l)
{
    if (--l->refs > 0)
        return;
    void (*cb)(void *) = l->close_cb;
    void *arg = l->close_arg;
    if (l->kafka.free_ud)
        l->kafka.free_ud(l->kafka.ud);
    free(l->buckets);
    free(l);
    if (cb)
        cb(arg);
}

static void on_listener_handle_closed(uv_handle_t *h)
{
    listener_unref(h->data);
}

/* ---- TCP connections ---- */

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *rb);
static void maybe_splice(conn *c);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *rb)
{
    (void)suggested;
    side *s = container_of((uv_tcp_t *)h, side, tcp);
    proxy_listener *l = s->c->l;
    *rb = uv_buf_init(l->scratch, sizeof(l->scratch));
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
    if (c->kc) {
        l->buffered -= c->kheld;
        kafka_conn_free(c->kc);
    }
    const proxy_classifier *k = l->opts.classifier;
    if (k && k->free_state && c->cstate)
        k->free_state(k->arg, c->cstate);
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    l->st.conns_active--;
    free(c);
    listener_unref(l);
}

static void conn_unref(conn *c)
{
    if (--c->handles == 0)
        conn_free(c);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void on_splice_closed(void *arg)
{
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

/* ---- Kafka ---- */

static int kafka_map_tramp(void *ud, int32_t node_id, const char *host, size_t host_len,
                           int32_t port, char *new_host, size_t cap, int32_t *new_port)
{
    conn *c = ud;
    proxy_listener *l = c->l;
    if (!l->kafka.map)
        return 0;
    return l->kafka.map(l->kafka.ud, l, kafka_resp_nodes(c->kc), node_id, host, host_len, port,
                        new_host, cap, new_port);
}

static void kafka_emit(void *ud, const uint8_t *p, size_t n)
{
    conn *c = ud;
    /* A failed write closed the connection: the rest is dropped with it. */
    if (!c->closing && n > 0)
        relay(c, &c->up, (const char *)p, n);
}

/* One line per listener and minute, so a broken peer cannot flood the log. */
static void kafka_log(conn *c, const char *what, const char *detail)
{
    proxy_listener *l = c->l;
    if (rate_ok(l, &l->last_kafka_log, &l->kafka_logged))
        log_warn(MOD, "kafka: %s%s%s", what, detail[0] ? ": " : "", detail);
}

/* Brings the listener's view of the tracker up to date: held bytes count as
 * buffered, new rewrites are counted, a new problem is logged once. */
static void kafka_account(conn *c)
{
    proxy_listener *l = c->l;
    size_t held = kafka_resp_held(c->kc);
    l->buffered = l->buffered - c->kheld + held;
    c->kheld = held;
    kafka_stats st;
    kafka_conn_stats(c->kc, &st);
    l->st.kafka_rewritten += st.rewritten - c->krewritten;
    c->krewritten = st.rewritten;
    uint64_t errs = kafka_conn_errors(c->kc);
    if (errs != c->kerrors) {
        c->kerrors = errs;
        kafka_log(c, "a response was passed through unchanged", kafka_last_error(c->kc));
    }
}

/* Gives up on Kafka for this connection: held bytes go out unchanged and in
 * order, then it is forwarded plainly (and may switch to splice). */
static void kafka_stop(conn *c, const char *why)
{
    if (why)
        kafka_log(c, why, "forwarding the connection unchanged");
    kafka_resp_release(c->kc, kafka_emit, c);
    kafka_account(c);
    c->l->buffered -= c->kheld;
    c->kheld = 0;
    kafka_conn_free(c->kc);
    c->kc = NULL;
    c->klass = PROXY_CLASS_PLAIN;
}

static void kafka_client_bytes(conn *c, const uint8_t *p, size_t n)
{
    if (c->kc && n > 0 && kafka_req_feed(c->kc, p, n) < 0)
        kafka_stop(c, "request framing broken");
}

static void kafka_server_bytes(conn *c, const char *data, size_t len)
{
    int rc = kafka_resp_feed(c->kc, (const uint8_t *)data, len, kafka_emit, c);
    kafka_account(c);
    if (rc < 0)
        kafka_stop(c, "response framing broken");
}

static void kafka_start(conn *c)
{
    proxy_listener *l = c->l;
    c->kc = kafka_conn_new(kafka_map_tramp, c);
    c->klass = PROXY_CLASS_KAFKA;
    l->st.kafka_conns++;
    if (!l->kafka_seen) {
        l->kafka_seen = true;
        if (l->kafka.detected)
            l->kafka.detected(l->kafka.ud, l);
    }
}

/* Sniffing: Kafka when the first client bytes look like a request and the
 * server did not speak first. The bytes were forwarded already. */
static void kafka_classify(conn *c, side *src, const char *data, size_t len)
{
    if (src == &c->up) {
        c->klass = PROXY_CLASS_PLAIN;
        return;
    }
    size_t before = c->nhead;
    size_t take = len < KAFKA_SNIFF_BYTES - before ? len : KAFKA_SNIFF_BYTES - before;
    memcpy(c->head + before, data, take);
    c->nhead += take;
    int r = kafka_sniff(c->head, c->nhead);
    if (r == KAFKA_MAYBE && c->nhead < KAFKA_SNIFF_BYTES)
        return;
    if (r != KAFKA_YES) {
        c->klass = PROXY_CLASS_PLAIN;
        return;
    }
    kafka_start(c);
    kafka_client_bytes(c, c->head, before);
    kafka_client_bytes(c, (const uint8_t *)data, len);
}

static void classify(conn *c, side *src, const char *data, size_t len)
{
    if (c->kmode == PROXY_KAFKA_SNIFF) {
        kafka_classify(c, src, data, len);
        return;
    }
    const proxy_classifier *k = c->l->opts.classifier;
    if (!k) {
        c->klass = PROXY_CLASS_PLAIN;
        return;
    }
    int r;
    if (src == &c->cli)
        r = k->client_bytes ? k->client_bytes(k->arg, &c->cstate, data, len) : PROXY_CLASS_PLAIN;
    else
        r = k->server_bytes ? k->server_bytes(k->arg, &c->cstate, data, len)
                            : PROXY_CLASS_NEED_MORE;
    if (src == &c->cli)
        c->classified_bytes += len;
    if (r == PROXY_CLASS_NEED_MORE && c->classified_bytes >= CLASSIFY_LIMIT)
        r = PROXY_CLASS_PLAIN;
    if (r != PROXY_CLASS_NEED_MORE && r != PROXY_CLASS_PLAIN && r != PROXY_CLASS_KAFKA)
        r = PROXY_CLASS_PLAIN;
    c->klass = r;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *rb)
{
    side *src = container_of((uv_tcp_t *)stream, side, tcp);
    conn *c = src->c;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        if (nread == UV_EOF) {
            /* A response cut short by the broker's FIN still reaches the
             * client, before the FIN. */
            if (src == &c->up && c->kc) {
                kafka_stop(c, NULL);
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
    if (src == &c->cli)
        c->l->st.bytes_in += (uint64_t)nread;
    else
        c->l->st.bytes_out += (uint64_t)nread;
    if (c->kc && src == &c->up) {
        /* Broker bytes go through the rewriter, which emits them in order. */
        kafka_server_bytes(c, rb->base, (size_t)nread);
        if (!c->closing)
            maybe_splice(c);
        return;
    }
    /* Forward first: classification never delays bytes. */
    relay(c, src, rb->base, (size_t)nread);
    if (c->closing)
        return;
    if (c->kc)
        kafka_client_bytes(c, (const uint8_t *)rb->base, (size_t)nread);
    else if (c->klass == PROXY_CLASS_NEED_MORE)
        classify(c, src, rb->base, (size_t)nread);
    if (c->closing)
        return;
    maybe_splice(c);
}

static void splice_bytes(void *arg, int dir, size_t n)
{
    conn *c = arg;
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
            log_debug(MOD, "splice unavailable for a connection: %s", uv_strerror(err));
            c->splice_failed = true;
        }
        uv_read_start((uv_stream_t *)&c->cli.tcp, on_alloc, on_read);
        uv_read_start((uv_stream_t *)&c->up.tcp, on_alloc, on_read);
        return;
    }
    c->handles++;
    spliced_now++;
    spliced_total++;
}

static void on_connect(uv_connect_t *req, int status)
{
    conn *c = container_of(req, conn, creq);
    if (status == UV_ECANCELED || c->closing)
        return;
    if (status < 0) {
        /* Refused or unreachable: the client sees a reset, as it would
         * connecting to the container directly. */
        log_debug(MOD, "upstream connect failed: %s", uv_strerror(status));
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

static void on_dial_timeout(uv_timer_t *t)
{
    conn *c = t->data;
    log_debug(MOD, "upstream connect timed out");
    conn_close(c, false);
}

static void on_accept_resume(uv_timer_t *t);

static void pause_accepting(proxy_listener *l, int err)
{
    l->st.accept_pauses++;
    if (rate_ok(l, &l->last_emfile_log, &l->emfile_logged))
        log_warn(MOD, "accept: %s; pausing new connections for %d ms (existing ones continue)",
                 strerror(err), ACCEPT_PAUSE_MS);
    uv_poll_stop(&l->lpoll);
    uv_timer_start(&l->timer, on_accept_resume, ACCEPT_PAUSE_MS, 0);
}

static void conn_start(proxy_listener *l, int fd)
{
    conn *c = xcalloc(1, sizeof(*c));
    c->l = l;
    c->preq_tail = &c->preq;
    c->klass = PROXY_CLASS_NEED_MORE;
    c->kmode = l->kafka.mode;
    c->cli.c = c->up.c = c;
    c->cli.peer = &c->up;
    c->up.peer = &c->cli;
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    l->refs++;
    l->st.conns_total++;
    l->st.conns_active++;

    uv_tcp_init(l->loop, &c->cli.tcp);
    uv_tcp_init(l->loop, &c->up.tcp);
    uv_timer_init(l->loop, &c->timer);
    c->cli.tcp.data = c->up.tcp.data = c->timer.data = c;
    c->handles = 3;
    int err = uv_tcp_open(&c->cli.tcp, fd);
    if (err) {
        close(fd);
        conn_close(c, false);
        return;
    }
    uv_tcp_nodelay(&c->cli.tcp, 1);
    err = uv_tcp_connect(&c->creq, &c->up.tcp, (const struct sockaddr *)&l->upstream, on_connect);
    if (err) {
        if (err == UV_EMFILE || err == UV_ENFILE)
            pause_accepting(l, -err);
        else
            log_debug(MOD, "upstream connect: %s", uv_strerror(err));
        conn_close(c, true);
        return;
    }
    if (c->kmode == PROXY_KAFKA_FORCE)
        kafka_start(c);
    uv_timer_start(&c->timer, on_dial_timeout, l->opts.dial_timeout_ms, 0);
    uv_read_start((uv_stream_t *)&c->cli.tcp, on_alloc, on_read);
}

static void on_accept_ready(uv_poll_t *h, int status, int events);

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
        pause_accepting(l, -status);
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH && !l->closing; i++) {
#ifdef __linux__
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
        int fd = accept(l->fd, NULL, NULL);
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
                pause_accepting(l, e);
                return;
            }
            log_debug(MOD, "accept: %s", strerror(e));
            return;
        }
        conn_start(l, fd);
        if (uv_is_active((uv_handle_t *)&l->timer))
            return; /* conn_start paused accepting */
    }
}

/* ---- UDP sessions ---- */

static uint64_t addr_hash(const struct sockaddr *sa)
{
    const unsigned char *p;
    size_t n;
    uint16_t port;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        p = s6->sin6_addr.s6_addr;
        n = 16;
        port = s6->sin6_port;
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        p = (const unsigned char *)&s4->sin_addr;
        n = 4;
        port = s4->sin_port;
    }
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    h = (h ^ (port & 0xff)) * 1099511628211ULL;
    h = (h ^ (port >> 8)) * 1099511628211ULL;
    return h;
}

static bool addr_eq(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
}

static usess **sess_slot(proxy_listener *l, const struct sockaddr *sa)
{
    usess **pp = &l->buckets[addr_hash(sa) & (l->nbuckets - 1)];
    while (*pp && !addr_eq((const struct sockaddr *)&(*pp)->peer, sa))
        pp = &(*pp)->hnext;
    return pp;
}

static void on_sess_closed(uv_handle_t *h)
{
    usess *s = h->data;
    proxy_listener *l = s->l;
    free(s);
    listener_unref(l);
}

static void sess_close(usess *s)
{
    proxy_listener *l = s->l;
    usess **pp = sess_slot(l, (const struct sockaddr *)&s->peer);
    if (*pp == s)
        *pp = s->hnext;
    l->nsessions--;
    l->st.conns_active--;
    uv_close((uv_handle_t *)&s->up, on_sess_closed);
}

static void on_client_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *rb)
{
    (void)suggested;
    proxy_listener *l = h->data;
    *rb = uv_buf_init(l->scratch, sizeof(l->scratch));
}

static void on_sess_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *rb)
{
    (void)suggested;
    usess *s = h->data;
    *rb = uv_buf_init(s->l->scratch, sizeof(s->l->scratch));
}

static void on_udp_upstream(uv_udp_t *h, ssize_t nread, const uv_buf_t *rb,
                            const struct sockaddr *addr, unsigned flags)
{
    usess *s = h->data;
    proxy_listener *l = s->l;
    /* Errors here are ICMP reports (ECONNREFUSED while the container's
     * server is not up): the session stays until it idles out. */
    if (nread < 0 || (nread == 0 && addr == NULL) || l->closing)
        return;
    if (flags & UV_UDP_PARTIAL) {
        l->st.dropped++;
        return;
    }
    s->last = uv_now(l->loop);
    l->st.bytes_out += (uint64_t)nread;
    uv_buf_t b = uv_buf_init(rb->base, (unsigned)nread);
    if (uv_udp_try_send(&l->udp, &b, 1, (const struct sockaddr *)&s->peer) < 0)
        l->st.dropped++;
}

static void on_sweep(uv_timer_t *t);

static usess *sess_new(proxy_listener *l, const struct sockaddr *peer)
{
    usess *s = xcalloc(1, sizeof(*s));
    s->l = l;
    sa_copy(&s->peer, peer);
    uv_udp_init(l->loop, &s->up);
    s->up.data = s;
    l->refs++;
    l->st.conns_total++;
    l->st.conns_active++;
    l->nsessions++;
    usess **pp = sess_slot(l, peer);
    *pp = s;
    int err = uv_udp_connect(&s->up, (const struct sockaddr *)&l->upstream);
    if (err == 0)
        err = uv_udp_recv_start(&s->up, on_sess_alloc, on_udp_upstream);
    if (err) {
        log_debug(MOD, "udp session: %s", uv_strerror(err));
        sess_close(s);
        return NULL;
    }
    if (!l->sweeping) {
        uint64_t every = (uint64_t)l->opts.udp_idle_s * 1000 / 4;
        if (every < 50)
            every = 50;
        if (every > 5000)
            every = 5000;
        uv_timer_start(&l->timer, on_sweep, every, every);
        l->sweeping = true;
    }
    return s;
}

static void on_sweep(uv_timer_t *t)
{
    proxy_listener *l = t->data;
    uint64_t now = uv_now(l->loop);
    uint64_t idle = (uint64_t)l->opts.udp_idle_s * 1000;
    for (size_t i = 0; i < l->nbuckets; i++) {
        usess *s = l->buckets[i];
        while (s) {
            usess *next = s->hnext;
            if (now - s->last >= idle)
                sess_close(s);
            s = next;
        }
    }
    if (l->nsessions == 0) {
        uv_timer_stop(&l->timer);
        l->sweeping = false;
    }
}

static void on_udp_client(uv_udp_t *h, ssize_t nread, const uv_buf_t *rb,
                          const struct sockaddr *addr, unsigned flags)
{
    proxy_listener *l = h->data;
    if (nread < 0 || addr == NULL || l->closing)
        return;
    if (flags & UV_UDP_PARTIAL) {
        l->st.dropped++;
        return;
    }
    if (addr->sa_family != l->local.ss_family)
        return;
    usess *s = *sess_slot(l, addr);
    if (!s) {
        if (l->nsessions >= l->opts.udp_max_sessions) {
            l->st.dropped++;
            if (rate_ok(l, &l->last_cap_log, &l->cap_logged))
                log_warn(MOD, "udp: %u sessions, the cap; dropping datagrams from new clients",
                         l->opts.udp_max_sessions);
            return;
        }
        s = sess_new(l, addr);
        if (!s) {
            l->st.dropped++;
            return;
        }
    }
    s->last = uv_now(l->loop);
    l->st.bytes_in += (uint64_t)nread;
    uv_buf_t b = uv_buf_init(rb->base, (unsigned)nread);
    if (uv_udp_try_send(&s->up, &b, 1, NULL) < 0)
        l->st.dropped++;
}

/* ---- listeners ---- */

static int open_socket(const struct sockaddr *sa, int type, int *out)
{
    int fd = socket(sa->sa_family, type, 0);
    if (fd < 0)
        return -errno;
    int on = 1;
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        goto fail;
    /* TCP: SO_REUSEADDR lets a restarted daemon bind over TIME_WAIT, yet a
     * live listener on the same address (or on the wildcard, on Linux) still
     * yields EADDRINUSE. Not for UDP, where it would allow a second bind. */
    if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
        goto fail;
    if (sa->sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0)
        goto fail;
    if (bind(fd, sa, sa_len(sa)) < 0)
        goto fail;
    if (type == SOCK_STREAM && listen(fd, SOMAXCONN) < 0)
        goto fail;
    *out = fd;
    return 0;
fail:;
    int err = -errno;
    close(fd);
    return err;
}

int proxy_listen(uv_loop_t *loop, const proxy_options *opts, int proto,
                 const struct sockaddr *listen_addr, const struct sockaddr *upstream,
                 proxy_listener **out)
{
    if (!listen_addr || !upstream ||
        (listen_addr->sa_family != AF_INET && listen_addr->sa_family != AF_INET6) ||
        (upstream->sa_family != AF_INET && upstream->sa_family != AF_INET6) ||
        (proto != PROXY_TCP && proto != PROXY_UDP))
        return UV_EINVAL;
    proxy_listener *l = xcalloc(1, sizeof(*l));
    l->loop = loop;
    if (opts)
        l->opts = *opts;
    else
        proxy_options_default(&l->opts);
    if (l->opts.dial_timeout_ms == 0)
        l->opts.dial_timeout_ms = 5000;
    if (l->opts.udp_idle_s == 0)
        l->opts.udp_idle_s = 60;
    if (l->opts.udp_max_sessions == 0)
        l->opts.udp_max_sessions = 1024;
    l->proto = proto;
    sa_copy(&l->upstream, upstream);
    int fd = -1;
    int err = open_socket(listen_addr, proto == PROXY_TCP ? SOCK_STREAM : SOCK_DGRAM, &fd);
    if (err) {
        free(l);
        return err;
    }
    socklen_t len = sizeof(l->local);
    if (getsockname(fd, (struct sockaddr *)&l->local, &len) < 0)
        sa_copy(&l->local, listen_addr);

    if (proto == PROXY_TCP) {
        err = uv_poll_init_socket(loop, &l->lpoll, fd);
        if (err) {
            close(fd);
            free(l);
            return err;
        }
        l->fd = fd;
        l->lpoll.data = l;
        uv_timer_init(loop, &l->timer);
        l->timer.data = l;
        l->refs = 2;
        uv_poll_start(&l->lpoll, UV_READABLE, on_accept_ready);
    } else {
        size_t nb = 16;
        while (nb < l->opts.udp_max_sessions / 2 && nb < 65536)
            nb *= 2;
        l->buckets = xcalloc(nb, sizeof(*l->buckets));
        l->nbuckets = nb;
        l->fd = -1;
        uv_udp_init(loop, &l->udp);
        l->udp.data = l;
        uv_timer_init(loop, &l->timer);
        l->timer.data = l;
        l->refs = 2;
        err = uv_udp_open(&l->udp, fd);
        if (err == 0)
            err = uv_udp_recv_start(&l->udp, on_client_udp_alloc, on_udp_client);
        if (err) {
            /* Rare (the socket is ours and fresh); the handles can only go
             * away asynchronously, the socket itself is closed now. */
            uv_os_fd_t ufd;
            if (uv_fileno((uv_handle_t *)&l->udp, &ufd) != 0)
                close(fd); /* uv_udp_open refused it */
            l->closing = true;
            uv_close((uv_handle_t *)&l->udp, on_listener_handle_closed);
            uv_close((uv_handle_t *)&l->timer, on_listener_handle_closed);
            return err;
        }
    }
    *out = l;
    return 0;
}

void proxy_set_upstream(proxy_listener *l, const struct sockaddr *upstream)
{
    if (upstream && (upstream->sa_family == AF_INET || upstream->sa_family == AF_INET6))
        sa_copy(&l->upstream, upstream);
}

void proxy_set_kafka(proxy_listener *l, const proxy_kafka *h)
{
    if (l->proto != PROXY_TCP) {
        if (h && h->free_ud)
            h->free_ud(h->ud);
        return;
    }
    if (l->kafka.free_ud)
        l->kafka.free_ud(l->kafka.ud);
    memset(&l->kafka, 0, sizeof(l->kafka));
    if (h && h->mode != PROXY_KAFKA_OFF)
        l->kafka = *h;
    else if (h && h->free_ud)
        h->free_ud(h->ud);
    l->kafka_seen = false;
}

void proxy_close(proxy_listener *l, void (*cb)(void *arg), void *arg)
{
    if (l->closing)
        return;
    l->closing = true;
    l->close_cb = cb;
    l->close_arg = arg;
    /* Hold a reference so the listener outlives this function even when
     * everything below closes synchronously. */
    l->refs++;
    if (l->proto == PROXY_TCP) {
        uv_close((uv_handle_t *)&l->lpoll, on_listener_handle_closed);
        close(l->fd);
        l->fd = -1;
        for (conn *c = l->conns; c; c = c->next)
            conn_close(c, false);
    } else {
        uv_close((uv_handle_t *)&l->udp, on_listener_handle_closed);
        for (size_t i = 0; i < l->nbuckets; i++) {
            usess *s = l->buckets[i];
            while (s) {
                usess *next = s->hnext;
                sess_close(s);
                s = next;
            }
        }
    }
    uv_close((uv_handle_t *)&l->timer, on_listener_handle_closed);
    listener_unref(l);
}

void proxy_get_stats(const proxy_listener *l, proxy_stats *st)
{
    *st = l->st;
}

size_t proxy_buffered(const proxy_listener *l)
{
    return l->buffered;
}

int proxy_local_addr(const proxy_listener *l, struct sockaddr_storage *out)
{
    *out = l->local;
    return 0;
}
