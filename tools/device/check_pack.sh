#!/usr/bin/env bash
# Checks a packed folder (tools/device/pack.sh) here, without a GPU, as far
# as that goes: every library resolves from the folder; the fake-runtime
# cuda tests pass from the packed binaries; the real-runtime tests and the
# benchmark skip cleanly; gpumigd refuses a cuda config with the device's
# error; the scripted session passes against the packed gpumigd on sim.
#   tools/device/check_pack.sh [.device]
set -uo pipefail
pack=$(cd "${1:-.device}" && pwd)
export LD_LIBRARY_PATH=$pack/lib:$pack/lib-fallback
bin=$pack/bin
out=$(mktemp -d "${TMPDIR:-/tmp}/gpumig-pack-check.XXXXXX")
trap 'rm -rf "$out"' EXIT
ok=0
bad=0
pass() { echo "ok    $*"; ok=$((ok + 1)); }
fail() { echo "FAIL  $*"; bad=$((bad + 1)); }

missing=$(for f in "$bin"/*; do ldd "$f" | grep "not found" | sed "s|^|$(basename "$f"): |"; done)
[ -z "$missing" ] && pass "every library resolves" || fail "unresolved: $missing"
# Only glibc and the driver may come from the system.
foreign=$(for f in "$bin"/*; do ldd "$f"; done | awk '$3 ~ /^\// { print $3 }' | sort -u |
  grep -v "^$pack/" | grep -vE '/(ld-linux[^/]*|lib(c|m|pthread|dl|rt|resolv|util|mvec|cuda|nvidia-[^/]*)\.so[^/]*)$' || true)
[ -z "$foreign" ] && pass "nothing else comes from this system" || fail "from the system: $foreign"

for t in cuda_device_fake_test cuda_engine_fake_test cuda_failsafe_fake_test; do
  if "$bin/$t" >"$out/$t.log" 2>&1; then pass "$t"; else fail "$t"; tail -n 20 "$out/$t.log"; fi
done
"$bin/cuda_bench_fake_test" --max_size=1048576 --seconds=0.01 >"$out/bench_fake.json" 2>"$out/bench_fake.err" &&
  grep -q '"rows"\|"results"\|{' "$out/bench_fake.json" && pass "cuda_bench_fake_test prints JSON" ||
  { fail "cuda_bench_fake_test"; tail -n 20 "$out/bench_fake.err"; }
for t in cuda_device_test cuda_failsafe_test; do
  "$bin/$t" --gtest_output="json:$out/$t.json" >"$out/$t.log" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ] && grep -q "SKIPPED\|PASSED" "$out/$t.log"; then
    pass "$t without a GPU: $(grep -c '^\[  SKIPPED \]' "$out/$t.log") skipped, rc 0"
  else
    fail "$t rc=$rc"; tail -n 20 "$out/$t.log"
  fi
done
"$bin/cuda_bench" --seconds=0.01 >"$out/bench.json" 2>"$out/bench.err"
rc=$?
[ "$rc" -eq 77 ] && grep -q '"skipped": *true' "$out/bench.json" && pass "cuda_bench without a GPU: skipped, exit 77" ||
  fail "cuda_bench rc=$rc: $(cat "$out/bench.json" "$out/bench.err" | head -n 5)"

cat >"$out/cuda.textproto" <<CFG
backend: "cuda"
regions { name: "lmem" kind: LMEM size: "1GiB" aperture: "0" }
regions { name: "smem" kind: SMEM size: "1GiB" }
listeners { unix_socket { path: "$out/gpumig.sock" mode: "0600" } }
metrics_address: "none"
CFG
timeout 30 "$bin/gpumigd" --config="$out/cuda.textproto" >"$out/gpumigd.log" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "backend cuda: " "$out/gpumigd.log"; then
  pass "gpumigd refuses the cuda config without a GPU (rc $rc): $(grep -o 'backend cuda: .*' "$out/gpumigd.log" | head -n 1 | cut -c1-120)"
else
  fail "gpumigd on cuda without a GPU: rc=$rc"; tail -n 5 "$out/gpumigd.log"
fi

if SESSION_BIG_BYTES=16777216 "$pack/session.sh" sim "$bin" "$out/session" >"$out/session.txt" 2>&1; then
  pass "$(tail -n 1 "$out/session.txt")"
else
  fail "session on sim:"; grep -v '^ok' "$out/session.txt"
fi
echo "check_pack: $ok ok, $bad failed"
[ "$bad" -eq 0 ]
