"""gpumig.Client: a typed, synchronous client of gpumigd.

Mirrors the C++ library (client/gpumig_client.h) grouped by service:

  client.objects  create/destroy/get/list/write/read/migrate/pin/unpin/
                  fill/copy/checksum, the batch RPCs, shared buffers
  client.fences   get/wait/watch
  client.regions  list/get/evict
  client.faults   inject (a context manager)/clear/list
  client.daemon   ping/info/stats/selftest

Every call has a deadline: `timeout=` seconds on the call, else the
client's `timeout` (default 30 s). Every failure raises GpumigError with the
gRPC code (gpumig.errors). Results are the generated protobuf messages
(gpumig.v1.*_pb2, typed by their .pyi stubs).

Thread-safety: a Client may be shared by threads (gRPC channels are);
SharedBuffer is not thread-safe.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
import socket as _socket
import struct
from typing import Iterable, Iterator, List, Optional, Sequence, Union

import grpc

from gpumig.errors import GpumigError, from_rpc_error
from gpumig.v1 import common_pb2, daemon_pb2, daemon_pb2_grpc
from gpumig.v1 import faults_pb2, faults_pb2_grpc
from gpumig.v1 import fences_pb2, fences_pb2_grpc
from gpumig.v1 import objects_pb2, objects_pb2_grpc
from gpumig.v1 import regions_pb2, regions_pb2_grpc

DEFAULT_TIMEOUT_S = 30.0
# Write chunks: the daemon's Limits.max_chunk_bytes default.
CHUNK_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class Tls:
    """Mutual-TLS material (PEM file paths) for a TCP target."""

    ca: str
    cert: Optional[str] = None
    key: Optional[str] = None
    server_name: Optional[str] = None

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path: Optional[str]) -> Optional[bytes]:
            if path is None:
                return None
            try:
                with open(path, "rb") as f:
                    return f.read()
            except OSError as e:
                raise GpumigError(grpc.StatusCode.INVALID_ARGUMENT,
                                  f"cannot read TLS file {path}: {e.strerror}")
        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca), private_key=read(self.key),
            certificate_chain=read(self.cert))


def fault_kind(kind: Union[str, int]) -> int:
    """"fail_blit" / "FAULT_KIND_FAIL_BLIT" / enum value -> FaultKind value."""
    return _enum(faults_pb2.FaultKind, "FAULT_KIND_", kind, "fault kind")


def fence_kind(kind: Union[str, int, None]) -> int:
    """"migrate" / "FENCE_KIND_MIGRATE" / enum value -> FenceKind value."""
    if kind is None or kind == "":
        return common_pb2.FENCE_KIND_UNSPECIFIED
    return _enum(common_pb2.FenceKind, "FENCE_KIND_", kind, "op")


def _enum(enum, prefix: str, value: Union[str, int], what: str) -> int:
    if isinstance(value, int):
        if value not in enum.values():
            raise GpumigError(grpc.StatusCode.INVALID_ARGUMENT,
                              f"unknown {what} {value}")
        return value
    name = value.upper()
    if not name.startswith(prefix):
        name = prefix + name
    try:
        v = enum.Value(name)
    except ValueError:
        names = ", ".join(n[len(prefix):].lower() for n in enum.keys()
                          if not n.endswith("UNSPECIFIED"))
        raise GpumigError(grpc.StatusCode.INVALID_ARGUMENT,
                          f"unknown {what} '{value}' (one of {names})") from None
    if v == 0:
        raise GpumigError(grpc.StatusCode.INVALID_ARGUMENT,
                          f"unknown {what} '{value}'")
    return v


class _Service:
    def __init__(self, client: "Client", stub, service: str):
        self._client = client
        self._stub = stub
        self._service = service

    def _call(self, method: str, request, timeout: Optional[float] = None,
              extra_s: float = 0.0):
        fn = getattr(self._stub, method)
        deadline = (self._client.timeout if timeout is None else timeout) + extra_s
        try:
            return fn(request, timeout=deadline)
        except grpc.RpcError as e:
            raise from_rpc_error(e, f"{self._service}.{method}") from None


class Objects(_Service):
    """ObjectService: buffer objects, their content and placement."""

    def create(self, size_bytes: int, placements: Sequence[str] = (),
               require_cpu_access: bool = False, pin: bool = False,
               label: str = "", timeout: Optional[float] = None
               ) -> objects_pb2.CreateObjectResponse:
        """Creates an object; `.object` and `.fence_id` (its clear).

        RESOURCE_EXHAUSTED: no room even after eviction, or quota.
        INVALID_ARGUMENT: size 0 / not page-aligned policy, unknown region."""
        return self._call("Create", objects_pb2.CreateObjectRequest(
            size_bytes=size_bytes, placements=list(placements),
            require_cpu_access=require_cpu_access, pin=pin, label=label),
            timeout)

    def destroy(self, handle: str, timeout: Optional[float] = None) -> None:
        """Destroys an object (NOT_FOUND if unknown)."""
        self._call("Destroy", objects_pb2.DestroyObjectRequest(handle=handle),
                   timeout)

    def get(self, handle: str, timeout: Optional[float] = None
            ) -> objects_pb2.Object:
        return self._call("Get", objects_pb2.GetObjectRequest(handle=handle),
                          timeout)

    def list(self, all_principals: bool = False, page_size: int = 0,
             timeout: Optional[float] = None) -> List[objects_pb2.Object]:
        """Every object (pages followed); all_principals needs admin."""
        out: List[objects_pb2.Object] = []
        token = ""
        while True:
            resp = self._call("List", objects_pb2.ListObjectsRequest(
                page_size=page_size, page_token=token,
                all_principals=all_principals), timeout)
            out.extend(resp.objects)
            token = resp.next_page_token
            if not token:
                return out

    def write(self, handle: str, data: bytes, offset: int = 0,
              chunk_bytes: int = CHUNK_BYTES,
              timeout: Optional[float] = None) -> int:
        """Writes `data` at `offset` (one client stream); bytes written."""
        view = memoryview(data)

        def requests() -> Iterator[objects_pb2.WriteRequest]:
            if len(view) == 0:
                yield objects_pb2.WriteRequest(handle=handle, offset=offset)
                return
            for at in range(0, len(view), chunk_bytes):
                yield objects_pb2.WriteRequest(
                    handle=handle, offset=offset + at,
                    data=bytes(view[at:at + chunk_bytes]))
        return self._call("Write", requests(), timeout).bytes_written

    def read(self, handle: str, offset: int = 0, length: int = 0,
             timeout: Optional[float] = None) -> bytes:
        """Reads `length` bytes at `offset` (0: to the end)."""
        deadline = self._client.timeout if timeout is None else timeout
        parts = []
        try:
            for resp in self._stub.Read(objects_pb2.ReadRequest(
                    handle=handle, offset=offset, length=length),
                    timeout=deadline):
                parts.append(resp.data)
        except grpc.RpcError as e:
            raise from_rpc_error(e, "ObjectService.Read") from None
        return b"".join(parts)

    def migrate(self, handle: str, region: str, wait: bool = False,
                timeout: Optional[float] = None
                ) -> objects_pb2.MigrateObjectResponse:
        """Moves an object; `.fence_id`, and `.fence` when wait=True."""
        return self._call("Migrate", objects_pb2.MigrateObjectRequest(
            handle=handle, region=region, wait=wait), timeout)

    def pin(self, handle: str, timeout: Optional[float] = None) -> int:
        return self._call("Pin", objects_pb2.PinObjectRequest(handle=handle),
                          timeout).pin_count

    def unpin(self, handle: str, timeout: Optional[float] = None) -> int:
        return self._call("Unpin", objects_pb2.UnpinObjectRequest(
            handle=handle), timeout).pin_count

    def fill(self, handle: str, value: int, offset: int = 0, length: int = 0,
             wait: bool = False, timeout: Optional[float] = None
             ) -> objects_pb2.ExecResponse:
        """Engine fill of [offset, offset+length) with byte `value`."""
        return self._call("Exec", objects_pb2.ExecRequest(
            fill=objects_pb2.FillOp(handle=handle, value=value, offset=offset,
                                    length=length), wait=wait), timeout)

    def copy(self, src: str, dst: str, length: int = 0, src_offset: int = 0,
             dst_offset: int = 0, wait: bool = False,
             timeout: Optional[float] = None) -> objects_pb2.ExecResponse:
        """Engine copy between two objects."""
        return self._call("Exec", objects_pb2.ExecRequest(
            copy=objects_pb2.CopyOp(src_handle=src, dst_handle=dst,
                                    src_offset=src_offset,
                                    dst_offset=dst_offset, length=length),
            wait=wait), timeout)

    def checksum(self, handle: str, offset: int = 0, length: int = 0,
                 timeout: Optional[float] = None) -> int:
        """FNV-1a 64 of a range, computed by the daemon."""
        resp = self._call("Exec", objects_pb2.ExecRequest(
            checksum=objects_pb2.ChecksumOp(handle=handle, offset=offset,
                                            length=length), wait=True),
            timeout)
        return resp.checksum

    # --- Batches (one fence array for many entries) ------------------------

    def create_batch(self, entries: Iterable[dict], wait: bool = False,
                     timeout: Optional[float] = None
                     ) -> objects_pb2.BatchResponse:
        """entries: dicts of create()'s keyword arguments."""
        return self._call("CreateBatch", objects_pb2.CreateBatchRequest(
            entries=[objects_pb2.CreateObjectRequest(**e) for e in entries],
            wait=wait), timeout)

    def migrate_batch(self, handles: Sequence[str], region: str = "",
                      per_entry_regions: Sequence[str] = (),
                      wait: bool = False, timeout: Optional[float] = None
                      ) -> objects_pb2.BatchResponse:
        """Migrates every handle to `region` (or per_entry_regions[i])."""
        entries = [objects_pb2.MigrateBatchEntry(
            handle=h, region=(per_entry_regions[i] if per_entry_regions
                              else "")) for i, h in enumerate(handles)]
        return self._call("MigrateBatch", objects_pb2.MigrateBatchRequest(
            entries=entries, region=region, wait=wait), timeout)

    def destroy_batch(self, handles: Sequence[str], wait: bool = False,
                      timeout: Optional[float] = None
                      ) -> objects_pb2.BatchResponse:
        return self._call("DestroyBatch", objects_pb2.DestroyBatchRequest(
            handles=list(handles), wait=wait), timeout)

    def exec_batch(self, entries: Sequence[objects_pb2.ExecRequest],
                   wait: bool = False, timeout: Optional[float] = None
                   ) -> objects_pb2.BatchResponse:
        return self._call("ExecBatch", objects_pb2.ExecBatchRequest(
            entries=list(entries), wait=wait), timeout)

    # --- Shared buffers ------------------------------------------------------

    def write_from_buffer(self, handle: str, buffer: "SharedBuffer",
                          length: int, offset: int = 0,
                          buffer_offset: int = 0,
                          timeout: Optional[float] = None) -> int:
        return self._call("WriteFromBuffer", objects_pb2.WriteFromBufferRequest(
            handle=handle, offset=offset, buffer_id=buffer.buffer_id,
            buffer_offset=buffer_offset, length=length), timeout).bytes_written

    def read_to_buffer(self, handle: str, buffer: "SharedBuffer", length: int,
                       offset: int = 0, buffer_offset: int = 0,
                       timeout: Optional[float] = None) -> int:
        return self._call("ReadToBuffer", objects_pb2.ReadToBufferRequest(
            handle=handle, offset=offset, buffer_id=buffer.buffer_id,
            buffer_offset=buffer_offset, length=length), timeout).bytes_read


