/* macOS has no splice(2): report it unavailable so proxy.c keeps every
 * connection on the portable read/write path. */
#include "splice.h"

bool splice_available(void)
{
    return false;
}

int splice_start(uv_loop_t *loop, int fd_a, int fd_b, const splice_cbs *cbs, void *arg,
                 splice_conn **out)
{
    (void)loop;
    (void)fd_a;
    (void)fd_b;
    (void)cbs;
    (void)arg;
    *out = NULL;
    return UV_ENOSYS;
}

void splice_close(splice_conn *s, void (*closed)(void *arg))
{
    (void)s;
    (void)closed;
}
