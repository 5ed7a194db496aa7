#!/usr/bin/env bash
# A scripted gpumigctl session against a fresh gpumigd, checked by content:
#   tools/device/session.sh BACKEND BINDIR OUTDIR
# BACKEND is cuda (the device run: LMEM has no CPU aperture, so failed blits
# fall back through the device's independent path) or sim (the same script
# in CI, where the CPU reaches LMEM and fallbacks are CPU copies). BINDIR
# holds gpumigd and gpumigctl ($GPUMIGD / $GPUMIGCTL override). Everything
# is logged under OUTDIR; exit 0 only if every check held.
#
# Covered: create, write, migrate both ways, fail_blit / fail_clear / wedge
# each without and with ban_memcpy (fallback outcomes vs UNKNOWN_STATE and
# DATA_LOSS), read back and compare, selftest --with-faults, stats, and a
# 256 MiB round trip timed (shared buffers if the client uses them; streams
# with --no-shm when gpumigctl has that flag); $SESSION_BIG_BYTES sets its
# size (CI runs it smaller).
set -uo pipefail
backend=${1:?usage: session.sh BACKEND BINDIR OUTDIR}
bindir=${2:?usage: session.sh BACKEND BINDIR OUTDIR}
outdir=${3:?usage: session.sh BACKEND BINDIR OUTDIR}
GPUMIGD=${GPUMIGD:-$bindir/gpumigd}
GPUMIGCTL=${GPUMIGCTL:-$bindir/gpumigctl}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
# /tmp, not $TEST_TMPDIR: a unix socket path holds at most 108 bytes.
work=$(mktemp -d /tmp/gpumig-session.XXXXXX)
sock=$work/gpumig.sock
checks=0
failures=0
log=$outdir/session.log
: >"$log"

case "$backend" in
  cuda)
    copy_fallback=FALLBACK_DEVICE_COPY clear_fallback=FALLBACK_DEVICE_CLEAR
    regions='regions { name: "lmem" kind: LMEM size: "4GiB" aperture: "0" }
regions { name: "smem" kind: SMEM size: "4GiB" }' ;;
  sim)
    copy_fallback=FALLBACK_COPY clear_fallback=FALLBACK_CLEAR
    regions='regions { name: "lmem" kind: LMEM size: "512MiB" }
regions { name: "smem" kind: SMEM size: "768MiB" }' ;;
  *) echo "session: unknown backend $backend" >&2; exit 2 ;;
esac
cat >"$work/gpumigd.textproto" <<CFG
backend: "$backend"
$regions
listeners { unix_socket { path: "$sock" mode: "0600" } }
enable_fault_injection: true
metrics_address: "none"
CFG
cp "$work/gpumigd.textproto" "$outdir/"

say() { echo "$*" | tee -a "$log"; }
check() {  # check DESCRIPTION CONDITION-COMMAND...
  local what=$1
  shift
  checks=$((checks + 1))
  if "$@" >>"$log" 2>&1; then
    say "ok    $what"
  else
    failures=$((failures + 1))
    say "FAIL  $what"
  fi
}
ctl() { "$GPUMIGCTL" --socket "$sock" --timeout 60s "$@"; }
# Runs gpumigctl, keeps its stdout in $work/out, logs both streams.
run() {
  echo "\$ gpumigctl $*" >>"$log"
  ctl "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  cat "$work/out" "$work/err" >>"$log"
  return "$rc"
}
field() { awk -v k="$1" '$1 == k { print $2; exit }' "$work/out"; }
handle_of() { sed -nE 's/^created ([^ :]+):.*/\1/p' "$work/out" | head -n 1; }
fence_of() { sed -nE 's/.*fence ([0-9]+).*/\1/p' "$work/out" | head -n 1; }
expect_outcome() {  # expect_outcome WANT  (after a --wait or fence wait)
  local got
  got=$(field outcome)
  echo "outcome: want $1, got ${got:-none}" >>"$log"
  [ "$got" = "$1" ]
}
rand() { head -c "$2" /dev/urandom >"$1"; }

