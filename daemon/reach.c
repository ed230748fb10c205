/* The reachability prober: see reach.h.
 *
 * One entry per network (at most REACH_MAX_NETWORKS, oldest first), each
 * with its state, its probe target, at most one probe in flight and at most
 * one planned re-probe (`due_ms`). One timer of the prober's own fires at
 * the earliest planned re-probe.
 *
 * A probe owns a uv_tcp_t and a uv_timer_t. However it ends (connected,
 * refused, an error, its deadline, a synchronous error of uv_tcp_connect,
 * cancelled), it ends the same way: its result is recorded, both handles
 * are closed, and the result is delivered from the last close callback. So
 * changed() never runs inside a reach_* call, and a probe whose result was
 * delivered holds no handle any more. A cancelled probe (reach_forget, an
 * eviction, reach_close) is detached from its network first and its result
 * is dropped.
 *
 * The registry's REG_REACH_* (registry.h, owned by the registry) must keep
 * these values; once both are in one tree this file includes registry.h
 * and checks:
 *     _Static_assert(REG_REACH_UNKNOWN == REACH_UNKNOWN, "REG_REACH_UNKNOWN");
 *     _Static_assert(REG_REACH_OK == REACH_OK, "REG_REACH_OK");
 *     _Static_assert(REG_REACH_UNREACHABLE == REACH_UNREACHABLE, "REG_REACH_UNREACHABLE");
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "reach.h"
#include "util.h"

#define MOD "reach"

_Static_assert(REACH_UNKNOWN == 0 && REACH_OK == 1 && REACH_UNREACHABLE == 2,
               "the registry's REG_REACH_* use these values");

typedef struct probe probe;

typedef struct reach_net {
    char name[REACH_NAME_MAX];
    int state;
    char ip[16]; /* the probe target, a dotted quad */
    uint16_t port;
    probe *op;                /* the probe in flight, or NULL */
    uint64_t due_ms;          /* a planned re-probe (loop time), or 0 */
    bool due_failure;         /* that re-probe is a reach_failure's */
    bool failed_once;         /* last_failure_ms is set */
    uint64_t last_failure_ms; /* when reach_failure last re-probed */
    unsigned recheck_ms;      /* the next re-check interval while unreachable */
    bool other_logged;        /* an unexpected error was logged for it */
    bool confirming;          /* a reachable network failed once: checking again */
} reach_net;

struct probe {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_connect_t req;
    reach_prober *p;
    reach_net *net; /* NULL: cancelled, the result is dropped */
    int err;        /* the result: 0 or a libuv error */
    bool finished;  /* err is set and the handles are closing */
    bool local;     /* it could not start for want of local resources */
    bool tcp_open;  /* uv_tcp_init succeeded */
    int open;       /* handles not yet closed */
    char target[32];
};

struct reach_prober {
    uv_timer_t timer; /* the planned re-probes */
    uv_loop_t *loop;
    unsigned timeout_ms, reprobe_min_ms, recheck_min_ms, recheck_max_ms;
    void (*changed)(void *ud, const char *network, int state);
    void *ud;
    reach_net *nets[REACH_MAX_NETWORKS]; /* oldest first */
    size_t n;
    size_t pending;
    bool closed;
    log_limit bad_input, local_errors;
};

int reach_classify(int uv_err)
{
    /* Nothing listening (refused) still means the address answered. A
     * timeout, EHOSTUNREACH, ENETUNREACH, EACCES or EPERM (a firewall) is
     * unreachable, and so is anything else. */
    return uv_err == 0 || uv_err == UV_ECONNREFUSED ? REACH_OK : REACH_UNREACHABLE;
}

/* The errors reach_classify names; anything else is logged once. */
static bool expected_error(int err)
{
    return err == 0 || err == UV_ECONNREFUSED || err == UV_ETIMEDOUT || err == UV_EHOSTUNREACH ||
           err == UV_ENETUNREACH || err == UV_EACCES || err == UV_EPERM;
}

/* Errors of this machine, not of the network: no verdict, try later. */
static bool local_error(int err)
{
    return err == UV_EMFILE || err == UV_ENFILE || err == UV_ENOBUFS || err == UV_ENOMEM ||
           err == UV_EADDRNOTAVAIL;
}

static const char *shown(const char *name, char *tmp, size_t cap)
{
    return printable(name, strlen(name), tmp, cap);
}

