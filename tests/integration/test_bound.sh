#!/usr/bin/env bash
# Containers that bind their own loopback address (issue 14), against the
# real engine: `-p 127.0.92.16:8080:8080` gives the container that address
# (mode "bound", address "bound", no loophole listener; connections go
# through Docker's own binding); the address is taken in the allocator, so no
# new container or lease gets it while the container runs (the pool starts at
# it, so the allocator's lowest free address would be it); another host port
# on that address gets a loophole listener; several bound addresses (the
# first is the container's, all are listed); a bound address outside the
# pool; a container loophole had placed on that address moves (names and
# listeners follow); a container bound on a lease's address shares it and the
# lease's name stays the lease's. Each part runs its own daemon.
#
# Written against the issue-14 interface before the daemon side was merged.
# Checks that rest on daemon behaviour the interface leaves open are marked
# "DAEMON:" with what they assume.
# shellcheck shell=bash
# jq filters name their $arguments inside single quotes:
# shellcheck disable=SC2016
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
for t in jq curl; do need_tool "$t"; done
[ -x "$LOOPHOLE_BIN/loophole" ] || fail "no client binary at $LOOPHOLE_BIN/loophole (build first)"

D=$LH_DOMAIN
body=$LH_TMP/body

# ---- Helpers ------------------------------------------------------------------

# docker_listens ADDR PORT: something on the host listens on exactly
# ADDR:PORT (Docker's docker-proxy, for a published port).
docker_listens() { grep -q . <<<"$(ss -Hltn src "$1:$2" 2>/dev/null)"; }

# expect_bound CONTAINER ADDR PORT: the container is served on ADDR with
# PORT/tcp in mode "bound", target ADDR:PORT, and no loophole socket listens
# anywhere on ADDR.
expect_bound() {
    expect_port "$1" "$3" tcp bound "$2:$3"
    wait_for -t 10 ctr_ip_is "$1" "$2" || fail "$1 should have the address $2: $(ctr_json "$1")"
    assert_eq bound "$(ctr_field "$1" .address)" "address mode of $1"
    not lh_listens_any tcp "$2" ||
        fail "loopholed listens on $2 although $1 binds it: $(ss -Hltnp src "$2" | grep "pid=$LH_DAEMON_PID,")"
}

# port_proxied CONTAINER PORT: PORT/tcp has a loophole listener (mode direct
# or mapped).
port_proxied() {
    case $(port_field "$1" "$2" tcp mode) in
    direct | mapped) return 0 ;;
    esac
    return 1
}

# ctr_is_skipped CONTAINER: listed, and skipped (not served).
ctr_is_skipped() {
    local s
    s=$(ctr_field "$1" .skipped)
    [ -n "$s" ] && [ "$s" != null ]
}

# ctr_moved_off CONTAINER ADDR: it has an address, and not ADDR.
ctr_moved_off() { lh_ctr_has_ip "$1" && [ "$(ctr_ip "$1")" != "$2" ]; }

# lease_is NAME JQ-FILTER COMPACT-JSON: the filter of the lease (sorted keys,
# compact) is COMPACT-JSON.
lease_is() { [ "$(lease_json "$1" | jq -S -c "$2" 2>/dev/null)" = "$3" ]; }

# ---- Parts --------------------------------------------------------------------

