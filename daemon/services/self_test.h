// SelfTest: a live "no stale bytes" check of the running daemon, run as the
// internal principal "gpumigd:selftest" (no client can hold that name).
//
// Per region:
//   1. canary: create scratch objects (placed only in that region) over up
//      to `bytes_per_region` of its free memory and write a canary pattern
//      into them; destroy them;
//   2. with_faults: arm next_n FAIL_CLEAR faults scoped to the region's
//      clears, and next_n FAIL_BLIT faults scoped to migrations into the
//      region (the FaultInjector has no per-object scope, so other clients'
//      operations in that window may be hit too -- their failsafe handles
//      it like any other failure);
//   3. fresh objects of the same sizes over the same blocks: each must read
//      as zeros (any other byte is a violation; DATA_LOSS -- the failsafe
//      refusing access -- is not); then each is written with its own
//      pattern, migrated to another of its placements where there is one,
//      and read back: anything but its own pattern is a violation;
//   4. disarm the faults, destroy everything.
// Reads go through MemoryManager::Read, which uses the copy engine for
// placements the CPU cannot map.
#ifndef GPUMIG_DAEMON_SERVICES_SELF_TEST_H_
#define GPUMIG_DAEMON_SERVICES_SELF_TEST_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/manager/memory_manager.h"

namespace gpumig {
namespace daemon {

inline constexpr char kSelfTestPrincipal[] = "gpumigd:selftest";

struct SelfTestOptions {
  uint64_t bytes_per_region = 1 << 20;  // multiple of 4096, > 0
  bool with_faults = false;
  absl::Time deadline = absl::InfiniteFuture();
  // Polled between steps; true stops the test (CANCELLED).
  std::function<bool()> cancelled;
};

struct SelfTestResult {
  bool passed = false;
  uint64_t canary_bytes_written = 0;
  uint64_t objects_checked = 0;
  uint64_t violations = 0;
  std::vector<std::string> details;  // at most 100
};

// Runs the test; its objects and faults are gone when it returns.
// RESOURCE_EXHAUSTED: no scratch object could be created anywhere.
// DEADLINE_EXCEEDED / CANCELLED: stopped early.
absl::StatusOr<SelfTestResult> RunSelfTest(MemoryManager& manager,
                                           const SelfTestOptions& options);

}  // namespace daemon
}  // namespace gpumig

#endif  // GPUMIG_DAEMON_SERVICES_SELF_TEST_H_
