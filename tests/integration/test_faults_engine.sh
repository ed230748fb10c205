# Engine faults (issue 15), against a private dockerd this test starts itself
# in a private network namespace (see private_engine.sh), never the host's
# engine: the engine killed with SIGKILL and restarted; its socket deleted
# while it runs and put back, then deleted and recreated by a restart; no
# engine at all for the first 20 s of the daemon. After each: the daemon
# recovered by itself, its registry matches docker ps, every running
# container resolves at its old address and answers on its port, and the
# daemon's descriptors and RSS are back near where they were.
# shellcheck shell=bash
# The re-exec below makes shellcheck think every function unreachable:
# shellcheck disable=SC2317
if [ -z "${LH_IN_NETNS:-}" ]; then
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
need_root
# shellcheck source=tests/integration/private_engine.sh
. "$(dirname "$0")/private_engine.sh"
need_private_engine

LH_POOL=${LH_POOL:-127.0.81.2-127.0.81.254}
D=$LH_DOMAIN

# web NAME [DOCKER-RUN-ARGS...]: lh-fe-NAME-<run> serving "NAME-<run>" on 80,
# published. --stop-timeout 1: its PID 1 (sleep) ignores SIGTERM, and a
# restarted dockerd stops the containers it finds running before it starts
# them again.
web() {
    local n=$1
    shift
    run_web "lh-fe-$n-$RUN_ID" "$n-$RUN_ID" --stop-timeout 1 -p 80 "$@" -- 80 >/dev/null
}
# served NAME: waits until lh-fe-NAME resolves and answers; prints the address.
served() {
    local a
    a=$(expect_address "lh-fe-$1-$RUN_ID.$D" 30)
    expect_http_says "$a" 80 "$1-$RUN_ID"
    echo "$a"
}
# still_served NAME ADDR: it resolves to ADDR and answers there.
still_served() { expect_served "lh-fe-$1-$RUN_ID" "$2" "$1-$RUN_ID"; }

running() { [ "$(pe inspect -f '{{.State.Running}}' "lh-fe-$1-$RUN_ID" 2>/dev/null)" = true ]; }
expect_running() {
    wait_for -t 60 running "$1" || fail "lh-fe-$1-$RUN_ID is not running: $(pe ps -a)"
}

engine_connected() { [ "$(status_field .docker.connected)" = true ]; }
engine_disconnected() {
    [ "$(status_field .docker.connected)" = false ] &&
        [ "$(status_field '.docker.last_error // empty')" != "" ]
}

# serving_meanwhile: what must hold while the engine is away: the daemon
# runs, DNS and the control API answer.
serving_meanwhile() {
    daemon_alive || fail "loopholed died while the engine was away"
    dns_up || fail "loopholed stopped answering DNS while the engine was away"
    control_up || fail "loopholed's control API stopped answering while the engine was away"
}

# ---- Parts --------------------------------------------------------------------

# dockerd SIGKILLed (its containerd and docker-proxies die with it, the
# containers are left to a restarted dockerd), then started again: the
# containers with --restart=always come back at their addresses, the one
# without a policy stays down, a new one gets a free address.
part_engine_kill() {
    pe_start
    ensure_image
    start_daemon
    web a --restart=always
    web b --restart=always
    web c
    a=$(served a)
    b=$(served b)
    c=$(served c)
    log "a -> $a, b -> $b, c -> $c"
    expect_registry_matches "before the SIGKILL"
    lh_baseline

    pe_signal KILL
    # The event stream ended: the daemon notices at once.
    wait_for -t 15 engine_disconnected ||
        fail "status does not say the engine is unreachable: $(status_field .docker)"
    serving_meanwhile

    pe_start
    expect_running a
    expect_running b
    wait_for -t 30 engine_connected || fail "the daemon did not reconnect: $(status_field .docker)"
    expect_registry_matches "after the engine's SIGKILL and restart"
    still_served a "$a"
    still_served b "$b"
    running c && fail "lh-fe-c (no restart policy) is running again"
    expect_nxdomain "lh-fe-c-$RUN_ID.$D" 30
    web e
    e=$(served e)
    for x in "$a" "$b" "$c"; do
        assert_ne "$x" "$e" "a container started after the engine's restart took a leased address"
    done
    expect_registry_matches "after a new container"
    expect_resources "after the engine's SIGKILL"
    stop_daemon
    log "ok"
}

