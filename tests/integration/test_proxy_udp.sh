# UDP proxies: a socat echo container publishing 9999/udp (and 9999/tcp with
# a different answer, so the two protocols' entries cannot be mixed up);
# datagrams round-trip through <address>:9999 from two client ports at once,
# each client getting only its own replies; stopping the container closes
# the socket.
# shellcheck shell=bash
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
for t in jq socat; do need_tool "$t"; done

# A pool of this test's own: other daemons on this engine serve 127.0.77.x.
LH_POOL=127.0.83.2-127.0.83.60
start_daemon
D=$LH_DOMAIN

id=$(run_host_server --name "lh-udp-$RUN_ID" -p 9999/udp -p 9999/tcp -- /bin/sh -c \
    "/usr/bin/socat TCP-LISTEN:9999,fork,reuseaddr 'SYSTEM:echo tcp-$RUN_ID' &
     exec /usr/bin/socat UDP-LISTEN:9999,fork,reuseaddr PIPE")
u=$(expect_address "lh-udp-$RUN_ID.$D")
log "lh-udp-$RUN_ID.$D -> $u"
lh_listens udp "$u" 9999 || fail "loopholed has no UDP socket on $u:9999"
lh_listens tcp "$u" 9999 || fail "loopholed does not listen on $u:9999/tcp"

wait_for -t 20 udp_echo "$u" 9999 "first-$RUN_ID" || fail "no UDP echo through $u:9999"

# Two clients on two source ports, interleaved: every datagram comes back to
# the client that sent it, from the proxy's address and port.
peer udp clients "$u" 9999 --clients 2 --rounds 20 || fail "UDP round trips from two client ports failed"

# The TCP entry of the same port number goes to the TCP server.
tcp_side_ok() { [ "$(lh_tcp banner "$u" 9999 '' 3)" = "tcp-$RUN_ID" ]; }
wait_for -t 10 tcp_side_ok ||
    fail "9999/tcp through $u answered '$(lh_tcp banner "$u" 9999 '' 3)', expected tcp-$RUN_ID"

control_up || fail "the control API does not answer on $LH_SOCK"
wait_for -t 10 port_mode_is "$id" 9999 tcp direct || fail "mode of 9999/tcp: $(port_mode "$id" 9999 tcp)"
wait_for -t 10 port_mode_is "$id" 9999 udp direct || fail "mode of 9999/udp: $(port_mode "$id" 9999 udp)"

docker stop -t 1 "$id" >/dev/null || fail "docker stop failed"
wait_for -t 10 not lh_listens udp "$u" 9999 || fail "loopholed keeps $u:9999/udp after the container stopped"
wait_for -t 5 not lh_listens tcp "$u" 9999 || fail "loopholed keeps $u:9999/tcp after the container stopped"
not udp_echo "$u" 9999 "after-stop-$RUN_ID" || fail "UDP echo through $u:9999 after the container stopped"

stop_daemon
log "ok"
