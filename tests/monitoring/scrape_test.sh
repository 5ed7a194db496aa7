#!/usr/bin/env bash
# The alert rules and the Grafana dashboard against a real gpumigd: start it,
# run a short workload with injected faults (a failed blit the CPU redoes, a
# RESOURCE_EXHAUSTED create, fence waits), scrape /metrics, run
# `promtool check metrics` on the scrape (when promtool is installed), and
# fail if any rule or dashboard query names a metric the daemon does not
# export, or if the PrometheusRule in deploy/k8s differs from the rules file.
set -uo pipefail
if ! /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
  echo "GPUMIG_SKIP: python3-yaml not installed (tools/install_deps.sh)"
  exit 0
fi

find_file() {
  for root in "${RUNFILES_DIR:-}" "${TEST_SRCDIR:-}" "$PWD/.."; do
    if [ -n "$root" ] && [ -e "$root/gpumig/$1" ]; then
      echo "$root/gpumig/$1"
      return
    fi
  done
  [ -e "$1" ] && { echo "$PWD/$1"; return; }
  echo "scrape_test: cannot find $1" >&2
  exit 1
}
GPUMIGD=$(find_file daemon/gpumigd) || exit 1
CTL=$(find_file client/gpumigctl) || exit 1
CHECK=$(find_file tests/monitoring/metric_names.py) || exit 1
RULES=$(find_file deploy/prometheus/gpumig.rules.yml) || exit 1
DASH=$(find_file deploy/grafana/gpumig.json) || exit 1
PRULE=$(find_file deploy/k8s/base/prometheusrule.yaml) || exit 1
K8SCONF=$(find_file deploy/k8s/base/gpumigd.textproto) || exit 1
READY=$(find_file deploy/k8s/gpumig-ready.sh) || exit 1
TMP=${TEST_TMPDIR:-$(mktemp -d)}
SOCKDIR=$(mktemp -d /tmp/gpumig-mon.XXXXXX)
SOCK=$SOCKDIR/gpumig.sock
LOG=$TMP/gpumigd.log
cleanup() {
  [ -n "${PID:-}" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$SOCKDIR"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; echo "--- daemon log:" >&2; tail -50 "$LOG" >&2; exit 1; }
ctl() { "$CTL" --socket="$SOCK" "$@"; }

# The DaemonSet's own config (ConfigMap), with the flags it passes.
"$GPUMIGD" --config="$K8SCONF" --socket="$SOCK" --metrics_listen=127.0.0.1:0 \
  --enable_fault_injection >"$LOG" 2>&1 &
PID=$!
for _ in $(seq 1 100); do ctl ping >/dev/null 2>&1 && break; sleep 0.1; done
ctl ping >/dev/null || fail "daemon did not come up"
ADDR=$(sed -nE 's/.*event=listening metrics=([0-9.:]+).*/\1/p' "$LOG" | head -1)
[ -n "$ADDR" ] || fail "no 'listening metrics=' log line"

# Workload: a migration whose blit fails and falls back, a create too large
# for any region (RESOURCE_EXHAUSTED), fence waits.
h=$(ctl create 1MiB --placements lmem,smem -q) || fail "create"
head -c 1048576 /dev/urandom >"$TMP/data"
ctl write "$h" "$TMP/data" >/dev/null || fail "write"
ctl fault inject fail_blit --next 1 >/dev/null || fail "inject"
ctl migrate "$h" smem --wait >/dev/null || fail "migrate"
ctl read "$h" "$TMP/out" >/dev/null || fail "read"
cmp -s "$TMP/data" "$TMP/out" || fail "content changed across the fallback"
if ctl create 1TiB -q >/dev/null 2>&1; then fail "1TiB create succeeded"; fi

curl -sf "http://$ADDR/metrics" >"$TMP/metrics.txt" || fail "scrape failed"
grep -q 'gpumig_region_fallback_copies_total{.*} [1-9]' "$TMP/metrics.txt" ||
  fail "the injected failure did not show as a fallback"

if command -v promtool >/dev/null; then
  promtool check metrics <"$TMP/metrics.txt" >"$TMP/promtool.txt" 2>&1
  rc=$?
  cat "$TMP/promtool.txt"
  # promtool exits 3 for lint findings only (naming advice), 1 for parse
  # errors; we accept neither.
  [ $rc -eq 0 ] || fail "promtool check metrics: rc $rc"
else
  echo "note: promtool not installed; the exposition format was not linted"
fi

/usr/bin/python3 "$CHECK" "$TMP/metrics.txt" "$RULES" "$DASH" "$PRULE" ||
  fail "rules or dashboard name metrics the daemon does not export"

# The check itself catches a bad name: a rule on a metric nobody exports.
sed 's/gpumig_engine_wedged == 1/gpumig_engine_wedgd == 1/' "$RULES" >"$TMP/bad.yml"
if /usr/bin/python3 "$CHECK" "$TMP/metrics.txt" "$TMP/bad.yml" "$DASH" \
    >"$TMP/bad.out" 2>&1; then
  fail "a rule naming gpumig_engine_wedgd was accepted"
fi
grep -q 'GpumigEngineWedged names gpumig_engine_wedgd' "$TMP/bad.out" ||
  fail "the bad-name failure did not say which rule: $(cat "$TMP/bad.out")"
# The DaemonSet's probes: liveness (ping) passes while the engine is wedged,
# readiness (gpumig-ready) fails then and passes again once it is cleared.
export GPUMIG_SOCKET=$SOCK GPUMIGCTL=$CTL
sh "$READY" || fail "readiness failed on a healthy daemon"
ctl fault inject wedge_engine --always >/dev/null || fail "inject wedge_engine"
ctl --timeout=2s ping >/dev/null || fail "liveness (ping) failed while wedged"
if sh "$READY" 2>"$TMP/ready.err"; then fail "readiness passed while wedged"; fi
grep -q wedged "$TMP/ready.err" || fail "readiness did not say why: $(cat "$TMP/ready.err")"
curl -sf "http://$ADDR/metrics" | grep -q '^gpumig_engine_wedged 1' ||
  fail "gpumig_engine_wedged is not 1 while wedged"
ctl fault clear --all >/dev/null || fail "fault clear"
sh "$READY" || fail "readiness still failing after the wedge was cleared"
echo PASS
