/* The state file. It is small and written rarely, so load and save use plain
 * blocking I/O; what matters is that a crash at any point leaves either the
 * old or the new file, never a torn one, and that a damaged file never stops
 * the daemon from starting. */
#include "state.h"

#include "fsutil.h"
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

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

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
    memset(s, 0, sizeof(*s));
}

/* ---- encoding ---- */

static bool gen_str(yajl_gen g, const char *s)
{
    return yajl_gen_string(g, (const unsigned char *)s, strlen(s)) == yajl_gen_status_ok;
}

static bool gen_ip(yajl_gen g, uint32_t addr)
{
    char b[16];
    return gen_str(g, ip4_format(addr, b));
}

static bool encode(yajl_gen g, const state_data *s)
{
    bool ok = yajl_gen_map_open(g) == yajl_gen_status_ok;
    ok = ok && gen_str(g, "version");
    ok = ok && yajl_gen_integer(g, STATE_VERSION) == yajl_gen_status_ok;
    ok = ok && gen_str(g, "leases");
    ok = ok && yajl_gen_array_open(g) == yajl_gen_status_ok;
    for (size_t i = 0; ok && i < s->nleases; i++) {
        const state_lease *l = &s->leases[i];
        if (l->key == NULL)
            return false;
        ok = ok && yajl_gen_map_open(g) == yajl_gen_status_ok;
        ok = ok && gen_str(g, "key") && gen_str(g, l->key);
        ok = ok && gen_str(g, "ip") && gen_ip(g, l->addr);
        ok = ok && gen_str(g, "stopped_at");
        ok = ok && yajl_gen_integer(g, (long long)l->stopped_at) == yajl_gen_status_ok;
        ok = ok && yajl_gen_map_close(g) == yajl_gen_status_ok;
    }
    ok = ok && yajl_gen_array_close(g) == yajl_gen_status_ok;
    ok = ok && gen_str(g, "aliases");
    ok = ok && yajl_gen_array_open(g) == yajl_gen_status_ok;
    for (size_t i = 0; ok && i < s->naliases; i++)
        ok = gen_ip(g, s->aliases[i]);
    ok = ok && yajl_gen_array_close(g) == yajl_gen_status_ok;
    ok = ok && gen_str(g, "resolver_uninstalled");
    ok = ok && yajl_gen_bool(g, s->resolver_uninstalled) == yajl_gen_status_ok;
    ok = ok && yajl_gen_map_close(g) == yajl_gen_status_ok;
    return ok;
}

int state_encode(const state_data *s, char **out, size_t *len)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (g == NULL)
        return -ENOMEM;
    /* Keys come from container names; refuse to write a file we could not
     * read back rather than emit invalid UTF-8. */
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    int rc = -EINVAL;
    if (encode(g, s)) {
        const unsigned char *b;
        size_t n;
        if (yajl_gen_get_buf(g, &b, &n) == yajl_gen_status_ok) {
            char *copy = xmalloc(n + 2);
            memcpy(copy, b, n);
            copy[n++] = '\n';
            copy[n] = '\0';
            *out = copy;
            *len = n;
            rc = 0;
        }
    }
    yajl_gen_free(g);
    return rc;
}

/* ---- decoding ---- */

/* The first member named key, or NULL. */
static yajl_val obj_get(yajl_val obj, const char *key)
{
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (strcmp(obj->u.object.keys[i], key) == 0)
            return obj->u.object.values[i];
    return NULL;
}

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
    yajl_val key = obj_get(v, "key");
    if (!YAJL_IS_STRING(key) || key->u.string[0] == '\0') {
        set_err(err, errlen, "leases[%zu].key is missing or not a non-empty string", i);
        return -EINVAL;
    }
    yajl_val ip = obj_get(v, "ip");
    if (!YAJL_IS_STRING(ip) || !parse_loopback(ip->u.string, &l->addr)) {
        set_err(err, errlen, "leases[%zu].ip is missing or not a 127.x.y.z address", i);
        return -EINVAL;
    }
    yajl_val st = obj_get(v, "stopped_at");
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

