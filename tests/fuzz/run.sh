#!/usr/bin/env bash
# Runs the libFuzzer drivers built in BUILD/fuzz (make fuzz builds them).
#
#   tests/fuzz/run.sh replay BUILD            every driver once over its seed
#                                             corpus and its regressions (-runs=0)
#   tests/fuzz/run.sh fuzz BUILD [SECONDS]    every driver for SECONDS; without
#                                             SECONDS, FUZZ_BUDGET (default 240 s)
#                                             is shared out, at most 20 s each
#
# Inputs of driver fuzz_X: tests/fuzz/corpus/X/ (seeds, kept in git),
# tests/fuzz/regressions/fuzz_X/ (every crash ever found: must stay fixed),
# tests/fuzz/dict/X.dict. New corpus entries go to BUILD/fuzz/corpus/fuzz_X/
# (kept between runs, not in git), crashes to BUILD/fuzz/artifacts/fuzz_X/.
# FUZZ_DRIVERS="fuzz_a fuzz_b" limits the run to some drivers.
set -euo pipefail
cd "$(dirname "$0")/../.."
mode=${1:?usage: run.sh replay|fuzz BUILD [SECONDS]}
build=${2:?usage: run.sh replay|fuzz BUILD [SECONDS]}
secs=${3:-}
src=tests/fuzz
bin=$build/fuzz

drivers=${FUZZ_DRIVERS:-$(cd "$src" && ls fuzz_*.c | sed 's/\.c$//')}
n=$(echo "$drivers" | wc -w)
if [ -z "$secs" ]; then
    budget=${FUZZ_BUDGET:-240}
    secs=$((budget / n))
    [ "$secs" -gt 20 ] && secs=20
    [ "$secs" -lt 1 ] && secs=1
fi

# ASan's quarantine keeps freed memory for use-after-free reports; the
# libuv drivers free a lot per run, so keep it small enough that a long run
# stays under libFuzzer's 2 GB RSS limit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=64:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

status=0
start=$(date +%s)
for d in $drivers; do
    exe=$bin/$d
    [ -x "$exe" ] || { echo "fuzz: $exe is not built (make fuzz)" >&2; exit 1; }
    short=${d#fuzz_}
    dirs=()
    for x in "$src/corpus/$short" "$src/regressions/$d"; do
        [ -d "$x" ] && dirs+=("$x")
    done
    opts=(-print_final_stats=1 -timeout=10)
    [ -f "$src/dict/$short.dict" ] && opts+=("-dict=$src/dict/$short.dict")
    mkdir -p "$build/fuzz/logs" "$build/fuzz/artifacts/$d" "$build/fuzz/corpus/$d"
    log=$build/fuzz/logs/$d.$mode.log
    if [ "$mode" = replay ]; then
        if "$exe" "${opts[@]}" -runs=0 "${dirs[@]}" >"$log" 2>&1; then
            printf 'fuzz: %-18s replayed %s inputs\n' "$d" \
                "$(find "${dirs[@]}" -type f | wc -l)"
        else
            echo "fuzz: $d FAILED on its corpus or a regression ($log):" >&2
            grep -E 'ERROR|SUMMARY|Running:|fuzz_' "$log" | tail -15 >&2
            status=1
        fi
        continue
    fi
    if "$exe" "${opts[@]}" -max_total_time="$secs" -artifact_prefix="$build/fuzz/artifacts/$d/" \
        "$build/fuzz/corpus/$d" "${dirs[@]}" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
        printf 'fuzz: %-18s %9s runs in %s s (%s/s), %s, corpus %s\n' "$d" "$runs" "$secs" \
            "$rate" "$cov" "$(ls "$build/fuzz/corpus/$d" | wc -l)"
    else
        echo "fuzz: $d FOUND A CRASH ($log):" >&2
        grep -E 'ERROR|SUMMARY|fuzz_|Test unit written' "$log" | tail -15 >&2
        echo "fuzz: minimize it ($build/fuzz/$d -minimize_crash=1 -runs=10000 FILE), fix it," \
            "and add it to $src/regressions/$d/" >&2
        status=1
    fi
done
echo "fuzz: $mode of $n drivers took $(($(date +%s) - start)) s"
exit $status
