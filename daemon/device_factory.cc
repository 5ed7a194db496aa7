#include "daemon/device_factory.h"

#include <utility>

#include "absl/strings/str_cat.h"
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
    return absl::UnavailableError(
        "backend cuda: not available in this build / no GPU");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("backend: unknown backend \"", config.backend, "\""));
}

}  // namespace daemon
}  // namespace gpumig