# The engine's socket deleted while dockerd runs: the event stream the
# daemon holds stays up, but every new request fails. A container started
# meanwhile (through a second name of the same socket) cannot be inspected:
# the daemon must notice, say so, and pick the container up once the socket
# is back, without dockerd restarting. Then the socket deleted again and
# recreated by a dockerd restart.
part_socket_gone() {
    pe_start
    ensure_image
    start_daemon
    web a --restart=always
    a=$(served a)
    expect_registry_matches "before the socket goes"
    lh_baseline

    local keep=$PE_DIR/keep.sock
    ln "$PE_SOCK" "$keep" || fail "cannot link $PE_SOCK"
    rm -f "$PE_SOCK"
    DOCKER_HOST=unix://$keep web b --restart=always
    wait_for -t 20 engine_disconnected ||
        fail "the daemon did not notice that the engine's socket is gone (lh-fe-b started meanwhile): status $(status_field .docker), lists [$(lh_running_names | tr '\n' ' ')]"
    serving_meanwhile
    # What it knew it keeps serving: a's proxy needs no engine.
    still_served a "$a"

    ln "$keep" "$PE_SOCK" || fail "cannot put $PE_SOCK back"
    wait_for -t 30 engine_connected || fail "the daemon did not reconnect: $(status_field .docker)"
    expect_registry_matches "after the socket came back"
    b=$(served b)
    assert_ne "$a" "$b" "a and b share an address"
    still_served a "$a"
    expect_resources "after the socket came back"

    # Deleted again, and this time recreated by the engine's restart.
    rm -f "$PE_SOCK" "$keep"
    pe_signal TERM
    wait_for -t 15 engine_disconnected ||
        fail "status does not say the engine is unreachable: $(status_field .docker)"
    serving_meanwhile
    pe_start
    expect_running a
    expect_running b
    wait_for -t 30 engine_connected || fail "the daemon did not reconnect: $(status_field .docker)"
    expect_registry_matches "after the socket was recreated by a restart"
    still_served a "$a"
    still_served b "$b"
    expect_resources "after the socket was recreated by a restart"
    stop_daemon
    log "ok"
}

# No engine for the first 20 s of the daemon: it starts, answers DNS and its
# control API the whole time, status says the engine is unreachable; then
# the engine appears (its containers start with it) and they are served.
part_no_engine_at_start() {
    pe_start
    ensure_image
    web a --restart=always
    web b --restart=always
    expect_running a
    expect_running b
    pe_signal TERM
    [ ! -e "$PE_SOCK" ] || fail "dockerd left its socket behind after SIGTERM"

    start_daemon
    wait_for -t 10 engine_disconnected ||
        fail "status does not say the engine is unreachable: $(status_field .docker)"
    log "engine unreachable: $(status_field .docker.last_error)"
    lh_baseline
    # The fault lasts 20 s; the checks run throughout it.
    local end=$(($(now_ms) + 20000)) checks=0
    while [ "$(now_ms)" -lt "$end" ]; do
        serving_meanwhile
        engine_disconnected || fail "status no longer says the engine is unreachable: $(status_field .docker)"
        assert_eq NXDOMAIN "$(rcode "lh-fe-a-$RUN_ID.$D")" "a name while there is no engine"
        checks=$((checks + 1))
        sleep 0.5
    done
    log "no engine for 20 s: $checks rounds of checks passed"

    pe_start
    expect_running a
    expect_running b
    wait_for -t 30 engine_connected || fail "the daemon did not connect: $(status_field .docker)"
    expect_registry_matches "after the engine appeared"
    a=$(served a)
    b=$(served b)
    assert_ne "$a" "$b" "a and b share an address"
    expect_resources "after the engine appeared"
    stop_daemon
    log "ok"
}

run_parts
