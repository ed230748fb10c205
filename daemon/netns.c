/* The netns maker's portable part: the request queue, the short-lived
 * worker thread that drains it, and the delivery of results on the loop
 * thread. What a request does is the platform's (netns_make in
 * netns_linux.c / netns_darwin.c).
 *
 * The maker (loop side) and its worker share one `shared` block, which
 * counts its references: the maker holds one until netns_maker_close, a
 * running worker holds one. The worker touches the uv_async_t only under the
 * lock and only while the maker is open; netns_maker_close marks it closed
 * under the same lock before uv_close(), so a worker that finishes late
 * never signals a closed handle and drops its result instead. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netns.h"
#include "netns_int.h"
#include "util.h"

typedef struct node {
    struct node *next;
    netns_result r;
} node;

typedef struct list {
    node *head, *tail;
} list;

typedef struct shared {
    pthread_mutex_t mu;
    int refs;
    bool closed;         /* the maker is gone: drop results, touch no handle */
    bool worker_running; /* one worker at a time keeps results in order */
    list pending;        /* requests not yet taken by the worker */
    list ready;          /* results waiting for the loop thread */
    uv_async_t *async;   /* the maker's; valid while !closed */
} shared;

struct netns_maker {
    uv_async_t async; /* first: the close callback frees the maker through it */
    shared *sh;
    void (*done)(void *ud, netns_result *r);
    void *ud;
    bool closing;
};

/* Every worker of every maker, for netns_wait_idle_for_tests. */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_cv = PTHREAD_COND_INITIALIZER;
static int live_workers;

static bool (*cgroup_hook)(pid_t, const char *);

