#!/usr/bin/env bash
# Starts gpumigd on the embedded sim device, in the foreground:
#   ./run.sh [extra gpumigd flags]
# Installs missing Debian packages, builds gpumigd and gpumigctl (-c opt),
# and listens on a unix socket you can reach:
#   root:  /run/gpumig/gpumig.sock (gpumigctl's default)
#   other: $XDG_RUNTIME_DIR/gpumig/gpumig.sock (export GPUMIG_SOCKET, printed)
# Fault injection is enabled for this development daemon (admin-only: root).
set -euo pipefail
cd "$(dirname "$0")"
tools/install_deps.sh

bazel build -c opt //daemon:gpumigd //client:gpumigctl >&2
bin=$(bazel info -c opt bazel-bin 2>/dev/null)

if [ "$(id -u)" -eq 0 ]; then
  dir=/run/gpumig
else
  dir=${XDG_RUNTIME_DIR:-/tmp/gpumig-$(id -u)}/gpumig
fi
mkdir -p "$dir"
chmod 0750 "$dir"
socket=$dir/gpumig.sock
cat >&2 <<MSG
gpumigd: starting on the sim device, socket $socket
  in another shell:  export GPUMIG_SOCKET=$socket
                     $bin/client/gpumigctl info
  stop with Ctrl-C (SIGINT drains in-flight work and exits 0)
MSG
exec "$bin/daemon/gpumigd" --backend=sim --socket="$socket" \
  --enable_fault_injection "$@"
