#!/usr/bin/env bash
# Runs every gpumig test: `./test.sh` (extra arguments go to `bazel test`,
# e.g. `./test.sh --config=asan`). Installs missing Debian packages first.
# Ends with the line "N passed, N failed, N skipped" counting test targets.
#
# A target that passed counts as skipped when it could not really run here
# (docs/testing.md, "Skips"):
#  - its test.xml lists test cases and every one of them skipped (gtest's
#    GTEST_SKIP(), pytest's junit XML), or
#  - its test.log has a line starting "GPUMIG_SKIP:" (a shell or Python test
#    that cannot run at all prints it and exits 0).
set -uo pipefail
cd "$(dirname "$0")"
tools/install_deps.sh || exit 1

log=$(mktemp)
trap 'rm -f "$log"' EXIT
bazel test --test_summary=short "$@" //... 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# skipped_target DIR: whether the test outputs under DIR (one target's
# directory in bazel-testlogs, shards and runs included) say it skipped.
skipped_target() {
  local dir=$1 xml cases skips any=0 logs
  [ -d "$dir" ] || return 1
  logs=$(find "$dir" -maxdepth 2 -name test.log)
  if [ -n "$logs" ] && grep -qs '^GPUMIG_SKIP:' $logs; then return 0; fi
  for xml in $(find "$dir" -maxdepth 2 -name test.xml); do
    cases=$(grep -o '<testcase[ >]' "$xml" | wc -l)
    skips=$(grep -o '<skipped[ >/]' "$xml" | wc -l)
    if [ "$cases" -eq 0 ] || [ "$skips" -lt "$cases" ]; then return 1; fi
    any=1
  done
  [ "$any" -eq 1 ]
}

passed=0
skipped=0
testlogs=$(readlink -f bazel-testlogs)
while read -r target; do
  pkg=${target#//}
  pkg=${pkg%%:*}
  name=${target##*:}
  if skipped_target "${testlogs}/${pkg}/${name}"; then
    skipped=$((skipped + 1))
  else
    passed=$((passed + 1))
  fi
done < <(grep -oE '^//[^ ]+ +(\(cached\) )?PASSED' "$log" | awk '{print $1}')
failed=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|FLAKY|INCOMPLETE|NO STATUS|FAILED TO BUILD)' "$log")
# A build failure before any test ran: count it as one failure.
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
exit "$rc"