static void push(list *l, node *n)
{
    n->next = NULL;
    if (l->tail != NULL)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

static node *pop(list *l)
{
    node *n = l->head;
    if (n != NULL) {
        l->head = n->next;
        if (l->head == NULL)
            l->tail = NULL;
    }
    return n;
}

static void discard(node *n)
{
    if (n->r.fd4 >= 0)
        close(n->r.fd4);
    if (n->r.fd6 >= 0)
        close(n->r.fd6);
    free(n);
}

static void discard_all(list *l)
{
    node *n;
    while ((n = pop(l)) != NULL)
        discard(n);
}

/* Drops one reference; the caller holds sh->mu, which this releases. */
static void unref_unlock(shared *sh)
{
    bool last = --sh->refs == 0;
    pthread_mutex_unlock(&sh->mu);
    if (last) {
        discard_all(&sh->pending);
        discard_all(&sh->ready);
        pthread_mutex_destroy(&sh->mu);
        free(sh);
    }
}

static void *worker(void *arg)
{
    shared *sh = arg;
    pthread_mutex_lock(&sh->mu);
    for (;;) {
        node *n = pop(&sh->pending);
        if (n == NULL)
            break;
        pthread_mutex_unlock(&sh->mu);
        netns_make(&n->r);
        pthread_mutex_lock(&sh->mu);
        if (sh->closed) {
            discard(n);
        } else {
            push(&sh->ready, n);
            uv_async_send(sh->async);
        }
    }
    sh->worker_running = false;
    unref_unlock(sh);
    /* The thread ends here, and with it the namespace it may have entered. */
    pthread_mutex_lock(&live_mu);
    if (--live_workers == 0)
        pthread_cond_broadcast(&live_cv);
    pthread_mutex_unlock(&live_mu);
    return NULL;
}

/* Starts a detached worker with every signal blocked (the loop thread takes
 * them: libuv's signal handling expects it, and the worker's syscalls then
 * never see EINTR). */
static int start_worker(shared *sh)
{
    pthread_attr_t attr;
    int e = pthread_attr_init(&attr);
    if (e != 0)
        return -e;
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_mutex_lock(&live_mu);
    live_workers++;
    pthread_mutex_unlock(&live_mu);
    pthread_t t;
    e = pthread_create(&t, &attr, worker, sh);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (e != 0) {
        pthread_mutex_lock(&live_mu);
        if (--live_workers == 0)
            pthread_cond_broadcast(&live_cv);
        pthread_mutex_unlock(&live_mu);
        return -e;
    }
    return 0;
}

static void on_async(uv_async_t *a)
{
    netns_maker *m = container_of(a, netns_maker, async);
    shared *sh = m->sh;
    pthread_mutex_lock(&sh->mu);
    list got = sh->ready;
    sh->ready = (list){NULL, NULL};
    pthread_mutex_unlock(&sh->mu);
    node *n;
    while ((n = pop(&got)) != NULL) {
        /* done may close the maker: what is left is then dropped. */
        if (m->closing) {
            discard(n);
            continue;
        }
        m->done(m->ud, &n->r);
        free(n);
    }
}

int netns_maker_new(uv_loop_t *loop, void (*done)(void *ud, netns_result *r), void *ud,
                    netns_maker **out)
{
    *out = NULL;
    if (loop == NULL || done == NULL)
        return -EINVAL;
    netns_maker *m = calloc(1, sizeof(*m));
    shared *sh = calloc(1, sizeof(*sh));
    if (m == NULL || sh == NULL) {
        free(m);
        free(sh);
        return -ENOMEM;
    }
    int rc = uv_async_init(loop, &m->async, on_async);
    if (rc < 0) {
        free(m);
        free(sh);
        return rc;
    }
    pthread_mutex_init(&sh->mu, NULL);
    sh->refs = 1;
    sh->async = &m->async;
    m->sh = sh;
    m->done = done;
    m->ud = ud;
    *out = m;
    return 0;
}

int netns_open(netns_maker *m, const netns_request *req)
{
    if (m == NULL || req == NULL || m->closing)
        return -EINVAL;
    node *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return -ENOMEM;
    n->r.req = *req;
    n->r.req.id[sizeof(n->r.req.id) - 1] = '\0';
    n->r.fd4 = n->r.fd6 = -1;
    shared *sh = m->sh;
    pthread_mutex_lock(&sh->mu);
    push(&sh->pending, n);
    bool start = !sh->worker_running;
    if (start) {
        sh->worker_running = true;
        sh->refs++;
    }
    pthread_mutex_unlock(&sh->mu);
    if (!start)
        return 0;
    int rc = start_worker(sh);
    if (rc < 0) {
        /* No worker ran, so the queue holds this request alone: a worker
         * leaves only when the queue is empty, under the lock. */
        pthread_mutex_lock(&sh->mu);
        node *p = pop(&sh->pending);
        sh->worker_running = false;
        sh->refs--;
        pthread_mutex_unlock(&sh->mu);
        free(p);
    }
    return rc;
}

static void on_close(uv_handle_t *h)
{
    free(container_of((uv_async_t *)h, netns_maker, async));
}

void netns_maker_close(netns_maker *m)
{
    if (m == NULL || m->closing)
        return;
    m->closing = true;
    shared *sh = m->sh;
    pthread_mutex_lock(&sh->mu);
    sh->closed = true;
    sh->async = NULL;
    list ready = sh->ready, pending = sh->pending;
    sh->ready = sh->pending = (list){NULL, NULL};
    unref_unlock(sh);
    discard_all(&ready);
    discard_all(&pending);
    m->sh = NULL;
    uv_close((uv_handle_t *)&m->async, on_close);
}

void netns_set_cgroup_check_for_tests(bool (*fn)(pid_t pid, const char *id))
{
    cgroup_hook = fn;
}

bool (*netns_cgroup_hook(void))(pid_t pid, const char *id)
{
    return cgroup_hook;
}

void netns_wait_idle_for_tests(void)
{
    pthread_mutex_lock(&live_mu);
    while (live_workers > 0)
        pthread_cond_wait(&live_cv, &live_mu);
    pthread_mutex_unlock(&live_mu);
}
