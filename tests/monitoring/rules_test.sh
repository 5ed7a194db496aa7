#!/usr/bin/env bash
# `promtool check rules` and `promtool test rules` on the alert rules.
# Skipped (GPUMIG_SKIP) where Debian's prometheus package is not installed.
set -uo pipefail
if ! command -v promtool >/dev/null; then
  echo "GPUMIG_SKIP: promtool not installed (apt-get install --no-install-recommends prometheus)"
  exit 0
fi
for root in "${RUNFILES_DIR:-}" "${TEST_SRCDIR:-}" "$PWD/.."; do
  [ -n "$root" ] && [ -e "$root/gpumig/deploy/prometheus" ] && { DIR=$root/gpumig/deploy/prometheus; break; }
done
DIR=${DIR:-$PWD/deploy/prometheus}
cd "$DIR" || exit 1
promtool check rules gpumig.rules.yml || { echo "FAIL: check rules"; exit 1; }
promtool test rules gpumig.rules_test.yml || { echo "FAIL: test rules"; exit 1; }
# A broken expectation must fail: promtool really evaluates the tests.
T=${TEST_TMPDIR:-$(mktemp -d)}
cp gpumig.rules.yml "$T/"
sed 's/summary: "p99 fence wait above 1s on n1"/summary: "wrong"/' \
  gpumig.rules_test.yml >"$T/broken_test.yml"
if promtool test rules "$T/broken_test.yml" >/dev/null 2>&1; then
  echo "FAIL: a wrong expectation passed"; exit 1
fi
echo PASS
