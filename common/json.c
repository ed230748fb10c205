/* The bounded JSON parser, tree getters and generator helpers (see json.h).
 * The tree is built here from yajl's callback parser rather than by
 * yajl_tree_parse(), so that the depth limit holds while parsing and the
 * comment extension stays off. */
#include "json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

/* ---- Limits shared by the parser and the reformatter. ---- */

/* The checks made on raw text before yajl sees it. */
static int check_text(const char *text, size_t len, size_t max_len, char *err, size_t errlen)
{
    if (len > max_len) {
        set_err(err, errlen, "too large (%zu bytes, limit %zu)", len, max_len);
        return -EFBIG;
    }
    /* yajl itself would reject a raw NUL as an invalid character, but saying
     * so plainly is clearer than its lexical error. */
    if (len > 0 && memchr(text, '\0', len) != NULL) {
        set_err(err, errlen, "contains a NUL byte");
        return -EINVAL;
    }
    return 0;
}

/* yajl's own message for a failed parse, first line only, without the
 * trailing " ." some of them end in. */
static void yajl_reason(yajl_handle h, const char *text, size_t len, char *err, size_t errlen)
{
    unsigned char *m = yajl_get_error(h, 0, (const unsigned char *)text, len);
    char msg[256];
    strlcpy_(msg, m ? (const char *)m : "parse error", sizeof(msg));
    if (m)
        yajl_free_error(h, m);
    msg[strcspn(msg, "\r\n")] = '\0';
    for (size_t n = strlen(msg); n > 0 && (msg[n - 1] == ' ' || msg[n - 1] == '.'); n--)
        msg[n - 1] = '\0';
    set_err(err, errlen, "%s", msg[0] ? msg : "parse error");
}

/* Runs yajl over text with callbacks cbs and context ctx. why is set by a
 * callback that stops the parse; its reason wins over yajl's "client
 * cancelled parse". */
static int run_parser(const yajl_callbacks *cbs, void *ctx, const char *const *why,
                      const char *text, size_t len, char *err, size_t errlen)
{
    yajl_handle h = yajl_alloc(cbs, NULL, ctx);
    if (h == NULL)
        return -ENOMEM;
    /* yajl's default, said out loud: comments are what let hostile text
     * hide brackets from a scanner, and no document we read has them. */
    yajl_config(h, yajl_allow_comments, 0);
    yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    int rc = 0;
    if (st != yajl_status_ok) {
        if (*why != NULL)
            set_err(err, errlen, "%s", *why);
        else
            yajl_reason(h, text, len, err, errlen);
        rc = -EINVAL;
    }
    yajl_free(h);
    return rc;
}

/* ---- Building the tree. ---- */

/* An open array or object: capacity of its arrays and, for an object, the
 * key whose value comes next. */
typedef struct frame {
    yajl_val v;
    size_t cap;
    char *key;
} frame;

typedef struct builder {
    yajl_val root;
    frame *stack; /* max_depth entries: the depth can never exceed it */
    int depth, max_depth;
    const char *why;
    char whybuf[64];
} builder;

static yajl_val new_value(yajl_type t)
{
    yajl_val v = xcalloc(1, sizeof(*v));
    v->type = t;
    return v;
}

/* Attaches v to the open container (or makes it the root). The tree stays
 * consistent after every call, so a parse stopped anywhere frees cleanly. */
static int attach(builder *b, yajl_val v)
{
    if (b->depth == 0) {
        /* yajl stops at a second top-level value (multiple values are off);
         * should it ever not, the first one wins and nothing leaks. */
        if (b->root != NULL) {
            json_free(v);
            b->why = "more than one top-level value";
            return 0;
        }
        b->root = v;
        return 1;
    }
    frame *f = &b->stack[b->depth - 1];
    if (YAJL_IS_OBJECT(f->v)) {
        if (f->key == NULL) { /* yajl never does this; be safe anyway */
            json_free(v);
            b->why = "value without a key";
            return 0;
        }
        if (f->v->u.object.len == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 8;
            f->v->u.object.keys = xrealloc(f->v->u.object.keys, f->cap * sizeof(char *));
            f->v->u.object.values = xrealloc(f->v->u.object.values, f->cap * sizeof(yajl_val));
        }
        f->v->u.object.keys[f->v->u.object.len] = f->key;
        f->v->u.object.values[f->v->u.object.len++] = v;
        f->key = NULL;
    } else {
        if (f->v->u.array.len == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 8;
            f->v->u.array.values = xrealloc(f->v->u.array.values, f->cap * sizeof(yajl_val));
        }
        f->v->u.array.values[f->v->u.array.len++] = v;
    }
    return 1;
}