static bool valid_name(reach_prober *p, const char *network)
{
    if (network == NULL)
        return false;
    size_t len = strnlen(network, REACH_NAME_MAX);
    if (len > 0 && len < REACH_NAME_MAX)
        return true;
    char tmp[PRINTABLE_BUF];
    log_limited(&p->bad_input, LOG_WARN, MOD, 0,
                "not probing network \"%s\": its name is empty or longer than %d bytes",
                printable(network, len, tmp, sizeof(tmp)), REACH_NAME_MAX - 1);
    return false;
}

static bool valid_target(reach_prober *p, const char *network, const char *ip, uint16_t port)
{
    struct sockaddr_in sa;
    if (ip != NULL && port != 0 && strlen(ip) < 16 && uv_ip4_addr(ip, port, &sa) == 0)
        return true;
    char tmp[PRINTABLE_BUF], tmp2[PRINTABLE_BUF];
    log_limited(&p->bad_input, LOG_WARN, MOD, 0,
                "not probing network \"%s\": \"%s\" port %u is not an IPv4 address and port",
                shown(network, tmp, sizeof(tmp)),
                ip == NULL ? "(null)" : printable(ip, strlen(ip), tmp2, sizeof(tmp2)),
                (unsigned)port);
    return false;
}

static reach_net *find(const reach_prober *p, const char *network)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->nets[i]->name, network) == 0)
            return p->nets[i];
    return NULL;
}

/* ---- probes ---- */

static void deliver(probe *op);

static void probe_closed(uv_handle_t *h)
{
    probe *op = h->data;
    if (--op->open > 0)
        return;
    if (op->net != NULL)
        deliver(op); /* frees op */
    else
        free(op);
}

/* Records the result once and closes both handles; the last close callback
 * delivers it. Closing the TCP handle cancels a pending connect, whose
 * callback then runs with UV_ECANCELED and finds the probe finished. */
static void finish(probe *op, int err)
{
    if (op->finished)
        return;
    op->finished = true;
    op->err = err;
    if (op->tcp_open)
        uv_close((uv_handle_t *)&op->tcp, probe_closed);
    uv_close((uv_handle_t *)&op->timer, probe_closed);
}

static void on_connect(uv_connect_t *req, int status)
{
    finish(req->data, status);
}

static void on_deadline(uv_timer_t *t)
{
    finish(t->data, UV_ETIMEDOUT);
}

/* Detaches net's probe in flight (its result will be dropped) and closes it. */
static void cancel(reach_prober *p, reach_net *net)
{
    probe *op = net->op;
    if (op == NULL)
        return;
    net->op = NULL;
    op->net = NULL;
    p->pending--;
    finish(op, UV_ECANCELED);
}

static void start(reach_prober *p, reach_net *net)
{
    probe *op = xcalloc(1, sizeof(*op));
    op->p = p;
    op->net = net;
    net->op = op;
    net->due_ms = 0;
    net->due_failure = false;
    p->pending++;
    snprintf(op->target, sizeof(op->target), "%s:%u", net->ip, (unsigned)net->port);

    uv_timer_init(p->loop, &op->timer);
    op->timer.data = op;
    op->open = 1;
    int err = uv_tcp_init(p->loop, &op->tcp);
    if (err == 0) {
        op->tcp_open = true;
        op->tcp.data = op;
        op->open++;
        struct sockaddr_in sa;
        err = uv_ip4_addr(net->ip, net->port, &sa);
        op->req.data = op;
        if (err == 0)
            err = uv_tcp_connect(&op->req, &op->tcp, (const struct sockaddr *)&sa, on_connect);
    }
    if (err != 0) {
        /* Linux reports ENETUNREACH, EPERM (netfilter) and the like at
         * once: they are results like any other, delivered later. */
        op->local = local_error(err);
        finish(op, err);
        return;
    }
    uv_timer_start(&op->timer, on_deadline, p->timeout_ms, 0);
}

/* ---- planned re-probes ---- */

static void on_due(uv_timer_t *t);

static void rearm(reach_prober *p)
{
    if (p->closed)
        return;
    uint64_t next = 0;
    for (size_t i = 0; i < p->n; i++) {
        uint64_t d = p->nets[i]->due_ms;
        if (d != 0 && (next == 0 || d < next))
            next = d;
    }
    if (next == 0) {
        uv_timer_stop(&p->timer);
        return;
    }
    uint64_t now = uv_now(p->loop);
    uv_timer_start(&p->timer, on_due, next > now ? next - now : 0, 0);
}

