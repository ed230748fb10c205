# Real name resolution through glibc, without touching the host: the daemon
# listens on 127.0.0.250:53 and getent runs in a private mount namespace where
# /etc/resolv.conf (and nsswitch.conf, in case hosts go through
# systemd-resolved) are bind-mounted test files.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
need_tool unshare
need_tool getent

LH_DNS_IP=127.0.0.250
LH_DNS_PORT=53
if ss -Hlnu '( sport = :53 )' | awk '{print $4}' | grep -Eq '^(0\.0\.0\.0|\*|127\.0\.0\.250|\[::\]):53$'; then
    skip "port 53 on $LH_DNS_IP is already taken: $(ss -Hlnup '( sport = :53 )' | tr '\n' ' ')"
fi

D=$LH_DOMAIN
resolv_before=$(md5sum </etc/resolv.conf)
start_daemon

run_ctr --name "lh-getent-$RUN_ID" -p 80 "$LH_IMAGE" httpd -f -p 80 >/dev/null
run_ctr --name "LH_Getent_Caps_$RUN_ID" -p 80 "$LH_IMAGE" httpd -f -p 80 >/dev/null
a=$(expect_address "lh-getent-$RUN_ID.$D")
b=$(expect_address "lh-getent-caps-$RUN_ID.$D")

printf 'nameserver %s\noptions timeout:1 attempts:2\n' "$LH_DNS_IP" >"$LH_TMP/resolv.conf"
printf 'hosts: files dns\n' >"$LH_TMP/nsswitch.conf"

# in_ns CMD...: runs CMD with the test resolv.conf; prints its output.
in_ns() {
    unshare -m sh -c '
        mount --bind "$1" /etc/resolv.conf &&
        mount --bind "$2" /etc/nsswitch.conf &&
        shift 2 && exec "$@"' sh "$LH_TMP/resolv.conf" "$LH_TMP/nsswitch.conf" "$@"
}

# First field of `getent hosts NAME` inside the namespace.
getent_addr() { in_ns getent hosts "$1" | awk '{print $1; exit}'; }

got=$(getent_addr "lh-getent-$RUN_ID.$D")
assert_eq "$a" "$got" "getent hosts lh-getent-$RUN_ID.$D"
got=$(getent_addr "LH-Getent-Caps-$RUN_ID.$D")
assert_eq "$b" "$got" "getent hosts LH-Getent-Caps-$RUN_ID.$D"
got=$(in_ns getent ahostsv4 "lh-getent-$RUN_ID.$D" | awk '{print $1; exit}')
assert_eq "$a" "$got" "getent ahostsv4 (getaddrinfo)"

# An unknown name fails (exit 2: not found).
in_ns getent hosts "nothing-$RUN_ID.$D" >/dev/null
st=$?
assert_eq 2 "$st" "getent hosts of an unknown name"

# The host's own resolver was not touched.
assert_eq "$resolv_before" "$(md5sum </etc/resolv.conf)" "the host's /etc/resolv.conf changed"

stop_daemon
log "ok"
