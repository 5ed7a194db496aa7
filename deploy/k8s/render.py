#!/usr/bin/python3
"""Renders a kustomization directory: the subset of kustomize gpumig uses.

usage: render.py DIR   -> the manifests as a YAML stream on stdout

Debian 12 ships no kustomize, so this implements exactly what deploy/k8s
uses, with `kubectl kustomize DIR` semantics, and refuses anything else:
  resources (files, or directories with a kustomization.yaml), namespace,
  labels[].pairs (metadata.labels only, as kustomize without
  includeSelectors), configMapGenerator (name, files, behavior create or
  replace), generatorOptions.disableNameSuffixHash (must be true: no hash
  suffixes), patches[].path (strategic merge; lists of objects with a
  `name` merge by name, other lists are replaced).
"""
import copy
import os
import sys

import yaml

KNOWN = {"apiVersion", "kind", "resources", "namespace", "labels",
         "configMapGenerator", "generatorOptions", "patches"}


class RenderError(Exception):
    pass


def merge(base, patch):
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            out[k] = merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    if (isinstance(base, list) and isinstance(patch, list) and
            all(isinstance(x, dict) and "name" in x for x in base + patch)):
        out = [copy.deepcopy(x) for x in base]
        new = []
        for item in patch:
            for i, old in enumerate(out):
                if old["name"] == item["name"]:
                    out[i] = merge(old, item)
                    break
            else:
                new.append(copy.deepcopy(item))
        return new + out  # kustomize: new items first, in patch order
    return copy.deepcopy(patch)


def key(doc):
    return (doc.get("kind"), doc.get("metadata", {}).get("name"))


def render(d):
    path = os.path.join(d, "kustomization.yaml")
    if not os.path.exists(path):
        raise RenderError(f"{d}: no kustomization.yaml")
    with open(path) as f:
        k = yaml.safe_load(f) or {}
    unknown = set(k) - KNOWN
    if unknown:
        raise RenderError(f"{path}: unsupported fields {sorted(unknown)}")
    docs = []
    for r in k.get("resources", []):
        p = os.path.join(d, r)
        if os.path.isdir(p):
            docs += render(p)
        else:
            with open(p) as f:
                docs += [x for x in yaml.safe_load_all(f) if x]
    opts = k.get("generatorOptions", {})
    for g in k.get("configMapGenerator", []):
        if opts.get("disableNameSuffixHash") is not True:
            raise RenderError(f"{path}: configMapGenerator needs "
                              "generatorOptions.disableNameSuffixHash: true "
                              "in this renderer")
        extra = set(g) - {"name", "files", "behavior"}
        if extra:
            raise RenderError(f"{path}: unsupported configMapGenerator "
                              f"fields {sorted(extra)}")
        data = {}
        for fn in g.get("files", []):
            with open(os.path.join(d, fn)) as f:
                data[os.path.basename(fn)] = f.read()
        cm = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": g["name"]}, "data": data}
        behavior = g.get("behavior", "create")
        idx = [i for i, x in enumerate(docs) if key(x) == key(cm)]
        if behavior == "create":
            if idx:
                raise RenderError(f"{path}: ConfigMap {g['name']} exists")
            docs.append(cm)
        elif behavior == "replace":
            if not idx:
                raise RenderError(f"{path}: no ConfigMap {g['name']} to replace")
            cm["metadata"] = docs[idx[0]]["metadata"]
            docs[idx[0]] = cm
        else:
            raise RenderError(f"{path}: behavior {behavior!r} unsupported")
    for p in k.get("patches", []):
        if set(p) != {"path"}:
            raise RenderError(f"{path}: only patches[].path is supported")
        with open(os.path.join(d, p["path"])) as f:
            patch = yaml.safe_load(f)
        idx = [i for i, x in enumerate(docs) if key(x) == key(patch)]
        if not idx:
            raise RenderError(f"{path}: patch {p['path']} matches no "
                              f"resource {key(patch)}")
        docs[idx[0]] = merge(docs[idx[0]], patch)
    ns = k.get("namespace")
    for x in docs:
        if ns and x.get("kind") != "Namespace":
            x.setdefault("metadata", {})["namespace"] = ns
        for l in k.get("labels", []):
            if set(l) != {"pairs"}:
                raise RenderError(f"{path}: only labels[].pairs is supported")
            x.setdefault("metadata", {}).setdefault("labels", {}).update(
                l["pairs"])
    return docs


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        docs = render(argv[1])
    except (RenderError, OSError, yaml.YAMLError) as e:
        print(f"render.py: {e}", file=sys.stderr)
        return 1
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False, width=1000)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