# -p 127.0.92.16:8080:8080 with a pool that starts at 127.0.92.16: the name
# resolves there, the port is bound (no loophole listener, Docker's binding
# answers), ls --json says so; three more containers and two leases get other
# addresses, --addr of it is 409 naming the container; the pool counts it.
# Once the container stops, the address is free for a lease.
part_bound() {
    local b=lh-bd-$RUN_ID a c i ips l code
    LH_POOL=127.0.92.16-127.0.92.30
    start_daemon
    run_web "$b" "bound-$RUN_ID" -p 127.0.92.16:8080:8080 -- 8080 >/dev/null
    a=$(expect_address "$b.$D")
    assert_eq 127.0.92.16 "$a" "$b.$D"
    expect_bound "$b" 127.0.92.16 8080
    assert_eq '["127.0.92.16"]' "$(ctr_field "$b" '.bound_ips | tostring')" "bound_ips of $b"
    assert_eq null "$(port_field "$b" 8080 tcp problem)" "problem of $b 8080/tcp"
    lhc ls --json >"$body" || fail "loophole ls --json failed"
    jq -e --arg c "$b" 'any(.[]; .container == $c and .address == "bound" and .ip == "127.0.92.16" and
        any(.ports[]; .port == 8080 and .mode == "bound" and .target == "127.0.92.16:8080"))' "$body" >/dev/null ||
        fail "loophole ls --json: $b is not bound on 127.0.92.16:8080: $(jq -c --arg c "$b" '.[] | select(.container == $c)' "$body")"
    # Connections to the name reach the container through Docker's binding.
    docker_listens 127.0.92.16 8080 || log "nothing listens on 127.0.92.16:8080 (no docker-proxy: Docker's NAT serves it)"
    expect_http_says "$a" 8080 "bound-$RUN_ID"
    not lh_listens_any tcp 127.0.92.16 || fail "loopholed listens on 127.0.92.16 after a connection"
    assert_eq 0 "$(lh_tcp_conns dst 127.0.92.16:8080)" "daemon connections to 127.0.92.16:8080"

    # An address bound by a container loophole does not serve
    # (loophole.enable=false) is taken all the same.
    run_ctr --name "lh-bd-off-$RUN_ID" --label loophole.enable=false -p 127.0.92.17:8080:8080 \
        "$LH_IMAGE" sleep 3600 >/dev/null
    wait_for -t 10 ctr_is_skipped "lh-bd-off-$RUN_ID" ||
        fail "the daemon does not list lh-bd-off: $(ctr_json "lh-bd-off-$RUN_ID")"

    # Nobody else gets them while they run.
    for i in 1 2 3; do
        run_web "lh-bd-o$i-$RUN_ID" "o$i-$RUN_ID" --expose 9000 -- 9000 >/dev/null
    done
    ips=""
    for i in 1 2 3; do
        c=$(expect_address "lh-bd-o$i-$RUN_ID.$D")
        assert_ne 127.0.92.16 "$c" "address of lh-bd-o$i (127.0.92.16 is bound by $b)"
        assert_ne 127.0.92.17 "$c" "address of lh-bd-o$i (127.0.92.17 is bound by lh-bd-off)"
        assert_eq "container []" "$(ctr_field "lh-bd-o$i-$RUN_ID" '"\(.address) \(.bound_ips | tostring)"')" \
            "address mode and bound_ips of lh-bd-o$i"
        ips+="$c "
    done
    for i in 1 2; do
        l=$(lease_add_ok "lease add lh-bd-l$i" "lh-bd-l$i-$RUN_ID")
        assert_ne 127.0.92.16 "$l" "address of lease lh-bd-l$i (127.0.92.16 is bound by $b)"
        assert_ne 127.0.92.17 "$l" "address of lease lh-bd-l$i (127.0.92.17 is bound by lh-bd-off)"
        ips+="$l "
    done
    log "others: $ips"
    assert_eq 5 "$(tr ' ' '\n' <<<"$ips" | sort -u | grep -c .)" "distinct addresses of the others ($ips)"
    expect_cli_error "lease add --addr 127.0.92.16 (bound by $b)" "$b" \
        lhc lease add "lh-bd-x-$RUN_ID" --addr 127.0.92.16
    code=$(lease_post "{\"name\": \"lh-bd-x-$RUN_ID\", \"ip\": \"127.0.92.16\"}" "$body")
    assert_eq 409 "$code" "POST /v1/leases for the bound 127.0.92.16"
    assert_eq "$(pool_used_expected)" "$(status_field .pool.used)" "pool.used (the bound address counts)"
    assert_eq "$a" "$(resolve "$b.$D")" "$b.$D after the others came"
    expect_http_says 127.0.92.16 8080 "bound-$RUN_ID"

    # A daemon restart finds it bound again.
    stop_daemon
    start_daemon
    expect_bound "$b" 127.0.92.16 8080
    wait_for resolves_to "$b.$D" 127.0.92.16 || fail "$b.$D after the restart: '$(resolve "$b.$D")'"

    # Stopped: the address is free (409 is for a lease or a running
    # container only).
    docker stop -t 1 "$b" >/dev/null || fail "docker stop $b failed"
    expect_nxdomain "$b.$D"
    assert_eq 127.0.92.16 "$(lease_add_ok "lease add --addr 127.0.92.16 once $b stopped" "lh-bd-y-$RUN_ID" --addr 127.0.92.16)" \
        "lease on the address of the stopped $b"
    stop_daemon
    log "ok"
}

