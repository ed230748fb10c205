#ifndef LOOPHOLE_UTIL_H
#define LOOPHOLE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* THE way to turn an error code into text. negerr is a negative errno value
 * (-ENOENT) or a libuv error (UV_EOF, UV_ECONNREFUSED: on Unix every libuv
 * error but a handful of its own is a negative errno), which is what every
 * function here returns. Gives the C library's sentence for errno values and
 * libuv's for libuv's own codes (UV_EOF, UV_EAI_*); 0 gives "success"; a
 * positive value is taken as a plain errno (say err_str(-errno) anyway). The
 * string is static: never freed, valid until the next call. */
const char *err_str(int negerr);

/* Our own invariants, never input: when cond is false, prints file:line and
 * the condition to stderr and aborts, in every build type (the checks are
 * cheap and a broken invariant must not run on). Input from the network,
 * Docker or a user is validated, not asserted. */
#define LH_REQUIRE(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            lh_require_failed(__FILE__, __LINE__, #cond);                                          \
    } while (0)
_Noreturn void lh_require_failed(const char *file, int line, const char *cond);

/* Allocation that aborts on failure: out-of-memory in a tiny daemon is not a
 * condition we can serve through. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Copies at most cap-1 bytes and always terminates; returns strlen(src). */
size_t strlcpy_(char *dst, const char *src, size_t cap);

/* Writes a one-line error message into err (which may be NULL): line breaks
 * and tabs (yajl's messages span lines) become spaces. */
void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* THE helper for logging hostile values: anything that comes from a
 * container, a label, a broker or a control-API client goes into a log line
 * through this and nothing else, so no value can forge a log line or flood
 * the log. Writes s[0..len) into out (cap bytes, always terminated): bytes
 * outside printable ASCII, the backslash and the double quote become \xNN
 * (so a quoted value cannot close its quotes and a forged escape is told
 * apart from a real one); when the result would not fit it is cut at a whole character and ends in
 * "...". Returns out ("" when cap is 0; "(null)" when s is NULL), so it can
 * sit in a log call's arguments:
 *     char tmp[PRINTABLE_BUF];
 *     log_warn(MOD, "bad label \"%s\"", printable(v, strlen(v), tmp, sizeof(tmp)));
 * Pure: no allocation, no globals. */
#define PRINTABLE_BUF 128
const char *printable(const char *s, size_t len, char *out, size_t cap);

/* IPv4 helpers; addresses in host byte order. ip4_parse returns 0, or
 * -EINVAL when s is not a dotted quad. */
int ip4_parse(const char *s, uint32_t *out);
/* buf needs 16 bytes. */
const char *ip4_format(uint32_t addr, char *buf);

/* Milliseconds since the Unix epoch (wall clock). */
int64_t now_ms(void);

/* A growable byte buffer. */
typedef struct buf {
    char *data;
    size_t len;
    size_t cap;
} buf;
void buf_append(buf *b, const void *p, size_t n);
void buf_appendf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_consume(buf *b, size_t n); /* drop n bytes from the front */
void buf_free(buf *b);

#endif
