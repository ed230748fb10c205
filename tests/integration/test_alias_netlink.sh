# The netlink alias backend, inside a private network namespace so the host's
# lo is never touched: addresses appear as /32 on lo when a container gets one,
# go when it stops, all go on SIGTERM, and leftovers of a killed daemon are
# removed at the next start. The Docker socket is a file, so it is reachable
# from the new namespace.
if [ -z "${LH_IN_NETNS:-}" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: needs root" >&2
        exit 77
    fi
    command -v unshare >/dev/null || {
        echo "FAIL: unshare is missing" >&2
        exit 1
    }
    exec unshare -n env LH_IN_NETNS=1 bash "$0" "$@"
fi

# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine

ip link set lo up || fail "ip link set lo up failed in the private namespace"
LH_POOL=127.0.78.2-127.0.78.254
D=$LH_DOMAIN

lo_has() { lo_has_addr "$1"; }
lo_pool_addrs() { ip -4 -o addr show dev lo | grep -o ' 127\.0\.78\.[0-9]*/32' | tr -d ' '; }
no_pool_addrs() { [ -z "$(lo_pool_addrs)" ]; }

# Other containers on the engine get addresses too, so only ours are checked
# by address; after SIGTERM none at all may be left.
start_daemon --alias netlink

run_ctr --name "lh-alias-a-$RUN_ID" -p 80 "$LH_IMAGE" httpd -f -p 80 >/dev/null
run_ctr --name "lh-alias-b-$RUN_ID" -p 80 "$LH_IMAGE" httpd -f -p 80 >/dev/null
a=$(expect_address "lh-alias-a-$RUN_ID.$D")
b=$(expect_address "lh-alias-b-$RUN_ID.$D")
wait_for lo_has "$a" || fail "$a/32 never appeared on lo: $(ip -4 -o addr show dev lo)"
wait_for lo_has "$b" || fail "$b/32 never appeared on lo: $(ip -4 -o addr show dev lo)"
log "lo has $a and $b"

docker stop -t 1 "lh-alias-a-$RUN_ID" >/dev/null || fail "docker stop failed"
wait_for not lo_has "$a" || fail "$a/32 is still on lo after its container stopped"
lo_has "$b" || fail "$b/32 went away with the other container"

stop_daemon
no_pool_addrs || fail "addresses left on lo after SIGTERM: $(lo_pool_addrs)"

# A killed daemon leaves its aliases; the next start removes those it no
# longer needs (recorded in the state file) and keeps the others.
start_daemon --alias netlink
wait_for lo_has "$b" || fail "$b/32 not restored after a daemon restart"
docker start "lh-alias-a-$RUN_ID" >/dev/null || fail "docker start failed"
wait_for lo_has "$a" || fail "$a/32 not back after docker start"
kill -KILL "$LH_DAEMON_PID"
daemon_reap
docker stop -t 1 "lh-alias-a-$RUN_ID" >/dev/null || fail "docker stop failed"
lo_has "$a" || fail "$a/32 vanished although the daemon was killed"
start_daemon --alias netlink
wait_for not lo_has "$a" || fail "the leftover $a/32 of the killed daemon was not removed at start"
wait_for lo_has "$b" || fail "$b/32 (running container) missing after the restart"
stop_daemon
no_pool_addrs || fail "addresses left on lo after SIGTERM: $(lo_pool_addrs)"
log "ok"
