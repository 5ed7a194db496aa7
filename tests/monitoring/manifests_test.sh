#!/usr/bin/env bash
# deploy/k8s rendered offline (deploy/k8s/render.py, the kustomize subset we
# use) and checked against the vendored Kubernetes v1.29 schemas and the
# deployment's promises (validate_manifests.py). Then broken copies of the
# manifests must each fail, naming the problem. Needs python3-yaml and
# python3-jsonschema; skips (GPUMIG_SKIP) without them.
set -uo pipefail
PY=/usr/bin/python3
if ! $PY -c 'import yaml, jsonschema' 2>/dev/null; then
  echo "GPUMIG_SKIP: python3-yaml or python3-jsonschema not installed"
  exit 0
fi
for root in "${RUNFILES_DIR:-}" "${TEST_SRCDIR:-}" "$PWD/.."; do
  if [ -n "$root" ] && [ -e "$root/gpumig/deploy/k8s/render.py" ]; then R=$root/gpumig; break; fi
done
R=${R:-$PWD}
TMP=${TEST_TMPDIR:-$(mktemp -d)}
VALIDATE="$PY $R/tests/monitoring/validate_manifests.py"
SCHEMAS=$R/tests/monitoring/k8s-schemas
fail() { echo "FAIL: $*" >&2; exit 1; }

$VALIDATE "$R/deploy/k8s/render.py" "$SCHEMAS" \
  "$R/deploy/k8s/overlays/sim" "$R/deploy/k8s/overlays/cuda" ||
  fail "the shipped manifests do not validate"

# broken NAME FILE SED_EXPR EXPECTED_MESSAGE: a copy of deploy/k8s with one
# edit must fail validation and say EXPECTED_MESSAGE.
broken() {
  local name=$1 file=$2 expr=$3 want=$4 d=$TMP/$1
  rm -rf "$d" && mkdir -p "$d" && cp -rL "$R/deploy/k8s/." "$d/" && chmod -R u+w "$d"
  sed -i -e "$expr" "$d/$file"
  cmp -s "$d/$file" "$R/deploy/k8s/$file" && fail "$name: the edit changed nothing"
  if $VALIDATE "$d/render.py" "$SCHEMAS" "$d/overlays/sim" "$d/overlays/cuda" \
      >"$d.out" 2>&1; then
    fail "$name: a broken manifest validated"
  fi
  grep -qF -- "$want" "$d.out" || { cat "$d.out"; fail "$name: no '$want'"; }
  echo "ok: $name rejected"
}
broken misspelt_field base/daemonset.yaml \
  's/readOnlyRootFilesystem: true/readOnlyRootFilesytem: true/' \
  "Additional properties are not allowed ('readOnlyRootFilesytem'"
broken port_type base/daemonset.yaml \
  's/containerPort: 9464/containerPort: "9464"/' "'9464' is not of type 'integer'"
broken max_surge base/daemonset.yaml 's/maxSurge: 0/maxSurge: 1/' "maxSurge 0"
broken liveness_health base/daemonset.yaml \
  's/"--timeout=2s", "ping"\]/"--timeout=2s", "stats"]/' "livenessProbe must be"
broken caps base/daemonset.yaml 's/drop: \["ALL"\]/drop: ["NET_RAW"]/' \
  "capabilities do not drop ALL"
broken bad_enum base/service.yaml 's/protocol: TCP/protocol: tcp/' \
  "'tcp' is not one of"
broken no_configmap base/daemonset.yaml 's/name: gpumigd-config/name: gpumigd-cfg/' \
  "no ConfigMap gpumigd-cfg"
broken bad_patch overlays/cuda/daemonset-cuda.yaml 's/name: gpumigd$/name: gpumig/' \
  "matches no resource"
broken unsupported overlays/sim/kustomization.yaml '$a commonLabels: {a: b}' \
  "unsupported fields ['commonLabels']"
echo PASS
