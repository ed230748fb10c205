# No Docker: the daemon keeps running and retrying, answers DNS, picks the
# engine up when its socket appears, and exits 0 on SIGTERM. Bad endpoints and
# flags are refused at start with a one-line message naming them.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root

D=$LH_DOMAIN
SOCK=$LH_TMP/docker.sock
LH_DOCKER_HOST=unix://$SOCK

# Lines of the docker module telling about a failed attempt.
retries() { log_count ' docker +.*(retry|backoff|reconnect|still no|no such file|refused|unreachable)'; }
enough_retries() { [ "$(retries)" -ge "$1" ]; }

# expect_refused WHAT PATTERN FLAGS...: the daemon exits non-zero at once and
# its error output has a line matching PATTERN.
expect_refused() {
    local what=$1 pattern=$2
    shift 2
    local err=$LH_TMP/refused.err st
    timeout 15 "$LOOPHOLED" --control-socket "$LH_SOCK" --state-dir "$LH_STATE_DIR" \
        --dns-listen "$LH_DNS_IP:$LH_DNS_PORT" --domain "$D" --pool "$LH_POOL" \
        --resolver off --alias off --log-level debug "$@" >"$err" 2>&1
    st=$?
    [ "$st" -ne 124 ] || fail "$what: loopholed still running after 15 s"
    [ "$st" -ne 0 ] || fail "$what: loopholed exited 0"
    grep -Eiq -- "$pattern" "$err" || fail "$what: no message matching '$pattern': $(cat "$err")"
    [ "$(grep -c . "$err")" -eq 1 ] || fail "$what: expected a one-line message, got: $(cat "$err")"
    log "$what refused (status $st): $(grep -Ei -- "$pattern" "$err" | head -n1)"
}

# ---- Parts --------------------------------------------------------------------

# Without an engine: the daemon retries with a backoff, answers DNS, exits 0;
# bad endpoints and flags are refused at start.
part_without_engine() {
    start_daemon
    # Backoff 0.25 s doubling: a few cycles take a few seconds.
    wait_for -t 20 enough_retries 10 ||
        fail "no sign of retries in the log after 20 s (only $(retries) lines about failed attempts)"
    daemon_alive || fail "loopholed died without Docker"
    dns_up || fail "loopholed stopped answering DNS without Docker"
    assert_eq NXDOMAIN "$(rcode "nothing.$D")" "unknown name without Docker"
    log "still alive after $(retries) retry lines"
    stop_daemon

    expect_refused "tcp docker host" 'tcp://|docker-host' --docker-host tcp://127.0.0.1:2375
    expect_refused "ssh docker host" 'ssh://|docker-host' --docker-host ssh://user@example
    expect_refused "bad pool" 'pool' --docker-host "$LH_DOCKER_HOST" --pool garbage
    expect_refused "pool outside 127/8" 'pool' --docker-host "$LH_DOCKER_HOST" --pool 10.0.0.2-10.0.0.9
    expect_refused "unknown flag" 'no-such-flag' --docker-host "$LH_DOCKER_HOST" --no-such-flag

    # A state directory others may write (issue 15): refused before the
    # daemon reads or writes anything there.
    local open=$LH_TMP/open-state err=$LH_TMP/open-state.err st
    mkdir -p "$open"
    chmod 0777 "$open"
    timeout 15 "$LOOPHOLED" --control-socket "$LH_TMP/open.sock" --state-dir "$open" \
        --dns-listen "$LH_DNS_IP:$(free_port)" --domain "$D" --pool "$LH_POOL" \
        --resolver off --alias off --docker-host "$LH_DOCKER_HOST" >"$err" 2>&1
    st=$?
    [ "$st" -ne 124 ] && [ "$st" -ne 0 ] || fail "world-writable state dir: status $st"
    grep -q "state directory $open is writable by other users (mode 0777)" "$err" ||
        fail "world-writable state dir: no clear line: $(cat "$err")"
    [ -z "$(ls -A "$open")" ] || fail "the daemon wrote into the refused state dir: $(ls -A "$open")"
    log "world-writable state dir refused (status $st)"
    log "ok"
}

# The engine appears at the configured path after the daemon has been
# retrying for a while: the daemon connects and syncs (needs a real engine).
part_engine_appears() {
    need_root_and_engine
    start_daemon
    wait_for -t 20 enough_retries 6 ||
        fail "no sign of retries in the log after 20 s (only $(retries) lines about failed attempts)"
    ln -s /var/run/docker.sock "$SOCK"
    run_ctr --name "lh-late-$RUN_ID" -p 80 "$LH_IMAGE" httpd -f -p 80 >/dev/null
    # The backoff is capped at 10 s.
    late=$(expect_address "lh-late-$RUN_ID.$D" 25)
    log "engine picked up after $(retries) retry lines: lh-late-$RUN_ID -> $late"
    stop_daemon
    log "ok"
}

run_parts
