#!/usr/bin/env bash
# Captures real bytes for the fuzz seed corpora: the Docker engine's raw HTTP
# answers (/_ping, /version, the container list, an inspect, an event
# stream) and the real daemon's raw /v1 answers, then writes them in each
# driver's input format into tests/fuzz/corpus/<driver>/real-*.
#
#   bash tests/fuzz/capture.sh BUILD_DIR    (BUILD_DIR/bin/loopholed; root)
#
# Needs root (the daemon), a Docker engine (bash tests/engine.sh start),
# curl, and the loophole-test/busybox:1 image the integration tests build
# (or any image with `sleep`: CAPTURE_IMAGE). Everything it starts is
# labelled and removed on exit; the daemon runs on scratch paths with
# --resolver off --alias off, so it touches nothing of the system's.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:?usage: capture.sh BUILD_DIR}/bin
IMAGE=${CAPTURE_IMAGE:-loophole-test/busybox:1}
DSOCK=${DOCKER_SOCK:-/var/run/docker.sock}
C=tests/fuzz/corpus
TMP=$(mktemp -d /tmp/loophole-capture-XXXXXX)
TAG=capture-$$
daemon_pid=""
cleanup() {
    [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
    docker ps -aq --filter "label=loophole.capture=$TAG" | xargs -r docker rm -f >/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

# Raw answer (status line, headers, body) of GET path on a unix socket.
raw() { curl -sS --max-time "${3:-10}" --unix-socket "$1" -i -H 'Connection: close' \
    --raw "http://localhost$2"; }
# A driver input: flag byte (octal escape), then the pieces joined by sep.
put() { # put DIR NAME FLAGS FILE...
    local dir=$C/$1 name=$2 flags=$3 sep=$4
    shift 4
    mkdir -p "$dir"
    { printf "$flags"; local first=1
      for f in "$@"; do [ $first = 1 ] || printf "$sep"; first=0; cat "$f"; done
    } >"$dir/real-$name"
}

api=$(curl -sS --unix-socket "$DSOCK" http://localhost/version | sed 's/.*"ApiVersion":"\([^"]*\)".*/\1/')
echo "capture: engine API $api"

# ---- the Docker engine ----
raw "$DSOCK" /_ping >"$TMP/ping"
raw "$DSOCK" /version >"$TMP/version"
# The event stream while a container starts, is renamed and stops.
( raw "$DSOCK" "/v$api/events?filters=%7B%22type%22%3A%5B%22container%22%2C%22network%22%5D%7D" 12 \
    >"$TMP/events" || true ) &
ev=$!
sleep 1
id=$(docker run -d --label "loophole.capture=$TAG" --label loophole.names=api,www \
    --label loophole.kafka=9092 --label com.docker.compose.project=shop \
    --label com.docker.compose.service=web --label com.docker.compose.container-number=1 \
    -p 127.0.0.1::8080 --name "lh-$TAG" "$IMAGE" sleep 600)
docker rename "lh-$TAG" "lh2-$TAG"
raw "$DSOCK" "/v$api/containers/json" >"$TMP/list"
raw "$DSOCK" "/v$api/containers/$id/json" >"$TMP/inspect"
docker stop -t 0 "lh2-$TAG" >/dev/null
docker start "lh2-$TAG" >/dev/null
wait $ev || true

# fuzz_docker_http: events, list, inspect, ping, version.
put docker_http all '\000' '\n%%\n' "$TMP/events" "$TMP/list" "$TMP/inspect" "$TMP/ping" "$TMP/version"
put docker_http all-closed '\001' '\n%%\n' "$TMP/events" "$TMP/list" "$TMP/inspect" "$TMP/ping" "$TMP/version"
put docker_http bytewise '\002' '\n%%\n' "$TMP/events" "$TMP/list" "$TMP/inspect" "$TMP/ping" "$TMP/version"
# fuzz_docker (the decoders): the bodies alone.
body() { sed '1,/^\r$/d' "$1"; }
body "$TMP/inspect" >"$C/docker/real-inspect.json"
body "$TMP/list" >"$C/docker/real-list.json"
body "$TMP/version" >"$C/docker/real-version.json"

# ---- the daemon ----
sock=$TMP/loophole.sock
"$BIN/loopholed" --control-socket "$sock" --state-dir "$TMP/state" \
    --dns-listen "127.0.0.1:$((20000 + RANDOM % 20000))" --resolver off --alias off --docker-host "unix://$DSOCK" \
    --log-level error &
daemon_pid=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
sleep 1
raw "$sock" /v1/status >"$TMP/status"
raw "$sock" /v1/containers >"$TMP/containers"
raw "$sock" "/v1/containers/lh2-$TAG" >"$TMP/container"
raw "$sock" /v1/containers/nope >"$TMP/404"
curl -sS --unix-socket "$sock" -i -X PUT http://localhost/v1/resolver >"$TMP/405" || true
( raw "$sock" /v1/events 4 >"$TMP/events-daemon" || true ) &
ev=$!
sleep 1
docker stop -t 0 "lh2-$TAG" >/dev/null
wait $ev || true
kill "$daemon_pid"
wait "$daemon_pid" 2>/dev/null || true
daemon_pid=""
cp "$TMP/state/state.json" "$C/state/real-state.json" 2>/dev/null || true

# fuzz_client: raw answers (mode 1: /v1/containers, 3: /v1/status, 2: a
# stream) and bodies (mode 0).
for f in status containers container 404 405; do
    put client "$f" '\001' '' "$TMP/$f"
done
put client events '\002' '' "$TMP/events-daemon"
printf '\000' >"$C/client/real-body-containers" && body "$TMP/containers" >>"$C/client/real-body-containers"
printf '\004' >"$C/client/real-body-status" && body "$TMP/status" >>"$C/client/real-body-status"
body "$TMP/containers" >"$C/json/real-containers.json"
body "$TMP/status" >"$C/json/real-status.json"
echo "capture: wrote $(ls "$C"/*/real-* | wc -l) seeds"
