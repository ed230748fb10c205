#!/usr/bin/env bash
# Hostile clients (issue 15), against the real daemon and engine: slowloris,
# garbage, huge headers and never-ending requests on the control socket from
# two users at once, past the client cap; slowloris, garbage and stalled
# length prefixes on DNS over TCP; a few thousand random and malformed DNS
# packets (compression loops, truncated records, lying counts, long labels
# and names) over UDP and TCP; and clients that never read on a proxied
# connection. During each attack the daemon keeps answering other clients;
# after it, the control API and DNS answer, this run's containers in the
# registry match `docker ps`, each resolves and accepts on its port, and the
# daemon's fds (and, for the proxy, RSS) are back near where they were.
#
# The daemon has no flags for its control and DNS deadlines (control.h,
# dns_server.c: 10 s each), so the control part asserts concurrent answering
# under the attack rather than waiting deadlines out; the DNS part waits for
# the 10 s per-message deadline once, since that cut is what frees the TCP
# slots. Each part runs its own daemon.
# shellcheck shell=bash
# Parts and wait_for callbacks are called indirectly:
# shellcheck disable=SC2317
# jq filters name their $arguments inside single quotes:
# shellcheck disable=SC2016

# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
for t in jq curl python3 setpriv; do need_tool "$t"; done
# ASan's quarantine keeps up to 256 MB of freed memory resident, which would
# drown the RSS comparison; a small one still catches use-after-free of
# recent frees.
export ASAN_OPTIONS=$ASAN_OPTIONS:quarantine_size_mb=8
# nobody must reach the control socket (the temporary directory is 0700).
chmod o+x "$LH_TMP"
# The attackers' python (they run as other users): root's may live under
# /root (pyenv).
SYS_PY=/usr/bin/python3
[ -x "$SYS_PY" ] || fail "missing $SYS_PY (nobody runs the control attacker with it)"

# ---- Shared checks ----------------------------------------------------------

# shellcheck source=tests/integration/fault_checks.sh
. "$(dirname "$0")/fault_checks.sh"

# expect_recovered LABEL: the issue's checks after an attack; every
# container keeps the address it had.
expect_recovered() {
    local label=$1 c
    daemon_alive || fail "$label: the daemon died"
    wait_for -t 10 control_up || fail "$label: the control API does not answer"
    wait_for -t 10 dns_up || fail "$label: DNS over UDP does not answer"
    wait_for -t 10 dns_tcp_up || fail "$label: DNS over TCP does not answer"
    wait_for -t 20 registry_matches_docker ||
        fail "$label: registry ($(run_registry_ids | tr '\n' ' ')) != docker ps ($(run_docker_ids | tr '\n' ' '))"
    for c in "${!ADDR[@]}"; do
        wait_for -t 10 ctr_ok "$c" || fail "$label: $c does not resolve and accept: $(ctr_json "$c")"
        assert_eq "${ADDR[$c]}" "$(ctr_ip "$c")" "$label: address of $c"
    done
    wait_for -t 15 fds_near || fail "$label: daemon fds $(daemon_fds), were $FD0 (margin +16)"
    no_sanitizer_report "$label"
    log "$label: recovered ($(daemon_fds) fds, RSS $(daemon_rss_kb) kB)"
}

no_sanitizer_report() {
    if log_has 'AddressSanitizer|UndefinedBehaviorSanitizer|runtime error:'; then
        fail "$1: a sanitizer report in the daemon log"
    fi
}

# answers NAME IP: NAME resolves to IP over UDP within 3 s (dig's 1 s per
# try, retried: the machine running the suite may be busy with other tests;
# a daemon starved by an attack misses it by far).
answers() { wait_for -t 3 resolves_to "$1" "$2"; }

dns_tcp_up() {
    dig +tcp +short +time=2 +tries=1 @"$LH_DNS_IP" -p "$LH_DNS_PORT" "$LH_DOMAIN" SOA 2>/dev/null | grep -q .
}

# web SUFFIX [DOCKER-RUN-ARGS...]: a container $RUN_ID-SUFFIX with httpd on
# port 80 (published); waits for its address and remembers it.
web() {
    local n=$RUN_ID-$1
    shift
    run_web "$n" "hello" -p 80 "$@" -- 80 >/dev/null
    ADDR[$n]=$(expect_ctr_ip "$n")
    wait_for -t 20 ctr_ok "$n" || fail "$n does not resolve and accept: $(ctr_json "$n")"
}

