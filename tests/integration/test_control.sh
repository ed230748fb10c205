# The control API and the loophole command against the real daemon and
# engine: JSON shapes over curl, {name or id} lookups, 404/405/409, `ls` and
# `ls --json` against dig, the events stream, permissions (nobody reads but
# cannot change the resolver; root can, and an uninstall outlives a restart),
# bad clients (garbage, a 20 KB header, 500 idle connections), a second
# daemon on the same socket, one on the same state directory (its lock), a
# stale socket file (replaced once the lock is free), and the one-line "not
# running" message.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
need_tool curl
need_tool jq
need_tool setpriv

L=$LOOPHOLE_BIN/loophole
[ -x "$L" ] || fail "no client binary at $L (build first)"
D=$LH_DOMAIN
T0=$(now_ms)

# nobody must reach the socket: the temporary directory is 0700.
chmod o+x "$LH_TMP"

# The resolver under a temporary root with systemd-resolved "present", and a
# systemctl that only records being called (--resolver-root never reloads).
R=$LH_TMP/root
mkdir -p "$R/run/systemd/resolve" "$LH_TMP/fakebin"
DROPIN=$R/etc/systemd/resolved.conf.d/loophole.conf
printf '#!/bin/sh\necho "$*" >>"%s"\n' "$LH_TMP/systemctl.calls" >"$LH_TMP/fakebin/systemctl"
chmod +x "$LH_TMP/fakebin/systemctl"
export PATH=$LH_TMP/fakebin:$PATH

lh() { "$L" --socket "$LH_SOCK" "$@"; }
body=$LH_TMP/body

# expect_not_running LABEL CMD...: CMD exits 1 and prints exactly one line
# (stdout and stderr together) saying the daemon is not running and how to
# start it.
expect_not_running() {
    local label=$1 out st
    shift
    out=$("$@" 2>&1)
    st=$?
    assert_eq 1 "$st" "$label: exit status"
    assert_eq 1 "$(printf '%s\n' "$out" | wc -l)" "$label: lines of output ($out)"
    printf '%s' "$out" | grep -qi 'not running' || fail "$label: no 'not running' in: $out"
    printf '%s' "$out" | grep -q 'systemctl start loophole' || fail "$label: no start hint in: $out"
}

# no_crash_in_log: no sanitizer report or crash in the daemon log.
no_crash_in_log() {
    local n
    n=$(log_count 'AddressSanitizer|LeakSanitizer|runtime error|SEGV|Segmentation|Assertion|stack-overflow')
    [ "$n" -eq 0 ] || fail "the daemon log reports a crash or sanitizer error ($n lines)"
}

# ---- Daemon not running -------------------------------------------------------

expect_not_running "ls, no socket file" "$L" --socket "/tmp/nonexistent-$RUN_ID.sock" ls
expect_not_running "status, no socket file" "$L" --socket "$LH_SOCK" status
log "not running: one line, exit 1"

# ---- Daemon 1: resolver auto ----------------------------------------------------

start_daemon --resolver auto --resolver-root "$R"
wait_for test -f "$DROPIN" || fail "no resolver drop-in at $DROPIN after start"
mode=$(stat -c %a "$LH_SOCK")
assert_eq 666 "$mode" "control socket mode"

# The events stream, opened before the containers start.
EV=$LH_TMP/events.out
timeout 110 curl -sN --unix-socket "$LH_SOCK" -D "$LH_TMP/events.hdr" -o "$EV" \
    http://x/v1/events 2>"$LH_TMP/events.err" &
EV_PID=$!
on_exit "kill $EV_PID"
wait_for -t 5 grep -q '^HTTP/1.1 200' "$LH_TMP/events.hdr" ||
    fail "GET /v1/events: no 200 header: $(cat "$LH_TMP/events.hdr" 2>&1)"

# event_seen TYPE CONTAINER-NAME: a complete line of the stream is
# {"type": TYPE, "container": {"container": CONTAINER-NAME, ...}}.
event_seen() { peer events seen "$EV" "$1" "$2"; }

# Container A: capitals and underscores, one port, an extra name.
A=LH_Ctl_A_$RUN_ID
A_DNS=lh-ctl-a-$RUN_ID.$D
A_ID=$(run_ctr --name "$A" --label "loophole.names=ctl-extra-$RUN_ID" -p 8080 \
    "$LH_IMAGE" httpd -f -p 8080)
