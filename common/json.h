/* The one JSON parser of the project, and small helpers to read the tree it
 * builds and to generate JSON with yajl_gen.
 *
 * Every JSON document loophole reads comes from someone it should not trust
 * blindly: the Docker engine and its event stream, files in a person's home
 * read as root, its own state file, the config file, and (in the client) the
 * daemon's answers. yajl_tree_parse() is unfit for that: it accepts comments,
 * has no size or depth limit and yajl_tree_free() recurses once per level, so
 * one line such as 400,000 "[" wrapped in comments overflows the stack. Here
 * the tree is built from yajl's callback parser with comments off and depth
 * counted while parsing, so no tree deeper than the limit is ever built.
 *
 * Trees are ordinary yajl_val trees (YAJL_IS_*, YAJL_GET_* work on them), but
 * must be freed with json_free(), never yajl_tree_free(). Pure: no libuv, no
 * logging, no globals. */
#ifndef LOOPHOLE_JSON_H
#define LOOPHOLE_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "util.h"

/* A depth that every document loophole reads stays far below (Docker's
 * replies nest about 6 deep, the control API's about 4). */
#define JSON_MAX_DEPTH 64

#if defined(__GNUC__) || defined(__clang__)
#define JSON_SENTINEL __attribute__((sentinel))
#else
#define JSON_SENTINEL
#endif

/* Parses len bytes of text (no terminating NUL needed) into *out. Refuses,
 * with a one-line reason in err (which may be NULL):
 *   more than max_len bytes (-EFBIG), a NUL byte in the text or a "\u0000"
 *   in a string (C strings would silently cut them short), comments,
 *   trailing garbage, invalid UTF-8, and nesting of arrays and objects deeper
 *   than max_depth ("[]" is depth 1) (all -EINVAL).
 * On success *out is the root (free it with json_free); on failure *out is
 * NULL and nothing is left allocated. */
int json_parse(const char *text, size_t len, size_t max_len, int max_depth, yajl_val *out,
               char *err, size_t errlen);
/* Frees a tree from json_parse; NULL is fine. */
void json_free(yajl_val v);

/* Re-indents JSON text with two spaces into out, with a final newline, under
 * the same limits and refusals as json_parse (but without building a tree).
 * 0, -EFBIG or -EINVAL (then out is unchanged). */
int json_pretty(const char *text, size_t len, size_t max_len, int max_depth, buf *out);

/* ---- Reading a tree. Every getter takes NULL or a value of any type. ---- */

/* The first member named key of an object; NULL when v is not an object or
 * has no such member. */
yajl_val json_member(yajl_val v, const char *key);
/* Follows a path of object keys ending in NULL: json_get(v, "State",
 * "Running", NULL). NULL when any step is missing or not an object. */
yajl_val json_get(yajl_val v, ...) JSON_SENTINEL;
/* The string at the path (NULL-terminated keys), or NULL when it is absent
 * or not a string. json_str(v, NULL) is v itself as a string. */
const char *json_str(yajl_val v, ...) JSON_SENTINEL;
/* The integer or boolean at the path: 0 with *out set; -ENOENT when it is
 * absent or null (out untouched); -EINVAL when it is of another type (or a
 * number that is not a 64-bit integer). */
int json_int(yajl_val v, long long *out, ...) JSON_SENTINEL;
int json_bool(yajl_val v, bool *out, ...) JSON_SENTINEL;
/* An optional string member, the way Docker's replies carry them: 0 with
 * *out NULL when absent or null, 0 with the string, or -EINVAL when the
 * member is of another type (or v is not an object). */
int json_opt_str(yajl_val v, const char *key, const char **out);

/* Iteration: the number of elements of an array or members of an object (0
 * for anything else); element or member value i; member name i (NULL unless
 * v is an object and i in range). */
size_t json_len(yajl_val v);
yajl_val json_at(yajl_val v, size_t i);
const char *json_key_at(yajl_val v, size_t i);

/* ---- Generating. Each returns 0 or -EINVAL (yajl refused: invalid UTF-8
 * with validation on, a key where a value belongs, ...). The results can be
 * OR-ed together and checked once: rc |= json_kv_str(...). ---- */

/* A generator with yajl's UTF-8 validation on (so a name from a container
 * cannot make us emit invalid JSON), compact unless beautify. NULL on OOM. */
yajl_gen json_gen_new(bool beautify);
/* A string value; NULL gives null. */
int json_gen_str(yajl_gen g, const char *s);
/* Inside an object: "key": value. */
int json_kv_str(yajl_gen g, const char *key, const char *s_or_null);
int json_kv_int(yajl_gen g, const char *key, long long v);
int json_kv_bool(yajl_gen g, const char *key, bool v);
int json_kv_null(yajl_gen g, const char *key);
/* Copies what g generated so far into a malloc'd, NUL-terminated string
 * (with a final "\n" when newline); *len excludes the NUL. 0 or -EINVAL. */
int json_gen_take(yajl_gen g, bool newline, char **out, size_t *len);

#endif
