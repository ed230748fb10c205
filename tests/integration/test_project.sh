#!/usr/bin/env bash
# One address per compose project (issue 14), against the real engine. The
# compose containers are made with `docker run` and the labels compose sets
# (project, service, container-number), so no compose is needed. With the
# daemon flag --address-per project: both services of a project on one
# address, each service's ports served there (connect to each), PROJECT,
# service, replica and container names resolve to it, `loophole ls` groups the
# project, the address is stable across container and daemon restarts. With
# the label loophole.address=project on the default daemon: the same, other
# projects keep one address per container, a bad label value falls back to
# the default. A port clash inside the project (two services, and two
# replicas, on one port): the first started keeps it, the other gets a
# problem on that port and keeps its names. A container of the project with
# loophole.address=container (or a one-off) keeps its own address. Each part
# runs its own daemon.
#
# Written against the issue-14 interface before the daemon side was merged.
# Checks that rest on daemon behaviour the interface leaves open are marked
# "DAEMON:" with what they assume.
# shellcheck shell=bash
# jq filters name their $arguments inside single quotes:
# shellcheck disable=SC2016
# compose_labels prints one argument a line, split on purpose:
# shellcheck disable=SC2046
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
for t in jq curl; do need_tool "$t"; done
[ -x "$LOOPHOLE_BIN/loophole" ] || fail "no client binary at $LOOPHOLE_BIN/loophole (build first)"

D=$LH_DOMAIN
body=$LH_TMP/body

# ---- Helpers ------------------------------------------------------------------

# svc PROJECT SERVICE NUMBER TEXT DOCKER-RUN-ARGS... -- PORT...: a compose-like
# container named PROJECT-SERVICE-NUMBER (compose v2's spelling) serving TEXT
# over HTTP on each PORT (run_web); prints its name.
svc() {
    local p=$1 s=$2 n=$3 text=$4
    shift 4
    run_web "$p-$s-$n" "$text" $(compose_labels "$p" "$s" "$n") "$@" >/dev/null
    echo "$p-$s-$n"
}

# expect_same_addr ADDR NAME...: every NAME resolves to ADDR.
expect_same_addr() {
    local a=$1 n
    shift
    for n in "$@"; do
        wait_for resolves_to "$n" "$a" || fail "$n should resolve to $a, got '$(resolve "$n" | tr '\n' ' ')' ($(rcode "$n"))"
    done
}

# ls_row_of CONTAINER: the row number of the container in the table of
# `loophole ls -a` (rows counted after the header, footnotes left out);
# empty when it is not there.
ls_row_of() {
    lhc ls -a | awk -v c="$1" 'NR > 1 && !/^!/ && NF { r++; for (i = 1; i <= NF; i++) if ($i == c) { print r; exit } }'
}

# expect_grouped PROJECT-CONTAINERS... -- LATER-CONTAINER: in `loophole ls
# -a`, the rows of the project's containers are together, and the
# non-compose container's row comes after them.
expect_grouped() {
    local want=() later r rows=() first last c
    while [ "$1" != -- ]; do
        want+=("$1")
        shift
    done
    later=$2
    for c in "${want[@]}"; do
        r=$(ls_row_of "$c")
        [ -n "$r" ] || fail "loophole ls -a shows no row for $c:
$(lhc ls -a)"
        rows+=("$r")
    done
    first=$(printf '%s\n' "${rows[@]}" | sort -n | head -n1)
    last=$(printf '%s\n' "${rows[@]}" | sort -n | tail -n1)
    assert_eq "${#want[@]}" "$((last - first + 1))" "rows (${rows[*]}) of ${want[*]} together in loophole ls -a:
$(lhc ls -a)
"
    r=$(ls_row_of "$later")
    [ -n "$r" ] || fail "loophole ls -a shows no row for $later"
    [ "$r" -gt "$last" ] || fail "the non-compose $later (row $r) comes before the project's rows (${rows[*]}) in loophole ls -a:
$(lhc ls -a)"
}

# ---- Parts --------------------------------------------------------------------