# Other forms: a different host port on the bound address (a loophole
# listener on the container port there, which works); a bound address
# outside the pool (not counted in it, nothing else affected); two bound
# addresses (the first, in port order, is the container's; both listed, both
# ports bound).
part_forms() {
    local o=lh-bd-op-$RUN_ID x=lh-bd-out-$RUN_ID m=lh-bd-multi-$RUN_ID mode used
    LH_POOL=127.0.92.32-127.0.92.39
    start_daemon
    # Another host port on an address outside the pool.
    run_web "$o" "op-$RUN_ID" -p 127.0.92.40:18080:8080 -- 8080 >/dev/null
    wait_for -t 20 ctr_ip_is "$o" 127.0.92.40 || fail "$o should have 127.0.92.40: $(ctr_json "$o")"
    wait_for resolves_to "$o.$D" 127.0.92.40 || fail "$o.$D should resolve to 127.0.92.40, got '$(resolve "$o.$D")'"
    wait_for -t 20 port_proxied "$o" 8080 ||
        fail "$o 8080/tcp (host port 18080) should be served direct or mapped: $(port_json "$o" 8080 tcp)"
    mode=$(port_field "$o" 8080 tcp mode)
    log "$o 8080/tcp: mode $mode"
    # DAEMON: the container's address came from its HostIp, so it is "bound".
    assert_eq bound "$(ctr_field "$o" .address)" "address mode of $o"
    wait_for -t 10 lh_listens tcp 127.0.92.40 8080 || fail "loopholed does not listen on 127.0.92.40:8080"
    not lh_listens tcp 127.0.92.40 18080 || fail "loopholed listens on Docker's 127.0.92.40:18080"
    expect_http_says 127.0.92.40 8080 "op-$RUN_ID"
    expect_http_says 127.0.92.40 18080 "op-$RUN_ID"

    # Bound on an address outside the pool.
    run_web "$x" "out-$RUN_ID" -p 127.0.92.41:8080:8080 -- 8080 >/dev/null
    wait_for resolves_to "$x.$D" 127.0.92.41 || fail "$x.$D should resolve to 127.0.92.41, got '$(resolve "$x.$D")'"
    expect_bound "$x" 127.0.92.41 8080
    expect_http_says 127.0.92.41 8080 "out-$RUN_ID"

    # Two bound addresses: 7000 on .42 comes first.
    run_web "$m" "multi-$RUN_ID" -p 127.0.92.42:7000:7000 -p 127.0.92.43:7001:7001 -- 7000 7001 >/dev/null
    wait_for resolves_to "$m.$D" 127.0.92.42 || fail "$m.$D should resolve to 127.0.92.42 only, got '$(resolve "$m.$D" | tr '\n' ' ')'"
    expect_bound "$m" 127.0.92.42 7000
    expect_port "$m" 7001 tcp bound 127.0.92.43:7001
    assert_eq '["127.0.92.42","127.0.92.43"]' "$(ctr_field "$m" '.bound_ips | sort | tostring')" "bound_ips of $m"
    not lh_listens_any tcp 127.0.92.43 || fail "loopholed listens on $m's second bound address"
    expect_http_says 127.0.92.42 7000 "multi-$RUN_ID"
    expect_http_says 127.0.92.43 7001 "multi-$RUN_ID"
    # None of these is in the pool.
    used=$(status_field .pool.used)
    assert_eq "$(pool_used_expected)" "$used" "pool.used with bound addresses outside the pool"
    stop_daemon
    log "ok"
}

