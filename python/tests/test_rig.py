"""gpumig-rig against three daemons over mutual TLS: one SIGKILLed and one
wedged (SIGSTOP) mid-campaign; bad campaign files."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from gpumig.daemon import DaemonProcess


def rig(*args, cwd):
    return subprocess.run([sys.executable, "-m", "gpumig.rig", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def campaign(path, cases):
    path.write_text(json.dumps({"version": 1, "name": "t",
                                "case_timeout_s": 2, "cases": cases}, indent=1))
    return str(path)


def test_rig_reports_crash_and_timeout_apart(tmp_path, request):
    certs = tempfile.mkdtemp(prefix="gpumig-rig-")
    mk = os.path.join(os.environ["GPUMIG_ROOT"], "tests/testing/make_test_certs.sh")
    if subprocess.run([mk, certs, "client", "rig"]).returncode != 0:
        pytest.skip("openssl cannot make test certificates")
    ds = [DaemonProcess(request.config.getoption("gpumigd"), tls_dir=certs,
                        tls_admins=("CN=rig",))
          for _ in range(3)]
    try:
        for d in ds:
            d.start()
        cases = [{"name": f"c{i}", "seed": 1000 + i, "objects": 3,
                  "size": 65536, "steps": 60} for i in range(4)]
        camp = campaign(tmp_path / "camp.json", cases)
        targets = []
        for d in ds:
            targets += ["--target", f"127.0.0.1:{d.tcp_port}"]
        p = subprocess.Popen(
            [sys.executable, "-m", "gpumig.rig", "run", camp, *targets,
             "--tls-ca", f"{certs}/ca.pem", "--tls-cert", f"{certs}/client.pem",
             "--tls-key", f"{certs}/client.key", "--out", "r.json",
             "--junit", "r.xml"], cwd=tmp_path, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        # Mid-campaign: once both victims have run a few moves.
        for d in ds[1:]:
            with d.client(timeout=5) as c:
                end = time.monotonic() + 30
                while c.daemon.stats().fences_created < 8:
                    assert time.monotonic() < end and p.poll() is None
                    time.sleep(0.02)
        ds[1].proc.send_signal(signal.SIGKILL)
        ds[2].proc.send_signal(signal.SIGSTOP)
        out, err = p.communicate(timeout=90)
        assert p.returncode == 1, out + err
        assert "Traceback" not in err
        r = json.loads((tmp_path / "r.json").read_text())
        assert r["version"] == 1
        st = [[c["status"] for c in t["cases"]] for t in r["targets"]]
        assert st[0] == ["pass"] * 4, st
        assert "crash" in st[1] and "timeout" not in st[1], st
        assert "timeout" in st[2] and "crash" not in st[2], st
        assert r["targets"][0]["selftest"]["passed"] is True
        xml = (tmp_path / "r.xml").read_text()
        assert 'type="crash"' in xml and 'type="timeout"' in xml
    finally:
        for d in ds:
            if d.alive():
                d.proc.send_signal(signal.SIGCONT)
            d.stop()


@pytest.mark.parametrize("case,want", [
    ({"name": "a", "seed": 1, "sise": 4096}, "unknown field 'sise'"),
    ({"name": "a", "seed": -1}, "seed: -1 out of range"),
    ({"name": "a", "seed": 1 << 64}, "out of range"),
    ({"name": "a", "seed": 1, "steps": "many"}, "cases[0].steps: bad value"),
])
def test_bad_campaign_names_the_field(tmp_path, case, want):
    camp = campaign(tmp_path / "bad.json", [case])
    r = rig("run", camp, "--target", "unix:/nonexistent.sock", cwd=tmp_path)
    assert r.returncode == 2
    assert want in r.stderr and "Traceback" not in r.stderr
    assert ":" in r.stderr.split(want)[0]  # path:line


def test_target_that_is_not_a_daemon(tmp_path):
    camp = campaign(tmp_path / "c.json", [{"name": "a", "seed": 1}])
    r = rig("run", camp, "--target", "unix:/nonexistent/x.sock", cwd=tmp_path)
    assert r.returncode == 1
    assert "not reachable" in r.stdout and "Traceback" not in r.stderr


def test_replay_reproduces_a_failing_case(tmp_path, gpumigd):
    # memcpy banned and every blit failing: the move cannot fall back, the
    # object goes unknown-state and the content check fails.
    cases = [{"name": "ok", "seed": 7, "objects": 2, "size": 8192, "steps": 3,
              "regions": ["smem", "lmem"]},
             {"name": "doomed", "seed": 99, "objects": 2, "size": 8192,
              "steps": 6, "regions": ["smem", "lmem"],
              "faults": [{"kind": "ban_memcpy", "probability": 1.0},
                         {"kind": "fail_blit", "next_n": 3, "op": "migrate"}]}]
    camp = campaign(tmp_path / "c.json", cases)
    t = f"unix:{gpumigd.socket}"
    r = rig("run", camp, "--target", t, "--out", "r.json", cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    res = json.loads((tmp_path / "r.json").read_text())
    st = {c["name"]: c for c in res["targets"][0]["cases"]}
    assert st["ok"]["status"] == "pass"
    assert st["doomed"]["status"] == "fail", st["doomed"]
    r2 = rig("replay", "r.json", "--case", "doomed", cwd=tmp_path)
    assert r2.returncode == 0, r2.stdout + r2.stderr
    assert "reproduced" in r2.stdout and "NOT" not in r2.stdout
    m = rig("merge", "r.json", "r.json", "--out", "m.json", cwd=tmp_path)
    assert m.returncode == 0
    assert len(json.loads((tmp_path / "m.json").read_text())["targets"]) == 2