# --address-per project: web (8080) and db (5432) share one address; both
# ports are served there; every name resolves to it; a non-compose container
# started between them has its own; ls groups the project; the address stays
# across a restart of the containers and of the daemon.
part_flag() {
    local p=lhpf$RUN_ID web db plain w pa w2
    LH_POOL=127.0.93.2-127.0.93.40
    start_daemon --address-per project
    web=$(svc "$p" web 1 "web-$RUN_ID" --expose 8080 -- 8080)
    plain=lh-pj-plain-$RUN_ID
    run_web "$plain" "plain-$RUN_ID" --expose 8080 -- 8080 >/dev/null
    db=$(svc "$p" db 1 "db-$RUN_ID" --expose 5432 -- 5432)

    w=$(expect_address "$p.$D")
    log "$p.$D -> $w"
    expect_same_addr "$w" "web.$p.$D" "db.$p.$D" "web-1.$p.$D" "db-1.$p.$D" "$web.$D" "$db.$D" \
        "api.web.$p.$D"
    wait_for -t 10 ctr_ip_is "$web" "$w" || fail "$web should have $w: $(ctr_json "$web")"
    wait_for -t 10 ctr_ip_is "$db" "$w" || fail "$db should have $w: $(ctr_json "$db")"
    assert_eq project "$(ctr_field "$web" .address)" "address mode of $web"
    assert_eq project "$(ctr_field "$db" .address)" "address mode of $db"
    pa=$(expect_address "$plain.$D")
    assert_ne "$w" "$pa" "the non-compose $plain on the project's address"
    assert_eq container "$(ctr_field "$plain" .address)" "address mode of $plain"

    # Both services' ports on the one address, each reaching its service.
    expect_http_says "$w" 8080 "web-$RUN_ID"
    expect_http_says "$w" 5432 "db-$RUN_ID"
    expect_http_says "$pa" 8080 "plain-$RUN_ID"
    lh_listens tcp "$w" 8080 || fail "loopholed does not listen on $w:8080"
    lh_listens tcp "$w" 5432 || fail "loopholed does not listen on $w:5432"
    assert_eq null "$(port_field "$web" 8080 tcp problem)" "problem of $web 8080/tcp"
    assert_eq null "$(port_field "$db" 5432 tcp problem)" "problem of $db 5432/tcp"

    # ls: the project's rows together, sharing the address; --json agrees.
    expect_grouped "$web" "$db" -- "$plain"
    lhc ls --json >"$body" || fail "loophole ls --json failed"
    assert_eq "$w $w" "$(jq -r --arg a "$web" --arg b "$db" '[.[] | select(.container == $a or .container == $b) | .ip] | join(" ")' "$body")" \
        "ls --json addresses of $web and $db"
    # The project's address counts once in the pool.
    assert_eq "$(pool_used_expected)" "$(status_field .pool.used)" "pool.used with a project on one address"

    # Stable: the containers restarted (the db first this time), then the
    # daemon.
    docker stop -t 1 "$web" "$db" >/dev/null || fail "docker stop failed"
    expect_nxdomain "$p.$D"
    docker start "$db" >/dev/null || fail "docker start $db failed"
    docker start "$web" >/dev/null || fail "docker start $web failed"
    w2=$(expect_address "$p.$D")
    assert_eq "$w" "$w2" "project address after the containers restarted"
    expect_same_addr "$w" "web.$p.$D" "db.$p.$D"
    expect_http_says "$w" 8080 "web-$RUN_ID"
    expect_http_says "$w" 5432 "db-$RUN_ID"
    stop_daemon
    start_daemon --address-per project
    w2=$(expect_address "$p.$D")
    assert_eq "$w" "$w2" "project address after a daemon restart"
    expect_same_addr "$w" "web-1.$p.$D" "db-1.$p.$D" "$web.$D" "$db.$D"
    expect_http_says "$w" 8080 "web-$RUN_ID"
    expect_http_says "$w" 5432 "db-$RUN_ID"
    stop_daemon
    log "ok"
}

