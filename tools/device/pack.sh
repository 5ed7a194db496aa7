#!/usr/bin/env bash
# Packs what one GPU-machine run needs into one ignored folder:
#   tools/device/pack.sh [--check]        -> .device/ (under 64 MiB)
#
# Builds -c opt, statically linked against our own libraries
# (--dynamic_mode=off) and stripped: the real-runtime cuda tests, the cuda
# benchmark, gpumigd and gpumigctl, plus the fake-runtime tests so the packed
# folder can be checked here without a GPU. Every shared library those
# binaries need that a bare CUDA image may lack (Debian 12's gRPC, protobuf,
# absl, OpenSSL, libsystemd, prometheus-cpp, ...) goes into .device/lib;
# glibc and the NVIDIA driver's libraries (libcuda, libnvidia-*) stay out:
# the machine has its own, and they must match its kernel driver.
# libstdc++/libgcc_s go to .device/lib-fallback, used only where the machine
# has none (a newer system copy is backward compatible; ours is not forward).
#
# --check then runs tools/device/check_pack.sh: the fake-runtime tests from
# the packed binaries, and gpumigd refusing a cuda config cleanly.
#
# On the device machine:  .device/run.sh   (tools/device/run_on_device.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$PWD
out=$top/.device

# The labels the run needs. cuda_failsafe_test moves with the core layout:
# find it wherever it lives.
failsafe=$(bazel query 'attr(name, "^cuda_failsafe_test$", //...)' 2>/dev/null | head -n 1)
fake_failsafe=$(bazel query 'attr(name, "^cuda_failsafe_fake_test$", //...)' 2>/dev/null | head -n 1)
[ -n "$failsafe" ] || { echo "pack: no cuda_failsafe_test target" >&2; exit 1; }
if ! grep -q 'HAS_CUDA = True' "$(bazel info output_base)/external/system/cuda.bzl" 2>/dev/null; then
  echo "pack: the CUDA toolkit is missing (no /usr/local/cuda/include/cuda_runtime.h):" >&2
  echo "      the packed binaries would be the no-CUDA stub. Install the toolkit first." >&2
  exit 1
fi
targets=(
  //core/device/cuda:cuda_device_test
  "$failsafe"
  //tests/bench:cuda_bench
  //daemon:gpumigd
  //client:gpumigctl
  //core/device/cuda:cuda_device_fake_test
  //core/device/cuda:cuda_engine_fake_test
  "$fake_failsafe"
  //tests/bench:cuda_bench_fake_test
)
flags=(-c opt --dynamic_mode=off --strip=always)
echo "pack: bazel build ${flags[*]} ${targets[*]}" >&2
bazel build "${flags[@]}" "${targets[@]}" >&2
bin=$(bazel info "${flags[@]}" bazel-bin 2>/dev/null)

rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/lib-fallback"
for t in "${targets[@]}"; do
  path=${t#//}
  path=${path/://}
  install -m 0755 "$bin/$path" "$out/bin/"
done
install -m 0755 tools/device/run_on_device.sh "$out/run.sh"
install -m 0755 tools/device/session.sh "$out/session.sh"
git rev-parse HEAD >"$out/COMMIT" 2>/dev/null || echo unknown >"$out/COMMIT"

# Shared libraries: every one ldd resolves, minus glibc and the driver's.
is_system() {
  case "$1" in
    ld-linux*|libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|libresolv.so*|libutil.so*|libmvec.so*) return 0 ;;
    libcuda.so*|libnvidia-*|libnvcuvid*|libcudadebugger*) return 0 ;;
    linux-vdso*) return 0 ;;
  esac
  return 1
}
for f in "$out"/bin/*; do
  ldd "$f" | awk '/=>/ && $3 ~ /^\// { print $1, $3 }'
done | sort -u | while read -r name path; do
  is_system "$name" && continue
  case "$name" in
    libstdc++.so*|libgcc_s.so*) cp -L "$path" "$out/lib-fallback/$name" ;;
    *) cp -L "$path" "$out/lib/$name" ;;
  esac
done
strip --strip-unneeded "$out"/lib/*.so* "$out"/lib-fallback/*.so* 2>/dev/null || true

size=$(du -sb "$out" | cut -f1)
echo "pack: $out: $(ls "$out/bin" | wc -l) binaries, $(ls "$out/lib" | wc -l) libraries, $((size / 1048576)) MiB" >&2
if [ "$size" -ge $((64 * 1048576)) ]; then
  echo "pack: over the device tool's 64 MiB carry limit" >&2
  exit 1
fi
if [ "${1:-}" = "--check" ]; then
  exec tools/device/check_pack.sh "$out"
fi