# Container B: two ports.
B=lh-ctl-b-$RUN_ID
B_DNS=$B.$D
B_ID=$(run_ctr --name "$B" -p 5432 -p 6379 "$LH_IMAGE" httpd -f -p 5432)
a_ip=$(expect_address "$A_DNS")
b_ip=$(expect_address "$B_DNS")
log "$A_DNS -> $a_ip, $B_DNS -> $b_ip"
wait_for resolves_to "ctl-extra-$RUN_ID.$D" "$a_ip" || fail "extra name of $A does not resolve to $a_ip"

wait_for -t 10 event_seen added "$A" || fail "no 'added' event for $A: $(head -c 2000 "$EV")"
wait_for -t 10 event_seen added "$B" || fail "no 'added' event for $B"
log "events: added seen"

# ---- GET /v1/status -----------------------------------------------------------------

code=$(ctl_http GET /v1/status "$body")
assert_eq 200 "$code" "GET /v1/status"
peer json "$body" || fail "/v1/status is not valid JSON: $(head -c 500 "$body")"
jq -e --arg listen "$LH_DNS_IP:$LH_DNS_PORT" --arg domain "$D" \
    --arg first "${LH_POOL%-*}" --arg last "${LH_POOL#*-}" '
    (.version | type == "string" and length > 0) and
    (.uptime_s | type == "number" and . >= 0) and
    (.docker.endpoint | type == "string" and length > 0) and
    (.docker.connected == true) and
    (.docker.api_version | type == "string" and test("^[0-9]+\\.[0-9]+$")) and
    (.dns.listen == $listen) and (.dns.domain == $domain) and
    (.resolver.installed == true) and (.resolver.correct == true) and
    (.resolver.mode == "auto") and
    (.alias.mode == "off") and
    (.pool.first == $first) and (.pool.last == $last) and
    (.pool.used | type == "number" and . >= 2) and
    (.pool.free | type == "number") and
    (.pool.used + .pool.free == 253) and
    (.containers | type == "number" and . >= 2) and
    (.listeners | type == "number" and . >= 3) and
    (.connections | type == "number" and . >= 0) and
    (.problems | type == "array")' "$body" >/dev/null ||
    fail "/v1/status lacks a documented field or has a wrong value: $(cat "$body")"

# ---- GET /v1/containers and /v1/containers/{name or id} ---------------------------------

# A's port goes direct once its network answered the probe.
wait_for -t 10 port_mode_is "$A_ID" 8080 tcp direct ||
    fail "A's 8080/tcp: mode $(port_mode "$A_ID" 8080 tcp), expected direct"
code=$(ctl_http GET /v1/containers "$body")
assert_eq 200 "$code" "GET /v1/containers"
peer json "$body" || fail "/v1/containers is not valid JSON"
jq -e 'type == "array" and length >= 2 and all(.[];
    (.name == null or (.name | type == "string")) and (.names | type == "array") and
    (.ip == null or (.ip | type == "string")) and (.container | type == "string") and
    (.id | type == "string") and has("project") and has("service") and
    (.ports | type == "array") and (.conflicts | type == "array") and has("skipped"))' \
    "$body" >/dev/null || fail "/v1/containers: an entry lacks a documented field: $(head -c 2000 "$body")"
# A's entry in full.
jq -e --arg c "$A" --arg id "$A_ID" --arg name "$A_DNS" --arg ip "$a_ip" \
    --arg extra "ctl-extra-$RUN_ID.$D" --argjson hp "$(host_port "$A" 8080)" '
    [.[] | select(.container == $c)] | length == 1 and (.[0] |
    .id == $id and .name == $name and .ip == $ip and (.names | index($extra) != null) and
    .project == null and .service == null and .skipped == null and
    (.ports | length == 1) and .ports[0].port == 8080 and .ports[0].host_port == $hp and
    .ports[0].proto == "tcp" and .ports[0].mode == "direct" and .ports[0].kafka == false and
    (.ports[0].connections | has("active") and has("total")) and
    (.ports[0].bytes | has("in") and has("out")))' "$body" >/dev/null ||
    fail "/v1/containers: wrong entry for $A: $(jq -c --arg c "$A" '.[] | select(.container == $c)' "$body")"

