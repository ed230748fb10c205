# The system resolver entry, under a temporary root (--resolver-root): the
# systemd-resolved drop-in is written at start, repaired at start when wrong,
# removed on SIGTERM; --resolver off never touches anything. No Docker needed:
# the daemon is pointed at a socket that does not exist.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root

LH_DOCKER_HOST=unix://$LH_TMP/no-docker.sock
R=$LH_TMP/root
mkdir -p "$R/run/systemd/resolve"
DROPIN=$R/etc/systemd/resolved.conf.d/loophole.conf

# A systemctl that records being called: with --resolver-root the daemon must
# never reload the real resolver.
mkdir -p "$LH_TMP/fakebin"
printf '#!/bin/sh\necho "$*" >>"%s"\n' "$LH_TMP/systemctl.calls" >"$LH_TMP/fakebin/systemctl"
chmod +x "$LH_TMP/fakebin/systemctl"
export PATH=$LH_TMP/fakebin:$PATH

files_under() { find "$1" -type f | sort; }

# --resolver off: nothing is written.
start_daemon --resolver off --resolver-root "$R"
stop_daemon
assert_eq "" "$(files_under "$R")" "files written with --resolver off"
[ ! -e "$R/etc" ] || fail "--resolver off created $R/etc"

# --resolver auto with systemd-resolved present: the drop-in appears.
start_daemon --resolver auto --resolver-root "$R"
has_dropin() {
    [ -f "$DROPIN" ] &&
        grep -qx "DNS=$LH_DNS_IP:$LH_DNS_PORT" "$DROPIN" &&
        grep -qx "Domains=~$LH_DOMAIN" "$DROPIN"
}
wait_for has_dropin || fail "no correct drop-in at $DROPIN: $(cat "$DROPIN" 2>&1)"
good=$(cat "$DROPIN")
log "drop-in written: $(tr '\n' '|' <"$DROPIN")"
grep -qx '\[Resolve\]' "$DROPIN" || fail "the drop-in has no [Resolve] section: $good"
mode=$(stat -c %a "$DROPIN")
assert_eq 644 "$mode" "drop-in file mode"
stop_daemon
[ ! -e "$DROPIN" ] || fail "the drop-in is still there after SIGTERM: $(cat "$DROPIN")"

# A wrong entry (another port) is repaired at start, then removed again.
printf '%s\n' "$good" | sed "s/^DNS=.*/DNS=$LH_DNS_IP:1/" >"$DROPIN"
start_daemon --resolver auto --resolver-root "$R"
wait_for has_dropin || fail "the tampered drop-in was not repaired: $(cat "$DROPIN" 2>&1)"
assert_eq "$good" "$(cat "$DROPIN")" "repaired drop-in"
stop_daemon
[ ! -e "$DROPIN" ] || fail "the drop-in is still there after SIGTERM: $(cat "$DROPIN")"

# --resolver auto on a system with no known resolver mechanism: nothing
# written (the daemon logs a hint instead).
R2=$LH_TMP/bare
mkdir -p "$R2"
start_daemon --resolver auto --resolver-root "$R2"
stop_daemon
assert_eq "" "$(files_under "$R2")" "files written without a resolver mechanism"

[ ! -e "$LH_TMP/systemctl.calls" ] || fail "systemctl was run under --resolver-root: $(cat "$LH_TMP/systemctl.calls")"
log "ok"
