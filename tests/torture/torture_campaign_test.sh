#!/usr/bin/env bash
# The CI torture campaign (docs/testing.md):
#
#   1. the fault schedule is a function of the seed (printed twice, equal;
#      and what a campaign runs is that schedule);
#   2. gpumigd with fault injection on a small config (LMEM 64 MiB with a
#      16 MiB aperture, SMEM 128 MiB) and a bounded, seeded campaign,
#      oversubscribing LMEM 1.75x, with a live self-test mid-way: exit 0, no
#      violation, faults fired, accounting back to zero;
#   3. `gpumigctl selftest --with-faults` passes;
#   4. a short campaign over mutual-TLS TCP (when openssl can make test
#      certificates), as an admin certificate subject;
#   5. SIGKILL of the daemon mid-campaign: the tool reports UNAVAILABLE and
#      exits (status 3) within seconds, gpumigctl fails fast with exit 9;
#   6. a restarted daemon on the same socket (the stale socket file left in
#      place) starts clean -- no objects, nothing allocated -- and a campaign
#      against it passes.
#
# Sized for <= 2 minutes under ASan on 2 cores. Knobs (environment):
#   TORTURE_SEED (default 20240607), TORTURE_SECONDS (25), TORTURE_CLIENTS (6).
#   TORTURE_KNOWN_ISSUES: finding keys reported but not failing (see below).
# Outside Bazel: GPUMIGD=... GPUMIGCTL=... GPUMIG_TORTURE=... $0
set -uo pipefail

find_bin() {  # find_bin ENV_VALUE RUNFILES_PATH
  if [ -n "$1" ]; then echo "$1"; return; fi
  for root in "${RUNFILES_DIR:-}" "${TEST_SRCDIR:-}" "$PWD/.."; do
    if [ -n "$root" ] && [ -x "$root/gpumig/$2" ]; then
      echo "$root/gpumig/$2"
      return
    fi
  done
  [ -x "$2" ] && { echo "$PWD/$2"; return; }
  echo "torture_campaign_test: cannot find $2" >&2
  exit 1
}
GPUMIGD=$(find_bin "${GPUMIGD:-}" daemon/gpumigd) || exit 1
GPUMIGCTL=$(find_bin "${GPUMIGCTL:-}" client/gpumigctl) || exit 1
MAKE_CERTS=$(find_bin "${MAKE_CERTS:-}" tests/testing/make_test_certs.sh) || exit 1
TORTURE=$(find_bin "${GPUMIG_TORTURE:-}" tests/torture/gpumig_torture) || exit 1

SEED=${TORTURE_SEED:-20240607}
SECONDS_MAIN=${TORTURE_SECONDS:-25}
CLIENTS=${TORTURE_CLIENTS:-6}
# Daemon bugs found by this campaign and reported, not yet fixed: their
# findings are printed and counted as "known issues" instead of failing.
# None is open (docs/testing.md lists the ones found and fixed); set
# TORTURE_KNOWN_ISSUES=key,... to keep a new finding from failing CI while
# its fix is under way.
KNOWN_ISSUES=${TORTURE_KNOWN_ISSUES-}

TMP=${TEST_TMPDIR:-$(mktemp -d)}
mkdir -p "$TMP"
SOCKDIR=$(mktemp -d /tmp/gpumig-torture.XXXXXX)  # sun_path is short
SOCK="$SOCKDIR/gpumig.sock"
DAEMON_PID=""
TORTURE_PID=""

cleanup() {
  [ -n "$TORTURE_PID" ] && kill -KILL "$TORTURE_PID" 2>/dev/null
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -KILL "$DAEMON_PID" 2>/dev/null
  fi
  rm -rf "$SOCKDIR"
}
trap cleanup EXIT