# setup: a daemon and one container, and the baseline.
setup() {
    start_daemon
    web a
    CTR_NAME=$(ctr_field "$RUN_ID-a" .name)
    CTR_IP=$(ctr_ip "$RUN_ID-a")
    baseline
}

# stop_attack TAG PID: tells the attacker to stop (TAG.stop), waits for it
# and shows its report (TAG.out).
stop_attack() {
    : >"$1.stop"
    wait "$2" || fail "the attacker $1 failed: $(cat "$1.out")"
    log "$(basename "$1"): $(cat "$1.out")"
}

# ---- The attackers ---------------------------------------------------------------

# peer.py attack control|dns-tcp|dns-fuzz|no-read (see `peer attack WHAT
# --help`): the control socket attacker (slowloris, garbage, huge headers,
# endless bodies; reconnects at most once per PACE s), the DNS-over-TCP one
# (trickled, garbage and stalled messages; writes TAG.ready and, once the
# daemon has cut them all, TAG.cut), the DNS fuzzer (malformed queries,
# responses and random bytes over UDP and TCP, fenced by real queries; exit
# 1 with BAD lines on a violation; gives up after 150 s) and clients that
# never read. The others stop at TAG.stop (or after 60 s). Run in the
# background through the shell function `peer`, the PID is a subshell's:
# the cleanup ends its python3 child too.
kill_bg() { pkill -P "$1"; kill "$1"; }

# ---- Control socket ------------------------------------------------------------------

# as_uid UID CMD...: CMD with that uid and gid and no supplementary groups
# (no user database entry needed).
as_uid() { setpriv --reuid="$1" --regid="$1" --clear-groups -- "${@:2}"; }

