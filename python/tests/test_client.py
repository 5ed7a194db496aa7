"""gpumig.Client against a real gpumigd (the gpumig.testing fixtures)."""

import os
import subprocess
import sys
import tempfile

import grpc
import pytest

import gpumig
from gpumig.v1 import common_pb2

PAGE = 4096


def test_daemon_info_stats_ping_selftest(gpumig_client):
    c = gpumig_client
    c.daemon.ping()
    info = c.daemon.info()
    assert info.backend == "sim" and info.fault_injection_enabled
    assert info.caller.is_admin
    assert c.daemon.stats().objects == 0
    st = c.daemon.selftest(bytes_per_region=65536)
    assert st.passed and st.violations == 0


def test_object_round_trip_and_migrate(gpumig_client, gpumig_seed):
    c = gpumig_client
    data = bytes((gpumig_seed + i) % 251 for i in range(16 * PAGE))
    created = c.objects.create(len(data), placements=["lmem", "smem"],
                               label="py")
    h = created.object.handle
    assert c.fences.wait(created.fence_id).state == common_pb2.FENCE_STATE_SIGNALED
    assert c.objects.write(h, data) == len(data)
    assert c.objects.read(h) == data
    assert c.objects.read(h, offset=PAGE, length=PAGE) == data[PAGE:2 * PAGE]
    m = c.objects.migrate(h, "smem", wait=True)
    assert m.fence.outcome == gpumig.FENCE_OUTCOME_BLIT_OK
    assert c.fences.get(m.fence_id).handle == h
    assert c.objects.get(h).region == "smem"
    assert c.objects.read(h) == data
    assert [o.handle for o in c.objects.list()] == [h]
    assert c.objects.pin(h) == 1 and c.objects.unpin(h) == 0
    c.objects.fill(h, 0x5A, length=PAGE, wait=True)
    assert c.objects.read(h, length=PAGE) == b"\x5a" * PAGE
    assert c.objects.checksum(h) != 0
    assert {r.name for r in c.regions.list()} == {"lmem", "smem"}
    assert c.regions.get("smem").objects == 1
    c.regions.evict("lmem", wait=True)
    c.objects.destroy(h)
    assert c.objects.list() == []


def test_errors_carry_the_grpc_code(gpumig_client):
    c = gpumig_client
    with pytest.raises(gpumig.GpumigError) as e:
        c.objects.get("obj-999999")
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(gpumig.GpumigError) as e:
        c.objects.create(PAGE, placements=["nope"])
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(gpumig.GpumigError) as e:
        c.regions.get("nope")
    assert e.value.code in (grpc.StatusCode.NOT_FOUND,
                            grpc.StatusCode.INVALID_ARGUMENT)
    with pytest.raises(gpumig.GpumigError) as e:
        c.faults.inject("frobnicate", next_n=1)
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(gpumig.GpumigError) as e:
        c.faults.inject("fail_blit")
    assert "exactly one trigger" in e.value.details


def test_no_daemon_is_unavailable():
    d = tempfile.mkdtemp(prefix="gpumig-none-")
    with gpumig.Client(socket=os.path.join(d, "none.sock"), timeout=2) as c:
        with pytest.raises(gpumig.GpumigError) as e:
            c.daemon.ping()
    assert e.value.code == grpc.StatusCode.UNAVAILABLE


def test_injected_blit_failure_falls_back(gpumig_client, gpumig_faults):
    c = gpumig_client
    h = c.objects.create(8 * PAGE, placements=["lmem", "smem"]).object.handle
    data = os.urandom(8 * PAGE)
    c.objects.write(h, data)
    with gpumig_faults.inject("fail_blit", next_n=1, op="migrate") as f:
        fence = c.objects.migrate(h, "smem", wait=True).fence
        assert fence.outcome == gpumig.FENCE_OUTCOME_FALLBACK_COPY
        assert fence.error_code == 0
        assert f.refresh().fired_count == 1
    assert c.faults.list() == []
    assert c.objects.read(h) == data


def test_fault_context_manager_clears_on_exception(gpumig_client,
                                                   gpumig_faults):
    with pytest.raises(KeyError):
        with gpumig_faults.inject("ban_memcpy", always=True):
            assert len(gpumig_client.faults.list()) == 1
            raise KeyError("boom")
    assert gpumig_client.faults.list() == []


