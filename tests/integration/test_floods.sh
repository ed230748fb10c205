# Floods against the proxies (issue 15): 2,000 UDP client addresses at one
# proxied UDP port, 1,000 idle TCP connections at one proxied TCP port, and
# 300 clients against a daemon whose descriptor limit is 512. Throughout,
# the control API and DNS keep answering; the caps turn the excess away and
# count it; once the flood ends (or the idle timeout closes it) the proxies
# serve new clients again and the daemon's descriptors are back where they
# were.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
for t in redis-server redis-cli jq python3; do need_tool "$t"; done

# A pool of this test's own: other daemons on this engine serve 127.0.77.x.
LH_POOL=127.0.95.2-127.0.95.254
D=$LH_DOMAIN

# ---- Helpers -----------------------------------------------------------------

daemon_fds() { ls "/proc/$LH_DAEMON_PID/fd" 2>/dev/null | wc -l; }

# status_field JQ-PATH: one field of GET /v1/status.
status_field() { curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/status | jq -r "$1"; }

# answering: the control API and DNS both answer, each within 3 s.
answering() { control_up && dns_up; }

# fds_back BASE: the daemon holds at most 16 descriptors more than BASE
# (a Docker request or a DNS client in flight).
fds_back() { [ "$(daemon_fds)" -le $(($1 + 16)) ]; }

# watch_while PID: while PID runs, the control API and DNS must answer
# every round; prints the number of rounds, fails at the first miss.
watch_while() {
    local n=0
    while ! lh_exited "$1"; do
        answering || fail "the control API or DNS stopped answering during the flood (round $n)"
        n=$((n + 1))
    done
    echo "$n"
}

redis_args=(--port 6379 --bind 0.0.0.0 --protected-mode no --save '' --appendonly no
    --maxclients 4000)
redis_ctr() { run_host_server --name "lh-$1-$RUN_ID" -p 6379 -- /usr/bin/redis-server "${redis_args[@]}" >/dev/null; }
pong() { [ "$(timeout 3 redis-cli -h "$1" -p 6379 PING 2>/dev/null)" = PONG ]; }

# ---- Parts -------------------------------------------------------------------

# 2,000 client addresses at a UDP port with a cap of 500 sessions: the rest
# is dropped and counted, the sessions idle out, a new client is served.
part_udp_clients() {
    # Sessions idle out after 4 s: none made by the 2 s flood expires
    # before it ends, so exactly 500 are made.
    start_daemon --udp-max-sessions 500 --udp-idle-s 4
    # One process answering every client (socat's fork would make one per
    # client address): peer.py, run by python3 from the host's /usr.
    run_host_server --name "lh-udp-$RUN_ID" -p 9999/udp -v "$LH_PEER:/peer.py:ro" -- \
        /usr/bin/python3 /peer.py udp echo-server --port 9999 >/dev/null
    local u
    u=$(expect_address "lh-udp-$RUN_ID.$D")
    wait_for -t 20 udp_echo "$u" 9999 "warm-$RUN_ID" || fail "no UDP echo through $u:9999"
    # The warm-up's sessions gone first, so that all 500 are the flood's.
    idle() { [ "$(port_json "lh-udp-$RUN_ID" 9999 udp | jq -r .connections.active)" = 0 ]; }
    wait_for -t 15 idle || fail "the warm-up's UDP sessions did not expire"
    local base total0
    base=$(daemon_fds)
    total0=$(port_json "lh-udp-$RUN_ID" 9999 udp | jq -r .connections.total)

    # Each client a socket of its own (a new source port), sending once,
    # 2,000 of them over about two seconds (peer.py flood udp).
    peer flood udp "$u" 9999 --clients 2000 --batch 100 --pause 0.1 &
    local flood=$! rounds
    rounds=$(watch_while "$flood")
    wait "$flood" || fail "the UDP flood client failed"
    log "control and DNS answered $rounds rounds during the UDP flood"
    local capped
    capped=$(port_json "lh-udp-$RUN_ID" 9999 udp | jq -r .connections.capped)
    [ "${capped:-0}" -gt 0 ] || fail "no datagram counted as capped at the port: $(port_json "lh-udp-$RUN_ID" 9999 udp)"
    [ "$(status_field .limits.capped)" -ge "$capped" ] || fail "status limits.capped below the port's"
    [ "$(status_field .limits.udp_max_sessions)" = 500 ] || fail "udp_max_sessions not 500"
    local total
    total=$(port_json "lh-udp-$RUN_ID" 9999 udp | jq -r .connections.total)
    assert_eq 500 "$((total - total0))" "sessions made for 2,000 clients at a cap of 500"
    log_has "udp: .*sessions here, at this port's session cap" || fail "no log line about the session cap"
    [ "$(log_count "udp: .*sessions here")" -le 2 ] || fail "the session cap is logged more than once a minute"

    # The sessions idle out (4 s), and the proxy serves a new client.
    wait_for -t 15 idle || fail "UDP sessions did not expire: $(port_json "lh-udp-$RUN_ID" 9999 udp)"
    wait_for -t 10 udp_echo "$u" 9999 "after-$RUN_ID" || fail "no UDP echo after the flood"
    wait_for -t 10 fds_back "$base" || fail "daemon holds $(daemon_fds) descriptors, $base before the flood"
    log "UDP flood: $total sessions made, $capped datagrams capped; fds $base -> $(daemon_fds)"
    stop_daemon
}