class Fences(_Service):
    """FenceService: the state and outcome of moves, clears and execs."""

    def get(self, fence_id: int, timeout: Optional[float] = None
            ) -> common_pb2.FenceStatus:
        return self._call("Get", fences_pb2.GetFenceRequest(fence_id=fence_id),
                          timeout)

    def wait(self, fence_id: int, timeout_ms: int = 10000,
             timeout: Optional[float] = None) -> common_pb2.FenceStatus:
        """Waits up to timeout_ms; DEADLINE_EXCEEDED if still pending.
        The RPC's deadline is timeout_ms plus the call's timeout."""
        return self._call("Wait", fences_pb2.WaitFenceRequest(
            fence_id=fence_id, timeout_ms=timeout_ms), timeout,
            extra_s=timeout_ms / 1000.0)

    def watch(self, handle: str = "", all_principals: bool = False,
              kinds: Sequence[int] = (), timeout: Optional[float] = None
              ) -> "Watch":
        """A stream of fences_pb2.Event; iterate it, cancel() to stop.
        `timeout` bounds the whole stream (default: the client's)."""
        deadline = self._client.timeout if timeout is None else timeout
        call = self._stub.Watch(fences_pb2.WatchRequest(
            handle=handle, all_principals=all_principals, kinds=list(kinds)),
            timeout=deadline)
        return Watch(call)


