# shellcheck shell=bash
# Checks shared by the fault scripts (test_faults_state.sh,
# test_hostile_clients.sh), sourced after lib.sh: whether the registry
# matches `docker ps` for this run's containers, whether a container is
# served, and the daemon's descriptors and memory against a baseline.

# This run's containers are named $RUN_ID-<x>, so the registry (which lists
# every container of the engine, other tests' too) can be cut down to ours.
# ADDR[container name]=address, filled and read by the sourcing script.
# shellcheck disable=SC2034
declare -A ADDR=()

# run_docker_ids: this run's running containers per `docker ps`, sorted.
run_docker_ids() { docker ps -q --no-trunc --filter "label=loophole.test=$RUN_ID" | LC_ALL=C sort; }

# run_registry_ids: this run's running containers per GET /v1/containers.
run_registry_ids() {
    curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/containers |
        jq -r --arg p "$RUN_ID-" '.[] | select((.container // "") | startswith($p))
            | select(.state == "running") | .id' | LC_ALL=C sort
}

registry_matches_docker() {
    local r d
    r=$(run_registry_ids) || return 1
    d=$(run_docker_ids) || return 1
    [ "$r" = "$d" ]
}

# ctr_ok CONTAINER-NAME: it has an address, its DNS name resolves to it, and
# its port 80 accepts there.
ctr_ok() {
    local j ip name
    j=$(ctr_json "$1")
    ip=$(jq -r '.ip // empty' <<<"$j")
    name=$(jq -r '.name // empty' <<<"$j")
    [ -n "$ip" ] && [ -n "$name" ] || return 1
    resolves_to "$name" "$ip" || return 1
    lh_tcp connects "$ip" 80
}

# expect_healthy LABEL [same-addresses]: the issue's checks after a fault.
daemon_fds() { find "/proc/$LH_DAEMON_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
daemon_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$LH_DAEMON_PID/status"; }
FD0=
RSS0=
baseline() {
    FD0=$(daemon_fds)
    RSS0=$(daemon_rss_kb)
    log "baseline: $FD0 fds, RSS $RSS0 kB"
}
# Margin: +16 fds (a Docker reconnect, a lingering control client).
fds_near() { [ "$(daemon_fds)" -le $((FD0 + 16)) ]; }
