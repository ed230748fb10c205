# Stable addresses: across a container restart, a daemon restart, and (only
# when tests/engine.sh started the engine) a dockerd restart under the daemon.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine

D=$LH_DOMAIN

# ctr NAME [DOCKER-RUN-ARGS...]: an httpd container lh-NAME-<run> publishing 80.
ctr() {
    local n=$1
    shift
    run_ctr --name "lh-$n-$RUN_ID" "$@" -p 80 "$LH_IMAGE" httpd -f -p 80 >/dev/null
}

# ---- Parts --------------------------------------------------------------------

# Container restarts and a daemon restart with the same state directory.
part_restarts() {
    start_daemon

    ctr a --restart=always --stop-timeout 1
    a=$(expect_address "lh-a-$RUN_ID.$D")
    ctr b --restart=always --stop-timeout 1
    b=$(expect_address "lh-b-$RUN_ID.$D")
    assert_ne "$a" "$b" "two containers share an address"
    log "a -> $a, b -> $b"

    # Container restart: while a is stopped its lease is kept, so a container
    # started meanwhile gets another address, and a comes back on its own.
    docker stop -t 1 "lh-a-$RUN_ID" >/dev/null || fail "docker stop failed"
    expect_nxdomain "lh-a-$RUN_ID.$D"
    ctr c --restart=always --stop-timeout 1
    c=$(expect_address "lh-c-$RUN_ID.$D")
    assert_ne "$a" "$c" "a new container took the stopped container's address"
    assert_ne "$b" "$c" "two containers share an address"
    docker start "lh-a-$RUN_ID" >/dev/null || fail "docker start failed"
    assert_eq "$a" "$(expect_address "lh-a-$RUN_ID.$D")" "address after docker stop/start"
    docker restart -t 1 "lh-b-$RUN_ID" >/dev/null || fail "docker restart failed"
    # The restart may be seen as die+start; either way b ends up where it was.
    wait_for resolves_to "lh-b-$RUN_ID.$D" "$b" ||
        fail "address after docker restart: expected $b, got '$(resolve "lh-b-$RUN_ID.$D")'"

    # Daemon restart with the same state directory.
    stop_daemon
    [ -s "$LH_STATE_DIR/state.json" ] || fail "no state file after a clean exit"
    grep -q "\"$a\"" "$LH_STATE_DIR/state.json" || fail "state.json does not hold $a: $(cat "$LH_STATE_DIR/state.json")"
    # A container that starts while the daemon is down appears when it is back.
    ctr d
    start_daemon
    assert_eq "$a" "$(expect_address "lh-a-$RUN_ID.$D")" "a after a daemon restart"
    assert_eq "$b" "$(expect_address "lh-b-$RUN_ID.$D")" "b after a daemon restart"
    assert_eq "$c" "$(expect_address "lh-c-$RUN_ID.$D")" "c after a daemon restart"
    dd=$(expect_address "lh-d-$RUN_ID.$D")
    for x in "$a" "$b" "$c"; do
        assert_ne "$x" "$dd" "the container started while the daemon was down took a leased address"
    done
    stop_daemon
    log "ok"
}

# dockerd restarted under the daemon: containers with --restart=always come
# back at their addresses, one without a policy stays down, a new one gets a
# free address. Only the dockerd that tests/engine.sh started is restarted.
part_dockerd_restart() {
    engine_started_by_tests ||
        skip "dockerd was not started by tests/engine.sh, so it is not restarted here"
    start_daemon
    local n x
    for n in a b c; do ctr "$n" --restart=always --stop-timeout 1; done
    ctr d
    declare -A want
    for n in a b c d; do want[$n]=$(expect_address "lh-$n-$RUN_ID.$D"); done
    log "a -> ${want[a]}, b -> ${want[b]}, c -> ${want[c]}, d -> ${want[d]}"

    log "restarting dockerd (started by tests/engine.sh)"
    "$LOOPHOLE_SRC/tests/engine.sh" restart >"$LH_TMP/engine.log" 2>&1 ||
        fail "tests/engine.sh restart failed: $(cat "$LH_TMP/engine.log")"
    daemon_alive || fail "loopholed died while dockerd restarted"
    # --restart=always brings a, b and c back; d (no policy) stays down.
    for n in a b c; do
        wait_for -t 60 sh -c "docker inspect -f '{{.State.Running}}' lh-$n-$RUN_ID | grep -qx true" ||
            fail "lh-$n-$RUN_ID did not come back after the dockerd restart"
    done
    for n in a b c; do
        wait_for -t 30 resolves_to "lh-$n-$RUN_ID.$D" "${want[$n]}" ||
            fail "lh-$n after the dockerd restart: expected ${want[$n]}, got '$(resolve "lh-$n-$RUN_ID.$D")'"
    done
    expect_nxdomain "lh-d-$RUN_ID.$D" 30
    ctr e
    e=$(expect_address "lh-e-$RUN_ID.$D")
    for x in "${want[@]}"; do
        assert_ne "$x" "$e" "a container started after the dockerd restart took a leased address"
    done
    daemon_alive || fail "loopholed died after the dockerd restart"
    log "dockerd restart survived"
    stop_daemon
    log "ok"
}

run_parts
