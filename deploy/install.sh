#!/usr/bin/env bash
# install.sh: builds gpumig and installs gpumigd, gpumigctl, the systemd
# unit, the sysusers.d/tmpfiles.d files, the default config and the docs.
#
#   deploy/install.sh                       # build, install under /usr/local
#   deploy/install.sh --prefix=/usr         # distribution layout (/etc config)
#   deploy/install.sh --destdir=/tmp/stage  # stage for packaging, no root
#   deploy/install.sh --uninstall           # remove exactly what it installed
#
# Layout (P = --prefix, S = --sysconfdir, U = --unitdir):
#   P/sbin/gpumigd  P/bin/gpumigctl
#   U/gpumigd.service
#   P/lib/sysusers.d/gpumig.conf  P/lib/tmpfiles.d/gpumig.conf
#     (/etc/sysusers.d, /etc/tmpfiles.d when P is not /usr or /usr/local:
#     systemd looks nowhere else)
#   S/gpumig/gpumigd.textproto          the config (kept if you edited it)
#   P/share/gpumig/gpumigd.textproto.default, gpumigd-tcp.conf,
#     gpumigd-cuda.conf (drop-in examples), install-manifest
#   P/share/doc/gpumig/operations.md, api.md
#
# Reruns are safe: files are replaced atomically (a running gpumigd keeps
# its old binary until restarted), an edited config is kept, and files a
# previous run installed that this one does not are removed. The manifest
# (P/share/gpumig/install-manifest) lists every file with its SHA-256 and
# every directory the installs created; --uninstall removes those files
# that are still as installed (an edited file stays, with a warning), then
# the manifest, then those directories that are empty.
#
# On the live system (no --destdir) it also creates the gpumig user
# (systemd-sysusers), the TLS directory (systemd-tmpfiles) and reloads
# systemd; it never starts, restarts or enables gpumigd: a restart drops
# every object, so that is the operator's call (`systemctl enable --now
# gpumigd`, `systemctl restart gpumigd`). --uninstall stops and disables
# gpumigd first; it leaves the gpumig user and groups in place.
set -euo pipefail

readonly DEFAULT_PREFIX=/usr/local
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src_root="$(cd "${here}/.." && pwd)"

usage() {
  cat <<EOF
Usage: $0 [options]

  --prefix=DIR       install under DIR (default ${DEFAULT_PREFIX})
  --sysconfdir=DIR   config directory (default: /etc for --prefix=/usr,
                     else PREFIX/etc)
  --unitdir=DIR      systemd unit directory (default: PREFIX/lib/systemd/system
                     for /usr and /usr/local, else /etc/systemd/system)
  --destdir=DIR      stage everything under DIR (alias --root); paths inside
                     files stay as if installed at /. No root needed; no
                     systemctl, sysusers or tmpfiles run
  --no-build         do not run bazel; take the binaries from --gpumigd and
                     --gpumigctl (default: bazel-bin/daemon/gpumigd and
                     bazel-bin/client/gpumigctl of this checkout)
  --gpumigd=PATH     prebuilt gpumigd (implies --no-build)
  --gpumigctl=PATH   prebuilt gpumigctl (implies --no-build)
  --uninstall        remove what a previous install put there (same
                     --prefix/--destdir)
  -h, --help         this text

Environment: BAZEL (default bazel) and BAZEL_STARTUP_OPTS (e.g.
--output_base=...) for the build.
EOF
}

die() {
  echo "install.sh: $*" >&2
  exit 1
}
note() { echo "install.sh: $*" >&2; }

prefix="${DEFAULT_PREFIX}"
sysconfdir=""
unitdir=""
destdir=""
build=1
gpumigd_bin=""
gpumigctl_bin=""
uninstall=0

for arg in "$@"; do
  case "${arg}" in
    --prefix=*) prefix="${arg#*=}" ;;
    --sysconfdir=*) sysconfdir="${arg#*=}" ;;
    --unitdir=*) unitdir="${arg#*=}" ;;
    --destdir=* | --root=*) destdir="${arg#*=}" ;;
    --no-build) build=0 ;;
    --gpumigd=*)
      gpumigd_bin="${arg#*=}"
      build=0
      ;;
    --gpumigctl=*)
      gpumigctl_bin="${arg#*=}"
      build=0
      ;;
    --uninstall) uninstall=1 ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      usage >&2
      die "unknown argument: ${arg}"
      ;;
  esac
