"""gpumig-rig: run a seeded campaign against several gpumigd at once.

  python3 -m gpumig.rig run CAMPAIGN.json --target unix:/path --target \
      host:port [--tls-ca ca.pem --tls-cert c.pem --tls-key c.key] \
      [--out results.json] [--junit results.xml]
  python3 -m gpumig.rig merge A.json B.json [--out merged.json]

Campaign (JSON, version 1): {"version": 1, "name": str, "case_timeout_s":
number, "cases": [{"name": str, "seed": 0..2^64-1, "objects": int,
"size": int (multiple of 4096), "steps": int, "regions": [str],
"faults": [{"kind": str, "next_n": int | "probability": float,
"region": str, "op": str}]}]}. Unknown fields and bad values are refused
with the field named. Each case: objects with seeded contents, seeded
migrations with every content checked after each step (no stale bytes:
a fresh object reads all zero). Per target and case: pass, fail, timeout
(a call hit its deadline: a hang), crash (the daemon is gone). The daemon's
SelfTest runs at the end of each target. Exit 0 when everything passed, 1
when something did not, 2 on bad usage or input.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import xml.sax.saxutils as sx

import grpc

from gpumig.client import Client, Tls
from gpumig.errors import GpumigError

RESULTS_VERSION = 1
CASE_FIELDS = {"name": str, "seed": int, "objects": int, "size": int,
               "steps": int, "regions": list, "faults": list}
FAULT_FIELDS = {"kind": str, "next_n": int, "probability": float,
                "region": str, "op": str}


class BadInput(Exception):
    pass


def _line_of(text: str, key: str) -> int:
    at = text.find(f'"{key}"')
    return text.count("\n", 0, at) + 1 if at >= 0 else 0


def load_campaign(path: str) -> dict:
    try:
        text = open(path).read()
    except OSError as e:
        raise BadInput(f"{path}: {e.strerror}")
    try:
        c = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}:{e.lineno}: not JSON: {e.msg}")

    def check(obj, fields, where):
        if not isinstance(obj, dict):
            raise BadInput(f"{path}: {where}: not an object")
        for k, v in obj.items():
            if k not in fields:
                raise BadInput(f"{path}:{_line_of(text, k)}: {where}: unknown "
                               f"field '{k}'")
            t = fields[k]
            ok = (isinstance(v, (int, float)) and not isinstance(v, bool)
                  if t is float else isinstance(v, t) and not
                  (t is int and isinstance(v, bool)))
            if not ok:
                raise BadInput(f"{path}:{_line_of(text, k)}: {where}.{k}: "
                               f"bad value {json.dumps(v)} (want {t.__name__})")

    check(c, {"version": int, "name": str, "case_timeout_s": float,
              "cases": list}, "campaign")
    if c.get("version") != 1:
        raise BadInput(f"{path}: campaign.version: must be 1")
    names = set()
    for i, case in enumerate(c.get("cases", [])):
        where = f"cases[{i}]"
        check(case, CASE_FIELDS, where)
        for f in ("name", "seed"):
            if f not in case:
                raise BadInput(f"{path}: {where}: missing field '{f}'")
        if not 0 <= case["seed"] < 1 << 64:
            raise BadInput(f"{path}:{_line_of(text, 'seed')}: {where}.seed: "
                           f"{case['seed']} out of range [0, 2^64)")
        if case["name"] in names:
            raise BadInput(f"{path}: {where}.name: duplicate '{case['name']}'")
        names.add(case["name"])
        if case.get("size", 65536) % 4096 or case.get("size", 65536) <= 0:
            raise BadInput(f"{path}: {where}.size: not a positive multiple "
                           f"of 4096")
        for j, f in enumerate(case.get("faults", [])):
            check(f, FAULT_FIELDS, f"{where}.faults[{j}]")
    return c


def _pattern(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


def run_case(c: Client, case: dict, trace: list) -> None:
    """Raises AssertionError on a failed check, GpumigError on a call."""
    rnd = random.Random(case["seed"])
    size = case.get("size", 65536)
    regions = case.get("regions", ["lmem", "smem"])
    armed = []
    try:
        for f in case.get("faults", []):
            kw = {k: f[k] for k in ("next_n", "probability") if k in f}
            if "probability" in kw:
                kw["seed"] = case["seed"]
            armed.append(c.faults.inject(f["kind"], region=f.get("region", ""),
                                         op=f.get("op"), **kw))
        objs = {}
        for i in range(case.get("objects", 2)):
            h = c.objects.create(size, placements=regions).object.handle
            got = c.objects.read(h)
            if got != bytes(size):
                raise AssertionError(f"stale bytes in fresh object {h}")
            data = _pattern(rnd.getrandbits(64), size)
            c.objects.write(h, data)
            objs[h] = data
        for step in range(case.get("steps", 4)):
            h = rnd.choice(sorted(objs))
            r = rnd.choice(regions)
            fence = c.objects.migrate(h, r, wait=True).fence
            trace.append([step, sorted(objs).index(h), r, fence.outcome,
                          fence.error_code])
            try:
                same = c.objects.read(h) == objs[h]
            except GpumigError as e:
                raise AssertionError(f"step {step}: object "
                                     f"#{sorted(objs).index(h)} unreadable "
                                     f"after migrate to {r}: {e.code.name}")
            if not same:
                raise AssertionError(f"step {step}: object "
                                     f"#{sorted(objs).index(h)} content "
                                     f"differs after migrate to {r}")
        for h in objs:
            c.objects.destroy(h)
    finally:
        for a in armed:
            try:
                a.clear()
            except GpumigError:
                pass


def one_case(c: Client, case: dict) -> dict:
    rec = {"name": case["name"], "seed": case["seed"], "trace": []}
    t0 = time.monotonic()
    try:
        run_case(c, case, rec["trace"])
        rec.update(status="pass", message="")
    except AssertionError as e:
        rec.update(status="fail", message=str(e))
    except GpumigError as e:
        if e.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            rec.update(status="timeout", message=str(e))
        elif e.code == grpc.StatusCode.UNAVAILABLE:
            rec.update(status="crash", message=str(e))
        else:
            rec.update(status="fail", message=str(e))
    rec["seconds"] = round(time.monotonic() - t0, 3)
    return rec


def connect(target: str, tls, timeout: float) -> Client:
    if target.startswith("unix:"):
        return Client(socket=target[5:], timeout=timeout)
    return Client(target=target, tls=tls, timeout=timeout)


def run_target(target: str, tls, campaign: dict) -> dict:
    timeout = float(campaign.get("case_timeout_s", 5))
    c = connect(target, tls, timeout)
    out = {"target": target, "cases": [], "selftest": None, "error": ""}
    try:
        c.daemon.ping(timeout=5)
    except GpumigError as e:
        out["error"] = f"not reachable: {e}"
        return out
    gone = False
    for case in campaign.get("cases", []):
        if gone:
            rec = {"name": case["name"], "seed": case["seed"], "trace": [],
                   "status": "crash", "message": "daemon gone earlier",
                   "seconds": 0}
        else:
            rec = one_case(c, case)
            gone = rec["status"] == "crash"
        out["cases"].append(rec)
    if not gone:
        try:
            st = c.daemon.selftest(timeout=timeout)
            out["selftest"] = {"passed": st.passed, "violations": st.violations}
        except GpumigError as e:
            out["selftest"] = {"passed": False, "error": str(e)}
    c.close()
    return out


def junit(results: dict) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<testsuites>"]
    for t in results["targets"]:
        lines.append(f'<testsuite name={sx.quoteattr(t["target"])} '
                     f'tests="{len(t["cases"])}">')
        for c in t["cases"]:
            lines.append(f'<testcase name={sx.quoteattr(c["name"])} '
                         f'time="{c["seconds"]}">')
            if c["status"] == "fail":
                lines.append(f'<failure message={sx.quoteattr(c["message"])}/>')
            elif c["status"] != "pass":
                lines.append(f'<error type="{c["status"]}" '
                             f'message={sx.quoteattr(c["message"])}/>')
            lines.append("</testcase>")
        lines.append("</testsuite>")
    lines.append("</testsuites>")
    return "\n".join(lines) + "\n"


def summary(results: dict) -> int:
    bad = 0
    for t in results["targets"]:
        counts = {}
        for c in t["cases"]:
            counts[c["status"]] = counts.get(c["status"], 0) + 1
        st = t.get("selftest") or {}
        line = " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        if t["error"]:
            line = t["error"]
            bad += 1
        bad += sum(v for k, v in counts.items() if k != "pass")
        print(f"{t['target']}: {line} selftest="
              f"{'passed' if st.get('passed') else 'not passed'}")
    return 1 if bad else 0


def replay(a) -> int:
    """Re-runs one recorded case; 0 when status, message and trace are
    identical to the record (bit for bit), 1 otherwise."""
    d = json.load(open(a.results))
    if d.get("version") != RESULTS_VERSION:
        raise BadInput(f"{a.results}: results version {d.get('version')}")
    cases = [c for c in d["campaign"]["cases"] if c["name"] == a.case]
    if not cases:
        raise BadInput(f"{a.results}: no case '{a.case}'")
    recs = [(t["target"], c) for t in d["targets"] for c in t["cases"]
            if c["name"] == a.case]
    target = a.target or recs[0][0]
    want = next((c for t, c in recs if t == target), recs[0][1])
    tls = (Tls(ca=a.tls_ca, cert=a.tls_cert, key=a.tls_key,
               server_name=a.tls_server_name) if a.tls_ca else None)
    c = connect(target, tls, float(d["campaign"].get("case_timeout_s", 5)))
    got = one_case(c, cases[0])
    c.close()
    keys = ("status", "message", "trace")
    same = all(json.dumps(got[k]) == json.dumps(want[k]) for k in keys)
    print(f"{a.case} on {target}: {got['status']} "
          f"({'reproduced' if same else 'NOT reproduced'})")
    if not same:
        for k in keys:
            if json.dumps(got[k]) != json.dumps(want[k]):
                print(f"  {k}: recorded {json.dumps(want[k])} now "
                      f"{json.dumps(got[k])}")
    return 0 if same else 1


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="gpumig-rig")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("campaign")
    r.add_argument("--target", action="append", required=True)
    r.add_argument("--tls-ca")
    r.add_argument("--tls-cert")
    r.add_argument("--tls-key")
    r.add_argument("--tls-server-name", default="localhost")
    r.add_argument("--out", default="results.json")
    r.add_argument("--junit")
    rp = sub.add_parser("replay")
    rp.add_argument("results")
    rp.add_argument("--case", required=True)
    rp.add_argument("--target", help="default: the case's first target")
    for x in ("--tls-ca", "--tls-cert", "--tls-key"):
        rp.add_argument(x)
    rp.add_argument("--tls-server-name", default="localhost")
    m = sub.add_parser("merge")
    m.add_argument("results", nargs="+")
    m.add_argument("--out")
    a = p.parse_args(argv)
    try:
        if a.cmd == "merge":
            merged = {"version": RESULTS_VERSION, "targets": []}
            for path in a.results:
                d = json.load(open(path))
                if d.get("version") != RESULTS_VERSION:
                    raise BadInput(f"{path}: results version "
                                   f"{d.get('version')} is not {RESULTS_VERSION}")
                merged.setdefault("campaign", d.get("campaign"))
                merged["targets"] += d["targets"]
            text = json.dumps(merged, indent=1)
            (open(a.out, "w").write(text) if a.out else print(text))
            return 0
        if a.cmd == "replay":
            return replay(a)
        campaign = load_campaign(a.campaign)
        tls = (Tls(ca=a.tls_ca, cert=a.tls_cert, key=a.tls_key,
                   server_name=a.tls_server_name) if a.tls_ca else None)
        outs = [None] * len(a.target)

        def work(i):
            outs[i] = run_target(a.target[i], tls, campaign)
        threads = [threading.Thread(target=work, args=(i,), daemon=True)
                   for i in range(len(a.target))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results = {"version": RESULTS_VERSION, "campaign": campaign,
                   "targets": outs}
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)
        if a.junit:
            with open(a.junit, "w") as f:
                f.write(junit(results))
        return summary(results)
    except (BadInput, OSError, json.JSONDecodeError, GpumigError) as e:
        print(f"gpumig-rig: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
