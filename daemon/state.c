/* The state file. It is small and written rarely, so load and save use plain
 * blocking I/O; what matters is that a crash at any point leaves either the
 * old or the new file, never a torn one, and that a damaged file never stops
 * the daemon from starting. */
#include "state.h"

#include "container.h"
#include "fsutil.h"
#include "json.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Far more than any real state file (a lease is under 100 bytes); the cap
 * keeps a damaged or hostile file from costing unbounded memory. */
#define STATE_MAX_SIZE (4u * 1024 * 1024)

#define LOOPBACK_MASK 0xff000000u
#define LOOPBACK_NET 0x7f000000u

void state_data_free(state_data *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nleases; i++)
        free(s->leases[i].key);
    free(s->leases);
    free(s->aliases);
    for (size_t i = 0; i < s->nexposures; i++) {
        free(s->exposures[i].key);
        free(s->exposures[i].target);
    }
    free(s->exposures);
    for (size_t i = 0; i < s->nnamed; i++)
        free(s->named[i].name);
    free(s->named);
    memset(s, 0, sizeof(*s));
}

/* ---- encoding ---- */

static int gen_ip(yajl_gen g, uint32_t addr)
{
    char b[16];
    return json_gen_str(g, ip4_format(addr, b));
}

static int gen_status(yajl_gen_status st)
{
    return st == yajl_gen_status_ok ? 0 : -EINVAL;
}

static int encode(yajl_gen g, const state_data *s)
{
    int rc = gen_status(yajl_gen_map_open(g));
    rc |= json_kv_int(g, "version", STATE_VERSION);
    rc |= json_gen_str(g, "leases");
    rc |= gen_status(yajl_gen_array_open(g));
    for (size_t i = 0; rc == 0 && i < s->nleases; i++) {
        const state_lease *l = &s->leases[i];
        if (l->key == NULL)
            return -EINVAL;
        rc |= gen_status(yajl_gen_map_open(g));
        rc |= json_kv_str(g, "key", l->key);
        rc |= json_gen_str(g, "ip");
        rc |= gen_ip(g, l->addr);
        rc |= json_kv_int(g, "stopped_at", (long long)l->stopped_at);
        rc |= gen_status(yajl_gen_map_close(g));
    }
    rc |= gen_status(yajl_gen_array_close(g));
    rc |= json_gen_str(g, "aliases");
    rc |= gen_status(yajl_gen_array_open(g));
    for (size_t i = 0; rc == 0 && i < s->naliases; i++)
        rc |= gen_ip(g, s->aliases[i]);
    rc |= gen_status(yajl_gen_array_close(g));
    rc |= json_kv_bool(g, "resolver_uninstalled", s->resolver_uninstalled);
    rc |= json_gen_str(g, "exposures");
    rc |= gen_status(yajl_gen_array_open(g));
    for (size_t i = 0; rc == 0 && i < s->nexposures; i++) {
        const state_exposure *x = &s->exposures[i];
        if (x->key == NULL || x->target == NULL)
            return -EINVAL;
        rc |= gen_status(yajl_gen_map_open(g));
        rc |= json_kv_str(g, "key", x->key);
        rc |= json_kv_int(g, "port", x->port);
        rc |= json_kv_str(g, "proto", x->proto == CTR_UDP ? "udp" : "tcp");
        rc |= json_kv_str(g, "target", x->target);
        rc |= gen_status(yajl_gen_map_close(g));
    }
    rc |= gen_status(yajl_gen_array_close(g));
    rc |= json_gen_str(g, "named_leases");
    rc |= gen_status(yajl_gen_array_open(g));
    for (size_t i = 0; rc == 0 && i < s->nnamed; i++) {
        const state_named *l = &s->named[i];
        if (l->name == NULL)
            return -EINVAL;
        rc |= gen_status(yajl_gen_map_open(g));
        rc |= json_kv_str(g, "name", l->name);
        rc |= json_gen_str(g, "ip");
        rc |= gen_ip(g, l->addr);
        rc |= json_kv_int(g, "created_at", (long long)l->created_at);
        rc |= gen_status(yajl_gen_map_close(g));
    }
    rc |= gen_status(yajl_gen_array_close(g));
    rc |= gen_status(yajl_gen_map_close(g));
    return rc ? -EINVAL : 0;
}

