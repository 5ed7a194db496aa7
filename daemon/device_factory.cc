#include "daemon/device_factory.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/device/cuda/cuda_device.h"
#include "core/device/cuda/cuda_host_pin.h"
#include "core/device/sim_device.h"

namespace gpumig {
namespace daemon {

absl::StatusOr<std::unique_ptr<Device>> MakeDevice(const Config& config,
                                                   FaultInjector* faults) {
  if (config.backend == "sim") {
    SimDeviceConfig sim;
    for (const RegionSpec& r : config.regions) {
      sim.regions.push_back(
          RegionConfig{r.name, r.lmem ? RegionKind::kLmem : RegionKind::kSmem,
                       r.size, r.aperture, 4096});
    }
    absl::StatusOr<std::unique_ptr<SimDevice>> device =
        SimDevice::Create(std::move(sim), faults);
    if (!device.ok()) return device.status();
    return std::unique_ptr<Device>(*std::move(device));
  }
  if (config.backend == "cuda") {
    // One LMEM pool (device memory) and one SMEM pool (pinned host memory).
    // The CPU cannot reach GPU memory here: the LMEM aperture is 0 whatever
    // the config says (docs/cuda.md).
    CudaDeviceConfig cuda;
    int lmem = 0, smem = 0;
    for (const RegionSpec& r : config.regions) {
      if (r.lmem) {
        ++lmem;
        cuda.lmem_name = r.name;
        cuda.lmem_bytes = r.size;
      } else {
        ++smem;
        cuda.smem_name = r.name;
        cuda.smem_bytes = r.size;
      }
    }
    if (lmem != 1 || smem != 1) {
      return absl::InvalidArgumentError(
          "regions: backend cuda needs exactly one lmem and one smem region");
    }
    absl::StatusOr<std::unique_ptr<CudaDevice>> device =
        CudaDevice::Create(cuda, faults);
    if (!device.ok()) {
      return absl::Status(
          device.status().code(),
          absl::StrCat("backend cuda: ", device.status().message()));
    }
    return std::unique_ptr<Device>(*std::move(device));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("backend: unknown backend \"", config.backend, "\""));
}

shm::ShmPinHooks SharedBufferPinHooks(Device& device) {
  if (auto* cuda = dynamic_cast<CudaDevice*>(&device); cuda != nullptr) {
    return CudaShmPinHooks(cuda->device_ordinal());
  }
  return {};
}

}  // namespace daemon
}  // namespace gpumig
