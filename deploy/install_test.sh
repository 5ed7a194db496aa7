#!/usr/bin/env bash
# deploy/install.sh into scratch roots (--destdir) with stub binaries
# (--no-build): the installed tree, path rewriting for another prefix,
# idempotent reruns, a kept config edit, upgrades, and --uninstall removing
# exactly what was installed (and nothing it did not install).
set -euo pipefail

src="${TEST_SRCDIR:-}/${TEST_WORKSPACE:-}"
[[ -f "${src}/deploy/install.sh" ]] || src="$(cd "$(dirname "$0")/.." && pwd)"
install_sh="${src}/deploy/install.sh"
tmp="$(mktemp -d "${TEST_TMPDIR:-/tmp}/install.XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
check() {  # check DESCRIPTION COMMAND...
  local what="$1"
  shift
  if "$@"; then echo "ok: ${what}"; else fail "${what}"; fi
}

mkdir -p "${tmp}/stubs"
printf '#!/bin/sh\necho gpumigd stub v1\n' >"${tmp}/stubs/gpumigd"
printf '#!/bin/sh\necho gpumigctl stub v1\n' >"${tmp}/stubs/gpumigctl"
chmod 0755 "${tmp}/stubs/gpumigd" "${tmp}/stubs/gpumigctl"

run_install() {  # run_install ROOT [ARGS...]
  local root="$1"
  shift
  "${install_sh}" --destdir="${root}" --no-build \
    --gpumigd="${tmp}/stubs/gpumigd" --gpumigctl="${tmp}/stubs/gpumigctl" "$@"
}
# Every path under ROOT with its type, mode and (files) content hash.
tree() {
  (cd "$1" && find . -mindepth 1 -printf '%y %m %p\n' | sort |
    while read -r type mode path; do
      if [[ "${type}" == f ]]; then
        echo "${type} ${mode} ${path} $(sha256sum "${path}" | cut -d' ' -f1)"
      else
        echo "${type} ${mode} ${path}"
      fi
    done)
}
paths() { (cd "$1" && find . -mindepth 1 | sort); }

# --- 1. default prefix into a root that already has something of its own.
root="${tmp}/root"
mkdir -p "${root}/usr/local/bin" "${root}/etc"
echo "not ours" >"${root}/usr/local/bin/foreign"
before="$(tree "${root}")"
run_install "${root}" 2>"${tmp}/log1"

expected_files=(
  usr/local/sbin/gpumigd
  usr/local/bin/gpumigctl
  usr/local/lib/systemd/system/gpumigd.service
  usr/local/lib/sysusers.d/gpumig.conf
  usr/local/lib/tmpfiles.d/gpumig.conf
  usr/local/etc/gpumig/gpumigd.textproto
  usr/local/share/gpumig/gpumigd.textproto.default
  usr/local/share/gpumig/gpumigd-tcp.conf
  usr/local/share/gpumig/gpumigd-cuda.conf
  usr/local/share/gpumig/install-manifest
  usr/local/share/doc/gpumig/operations.md
  usr/local/share/doc/gpumig/api.md
)
actual_files="$(cd "${root}" && find . -type f ! -name foreign | sed 's|^\./||' | sort)"
want_files="$(printf '%s\n' "${expected_files[@]}" | sort)"
check "installed files are exactly the expected ones" \
  test "${actual_files}" == "${want_files}"
if [[ "${actual_files}" != "${want_files}" ]]; then
  diff <(echo "${want_files}") <(echo "${actual_files}") || true
fi
check "binaries are 0755" test "$(stat -c %a "${root}/usr/local/sbin/gpumigd" "${root}/usr/local/bin/gpumigctl" | sort -u)" == 755
check "the unit is 0644" test "$(stat -c %a "${root}/usr/local/lib/systemd/system/gpumigd.service")" == 644
check "gpumigd is the given binary" cmp -s "${tmp}/stubs/gpumigd" "${root}/usr/local/sbin/gpumigd"
check "the unit runs the installed binary with the installed config" \
  grep -qx 'ExecStart=/usr/local/sbin/gpumigd --config=/usr/local/etc/gpumig/gpumigd.textproto' \
  "${root}/usr/local/lib/systemd/system/gpumigd.service"
