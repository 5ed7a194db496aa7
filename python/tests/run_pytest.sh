#!/usr/bin/env bash
# Runs pytest files with Debian's /usr/bin/python3 against the built gpumigd:
# run_pytest.sh TEST.py... (from Bazel: the package and the generated stubs
# are in the runfiles under gpumig/python). JUnit XML goes to
# $XML_OUTPUT_FILE so test.sh counts skipped cases.
set -uo pipefail
root=${RUNFILES_DIR:-${TEST_SRCDIR:-$PWD/..}}/gpumig
py=/usr/bin/python3
if ! "$py" -c 'import grpc, google.protobuf, pytest' 2>/dev/null; then
  echo "GPUMIG_SKIP: $py lacks python3-grpcio/python3-protobuf/python3-pytest"
  exit 0
fi
export PYTHONPATH="$root/python"
export GPUMIG_ROOT="$root"
export GPUMIGD=${GPUMIGD:-$root/daemon/gpumigd}
cd "${TEST_TMPDIR:-$(mktemp -d)}" || exit 1
args=()
for t in "$@"; do args+=("$root/$t"); done
exec "$py" -m pytest -q -p gpumig.testing -p no:cacheprovider --basetemp="$PWD/pytest" \
  ${XML_OUTPUT_FILE:+--junitxml="$XML_OUTPUT_FILE"} "${args[@]}"
