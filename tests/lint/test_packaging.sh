#!/usr/bin/env bash
# The packaging files are well-formed: the LaunchDaemon plist parses (xmllint
# and Python's plistlib, which reads it the way launchd's format demands), the
# Homebrew formula is valid Ruby, the man pages pass mandoc's linter, the shell
# completions and scripts parse. Needs no root and no Docker. A missing tool
# skips (77), except under CI=true where `make test` has installed them all.
set -u
src=${LOOPHOLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }
need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    if [ "${CI:-}" = true ]; then
        fail "missing tool $1 (make test installs it)"
    else
        echo "SKIP: missing tool $1" >&2
        exit 77
    fi
}
for t in xmllint python3 ruby mandoc bash; do need "$t"; done

plist=$src/launchd/com.loophole.loopholed.plist
xmllint --noout "$plist" || fail "xmllint rejects $plist"
python3 - "$plist" <<'PY' || fail "plistlib rejects $plist or a key is missing"
import plistlib, sys
p = plistlib.load(open(sys.argv[1], "rb"))
for k in ("Label", "ProgramArguments", "RunAtLoad", "KeepAlive", "Sockets"):
    assert k in p, k
s = p["Sockets"]["Control"]
assert s["SockPathMode"] == 438, s   # 0666: everyone may read the status
# launchd's default of 256 descriptors is about 100 connections; above
# OPEN_MAX (10240) setrlimit refuses the soft limit on macOS.
for k in ("SoftResourceLimits", "HardResourceLimits"):
    n = p[k]["NumberOfFiles"]
    assert 4096 <= n <= 10240, (k, n)
PY
grep -q '^LimitNOFILE=' "$src/packaging/systemd/loophole.service" ||
    fail "loophole.service: no LimitNOFILE="

ruby -c "$src/packaging/homebrew/loophole.rb" >/dev/null || fail "ruby -c rejects the formula"
grep -q 'require_root true' "$src/packaging/homebrew/loophole.rb" || fail "formula: no require_root"

for m in "$src"/packaging/man/*.[158]; do
    out=$(mandoc -Tlint -Wwarning "$m" 2>&1 | grep -v 'referenced manual not found')
    [ -z "$out" ] || fail "mandoc -Tlint $m: $out"
done

bash -n "$src/packaging/completions/loophole.bash" || fail "bash completion does not parse"
sh -n "$src/packaging/deps.sh" || fail "deps.sh does not parse"
for f in "$src"/packaging/debian/*; do sh -n "$f" || fail "$f does not parse"; done

[ "$failed" = 0 ] && echo "packaging files OK"
exit "$failed"
