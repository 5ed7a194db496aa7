#!/usr/bin/env bash
# Installs the Debian 12 packages gpumig builds and tests with, if missing.
# Idempotent. As root it runs apt-get; otherwise through sudo when that works
# without a password prompt; otherwise it prints the exact command and fails.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap
  g++ pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libdrm-dev libsystemd-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libfuzzer-14-dev libclang-rt-14-dev clang-format
  systemd curl
  prometheus python3 python3-yaml python3-jsonschema
  python3-grpcio python3-protobuf python3-pytest
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
# Debian's prometheus package (for promtool, tests/monitoring) would start
# its server from the postinst: a policy-rc.d answering 101 ("action
# forbidden") stops invoke-rc.d and deb-systemd-invoke from starting it. Ours
# only if none exists, removed again on exit.
policy=/usr/sbin/policy-rc.d
own_policy=0
policy_as=""
set_policy() {  # set_policy [sudo -n]
  [ -e "$policy" ] && return 0
  policy_as="$*"
  $policy_as sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy" &&
    own_policy=1
  trap 'if [ "$own_policy" = 1 ]; then $policy_as rm -f "$policy"; fi' EXIT
}
echo "gpumig: installing missing packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  set_policy
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive "${cmd[@]}" >&2
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  set_policy "sudo -n"
  sudo -n apt-get update -q >&2
  sudo -n env DEBIAN_FRONTEND=noninteractive "${cmd[@]}" >&2
else
  echo "gpumig: cannot install packages without root. Run:" >&2
  echo "  sudo apt-get update && sudo ${cmd[*]}" >&2
  exit 1
fi
