# The shell harness of the gpumigctl end-to-end tests (cli_e2e_test.sh,
# cli_batch_e2e_test.sh), sourced by each after `set -uo pipefail`:
# finds gpumigd and gpumigctl (runfiles, or $GPUMIGD / $GPUMIGCTL), makes the
# scratch directory and the socket path ($TMP, $SOCK, $LOG), kills the
# daemon ($DAEMON_PID) on exit, and gives the helpers below. A test starts
# its own daemon (its config and flags differ), then calls wait_ready.

# --- Binaries and scratch space ---------------------------------------------

find_bin() {  # find_bin ENV_VALUE RUNFILES_PATH
  if [ -n "$1" ]; then echo "$1"; return; fi
  for root in "${RUNFILES_DIR:-}" "${TEST_SRCDIR:-}" "$PWD/.." ; do
    if [ -n "$root" ] && [ -x "$root/gpumig/$2" ]; then
      echo "$root/gpumig/$2"
      return
    fi
  done
  [ -x "$2" ] && { echo "$PWD/$2"; return; }
  echo "$(basename "$0" .sh): cannot find $2" >&2
  exit 1
}
GPUMIGD=$(find_bin "${GPUMIGD:-}" daemon/gpumigd) || exit 1
GPUMIGCTL=$(find_bin "${GPUMIGCTL:-}" client/gpumigctl) || exit 1

TMP=${TEST_TMPDIR:-$(mktemp -d)}
mkdir -p "$TMP"
# sun_path holds 108 bytes; Bazel's TEST_TMPDIR can be longer.
SOCKDIR="$TMP"
if [ ${#TMP} -gt 80 ]; then SOCKDIR=$(mktemp -d /tmp/gpumig-e2e.XXXXXX); fi
SOCK="$SOCKDIR/gpumig.sock"
LOG="$TMP/gpumigd.log"
DAEMON_PID=""

cleanup() {
  if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -TERM "$DAEMON_PID" 2>/dev/null
    for _ in $(seq 1 50); do
      kill -0 "$DAEMON_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$DAEMON_PID" 2>/dev/null
  fi
  [ "$SOCKDIR" != "$TMP" ] && rm -rf "$SOCKDIR"
}
trap cleanup EXIT

# --- Helpers -------------------------------------------------------------------

STEP=""
step() { STEP="$*"; echo "--- $*"; }

fail() {
  echo "FAIL [$STEP]: $*" >&2
  for f in "$TMP/out" "$TMP/err"; do
    [ -s "$f" ] && { echo "== $f:" >&2; head -c 2000 "$f" >&2; echo >&2; }
  done
  echo "== last lines of the daemon log:" >&2
  tail -n 30 "$LOG" >&2 2>/dev/null
  exit 1
}

ctl() { "$GPUMIGCTL" --socket "$SOCK" "$@"; }

# expect RC CMD...: runs CMD with stdout in $TMP/out and stderr in $TMP/err;
# fails unless it exits with RC.
expect() {
  local want=$1
  shift
  "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  [ "$rc" -eq "$want" ] || fail "'$*' exited $rc, expected $want"
}

# ok CMD...: expect 0.
ok() { expect 0 "$@"; }

out_has() { grep -qE -- "$1" "$TMP/out" || fail "stdout lacks /$1/"; }
err_has() { grep -qE -- "$1" "$TMP/err" || fail "stderr lacks /$1/"; }

# py EXPR: evaluates EXPR with d = the JSON document in $TMP/out; prints it.
# Fails if stdout is not exactly one JSON document.
py() {
  python3 -c '
import json, sys
with open(sys.argv[1]) as f:
    d = json.load(f)
v = eval(sys.argv[2])
print(v if not isinstance(v, bool) else str(v).lower())
' "$TMP/out" "$1" || fail "bad JSON or expression '$1'"
}

# json_check EXPR: fails unless EXPR is true of the JSON in $TMP/out.
json_check() {
  [ "$(py "$1")" = "true" ] || fail "JSON check failed: $1"
}

# FNV-1a 64 of a file (or of a byte pattern), as 0x%016x.
fnv_file() {
  python3 -c '
import sys
h = 0xcbf29ce484222325
with open(sys.argv[1], "rb") as f:
    data = f.read()
for b in data:
    h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
print("0x%016x" % h)
' "$1"
}


# wait_ready: waits up to 15 s for the daemon ($DAEMON_PID) to answer ping.
wait_ready() {
  local ready=0
  for _ in $(seq 1 150); do
    if ctl --timeout 1s ping >/dev/null 2>&1; then
      ready=1
      break
    fi
    kill -0 "$DAEMON_PID" 2>/dev/null || fail "gpumigd exited during start-up"
    sleep 0.1
  done
  [ "$ready" -eq 1 ] || fail "gpumigd did not answer ping within 15 s"
}

command -v python3 >/dev/null ||
  { echo "$(basename "$0" .sh): needs python3" >&2; exit 1; }
