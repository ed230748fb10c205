#!/usr/bin/env bash
# Container churn (issue 15): 100 containers started and removed concurrently
# in waves while a client loop resolves their names and connects to them. No
# crash; once it settles the registry equals `docker ps` for this run's
# containers, every running one resolves to the address it had and answers on
# its port, every removed or stopped one is NXDOMAIN, the daemon's listeners
# in the pool are exactly the running containers' ports, the pool counts
# exactly what is in use, no relay sidecar outlives its target, and the
# daemon's descriptors and RSS are back near where they started.
# shellcheck shell=bash
# jq filters name their $arguments inside single quotes:
# shellcheck disable=SC2016
# A pool of this test's own, wide enough for 100 containers and whatever
# other runs on the same engine start meanwhile (every daemon serves every
# container of the engine).
LH_POOL=${LH_POOL:-127.0.98.2-127.0.98.254}
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
for t in jq curl socat; do need_tool "$t"; done
# ASan's quarantine keeps up to 256 MB of freed memory resident, which would
# drown a leak in the RSS figure: keep it small so RSS follows live memory.
export ASAN_OPTIONS=$ASAN_OPTIONS:quarantine_size_mb=1

D=$LH_DOMAIN
WAVES=${CHURN_WAVES:-4}
SIZE=${CHURN_SIZE:-25}
# Per wave: KEEP containers stay to the end, STOPS are stopped and left
# (exited), the rest are removed; HP of them carry a host-ports label, so the
# daemon (in sidecar mode) runs a relay sidecar for each while it runs.
KEEP=5 STOPS=5 HP=2 WARM=25

# ---- Helpers ------------------------------------------------------------------

