"""gpumig: the Python client of the gpumig GPU-memory migration daemon.

    import gpumig
    with gpumig.Client(socket="/run/gpumig/gpumig.sock") as c:
        obj = c.objects.create(4 << 20, placements=["lmem", "smem"]).object
        c.objects.write(obj.handle, b"\\xab" * (4 << 20))
        with c.faults.inject("fail_blit", next_n=1):
            fence = c.objects.migrate(obj.handle, "smem", wait=True).fence
        assert fence.outcome == gpumig.FENCE_OUTCOME_FALLBACK_COPY

See docs/python.md. The protobuf/gRPC stubs (gpumig.v1.*_pb2) are generated
at build time (//python:gpumig_v1_py) into bazel-bin/python/gpumig/v1; with
both python/ and bazel-bin/python on sys.path this package finds them.
"""

import pkgutil as _pkgutil

# The generated gpumig.v1 lives in a second directory (bazel-bin/python):
# let this package span every gpumig/ directory on sys.path.
__path__ = _pkgutil.extend_path(__path__, __name__)

from gpumig.errors import GpumigError  # noqa: E402
from gpumig.client import (  # noqa: E402
    Client,
    Tls,
    ArmedFault,
    SharedBuffer,
    fault_kind,
    fence_kind,
)
from gpumig.v1.common_pb2 import (  # noqa: E402
    FENCE_STATE_PENDING,
    FENCE_STATE_SIGNALED,
    FENCE_OUTCOME_BLIT_OK,
    FENCE_OUTCOME_FALLBACK_COPY,
    FENCE_OUTCOME_FALLBACK_CLEAR,
    FENCE_OUTCOME_UNKNOWN_STATE,
    FENCE_OUTCOME_FAILED,
)

__all__ = [
    "Client", "Tls", "ArmedFault", "SharedBuffer", "GpumigError",
    "fault_kind", "fence_kind",
    "FENCE_STATE_PENDING", "FENCE_STATE_SIGNALED", "FENCE_OUTCOME_BLIT_OK",
    "FENCE_OUTCOME_FALLBACK_COPY", "FENCE_OUTCOME_FALLBACK_CLEAR",
    "FENCE_OUTCOME_UNKNOWN_STATE", "FENCE_OUTCOME_FAILED",
]
