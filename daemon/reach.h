/* Is a container network reachable from the daemon (issue 13, direct
 * forwarding)? Probe it, never assume: a TCP connect to one container's
 * address on that network with a short deadline, its result cached per
 * network.
 *
 * A connect that succeeds, or is refused (ECONNREFUSED: nothing listens on
 * that port yet, but the address answered), means REACH_OK; a timeout,
 * EHOSTUNREACH, ENETUNREACH, EACCES or EPERM (a firewall; netfilter's DROP
 * in OUTPUT reports EPERM at once) means REACH_UNREACHABLE, and so does any
 * other error (logged once per network). A probe sends no bytes: the socket
 * is closed as soon as the connect completes.
 *
 * The state of a network is re-probed when the daemon says it may have
 * changed (reach_forget, then reach_probe), when a direct connection to it
 * failed (reach_failure, rate-limited), and, while it is REACH_UNREACHABLE,
 * by itself with a growing interval (REACH_RECHECK_MIN_MS doubling up to
 * REACH_RECHECK_MAX_MS), so a route or firewall rule that goes away is seen
 * without any Docker event. A probe that could not even start for want of
 * local resources (EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL) leaves
 * the state as it was and is retried after REACH_REPROBE_MIN_MS.
 *
 * I/O module: one libuv loop, no threads. Network names come from Docker
 * and labels: they reach the log only through printable(); a name longer
 * than REACH_NAME_MAX - 1 bytes, an empty one or an address that is not a
 * dotted quad is ignored (logged, rate-limited). */
#ifndef LOOPHOLE_REACH_H
#define LOOPHOLE_REACH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* The states of a network. The registry (pure, it does not include this
 * file) defines REG_REACH_UNKNOWN/OK/UNREACHABLE with the same values;
 * reach.c checks that with static asserts. */
enum { REACH_UNKNOWN = 0, REACH_OK = 1, REACH_UNREACHABLE = 2 };

/* A reachable network whose probe fails is probed once more after this
 * long before it counts as unreachable. */
#define REACH_CONFIRM_MS 1000
#define REACH_DEFAULT_TIMEOUT_MS 300u
/* reach_failure re-probes a network at most once per this interval. */
#define REACH_REPROBE_MIN_MS 5000u
/* An unreachable network is probed again after this, doubling each time
 * it is still unreachable, up to REACH_RECHECK_MAX_MS. */
#define REACH_RECHECK_MIN_MS 5000u
#define REACH_RECHECK_MAX_MS 60000u
/* At most this many networks are remembered; a new one drops the oldest. */
#define REACH_MAX_NETWORKS 256
/* A network name's buffer, as in the registry's reg_probe_want. */
#define REACH_NAME_MAX 128

typedef struct reach_prober reach_prober;

/* A prober on loop. timeout_ms is each probe's deadline (0:
 * REACH_DEFAULT_TIMEOUT_MS). changed(ud, network, state) is called on the
 * loop, never from inside a reach_* call, whenever a network's state
 * changes, including the first result after REACH_UNKNOWN; network is valid
 * during the call only. changed may call any reach_* function, including
 * reach_close. Returns 0 with *out, or -EINVAL (NULL loop, changed or out). */
int reach_new(uv_loop_t *loop, unsigned timeout_ms,
              void (*changed)(void *ud, const char *network, int state), void *ud,
              reach_prober **out);

/* Asks for network's state, probing ip:port (IPv4, TCP) unless a probe for
 * that network is running or its state is known. ip:port is remembered as
 * the network's probe target either way (the last one given wins), for
 * reach_failure and the re-checks of an unreachable network. */
void reach_probe(reach_prober *p, const char *network, const char *ip, uint16_t port);

/* REACH_UNKNOWN (never probed, forgotten, or first probe still running),
 * REACH_OK or REACH_UNREACHABLE. While a re-probe (reach_failure, re-check)
 * runs, the last result stays. */
int reach_state(const reach_prober *p, const char *network);

/* Drops network's cached state (its networks or addresses changed): a probe
 * in flight for it is cancelled, a re-check or retry planned for it too,
 * and the next reach_probe probes again. changed() is not called for the
 * drop itself; the next result is reported as a change from REACH_UNKNOWN.
 * Unknown networks are ignored. */
void reach_forget(reach_prober *p, const char *network);

/* A direct connection to network timed out or was unreachable: probe it
 * again at its last target. At most one such re-probe per network per
 * REACH_REPROBE_MIN_MS: a failure inside that interval plans one re-probe at
 * its end instead. The last state stays until the result; changed() is
 * called only if it differs. Networks never given to reach_probe are
 * ignored. */
void reach_failure(reach_prober *p, const char *network);

/* As reach_failure, and ip:port (the address whose connection failed)
 * becomes the network's probe target first: the container reach_probe was
 * last given may be gone, and probing a dead address would call a live
 * network unreachable. */
void reach_failure_at(reach_prober *p, const char *network, const char *ip, uint16_t port);

/* Probes in flight (for status and tests). */
size_t reach_pending(const reach_prober *p);

/* Tests shorten the intervals above (0 keeps a value as it is). */
void reach_set_intervals(reach_prober *p, unsigned reprobe_min_ms, unsigned recheck_min_ms,
                         unsigned recheck_max_ms);

/* Closes every handle the prober owns (probes in flight are cancelled,
 * changed() is not called again) and frees it once the loop has run their
 * close callbacks, so uv_loop_close() returns 0 afterwards. NULL is
 * ignored. */
void reach_close(reach_prober *p);

/* Pure: the state a connect's result means. 0 and UV_ECONNREFUSED:
 * REACH_OK; UV_ETIMEDOUT, UV_EHOSTUNREACH, UV_ENETUNREACH, UV_EACCES,
 * UV_EPERM and anything else: REACH_UNREACHABLE. */
int reach_classify(int uv_err);

#endif
