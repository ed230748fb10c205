# A port held by another program on the address a container would get: the
# container moves to another address (DNS answers that one), works there, the
# other program keeps its port, and the daemon logs the move once.
# shellcheck shell=bash
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
for t in curl jq socat; do need_tool "$t"; done

# A pool of this test's own, so the address the next container gets is known.
LH_POOL=127.0.80.2-127.0.80.20
start_daemon
D=$LH_DOMAIN

# The lowest pool address no container holds is the one the daemon hands out
# next (containers of other projects on this engine may hold some).
next=127.0.80.2
used=$(curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/containers | jq -r '.[].ip // empty') ||
    fail "GET /v1/containers failed: the control API does not answer on $LH_SOCK"
for i in $(seq 2 20); do
    if ! printf '%s\n' "$used" | grep -qx "127.0.80.$i"; then
        next=127.0.80.$i
        break
    fi
done
log "the next container would get $next"

P=$(free_port)
socat "TCP-LISTEN:$P,bind=$next,reuseaddr,fork" "SYSTEM:echo intruder-$RUN_ID" </dev/null >/dev/null 2>&1 &
intruder=$!
on_exit "kill $intruder"
wait_for -t 5 sh -c "ss -Hltn src $next:$P | grep -q ." || fail "the intruder does not listen on $next:$P"

www=$LH_TMP/www
mkdir -p "$www"
echo "moved-$RUN_ID" >"$www/index.html"
chmod -R a+rX "$www"
id=$(run_ctr --name "lh-moved-$RUN_ID" -p "$P" -v "$www:/www:ro" "$LH_IMAGE" httpd -f -p "$P" -h /www)
m=$(expect_address "lh-moved-$RUN_ID.$D")
log "lh-moved-$RUN_ID.$D -> $m"
assert_ne "$next" "$m" "the container should have left the address whose port is held"
# The name never pointed at the held address (the move happens before DNS
# answers), and it keeps pointing at the new one.
assert_eq "$m" "$(resolve "lh-moved-$RUN_ID.$D")" "address after the move"

lh_listens tcp "$m" "$P" || fail "loopholed does not listen on $m:$P"
moved_ok() { [ "$(curl -sf -m 3 "http://$m:$P/")" = "moved-$RUN_ID" ]; }
wait_for -t 20 moved_ok || fail "curl http://$m:$P/ did not reach the moved container (got '$(curl -s -m 3 "http://$m:$P/")')"
# The other program still owns its port.
got=$(lh_tcp banner "$next" "$P" '' 3)
assert_eq "intruder-$RUN_ID" "$got" "the intruder on $next:$P"
got=$(curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/containers |
    jq -r --arg id "$id" '.[] | select(.id as $c | $c != null and ($id | startswith($c))) | .ip')
assert_eq "$m" "$got" "ip in /v1/containers"
wait_for -t 10 port_mode_is "$id" "$P" tcp direct ||
    fail "mode of $P/tcp after the move: $(port_mode "$id" "$P" tcp), expected direct"

# One log line about the move, naming the held address.
n=$(grep -Ei 'mov' "$LH_LOG" | grep -c -- "$next:$P" || true)
assert_eq 1 "$n" "log lines about moving off $next:$P"

stop_daemon
log "ok"
