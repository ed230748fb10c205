#!/usr/bin/env bash
# Fault injection on the state file (issue 15): truncated (0 bytes, mid-JSON),
# random bytes, valid JSON of the wrong shape, with the daemon stopped and
# while it runs; and a full state directory (a 64 KiB tmpfs). The rule
# (daemon/state.c, state.h): a state file that cannot be read is renamed to
# state.json.corrupt-<seconds> at start, one error line says what was wrong
# and where it went, and the daemon starts fresh and saves again; the file is
# read only at start, so damage done while the daemon runs is overwritten by
# its next save (at the latest at a clean stop). A save that fails (ENOSPC)
# is logged once (rate-limited) and retried by the daemon until it succeeds.
# After each case: this run's containers in the registry match `docker ps`,
# each resolves and accepts, addresses are unchanged where the leases
# survived, and the daemon's fds and RSS are back near where they were.
# Each part runs its own daemon.
# shellcheck shell=bash
# Parts and wait_for callbacks are called indirectly:
# shellcheck disable=SC2317
# jq filters name their $arguments inside single quotes:
# shellcheck disable=SC2016

# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
for t in jq curl python3; do need_tool "$t"; done
# ASan's quarantine keeps up to 256 MB of freed memory resident, which would
# drown the RSS comparisons below; a small one still catches use-after-free
# of recent frees. (Other tests' containers on the same engine are in this
# daemon's registry too, so some growth is theirs.)
export ASAN_OPTIONS=$ASAN_OPTIONS:quarantine_size_mb=8

# ---- Shared checks ----------------------------------------------------------

# shellcheck source=tests/integration/fault_checks.sh
. "$(dirname "$0")/fault_checks.sh"

# With same-addresses, every container's address is the one remember_addrs
# saw.
expect_healthy() {
    local label=$1 c ip
    wait_for -t 20 registry_matches_docker ||
        fail "$label: registry ($(run_registry_ids | tr '\n' ' ')) != docker ps ($(run_docker_ids | tr '\n' ' '))"
    for c in "${!ADDR[@]}"; do
        wait_for -t 20 ctr_ok "$c" || fail "$label: $c does not resolve and accept: $(ctr_json "$c")"
        ip=$(ctr_ip "$c")
        if [ "${2:-}" = same-addresses ]; then
            assert_eq "${ADDR[$c]}" "$ip" "$label: address of $c"
        fi
    done
    control_up || fail "$label: the control API does not answer"
}

remember_addrs() {
    local c
    for c in "${!ADDR[@]}"; do ADDR[$c]=$(ctr_ip "$c"); done
}

# RSS margin: +20 MB under ASan (its quarantine holds freed memory).
expect_resources() {
    wait_for -t 15 fds_near || fail "$1: daemon fds $(daemon_fds), were $FD0 (margin +16)"
    local rss
    rss=$(daemon_rss_kb)
    [ "$rss" -le $((RSS0 + 20480)) ] || fail "$1: daemon RSS ${rss} kB, was ${RSS0} kB (margin +20 MB)"
}

# ---- State-file helpers -------------------------------------------------------

STATE=$LH_STATE_DIR/state.json

# web CONTAINER-SUFFIX: a container $RUN_ID-SUFFIX with port 80 published;
# waits for its address and remembers it.
web() {
    local n=$RUN_ID-$1
    run_web "$n" "hello $1" -p 80 -- 80 >/dev/null
    ADDR[$n]=$(expect_ctr_ip "$n")
}

# state_ip FILE CONTAINER-NAME: the address FILE's lease for the container
# holds (empty when none, or when FILE is not valid JSON).
state_ip() {
    jq -r --arg n "$2" 'first(.leases[] | select(.key | endswith($n)) | .ip) // empty' "$1" 2>/dev/null
}
state_has() { [ "$(state_ip "$STATE" "$1")" = "$2" ]; }
# expect_state_has CONTAINER-NAME...: the state file (valid, version 1)
# holds each container's lease with its current address.
expect_state_has() {
    local c
    for c in "$@"; do
        wait_for -t 15 state_has "$c" "${ADDR[$c]}" ||
            fail "state.json should hold $c -> ${ADDR[$c]}: $(head -c 600 "$STATE" 2>&1)"
    done
    assert_eq 1 "$(jq -r .version "$STATE")" "state.json version"
}

