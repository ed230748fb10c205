/* The address allocator. The pool is tiny in practice (about 253 addresses)
 * but may be configured up to a /8, so nothing here is sized by the range:
 * the lowest free address is found by sorting the few addresses in use and
 * walking the gaps, which is O(n log n) in the number of leases. */
#include "alloc.h"

#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LOOPBACK_NET 0x7f000000u
#define LOOPBACK_MASK 0xff000000u
#define LOCALHOST 0x7f000001u

static bool in_loopback(uint32_t a)
{
    return (a & LOOPBACK_MASK) == LOOPBACK_NET;
}

/* Parses one dotted quad of exactly len bytes; inet_pton (behind ip4_parse)
 * already refuses whitespace, leading zeros and short forms like "127.1". */
static int parse_end(const char *s, size_t len, uint32_t *out)
{
    char tmp[16];
    if (len == 0 || len >= sizeof(tmp))
        return -EINVAL;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if (!(tmp[i] == '.' || (tmp[i] >= '0' && tmp[i] <= '9')))
            return -EINVAL;
    if (ip4_parse(tmp, out) != 0)
        return -EINVAL;
    return 0;
}

int alloc_parse_range(const char *s, uint32_t *first, uint32_t *last)
{
    if (s == NULL)
        return -EINVAL;
    const char *dash = strchr(s, '-');
    if (dash == NULL || strchr(dash + 1, '-') != NULL)
        return -EINVAL;
    uint32_t a, b;
    if (parse_end(s, (size_t)(dash - s), &a) != 0 || parse_end(dash + 1, strlen(dash + 1), &b) != 0)
        return -EINVAL;
    if (!in_loopback(a) || !in_loopback(b) || a > b)
        return -EINVAL;
    *first = a;
    *last = b;
    return 0;
}

static bool list_has(const uint32_t *v, size_t n, uint32_t a)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == a)
            return true;
    return false;
}

static void list_add(uint32_t **v, size_t *n, uint32_t a)
{
    if (list_has(*v, *n, a))
        return;
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = a;
}

void alloc_init(alloc_pool *p, uint32_t first, uint32_t last)
{
    memset(p, 0, sizeof(*p));
    p->first = first;
    p->last = last;
    alloc_reserve(p, LOCALHOST);
}

void alloc_free(alloc_pool *p)
{
    for (size_t i = 0; i < p->nleases; i++)
        free(p->leases[i].key);
    free(p->leases);
    free(p->reserved);
    free(p->blocked);
    free(p->taken);
    memset(p, 0, sizeof(*p));
}

void alloc_reserve(alloc_pool *p, uint32_t addr)
{
    list_add(&p->reserved, &p->nreserved, addr);
}

void alloc_block(alloc_pool *p, uint32_t addr)
{
    list_add(&p->blocked, &p->nblocked, addr);
}

void alloc_unblock(alloc_pool *p, uint32_t addr)
{
    for (size_t i = 0; i < p->nblocked; i++) {
        if (p->blocked[i] == addr) {
            p->blocked[i] = p->blocked[--p->nblocked];
            return;
        }
    }
}

static bool in_pool(const alloc_pool *p, uint32_t a)
{
    return a >= p->first && a <= p->last;
}

static bool is_reserved(const alloc_pool *p, uint32_t a)
{
    return list_has(p->reserved, p->nreserved, a);
}

static bool is_blocked(const alloc_pool *p, uint32_t a)
{
    return list_has(p->blocked, p->nblocked, a);
}

bool alloc_is_taken(const alloc_pool *p, uint32_t a)
{
    return list_has(p->taken, p->ntaken, a);
}

/* Could a new lease be placed on a (ignoring whether a lease holds it)? */
static bool usable(const alloc_pool *p, uint32_t a)
{
    return in_pool(p, a) && !is_reserved(p, a) && !is_blocked(p, a) && !alloc_is_taken(p, a);
}

static alloc_lease *find(const alloc_pool *p, const char *key)
{
    for (size_t i = 0; i < p->nleases; i++)
        if (strcmp(p->leases[i].key, key) == 0)
            return &p->leases[i];
    return NULL;
}

