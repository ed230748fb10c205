#include "output.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "json.h"

bool out_use_color(int fd)
{
    const char *nc = getenv("NO_COLOR");
    if (nc && nc[0])
        return false;
    const char *term = getenv("TERM");
    if (term && strcmp(term, "dumb") == 0)
        return false;
    return isatty(fd) == 1;
}

size_t out_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80) /* count lead bytes, skip continuations */
            w++;
    return w;
}

void out_table_init(out_table *t, size_t ncols, const char *const *headers)
{
    t->ncols = ncols;
    t->nrows = 0;
    t->cells = NULL;
    out_table_add(t, headers, NULL);
}

void out_table_add(out_table *t, const char *const *texts, const char *const *styles)
{
    t->cells = xrealloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(out_cell));
    out_cell *row = t->cells + t->nrows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i].text = xstrdup(texts[i] ? texts[i] : "");
        row[i].style = styles ? styles[i] : NULL;
    }
    t->nrows++;
}

void out_table_render(const out_table *t, bool color, buf *out)
{
    size_t *w = xcalloc(t->ncols, sizeof(size_t));
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t cw = out_width(t->cells[r * t->ncols + c].text);
            if (cw > w[c])
                w[c] = cw;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        /* Trailing empty cells are not padded either. */
        size_t last = t->ncols;
        while (last > 1 && t->cells[r * t->ncols + last - 1].text[0] == '\0')
            last--;
        for (size_t c = 0; c < last; c++) {
            const out_cell *cell = &t->cells[r * t->ncols + c];
            const char *style = r == 0 ? OUT_BOLD : cell->style;
            if (color && style)
                buf_appendf(out, "%s%s%s", style, cell->text, OUT_RESET);
            else
                buf_append(out, cell->text, strlen(cell->text));
            if (c + 1 < last) {
                size_t pad = w[c] - out_width(cell->text) + 2;
                for (size_t i = 0; i < pad; i++)
                    buf_append(out, " ", 1);
            }
        }
        buf_append(out, "\n", 1);
    }
    free(w);
}

void out_table_free(out_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i].text);
    free(t->cells);
    t->cells = NULL;
    t->nrows = 0;
}

int out_json_pretty(const char *json, size_t len, buf *out)
{
    /* The daemon's answer is re-indented under the same limits as every
     * document the client parses (no comments, no NUL, bounded depth). */
    return json_pretty(json, len, HTTPC_MAX_BODY, JSON_MAX_DEPTH, out) < 0 ? -EINVAL : 0;
}

void out_duration(int64_t s, char *dst, size_t cap)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        snprintf(dst, cap, "%llds", (long long)s);
    else if (s < 3600)
        snprintf(dst, cap, "%lldm %llds", (long long)(s / 60), (long long)(s % 60));
    else if (s < 86400)
        snprintf(dst, cap, "%lldh %lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else
        snprintf(dst, cap, "%lldd %lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}
