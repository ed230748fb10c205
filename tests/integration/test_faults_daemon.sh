# Daemon faults (issue 15): loopholed killed with SIGKILL and started again
# with the same state directory, while the world changed under it. Against a
# private dockerd in a private network namespace (see private_engine.sh), so
# the netlink alias backend only touches that namespace's lo and the relay
# sidecars only that engine. test_stability.sh covers a clean (SIGTERM)
# restart and test_alias_netlink.sh a killed daemon whose container merely
# stopped; here containers are removed, stopped and started while the
# daemon is dead: the same addresses come back, the aliases on lo are
# exactly the wanted ones, leftover relay sidecars of removed targets are
# removed and the surviving target has exactly one relay per port; the
# daemon's descriptors and RSS end near the killed daemon's.
# shellcheck shell=bash
# The re-exec below makes shellcheck think every function unreachable:
# shellcheck disable=SC2317
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
need_root
# shellcheck source=tests/integration/private_engine.sh
. "$(dirname "$0")/private_engine.sh"
need_private_engine

LH_POOL=${LH_POOL:-127.0.81.2-127.0.81.254}
D=$LH_DOMAIN

# web NAME [DOCKER-RUN-ARGS...]: lh-fd-NAME-<run> serving "NAME-<run>" on 80,
# published; prints the id.
web() {
    local n=$1
    shift
    run_web "lh-fd-$n-$RUN_ID" "$n-$RUN_ID" --stop-timeout 1 -p 80 "$@" -- 80
}
served() {
    local a
    a=$(expect_address "lh-fd-$1-$RUN_ID.$D" 30)
    expect_http_says "$a" 80 "$1-$RUN_ID"
    echo "$a"
}
still_served() { expect_served "lh-fd-$1-$RUN_ID" "$2" "$1-$RUN_ID"; }

# kill_daemon: SIGKILL, nothing saved, nothing cleaned up.
kill_daemon() {
    local pid=$LH_DAEMON_PID
    kill -KILL "$pid" || fail "loopholed $pid was not running"
    lh_wait_exit "$pid" 10 || fail "loopholed $pid outlived SIGKILL"
    daemon_reap
    log "loopholed $pid killed (SIGKILL)"
}

# pool_aliases: the pool's addresses on this namespace's lo, sorted.
pool_aliases() {
    ip -4 -o addr show dev lo | awk '{print $4}' | sed -n 's|/32$||p' |
        while read -r a; do in_pool "$a" && echo "$a"; done | sort
}
# wanted_aliases: the addresses of the running containers the daemon lists.
wanted_aliases() {
    curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/containers 2>/dev/null |
        jq -r '.[] | select(.state == "running") | .ip // empty' 2>/dev/null | sort
}
# aliases_are ADDR...: lo holds exactly these pool addresses.
aliases_are() { [ "$(pool_aliases)" = "$(printf '%s\n' "$@" | sort)" ]; }
expect_aliases() {
    wait_for -t 20 aliases_are "$@" ||
        fail "the pool's addresses on lo should be [$*], are [$(pool_aliases | tr '\n' ' ')]"
    assert_eq "$(wanted_aliases)" "$(pool_aliases)" "lo's pool addresses against the running containers' addresses"
}

# Relay sidecars (host ports, issue 12).
relays_of() { pe ps -aq --no-trunc --filter "label=loophole.sidecar=$1" 2>/dev/null; }
relay_count() { relays_of "$1" | grep -c . || true; }
all_relays() { pe ps -aq --no-trunc --filter label=loophole.sidecar 2>/dev/null; }
relays_are() { [ "$(relay_count "$1")" = "$2" ]; }
ctr_get() { timeout 10 docker exec "$1" /bin/busybox wget -qO- "$2" 2>&1; }
ctr_gets() { [ "$(ctr_get "$1" "$2")" = "$3" ]; }
expect_host_port() { # expect_host_port CONTAINER PORT
    wait_for -t 30 ctr_gets "$1" "http://127.0.0.1:$2/marker" "marker-$RUN_ID" ||
        fail "wget of the host's port $2 inside $1: $(ctr_get "$1" "http://127.0.0.1:$2/marker")"
}
listening_tcp() { ss -Hltn src "$1:$2" 2>/dev/null | grep -q .; }

# ---- Parts --------------------------------------------------------------------

