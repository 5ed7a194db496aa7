#!/usr/bin/env bash
# The Prometheus endpoint of a real gpumigd, scraped over HTTP: counters move
# after a migration, a failed blit and its fallback, and the failsafe's log
# lines appear (blit_failed with the fallback taken).
set -uo pipefail

find_bin() {
  for root in "${RUNFILES_DIR:-}" "${TEST_SRCDIR:-}" "$PWD/.."; do
    if [ -n "$root" ] && [ -x "$root/gpumig/$1" ]; then
      echo "$root/gpumig/$1"
      return
    fi
  done
  [ -x "$1" ] && { echo "$PWD/$1"; return; }
  echo "metrics_e2e_test: cannot find $1" >&2
  exit 1
}
GPUMIGD=$(find_bin daemon/gpumigd) || exit 1
CTL=$(find_bin client/gpumigctl) || exit 1
TMP=${TEST_TMPDIR:-$(mktemp -d)}
SOCKDIR=$(mktemp -d /tmp/gpumig-metrics.XXXXXX)
SOCK=$SOCKDIR/gpumig.sock
LOG=$TMP/gpumigd.log
cleanup() {
  [ -n "${PID:-}" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$SOCKDIR"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- daemon log:" >&2; cat "$LOG" >&2; exit 1; }

"$GPUMIGD" --socket="$SOCK" --metrics_listen=127.0.0.1:0 \
  --enable_fault_injection >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
  "$CTL" --socket="$SOCK" ping >/dev/null 2>&1 && break
  sleep 0.1
done
"$CTL" --socket="$SOCK" ping >/dev/null || fail "daemon did not come up"
ADDR=$(sed -nE 's/.*event=listening metrics=([0-9.:]+).*/\1/p' "$LOG" | head -1)
[ -n "$ADDR" ] || fail "no 'listening metrics=' log line"

scrape() {  # scrape METRIC_LINE_PREFIX -> value (0 if absent)
  curl -sf "http://$ADDR/metrics" | awk -v p="$1" 'index($0, p) == 1 {print $2; f=1} END {if (!f) print 0}'
}

blits_before=$(scrape 'gpumig_region_blits_total{kind="smem",region="smem"}')
h=$("$CTL" --socket="$SOCK" create 1MiB --placements lmem,smem -q) || fail "create"
head -c 1048576 /dev/urandom >"$TMP/data"
"$CTL" --socket="$SOCK" write "$h" "$TMP/data" >/dev/null || fail "write"
"$CTL" --socket="$SOCK" fault inject fail_blit --next 1 >/dev/null || fail "inject"
"$CTL" --socket="$SOCK" migrate "$h" smem --wait >/dev/null || fail "migrate"
"$CTL" --socket="$SOCK" read "$h" "$TMP/out" >/dev/null || fail "read"
cmp -s "$TMP/data" "$TMP/out" || fail "content changed across the fallback"

blits_after=$(scrape 'gpumig_region_blits_total{kind="smem",region="smem"}')
failures=$(scrape 'gpumig_region_blit_failures_total{kind="smem",region="smem"}')
fallbacks=$(scrape 'gpumig_region_fallback_copies_total{kind="smem",region="smem"}')
fired=$(scrape 'gpumig_faults_fired_total{fault="fail_blit"}')
rpcs=$(scrape 'gpumig_rpcs_total{code="OK",method="/gpumig.v1.ObjectService/Migrate"}')
echo "blits $blits_before -> $blits_after, failures $failures, fallbacks $fallbacks, fired $fired, migrate rpcs $rpcs"
[ "${blits_after%.*}" -gt "${blits_before%.*}" ] || fail "blits_total did not move"
[ "${failures%.*}" -ge 1 ] || fail "blit_failures_total did not move"
[ "${fallbacks%.*}" -ge 1 ] || fail "fallback_copies_total did not move"
[ "${fired%.*}" -ge 1 ] || fail "faults_fired_total did not move"
[ "${rpcs%.*}" -ge 1 ] || fail "rpcs_total for Migrate did not move"
# Scrape to a file first: `curl | grep -q` under pipefail fails when grep
# stops reading early and curl gets SIGPIPE.
curl -sf "http://$ADDR/metrics" >"$TMP/metrics.txt" || fail "scrape failed"
grep -q '^gpumig_fence_wait_seconds_count' "$TMP/metrics.txt" ||
  fail "no fence wait histogram"
grep -q 'event=blit_failed .*fallback=fallback_copy' "$LOG" ||
  fail "no blit_failed log line with the fallback taken"
grep -q 'event=fault_injected' "$LOG" || fail "no fault_injected log line"
echo PASS