cleanup() {
  if [ -n "${daemon_pid:-}" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    kill -TERM "$daemon_pid"
    wait "$daemon_pid"
    echo "gpumigd exited $?" >>"$log"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$GPUMIGD" --config="$work/gpumigd.textproto" >"$outdir/gpumigd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 200); do
  ctl ping >/dev/null 2>&1 && break
  kill -0 "$daemon_pid" 2>/dev/null || break
  sleep 0.1
done
if ! ctl ping >/dev/null 2>&1; then
  say "FAIL  gpumigd did not come up on $backend:"
  tail -n 20 "$outdir/gpumigd.log" | tee -a "$log"
  echo "session: 0 checks ok, 1 failed"
  exit 1
fi
run info && cp "$work/out" "$outdir/info.txt"
run regions && cp "$work/out" "$outdir/regions_before.txt"

# --- create, write, migrate both ways ---------------------------------------
rand "$work/a.bin" 4194304
check "create 4 MiB in smem" run create 4MiB --placements smem,lmem
A=$(handle_of)
check "write 4 MiB" run write "$A" "$work/a.bin"
check "migrate smem -> lmem: BLIT_OK" eval 'run migrate "$A" lmem --wait && expect_outcome BLIT_OK'
check "read back after smem -> lmem" eval 'run read "$A" "$work/a.back" && cmp "$work/a.bin" "$work/a.back"'
check "migrate lmem -> smem: BLIT_OK" eval 'run migrate "$A" smem --wait && expect_outcome BLIT_OK'
check "read back after lmem -> smem" eval 'run read "$A" "$work/a.back" && cmp "$work/a.bin" "$work/a.back"'

# --- each fault without ban_memcpy: a fallback, content exact ---------------
# A wedge skips the engine's next command whatever it is; fail_blit is
# scoped to copies.
op_of() { [ "$1" = fail_blit ] && echo "--op copy"; }
for kind in fail_blit wedge_engine; do
  check "$kind: smem -> lmem falls back ($copy_fallback)" eval \
    'run fault inject $kind --next 1 $(op_of $kind) && run migrate "$A" lmem --wait && expect_outcome $copy_fallback'
  check "$kind: content exact after the fallback into lmem" eval \
    'run read "$A" "$work/a.back" && cmp "$work/a.bin" "$work/a.back"'
  check "$kind: lmem -> smem falls back" eval \
    'run fault inject $kind --next 1 $(op_of $kind) && run migrate "$A" smem --wait && expect_outcome $copy_fallback'
  check "$kind: content exact after the fallback into smem" eval \
    'run read "$A" "$work/a.back" && cmp "$work/a.bin" "$work/a.back"'
  run fault clear --all
done
check "fail_clear: a new lmem object's clear falls back ($clear_fallback)" eval \
  'run fault inject fail_clear --next 1 --op clear && run create 1MiB --placements lmem && C=$(handle_of) && F=$(fence_of) && run fence wait "$F" && expect_outcome $clear_fallback'
check "fail_clear: the object reads as zeros, never old bytes" eval \
  'run read "$C" "$work/c.back" && cmp "$work/c.back" <(head -c 1048576 /dev/zero)'
run fault clear --all
run destroy "$C"

# --- each fault with ban_memcpy: UNKNOWN_STATE, every access refused --------
for kind in fail_blit wedge_engine; do
  check "$kind + ban_memcpy: smem -> lmem ends UNKNOWN_STATE" eval \
    'run create 1MiB --placements smem,lmem && U=$(handle_of) && run fault inject ban_memcpy --next 1 && run fault inject $kind --next 1 $(op_of $kind) && ! run migrate "$U" lmem --wait && expect_outcome UNKNOWN_STATE'
  check "$kind + ban_memcpy: read refused with DATA_LOSS" eval \
    '! run read "$U" "$work/u.back" && grep -q "DATA_LOSS" "$work/err"'
  run fault clear --all
  run destroy "$U"
done
check "fail_clear + ban_memcpy: the new object is UNKNOWN_STATE and refuses reads" eval \
  'run fault inject ban_memcpy --next 1 && run fault inject fail_clear --next 1 --op clear && run create 1MiB --placements lmem && U=$(handle_of) && F=$(fence_of) && ! run fence wait "$F" ; expect_outcome UNKNOWN_STATE && ! run read "$U" "$work/u.back" && grep -q DATA_LOSS "$work/err"'
run fault clear --all
run destroy "$U"
check "the first object is still intact" eval \
  'run read "$A" "$work/a.back" && cmp "$work/a.bin" "$work/a.back"'

# --- large round trip, timed --------------------------------------------------
big=${SESSION_BIG_BYTES:-268435456}
rand "$work/big.bin" "$big"
check "create $big bytes in lmem" run create "$big" --placements lmem,smem
B=$(handle_of)
for mode in default no-shm; do
  extra=()
  if [ "$mode" = no-shm ]; then
    ctl help write 2>&1 | grep -q -- "--no-shm" || continue
    extra=(--no-shm)
  fi
  t0=$(date +%s%N)
  check "$big-byte write ($mode)" run write "$B" "$work/big.bin" "${extra[@]}"
  t1=$(date +%s%N)
  check "$big-byte read back ($mode)" eval 'run read "$B" "$work/big.back" "${extra[@]}" && cmp "$work/big.bin" "$work/big.back"'
  t2=$(date +%s%N)
  say "timing $mode: write $(( big * 1000 / ((t1 - t0) / 1000 + 1) )) kB/s, read+cmp $(( big * 1000 / ((t2 - t1) / 1000 + 1) )) kB/s (gpumigctl end to end, file IO included)"
done
run destroy "$B"

# --- selftest, stats ------------------------------------------------------------
check "selftest --with-faults passes" run selftest --with-faults
cp "$work/out" "$outdir/selftest.txt"
check "stats" run stats
cp "$work/out" "$outdir/stats.txt"
run --json stats && cp "$work/out" "$outdir/stats.json"
run regions && cp "$work/out" "$outdir/regions_after.txt"
run destroy "$A"

check "gpumigd exits 0 on SIGTERM" eval 'kill -TERM $daemon_pid && wait $daemon_pid'
daemon_pid=
echo "session ($backend): $((checks - failures)) checks ok, $failures failed" | tee -a "$log"
[ "$failures" -eq 0 ]