static void plan(reach_prober *p, reach_net *net, uint64_t at, bool failure)
{
    if (at == 0)
        at = 1; /* 0 means none */
    if (net->due_ms == 0 || at < net->due_ms) {
        net->due_ms = at;
        net->due_failure = failure;
    } else if (at == net->due_ms) {
        net->due_failure = net->due_failure || failure;
    }
    rearm(p);
}

static void on_due(uv_timer_t *t)
{
    reach_prober *p = container_of(t, reach_prober, timer);
    uint64_t now = uv_now(p->loop);
    for (size_t i = 0; i < p->n; i++) {
        reach_net *net = p->nets[i];
        if (net->due_ms == 0 || net->due_ms > now)
            continue;
        if (net->op != NULL) {
            net->due_ms = 0; /* the probe in flight answers for it */
            continue;
        }
        if (net->due_failure) {
            net->failed_once = true;
            net->last_failure_ms = now;
        }
        start(p, net);
    }
    rearm(p);
}

/* ---- results ---- */

static void deliver(probe *op)
{
    reach_prober *p = op->p;
    reach_net *net = op->net;
    int err = op->err;
    char tmp[PRINTABLE_BUF];
    net->op = NULL;
    p->pending--;
    uint64_t now = uv_now(p->loop);

    if (op->local) {
        log_limited(&p->local_errors, LOG_WARN, MOD, err,
                    "could not probe network \"%s\" at %s; trying again in %u ms",
                    shown(net->name, tmp, sizeof(tmp)), op->target, p->reprobe_min_ms);
        free(op);
        plan(p, net, now + p->reprobe_min_ms, false);
        return;
    }

    int state = reach_classify(err);
    if (!expected_error(err) && !net->other_logged) {
        net->other_logged = true;
        log_warn_err(MOD, err, "probing network \"%s\" at %s failed; taking it as unreachable",
                     shown(net->name, tmp, sizeof(tmp)), op->target);
    }
    int old = net->state;
    /* One failed probe of a reachable network (a server whose accept queue
     * is full drops SYNs; a moment of load) is checked once more, soon,
     * before the network is called unreachable and its direct ports change. */
    if (old == REACH_OK && state == REACH_UNREACHABLE && !net->confirming) {
        net->confirming = true;
        free(op);
        plan(p, net, now + REACH_CONFIRM_MS, false);
        return;
    }
    net->confirming = false;
    net->state = state;
    if (state == REACH_UNREACHABLE) {
        plan(p, net, now + net->recheck_ms, false);
        net->recheck_ms =
            net->recheck_ms > p->recheck_max_ms / 2 ? p->recheck_max_ms : 2 * net->recheck_ms;
    } else {
        net->recheck_ms = p->recheck_min_ms;
    }

    if (old == state) {
        free(op);
        return;
    }
    if (state == REACH_OK)
        log_info(MOD, "network \"%s\" is reachable from the daemon (probed %s%s)",
                 shown(net->name, tmp, sizeof(tmp)), op->target,
                 err == UV_ECONNREFUSED ? ", refused" : "");
    else
        log_info_err(MOD, err, "network \"%s\" is not reachable from the daemon (probed %s)",
                     shown(net->name, tmp, sizeof(tmp)), op->target);
    free(op);
    /* changed() may forget this network or close the prober: nothing of
     * either is touched after it. */
    char name[REACH_NAME_MAX];
    strlcpy_(name, net->name, sizeof(name));
    p->changed(p->ud, name, state);
}

/* ---- the interface ---- */

int reach_new(uv_loop_t *loop, unsigned timeout_ms,
              void (*changed)(void *ud, const char *network, int state), void *ud,
              reach_prober **out)
{
    if (loop == NULL || changed == NULL || out == NULL)
        return -EINVAL;
    reach_prober *p = xcalloc(1, sizeof(*p));
    p->loop = loop;
    p->timeout_ms = timeout_ms ? timeout_ms : REACH_DEFAULT_TIMEOUT_MS;
    p->reprobe_min_ms = REACH_REPROBE_MIN_MS;
    p->recheck_min_ms = REACH_RECHECK_MIN_MS;
    p->recheck_max_ms = REACH_RECHECK_MAX_MS;
    p->changed = changed;
    p->ud = ud;
    uv_timer_init(loop, &p->timer);
    *out = p;
    return 0;
}