done

# Paths: absolute, no trailing slash (except "/" itself, which is refused
# as a prefix).
normalize() {
  local p="$1" what="$2"
  [[ "${p}" == /* ]] || die "${what} must be an absolute path: ${p}"
  while [[ "${p}" == */ && "${p}" != / ]]; do p="${p%/}"; done
  printf '%s' "${p}"
}
prefix="$(normalize "${prefix}" --prefix)"
[[ "${prefix}" != / ]] || die "--prefix=/ is not supported (use /usr)"
if [[ -n "${destdir}" ]]; then
  destdir="$(normalize "${destdir}" --destdir)"
  [[ "${destdir}" != / ]] || destdir=""
fi

standard_prefix=0
case "${prefix}" in /usr | /usr/local) standard_prefix=1 ;; esac
if [[ -z "${sysconfdir}" ]]; then
  if [[ "${prefix}" == /usr ]]; then sysconfdir=/etc; else sysconfdir="${prefix}/etc"; fi
fi
sysconfdir="$(normalize "${sysconfdir}" --sysconfdir)"
if [[ -z "${unitdir}" ]]; then
  if ((standard_prefix)); then
    unitdir="${prefix}/lib/systemd/system"
  else
    unitdir=/etc/systemd/system
  fi
fi
unitdir="$(normalize "${unitdir}" --unitdir)"
if ((standard_prefix)); then
  sysusersdir="${prefix}/lib/sysusers.d"
  tmpfilesdir="${prefix}/lib/tmpfiles.d"
else
  sysusersdir=/etc/sysusers.d
  tmpfilesdir=/etc/tmpfiles.d
fi
sbindir="${prefix}/sbin"
bindir="${prefix}/bin"
datadir="${prefix}/share/gpumig"
docdir="${prefix}/share/doc/gpumig"
confdir="${sysconfdir}/gpumig"
config="${confdir}/gpumigd.textproto"
manifest="${datadir}/install-manifest"

live=0
[[ -n "${destdir}" ]] || live=1
if ((live)) && [[ "$(id -u)" -ne 0 ]]; then
  die "installing into / needs root (or stage with --destdir=DIR)"
fi
have_systemd=0
if ((live)) && [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
  have_systemd=1
fi

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# The manifest: "dir PATH" and "file SHA256 PATH" lines, PATH as on the
# installed system (without destdir).
declare -A old_files=() old_dirs=()
declare -a old_file_order=() old_dir_order=()
read_manifest() {
  local kind a b
  [[ -f "${destdir}${manifest}" ]] || return 0
  while read -r kind a b; do
    case "${kind}" in
      dir)
        old_dirs["${a}"]=1
        old_dir_order+=("${a}")
        ;;
      file)
        old_files["${b}"]="${a}"
        old_file_order+=("${b}")
        ;;
      "" | "#"*) ;;
      *) die "corrupt manifest ${destdir}${manifest}: ${kind} ${a} ${b}" ;;
    esac
  done <"${destdir}${manifest}"
}

declare -a new_dirs=() new_files=()
declare -A new_dir_set=() new_file_set=()

# Creates DIR and its missing parents, recording those this run created and
# those a previous run created (still ours).
make_dir() {
  local dir="$1" path="" part
  local -a parts
  IFS=/ read -r -a parts <<<"${dir#/}"
  for part in "${parts[@]}"; do
    path="${path}/${part}"
    if [[ ! -d "${destdir}${path}" ]]; then
      [[ ! -e "${destdir}${path}" ]] || die "${destdir}${path} exists and is not a directory"
      mkdir -m 0755 "${destdir}${path}"
      record_dir "${path}"
    elif [[ -n "${old_dirs[${path}]+x}" ]]; then
      record_dir "${path}"
    fi
  done
}
record_dir() {
  [[ -z "${new_dir_set[$1]+x}" ]] || return 0
  new_dir_set["$1"]=1
  new_dirs+=("$1")
}

# Installs SRC as DST with MODE: a temporary file in DST's directory renamed
# over DST, so a reader (or a running binary) never sees half a file.
put_file() {
  local src="$1" dst="$2" mode="$3" tmp
  make_dir "$(dirname "${dst}")"
  tmp="$(mktemp "${destdir}${dst}.XXXXXX")"
  cat "${src}" >"${tmp}"
  chmod "${mode}" "${tmp}"
  mv -f "${tmp}" "${destdir}${dst}"
  new_files+=("${dst}")
  new_file_set["${dst}"]=1
}