# Every form of {name or id} finds the same container.
for key in "$A_DNS" "lh-ctl-a-$RUN_ID" "$A" "ctl-extra-$RUN_ID.$D" "${A_ID:0:12}" "$A_ID"; do
    code=$(ctl_http GET "/v1/containers/$key" "$body")
    assert_eq 200 "$code" "GET /v1/containers/$key"
    got=$(jq -r '[.id, .name, .ip, .container] | join(" ")' "$body" 2>/dev/null)
    assert_eq "$A_ID $A_DNS $a_ip $A" "$got" "GET /v1/containers/$key"
done
code=$(ctl_http GET "/v1/containers/$B" "$body")
assert_eq "200 $B_ID" "$code $(jq -r .id "$body" 2>/dev/null)" "GET /v1/containers/$B"

# Unknown names, too-short id prefixes: 404 with a JSON error.
for key in "nothing-$RUN_ID" "nothing-$RUN_ID.$D" "${A_ID:0:11}"; do
    code=$(ctl_http GET "/v1/containers/$key" "$body")
    assert_eq 404 "$code" "GET /v1/containers/$key"
    is_json_error "$body" || fail "GET /v1/containers/$key: not a JSON error: $(cat "$body")"
done
code=$(ctl_http GET /v1/nothing "$body")
assert_eq 404 "$code" "GET /v1/nothing"
is_json_error "$body" || fail "GET /v1/nothing: not a JSON error: $(cat "$body")"

# Wrong methods: 405 with a JSON error and an Allow header.
for req in "POST /v1/status" "PUT /v1/containers" "DELETE /v1/containers/$A" \
    "GET /v1/resolver" "POST /v1/events"; do
    code=$(ctl_http "${req% *}" "${req#* }" "$body")
    assert_eq 405 "$code" "$req"
    is_json_error "$body" || fail "$req: not a JSON error: $(cat "$body")"
done
curl -s -m 5 --unix-socket "$LH_SOCK" -X PUT -D - -o /dev/null http://x/v1/status |
    grep -qi '^Allow: GET' || fail "PUT /v1/status: no 'Allow: GET' header"
log "API: status, containers, lookups, 404, 405 ok"

# ---- loophole ls ------------------------------------------------------------------------

# ls --json: valid, and every entry of this run resolves to its ip.
lh ls --json >"$body" || fail "loophole ls --json failed"
peer json "$body" || fail "ls --json is not valid JSON"
mine=$(jq -r --arg r "$RUN_ID" '.[] | select(.container | contains($r)) | "\(.name) \(.ip)"' "$body")
assert_eq 2 "$(printf '%s\n' "$mine" | grep -c .)" "entries of this run in ls --json ($mine)"
while read -r name ip; do
    assert_eq "$ip" "$(resolve "$name")" "dig $name vs ls --json"
    # ... and each of its other names too.
    for n in $(jq -r --arg n "$name" '.[] | select(.name == $n) | .names[]' "$body"); do
        assert_eq "$ip" "$(resolve "$n")" "dig $n vs ls --json"
    done
done <<<"$mine"

# The table: a header, A's row with its port mapping, sorted by name.
lh ls >"$body" || fail "loophole ls failed"
head -n1 "$body" | grep -Eq '^DNS NAME +IP +PORTS +CONTAINER' ||
    fail "ls: unexpected header: $(head -n1 "$body")"
# Served direct (auto on a reachable network): the port alone, no "→host port".
grep -Eq "^$A_DNS +$a_ip +8080 +$A\$" "$body" ||
    fail "ls: no row '$A_DNS $a_ip 8080 $A' in:
$(cat "$body")"
b_row=$(grep -E "^$B_DNS " "$body") || fail "ls: no row for $B"
for p in 5432 6379; do
    printf '%s' "$b_row" | grep -Eq "(^| |,)$p(,| |$)" || fail "ls: row of $B lacks $p: $b_row"
done
tail -n +2 "$body" | awk '{print $1}' | LC_ALL=C sort -c 2>/dev/null ||
    fail "ls is not sorted by name:
$(cat "$body")"
log "ls and ls --json match dig"

# ---- Permissions: nobody reads, cannot change ---------------------------------------------