int state_encode(const state_data *s, char **out, size_t *len)
{
    /* Keys come from container names; the generator validates UTF-8, so we
     * refuse to write a file we could not read back rather than emit
     * invalid UTF-8. */
    yajl_gen g = json_gen_new(false);
    if (g == NULL)
        return -ENOMEM;
    int rc = encode(g, s);
    if (rc == 0)
        rc = json_gen_take(g, true, out, len);
    yajl_gen_free(g);
    return rc;
}

/* ---- decoding ---- */

static bool parse_loopback(const char *s, uint32_t *out)
{
    uint32_t a;
    if (s == NULL || ip4_parse(s, &a) != 0 || (a & LOOPBACK_MASK) != LOOPBACK_NET)
        return false;
    *out = a;
    return true;
}

static int decode_lease(yajl_val v, size_t i, state_lease *l, char *err, size_t errlen)
{
    if (!YAJL_IS_OBJECT(v)) {
        set_err(err, errlen, "leases[%zu] is not an object", i);
        return -EINVAL;
    }
    yajl_val key = json_member(v, "key");
    if (!YAJL_IS_STRING(key) || key->u.string[0] == '\0') {
        set_err(err, errlen, "leases[%zu].key is missing or not a non-empty string", i);
        return -EINVAL;
    }
    yajl_val ip = json_member(v, "ip");
    if (!YAJL_IS_STRING(ip) || !parse_loopback(ip->u.string, &l->addr)) {
        set_err(err, errlen, "leases[%zu].ip is missing or not a 127.x.y.z address", i);
        return -EINVAL;
    }
    yajl_val st = json_member(v, "stopped_at");
    l->stopped_at = 0;
    if (st != NULL) {
        if (!YAJL_IS_INTEGER(st) || YAJL_GET_INTEGER(st) < 0) {
            set_err(err, errlen, "leases[%zu].stopped_at is not a non-negative integer", i);
            return -EINVAL;
        }
        l->stopped_at = YAJL_GET_INTEGER(st);
    }
    l->key = xstrdup(key->u.string);
    return 0;
}

/* The longest target label_host_port_target writes is a 253-byte name, a
 * colon and a port; anything longer was not written by us. */
#define STATE_TARGET_MAX 300

static int decode_exposure(yajl_val v, size_t i, state_exposure *x, char *err, size_t errlen)
{
    if (!YAJL_IS_OBJECT(v)) {
        set_err(err, errlen, "exposures[%zu] is not an object", i);
        return -EINVAL;
    }
    yajl_val key = json_member(v, "key");
    if (!YAJL_IS_STRING(key) || key->u.string[0] == '\0') {
        set_err(err, errlen, "exposures[%zu].key is missing or not a non-empty string", i);
        return -EINVAL;
    }
    yajl_val port = json_member(v, "port");
    if (!YAJL_IS_INTEGER(port) || YAJL_GET_INTEGER(port) < 1 || YAJL_GET_INTEGER(port) > 65535) {
        set_err(err, errlen, "exposures[%zu].port is missing or not a port number 1-65535", i);
        return -EINVAL;
    }
    yajl_val proto = json_member(v, "proto");
    if (!YAJL_IS_STRING(proto) ||
        (strcmp(proto->u.string, "tcp") != 0 && strcmp(proto->u.string, "udp") != 0)) {
        set_err(err, errlen, "exposures[%zu].proto is missing or not \"tcp\" or \"udp\"", i);
        return -EINVAL;
    }
    yajl_val target = json_member(v, "target");
    if (!YAJL_IS_STRING(target) || target->u.string[0] == '\0' ||
        strlen(target->u.string) > STATE_TARGET_MAX) {
        set_err(err, errlen, "exposures[%zu].target is missing or not a HOST:PORT string", i);
        return -EINVAL;
    }
    x->port = (uint16_t)YAJL_GET_INTEGER(port);
    x->proto = strcmp(proto->u.string, "udp") == 0 ? CTR_UDP : CTR_TCP;
    x->key = xstrdup(key->u.string);
    x->target = xstrdup(target->u.string);
    return 0;
}

