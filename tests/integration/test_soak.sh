#!/usr/bin/env bash
# The soak (issue 15): bench/soak for 60 seconds against the build under test
# (LOOPHOLE_BIN, the ASan build under make test): container churn, TCP and
# UDP through the proxy and DNS queries at once, failing when the daemon
# dies, a loop never succeeds, RSS grows by more than 25% + 10 MiB or
# descriptors (besides listening sockets) by more than 32. See bench/README.md.
# LH_SOAK_SECONDS=N runs it longer (or shorter) by hand.
# A pool of its own (bench/soak's daemon serves it; other test daemons on the
# engine serve 127.0.77.x and the like).
LH_POOL=${LH_POOL:-127.0.84.2-127.0.84.254}
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
for t in jq curl socat; do need_tool "$t"; done

t0=$(now_ms)
# bench/soak starts and cleans up its own daemon and containers (its own run
# id, state directory, DNS port and control socket); it gets the same
# binaries and pool.
LOOPHOLE_BIN=$LOOPHOLE_BIN LH_POOL=$LH_POOL \
    "$LOOPHOLE_SRC/bench/soak" --seconds "${LH_SOAK_SECONDS:-60}" --warmup 10 >"$LH_TMP/soak.out" 2>&1
st=$?
cat "$LH_TMP/soak.out" >&2
log "bench/soak took $(($(now_ms) - t0)) ms, exit status $st"
assert_eq 0 "$st" "bench/soak exit status (its output is above)"
grep -q '^soak: ok' "$LH_TMP/soak.out" || fail "bench/soak exited 0 without its verdict line"
log "ok"
