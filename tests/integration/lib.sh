# Integration test harness, sourced by tests/integration/test_*.sh.
#
# The tests run the real loopholed against the real Docker engine, but never
# disturb the machine: their own address pool (127.0.77.x), their own DNS port,
# control socket and state directory, and containers labelled
# loophole.test=<run id> that are removed on exit, also after a failure.
#
# Environment: LOOPHOLE_BIN (the build's bin directory), LOOPHOLE_SRC (the
# source tree); both default to this checkout's build/bin and root.
# LH_KEEP_TMP=1 keeps the temporary directory (daemon log, state) for a look.
# LH_PART=NAME runs only the part NAME of a script split into parts (see
# run_parts).
# Exit status: 0 pass, 1 fail, 77 skipped (never skipped under CI=true when the
# reason is a missing engine or a tool `make test` installs).

set -u -o pipefail

LH_PART=${LH_PART:-}
LH_PART_RAN=
LH_TEST_NAME=$(basename "$0" .sh)${LH_PART:+/$LH_PART}
LH_MAIN_PID=$$
LOOPHOLE_SRC=${LOOPHOLE_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
LOOPHOLE_BIN=${LOOPHOLE_BIN:-$LOOPHOLE_SRC/build/bin}
LOOPHOLED=$LOOPHOLE_BIN/loopholed
# The other end of the tests (TCP, UDP and unix-socket clients, checkers of
# what the daemon wrote): one Python program, see `peer.py --help`.
LH_PEER=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/peer.py
# Where tests/engine.sh keeps its log, pidfile and the marker saying it
# started dockerd (only then may a test restart the engine).
LOOPHOLE_ENGINE_DIR=${LOOPHOLE_ENGINE_DIR:-/tmp/loophole-engine}

LH_IMAGE=loophole-test/busybox:1
LH_DOMAIN=loop.test
LH_POOL=${LH_POOL:-127.0.77.2-127.0.77.254}
LH_DNS_IP=${LH_DNS_IP:-127.0.0.1}
LH_DNS_PORT=
LH_DAEMON_PID=
LH_DAEMON_STATUS=
LH_FAILED=0
LH_CLEANUPS=()

# A short lowercase id: container names, compose projects (compose v1 keeps
# only [a-z0-9_-]) and DNS labels all accept it.
RUN_ID=r$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
export LOOPHOLE_TEST_RUN=$RUN_ID # interpolated by the compose fixtures

LH_TMP=$(mktemp -d "/tmp/loophole-it.${LH_TEST_NAME//\//.}.XXXXXX")
LH_STATE_DIR=$LH_TMP/state
LH_SOCK=$LH_TMP/control.sock
LH_LOG=$LH_TMP/loopholed.log
mkdir -p "$LH_STATE_DIR"

# The Docker endpoint the daemon is pointed at: the same one docker(1) uses.
case "${DOCKER_HOST:-}" in
unix://*) LH_DOCKER_HOST=$DOCKER_HOST ;;
*) LH_DOCKER_HOST=unix:///var/run/docker.sock ;;
esac

# ASan reports leaks at exit and turns them into a non-zero status, which
# stop_daemon asserts against.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

log() { printf '[%s %s] %s\n' "$(date +%H:%M:%S.%3N)" "$LH_TEST_NAME" "$*" >&2; }

# fail MESSAGE: the test fails. Also works inside $(...): the subshell marks
# the failure and signals the main shell, whose cleanup then runs.
fail() {
    LH_FAILED=1
    printf 'FAIL: %s\n' "$*" >&2
    if [ "$BASHPID" != "$LH_MAIN_PID" ]; then
        : >"$LH_TMP/failed"
        kill -TERM "$LH_MAIN_PID"
    fi
    exit 1
}

skip() {
    printf 'SKIP: %s\n' "$*" >&2
    [ "$BASHPID" = "$LH_MAIN_PID" ] || fail "skip called in a subshell: $*"
    exit 77
}

assert_eq() { # assert_eq EXPECTED ACTUAL MESSAGE
    if [ "$1" != "$2" ]; then
        fail "${3:-values differ}: expected '$1', got '$2'"
    fi
}

assert_ne() { # assert_ne A B MESSAGE
    if [ "$1" = "$2" ]; then
        fail "${3:-values are equal}: both '$1'"
    fi
}

now_ms() { date +%s%3N; }

# wait_for [-t SECONDS] CMD...: runs CMD every 0.1 s until it succeeds;
# returns 1 after the deadline (default 15 s).
wait_for() {
    local timeout=15
    if [ "${1:-}" = -t ]; then
        timeout=$2
        shift 2
    fi
    local deadline=$(($(now_ms) + timeout * 1000))
    while :; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if [ "$(now_ms)" -ge "$deadline" ]; then
            return 1
        fi
        sleep 0.1
    done
}

# not CMD...: succeeds when CMD fails (for wait_for).
not() { ! "$@"; }

# ---- Cleanup ----------------------------------------------------------------

