#!/usr/bin/env bash
# Named leases (issue 14): `loophole lease add/rm/ls` against the real daemon
# and engine. As root and as nobody (403); an idempotent add whose stdout is
# exactly the address; --addr taken (409), outside the pool (400), bad names
# (400); a full pool (409 naming it); the name resolves; leases survive a
# daemon restart (and a SIGKILL); with --alias netlink in a private network
# namespace the /32 is on lo while the lease lives, stays when the daemon
# stops, comes back at start after it was removed by hand (a reboot), and goes
# with `lease rm`; a container flood that fills a tiny pool never gets the
# lease's address; a lease may not take a name a running container derives,
# and a container started later loses that name to the lease; leases work
# without an engine. Each part runs its own daemon.
#
# Written against the issue-14 interface before the daemon side was merged.
# Checks that rest on daemon behaviour the interface leaves open are marked
# "DAEMON:" with what they assume.
# shellcheck shell=bash
# jq filters name their $arguments inside single quotes:
# shellcheck disable=SC2016

# The alias part runs in a private network namespace so that the host's lo is
# never touched (as test_alias_netlink.sh does); the Docker socket is a file,
# so it is reachable from there.
if [ "${LH_PART:-}" = alias ] && [ -z "${LH_IN_NETNS:-}" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: needs root" >&2
        exit 77
    fi
    command -v unshare >/dev/null || {
        echo "FAIL: unshare is missing" >&2
        exit 1
    }
    exec unshare -n env LH_IN_NETNS=1 bash "$0" "$@"
fi

# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
for t in jq curl setpriv; do need_tool "$t"; done
[ -x "$LOOPHOLE_BIN/loophole" ] || fail "no client binary at $LOOPHOLE_BIN/loophole (build first)"

D=$LH_DOMAIN
body=$LH_TMP/body

# ---- Helpers ------------------------------------------------------------------

# lease_names: the names in GET /v1/leases, sorted, one per line.
lease_names() { api_leases | jq -r '.[].name' | LC_ALL=C sort; }

# used_ips: every address a container (of any run) or a lease holds, one per
# line.
used_ips() {
    {
        curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/containers | jq -r '.[].ip // empty'
        api_leases | jq -r '.[].ip'
    } | sort -u
}

# free_addr FIRST-OCTET LAST-OCTET: the highest address 127.0.91.N with N in
# [FIRST, LAST] that nothing holds (other daemons' containers on this engine
# take the low addresses of our pool too).
free_addr() {
    local n used
    used=$(used_ips)
    for n in $(seq "$2" -1 "$1"); do
        if ! printf '%s\n' "$used" | grep -qx "127.0.91.$n"; then
            echo "127.0.91.$n"
            return 0
        fi
    done
    fail "no free address in 127.0.91.$1-127.0.91.$2"
}

# lease_shape_ok FILE: FILE is an array of lease objects as documented,
# sorted by address.
lease_shape_ok() {
    jq -e --arg d "$D" 'type == "array" and all(.[];
        (keys | contains(["alias", "containers", "created_at", "dns", "ip", "name"])) and
        (.name | type == "string" and test("^[a-z0-9][a-z0-9-]*$")) and
        .dns == (.name + "." + $d) and
        (.ip | type == "string" and test("^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$")) and
        (.created_at | type == "number" and . > 1600000000000) and
        (.alias == null or (.alias | type == "boolean")) and
        (.containers | type == "array" and all(.[]; type == "string"))) and
        ([.[].ip | split(".") | map(tonumber)] as $a | $a == ($a | sort))' "$1" >/dev/null 2>&1
}

# lease_row NAME: the fields after NAME of its row in `loophole lease ls`
# (an empty USED BY, shown as "-" or as nothing, left out).
lease_row() {
    lhc lease ls 2>/dev/null | awk -v n="$1" '$1 == n {
        if (NF == 5 && $5 == "-") NF = 4
        $1 = ""; sub(/^ /, ""); print }'
}

# settled NAME...: each container either has an address or is skipped.
settled() {
    local c j
    for c in "$@"; do
        j=$(ctr_json "$c")
        [ -n "$j" ] || return 1
        jq -e '(.ip != null) or (.skipped != null)' <<<"$j" >/dev/null || return 1
    done
}

# ctr_has_conflict CONTAINER NAME / ctr_has_name CONTAINER NAME: NAME is in
# the container's conflicts / names in /v1/containers.
ctr_has_conflict() { ctr_json "$1" | jq -e --arg n "$2" '.conflicts | index($n) != null' >/dev/null 2>&1; }
ctr_has_name() { ctr_json "$1" | jq -e --arg n "$2" '.names | index($n) != null' >/dev/null 2>&1; }

# ---- Parts --------------------------------------------------------------------

