#!/usr/bin/env bash
# Load test of gpumigd: memory stays bounded, the daemon stays healthy.
#
# Starts //daemon:gpumigd on a unix socket in a temp dir with small regions
# and a small fence history (fence_history: 1024), then:
#   1. warm-up: fills every region once (region memory resident), a short
#      mixed load, connect/disconnect cycles and Watch streams;
#   2. samples the daemon's RSS (VmRSS in /proc/PID/status) -- "before";
#   3. the load: gpumig_load, N client processes x K threads of mixed RPCs
#      (create/write/read/migrate/fence wait/destroy/get/list/ping, Watch
#      streams opened and closed), with concurrent gpumigctl Watch streams
#      (closed by --timeout, and some killed with SIGKILL mid-stream) and
#      many short connections (gpumigctl ping);
#   4. samples RSS again -- "after" -- and asserts growth < RSS_LIMIT_MIB
#      (default 64); checks GetStats: no objects left, no watchers, no
#      pending fences, fence history within the configured 1024;
#   5. asserts the daemon still answers Ping, then SIGTERM: exit 0 in time.
# The load's JSON (per-RPC throughput, p50/p99) and the RSS figures are
# printed and, under Bazel, saved to $TEST_UNDECLARED_OUTPUTS_DIR.
#
# Outside Bazel: GPUMIGD=... GPUMIGCTL=... GPUMIG_LOAD=... \
#   tests/load/load_test.sh
# Knobs (env): LOAD_SECONDS (default 10), LOAD_PROCESSES (4),
# LOAD_THREADS (4), RSS_LIMIT_MIB (64), CYCLES (90), WATCHES (24): the
# connect/disconnect cycles and Watch streams during the load and again after.
set -uo pipefail

LOAD_SECONDS=${LOAD_SECONDS:-10}
LOAD_PROCESSES=${LOAD_PROCESSES:-4}
LOAD_THREADS=${LOAD_THREADS:-4}
RSS_LIMIT_MIB=${RSS_LIMIT_MIB:-64}
CYCLES=${CYCLES:-90}
WATCHES=${WATCHES:-24}
FENCE_HISTORY=1024

# --- Binaries and scratch space ---------------------------------------------

find_bin() {  # find_bin ENV_VALUE RUNFILES_PATH
  if [ -n "$1" ]; then echo "$1"; return; fi
  for root in "${RUNFILES_DIR:-}" "${TEST_SRCDIR:-}" "$0.runfiles"; do
    if [ -n "$root" ] && [ -x "$root/gpumig/$2" ]; then
      echo "$root/gpumig/$2"
      return
    fi
  done
  [ -x "$2" ] && { echo "$PWD/$2"; return; }
  echo "load_test: cannot find $2" >&2
  exit 1
}
GPUMIGD=$(find_bin "${GPUMIGD:-}" daemon/gpumigd) || exit 1
GPUMIGCTL=$(find_bin "${GPUMIGCTL:-}" client/gpumigctl) || exit 1
GPUMIG_LOAD=$(find_bin "${GPUMIG_LOAD:-}" tests/load/gpumig_load) || exit 1

TMP=${TEST_TMPDIR:-$(mktemp -d)}
mkdir -p "$TMP"
OUTDIR=${TEST_UNDECLARED_OUTPUTS_DIR:-$TMP}
# sun_path holds 108 bytes; Bazel's TEST_TMPDIR can be longer.
SOCKDIR=$(mktemp -d /tmp/gpumig-load.XXXXXX)
SOCK="$SOCKDIR/gpumig.sock"
LOG="$TMP/gpumigd.log"
DAEMON_PID=""
BG_PIDS=()

cleanup() {
  for p in "${BG_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -KILL "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
  fi
  rm -rf "$SOCKDIR"
}
trap cleanup EXIT

# fd 3: the test's own stderr, for failures raised while a step's stderr is
# silenced (churn: bash reports each SIGKILLed watcher as "Killed").
exec 3>&2

STEP=""
step() { STEP="$*"; echo "--- $* ($(date +%T))"; }

fail() {
  echo "FAIL [$STEP]: $*" >&3
  echo "== last lines of the daemon log:" >&3
  tail -n 40 "$LOG" >&3 2>/dev/null
  exit 1
}

ctl() { "$GPUMIGCTL" --socket "$SOCK" "$@"; }

# status_kib FIELD: a field of the daemon's /proc/PID/status, in KiB.
status_kib() {
  awk -v f="$1:" '$1 == f { print $2 }' "/proc/$DAEMON_PID/status"
}

# A JSON field of `gpumigctl --json stats` (top-level, numeric or bool).
stats_field() {
  ctl --json stats | python3 -c \
    "import json,sys; print(json.load(sys.stdin)['$1'])"
}

# churn CYCLES WATCHES: CYCLES short connections (one process, one
# connection, one Ping each; three at a time) and WATCHES Watch streams (each
# closed by its --timeout; every fourth killed with SIGKILL mid-stream, so the
# daemon sees the peer vanish).
churn() {
  local cycles=$1 watches=$2 i p
  local pingers=()
  for p in 1 2 3; do
    for i in $(seq 1 $((cycles / 3))); do
      ctl ping >/dev/null 2>&1 || fail "ping $i of $((cycles / 3)) failed"
    done &
    pingers+=($!)
  done
  local watchers=()
  for i in $(seq 1 "$watches"); do
    ctl fence watch --timeout 300ms >/dev/null 2>&1 &
    watchers+=($!)
    if [ $((i % 4)) -eq 0 ]; then
      local victim=$!
      sleep 0.05
      kill -KILL "$victim" 2>/dev/null
    fi
    # At most 8 at once: the daemon caps watchers at 64, the load has some.
    if [ $((i % 8)) -eq 0 ]; then
      for w in "${watchers[@]}"; do wait "$w" 2>/dev/null; done
      watchers=()
    fi
  done
  for w in "${watchers[@]}"; do wait "$w" 2>/dev/null; done
  for p in "${pingers[@]}"; do
    wait "$p" || fail "connect/disconnect cycles failed"
  done
}

