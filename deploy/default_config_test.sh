#!/usr/bin/env bash
# The shipped default config (deploy/gpumigd.textproto) is one the real
# gpumigd accepts: start //daemon:gpumigd with it (socket in a scratch
# directory; admin_group swapped for a group this host has, since
# gpumig-admin comes from sysusers.d), wait for it to listen, stop it with
# SIGTERM, and check the start line shows the file's values and the exit is
# clean.
set -euo pipefail

src="${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}"
[[ -f "${src}/deploy/gpumigd.textproto" ]] || src="$(cd "$(dirname "$0")/.." && pwd)"
gpumigd="${src}/daemon/gpumigd"
[[ -x "${gpumigd}" ]] || gpumigd="${src}/bazel-bin/daemon/gpumigd"
# A short directory: unix socket paths are limited to 107 bytes.
tmp="$(mktemp -d /tmp/gpumig-cfg.XXXXXX)"
pid=""
cleanup() {
  if [[ -n "${pid}" ]]; then kill -KILL "${pid}" 2>/dev/null || true; fi
  rm -rf "${tmp}"
}
trap cleanup EXIT

group="$(id -gn)"
sed "s|^admin_group: .*|admin_group: \"${group}\"|" \
  "${src}/deploy/gpumigd.textproto" >"${tmp}/gpumigd.textproto"
grep -q "^admin_group: \"${group}\"$" "${tmp}/gpumigd.textproto"

"${gpumigd}" --config="${tmp}/gpumigd.textproto" --socket="${tmp}/gpumig.sock" \
  2>"${tmp}/log" &
pid=$!
# Bounded wait for the "listening" line (or an early exit).
for _ in $(seq 1 300); do
  grep -q "event=listening" "${tmp}/log" && break
  kill -0 "${pid}" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q "event=listening" "${tmp}/log"; then
  echo "FAIL: gpumigd did not start with the default config:"
  cat "${tmp}/log"
  exit 1
fi
kill -TERM "${pid}"
rc=0
wait "${pid}" || rc=$?
pid=""
cat "${tmp}/log"
[[ "${rc}" -eq 0 ]] || { echo "FAIL: exit status ${rc} after SIGTERM"; exit 1; }
for want in 'event=start' 'backend=sim' \
  'regions=lmem:lmem:268435456:67108864,smem:smem:536870912:536870912' \
  'socket_mode=0660' "admin_group=${group}" 'fault_injection=off' \
  'log_level=info' 'fence_history=4096' 'work_threads=2' \
  'shutdown_grace_ms=5000' 'event=shutdown_complete'; do
  grep -q -- "${want}" "${tmp}/log" || { echo "FAIL: no ${want} in the log"; exit 1; }
done
echo "PASS"