# add/ls/rm as root, over the CLI and the API: idempotent, stdout exactly the
# address, 409 and 400 with a sentence, sanitised names, the JSON shape, the
# name in DNS; as nobody: ls works, add and rm are 403.
part_cli() {
    local A B C U a a2 b bx c cx t0 t1 ca n
    LH_POOL=127.0.91.2-127.0.91.40
    A=lh-ls-a-$RUN_ID
    B=lh-ls-b-$RUN_ID
    C=lh-ls-c-$RUN_ID
    # nobody must reach the socket: the temporary directory is 0700.
    chmod o+x "$LH_TMP"
    start_daemon
    wait_for -t 10 control_up || fail "the control API does not answer"
    assert_eq 0 "$(status_field .leases)" "leases in /v1/status before any add"
    lhc lease ls --json >"$body" || fail "lease ls --json with no leases failed"
    assert_eq "[]" "$(jq -c . "$body")" "lease ls --json with no leases"

    t0=$(now_ms)
    a=$(lease_add_ok "lease add $A" "$A")
    t1=$(now_ms)
    in_pool "$a" || fail "lease $A got $a, outside the pool $LH_POOL"
    log "lease $A -> $a"
    lease_json "$A" >"$body"
    jq -e --arg n "$A" --arg d "$A.$D" --arg ip "$a" --argjson t0 "$t0" --argjson t1 "$t1" '
        .name == $n and .dns == $d and .ip == $ip and .alias == null and .containers == [] and
        .created_at >= $t0 - 1000 and .created_at <= $t1 + 1000' "$body" >/dev/null ||
        fail "GET /v1/leases/$A: $(cat "$body") (expected ip $a, alias null with --alias off, created between $t0 and $t1)"
    ca=$(jq -r .created_at "$body")
    wait_for resolves_to "$A.$D" "$a" || fail "$A.$D should resolve to $a, got '$(resolve "$A.$D")' ($(rcode "$A.$D"))"

    # Idempotent: the same address, the same lease, with or without --addr.
    a2=$(lease_add_ok "second lease add $A" "$A")
    assert_eq "$a" "$a2" "address of the second lease add $A"
    a2=$(lease_add_ok "lease add $A --addr $a" "$A" --addr "$a")
    assert_eq "$a" "$a2" "address of lease add $A --addr $a"
    assert_eq "$ca" "$(lease_field "$A" created_at)" "created_at after repeated adds"
    code=$(lease_post "{\"name\": \"$A\"}" "$body")
    assert_eq 200 "$code" "POST /v1/leases of an existing name ($(cat "$body"))"
    assert_eq "$a" "$(jq -r .ip "$body")" "ip in the 200 answer"

    # A requested address.
    bx=$(free_addr 20 40)
    b=$(lease_add_ok "lease add $B --addr $bx" "$B" --addr "$bx")
    assert_eq "$bx" "$b" "address of lease add $B --addr $bx"
    wait_for resolves_to "$B.$D" "$b" || fail "$B.$D should resolve to $b, got '$(resolve "$B.$D")'"

    # 409: the address is another lease's (the sentence names it); the name
    # exists with another address.
    expect_cli_error "lease add $C --addr $b (held by $B)" "$B" lhc lease add "$C" --addr "$b"
    code=$(lease_post "{\"name\": \"$C\", \"ip\": \"$b\"}" "$body")
    assert_eq 409 "$code" "POST /v1/leases for $b, held by $B"
    is_json_error "$body" || fail "409 for a held address: not a JSON error: $(cat "$body")"
    expect_cli_error "lease add $A --addr $b (A exists at $a)" '.' lhc lease add "$A" --addr "$b"
    code=$(lease_post "{\"name\": \"$A\", \"ip\": \"$b\"}" "$body")
    assert_eq 409 "$code" "POST /v1/leases of $A with another address"
    assert_eq "$a" "$(lease_field "$A" ip)" "address of $A after a refused change"
    assert_eq 404 "$(ctl_http GET "/v1/leases/$C" "$body")" "GET /v1/leases/$C after refused adds"

    # 400: outside the pool (the sentence names the pool), not an address,
    # reserved or empty names, a bad body.
    expect_cli_error "lease add --addr outside the pool" "127\\.0\\.91\\.2-127\\.0\\.91\\.40" \
        lhc lease add "$C" --addr 127.0.92.200
    code=$(lease_post "{\"name\": \"$C\", \"ip\": \"127.0.92.200\"}" "$body")
    assert_eq 400 "$code" "POST /v1/leases outside the pool"
    grep -q '127\.0\.91\.2-127\.0\.91\.40' "$body" || fail "400 outside the pool does not name the pool: $(cat "$body")"
    code=$(lease_post "{\"name\": \"$C\", \"ip\": \"127.0.0.1\"}" "$body")
    assert_eq 400 "$code" "POST /v1/leases for 127.0.0.1 (outside the pool, reserved)"
    for ip in 0.0.0.0 10.0.0.1; do
        expect_cli_error "lease add --addr $ip" "127\\.0\\.91\\.2-127\\.0\\.91\\.40" lhc lease add "$C" --addr "$ip"
    done
    # Not an address: the client may refuse it itself, as a usage error
    # (exit 2, with the usage line), or pass on the daemon's 400 (exit 1).
    lh_capture lhc lease add "$C" --addr not-an-address
    [ "$LH_RC" -eq 1 ] || [ "$LH_RC" -eq 2 ] ||
        fail "lease add --addr not-an-address: exit status $LH_RC (stderr '$(cat "$LH_TMP/cap.err")')"
    assert_eq "" "$(cat "$LH_TMP/cap.out")" "stdout of lease add --addr not-an-address"
    grep -q 'not-an-address' "$LH_TMP/cap.err" ||
        fail "lease add --addr not-an-address: stderr does not name the value: $(cat "$LH_TMP/cap.err")"
    code=$(lease_post "{\"name\": \"$C\", \"ip\": \"not-an-address\"}" "$body")
    assert_eq 400 "$code" "POST /v1/leases with ip not-an-address"
    expect_cli_error "lease add ns" '.' lhc lease add ns
    expect_cli_error "lease add NS" '.' lhc lease add NS
    expect_cli_error "lease add '!!!'" '.' lhc lease add '!!!'
    for req in '{"name": "ns"}' '{"name": "___"}' '{"name": ""}' '{}' '{"name": 5}' 'not json' '[]'; do
        code=$(lease_post "$req" "$body")
        assert_eq 400 "$code" "POST /v1/leases $req"
        is_json_error "$body" || fail "POST /v1/leases $req: not a JSON error: $(cat "$body")"
    done
    assert_eq 2 "$(api_leases | jq length)" "leases after the refused adds ($(api_leases))"

    # Created over the API with "addr" (a synonym of "ip"): 201, then 200.
    cx=$(free_addr 20 40)
    code=$(lease_post "{\"name\": \"$C\", \"addr\": \"$cx\"}" "$body")
    assert_eq 201 "$code" "POST /v1/leases $C addr $cx ($(cat "$body"))"
    jq -e --arg n "$C" --arg ip "$cx" '.name == $n and .ip == $ip' "$body" >/dev/null ||
        fail "201 body for $C: $(cat "$body")"
    code=$(lease_post "{\"name\": \"$C\", \"addr\": \"$cx\"}" "$body")
    assert_eq 200 "$code" "POST /v1/leases $C again"
    c=$cx
    wait_for resolves_to "$C.$D" "$c" || fail "$C.$D should resolve to $c"

    # Sanitised like container names: lowercase, '_' and '.' to '-'.
    U=LH_Up.x_$RUN_ID
    n=lh-up-x-$RUN_ID
    lease_add_ok "lease add $U" "$U" >/dev/null
    assert_eq 200 "$(ctl_http GET "/v1/leases/$n" "$body")" "GET /v1/leases/$n (sanitised from $U)"
    assert_eq "$n.$D" "$(jq -r .dns "$body")" "dns of the sanitised lease"
    wait_for resolves "$n.$D" || fail "$n.$D does not resolve"
    # The original spelling is the same lease (idempotent).
    assert_eq "$(jq -r .ip "$body")" "$(lease_add_ok "lease add $U again" "$U")" "address of $U added again"

    # ls --json: the API's array verbatim, documented shape, sorted by address.
    lhc lease ls --json >"$body" || fail "lease ls --json failed"
    lease_shape_ok "$body" || fail "lease ls --json: wrong shape or not sorted by address: $(cat "$body")"
    assert_eq "$(api_leases | jq -S -c .)" "$(jq -S -c . "$body")" "lease ls --json vs GET /v1/leases"
    assert_eq "$(printf '%s\n' "$A" "$B" "$C" "$n" | LC_ALL=C sort)" "$(lease_names)" "lease names"
    assert_eq 4 "$(status_field .leases)" "leases in /v1/status"
    status_field .pool >"$LH_TMP/pool.json"
    jq -e '.used >= 4 and .used + .free == 39' "$LH_TMP/pool.json" >/dev/null ||
        fail "/v1/status pool with 4 leases in a pool of 39: $(cat "$LH_TMP/pool.json")"
    assert_eq "$(pool_used_expected)" "$(jq -r .used "$LH_TMP/pool.json")" "pool.used with 4 leases"
    # The table: a header, and A's row: address, DNS name, no alias ("-").
    lhc lease ls >"$body" || fail "lease ls failed"
    head -n1 "$body" | grep -Eq '^NAME +ADDRESS +DNS +ALIAS +USED BY *$' ||
        fail "lease ls: unexpected header: $(head -n1 "$body")"
    assert_eq "$a $A.$D -" "$(lease_row "$A")" "lease ls row of $A"
    assert_eq "$b $B.$D -" "$(lease_row "$B")" "lease ls row of $B"

    # nobody reads, but may not add or remove (403, a sentence, nothing done).
    as_nobody "$LOOPHOLE_BIN/loophole" --socket "$LH_SOCK" lease ls --json >"$LH_TMP/nobody.json" ||
        fail "lease ls --json as nobody failed"
    assert_eq "$(api_leases | jq -S -c .)" "$(jq -S -c . "$LH_TMP/nobody.json")" "lease ls --json as nobody"
    expect_cli_error "lease add as nobody" 'root|admin|sudo|permi|allow|forbidden|privilege' \
        as_nobody "$LOOPHOLE_BIN/loophole" --socket "$LH_SOCK" lease add "nb-$RUN_ID"
    assert_eq 404 "$(ctl_http GET "/v1/leases/nb-$RUN_ID" "$body")" "lease of nobody's refused add"
    expect_cli_error "lease rm as nobody" 'root|admin|sudo|permi|allow|forbidden|privilege' \
        as_nobody "$LOOPHOLE_BIN/loophole" --socket "$LH_SOCK" lease rm "$A"
    assert_eq "$a" "$(lease_field "$A" ip)" "lease $A after nobody's rm"
    code=$(as_nobody curl -s -m 5 --unix-socket "$LH_SOCK" -X POST --data-binary "{\"name\": \"nb-$RUN_ID\"}" \
        -o /dev/stdout -w '\n%{http_code}' http://x/v1/leases)
    assert_eq 403 "$(printf '%s\n' "$code" | tail -n1)" "POST /v1/leases as nobody"
    printf '%s\n' "$code" | head -n1 | jq -e '.error | type == "string" and length > 0' >/dev/null ||
        fail "POST /v1/leases as nobody: not a JSON error: $code"
    code=$(as_nobody curl -s -m 5 --unix-socket "$LH_SOCK" -X DELETE -o /dev/null -w '%{http_code}' \
        "http://x/v1/leases/$A")
    assert_eq 403 "$code" "DELETE /v1/leases/$A as nobody"
    assert_eq 4 "$(api_leases | jq length)" "leases after nobody's attempts"

    # rm: nothing on stdout, the name goes from DNS; a second rm is 404.
    expect_cli_ok "lease rm $A" lhc lease rm "$A"
    assert_eq "" "$(cat "$LH_TMP/cap.out")" "stdout of lease rm"
    assert_eq 404 "$(ctl_http GET "/v1/leases/$A" "$body")" "GET /v1/leases/$A after rm"
    is_json_error "$body" || fail "404 of a removed lease: not a JSON error: $(cat "$body")"
    expect_nxdomain "$A.$D"
    expect_cli_error "lease rm $A again" '.' lhc lease rm "$A"
    assert_eq 204 "$(ctl_http DELETE "/v1/leases/$C" "$body")" "DELETE /v1/leases/$C"
    assert_eq 404 "$(ctl_http DELETE "/v1/leases/$C" "$body")" "DELETE /v1/leases/$C again"
    is_json_error "$body" || fail "DELETE of a missing lease: not a JSON error: $(cat "$body")"
    expect_nxdomain "$C.$D"
    assert_eq 2 "$(status_field .leases)" "leases in /v1/status after two removals"
    # The address is free again.
    assert_eq "$a" "$(lease_add_ok "lease add --addr $a after rm" "lh-ls-again-$RUN_ID" --addr "$a")" \
        "address of a lease on a removed lease's address"
    # A long name is cut to 63 characters, as a DNS label.
    n=lh-long-$RUN_ID-$(printf 'x%.0s' $(seq 1 70))
    lease_add_ok "lease add of a ${#n}-character name" "$n" >/dev/null
    assert_eq 200 "$(ctl_http GET "/v1/leases/${n:0:63}" "$body")" "GET /v1/leases/ of the first 63 characters of $n"
    wait_for resolves "${n:0:63}.$D" || fail "${n:0:63}.$D does not resolve"
    stop_daemon
    log "ok"
}

# A pool of three addresses filled with leases: the next add is 409 with a
# sentence naming the pool and its size; a removal frees exactly that address.
part_pool_full() {
    local i got=() foreign pool=127.0.91.50-127.0.91.52 freed again
    LH_POOL=$pool
    # Without an engine: other tests' containers (which every daemon on the
    # engine would serve) come and go at any moment and would take or free
    # addresses of this tiny pool between two checks.
    LH_DOCKER_HOST=unix://$LH_TMP/no-docker.sock
    start_daemon
    wait_for -t 10 control_up || fail "the control API does not answer"
    # (Counted all the same, should a container ever be served here.)
    for i in 1 2 3 4; do
        lh_capture lhc lease add "lh-full-$i-$RUN_ID"
        [ "$LH_RC" -eq 0 ] || break
        got+=("$(cat "$LH_TMP/cap.out")")
    done
    foreign=$(curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/containers |
        jq -r '.[].ip // empty' | while read -r ip; do in_pool "$ip" && echo "$ip"; done | sort -u | grep -c . || true)
    log "leases: ${got[*]}; addresses of containers in the pool: $foreign"
    assert_eq 3 "$((${#got[@]} + foreign))" "leases plus containers in a pool of 3"
    [ "${#got[@]}" -ge 1 ] || fail "not even one lease in an empty pool of 3"
    assert_eq "${#got[@]}" "$(printf '%s\n' "${got[@]}" | sort -u | grep -c .)" "distinct lease addresses (${got[*]})"
    for i in "${got[@]}"; do in_pool "$i" || fail "lease address $i outside $pool"; done
    # The refused add: exit 1, one sentence naming the pool and its size.
    assert_eq 1 "$LH_RC" "exit status of lease add into a full pool"
    assert_eq "" "$(cat "$LH_TMP/cap.out")" "stdout of lease add into a full pool"
    grep -q "127\.0\.91\.50-127\.0\.91\.52" "$LH_TMP/cap.err" || fail "the sentence does not name the pool: $(cat "$LH_TMP/cap.err")"
    grep -Eq "\b3 addresses\b" "$LH_TMP/cap.err" || fail "the sentence does not give the pool's size (3 addresses): $(cat "$LH_TMP/cap.err")"
    grep -qi "full" "$LH_TMP/cap.err" || fail "the sentence does not say the pool is full: $(cat "$LH_TMP/cap.err")"
    code=$(lease_post "{\"name\": \"lh-full-x-$RUN_ID\"}" "$body")
    assert_eq 409 "$code" "POST /v1/leases into a full pool"
    is_json_error "$body" || fail "409 for a full pool: not a JSON error: $(cat "$body")"
    grep -q "127\.0\.91\.50-127\.0\.91\.52" "$body" || fail "409 body does not name the pool: $(cat "$body")"
    assert_eq 404 "$(ctl_http GET "/v1/leases/lh-full-x-$RUN_ID" "$body")" "a lease refused for a full pool"
    assert_eq "3 0" "$(status_field '"\(.pool.used) \(.pool.free)"')" "pool used and free in /v1/status"
    # An existing name is still idempotent in a full pool.
    assert_eq "${got[0]}" "$(lease_add_ok "lease add of an existing name in a full pool" "lh-full-1-$RUN_ID")" \
        "address of lh-full-1 added again in a full pool"
    # Freed: the next lease gets exactly that address.
    freed=${got[0]}
    expect_cli_ok "lease rm lh-full-1" lhc lease rm "lh-full-1-$RUN_ID"
    again=$(lease_add_ok "lease add after a removal" "lh-full-y-$RUN_ID")
    assert_eq "$freed" "$again" "address of the lease added after freeing $freed"
    stop_daemon
    log "ok"
}

# Leases survive a restart of the daemon (same addresses, created_at, names
# in DNS), and a SIGKILL right after an add.
part_restart() {
    local x y z xa ya za before after
    LH_POOL=127.0.91.60-127.0.91.80
    x=lh-rs-x-$RUN_ID
    y=lh-rs-y-$RUN_ID
    z=lh-rs-z-$RUN_ID
    start_daemon
    wait_for -t 10 control_up || fail "the control API does not answer"
    xa=$(lease_add_ok "lease add $x" "$x")
    ya=$(lease_add_ok "lease add $y --addr 127.0.91.79" "$y" --addr 127.0.91.79)
    before=$(lhc lease ls --json | jq -S -c .)
    [ "$(jq length <<<"$before")" -eq 2 ] || fail "lease ls --json before the restart: $before"
    stop_daemon

    start_daemon
    wait_for -t 10 control_up || fail "the control API does not answer after the restart"
    after=$(lhc lease ls --json | jq -S -c .)
    assert_eq "$before" "$after" "lease ls --json across a daemon restart"
    wait_for resolves_to "$x.$D" "$xa" || fail "$x.$D should resolve to $xa after the restart, got '$(resolve "$x.$D")'"
    wait_for resolves_to "$y.$D" "$ya" || fail "$y.$D should resolve to $ya after the restart"
    assert_eq "$xa" "$(lease_add_ok "lease add $x after the restart" "$x")" "idempotent add after the restart"

    # Added, then killed at once: the lease was saved when it was made.
    za=$(lease_add_ok "lease add $z" "$z")
    kill -KILL "$LH_DAEMON_PID"
    daemon_reap
    start_daemon
    wait_for -t 10 control_up || fail "the control API does not answer after the SIGKILL"
    assert_eq "$za" "$(lease_field "$z" ip)" "address of $z after a SIGKILL"
    assert_eq 3 "$(api_leases | jq length)" "leases after the SIGKILL"
    wait_for resolves_to "$z.$D" "$za" || fail "$z.$D should resolve to $za after the SIGKILL"
    stop_daemon
    log "ok"
}

# --alias netlink (in a private network namespace): the lease's /32 is on lo
# as soon as `lease add` has printed it, stays when the daemon stops (a
# container's alias goes), is added again at start after it was removed while
# the daemon was down (a reboot), survives a SIGKILL and the next start, and
# goes with `lease rm`. The alias of an address a container binds stays at
# stop too.
part_alias() {
    local n m c a ma ca
    [ -n "${LH_IN_NETNS:-}" ] || fail "part alias must run in a private network namespace"
    ip link set lo up || fail "ip link set lo up failed in the private namespace"
    LH_POOL=127.0.91.100-127.0.91.120
    n=lh-al-$RUN_ID
    m=lh-al-m-$RUN_ID
    c=lh-al-c-$RUN_ID
    start_daemon --alias netlink
    wait_for -t 10 control_up || fail "the control API does not answer"
    a=$(lease_add_ok "lease add $n" "$n")
    # "prints the address once its alias exists": no waiting.
    lo_has_addr "$a" || fail "$a/32 is not on lo when lease add returned: $(ip -4 -o addr show dev lo)"
    assert_eq true "$(lease_field "$n" alias)" "alias of $n with --alias netlink"
    assert_eq "$a $n.$D yes" "$(lease_row "$n")" "lease ls row of $n"
    ma=$(lease_add_ok "lease add $m --addr 127.0.91.119" "$m" --addr 127.0.91.119)
    lo_has_addr "$ma" || fail "$ma/32 is not on lo when lease add --addr returned"
    wait_for resolves_to "$n.$D" "$a" || fail "$n.$D should resolve to $a"

    # A container's alias, for contrast: it goes on SIGTERM, the leases' stay,
    # and so does the alias of an address a container binds itself (Docker
    # binds it in the host's namespace; the daemon's alias is in this one).
    run_ctr --name "$c" --expose 8080 "$LH_IMAGE" sleep 3600 >/dev/null
    ca=$(expect_address "$c.$D")
    wait_for lo_has_addr "$ca" || fail "$ca/32 ($c) never appeared on lo"
    run_ctr --name "lh-al-b-$RUN_ID" -p 127.0.91.116:8080:8080 "$LH_IMAGE" sleep 3600 >/dev/null
    wait_for resolves_to "lh-al-b-$RUN_ID.$D" 127.0.91.116 ||
        fail "lh-al-b-$RUN_ID.$D should resolve to its bound 127.0.91.116, got '$(resolve "lh-al-b-$RUN_ID.$D")'"
    wait_for lo_has_addr 127.0.91.116 || fail "127.0.91.116/32 (bound by lh-al-b) never appeared on lo"
    stop_daemon
    lo_has_addr "$a" || fail "$a/32 of lease $n went away when the daemon stopped"
    lo_has_addr "$ma" || fail "$ma/32 of lease $m went away when the daemon stopped"
    not lo_has_addr "$ca" || fail "$ca/32 of the container $c is still on lo after SIGTERM"
    lo_has_addr 127.0.91.116 || fail "127.0.91.116/32, bound by the running lh-al-b, went away when the daemon stopped"
    docker rm -f "lh-al-b-$RUN_ID" >/dev/null || fail "docker rm -f lh-al-b failed"

    # A reboot: the alias is gone while the daemon is down.
    ip addr del "$a/32" dev lo || fail "ip addr del $a/32 failed"
    start_daemon --alias netlink
    wait_for -t 20 lo_has_addr "$a" || fail "$a/32 of lease $n was not added again at start"
    lo_has_addr "$ma" || fail "$ma/32 of lease $m is gone after the restart"
    wait_for lo_has_addr "$ca" || fail "$ca/32 ($c, running) not back after the restart"
    assert_eq true "$(lease_field "$n" alias)" "alias of $n after the restart"

    # A killed daemon, and the next start's clean-up of leftover aliases: a
    # lease's alias is no leftover.
    kill -KILL "$LH_DAEMON_PID"
    daemon_reap
    docker stop -t 1 "$c" >/dev/null || fail "docker stop $c failed"
    start_daemon --alias netlink
    wait_for -t 20 not lo_has_addr "$ca" || fail "the leftover $ca/32 of the stopped $c was not removed at start"
    lo_has_addr "$a" || fail "$a/32 of lease $n was removed at start after a SIGKILL"
    lo_has_addr "$ma" || fail "$ma/32 of lease $m was removed at start after a SIGKILL"

    # rm: the alias goes.
    expect_cli_ok "lease rm $n" lhc lease rm "$n"
    wait_for -t 5 not lo_has_addr "$a" || fail "$a/32 is still on lo after lease rm $n"
    lo_has_addr "$ma" || fail "$ma/32 of lease $m went away with lease rm $n"
    stop_daemon
    lo_has_addr "$ma" || fail "$ma/32 of lease $m went away when the daemon stopped"
    not lo_has_addr "$a" || fail "$a/32 of the removed lease $n is back"
    log "ok"
}

# A pool of eight: one lease, then ten containers with exposed ports. The
# lease's address never goes to a container; seven containers fit (fewer when
# other runs' containers on this engine hold some), the rest are "address pool
# exhausted"; a container stopped and a new one started, and
# a daemon restart with the pool still full, change neither. Once the lease is
# removed, a waiting container gets its address.
part_flood() {
    local l la i c cs=() ips n_ip n_ex ctrs hit
    LH_POOL=127.0.91.130-127.0.91.137
    l=lh-fl-$RUN_ID
    start_daemon
    wait_for -t 10 control_up || fail "the control API does not answer"
    # The lowest free address: the one the allocator would hand out first.
    la=$(lease_add_ok "lease add $l" "$l")
    for i in $(seq 1 10); do
        c=lh-fl-c$i-$RUN_ID
        cs+=("$c")
        run_ctr --name "$c" --expose 8080 "$LH_IMAGE" sleep 3600 >/dev/null
    done
    wait_for -t 30 settled "${cs[@]}" || fail "the flood did not settle: $(for c in "${cs[@]}"; do ctr_json "$c"; done)"

    # check_flood WHEN RUNNING: the lease keeps its address, no container (of
    # any run) has it, at most 7 of ours have an address, the others of the
    # RUNNING ones are exhausted.
    check_flood() {
        ctrs=$(curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/containers) || fail "$1: GET /v1/containers failed"
        hit=$(jq -r --arg a "$la" '.[] | select(.ip == $a) | .container' <<<"$ctrs")
        assert_eq "" "$hit" "$1: containers on the lease's address $la"
        assert_eq "$la" "$(lease_field "$l" ip)" "$1: address of lease $l"
        resolves_to "$l.$D" "$la" || fail "$1: $l.$D should resolve to $la, got '$(resolve "$l.$D")'"
        ips=$(jq -r --arg r "lh-fl-c[0-9]+-$RUN_ID" '.[] | select(.container | test("^" + $r + "$")) | .ip // empty' <<<"$ctrs")
        n_ip=$(printf '%s\n' "$ips" | grep -c . || true)
        n_ex=$(jq -r --arg r "lh-fl-c[0-9]+-$RUN_ID" '[.[] | select((.container | test("^" + $r + "$")) and .state == "running" and .skipped == "address pool exhausted")] | length' <<<"$ctrs")
        log "$1: $n_ip of ours with an address ($(tr '\n' ' ' <<<"$ips")), $n_ex exhausted"
        [ "$n_ip" -le 7 ] || fail "$1: $n_ip containers have an address in a pool of 8 with a lease"
        assert_eq "$n_ip" "$(printf '%s\n' "$ips" | sort -u | grep -c . || true)" "$1: distinct container addresses"
        for i in $ips; do in_pool "$i" || fail "$1: container address $i outside $LH_POOL"; done
        assert_eq "$2" "$((n_ip + n_ex))" "$1: running containers of ours, with an address or exhausted"
        [ "$n_ex" -ge $(($2 - 7)) ] || fail "$1: only $n_ex exhausted of $2"
    }
    check_flood "after the flood" 10
    grep -qi 'exhausted' <<<"$(status_field '.problems[]')" || fail "/v1/status shows no exhausted-pool problem: $(status_field .problems)"

    # One with an address stops, an eleventh starts: reclaiming goes to the
    # stopped container's address, never the lease's. (Stopped: c1 when
    # other runs' containers hold every address ours could have had.)
    c=$(jq -r --arg r "lh-fl-c[0-9]+-$RUN_ID" 'first(.[] | select((.container | test("^" + $r + "$")) and .ip != null) | .container) // empty' <<<"$ctrs")
    [ -n "$c" ] || c=lh-fl-c1-$RUN_ID
    docker stop -t 1 "$c" >/dev/null || fail "docker stop $c failed"
    wait_for -t 20 not lh_ctr_has_ip "$c" || fail "$c still has an address after it stopped"
    run_ctr --name "lh-fl-c11-$RUN_ID" --expose 8080 "$LH_IMAGE" sleep 3600 >/dev/null
    cs+=("lh-fl-c11-$RUN_ID")
    wait_for -t 30 settled "lh-fl-c11-$RUN_ID" || fail "lh-fl-c11 did not settle: $(ctr_json "lh-fl-c11-$RUN_ID")"
    check_flood "after a stop and a new container" 10

    # A restart with the pool full.
    stop_daemon
    start_daemon
    local running=()
    for i in "${cs[@]}"; do [ "$i" = "$c" ] || running+=("$i"); done
    wait_for -t 30 settled "${running[@]}" || fail "the flood did not settle after the restart"
    check_flood "after a daemon restart" 10

    # Without the lease, a waiting container gets its address.
    expect_cli_ok "lease rm $l" lhc lease rm "$l"
    has_la() {
        curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/containers |
            jq -e --arg a "$la" 'any(.[]; .ip == $a)' >/dev/null
    }
    # DAEMON: an exhausted container is placed again at the next apply (the
    # removal is one).
    wait_for -t 20 has_la || fail "no waiting container got $la after lease rm"
    stop_daemon
    log "ok"
}

# Names: a lease may not take a name a running container derives (container
# name, compose container name, project name in project mode) nor a running
# container's address (409 naming it); a stopped container's name and
# address are free (started again, it gets another address); a container
# started later loses the lease's name to it (a conflict) and keeps its other
# names.
part_names() {
    local c ci p late lip la l2 code
    LH_POOL=127.0.91.140-127.0.91.170
    c=lh-nm-c-$RUN_ID
    p=lhnm$RUN_ID
    start_daemon
    run_ctr --name "$c" --expose 8080 "$LH_IMAGE" sleep 3600 >/dev/null
    # A compose container in project mode: it derives "$p-web-1", "$p".
    # shellcheck disable=SC2046 # compose_labels prints one argument a line
    run_ctr --name "$p-web-1" $(compose_labels "$p" web 1) --label loophole.address=project \
        --expose 8080 "$LH_IMAGE" sleep 3600 >/dev/null
    ci=$(expect_address "$c.$D")
    expect_address "web-1.$p.$D" >/dev/null
    wait_for resolves "$p.$D" || fail "$p.$D (project mode) does not resolve"

    expect_cli_error "lease named like the running $c" "$c" lhc lease add "$c"
    code=$(lease_post "{\"name\": \"$c\"}" "$body")
    assert_eq 409 "$code" "POST /v1/leases named like a running container"
    is_json_error "$body" || fail "409 for a container's name: not a JSON error: $(cat "$body")"
    # The name as the container spells it, sanitised the same way.
    expect_cli_error "lease named like $c in capitals" '.' lhc lease add "${c^^}"
    expect_cli_error "lease named like the compose container $p-web-1" '.' lhc lease add "$p-web-1"
    expect_cli_error "lease named like the project $p" '.' lhc lease add "$p"
    expect_cli_error "lease on $c's address $ci" "$c" lhc lease add "lh-nm-x-$RUN_ID" --addr "$ci"
    assert_eq 0 "$(api_leases | jq length)" "leases after the refused adds"
    assert_eq "$ci" "$(resolve "$c.$D")" "$c.$D after the refused adds"

    # A stopped container derives nothing: its name may be leased; started
    # again, it loses that name to the lease.
    docker stop -t 1 "$c" >/dev/null || fail "docker stop $c failed"
    expect_nxdomain "$c.$D"
    la=$(lease_add_ok "lease named like the stopped $c" "$c")
    docker start "$c" >/dev/null || fail "docker start $c failed"
    wait_for -t 20 lh_ctr_has_ip "$c" || fail "$c got no address after docker start: $(ctr_json "$c")"
    lip=$(ctr_ip "$c")
    assert_ne "$la" "$lip" "the container $c and the lease named like it share an address"
    wait_for -t 10 ctr_has_conflict "$c" "$c.$D" ||
        fail "$c does not show the conflict over $c.$D: $(ctr_json "$c")"
    assert_eq "$la" "$(resolve "$c.$D")" "$c.$D: the lease keeps its name"

    # A stopped container's address may be leased (409 is for running
    # holders only); started again, the container gets another address.
    local s=lh-nm-s-$RUN_ID si sl
    run_ctr --name "$s" --expose 8080 "$LH_IMAGE" sleep 3600 >/dev/null
    si=$(expect_address "$s.$D")
    docker stop -t 1 "$s" >/dev/null || fail "docker stop $s failed"
    expect_nxdomain "$s.$D"
    sl=$(lease_add_ok "lease add --addr $si of the stopped $s" "lh-nm-sl-$RUN_ID" --addr "$si")
    assert_eq "$si" "$sl" "address of the lease on the stopped $s's address"
    docker start "$s" >/dev/null || fail "docker start $s failed"
    wait_for -t 20 lh_ctr_has_ip "$s" || fail "$s got no address after docker start: $(ctr_json "$s")"
    assert_ne "$si" "$(ctr_ip "$s")" "$s after its address was leased"
    wait_for resolves_to "$s.$D" "$(ctr_ip "$s")" || fail "$s.$D should follow it to $(ctr_ip "$s")"
    assert_eq "$si" "$(resolve "lh-nm-sl-$RUN_ID.$D")" "the lease on $si after $s came back"

    # A container started after the lease, with a second name of its own.
    late=lh-nm-late-$RUN_ID
    l2=$(lease_add_ok "lease add $late" "$late")
    run_ctr --name "$late" --label "loophole.names=lh-nm-alt-$RUN_ID" --expose 8080 \
        "$LH_IMAGE" sleep 3600 >/dev/null
    lip=$(expect_address "lh-nm-alt-$RUN_ID.$D")
    assert_ne "$l2" "$lip" "the late container and the lease named like it share an address"
    assert_eq "$lip" "$(ctr_ip "$late")" "address of $late vs its second name"
    assert_eq "$l2" "$(resolve "$late.$D")" "$late.$D: the lease keeps its name"
    ctr_has_conflict "$late" "$late.$D" || fail "conflicts of $late lack $late.$D: $(ctr_json "$late")"
    ! ctr_has_name "$late" "$late.$D" || fail "names of $late include $late.$D, the lease's: $(ctr_json "$late")"
    # DAEMON: as between containers, the name goes to the container once the
    # lease that held it is gone.
    expect_cli_ok "lease rm $late" lhc lease rm "$late"
    wait_for -t 10 resolves_to "$late.$D" "$lip" ||
        fail "$late.$D should go to the container ($lip) once the lease is gone, got '$(resolve "$late.$D")'"
    stop_daemon
    log "ok"
}

# Without an engine (its socket missing): leases are served all the same,
# added, resolved, kept across a restart and removed.
part_no_engine() {
    local n=lh-ne-$RUN_ID a
    LH_POOL=127.0.91.180-127.0.91.190
    LH_DOCKER_HOST=unix://$LH_TMP/no-docker.sock
    start_daemon
    wait_for -t 10 control_up || fail "the control API does not answer"
    a=$(lease_add_ok "lease add $n without an engine" "$n")
    in_pool "$a" || fail "lease $n got $a, outside $LH_POOL"
    wait_for resolves_to "$n.$D" "$a" || fail "$n.$D should resolve to $a without an engine, got '$(resolve "$n.$D")'"
    stop_daemon
    start_daemon
    wait_for resolves_to "$n.$D" "$a" || fail "$n.$D should resolve to $a after a restart without an engine"
    assert_eq "$a" "$(lease_field "$n" ip)" "address of $n after a restart without an engine"
    expect_cli_ok "lease rm $n" lhc lease rm "$n"
    expect_nxdomain "$n.$D"
    stop_daemon
    log "ok"
}

run_parts
