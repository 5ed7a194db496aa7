"""gpumig errors: every failed call raises GpumigError carrying the gRPC code.

The daemon maps each core status to one gRPC code (docs/api.md): a caller
branches on `err.code` (a grpc.StatusCode), e.g. NOT_FOUND, PERMISSION_DENIED,
FAILED_PRECONDITION / DATA_LOSS (object in unknown state), DEADLINE_EXCEEDED
(the call's deadline, or a fence wait's timeout), UNAVAILABLE (no daemon, or
it is shutting down), UNIMPLEMENTED (a daemon too old for the RPC).
"""

from __future__ import annotations

import grpc


class GpumigError(Exception):
    """A gpumig call failed.

    Attributes:
      code: the grpc.StatusCode the daemon (or the gRPC runtime) answered.
      details: the daemon's message, for people.
      method: the RPC, e.g. "ObjectService.Migrate" ("" when not an RPC).
    """

    def __init__(self, code: grpc.StatusCode, details: str, method: str = ""):
        self.code = code
        self.details = details
        self.method = method
        where = f"{method}: " if method else ""
        super().__init__(f"{where}{code.name}: {details}")

    @property
    def code_name(self) -> str:
        """The code's name, e.g. "NOT_FOUND"."""
        return self.code.name


def from_rpc_error(err: grpc.RpcError, method: str) -> GpumigError:
    """Converts a grpc.RpcError (a grpc.Call) to GpumigError."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    return GpumigError(code or grpc.StatusCode.UNKNOWN, details or "", method)