out=$(as_nobody "$L" --socket "$LH_SOCK" ls 2>&1) || fail "ls as nobody failed: $out"
printf '%s\n' "$out" | grep -q "^$A_DNS " || fail "ls as nobody does not show $A_DNS: $out"
out=$(as_nobody "$L" --socket "$LH_SOCK" status 2>&1) || fail "status as nobody failed: $out"
printf '%s' "$out" | grep -q "$LH_DNS_IP:$LH_DNS_PORT" || fail "status as nobody lacks the DNS address: $out"
out=$(as_nobody "$L" --socket "$LH_SOCK" status --json 2>&1) || fail "status --json as nobody failed: $out"
printf '%s' "$out" | jq -e '.resolver.installed == true' >/dev/null ||
    fail "status --json as nobody: $out"
out=$(as_nobody "$L" --socket "$LH_SOCK" ls --json 2>&1) || fail "ls --json as nobody failed"
printf '%s' "$out" | jq -e --arg id "$A_ID" 'any(.[]; .id == $id)' >/dev/null ||
    fail "ls --json as nobody lacks $A"

for cmd in resolve-install resolve-uninstall; do
    out=$(as_nobody "$L" --socket "$LH_SOCK" "$cmd" 2>&1)
    st=$?
    assert_eq 1 "$st" "$cmd as nobody: exit status"
    assert_eq 1 "$(printf '%s\n' "$out" | wc -l)" "$cmd as nobody: lines ($out)"
    printf '%s' "$out" | grep -q "sudo loophole $cmd" || fail "$cmd as nobody: no 'run with sudo' hint: $out"
done
code=$(as_nobody curl -s -m 5 --unix-socket "$LH_SOCK" -X DELETE -o /dev/stdout -w '\n%{http_code}' \
    http://x/v1/resolver)
assert_eq 403 "$(printf '%s\n' "$code" | tail -n1)" "DELETE /v1/resolver as nobody"
printf '%s\n' "$code" | head -n1 | jq -e '.error | type == "string" and length > 0' >/dev/null ||
    fail "DELETE /v1/resolver as nobody: not a JSON error: $code"
[ -f "$DROPIN" ] || fail "the drop-in disappeared after nobody's resolve-uninstall"
log "nobody: ls/status ok, resolver changes refused"

# ---- Root: resolve-uninstall / resolve-install --------------------------------------------

resolver_installed() { lh status --json | jq -r .resolver.installed; }
out=$(lh resolve-uninstall 2>&1) || fail "resolve-uninstall as root failed: $out"
wait_for -t 5 not test -e "$DROPIN" || fail "the drop-in is still there after resolve-uninstall"
assert_eq false "$(resolver_installed)" "status resolver.installed after resolve-uninstall"
out=$(lh resolve-install 2>&1) || fail "resolve-install as root failed: $out"
wait_for -t 5 test -f "$DROPIN" || fail "no drop-in after resolve-install"
grep -qx "DNS=$LH_DNS_IP:$LH_DNS_PORT" "$DROPIN" || fail "wrong drop-in: $(cat "$DROPIN")"
lh status --json | jq -e '.resolver.installed == true and .resolver.correct == true' >/dev/null ||
    fail "status after resolve-install: $(lh status --json | jq -c .resolver)"
out=$(lh resolve-uninstall 2>&1) || fail "second resolve-uninstall failed: $out"
wait_for -t 5 not test -e "$DROPIN" || fail "the drop-in is still there after the second resolve-uninstall"
assert_eq false "$(resolver_installed)" "status resolver.installed after the second resolve-uninstall"
log "root: resolve-install/uninstall ok"

# ---- Bad clients ------------------------------------------------------------------------------

# Malformed HTTP: 400 and close.
printf 'HELLO \x00\xff garbage\r\n\r\n' >"$LH_TMP/garbage1"
reply=$(ctl_raw "$LH_SOCK" "@$LH_TMP/garbage1" | head -n1) ||
    fail "malformed request: the daemon did not close the connection"
case "$reply" in "HTTP/1.1 400"*) ;; *) fail "malformed request: expected a 400, got '$reply'" ;; esac
# 256 KiB of random bytes: the connection closes, the daemon answers.
head -c 262144 /dev/urandom >"$LH_TMP/garbage2"
ctl_raw "$LH_SOCK" "@$LH_TMP/garbage2" >/dev/null || fail "random bytes: the connection did not close"
control_up || fail "the daemon does not answer after garbage"
# A 20 KB header: 431 (over the 16 KiB cap) and close.
peer gen big-header --size 20480 >"$LH_TMP/bighdr"
reply=$(ctl_raw "$LH_SOCK" "@$LH_TMP/bighdr" | head -n1) ||
    fail "oversized header: the daemon did not close the connection"