lh_cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    # A script split into parts that never got to run_parts would pass
    # without having run the part asked for.
    if [ "$status" -eq 0 ] && [ -n "$LH_PART" ] && [ -z "$LH_PART_RAN" ] &&
        [ "$BASHPID" = "$LH_MAIN_PID" ]; then
        printf 'FAIL: LH_PART=%s, but %s never reached run_parts\n' "$LH_PART" "$0" >&2
        status=1
    fi
    if [ "$status" -ne 0 ] && [ "$status" -ne 77 ]; then
        LH_FAILED=1
    fi
    local f
    for f in "${LH_CLEANUPS[@]}"; do
        eval "$f" >/dev/null 2>&1
    done
    if [ -n "$LH_DAEMON_PID" ]; then
        kill -TERM "$LH_DAEMON_PID" 2>/dev/null
        lh_wait_exit "$LH_DAEMON_PID" 10 || kill -KILL "$LH_DAEMON_PID" 2>/dev/null
        wait "$LH_DAEMON_PID" 2>/dev/null
        LH_DAEMON_PID=
    fi
    local p projects=()
    [ -f "$LH_TMP/compose-projects" ] && mapfile -t projects <"$LH_TMP/compose-projects"
    for p in "${projects[@]}"; do
        docker-compose -p "$p" -f "$LOOPHOLE_SRC/tests/fixtures/compose/web.yml" \
            down --remove-orphans -t 1 >/dev/null 2>&1
    done
    if command -v docker >/dev/null 2>&1; then
        local ids
        ids=$(docker ps -aq --filter "label=loophole.test=$RUN_ID" 2>/dev/null)
        if [ -n "$ids" ]; then
            # shellcheck disable=SC2086
            docker rm -f -v $ids >/dev/null 2>&1
        fi
        for p in "${projects[@]}"; do
            docker network rm "${p}_default" >/dev/null 2>&1
        done
    fi
    if [ "$LH_FAILED" -ne 0 ] && [ -s "$LH_LOG" ]; then
        echo "---- loopholed log ($LH_LOG) ----" >&2
        tail -n 200 "$LH_LOG" >&2
        echo "---- end of log ----" >&2
    fi
    if [ -n "${LH_KEEP_TMP:-}" ]; then
        echo "kept $LH_TMP" >&2
    else
        rm -rf "$LH_TMP"
    fi
    exit "$status"
}
trap lh_cleanup EXIT
trap 'exit 130' INT
trap 'if [ -e "$LH_TMP/failed" ]; then exit 1; else exit 143; fi' TERM

# on_exit 'COMMAND': run COMMAND (a string) in the cleanup, before containers
# are removed.
on_exit() { LH_CLEANUPS+=("$1"); }

# ---- Preconditions ----------------------------------------------------------

engine_answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# need_root: root, Linux, the daemon binary and the tools every test uses
# (python3 runs peer.py).
need_root() {
    [ "$(id -u)" -eq 0 ] || skip "needs root"
    [ "$(uname -s)" = Linux ] || skip "integration tests run on Linux"
    [ -x "$LOOPHOLED" ] || fail "no daemon binary at $LOOPHOLED (build first)"
    local t
    for t in dig ss python3; do
        command -v "$t" >/dev/null 2>&1 || fail "missing tool: $t (make test installs it)"
    done
}

# need_root_and_engine: need_root, and a Docker engine that answers; without
# one the test is skipped (exit 77), except under CI=true where it fails.
need_root_and_engine() {
    need_root
    if ! command -v docker >/dev/null 2>&1 || ! engine_answers; then
        if [ "${CI:-}" = true ]; then
            fail "no Docker engine answers (CI=true: the real-engine tests must run; tests/engine.sh start should have started one, see $LOOPHOLE_ENGINE_DIR/dockerd.log)"
        fi
        skip "no Docker engine answers (run tests/engine.sh start, or make test)"
    fi
    ensure_image
}

need_tool() {
    command -v "$1" >/dev/null 2>&1 || fail "missing tool: $1 (make test installs it)"
}

# want_tool TOOL WHY: a part that cannot run without TOOL skips, except under
# CI=true, where `make test` has installed it and its absence fails.
want_tool() {
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ "${CI:-}" = true ]; then
        fail "missing tool: $1, needed $2 (CI=true: make test installs it)"
    fi
    skip "missing tool: $1, needed $2"
}