# The default daemon (container mode) and the label loophole.address=project:
# the labelled project shares one address; an unlabelled project keeps one
# address per container; a bad value is a logged problem and the default
# (container) applies; the label on a non-compose container changes nothing;
# two projects whose names sanitise alike keep two addresses.
part_label() {
    local p=lhpl$RUN_ID q=lhpq$RUN_ID r=lhpr$RUN_ID web db q1 q2 r1 r2 n w qa qb ra rb na
    LH_POOL=127.0.93.42-127.0.93.80
    start_daemon
    web=$(svc "$p" web 1 "web-$RUN_ID" --label loophole.address=project --expose 8080 -- 8080)
    db=$(svc "$p" db 1 "db-$RUN_ID" --label loophole.address=project --expose 5432 -- 5432)
    q1=$(svc "$q" web 1 "q1-$RUN_ID" --expose 8080 -- 8080)
    q2=$(svc "$q" db 1 "q2-$RUN_ID" --expose 5432 -- 5432)
    r1=$(svc "$r" web 1 "r1-$RUN_ID" --label loophole.address=bogus --expose 8080 -- 8080)
    r2=$(svc "$r" db 1 "r2-$RUN_ID" --label loophole.address=bogus --expose 5432 -- 5432)
    n=lh-pj-lbl-$RUN_ID
    run_web "$n" "n-$RUN_ID" --label loophole.address=project --expose 8080 -- 8080 >/dev/null

    w=$(expect_address "$p.$D")
    expect_same_addr "$w" "web.$p.$D" "db.$p.$D" "web-1.$p.$D" "db-1.$p.$D" "$web.$D" "$db.$D"
    assert_eq project "$(ctr_field "$web" .address)" "address mode of $web"
    expect_http_says "$w" 8080 "web-$RUN_ID"
    expect_http_says "$w" 5432 "db-$RUN_ID"

    qa=$(expect_address "web-1.$q.$D")
    qb=$(expect_address "db-1.$q.$D")
    assert_ne "$qa" "$qb" "the unlabelled project $q on one address (container mode)"
    assert_eq container "$(ctr_field "$q1" .address)" "address mode of $q1"
    assert_eq container "$(ctr_field "$q2" .address)" "address mode of $q2"
    ra=$(expect_address "web-1.$r.$D")
    rb=$(expect_address "db-1.$r.$D")
    assert_ne "$ra" "$rb" "loophole.address=bogus: the default (container) should apply"
    assert_eq container "$(ctr_field "$r1" .address)" "address mode of $r1 (bad label)"
    assert_eq container "$(ctr_field "$r2" .address)" "address mode of $r2 (bad label)"
    log_has 'loophole\.address' || fail "no log line about the bad loophole.address label"
    na=$(expect_address "$n.$D")
    assert_eq container "$(ctr_field "$n" .address)" "address mode of the non-compose $n"
    for a in "$qa" "$qb" "$ra" "$rb" "$na"; do
        assert_ne "$w" "$a" "another container on the project's address $w"
    done
    expect_http_says "$qa" 8080 "q1-$RUN_ID"
    expect_http_says "$qb" 5432 "q2-$RUN_ID"

    # Two projects whose names sanitise alike ("_" and "-") are two projects:
    # two addresses (the DNS names go to the first, as in any conflict).
    local s1 s2 sa sb
    s1=$(svc "lhps_$RUN_ID" web 1 "s1-$RUN_ID" --label loophole.address=project --expose 8080 -- 8080)
    wait_for -t 20 lh_ctr_has_ip "$s1" || fail "$s1 got no address: $(ctr_json "$s1")"
    s2=$(svc "lhps-$RUN_ID" web 1 "s2-$RUN_ID" --label loophole.address=project --expose 8080 -- 8080)
    wait_for -t 20 lh_ctr_has_ip "$s2" || fail "$s2 got no address: $(ctr_json "$s2")"
    sa=$(ctr_ip "$s1")
    sb=$(ctr_ip "$s2")
    assert_ne "$sa" "$sb" "projects lhps_$RUN_ID and lhps-$RUN_ID on one address"
    wait_for resolves_to "lhps-$RUN_ID.$D" "$sa" || fail "lhps-$RUN_ID.$D should stay the first project's ($sa), got '$(resolve "lhps-$RUN_ID.$D")'"
    expect_http_says "$sa" 8080 "s1-$RUN_ID"
    expect_http_says "$sb" 8080 "s2-$RUN_ID"
    stop_daemon
    log "ok"
}