# A container loophole placed on the lowest address (an exposed port, no -p);
# then a container bound to that very address: the bound one gets it, the
# first moves to another address, its name and its listener follow, nothing
# of loophole's is left on the bound address. It stays moved across a daemon
# restart.
part_move() {
    local p=lh-bd-mv-p-$RUN_ID b=lh-bd-mv-b-$RUN_ID a a2 a3
    LH_POOL=127.0.92.50-127.0.92.60
    start_daemon
    run_web "$p" "placed-$RUN_ID" --expose 9090 -- 9090 >/dev/null
    a=$(expect_address "$p.$D")
    expect_http_says "$a" 9090 "placed-$RUN_ID"
    lh_listens tcp "$a" 9090 || fail "loopholed does not listen on $a:9090 for $p"
    log "$p placed on $a"

    # Another port than the placed one's: Docker must be able to bind it
    # while loophole still listens there on 9090.
    run_web "$b" "bound-$RUN_ID" -p "$a:8080:8080" -- 8080 >/dev/null
    expect_bound "$b" "$a" 8080
    wait_for -t 20 ctr_moved_off "$p" "$a" ||
        fail "$p did not move off $a, now bound by $b: $(ctr_json "$p")"
    a2=$(ctr_ip "$p")
    in_pool "$a2" || fail "$p moved to $a2, outside the pool"
    log "$p moved $a -> $a2"
    wait_for resolves_to "$p.$D" "$a2" || fail "$p.$D should follow to $a2, got '$(resolve "$p.$D")'"
    wait_for resolves_to "$b.$D" "$a" || fail "$b.$D should resolve to $a, got '$(resolve "$b.$D")'"
    expect_http_says "$a2" 9090 "placed-$RUN_ID"
    wait_for -t 10 not lh_listens tcp "$a" 9090 || fail "loopholed still listens on $a:9090 after $p moved"
    not lh_listens_any tcp "$a" || fail "loopholed listens on $a, bound by $b"
    lh_tcp refused "$a" 9090 || fail "$a:9090 should refuse once $p moved"
    expect_http_says "$a" 8080 "bound-$RUN_ID"

    # DAEMON: the moved container keeps its new address across a restart
    # (its lease moved with it).
    stop_daemon
    start_daemon
    a3=$(expect_address "$p.$D")
    assert_ne "$a" "$a3" "$p after a daemon restart (its old address is bound by $b)"
    assert_eq "$a2" "$a3" "$p after a daemon restart"
    expect_bound "$b" "$a" 8080
    stop_daemon
    log "ok"
}

# A lease, then a container bound on the lease's address: it shares it, the
# lease lists it, the lease's name stays the lease's (also when the container
# claims that name), nothing else gets the address, and once the container
# is gone the lease is as before.
part_lease_share() {
    local s=lh-bd-sbx-$RUN_ID c=lh-bd-sh-$RUN_ID l o before
    LH_POOL=127.0.92.70-127.0.92.80
    start_daemon
    l=$(lease_add_ok "lease add $s" "$s")
    before=$(lease_json "$s" | jq -S -c .)
    # The container also asks for the lease's name (loophole.names).
    run_web "$c" "share-$RUN_ID" -p "$l:8080:8080" --label "loophole.names=$s" -- 8080 >/dev/null
    expect_bound "$c" "$l" 8080
    wait_for resolves_to "$c.$D" "$l" || fail "$c.$D should resolve to $l, got '$(resolve "$c.$D")'"
    wait_for -t 10 lease_is "$s" '.containers' "[\"$c\"]" ||
        fail "lease $s should list $c: $(lease_json "$s")"
    assert_eq "$s" "$(lease_field "$s" name)" "name of the lease"
    assert_eq "$s.$D" "$(lease_field "$s" dns)" "dns of the lease"
    assert_eq "$l" "$(resolve "$s.$D")" "$s.$D"
    assert_eq false "$(ctr_field "$c" ".names | index(\"$s.$D\") != null")" \
        "$c holds the lease's name $s.$D: $(ctr_json "$c")"
    grep -Eq "^$s +$l +$s\\.$D +- +$c *\$" <<<"$(lhc lease ls)" ||
        fail "lease ls: no row '$s $l $s.$D - $c': $(lhc lease ls)"
    expect_http_says "$l" 8080 "share-$RUN_ID"
    not lh_listens_any tcp "$l" || fail "loopholed listens on $l, bound by $c"

    # Nobody else gets it.
    run_web "lh-bd-sh-o-$RUN_ID" "o-$RUN_ID" --expose 9000 -- 9000 >/dev/null
    o=$(expect_address "lh-bd-sh-o-$RUN_ID.$D")
    assert_ne "$l" "$o" "a new container on the shared address $l"
    # Held by the lease and the container: the sentence names one of them.
    expect_cli_error "lease add --addr $l (held by $s and $c)" "$s|$c" lhc lease add "lh-bd-sh-x-$RUN_ID" --addr "$l"
    assert_eq "$l" "$(lease_add_ok "lease add $s again" "$s")" "idempotent add of $s while shared"

    # The container goes; the lease stays as it was.
    docker rm -f "$c" >/dev/null || fail "docker rm -f $c failed"
    expect_nxdomain "$c.$D"
    wait_for -t 10 lease_is "$s" . "$before" ||
        fail "lease $s after its container went: $(lease_json "$s"), before: $before"
    assert_eq "$l" "$(resolve "$s.$D")" "$s.$D after the container went"
    stop_daemon
    log "ok"
}

run_parts