check "the config is the default" cmp -s "${src}/deploy/gpumigd.textproto" "${root}/usr/local/etc/gpumig/gpumigd.textproto"
check "no temporary files are left" test -z "$(cd "${root}" && find . -name '*.??????')"
check "the manifest lists every installed file but itself" \
  test "$(grep -c '^file ' "${root}/usr/local/share/gpumig/install-manifest")" -eq $((${#expected_files[@]} - 1))
check "the manifest does not claim pre-existing directories" \
  bash -c "! grep -qE '^dir (/usr/local/bin|/etc)$' '${root}/usr/local/share/gpumig/install-manifest'"

# --- 2. a rerun changes nothing.
first="$(tree "${root}")"
run_install "${root}" 2>"${tmp}/log2"
check "a rerun leaves the tree identical" test "$(tree "${root}")" == "${first}"

# --- 2b. a file an earlier version installed, and this one does not, goes.
old="/usr/local/share/gpumig/retired.conf"
echo "from an older release" >"${root}${old}"
echo "file $(sha256sum "${root}${old}" | cut -d' ' -f1) ${old}" >>"${root}/usr/local/share/gpumig/install-manifest"
run_install "${root}" 2>/dev/null
check "a rerun removes a file only an older install had" test ! -e "${root}${old}"
check "and is back to the same tree" test "$(tree "${root}")" == "${first}"

# --- 3. an edited config survives reruns and uninstall.
echo 'log_level: "debug"' >>"${root}/usr/local/etc/gpumig/gpumigd.textproto"
edited="$(sha256sum <"${root}/usr/local/etc/gpumig/gpumigd.textproto")"
run_install "${root}" 2>"${tmp}/log3"
check "a rerun keeps the edited config" test "$(sha256sum <"${root}/usr/local/etc/gpumig/gpumigd.textproto")" == "${edited}"
check "and says so" grep -q "kept your /usr/local/etc/gpumig/gpumigd.textproto" "${tmp}/log3"
check "and no longer claims it" \
  bash -c "! grep -q 'gpumigd.textproto$' <(grep -v default '${root}/usr/local/share/gpumig/install-manifest')"

# --- 4. an upgrade replaces the binary.
printf '#!/bin/sh\necho gpumigd stub v2\n' >"${tmp}/stubs/gpumigd"
run_install "${root}" 2>"${tmp}/log4"
check "an upgrade installs the new binary" cmp -s "${tmp}/stubs/gpumigd" "${root}/usr/local/sbin/gpumigd"

# --- 5. uninstall: only what was installed goes; edits and the foreign
# file stay, with the directories holding them.
echo "# local edit" >>"${root}/usr/local/share/gpumig/gpumigd-tcp.conf"
"${install_sh}" --destdir="${root}" --uninstall 2>"${tmp}/log5"
left="$(paths "${root}")"
want_left="$(printf '%s\n' ./etc ./usr ./usr/local ./usr/local/bin ./usr/local/bin/foreign \
  ./usr/local/etc ./usr/local/etc/gpumig ./usr/local/etc/gpumig/gpumigd.textproto \
  ./usr/local/share ./usr/local/share/gpumig ./usr/local/share/gpumig/gpumigd-tcp.conf | sort)"
check "uninstall leaves only the foreign file and the edited config" test "${left}" == "${want_left}"
[[ "${left}" == "${want_left}" ]] || diff <(echo "${want_left}") <(echo "${left}") || true
check "uninstall names the edited file it kept" grep -q "keeping .*/usr/local/share/gpumig/gpumigd-tcp.conf: changed" "${tmp}/log5"
check "uninstall names the config it left" grep -q "left your .*/usr/local/etc/gpumig/gpumigd.textproto" "${tmp}/log5"
check "uninstall twice fails: nothing is recorded any more" \
  bash -c "! '${install_sh}' --destdir='${root}' --uninstall 2>/dev/null"

# --- 6. install + uninstall restores the root exactly.
root2="${tmp}/root2"
mkdir -p "${root2}/usr/local/bin"
echo "not ours" >"${root2}/usr/local/bin/foreign"
before2="$(tree "${root2}")"
run_install "${root2}" 2>/dev/null
run_install "${root2}" 2>/dev/null
"${install_sh}" --destdir="${root2}" --uninstall 2>/dev/null
check "install, rerun, uninstall: the root is as before" test "$(tree "${root2}")" == "${before2}"

# --- 7. another prefix: paths inside files follow it; units go where
# systemd looks.
root3="${tmp}/root3"
mkdir -p "${root3}"
run_install "${root3}" --prefix=/opt/gpumig/ 2>"${tmp}/log7"
unit3="${root3}/etc/systemd/system/gpumigd.service"
check "--prefix=/opt/gpumig puts the unit in /etc/systemd/system" test -f "${unit3}"
check "and sysusers/tmpfiles in /etc" test -f "${root3}/etc/sysusers.d/gpumig.conf" -a -f "${root3}/etc/tmpfiles.d/gpumig.conf"
check "the unit runs /opt/gpumig/sbin/gpumigd with /opt/gpumig/etc/gpumig/gpumigd.textproto" \
  grep -qx 'ExecStart=/opt/gpumig/sbin/gpumigd --config=/opt/gpumig/etc/gpumig/gpumigd.textproto' "${unit3}"
check "the unit's docs link follows" grep -qx 'Documentation=file:/opt/gpumig/share/doc/gpumig/operations.md' "${unit3}"
check "tmpfiles follows the config directory" grep -q '^d /opt/gpumig/etc/gpumig/tls 0750 root gpumig -$' "${root3}/etc/tmpfiles.d/gpumig.conf"
check "the cuda drop-in runs the installed binary" \
  grep -q '^ExecStart=/opt/gpumig/sbin/gpumigd ' "${root3}/opt/gpumig/share/gpumig/gpumigd-cuda.conf"
check "no /usr/local path is left in installed text files" \
  bash -c "! grep -rl --exclude=operations.md --exclude=api.md --exclude=gpumigd --exclude=gpumigctl /usr/local '${root3}'"
"${install_sh}" --destdir="${root3}" --prefix=/opt/gpumig --uninstall 2>/dev/null
check "and uninstall empties that root" test -z "$(paths "${root3}")"

# --- 8. --prefix=/usr: the distribution layout.
root4="${tmp}/root4"
mkdir -p "${root4}"
run_install "${root4}" --prefix=/usr 2>/dev/null
check "--prefix=/usr: config in /etc/gpumig" test -f "${root4}/etc/gpumig/gpumigd.textproto"
check "--prefix=/usr: unit in /usr/lib/systemd/system" test -f "${root4}/usr/lib/systemd/system/gpumigd.service"
check "--prefix=/usr: ExecStart" grep -qx 'ExecStart=/usr/sbin/gpumigd --config=/etc/gpumig/gpumigd.textproto' \
  "${root4}/usr/lib/systemd/system/gpumigd.service"

# --- 9. bad invocations change nothing.
root5="${tmp}/root5"
mkdir -p "${root5}"
check "a relative prefix is refused" bash -c "! '${install_sh}' --destdir='${root5}' --no-build --prefix=usr 2>/dev/null"
check "a missing binary is refused" bash -c "! '${install_sh}' --destdir='${root5}' --gpumigd=/nonexistent --gpumigctl=/nonexistent 2>/dev/null"
check "an unknown option is refused" bash -c "! '${install_sh}' --destdir='${root5}' --bogus 2>/dev/null"
check "uninstall without a manifest is refused" bash -c "! '${install_sh}' --destdir='${root5}' --uninstall 2>/dev/null"
check "and none of that wrote anything" test -z "$(paths "${root5}")"
: "${before}"

if ((failures)); then
  echo "${failures} check(s) failed"
  exit 1
fi
echo "PASS"
