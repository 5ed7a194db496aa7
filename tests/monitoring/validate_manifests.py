#!/usr/bin/python3
"""Validates rendered gpumig Kubernetes manifests offline.

usage: validate_manifests.py RENDER_PY SCHEMA_DIR OVERLAY_DIR...

Renders each overlay with deploy/k8s/render.py, checks every object against
the vendored JSON schema of its kind (k8s-schemas/, Kubernetes v1.29), and
checks what gpumig's deployment promises: one daemon per node replaced one
at a time (RollingUpdate, maxSurge 0, maxUnavailable 1), a read-only root,
ALL capabilities dropped, no privilege escalation, non-root, resource
requests, liveness only `gpumigctl ... ping`, metrics on the pod IP from the
downward API, a Service selecting the pods' metrics port, the ConfigMap the
DaemonSet mounts. Prints each problem; exit 1 if any.
"""
import importlib.util
import json
import os
import sys

import jsonschema


def load_render(path):
    spec = importlib.util.spec_from_file_location("render", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def schema_name(doc):
    api = doc.get("apiVersion", "")
    return api.replace("/", ".") + "." + str(doc.get("kind"))


def policy(docs, where):
    errs = []
    by = {}
    for d in docs:
        by.setdefault(d["kind"], []).append(d)
    ds_list = by.get("DaemonSet", [])
    if len(ds_list) != 1:
        return [f"{where}: expected one DaemonSet, got {len(ds_list)}"]
    ds = ds_list[0]
    spec = ds["spec"]
    us = spec.get("updateStrategy", {})
    ru = us.get("rollingUpdate", {})
    if us.get("type") != "RollingUpdate" or ru.get("maxSurge") != 0 or \
            ru.get("maxUnavailable") != 1:
        errs.append("DaemonSet: updateStrategy must be RollingUpdate with "
                    "maxSurge 0 and maxUnavailable 1 (two daemons must never "
                    "own one node's GPU)")
    pod = spec["template"]["spec"]
    labels = spec["template"].get("metadata", {}).get("labels", {})
    if spec["selector"].get("matchLabels", {}).items() - labels.items():
        errs.append("DaemonSet: selector does not match the pod labels")
    if not pod.get("nodeSelector"):
        errs.append("DaemonSet: no nodeSelector")
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        errs.append("DaemonSet: pod securityContext.runAsNonRoot is not true")
    c = [x for x in pod["containers"] if x["name"] == "gpumigd"]
    if not c:
        return errs + ["DaemonSet: no container gpumigd"]
    c = c[0]
    sc = c.get("securityContext", {})
    if sc.get("readOnlyRootFilesystem") is not True:
        errs.append("gpumigd: readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        errs.append("gpumigd: allowPrivilegeEscalation is not false")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
        errs.append("gpumigd: capabilities do not drop ALL")
    if sc.get("capabilities", {}).get("add"):
        errs.append("gpumigd: adds capabilities")
    req = c.get("resources", {}).get("requests", {})
    if not {"cpu", "memory"} <= set(req):
        errs.append("gpumigd: resources.requests needs cpu and memory")
    live = c.get("livenessProbe", {}).get("exec", {}).get("command", [])
    if not live or live[-1] != "ping" or "gpumigctl" not in live[0]:
        errs.append("gpumigd: livenessProbe must be `gpumigctl ... ping` "
                    "only (a wedged engine must not get the daemon killed)")
    if "readinessProbe" not in c:
        errs.append("gpumigd: no readinessProbe")
    args = c.get("args", [])
    if "--metrics_listen=$(POD_IP):9464" not in args:
        errs.append("gpumigd: metrics must listen on $(POD_IP):9464")
    env = {e["name"]: e for e in c.get("env", [])}
    if env.get("POD_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get(
            "fieldPath") != "status.podIP":
        errs.append("gpumigd: env POD_IP must come from status.podIP")
    ports = {p.get("name"): p for p in c.get("ports", [])}
    mounts = {m["name"] for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for m in mounts - set(vols):
        errs.append(f"gpumigd: volumeMount {m} has no volume")
    cms = {d["metadata"]["name"] for d in by.get("ConfigMap", [])}
    for v in vols.values():
        if "configMap" in v and v["configMap"]["name"] not in cms:
            errs.append(f"volume {v['name']}: no ConfigMap "
                        f"{v['configMap']['name']}")
    if vols.get("socket-dir", {}).get("hostPath", {}).get("path") != \
            "/run/gpumig":
        errs.append("volume socket-dir: must be hostPath /run/gpumig")
    for svc in by.get("Service", []):
        sel = svc["spec"].get("selector", {})
        if not sel or sel.items() - labels.items():
            errs.append(f"Service {svc['metadata']['name']}: selector "
                        "does not select the gpumigd pods")
        for p in svc["spec"].get("ports", []):
            tp = p.get("targetPort")
            if isinstance(tp, str) and tp not in ports:
                errs.append(f"Service {svc['metadata']['name']}: "
                            f"targetPort {tp} is no container port")
    if not by.get("ServiceMonitor") or not by.get("PrometheusRule"):
        errs.append("missing ServiceMonitor or PrometheusRule")
    ns = {d["metadata"]["name"] for d in by.get("Namespace", [])}
    for d in docs:
        n = d["metadata"].get("namespace")
        if d["kind"] != "Namespace" and n not in ns:
            errs.append(f"{d['kind']} {d['metadata']['name']}: namespace "
                        f"{n!r} is not created here")
    return [f"{where}: {e}" for e in errs]


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    render = load_render(argv[1])
    problems = []
    for overlay in argv[3:]:
        try:
            docs = render.render(overlay)
        except Exception as e:  # noqa: BLE001 -- report any render error
            problems.append(f"{overlay}: render failed: {e}")
            continue
        for d in docs:
            name = schema_name(d)
            path = os.path.join(argv[2], name + ".json")
            what = f"{overlay}: {d.get('kind')} " \
                   f"{d.get('metadata', {}).get('name')}"
            if not os.path.exists(path):
                problems.append(f"{what}: no schema {name} (kind not allowed)")
                continue
            with open(path) as f:
                schema = json.load(f)
            v = jsonschema.Draft7Validator(schema)
            for e in sorted(v.iter_errors(d), key=lambda e: list(e.path)):
                loc = "/".join(str(p) for p in e.absolute_path)
                problems.append(f"{what}: {loc}: {e.message}")
        problems += policy(docs, overlay)
        print(f"{overlay}: {len(docs)} objects rendered and checked")
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