static int decode_named(yajl_val v, size_t i, state_named *l, char *err, size_t errlen)
{
    if (!YAJL_IS_OBJECT(v)) {
        set_err(err, errlen, "named_leases[%zu] is not an object", i);
        return -EINVAL;
    }
    yajl_val name = json_member(v, "name");
    if (!YAJL_IS_STRING(name) || name->u.string[0] == '\0' || strlen(name->u.string) > 63) {
        set_err(err, errlen, "named_leases[%zu].name is missing or not a DNS label", i);
        return -EINVAL;
    }
    yajl_val ip = json_member(v, "ip");
    if (!YAJL_IS_STRING(ip) || !parse_loopback(ip->u.string, &l->addr)) {
        set_err(err, errlen, "named_leases[%zu].ip is missing or not a 127.x.y.z address", i);
        return -EINVAL;
    }
    yajl_val at = json_member(v, "created_at");
    l->created_at = 0;
    if (at != NULL) {
        if (!YAJL_IS_INTEGER(at) || YAJL_GET_INTEGER(at) < 0) {
            set_err(err, errlen, "named_leases[%zu].created_at is not a non-negative integer", i);
            return -EINVAL;
        }
        l->created_at = YAJL_GET_INTEGER(at);
    }
    l->name = xstrdup(name->u.string);
    return 0;
}

static int decode_tree(yajl_val root, state_data *out, char *err, size_t errlen)
{
    if (!YAJL_IS_OBJECT(root)) {
        set_err(err, errlen, "top level is not an object");
        return -EINVAL;
    }
    yajl_val ver = json_member(root, "version");
    if (!YAJL_IS_INTEGER(ver)) {
        set_err(err, errlen, "version is missing or not an integer");
        return -EINVAL;
    }
    if (YAJL_GET_INTEGER(ver) != STATE_VERSION) {
        set_err(err, errlen, "unsupported version %lld (expected %d)", YAJL_GET_INTEGER(ver),
                STATE_VERSION);
        return -EINVAL;
    }

    /* Missing sections mean empty: an older writer may not have had them. */
    yajl_val leases = json_member(root, "leases");
    if (leases != NULL && !YAJL_IS_NULL(leases)) {
        if (!YAJL_IS_ARRAY(leases)) {
            set_err(err, errlen, "leases is not an array");
            return -EINVAL;
        }
        size_t n = leases->u.array.len;
        out->leases = xcalloc(n, sizeof(*out->leases));
        for (size_t i = 0; i < n; i++) {
            int rc = decode_lease(leases->u.array.values[i], i, &out->leases[i], err, errlen);
            if (rc != 0)
                return rc;
            out->nleases++;
        }
    }

    yajl_val aliases = json_member(root, "aliases");
    if (aliases != NULL && !YAJL_IS_NULL(aliases)) {
        if (!YAJL_IS_ARRAY(aliases)) {
            set_err(err, errlen, "aliases is not an array");
            return -EINVAL;
        }
        size_t n = aliases->u.array.len;
        out->aliases = xcalloc(n, sizeof(*out->aliases));
        for (size_t i = 0; i < n; i++) {
            /* These get removed from the loopback interface at start, so
             * anything but a loopback address is refused, not trusted. */
            yajl_val a = aliases->u.array.values[i];
            if (!YAJL_IS_STRING(a) || !parse_loopback(a->u.string, &out->aliases[i])) {
                set_err(err, errlen, "aliases[%zu] is not a 127.x.y.z address", i);
                return -EINVAL;
            }
            out->naliases++;
        }
    }

    yajl_val ru = json_member(root, "resolver_uninstalled");
    if (ru != NULL) {
        if (!YAJL_IS_TRUE(ru) && !YAJL_IS_FALSE(ru)) {
            set_err(err, errlen, "resolver_uninstalled is not a boolean");
            return -EINVAL;
        }
        out->resolver_uninstalled = YAJL_IS_TRUE(ru);
    }

    yajl_val exps = json_member(root, "exposures");
    if (exps != NULL && !YAJL_IS_NULL(exps)) {
        if (!YAJL_IS_ARRAY(exps)) {
            set_err(err, errlen, "exposures is not an array");
            return -EINVAL;
        }
        size_t n = exps->u.array.len;
        out->exposures = xcalloc(n, sizeof(*out->exposures));
        for (size_t i = 0; i < n; i++) {
            int rc = decode_exposure(exps->u.array.values[i], i, &out->exposures[i], err, errlen);
            if (rc != 0)
                return rc;
            out->nexposures++;
        }
    }

    yajl_val named = json_member(root, "named_leases");
    if (named != NULL && !YAJL_IS_NULL(named)) {
        if (!YAJL_IS_ARRAY(named)) {
            set_err(err, errlen, "named_leases is not an array");
            return -EINVAL;
        }
        size_t n = named->u.array.len;
        out->named = xcalloc(n ? n : 1, sizeof(*out->named));
        for (size_t i = 0; i < n; i++) {
            int rc = decode_named(named->u.array.values[i], i, &out->named[i], err, errlen);
            if (rc != 0)
                return rc;
            out->nnamed++;
        }
    }
    return 0;
}