class Watch:
    """An open Watch stream (iterator of Event); a context manager."""

    def __init__(self, call):
        self._call = call

    def __iter__(self):
        return self

    def __next__(self) -> fences_pb2.Event:
        try:
            return next(self._call)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise from_rpc_error(e, "FenceService.Watch") from None

    def cancel(self) -> None:
        self._call.cancel()

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc) -> None:
        self.cancel()


class Regions(_Service):
    """RegionService: sizes, usage, counters; eviction (admin)."""

    def list(self, timeout: Optional[float] = None) -> List[regions_pb2.Region]:
        return list(self._call("List", regions_pb2.ListRegionsRequest(),
                               timeout).regions)

    def get(self, name: str, timeout: Optional[float] = None
            ) -> regions_pb2.Region:
        return self._call("Get", regions_pb2.GetRegionRequest(name=name),
                          timeout)

    def evict(self, name: str, wait: bool = False,
              timeout: Optional[float] = None
              ) -> regions_pb2.EvictRegionResponse:
        return self._call("Evict", regions_pb2.EvictRegionRequest(
            name=name, wait=wait), timeout)


class ArmedFault:
    """A fault armed on the daemon. As a context manager it clears itself
    on exit, exception or not (a fault already exhausted or cleared is
    fine). `fault` is the daemon's record (id, spec, counts)."""

    def __init__(self, faults: "Faults", fault: faults_pb2.Fault):
        self._faults = faults
        self.fault = fault
        self.id = fault.id
        self.cleared = False

    def clear(self) -> None:
        if self.cleared:
            return
        try:
            self._faults.clear(self.id)
        except GpumigError as e:
            if e.code != grpc.StatusCode.NOT_FOUND:
                raise
        self.cleared = True

    def refresh(self) -> faults_pb2.Fault:
        """The daemon's current record (matched/fired counts)."""
        for f in self._faults.list():
            if f.id == self.id:
                self.fault = f
        return self.fault

    def __enter__(self) -> "ArmedFault":
        return self

    def __exit__(self, *exc) -> None:
        self.clear()