# wait_stats FIELD VALUE: GetStats FIELD reaches VALUE within 10 s (the
# daemon frees a closed stream's slot when gRPC tells it, asynchronously).
wait_stats() {
  local v
  for _ in $(seq 1 100); do
    v=$(stats_field "$1") || fail "stats failed"
    [ "$v" = "$2" ] && return 0
    sleep 0.1
  done
  fail "stats $1 is $v, expected $2"
}

# --- Start ----------------------------------------------------------------------

step "start gpumigd"
cat >"$TMP/gpumigd.textproto" <<EOF
backend: "sim"
regions { name: "lmem" kind: LMEM size: "32MiB" aperture: "16MiB" }
regions { name: "smem" kind: SMEM size: "64MiB" }
fence_history: $FENCE_HISTORY
log_level: "info"
EOF
# Under ASan, keep the allocator's quarantine of freed memory small so RSS
# measures live memory (ignored by non-ASan builds).
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16" \
  "$GPUMIGD" --config="$TMP/gpumigd.textproto" --socket="$SOCK" \
  2>"$LOG" &
DAEMON_PID=$!
for i in $(seq 1 300); do
  ctl ping >/dev/null 2>&1 && break
  kill -0 "$DAEMON_PID" 2>/dev/null || fail "gpumigd exited during start-up"
  [ "$i" -eq 300 ] && fail "gpumigd did not answer within 30 s"
  sleep 0.1
done

step "warm-up"
"$GPUMIG_LOAD" --socket="$SOCK" --touch_regions --processes=2 --threads=2 \
  --seconds=2 --out="$TMP/warmup.json" || {
  cat "$TMP/warmup.json" 2>/dev/null
  fail "warm-up load failed"
}
churn 30 8 2>/dev/null
wait_stats watchers 0
RSS_BEFORE=$(status_kib VmRSS)
ANON_BEFORE=$(status_kib RssAnon)
echo "RSS after warm-up: ${RSS_BEFORE} KiB (anon ${ANON_BEFORE} KiB)"

step "load: $LOAD_PROCESSES processes x $LOAD_THREADS threads, ${LOAD_SECONDS}s"
"$GPUMIG_LOAD" --socket="$SOCK" --processes="$LOAD_PROCESSES" \
  --threads="$LOAD_THREADS" --seconds="$LOAD_SECONDS" \
  --out="$OUTDIR/load.json" &
LOAD_PID=$!
BG_PIDS+=("$LOAD_PID")
churn "$CYCLES" "$WATCHES" 2>/dev/null
wait "$LOAD_PID"
LOAD_RC=$?
cat "$OUTDIR/load.json" 2>/dev/null
[ "$LOAD_RC" -eq 0 ] || fail "gpumig_load exited $LOAD_RC"

step "after the load: more connect/disconnect cycles and Watch streams"
churn "$CYCLES" "$WATCHES" 2>/dev/null
wait_stats watchers 0
wait_stats objects 0
wait_stats fences_pending 0
HISTORY=$(stats_field fence_history_size) || fail "stats failed"
[ "$HISTORY" -le "$FENCE_HISTORY" ] ||
  fail "fence history holds $HISTORY fences, configured $FENCE_HISTORY"
RSS_AFTER=$(status_kib VmRSS)
ANON_AFTER=$(status_kib RssAnon)
GROWTH=$((RSS_AFTER - RSS_BEFORE))
echo "RSS after the load: ${RSS_AFTER} KiB (anon ${ANON_AFTER} KiB);" \
  "growth ${GROWTH} KiB (anon $((ANON_AFTER - ANON_BEFORE)) KiB);" \
  "fence history ${HISTORY}"
cat >"$OUTDIR/rss.json" <<EOF
{"rss_before_kib": $RSS_BEFORE, "rss_after_kib": $RSS_AFTER, "anon_before_kib": $ANON_BEFORE, "anon_after_kib": $ANON_AFTER, "growth_kib": $GROWTH, "fence_history_size": $HISTORY}
EOF
cat "$OUTDIR/rss.json"
[ "$GROWTH" -lt $((RSS_LIMIT_MIB * 1024)) ] ||
  fail "RSS grew by ${GROWTH} KiB, limit ${RSS_LIMIT_MIB} MiB"

step "still healthy"
ctl ping >/dev/null || fail "ping after the load failed"
grep -q ' level=error ' "$LOG" && fail "the daemon logged errors"

step "SIGTERM"
kill -TERM "$DAEMON_PID"
for i in $(seq 1 200); do
  kill -0 "$DAEMON_PID" 2>/dev/null || break
  [ "$i" -eq 200 ] && fail "gpumigd did not exit within 20 s of SIGTERM"
  sleep 0.1
done
wait "$DAEMON_PID"
RC=$?
DAEMON_PID=""
[ "$RC" -eq 0 ] || fail "gpumigd exited $RC after SIGTERM"
echo "PASS"
