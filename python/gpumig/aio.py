"""gpumig.aio.AsyncClient: the asyncio variant of gpumig.Client (grpc.aio).

Same groups and names as the synchronous client for the core calls
(objects create/destroy/get/list/write/read/migrate/fill/checksum, fences
get/wait, regions list/get/evict, faults inject/clear/list, daemon
ping/info/stats/selftest), each a coroutine with a deadline and GpumigError
on failure. `faults.inject(...)` returns an armed fault usable as
`async with`, cleared on exit. Use one AsyncClient per event loop.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import grpc
import grpc.aio

from gpumig.client import (CHUNK_BYTES, DEFAULT_TIMEOUT_S, Tls,
                           _channel_options, channel_target, fault_kind,
                           fence_kind)
from gpumig.errors import GpumigError, from_rpc_error
from gpumig.v1 import daemon_pb2, daemon_pb2_grpc, faults_pb2, faults_pb2_grpc
from gpumig.v1 import fences_pb2, fences_pb2_grpc, objects_pb2
from gpumig.v1 import objects_pb2_grpc, regions_pb2, regions_pb2_grpc


class _Service:
    def __init__(self, client, stub, service):
        self._client, self._stub, self._service = client, stub, service

    async def _call(self, method, request, timeout=None, extra_s=0.0):
        deadline = (self._client.timeout if timeout is None else timeout) + extra_s
        try:
            return await getattr(self._stub, method)(request, timeout=deadline)
        except grpc.aio.AioRpcError as e:
            raise from_rpc_error(e, f"{self._service}.{method}") from None


class Objects(_Service):
    async def create(self, size_bytes: int, placements: Sequence[str] = (),
                     require_cpu_access: bool = False, pin: bool = False,
                     label: str = "", timeout: Optional[float] = None):
        return await self._call("Create", objects_pb2.CreateObjectRequest(
            size_bytes=size_bytes, placements=list(placements),
            require_cpu_access=require_cpu_access, pin=pin, label=label),
            timeout)

    async def destroy(self, handle: str, timeout: Optional[float] = None):
        await self._call("Destroy", objects_pb2.DestroyObjectRequest(
            handle=handle), timeout)

    async def get(self, handle: str, timeout: Optional[float] = None):
        return await self._call("Get", objects_pb2.GetObjectRequest(
            handle=handle), timeout)

    async def list(self, all_principals: bool = False,
                   timeout: Optional[float] = None) -> List[objects_pb2.Object]:
        out, token = [], ""
        while True:
            r = await self._call("List", objects_pb2.ListObjectsRequest(
                page_token=token, all_principals=all_principals), timeout)
            out.extend(r.objects)
            token = r.next_page_token
            if not token:
                return out

    async def write(self, handle: str, data: bytes, offset: int = 0,
                    timeout: Optional[float] = None) -> int:
        reqs = [objects_pb2.WriteRequest(handle=handle, offset=offset + at,
                                         data=data[at:at + CHUNK_BYTES])
                for at in range(0, max(len(data), 1), CHUNK_BYTES)]
        return (await self._call("Write", iter(reqs), timeout)).bytes_written

    async def read(self, handle: str, offset: int = 0, length: int = 0,
                   timeout: Optional[float] = None) -> bytes:
        deadline = self._client.timeout if timeout is None else timeout
        parts = []
        try:
            async for r in self._stub.Read(objects_pb2.ReadRequest(
                    handle=handle, offset=offset, length=length),
                    timeout=deadline):
                parts.append(r.data)
        except grpc.aio.AioRpcError as e:
            raise from_rpc_error(e, "ObjectService.Read") from None
        return b"".join(parts)

    async def migrate(self, handle: str, region: str, wait: bool = False,
                      timeout: Optional[float] = None):
        return await self._call("Migrate", objects_pb2.MigrateObjectRequest(
            handle=handle, region=region, wait=wait), timeout)

    async def fill(self, handle: str, value: int, offset: int = 0,
                   length: int = 0, wait: bool = False,
                   timeout: Optional[float] = None):
        return await self._call("Exec", objects_pb2.ExecRequest(
            fill=objects_pb2.FillOp(handle=handle, value=value, offset=offset,
                                    length=length), wait=wait), timeout)

    async def checksum(self, handle: str, offset: int = 0, length: int = 0,
                       timeout: Optional[float] = None) -> int:
        return (await self._call("Exec", objects_pb2.ExecRequest(
            checksum=objects_pb2.ChecksumOp(handle=handle, offset=offset,
                                            length=length), wait=True),
            timeout)).checksum


class Fences(_Service):
    async def get(self, fence_id: int, timeout: Optional[float] = None):
        return await self._call("Get", fences_pb2.GetFenceRequest(
            fence_id=fence_id), timeout)

    async def wait(self, fence_id: int, timeout_ms: int = 10000,
                   timeout: Optional[float] = None):
        return await self._call("Wait", fences_pb2.WaitFenceRequest(
            fence_id=fence_id, timeout_ms=timeout_ms), timeout,
            extra_s=timeout_ms / 1000.0)


class Regions(_Service):
    async def list(self, timeout: Optional[float] = None):
        return list((await self._call("List", regions_pb2.ListRegionsRequest(),
                                      timeout)).regions)

    async def get(self, name: str, timeout: Optional[float] = None):
        return await self._call("Get", regions_pb2.GetRegionRequest(name=name),
                                timeout)

    async def evict(self, name: str, wait: bool = False,
                    timeout: Optional[float] = None):
        return await self._call("Evict", regions_pb2.EvictRegionRequest(
            name=name, wait=wait), timeout)


class AsyncArmedFault:
    """An armed fault; `async with` clears it on exit, exception or not."""

    def __init__(self, faults: "Faults", fault):
        self._faults, self.fault, self.id = faults, fault, fault.id

    async def clear(self) -> None:
        try:
            await self._faults.clear(self.id)
        except GpumigError as e:
            if e.code != grpc.StatusCode.NOT_FOUND:
                raise

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.clear()


class Faults(_Service):
    async def inject(self, kind, next_n: Optional[int] = None,
                     probability: Optional[float] = None, seed: int = 0,
                     always: bool = False, region: str = "", op=None,
                     latency_us: int = 0, timeout: Optional[float] = None
                     ) -> AsyncArmedFault:
        if sum([next_n is not None, probability is not None, always]) != 1:
            raise GpumigError(grpc.StatusCode.INVALID_ARGUMENT,
                              "exactly one trigger: next_n=, probability= "
                              "or always=True")
        trig = faults_pb2.FaultTrigger()
        if next_n is not None:
            trig.next_n = next_n
        elif probability is not None:
            trig.probability.p, trig.probability.seed = probability, seed
        else:
            trig.always = True
        spec = faults_pb2.FaultSpec(kind=fault_kind(kind), trigger=trig,
                                    region=region, op=fence_kind(op),
                                    latency_us=latency_us)
        return AsyncArmedFault(self, await self._call(
            "Inject", faults_pb2.InjectFaultRequest(spec=spec), timeout))

    async def clear(self, fault_id: Optional[int] = None,
                    timeout: Optional[float] = None) -> int:
        req = (faults_pb2.ClearFaultsRequest(all=True) if fault_id is None
               else faults_pb2.ClearFaultsRequest(id=fault_id))
        return (await self._call("Clear", req, timeout)).cleared

    async def list(self, timeout: Optional[float] = None):
        return list((await self._call("List", faults_pb2.ListFaultsRequest(),
                                      timeout)).faults)


class Daemon(_Service):
    async def ping(self, timeout: Optional[float] = None) -> None:
        await self._call("Ping", daemon_pb2.PingRequest(), timeout)

    async def info(self, timeout: Optional[float] = None):
        return await self._call("GetInfo", daemon_pb2.GetInfoRequest(), timeout)

    async def stats(self, timeout: Optional[float] = None):
        return await self._call("GetStats", daemon_pb2.GetStatsRequest(),
                                timeout)

    async def selftest(self, bytes_per_region: int = 65536,
                       with_faults: bool = False,
                       timeout: Optional[float] = None):
        return await self._call("SelfTest", daemon_pb2.SelfTestRequest(
            bytes_per_region=bytes_per_region, with_faults=with_faults),
            timeout)


class AsyncClient:
    """gpumig.Client's asyncio twin: `async with AsyncClient(socket=...)`."""

    def __init__(self, socket: Optional[str] = None,
                 target: Optional[str] = None, tls: Optional[Tls] = None,
                 timeout: float = DEFAULT_TIMEOUT_S):
        self.address = channel_target(socket, target)
        self.timeout = timeout
        if tls is not None and socket is None:
            self._channel = grpc.aio.secure_channel(
                self.address, tls.credentials(), options=_channel_options(tls))
        else:
            self._channel = grpc.aio.insecure_channel(
                self.address, options=_channel_options(None))
        ch = self._channel
        self.objects = Objects(self, objects_pb2_grpc.ObjectServiceStub(ch),
                               "ObjectService")
        self.fences = Fences(self, fences_pb2_grpc.FenceServiceStub(ch),
                             "FenceService")
        self.regions = Regions(self, regions_pb2_grpc.RegionServiceStub(ch),
                               "RegionService")
        self.faults = Faults(self, faults_pb2_grpc.FaultServiceStub(ch),
                             "FaultService")
        self.daemon = Daemon(self, daemon_pb2_grpc.DaemonServiceStub(ch),
                             "DaemonService")

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()