# 1,000 idle TCP connections at a port capped at 600: 600 are relayed, 400
# turned away at once; the idle timeout (5 s) closes the 600, and the port
# serves again.
part_idle_tcp() {
    start_daemon --max-conns-per-port 600 --tcp-idle-s 5
    redis_ctr idle
    local a
    a=$(expect_address "lh-idle-$RUN_ID.$D")
    wait_for -t 20 pong "$a" || fail "no PONG from $a:6379"
    local base
    base=$(daemon_fds)

    # Opens 1,000 connections, each at once asked for a PONG (relayed) or
    # seen closed by the proxy (turned away), then holds the relayed ones,
    # silent, until the proxy closes them too; prints "relayed turned_away
    # closed_idle".
    peer flood tcp-idle "$a" 6379 --count 1000 --idle-wait 20 >"$LH_TMP/idle.out" &
    local flood=$! rounds
    rounds=$(watch_while "$flood")
    wait "$flood" || fail "the TCP flood client failed: $(cat "$LH_TMP/idle.out")"
    local relayed away closed
    read -r relayed away closed <"$LH_TMP/idle.out"
    log "TCP flood: $relayed relayed, $away turned away, $closed closed idle; $rounds answering rounds"
    assert_eq 600 "$relayed" "connections relayed at a cap of 600"
    assert_eq 400 "$away" "connections turned away beyond the cap"
    assert_eq 600 "$closed" "relayed connections closed by the idle timeout"
    local pj
    pj=$(port_json "lh-idle-$RUN_ID" 6379 tcp)
    [ "$(jq -r .connections.capped <<<"$pj")" -ge 400 ] || fail "capped not counted: $pj"
    [ "$(jq -r .connections.idle_closed <<<"$pj")" -ge 600 ] || fail "idle closes not counted: $pj"
    [ "$(status_field .limits.idle_closed)" -ge 600 ] || fail "status limits.idle_closed below 600"
    log_has "tcp: .*connections open here, at the connection cap of this port" ||
        fail "no log line about the connection cap"
    wait_for -t 10 pong "$a" || fail "no PONG from $a:6379 after the flood"
    wait_for -t 10 fds_back "$base" || fail "daemon holds $(daemon_fds) descriptors, $base before the flood"
    stop_daemon
}

# A daemon started with 512 descriptors derives its caps from them (53
# connections, loopholed(8) LIMITS); 300 clients at once get 53 relayed and
# the rest turned away, while Docker, DNS and the control API keep working:
# a container started during the flood gets its name.
part_low_fd_limit() {
    # The daemon raises its soft limit to the hard one: lower both.
    local wrap=$LH_TMP/loopholed-512
    printf '#!/bin/sh\nulimit -n 512 || exit 99\nexec %s "$@"\n' "$LOOPHOLED" >"$wrap"
    chmod +x "$wrap"
    local real=$LOOPHOLED
    LOOPHOLED=$wrap
    start_daemon
    LOOPHOLED=$real
    assert_eq 512 "$(status_field .limits.descriptors)" "descriptor limit seen by the daemon"
    assert_eq 53 "$(status_field .limits.max_conns)" "derived max_conns for 512 descriptors"
    assert_eq 53 "$(status_field .limits.max_conns_per_port)" "derived max_conns_per_port"
    redis_ctr low
    local a
    a=$(expect_address "lh-low-$RUN_ID.$D")
    wait_for -t 20 pong "$a" || fail "no PONG from $a:6379"
    local base
    base=$(daemon_fds)

    # 300 clients connect at once, each holds until told to stop (a file).
    peer flood tcp-hold "$a" 6379 --count 300 --stop "$LH_TMP/stop" --hold 60 >"$LH_TMP/low.out" &
    local flood=$!
    held_known() { [ -s "$LH_TMP/low.out" ]; }
    wait_for -t 30 held_known || fail "the 300 clients did not finish connecting"
    assert_eq 53 "$(cat "$LH_TMP/low.out")" "clients relayed under 512 descriptors"
    # Everything else keeps working while the proxies are full.
    answering || fail "control API or DNS not answering with the proxies full"
    run_ctr --name "lh-late-$RUN_ID" -p 80 "$LH_IMAGE" httpd -f -p 80 >/dev/null
    expect_address "lh-late-$RUN_ID.$D" >/dev/null
    [ "$(status_field .limits.capped)" -ge 247 ] || fail "turned-away clients not counted"
    log "512 descriptors: $(cat "$LH_TMP/low.out") of 300 relayed, $(status_field .limits.capped) turned away"
    touch "$LH_TMP/stop"
    wait "$flood" || fail "the held clients' program failed"
    wait_for -t 10 pong "$a" || fail "no PONG from $a:6379 after the clients left"
    not log_has "too many open files" || fail "the daemon ran out of descriptors: $(grep -i 'too many open files' "$LH_LOG" | head -n3)"
    wait_for -t 10 fds_back "$((base + 2))" || fail "daemon holds $(daemon_fds) descriptors, $base before the flood"
    stop_daemon
}

run_parts "$0"