class Faults(_Service):
    """FaultService (admins, daemon started with fault injection)."""

    def inject(self, kind: Union[str, int], next_n: Optional[int] = None,
               probability: Optional[float] = None, seed: int = 0,
               always: bool = False, region: str = "",
               op: Union[str, int, None] = None, latency_us: int = 0,
               timeout: Optional[float] = None) -> ArmedFault:
        """Arms a fault now and returns it; use it in `with` to clear it.

        Exactly one trigger: next_n=N, probability=p (with seed), always=True.
        kind: fail_blit, fail_clear, fail_work_allocation, ban_memcpy,
        wedge_engine, engine_latency. op: clear/migrate/evict/exec."""
        triggers = sum([next_n is not None, probability is not None, always])
        if triggers != 1:
            raise GpumigError(grpc.StatusCode.INVALID_ARGUMENT,
                              "exactly one trigger: next_n=, probability= "
                              "or always=True")
        trig = faults_pb2.FaultTrigger()
        if next_n is not None:
            trig.next_n = next_n
        elif probability is not None:
            trig.probability.p = probability
            trig.probability.seed = seed
        else:
            trig.always = True
        spec = faults_pb2.FaultSpec(kind=fault_kind(kind), trigger=trig,
                                    region=region, op=fence_kind(op),
                                    latency_us=latency_us)
        fault = self._call("Inject", faults_pb2.InjectFaultRequest(spec=spec),
                           timeout)
        return ArmedFault(self, fault)

    def clear(self, fault_id: Optional[int] = None,
              timeout: Optional[float] = None) -> int:
        """Clears one fault (by id) or, with no id, all; how many cleared."""
        req = (faults_pb2.ClearFaultsRequest(all=True) if fault_id is None
               else faults_pb2.ClearFaultsRequest(id=fault_id))
        return self._call("Clear", req, timeout).cleared

    def list(self, timeout: Optional[float] = None) -> List[faults_pb2.Fault]:
        return list(self._call("List", faults_pb2.ListFaultsRequest(),
                               timeout).faults)


