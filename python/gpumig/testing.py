"""gpumig.testing: a pytest plugin (`pytest -p gpumig.testing`).

Fixtures:
  gpumigd         a fresh gpumigd per test (binary: --gpumigd=PATH or
                  $GPUMIGD), temp socket, small config, fault injection on.
  gpumig_client   a gpumig.Client on it.
  gpumig_seed     the test's seed (--gpumig-seed=N, else random), recorded
                  in the JUnit XML (user property "gpumig_seed") and printed
                  when the test fails.

On a failed test the daemon's log, fault list and stats are saved under
--gpumig-artifacts=DIR (default $TEST_UNDECLARED_OUTPUTS_DIR, else
./gpumig-artifacts)/<test id>/. Fault tests are serialised per daemon: the
`gpumig_faults` fixture holds an flock on the daemon's work directory.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import re

import pytest
from google.protobuf import json_format

from gpumig.daemon import DaemonProcess


def pytest_addoption(parser):
    g = parser.getgroup("gpumig")
    g.addoption("--gpumigd", default=os.environ.get("GPUMIGD"),
                help="path of the gpumigd binary to start")
    g.addoption("--gpumig-seed", type=int, default=None,
                help="seed for every test (default: random, printed)")
    g.addoption("--gpumig-artifacts", default=None,
                help="directory for failure artifacts")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "gpumig_rep_" + rep.when, rep)
    seed = getattr(item, "gpumig_seed", None)
    if seed is not None and rep.failed:
        rep.sections.append(("gpumig", f"gpumig seed: {seed} "
                             f"(rerun with --gpumig-seed={seed})"))


def _artifacts_dir(config) -> str:
    return (config.getoption("gpumig_artifacts")
            or os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
            or os.path.join(os.getcwd(), "gpumig-artifacts"))


@pytest.fixture
def gpumig_seed(request) -> int:
    seed = request.config.getoption("gpumig_seed")
    if seed is None:
        seed = random.SystemRandom().randrange(1 << 32)
    request.node.gpumig_seed = seed
    request.node.user_properties.append(("gpumig_seed", seed))
    return seed


@pytest.fixture
def gpumigd(request, gpumig_seed):
    binary = request.config.getoption("gpumigd")
    if not binary:
        pytest.skip("no gpumigd binary (--gpumigd or $GPUMIGD)")
    d = DaemonProcess(binary).start()
    yield d
    rep = getattr(request.node, "gpumig_rep_call", None)
    if rep is not None and rep.failed:
        _save_artifacts(request, d, gpumig_seed)
    d.stop()


def _save_artifacts(request, d: DaemonProcess, seed: int) -> None:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
    out = os.path.join(_artifacts_dir(request.config), name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "seed.txt"), "w") as f:
        f.write(f"{seed}\n")
    with open(os.path.join(out, "gpumigd.log"), "w") as f:
        f.write(d.log())
    if not d.alive():
        return
    try:
        with d.client(timeout=5) as c:
            with open(os.path.join(out, "faults.json"), "w") as f:
                json.dump([json_format.MessageToDict(x)
                           for x in c.faults.list()], f, indent=1)
            with open(os.path.join(out, "stats.json"), "w") as f:
                f.write(json_format.MessageToJson(c.daemon.stats()))
    except Exception as e:  # the daemon may be what failed
        with open(os.path.join(out, "error.txt"), "w") as f:
            f.write(f"{e}\n")


@pytest.fixture
def gpumig_client(gpumigd):
    with gpumigd.client() as c:
        yield c


@pytest.fixture
def gpumig_faults(gpumigd, gpumig_client):
    """client.faults, held exclusively (per daemon) for the test; clears
    every fault at the end."""
    with open(os.path.join(gpumigd.workdir, "faults.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield gpumig_client.faults
        finally:
            if gpumigd.alive():
                gpumig_client.faults.clear()
            fcntl.flock(lock, fcntl.LOCK_UN)
