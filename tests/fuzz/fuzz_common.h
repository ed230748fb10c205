/* Helpers shared by the libFuzzer drivers (header only: each driver is one
 * executable built from one fuzz_*.c file). */
#ifndef LOOPHOLE_FUZZ_COMMON_H
#define LOOPHOLE_FUZZ_COMMON_H

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A libuv read buffer for a driver's test client: one static slab (the
 * loop reads one chunk at a time, and every read callback consumes it). */
static inline void fuzz_slab_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    static char slab[65536];
    *b = uv_buf_init(slab, sizeof(slab));
}

/* Once per process: only errors reach stderr (libFuzzer's own output stays
 * readable at thousands of runs a second), stdout goes to /dev/null (usage
 * texts, tables) and a peer that closes early cannot kill us with SIGPIPE. */
static inline void fuzz_quiet(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    log_set_level(LOG_ERROR);
    signal(SIGPIPE, SIG_IGN);
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        close(fd);
    }
}

/* Input cut into pieces at a separator: fuzz_next() returns the next piece
 * (possibly empty) or false when none is left. */
typedef struct fuzz_cut {
    const uint8_t *p;
    size_t left;
    bool done;
    const char *sep;
    size_t sep_len;
} fuzz_cut;

static inline fuzz_cut fuzz_cut_init(const uint8_t *data, size_t size, const char *sep,
                                     size_t sep_len)
{
    fuzz_cut c = {data, size, false, sep, sep_len};
    return c;
}

static inline bool fuzz_next(fuzz_cut *c, const uint8_t **piece, size_t *len)
{
    if (c->done)
        return false;
    const uint8_t *hit = NULL;
    if (c->left >= c->sep_len)
        for (size_t i = 0; i + c->sep_len <= c->left; i++)
            if (memcmp(c->p + i, c->sep, c->sep_len) == 0) {
                hit = c->p + i;
                break;
            }
    *piece = c->p;
    if (hit == NULL) {
        *len = c->left;
        c->done = true;
        return true;
    }
    *len = (size_t)(hit - c->p);
    c->left -= *len + c->sep_len;
    c->p = hit + c->sep_len;
    return true;
}

#endif