# A port clash inside a project: web (8080) started first keeps 8080; api
# (8080 and 9090) started next gets mode "none" and a problem on 8080, keeps
# its names and serves 9090; a second web replica on 8080 clashes too. The
# first-started keeps the port across a daemon restart.
part_clash() {
    local p=lhpc$RUN_ID web api web2 w prob
    LH_POOL=127.0.93.82-127.0.93.120
    start_daemon --address-per project
    web=$(svc "$p" web 1 "web-$RUN_ID" --expose 8080 -- 8080)
    w=$(expect_address "$p.$D")
    expect_http_says "$w" 8080 "web-$RUN_ID"
    api=$(svc "$p" api 1 "api-$RUN_ID" --expose 8080 --expose 9090 -- 8080 9090)
    expect_same_addr "$w" "api.$p.$D" "api-1.$p.$D" "$api.$D"
    wait_for -t 10 ctr_ip_is "$api" "$w" || fail "$api should have $w: $(ctr_json "$api")"
    expect_port "$api" 8080 tcp none
    prob=$(port_field "$api" 8080 tcp problem)
    log "problem of $api 8080/tcp: $prob"
    printf '%s' "$prob" | grep -qF "8080/tcp on $w" || fail "the problem of $api 8080/tcp does not name 8080/tcp on $w: $prob"
    printf '%s' "$prob" | grep -qF "$web" || fail "the problem of $api 8080/tcp does not name $web: $prob"
    assert_eq null "$(port_field "$web" 8080 tcp problem)" "problem of $web 8080/tcp"
    expect_http_says "$w" 8080 "web-$RUN_ID"
    expect_http_says "$w" 9090 "api-$RUN_ID"
    assert_eq "[]" "$(ctr_field "$api" '.conflicts | tostring')" "name conflicts of $api"

    # A second replica of web.
    web2=$(svc "$p" web 2 "web2-$RUN_ID" --expose 8080 -- 8080)
    expect_same_addr "$w" "web-2.$p.$D" "$web2.$D"
    expect_port "$web2" 8080 tcp none
    printf '%s' "$(port_field "$web2" 8080 tcp problem)" | grep -qF "8080/tcp on $w" ||
        fail "no clash problem on $web2 8080/tcp: $(port_json "$web2" 8080 tcp)"
    wait_for resolves_to "web.$p.$D" "$w" || fail "web.$p.$D should stay on $w"
    expect_http_says "$w" 8080 "web-$RUN_ID"

    # After a restart, the daemon sees them all at once: the one that started
    # first still keeps the port.
    stop_daemon
    start_daemon --address-per project
    expect_same_addr "$w" "$p.$D"
    expect_port "$api" 8080 tcp none
    expect_port "$web2" 8080 tcp none
    assert_eq null "$(port_field "$web" 8080 tcp problem)" "problem of $web 8080/tcp after the restart"
    expect_http_says "$w" 8080 "web-$RUN_ID"
    expect_http_says "$w" 9090 "api-$RUN_ID"
    stop_daemon
    log "ok"
}

# In project mode, a container of the project labelled
# loophole.address=container keeps its own address (and its names go there,
# PROJECT.<domain> stays with the shared one); so does a one-off container
# of the project.
part_override() {
    local p=lhpo$RUN_ID web solo one w s o
    LH_POOL=127.0.93.122-127.0.93.160
    start_daemon --address-per project
    web=$(svc "$p" web 1 "web-$RUN_ID" --expose 8080 -- 8080)
    solo=$(svc "$p" solo 1 "solo-$RUN_ID" --label loophole.address=container --expose 8080 -- 8080)
    one=$p-web-run-$RUN_ID
    run_web "$one" "one-$RUN_ID" --label "com.docker.compose.project=$p" --label com.docker.compose.service=web \
        --label com.docker.compose.container-number=1 --label com.docker.compose.oneoff=True \
        --expose 8080 -- 8080 >/dev/null
    w=$(expect_address "$p.$D")
    wait_for -t 10 ctr_ip_is "$web" "$w" || fail "$web should have $w: $(ctr_json "$web")"
    s=$(expect_address "solo-1.$p.$D")
    assert_ne "$w" "$s" "the container-mode $solo on the project's address"
    assert_eq container "$(ctr_field "$solo" .address)" "address mode of $solo"
    expect_same_addr "$s" "solo.$p.$D" "$solo.$D"
    assert_eq "$w" "$(resolve "$p.$D")" "$p.$D with a container-mode member"
    expect_http_says "$w" 8080 "web-$RUN_ID"
    expect_http_says "$s" 8080 "solo-$RUN_ID"
    # The one-off: its own address, web's names stay web's.
    o=$(expect_address "$one.$D")
    assert_ne "$w" "$o" "the one-off $one on the project's address"
    assert_ne "$s" "$o" "the one-off $one on $solo's address"
    expect_http_says "$o" 8080 "one-$RUN_ID"
    assert_eq "$w" "$(resolve "web-1.$p.$D")" "web-1.$p.$D with a one-off about"
    assert_eq "$w" "$(resolve "web.$p.$D")" "web.$p.$D with a one-off about"
    stop_daemon
    log "ok"
}

run_parts
