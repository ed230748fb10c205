/* The address allocator: a pool of IPv4 loopback addresses and the leases
 * that tie a lease key (see names.h) to one address. Pure: the caller passes
 * the time; persistence is state.c's job. Addresses are in host byte order. */
#ifndef LOOPHOLE_ALLOC_H
#define LOOPHOLE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct alloc_lease {
    char *key;
    uint32_t addr;
    bool active;        /* held by a running container (a pinned lease always is) */
    int64_t stopped_at; /* Unix ms the lease went inactive; 0 while active */
    /* A named lease for another tool (loophole lease add): always active,
     * never reclaimed, never moved, and it keeps its address even when a
     * container publishes on it (they share it). */
    bool pinned;
} alloc_lease;

typedef struct alloc_pool {
    uint32_t first, last; /* inclusive */
    alloc_lease *leases;
    size_t nleases, cap;
    uint32_t *reserved; /* never handed out */
    size_t nreserved;
    uint32_t *blocked; /* temporarily unusable (an address another program holds) */
    size_t nblocked;
    /* In use without a lease: addresses running containers publish on
     * themselves (-p 127.0.0.16:5432:5432), inside the pool or not. Never
     * handed out; a container lease found on one moves at its next acquire. */
    uint32_t *taken;
    size_t ntaken;
} alloc_pool;

/* Parses "127.0.0.2-127.0.0.254". Both ends must be in 127.0.0.0/8 and
 * first <= last. Returns 0 or -EINVAL. */
int alloc_parse_range(const char *s, uint32_t *first, uint32_t *last);

/* Sets up an empty pool; 127.0.0.1 is always reserved. */
void alloc_init(alloc_pool *p, uint32_t first, uint32_t last);
void alloc_free(alloc_pool *p);
void alloc_reserve(alloc_pool *p, uint32_t addr);
/* Marks addr unusable for new leases (and for alloc_move) until unblocked. */
void alloc_block(alloc_pool *p, uint32_t addr);
/* Makes a blocked address usable again; no-op when it is not blocked. */
void alloc_unblock(alloc_pool *p, uint32_t addr);

/* Restores a lease read from the state file as inactive. Leases outside the
 * pool, on reserved addresses, or clashing with an existing key or address
 * are dropped (returns -EINVAL); 0 otherwise. */
int alloc_restore(alloc_pool *p, const char *key, uint32_t addr, int64_t stopped_at);

/* Gives key an address and marks its lease active. An existing lease for key
 * keeps its address (even a blocked one; one reserved since is replaced). A
 * new key gets the lowest free address; when none is free, the inactive lease
 * with the oldest stopped_at is reclaimed (its key forgotten). Returns 0 with
 * *addr set, -ENOSPC when every address is held by an active lease, or -EINVAL
 * for a NULL or empty key. */
int alloc_acquire(alloc_pool *p, const char *key, int64_t now, uint32_t *addr);

/* Marks key's lease inactive (stopped at now); the address stays reserved for
 * that key until reclaimed. No-op for an unknown key. */
void alloc_release(alloc_pool *p, const char *key, int64_t now);

/* Moves key's active lease to the lowest free address other than its current
 * one (which gets blocked), reclaiming an inactive lease when none is free.
 * Returns 0 with *addr (the lease is then active), -ENOSPC (the lease stays
 * where it was, its address blocked), or -ENOENT for an unknown key. */
int alloc_move(alloc_pool *p, const char *key, int64_t now, uint32_t *addr);

/* Pins key to an address (a named lease): want 0 takes the lowest free
 * address (reclaiming the oldest inactive container lease when none is),
 * else exactly want. An existing pinned key keeps its address. Returns 0
 * with *addr; -EEXIST when key is pinned already on another address than
 * want (*addr: the one it has); -EDOM when want is outside the pool or
 * reserved; -EADDRINUSE when want is held by another active or pinned lease
 * or taken; -ENOSPC when no address is free; -EINVAL for a bad key or a key
 * that is a container's (not pinned) lease. An inactive container lease on
 * want is forgotten (the pinned one takes its address). */
int alloc_pin(alloc_pool *p, const char *key, uint32_t want, uint32_t *addr);
/* Restores a pinned lease from the state file (same rules as alloc_restore). */
int alloc_restore_pinned(alloc_pool *p, const char *key, uint32_t addr);
/* Forgets key's lease (pinned or not). Returns 0 or -ENOENT. */
int alloc_forget(alloc_pool *p, const char *key);
/* Replaces the set of taken addresses (see alloc_pool.taken). */
void alloc_set_taken(alloc_pool *p, const uint32_t *addrs, size_t n);
/* Whether addr is taken (alloc_set_taken). */
bool alloc_is_taken(const alloc_pool *p, uint32_t addr);
/* The lease holding addr (active, inactive or pinned), or NULL. */
const alloc_lease *alloc_holder(const alloc_pool *p, uint32_t addr);

const alloc_lease *alloc_find(const alloc_pool *p, const char *key);
size_t alloc_size(const alloc_pool *p); /* addresses in the pool minus reserved */
size_t alloc_used(const alloc_pool *p); /* active leases */
/* Distinct pool addresses in use: active and pinned leases, and taken
 * addresses inside the pool. */
size_t alloc_in_use(const alloc_pool *p);

#endif
