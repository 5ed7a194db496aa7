#!/usr/bin/env bash
# Builds gpumig's libFuzzer targets with clang (ASan + UBSan + libFuzzer,
# the `fuzz` config of .bazelrc) and runs each for a bounded time:
#
#   tests/fuzz/run_fuzzers.sh                 # every target, 20 s each
#   FUZZ_SECONDS=60 tests/fuzz/run_fuzzers.sh service_fuzzer config_fuzzer
#
# Environment:
#   FUZZ_SECONDS      seconds per target (default 20)
#   FUZZ_OUTPUT_BASE  Bazel output base for the clang build (default
#                     $HOME/.cache/gpumig-fuzz-<checkout hash>; switching the compiler
#                     re-configures the toolchain, so it gets its own)
#   FUZZ_WORK         where the growing corpora, crash artifacts and logs go
#                     (default: a new temp dir; reuse one to keep corpora)
#   FUZZ_RSS_MB       -rss_limit_mb (default 3072)
#   FUZZ_JOBS         targets run in parallel (default 1)
#   FUZZ_BAZEL_FLAGS  extra flags for the bazel build (e.g. --jobs=2)
#
# Each target starts from its seed corpus tests/fuzz/corpus/<name>/ (read
# only) and writes what it finds to $FUZZ_WORK/corpus/<name>/. Prints one
# line per target -- runs, exec/s, coverage, corpus size, result -- and
# exits non-zero if any target crashed, leaked, hit a sanitizer report, an
# oracle (abort), a timeout or the RSS limit. Crash inputs are kept as
# $FUZZ_WORK/artifacts/<name>-crash-* ; replay one with
#   bazel-bin/tests/fuzz/<name> $FUZZ_WORK/artifacts/<name>-crash-...
# (or with an ordinary build: bazel run //tests/fuzz:<name> -- FILE).
set -uo pipefail
cd "$(dirname "$0")/../.."

SECONDS_PER=${FUZZ_SECONDS:-20}
# One output base per checkout, like Bazel's own default.
OUTPUT_BASE=${FUZZ_OUTPUT_BASE:-$HOME/.cache/gpumig-fuzz-$(pwd | md5sum | cut -c1-12)}
RSS_MB=${FUZZ_RSS_MB:-3072}
JOBS=${FUZZ_JOBS:-1}
WORK=${FUZZ_WORK:-$(mktemp -d /tmp/gpumig-fuzz-run.XXXXXX)}
ALL_TARGETS=(config_fuzzer shm_registration_fuzzer service_fuzzer daemon_fuzzer object_fuzzer
  fence_fuzzer region_fuzzer fault_fuzzer)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

command -v clang >/dev/null || {
  echo "run_fuzzers: needs clang and libfuzzer-14-dev (tools/install_deps.sh)" >&2
  exit 2
}
mkdir -p "$WORK/corpus" "$WORK/artifacts" "$WORK/logs"

labels=()
for t in "${TARGETS[@]}"; do labels+=("//tests/fuzz:$t"); done
echo "run_fuzzers: building ${TARGETS[*]} (clang, libFuzzer, ASan, UBSan)" >&2
if ! bazel --output_base="$OUTPUT_BASE" build --config=fuzz --define fuzz=1 --symlink_prefix=/ ${FUZZ_BAZEL_FLAGS:-} \
  "${labels[@]}" >"$WORK/logs/build.log" 2>&1; then
  grep -E "ERROR|error:" "$WORK/logs/build.log" | head -n 30 >&2
  echo "run_fuzzers: build failed (log: $WORK/logs/build.log)" >&2
  exit 2
fi
BIN=$(bazel --output_base="$OUTPUT_BASE" info --config=fuzz --define fuzz=1 ${FUZZ_BAZEL_FLAGS:-} \
  bazel-bin 2>/dev/null)

# run_one TARGET: fuzzes it; writes $WORK/logs/TARGET.{log,result}.
run_one() {
  local t=$1
  local name=${t%_fuzzer}
  mkdir -p "$WORK/corpus/$t"
  local log="$WORK/logs/$t.log"
  local start rc
  start=$(date +%s)
  # detect_leaks: LeakSanitizer after every input that allocated more than
  # it freed, and at exit. halt_on_error for UBSan so a report is a crash.
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:handle_abort=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    timeout -k 10 $((SECONDS_PER * 2 + 120)) \
    "$BIN/tests/fuzz/$t" \
    -max_total_time="$SECONDS_PER" -rss_limit_mb="$RSS_MB" -timeout=60 \
    -detect_leaks=1 -print_final_stats=1 \
    -artifact_prefix="$WORK/artifacts/$t-" \
    "$WORK/corpus/$t" "tests/fuzz/corpus/$name" >"$log" 2>&1
  rc=$?
  local took=$(($(date +%s) - start))
  local runs cov ft corp execs result
  runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
  execs=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
  ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
  corp=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -n 1 | cut -d' ' -f2)
  if [ "$rc" -eq 0 ] && ! grep -qE "ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error:|ORACLE VIOLATION" "$log"; then
    result=ok
  else
    result="FAILED (exit $rc: $(grep -m1 -oE 'ERROR: [A-Za-z]+Sanitizer: [a-z-]+|runtime error: .{0,60}|ORACLE VIOLATION: .{0,80}|deadly signal|timeout|out-of-memory|libFuzzer: [a-z -]+' "$log" | head -n 1); log $log)"
  fi
  printf '%-15s %4ss  runs %-9s exec/s %-6s cov %-6s ft %-7s corpus %-12s %s\n' \
    "$t" "$took" "${runs:-?}" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
    "${corp:-?}" "$result" >"$WORK/logs/$t.result"
}

echo "run_fuzzers: ${SECONDS_PER}s per target, work dir $WORK" >&2
running=0
for t in "${TARGETS[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$JOBS" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

failed=0
for t in "${TARGETS[@]}"; do
  if [ -s "$WORK/logs/$t.result" ]; then
    cat "$WORK/logs/$t.result"
    grep -q " ok$" "$WORK/logs/$t.result" || failed=$((failed + 1))
  else
    echo "$t: no result"
    failed=$((failed + 1))
  fi
done
echo "run_fuzzers: ${#TARGETS[@]} targets, $failed failed (work dir $WORK)"
[ "$failed" -eq 0 ]