# Log lines of the current daemon only: the log file holds every run's.
mark_log() { LOG_MARK=$(wc -l <"$LH_LOG"); }
LOG_MARK=0
since_mark_count() { tail -n +"$((LOG_MARK + 1))" "$LH_LOG" | grep -Eic -- "$1" || true; }

corrupt_files() { find "$LH_STATE_DIR" -maxdepth 1 -name 'state.json.corrupt-*' | LC_ALL=C sort; }

# restart_with_damage LABEL WRITER...: stops the daemon, runs WRITER (which
# damages $STATE), starts it again and checks the documented start: one
# error line naming the file, the reason and where it went; the bad file
# renamed aside byte for byte; a fresh start that serves and saves again.
restart_with_damage() {
    local label=$1 before after moved
    shift
    stop_daemon
    "$@" || fail "$label: could not damage the state file"
    cp "$STATE" "$LH_TMP/damaged"
    mapfile -t before < <(corrupt_files)
    mark_log
    start_daemon
    baseline
    local n
    n=$(since_mark_count "state.*$STATE.*moved to $STATE\.corrupt-[0-9]+.*starting fresh")
    assert_eq 1 "$n" "$label: error lines about the bad state file"
    mapfile -t after < <(corrupt_files)
    assert_eq $((${#before[@]} + 1)) "${#after[@]}" "$label: corrupt files"
    moved=$(comm -13 <(printf '%s\n' "${before[@]}") <(printf '%s\n' "${after[@]}"))
    cmp -s "$LH_TMP/damaged" "$moved" || fail "$label: $moved is not the damaged file"
    # No lease survived, so addresses may change; everything is served.
    expect_healthy "$label"
    remember_addrs
    expect_state_has "${!ADDR[@]}"
    [ "$(since_mark_count 'restored [0-9]+ of [0-9]+ leases')" -eq 0 ] ||
        fail "$label: the daemon says it restored leases from a bad file"
    expect_resources "$label"
    log "$label: moved aside to $(basename "$moved"), started fresh, saved again"
}

truncate_zero() { : >"$STATE"; }
truncate_half() {
    local size
    size=$(stat -c %s "$STATE")
    [ "$size" -gt 20 ] || return 1
    truncate -s $((size / 2)) "$STATE"
}
random_bytes() { head -c 3000 /dev/urandom >"$STATE"; }
wrong_shape() { echo '{"version": 1, "leases": {"key": "x", "ip": "127.0.0.2"}}' >"$STATE"; }
# big_json: a JSON array of 2,621,441 zeros, just over 5 MiB (the reader's
# cap is 4 MiB).
big_json() { { printf '['; yes '0,' | head -n 2621440 | tr -d '\n'; printf '0]'; } >"$STATE"; }

# ---- Truncated ------------------------------------------------------------------

part_truncated() {
    start_daemon
    web a
    expect_state_has "$RUN_ID-a"

    # Stopped: 0 bytes, then cut in the middle of the JSON.
    restart_with_damage "0 bytes, daemon stopped" truncate_zero
    restart_with_damage "cut mid-JSON, daemon stopped" truncate_half

    # Running: the file is read only at start, so the daemon keeps serving
    # and its next save (a container starting) replaces the damage.
    remember_addrs
    baseline
    truncate_zero
    expect_healthy "0 bytes, daemon running" same-addresses
    web b
    expect_state_has "$RUN_ID-a" "$RUN_ID-b"
    truncate_half || fail "cannot cut the state file"
    # Nothing changes from here on: the clean stop must still write the
    # state (an identical-write skip would leave the cut file, and the next
    # start would lose every lease).
    stop_daemon
    jq -e . "$STATE" >/dev/null 2>&1 || fail "the clean stop left a damaged state file: $(head -c 300 "$STATE")"
    mark_log
    start_daemon
    assert_eq 0 "$(since_mark_count 'corrupt')" "a corrupt-file line after a clean stop"
    expect_healthy "cut mid-JSON, daemon running" same-addresses
    expect_state_has "$RUN_ID-a" "$RUN_ID-b"
    expect_resources "cut mid-JSON, daemon running"
    stop_daemon
}

# ---- Garbage ----------------------------------------------------------------------

part_garbage() {
    start_daemon
    web a
    expect_state_has "$RUN_ID-a"

    restart_with_damage "random bytes, daemon stopped" random_bytes
    restart_with_damage "JSON of the wrong shape, daemon stopped" wrong_shape
    # Bigger than the reader's 4 MiB cap.
    restart_with_damage "5 MB of JSON, daemon stopped" big_json

    # Running: garbage is replaced by the next save, at the latest the
    # clean stop's, and the leases survive into the next run.
    remember_addrs
    baseline
    random_bytes
    expect_healthy "random bytes, daemon running" same-addresses
    web b
    expect_state_has "$RUN_ID-a" "$RUN_ID-b"
    wrong_shape
    stop_daemon
    expect_state_has "$RUN_ID-a" "$RUN_ID-b"
    mark_log
    start_daemon
    assert_eq 0 "$(since_mark_count 'corrupt')" "a corrupt-file line after a clean stop"
    expect_healthy "wrong shape, daemon running" same-addresses
    expect_resources "wrong shape, daemon running"
    stop_daemon
}

# ---- A full state directory ------------------------------------------------------------

save_failed_logged() { [ "$(since_mark_count "cannot write $STATE")" -ge 1 ]; }
tmp_files() { find "$LH_STATE_DIR" -maxdepth 1 -name '.state.json.*' | wc -l; }

part_dir_full() {
    LH_STATE_DIR=$LH_TMP/small-state
    STATE=$LH_STATE_DIR/state.json
    mkdir -p "$LH_STATE_DIR"
    mount -t tmpfs -o size=64k,mode=0755 loophole-test "$LH_STATE_DIR" ||
        fail "cannot mount a tmpfs on $LH_STATE_DIR"
    on_exit "umount -l $LH_STATE_DIR"
    start_daemon
    web a
    expect_state_has "$RUN_ID-a"
    remember_addrs
    baseline

    # Fill it (dd stops at ENOSPC). Other tests' containers changing on the
    # same engine may make the daemon save (and fail) at any moment from now.
    mark_log
    dd if=/dev/zero of="$LH_STATE_DIR/filler" bs=4k 2>/dev/null
    if head -c 4096 /dev/zero >"$LH_STATE_DIR/probe" 2>/dev/null && [ -s "$LH_STATE_DIR/probe" ]; then
        fail "the tmpfs is not full"
    fi
    rm -f "$LH_STATE_DIR/probe"
    local saved
    saved=$(cat "$STATE")

    # Two containers start while it is full: both are served, the failed
    # save is logged once, the old state file is intact.
    web b
    wait_for -t 15 save_failed_logged || fail "no log line about the failed save"
    web c
    expect_healthy "state dir full" same-addresses
    assert_eq "$saved" "$(cat "$STATE")" "the state file while the directory is full"
    assert_eq 0 "$(tmp_files)" "temporary files left in the full directory"
    # status says so, with the reason.
    curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/status |
        jq -e --arg f "$STATE" '.problems | any(startswith("cannot save the state to " + $f + ": No space left"))' >/dev/null ||
        fail "status shows no problem for the failing save: $(curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/status | jq -c .problems)"

    # Room again: the daemon saves by itself (no event needed).
    rm -f "$LH_STATE_DIR/filler"
    expect_state_has "$RUN_ID-a" "$RUN_ID-b" "$RUN_ID-c"
    no_save_problem() {
        curl -sf -m 3 --unix-socket "$LH_SOCK" http://x/v1/status |
            jq -e '.problems | all(startswith("cannot save the state") | not)' >/dev/null
    }
    wait_for -t 5 no_save_problem || fail "the failed-save problem stays after a good save"
    assert_eq 1 "$(since_mark_count "cannot write $STATE")" "failed-save lines (rate-limited)"
    assert_eq 0 "$(tmp_files)" "temporary files left after the save"
    expect_healthy "state dir full, then room" same-addresses
    expect_resources "state dir full"
    stop_daemon
    umount "$LH_STATE_DIR" || fail "cannot unmount $LH_STATE_DIR"
}

run_parts
