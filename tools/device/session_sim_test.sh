#!/usr/bin/env bash
# Bazel wrapper: tools/device/session.sh on the sim backend with the built
# gpumigd and gpumigctl, a 16 MiB large round trip, logs in the test's
# undeclared outputs.
set -uo pipefail
root=${TEST_SRCDIR:-$PWD/..}/gpumig
out=${TEST_UNDECLARED_OUTPUTS_DIR:-${TEST_TMPDIR:-/tmp}}/session
export GPUMIGD=$root/daemon/gpumigd GPUMIGCTL=$root/client/gpumigctl
SESSION_BIG_BYTES=16777216 "$root/tools/device/session.sh" sim "$root/daemon" "$out"
rc=$?
[ "$rc" -eq 0 ] || grep -v '^ok' "$out/session.log" | tail -n 60
exit "$rc"
