# Names: plain containers, odd container names, a scaled compose service,
# labels, and containers that must not get a name.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
need_tool docker-compose

start_daemon

D=$LH_DOMAIN

# A plain container publishing a port resolves, inside the test pool.
run_ctr --name "lh-plain-$RUN_ID" -p 8080 "$LH_IMAGE" httpd -f -p 8080 >/dev/null
plain=$(expect_address "lh-plain-$RUN_ID.$D")
log "lh-plain-$RUN_ID.$D -> $plain"
# Case does not matter in queries.
assert_eq "$plain" "$(resolve "LH-PLAIN-$RUN_ID.LOOP.TEST")" "upper-case query"

# Capitals and underscores: lowercased, '_' -> '-'.
run_ctr --name "LH_Test_MyPG_$RUN_ID" -p 5432 "$LH_IMAGE" httpd -f -p 5432 >/dev/null
pg=$(expect_address "lh-test-mypg-$RUN_ID.$D")
log "LH_Test_MyPG_$RUN_ID -> lh-test-mypg-$RUN_ID.$D -> $pg"
assert_ne "$plain" "$pg" "two containers share an address"

# A compose project with a scaled service.
proj=lh${RUN_ID}
compose "$proj" up -d --scale web=2 >"$LH_TMP/compose.log" 2>&1 ||
    fail "docker-compose up failed: $(cat "$LH_TMP/compose.log")"
w1=$(expect_address "web-1.$proj.$D")
w2=$(expect_address "web-2.$proj.$D")
log "web-1.$proj -> $w1, web-2.$proj -> $w2"
assert_ne "$w1" "$w2" "the replicas share an address"
assert_ne "$w1" "$plain" "web-1 and the plain container share an address"
assert_ne "$w1" "$pg" "web-1 and the pg container share an address"
assert_ne "$w2" "$plain" "web-2 and the plain container share an address"
assert_ne "$w2" "$pg" "web-2 and the pg container share an address"
wait_for resolves_to "web.$proj.$D" "$w1" ||
    fail "web.$proj.$D should be web-1's $w1, got '$(resolve "web.$proj.$D")'"
# The container's own name (compose v1: <project>_web_1) resolves too.
wait_for resolves_to "${proj}-web-1.$D" "$w1" ||
    fail "${proj}-web-1.$D should be $w1, got '$(resolve "${proj}-web-1.$D")'"
# Anything below a container's name resolves to it.
wait_for resolves_to "api.web-2.$proj.$D" "$w2" ||
    fail "api.web-2.$proj.$D should be $w2, got '$(resolve "api.web-2.$proj.$D")'"

# No published ports: no name.
run_ctr --name "lh-noports-$RUN_ID" "$LH_IMAGE" httpd -f -p 80 >/dev/null
# loophole.enable=false: no name.
run_ctr --name "lh-disabled-$RUN_ID" --label loophole.enable=false -p 80 \
    "$LH_IMAGE" httpd -f -p 80 >/dev/null
# loophole.names: extra names under the domain.
run_ctr --name "lh-extra-$RUN_ID" --label "loophole.names=extra-$RUN_ID,x.y-$RUN_ID" -p 80 \
    "$LH_IMAGE" httpd -f -p 80 >/dev/null
extra=$(expect_address "lh-extra-$RUN_ID.$D")
wait_for resolves_to "extra-$RUN_ID.$D" "$extra" ||
    fail "extra-$RUN_ID.$D should be $extra, got '$(resolve "extra-$RUN_ID.$D")'"
wait_for resolves_to "x.y-$RUN_ID.$D" "$extra" ||
    fail "x.y-$RUN_ID.$D should be $extra, got '$(resolve "x.y-$RUN_ID.$D")'"
# By now the daemon has seen the two containers started before this one.
expect_nxdomain "lh-noports-$RUN_ID.$D" 2
expect_nxdomain "lh-disabled-$RUN_ID.$D" 2

# Unknown names are NXDOMAIN, other types of a known name NOERROR and empty,
# names outside the zone REFUSED.
assert_eq NXDOMAIN "$(rcode "nothing-$RUN_ID.$D")" "unknown name"
assert_eq NOERROR "$(rcode "lh-plain-$RUN_ID.$D" AAAA)" "AAAA of a known name"
assert_eq "" "$(dig +short +time=1 +tries=1 @"$LH_DNS_IP" -p "$LH_DNS_PORT" "lh-plain-$RUN_ID.$D" AAAA)" "AAAA answer"
assert_eq REFUSED "$(rcode example.com)" "name outside the zone"
# The same over TCP, and the reverse name of an allocated address.
got=$(dig +tcp +short +time=2 +tries=1 @"$LH_DNS_IP" -p "$LH_DNS_PORT" "lh-test-mypg-$RUN_ID.$D" A)
assert_eq "$pg" "$got" "A over TCP"
got=$(dig +short +time=1 +tries=1 @"$LH_DNS_IP" -p "$LH_DNS_PORT" -x "$pg")
assert_eq "lh-test-mypg-$RUN_ID.$D." "$got" "PTR of $pg"

# A stopped container turns NXDOMAIN; the others stay.
docker stop -t 1 "lh-plain-$RUN_ID" >/dev/null || fail "docker stop failed"
expect_nxdomain "lh-plain-$RUN_ID.$D"
assert_eq "$pg" "$(resolve "lh-test-mypg-$RUN_ID.$D")" "pg after another container stopped"

# Stopping web-1 moves the service name to web-2.
docker stop -t 1 "${proj}_web_1" >/dev/null || fail "docker stop ${proj}_web_1 failed"
expect_nxdomain "web-1.$proj.$D"
wait_for resolves_to "web.$proj.$D" "$w2" ||
    fail "web.$proj.$D should follow web-2 ($w2) once web-1 stopped, got '$(resolve "web.$proj.$D")'"

stop_daemon
log "ok"