STEP=""
step() { STEP="$*"; echo "--- $(date +%T) $*"; }
fail() {
  echo "FAIL [$STEP]: $*" >&2
  for f in "$TMP"/*.err; do
    [ -s "$f" ] && { echo "== tail of $f:" >&2; tail -n 40 "$f" >&2; }
  done
  for f in "$TMP"/gpumigd*.log; do
    [ -s "$f" ] && { echo "== tail of $f:" >&2; tail -n 20 "$f" >&2; }
  done
  # Last, so a log cut to its tail still shows them: every finding in full
  # (a VIOLATION line and its indented detail), and the failing step again.
  for f in "$TMP"/*.err; do
    if grep -q "VIOLATION" "$f" 2>/dev/null; then
      echo "== findings in $f:" >&2
      awk '/VIOLATION #/ {p = 1; print; next}
           p && /^ / {print; next}
           {p = 0}' "$f" | head -n 120 >&2
    fi
  done
  echo "FAIL [$STEP]: $*" >&2
  exit 1
}

command -v python3 >/dev/null || { echo "needs python3" >&2; exit 1; }

# json FILE EXPR: evaluates EXPR with d = the JSON summary in FILE.
json() {
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print(v if not isinstance(v, bool) else str(v).lower())
' "$1" "$2" || fail "bad JSON in $1 or expression $2"
}
json_check() { [ "$(json "$1" "$2")" = "true" ] || fail "$1: JSON check failed: $2"; }

CONFIG="$TMP/gpumigd.textproto"
cat >"$CONFIG" <<'EOF'
backend: "sim"
regions { name: "lmem" kind: LMEM size: "64MiB" aperture: "16MiB" }
regions { name: "smem" kind: SMEM size: "128MiB" }
listeners { tcp { admin_subjects: "CN=torture-rig" } }
EOF

# TLS material for step 4, when openssl is there.
TLS_FLAGS=()
HAVE_TLS=0
if "$MAKE_CERTS" "$TMP" rig torture-rig; then
  HAVE_TLS=1
  TLS_FLAGS=(--tcp_listen=127.0.0.1:0 "--tls_cert=$TMP/server.pem"
    "--tls_key=$TMP/server.key" "--tls_client_ca=$TMP/ca.pem")
fi

# start_daemon LOG: starts gpumigd on $SOCK, waits for ping.
start_daemon() {
  "$GPUMIGD" --config="$CONFIG" --socket="$SOCK" --enable_fault_injection \
    "${TLS_FLAGS[@]}" >"$1" 2>&1 &
  DAEMON_PID=$!
  for _ in $(seq 1 300); do
    if "$GPUMIGCTL" --socket "$SOCK" --timeout 1s ping >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$DAEMON_PID" 2>/dev/null || fail "gpumigd exited during start-up"
    sleep 0.1
  done
  fail "gpumigd did not answer ping within 30 s"
}

# torture NAME ARGS...: runs a campaign; JSON summary in $TMP/NAME.json,
# stderr in $TMP/NAME.err; returns its exit status.
torture() {
  local name=$1
  shift
  "$TORTURE" --json --known_issues="$KNOWN_ISSUES" "$@" \
    >"$TMP/$name.json" 2>"$TMP/$name.err"
}

# --- 1. The schedule is a function of the seed --------------------------------

step "schedule replays from the seed"
"$TORTURE" --seed="$SEED" --print_schedule=200 >"$TMP/sched1.txt" ||
  fail "print_schedule failed"
"$TORTURE" --seed="$SEED" --print_schedule=200 >"$TMP/sched2.txt"
cmp -s "$TMP/sched1.txt" "$TMP/sched2.txt" || fail "same seed, different schedule"
"$TORTURE" --seed=$((SEED + 1)) --print_schedule=200 >"$TMP/sched3.txt"
cmp -s "$TMP/sched1.txt" "$TMP/sched3.txt" && fail "different seeds, same schedule"
grep -q "inject WEDGE_ENGINE" "$TMP/sched1.txt" || fail "no wedge in 200 actions"

# --- 2. The main campaign -------------------------------------------------------

step "start gpumigd"
start_daemon "$TMP/gpumigd.log"

step "campaign: seed $SEED, $CLIENTS clients, ${SECONDS_MAIN}s"
torture main --socket="$SOCK" --seed="$SEED" --clients="$CLIENTS" \
  --duration="${SECONDS_MAIN}s" --ops=1000000 --oversubscribe=1.75 \
  --selftest_every=$((SECONDS_MAIN / 2))s --progress_every=5s
rc=$?
sed -nE '/^\{/!p' "$TMP/main.err" | grep -E "progress|VIOLATION|known issue|selftest ->" | head -n 40
[ "$rc" -eq 0 ] || fail "campaign exited $rc (1: violations; see main.err)"
json "$TMP/main.json" '"%d ops (%.0f/s); faults fired %s; unknown-state objects %d; known issues %s" % (d["ops"], d["ops_per_s"], d["faults_fired"], d["unknown_state_objects"], d["known_issue_counts"])'
json_check "$TMP/main.json" 'd["violations"] == 0'
json_check "$TMP/main.json" 'd["ops"] >= 500'
json_check "$TMP/main.json" 'd["seed"] == '"$SEED"
json_check "$TMP/main.json" 'd["accounting"].startswith("ok")'
json_check "$TMP/main.json" 'sum(d["faults_fired"].values()) > 0'
json_check "$TMP/main.json" 'd["daemon_counters"]["evictions"] > 0'
json_check "$TMP/main.json" 'd["selftests_passed"] >= 1'
json_check "$TMP/main.json" 'd["unavailable"] is False'
# A share of the IO went through shared buffers, and clients with buffers
# registered and in use were SIGKILLed (campaign_shm.h).
json_check "$TMP/main.json" 'min(d["ops_by_kind"].get(k, 0) for k in ("shm-write", "shm-read", "shm-kill")) > 0'
# The batch client ran every batch RPC, its arrays checked (campaign_batch.h).
json_check "$TMP/main.json" 'min(d["ops_by_kind"].get(k, 0) for k in ("batch_create", "batch_migrate", "batch_exec")) > 0'
# What ran is the seed's schedule: the action lines of the run are a prefix
# of the printed schedule.
sed -nE 's/^\[ *[0-9.]+s\] (#[0-9]+ at [0-9.]+s (inject|evict) .*) -> .*/\1/p' \
  "$TMP/main.err" >"$TMP/ran.txt"
n=$(wc -l <"$TMP/ran.txt")
[ "$n" -ge 5 ] || fail "only $n schedule actions ran"
"$TORTURE" --seed="$SEED" --print_schedule="$n" | tail -n +2 |
  sed -E 's/ hold=[^ ]+$//' >"$TMP/want.txt"
sed -E 's/ hold=[^ ]+$//' "$TMP/ran.txt" | diff "$TMP/want.txt" - >/dev/null ||
  fail "the campaign did not run the seed's schedule"

# --- 3. The admin self-test -----------------------------------------------------

step "gpumigctl selftest --with-faults"
"$GPUMIGCTL" --socket "$SOCK" --json selftest --with-faults \
  >"$TMP/selftest.json" 2>"$TMP/selftest.err" || fail "selftest exited $?"
json_check "$TMP/selftest.json" 'd["passed"] is True and d["violations"] == 0'
json_check "$TMP/selftest.json" 'd["objects_checked"] > 0'

# --- 4. Mutual-TLS TCP ------------------------------------------------------------

step "campaign over mutual-TLS TCP"
if [ "$HAVE_TLS" -eq 1 ]; then
  PORT=$(sed -nE 's/.*event=listening tcp=127\.0\.0\.1:([0-9]+).*/\1/p' \
    "$TMP/gpumigd.log" | head -n 1)
  [ -n "$PORT" ] || fail "no TCP listening line in the daemon log"
  torture tls --target="127.0.0.1:$PORT" --tls_ca="$TMP/ca.pem" \
    --tls_cert="$TMP/rig.pem" --tls_key="$TMP/rig.key" \
    --seed=$((SEED + 7)) --clients=3 --duration=5s --quiet
  rc=$?
  [ "$rc" -eq 0 ] || fail "TLS campaign exited $rc"
  json_check "$TMP/tls.json" 'd["target"] == "tls:127.0.0.1:'"$PORT"'"'
  json_check "$TMP/tls.json" 'd["violations"] == 0 and d["ops"] > 0'
else
  echo "(skipped: no openssl)"
fi

# --- 5. SIGKILL mid-campaign ------------------------------------------------------

step "SIGKILL gpumigd mid-campaign"
"$TORTURE" --json --known_issues="$KNOWN_ISSUES" --socket="$SOCK" \
  --seed=$((SEED + 2)) --clients="$CLIENTS" --duration=120s \
  --progress_every=1s --quiet >"$TMP/kill.json" 2>"$TMP/kill.err" &
TORTURE_PID=$!
# Let it get going: wait for a progress line with operations done.
for _ in $(seq 1 200); do
  grep -qE "progress: [1-9][0-9]* ops" "$TMP/kill.err" && break
  kill -0 "$TORTURE_PID" 2>/dev/null || fail "campaign ended before the kill"
  sleep 0.1
done
kill -KILL "$DAEMON_PID"
killed_at=$(date +%s%N)
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=""
# The tool must notice and return promptly, never hang.
for _ in $(seq 1 200); do
  kill -0 "$TORTURE_PID" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$TORTURE_PID" 2>/dev/null; then
  fail "gpumig_torture still running 20 s after the daemon was killed (hang)"
fi
wait "$TORTURE_PID"
rc=$?
TORTURE_PID=""
took_ms=$((($(date +%s%N) - killed_at) / 1000000))
echo "gpumig_torture exited $rc ${took_ms} ms after SIGKILL" \
  "($(json "$TMP/kill.json" '"%.3f s from its first UNAVAILABLE to every client returned" % d.get("unavailable_to_exit_s", -1)'))"
[ "$rc" -eq 3 ] || fail "expected exit 3 (UNAVAILABLE), got $rc"
json_check "$TMP/kill.json" 'd["unavailable"] is True'
json_check "$TMP/kill.json" 'd["violations"] == 0'
json_check "$TMP/kill.json" 'd["unavailable_to_exit_s"] < 10'
grep -q "daemon UNAVAILABLE" "$TMP/kill.err" || fail "no UNAVAILABLE report"
# A fresh client fails fast too (exit 9: UNAVAILABLE).
timeout 10 "$GPUMIGCTL" --socket "$SOCK" ping >/dev/null 2>"$TMP/ping.err"
rc=$?
[ "$rc" -eq 9 ] || fail "gpumigctl ping to a dead daemon exited $rc, expected 9"

# --- 6. Restart on the same socket --------------------------------------------

step "restart on the same (stale) socket"
[ -S "$SOCK" ] || echo "(note: the killed daemon left no socket file)"
start_daemon "$TMP/gpumigd-restarted.log"
"$GPUMIGCTL" --socket "$SOCK" --json regions >"$TMP/regions.json" ||
  fail "regions after restart"
json_check "$TMP/regions.json" 'all(r["allocated_bytes"] == 0 and r["objects"] == 0 for r in d["regions"])'
"$GPUMIGCTL" --socket "$SOCK" --json stats >"$TMP/stats.json" || fail "stats"
json_check "$TMP/stats.json" 'd["objects"] == 0'
"$GPUMIGCTL" --socket "$SOCK" --json list --all >"$TMP/list.json" || fail "list"
json_check "$TMP/list.json" 'len(d["objects"]) == 0'

step "campaign against the restarted daemon"
torture restarted --socket="$SOCK" --seed=$((SEED + 3)) --clients="$CLIENTS" \
  --duration=6s --quiet
rc=$?
[ "$rc" -eq 0 ] || fail "campaign after restart exited $rc"
json_check "$TMP/restarted.json" 'd["violations"] == 0 and d["ops"] > 0'
json_check "$TMP/restarted.json" 'd["accounting"].startswith("ok")'

step "SIGTERM"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
rc=$?
DAEMON_PID=""
[ "$rc" -eq 0 ] || fail "gpumigd exited $rc after SIGTERM"

echo "PASS"