/* A copy of a decoded string, or NULL (and the reason) when it holds a NUL,
 * which a C string would silently cut short. */
static char *copy_string(builder *b, const unsigned char *s, size_t len)
{
    if (memchr(s, '\0', len) != NULL) {
        b->why = "a string contains \\u0000";
        return NULL;
    }
    return xstrndup((const char *)s, len);
}

static int cb_null(void *ctx)
{
    return attach(ctx, new_value(yajl_t_null));
}

static int cb_bool(void *ctx, int v)
{
    return attach(ctx, new_value(v ? yajl_t_true : yajl_t_false));
}

/* Numbers keep their text and, like yajl's tree, an integer and a double
 * value with flags saying which of them is exact. */
static int cb_number(void *ctx, const char *s, size_t len)
{
    yajl_val v = new_value(yajl_t_number);
    v->u.number.r = xstrndup(s, len);
    char *end;
    errno = 0;
    v->u.number.i = strtoll(v->u.number.r, &end, 10);
    if (errno == 0 && *end == '\0')
        v->u.number.flags |= YAJL_NUMBER_INT_VALID;
    errno = 0;
    v->u.number.d = strtod(v->u.number.r, &end);
    if (errno == 0 && *end == '\0')
        v->u.number.flags |= YAJL_NUMBER_DOUBLE_VALID;
    return attach(ctx, v);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    char *copy = copy_string(ctx, s, len);
    if (copy == NULL)
        return 0;
    yajl_val v = new_value(yajl_t_string);
    v->u.string = copy;
    return attach(ctx, v);
}

static int cb_key(void *ctx, const unsigned char *s, size_t len)
{
    builder *b = ctx;
    char *copy = copy_string(b, s, len);
    if (copy == NULL)
        return 0;
    frame *f = &b->stack[b->depth - 1];
    free(f->key);
    f->key = copy;
    return 1;
}

static int open_container(builder *b, yajl_type t)
{
    if (b->depth >= b->max_depth) {
        snprintf(b->whybuf, sizeof(b->whybuf), "nested deeper than %d levels", b->max_depth);
        b->why = b->whybuf;
        return 0;
    }
    yajl_val v = new_value(t);
    if (!attach(b, v))
        return 0;
    b->stack[b->depth++] = (frame){v, 0, NULL};
    return 1;
}

static int close_container(void *ctx)
{
    builder *b = ctx;
    frame *f = &b->stack[--b->depth];
    free(f->key);
    f->key = NULL;
    return 1;
}

static int cb_start_map(void *ctx)
{
    return open_container(ctx, yajl_t_object);
}

static int cb_start_array(void *ctx)
{
    return open_container(ctx, yajl_t_array);
}

static const yajl_callbacks tree_callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_bool,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_key,
    .yajl_end_map = close_container,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = close_container,
};

int json_parse(const char *text, size_t len, size_t max_len, int max_depth, yajl_val *out,
               char *err, size_t errlen)
{
    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (text == NULL)
        len = 0, text = "";
    int rc = check_text(text, len, max_len, err, errlen);
    if (rc < 0)
        return rc;
    if (max_depth < 1)
        max_depth = 1;
    builder b = {.max_depth = max_depth};
    b.stack = xcalloc((size_t)max_depth, sizeof(frame));
    rc = run_parser(&tree_callbacks, &b, &b.why, text, len, err, errlen);
    for (int i = 0; i < b.depth; i++)
        free(b.stack[i].key);
    free(b.stack);
    if (rc < 0) {
        json_free(b.root);
        return rc;
    }
    *out = b.root;
    return 0;
}