# The repo's files name the default /usr/local layout; rewrite those paths
# for this one.
rewrite() {
  sed -e "s|/usr/local/sbin/|${sbindir}/|g" \
    -e "s|/usr/local/bin/|${bindir}/|g" \
    -e "s|/usr/local/etc/gpumig|${confdir}|g" \
    -e "s|/usr/local/share/doc/gpumig|${docdir}|g" \
    -e "s|/usr/local/share/gpumig|${datadir}|g" \
    "$1"
}

write_manifest() {
  local tmp f d
  make_dir "${datadir}"
  tmp="$(mktemp "${destdir}${manifest}.XXXXXX")"
  {
    echo "# gpumig install manifest: written by deploy/install.sh, read by --uninstall."
    echo "# prefix=${prefix} sysconfdir=${sysconfdir} unitdir=${unitdir}"
    for d in "${new_dirs[@]}"; do echo "dir ${d}"; done
    for f in "${new_files[@]}"; do echo "file $(sha256 "${destdir}${f}") ${f}"; done
  } >"${tmp}"
  chmod 0644 "${tmp}"
  mv -f "${tmp}" "${destdir}${manifest}"
}

# Removes FILE if it is still what we installed (sha256 WANT).
remove_file() {
  local f="$1" want="$2"
  if [[ ! -e "${destdir}${f}" && ! -L "${destdir}${f}" ]]; then
    return 0
  fi
  if [[ -f "${destdir}${f}" && ! -L "${destdir}${f}" && "$(sha256 "${destdir}${f}")" == "${want}" ]]; then
    rm -f "${destdir}${f}"
  else
    note "keeping ${destdir}${f}: changed since it was installed"
  fi
}

