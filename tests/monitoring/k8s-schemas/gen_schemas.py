#!/usr/bin/python3
# Writes the JSON schemas in this directory (hand-written subset of the
# Kubernetes v1.29 OpenAPI and prometheus-operator v1 CRDs; see README.md).
# Run from tests/monitoring: /usr/bin/python3 k8s-schemas/gen_schemas.py
import json, os
def obj(props, required=(), extra=False):
    o = {"type": "object", "properties": props, "additionalProperties": extra}
    if required: o["required"] = list(required)
    return o
S = {"type": "string"}
I32 = {"type": "integer", "minimum": -2147483648, "maximum": 2147483647}
NN32 = {"type": "integer", "minimum": 0, "maximum": 2147483647}
B = {"type": "boolean"}
IOS = {"oneOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+%?$"}]}
QTY = {"oneOf": [{"type": "number"}, {"type": "string", "pattern": r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$"}]}
SMAP = {"type": "object", "additionalProperties": {"type": "string"}}
SLIST = {"type": "array", "items": S}
NAME = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", "maxLength": 253}
META = obj({"name": NAME, "namespace": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
            "labels": SMAP, "annotations": SMAP}, ["name"])
TMETA = obj({"labels": SMAP, "annotations": SMAP})
def top(api, kind, extra_props, required=("apiVersion", "kind", "metadata")):
    p = {"apiVersion": {"const": api}, "kind": {"const": kind}, "metadata": META}
    p.update(extra_props)
    s = obj(p, required)
    s["$schema"] = "http://json-schema.org/draft-07/schema#"
    return s
PROBE = obj({"exec": obj({"command": SLIST}), "initialDelaySeconds": NN32, "periodSeconds": {"type": "integer", "minimum": 1},
             "timeoutSeconds": {"type": "integer", "minimum": 1}, "failureThreshold": {"type": "integer", "minimum": 1},
             "successThreshold": {"type": "integer", "minimum": 1}, "terminationGracePeriodSeconds": {"type": "integer"}})
SECCOMP = obj({"type": {"enum": ["RuntimeDefault", "Unconfined", "Localhost"]}, "localhostProfile": S}, ["type"])
CSEC = obj({"allowPrivilegeEscalation": B, "readOnlyRootFilesystem": B, "privileged": B, "runAsNonRoot": B,
            "runAsUser": {"type": "integer", "minimum": 0}, "runAsGroup": {"type": "integer", "minimum": 0},
            "capabilities": obj({"add": SLIST, "drop": SLIST}), "seccompProfile": SECCOMP})
PSEC = obj({"runAsNonRoot": B, "runAsUser": {"type": "integer", "minimum": 0}, "runAsGroup": {"type": "integer", "minimum": 0},
            "fsGroup": {"type": "integer", "minimum": 0}, "supplementalGroups": {"type": "array", "items": {"type": "integer"}},
            "seccompProfile": SECCOMP})
ENV = obj({"name": S, "value": S, "valueFrom": obj({"fieldRef": obj({"apiVersion": S, "fieldPath": S}, ["fieldPath"])})}, ["name"])
PORT = obj({"name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 15},
            "containerPort": {"type": "integer", "minimum": 1, "maximum": 65535},
            "hostPort": {"type": "integer"}, "protocol": {"enum": ["TCP", "UDP", "SCTP"]}}, ["containerPort"])
CONTAINER = obj({"name": S, "image": S, "imagePullPolicy": {"enum": ["Always", "Never", "IfNotPresent"]},
                 "command": SLIST, "args": SLIST, "env": {"type": "array", "items": ENV},
                 "ports": {"type": "array", "items": PORT}, "livenessProbe": PROBE, "readinessProbe": PROBE, "startupProbe": PROBE,
                 "resources": obj({"requests": {"type": "object", "additionalProperties": QTY},
                                   "limits": {"type": "object", "additionalProperties": QTY}}),
                 "securityContext": CSEC,
                 "volumeMounts": {"type": "array", "items": obj({"name": S, "mountPath": S, "readOnly": B, "subPath": S}, ["name", "mountPath"])}},
                ["name"])
VOLUME = obj({"name": S,
              "configMap": obj({"name": S, "defaultMode": {"type": "integer"}, "optional": B}),
              "hostPath": obj({"path": S, "type": {"enum": ["", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice"]}}, ["path"]),
              "emptyDir": obj({"medium": S, "sizeLimit": QTY})}, ["name"])
PODSPEC = obj({"serviceAccountName": S, "automountServiceAccountToken": B, "nodeSelector": SMAP,
               "terminationGracePeriodSeconds": {"type": "integer", "minimum": 0}, "runtimeClassName": S,
               "priorityClassName": S, "securityContext": PSEC,
               "tolerations": {"type": "array", "items": obj({"key": S, "operator": {"enum": ["Exists", "Equal"]}, "value": S, "effect": S})},
               "containers": {"type": "array", "minItems": 1, "items": CONTAINER},
               "volumes": {"type": "array", "items": VOLUME}}, ["containers"])
SELECTOR = obj({"matchLabels": SMAP})
schemas = {
 "v1.Namespace": top("v1", "Namespace", {}),
 "v1.ServiceAccount": top("v1", "ServiceAccount", {"automountServiceAccountToken": B}),
 "v1.ConfigMap": top("v1", "ConfigMap", {"data": SMAP, "immutable": B}),
 "apps.v1.DaemonSet": top("apps/v1", "DaemonSet", {"spec": obj({
     "selector": SELECTOR, "minReadySeconds": NN32, "revisionHistoryLimit": NN32,
     "updateStrategy": obj({"type": {"enum": ["RollingUpdate", "OnDelete"]},
                            "rollingUpdate": obj({"maxSurge": IOS, "maxUnavailable": IOS})}),
     "template": obj({"metadata": TMETA, "spec": PODSPEC}, ["spec"])}, ["selector", "template"])}, ("apiVersion", "kind", "metadata", "spec")),
 "v1.Service": top("v1", "Service", {"spec": obj({
     "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]}, "clusterIP": S,
     "publishNotReadyAddresses": B, "selector": SMAP,
     "ports": {"type": "array", "items": obj({"name": S, "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                                              "targetPort": {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 65535}, {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 15}]}, "protocol": {"enum": ["TCP", "UDP", "SCTP"]}}, ["port"])}})}),
 "monitoring.coreos.com.v1.ServiceMonitor": top("monitoring.coreos.com/v1", "ServiceMonitor", {"spec": obj({
     "jobLabel": S, "selector": SELECTOR, "namespaceSelector": obj({"any": B, "matchNames": SLIST}),
     "endpoints": {"type": "array", "items": obj({"port": S, "path": S, "interval": {"type": "string", "pattern": "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"},
        "scheme": {"enum": ["http", "https"]},
        "relabelings": {"type": "array", "items": obj({"sourceLabels": SLIST, "separator": S, "targetLabel": S, "regex": S, "replacement": S,
            "action": {"enum": ["replace", "Replace", "keep", "Keep", "drop", "Drop", "labelmap", "LabelMap", "labeldrop", "LabelDrop", "labelkeep", "LabelKeep", "hashmod", "HashMod"]}})}})}},
     ["selector"])}, ("apiVersion", "kind", "metadata", "spec")),
 "monitoring.coreos.com.v1.PrometheusRule": top("monitoring.coreos.com/v1", "PrometheusRule", {"spec": obj({
     "groups": {"type": "array", "items": obj({"name": {"type": "string", "minLength": 1}, "interval": S,
        "rules": {"type": "array", "items": {"type": "object", "additionalProperties": False,
            "properties": {"alert": S, "record": S, "expr": {"type": ["string", "integer"]}, "for": S, "keep_firing_for": S,
                           "labels": SMAP, "annotations": SMAP}, "required": ["expr"]}}}, ["name", "rules"])}})}, ("apiVersion", "kind", "metadata", "spec")),
}
os.makedirs("k8s-schemas", exist_ok=True)
for n, s in schemas.items():
    with open(f"k8s-schemas/{n}.json", "w") as f:
        json.dump(s, f, indent=1, sort_keys=True); f.write("\n")