# control_attack PACE LABEL: five users (root, nobody and three uids without
# a name) with 60 connections each: past each uid's share (16) and,
# together, past the global ceiling (64); each reconnects when the daemon
# closes one of its connections, at most once per PACE seconds (0: at once).
# One user's flood only costs that user its own connections (control.c), so
# the requests checked under the attack come from a sixth uid (root's own
# may be evicted by root's flood): 20 status requests in a row, each
# answered (curl gives each 5 s), and DNS over UDP each time (answers).
control_attack() {
    local pace=$1 label=$2 d=$LH_TMP/attack u pids=() tags=()
    mkdir -p "$d"
    chmod 777 "$d"
    # A copy every uid can read (the source tree may be under /root).
    install -m 0755 "$LH_PEER" "$d/peer.py"
    for u in 0 65534 40001 40002 40003; do
        as_uid "$u" "$SYS_PY" "$d/peer.py" attack control "$LH_SOCK" 60 "$d/ctl-$u" "$pace" \
            >"$d/ctl-$u.out" 2>&1 &
        pids+=($!)
        tags+=("$d/ctl-$u")
        on_exit "kill $!"
    done
    for u in "${tags[@]}"; do
        wait_for -t 20 test -s "$u.ready" || fail "attacker $u could not connect: $(cat "$u.out")"
    done

    local i st
    for i in $(seq 1 20); do
        st=$(as_uid 40100 curl -sS -m 5 --unix-socket "$LH_SOCK" -o - -w '\n%{http_code}' \
            http://x/v1/status 2>"$LH_TMP/curl.err")
        assert_eq 200 "${st##*$'\n'}" "$label: GET /v1/status $i from a quiet user ($(cat "$LH_TMP/curl.err"))"
        jq -e '.version and .uptime_s != null' <<<"${st%$'\n'*}" >/dev/null ||
            fail "$label: GET /v1/status $i: not a status: $(head -c 300 <<<"$st")"
        answers "$CTR_NAME" "$CTR_IP" || fail "$label: $CTR_NAME does not resolve (UDP, 3 s) during query $i"
    done
    st=$(as_uid 40100 curl -s -m 5 --unix-socket "$LH_SOCK" http://x/v1/containers 2>/dev/null)
    jq -e --arg n "$RUN_ID-a" 'any(.[]; .container == $n)' <<<"$st" >/dev/null ||
        fail "$label: GET /v1/containers does not list $RUN_ID-a: $(head -c 300 <<<"$st")"
    daemon_alive || fail "$label: the daemon died"

    # The caps closed connections: each attacker held more than its share.
    local closed
    for i in "${!tags[@]}"; do
        stop_attack "${tags[$i]}" "${pids[$i]}"
        closed=$(sed -n 's/^opened [0-9]*, closed by the daemon \([0-9]*\)$/\1/p' "${tags[$i]}.out")
        [ -n "$closed" ] || fail "${tags[$i]}: no report: $(cat "${tags[$i]}.out")"
        [ "$closed" -ge 44 ] || fail "${tags[$i]}: only $closed of 60 connections closed by the daemon (16 per uid)"
    done
    # Root's requests are answered again once the flood is over.
    assert_eq 200 "$(ctl_http GET /v1/status "$LH_TMP/status.json")" "$label: GET /v1/status as root after it"
    expect_recovered "$label"
}

# as_uid UID CMD...: CMD with that uid and gid and no supplementary groups
# (no user database entry needed).

# Slowloris: trickled requests, a reconnect at most every 20 ms per user.
part_control_slowloris() {
    setup
    control_attack 0.02 "control socket slowloris"
    stop_daemon
}

# The same with reconnects at once: every eviction is answered by a new
# connection, so the daemon accepts and evicts as fast as it can.
part_control_flood() {
    setup
    control_attack 0 "control socket flood"
    stop_daemon
}

# ---- DNS over TCP -----------------------------------------------------------------------

part_dns_tcp() {
    setup
    wait_for -t 5 dns_tcp_up || fail "DNS over TCP does not answer before the attack"
    # 72 connections (the TCP cap is 64): slots trickled, garbage, stalled.
    local t=$LH_TMP/dnstcp
    peer attack dns-tcp "$LH_DNS_IP" "$LH_DNS_PORT" 72 "$t" >"$t.out" 2>&1 &
    local pid=$!
    on_exit "kill_bg $pid"
    wait_for -t 20 test -s "$t.ready" || fail "the DNS TCP attacker could not connect: $(cat "$t.out")"

    # UDP is answered throughout, until the daemon has cut every attacker:
    # the per-message deadline (10 s from a message's first byte, not
    # extended by partial reads) frees the slots, and a client that sends
    # nothing at all waits at most the idle time (10 s).
    local n=0 deadline=$(($(now_ms) + 30000))
    while [ ! -s "$t.cut" ]; do
        answers "$CTR_NAME" "$CTR_IP" || fail "UDP query $n under the TCP attack: $(rcode "$CTR_NAME")"
        n=$((n + 1))
        [ "$(now_ms)" -lt "$deadline" ] ||
            fail "the daemon did not cut the trickling DNS TCP clients within 30 s: $(cat "$t.out")"
        daemon_alive || fail "the daemon died under the DNS TCP attack"
    done
    log "$n UDP queries answered during the attack"
    [ "$n" -ge 3 ] || fail "only $n UDP queries during the attack"
    # The attacker is still running (it never reconnects): TCP answers now.
    wait_for -t 5 dns_tcp_up || fail "DNS over TCP does not answer after the attack"
    [ "$(dig +tcp +short +time=2 +tries=1 @"$LH_DNS_IP" -p "$LH_DNS_PORT" "$CTR_NAME" A)" = "$CTR_IP" ] ||
        fail "$CTR_NAME over TCP after the attack"
    stop_attack "$t" "$pid"
    grep -q 'still open 0;' "$t.out" || fail "attackers left open: $(cat "$t.out")"
    # Every trickled query was cut before it was complete (a deadline that
    # partial reads extended would have let each finish and be answered).
    grep -q 'slow cut mid-message 24; answered 0$' "$t.out" ||
        fail "trickled queries were not cut mid-message: $(cat "$t.out")"
    expect_recovered "DNS over TCP attack"
    stop_daemon
}

# ---- Random and malformed DNS packets ------------------------------------------------

part_dns_malformed() {
    setup
    local seed=$RANDOM
    log "fuzz seed $seed"
    peer attack dns-fuzz "$LH_DNS_IP" "$LH_DNS_PORT" "$CTR_NAME" "$CTR_IP" "$seed" 3000 300 \
        >"$LH_TMP/fuzz.out" 2>&1 ||
        fail "DNS fuzz (seed $seed): $(cat "$LH_TMP/fuzz.out")"
    log "$(cat "$LH_TMP/fuzz.out")"
    grep -q 'FORMERR' "$LH_TMP/fuzz.out" || fail "no FORMERR answer at all: $(cat "$LH_TMP/fuzz.out")"
    expect_recovered "malformed DNS"
    stop_daemon
}

# ---- A client that never reads on a proxied connection ---------------------------------

# port80 CONTAINER-NAME FILTER: FILTER applied to its port 80 in GET
# /v1/containers (e.g. .connections.active).
port80() { ctr_field "$1" "first(.ports[] | select(.port == 80 and .proto == \"tcp\")) | $2"; }
# bytes_settled CONTAINER-NAME: the port's byte counters did not move since
# the last call (the non-readers' buffers are full).
bytes_settled() {
    local now
    now=$(port80 "$1" '"\(.bytes.in) \(.bytes.out)"')
    [ -n "$now" ] || return 1
    [ "$now" = "$(cat "$LH_TMP/bytes.last" 2>/dev/null)" ] && return 0
    echo "$now" >"$LH_TMP/bytes.last"
    return 1
}
active_is() { [ "$(port80 "$1" .connections.active)" = "$2" ]; }

part_proxy_no_read() {
    setup
    local n=$RUN_ID-a www=$LH_TMP/www-$RUN_ID-a t=$LH_TMP/noread
    # 4 GiB of zeros that take no disk (httpd reads holes as zeros).
    truncate -s 4G "$www/big" || fail "cannot make the big file"
    chmod a+r "$www/big"
    expect_http_says "$CTR_IP" 80 hello
    wait_for -t 10 active_is "$n" 0 || fail "connections left before the test: $(port80 "$n" .connections)"
    baseline

    # 8 clients ask for 4 GiB each and never read a byte.
    peer attack no-read "$CTR_IP" 80 8 /big "$t" >"$t.out" 2>&1 &
    local pid=$!
    on_exit "kill_bg $pid"
    wait_for -t 10 test -s "$t.ready" || fail "the non-reading clients could not connect: $(cat "$t.out")"
    wait_for -t 10 active_is "$n" 8 || fail "8 connections should be active: $(port80 "$n" .connections)"
    # Once the buffers are full, nothing moves: the relay stopped reading
    # from the container (backpressure), it does not buffer 4 GiB.
    wait_for -t 20 bytes_settled "$n" || fail "the byte counters keep moving: $(port80 "$n" .bytes)"
    local rss out
    rss=$(daemon_rss_kb)
    out=$(port80 "$n" .bytes.out)
    log "8 non-readers held: RSS $rss kB (was $RSS0), $(daemon_fds) fds (were $FD0), bytes out $out"
    # Margin: 20 MB for 8 relays (their buffers and pipes are 64 KiB-1 MiB each).
    [ "$rss" -le $((RSS0 + 20480)) ] || fail "daemon RSS $rss kB with 8 non-reading clients, was $RSS0 kB (margin +20 MB)"
    [ "$out" -lt $((8 * 64 * 1048576)) ] || fail "$out bytes went to 8 clients that never read"

    # Other connections on the same port still work: a page, and 20 MB of
    # the big file read by a client that does read.
    expect_http_says "$CTR_IP" 80 hello
    local got
    got=$(curl -s -m 10 "http://$CTR_IP/big" 2>/dev/null | head -c 20000000 | wc -c)
    assert_eq 20000000 "$got" "bytes of /big read by a reading client beside the non-readers"
    answers "$CTR_NAME" "$CTR_IP" || fail "$CTR_NAME does not resolve beside the non-readers"

    # Closing them frees everything.
    stop_attack "$t" "$pid"
    wait_for -t 10 active_is "$n" 0 || fail "connections still active after the clients closed: $(port80 "$n" .connections)"
    expect_recovered "non-reading clients"
    stop_daemon
}

run_parts