# Removes the recorded directories that are empty, deepest first.
remove_dirs() {
  local i d
  for ((i = ${#old_dir_order[@]} - 1; i >= 0; i--)); do
    d="${old_dir_order[i]}"
    [[ -n "${new_dir_set[${d}]+x}" ]] && continue
    if [[ -d "${destdir}${d}" ]]; then
      rmdir "${destdir}${d}" 2>/dev/null || true
    fi
  done
}

systemctl_quiet() { systemctl "$@" >/dev/null 2>&1 || true; }

# --- uninstall ------------------------------------------------------------
if ((uninstall)); then
  [[ -f "${destdir}${manifest}" ]] ||
    die "no manifest at ${destdir}${manifest}: nothing installed there (wrong --prefix/--destdir?)"
  read_manifest
  if ((have_systemd)); then
    systemctl_quiet disable --now gpumigd.service
  fi
  for f in "${old_file_order[@]}"; do
    remove_file "${f}" "${old_files[${f}]}"
  done
  rm -f "${destdir}${manifest}"
  remove_dirs
  if [[ -e "${destdir}${config}" ]]; then
    note "left your ${destdir}${config} (edited, or not installed by install.sh)"
  fi
  if ((have_systemd)); then
    systemctl_quiet daemon-reload
  fi
  note "uninstalled from ${destdir:-/} (the gpumig user and groups stay; remove them with userdel gpumig; groupdel gpumig-admin)"
  exit 0
fi

# --- build ----------------------------------------------------------------
if ((build)); then
  command -v "${BAZEL:-bazel}" >/dev/null || die "bazel not found (or pass --no-build with prebuilt binaries)"
  # shellcheck disable=SC2086  # BAZEL_STARTUP_OPTS is a list of options.
  (cd "${src_root}" && "${BAZEL:-bazel}" ${BAZEL_STARTUP_OPTS:-} build -c opt //daemon:gpumigd //client:gpumigctl)
  # shellcheck disable=SC2086
  bazel_bin="$(cd "${src_root}" && "${BAZEL:-bazel}" ${BAZEL_STARTUP_OPTS:-} info -c opt bazel-bin 2>/dev/null)"
  gpumigd_bin="${bazel_bin}/daemon/gpumigd"
  gpumigctl_bin="${bazel_bin}/client/gpumigctl"
fi
: "${gpumigd_bin:=${src_root}/bazel-bin/daemon/gpumigd}"
: "${gpumigctl_bin:=${src_root}/bazel-bin/client/gpumigctl}"
for b in "${gpumigd_bin}" "${gpumigctl_bin}"; do
  [[ -f "${b}" && -x "${b}" ]] || die "no executable at ${b} (build first, or pass --gpumigd/--gpumigctl)"
done
for f in deploy/gpumigd.service deploy/gpumigd-tcp.conf deploy/gpumigd-cuda.conf \
  deploy/gpumigd.textproto deploy/sysusers.d/gpumig.conf \
  deploy/tmpfiles.d/gpumig.conf docs/operations.md docs/api.md; do
  [[ -f "${src_root}/${f}" ]] || die "missing ${src_root}/${f}"
done
if ((!standard_prefix)); then
  note "prefix ${prefix} is not /usr or /usr/local: the unit goes to ${unitdir}, sysusers/tmpfiles to /etc"
fi

# --- install --------------------------------------------------------------
if [[ -n "${destdir}" ]]; then
  mkdir -p "${destdir}"  # the staging root itself is not part of the install
fi
read_manifest
umask 022
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

put_file "${gpumigd_bin}" "${sbindir}/gpumigd" 0755
put_file "${gpumigctl_bin}" "${bindir}/gpumigctl" 0755
rewrite "${src_root}/deploy/gpumigd.service" >"${work}/gpumigd.service"
put_file "${work}/gpumigd.service" "${unitdir}/gpumigd.service" 0644
rewrite "${src_root}/deploy/gpumigd-tcp.conf" >"${work}/gpumigd-tcp.conf"
put_file "${work}/gpumigd-tcp.conf" "${datadir}/gpumigd-tcp.conf" 0644
rewrite "${src_root}/deploy/gpumigd-cuda.conf" >"${work}/gpumigd-cuda.conf"
put_file "${work}/gpumigd-cuda.conf" "${datadir}/gpumigd-cuda.conf" 0644
put_file "${src_root}/deploy/sysusers.d/gpumig.conf" "${sysusersdir}/gpumig.conf" 0644
rewrite "${src_root}/deploy/tmpfiles.d/gpumig.conf" >"${work}/tmpfiles.conf"
put_file "${work}/tmpfiles.conf" "${tmpfilesdir}/gpumig.conf" 0644
rewrite "${src_root}/deploy/gpumigd.textproto" >"${work}/gpumigd.textproto"
put_file "${work}/gpumigd.textproto" "${datadir}/gpumigd.textproto.default" 0644
put_file "${src_root}/docs/operations.md" "${docdir}/operations.md" 0644
put_file "${src_root}/docs/api.md" "${docdir}/api.md" 0644

# The config is the operator's once edited: replace it only if it is still
# exactly what a previous run installed.
if [[ ! -e "${destdir}${config}" ]]; then
  put_file "${work}/gpumigd.textproto" "${config}" 0644
elif [[ -n "${old_files[${config}]+x}" && "$(sha256 "${destdir}${config}")" == "${old_files[${config}]}" ]]; then
  put_file "${work}/gpumigd.textproto" "${config}" 0644
else
  make_dir "${confdir}"
  if ! cmp -s "${work}/gpumigd.textproto" "${destdir}${config}"; then
    note "kept your ${config}; the new default is ${datadir}/gpumigd.textproto.default"
  fi
fi

# Files an earlier run installed that this one did not: gone (if unedited).
for f in "${old_file_order[@]}"; do
  [[ -n "${new_file_set[${f}]+x}" || "${f}" == "${config}" ]] && continue
  remove_file "${f}" "${old_files[${f}]}"
done
remove_dirs
write_manifest

if ((live)); then
  if command -v systemd-sysusers >/dev/null; then
    systemd-sysusers "${sysusersdir}/gpumig.conf"
  else
    note "systemd-sysusers not found: create the user and groups of ${sysusersdir}/gpumig.conf yourself"
  fi
  if command -v systemd-tmpfiles >/dev/null; then
    systemd-tmpfiles --create "${tmpfilesdir}/gpumig.conf"
  fi
  if ((have_systemd)); then
    systemctl daemon-reload
    if systemctl is-active --quiet gpumigd.service; then
      note "gpumigd is running the old binary; 'systemctl restart gpumigd' upgrades it (and drops every object)"
    else
      note "start it with: systemctl enable --now gpumigd"
    fi
  fi
fi
note "installed under ${destdir:-/} (prefix ${prefix}); manifest ${destdir}${manifest}"