# The netlink alias backend: the daemon is killed with three containers
# served; while it is dead one is removed, one stopped and one started. The
# next start keeps the survivor's alias and address, removes the removed
# and the stopped container's aliases, adds the new one's, and gives the
# stopped one its address back when it starts again.
part_aliases() {
    pe_start
    ensure_image
    start_daemon --alias netlink
    web a >/dev/null
    web b >/dev/null
    web c >/dev/null
    a=$(served a)
    b=$(served b)
    c=$(served c)
    log "a -> $a, b -> $b, c -> $c"
    expect_aliases "$a" "$b" "$c"
    expect_registry_matches "before the SIGKILL"
    lh_baseline

    kill_daemon
    aliases_are "$a" "$b" "$c" || fail "the killed daemon's aliases changed: $(pool_aliases | tr '\n' ' ')"
    pe rm -f -v "lh-fd-c-$RUN_ID" >/dev/null || fail "docker rm c failed"
    pe stop -t 1 "lh-fd-b-$RUN_ID" >/dev/null || fail "docker stop b failed"
    web d >/dev/null

    start_daemon --alias netlink
    still_served a "$a"
    dd=$(served d)
    # b's address stays leased to it while it is stopped.
    assert_ne "$a" "$dd" "d took a's address"
    assert_ne "$b" "$dd" "d took the stopped b's address"
    expect_nxdomain "lh-fd-b-$RUN_ID.$D"
    expect_nxdomain "lh-fd-c-$RUN_ID.$D"
    expect_aliases "$a" "$dd"
    expect_registry_matches "after the daemon's SIGKILL and restart"

    pe start "lh-fd-b-$RUN_ID" >/dev/null || fail "docker start b failed"
    still_served b "$b"
    expect_aliases "$a" "$b" "$dd"
    expect_registry_matches "after b started again"
    # One container fewer than before the kill, and a fresh process: at most
    # the killed daemon's fds and RSS, within the margins.
    expect_resources "after the daemon's SIGKILL"
    stop_daemon
    no=$(pool_aliases)
    assert_eq "" "$no" "the pool's addresses left on lo after SIGTERM"
    log "ok"
}

# Relay sidecars (--host-ports-mode sidecar): the daemon is killed with two
# targets relayed; one target is removed while it is dead. The next start
# removes the removed target's leftover relay, keeps or replaces the other's
# (exactly one, running, working), and a SIGTERM then removes it.
part_sidecars() {
    pe_start
    ensure_image
    ensure_relay_image
    local P t1 t2 id1 id2 a1 a2 r1
    P=$(free_port)
    mkdir -p "$LH_TMP/www"
    echo "marker-$RUN_ID" >"$LH_TMP/www/marker"
    python3 -m http.server --bind 127.0.0.1 --directory "$LH_TMP/www" "$P" >>"$LH_TMP/http.log" 2>&1 &
    on_exit "kill $!"
    wait_for -t 10 listening_tcp 127.0.0.1 "$P" || fail "the host HTTP server did not start: $(cat "$LH_TMP/http.log")"

    start_daemon --host-ports-mode sidecar --sidecar-image "$LH_RELAY_IMAGE"
    t1=lh-fd-t1-$RUN_ID
    t2=lh-fd-t2-$RUN_ID
    id1=$(web t1 --label "loophole.host-ports=$P")
    id2=$(web t2 --label "loophole.host-ports=$P")
    a1=$(served t1)
    a2=$(served t2)
    expect_host_port "$t1" "$P"
    expect_host_port "$t2" "$P"
    wait_for -t 10 relays_are "$id1" 1 || fail "relays of t1: $(relays_of "$id1")"
    wait_for -t 10 relays_are "$id2" 1 || fail "relays of t2: $(relays_of "$id2")"
    r1=$(relays_of "$id1")
    expect_registry_matches "before the SIGKILL"
    lh_baseline

    kill_daemon
    # The killed daemon removed nothing.
    assert_eq 1 "$(relay_count "$id1")" "t1's relays after the SIGKILL"
    assert_eq 1 "$(relay_count "$id2")" "t2's relays after the SIGKILL"
    pe rm -f -v "$t2" >/dev/null || fail "docker rm t2 failed"

    start_daemon --host-ports-mode sidecar --sidecar-image "$LH_RELAY_IMAGE"
    still_served t1 "$a1"
    expect_nxdomain "$t2.$D"
    wait_for -t 30 relays_are "$id2" 0 ||
        fail "the removed t2's leftover relay was not removed: $(pe ps -a --filter "label=loophole.sidecar=$id2")"
    expect_host_port "$t1" "$P"
    wait_for -t 10 relays_are "$id1" 1 || fail "t1 should have one relay: $(pe ps -a --filter "label=loophole.sidecar=$id1")"
    assert_eq "$(relays_of "$id1")" "$(all_relays)" "the engine's relay containers"
    local r1b
    r1b=$(relays_of "$id1")
    assert_eq true "$(pe inspect -f '{{.State.Running}}' "$r1b")" "t1's relay is running"
    if [ "$r1b" = "$r1" ]; then log "t1's relay adopted: ${r1:0:12}"; else log "t1's relay replaced: ${r1:0:12} -> ${r1b:0:12}"; fi
    expect_registry_matches "after the daemon's SIGKILL and restart"
    assert_ne "$a1" "" "t1's address"
    [ -n "$a2" ] || fail "t2 had no address"
    expect_resources "after the daemon's SIGKILL"

    stop_daemon
    wait_for -t 10 relays_are "$id1" 0 || fail "t1's relay left after SIGTERM: $(relays_of "$id1")"
    log "ok"
}

run_parts
