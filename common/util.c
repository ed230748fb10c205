#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <uv.h>

static void oom(void)
{
    fputs("loophole: out of memory\n", stderr);
    abort();
}

const char *err_str(int negerr)
{
    if (negerr == 0)
        return "success";
    int e = negerr < 0 ? -negerr : negerr;
    /* libuv's own codes sit far above any errno (UV_EAI_* near 3000, UV_EOF
     * 4095); everything below is an errno, whose C library sentence is what
     * the client and the daemon have always printed. */
    if (e >= 3000)
        return uv_strerror(-e);
    return strerror(e);
}

void lh_require_failed(const char *file, int line, const char *cond)
{
    fprintf(stderr, "loophole: %s:%d: invariant broken: %s\n", file, line, cond);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom();
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL)
        oom();
    return p;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

size_t strlcpy_(char *dst, const char *src, size_t cap)
{
    size_t n = strlen(src);
    if (cap > 0) {
        size_t c = n < cap - 1 ? n : cap - 1;
        memcpy(dst, src, c);
        dst[c] = '\0';
    }
    return n;
}

void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (char *p = err; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
}

static bool byte_is_plain(unsigned char ch)
{
    return ch >= 0x20 && ch <= 0x7e && ch != '\\' && ch != '"';
}

const char *printable(const char *s, size_t len, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    static const char empty[1] = "";
    if (cap == 0)
        return empty;
    if (s == NULL) {
        strlcpy_(out, "(null)", cap);
        return out;
    }
    /* Does all of it fit? Stop counting as soon as it does not: len may be
     * large and only the first cap bytes of output matter. */
    size_t need = 0;
    bool fits = true;
    for (size_t i = 0; i < len && fits; i++) {
        need += byte_is_plain((unsigned char)s[i]) ? 1 : 4;
        fits = need < cap;
    }
    /* When cut, keep room for "..." and the NUL. */
    size_t limit = fits ? cap - 1 : (cap > 4 ? cap - 4 : 0);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        size_t w = byte_is_plain(ch) ? 1 : 4;
        if (o + w > limit)
            break;
        if (w == 1) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    if (!fits)
        for (int k = 0; k < 3 && o + 1 < cap; k++)
            out[o++] = '.';
    out[o] = '\0';
    return out;
}

int ip4_parse(const char *s, uint32_t *out)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1)
        return -EINVAL;
    *out = ntohl(a.s_addr);
    return 0;
}

const char *ip4_format(uint32_t addr, char *b)
{
    snprintf(b, 16, "%u.%u.%u.%u", (addr >> 24) & 255, (addr >> 16) & 255, (addr >> 8) & 255,
             addr & 255);
    return b;
}

int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void buf_append(buf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_appendf(buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        buf_append(b, tmp, (size_t)n);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf_append(b, big, (size_t)n);
    free(big);
}

void buf_consume(buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data)
        b->data[b->len] = '\0';
}

void buf_free(buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
