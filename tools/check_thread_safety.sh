#!/usr/bin/env bash
# Enforces the thread-safety annotations (ABSL_GUARDED_BY, ..._LOCKS_REQUIRED,
# ...) with clang's analysis: C++ files are compiled syntax-only with
# -Wthread-safety -Werror=thread-safety. The gcc build ignores the
# annotations; this makes a broken one a CI failure.
#
#   tools/check_thread_safety.sh     # exit 0: clean; 1: a violation; 2: no clang
#
# Scope: every .cc file of core/, common/, proto/, daemon/ and client/, and
# every .cc file of tests/ that locks (names a Mutex, a CondVar, a guard or
# a lock annotation, itself or in its own header). Headers are checked
# through the files that include them. core/device/cuda is checked where
# the CUDA toolkit's headers are installed (CUDA_HOME, default
# /usr/local/cuda), and skipped (said so) elsewhere.
#
# daemon/, client/ and tests/ include the generated protobuf/gRPC headers:
# they come from a Bazel build of the two codegen rules (gcc, cached; a few
# seconds when nothing changed). Set TSA_NO_BAZEL=1 to use bazel-bin as it
# is.
set -uo pipefail
cd "$(dirname "$0")/.."

command -v clang++ >/dev/null || {
  echo "check_thread_safety: needs clang (tools/install_deps.sh)" >&2
  exit 2
}
jobs=${TSA_JOBS:-$(nproc)}

if [ -z "${TSA_NO_BAZEL:-}" ]; then
  if ! bazel build --noshow_progress //proto:gpumig_v1_codegen \
    //daemon/config:config_proto_codegen >/dev/null 2>&1; then
    echo "check_thread_safety: bazel could not generate the proto headers" >&2
    exit 1
  fi
fi
bin=$(bazel info bazel-bin 2>/dev/null || echo bazel-bin)
if [ ! -f "$bin/proto/gpumig/v1/common.pb.h" ]; then
  echo "check_thread_safety: no generated headers under $bin" >&2
  exit 1
fi

cuda=${CUDA_HOME:-/usr/local/cuda}
lock_pattern='Mutex|GUARDED_BY|LOCKS_|LOCK_RETURNED|CondVar'
files=$(mktemp)
log=$(mktemp)
trap 'rm -f "$files" "$log"' EXIT
{
  git ls-files 'core/*.cc' 'common/*.cc' 'proto/*.cc' 'daemon/*.cc' 'client/*.cc' |
    if [ -f "$cuda/include/cuda_runtime.h" ]; then cat; else grep -v '^core/device/cuda/'; fi
  for f in $(git ls-files 'tests/*.cc'); do
    h=${f%.cc}.h
    if grep -qE "$lock_pattern" "$f" || { [ -f "$h" ] && grep -qE "$lock_pattern" "$h"; }; then
      echo "$f"
    fi
  done
} >"$files"
[ -f "$cuda/include/cuda_runtime.h" ] ||
  echo "check_thread_safety: no CUDA headers at $cuda: core/device/cuda not checked"

xargs -P "$jobs" -I{} sh -c \
  'clang++ -std=c++17 -fsyntax-only -I. -I"$2/proto" -I"$2/daemon/config" \
     -I/usr/include/libdrm -isystem "$3/include" -DNOMINMAX \
     -DGTEST_HAS_PTHREAD=1 -Wthread-safety -Werror=thread-safety \
     -Wno-unknown-warning-option "$1" 2>&1 || echo "FAILED: $1"' _ {} "$bin" "$cuda" \
  <"$files" >"$log"
if grep -q '^FAILED: ' "$log"; then
  cat "$log"
  echo "check_thread_safety: $(grep -c '^FAILED: ' "$log") file(s) failed" >&2
  exit 1
fi
echo "check_thread_safety: ok ($(wc -l <"$files") files: core/, common/, proto/, daemon/, client/, tests/ that lock)"