# True when tests/engine.sh started the running dockerd, so a test may
# restart it.
engine_started_by_tests() {
    local pid
    [ -f "$LOOPHOLE_ENGINE_DIR/started-by-tests" ] || return 1
    pid=$(head -n1 "$LOOPHOLE_ENGINE_DIR/started-by-tests")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# ---- The test image ---------------------------------------------------------

# loophole-test/busybox:1: busybox-static and its applet links, plus
# /lib -> usr/lib and /lib64 -> usr/lib64 so host programs run with /usr
# bind-mounted (see run_host_server). Built with docker import (no registry
# needed), only when missing.
ensure_image() {
    docker image inspect "$LH_IMAGE" >/dev/null 2>&1 && return 0
    (
        flock 9
        docker image inspect "$LH_IMAGE" >/dev/null 2>&1 && exit 0
        [ -x /bin/busybox ] || fail "/bin/busybox is missing (apt-get install busybox-static)"
        if ldd /bin/busybox >/dev/null 2>&1; then
            fail "/bin/busybox is dynamically linked (install busybox-static)"
        fi
        local root=$LH_TMP/image
        mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/usr" "$root/var/run"
        cp /bin/busybox "$root/bin/busybox"
        local a
        for a in sh httpd nc sleep cat echo ls hostname true false env ps kill wget \
            mkdir rm ip ifconfig netstat grep sed head tail; do
            ln -s busybox "$root/bin/$a"
        done
        ln -s usr/lib "$root/lib"
        ln -s usr/lib64 "$root/lib64"
        ln -s usr/sbin "$root/sbin"
        chmod 1777 "$root/tmp"
        echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
        echo 'root:x:0:' >"$root/etc/group"
        tar -C "$root" -cf - . |
            docker import -c 'LABEL loophole.test.libs=usr' -c 'CMD ["sh"]' - "$LH_IMAGE" >/dev/null ||
            fail "docker import of $LH_IMAGE failed"
        rm -rf "$root"
    ) 9>/tmp/loophole-test-image.lock || exit 1
}

# ---- Containers -------------------------------------------------------------

# run_ctr DOCKER-RUN-ARGS...: docker run -d with the run label; prints the id.
run_ctr() {
    local id
    id=$(docker run -d --label "loophole.test=$RUN_ID" "$@") || fail "docker run $* failed"
    echo "$id"
}

# run_host_server DOCKER-RUN-ARGS... -- CMD...: runs a program from the host's
# /usr inside the test image (e.g. /usr/bin/redis-server), read-only.
run_host_server() {
    local args=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        args+=("$1")
        shift
    done
    [ "${1:-}" = -- ] || fail "run_host_server: missing --"
    shift
    args+=(-v /usr:/usr:ro)
    # An image built elsewhere without the /lib symlinks gets the libraries
    # mounted where the dynamic loader looks.
    if [ "$(docker image inspect -f '{{index .Config.Labels "loophole.test.libs"}}' "$LH_IMAGE" 2>/dev/null)" != usr ]; then
        args+=(-v "$(readlink -f /lib):/lib:ro")
        [ -e /lib64 ] && args+=(-v "$(readlink -f /lib64):/lib64:ro")
    fi
    run_ctr "${args[@]}" "$LH_IMAGE" "$@"
}

# compose PROJECT ARGS...: docker-compose with the web fixture, remembering
# the project so the cleanup brings it down.
compose() {
    local p=$1
    shift
    # A file, not a variable: compose may run in a subshell (a pipeline).
    grep -qx -- "$p" "$LH_TMP/compose-projects" 2>/dev/null ||
        echo "$p" >>"$LH_TMP/compose-projects"
    docker-compose -p "$p" -f "$LOOPHOLE_SRC/tests/fixtures/compose/web.yml" "$@"
}

# ---- DNS --------------------------------------------------------------------

# resolve NAME: the A records for NAME from the test daemon, one per line.
resolve() {
    dig +short +time=1 +tries=1 @"$LH_DNS_IP" -p "$LH_DNS_PORT" "$1" A 2>/dev/null |
        grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$'
}

# rcode NAME [TYPE]: the response code (NOERROR, NXDOMAIN, ...).
rcode() {
    dig +time=1 +tries=1 @"$LH_DNS_IP" -p "$LH_DNS_PORT" "$1" "${2:-A}" 2>/dev/null |
        sed -n 's/.*status: \([A-Z]*\),.*/\1/p'
}

resolves() { [ -n "$(resolve "$1")" ]; }
resolves_to() { [ "$(resolve "$1")" = "$2" ]; }
is_nxdomain() { [ "$(rcode "$1")" = NXDOMAIN ]; }
dns_up() { dig +short +time=1 +tries=1 @"$LH_DNS_IP" -p "$LH_DNS_PORT" "$LH_DOMAIN" SOA 2>/dev/null | grep -q .; }

# expect_address NAME [SECONDS]: waits until NAME resolves; prints the address.
expect_address() {
    wait_for -t "${2:-15}" resolves "$1" || fail "$1 does not resolve (rcode $(rcode "$1"))"
    local a
    a=$(resolve "$1")
    [ "$(printf '%s\n' "$a" | wc -l)" -eq 1 ] || fail "$1 has several addresses: $a"
    in_pool "$a" || fail "$1 -> $a is outside the test pool $LH_POOL"
    echo "$a"
}

expect_nxdomain() { # expect_nxdomain NAME [SECONDS]
    wait_for -t "${2:-15}" is_nxdomain "$1" ||
        fail "$1 should be NXDOMAIN, got $(rcode "$1") $(resolve "$1" | tr '\n' ' ')"
}

ip_to_int() {
    local IFS=.
    # shellcheck disable=SC2086
    set -- $1
    echo $((($1 << 24) + ($2 << 16) + ($3 << 8) + $4))
}

in_pool() {
    local a
    a=$(ip_to_int "$1")
    [ "$a" -ge "$(ip_to_int "${LH_POOL%-*}")" ] && [ "$a" -le "$(ip_to_int "${LH_POOL#*-}")" ]
}

# A port free for both UDP and TCP on every address, below the ephemeral
# range, where Docker's random host ports come from (a daemon restarted on the
# same port must find it still free).
free_port() {
    local p _ low
    low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
    [ "${low:-0}" -gt 12000 ] 2>/dev/null || low=32768
    for _ in $(seq 1 100); do
        p=$((10000 + RANDOM % (low - 10000)))
        if [ -z "$(ss -Hlnut "( sport = :$p )" 2>/dev/null)" ]; then
            echo "$p"
            return 0
        fi
    done
    fail "no free port found"
}

# ---- The daemon -------------------------------------------------------------

# lh_wait_exit PID SECONDS: waits until the child PID has exited (zombie or
# gone; kill -0 still succeeds on a zombie, so look at /proc).
lh_exited() {
    local st
    [ -r "/proc/$1/stat" ] || return 0
    st=$(sed 's/^.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 0
    [ "$st" = Z ] || [ "$st" = X ]
}
lh_wait_exit() { wait_for -t "$2" lh_exited "$1"; }

daemon_alive() { [ -n "$LH_DAEMON_PID" ] && ! lh_exited "$LH_DAEMON_PID"; }

# start_daemon [EXTRA-FLAGS...]: starts loopholed in the background with the
# test pool, DNS port, state dir and control socket (LH_DNS_IP/LH_DNS_PORT,
# LH_POOL, LH_STATE_DIR may be set before), waits until DNS answers.
# Later flags override earlier ones, so EXTRA-FLAGS may replace the defaults.
start_daemon() {
    [ -z "$LH_DAEMON_PID" ] || fail "start_daemon: a daemon is already running"
    [ -n "$LH_DNS_PORT" ] || LH_DNS_PORT=$(free_port)
    start_daemon_raw --control-socket "$LH_SOCK" --state-dir "$LH_STATE_DIR" \
        --dns-listen "$LH_DNS_IP:$LH_DNS_PORT" --domain "$LH_DOMAIN" --pool "$LH_POOL" \
        --resolver off --alias off --docker-host "$LH_DOCKER_HOST" \
        --log-level debug --dns-ttl 1 "$@"
    if ! wait_for -t 20 dns_up; then
        if ! daemon_alive; then
            daemon_reap
            fail "loopholed exited at start (status $LH_DAEMON_STATUS)"
        fi
        fail "loopholed does not answer DNS on $LH_DNS_IP:$LH_DNS_PORT"
    fi
    log "loopholed $LH_DAEMON_PID answers on $LH_DNS_IP:$LH_DNS_PORT"
}

# start_daemon_raw FLAGS...: just starts it, nothing else.
start_daemon_raw() {
    echo "==== $(date +%T.%3N) loopholed $*" >>"$LH_LOG"
    "$LOOPHOLED" "$@" 2>>"$LH_LOG" >>"$LH_LOG" &
    LH_DAEMON_PID=$!
    LH_DAEMON_STATUS=
}

# daemon_reap: once the daemon has exited, sets LH_DAEMON_STATUS to its exit
# status. Must run in the main shell (not in $(...)): only it can wait.
daemon_reap() {
    if [ -n "$LH_DAEMON_PID" ]; then
        wait "$LH_DAEMON_PID" 2>/dev/null
        LH_DAEMON_STATUS=$?
        LH_DAEMON_PID=
    fi
}

# stop_daemon: SIGTERM, and the daemon must exit 0 within 10 s (under ASan a
# leak makes the status non-zero).
stop_daemon() {
    [ -n "$LH_DAEMON_PID" ] || fail "stop_daemon: no daemon running"
    local pid=$LH_DAEMON_PID
    kill -TERM "$pid" 2>/dev/null || fail "loopholed $pid was not running"
    if ! lh_wait_exit "$pid" 10; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        LH_DAEMON_PID=
        fail "loopholed $pid did not exit within 10 s of SIGTERM"
    fi
    daemon_reap
    assert_eq 0 "$LH_DAEMON_STATUS" "loopholed exit status after SIGTERM"
    log "loopholed $pid exited 0"
}

# log_count REGEX: how many lines of the daemon log match (grep -E -i).
log_count() { grep -Eic -- "$1" "$LH_LOG" 2>/dev/null || true; }
log_has() { grep -Eiq -- "$1" "$LH_LOG" 2>/dev/null; }

# ---- Proxies (test_proxy_*.sh) -----------------------------------------------

# host_port CONTAINER PORT[/PROTO]: Docker's mapped IPv4 host port.
host_port() {
    docker port "$1" "$2" 2>/dev/null | sed -n 's/^0\.0\.0\.0:\([0-9][0-9]*\)$/\1/p' | head -n1
}

# lh_listens tcp|udp ADDR PORT: the test daemon holds a listening (TCP) or
# bound (UDP) socket on exactly ADDR:PORT.
lh_listens() {
    local flags=-Hltnp
    [ "$1" = udp ] && flags=-Hlunp
    [ -n "$LH_DAEMON_PID" ] || return 1
    ss "$flags" src "$2:$3" 2>/dev/null | grep -q "pid=$LH_DAEMON_PID,"
}

# lh_tcp_conns SS-FILTER...: how many established TCP sockets the test daemon
# holds that match the ss filter (e.g. src 127.0.77.2:6379).
lh_tcp_conns() {
    ss -Htnp state established "$@" 2>/dev/null | grep -c "pid=$LH_DAEMON_PID," || true
}

# control_up: the test daemon's control API answers.
control_up() { curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/status >/dev/null 2>&1; }

# port_mode CONTAINER-ID PORT [PROTO]: "direct", "mapped", "shared",
# "unreachable" or "none" from
# GET /v1/containers; empty when the API or the port is not there.
port_mode() {
    curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/containers 2>/dev/null |
        jq -r --arg id "$1" --argjson p "$2" --arg proto "${3:-tcp}" \
            '.[] | select(.id as $c | $c != null and (($c | startswith($id)) or ($id | startswith($c))))
             | .ports[] | select(.port == $p and .proto == $proto) | .mode' 2>/dev/null
}
# port_mode_is CONTAINER-ID PORT PROTO MODE (for wait_for).
port_mode_is() { [ "$(port_mode "$1" "$2" "$3")" = "$4" ]; }

# peer ARGS...: tests/integration/peer.py (python3 peer.py --help).
peer() { python3 "$LH_PEER" "$@"; }

# lh_tcp MODE HOST PORT [DATA [SECONDS]]: a small TCP client (peer.py tcp).
# DATA takes \r \n escapes. Every mode has a deadline (SECONDS, default 5).
#   refused   exit 0 only when connect() is refused (within 2 s)
#   connects  exit 0 when connect() succeeds (within 2 s)
#   send      send DATA, print the reply up to its first newline or EOF
#   banner    send nothing, print what the server says first (one recv)
#   halfclose send DATA, shut down writing, print everything up to EOF;
#             exit 3 when EOF does not come in time
#   hold      send DATA, print the first reply line, then "ready" and wait
#             for the peer to close: exit 0 on EOF or reset, 3 on timeout
lh_tcp() {
    local args=(tcp "$1" "$2" "$3")
    [ $# -ge 4 ] && args+=("--data=$4")
    [ $# -ge 5 ] && args+=("--timeout=$5")
    peer "${args[@]}"
}

# udp_echo HOST PORT MSG...: sends each MSG from one client socket (one
# ephemeral source port) and expects it back within 1 s each; retries a
# message 3 times (UDP may drop). Prints the replies, one per line.
udp_echo() { peer udp echo -- "$@"; }

# ---- The control API (test_control.sh) ---------------------------------------

# ctl_http METHOD PATH BODY-FILE: one request to the test daemon's control
# socket; prints the HTTP status (000 when there was no answer), the body
# goes to BODY-FILE.
ctl_http() {
    curl -s -m 5 --unix-socket "$LH_SOCK" -X "$1" -o "$3" -w '%{http_code}' "http://x$2" 2>/dev/null
}

# is_json_error FILE: FILE holds {"error": "<non-empty string>"}.
is_json_error() {
    jq -e 'type == "object" and (.error | type == "string" and length > 0)' "$1" >/dev/null 2>&1
}

# as_nobody CMD...: runs CMD as nobody:nogroup with no supplementary groups
# (the socket's directory must be searchable by others).
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }

# ctl_raw SOCKET HEX-OR-@FILE [SECONDS]: connects to a unix socket, sends the
# bytes (hex, or the contents of @FILE) and prints what comes back up to EOF;
# it never closes first, so EOF means the server closed. Exit 0 on EOF, 3 when
# EOF does not come in time (default 5 s), 2 when the connection fails.
ctl_raw() {
    local args=(unix send "$1")
    case $2 in
    @*) args+=(--file "${2#@}") ;;
    *) args+=(--hex "$2") ;;
    esac
    [ $# -ge 3 ] && args+=(--timeout "$3")
    peer "${args[@]}"
}

# ---- Kafka (test_kafka.sh) --------------------------------------------------

# addrs_outside_pool: reads text on stdin and prints every IPv4 address in it
# (with its :port when there is one) that is outside LH_POOL, one per line;
# empty when every address a client was handed is loophole's.
addrs_outside_pool() {
    local a ip
    grep -Eo '[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(:[0-9]+)?' | sort -u |
        while read -r a; do
            ip=${a%%:*}
            in_pool "$ip" || echo "$a"
        done
}

# kcat_bin: kcat, or kafkacat on systems that still call it that.
kcat_bin() { command -v kcat 2>/dev/null || command -v kafkacat 2>/dev/null; }


# ---- Parts ------------------------------------------------------------------

# A script may be split into parts that pass, fail or skip on their own: each
# part is a function defined at the start of a line as `part_NAME() {` (NAME
# in [a-z0-9_]), and the script ends with `run_parts`. The top of the script
# (lib.sh, preconditions every part shares, helpers) runs first in any case.
#
# tests/CMakeLists.txt finds the parts with the same pattern at configure
# time and registers integration/<script>/<NAME> for each, which runs the
# script with LH_PART=NAME: run_parts then runs that one part in this
# process, so a part that cannot run here exits 77 with its reason while the
# others run. Without LH_PART (by hand), run_parts runs every part in turn as
# its own process and exits 1 when one failed, 77 when all skipped, else 0.

# lh_parts SCRIPT: the part names, in the order they are defined.
lh_parts() { sed -n 's/^part_\([a-z0-9_][a-z0-9_]*\)() *{.*$/\1/p' "$1"; }

run_parts() {
    local parts p st passed=() skipped=() failed=()
    mapfile -t parts < <(lh_parts "$0")
    [ "${#parts[@]}" -gt 0 ] || fail "run_parts: $0 defines no part_NAME() { function"
    if [ -n "$LH_PART" ]; then
        LH_PART_RAN=1
        for p in "${parts[@]}"; do
            [ "$p" = "$LH_PART" ] && break
        done
        [ "$p" = "$LH_PART" ] || fail "$0 has no part '$LH_PART' (its parts: ${parts[*]})"
        "part_$LH_PART"
        exit
    fi
    for p in "${parts[@]}"; do
        log "---- part $p"
        LH_PART=$p bash "$0"
        st=$?
        case $st in
        0) passed+=("$p") ;;
        77) skipped+=("$p") ;;
        *) failed+=("$p") ;;
        esac
    done
    log "parts passed: ${passed[*]:-none}; skipped: ${skipped[*]:-none}; failed: ${failed[*]:-none}"
    [ "${#failed[@]}" -eq 0 ] || exit 1
    [ "${#passed[@]}" -gt 0 ] || exit 77
    exit 0
}

# ---- Host ports: the reverse direction (test_host_ports.sh) ------------------

# The relay image the daemon's sidecar mode is tested with: busybox has no
# socat, and the default alpine/socat would need a registry.
LH_RELAY_IMAGE=loophole-test/socat:1

# ensure_relay_image: loophole-test/socat:1, the host's socat with every
# library ldd lists and the dynamic loader, each at the path ldd prints (the
# loader searches there), in an otherwise empty rootfs. Built with docker
# import, only when missing, under a lock so parallel scripts build it once.
ensure_relay_image() {
    docker image inspect "$LH_RELAY_IMAGE" >/dev/null 2>&1 && return 0
    (
        flock 9
        docker image inspect "$LH_RELAY_IMAGE" >/dev/null 2>&1 && exit 0
        local socat f libs root=$LH_TMP/relay-image
        socat=$(command -v socat) || fail "missing tool: socat (make test installs it)"
        socat=$(readlink -f "$socat")
        # Lines are "name => /path (addr)" or "/path (addr)"; the vDSO has no path.
        libs=$(ldd "$socat" | sed -n 's/^[[:space:]]*\([^ ]* => \)\{0,1\}\(\/[^ ]*\) (0x.*$/\2/p')
        [ -n "$libs" ] || fail "ldd $socat lists no libraries (a static socat needs none: build the image by hand)"
        mkdir -p "$root/usr/bin" "$root/etc" "$root/tmp"
        chmod 1777 "$root/tmp"
        cp -L "$socat" "$root/usr/bin/socat" || fail "cannot copy $socat"
        for f in $libs; do
            cp -L --parents "$f" "$root" || fail "cannot copy $f (listed by ldd $socat)"
        done
        # getaddrinfo reads these (glibc has files and dns built in since 2.34);
        # docker run mounts /etc/hosts and /etc/resolv.conf over the rest.
        echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
        echo 'root:x:0:0:root:/:/usr/bin/socat' >"$root/etc/passwd"
        echo 'root:x:0:' >"$root/etc/group"
        tar -C "$root" -cf - . |
            docker import -c 'ENV PATH=/usr/bin' -c 'ENTRYPOINT ["socat"]' - "$LH_RELAY_IMAGE" \
                >/dev/null || fail "docker import of $LH_RELAY_IMAGE failed"
        rm -rf "$root"
    ) 9>/tmp/loophole-test-relay-image.lock || exit 1
}

# ---- Direct forwarding (test_direct.sh, issue 13) -----------------------------

# port_json CONTAINER-NAME PORT [PROTO]: that port's object in GET
# /v1/containers (one line of compact JSON), or empty when the API, the
# container or the port is not there. The issue-13 fields: mode ("direct",
# "mapped", "shared", "unreachable", "none"), target ("IP:PORT" or null),
# network (the network direct forwarding uses, or null), problem.
port_json() {
    curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/containers 2>/dev/null |
        jq -c --arg n "$1" --argjson p "$2" --arg proto "${3:-tcp}" \
            'first(.[] | select(.container == $n) | .ports[]
             | select(.port == $p and .proto == $proto)) // empty' 2>/dev/null
}