FAILING = '''
def test_fails(gpumig_client):
    gpumig_client.objects.create(4096, placements=["smem"])
    assert False, "deliberate"
'''


def test_fixture_saves_artifacts_on_failure(tmp_path, request):
    (tmp_path / "test_fail.py").write_text(FAILING)
    art = tmp_path / "art"
    env = dict(os.environ)
    env.pop("TEST_UNDECLARED_OUTPUTS_DIR", None)
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "gpumig.testing",
         "-p", "no:cacheprovider", f"--gpumigd={request.config.getoption('gpumigd')}",
         "--gpumig-seed=4242", f"--gpumig-artifacts={art}",
         str(tmp_path / "test_fail.py")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "gpumig seed: 4242" in r.stdout
    dirs = list(art.iterdir())
    assert len(dirs) == 1
    names = {p.name for p in dirs[0].iterdir()}
    assert {"seed.txt", "gpumigd.log", "faults.json", "stats.json"} <= names
    assert '"objects": "1"' in (dirs[0] / "stats.json").read_text()


def test_async_client_round_trip_and_fault(gpumigd):
    import asyncio
    from gpumig.aio import AsyncClient

    async def body():
        async with AsyncClient(socket=gpumigd.socket, timeout=10) as c:
            await c.daemon.ping()
            assert (await c.daemon.info()).backend == "sim"
            h = (await c.objects.create(4 * PAGE, placements=["lmem", "smem"])
                 ).object.handle
            data = os.urandom(4 * PAGE)
            assert await c.objects.write(h, data) == len(data)
            with pytest.raises(KeyError):
                async with await c.faults.inject("fail_blit", next_n=1):
                    f = (await c.objects.migrate(h, "smem", wait=True)).fence
                    assert f.outcome == gpumig.FENCE_OUTCOME_FALLBACK_COPY
                    raise KeyError("boom")
            assert await c.faults.list() == []
            assert await c.objects.read(h) == data
            with pytest.raises(gpumig.GpumigError) as e:
                await c.objects.get("obj-999999")
            assert e.value.code == grpc.StatusCode.NOT_FOUND
            await c.objects.destroy(h)

    asyncio.run(body())


def test_watch_streams_migration_outcomes(gpumig_client):
    c = gpumig_client
    h = c.objects.create(PAGE, placements=["lmem", "smem"]).object.handle
    with c.fences.watch(handle=h, timeout=10) as w:
        c.objects.migrate(h, "smem", wait=True)
        ev = next(iter(w))
    assert ev.handle == h and ev.fence.target_region == "smem"


def test_mutual_tls_target(request):
    certs = tempfile.mkdtemp(prefix="gpumig-tls-")
    mk = os.path.join(os.environ["GPUMIG_ROOT"], "tests/testing/make_test_certs.sh")
    if subprocess.run([mk, certs, "client", "py-rig"]).returncode != 0:
        pytest.skip("openssl cannot make test certificates")
    from gpumig.daemon import DaemonProcess
    d = DaemonProcess(request.config.getoption("gpumigd"), tls_dir=certs)
    d.start()
    try:
        tls = gpumig.Tls(ca=f"{certs}/ca.pem", cert=f"{certs}/client.pem",
                         key=f"{certs}/client.key", server_name="localhost")
        with gpumig.Client(target=f"127.0.0.1:{d.tcp_port}", tls=tls,
                           timeout=5) as c:
            info = c.daemon.info()
            assert info.caller.name == "CN=py-rig" and not info.caller.is_admin
            with pytest.raises(gpumig.GpumigError) as e:
                c.faults.list()
            assert e.value.code == grpc.StatusCode.PERMISSION_DENIED
        # No client certificate: the handshake is refused.
        with gpumig.Client(target=f"127.0.0.1:{d.tcp_port}",
                           tls=gpumig.Tls(ca=f"{certs}/ca.pem",
                                          server_name="localhost"),
                           timeout=3) as c:
            with pytest.raises(gpumig.GpumigError) as e:
                c.daemon.ping()
            assert e.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        d.stop()
