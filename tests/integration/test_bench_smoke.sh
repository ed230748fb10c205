# The benchmarks' smoke versions (issue 16): `bench/run --smoke` runs every
# bench/NAME for a few seconds against the build under test, so the scripts
# cannot rot. Figures are not checked (benchmarks are not tests); each must
# run and write its section with at least one table row, and the assembled
# RESULTS.md must hold every section.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"
need_root_and_engine
ensure_image

out=$LH_TMP/bench
# The build under test instead of a Release build: LOOPHOLE_BIN is its bin/.
LOOPHOLE_BENCH_BUILD=$(cd "$LOOPHOLE_BIN/.." && pwd) \
    bash "$LOOPHOLE_SRC/bench/run" --smoke --no-build --out "$out" >"$LH_TMP/bench.log" 2>&1 ||
    fail "bench/run --smoke failed: $(tail -n 40 "$LH_TMP/bench.log")"
for n in $(sed -n 's/^ALL=(\(.*\))$/\1/p' "$LOOPHOLE_SRC/bench/run"); do
    [ -s "$out/$n.md" ] || fail "bench/$n wrote no $n.md"
    grep -q "^## $n" "$out/$n.md" || fail "bench/$n.md has no '## $n' heading"
    grep -Eq '^\|.*[0-9]' "$out/$n.md" || fail "bench/$n.md has no table row with a figure"
    grep -q "^## $n" "$out/RESULTS.md" || fail "RESULTS.md lacks the $n section"
    log "bench/$n: $(grep -c '^|' "$out/$n.md") table lines"
done
grep -q "Smoke run" "$out/RESULTS.md" || fail "a smoke RESULTS.md must say it is one"
log "ok: $(grep -c '^==== bench/.* took' "$LH_TMP/bench.log") benchmarks ran"