void json_free(yajl_val v)
{
    if (v == NULL)
        return;
    /* Recursion is safe: json_parse never builds a tree deeper than its
     * limit, and trees come from nowhere else. */
    switch (v->type) {
    case yajl_t_string:
        free(v->u.string);
        break;
    case yajl_t_number:
        free(v->u.number.r);
        break;
    case yajl_t_object:
        for (size_t i = 0; i < v->u.object.len; i++) {
            free((char *)v->u.object.keys[i]);
            json_free(v->u.object.values[i]);
        }
        free(v->u.object.keys);
        free(v->u.object.values);
        break;
    case yajl_t_array:
        for (size_t i = 0; i < v->u.array.len; i++)
            json_free(v->u.array.values[i]);
        free(v->u.array.values);
        break;
    default:
        break;
    }
    free(v);
}

/* ---- Re-indenting: parser callbacks straight into a beautifying
 * generator, with the depth counted here (yajl_gen would stop at 128 by
 * itself, but the limit should be the caller's, as for trees). ---- */

typedef struct reformat {
    yajl_gen g;
    int depth, max_depth;
    const char *why;
} reformat;

#define GEN(call) return (call) == yajl_gen_status_ok

static int re_null(void *ctx)
{
    GEN(yajl_gen_null(((reformat *)ctx)->g));
}

static int re_bool(void *ctx, int v)
{
    GEN(yajl_gen_bool(((reformat *)ctx)->g, v));
}

static int re_number(void *ctx, const char *s, size_t l)
{
    GEN(yajl_gen_number(((reformat *)ctx)->g, s, l));
}

static int re_string(void *ctx, const unsigned char *s, size_t l)
{
    reformat *r = ctx;
    /* The same refusal as json_parse's (copy_string). */
    if (memchr(s, '\0', l) != NULL) {
        r->why = "a string contains \\u0000";
        return 0;
    }
    GEN(yajl_gen_string(r->g, s, l));
}

static int re_open(reformat *r)
{
    if (r->depth >= r->max_depth) {
        r->why = "nested too deeply";
        return 0;
    }
    r->depth++;
    return 1;
}

static int re_map_open(void *ctx)
{
    return re_open(ctx) && yajl_gen_map_open(((reformat *)ctx)->g) == yajl_gen_status_ok;
}

static int re_map_close(void *ctx)
{
    ((reformat *)ctx)->depth--;
    GEN(yajl_gen_map_close(((reformat *)ctx)->g));
}

static int re_array_open(void *ctx)
{
    return re_open(ctx) && yajl_gen_array_open(((reformat *)ctx)->g) == yajl_gen_status_ok;
}

static int re_array_close(void *ctx)
{
    ((reformat *)ctx)->depth--;
    GEN(yajl_gen_array_close(((reformat *)ctx)->g));
}

static const yajl_callbacks re_callbacks = {
    .yajl_null = re_null,
    .yajl_boolean = re_bool,
    .yajl_number = re_number,
    .yajl_string = re_string,
    .yajl_start_map = re_map_open,
    .yajl_map_key = re_string,
    .yajl_end_map = re_map_close,
    .yajl_start_array = re_array_open,
    .yajl_end_array = re_array_close,
};

int json_pretty(const char *text, size_t len, size_t max_len, int max_depth, buf *out)
{
    if (text == NULL)
        len = 0, text = "";
    int rc = check_text(text, len, max_len, NULL, 0);
    if (rc < 0)
        return rc;
    yajl_gen g = json_gen_new(true);
    if (g == NULL)
        return -ENOMEM;
    yajl_gen_config(g, yajl_gen_indent_string, "  ");
    reformat r = {g, 0, max_depth, NULL};
    rc = run_parser(&re_callbacks, &r, &r.why, text, len, NULL, 0);
    if (rc == 0) {
        const unsigned char *p;
        size_t n;
        if (yajl_gen_get_buf(g, &p, &n) != yajl_gen_status_ok || n == 0) {
            rc = -EINVAL;
        } else {
            buf_append(out, p, n);
            if (p[n - 1] != '\n')
                buf_append(out, "\n", 1);
        }
    }
    yajl_gen_free(g);
    return rc;
}

/* ---- Getters. ---- */

yajl_val json_member(yajl_val v, const char *key)
{
    if (!YAJL_IS_OBJECT(v) || key == NULL)
        return NULL;
    for (size_t i = 0; i < v->u.object.len; i++)
        if (strcmp(v->u.object.keys[i], key) == 0)
            return v->u.object.values[i];
    return NULL;
}

static yajl_val walk(yajl_val v, va_list ap)
{
    const char *key;
    while (v != NULL && (key = va_arg(ap, const char *)) != NULL)
        v = json_member(v, key);
    return v;
}

