#!/usr/bin/env bash
# Runs every gpumig test: `./test.sh` (extra arguments go to `bazel test`,
# e.g. `./test.sh --config=asan`). Installs missing Debian packages first.
# Ends with the line "N passed, N failed" counting test targets.
set -uo pipefail
cd "$(dirname "$0")"
tools/install_deps.sh || exit 1

log=$(mktemp)
trap 'rm -f "$log"' EXIT
bazel test --test_summary=short "$@" //... 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

passed=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log")
failed=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|FLAKY|INCOMPLETE|NO STATUS|FAILED TO BUILD)' "$log")
# A build failure before any test ran: count it as one failure.
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "${passed} passed, ${failed} failed"
exit "$rc"
