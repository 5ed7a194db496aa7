#!/usr/bin/env bash
# The one prepared GPU run (issue 15). Runs on the device machine from the
# repository root, with the packed folder carried:
#   run(command=".device/run.sh", carry=[".device"], timeout_s=540)
# Everything goes to $OUT (default ./device-out): versions, gtest JSON of the
# two real-runtime cuda tests, the cuda benchmark's JSON, and a scripted
# gpumigctl session against gpumigd on backend "cuda". Each step has its own
# time limit so the whole run ends within 8 minutes; a step that fails is
# recorded and the run goes on. Last line: "device run: N steps ok, N failed".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$PWD/device-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libstdc++.so.6 '; then
  LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$here/lib-fallback"
fi
start=$(date +%s)
ok=0
failed=0
step() {  # step NAME LIMIT_S COMMAND...
  local name=$1 limit=$2
  shift 2
  local t0 rc
  t0=$(date +%s%N)
  echo "=== $name (limit ${limit}s, at $(($(date +%s) - start))s)"
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  echo "=== $name: rc=$rc in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  tail -n 25 "$OUT/$name.log"
  if [ "$rc" -eq 0 ]; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
}

{
  echo "commit: $(cat "$here/COMMIT")"
  date -u
  uname -a
  cat /etc/os-release 2>/dev/null | head -n 2
  nvidia-smi || true
  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.free,pcie.link.gen.max,pcie.link.width.max --format=csv || true
  cat /proc/driver/nvidia/version 2>/dev/null || true
  ls -l /usr/local/cuda*/lib64/libcudart.so* 2>/dev/null || true
  echo "carried libcudart: $(ls "$here"/lib/libcudart.so* 2>/dev/null)"
  echo "--- unresolved libraries (should be none):"
  for f in "$here"/bin/*; do ldd "$f" | grep "not found" | sed "s|^|$(basename "$f"): |"; done
} >"$OUT/versions.txt" 2>&1
cat "$OUT/versions.txt"

bin=$here/bin
step cuda_device_test 90 "$bin/cuda_device_test" --gtest_output="json:$OUT/cuda_device_test.json"
step cuda_failsafe_test 150 "$bin/cuda_failsafe_test" --gtest_output="json:$OUT/cuda_failsafe_test.json"
step cuda_bench 120 sh -c "'$bin/cuda_bench' --seconds=0.3 >'$OUT/cuda_bench.json' 2>'$OUT/cuda_bench.stderr'; rc=\$?; cat '$OUT/cuda_bench.stderr'; exit \$rc"
step session_cuda 100 "$here/session.sh" cuda "$bin" "$OUT/session"

echo "device run: $ok steps ok, $failed failed ($(($(date +%s) - start)) s)"
[ "$failed" -eq 0 ]