yajl_val json_get(yajl_val v, ...)
{
    va_list ap;
    va_start(ap, v);
    v = walk(v, ap);
    va_end(ap);
    return v;
}

const char *json_str(yajl_val v, ...)
{
    va_list ap;
    va_start(ap, v);
    v = walk(v, ap);
    va_end(ap);
    return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

int json_int(yajl_val v, long long *out, ...)
{
    va_list ap;
    va_start(ap, out);
    v = walk(v, ap);
    va_end(ap);
    if (v == NULL || YAJL_IS_NULL(v))
        return -ENOENT;
    if (!YAJL_IS_INTEGER(v))
        return -EINVAL;
    *out = v->u.number.i;
    return 0;
}

int json_bool(yajl_val v, bool *out, ...)
{
    va_list ap;
    va_start(ap, out);
    v = walk(v, ap);
    va_end(ap);
    if (v == NULL || YAJL_IS_NULL(v))
        return -ENOENT;
    if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
        return -EINVAL;
    *out = YAJL_IS_TRUE(v);
    return 0;
}

int json_opt_str(yajl_val v, const char *key, const char **out)
{
    *out = NULL;
    if (!YAJL_IS_OBJECT(v))
        return -EINVAL;
    yajl_val m = json_member(v, key);
    if (m == NULL || YAJL_IS_NULL(m))
        return 0;
    if (!YAJL_IS_STRING(m))
        return -EINVAL;
    *out = m->u.string;
    return 0;
}

size_t json_len(yajl_val v)
{
    if (YAJL_IS_ARRAY(v))
        return v->u.array.len;
    if (YAJL_IS_OBJECT(v))
        return v->u.object.len;
    return 0;
}

yajl_val json_at(yajl_val v, size_t i)
{
    if (YAJL_IS_ARRAY(v))
        return i < v->u.array.len ? v->u.array.values[i] : NULL;
    if (YAJL_IS_OBJECT(v))
        return i < v->u.object.len ? v->u.object.values[i] : NULL;
    return NULL;
}

const char *json_key_at(yajl_val v, size_t i)
{
    return YAJL_IS_OBJECT(v) && i < v->u.object.len ? v->u.object.keys[i] : NULL;
}

/* ---- Generator helpers. ---- */

yajl_gen json_gen_new(bool beautify)
{
    yajl_gen g = yajl_gen_alloc(NULL);
    if (g == NULL)
        return NULL;
    yajl_gen_config(g, yajl_gen_validate_utf8, 1);
    if (beautify)
        yajl_gen_config(g, yajl_gen_beautify, 1);
    return g;
}

int json_gen_str(yajl_gen g, const char *s)
{
    yajl_gen_status st =
        s ? yajl_gen_string(g, (const unsigned char *)s, strlen(s)) : yajl_gen_null(g);
    return st == yajl_gen_status_ok ? 0 : -EINVAL;
}

int json_kv_str(yajl_gen g, const char *key, const char *s_or_null)
{
    int rc = json_gen_str(g, key);
    return rc < 0 ? rc : json_gen_str(g, s_or_null);
}

int json_kv_int(yajl_gen g, const char *key, long long v)
{
    int rc = json_gen_str(g, key);
    if (rc < 0)
        return rc;
    return yajl_gen_integer(g, v) == yajl_gen_status_ok ? 0 : -EINVAL;
}

int json_kv_bool(yajl_gen g, const char *key, bool v)
{
    int rc = json_gen_str(g, key);
    if (rc < 0)
        return rc;
    return yajl_gen_bool(g, v) == yajl_gen_status_ok ? 0 : -EINVAL;
}

int json_kv_null(yajl_gen g, const char *key)
{
    return json_kv_str(g, key, NULL);
}

int json_gen_take(yajl_gen g, bool newline, char **out, size_t *len)
{
    const unsigned char *b;
    size_t n;
    *out = NULL;
    *len = 0;
    if (yajl_gen_get_buf(g, &b, &n) != yajl_gen_status_ok)
        return -EINVAL;
    char *copy = xmalloc(n + 2);
    memcpy(copy, b, n);
    if (newline)
        copy[n++] = '\n';
    copy[n] = '\0';
    *out = copy;
    *len = n;
    return 0;
}