/* Our format nests three deep; the limit leaves room for future extensions
 * and keeps a hostile file from building a deep tree. */
#define STATE_MAX_DEPTH 32

int state_decode(const char *json, size_t len, state_data *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (err && errlen)
        err[0] = '\0';
    char why[200];
    yajl_val root;
    if (json_parse(json, len, STATE_MAX_SIZE, STATE_MAX_DEPTH, &root, why, sizeof(why)) < 0) {
        set_err(err, errlen, "bad JSON: %s", why);
        return -EINVAL;
    }
    int rc = decode_tree(root, out, err, errlen);
    json_free(root);
    if (rc != 0)
        state_data_free(out);
    return rc;
}

/* ---- files ---- */

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Renames a bad state file aside under a name no earlier bad file took, so
 * two failures in the same second do not destroy the first evidence.
 * Returns 0 with the new path in *dst (caller frees), or a negative errno. */
static int move_aside(const char *path, char **dst)
{
    long long secs = (long long)time(NULL);
    size_t n = strlen(path) + 64;
    char *to = xmalloc(n);
    for (int i = 0; i < 100; i++) {
        if (i == 0)
            snprintf(to, n, "%s.corrupt-%lld", path, secs);
        else
            snprintf(to, n, "%s.corrupt-%lld-%d", path, secs, i);
        struct stat st;
        if (lstat(to, &st) == 0)
            continue;
        if (rename(path, to) != 0) {
            int e = -errno;
            free(to);
            return e;
        }
        *dst = to;
        return 0;
    }
    free(to);
    return -EEXIST;
}

int state_load(const char *dir, state_data *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (err && errlen)
        err[0] = '\0';
    char *path = path_join(dir, STATE_FILE);
    char *data = NULL;
    size_t len = 0;
    char why[256], rwhy[128];
    /* The daemon writes this file itself, so a symlink there, or a file of
     * another owner, is not ours (moved aside below). */
    int rc = fs_read_small(path, STATE_MAX_SIZE, FS_NOFOLLOW | FS_OWNER, geteuid(), &data, &len,
                           rwhy, sizeof(rwhy));
    if (rc == -ENOENT) {
        free(path);
        return -ENOENT;
    }
    if (rc == -EFBIG)
        snprintf(why, sizeof(why), "larger than %u bytes", STATE_MAX_SIZE);
    else if (rc != 0)
        snprintf(why, sizeof(why), "unreadable: %s", rwhy);
    else
        rc = state_decode(data, len, out, why, sizeof(why));
    free(data);
    if (rc == 0) {
        free(path);
        return 0;
    }

    char *to = NULL;
    int mrc = move_aside(path, &to);
    if (mrc == 0)
        set_err(err, errlen, "%s: %s; moved to %s", path, why, to);
    else
        set_err(err, errlen, "%s: %s; could not move it aside: %s", path, why, err_str(mrc));
    free(to);
    free(path);
    return -EINVAL;
}

int state_save(const char *dir, const state_data *s)
{
    if (dir == NULL || dir[0] == '\0')
        return -EINVAL;
    char *json;
    size_t len;
    int rc = state_encode(s, &json, &len);
    if (rc != 0)
        return rc;
    rc = fs_mkdir_p(dir, 0755);
    if (rc == 0) {
        char *path = path_join(dir, STATE_FILE);
        rc = fs_write_atomic(path, json, len, 0644);
        free(path);
    }
    free(json);
    return rc;
}
