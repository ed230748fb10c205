#!/usr/bin/env bash
# The Docker engine for the integration tests (used by `make test`).
#
#   tests/engine.sh start    an engine that answers already: nothing to do.
#                            Else, on Linux as root: install docker.io when
#                            dockerd is missing, start dockerd in the
#                            background and wait for it; write a marker saying
#                            the tests started it. When that fails: exit 1
#                            under CI=true (the real-engine tests must run),
#                            else exit 0 and the integration tests skip.
#   tests/engine.sh stop     stops dockerd only if this script started it.
#   tests/engine.sh restart  stops and starts the dockerd this script started
#                            (test_stability.sh); exit 1 when it did not.
#   tests/engine.sh status   prints whether an engine answers and who started it.
# Every command is idempotent.
#
# Files (LOOPHOLE_ENGINE_DIR, default /tmp/loophole-engine): dockerd.log,
# dockerd.pid, and started-by-tests (the pid of the dockerd we started).
# LOOPHOLE_DOCKERD_ARGS adds arguments to dockerd.

set -u -o pipefail

DIR=${LOOPHOLE_ENGINE_DIR:-/tmp/loophole-engine}
MARKER=$DIR/started-by-tests
PIDFILE=$DIR/dockerd.pid
LOG=$DIR/dockerd.log
START_TIMEOUT=60
STOP_TIMEOUT=30

say() { printf 'engine: %s\n' "$*" >&2; }

# Cannot provide an engine: fatal under CI, otherwise the tests will skip.
give_up() {
    if [ "${CI:-}" = true ]; then
        say "ERROR: $* (CI=true: the integration tests need a real engine)"
        exit 1
    fi
    say "$*; the integration tests will be skipped"
    exit 0
}

answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

our_pid() {
    local pid
    [ -f "$MARKER" ] || return 1
    pid=$(head -n1 "$MARKER")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

wait_answers() {
    local deadline=$(($(date +%s) + $1))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        answers && return 0
        sleep 0.2
    done
    return 1
}

install_docker() {
    command -v apt-get >/dev/null 2>&1 || return 1
    say "installing docker.io with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends docker.io >"$DIR/apt.log" 2>&1 ||
        { apt-get update >>"$DIR/apt.log" 2>&1 &&
            apt-get install -y --no-install-recommends docker.io >>"$DIR/apt.log" 2>&1; } ||
        { say "apt-get install docker.io failed, see $DIR/apt.log"; return 1; }
}

start_dockerd() {
    local pid
    # A dockerd we started before but that does not answer (yet).
    if pid=$(our_pid); then
        wait_answers "$START_TIMEOUT" && return 0
        return 1
    fi
    rm -f "$MARKER"
    # shellcheck disable=SC2086
    setsid dockerd --pidfile "$PIDFILE" ${LOOPHOLE_DOCKERD_ARGS:-} >>"$LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$MARKER"
    say "started dockerd (pid $pid, log $LOG)"
    local deadline=$(($(date +%s) + START_TIMEOUT))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if answers; then
            # dockerd's own pid, should setsid have forked.
            [ -s "$PIDFILE" ] && cat "$PIDFILE" >"$MARKER"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            say "dockerd exited; last lines of $LOG:"
            tail -n 20 "$LOG" >&2
            rm -f "$MARKER"
            return 1
        fi
        sleep 0.2
    done
    say "dockerd did not answer within ${START_TIMEOUT} s; last lines of $LOG:"
    tail -n 20 "$LOG" >&2
    return 1
}

stop_dockerd() {
    local pid
    if ! pid=$(our_pid); then
        rm -f "$MARKER"
        return 0
    fi
    say "stopping dockerd (pid $pid)"
    kill -TERM "$pid" 2>/dev/null
    local deadline=$(($(date +%s) + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            say "dockerd $pid ignored SIGTERM for ${STOP_TIMEOUT} s; killing it"
            kill -KILL "$pid" 2>/dev/null
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    rm -f "$MARKER"
}

cmd_start() {
    if command -v docker >/dev/null 2>&1 && answers; then
        if our_pid >/dev/null; then
            say "dockerd started by the tests is running"
        else
            say "a Docker engine answers already; using it"
        fi
        return 0
    fi
    [ "$(uname -s)" = Linux ] || give_up "no Docker engine answers (start Docker Desktop, Colima, ...)"
    [ "$(id -u)" -eq 0 ] || give_up "no Docker engine answers and not root, so none is started"
    mkdir -p "$DIR"
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        install_docker || give_up "dockerd is missing and could not be installed"
    fi
    start_dockerd || give_up "dockerd could not be started"
    say "Docker engine ready"
}

cmd_stop() {
    stop_dockerd
}

cmd_restart() {
    our_pid >/dev/null || { say "dockerd was not started by this script; not restarting it"; exit 1; }
    stop_dockerd
    start_dockerd || { say "dockerd did not come back"; exit 1; }
    say "dockerd restarted"
}

cmd_status() {
    if answers; then echo "engine: answers"; else echo "engine: does not answer"; fi
    if pid=$(our_pid); then echo "started by tests/engine.sh: pid $pid"; else echo "started by tests/engine.sh: no"; fi
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
restart) cmd_restart ;;
status) cmd_status ;;
*)
    echo "usage: $0 start|stop|restart|status" >&2
    exit 2
    ;;
esac
