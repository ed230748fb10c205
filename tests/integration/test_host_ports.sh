#!/usr/bin/env bash
# Host services inside containers (issue 12), against the real engine: a
# container reaches the host's localhost:PORT at its own localhost:PORT.
# The label (plain, mapped, an explicit loopback host, a ::1-only host server,
# a name under the domain, UDP); expose/unexpose as a member of the Docker
# socket's group and as nobody, surviving a container restart, a daemon
# restart and a compose recreation; 2 MB with half-close and a host target
# that goes away mid-way; hostile labels; an image that carries the label
# itself; and the sidecar mode forced on Linux with a locally imported socat
# image. Each part runs its own daemon.
# shellcheck shell=bash
# jq filters name their $arguments inside single quotes:
# shellcheck disable=SC2016
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
for t in jq curl socat sha256sum setpriv docker-compose; do need_tool "$t"; done

# A pool of this test's own: other daemons on this engine serve 127.0.77.x.
LH_POOL=127.0.86.2-127.0.86.60
D=$LH_DOMAIN
L=$LOOPHOLE_BIN/loophole
lh() { "$L" --socket "$LH_SOCK" "$@"; }
# Host programs run from the read-only /usr inside the test image (see
# run_host_server); this directory holds peer.py for the UDP client inside.
PEER_DIR=$(dirname "$LH_PEER")

# ---- Helpers ------------------------------------------------------------------

# listening tcp|udp ADDR PORT: some program on the host holds ADDR:PORT.
listening() {
    local flags=-Hltn
    [ "$1" = udp ] && flags=-Hlun
    ss "$flags" src "$2:$3" 2>/dev/null | grep -q .
}

# serve_http ADDR PORT DIR: a host HTTP server on exactly ADDR:PORT serving DIR
# (python3 picks the address family from ADDR); prints its pid.
serve_http() {
    python3 -m http.server --bind "$1" --directory "$3" "$2" >>"$LH_TMP/http-$2.log" 2>&1 &
    local pid=$!
    on_exit "kill $pid"
    wait_for -t 10 listening tcp "$1" "$2" || fail "the host HTTP server on $1:$2 did not start: $(cat "$LH_TMP/http-$2.log")"
    echo "$pid"
}

# www DIR: a directory with a marker file whose contents name this run.
www() {
    mkdir -p "$1"
    echo "marker-$RUN_ID" >"$1/marker"
    chmod -R a+rX "$1"
}

# jtrue [JQ-OPTIONS...] FILTER: stdin is JSON and FILTER is true for it. jq
# 1.6's -e exits 0 on empty input, so that is checked first.
jtrue() {
    local in
    in=$(cat)
    [ -n "$in" ] && printf '%s' "$in" | jq -e "$@" >/dev/null 2>&1
}

# host_ports CONTAINER-NAME: the container's host_ports array from
# `loophole ls -a --json` (empty when the container is not listed).
host_ports() {
    lh ls -a --json 2>/dev/null |
        jq -c --arg n "$1" 'first(.[] | select(.container == $n)) | .host_ports // empty' 2>/dev/null
}

# hp_entry CONTAINER-NAME PORT [PROTO]: that one entry of host_ports, or empty.
hp_entry() {
    host_ports "$1" | jq -c --argjson p "$2" --arg proto "${3:-tcp}" \
        'first(.[] | select(.port == $p and .proto == $proto)) // empty' 2>/dev/null
}

# hp_ready CONTAINER-NAME PORT PROTO [MODE]: the entry is there with no
# problem, in MODE when given (for wait_for).
hp_ready() {
    hp_entry "$1" "$2" "$3" | jtrue --arg m "${4:-}" \
        '.problem == null and .mode != null and ($m == "" or .mode == $m)'
}

# expect_hp CONTAINER-NAME PORT PROTO [MODE]: waits until hp_ready; prints the entry.
expect_hp() {
    wait_for -t 20 hp_ready "$@" ||
        fail "$1 has no ready host port $2/$3${4:+ in mode $4}: host_ports $(host_ports "$1"), problem $(hp_problem "$1")"
    hp_entry "$1" "$2" "$3"
}

# hp_problem CONTAINER-NAME: the container's host_ports_problem ("null" when none).
hp_problem() {
    lh ls -a --json 2>/dev/null |
        jq -c --arg n "$1" 'first(.[] | select(.container == $n)) | .host_ports_problem' 2>/dev/null
}

# has_hp_problem CONTAINER-NAME: the container is listed with a
# host_ports_problem (for wait_for).
has_hp_problem() {
    local p
    p=$(hp_problem "$1")
    [ -n "$p" ] && [ "$p" != null ]
}

# hp_listed CONTAINER-NAME: ls lists the container with a host_ports array.
hp_listed() { [ -n "$(host_ports "$1")" ]; }

