/* Listening sockets made inside a container's network namespace (issue 12,
 * host services inside containers): the socket a container's
 * localhost:CPORT reaches, bound in the container's namespace and served by
 * the daemon's proxy like any other listener.
 *
 * setns(CLONE_NEWNET) changes the calling thread for good, so the work runs
 * on a short-lived helper thread of this module's own (never the loop
 * thread, never a libuv threadpool thread, whose threads are reused): one
 * worker at a time drains the queue and exits, and its namespace dies with
 * it. Results come back to the loop thread through a uv_async_t, in the
 * order of the requests.
 *
 * Linux only in substance (netns_linux.c); on macOS (netns_darwin.c) the
 * maker works, so the daemon's code is portable, but every request fails
 * with -ENOTSUP. netns_cgroup_names is pure (netns_cgroup.c). */
#ifndef LOOPHOLE_NETNS_H
#define LOOPHOLE_NETNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

typedef struct netns_request {
    char id[65];   /* the container's full id (64 lower-case hex digits) */
    int pid;       /* inspect's State.Pid */
    uint16_t port; /* CPORT: the port inside the container */
    uint8_t proto; /* CTR_TCP or CTR_UDP */
    uint64_t tag;  /* the caller's, returned untouched */
} netns_request;

typedef struct netns_result {
    netns_request req;
    int fd4;         /* bound on 127.0.0.1:port (TCP: listening, backlog SOMAXCONN), or -1 */
    int fd6;         /* bound on [::1]:port when the namespace has IPv6 loopback, else -1 */
    int err;         /* 0, or a negative errno: why fd4 is -1 */
    uint64_t ns_ino; /* the namespace's inode (equal: the same namespace); 0 when unknown */
    char msg[200];   /* one sentence when err != 0, else "" */
} netns_result;

typedef struct netns_maker netns_maker;

/* A maker on loop: done(ud, r) is called on the loop thread once for every
 * request netns_open accepted, in order. done owns r's fds (it must close
 * or keep them); r itself is valid only during the call. Returns 0 with
 * *out, or -errno (uv_async_init's, -ENOMEM). */
int netns_maker_new(uv_loop_t *loop, void (*done)(void *ud, netns_result *r), void *ud,
                    netns_maker **out);

/* Queues one request. 0: its result will come through done (a request that
 * cannot be served, such as a pid <= 0, is a result with err set, never a
 * return value); else -errno and done will not be called for it (-EINVAL
 * for a NULL argument or a closed maker, -EAGAIN when no worker thread can
 * be started). Sockets are close-on-exec; blocking or not is left to the
 * proxy (proxy_listen_fd makes them non-blocking). */
int netns_open(netns_maker *m, const netns_request *req);

/* Closes the maker: its uv_async_t is closed the libuv way (so the loop can
 * be closed once it has run), results not yet delivered have their fds
 * closed and are never delivered, queued requests are dropped, and a
 * worker still running finishes its request and discards it (the queue it
 * shares is reference-counted, so nothing is freed under it). May be called
 * from done. NULL is a no-op. */
void netns_maker_close(netns_maker *m);

/* Whether this process can use the netns path at all: 0, or -EPERM or
 * -ENOTSUP with one sentence in why (which says what to change). Reads
 * /proc/self/status's CapEff (CAP_SYS_ADMIN for setns, CAP_SYS_PTRACE to
 * open /proc/<pid>/ns/net of a process whose capabilities are not a subset
 * of ours) and does a setns() into the daemon's own namespace on a
 * short-lived thread, which is harmless and shows a seccomp filter's
 * refusal. Caches nothing: the daemon calls it at start and for status.
 * Blocks for as long as a thread takes to start and end. */
int netns_probe(char *why, size_t len);

/* Pure: whether text[0..len), the contents of /proc/<pid>/cgroup, names the
 * container whose full id is id (64 lower-case hex digits; anything else is
 * false). Lines are "hierarchy:controllers:path" (cgroup v1, v2's "0::")
 * or a bare path. The id must be a whole component of a path
 * ("/docker/<id>", "/kubepods/.../<id>", "docker/<id>") or a systemd scope
 * "<manager>-<id>.scope" ("docker-", "cri-containerd-", "crio-",
 * "libpod-"); never part of a longer run of hex digits, never a truncated
 * id. */
bool netns_cgroup_names(const char *text, size_t len, const char *id);

/* ---- for the tests ---- */

/* Replaces the cgroup check of netns_open (NULL: the real one, which reads
 * /proc/<pid>/cgroup and asks netns_cgroup_names), so a test can enter a
 * namespace of a process that is not a container. Call it with no worker
 * running. */
void netns_set_cgroup_check_for_tests(bool (*fn)(pid_t pid, const char *id));

/* Waits until no worker thread of any maker is alive (a closed maker's
 * worker may still be finishing its request). */
void netns_wait_idle_for_tests(void);

#endif