# fd_count: the daemon's open descriptors.
fd_count() { find "/proc/$LH_DAEMON_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# rss_kb: the daemon's resident set (VmRSS, kB).
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$LH_DAEMON_PID/status"; }

# daemon_listeners: "ADDR:PORT/tcp|udp" of every socket the daemon listens
# on (TCP) or has bound (UDP) inside the pool, sorted.
daemon_listeners() {
    local proto addr
    {
        ss -Hltnp 2>/dev/null | awk -v p="pid=$LH_DAEMON_PID," 'index($0, p) {print "tcp", $4}'
        ss -Hlunp 2>/dev/null | awk -v p="pid=$LH_DAEMON_PID," 'index($0, p) {print "udp", $4}'
    } | while read -r proto addr; do
        in_pool "${addr%:*}" && echo "$addr/$proto"
    done | sort
}

# sockets_held: how many listening/bound sockets the daemon holds (any
# address): other runs' containers come and go on the shared engine and each
# brings listeners, so descriptors are compared without them.
sockets_held() {
    { ss -Hltnp; ss -Hlunp; } 2>/dev/null | grep -c "pid=$LH_DAEMON_PID," || true
}
other_fds() { echo $(($(fd_count) - $(sockets_held))); }

api_containers() { curl -sf -m 5 --unix-socket "$LH_SOCK" http://x/v1/containers; }

# expected_listeners: what the registry says the daemon listens on: every
# running container's address and each port it proxies.
expected_listeners() {
    api_containers | jq -r '.[] | select(.state == "running" and .ip != null) | .ip as $ip
        | .ports[] | select(.mode == "direct" or .mode == "mapped")
        | "\($ip):\(.port)/\(.proto)"' | sort
}
listeners_match() { [ "$(daemon_listeners)" = "$(expected_listeners)" ]; }

# ours_registry: "NAME IP" of this run's containers the registry lists as
# running with an address; ours_docker: the names docker ps lists.
ours_registry() {
    api_containers | jq -r --arg r "$RUN_ID" '.[] | select(.container | endswith("-" + $r))
        | select(.state == "running" and .ip != null) | "\(.container) \(.ip)"' | sort
}
ours_docker() {
    docker ps --filter "label=loophole.test=$RUN_ID" --format '{{.Names}}' | sort
}
registry_matches_docker() {
    local reg
    reg=$(ours_registry) || return 1
    [ "$(awk '{print $1}' <<<"$reg")" = "$(ours_docker)" ]
}

pool_used() { status_field .pool.used; }
pool_matches() { [ "$(pool_used)" = "$(pool_used_expected)" ]; }

# sidecars_of ID: the relay sidecars (any state) the daemon made for ID.
sidecars_of() { docker ps -aq --filter "label=loophole.sidecar=$1"; }
running_sidecars_of() { docker ps -q --filter "label=loophole.sidecar=$1"; }
has_one_sidecar() { [ "$(running_sidecars_of "$1" | grep -c .)" -eq 1 ]; }
no_sidecar() { [ -z "$(sidecars_of "$1")" ]; }

# port_taken_by_other_daemon NAME: NAME's sidecar failed because its port
# was in use inside the container, and another loopholed runs: every daemon
# on the engine serves every container's host-ports label, and one in netns
# mode binds the port in the container's namespace before our sidecar can
# (only when tests run side by side; ctest runs them one at a time).
# The sidecar stays failed until the next engine connection, so a daemon
# that took the port and has exited since counts: client_loop notes every
# other loopholed it sees in $LH_TMP/others-seen.
other_daemons() { pgrep -x loopholed | grep -vx "$LH_DAEMON_PID" | grep -c . || true; }
port_taken_by_other_daemon() {
    { [ -e "$LH_TMP/others-seen" ] || [ "$(other_daemons)" -gt 0 ]; } &&
        ctr_field "$1" '.host_ports[].problem // empty' | grep -q "already in use"
}

# sidecar_settled NAME ID: one sidecar runs for it, or its host port has
# a problem.
sidecar_settled() {
    has_one_sidecar "$2" || ctr_field "$1" '.host_ports[].problem // empty' | grep -q .
}

# start_one NAME ARGS...: one web container serving its own name on port 80
# (run_web), its id in $LH_TMP/id-NAME; run in the background.
start_one() {
    local n=$1
    shift
    run_web "$n" "$n" "$@" -- 80 >"$LH_TMP/id-$n"
}

# The client loop: round-robin over every name started so far, resolve and
# GET /; counts what worked and what did not (failures are expected while
# containers come and go, so they are only logged).
client_loop() {
    local i=0 names n a dok=0 dfail=0 hok=0 hfail=0
    while [ ! -e "$LH_TMP/stop-clients" ]; do
        mapfile -t names <"$LH_TMP/names"
        if [ "${#names[@]}" -eq 0 ]; then
            sleep 0.1
            continue
        fi
        n=${names[$((i % ${#names[@]}))]}
        i=$((i + 1))
        [ "$(other_daemons)" -eq 0 ] || : >"$LH_TMP/others-seen"
        a=$(dig +short +time=1 +tries=1 @"$LH_DNS_IP" -p "$LH_DNS_PORT" "$n.$D" A 2>/dev/null | head -n1)
        if [ -z "$a" ]; then
            dfail=$((dfail + 1))
            continue
        fi
        dok=$((dok + 1))
        if [ "$(curl -sf -m 2 "http://$a:80/" 2>/dev/null)" = "$n" ]; then
            hok=$((hok + 1))
        else
            hfail=$((hfail + 1))
        fi
    done
    echo "$dok $dfail $hok $hfail" >"$LH_TMP/client-counts"
}

# ---- Parts --------------------------------------------------------------------

part_waves() {
    ensure_relay_image
    start_daemon --host-ports-mode sidecar --sidecar-image "$LH_RELAY_IMAGE"
    on_exit 'for f in "$LH_TMP"/id-*; do for s in $(docker ps -aq --filter label=loophole.sidecar=$(cat "$f")); do docker rm -f -v "$s"; done; done'
    wait_for control_up || fail "the control API does not answer"
    local fd0 rss0 w i n args pids keep=() stopped=() removed=() victims=() t0
    local -A first_ip=()
    # Warm-up: WARM containers started and removed, so that the start
    # figures include the allocator's and ASan's working set for a busy
    # registry (under ASan RSS climbs by some 20 MB over the first 25
    # containers, then grows by about 1 MB a wave).
    pids=()
    for i in $(seq 1 "$WARM"); do
        start_one "lh-ch-0-$i-$RUN_ID" --expose 80 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || fail "a warm-up docker run failed"; done
    expect_address "lh-ch-0-$WARM-$RUN_ID.$D" 30 >/dev/null
    # shellcheck disable=SC2046
    docker rm -f -v $(docker ps -q --filter "label=loophole.test=$RUN_ID") >/dev/null ||
        fail "removing the warm-up containers failed"
    wait_for -t 30 registry_matches_docker || fail "the warm-up containers stay in the registry"
    rm -f "$LH_TMP"/id-lh-ch-0-*
    dns_up || fail "DNS does not answer"
    fd0=$(other_fds) rss0=$(rss_kb)
    log "start (after a warm-up of $WARM): fds $(fd_count) ($fd0 besides listening sockets), RSS ${rss0} kB"

    : >"$LH_TMP/names"
    client_loop &
    local client=$!
    on_exit "touch $LH_TMP/stop-clients; kill $client"

    t0=$(now_ms)
    for w in $(seq 1 "$((WAVES + 1))"); do
        pids=()
        # Wave w starts while wave w-1's victims are removed or stopped.
        if [ "$w" -le "$WAVES" ]; then
            for i in $(seq 1 "$SIZE"); do
                n=lh-ch-$w-$i-$RUN_ID
                args=()
                # Half published (a docker-proxy each), half only exposed.
                if [ $((i % 2)) -eq 0 ]; then args+=(-p 80); else args+=(--expose 80); fi
                # One survivor and one victim per wave have host ports.
                [ "$i" -le "$HP" ] && args+=(--label "loophole.host-ports=$((9000 + i))")
                echo "$n" >>"$LH_TMP/names"
                start_one "$n" "${args[@]}" &
                pids+=($!)
            done
        fi
        for n in "${victims[@]}"; do
            if [ "${n#*-stop-}" != "$n" ]; then
                n=${n#*-stop-}
                docker stop -t 0 "$n" >/dev/null &
                stopped+=("$n")
            else
                docker rm -f -v "$n" >/dev/null &
                removed+=("$n")
            fi
            pids+=($!)
        done
        for i in "${pids[@]}"; do
            wait "$i" || fail "a docker run, stop or rm of wave $w failed"
        done
        daemon_alive || fail "loopholed died during wave $w"
        [ "$w" -le "$WAVES" ] || break
        # The survivors' addresses, to be unchanged at the end (the churn
        # of the next waves must not move them).
        for i in 1 $(seq $((HP + 1)) $((HP + KEEP - 1))); do
            n=lh-ch-$w-$i-$RUN_ID
            first_ip[$n]=$(expect_ctr_ip "$n")
        done
        # Keep the first KEEP (1 with host ports), stop the next STOPS, remove
        # the rest (1 with host ports).
        victims=()
        for i in $(seq 1 "$SIZE"); do
            n=lh-ch-$w-$i-$RUN_ID
            if [ "$i" -eq 1 ] || { [ "$i" -gt "$HP" ] && [ "$i" -le $((HP + KEEP - 1)) ]; }; then
                keep+=("$n")
            elif [ "$i" -gt $((HP + KEEP - 1)) ] && [ "$i" -le $((HP + KEEP + STOPS - 1)) ]; then
                victims+=("-stop-$n")
            else
                victims+=("$n")
            fi
        done
        log "wave $w: $SIZE started, $(($(now_ms) - t0)) ms so far; fds $(fd_count), RSS $(rss_kb) kB"
    done
    log "churn done in $(($(now_ms) - t0)) ms: ${#keep[@]} kept, ${#stopped[@]} stopped, ${#removed[@]} removed"
    touch "$LH_TMP/stop-clients"
    wait "$client"
    local counts
    read -r -a counts <"$LH_TMP/client-counts"
    log "client loop during churn: DNS ${counts[0]} answered, ${counts[1]} not; HTTP ${counts[2]} ok, ${counts[3]} failed"
    daemon_alive || fail "loopholed died during the churn"

    # Settled: the registry equals docker ps for this run.
    wait_for -t 30 registry_matches_docker ||
        fail "registry and docker ps differ: registry '$(ours_registry | tr '\n' ' ')', docker ps '$(ours_docker | tr '\n' ' ')'"
    assert_eq "${#keep[@]}" "$(ours_docker | grep -c .)" "running containers of this run"
    log "registry settled $(($(now_ms) - t0)) ms after the churn began"

    # Every survivor resolves to its registry address, a distinct one, and
    # answers with its own page there.
    local reg ip ips=()
    reg=$(ours_registry)
    for n in "${keep[@]}"; do
        ip=$(awk -v n="$n" '$1 == n {print $2}' <<<"$reg")
        [ -n "$ip" ] || fail "$n is running but has no address in the registry"
        in_pool "$ip" || fail "$n -> $ip is outside $LH_POOL"
        assert_eq "${first_ip[$n]}" "$ip" "$n's address after the churn (it had ${first_ip[$n]})"
        assert_eq "$ip" "$(expect_address "$n.$D")" "$n resolves to its registry address"
        expect_http_says "$ip" 80 "$n"
        ips+=("$ip")
    done
    assert_eq "${#keep[@]}" "$(printf '%s\n' "${ips[@]}" | sort -u | grep -c .)" \
        "distinct addresses of the running containers"

    # No stale answer: every stopped or removed container is NXDOMAIN.
    for n in "${stopped[@]}" "${removed[@]}"; do
        is_nxdomain "$n.$D" || fail "$n is gone but $n.$D answers $(rcode "$n.$D") $(resolve "$n.$D" | tr '\n' ' ')"
    done
    # The registry lists running containers only (docker ps, not ps -a).
    local listed
    listed=$(api_containers | jq -r '.[].container') || fail "GET /v1/containers failed"
    for n in "${stopped[@]}" "${removed[@]}"; do
        grep -qxF -- "$n" <<<"$listed" && fail "$n is gone but still in the registry: $(ctr_json "$n")"
    done

    # No leaked listener: in the pool, the daemon listens on exactly the
    # running containers' proxied ports (of every run on this engine).
    wait_for -t 20 listeners_match ||
        fail "listeners in the pool differ from the registry: listening '$(daemon_listeners | tr '\n' ' ')', expected '$(expected_listeners | tr '\n' ' ')'"
    for ip in "${ips[@]}"; do
        grep -qx "$ip:80/tcp" <<<"$(daemon_listeners)" || fail "no listener on $ip:80"
    done
    # No leaked address (aliases are off in tests, so the pool's own count):
    # pool use equals the addresses running containers and leases hold.
    wait_for -t 20 pool_matches ||
        fail "pool.used $(pool_used), but running containers and leases hold $(pool_used_expected)"
    assert_eq 0 "$(status_field .alias.count)" "aliases with --alias off"

    # No leaked sidecar: one for each running container with host ports,
    # none for a stopped or removed one.
    local id sc=0
    for n in "${keep[@]}"; do
        id=$(cat "$LH_TMP/id-$n")
        if [ "${n#lh-ch-*-}" = "1-$RUN_ID" ]; then # the survivor with host ports
            wait_for -t 30 sidecar_settled "$n" "$id" || true
            if has_one_sidecar "$id"; then
                sc=$((sc + 1))
            elif port_taken_by_other_daemon "$n"; then
                log "$n: another loopholed on this engine took its host port first (not ours to judge)"
            else
                fail "running $n with host ports should have one sidecar: $(docker ps -a --filter "label=loophole.sidecar=$id" --format '{{.Names}} {{.Status}}'), $(ctr_field "$n" .host_ports)"
            fi
        else
            no_sidecar "$id" || fail "$n has no host ports but a sidecar"
        fi
    done
    # Of the gone ones, none has a sidecar left (any state): one listing of
    # every container's sidecar label.
    gone_sidecars() {
        local targets
        targets=$(docker ps -a --filter label=loophole.sidecar --format '{{.Label "loophole.sidecar"}}')
        for n in "${stopped[@]}" "${removed[@]}"; do
            grep -qxF -- "$(cat "$LH_TMP/id-$n")" <<<"$targets" && echo "$n"
        done
        return 0
    }
    no_gone_sidecars() { [ -z "$(gone_sidecars)" ]; }
    wait_for -t 30 no_gone_sidecars || fail "gone containers left sidecars: $(gone_sidecars | tr '\n' ' ')"
    assert_eq "$sc" "$(status_field .host_ports.sidecars)" "sidecars in /v1/status"
    log "sidecars: $sc running, none left for gone containers; checks done $(($(now_ms) - t0)) ms after the churn began"

    # Descriptors besides listening sockets within +16 of the start (a few
    # in-flight Docker and control requests); RSS within +24 MB of the start
    # (ASan's shadow memory and its 1 MB quarantine, allocator caches).
    local fd1 rss1
    fds_settled() { [ "$(other_fds)" -le $((fd0 + 16)) ]; }
    wait_for -t 20 fds_settled || true
    fd1=$(other_fds) rss1=$(rss_kb)
    log "end: fds $(fd_count) ($fd1 besides listening sockets, start $fd0), RSS ${rss1} kB (start ${rss0} kB)"
    [ "$fd1" -le $((fd0 + 16)) ] || fail "descriptors grew from $fd0 to $fd1 (besides listening sockets): $(find "/proc/$LH_DAEMON_PID/fd" -mindepth 1 -printf '%f -> %l\n' | tail -n 40)"
    [ "$rss1" -le $((rss0 + 24 * 1024)) ] || fail "RSS grew from ${rss0} kB to ${rss1} kB"

    stop_daemon
    log "ok"
}

run_parts