class Daemon(_Service):
    """DaemonService: liveness, identity, limits, stats, self-test."""

    def ping(self, timeout: Optional[float] = None) -> None:
        self._call("Ping", daemon_pb2.PingRequest(), timeout)

    def info(self, timeout: Optional[float] = None
             ) -> daemon_pb2.GetInfoResponse:
        return self._call("GetInfo", daemon_pb2.GetInfoRequest(), timeout)

    def stats(self, timeout: Optional[float] = None
              ) -> daemon_pb2.GetStatsResponse:
        return self._call("GetStats", daemon_pb2.GetStatsRequest(), timeout)

    def selftest(self, bytes_per_region: int = 65536, with_faults: bool = False,
                 timeout: Optional[float] = None
                 ) -> daemon_pb2.SelfTestResponse:
        return self._call("SelfTest", daemon_pb2.SelfTestRequest(
            bytes_per_region=bytes_per_region, with_faults=with_faults),
            timeout)


def channel_target(socket: Optional[str], target: Optional[str]) -> str:
    if (socket is None) == (target is None):
        raise GpumigError(grpc.StatusCode.INVALID_ARGUMENT,
                          "give exactly one of socket= or target=")
    if socket is not None:
        return "unix:" + socket
    return target


def _channel_options(tls: Optional[Tls]):
    opts = [("grpc.max_receive_message_length", 64 << 20)]
    if tls is not None and tls.server_name:
        opts.append(("grpc.ssl_target_name_override", tls.server_name))
    return opts


