/* splice(2) relay: socket -> pipe -> socket per direction, driven by
 * level-triggered uv_poll watchers on the two sockets. See splice.h for why
 * polling the same fds as the connection's uv_tcp_t handles is safe. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "splice.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

/* Splice calls per direction per wakeup: bounds the time one busy connection
 * keeps the loop from the others. Level-triggered polling brings us back. */
#define PUMP_BUDGET 16
/* A read this large means a bulk flow: more is likely waiting, read again. */
#define BULK_READ (64 * 1024)

struct dir {
    int from, to;
    int pipe_r, pipe_w;
    size_t in_pipe; /* bytes sitting in the pipe */
    size_t chunk;   /* the pipe's capacity: the most one splice-in moves */
    bool eof;       /* from sent FIN */
    bool shut;      /* FIN passed on to `to` */
    bool blocked;   /* `to` is full with bytes still in the pipe */
    bool grown;     /* grow_pipe() was tried */
};

struct splice_conn {
    uv_poll_t poll[2]; /* poll[i] watches fd[i] */
    int fd[2];
    int events[2];   /* what poll[i] currently watches */
    struct dir d[2]; /* d[0]: fd[0] -> fd[1], d[1]: fd[1] -> fd[0] */
    splice_cbs cbs;
    void *arg;
    int open_polls;
    bool finished;
    bool closing;
    void (*closed)(void *arg);
};

bool splice_available(void)
{
    return true;
}

static int make_pipe(struct dir *d)
{
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
        return -errno;
    /* Start with the default pipe (64 KiB): most connections are short and
     * small, and a 1 MiB pipe costs its pages up front. grow_pipe() enlarges
     * it once the direction turns out to carry bulk data. */
    int sz = fcntl(p[1], F_GETPIPE_SZ);
    d->chunk = sz > 0 ? (size_t)sz : 65536;
    d->pipe_r = p[0];
    d->pipe_w = p[1];
    return 0;
}

/* A bigger pipe moves more per syscall; when the per-user pipe quota or
 * pipe-max-size refuses, the pipe we have still works. */
static void grow_pipe(struct dir *d)
{
    d->grown = true;
    if (d->chunk >= SPLICE_PIPE_SIZE)
        return;
    (void)fcntl(d->pipe_w, F_SETPIPE_SZ, SPLICE_PIPE_SIZE);
    int sz = fcntl(d->pipe_w, F_GETPIPE_SZ);
    if (sz > 0)
        d->chunk = (size_t)sz;
}

static void close_pipes(splice_conn *s)
{
    for (int i = 0; i < 2; i++) {
        if (s->d[i].pipe_r >= 0)
            close(s->d[i].pipe_r);
        if (s->d[i].pipe_w >= 0)
            close(s->d[i].pipe_w);
        s->d[i].pipe_r = s->d[i].pipe_w = -1;
    }
}

static void on_poll_closed(uv_handle_t *h)
{
    splice_conn *s = h->data;
    if (--s->open_polls > 0)
        return;
    void (*cb)(void *) = s->closed;
    void *arg = s->arg;
    free(s);
    if (cb)
        cb(arg);
}

