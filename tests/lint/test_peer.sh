#!/usr/bin/env bash
# tests/integration/peer.py, the integration tests' one Python program, is
# clean: it compiles, pyflakes finds nothing, pycodestyle passes (lines up to
# 100 columns, as in the shell scripts), and its self-test passes against
# servers on 127.0.0.1 and a unix socket (no root, no Docker). No script in
# tests/integration embeds Python again (heredocs, python3 -c). A missing tool
# skips (77), except under CI=true where `make test` has installed them all.
set -u
src=${LOOPHOLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
peer=$src/tests/integration/peer.py
failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }
# pick TOOL... : the first of the commands that exists; else skips (77), or
# fails under CI=true. Debian: pyflakes3 and pycodestyle (packaging/deps.sh).
pick() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 && { echo "$t"; return 0; }
    done
    if [ "${CI:-}" = true ]; then
        echo "FAIL: missing tool $1 (make test installs it)" >&2
    else
        echo "SKIP: missing tool $1 (apt-get install $1)" >&2
    fi
    return 1
}
skip_or_fail() { if [ "${CI:-}" = true ]; then exit 1; else exit 77; fi; }
pick python3 >/dev/null || skip_or_fail
pyflakes=$(pick pyflakes3 pyflakes) || skip_or_fail
pycodestyle=$(pick pycodestyle) || skip_or_fail

[ -x "$peer" ] || fail "$peer is not executable"
head -n1 "$peer" | grep -qx '#!/usr/bin/env python3' || fail "$peer: no python3 shebang"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
PYTHONPYCACHEPREFIX=$out python3 -m py_compile "$peer" || fail "py_compile rejects peer.py"
"$pyflakes" "$peer" || fail "pyflakes: peer.py"
"$pycodestyle" --max-line-length=100 "$peer" || fail "pycodestyle: peer.py"
python3 "$peer" --help >/dev/null || fail "peer.py --help"
timeout 60 python3 "$peer" self-test || fail "peer.py self-test"

# The shell harness calls peer.py; Python stays out of the scripts.
if grep -nE 'python3? +(-c|-) |python3? +-$|<<.?PY' "$src"/tests/integration/*.sh; then
    fail "embedded Python in tests/integration (move it into peer.py)"
fi
for f in "$src"/tests/integration/*.sh; do bash -n "$f" || fail "$f does not parse"; done

[ "$failed" = 0 ] && echo "peer.py OK"
exit "$failed"