class Client:
    """A connection to one gpumigd.

    Client(socket="/run/gpumig/gpumig.sock") — the unix socket (SO_PEERCRED
    identity); Client(target="host:port", tls=Tls(ca, cert, key)) — mutual
    TLS. A target without tls connects in plaintext (gpumigd's TCP
    listener refuses that). Connecting is lazy: the first call reports an
    absent daemon as UNAVAILABLE. Close it (or use `with`).
    """

    def __init__(self, socket: Optional[str] = None,
                 target: Optional[str] = None, tls: Optional[Tls] = None,
                 timeout: float = DEFAULT_TIMEOUT_S):
        self.address = channel_target(socket, target)
        self.socket_path = socket
        self.timeout = timeout
        if tls is not None and socket is None:
            self._channel = grpc.secure_channel(
                self.address, tls.credentials(), options=_channel_options(tls))
        else:
            self._channel = grpc.insecure_channel(
                self.address, options=_channel_options(None))
        self.objects = Objects(self, objects_pb2_grpc.ObjectServiceStub(
            self._channel), "ObjectService")
        self.fences = Fences(self, fences_pb2_grpc.FenceServiceStub(
            self._channel), "FenceService")
        self.regions = Regions(self, regions_pb2_grpc.RegionServiceStub(
            self._channel), "RegionService")
        self.faults = Faults(self, faults_pb2_grpc.FaultServiceStub(
            self._channel), "FaultService")
        self.daemon = Daemon(self, daemon_pb2_grpc.DaemonServiceStub(
            self._channel), "DaemonService")

    def shared_buffer(self, size: int) -> "SharedBuffer":
        """Makes and registers a sealed memfd buffer of `size` bytes (a
        multiple of 4096) on the daemon's registration socket."""
        path = self.daemon.info().shared_buffer_socket
        if not path:
            raise GpumigError(grpc.StatusCode.UNIMPLEMENTED,
                              "the daemon offers no shared-buffer socket")
        return SharedBuffer(path, size)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- Shared buffers (docs/api.md, "Shared buffers") ---------------------------

_MAGIC = 0x42534D47
_REQ = struct.Struct("<IHHQQQ")       # 32 bytes
_REPLY = struct.Struct("<IHHQIIQQ88s")  # 128 bytes
_OP_REGISTER, _OP_UNREGISTER = 1, 2


class SharedBuffer:
    """A sealed memfd registered with the daemon; `view` is its mapping.

    Its registration lasts as long as this object's connection to the
    registration socket: close() (or `with`) unregisters and unmaps."""

    def __init__(self, socket_path: str, size: int):
        if size <= 0 or size % 4096:
            raise GpumigError(grpc.StatusCode.INVALID_ARGUMENT,
                              "shared buffer size must be a non-zero "
                              "multiple of 4096")
        self.size = size
        self._tag = 0
        self._fd = os.memfd_create("gpumig-py", os.MFD_CLOEXEC |
                                   os.MFD_ALLOW_SEALING)
        try:
            os.ftruncate(self._fd, size)
            import fcntl
            fcntl.fcntl(self._fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK |
                        fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
            self._map = mmap.mmap(self._fd, size, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
            self.view = memoryview(self._map)
            self._sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
            try:
                self._sock.connect(socket_path)
            except OSError as e:
                raise GpumigError(grpc.StatusCode.UNAVAILABLE,
                                  f"registration socket {socket_path}: "
                                  f"{e.strerror}") from None
            self.buffer_id = self._request(_OP_REGISTER, size, 0, self._fd)
        except BaseException:
            os.close(self._fd)
            raise

    def _request(self, op: int, size: int, buffer_id: int,
                 fd: Optional[int] = None) -> int:
        self._tag += 1
        rec = _REQ.pack(_MAGIC, 1, op, self._tag, size, buffer_id)
        if fd is not None:
            _socket.send_fds(self._sock, [rec], [fd])
        else:
            self._sock.send(rec)
        data = self._sock.recv(_REPLY.size)
        if len(data) != _REPLY.size:
            raise GpumigError(grpc.StatusCode.UNAVAILABLE,
                              "registration socket closed")
        (_, _, _, _, error, code, bid, _, msg) = _REPLY.unpack(data)
        if error:
            raise GpumigError(grpc.StatusCode(_code_by_value(code)),
                              msg.rstrip(b"\0").decode("utf-8", "replace"))
        return bid

    def close(self) -> None:
        if self._sock is None:
            return
        try:
            self._request(_OP_UNREGISTER, 0, self.buffer_id)
        except (GpumigError, OSError):
            pass
        self._sock.close()
        self._sock = None
        self.view.release()
        self._map.close()
        os.close(self._fd)

    def __enter__(self) -> "SharedBuffer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _code_by_value(value: int):
    for c in grpc.StatusCode:
        if c.value[0] == value:
            return c.value
    return grpc.StatusCode.UNKNOWN.value
