// CudaDevice in a build without the CUDA toolkit (no cuda_runtime.h under
// /usr/local/cuda or $CUDA_PATH when Bazel configured @system): every entry
// point reports UNAVAILABLE, so `backend: "cuda"` is refused with a clear
// message and GPU tests skip. No CudaDevice is ever constructed here; the
// member functions exist only to complete the class.
#include <utility>

#include "absl/status/status.h"
#include "core/device/cuda/cuda_device.h"

namespace gpumig {
namespace {

constexpr char kNoToolkit[] =
    "built without the CUDA toolkit (no cuda_runtime.h under /usr/local/cuda "
    "or $CUDA_PATH when this binary was built)";

absl::Status NoToolkit() { return absl::UnavailableError(kNoToolkit); }

// What engine() returns, were it ever reached: every command fails.
class UnavailableEngine : public CopyEngine {
 public:
  FenceRef Copy(SgTableRef, uint64_t, SgTableRef, uint64_t, uint64_t, Deps,
                bool) override {
    return Fence::CreateSignaled("cuda-copy", NoToolkit());
  }
  FenceRef Fill(SgTableRef, uint64_t, uint64_t, uint8_t, Deps, bool) override {
    return Fence::CreateSignaled("cuda-fill", NoToolkit());
  }
  FenceRef Checksum(SgTableRef, uint64_t, uint64_t, std::shared_ptr<uint64_t>,
                    Deps) override {
    return Fence::CreateSignaled("cuda-checksum", NoToolkit());
  }
  FenceRef ReadToHost(SgTableRef, uint64_t, uint64_t, uint8_t*, Deps) override {
    return Fence::CreateSignaled("cuda-read", NoToolkit());
  }
  FenceRef WriteFromHost(const uint8_t*, SgTableRef, uint64_t, uint64_t,
                         Deps) override {
    return Fence::CreateSignaled("cuda-write", NoToolkit());
  }
  uint64_t inflight() const override { return 0; }
};

}  // namespace

class CudaDevice::Impl {};

absl::StatusOr<int> CudaDevice::Probe() { return NoToolkit(); }

absl::StatusOr<std::unique_ptr<CudaDevice>> CudaDevice::Create(
    const CudaDeviceConfig& config, FaultInjector*) {
  if (absl::Status s = ValidateCudaDeviceConfig(config); !s.ok()) return s;
  return NoToolkit();
}

CudaDevice::CudaDevice(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CudaDevice::~CudaDevice() = default;
std::string CudaDevice::description() const { return kNoToolkit; }
std::vector<Region*> CudaDevice::regions() const { return {}; }
CopyEngine& CudaDevice::engine() {
  static UnavailableEngine* engine = new UnavailableEngine();
  return *engine;
}
absl::StatusOr<std::vector<absl::Span<uint8_t>>> CudaDevice::CpuMap(
    const SgTable&, uint64_t, uint64_t) {
  return NoToolkit();
}
void CudaDevice::Shutdown() {}
absl::Status CudaDevice::FallbackCopy(const SgTable&, uint64_t, const SgTable&,
                                      uint64_t, uint64_t) {
  return NoToolkit();
}
absl::Status CudaDevice::FallbackFill(const SgTable&, uint64_t, uint64_t,
                                      uint8_t) {
  return NoToolkit();
}
CudaFallbackCounters CudaDevice::fallback_counters() const { return {}; }
absl::Status CudaDevice::EngineStatus() const { return NoToolkit(); }
absl::StatusOr<std::vector<CudaRun>> CudaDevice::Runs(const SgTable&, uint64_t,
                                                      uint64_t) const {
  return NoToolkit();
}
int CudaDevice::device_ordinal() const { return -1; }

}  // namespace gpumig
