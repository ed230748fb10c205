#!/usr/bin/env bash
# loopholed and loophole run no shell and search no PATH: no system(),
# popen(), exec*p() or "sh -c" in daemon/, client/ or common/; programs run
# with execve() and fixed arguments (issue 15). Each hit is printed.
set -u
src=${LOOPHOLE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
hits=$(grep -nE '\b(system|popen|execvp|execlp|execvpe|posix_spawnp)\(|"(/bin/)?sh"[[:space:]]*,[[:space:]]*"-c"' \
    "$src"/daemon/*.c "$src"/daemon/*.h "$src"/client/*.c "$src"/client/*.h \
    "$src"/common/*.c "$src"/common/*.h || true)
if [ -n "$hits" ]; then
    echo "FAIL: a shell or a PATH search in the binaries:" >&2
    echo "$hits" >&2
    exit 1
fi
# The check itself can fail: it finds a planted call.
probe=$(mktemp)
trap 'rm -f "$probe"' EXIT
printf 'int f(void) { return system("true"); }\n' >"$probe"
grep -qE '\bsystem\(' "$probe" || { echo "FAIL: the pattern misses system()" >&2; exit 1; }
echo "ok: no system(), popen(), exec*p() or sh -c in daemon/, client/, common/"