case "$reply" in "HTTP/1.1 431"* | "HTTP/1.1 400"* | "HTTP/1.1 413"*) ;;
*) fail "oversized header: expected a 431, got '$reply'" ;;
esac
control_up || fail "the daemon does not answer after an oversized header"

# 500 idle connections (some with half a request): the daemon still answers
# a new client, and the events stream is not evicted.
"$LH_PEER" unix idle "$LH_SOCK" --count 500 --ready "$LH_TMP/idle.ready" --stop "$LH_TMP/idle.stop" \
    >"$LH_TMP/idle.out" 2>&1 &
IDLE_PID=$!
on_exit "kill $IDLE_PID"
wait_for -t 30 test -s "$LH_TMP/idle.ready" || fail "could not open 500 connections: $(cat "$LH_TMP/idle.out")"
log "idle connections open: $(cat "$LH_TMP/idle.ready")"
wait_for -t 5 control_up || fail "the daemon does not answer with 500 idle connections open"
lh ls >/dev/null 2>&1 || fail "loophole ls fails with 500 idle connections open"
: >"$LH_TMP/idle.stop"
wait "$IDLE_PID"
log "$(cat "$LH_TMP/idle.out")"
# The client cap (64 by default, control.h) closed most of them.
still_open=$(sed -n 's/^held \([0-9]*\), closed by the daemon \([0-9]*\)$/\1 - \2/p' "$LH_TMP/idle.out")
[ -n "$still_open" ] || fail "the idle-connection script failed: $(cat "$LH_TMP/idle.out")"
[ $((still_open)) -le 128 ] ||
    fail "$((still_open)) of 500 idle connections still open: no client cap"
daemon_alive || fail "the daemon died"

# Removing B: a 'removed' event on the stream that lived through all that.
docker rm -f "$B" >/dev/null || fail "docker rm -f $B failed"
expect_nxdomain "$B_DNS"
if ! wait_for -t 10 event_seen removed "$B"; then
    lh_exited "$EV_PID" && fail "no 'removed' event for $B: the daemon closed the events stream"
    fail "no 'removed' event for $B"
fi
code=$(ctl_http GET "/v1/containers/$B" "$body")
assert_eq 404 "$code" "GET /v1/containers/$B after docker rm"
log "events: removed seen"

# ---- A second daemon on the same socket ---------------------------------------------------------

mkdir -p "$LH_TMP/state2"
port2=$(free_port)
timeout 20 "$LOOPHOLED" --control-socket "$LH_SOCK" --state-dir "$LH_TMP/state2" \
    --dns-listen "$LH_DNS_IP:$port2" --domain "$D" --pool "$LH_POOL" --resolver off \
    --alias off --docker-host "$LH_DOCKER_HOST" >"$LH_TMP/second.log" 2>&1
st=$?
if [ "$st" -eq 0 ] || [ "$st" -eq 124 ]; then
    fail "a second daemon on $LH_SOCK: exit status $st, expected a refusal: $(cat "$LH_TMP/second.log")"
fi
grep -qi 'another loopholed' "$LH_TMP/second.log" ||
    fail "a second daemon's message does not say another loopholed is running: $(cat "$LH_TMP/second.log")"
# Another state directory, so it is the socket's own lock that stops it,
# not a refused connect (which on macOS a full backlog gives a live daemon).
grep -qi "is serving the control socket $LH_SOCK" "$LH_TMP/second.log" ||
    fail "a second daemon on $LH_SOCK was not stopped by the socket's lock: $(cat "$LH_TMP/second.log")"
[ -S "$LH_SOCK" ] || fail "the second daemon removed the first one's socket"
control_up || fail "the first daemon stopped answering after a second one tried its socket"
log "second daemon refused: $(grep -i 'another loopholed' "$LH_TMP/second.log" | head -n1)"

# ---- A second daemon on the same state directory, another socket -------------------------------
# The state directory's lock stops it before it binds anything.
OTHER_SOCK=$LH_TMP/other.sock
state_before=$(cat "$LH_STATE_DIR/state.json" 2>/dev/null)
port3=$(free_port)
timeout 20 "$LOOPHOLED" --control-socket "$OTHER_SOCK" --state-dir "$LH_STATE_DIR" \
    --dns-listen "$LH_DNS_IP:$port3" --domain "$D" --pool "$LH_POOL" --resolver off \
    --alias off --docker-host "$LH_DOCKER_HOST" >"$LH_TMP/third.log" 2>&1
