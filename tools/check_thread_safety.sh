#!/usr/bin/env bash
# Enforces the thread-safety annotations (ABSL_GUARDED_BY, ..._LOCKS_REQUIRED,
# ...) with clang's analysis: every core/ C++ file is compiled syntax-only
# with -Wthread-safety -Werror=thread-safety. The gcc build ignores the
# annotations; this makes a broken one a CI failure.
#
#   tools/check_thread_safety.sh     # exit 0: clean; 1: a violation; 2: no clang
#
# Scope: core/ (no gRPC, no generated headers), except core/device/cuda
# (needs the CUDA toolkit's headers). daemon/ and client/ are not checked yet:
# they need the generated protobuf headers of a Bazel build.
set -uo pipefail
cd "$(dirname "$0")/.."

command -v clang++ >/dev/null || {
  echo "check_thread_safety: needs clang (tools/install_deps.sh)" >&2
  exit 2
}
jobs=${TSA_JOBS:-2}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
git ls-files 'core/*.cc' 'core/*.h' | grep -v '^core/device/cuda/' | grep '\.cc$' |
  xargs -P "$jobs" -I{} sh -c \
    'clang++ -std=c++17 -fsyntax-only -I. -I/usr/include/libdrm \
       -Wthread-safety -Werror=thread-safety "$1" 2>&1 || echo "FAILED: $1"' _ {} \
    >"$log"
if grep -q '^FAILED: ' "$log"; then
  cat "$log"
  echo "check_thread_safety: $(grep -c '^FAILED: ' "$log") file(s) failed" >&2
  exit 1
fi
echo "check_thread_safety: ok ($(git ls-files 'core/*.cc' | grep -vc '^core/device/cuda/') files)"
