# shellcheck shell=bash
# A private Docker engine for the fault tests (test_faults_engine.sh,
# test_faults_daemon.sh), sourced after lib.sh. Not a test itself (CMake
# globs test_*.sh only).
#
# The script using it runs in a private network namespace of its own (it
# re-executes itself under `unshare -n` first thing, with LH_IN_NETNS=1, as
# test_alias_netlink.sh does): the dockerd started here, its
# containerd, its bridge (docker0 of that namespace, 172.17.0.0/16 there),
# docker-proxy's published ports, the loophole daemon's addresses and the test
# clients all live there, so neither the host's engine, bridges, iptables nor
# ports are touched, and two of these tests can run side by side. The mount
# namespace is the host's: the engine's files go to a directory of its own
# (data root, exec root, socket, pidfile), whose mounts the cleanup undoes.
#
# Published ports work without iptables (--iptables=false, so the namespace's
# rules stay empty): docker-proxy, the userland proxy, listens on the host
# port and dials the container; the loophole daemon may use that mapped port
# or the container's bridge address directly (both are reachable here).
#
# The engine is started with setsid: a SIGKILL of dockerd also ends its
# containerd and docker-proxies (they die with their parent), the shims and
# the containers stay, as with a crashed system engine.

# A short directory: unix socket paths (exec-root/containerd/*.sock.ttrpc)
# must stay under 108 bytes.
PE_DIR=$(mktemp -d /tmp/lhpe.XXXXXX)
PE_SOCK=$PE_DIR/d.sock
PE_LOG=$PE_DIR/dockerd.log
PE_PID=
on_exit pe_cleanup