/* Moves what it can in one direction. Returns 0 or a negative errno. */
static int pump(splice_conn *s, int i)
{
    struct dir *d = &s->d[i];
    /* After a short read the socket is (almost surely) empty: reading again
     * would cost a splice that only says EAGAIN. Level-triggered polling
     * wakes us if more arrived meanwhile. */
    bool more = true;
    for (int n = 0; n < PUMP_BUDGET; n++) {
        if (d->in_pipe > 0) {
            ssize_t w =
                splice(d->pipe_r, NULL, d->to, NULL, d->in_pipe, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
            if (w > 0) {
                d->in_pipe -= (size_t)w;
                s->cbs.bytes(s->arg, i, (size_t)w);
                continue;
            }
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && errno == EAGAIN) {
                d->blocked = true;
                return 0;
            }
            return w < 0 ? -errno : -EIO;
        }
        d->blocked = false;
        if (d->eof || !more)
            break;
        ssize_t r =
            splice(d->from, NULL, d->pipe_w, NULL, d->chunk, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
        if (r > 0) {
            d->in_pipe += (size_t)r;
            more = (size_t)r >= BULK_READ;
            if ((size_t)r == d->chunk && !d->grown)
                grow_pipe(d);
            continue;
        }
        if (r == 0) {
            d->eof = true;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            break;
        return -errno;
    }
    /* Out of budget with bytes still in the pipe: wait for `to` to be
     * writable (it is, so level-triggered polling wakes us next round). */
    if (d->in_pipe > 0)
        d->blocked = true;
    if (d->eof && d->in_pipe == 0 && !d->shut) {
        d->shut = true;
        /* ENOTCONN means the peer is already gone; the other direction
         * will report that itself. */
        if (shutdown(d->to, SHUT_WR) < 0 && errno != ENOTCONN)
            return -errno;
    }
    return 0;
}

static void on_poll(uv_poll_t *h, int status, int events);

static void update(splice_conn *s)
{
    for (int i = 0; i < 2; i++) {
        int ev = 0;
        /* Read only with an empty pipe: "pipe full" and "socket empty" both
         * give EAGAIN, so never reading into a non-empty pipe keeps a
         * level-triggered readable socket from spinning. */
        if (!s->d[i].eof && !s->d[i].blocked)
            ev |= UV_READABLE;
        if (s->d[1 - i].blocked)
            ev |= UV_WRITABLE;
        if (ev == s->events[i])
            continue;
        s->events[i] = ev;
        if (ev)
            uv_poll_start(&s->poll[i], ev, on_poll);
        else
            uv_poll_stop(&s->poll[i]);
    }
}

static void finish(splice_conn *s, int status)
{
    if (s->finished)
        return;
    s->finished = true;
    for (int i = 0; i < 2; i++) {
        if (s->events[i])
            uv_poll_stop(&s->poll[i]);
        s->events[i] = 0;
    }
    s->cbs.finished(s->arg, status);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    splice_conn *s = h->data;
    if (s->finished || s->closing)
        return;
    if (status < 0) {
        /* libuv reports EPOLLERR as UV_EBADF and has stopped the handle;
         * the socket's pending error says what really happened. */
        int idx = h == &s->poll[0] ? 0 : 1;
        s->events[idx] = 0;
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(s->fd[idx], SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0)
            err = ECONNRESET;
        finish(s, -err);
        return;
    }
    /* Only the directions this event concerns: poll[i] readable feeds
     * direction i (fd[i] -> other), writable drains direction 1-i into fd[i].
     * Pumping both on every event cost a splice per idle direction. */
    int idx = h == &s->poll[0] ? 0 : 1;
    int r = 0;
    if (events & UV_WRITABLE)
        r = pump(s, 1 - idx);
    if (r == 0 && (events & UV_READABLE))
        r = pump(s, idx);
    if (r == 0 && !(events & (UV_READABLE | UV_WRITABLE))) {
        r = pump(s, 0);
        if (r == 0)
            r = pump(s, 1);
    }
    if (r < 0) {
        finish(s, r);
        return;
    }
    if (s->d[0].shut && s->d[1].shut) {
        finish(s, 0);
        return;
    }
    update(s);
}

int splice_start(uv_loop_t *loop, int fd_a, int fd_b, const splice_cbs *cbs, void *arg,
                 splice_conn **out)
{
    splice_conn *s = xcalloc(1, sizeof(*s));
    s->fd[0] = fd_a;
    s->fd[1] = fd_b;
    s->cbs = *cbs;
    s->arg = arg;
    for (int i = 0; i < 2; i++) {
        s->d[i].from = s->fd[i];
        s->d[i].to = s->fd[1 - i];
        s->d[i].pipe_r = s->d[i].pipe_w = -1;
    }
    int err = make_pipe(&s->d[0]);
    if (err == 0)
        err = make_pipe(&s->d[1]);
    if (err == 0)
        err = uv_poll_init_socket(loop, &s->poll[0], fd_a);
    if (err) {
        close_pipes(s);
        free(s);
        return err;
    }
    s->poll[0].data = s;
    s->open_polls = 1;
    err = uv_poll_init_socket(loop, &s->poll[1], fd_b);
    if (err) {
        /* poll[0] exists and can only go away asynchronously; it frees s. */
        close_pipes(s);
        s->closing = true;
        uv_close((uv_handle_t *)&s->poll[0], on_poll_closed);
        return err;
    }
    s->poll[1].data = s;
    s->open_polls = 2;
    /* Bytes may already wait in either socket: level-triggered readiness
     * reports them on the first loop iteration. */
    update(s);
    *out = s;
    return 0;
}

void splice_close(splice_conn *s, void (*closed)(void *arg))
{
    if (s->closing)
        return;
    s->closing = true;
    s->finished = true;
    s->closed = closed;
    /* uv_close stops the watchers synchronously, before the caller closes
     * the sockets (which removes them from epoll). */
    uv_close((uv_handle_t *)&s->poll[0], on_poll_closed);
    uv_close((uv_handle_t *)&s->poll[1], on_poll_closed);
    close_pipes(s);
}