static bool addr_leased(const alloc_pool *p, uint32_t a)
{
    for (size_t i = 0; i < p->nleases; i++)
        if (p->leases[i].addr == a)
            return true;
    return false;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Lowest address in the pool that is neither reserved, blocked nor held by
 * any lease (active or not). Returns false when there is none. */
static bool lowest_free(const alloc_pool *p, uint32_t *out)
{
    size_t cap = p->nleases + p->nreserved + p->nblocked + p->ntaken;
    uint32_t *taken = xmalloc((cap ? cap : 1) * sizeof(*taken));
    size_t n = 0;
    for (size_t i = 0; i < p->nleases; i++)
        taken[n++] = p->leases[i].addr;
    for (size_t i = 0; i < p->nreserved; i++)
        taken[n++] = p->reserved[i];
    for (size_t i = 0; i < p->nblocked; i++)
        taken[n++] = p->blocked[i];
    for (size_t i = 0; i < p->ntaken; i++)
        taken[n++] = p->taken[i];
    qsort(taken, n, sizeof(*taken), cmp_u32);

    /* 64-bit so that a pool ending at 127.255.255.255 cannot wrap. */
    uint64_t cand = p->first;
    for (size_t i = 0; i < n && cand <= p->last; i++) {
        if (taken[i] < cand)
            continue; /* below the pool or a duplicate */
        if (taken[i] > cand)
            break; /* a gap: cand is free */
        cand++;
    }
    free(taken);
    if (cand > p->last)
        return false;
    *out = (uint32_t)cand;
    return true;
}

/* The inactive lease stopped longest ago (ties: lowest address) whose address
 * may be handed out again; skip is a lease that must not be taken. */
static alloc_lease *oldest_inactive(const alloc_pool *p, const alloc_lease *skip)
{
    alloc_lease *best = NULL;
    for (size_t i = 0; i < p->nleases; i++) {
        alloc_lease *l = &p->leases[i];
        if (l == skip || l->active || l->pinned || !usable(p, l->addr))
            continue;
        if (best == NULL || l->stopped_at < best->stopped_at ||
            (l->stopped_at == best->stopped_at && l->addr < best->addr))
            best = l;
    }
    return best;
}

static void remove_lease(alloc_pool *p, alloc_lease *l)
{
    size_t i = (size_t)(l - p->leases);
    free(l->key);
    p->leases[i] = p->leases[--p->nleases];
}

/* Finds an address for a new or moving lease: the lowest free one, else the
 * one of the longest-stopped inactive lease, whose key is forgotten. The
 * pointer skip (the moving lease) may change when a lease is removed, so it
 * is passed back through *skipp. */
static int take_address(alloc_pool *p, alloc_lease **skipp, uint32_t *addr)
{
    if (lowest_free(p, addr))
        return 0;
    alloc_lease *victim = oldest_inactive(p, skipp ? *skipp : NULL);
    if (victim == NULL)
        return -ENOSPC;
    *addr = victim->addr;
    /* remove_lease moves the last lease into the victim's slot. */
    alloc_lease *last = &p->leases[p->nleases - 1];
    remove_lease(p, victim);
    if (skipp && *skipp == last)
        *skipp = victim;
    return 0;
}

static alloc_lease *append_lease(alloc_pool *p, const char *key, uint32_t addr)
{
    if (p->nleases == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->leases = xrealloc(p->leases, p->cap * sizeof(*p->leases));
    }
    alloc_lease *l = &p->leases[p->nleases++];
    l->key = xstrdup(key);
    l->addr = addr;
    l->active = false;
    l->stopped_at = 0;
    l->pinned = false;
    return l;
}

int alloc_restore(alloc_pool *p, const char *key, uint32_t addr, int64_t stopped_at)
{
    if (key == NULL || key[0] == '\0' || stopped_at < 0)
        return -EINVAL;
    /* A blocked address is fine: blocks are temporary, the lease is not. */
    if (!in_pool(p, addr) || is_reserved(p, addr))
        return -EINVAL;
    if (find(p, key) != NULL || addr_leased(p, addr))
        return -EINVAL;
    alloc_lease *l = append_lease(p, key, addr);
    l->stopped_at = stopped_at;
    return 0;
}

int alloc_acquire(alloc_pool *p, const char *key, int64_t now, uint32_t *addr)
{
    (void)now;
    if (key == NULL || key[0] == '\0')
        return -EINVAL;
    alloc_lease *l = find(p, key);
    if (l != NULL) {
        /* The key keeps its address, even a blocked one (the caller moves it
         * when it finds the port taken), unless it has since been reserved,
         * left the pool, or a container publishes on it: those are never
         * handed out. A pinned lease keeps its address whatever happens. */
        if (l->pinned ||
            (in_pool(p, l->addr) && !is_reserved(p, l->addr) && !alloc_is_taken(p, l->addr))) {
            l->active = true;
            l->stopped_at = 0;
            *addr = l->addr;
            return 0;
        }
        uint32_t a;
        int rc = take_address(p, &l, &a);
        if (rc != 0)
            return rc;
        l->addr = a;
        l->active = true;
        l->stopped_at = 0;
        *addr = a;
        return 0;
    }
    uint32_t a;
    int rc = take_address(p, NULL, &a);
    if (rc != 0)
        return rc;
    l = append_lease(p, key, a);
    l->active = true;
    *addr = a;
    return 0;
}

void alloc_release(alloc_pool *p, const char *key, int64_t now)
{
    if (key == NULL)
        return;
    alloc_lease *l = find(p, key);
    if (l == NULL || !l->active || l->pinned)
        return;
    l->active = false;
    l->stopped_at = now;
}

int alloc_move(alloc_pool *p, const char *key, int64_t now, uint32_t *addr)
{
    (void)now;
    if (key == NULL)
        return -ENOENT;
    alloc_lease *l = find(p, key);
    if (l == NULL)
        return -ENOENT;
    if (l->pinned)
        return -EINVAL;
    alloc_block(p, l->addr);
    uint32_t a;
    int rc = take_address(p, &l, &a);
    if (rc != 0)
        return rc; /* the lease stays where it was; the caller decides */
    l->addr = a;
    l->active = true;
    l->stopped_at = 0;
    *addr = a;
    return 0;
}

int alloc_restore_pinned(alloc_pool *p, const char *key, uint32_t addr)
{
    int rc = alloc_restore(p, key, addr, 0);
    if (rc < 0)
        return rc;
    alloc_lease *l = find(p, key);
    l->active = true;
    l->pinned = true;
    return 0;
}

int alloc_pin(alloc_pool *p, const char *key, uint32_t want, uint32_t *addr)
{
    if (key == NULL || key[0] == '\0')
        return -EINVAL;
    alloc_lease *l = find(p, key);
    if (l != NULL) {
        if (!l->pinned)
            return -EINVAL;
        *addr = l->addr;
        return want == 0 || want == l->addr ? 0 : -EEXIST;
    }
    uint32_t a;
    if (want == 0) {
        int rc = take_address(p, NULL, &a);
        if (rc != 0)
            return rc;
    } else {
        if (!in_pool(p, want) || is_reserved(p, want))
            return -EDOM;
        if (alloc_is_taken(p, want))
            return -EADDRINUSE;
        for (size_t i = 0; i < p->nleases; i++) {
            alloc_lease *o = &p->leases[i];
            if (o->addr != want)
                continue;
            if (o->active || o->pinned)
                return -EADDRINUSE;
            remove_lease(p, o); /* a stopped container's: it gets another next time */
            break;
        }
        a = want;
    }
    l = append_lease(p, key, a);
    l->active = true;
    l->pinned = true;
    *addr = a;
    return 0;
}

int alloc_forget(alloc_pool *p, const char *key)
{
    alloc_lease *l = key ? find(p, key) : NULL;
    if (l == NULL)
        return -ENOENT;
    remove_lease(p, l);
    return 0;
}

void alloc_set_taken(alloc_pool *p, const uint32_t *addrs, size_t n)
{
    p->ntaken = 0;
    for (size_t i = 0; i < n; i++)
        list_add(&p->taken, &p->ntaken, addrs[i]);
}

const alloc_lease *alloc_holder(const alloc_pool *p, uint32_t addr)
{
    for (size_t i = 0; i < p->nleases; i++)
        if (p->leases[i].addr == addr)
            return &p->leases[i];
    return NULL;
}

const alloc_lease *alloc_find(const alloc_pool *p, const char *key)
{
    if (key == NULL)
        return NULL;
    return find(p, key);
}

size_t alloc_size(const alloc_pool *p)
{
    if (p->last < p->first)
        return 0;
    size_t n = (size_t)(p->last - p->first) + 1;
    for (size_t i = 0; i < p->nreserved; i++)
        if (in_pool(p, p->reserved[i]))
            n--;
    return n;
}

size_t alloc_in_use(const alloc_pool *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nleases; i++)
        if (p->leases[i].active && in_pool(p, p->leases[i].addr))
            n++;
    for (size_t i = 0; i < p->ntaken; i++) {
        uint32_t a = p->taken[i];
        bool leased = false;
        for (size_t j = 0; j < p->nleases && !leased; j++)
            leased = p->leases[j].active && p->leases[j].addr == a;
        if (in_pool(p, a) && !is_reserved(p, a) && !leased)
            n++;
    }
    return n;
}

size_t alloc_used(const alloc_pool *p)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nleases; i++)
        if (p->leases[i].active)
            n++;
    return n;
}
