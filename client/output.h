/* Human output helpers for the loophole command: colour policy, display
 * width, aligned tables, JSON pretty printing, durations. Pure except
 * out_use_color, which looks at the terminal and the environment. */
#ifndef LOOPHOLE_OUTPUT_H
#define LOOPHOLE_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define OUT_BOLD "\033[1m"
#define OUT_DIM "\033[2m"
#define OUT_RED "\033[31m"
#define OUT_GREEN "\033[32m"
#define OUT_YELLOW "\033[33m"
#define OUT_CYAN "\033[36m"
#define OUT_RESET "\033[0m"

/* Colour only on a terminal, never with NO_COLOR set (https://no-color.org)
 * or TERM=dumb. */
bool out_use_color(int fd);

/* Terminal columns of a UTF-8 string (one per code point: enough for the
 * arrows and ASCII we print). */
size_t out_width(const char *s);

typedef struct out_cell {
    char *text;
    const char *style; /* an OUT_* sequence or NULL */
} out_cell;

typedef struct out_table {
    size_t ncols;
    size_t nrows; /* including the header row */
    out_cell *cells;
} out_table;

/* A table with one header row (printed bold when coloured). */
void out_table_init(out_table *t, size_t ncols, const char *const *headers);
/* Appends a row; texts are copied, NULL becomes "". styles may be NULL. */
void out_table_add(out_table *t, const char *const *texts, const char *const *styles);
/* Columns separated by two spaces; the last column is not padded. */
void out_table_render(const out_table *t, bool color, buf *out);
void out_table_free(out_table *t);

/* Re-indents JSON text (two spaces) into out, with a final newline.
 * Returns 0 or -EINVAL when the text is not JSON. */
int out_json_pretty(const char *json, size_t len, buf *out);

/* "42s", "5m 3s", "2h 5m", "3d 4h". */
void out_duration(int64_t seconds, char *dst, size_t cap);

#endif
