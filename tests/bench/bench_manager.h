// The MemoryManager the batch benches run in process: a SimDevice with
// LMEM 256 MiB (64 MiB aperture) and SMEM 1 GiB, a fence history of 65536.
#ifndef GPUMIG_TESTS_BENCH_BENCH_MANAGER_H_
#define GPUMIG_TESTS_BENCH_BENCH_MANAGER_H_

#include <memory>
#include <utility>

#include "absl/status/statusor.h"
#include "core/device/sim_device.h"
#include "core/manager/memory_manager.h"

namespace gpumig::bench {

inline absl::StatusOr<std::unique_ptr<MemoryManager>> MakeBenchManager() {
  auto faults = std::make_unique<FaultInjector>();
  SimDeviceConfig config;
  config.regions.push_back(
      {"lmem", RegionKind::kLmem, 256ull << 20, 64ull << 20});
  config.regions.push_back({"smem", RegionKind::kSmem, 1ull << 30, 1ull << 30});
  absl::StatusOr<std::unique_ptr<SimDevice>> device =
      SimDevice::Create(std::move(config), faults.get());
  if (!device.ok()) return device.status();
  ManagerOptions options;
  options.fence_history = 1 << 16;
  return MemoryManager::Create(std::move(faults), *std::move(device),
                               std::move(options));
}

}  // namespace gpumig::bench

#endif  // GPUMIG_TESTS_BENCH_BENCH_MANAGER_H_