st=$?
assert_eq 1 "$st" "a second daemon on $LH_STATE_DIR: exit status ($(cat "$LH_TMP/third.log"))"
grep -qi "another loopholed (pid $LH_DAEMON_PID) is running with the state directory" "$LH_TMP/third.log" ||
    fail "a second daemon on the same state directory does not say so: $(cat "$LH_TMP/third.log")"
[ ! -e "$OTHER_SOCK" ] || fail "a daemon refused by the state lock bound $OTHER_SOCK"
if dig +short +time=1 +tries=1 @"$LH_DNS_IP" -p "$port3" "$D" SOA 2>/dev/null | grep -q .; then
    fail "a daemon refused by the state lock still serves DNS on port $port3"
fi
assert_eq "$state_before" "$(cat "$LH_STATE_DIR/state.json" 2>/dev/null)" \
    "the state file after a second daemon on the same state directory"
[ -S "$LH_SOCK" ] || fail "the first daemon's socket is gone after a second daemon tried its state directory"
control_up || fail "the first daemon stopped answering after a second one tried its state directory"
log "second daemon on the same state directory refused: $(grep -i 'another loopholed' "$LH_TMP/third.log" | head -n1)"

# Valid events lines only, and the stream ends when the daemon stops.
stop_daemon
wait_for -t 10 lh_exited "$EV_PID" || fail "the events stream did not end when the daemon stopped"
peer events check "$EV" || fail "the events stream has an invalid line"
no_crash_in_log

# ---- Daemon 2: the uninstall is remembered -----------------------------------------------------

start_daemon --resolver auto --resolver-root "$R"
wait_for -t 5 control_up || fail "the restarted daemon does not answer"
assert_eq false "$(resolver_installed)" "resolver.installed after a restart following resolve-uninstall"
[ ! -e "$DROPIN" ] || fail "the restarted daemon reinstalled the drop-in the person removed"
# A (still running) is found again.
code=$(ctl_http GET "/v1/containers/${A_ID:0:12}" "$body")
assert_eq 200 "$code" "GET /v1/containers/${A_ID:0:12} after a restart"

[ ! -e "$DROPIN" ] || fail "the restarted daemon reinstalled the drop-in later"

# Killed: a stale socket file stays; the client says the daemon is not running.
pid=$LH_DAEMON_PID
kill -KILL "$pid"
lh_wait_exit "$pid" 10 || fail "loopholed $pid survived SIGKILL"
daemon_reap
[ -S "$LH_SOCK" ] || fail "no stale socket file after SIGKILL (cannot test its replacement)"
expect_not_running "ls, stale socket" "$L" --socket "$LH_SOCK" ls

# ---- Daemon 3: replaces the stale socket; --resolver off -> 409 ---------------------------------

start_daemon
wait_for -t 5 control_up || fail "the daemon did not replace the stale socket"
for m in POST DELETE; do
    code=$(ctl_http "$m" /v1/resolver "$body")
    assert_eq 409 "$code" "$m /v1/resolver with --resolver off"
    is_json_error "$body" || fail "$m /v1/resolver: not a JSON error: $(cat "$body")"
done
out=$(lh resolve-install 2>&1)
st=$?
assert_eq 1 "$st" "resolve-install with --resolver off: exit status"
assert_eq 1 "$(printf '%s\n' "$out" | wc -l)" "resolve-install with --resolver off: lines ($out)"
printf '%s' "$out" | grep -q -- 'resolver off' || fail "resolve-install with --resolver off: $out"
[ ! -e "$DROPIN" ] || fail "--resolver off wrote the drop-in"
lh ls | grep -q "^$A_DNS " || fail "ls after the restarts lacks $A_DNS"
stop_daemon
[ ! -e "$LH_SOCK" ] || fail "the socket file is left after a clean stop"
no_crash_in_log
[ ! -e "$LH_TMP/systemctl.calls" ] || fail "systemctl was run under --resolver-root: $(cat "$LH_TMP/systemctl.calls")"

log "ok ($(($(now_ms) - T0)) ms)"