static int decode_tree(yajl_val root, state_data *out, char *err, size_t errlen)
{
    if (!YAJL_IS_OBJECT(root)) {
        set_err(err, errlen, "top level is not an object");
        return -EINVAL;
    }
    yajl_val ver = obj_get(root, "version");
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
    yajl_val leases = obj_get(root, "leases");
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

    yajl_val aliases = obj_get(root, "aliases");
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

    yajl_val ru = obj_get(root, "resolver_uninstalled");
    if (ru != NULL) {
        if (!YAJL_IS_TRUE(ru) && !YAJL_IS_FALSE(ru)) {
            set_err(err, errlen, "resolver_uninstalled is not a boolean");
            return -EINVAL;
        }
        out->resolver_uninstalled = YAJL_IS_TRUE(ru);
    }
    return 0;
}

/* yajl_tree_free recurses once per nesting level, so a few MiB of "[[[["
 * would overflow the stack. Our format nests three deep; anything beyond
 * STATE_MAX_DEPTH (room for future extensions) is refused before parsing.
 * Brackets inside strings do not count. */
#define STATE_MAX_DEPTH 32

int state_decode(const char *json, size_t len, state_data *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (err && errlen)
        err[0] = '\0';
    if (len > STATE_MAX_SIZE) {
        set_err(err, errlen, "too large (%zu bytes, limit %u)", len, STATE_MAX_SIZE);
        return -EINVAL;
    }
    /* yajl_tree_parse wants a C string; an embedded NUL would silently cut
     * the document short, so it is an error. */
    if (memchr(json, '\0', len) != NULL) {
        set_err(err, errlen, "contains a NUL byte");
        return -EINVAL;
    }
    if (!json_depth_ok(json, len, STATE_MAX_DEPTH)) {
        set_err(err, errlen, "nested deeper than %d levels", STATE_MAX_DEPTH);
        return -EINVAL;
    }
    char *copy = xstrndup(json, len);
    char yerr[256];
    yerr[0] = '\0';
    yajl_val root = yajl_tree_parse(copy, yerr, sizeof(yerr));
    free(copy);
    if (root == NULL) {
        /* yajl appends the offending text and an arrow on further lines;
         * the first line says what was wrong. */
        yerr[strcspn(yerr, "\n")] = '\0';
        for (size_t n = strlen(yerr); n > 0 && (yerr[n - 1] == ' ' || yerr[n - 1] == '.'); n--)
            yerr[n - 1] = '\0';
        set_err(err, errlen, "bad JSON: %s", yerr[0] ? yerr : "parse error");
        return -EINVAL;
    }
    int rc = decode_tree(root, out, err, errlen);
    yajl_tree_free(root);
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

/* Reads a regular file of at most STATE_MAX_SIZE bytes. Returns 0 or a
 * negative errno; -EFBIG when it is too large. */
static int read_file(const char *path, char **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return -EISDIR;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return -EINVAL;
    }
    if (st.st_size > (off_t)STATE_MAX_SIZE) {
        close(fd);
        return -EFBIG;
    }
    /* Read up to one byte past the cap, so a file that grew after fstat is
     * still caught. */
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *b = xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap > STATE_MAX_SIZE) {
                free(b);
                close(fd);
                return -EFBIG;
            }
            cap = cap * 2 > STATE_MAX_SIZE + 1 ? STATE_MAX_SIZE + 1 : cap * 2;
            b = xrealloc(b, cap + 1);
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            free(b);
            close(fd);
            return e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n > STATE_MAX_SIZE) {
        free(b);
        return -EFBIG;
    }
    b[n] = '\0';
    *data = b;
    *len = n;
    return 0;
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
    char why[256];
    int rc = read_file(path, &data, &len);
    if (rc == -ENOENT) {
        free(path);
        return -ENOENT;
    }
    if (rc == -EFBIG)
        snprintf(why, sizeof(why), "larger than %u bytes", STATE_MAX_SIZE);
    else if (rc != 0)
        snprintf(why, sizeof(why), "unreadable: %s", strerror(-rc));
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
        set_err(err, errlen, "%s: %s; could not move it aside: %s", path, why, strerror(-mrc));
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
