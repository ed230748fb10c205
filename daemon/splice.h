/* The Linux zero-copy relay: once a TCP connection is classified plain, its
 * two sockets are driven by uv_poll and bytes move fd -> pipe -> fd with
 * splice(2), one pipe per direction, never entering user space. On other
 * platforms splice_available() is false and the read/write path is used.
 *
 * The uv_poll handles watch the same fds as the connection's uv_tcp_t
 * handles. That works because the caller first stops reading on both tcp
 * handles with nothing left in their write queues: libuv then no longer
 * claims the fd (loop->watchers[fd] is NULL), so uv_poll_init accepts it,
 * and the fd's stale epoll registration is taken over (libuv retries
 * EPOLL_CTL_ADD as MOD on EEXIST). Every TCP unit test runs with splice on,
 * which exercises this. dup()ing the fds for the poll handles would work too
 * but costs two more descriptors per connection for nothing. The poll
 * handles must stop before the tcp handles close, because closing a tcp
 * handle removes its fd from epoll (splice_close stops them at once). */
#ifndef LOOPHOLE_SPLICE_H
#define LOOPHOLE_SPLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* Requested size of each direction's pipe (F_SETPIPE_SZ; a smaller pipe is
 * used when the system refuses). */
#define SPLICE_PIPE_SIZE (1024 * 1024)

typedef struct splice_conn splice_conn;

typedef struct splice_cbs {
    /* n bytes were delivered; dir 0 is fd_a -> fd_b, dir 1 is fd_b -> fd_a. */
    void (*bytes)(void *arg, int dir, size_t n);
    /* Both directions ended cleanly (status 0: each side's EOF was passed on
     * with shutdown(SHUT_WR)) or one side failed (negative errno, e.g.
     * UV_ECONNRESET). Called once; the caller then calls splice_close. */
    void (*finished)(void *arg, int status);
} splice_cbs;

bool splice_available(void);

/* Starts relaying between two connected, non-blocking sockets that no other
 * watcher in the loop is polling. Returns 0, or a negative error with nothing
 * left to clean up by the caller (e.g. -EMFILE when pipes cannot be made). */
int splice_start(uv_loop_t *loop, int fd_a, int fd_b, const splice_cbs *cbs, void *arg,
                 splice_conn **out);

/* Stops at once (the poll handles stop watching before this returns, so the
 * caller may close the sockets right after); frees itself once its handles
 * are closed and then calls closed(arg) (may be NULL). The sockets are not
 * closed: they belong to the caller. */
void splice_close(splice_conn *s, void (*closed)(void *arg));

#endif
