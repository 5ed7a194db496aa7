#!/usr/bin/python3
"""Checks that every metric a rule or dashboard query names is exported.

usage: metric_names.py SCRAPE RULES.yml DASHBOARD.json [PROMETHEUSRULE.yaml]

SCRAPE is a /metrics text exposition taken from a real gpumigd. Prints each
metric name the queries use and fails (exit 1) naming any that the scrape
does not contain. `up` is Prometheus' own series and always allowed. With a
PrometheusRule manifest, also fails unless its groups equal the rules file's.
"""
import json
import re
import sys

import yaml

METRIC = re.compile(r'\bgpumig_[a-zA-Z0-9_]+')
ALWAYS = {"up"}


def exported(path):
    names = set()
    with open(path) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            names.add(re.split(r'[{ ]', line, maxsplit=1)[0])
    return names


def strip_strings(expr):
    # Label values ("gpumig_x" inside quotes) are not metric names.
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def rule_exprs(rules):
    for g in rules["groups"]:
        for r in g["rules"]:
            yield "rule " + r.get("alert", r.get("record", "?")), r["expr"]


def dashboard_exprs(dash):
    for p in dash.get("panels", []):
        for t in p.get("targets", []):
            yield "panel " + repr(p.get("title")), t["expr"]
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            yield "variable " + v["name"], v["query"]


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    have = exported(argv[1])
    with open(argv[2]) as f:
        rules = yaml.safe_load(f)
    with open(argv[3]) as f:
        dash = json.load(f)
    missing = []
    used = set()
    for where, expr in list(rule_exprs(rules)) + list(dashboard_exprs(dash)):
        names = set(METRIC.findall(strip_strings(expr)))
        if where.startswith("rule ") and not names and "up{" not in expr:
            missing.append((where, "<no metric>"))
        for n in sorted(names):
            used.add(n)
            if n not in have and n not in ALWAYS:
                missing.append((where, n))
    print("metrics used by rules and dashboard:", " ".join(sorted(used)))
    if len(argv) == 5:
        with open(argv[4]) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        pr = [d for d in docs if d.get("kind") == "PrometheusRule"]
        if len(pr) != 1:
            print("FAIL: expected one PrometheusRule in", argv[4])
            return 1
        if pr[0]["spec"]["groups"] != rules["groups"]:
            print("FAIL: PrometheusRule groups differ from", argv[2],
                  "(regenerate with deploy/k8s/gen_prometheusrule.py)")
            return 1
    if missing:
        for where, n in missing:
            print(f"FAIL: {where} names {n}, which gpumigd does not export")
        return 1
    print("all", len(used), "metrics exported")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
