#!/usr/bin/env bash
# Checks deploy/'s systemd files with systemd's own tools:
#  - `systemd-analyze verify` on gpumigd.service alone and with each shipped
#    drop-in (the unit's ExecStart= binary must exist, so a stub stands in
#    for /usr/local/sbin/gpumigd);
#  - `systemd-analyze security --offline=true`: the exposure score stays at
#    or below 2.0 ("OK"; docs/operations.md quotes it);
#  - the settings the issue requires are present;
#  - as root: systemd-sysusers and systemd-tmpfiles apply the sysusers.d and
#    tmpfiles.d files to a scratch root.
# Skips where systemd-analyze is not installed: prints "GPUMIG_SKIP: ..."
# and exits 0, so ./test.sh counts the target as skipped, not passed.
set -euo pipefail

if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "GPUMIG_SKIP: systemd-analyze not installed (Debian: apt-get install systemd)"
  exit 0
fi

deploy="${TEST_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}/${TEST_WORKSPACE:-}/deploy"
[[ -f "${deploy}/gpumigd.service" ]] || deploy="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d "${TEST_TMPDIR:-/tmp}/verify.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

mkdir -p "${tmp}/bin"
printf '#!/bin/sh\nexit 0\n' >"${tmp}/bin/gpumigd"
chmod 0755 "${tmp}/bin/gpumigd"

# stage DIR [DROPIN...]: the unit (and drop-ins) with the stub binary.
stage() {
  local dir="$1" d
  shift
  mkdir -p "${dir}/gpumigd.service.d"
  sed "s|/usr/local/sbin/gpumigd|${tmp}/bin/gpumigd|g" \
    "${deploy}/gpumigd.service" >"${dir}/gpumigd.service"
  for d in "$@"; do
    sed "s|/usr/local/sbin/gpumigd|${tmp}/bin/gpumigd|g" \
      "${deploy}/${d}" >"${dir}/gpumigd.service.d/${d}"
  done
}

check_unit() {
  local name="$1" out score
  shift
  local dir="${tmp}/${name}"
  stage "${dir}" "$@"
  if ! out="$(systemd-analyze verify "${dir}/gpumigd.service" 2>&1)"; then
    fail "${name}: systemd-analyze verify failed:"$'\n'"${out}"
  elif grep -q "gpumigd" <<<"${out}"; then
    # Warnings about other units (a container's own) are not ours.
    fail "${name}: systemd-analyze verify warned:"$'\n'"${out}"
  else
    echo "ok: ${name}: systemd-analyze verify"
  fi
  if systemd-analyze security --help 2>/dev/null | grep -q -- "--offline"; then
    out="$(systemd-analyze security --offline=true "${dir}/gpumigd.service" 2>&1 || true)"
    score="$(sed -n 's/.*Overall exposure level for gpumigd.service: \([0-9.]*\).*/\1/p' <<<"${out}")"
    if [[ -z "${score}" ]]; then
      fail "${name}: no exposure score in:"$'\n'"${out}"
    elif ! awk -v s="${score}" 'BEGIN { exit !(s <= 2.0) }'; then
      fail "${name}: exposure ${score} > 2.0:"$'\n'"${out}"
    else
      echo "ok: ${name}: systemd-analyze security exposure ${score}"
    fi
  else
    echo "skip: ${name}: this systemd-analyze has no security --offline"
  fi
}

check_unit base
check_unit tcp gpumigd-tcp.conf
check_unit cuda gpumigd-cuda.conf
check_unit tcp+cuda gpumigd-tcp.conf gpumigd-cuda.conf

# The settings the issue asks for, so a later edit cannot drop one quietly.
unit="${deploy}/gpumigd.service"
for want in \
  '^Type=notify$' '^WatchdogSec=[1-9]' '^User=gpumig$' '^Group=gpumig$' \
  '^RuntimeDirectory=gpumig$' '^RuntimeDirectoryMode=0750$' \
  '^Restart=on-failure$' '^NoNewPrivileges=yes$' '^ProtectSystem=strict$' \
  '^ProtectHome=yes$' '^PrivateTmp=yes$' '^ProtectKernelTunables=yes$' \
  '^ProtectKernelModules=yes$' '^ProtectKernelLogs=yes$' \
  '^ProtectControlGroups=yes$' '^RestrictAddressFamilies=AF_UNIX( |$)' \
  '^RestrictNamespaces=yes$' '^LockPersonality=yes$' \
  '^SystemCallFilter=@system-service$' '^CapabilityBoundingSet=$' \
  '^DevicePolicy=closed$' '^DeviceAllow=char-drm rw$' \
  '^SupplementaryGroups=video render$'; do
  grep -Eq "${want}" "${unit}" || fail "gpumigd.service lacks ${want}"
done
grep -Eq '^DeviceAllow=char-nvidia\* rw$' "${deploy}/gpumigd-cuda.conf" ||
  fail "gpumigd-cuda.conf lacks the NVIDIA DeviceAllow="
if grep -Eq '/tmp' "${unit}"; then fail "gpumigd.service mentions /tmp"; fi

# sysusers.d / tmpfiles.d, applied to a scratch root (root only: the tools
# chown what they create).
if [[ "$(id -u)" -eq 0 ]] && command -v systemd-sysusers >/dev/null; then
  root="${tmp}/root"
  mkdir -p "${root}/etc"
  if out="$(systemd-sysusers --root="${root}" "${deploy}/sysusers.d/gpumig.conf" 2>&1)"; then
    grep -q '^gpumig:x:[0-9]*:[0-9]*:gpumig daemon:/nonexistent:.*nologin$' "${root}/etc/passwd" ||
      fail "sysusers: no gpumig user in: $(cat "${root}/etc/passwd")"
    for g in gpumig gpumig-admin video render; do
      grep -q "^${g}:" "${root}/etc/group" || fail "sysusers: no group ${g}"
    done
    echo "ok: systemd-sysusers"
    if command -v systemd-tmpfiles >/dev/null; then
      if out="$(systemd-tmpfiles --root="${root}" --create "${deploy}/tmpfiles.d/gpumig.conf" 2>&1)"; then
        tls="${root}/usr/local/etc/gpumig/tls"
        gid="$(awk -F: '$1 == "gpumig" { print $3 }' "${root}/etc/group")"
        [[ "$(stat -c '%a %u %g' "${tls}")" == "750 0 ${gid}" ]] ||
          fail "tmpfiles: ${tls} is $(stat -c '%a %u %g' "${tls}"), want 750 0 ${gid}"
        echo "ok: systemd-tmpfiles"
      else
        fail "systemd-tmpfiles: ${out}"
      fi
    fi
  else
    fail "systemd-sysusers: ${out}"
  fi
else
  echo "skip: sysusers/tmpfiles (needs root and systemd-sysusers)"
fi

if ((failures)); then
  echo "${failures} check(s) failed"
  exit 1
fi
echo "PASS"
