// Test helpers: a MemoryManager on a SimDevice with small regions.
#ifndef GPUMIG_CORE_MANAGER_TEST_UTIL_H_
#define GPUMIG_CORE_MANAGER_TEST_UTIL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/device/sim_device.h"
#include "core/manager/memory_manager.h"

namespace gpumig {
namespace testing {

struct SimLayout {
  uint64_t lmem = 4 << 20;
  uint64_t aperture = 2 << 20;
  uint64_t smem = 8 << 20;
  int work_threads = 2;
  uint64_t default_quota = 0;
  size_t fence_history = 4096;
};

inline absl::StatusOr<std::unique_ptr<MemoryManager>> MakeSimManager(
    const SimLayout& layout = {}) {
  auto faults = std::make_unique<FaultInjector>();
  SimDeviceConfig config;
  config.regions.push_back(RegionConfig{"lmem", RegionKind::kLmem, layout.lmem,
                                        layout.aperture, 4096});
  config.regions.push_back(
      RegionConfig{"smem", RegionKind::kSmem, layout.smem, layout.smem, 4096});
  absl::StatusOr<std::unique_ptr<SimDevice>> device =
      SimDevice::Create(std::move(config), faults.get());
  if (!device.ok()) return device.status();
  ManagerOptions options;
  options.work_threads = layout.work_threads;
  options.default_quota = layout.default_quota;
  options.fence_history = layout.fence_history;
  return MemoryManager::Create(std::move(faults), *std::move(device),
                               std::move(options));
}

inline Principal User(uint32_t uid) {
  Principal p;
  p.uid = uid;
  p.name = "uid:" + std::to_string(uid);
  p.admin = uid == 0;
  return p;
}

inline absl::Time Soon() { return absl::Now() + absl::Seconds(30); }

// A pattern only `owner` writes: byte i of object `tag` is a function of
// both, never 0 and never a canary value other owners use.
inline std::vector<uint8_t> Pattern(uint64_t size, uint32_t tag) {
  std::vector<uint8_t> v(size);
  uint32_t x = tag * 2654435761u + 1;
  for (uint64_t i = 0; i < size; ++i) {
    x = x * 1103515245u + 12345u;
    v[i] = static_cast<uint8_t>((x >> 16) | 1);
  }
  return v;
}

}  // namespace testing
}  // namespace gpumig

#endif  // GPUMIG_CORE_MANAGER_TEST_UTIL_H_