# port_field CONTAINER-NAME PORT PROTO FIELD: one field of port_json, raw
# ("null" when null, empty when the port is not listed).
port_field() { port_json "$1" "$2" "$3" | jq -r --arg f "$4" '.[$f]' 2>/dev/null; }

# port_is CONTAINER-NAME PORT PROTO MODE [TARGET [NETWORK]]: the port is in
# MODE, with TARGET and NETWORK when given ("null" for null); for wait_for.
port_is() {
    local j
    j=$(port_json "$1" "$2" "$3")
    [ -n "$j" ] || return 1
    [ "$(jq -r .mode <<<"$j")" = "$4" ] || return 1
    [ $# -lt 5 ] || [ "$(jq -r .target <<<"$j")" = "$5" ] || return 1
    [ $# -lt 6 ] || [ "$(jq -r .network <<<"$j")" = "$6" ]
}

# expect_port CONTAINER-NAME PORT PROTO MODE [TARGET [NETWORK]]: waits (20 s)
# until port_is; fails naming what the daemon says instead.
expect_port() {
    wait_for -t 20 port_is "$@" ||
        fail "$1 $2/$3 should be mode $4${5:+ target $5}${6:+ network $6}, got: $(port_json "$1" "$2" "$3")"
}

# ctr_net_ip CONTAINER NETWORK: the container's IPv4 address on NETWORK
# (empty when it is not on it).
ctr_net_ip() {
    docker inspect -f "{{with index .NetworkSettings.Networks \"$2\"}}{{.IPAddress}}{{end}}" "$1" \
        2>/dev/null
}

# net_subnet NETWORK: the network's first IPv4 subnet (CIDR).
net_subnet() {
    docker network inspect -f '{{range .IPAM.Config}}{{.Subnet}} {{end}}' "$1" 2>/dev/null |
        tr ' ' '\n' | grep -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/[0-9]+$' | head -n1
}

# lh_network NAME [DOCKER-NETWORK-CREATE-ARGS...]: creates a bridge network
# labelled with the run id; the cleanup removes it (after removing this run's
# containers, which would otherwise keep it in use).
lh_network() {
    local n=$1
    shift
    docker network create --label "loophole.test=$RUN_ID" "$@" "$n" >/dev/null ||
        fail "docker network create $n failed"
    on_exit "lh_network_rm $n"
}
lh_network_rm() {
    local ids
    ids=$(docker ps -aq --filter "label=loophole.test=$RUN_ID" --filter "network=$1")
    # shellcheck disable=SC2086
    [ -z "$ids" ] || docker rm -f -v $ids
    docker network rm "$1"
}

# lh_free_gid: a group id no group in the group database has, for a daemon
# whose sockets an owner-match firewall rule can single out.
lh_free_gid() {
    local g _
    for _ in $(seq 1 50); do
        g=$((40000 + RANDOM % 20000))
        getent group "$g" >/dev/null 2>&1 || {
            echo "$g"
            return 0
        }
    done
    fail "no free group id found"
}

# start_daemon_as_gid GID [EXTRA-FLAGS...]: start_daemon, with the daemon's
# real, effective, saved and file-system group id GID and no supplementary
# groups (still uid 0 with all its capabilities), so `iptables -m owner
# --gid-owner GID` matches its sockets and no other process's. A wrapper
# script execs setpriv, which execs loopholed: LH_DAEMON_PID is the daemon.
start_daemon_as_gid() {
    local gid=$1 w=$LH_TMP/loopholed-gid-$1
    shift
    need_tool setpriv
    printf '#!/bin/sh\nexec setpriv --regid=%s --clear-groups -- %q "$@"\n' "$gid" "$LOOPHOLED" >"$w"
    chmod 755 "$w"
    LOOPHOLED=$w start_daemon "$@"
    local g
    g=$(awk '/^Gid:/ {print $2 "," $3 "," $4 "," $5}' "/proc/$LH_DAEMON_PID/status" 2>/dev/null)
    assert_eq "$gid,$gid,$gid,$gid" "$g" "group ids of loopholed $LH_DAEMON_PID"
    [ "$(readlink "/proc/$LH_DAEMON_PID/exe")" = "$(readlink -f "$LOOPHOLED")" ] ||
        fail "pid $LH_DAEMON_PID is $(readlink "/proc/$LH_DAEMON_PID/exe"), not $LOOPHOLED"
}

# gid_block GID DEST [reject|drop]: locally made packets from sockets of
# group GID to DEST (CIDR, or CIDR:PORT for one TCP port) are rejected with
# an ICMP host-unreachable (connect() fails with EHOSTUNREACH at once; a plain
# REJECT answers port-unreachable, i.e. ECONNREFUSED, which counts as
# reachable) or dropped (connect() times out). Packets Docker's NAT rewrote
# to DEST (a mapped port without docker-proxy) are left alone, so the mapped
# path stays open. Name a port for loopback destinations: the daemon's
# replies to its own clients on 127.0.0.1 are its packets too. The cleanup
# removes the rule; gid_unblock with the same arguments does it earlier.
lh_gid_rule() { # lh_gid_rule -I|-D GID DEST [reject|drop]
    local match=(-d "${3%%:*}") target=(-j REJECT --reject-with icmp-host-unreachable)
    case $3 in
    *:*) match+=(-p tcp --dport "${3#*:}") ;;
    esac
    [ "${4:-reject}" = drop ] && target=(-j DROP)
    iptables -w 10 "$1" OUTPUT "${match[@]}" -m owner --gid-owner "$2" \
        -m conntrack ! --ctstate DNAT "${target[@]}"
}
gid_block() {
    if ! lh_gid_rule -I "$@" 2>"$LH_TMP/iptables.err"; then
        fail "iptables cannot add an owner rule for group $1 to $2: $(cat "$LH_TMP/iptables.err")"
    fi
    on_exit "lh_gid_rule -D $*"
    log "blocked $2 for group $1 (${3:-reject})"
}
gid_unblock() {
    lh_gid_rule -D "$@" || fail "iptables could not remove the owner rule for group $1 to $2"
    log "unblocked $2 for group $1"
}

# ---- Held connections (test_direct.sh) ----------------------------------------

# conn_open NAME HOST PORT: a TCP connection held open in the background
# (socat; its input is a fifo this shell keeps open, what comes back
# accumulates in $LH_TMP/conn-NAME.out). conn_send NAME LINE writes a line,
# conn_expect NAME LINE waits (5 s) until that line came back, conn_close
# NAME closes our side. The cleanup kills what is left.
declare -A LH_CONN_FD=() LH_CONN_PID=()
conn_open() {
    local n=$1 fifo=$LH_TMP/conn-$1.in fd
    rm -f "$fifo"
    mkfifo "$fifo" || fail "mkfifo $fifo failed"
    socat -T 120 - "TCP:$2:$3,connect-timeout=3" <"$fifo" >"$LH_TMP/conn-$n.out" \
        2>"$LH_TMP/conn-$n.err" &
    LH_CONN_PID[$n]=$!
    on_exit "kill ${LH_CONN_PID[$n]}"
    # Opening the fifo for writing lets socat's open for reading return.
    exec {fd}>"$fifo"
    LH_CONN_FD[$n]=$fd
}
# A subshell: a write after the peer went away kills it with SIGPIPE, not us.
conn_send() {
    (printf '%s\n' "$2" >&"${LH_CONN_FD[$1]}") 2>/dev/null || fail "cannot write to connection $1 (closed)"
}
conn_has() { grep -qxF -- "$2" "$LH_TMP/conn-$1.out"; }
conn_expect() {
    wait_for -t 5 conn_has "$1" "$2" ||
        fail "connection $1: no '$2' came back (got: $(tr '\n' '|' <"$LH_TMP/conn-$1.out"); $(cat "$LH_TMP/conn-$1.err"))"
}
# conn_alive NAME: its socat has not exited (the connection is open).
conn_alive() { ! lh_exited "${LH_CONN_PID[$1]}"; }
conn_close() {
    local fd=${LH_CONN_FD[$1]}
    exec {fd}>&-
    lh_wait_exit "${LH_CONN_PID[$1]}" 5 || kill "${LH_CONN_PID[$1]}" 2>/dev/null
    wait "${LH_CONN_PID[$1]}" 2>/dev/null
    return 0
}

# ---- Leases, bound addresses, projects (test_leases/bound/project.sh, issue 14) --

# lhc ARGS...: the loophole client against the test daemon.
lhc() { "$LOOPHOLE_BIN/loophole" --socket "$LH_SOCK" "$@"; }

# lh_capture CMD...: runs CMD with its stdout in $LH_TMP/cap.out and its
# stderr in $LH_TMP/cap.err; sets LH_RC to its exit status. Main shell only
# (it sets a variable).
LH_RC=
lh_capture() {
    "$@" >"$LH_TMP/cap.out" 2>"$LH_TMP/cap.err"
    LH_RC=$?
}

# expect_cli_ok LABEL CMD...: CMD exits 0 (lh_capture; stdout stays in
# $LH_TMP/cap.out).
expect_cli_ok() {
    local label=$1
    shift
    lh_capture "$@"
    [ "$LH_RC" -eq 0 ] ||
        fail "$label: exit status $LH_RC (stdout '$(cat "$LH_TMP/cap.out")', stderr '$(cat "$LH_TMP/cap.err")')"
}

# expect_cli_error LABEL REGEX CMD...: CMD exits 1 with nothing on stdout and
# one line on stderr (the daemon's sentence) matching REGEX (grep -Ei).
expect_cli_error() {
    local label=$1 re=$2 err
    shift 2
    lh_capture "$@"
    err=$(cat "$LH_TMP/cap.err")
    assert_eq 1 "$LH_RC" "$label: exit status (stderr '$err')"
    assert_eq "" "$(cat "$LH_TMP/cap.out")" "$label: stdout"
    [ "$(grep -c . "$LH_TMP/cap.err")" -eq 1 ] || fail "$label: expected one line on stderr, got '$err'"
    grep -Eiq -- "$re" "$LH_TMP/cap.err" || fail "$label: stderr does not match /$re/: '$err'"
}

# lease_add_ok LABEL NAME [ARGS...]: `loophole lease add NAME ARGS...` exits
# 0 and prints exactly one address and a newline on stdout (checked byte for
# byte); prints that address.
lease_add_ok() {
    local label=$1 a
    shift
    expect_cli_ok "$label" lhc lease add "$@"
    a=$(cat "$LH_TMP/cap.out")
    printf '%s' "$a" | grep -Eqx '[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+' ||
        fail "$label: stdout is not one address: '$a'"
    printf '%s\n' "$a" | cmp -s - "$LH_TMP/cap.out" ||
        fail "$label: stdout is not exactly '$a\\n': $(od -c "$LH_TMP/cap.out" | head -n3)"
    echo "$a"
}

# api_leases: GET /v1/leases (the JSON array), empty when the API does not
# answer 200.
api_leases() { curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/leases 2>/dev/null; }

# lease_json NAME: GET /v1/leases/NAME as one line of compact JSON, empty on
# an error.
lease_json() {
    curl -sf -m 3 --unix-socket "$LH_SOCK" "http://x/v1/leases/$1" 2>/dev/null | jq -c . 2>/dev/null
}
# lease_field NAME FIELD: one field of it (raw; "null" for null).
lease_field() { lease_json "$1" | jq -r --arg f "$2" '.[$f]' 2>/dev/null; }

# lease_post JSON-BODY BODY-FILE: POST /v1/leases; prints the HTTP status.
lease_post() {
    curl -s -m 5 --unix-socket "$LH_SOCK" -X POST -H 'Content-Type: application/json' \
        --data-binary "$1" -o "$2" -w '%{http_code}' http://x/v1/leases 2>/dev/null
}

# ctr_json CONTAINER-NAME: its object in GET /v1/containers (compact), empty
# when not listed.
ctr_json() {
    curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/containers 2>/dev/null |
        jq -c --arg c "$1" 'first(.[] | select(.container == $c)) // empty' 2>/dev/null
}
# ctr_field CONTAINER-NAME JQ-FILTER: the filter applied to ctr_json (raw).
ctr_field() { ctr_json "$1" | jq -r "$2" 2>/dev/null; }
# ctr_ip CONTAINER-NAME: its address in /v1/containers ("null" when none,
# empty when not listed).
ctr_ip() { ctr_field "$1" .ip; }
ctr_ip_is() { [ "$(ctr_ip "$1")" = "$2" ]; }

# expect_ctr_ip CONTAINER-NAME: waits (20 s) until the daemon gives the
# container an address; prints it.
expect_ctr_ip() {
    wait_for -t 20 lh_ctr_has_ip "$1" || fail "$1 got no address: $(ctr_json "$1")"
    ctr_ip "$1"
}
lh_ctr_has_ip() {
    local a
    a=$(ctr_ip "$1")
    [ -n "$a" ] && [ "$a" != null ]
}

# status_field JQ-FILTER: GET /v1/status through the filter (raw).
status_field() {
    curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/status 2>/dev/null | jq -r "$1" 2>/dev/null
}

# lo_has_addr ADDR: ADDR/32 is on lo (of this network namespace). The list
# is read whole first: `ip ... | grep -q` fails now and then under pipefail
# (ip, still writing after grep has exited, dies of SIGPIPE).
lo_has_addr() { grep -q " $1/32 " <<<"$(ip -4 -o addr show dev lo)"; }

# www_page DIR TEXT: DIR/index.html says TEXT, readable by busybox httpd.
www_page() {
    mkdir -p "$1"
    printf '%s\n' "$2" >"$1/index.html"
    chmod -R a+rX "$1"
}

# http_body ADDR PORT: GET / on ADDR:PORT, the body (empty on failure).
http_body() { curl -sf -m 3 "http://$1:$2/" 2>/dev/null; }
http_says() { [ "$(http_body "$1" "$2")" = "$3" ]; }
# expect_http_says ADDR PORT TEXT: waits (20 s) until GET / returns TEXT.
expect_http_says() {
    wait_for -t 20 http_says "$1" "$2" "$3" ||
        fail "http://$1:$2/ should say '$3', got '$(curl -s -m 3 "http://$1:$2/" 2>&1)'"
}

# run_web NAME TEXT DOCKER-RUN-ARGS... -- PORT...: a container running busybox
# httpd on each PORT, every one serving TEXT; prints the id.
run_web() {
    local n=$1 text=$2 args=() cmd="" p
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        args+=("$1")
        shift
    done
    [ "${1:-}" = -- ] || fail "run_web: missing --"
    shift
    www_page "$LH_TMP/www-$n" "$text"
    for p in "$@"; do
        cmd+="httpd -p $p -h /www; "
    done
    run_ctr --name "$n" "${args[@]}" -v "$LH_TMP/www-$n:/www:ro" "$LH_IMAGE" \
        sh -c "${cmd}exec sleep 3600"
}

# compose_labels PROJECT SERVICE NUMBER: the labels docker compose sets, as
# docker-run arguments (one per line; no spaces in them), for containers made
# by hand (the tests do not need docker-compose for them).
compose_labels() {
    printf '%s\n' --label "com.docker.compose.project=$1" --label "com.docker.compose.service=$2" \
        --label "com.docker.compose.container-number=$3" --label com.docker.compose.oneoff=False
}

# lh_listens_any tcp|udp ADDR: the test daemon holds a listening (TCP) or
# bound (UDP) socket on ADDR, any port.
lh_listens_any() {
    local flags=-Hltnp
    [ "$1" = udp ] && flags=-Hlunp
    [ -n "$LH_DAEMON_PID" ] || return 1
    grep -q "pid=$LH_DAEMON_PID," <<<"$(ss "$flags" src "$2" 2>/dev/null)"
}

# pool_used_expected: how many distinct pool addresses running containers (of
# any run: their ip in /v1/containers, and the loopback addresses other than
# 127.0.0.1 they publish on, served or not) and leases hold, which is what
# /v1/status counts as pool.used.
pool_used_expected() {
    {
        curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/containers |
            jq -r '.[] | select(.state == "running") | (.ip // empty),
                (.ports[] | .host_ip // empty | select(startswith("127.") and . != "127.0.0.1"))'
        api_leases | jq -r '.[].ip'
    } | sort -u | while read -r a; do in_pool "$a" && echo "$a"; done | grep -c . || true
}
