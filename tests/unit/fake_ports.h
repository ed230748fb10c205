/* A fake port table backend for the policy tests: listeners are records in
 * memory; the test says which addr:port another program holds and which
 * port needs privileges, and reads back what was opened, in order. */
#ifndef LOOPHOLE_FAKE_PORTS_H
#define LOOPHOLE_FAKE_PORTS_H

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ports.h"
#include "util.h"

#define FAKE_MAX 64

typedef struct fake_listener {
    uint32_t addr;
    uint16_t port;
    int proto;
    struct sockaddr_storage target;
    proxy_kafka kafka; /* mode OFF when none */
    proxy_stats stats;
    bool from_fd;         /* made from a want's fd */
    proxy_dialer dialer;  /* next NULL when none */
    unsigned set_dialers; /* set_dialer calls on this listener */
} fake_listener;

typedef struct fake_backend {
    struct {
        uint32_t addr; /* 0: any address */
        uint16_t port;
    } held[FAKE_MAX];
    size_t nheld;
    uint16_t eacces_port;
    fake_listener **open; /* FAKE_MAX unless unlimited */
    bool unlimited;
    size_t nopen;
    unsigned listens, closes, retargets, set_dialers;
    int local_err; /* what local_addr returns when non-zero */
    int last_fd;   /* the fd of the last listen (closed: the backend owns it) */
    /* Every operation in order ("listen 127.0.0.3:80/tcp", "close ...",
     * and whatever the test appends, such as alias changes). */
    char log[4096];
} fake_backend;

static void fake_note(fake_backend *f, const char *verb, uint32_t addr, uint16_t port)
{
    if (f->unlimited)
        return; /* thousands of lines: no log */
    char ip[16], line[80];
    snprintf(line, sizeof(line), "%s %s:%u", verb, ip4_format(addr, ip), port);
    size_t n = strlen(f->log);
    snprintf(f->log + n, sizeof(f->log) - n, "%s;", line);
}

static int fake_listen(void *ud, const port_entry *e, int fd, const proxy_kafka *kafka,
                       void **handle)
{
    fake_backend *f = ud;
    f->listens++;
    f->last_fd = fd;
    if (fd >= 0)
        close(fd);
    int rc = 0;
    /* A socket made elsewhere (another namespace) is bound already. */
    for (size_t i = 0; i < f->nheld && fd < 0; i++)
        if ((f->held[i].addr == 0 || f->held[i].addr == e->addr) && f->held[i].port == e->key.port)
            rc = UV_EADDRINUSE;
    if (f->eacces_port && e->key.port == f->eacces_port)
        rc = UV_EACCES;
    /* Like the kernel: one listener per address, port and protocol. */
    for (size_t i = 0; i < f->nopen && fd < 0; i++)
        if (!f->open[i]->from_fd && f->open[i]->addr == e->addr &&
            f->open[i]->port == e->key.port && f->open[i]->proto == e->key.proto)
            rc = UV_EADDRINUSE;
    if (rc < 0 || (!f->unlimited && f->nopen == FAKE_MAX)) {
        if (kafka && kafka->free_ud)
            kafka->free_ud(kafka->ud);
        fake_note(f, "refused", e->addr, e->key.port);
        return rc < 0 ? rc : UV_ENOMEM;
    }
    fake_listener *l = xcalloc(1, sizeof(*l));
    l->addr = e->addr;
    l->port = e->key.port;
    l->proto = e->key.proto;
    l->target = e->target;
    l->from_fd = fd >= 0;
    if (kafka)
        l->kafka = *kafka;
    f->open = xrealloc(f->open, (f->nopen + 1) * sizeof(*f->open));
    f->open[f->nopen++] = l;
    fake_note(f, "listen", e->addr, e->key.port);
    *handle = l;
    return 0;
}

static void fake_retarget(void *ud, void *handle, const struct sockaddr *target)
{
    fake_backend *f = ud;
    fake_listener *l = handle;
    f->retargets++;
    memcpy(&l->target, target,
           target->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
}

static void fake_close(void *ud, void *handle)
{
    fake_backend *f = ud;
    fake_listener *l = handle;
    f->closes++;
    fake_note(f, "close", l->addr, l->port);
    for (size_t i = 0; i < f->nopen; i++)
        if (f->open[i] == l)
            f->open[i] = f->open[--f->nopen];
    if (l->kafka.free_ud)
        l->kafka.free_ud(l->kafka.ud);
    if (l->dialer.free_ud)
        l->dialer.free_ud(l->dialer.ud);
    free(l);
}

/* proxy_set_dialer's contract: the previous ud is released. */
static void fake_set_dialer(void *ud, void *handle, const proxy_dialer *d)
{
    fake_backend *f = ud;
    fake_listener *l = handle;
    f->set_dialers++;
    l->set_dialers++;
    if (l->dialer.free_ud)
        l->dialer.free_ud(l->dialer.ud);
    memset(&l->dialer, 0, sizeof(l->dialer));
    if (d && d->next)
        l->dialer = *d;
    else if (d && d->free_ud)
        d->free_ud(d->ud);
}

/* The listener's addr:port, or the test's error. */
static int fake_local_addr(void *ud, void *handle, struct sockaddr_storage *out)
{
    fake_backend *f = ud;
    fake_listener *l = handle;
    if (f->local_err)
        return f->local_err;
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *a = (struct sockaddr_in *)out;
    a->sin_family = AF_INET;
    a->sin_port = htons(l->port);
    a->sin_addr.s_addr = htonl(l->addr);
    return 0;
}

static void fake_backend_free(void *ud)
{
    fake_backend *f = ud;
    free(f->open);
    f->open = NULL;
}

static void fake_stats(void *ud, void *handle, proxy_stats *st)
{
    (void)ud;
    *st = ((fake_listener *)handle)->stats;
}

static void fake_backend_init(fake_backend *f, ports_backend *be)
{
    memset(f, 0, sizeof(*f));
    *be =
        (ports_backend){fake_listen, fake_retarget,   fake_close,     fake_stats, fake_backend_free,
                        f,           fake_set_dialer, fake_local_addr};
}

static fake_listener *fake_find(fake_backend *f, uint32_t addr, uint16_t port)
{
    for (size_t i = 0; i < f->nopen; i++)
        if (f->open[i]->addr == addr && f->open[i]->port == port)
            return f->open[i];
    return NULL;
}

#endif
