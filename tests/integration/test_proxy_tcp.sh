# TCP proxies against real containers: two Redis servers both on 6379, each
# reached on its own address with its own data; a 6-byte inline command; a
# server-first banner and half-close; busybox httpd through curl, with a
# 64 MiB transfer checked by sha256; a stopped container's port refuses and
# its open connections are closed; -p P:P on the wildcard address is shared
# (no loophole listener) and still answers.
# shellcheck shell=bash
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
for t in redis-server redis-cli curl jq socat sha256sum; do need_tool "$t"; done

# A pool of this test's own: other daemons on this engine serve 127.0.77.x.
LH_POOL=127.0.82.2-127.0.82.60
start_daemon
D=$LH_DOMAIN
T0=$(now_ms)

# ---- Two Redis containers publishing the same port --------------------------

redis_args=(--port 6379 --bind 0.0.0.0 --protected-mode no --save '' --appendonly no)
ra=$(run_host_server --name "lh-redis-a-$RUN_ID" -p 6379 -- /usr/bin/redis-server "${redis_args[@]}")
rb=$(run_host_server --name "lh-redis-b-$RUN_ID" -p 6379 -- /usr/bin/redis-server "${redis_args[@]}")
a=$(expect_address "lh-redis-a-$RUN_ID.$D")
# The listener exists before the name resolves: no window where DNS answers
# and the port refuses.
lh_tcp connects "$a" 6379 || fail "$a resolves but $a:6379 does not accept"
b=$(expect_address "lh-redis-b-$RUN_ID.$D")
lh_tcp connects "$b" 6379 || fail "$b resolves but $b:6379 does not accept"
assert_ne "$a" "$b" "the two Redis containers share an address"
log "redis a -> $a, b -> $b"
lh_listens tcp "$a" 6379 || fail "loopholed does not listen on $a:6379"
lh_listens tcp "$b" 6379 || fail "loopholed does not listen on $b:6379"

redis_up() { [ "$(redis-cli -h "$1" -p 6379 PING 2>/dev/null)" = PONG ]; }
wait_for -t 20 redis_up "$a" || fail "redis-cli -h $a -p 6379 PING: no PONG"
wait_for -t 20 redis_up "$b" || fail "redis-cli -h $b -p 6379 PING: no PONG"

assert_eq OK "$(redis-cli -h "$a" -p 6379 SET k "a-$RUN_ID")" "SET on a"
assert_eq OK "$(redis-cli -h "$b" -p 6379 SET k "b-$RUN_ID")" "SET on b"
assert_eq "a-$RUN_ID" "$(redis-cli -h "$a" -p 6379 GET k)" "GET on a"
assert_eq "b-$RUN_ID" "$(redis-cli -h "$b" -p 6379 GET k)" "GET on b"
# Each address really leads to its own container's mapped port.
pa=$(host_port "$ra" 6379/tcp)
[ -n "$pa" ] || fail "no IPv4 host port for redis a"
assert_eq "a-$RUN_ID" "$(redis-cli -h 127.0.0.1 -p "$pa" GET k)" "GET on a's mapped port $pa"

# Redis inline command: the client sends 6 bytes and waits for the reply, so a
# proxy that waits for more client bytes hangs here.
got=$(lh_tcp send "$a" 6379 'PING\r\n' 5 | tr -d '\r') || fail "inline PING through $a:6379 failed"
assert_eq "+PONG" "$got" "inline PING (6 bytes) through $a:6379"

control_up || fail "the control API does not answer on $LH_SOCK"
# auto: straight to the container once its network answered the probe.
wait_for -t 10 port_mode_is "$ra" 6379 tcp direct ||
    fail "mode of redis a's 6379/tcp in /v1/containers: $(port_mode "$ra" 6379 tcp), expected direct"

# ---- Server speaks first; half-close ----------------------------------------

# socat in the container greets, then counts the client's bytes with wc -c,
# which answers only at EOF: the client gets the count only when the proxy
# passed its shutdown on and kept the other direction flowing, and EOF only
# when the server's close came back.
run_host_server --name "lh-banner-$RUN_ID" -p 2525 -- /usr/bin/socat -t 5 \
    TCP-LISTEN:2525,fork,reuseaddr "SYSTEM:echo 220 banner-$RUN_ID; exec wc -c" >/dev/null
s=$(expect_address "lh-banner-$RUN_ID.$D")
banner_ok() { [ "$(lh_tcp banner "$s" 2525 '' 3)" = "220 banner-$RUN_ID" ]; }
wait_for -t 20 banner_ok || fail "no server-first banner through $s:2525 (got '$(lh_tcp banner "$s" 2525 '' 3)')"
got=$(lh_tcp halfclose "$s" 2525 'hello\nworld\n' 5 | sed 's/^ *//')
rc=$?
[ "$rc" -eq 3 ] && fail "half-close through $s:2525: no EOF within 5 s after the client's shutdown"
[ "$rc" -eq 0 ] || fail "half-close through $s:2525 failed (status $rc)"
assert_eq "220 banner-$RUN_ID
12" "$got" "byte count after half-close through $s:2525"

