/* The portable part of the alias interface: mode names and the set of
 * aliases the daemon added. The address operations live in alias_linux.c and
 * alias_darwin.c. */
#include "alias.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

static const char *const mode_names[] = {
    [ALIAS_AUTO] = "auto",
    [ALIAS_OFF] = "off",
    [ALIAS_NETLINK] = "netlink",
};

int alias_parse_mode(const char *s)
{
    if (s == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
        if (strcmp(s, mode_names[i]) == 0)
            return (int)i;
    }
    return -1;
}

const char *alias_mode_name(alias_mode m)
{
    /* The enum may hold any int (e.g. from a corrupt config), so range-check. */
    if ((int)m < 0 || (size_t)m >= sizeof(mode_names) / sizeof(mode_names[0]))
        return "unknown";
    return mode_names[m];
}

void alias_set_init(alias_set *s, alias_mode m)
{
    memset(s, 0, sizeof(*s));
    s->active = alias_active(m);
    s->add = alias_add;
    s->del = alias_del;
    s->present = alias_present;
}

static bool has_addr(const uint32_t *v, size_t n, uint32_t a)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == a)
            return true;
    return false;
}

static void push(uint32_t **v, size_t *n, uint32_t a)
{
    *v = xrealloc(*v, (*n + 1) * sizeof(uint32_t));
    (*v)[(*n)++] = a;
}

/* Removes a from v (order does not matter); false when it was not there. */
static bool drop(uint32_t *v, size_t *n, uint32_t a)
{
    for (size_t i = 0; i < *n; i++) {
        if (v[i] == a) {
            v[i] = v[--*n];
            return true;
        }
    }
    return false;
}

size_t alias_set_sync(alias_set *s, const uint32_t *want, size_t nwant)
{
    if (!s->active)
        return 0;
    size_t added = 0;
    char ip[16];
    for (size_t i = 0; i < s->n;) {
        if (has_addr(want, nwant, s->addrs[i])) {
            i++;
            continue;
        }
        int rc = s->del(s->addrs[i]);
        if (rc < 0) {
            /* Kept in the set (and the state file), so it is tried again
             * and, after a crash, removed at the next start. */
            log_warn_err("alias", rc, "cannot remove %s", ip4_format(s->addrs[i], ip));
            i++;
            continue;
        }
        log_debug("alias", "removed %s", ip4_format(s->addrs[i], ip));
        s->addrs[i] = s->addrs[--s->n];
    }
    /* Someone else's aliases that are no longer wanted: forgotten, never
     * removed. */
    for (size_t i = 0; i < s->nforeign;) {
        if (has_addr(want, nwant, s->foreign[i]))
            i++;
        else
            s->foreign[i] = s->foreign[--s->nforeign];
    }
    for (size_t i = 0; i < nwant; i++) {
        if (has_addr(s->addrs, s->n, want[i]))
            continue;
        int existed = 0;
        int rc = s->add(want[i], &existed);
        if (rc < 0) {
            log_error_err("alias", rc, "cannot add %s to the loopback interface",
                          ip4_format(want[i], ip));
            continue;
        }
        if (existed) {
            /* Made by the person or another program: using it is fine, but
             * it is not ours to remove at stop or as a leftover. */
            if (!has_addr(s->foreign, s->nforeign, want[i])) {
                log_info("alias",
                         "%s was on the loopback interface already: using it, "
                         "and leaving it there",
                         ip4_format(want[i], ip));
                push(&s->foreign, &s->nforeign, want[i]);
            }
            continue;
        }
        drop(s->foreign, &s->nforeign, want[i]);
        log_debug("alias", "added %s", ip4_format(want[i], ip));
        push(&s->addrs, &s->n, want[i]);
        added++;
    }
    return added;
}

void alias_set_remove_leftovers(alias_set *s, const uint32_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char ip[16];
        if (has_addr(s->addrs, s->n, v[i]))
            continue;
        int rc = 0;
        /* Gone since (a reboot, or removed by hand): not ours any more, so
         * the next sync adds it again when it is still wanted. */
        if (s->active && s->present && s->present(v[i]) == 0) {
            log_info("alias", "leftover alias %s is gone from the loopback interface",
                     ip4_format(v[i], ip));
            continue;
        }
        if (!s->active) {
            rc = s->del(v[i]);
            if (rc == 0) {
                log_info("alias", "removed leftover alias %s", ip4_format(v[i], ip));
                continue;
            }
            log_warn_err("alias", rc, "cannot remove leftover alias %s", ip4_format(v[i], ip));
        }
        push(&s->addrs, &s->n, v[i]);
    }
}

bool alias_set_has(const alias_set *s, uint32_t addr)
{
    return has_addr(s->addrs, s->n, addr) || has_addr(s->foreign, s->nforeign, addr);
}

void alias_set_free(alias_set *s)
{
    free(s->addrs);
    s->addrs = NULL;
    s->n = 0;
    free(s->foreign);
    s->foreign = NULL;
    s->nforeign = 0;
}