# any_problem CONTAINER-NAME: a label-level problem or a problem on an entry,
# each on a line of its own (for wait_for: fails when there is none).
any_problem() {
    local out
    out=$(lh ls -a --json 2>/dev/null |
        jq -r --arg n "$1" 'first(.[] | select(.container == $n))
            | .host_ports_problem // empty, (.host_ports // [] | .[] | .problem // empty)' 2>/dev/null)
    [ -n "$out" ] && printf '%s\n' "$out"
}

# field JSON JQ-FILTER: one value out of a JSON text (compact).
field() { printf '%s' "$1" | jq -c "$2"; }

# ctr_get CONTAINER URL: busybox wget inside the container (not the host's GNU
# wget that /usr mounts bring, which retries a reset for a minute); prints
# the body. No -T:
# busybox 1.35's wget crashes (SIGSEGV) with it, so timeout(1) is the deadline.
ctr_get() { timeout 10 docker exec "$1" /bin/busybox wget -qO- "$2" 2>&1; }

# ctr_gets CONTAINER URL EXPECTED: ctr_get returns EXPECTED (for wait_for).
ctr_gets() { [ "$(ctr_get "$1" "$2")" = "$3" ]; }

# expect_get CONTAINER URL EXPECTED: ctr_get must return EXPECTED now.
expect_get() {
    local got
    got=$(ctr_get "$1" "$2")
    assert_eq "$3" "$got" "wget $2 inside $1"
}

# expect_refused CONTAINER URL: wget inside fails at once with "refused"
# (within 3 s: a host target that is not there never hangs the container).
expect_refused() {
    local got t rc
    t=$(now_ms)
    # Not -q: busybox wget says nothing of a refusal when quiet.
    got=$(timeout 10 docker exec "$1" /bin/busybox wget -O /dev/null "$2" 2>&1)
    rc=$?
    [ "$rc" -ne 0 ] || fail "wget $2 inside $1 succeeded: $got"
    [ "$rc" -ne 124 ] || fail "wget $2 inside $1 hung (10 s)"
    [ $(($(now_ms) - t)) -lt 3000 ] || fail "wget $2 inside $1 took $(($(now_ms) - t)) ms to fail"
    printf '%s' "$got" | grep -Eqi 'refused|reset|error getting response|closed' ||
        fail "wget $2 inside $1: expected a refusal or reset, got: $got"
}

# sleeper NAME DOCKER-RUN-ARGS...: a container from the test image that only
# waits, with the host's /usr (for /usr/bin/python3 and peer.py inside).
sleeper() {
    local n=$1
    shift
    run_host_server --name "$n" -v "$PEER_DIR:/peer:ro" "$@" -- sleep 3600
}

# other_port PORT...: a free port different from every PORT given.
other_port() {
    local p q _
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        p=$(free_port)
        for q in "$@"; do
            [ "$p" = "$q" ] && continue 2
        done
        echo "$p"
        return 0
    done
    fail "free_port keeps giving the same ports"
}

# status_hp: /v1/status's host_ports object.
status_hp() { curl -sf -m 5 --unix-socket "$LH_SOCK" http://x/v1/status | jq -c .host_ports; }

# ---- Parts --------------------------------------------------------------------

# The label in its plainest form: `loophole.host-ports=P` and the host's
# 127.0.0.1:P answers at the container's localhost:P and 127.0.0.1:P; a
# restarted container gets new listeners; the host server gone: a prompt
# refusal inside.
part_label() {
    start_daemon
    local P c e srv st id
    P=$(free_port)
    www "$LH_TMP/www"
    srv=$(serve_http 127.0.0.1 "$P" "$LH_TMP/www")
    c=lh-hp-label-$RUN_ID
    id=$(sleeper "$c" --label "loophole.host-ports=$P")
    e=$(expect_hp "$c" "$P" tcp)
    log "host port entry: $e"
    assert_eq "\"localhost:$P\"" "$(field "$e" .target)" "target of $P"
    assert_eq '"label"' "$(field "$e" .source)" "source of $P"
    # A native rootful engine on Linux as root: the namespace path, no sidecar.
    assert_eq '"netns"' "$(field "$e" .mode)" "mode of $P (status: $(status_hp))"
    # Once ls shows it ready the listener exists: no retries here.
    expect_get "$c" "http://localhost:$P/marker" "marker-$RUN_ID"
    expect_get "$c" "http://127.0.0.1:$P/marker" "marker-$RUN_ID"
    # Nothing of the reverse direction on the host side in the netns mode.
    assert_eq "" "$(docker ps -aq --filter "label=loophole.sidecar=$id")" "sidecars in the netns mode"

    counted() {
        hp_entry "$c" "$P" tcp | jtrue '.connections.total >= 2 and .connections.active == 0
            and (.bytes.in + .bytes.out) > 0'
    }
    wait_for -t 5 counted || fail "counters of $P after two requests: $(hp_entry "$c" "$P" tcp)"
    st=$(status_hp)
    log "status host_ports: $st"
    field "$st" '.mode == "auto" and .netns.available == true and .listeners >= 1
        and .exposures >= 1 and .sidecars == 0' | grep -qx true || fail "/v1/status host_ports: $st"
    # The issue's example is 8000←host:8000; the exact text is the client's.
    lh ls -a 2>&1 | grep -Eq "$P ?←" || fail "loophole ls does not show $P←...: $(lh ls -a 2>&1)"

    # A restart is a new network namespace: new listeners.
    docker restart -t 1 "$c" >/dev/null || fail "docker restart $c failed"
    wait_for -t 20 ctr_gets "$c" "http://127.0.0.1:$P/marker" "marker-$RUN_ID" ||
        fail "after docker restart, wget inside $c: $(ctr_get "$c" "http://127.0.0.1:$P/marker")"

    # The host server gone: refused at once, the listener stays for later.
    kill "$srv"
    wait_for -t 5 not listening tcp 127.0.0.1 "$P" || fail "the host HTTP server on $P did not stop"
    expect_refused "$c" "http://127.0.0.1:$P/marker"
    hp_ready "$c" "$P" tcp || fail "the entry changed when the host target went away: $(hp_entry "$c" "$P" tcp)"
    daemon_alive || fail "loopholed died"
    stop_daemon
    log "ok"
}

# CPORT:PORT, CPORT:127.0.0.1:PORT and CPORT:localhost:PORT.
part_mapped() {
    start_daemon
    local P C1 C2 C3 c e
    P=$(free_port)
    C1=$(other_port "$P")
    C2=$(other_port "$P" "$C1")
    C3=$(other_port "$P" "$C1" "$C2")
    www "$LH_TMP/www"
    serve_http 127.0.0.1 "$P" "$LH_TMP/www" >/dev/null
    c=lh-hp-mapped-$RUN_ID
    sleeper "$c" --label "loophole.host-ports=$C1:$P,$C2:127.0.0.1:$P,$C3:localhost:$P" >/dev/null
    e=$(expect_hp "$c" "$C1" tcp)
    assert_eq "\"localhost:$P\"" "$(field "$e" .target)" "target of $C1"
    e=$(expect_hp "$c" "$C2" tcp)
    assert_eq "\"127.0.0.1:$P\"" "$(field "$e" .target)" "target of $C2"
    e=$(expect_hp "$c" "$C3" tcp)
    assert_eq "\"localhost:$P\"" "$(field "$e" .target)" "target of $C3"
    assert_eq 3 "$(host_ports "$c" | jq length)" "host ports of $c: $(host_ports "$c")"
    expect_get "$c" "http://localhost:$C1/marker" "marker-$RUN_ID"
    expect_get "$c" "http://127.0.0.1:$C2/marker" "marker-$RUN_ID"
    expect_get "$c" "http://127.0.0.1:$C3/marker" "marker-$RUN_ID"
    # Only CPORT is served inside; PORT itself is not.
    expect_refused "$c" "http://127.0.0.1:$P/marker"
    stop_daemon
    log "ok"
}

# A host server on [::1]:P only (as Node and Vite dev servers often are): the
# container's 127.0.0.1:P still reaches it (the daemon falls back to ::1 when
# 127.0.0.1:P refuses); CPORT:[::1]:P names it explicitly.
part_v6only() {
    ip -6 addr show dev lo 2>/dev/null | grep -q 'inet6 ::1/128' || skip "the host has no ::1"
    start_daemon
    local P C c e
    P=$(free_port)
    C=$(other_port "$P")
    www "$LH_TMP/www"
    serve_http ::1 "$P" "$LH_TMP/www" >/dev/null
    not listening tcp 127.0.0.1 "$P" || fail "something listens on 127.0.0.1:$P too"
    c=lh-hp-v6-$RUN_ID
    sleeper "$c" --label "loophole.host-ports=$P,$C:[::1]:$P" >/dev/null
    expect_hp "$c" "$P" tcp >/dev/null
    e=$(expect_hp "$c" "$C" tcp)
    assert_eq "\"[::1]:$P\"" "$(field "$e" .target)" "target of $C"
    expect_get "$c" "http://127.0.0.1:$P/marker" "marker-$RUN_ID"
    expect_get "$c" "http://localhost:$P/marker" "marker-$RUN_ID"
    expect_get "$c" "http://127.0.0.1:$C/marker" "marker-$RUN_ID"
    stop_daemon
    log "ok"
}

# CPORT:<name of another container under the domain>:80: the name is resolved
# by the registry when a connection arrives.
part_name() {
    start_daemon
    local C c w a e
    C=$(free_port)
    www "$LH_TMP/www"
    echo "web-$RUN_ID" >"$LH_TMP/www/index.html"
    chmod a+r "$LH_TMP/www/index.html"
    w=lh-hp-web-$RUN_ID
    run_ctr --name "$w" -p 80 -v "$LH_TMP/www:/www:ro" "$LH_IMAGE" httpd -f -p 80 -h /www >/dev/null
    a=$(expect_address "$w.$D")
    log "$w.$D -> $a"
    c=lh-hp-name-$RUN_ID
    sleeper "$c" --label "loophole.host-ports=$C:$w.$D:80" >/dev/null
    e=$(expect_hp "$c" "$C" tcp)
    assert_eq "\"$w.$D:80\"" "$(field "$e" .target)" "target of $C"
    wait_for -t 20 ctr_gets "$c" "http://127.0.0.1:$C/" "web-$RUN_ID" ||
        fail "wget inside $c to $C (-> $w.$D:80): $(ctr_get "$c" "http://127.0.0.1:$C/")"
    # The name follows the container: stopped, refused; back, served again.
    docker stop -t 1 "$w" >/dev/null || fail "docker stop $w failed"
    expect_nxdomain "$w.$D"
    expect_refused "$c" "http://127.0.0.1:$C/"
    docker start "$w" >/dev/null || fail "docker start $w failed"
    expect_address "$w.$D" >/dev/null
    wait_for -t 20 ctr_gets "$c" "http://127.0.0.1:$C/" "web-$RUN_ID" ||
        fail "wget inside $c after $w came back: $(ctr_get "$c" "http://127.0.0.1:$C/")"
    stop_daemon
    log "ok"
}

# P/udp: a host UDP echo on 127.0.0.1:P answers datagrams the container sends
# to its own 127.0.0.1:P. The client inside is peer.py (busybox's nc has no -u).
part_udp() {
    start_daemon
    local P c e got
    P=$(free_port)
    socat -T 5 "UDP-RECVFROM:$P,bind=127.0.0.1,fork" EXEC:cat 2>>"$LH_TMP/udp-echo.log" &
    on_exit "kill $!"
    wait_for -t 10 listening udp 127.0.0.1 "$P" || fail "the host UDP echo on $P did not start"
    c=lh-hp-udp-$RUN_ID
    sleeper "$c" --label "loophole.host-ports=$P/udp" >/dev/null
    e=$(expect_hp "$c" "$P" udp)
    assert_eq "\"localhost:$P\"" "$(field "$e" .target)" "target of $P/udp"
    assert_eq "" "$(hp_entry "$c" "$P" tcp)" "a tcp entry for $P/udp"
    got=$(timeout 20 docker exec "$c" /usr/bin/python3 /peer/peer.py udp echo 127.0.0.1 "$P" \
        "one-$RUN_ID" "two-$RUN_ID" 2>&1) || fail "UDP echo inside $c through $P/udp: $got"
    assert_eq "one-$RUN_ID
two-$RUN_ID" "$got" "UDP replies inside $c"
    # TCP on the same port is not served.
    expect_refused "$c" "http://127.0.0.1:$P/"
    stop_daemon
    log "ok"
}

# loophole expose/unexpose: as a member of the Docker socket's group (works)
# and as nobody (refused); the exposure survives a container restart, a daemon
# restart and a compose recreation, and is gone after unexpose. The API's 400,
# 404 and 409 answers on the way.
part_expose() {
    start_daemon
    chmod o+x "$LH_TMP" # the control socket's directory, for the other users
    local P Q p c id id2 u sgid out st e code body=$LH_TMP/body lc
    P=$(free_port)
    Q=$(other_port "$P")
    www "$LH_TMP/www"
    serve_http 127.0.0.1 "$P" "$LH_TMP/www" >/dev/null

    sgid=$(stat -c %g "${LH_DOCKER_HOST#unix://}") || fail "cannot stat the Docker socket"
    u=lh-$RUN_ID
    useradd --system --no-create-home --home-dir / --shell /usr/sbin/nologin --gid nogroup "$u" ||
        fail "useradd $u failed"
    on_exit "userdel $u"
    # Real groups as the kernel reports them: a supplementary group, not the primary.
    as_dockerer() { setpriv --reuid="$u" --regid=nogroup --groups="$sgid" -- "$@"; }

    p=lh${RUN_ID}hp
    compose "$p" up -d >"$LH_TMP/compose.log" 2>&1 || fail "compose up failed: $(cat "$LH_TMP/compose.log")"
    id=$(compose "$p" ps -q web) || fail "compose ps failed"
    [ -n "$id" ] || fail "compose started no web container"
    c=$(docker inspect -f '{{.Name}}' "$id" | sed 's|^/||')
    expect_address "web.$p.$D" >/dev/null
    assert_eq "[]" "$(host_ports "$c" | jq -c .)" "host ports of $c before expose"

    # nobody: one sentence, exit 1, nothing exposed.
    out=$(as_nobody "$L" --socket "$LH_SOCK" expose "$c" "$P" 2>&1)
    st=$?
    assert_eq 1 "$st" "expose as nobody: exit status ($out)"
    assert_eq 1 "$(printf '%s\n' "$out" | wc -l)" "expose as nobody: lines ($out)"
    printf '%s' "$out" | grep -Eqi 'may|permi|allow|403|group' || fail "expose as nobody does not say why: $out"
    assert_eq "[]" "$(host_ports "$c" | jq -c .)" "host ports of $c after nobody's expose"
    # nobody cannot write into the test's directory: the body comes on stdout.
    out=$(as_nobody curl -s -m 5 --unix-socket "$LH_SOCK" -X POST -w '\n%{http_code}' \
        -d "{\"spec\": \"$P\"}" "http://x/v1/containers/$c/host-ports")
    code=${out##*$'\n'}
    printf '%s' "${out%$'\n'*}" >"$body"
    assert_eq 403 "$code" "POST host-ports as nobody"
    is_json_error "$body" || fail "POST host-ports as nobody: not a JSON error: $(cat "$body")"
    # Reading is for everyone.
    code=$(as_nobody curl -s -m 5 --unix-socket "$LH_SOCK" -o /dev/null -w '%{http_code}' \
        "http://x/v1/containers/$c/host-ports")
    assert_eq 200 "$code" "GET host-ports as nobody"
    log "nobody: expose refused ($out)"

    # A member of the socket's group.
    out=$(as_dockerer "$L" --socket "$LH_SOCK" expose "$c" "$P" 2>&1) ||
        fail "expose $c $P as $u (group $sgid of the Docker socket) failed: $out"
    e=$(expect_hp "$c" "$P" tcp netns)
    assert_eq '"api"' "$(field "$e" .source)" "source of the exposed $P"
    assert_eq "\"localhost:$P\"" "$(field "$e" .target)" "target of the exposed $P"
    expect_get "$c" "http://localhost:$P/marker" "marker-$RUN_ID"
    log "expose as $u: $out"

    # The control API's answers.
    code=$(ctl_http GET "/v1/containers/$c/host-ports" "$body")
    assert_eq 200 "$code" "GET host-ports"
    jtrue --argjson p "$P" 'length == 1 and .[0].port == $p and .[0].source == "api"' <"$body" ||
        fail "GET host-ports: $(cat "$body")"
    code=$(curl -s -m 5 --unix-socket "$LH_SOCK" -X POST -o "$body" -w '%{http_code}' \
        -d "{\"spec\": \"$P:$Q\"}" "http://x/v1/containers/$c/host-ports")
    assert_eq 409 "$code" "POST of a CPORT already exposed ($(cat "$body"))"
    is_json_error "$body" || fail "409: not a JSON error: $(cat "$body")"
    code=$(curl -s -m 5 --unix-socket "$LH_SOCK" -X POST -o "$body" -w '%{http_code}' \
        -d '{"spec": "99999"}' "http://x/v1/containers/$c/host-ports")
    assert_eq 400 "$code" "POST of a bad spec ($(cat "$body"))"
    is_json_error "$body" || fail "400: not a JSON error: $(cat "$body")"
    code=$(curl -s -m 5 --unix-socket "$LH_SOCK" -X POST -o "$body" -w '%{http_code}' \
        -d "{\"port\": $Q, \"target\": \"127.0.0.1:$P\", \"proto\": \"tcp\"}" \
        "http://x/v1/containers/$c/host-ports")
    assert_eq 201 "$code" "POST {port, target, proto} ($(cat "$body"))"
    jtrue --argjson q "$Q" --arg t "127.0.0.1:$P" '.port == $q and .target == $t and .source == "api"' \
        <"$body" || fail "201 body: $(cat "$body")"
    expect_hp "$c" "$Q" tcp >/dev/null
    expect_get "$c" "http://127.0.0.1:$Q/marker" "marker-$RUN_ID"
    code=$(ctl_http DELETE "/v1/containers/$c/host-ports/$Q" "$body")
    assert_eq 204 "$code" "DELETE host-ports/$Q"
    code=$(ctl_http DELETE "/v1/containers/$c/host-ports/$Q" "$body")
    assert_eq 404 "$code" "DELETE host-ports/$Q again"
    code=$(ctl_http DELETE "/v1/containers/$c/host-ports/$P/udp" "$body")
    assert_eq 404 "$code" "DELETE host-ports/$P/udp (only tcp is exposed)"
    # A label entry is not the API's to take away, nor to shadow.
    lc=lh-hp-labelled-$RUN_ID
    sleeper "$lc" --label "loophole.host-ports=$Q:$P" >/dev/null
    expect_hp "$lc" "$Q" tcp >/dev/null
    code=$(ctl_http DELETE "/v1/containers/$lc/host-ports/$Q" "$body")
    assert_eq 409 "$code" "DELETE of a label entry ($(cat "$body"))"
    code=$(curl -s -m 5 --unix-socket "$LH_SOCK" -X POST -o "$body" -w '%{http_code}' \
        -d "{\"spec\": \"$Q\"}" "http://x/v1/containers/$lc/host-ports")
    assert_eq 409 "$code" "POST of a CPORT a label entry has ($(cat "$body"))"
    expect_get "$lc" "http://127.0.0.1:$Q/marker" "marker-$RUN_ID"

    # A container restart.
    docker restart -t 1 "$c" >/dev/null || fail "docker restart $c failed"
    wait_for -t 20 ctr_gets "$c" "http://127.0.0.1:$P/marker" "marker-$RUN_ID" ||
        fail "after docker restart of $c: $(ctr_get "$c" "http://127.0.0.1:$P/marker"); host_ports $(host_ports "$c")"
    log "exposure survived docker restart"

    # A daemon restart with the same state directory.
    stop_daemon
    start_daemon
    e=$(expect_hp "$c" "$P" tcp)
    assert_eq '"api"' "$(field "$e" .source)" "source of $P after the daemon restart"
    expect_get "$c" "http://127.0.0.1:$P/marker" "marker-$RUN_ID"
    assert_eq "" "$(hp_entry "$c" "$Q" tcp)" "the deleted $Q came back after the daemon restart"
    log "exposure survived the daemon restart"

    # A compose recreation: a new container under the same lease key.
    compose "$p" up -d --force-recreate >>"$LH_TMP/compose.log" 2>&1 ||
        fail "compose up --force-recreate failed: $(tail -n 5 "$LH_TMP/compose.log")"
    id2=$(compose "$p" ps -q web)
    assert_ne "$id" "$id2" "container id after --force-recreate"
    c=$(docker inspect -f '{{.Name}}' "$id2" | sed 's|^/||')
    e=$(expect_hp "$c" "$P" tcp)
    assert_eq '"api"' "$(field "$e" .source)" "source of $P after compose recreation"
    wait_for -t 20 ctr_gets "$c" "http://127.0.0.1:$P/marker" "marker-$RUN_ID" ||
        fail "after compose recreation of $c: $(ctr_get "$c" "http://127.0.0.1:$P/marker")"
    log "exposure survived compose --force-recreate"

    # unexpose: as nobody refused, as the group member gone.
    out=$(as_nobody "$L" --socket "$LH_SOCK" unexpose "$c" "$P" 2>&1)
    assert_eq 1 "$?" "unexpose as nobody: exit status ($out)"
    hp_ready "$c" "$P" tcp || fail "nobody's unexpose removed $P"
    out=$(as_dockerer "$L" --socket "$LH_SOCK" unexpose "$c" "$P" 2>&1) ||
        fail "unexpose $c $P as $u failed: $out"
    assert_eq "[]" "$(host_ports "$c" | jq -c .)" "host ports of $c after unexpose"
    # (ctr_get fails with the refusal, and pipefail would count that.)
    ctr_refused() {
        local o
        o=$(ctr_get "$1" "$2")
        printf "%s" "$o" | grep -qi refused
    }
    wait_for -t 5 ctr_refused "$c" "http://127.0.0.1:$P/marker" ||
        fail "wget inside $c after unexpose: expected refused, got: $(ctr_get "$c" "http://127.0.0.1:$P/marker")"
    # And it stays gone across a daemon restart.
    stop_daemon
    start_daemon
    expect_address "web.$p.$D" >/dev/null
    wait_for -t 10 hp_listed "$c" || fail "$c is not listed after the daemon restart"
    assert_eq "[]" "$(host_ports "$c" | jq -c .)" "host ports of $c after unexpose and a daemon restart"
    stop_daemon
    log "ok"
}

# 2 MB from the container through the reverse path with half-close (the host
# answers with the byte count only at EOF), 2 MB back, and a host target that
# goes away mid-stream: the container's client ends promptly.
part_bulk() {
    start_daemon
    local P Q R c got sum pid t blob=$LH_TMP/blob.bin recv=$LH_TMP/recv.bin
    P=$(free_port)
    Q=$(other_port "$P")
    R=$(other_port "$P" "$Q")
    head -c $((2 * 1024 * 1024)) /dev/urandom >"$blob"
    chmod a+r "$blob"
    sum=$(sha256sum <"$blob" | cut -d' ' -f1)
    # Count at EOF: the reply comes only when the container's shutdown arrived,
    # and the client sees EOF only when the host's close came back.
    socat -t 10 "TCP-LISTEN:$P,bind=127.0.0.1,reuseaddr,fork" "SYSTEM:cat >$recv; wc -c <$recv" \
        2>>"$LH_TMP/sink.log" &
    on_exit "kill $!"
    mkdir -p "$LH_TMP/www"
    cp "$blob" "$LH_TMP/www/blob.bin"
    chmod -R a+rX "$LH_TMP/www"
    serve_http 127.0.0.1 "$Q" "$LH_TMP/www" >/dev/null
    # A sink that reads one connection and is killed mid-way.
    socat -u "TCP-LISTEN:$R,bind=127.0.0.1,reuseaddr" OPEN:/dev/null 2>>"$LH_TMP/sink.log" &
    local sink=$!
    on_exit "kill $sink"
    wait_for -t 10 listening tcp 127.0.0.1 "$P" || fail "the host byte counter on $P did not start"
    wait_for -t 10 listening tcp 127.0.0.1 "$R" || fail "the host sink on $R did not start"

    c=lh-hp-bulk-$RUN_ID
    sleeper "$c" -v "$blob:/blob.bin:ro" --label "loophole.host-ports=$P,$Q,$R" >/dev/null
    expect_hp "$c" "$P" tcp >/dev/null
    expect_hp "$c" "$Q" tcp >/dev/null
    expect_hp "$c" "$R" tcp >/dev/null

    t=$(now_ms)
    got=$(timeout 30 docker exec "$c" sh -c "nc 127.0.0.1 $P </blob.bin" 2>&1 | tr -d ' \r')
    assert_eq 2097152 "$got" "bytes the host counted after the container's half-close"
    assert_eq "$sum" "$(sha256sum <"$recv" | cut -d' ' -f1)" "sha256 of 2 MB container -> host"
    log "2 MB container -> host with half-close in $(($(now_ms) - t)) ms"
    got=$(timeout 30 docker exec "$c" sh -c "wget -qO- http://127.0.0.1:$Q/blob.bin | busybox sha256sum" |
        cut -d' ' -f1)
    assert_eq "$sum" "$got" "sha256 of 2 MB host -> container"
    e_bytes() {
        hp_entry "$c" "$P" tcp | jtrue '.bytes.in + .bytes.out >= 2097152'
    }
    wait_for -t 5 e_bytes || fail "byte counters of $P: $(hp_entry "$c" "$P" tcp)"

    # The host target dies mid-stream: the container's nc must not hang. The
    # shell loop only paces the data so the stream lasts without a CPU burnt.
    timeout 60 docker exec "$c" sh -c "while echo data-$RUN_ID; do sleep 0.05; done | nc 127.0.0.1 $R" \
        >"$LH_TMP/mid.out" 2>&1 &
    pid=$!
    sink_has_conn() { ss -Htn state established src "127.0.0.1:$R" 2>/dev/null | grep -q .; }
    wait_for -t 10 sink_has_conn || fail "the container's connection to $R never reached the host sink"
    kill -KILL "$sink"
    t=$(now_ms)
    wait_for -t 5 lh_exited "$pid" ||
        fail "the container's nc to $R still runs 5 s after the host target died: $(cat "$LH_TMP/mid.out")"
    wait "$pid"
    log "nc inside ended $(($(now_ms) - t)) ms after the host target died (status $?)"
    expect_refused "$c" "http://127.0.0.1:$R/"
    no_active() { hp_entry "$c" "$R" tcp | jtrue '.connections.active == 0'; }
    wait_for -t 5 no_active || fail "connections still active on $R: $(hp_entry "$c" "$R" tcp)"
    daemon_alive || fail "loopholed died"
    stop_daemon
    log "ok"
}

# Hostile label values: each container gets a problem, the daemon stays up,
# problems are printable one-liners, a good container next to them is served.
part_hostile() {
    start_daemon
    local P c i v n prob long
    P=$(free_port)
    www "$LH_TMP/www"
    serve_http 127.0.0.1 "$P" "$LH_TMP/www" >/dev/null
    long=$(printf '8%.0s' $(seq 1 5000))
    local values=(
        "$long"
        "$(printf '80\001\033[31m00,\177%s' "$P")"
        "99999"
        "0"
        "8000:example.com:80"
        "8000:10.0.0.1:80"
        "8000:[::2]:80"
        "8000/sctp"
        "$P,$P"
        ",,,:"
        "$(printf '%s:%s\n:%s' "$P" "$P" "$P")"
    )
    for i in "${!values[@]}"; do
        sleeper "lh-hp-bad$i-$RUN_ID" --label "loophole.host-ports=${values[$i]}" >/dev/null
    done
    c=lh-hp-good-$RUN_ID
    sleeper "$c" --label "loophole.host-ports=$P" >/dev/null
    expect_hp "$c" "$P" tcp >/dev/null
    for i in "${!values[@]}"; do
        n=lh-hp-bad$i-$RUN_ID
        v=$(printf '%s' "${values[$i]}" | head -c 40 | od -An -c | tr -s ' ' | head -c 120)
        wait_for -t 20 any_problem "$n" || fail "no problem for the label value [$v]: host_ports $(host_ports "$n")"
        prob=$(any_problem "$n")
        # printable(): no control character gets through.
        if printf '%s' "$prob" | LC_ALL=C grep -q '[[:cntrl:]]'; then
            fail "the problem for [$v] carries control characters: $(printf '%s' "$prob" | od -c | head)"
        fi
        [ "${#prob}" -lt 600 ] || fail "the problem for [$v] is ${#prob} characters long"
        log "label [$v]: $prob"
    done
    # The unparsable ones are a problem of the label as a whole.
    for i in 0 1 2; do
        n=lh-hp-bad$i-$RUN_ID
        has_hp_problem "$n" || fail "no host_ports_problem on $n: $(host_ports "$n")"
    done
    # Nothing was opened toward a target outside loopback and the domain.
    expect_refused "lh-hp-bad4-$RUN_ID" "http://127.0.0.1:8000/"
    expect_refused "lh-hp-bad5-$RUN_ID" "http://127.0.0.1:8000/"
    if LC_ALL=C grep -q $'\033' "$LH_LOG"; then
        fail "an escape character reached the daemon log: $(LC_ALL=C grep -n $'\033' "$LH_LOG" | od -c | head)"
    fi
    daemon_alive || fail "loopholed died on hostile labels"
    expect_get "$c" "http://127.0.0.1:$P/marker" "marker-$RUN_ID"
    control_up || fail "the control API does not answer"
    stop_daemon
    log "ok"
}

# An image that sets loophole.host-ports itself: ignored with a problem that
# says the image sets it; the same value given at run time is still the
# image's; another value given at run time is honoured.
part_image_label() {
    start_daemon
    local P Q img src c c2 c3 prob
    P=$(free_port)
    Q=$(other_port "$P")
    www "$LH_TMP/www"
    serve_http 127.0.0.1 "$P" "$LH_TMP/www" >/dev/null
    serve_http 127.0.0.1 "$Q" "$LH_TMP/www" >/dev/null
    img=loophole-test/hp-label:$RUN_ID
    src=$(docker create --label "loophole.test=$RUN_ID" "$LH_IMAGE" true) || fail "docker create failed"
    docker commit --change "LABEL loophole.host-ports=$P" "$src" "$img" >/dev/null ||
        fail "docker commit of $img failed"
    docker rm "$src" >/dev/null
    on_exit "docker rm -f -v \$(docker ps -aq --filter ancestor=$img); docker rmi -f $img"
    c=lh-hp-img-$RUN_ID
    c2=lh-hp-img-same-$RUN_ID
    c3=lh-hp-img-other-$RUN_ID
    run_ctr --name "$c" "$img" sleep 3600 >/dev/null
    run_ctr --name "$c2" --label "loophole.host-ports=$P" "$img" sleep 3600 >/dev/null
    run_ctr --name "$c3" --label "loophole.host-ports=$Q" "$img" sleep 3600 >/dev/null
    wait_for -t 20 has_hp_problem "$c" ||
        fail "no host_ports_problem for the image's own label: $(host_ports "$c")"
    prob=$(hp_problem "$c")
    printf '%s' "$prob" | grep -qi image || fail "the problem does not say the image sets it: $prob"
    log "image label: $prob"
    assert_eq "" "$(hp_entry "$c" "$P" tcp)" "an entry from the image's label"
    expect_refused "$c" "http://127.0.0.1:$P/marker"
    wait_for -t 20 has_hp_problem "$c2" || fail "no problem when the run label repeats the image's"
    expect_refused "$c2" "http://127.0.0.1:$P/marker"
    expect_hp "$c3" "$Q" tcp >/dev/null
    expect_get "$c3" "http://127.0.0.1:$Q/marker" "marker-$RUN_ID"
    stop_daemon
    log "ok"
}

# --host-ports-mode sidecar with the locally imported socat image: the label
# works through a relay container that shares the target's namespace; the
# relay follows restarts, is not listed, goes when the target stops and when
# the daemon stops; the gateway listener serves only the target.
part_sidecar() {
    ensure_relay_image
    start_daemon --host-ports-mode sidecar --sidecar-image "$LH_RELAY_IMAGE"
    local P Q U c id other sc st args relay got
    P=$(free_port)
    Q=$(other_port "$P")
    U=$(other_port "$P" "$Q")
    www "$LH_TMP/www"
    serve_http 127.0.0.1 "$P" "$LH_TMP/www" >/dev/null
    # Replies a second after the client's EOF: socat's default -t 0.5 in the
    # relay would cut it.
    socat -t 10 "TCP-LISTEN:$Q,bind=127.0.0.1,reuseaddr,fork" \
        "SYSTEM:cat >/dev/null; sleep 1; echo late-$RUN_ID" 2>>"$LH_TMP/late.log" &
    on_exit "kill $!"
    socat -T 5 "UDP-RECVFROM:$U,bind=127.0.0.1,fork" EXEC:cat 2>>"$LH_TMP/udp-echo.log" &
    on_exit "kill $!"
    wait_for -t 10 listening tcp 127.0.0.1 "$Q" || fail "the host server on $Q did not start"
    wait_for -t 10 listening udp 127.0.0.1 "$U" || fail "the host UDP echo on $U did not start"

    c=lh-hp-side-$RUN_ID
    id=$(sleeper "$c" --label "loophole.host-ports=$P,$Q,$U/udp")
    on_exit "docker rm -f -v \$(docker ps -aq --filter label=loophole.sidecar=$id)"
    expect_hp "$c" "$P" tcp sidecar >/dev/null
    expect_hp "$c" "$Q" tcp sidecar >/dev/null
    expect_hp "$c" "$U" udp sidecar >/dev/null
    # The relay's socat may bind a moment after the daemon started it.
    wait_for -t 20 ctr_gets "$c" "http://localhost:$P/marker" "marker-$RUN_ID" ||
        fail "wget through the sidecar: $(ctr_get "$c" "http://localhost:$P/marker")"
    expect_get "$c" "http://127.0.0.1:$P/marker" "marker-$RUN_ID"
    got=$(timeout 10 docker exec "$c" sh -c "echo x | nc 127.0.0.1 $Q" 2>&1)
    assert_eq "late-$RUN_ID" "$got" "a reply 1 s after half-close through the sidecar"
    got=$(timeout 20 docker exec "$c" /usr/bin/python3 /peer/peer.py udp echo 127.0.0.1 "$U" \
        "u1-$RUN_ID" "u2-$RUN_ID" 2>&1) || fail "UDP echo through the sidecar: $got"
    assert_eq "u1-$RUN_ID
u2-$RUN_ID" "$got" "UDP replies through the sidecar"

    # One relay per host port (socat relays one port), labelled with it.
    all=$(docker ps -q --no-trunc --filter "label=loophole.sidecar=$id")
    assert_eq 3 "$(printf '%s\n' "$all" | grep -c .)" "relay containers for $c: $all"
    sc=$(docker ps -q --no-trunc --filter "label=loophole.sidecar=$id" \
        --filter "label=loophole.sidecar.port=$P/tcp")
    assert_eq 1 "$(printf '%s\n' "$sc" | grep -c .)" "relay containers for $c port $P: $sc"
    assert_eq "container:$id" "$(docker inspect -f '{{.HostConfig.NetworkMode}}' "$sc")" "the relay's network mode"
    lh ls -a --json | jtrue --arg s "$sc" 'all(.[]; .id != $s)' ||
        fail "loophole ls lists the relay container $sc"
    st=$(status_hp)
    log "status host_ports: $st"
    field "$st" '.mode == "sidecar" and .sidecars >= 1' | grep -qx true || fail "/v1/status host_ports: $st"

    # The gateway listener the relay dials serves the target's address only.
    args=$(docker inspect -f '{{json .Args}}' "$sc")
    log "relay command: $(docker inspect -f '{{json .Path}}' "$sc") $args"
    relay=$(printf '%s' "$args" | jq -r '.[]' | grep -Eo '^TCP[46]?:[0-9.]+:[0-9]+' | head -n1 | cut -d: -f2-)
    [ -n "$relay" ] || fail "no TCP:<gateway>:<port> in the relay's command: $args"
    other=lh-hp-other-$RUN_ID
    run_ctr --name "$other" "$LH_IMAGE" sleep 3600 >/dev/null
    got=$(ctr_get "$other" "http://$relay/marker")
    [ "$got" != "marker-$RUN_ID" ] || fail "another container reached the relay listener $relay"
    got=$(lh_tcp send "${relay%:*}" "${relay#*:}" 'GET /marker HTTP/1.0\r\n\r\n' 3)
    printf '%s' "$got" | grep -q "marker-$RUN_ID\|200" && fail "the host reached the relay listener $relay: $got"

    # A restart is a new namespace: the relay must follow it.
    docker restart -t 1 "$c" >/dev/null || fail "docker restart $c failed"
    wait_for -t 30 ctr_gets "$c" "http://127.0.0.1:$P/marker" "marker-$RUN_ID" ||
        fail "wget through the sidecar after docker restart: $(ctr_get "$c" "http://127.0.0.1:$P/marker")"
    relay_count() { docker ps -aq --filter "label=loophole.sidecar=$id" | grep -c .; }
    three_relays() { [ "$(relay_count)" = 3 ]; }
    wait_for -t 10 three_relays ||
        fail "relay containers after the restart: $(docker ps -a --filter "label=loophole.sidecar=$id")"

    # The target stops: its relay goes.
    relay_gone() { [ -z "$(docker ps -aq --filter "label=loophole.sidecar=$id")" ]; }
    docker stop -t 1 "$c" >/dev/null || fail "docker stop $c failed"
    wait_for -t 20 relay_gone || fail "relay containers left after $c stopped: $(docker ps -a --filter "label=loophole.sidecar=$id")"
    # It comes back with the target, and the daemon's stop removes it.
    docker start "$c" >/dev/null || fail "docker start $c failed"
    wait_for -t 30 ctr_gets "$c" "http://127.0.0.1:$P/marker" "marker-$RUN_ID" ||
        fail "wget through the sidecar after docker start: $(ctr_get "$c" "http://127.0.0.1:$P/marker")"
    stop_daemon
    relay_gone || fail "relay containers left after the daemon stopped: $(docker ps -a --filter "label=loophole.sidecar=$id")"
    log "ok"
}

# A relay image that cannot be pulled (a registry on a closed loopback port,
# so nothing leaves the machine): a problem on the entry naming the image, the
# daemon stays up.
part_sidecar_pull() {
    local P c img prob
    img=127.0.0.1:9/loophole-absent/socat:$RUN_ID
    start_daemon --host-ports-mode sidecar --sidecar-image "$img"
    P=$(free_port)
    c=lh-hp-nopull-$RUN_ID
    sleeper "$c" --label "loophole.host-ports=$P" >/dev/null
    entry_problem() { hp_entry "$c" "$P" tcp | jtrue '.problem | type == "string"'; }
    wait_for -t 30 entry_problem || fail "no problem for an image that cannot be pulled: $(hp_entry "$c" "$P" tcp)"
    prob=$(hp_entry "$c" "$P" tcp | jq -r .problem)
    log "pull problem: $prob"
    printf '%s' "$prob" | grep -qF "$img" || fail "the problem does not name the image $img: $prob"
    daemon_alive || fail "loopholed died"
    stop_daemon
    log "ok"
}

# CPORT already in use inside the container (the container's own server
# holds it): a problem on that port saying so, in both modes, and the daemon
# and the container's own server keep going.
part_port_in_use() {
    local P c prob mode
    for mode in netns sidecar; do
        start_daemon --host-ports-mode "$mode" --sidecar-image "$LH_RELAY_IMAGE"
        [ "$mode" = sidecar ] && ensure_relay_image
        P=$(free_port)
        c=lh-hp-busy-$mode-$RUN_ID
        run_ctr --name "$c" --label "loophole.host-ports=$P" "$LH_IMAGE" \
            sh -c "mkdir -p /www && echo own-$RUN_ID >/www/index.html && httpd -f -p 127.0.0.1:$P -h /www" >/dev/null
        entry_problem() { hp_entry "$c" "$P" tcp | jtrue '.problem | type == "string"'; }
        wait_for -t 30 entry_problem || fail "$mode: no problem for a port the container holds: $(hp_entry "$c" "$P" tcp)"
        prob=$(hp_entry "$c" "$P" tcp | jq -r .problem)
        log "$mode: $prob"
        printf '%s' "$prob" | grep -Eqi 'in use|exited' || fail "$mode: the problem does not say the port is taken: $prob"
        # The container's own server is untouched.
        expect_get "$c" "http://127.0.0.1:$P/" "own-$RUN_ID"
        daemon_alive || fail "loopholed died ($mode)"
        stop_daemon
        docker rm -f "$c" >/dev/null 2>&1
    done
    log "ok"
}

run_parts