void reach_set_intervals(reach_prober *p, unsigned reprobe_min_ms, unsigned recheck_min_ms,
                         unsigned recheck_max_ms)
{
    if (p == NULL)
        return;
    if (reprobe_min_ms)
        p->reprobe_min_ms = reprobe_min_ms;
    if (recheck_min_ms)
        p->recheck_min_ms = recheck_min_ms;
    if (recheck_max_ms)
        p->recheck_max_ms = recheck_max_ms;
    if (p->recheck_max_ms < p->recheck_min_ms)
        p->recheck_max_ms = p->recheck_min_ms;
    for (size_t i = 0; i < p->n; i++)
        p->nets[i]->recheck_ms = p->recheck_min_ms;
}

static void drop(reach_prober *p, size_t i)
{
    cancel(p, p->nets[i]);
    free(p->nets[i]);
    memmove(&p->nets[i], &p->nets[i + 1], (p->n - i - 1) * sizeof(p->nets[0]));
    p->n--;
}

static reach_net *add(reach_prober *p, const char *network)
{
    if (p->n == REACH_MAX_NETWORKS) {
        char tmp[PRINTABLE_BUF];
        log_debug(MOD, "forgetting network \"%s\": more than %d networks",
                  shown(p->nets[0]->name, tmp, sizeof(tmp)), REACH_MAX_NETWORKS);
        drop(p, 0);
        rearm(p);
    }
    reach_net *net = xcalloc(1, sizeof(*net));
    strlcpy_(net->name, network, sizeof(net->name));
    net->recheck_ms = p->recheck_min_ms;
    p->nets[p->n++] = net;
    return net;
}

static void set_target(reach_net *net, const char *ip, uint16_t port)
{
    strlcpy_(net->ip, ip, sizeof(net->ip));
    net->port = port;
}

void reach_probe(reach_prober *p, const char *network, const char *ip, uint16_t port)
{
    if (p == NULL || p->closed || !valid_name(p, network) || !valid_target(p, network, ip, port))
        return;
    reach_net *net = find(p, network);
    if (net == NULL)
        net = add(p, network);
    set_target(net, ip, port);
    if (net->op != NULL || net->state != REACH_UNKNOWN)
        return;
    start(p, net);
    rearm(p); /* a retry planned for it is spent */
}

int reach_state(const reach_prober *p, const char *network)
{
    if (p == NULL || network == NULL)
        return REACH_UNKNOWN;
    const reach_net *net = find(p, network);
    return net == NULL ? REACH_UNKNOWN : net->state;
}

void reach_forget(reach_prober *p, const char *network)
{
    if (p == NULL || p->closed || network == NULL)
        return;
    reach_net *net = find(p, network);
    if (net == NULL)
        return;
    cancel(p, net);
    net->state = REACH_UNKNOWN;
    net->due_ms = 0;
    net->due_failure = false;
    net->recheck_ms = p->recheck_min_ms;
    rearm(p);
}

static void failure(reach_prober *p, reach_net *net)
{
    if (net->op != NULL)
        return; /* a result is on its way */
    uint64_t now = uv_now(p->loop);
    if (net->failed_once && now - net->last_failure_ms < p->reprobe_min_ms) {
        plan(p, net, net->last_failure_ms + p->reprobe_min_ms, true);
        return;
    }
    net->failed_once = true;
    net->last_failure_ms = now;
    start(p, net);
    rearm(p);
}

void reach_failure(reach_prober *p, const char *network)
{
    if (p == NULL || p->closed || network == NULL)
        return;
    reach_net *net = find(p, network);
    if (net != NULL)
        failure(p, net);
}

void reach_failure_at(reach_prober *p, const char *network, const char *ip, uint16_t port)
{
    if (p == NULL || p->closed || !valid_name(p, network) || !valid_target(p, network, ip, port))
        return;
    reach_net *net = find(p, network);
    if (net == NULL)
        net = add(p, network);
    set_target(net, ip, port);
    failure(p, net);
}

size_t reach_pending(const reach_prober *p)
{
    return p == NULL ? 0 : p->pending;
}

static void prober_closed(uv_handle_t *h)
{
    free(container_of((uv_timer_t *)h, reach_prober, timer));
}

void reach_close(reach_prober *p)
{
    if (p == NULL || p->closed)
        return;
    p->closed = true;
    while (p->n > 0)
        drop(p, p->n - 1);
    uv_close((uv_handle_t *)&p->timer, prober_closed);
}