pe() { docker -H "unix://$PE_SOCK" "$@"; }
pe_answers() { timeout 10 docker -H "unix://$PE_SOCK" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# need_private_engine: the tools, and lo up in this namespace. Under CI=true
# a missing dockerd fails (make test installs docker.io), else it skips.
need_private_engine() {
    [ -n "${LH_IN_NETNS:-}" ] || fail "private_engine.sh: the script must run in its own network namespace (LH_IN_NETNS)"
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        [ "${CI:-}" = true ] && fail "dockerd is missing (CI=true: make test installs docker.io)"
        skip "dockerd is missing"
    fi
    local t
    for t in jq curl ip; do need_tool "$t"; done
    ip link set lo up || fail "ip link set lo up failed in the private namespace"
    echo '{}' >"$PE_DIR/daemon.json"
    # Every docker(1) call of the test (run_ctr, lib.sh's cleanup) and the
    # loophole daemon go to the private engine.
    export DOCKER_HOST=unix://$PE_SOCK
    # shellcheck disable=SC2034 # (start_daemon's --docker-host)
    LH_DOCKER_HOST=$DOCKER_HOST
}

# pe_start: starts the private dockerd and waits (60 s) until it answers.
# Its own config file: /etc/docker/daemon.json is the host engine's.
pe_start() {
    [ -z "$PE_PID" ] || ! [ -e "/proc/$PE_PID" ] || fail "pe_start: dockerd $PE_PID is running"
    echo "==== $(date +%T.%3N) dockerd start" >>"$PE_LOG"
    setsid dockerd --config-file "$PE_DIR/daemon.json" --host "unix://$PE_SOCK" \
        --data-root "$PE_DIR/data" --exec-root "$PE_DIR/exec" --pidfile "$PE_DIR/d.pid" \
        --iptables=false --ip-masq=false --log-level warn >>"$PE_LOG" 2>&1 </dev/null &
    PE_PID=$!
    if ! wait_for -t 60 pe_answers; then
        fail "the private dockerd does not answer within 60 s: $(tail -n 20 "$PE_LOG")"
    fi
    log "private dockerd $PE_PID answers on $PE_SOCK"
}

# pe_containerd_pid: the pid of the private dockerd's containerd, also while
# it is a zombie (empty when it is gone). A SIGKILLed dockerd's containerd
# dies with it but stays a zombie until init reaps it, which takes a second
# or more here; a dockerd started meanwhile sees the pid alive ("containerd
# is still running"), waits 20 s for its dead socket and exits.
pe_containerd_pid() {
    local p
    p=$(cat "$PE_DIR/exec/containerd/containerd.pid" 2>/dev/null) || return 0
    [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = containerd ] && echo "$p"
}
pe_no_containerd() { [ -z "$(pe_containerd_pid)" ]; }

# pe_signal SIGNAL: sends SIGNAL to dockerd and waits (30 s) until it and
# its containerd are gone.
pe_signal() {
    [ -n "$PE_PID" ] || fail "pe_signal: no private dockerd"
    kill "-$1" "$PE_PID" 2>/dev/null || fail "the private dockerd $PE_PID was not running"
    lh_wait_exit "$PE_PID" 30 || fail "the private dockerd $PE_PID did not exit after SIG$1"
    wait "$PE_PID" 2>/dev/null
    wait_for -t 10 pe_no_containerd || fail "the private containerd outlived dockerd (SIG$1)"
    log "private dockerd $PE_PID ended by SIG$1"
    PE_PID=
}

# pe_procs: pids of the processes left from the private engine (containerd,
# shims, and the containers' processes under those shims).
pe_procs() {
    local f p kids=()
    for f in /proc/[0-9]*/cmdline; do
        p=${f#/proc/}
        p=${p%/cmdline}
        grep -qF "$PE_DIR/" "$f" 2>/dev/null || continue
        echo "$p"
        read -ra kids <"/proc/$p/task/$p/children" 2>/dev/null
        [ "${#kids[@]}" -eq 0 ] || printf '%s\n' "${kids[@]}"
    done
}

# pe_cleanup: the containers, dockerd, containerd, shims, mounts, the bridge,
# the directory. Runs from on_exit, also after a failure.
pe_cleanup() {
    local ids p m
    if [ -n "$PE_PID" ] && [ -e "/proc/$PE_PID" ] && pe_answers; then
        ids=$(pe ps -aq)
        # shellcheck disable=SC2086
        [ -z "$ids" ] || timeout 60 docker -H "unix://$PE_SOCK" rm -f -v $ids >/dev/null 2>&1
    fi
    if [ -n "$PE_PID" ] && [ -e "/proc/$PE_PID" ]; then
        kill -TERM "$PE_PID" 2>/dev/null
        lh_wait_exit "$PE_PID" 20 || kill -KILL "$PE_PID" 2>/dev/null
        wait "$PE_PID" 2>/dev/null
    fi
    PE_PID=
    while read -r p; do kill -KILL "$p" 2>/dev/null; done < <(pe_procs)
    # Containers whose shim was killed above leave their (empty) cgroups.
    for p in "$PE_DIR"/data/containers/*; do
        [ -d "$p" ] || continue
        for m in /sys/fs/cgroup/*/docker/"${p##*/}" /sys/fs/cgroup/docker/"${p##*/}"; do
            [ -d "$m" ] && rmdir "$m" 2>/dev/null
        done
    done
    # Deepest first: overlay mounts, the netns bind mounts, the data root's
    # own bind mount.
    while read -r m; do
        umount -l "$m" 2>/dev/null
    done < <(awk -v d="$PE_DIR" 'index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
    ip link del docker0 2>/dev/null
    if [ -n "${LH_KEEP_TMP:-}" ]; then
        cp "$PE_LOG" "$LH_TMP/dockerd.log" 2>/dev/null
    fi
    [ "$LH_FAILED" -eq 0 ] || tail -n 30 "$PE_LOG" >&2
    rm -rf "$PE_DIR"
}

# ---- Checks after each fault ----------------------------------------------------

# lh_fds / lh_rss_kb: the daemon's open descriptors and resident set (kB).
lh_fds() { find "/proc/$LH_DAEMON_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
lh_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$LH_DAEMON_PID/status" 2>/dev/null; }

# The margins: a few descriptors come and go with the engine's connections
# (requests in flight, the event stream) and the proxies' sessions; under
# ASan the allocator keeps freed memory in quarantine for a while, so RSS
# moves by megabytes without a leak.
LH_FD_MARGIN=16
LH_RSS_MARGIN_KB=$((20 * 1024))

# lh_baseline: remembers the daemon's fds and RSS (LH_FD0, LH_RSS0).
lh_baseline() {
    LH_FD0=$(lh_fds)
    LH_RSS0=$(lh_rss_kb)
    log "baseline: $LH_FD0 fds, $LH_RSS0 kB RSS"
}

# lh_fds_settled: the fd count is back within the margin (for wait_for: a
# request or a closing relay may hold one for a moment).
lh_fds_settled() { [ "$(lh_fds)" -le $((LH_FD0 + LH_FD_MARGIN)) ]; }

# expect_resources WHAT: fds within +LH_FD_MARGIN of the baseline (waiting
# up to 10 s for closes to land), RSS within +LH_RSS_MARGIN_KB.
expect_resources() {
    daemon_alive || fail "$1: loopholed is not running"
    # shellcheck disable=SC2012 # (a listing for the reader)
    wait_for -t 10 lh_fds_settled ||
        fail "$1: the daemon holds $(lh_fds) fds, baseline $LH_FD0 (+$LH_FD_MARGIN allowed): $(ls -l "/proc/$LH_DAEMON_PID/fd" 2>/dev/null | tail -n 20)"
    local rss
    rss=$(lh_rss_kb)
    [ "$rss" -le $((LH_RSS0 + LH_RSS_MARGIN_KB)) ] ||
        fail "$1: RSS $rss kB, baseline $LH_RSS0 kB (+$LH_RSS_MARGIN_KB kB allowed)"
    log "$1: $(lh_fds) fds (baseline $LH_FD0), $rss kB RSS (baseline $LH_RSS0)"
}

# lh_running_names: the names of the running containers the daemon lists,
# sorted, one per line.
lh_running_names() {
    curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/containers 2>/dev/null |
        jq -r '.[] | select(.state == "running") | .container' 2>/dev/null | sort
}
# pe_running_names: what `docker ps` says is running (sidecars excluded:
# the daemon does not list its relays).
pe_running_names() {
    pe ps --filter label=loophole.test --format '{{.Names}}' 2>/dev/null | sort
}
registry_matches() {
    local a b
    a=$(lh_running_names) && b=$(pe_running_names) && [ "$a" = "$b" ]
}

# expect_registry_matches WHAT: waits (30 s: the reconnect backoff is capped
# at 10 s) until the daemon's running containers are docker ps's.
expect_registry_matches() {
    wait_for -t 30 registry_matches ||
        fail "$1: the daemon lists [$(lh_running_names | tr '\n' ' ')], docker ps [$(pe_running_names | tr '\n' ' ')]"
}

# expect_served NAME ADDR TEXT: NAME.domain resolves to ADDR (waits 30 s)
# and ADDR:80 answers with TEXT (waits 20 s: the proxy may be re-targeting).
expect_served() {
    wait_for -t 30 resolves_to "$1.$LH_DOMAIN" "$2" ||
        fail "$1.$LH_DOMAIN should resolve to $2, got '$(resolve "$1.$LH_DOMAIN" | tr '\n' ' ')' (rcode $(rcode "$1.$LH_DOMAIN"))"
    expect_http_says "$2" 80 "$3"
}