# ---- busybox httpd, curl, a large transfer ----------------------------------

www=$LH_TMP/www
mkdir -p "$www"
echo "hello-$RUN_ID" >"$www/index.html"
head -c $((64 * 1024 * 1024)) /dev/urandom >"$www/big.bin"
chmod -R a+rX "$www"
run_ctr --name "lh-web-$RUN_ID" -p 80 -v "$www:/www:ro" "$LH_IMAGE" httpd -f -p 80 -h /www >/dev/null
w=$(expect_address "lh-web-$RUN_ID.$D")
index_ok() { [ "$(curl -sf -m 3 "http://$w:80/")" = "hello-$RUN_ID" ]; }
wait_for -t 20 index_ok || fail "curl http://$w:80/ did not return index.html (got '$(curl -s -m 3 "http://$w:80/")')"
t=$(now_ms)
curl -sf -m 60 -o "$LH_TMP/big.out" "http://$w:80/big.bin" || fail "curl of 64 MiB through $w:80 failed"
ms=$(($(now_ms) - t))
assert_eq "$(sha256sum <"$www/big.bin" | cut -d' ' -f1)" "$(sha256sum <"$LH_TMP/big.out" | cut -d' ' -f1)" \
    "sha256 of 64 MiB through the proxy"
log "64 MiB through $w:80 in $ms ms, sha256 equal"
rm -f "$LH_TMP/big.out"

# ---- A stopped container: open connections close, the port refuses ----------

# An idle connection through b, with a request answered first so it is
# certainly established end to end.
lh_tcp hold "$b" 6379 'PING\r\n' 20 >"$LH_TMP/hold.out" 2>&1 &
hold=$!
wait_for -t 10 grep -q ready "$LH_TMP/hold.out" || fail "held connection to $b:6379 not ready: $(cat "$LH_TMP/hold.out")"
grep -q PONG "$LH_TMP/hold.out" || fail "held connection got no PONG: $(cat "$LH_TMP/hold.out")"
[ "$(lh_tcp_conns src "$b:6379")" -ge 1 ] || fail "loopholed holds no connection on $b:6379"
docker stop -t 2 "$rb" >/dev/null || fail "docker stop redis b failed"
t=$(now_ms)
wait_for -t 5 lh_exited "$hold" || fail "the open connection to $b:6379 is still open 5 s after the container stopped"
wait "$hold"
rc=$?
assert_eq 0 "$rc" "held connection ended by EOF or reset (3: timed out)"
log "open connection closed $(($(now_ms) - t)) ms after docker stop returned"
wait_for -t 5 lh_tcp refused "$b" 6379 || fail "$b:6379 still accepts after the container stopped"
# Refused at once, not a timeout.
t=$(now_ms)
curl -s -m 3 "http://$b:6379/" >/dev/null 2>&1
rc=$?
assert_eq 7 "$rc" "curl to the stopped container's port (7: could not connect)"
[ $(($(now_ms) - t)) -lt 1000 ] || fail "refusal took $(($(now_ms) - t)) ms"
not lh_listens tcp "$b" 6379 || fail "loopholed still listens on $b:6379"
no_conns() { [ "$(lh_tcp_conns src "$1")" = 0 ]; }
wait_for -t 5 no_conns "$b:6379" ||
    fail "loopholed still holds $(lh_tcp_conns src "$b:6379") connections on $b:6379"
# The other container is untouched.
assert_eq "a-$RUN_ID" "$(redis-cli -h "$a" -p 6379 GET k)" "GET on a after b stopped"

# ---- -p P:P on the wildcard address: shared, no listener ----------------------

P=$(free_port)
sh_id=$(run_ctr --name "lh-shared-$RUN_ID" -p "$P:$P" -v "$www:/www:ro" "$LH_IMAGE" httpd -f -p "$P" -h /www)
sa=$(expect_address "lh-shared-$RUN_ID.$D")
shared_ok() { [ "$(curl -sf -m 3 "http://$sa:$P/")" = "hello-$RUN_ID" ]; }
wait_for -t 20 shared_ok || fail "curl http://$sa:$P/ (shared) did not return index.html"
not lh_listens tcp "$sa" "$P" || fail "loopholed listens on $sa:$P although the port is shared"
# Docker's own listener on 0.0.0.0:P is the one answering.
ss -Hltn src "0.0.0.0:$P" | grep -q . || fail "nothing listens on 0.0.0.0:$P (Docker's listener)"
wait_for -t 5 port_mode_is "$sh_id" "$P" tcp shared ||
    fail "mode of $P/tcp should be shared, got '$(port_mode "$sh_id" "$P" tcp)'"
# The shared port did not make the container walk the pool.
assert_eq 0 "$(log_count "held by another program")" "moves logged"

log "tcp proxy checks took $(($(now_ms) - T0)) ms"
stop_daemon
log "ok"
